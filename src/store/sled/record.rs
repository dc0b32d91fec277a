//! What the sled engine writes as values: every value is a CRC-32 of its
//! payload followed by the payload, and is checked when read, so that a
//! damaged value is reported as [`StoreError::Corrupt`] and never returned as
//! if it were good. Payloads are prost messages: the API's `PressRelease` for
//! records, the change log's [`LogEntry`](crate::store::LogEntry), and the
//! small messages below for the unique indexes; counts are little-endian
//! `u64`s.

use prost::Message;

use crate::{proto::v1::PressRelease, store::StoreError};

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
    let (sum, payload) = value.split_first_chunk::<4>().ok_or_else(|| corrupt(key))?;
    if u32::from_le_bytes(*sum) != crc32fast::hash(payload) {
        return Err(corrupt(key));
    }
    Ok(payload)
}

/// Checks a sealed value and decodes the message in it.
pub(crate) fn open_message<M: Message + Default>(
    key: &[u8],
    value: &[u8],
) -> Result<M, StoreError> {
    M::decode(open(key, value)?).map_err(|_| corrupt(key))
}

/// The value stored under a release key: the record and the sequence number
/// of its latest change-log entry.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct StoredRelease {
    #[prost(message, optional, tag = "1")]
    pub release: Option<PressRelease>,
    #[prost(uint64, tag = "2")]
    pub last_seq: u64,
}

/// A `StoredRelease` with the release left encoded.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct StoredEncoded {
    #[prost(bytes = "bytes", tag = "1")]
    pub release: bytes::Bytes,
    #[prost(uint64, tag = "2")]
    pub last_seq: u64,
}

/// The fields of a `PressRelease` a stream selects on; decoding only them
/// skips the rest unread (no UTF-8 checks, no allocations).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ReleaseHead {
    #[prost(int32, tag = "19")]
    pub state: i32,
    #[prost(int64, tag = "22")]
    pub revision: i64,
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

/// A `StoredRelease` encoded from a borrowed record (no copy of it first),
/// sealed (encoded in place after room for the checksum: no second copy).
pub(crate) fn seal_stored(release: &PressRelease, last_seq: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + release.encoded_len() + 16);
    out.extend_from_slice(&[0; 4]);
    prost::encoding::message::encode(1, release, &mut out);
    prost::encoding::uint64::encode(2, &last_seq, &mut out);
    let sum = crc32fast::hash(&out[4..]).to_le_bytes();
    out[..4].copy_from_slice(&sum);
    out
}

/// The release inside a stored record, which must be there.
pub(crate) fn unwrap_record(key: &[u8], stored: StoredRelease) -> Result<PressRelease, StoreError> {
    stored.release.ok_or_else(|| corrupt(key))
}

/// Checks a sealed count and decodes it.
pub(crate) fn decode_count(key: &[u8], value: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = open(key, value)?.try_into().map_err(|_| corrupt(key))?;
    Ok(u64::from_le_bytes(bytes))
}

/// The error for a damaged value (or key) under `key`.
pub(crate) fn corrupt(key: &[u8]) -> StoreError {
    StoreError::Corrupt {
        key: key.escape_ascii().to_string(),
    }
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
    fn a_record_sealed_in_place_opens_as_sealed_after() {
        let release = PressRelease {
            headline: "Sealed".into(),
            ..Default::default()
        };
        let sealed = seal_stored(&release, 7);
        let stored: Result<StoredRelease, _> = open_message(b"k", &sealed);
        assert_eq!(
            stored.ok(),
            Some(StoredRelease {
                release: Some(release),
                last_seq: 7
            })
        );
    }

    #[test]
    fn short_values_are_corrupt() {
        assert!(matches!(
            open(b"k", &[1, 2]),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
