//! The filter flags shared by `list`, `watch`, `search`, `stats` and
//! `export`, the start and time flags shared by `watch` and `subscription
//! create`, and the times they take.

use crate::proto::{Timestamp, v1::PressReleaseFilter};

/// Where a watch or a new subscription starts, and the publish times it
/// takes: `--from-beginning`, `--after CURSOR`, `--since TIME` (default:
/// from now), `--published-after`, `--published-before`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct StartArgs {
    /// Only releases published at or after this time (`--after` names a
    /// cursor here).
    #[arg(long, value_parser = parse_time)]
    pub published_after: Option<Timestamp>,
    /// Only releases published before this time.
    #[arg(long, value_parser = parse_time)]
    pub published_before: Option<Timestamp>,
    /// Start with the whole change log (default: from now).
    #[arg(long, conflicts_with_all = ["after", "since"])]
    pub from_beginning: bool,
    /// Start after this cursor.
    #[arg(long, conflicts_with = "since")]
    pub after: Option<String>,
    /// Start with the changes committed at or after this time.
    #[arg(long, value_parser = parse_time)]
    pub since: Option<Timestamp>,
}

/// Where a stream starts, as the flags say.
#[derive(Clone, Debug, PartialEq)]
pub enum StartAt {
    /// The beginning of the change log.
    Beginning,
    /// From now on.
    Now,
    /// After this cursor.
    AfterCursor(String),
    /// The changes committed at or after this time.
    Time(Timestamp),
}

impl StartArgs {
    /// Where to start.
    pub fn start(&self) -> StartAt {
        match (&self.after, self.since) {
            (Some(cursor), _) => StartAt::AfterCursor(cursor.clone()),
            (None, Some(time)) => StartAt::Time(time),
            (None, None) if self.from_beginning => StartAt::Beginning,
            (None, None) => StartAt::Now,
        }
    }

    /// The filter of `facets` within the publish-time window.
    pub fn to_filter(&self, facets: &FacetArgs) -> Option<PressReleaseFilter> {
        facets.to_filter(self.published_after, self.published_before)
    }
}

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
