//! Cursors: opaque positions in the change log. A cursor names the store it
//! came from (the id chosen when the data dir was created, kept by backups)
//! and a sequence number, checksummed and base64url-encoded, so that a
//! mangled cursor is told apart from one of another server.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

const VERSION: u8 = 1;
const LEN: usize = 1 + 16 + 8 + 4;

/// A position in the change log of one store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The store whose log this is.
    pub store_id: Uuid,
    /// Everything up to and including this sequence number has been seen.
    pub seq: u64,
}

/// A string that is not a cursor.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

impl Cursor {
    /// The opaque string form.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(self.store_id.as_bytes());
        bytes.extend_from_slice(&self.seq.to_be_bytes());
        let sum = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&sum.to_le_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Parses what [`Cursor::encode`] made.
    pub fn decode(text: &str) -> Result<Self, Malformed> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| Malformed)?;
        if bytes.len() != LEN || bytes[0] != VERSION {
            return Err(Malformed);
        }
        let (body, sum) = bytes.split_at(LEN - 4);
        let sum: [u8; 4] = sum.try_into().map_err(|_| Malformed)?;
        if crc32fast::hash(body) != u32::from_le_bytes(sum) {
            return Err(Malformed);
        }
        let store_id = Uuid::from_slice(&body[1..17]).map_err(|_| Malformed)?;
        let seq: [u8; 8] = body[17..].try_into().map_err(|_| Malformed)?;
        Ok(Self {
            store_id,
            seq: u64::from_be_bytes(seq),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn cursors_round_trip(id in any::<u128>(), seq in any::<u64>()) {
            let cursor = Cursor { store_id: Uuid::from_u128(id), seq };
            prop_assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        }

        #[test]
        fn other_strings_are_malformed(text in "\\PC{0,48}") {
            prop_assert_eq!(Cursor::decode(&text), Err(Malformed));
        }

        #[test]
        fn altered_cursors_are_malformed(id in any::<u128>(), seq in any::<u64>(), at in 0usize..LEN, bit in 0u8..8) {
            let cursor = Cursor { store_id: Uuid::from_u128(id), seq };
            let mut bytes = URL_SAFE_NO_PAD.decode(cursor.encode()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            bytes[at] ^= 1 << bit;
            prop_assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode(bytes)), Err(Malformed));
        }
    }
}
