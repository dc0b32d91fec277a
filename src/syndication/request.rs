//! What a feed request asks for: the format (from the path) and the query
//! parameters, read strictly. The filter parameters are the fields of
//! `PressReleaseFilter`, one value per parameter and repeatable:
//! `channel`, `country`, `language`, `issuer`, `subject`, `industry`,
//! `ticker`; `q` is a query in the search syntax; `limit` is 1 to 500
//! (default 50; larger values are treated as 500, as `List` does); `key`
//! is the API key for readers that cannot send headers. An unknown or
//! repeated single parameter is refused rather than ignored, so that a
//! misspelt filter never silently widens a feed.

use url::form_urlencoded;

use super::error::FeedError;
use crate::{
    domain::{self, DEFAULT_PAGE_SIZE, DomainError, MAX_PAGE_SIZE},
    proto::v1::PressReleaseFilter,
    store::ListQuery,
};

/// A feed format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// RSS 2.0 with `content:encoded`.
    Rss,
    /// Atom (RFC 4287).
    Atom,
    /// JSON Feed 1.1.
    Json,
}

impl Format {
    /// Every format, in the order the metrics list them.
    pub const ALL: [Format; 3] = [Format::Rss, Format::Atom, Format::Json];

    /// The format a path segment names.
    pub fn parse(segment: &str) -> Option<Self> {
        match segment {
            "rss" => Some(Self::Rss),
            "atom" => Some(Self::Atom),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    /// The path segment (and metrics label) of the format.
    pub fn label(self) -> &'static str {
        match self {
            Self::Rss => "rss",
            Self::Atom => "atom",
            Self::Json => "json",
        }
    }

    /// The media type of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Rss => "application/rss+xml; charset=utf-8",
            Self::Atom => "application/atom+xml; charset=utf-8",
            Self::Json => "application/feed+json; charset=utf-8",
        }
    }
}

/// The query parameters of a request, decoded, in the order sent.
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Decodes a raw query string (`None`: there was none).
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            raw.map(|raw| {
                form_urlencoded::parse(raw.as_bytes())
                    .map(|(name, value)| (name.into_owned(), value.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    /// The API key sent as `?key=`, if any (the first, if several).
    pub fn key(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name == "key")
            .map(|(_, value)| value.as_str())
    }
}

/// A checked feed request.
#[derive(Clone, Debug)]
pub struct FeedRequest {
    /// The format asked for.
    pub format: Format,
    /// The filter, as `List` and `Search` take it.
    pub filter: PressReleaseFilter,
    /// The filter as the store's query: checked and normalised, so equal
    /// filters spelt differently give equal validators.
    pub query: ListQuery,
    /// The search query, if any.
    pub text: Option<String>,
    /// How many releases at most.
    pub limit: usize,
    /// The parameters as sent, less the key: the feed's own link.
    pub public_query: String,
}

impl FeedRequest {
    /// Reads and checks the parameters: an unknown parameter, a repeated
    /// single one or a bad `limit` is a [`FeedError::Parameter`]; a bad
    /// filter or query is the domain's error, as `List` and `Search` give it.
    pub fn new(format: Format, params: &Params) -> Result<Self, FeedError> {
        let mut filter = PressReleaseFilter::default();
        let mut text = None;
        let mut limit = None;
        let mut public = form_urlencoded::Serializer::new(String::new());
        let mut key = None;
        for (name, value) in &params.0 {
            let values = match name.as_str() {
                "channel" => &mut filter.channels,
                "country" => &mut filter.countries,
                "language" => &mut filter.languages,
                "issuer" => &mut filter.issuers,
                "subject" => &mut filter.subjects,
                "industry" => &mut filter.industries,
                "ticker" => &mut filter.tickers,
                "q" => {
                    once(name, &mut text, value.clone())?;
                    public.append_pair(name, value);
                    continue;
                }
                "limit" => {
                    once(name, &mut limit, parse_limit(value)?)?;
                    public.append_pair(name, value);
                    continue;
                }
                "key" => {
                    once(name, &mut key, ())?;
                    continue;
                }
                other => return Err(FeedError::unknown_parameter(other)),
            };
            values.push(value.clone());
            public.append_pair(name, value);
        }
        let query = domain::filter::to_query(Some(&filter), "filter")?;
        if let Some(text) = &text {
            domain::check_query(text)?;
        }
        Ok(Self {
            format,
            filter,
            query,
            text,
            limit: limit.unwrap_or(DEFAULT_PAGE_SIZE),
            public_query: public.finish(),
        })
    }
}

/// Sets a parameter that may be given once.
fn once<T>(name: &str, slot: &mut Option<T>, value: T) -> Result<(), FeedError> {
    if slot.is_some() {
        return Err(FeedError::Parameter {
            name: name.into(),
            problem: "may be given only once".into(),
        });
    }
    *slot = Some(value);
    Ok(())
}

/// `limit`: a whole number from 1; above 500 it is 500.
fn parse_limit(value: &str) -> Result<usize, FeedError> {
    match value.parse::<u64>() {
        Ok(limit) if limit >= 1 => Ok(usize::try_from(limit)
            .unwrap_or(MAX_PAGE_SIZE)
            .min(MAX_PAGE_SIZE)),
        _ => Err(FeedError::Parameter {
            name: "limit".into(),
            problem: format!(
                "must be a whole number from 1 to {MAX_PAGE_SIZE}, got {}",
                crate::text::shown(value)
            ),
        }),
    }
}

impl From<DomainError> for FeedError {
    fn from(error: DomainError) -> Self {
        Self::Domain(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str) -> Result<FeedRequest, FeedError> {
        FeedRequest::new(Format::Rss, &Params::parse(Some(query)))
    }

    #[test]
    fn reads_repeated_filters_the_query_and_the_limit() -> Result<(), FeedError> {
        let feed =
            request("channel=Tech&channel=Business&country=az&q=solar+OR+wind&limit=7&key=k")?;
        assert_eq!(feed.filter.channels, ["Tech", "Business"]);
        assert_eq!(feed.filter.countries, ["az"]);
        assert_eq!(feed.text.as_deref(), Some("solar OR wind"));
        assert_eq!(feed.limit, 7);
        assert_eq!(
            feed.public_query, "channel=Tech&channel=Business&country=az&q=solar+OR+wind&limit=7",
            "the key never appears in the feed's own link"
        );
        assert_eq!(request("")?.limit, 50);
        assert_eq!(request("limit=100000")?.limit, 500);
        Ok(())
    }

    #[test]
    fn equal_filters_spelt_differently_give_equal_queries() -> Result<(), FeedError> {
        let a = request("channel=tech&channel=Business")?;
        let b = request("channel=business&channel=TECH&channel=Tech")?;
        assert_eq!(a.query, b.query);
        Ok(())
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for (query, needle) in [
            ("chanel=Tech", "chanel"),
            ("limit=0", "limit"),
            ("limit=ten", "limit"),
            ("limit=5&limit=6", "only once"),
            ("q=a&q=b", "only once"),
            ("key=a&key=b", "only once"),
            ("country=USA", "filter.countries[0]"),
            ("q=%22unclosed", "query"),
        ] {
            let message = match request(query) {
                Ok(_) => panic!("{query} was accepted"),
                Err(error) => error.to_string(),
            };
            assert!(message.contains(needle), "{query}: {message}");
        }
    }
}
