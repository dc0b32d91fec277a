//! Conditional GET: the validators of a feed, worked out without reading a
//! record, and whether a request's `If-None-Match` / `If-Modified-Since`
//! lets it be answered 304.
//!
//! **ETag.** Every change a feed can show is an entry in the change log, so
//! a feed is fixed by the store, the log position its reads reflect (the
//! durable head; for a `q` feed also the search index's position) and what
//! was asked (format, normalised filter, query, limit, links). The ETag is a
//! digest of those, with the position in clear. It is weak (`W/`): the
//! same tag stands for the same releases in the same order, not for the
//! same bytes. It is conservative: any change anywhere in the store makes a
//! new tag, and a read may already show a change a little newer than its
//! tag; neither can make a 304 hide a change.
//!
//! **Last-Modified.** HTTP dates have whole seconds, and a second can hold
//! many changes, so the date is not simply the time of the last change:
//! [`ChangeClock`] notes when this process first saw each position and
//! hands out a date that no later position can share. A client holding the
//! date of one position gets a 304 only while that position is current.
//! (Across restarts this holds because a new process sees its first
//! position after the old one stopped; across replicas use the ETag.)
//! `If-None-Match`, when sent, decides alone (RFC 9110 §13.2.2).

use std::{
    cmp::Ordering,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};

/// When positions were first seen, on a clock that does not go back while
/// the process runs.
pub struct ChangeClock<P> {
    started: SystemTime,
    anchor: Instant,
    current: Mutex<Option<(P, SystemTime)>>,
}

/// What the clock says of the position a response was read at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The `Last-Modified` to send: whole seconds, never after now.
    pub last_modified: SystemTime,
    /// An `If-Modified-Since` at or after this proves the client holds this
    /// position's answer; `None` when no date can prove it (the position
    /// was read while a newer one was already current).
    pub unchanged_since: Option<SystemTime>,
}

impl<P: PartialOrd + Copy> ChangeClock<P> {
    /// A clock that has seen nothing yet.
    pub fn new() -> Self {
        Self {
            started: SystemTime::now(),
            anchor: Instant::now(),
            current: Mutex::new(None),
        }
    }

    /// Stamps an answer read at `position`.
    pub fn stamp(&self, position: P) -> Stamp {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.started + self.anchor.elapsed();
        let order = current.map(|(seen, at)| (position.partial_cmp(&seen), at));
        match order {
            Some((Some(Ordering::Equal), at)) => Stamp {
                last_modified: whole_second(now).min(whole_second(at) + SECOND),
                unchanged_since: Some(whole_second(at) + SECOND),
            },
            Some((Some(Ordering::Less) | None, at)) => Stamp {
                // Read behind (or beside) the current position: a date no
                // later than the current position's own, which never
                // proves anything about it.
                last_modified: whole_second(at),
                unchanged_since: None,
            },
            _ => {
                *current = Some((position, now));
                Stamp {
                    last_modified: whole_second(now),
                    unchanged_since: Some(whole_second(now) + SECOND),
                }
            }
        }
    }
}

impl<P: PartialOrd + Copy> Default for ChangeClock<P> {
    fn default() -> Self {
        Self::new()
    }
}

const SECOND: Duration = Duration::from_secs(1);

/// `time` cut to its whole second.
fn whole_second(time: SystemTime) -> SystemTime {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    UNIX_EPOCH + Duration::from_secs(since.as_secs())
}

/// The validators of one feed answer.
#[derive(Clone, Debug)]
pub struct Validators {
    /// The weak entity tag, quoted: `W/"<position>-<digest>"`.
    pub etag: HeaderValue,
    /// The clock's stamp.
    pub stamp: Stamp,
}

impl Validators {
    /// The validators of the answer to `asked` (everything that shapes it
    /// besides the store, as text) read at `position` (shown in the tag),
    /// stamped by the clock.
    pub fn new(position: &str, asked: &[&[u8]], stamp: Stamp) -> Self {
        let mut digest = Sha256::new();
        for part in asked {
            digest.update((part.len() as u64).to_be_bytes());
            digest.update(part);
        }
        let digest = digest.finalize();
        let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
        let etag = HeaderValue::try_from(format!("W/\"{position}-{hex}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("W/\"0\""));
        Self { etag, stamp }
    }

    /// Whether the request's conditions say the client holds this answer.
    pub fn not_modified(&self, headers: &HeaderMap) -> bool {
        if let Some(value) = headers.get(header::IF_NONE_MATCH) {
            return value
                .to_str()
                .is_ok_and(|list| matches_any(list, self.opaque_tag()));
        }
        let (Some(since), Some(unchanged_since)) = (
            headers
                .get(header::IF_MODIFIED_SINCE)
                .and_then(|value| value.to_str().ok())
                .and_then(|text| httpdate::parse_http_date(text).ok()),
            self.stamp.unchanged_since,
        ) else {
            return false;
        };
        since >= unchanged_since
    }

    /// The `Last-Modified` header value.
    pub fn last_modified(&self) -> HeaderValue {
        HeaderValue::try_from(httpdate::fmt_http_date(self.stamp.last_modified))
            .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
    }

    /// The tag without its weakness prefix, quotes included.
    fn opaque_tag(&self) -> &str {
        let tag = self.etag.to_str().unwrap_or_default();
        tag.strip_prefix("W/").unwrap_or(tag)
    }
}

/// Whether an `If-None-Match` list names `tag` under weak comparison
/// (`W/` ignored), or is `*`.
fn matches_any(list: &str, tag: &str) -> bool {
    let list = list.trim();
    if list == "*" {
        return true;
    }
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        let candidate = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(body) = candidate.strip_prefix('"') else {
            return false;
        };
        let Some(end) = body.find('"') else {
            return false;
        };
        if &candidate[..end + 2] == tag {
            return true;
        }
        rest = &body[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
        headers
    }

    #[test]
    fn if_none_match_uses_weak_comparison_and_lists() {
        let validators = Validators::new(
            "7",
            &[b"rss", b"channel=tech"],
            ChangeClock::new().stamp(7u64),
        );
        let tag = validators.etag.to_str().unwrap_or_default().to_string();
        assert!(tag.starts_with("W/\"7-"), "{tag}");
        let strong = tag.trim_start_matches("W/").to_string();
        for (sent, expected) in [
            (tag.clone(), true),
            (strong, true),
            (format!("\"x\", {tag}"), true),
            ("*".to_string(), true),
            ("W/\"7-0000\"".to_string(), false),
            ("garbage".to_string(), false),
        ] {
            assert_eq!(
                validators.not_modified(&headers(header::IF_NONE_MATCH, &sent)),
                expected,
                "{sent}"
            );
        }
        let other = Validators::new("7", &[b"atom", b"channel=tech"], validators.stamp);
        assert_ne!(other.etag, validators.etag, "formats have their own tags");
        let shifted = Validators::new("7", &[b"rs", b"schannel=tech"], validators.stamp);
        assert_ne!(shifted.etag, validators.etag, "parts are delimited");
    }

    #[test]
    fn a_date_handed_out_never_hides_a_later_position() {
        let clock = ChangeClock::new();
        let first = clock.stamp(1u64);
        // Within the second a position is first seen, its own date cannot
        // prove anything yet; once handed out, a date proves only its own
        // position.
        let again = clock.stamp(1u64);
        assert!(again.unchanged_since > Some(first.last_modified));
        let date = |stamp: Stamp| httpdate::fmt_http_date(stamp.last_modified);
        let holds =
            |stamp: Stamp, since: SystemTime| stamp.unchanged_since.is_some_and(|u| since >= u);
        let later = clock.stamp(2u64);
        assert!(!holds(later, first.last_modified), "{}", date(first));
        assert!(!holds(later, again.last_modified), "{}", date(again));
        // A read behind the current position proves nothing and claims no
        // later date than the current one's.
        let behind = clock.stamp(1u64);
        assert_eq!(behind.unchanged_since, None);
        assert!(behind.last_modified <= later.last_modified);
        assert!(holds(
            clock.stamp(2u64),
            later.unchanged_since.unwrap_or(UNIX_EPOCH)
        ));
    }

    #[test]
    fn if_modified_since_is_ignored_when_if_none_match_is_sent() {
        let stamp = Stamp {
            last_modified: UNIX_EPOCH + Duration::from_secs(100),
            unchanged_since: Some(UNIX_EPOCH + Duration::from_secs(101)),
        };
        let validators = Validators::new("1", &[b"rss"], stamp);
        let late = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(101));
        let early = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(100));
        assert!(validators.not_modified(&headers(header::IF_MODIFIED_SINCE, &late)));
        assert!(!validators.not_modified(&headers(header::IF_MODIFIED_SINCE, &early)));
        let mut both = headers(header::IF_MODIFIED_SINCE, &late);
        both.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!validators.not_modified(&both));
    }
}
