//! Page tokens: for `ListPressReleases` the list position of the last
//! release returned, for `SearchPressReleases` the offset of the next
//! result; with a fingerprint of the query, checksummed and
//! base64url-encoded. List paging resumes after a position, so releases
//! created meanwhile (which sort elsewhere) never cause repeats or skips.
//! Tokens are opaque to callers; one that was not made by us, or that is
//! replayed with another query, is rejected.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use prost::Message;

use crate::store::ListPosition;

const VERSION: u8 = 1;

#[derive(Clone, PartialEq, prost::Message)]
struct PageToken {
    #[prost(bytes = "vec", tag = "1")]
    query: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    position: Vec<u8>,
    #[prost(uint64, tag = "3")]
    offset: u64,
}

/// Encodes a token for resuming after `position` with the same query.
pub fn encode(query: [u8; 8], position: &ListPosition) -> String {
    seal(&PageToken {
        query: query.to_vec(),
        position: position.0.to_vec(),
        offset: 0,
    })
}

/// Encodes a token for the results from `offset` on, with the same query.
pub fn encode_offset(query: [u8; 8], offset: u64) -> String {
    seal(&PageToken {
        query: query.to_vec(),
        position: Vec::new(),
        offset,
    })
}

fn seal(token: &PageToken) -> String {
    let payload = token.encode_to_vec();
    let mut bytes = vec![VERSION];
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token this server made.
    Malformed,
    /// Made for another filter.
    OtherQuery,
}

/// Decodes a token made by [`encode`] for the query with fingerprint `query`.
pub fn decode(token: &str, query: [u8; 8]) -> Result<ListPosition, TokenError> {
    let decoded = open(token, query)?;
    ListPosition::from_slice(&decoded.position).ok_or(TokenError::Malformed)
}

/// Decodes a token made by [`encode_offset`] for the query with fingerprint
/// `query`.
pub fn decode_offset(token: &str, query: [u8; 8]) -> Result<u64, TokenError> {
    let decoded = open(token, query)?;
    if !decoded.position.is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(decoded.offset)
}

fn open(token: &str, query: [u8; 8]) -> Result<PageToken, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| TokenError::Malformed)?;
    let (&version, rest) = bytes.split_first().ok_or(TokenError::Malformed)?;
    let (sum, payload) = rest.split_first_chunk::<4>().ok_or(TokenError::Malformed)?;
    if version != VERSION || u32::from_le_bytes(*sum) != crc32fast::hash(payload) {
        return Err(TokenError::Malformed);
    }
    let decoded = PageToken::decode(payload).map_err(|_| TokenError::Malformed)?;
    if decoded.query != query {
        return Err(TokenError::OtherQuery);
    }
    Ok(decoded)
}

impl TokenError {
    /// The invalid-argument error for a `page_token` field.
    pub fn to_domain(&self) -> super::DomainError {
        super::DomainError::invalid(
            "page_token",
            match self {
                TokenError::Malformed => "is not a page token from this service",
                TokenError::OtherQuery => {
                    "was issued for another query or filter; send the same ones with every page"
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn tokens_round_trip(query in any::<[u8; 8]>(), position in any::<[u8; 28]>()) {
            let position = ListPosition(position);
            let token = encode(query, &position);
            prop_assert_eq!(decode(&token, query), Ok(position));
        }

        #[test]
        fn offset_tokens_round_trip_and_are_not_list_tokens(query in any::<[u8; 8]>(), offset in any::<u64>()) {
            let token = encode_offset(query, offset);
            prop_assert_eq!(decode_offset(&token, query), Ok(offset));
            prop_assert_eq!(decode(&token, query), Err(TokenError::Malformed));
        }

        #[test]
        fn tokens_are_bound_to_their_query(a in any::<[u8; 8]>(), b in any::<[u8; 8]>(), position in any::<[u8; 28]>()) {
            prop_assume!(a != b);
            let token = encode(a, &ListPosition(position));
            prop_assert_eq!(decode(&token, b), Err(TokenError::OtherQuery));
        }

        #[test]
        fn strings_we_did_not_make_are_rejected(token in "\\PC{0,64}", query in any::<[u8; 8]>()) {
            prop_assert_eq!(decode(&token, query), Err(TokenError::Malformed));
        }

        #[test]
        fn altered_tokens_are_rejected(
            query in any::<[u8; 8]>(),
            position in any::<[u8; 28]>(),
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let token = encode(query, &ListPosition(position));
            let mut bytes = URL_SAFE_NO_PAD.decode(&token).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
            prop_assert!(decode(&URL_SAFE_NO_PAD.encode(bytes), query).is_err());
        }
    }
}
