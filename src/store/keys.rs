//! The key layout of the one sled keyspace. Every kind of entry lives under
//! its own one-byte prefix, so that a single atomic `apply_batch` can change a
//! record, its log entry and all its index entries together.
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
//!
//! Times are encoded so that byte order is time order; a list position puts
//! the newest publish time first. Facet values and source keys never contain
//! a `0` byte (validation rejects control characters), so the separators are
//! unambiguous.

use crate::proto::Timestamp;
use uuid::Uuid;

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

/// Length of an encoded time.
pub(crate) const TIME_LEN: usize = 12;
/// Length of a list position: descending publish time, then release id.
pub const POSITION_LEN: usize = TIME_LEN + 16;

/// Encodes a time so that byte order is time order (earliest first).
pub fn time_bytes(time: &Timestamp) -> [u8; TIME_LEN] {
    let mut out = [0; TIME_LEN];
    let seconds = (time.seconds as u64) ^ (1 << 63);
    out[..8].copy_from_slice(&seconds.to_be_bytes());
    out[8..].copy_from_slice(&(time.nanos.max(0) as u32).to_be_bytes());
    out
}

/// Decodes what [`time_bytes`] encoded.
pub fn time_from_bytes(bytes: &[u8; TIME_LEN]) -> Timestamp {
    let mut seconds = [0; 8];
    seconds.copy_from_slice(&bytes[..8]);
    let mut nanos = [0; 4];
    nanos.copy_from_slice(&bytes[8..]);
    Timestamp {
        seconds: (u64::from_be_bytes(seconds) ^ (1 << 63)) as i64,
        nanos: u32::from_be_bytes(nanos) as i32,
    }
}

/// A place in the order of `List`: newest publish time first, ties broken by
/// release id. Byte order is list order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListPosition(pub [u8; POSITION_LEN]);

impl ListPosition {
    /// The position of a release published at `publish_time`.
    pub fn new(publish_time: &Timestamp, id: &Uuid) -> Self {
        let mut out = [0; POSITION_LEN];
        for (slot, byte) in out.iter_mut().zip(time_bytes(publish_time)) {
            *slot = !byte;
        }
        out[TIME_LEN..].copy_from_slice(id.as_bytes());
        Self(out)
    }

    /// The first position of everything published at or before `time`.
    pub fn first_at_or_before(time: &Timestamp) -> Self {
        Self::new(time, &Uuid::nil())
    }

    /// Parses a position from bytes that a page token carried.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The publish time at this position.
    pub fn publish_time(&self) -> Timestamp {
        let mut time = [0; TIME_LEN];
        for (slot, byte) in time.iter_mut().zip(&self.0[..TIME_LEN]) {
            *slot = !byte;
        }
        time_from_bytes(&time)
    }

    /// The release id at this position.
    pub fn release_id(&self) -> Uuid {
        let mut id = [0; 16];
        id.copy_from_slice(&self.0[TIME_LEN..]);
        Uuid::from_bytes(id)
    }

    /// The smallest byte string greater than this position, for resuming
    /// after it.
    pub fn successor(&self) -> Vec<u8> {
        let mut out = self.0.to_vec();
        out.push(0);
        out
    }
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

fn prefixed(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + rest.len());
    out.push(prefix);
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn timestamp() -> impl Strategy<Value = Timestamp> {
        // The range protobuf allows: 0001-01-01 to 9999-12-31.
        (-62_135_596_800i64..253_402_300_799, 0i32..1_000_000_000)
            .prop_map(|(seconds, nanos)| Timestamp { seconds, nanos })
    }

    fn key(t: &Timestamp) -> (i64, i32) {
        (t.seconds, t.nanos)
    }

    proptest! {
        #[test]
        fn time_bytes_round_trip(t in timestamp()) {
            prop_assert_eq!(time_from_bytes(&time_bytes(&t)), t);
        }

        #[test]
        fn time_bytes_preserve_order(a in timestamp(), b in timestamp()) {
            prop_assert_eq!(time_bytes(&a).cmp(&time_bytes(&b)), key(&a).cmp(&key(&b)));
        }

        #[test]
        fn list_positions_put_newest_first(
            a in timestamp(), b in timestamp(), ia in any::<u128>(), ib in any::<u128>()
        ) {
            let (ida, idb) = (Uuid::from_u128(ia), Uuid::from_u128(ib));
            let pa = ListPosition::new(&a, &ida);
            let pb = ListPosition::new(&b, &idb);
            let expected = key(&b).cmp(&key(&a)).then(ida.cmp(&idb));
            prop_assert_eq!(pa.cmp(&pb), expected);
            prop_assert_eq!(pa.release_id(), ida);
            prop_assert_eq!(pa.publish_time(), a);
        }

        #[test]
        fn successor_sorts_right_after(a in timestamp(), b in timestamp(), ia in any::<u128>(), ib in any::<u128>()) {
            let pa = ListPosition::new(&a, &Uuid::from_u128(ia));
            let pb = ListPosition::new(&b, &Uuid::from_u128(ib));
            let succ = pa.successor();
            prop_assert!(pa.0.as_slice() < succ.as_slice());
            if pb > pa {
                prop_assert!(succ.as_slice() <= pb.0.as_slice());
            }
        }

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
            prop_assert_eq!(ka.cmp(&kb), key(&a).cmp(&key(&b)));
            prop_assert_eq!(parse_embargo_key(&ka), Some((a, id)));
        }

        #[test]
        fn commit_time_keys_sort_by_time_then_seq(a in timestamp(), b in timestamp(), sa in any::<u64>(), sb in any::<u64>()) {
            let (ka, kb) = (commit_time_key(&a, sa), commit_time_key(&b, sb));
            prop_assert_eq!(ka.cmp(&kb), key(&a).cmp(&key(&b)).then(sa.cmp(&sb)));
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
