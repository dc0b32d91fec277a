//! One press release as every feed format shows it, and the feed around
//! the releases: the mapping is decided here once, and each writer only
//! puts these values where its format has room for them.
//!
//! - title: the headline; summary: the summary, else the subheadline.
//! - content: the body as HTML: an HTML body as stored (it was sanitised on
//!   write, and is never shown unsanitised), a plain-text body escaped into
//!   paragraphs.
//! - link: the configured public base URL followed by the release's name,
//!   else the release's source URL, else none.
//! - id: the release's name (`pressReleases/{id}`), never a permalink.
//! - times: `publish_time` and `update_time`.
//! - categories: the channels, then the subjects (each once).
//! - author: the issuer's name. Dateline: where the format has room.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use url::Url;

use crate::proto::{
    Timestamp,
    v1::{PressRelease, press_release::BodyFormat},
};

/// A press release, mapped for the feeds.
pub struct Entry<'a> {
    /// The release.
    pub release: &'a PressRelease,
    /// Where the item links to.
    pub link: Option<String>,
    /// The body as HTML.
    pub html: Cow<'a, str>,
    /// The short text shown before the body.
    pub summary: Option<&'a str>,
    /// When it was published.
    pub published: DateTime<Utc>,
    /// When it last changed.
    pub updated: DateTime<Utc>,
    /// Channels and subjects, each once.
    pub categories: Vec<&'a str>,
    /// The issuer's name.
    pub author: Option<&'a str>,
    /// The dateline as printed.
    pub dateline: Option<&'a str>,
}

impl<'a> Entry<'a> {
    /// Maps `release`, linking it under `link_base` if there is one.
    pub fn new(release: &'a PressRelease, link_base: Option<&Url>) -> Self {
        let source_url = release
            .source
            .as_ref()
            .map(|source| source.url.as_str())
            .filter(|url| !url.is_empty());
        let link = match link_base {
            Some(base) => Some(format!("{base}{}", release.name)),
            None => source_url.map(str::to_string),
        };
        let html = if release.body_format() == BodyFormat::Html {
            Cow::Borrowed(release.body.as_str())
        } else {
            Cow::Owned(paragraphs(&release.body))
        };
        let mut categories: Vec<&str> = Vec::new();
        for value in release.channels.iter().chain(&release.subjects) {
            if !categories
                .iter()
                .any(|seen| seen.eq_ignore_ascii_case(value))
            {
                categories.push(value);
            }
        }
        let published = time(release.publish_time.as_ref());
        Self {
            release,
            link,
            html,
            summary: non_empty(&release.summary).or_else(|| non_empty(&release.subheadline)),
            published,
            updated: release
                .update_time
                .as_ref()
                .map_or(published, |t| time(Some(t))),
            categories,
            author: release
                .issuer
                .as_ref()
                .and_then(|issuer| non_empty(&issuer.name)),
            dateline: release
                .dateline
                .as_ref()
                .and_then(|dateline| non_empty(&dateline.text)),
        }
    }
}

/// What a feed says about itself.
pub struct FeedInfo {
    /// Its title, naming the filter.
    pub title: String,
    /// A sentence saying what it holds.
    pub description: String,
    /// The feed's own URL (without any key).
    pub self_url: String,
    /// The site it belongs to: the public base URL, else its own URL.
    pub home_url: String,
    /// When it last changed: the newest release's update, else the
    /// validators' date.
    pub updated: DateTime<Utc>,
}

/// A protobuf time as a chrono time (the epoch if unset or out of range).
pub fn time(timestamp: Option<&Timestamp>) -> DateTime<Utc> {
    timestamp
        .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .unwrap_or_default()
}

fn non_empty(text: &str) -> Option<&str> {
    Some(text).filter(|text| !text.trim().is_empty())
}

/// A plain-text body as HTML: escaped, a paragraph per blank-line-separated
/// block, line breaks kept.
fn paragraphs(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let mut html = String::with_capacity(text.len() + 64);
    for block in text.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
        html.push_str("<p>");
        for (i, line) in block.lines().enumerate() {
            if i > 0 {
                html.push_str("<br>\n");
            }
            html.push_str(&html_escape::encode_text(line));
        }
        html.push_str("</p>\n");
    }
    html
}

/// A written XML document as text, without the characters XML 1.0 forbids
/// (C0 controls other than tab, line feed and carriage return; U+FFFE and
/// U+FFFF), which a stored text may hold but no XML parser accepts, escaped
/// or not. Markup is ASCII, so filtering the document filters every text
/// in it. The common case, nothing to drop, is one pass over the bytes and
/// no copy.
pub fn xml_safe(xml: Vec<u8>) -> String {
    let forbidden = |c: char| {
        (c < '\u{20}' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    };
    // U+FFFE and U+FFFF are the only forbidden characters past ASCII, and
    // both start with the byte 0xEF.
    let suspect = xml
        .iter()
        .any(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0xEF);
    match String::from_utf8(xml) {
        Ok(text) if !suspect || !text.contains(forbidden) => text,
        Ok(text) => text.chars().filter(|&c| !forbidden(c)).collect(),
        Err(error) => String::from_utf8_lossy(error.as_bytes())
            .chars()
            .filter(|&c| !forbidden(c))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::{Organization, Source};

    #[test]
    fn maps_a_plain_release() {
        let release = PressRelease {
            name: "pressReleases/x".into(),
            headline: "Acme".into(),
            subheadline: "Sub".into(),
            body: "First <line>\nsecond\r\n\r\nNext & last".into(),
            channels: vec!["Tech".into(), "Business".into()],
            subjects: vec!["tech".into(), "M&A".into()],
            issuer: Some(Organization {
                name: "Acme Corp".into(),
                ..Default::default()
            }),
            source: Some(Source {
                url: "https://wire.example/1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let entry = Entry::new(&release, None);
        assert_eq!(
            entry.html,
            "<p>First &lt;line&gt;<br>\nsecond</p>\n<p>Next &amp; last</p>\n"
        );
        assert_eq!(entry.summary, Some("Sub"));
        assert_eq!(entry.categories, ["Tech", "Business", "M&A"]);
        assert_eq!(entry.author, Some("Acme Corp"));
        assert_eq!(entry.link.as_deref(), Some("https://wire.example/1"));
        let base = Url::parse("https://newsroom.example/").ok();
        assert_eq!(
            Entry::new(&release, base.as_ref()).link.as_deref(),
            Some("https://newsroom.example/pressReleases/x")
        );
    }

    #[test]
    fn drops_what_xml_forbids() {
        assert_eq!(xml_safe("a\u{1}b\tc\u{FFFF}é".into()), "ab\tcé");
        assert_eq!(xml_safe("plain \u{FEFF}ï".into()), "plain \u{FEFF}ï");
    }
}
