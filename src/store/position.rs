//! Places in the order of `List`, as bytes whose order is list order: what
//! a page token carries, so every engine hands out and reads back the same
//! [`ListPosition`]s. Also the order-preserving encoding of a time that it
//! is built on (engines may reuse it for their own keys).

use crate::proto::Timestamp;
use uuid::Uuid;

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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::compare_times;
    use proptest::prelude::*;

    /// Any time in the range protobuf allows: 0001-01-01 to 9999-12-31.
    pub(crate) fn timestamp() -> impl Strategy<Value = Timestamp> {
        (-62_135_596_800i64..253_402_300_799, 0i32..1_000_000_000)
            .prop_map(|(seconds, nanos)| Timestamp { seconds, nanos })
    }

    proptest! {
        #[test]
        fn time_bytes_round_trip(t in timestamp()) {
            prop_assert_eq!(time_from_bytes(&time_bytes(&t)), t);
        }

        #[test]
        fn time_bytes_preserve_order(a in timestamp(), b in timestamp()) {
            prop_assert_eq!(time_bytes(&a).cmp(&time_bytes(&b)), compare_times(&a, &b));
        }

        #[test]
        fn list_positions_put_newest_first(
            a in timestamp(), b in timestamp(), ia in any::<u128>(), ib in any::<u128>()
        ) {
            let (ida, idb) = (Uuid::from_u128(ia), Uuid::from_u128(ib));
            let pa = ListPosition::new(&a, &ida);
            let pb = ListPosition::new(&b, &idb);
            let expected = compare_times(&b, &a).then(ida.cmp(&idb));
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
    }
}
