//! The facets a filtered `List` can select on, and how their values are
//! normalised. Index entries and filter values go through the same
//! [`Facet::normalize`], so that matching ignores case everywhere.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::proto::v1::PressRelease;

/// A field of a press release that has a secondary index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Facet {
    /// `channels`.
    Channel = 1,
    /// `dateline.country_code`.
    Country = 2,
    /// `language`, indexed under the tag and each of its prefixes.
    Language = 3,
    /// `issuer.name`.
    Issuer = 4,
    /// `subjects`.
    Subject = 5,
    /// `industries`.
    Industry = 6,
    /// `issuer.tickers`, indexed as `SYMBOL` and `EXCHANGE:SYMBOL`.
    Ticker = 7,
}

impl Facet {
    /// Every facet, in the order their index prefixes sort.
    pub const ALL: [Facet; 7] = [
        Facet::Channel,
        Facet::Country,
        Facet::Language,
        Facet::Issuer,
        Facet::Subject,
        Facet::Industry,
        Facet::Ticker,
    ];

    /// The byte that names this facet in index keys.
    pub fn tag(self) -> u8 {
        self as u8
    }

    /// The form a value of this facet takes in the index.
    pub fn normalize(self, value: &str) -> String {
        value.trim().to_lowercase()
    }
}

/// Every `(facet, normalised value)` a press release is indexed under.
pub fn facet_values(release: &PressRelease) -> BTreeSet<(Facet, String)> {
    let mut out = BTreeSet::new();
    let mut add = |facet: Facet, value: &str| {
        let value = facet.normalize(value);
        if !value.is_empty() {
            out.insert((facet, value));
        }
    };
    for channel in &release.channels {
        add(Facet::Channel, channel);
    }
    for subject in &release.subjects {
        add(Facet::Subject, subject);
    }
    for industry in &release.industries {
        add(Facet::Industry, industry);
    }
    if let Some(dateline) = &release.dateline {
        add(Facet::Country, &dateline.country_code);
    }
    // `en-GB-oxendict` is found by `en`, `en-gb` and `en-gb-oxendict`.
    let language = release.language.trim();
    for (end, _) in language.match_indices('-') {
        add(Facet::Language, &language[..end]);
    }
    add(Facet::Language, language);
    if let Some(issuer) = &release.issuer {
        add(Facet::Issuer, &issuer.name);
        for ticker in &issuer.tickers {
            if ticker.symbol.trim().is_empty() {
                continue;
            }
            add(Facet::Ticker, &ticker.symbol);
            if !ticker.exchange.trim().is_empty() {
                add(
                    Facet::Ticker,
                    &format!("{}:{}", ticker.exchange.trim(), ticker.symbol.trim()),
                );
            }
        }
    }
    out
}

/// A stable 8-byte hash of a normalised facet value, as the change log keeps
/// it (the log never holds the values themselves).
pub fn facet_hash(facet: Facet, value: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update([facet.tag()])
        .chain_update(value.as_bytes())
        .finalize();
    let mut out = [0; 8];
    out.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(out)
}

/// The sorted hashes of facet values already worked out.
pub fn hashes_of(values: &BTreeSet<(Facet, String)>) -> Vec<u64> {
    let mut out: Vec<u64> = values
        .iter()
        .map(|(facet, value)| facet_hash(*facet, value))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::{Dateline, Organization, Ticker};

    #[test]
    fn indexes_every_facet_normalised() {
        let release = PressRelease {
            channels: vec!["Business".into(), " business ".into(), "Tech".into()],
            language: "en-GB".into(),
            dateline: Some(Dateline {
                country_code: "AZ".into(),
                ..Default::default()
            }),
            issuer: Some(Organization {
                name: "Acme Corp".into(),
                tickers: vec![Ticker {
                    exchange: "NASDAQ".into(),
                    symbol: "ACME".into(),
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let values: Vec<_> = facet_values(&release).into_iter().collect();
        let expected: Vec<(Facet, String)> = vec![
            (Facet::Channel, "business".into()),
            (Facet::Channel, "tech".into()),
            (Facet::Country, "az".into()),
            (Facet::Language, "en".into()),
            (Facet::Language, "en-gb".into()),
            (Facet::Issuer, "acme corp".into()),
            (Facet::Ticker, "acme".into()),
            (Facet::Ticker, "nasdaq:acme".into()),
        ];
        assert_eq!(values, expected);
    }
}
