//! Turns a `PressReleaseFilter` into the store's [`ListQuery`]: values are
//! checked, normalised the way the indexes are, de-duplicated and sorted, so
//! that equal filters give equal queries (and equal page-token fingerprints).

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::{DomainError, validate::Violations};
use crate::{
    proto::{compare_times, v1::PressReleaseFilter},
    store::{Facet, ListQuery},
};

/// Checks a filter and builds the query it stands for; `prefix` is the
/// request field holding it, e.g. `filter`.
pub fn to_query(
    filter: Option<&PressReleaseFilter>,
    prefix: &str,
) -> Result<ListQuery, DomainError> {
    let Some(filter) = filter else {
        return Ok(ListQuery::default());
    };
    let mut v = Violations::default();
    let fields: [(Facet, &str, &[String]); 7] = [
        (Facet::Channel, "channels", &filter.channels),
        (Facet::Country, "countries", &filter.countries),
        (Facet::Language, "languages", &filter.languages),
        (Facet::Issuer, "issuers", &filter.issuers),
        (Facet::Subject, "subjects", &filter.subjects),
        (Facet::Industry, "industries", &filter.industries),
        (Facet::Ticker, "tickers", &filter.tickers),
    ];
    let mut facets = Vec::new();
    for (facet, name, values) in fields {
        let field = format!("{prefix}.{name}");
        v.values(&field, values);
        for (i, value) in values.iter().enumerate() {
            match facet {
                Facet::Country => v.country(&format!("{field}[{i}]"), value.trim()),
                Facet::Language => v.language(&format!("{field}[{i}]"), value.trim()),
                _ => {}
            }
        }
        let normalised: BTreeSet<String> =
            values.iter().map(|value| facet.normalize(value)).collect();
        if !normalised.is_empty() {
            facets.push((facet, normalised.into_iter().collect()));
        }
    }
    let after = format!("{prefix}.publish_time_after");
    v.timestamp(&after, filter.publish_time_after.as_ref());
    v.timestamp(
        &format!("{prefix}.publish_time_before"),
        filter.publish_time_before.as_ref(),
    );
    if let (Some(a), Some(b)) = (&filter.publish_time_after, &filter.publish_time_before)
        && compare_times(a, b).is_gt()
    {
        v.add(after, "must not be later than publish_time_before");
    }
    v.into_result()?;
    Ok(ListQuery {
        facets,
        published_at_or_after: filter.publish_time_after,
        published_before: filter.publish_time_before,
    })
}

/// A short fingerprint of a query (and whatever else a page depends on, in
/// `salt`), carried by page tokens so that a token is only accepted with the
/// request it was made for.
pub fn fingerprint(query: &ListQuery, salt: &str) -> [u8; 8] {
    let digest = Sha256::digest(format!("{query:?}|{salt}").as_bytes());
    let mut out = [0; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_filters_give_equal_queries() -> Result<(), DomainError> {
        let a = PressReleaseFilter {
            channels: vec!["Tech".into(), "business".into(), "tech".into()],
            ..Default::default()
        };
        let b = PressReleaseFilter {
            channels: vec!["Business".into(), "TECH".into()],
            ..Default::default()
        };
        let (qa, qb) = (to_query(Some(&a), "filter")?, to_query(Some(&b), "filter")?);
        assert_eq!(qa, qb);
        assert_eq!(fingerprint(&qa, ""), fingerprint(&qb, ""));
        assert_ne!(fingerprint(&qa, ""), fingerprint(&ListQuery::default(), ""));
        Ok(())
    }

    #[test]
    fn rejects_malformed_codes() {
        let filter = PressReleaseFilter {
            countries: vec!["USA".into()],
            languages: vec!["??".into()],
            ..Default::default()
        };
        let Err(DomainError::InvalidArgument(violations)) = to_query(Some(&filter), "filter")
        else {
            panic!("expected invalid argument");
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["filter.countries[0]", "filter.languages[0]"]);
    }
}
