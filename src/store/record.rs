//! What the store writes as values: every value is a CRC-32 of its payload
//! followed by the payload, and is checked when read, so that a damaged value
//! is reported as [`StoreError::Corrupt`] and never returned as if it were
//! good. Payloads are prost messages: the API's `PressRelease` for records,
//! and the small messages below for the change log and the unique indexes.

use crate::proto::Timestamp;
use prost::Message;

use super::StoreError;

/// Prefixes `payload` with its checksum.
pub(crate) fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Encodes a message and seals it.
pub(crate) fn seal_message(message: &impl Message) -> Vec<u8> {
    seal(&message.encode_to_vec())
}

/// Checks a sealed value and returns its payload.
pub(crate) fn open<'a>(key: &[u8], value: &'a [u8]) -> Result<&'a [u8], StoreError> {
    let corrupt = || StoreError::Corrupt {
        key: key.escape_ascii().to_string(),
    };
    let (sum, payload) = value.split_first_chunk::<4>().ok_or_else(corrupt)?;
    if u32::from_le_bytes(*sum) != crc32fast::hash(payload) {
        return Err(corrupt());
    }
    Ok(payload)
}

/// Checks a sealed value and decodes the message in it.
pub(crate) fn open_message<M: Message + Default>(
    key: &[u8],
    value: &[u8],
) -> Result<M, StoreError> {
    M::decode(open(key, value)?).map_err(|_| StoreError::Corrupt {
        key: key.escape_ascii().to_string(),
    })
}

/// What kind of change a log entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ChangeKind {
    /// Never written.
    Unspecified = 0,
    /// A press release was created.
    Created = 1,
    /// A press release was changed.
    Updated = 2,
    /// An embargoed press release became visible.
    Published = 3,
    /// A press release was withdrawn and its content purged.
    Withdrawn = 4,
}

/// The value stored under a release key: the record and the sequence number
/// of its latest change-log entry.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct StoredRelease {
    #[prost(message, optional, tag = "1")]
    pub release: Option<crate::proto::v1::PressRelease>,
    #[prost(uint64, tag = "2")]
    pub last_seq: u64,
}

/// One entry of the change log. The entry names the release and the revision
/// the change produced; the content is read from the record, so that a
/// withdrawal purges it everywhere. What readers need to decide cheaply
/// whether an entry concerns them rides along: whether the release was
/// visible (published) before and after the change, and 8-byte hashes of its
/// filterable values then (never the values themselves), with the link to
/// the release's previous entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogEntry {
    /// Position in the log: 1, 2, 3, … with no gaps.
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    /// The release changed (16 bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub release_id: Vec<u8>,
    /// The kind of change.
    #[prost(enumeration = "ChangeKind", tag = "3")]
    pub kind: i32,
    /// The release's revision after the change.
    #[prost(int64, tag = "4")]
    pub revision: i64,
    /// When the change was committed.
    #[prost(message, optional, tag = "5")]
    pub commit_time: Option<Timestamp>,
    /// The release's previous entry (0 for a creation).
    #[prost(uint64, tag = "6")]
    pub prev_seq: u64,
    /// Whether the release was published before this change.
    #[prost(bool, tag = "7")]
    pub prev_visible: bool,
    /// Facet hashes of the version before this change, if it was published.
    #[prost(fixed64, repeated, tag = "8")]
    pub prev_facets: Vec<u64>,
    /// Whether the release is published after this change.
    #[prost(bool, tag = "9")]
    pub visible: bool,
    /// Facet hashes of the version after this change, if it is published.
    #[prost(fixed64, repeated, tag = "10")]
    pub facets: Vec<u64>,
}

impl LogEntry {
    /// The kind of change.
    pub fn change_kind(&self) -> ChangeKind {
        ChangeKind::try_from(self.kind).unwrap_or(ChangeKind::Unspecified)
    }
}

/// The value of a source-index entry: which release holds the
/// `(provider, item_id)` pair, and a fingerprint of the content it was
/// created with.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SourceClaim {
    #[prost(bytes = "vec", tag = "1")]
    pub release_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub fingerprint: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sealed_values_open(payload in proptest::collection::vec(any::<u8>(), 0..256)) {
            let sealed = seal(&payload);
            prop_assert_eq!(open(b"k", &sealed).ok(), Some(payload.as_slice()));
        }

        #[test]
        fn any_flipped_bit_is_detected(
            payload in proptest::collection::vec(any::<u8>(), 1..256),
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut sealed = seal(&payload);
            let i = at.index(sealed.len());
            sealed[i] ^= 1 << bit;
            prop_assert!(
                matches!(open(b"k", &sealed), Err(StoreError::Corrupt { .. })),
                "expected the flipped bit to be detected"
            );
        }
    }

    #[test]
    fn short_values_are_corrupt() {
        assert!(matches!(
            open(b"k", &[1, 2]),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
