//! The key layout of the sled engine's one keyspace. Every kind of entry
//! lives under its own one-byte prefix, so that a single atomic
//! `apply_batch` can change a record, its log entry and all its index
//! entries together.
//!
//! | prefix | key                                   | value                     |
//! |--------|---------------------------------------|---------------------------|
//! | `m`    | meta name                             | meta value                |
//! | `r`    | release id (16)                       | checksummed record        |
//! | `l`    | sequence number (8, big endian)       | checksummed `LogEntry`    |
//! | `t`    | commit time (12), first sequence (8)  | empty, one per commit     |
//! | `c`    | `h`, publish hour (8) / `n`           | checksummed count         |
//! | `p`    | list position (28)                    | empty                     |
//! | `f`    | facet (1), value, `0`, list position  | empty                     |
//! | `e`    | embargo time (12), release id (16)    | empty                     |
//! | `q`    | request id                            | checksummed release id    |
//! | `s`    | provider, `0`, item id                | checksummed source claim  |
//! | `u`    | subscription id                       | checksummed definition    |
//! | `v`    | subscription id, `0`, `p`             | checksummed position      |
//! | `v`    | subscription id, `0`, `a`             | checksummed acked runs    |
//! | `v`    | subscription id, `0`, `e`, seq (8)    | checksummed event state   |
//! | `v`    | subscription id, `0`, `d`, seq (8)    | checksummed dead letter   |
//!
//! Times are encoded so that byte order is time order, and a list position
//! puts the newest publish time first (both in [`crate::store::position`]).
//! Facet values and source keys never contain a `0` byte (validation rejects
//! control characters), so the separators are unambiguous.

use uuid::Uuid;

use crate::{
    proto::Timestamp,
    store::position::{ListPosition, TIME_LEN, time_bytes, time_from_bytes},
};

pub(crate) const META: u8 = b'm';
pub(crate) const RELEASE: u8 = b'r';
pub(crate) const LOG: u8 = b'l';
pub(crate) const COMMIT_TIME: u8 = b't';
pub(crate) const COUNT: u8 = b'c';
pub(crate) const PUBLISHED: u8 = b'p';
pub(crate) const FACET: u8 = b'f';
pub(crate) const EMBARGO: u8 = b'e';
pub(crate) const REQUEST: u8 = b'q';
pub(crate) const SOURCE: u8 = b's';
pub(crate) const SUBSCRIPTION: u8 = b'u';
pub(crate) const SUBSCRIPTION_STATE: u8 = b'v';

/// A subscription's definition.
pub(crate) fn subscription_key(id: &str) -> Vec<u8> {
    prefixed(SUBSCRIPTION, id.as_bytes())
}

/// Where everything of a subscription's state lives (ids never hold a `0`).
pub(crate) fn subscription_state_prefix(id: &str) -> Vec<u8> {
    let mut out = prefixed(SUBSCRIPTION_STATE, id.as_bytes());
    out.push(0);
    out
}

/// A subscription's position.
pub(crate) fn subscription_position_key(id: &str) -> Vec<u8> {
    let mut out = subscription_state_prefix(id);
    out.push(b'p');
    out
}

/// The events after a subscription's position that are acknowledged, as
/// runs of sequence numbers (one value, rewritten by each commit of acks).
pub(crate) fn subscription_acked_key(id: &str) -> Vec<u8> {
    let mut out = subscription_state_prefix(id);
    out.push(b'a');
    out
}

/// The state of one event of a subscription (`kind` `e`), or one of its
/// dead letters (`kind` `d`); `kind` alone is the prefix of them all.
pub(crate) fn subscription_event_key(id: &str, kind: u8, seq: Option<u64>) -> Vec<u8> {
    let mut out = subscription_state_prefix(id);
    out.push(kind);
    if let Some(seq) = seq {
        out.extend_from_slice(&seq.to_be_bytes());
    }
    out
}

/// The sequence number at the end of an event-state or dead-letter key.
pub(crate) fn seq_from_subscription_key(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

pub(crate) fn meta_key(name: &str) -> Vec<u8> {
    prefixed(META, name.as_bytes())
}

pub(crate) fn release_key(id: &Uuid) -> Vec<u8> {
    prefixed(RELEASE, id.as_bytes())
}

pub(crate) fn log_key(seq: u64) -> Vec<u8> {
    prefixed(LOG, &seq.to_be_bytes())
}

pub(crate) fn published_key(position: &ListPosition) -> Vec<u8> {
    prefixed(PUBLISHED, &position.0)
}

pub(crate) fn facet_prefix(facet: u8, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + value.len());
    out.push(FACET);
    out.push(facet);
    out.extend_from_slice(value.as_bytes());
    out.push(0);
    out
}

pub(crate) fn facet_key(facet: u8, value: &str, position: &ListPosition) -> Vec<u8> {
    let mut out = facet_prefix(facet, value);
    out.extend_from_slice(&position.0);
    out
}

pub(crate) fn embargo_key(embargo_time: &Timestamp, id: &Uuid) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + TIME_LEN + 16);
    out.push(EMBARGO);
    out.extend_from_slice(&time_bytes(embargo_time));
    out.extend_from_slice(id.as_bytes());
    out
}

/// Splits an embargo key into its time and release id.
pub(crate) fn parse_embargo_key(key: &[u8]) -> Option<(Timestamp, Uuid)> {
    let time: [u8; TIME_LEN] = key.get(1..1 + TIME_LEN)?.try_into().ok()?;
    let id = Uuid::from_slice(key.get(1 + TIME_LEN..)?).ok()?;
    Some((time_from_bytes(&time), id))
}

/// The commit-time index entry of a commit whose first entry is `seq`.
pub(crate) fn commit_time_key(time: &Timestamp, seq: u64) -> Vec<u8> {
    let mut out = commit_time_prefix(time);
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

/// Where commits at or after `time` start in the commit-time index.
pub(crate) fn commit_time_prefix(time: &Timestamp) -> Vec<u8> {
    prefixed(COMMIT_TIME, &time_bytes(time))
}

/// The first sequence number of the commit a commit-time key names.
pub(crate) fn seq_from_commit_time_key(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(1 + TIME_LEN..)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// The count of published releases whose publish time falls in `hour`
/// (hours since the epoch).
pub(crate) fn hour_count_key(hour: i64) -> Vec<u8> {
    let mut out = vec![COUNT, b'h'];
    out.extend_from_slice(&((hour as u64) ^ (1 << 63)).to_be_bytes());
    out
}

/// The hour an hour-count key names.
pub(crate) fn hour_from_count_key(key: &[u8]) -> Option<i64> {
    let bytes: [u8; 8] = key.get(2..)?.try_into().ok()?;
    Some((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
}

/// The count of all published releases.
pub(crate) fn total_count_key() -> Vec<u8> {
    vec![COUNT, b'n']
}

pub(crate) fn request_key(request_id: &str) -> Vec<u8> {
    prefixed(REQUEST, request_id.as_bytes())
}

pub(crate) fn source_key(provider: &str, item_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + provider.len() + item_id.len());
    out.push(SOURCE);
    out.extend_from_slice(provider.as_bytes());
    out.push(0);
    out.extend_from_slice(item_id.as_bytes());
    out
}

/// `prefix` followed by `rest`.
pub(crate) fn prefixed(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + rest.len());
    out.push(prefix);
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{proto::compare_times, store::position::tests::timestamp};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn hour_count_keys_sort_by_hour(a in any::<i64>(), b in any::<i64>()) {
            prop_assert_eq!(hour_count_key(a).cmp(&hour_count_key(b)), a.cmp(&b));
            prop_assert_eq!(hour_from_count_key(&hour_count_key(a)), Some(a));
        }

        #[test]
        fn log_keys_sort_by_sequence(a in any::<u64>(), b in any::<u64>()) {
            prop_assert_eq!(log_key(a).cmp(&log_key(b)), a.cmp(&b));
        }

        #[test]
        fn embargo_keys_sort_by_time_and_parse_back(a in timestamp(), b in timestamp(), ia in any::<u128>()) {
            let id = Uuid::from_u128(ia);
            let (ka, kb) = (embargo_key(&a, &id), embargo_key(&b, &id));
            prop_assert_eq!(ka.cmp(&kb), compare_times(&a, &b));
            prop_assert_eq!(parse_embargo_key(&ka), Some((a, id)));
        }

        #[test]
        fn commit_time_keys_sort_by_time_then_seq(a in timestamp(), b in timestamp(), sa in any::<u64>(), sb in any::<u64>()) {
            let (ka, kb) = (commit_time_key(&a, sa), commit_time_key(&b, sb));
            prop_assert_eq!(ka.cmp(&kb), compare_times(&a, &b).then(sa.cmp(&sb)));
            prop_assert!(ka.starts_with(&commit_time_prefix(&a)));
            prop_assert_eq!(seq_from_commit_time_key(&ka), Some(sa));
        }

        #[test]
        fn facet_prefixes_never_overlap(a in "[a-z ]{0,8}", b in "[a-z ]{0,8}", t in timestamp()) {
            let position = ListPosition::new(&t, &Uuid::nil());
            let key = facet_key(1, &a, &position);
            prop_assert_eq!(key.starts_with(&facet_prefix(1, &b)), a == b);
        }
    }
}
