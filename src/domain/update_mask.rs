//! Field masks for `UpdatePressRelease` (AIP-134): which top-level fields a
//! request changes, and copying exactly those fields. `source` is fixed when
//! a release is created: a request may name it only to repeat the stored
//! value (the domain refuses any other), so it is not writable.

use crate::proto::FieldMask;

use super::DomainError;
use crate::proto::v1::PressRelease;

/// Fields a caller may change.
pub const WRITABLE: [&str; 16] = [
    "headline",
    "subheadline",
    "summary",
    "body",
    "body_format",
    "language",
    "dateline",
    "issuer",
    "contacts",
    "channels",
    "subjects",
    "industries",
    "keywords",
    "media",
    "publish_time",
    "embargo_time",
];

/// Fields fixed when a release is created: a request may name them (by
/// path, by `*`, or by setting them without a mask) only to repeat the
/// stored value; [`fixed`] tells which a request names.
pub const FIXED: [&str; 1] = ["source"];

/// Fields only the server sets; named in a mask, they are ignored.
const OUTPUT_ONLY: [&str; 7] = [
    "name",
    "state",
    "create_time",
    "update_time",
    "revision",
    "etag",
    "withdrawal_reason",
];

/// The writable fields a request changes. `*` means all of them; an absent
/// or empty mask means the fields set (non-default) in `patch`.
pub fn paths(
    mask: Option<&FieldMask>,
    patch: &PressRelease,
) -> Result<Vec<&'static str>, DomainError> {
    let requested = mask.map(|m| m.paths.as_slice()).unwrap_or_default();
    if requested.is_empty() {
        return Ok(WRITABLE
            .into_iter()
            .filter(|path| is_set(patch, path))
            .collect());
    }
    if requested.iter().any(|p| p == "*") {
        if requested.len() > 1 {
            return Err(DomainError::invalid(
                "update_mask",
                "`*` cannot be combined with other paths",
            ));
        }
        return Ok(WRITABLE.to_vec());
    }
    let mut out = Vec::new();
    for path in requested {
        if let Some(writable) = WRITABLE.iter().find(|w| *w == path) {
            if !out.contains(writable) {
                out.push(*writable);
            }
        } else if !OUTPUT_ONLY.contains(&path.as_str()) && !FIXED.contains(&path.as_str()) {
            return Err(DomainError::invalid(
                "update_mask",
                format!(
                    "unknown or nested path {}; use top-level fields of PressRelease, such as `headline`",
                    crate::text::shown(path)
                ),
            ));
        }
    }
    Ok(out)
}

/// The fixed fields (see [`FIXED`]) a request names: by path, by `*`, or,
/// without a mask, by setting them.
pub fn fixed(mask: Option<&FieldMask>, patch: &PressRelease) -> Vec<&'static str> {
    let requested = mask.map(|m| m.paths.as_slice()).unwrap_or_default();
    FIXED
        .into_iter()
        .filter(|field| {
            if requested.is_empty() {
                is_set(patch, field)
            } else {
                requested.iter().any(|p| p == "*" || p == field)
            }
        })
        .collect()
}

/// Copies the fields named in `paths` from `patch` into `target`.
pub fn apply(target: &mut PressRelease, patch: &PressRelease, paths: &[&str]) {
    for path in paths {
        match *path {
            "headline" => target.headline = patch.headline.clone(),
            "subheadline" => target.subheadline = patch.subheadline.clone(),
            "summary" => target.summary = patch.summary.clone(),
            "body" => target.body = patch.body.clone(),
            "body_format" => target.body_format = patch.body_format,
            "language" => target.language = patch.language.clone(),
            "dateline" => target.dateline = patch.dateline.clone(),
            "issuer" => target.issuer = patch.issuer.clone(),
            "contacts" => target.contacts = patch.contacts.clone(),
            "channels" => target.channels = patch.channels.clone(),
            "subjects" => target.subjects = patch.subjects.clone(),
            "industries" => target.industries = patch.industries.clone(),
            "keywords" => target.keywords = patch.keywords.clone(),
            "media" => target.media = patch.media.clone(),
            "publish_time" => target.publish_time = patch.publish_time,
            "embargo_time" => target.embargo_time = patch.embargo_time,
            _ => {}
        }
    }
}

fn is_set(patch: &PressRelease, path: &str) -> bool {
    match path {
        "source" => patch.source.is_some(),
        "headline" => !patch.headline.is_empty(),
        "subheadline" => !patch.subheadline.is_empty(),
        "summary" => !patch.summary.is_empty(),
        "body" => !patch.body.is_empty(),
        "body_format" => patch.body_format != 0,
        "language" => !patch.language.is_empty(),
        "dateline" => patch.dateline.is_some(),
        "issuer" => patch.issuer.is_some(),
        "contacts" => !patch.contacts.is_empty(),
        "channels" => !patch.channels.is_empty(),
        "subjects" => !patch.subjects.is_empty(),
        "industries" => !patch.industries.is_empty(),
        "keywords" => !patch.keywords.is_empty(),
        "media" => !patch.media.is_empty(),
        "publish_time" => patch.publish_time.is_some(),
        "embargo_time" => patch.embargo_time.is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(paths: &[&str]) -> FieldMask {
        FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn every_writable_path_is_copied_and_detected() {
        let full = PressRelease {
            headline: "h".into(),
            subheadline: "s".into(),
            summary: "s".into(),
            body: "b".into(),
            body_format: 2,
            language: "en".into(),
            dateline: Some(Default::default()),
            issuer: Some(Default::default()),
            contacts: vec![Default::default()],
            channels: vec!["c".into()],
            subjects: vec!["s".into()],
            industries: vec!["i".into()],
            keywords: vec!["k".into()],
            media: vec![Default::default()],
            publish_time: Some(Default::default()),
            embargo_time: Some(Default::default()),
            ..Default::default()
        };
        assert_eq!(paths(None, &full).ok(), Some(WRITABLE.to_vec()));
        let mut target = PressRelease::default();
        apply(&mut target, &full, &WRITABLE);
        assert_eq!(target, full);
    }

    #[test]
    fn masks_select_ignore_and_reject() {
        let patch = PressRelease {
            headline: "new".into(),
            ..Default::default()
        };
        assert_eq!(paths(None, &patch).ok(), Some(vec!["headline"]));
        assert_eq!(
            paths(
                Some(&mask(&["headline", "etag", "channels", "headline"])),
                &patch
            )
            .ok(),
            Some(vec!["headline", "channels"])
        );
        assert_eq!(
            paths(Some(&mask(&["*"])), &patch).ok(),
            Some(WRITABLE.to_vec())
        );
        assert!(paths(Some(&mask(&["issuer.name"])), &patch).is_err());
        assert!(paths(Some(&mask(&["nope"])), &patch).is_err());
        assert!(paths(Some(&mask(&["*", "headline"])), &patch).is_err());
    }

    #[test]
    fn source_is_fixed_and_named_by_path_star_or_value() {
        let patch = PressRelease {
            headline: "new".into(),
            ..Default::default()
        };
        let sourced = PressRelease {
            source: Some(Default::default()),
            ..patch.clone()
        };
        assert_eq!(paths(None, &sourced).ok(), Some(vec!["headline"]));
        assert_eq!(fixed(None, &sourced), vec!["source"]);
        assert!(fixed(None, &patch).is_empty());
        assert_eq!(
            paths(Some(&mask(&["source", "headline"])), &patch).ok(),
            Some(vec!["headline"])
        );
        assert_eq!(fixed(Some(&mask(&["source"])), &patch), vec!["source"]);
        assert_eq!(fixed(Some(&mask(&["*"])), &patch), vec!["source"]);
        assert!(fixed(Some(&mask(&["headline"])), &sourced).is_empty());
    }
}
