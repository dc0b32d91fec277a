//! Who is asking for a feed: the same API keys as the gRPC API, sent as
//! `Authorization: Bearer <key>` or, for feed readers that cannot send
//! headers, as `?key=<key>` (the header wins when both are sent). Every role
//! may read feeds (they never show embargoed releases). Without a keys file
//! authentication is off, as for gRPC (the listener is then loopback-only
//! unless `--insecure`). The key itself is never logged.

use http::{HeaderMap, header};

use super::error::FeedError;
use crate::{
    api_keys::Keys,
    domain::{Caller, Role},
};

/// The role feeds need.
const FEEDS_ROLE: Role = Role::Reader;

/// The caller of a feed request: from the `Authorization` header, else from
/// `key` (the `?key=` parameter); [`Caller::unauthenticated`] when `keys`
/// is `None`.
pub fn authenticate(
    keys: Option<&Keys>,
    headers: &HeaderMap,
    key: Option<&str>,
) -> Result<Caller, FeedError> {
    let Some(keys) = keys else {
        return Ok(Caller::unauthenticated());
    };
    let presented = bearer(headers).or(key).ok_or(FeedError::NoKey)?;
    let caller = keys
        .current()
        .authenticate(presented)
        .ok_or(FeedError::UnknownKey)?;
    // Every role includes the reader's; kept for when roles grow.
    if caller.role < FEEDS_ROLE {
        return Err(FeedError::UnknownKey);
    }
    Ok(caller)
}

/// The key of an `Authorization: Bearer <key>` header (the scheme's case
/// does not matter, RFC 9110 §11.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim())
        .filter(|key| !key.is_empty())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::api_keys::keys_file_line;

    fn keys() -> Result<Keys, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("keys");
        std::fs::write(
            &path,
            keys_file_line("feeds", Role::Reader, "secret-reader"),
        )?;
        Ok(Keys::load(&path)?)
    }

    #[test]
    fn takes_the_header_or_the_parameter() -> Result<(), Box<dyn std::error::Error>> {
        let keys = keys()?;
        let mut headers = HeaderMap::new();
        assert!(matches!(
            authenticate(Some(&keys), &headers, None),
            Err(FeedError::NoKey)
        ));
        assert_eq!(
            authenticate(Some(&keys), &headers, Some("secret-reader"))?.name,
            "feeds"
        );
        assert!(matches!(
            authenticate(Some(&keys), &headers, Some("wrong")),
            Err(FeedError::UnknownKey)
        ));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer secret-reader"),
        );
        assert_eq!(
            authenticate(Some(&keys), &headers, Some("wrong"))?.name,
            "feeds",
            "the header wins"
        );
        assert_eq!(
            authenticate(None, &HeaderMap::new(), None)?,
            Caller::unauthenticated()
        );
        Ok(())
    }
}
