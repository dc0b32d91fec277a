//! The filter flags shared by `list`, `watch`, `search`, `stats` and
//! `export`, and the times they take.

use crate::proto::{Timestamp, v1::PressReleaseFilter};

/// `--channel`, `--country`, ..., `--after`, `--before`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct FilterArgs {
    /// The field filters.
    #[command(flatten)]
    pub facets: FacetArgs,
    /// Only published at or after this time (RFC 3339, or a day `YYYY-MM-DD`).
    #[arg(long, value_parser = parse_time)]
    pub after: Option<Timestamp>,
    /// Only published before this time (RFC 3339, or a day `YYYY-MM-DD`).
    #[arg(long, value_parser = parse_time)]
    pub before: Option<Timestamp>,
}

impl FilterArgs {
    /// The filter, or `None` when no flag was given.
    pub fn to_filter(&self) -> Option<PressReleaseFilter> {
        self.facets.to_filter(self.after, self.before)
    }
}

/// `--channel`, `--country`, `--language`, `--issuer`, `--subject`,
/// `--industry`, `--ticker`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct FacetArgs {
    /// Only these channels (repeatable; any of them).
    #[arg(long = "channel")]
    pub channels: Vec<String>,
    /// Only these countries of the dateline, ISO 3166-1 alpha-2 (repeatable).
    #[arg(long = "country")]
    pub countries: Vec<String>,
    /// Only these languages, BCP-47; `en` includes `en-GB` (repeatable).
    #[arg(long = "language")]
    pub languages: Vec<String>,
    /// Only these issuers, by name (repeatable).
    #[arg(long = "issuer")]
    pub issuers: Vec<String>,
    /// Only these subjects (repeatable).
    #[arg(long = "subject")]
    pub subjects: Vec<String>,
    /// Only these industries (repeatable).
    #[arg(long = "industry")]
    pub industries: Vec<String>,
    /// Only these tickers, `SYMBOL` or `EXCHANGE:SYMBOL` (repeatable).
    #[arg(long = "ticker")]
    pub tickers: Vec<String>,
}

impl FacetArgs {
    /// The filter with a publish-time window, or `None` when nothing is set.
    pub fn to_filter(
        &self,
        after: Option<Timestamp>,
        before: Option<Timestamp>,
    ) -> Option<PressReleaseFilter> {
        let filter = PressReleaseFilter {
            channels: self.channels.clone(),
            countries: self.countries.clone(),
            languages: self.languages.clone(),
            issuers: self.issuers.clone(),
            subjects: self.subjects.clone(),
            industries: self.industries.clone(),
            tickers: self.tickers.clone(),
            publish_time_after: after,
            publish_time_before: before,
        };
        (filter != PressReleaseFilter::default()).then_some(filter)
    }
}

/// Parses `2026-11-27T09:00:00Z` or a day, `2026-11-27` (midnight UTC).
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    let instant = text
        .parse::<jiff::Timestamp>()
        .or_else(|_| {
            text.parse::<jiff::civil::Date>()
                .and_then(|d| d.to_zoned_datetime(jiff::tz::TimeZone::UTC))
                .map(|z| z.timestamp())
        })
        .map_err(|_| {
            format!("{text:?} is not a time like 2026-11-27T09:00:00Z or a day like 2026-11-27")
        })?;
    Ok(Timestamp {
        seconds: instant.as_second(),
        nanos: instant.subsec_nanosecond(),
    })
}
