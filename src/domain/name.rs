//! Resource names: `pressReleases/{id}`, where `{id}` is a UUID in its
//! canonical lower-case hyphenated form.

use uuid::Uuid;

use super::DomainError;

/// The collection part of every name.
pub const COLLECTION: &str = "pressReleases/";

/// The resource name of a release id.
pub fn format(id: &Uuid) -> String {
    format!("{COLLECTION}{}", id.hyphenated())
}

/// Parses a resource name; `field` names the request field for errors.
pub fn parse(field: &str, name: &str) -> Result<Uuid, DomainError> {
    let invalid = || {
        DomainError::invalid(
            field,
            format!(
                "must be `pressReleases/{{id}}` with a lower-case UUID, got {}",
                crate::text::shown(name)
            ),
        )
    };
    if name.is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    let id = name.strip_prefix(COLLECTION).ok_or_else(invalid)?;
    let parsed = Uuid::try_parse(id).map_err(|_| invalid())?;
    if parsed.hyphenated().to_string() != id {
        return Err(invalid());
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_forms() {
        let id = Uuid::now_v7();
        assert_eq!(parse("name", &format(&id)).ok(), Some(id));
        for bad in [
            "",
            "pressReleases/",
            "pressReleases/not-a-uuid",
            "releases/0190b5d2-7b7c-7000-8000-000000000000",
            "pressReleases/0190B5D2-7B7C-7000-8000-000000000000",
            "pressReleases/0190b5d27b7c70008000000000000000",
            "pressReleases/0190b5d2-7b7c-7000-8000-000000000000/x",
        ] {
            assert!(parse("name", bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
