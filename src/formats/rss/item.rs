//! One feed entry as a press release: feed-rs's entry and, when the feed is
//! strict XML, its raw elements ([`RawItem`]), mapped as the module's
//! documentation says. An item whose date cannot be read fails alone.

use feed_rs::model::{Entry, Text};

use super::raw::RawItem;
use crate::{
    formats::{
        FeedItem, dateline, dates, decode_text, http_url, language, plain_text, push_unique,
        securities::{self, add_isin, add_ticker},
        source,
    },
    proto::{
        Timestamp,
        v1::{MediaAsset, Organization, PressRelease, Ticker, press_release::BodyFormat},
    },
};

/// How much of the body's text is searched for listings.
const LEAD_TEXT_CHARS: usize = 2_000;

/// A feed text as plain text.
fn text(text: &Text) -> String {
    if text.content_type.as_str().contains("html") {
        plain_text(&text.content)
    } else {
        decode_text(&text.content)
    }
}

/// Maps one entry; `raw` is its second-pass elements, when there are.
pub(super) fn convert(
    entry: Entry,
    raw: Option<&RawItem>,
    provider: &str,
    feed_language: Option<&str>,
) -> FeedItem {
    let id = entry.id.clone();
    let mut notes = Vec::new();
    let headline = entry.title.as_ref().map(text).unwrap_or_default();

    // Times: as written, read leniently; an unreadable one fails the item.
    let (published, updated) = match raw {
        Some(raw) => {
            let read = |field: &str, value: &Option<String>| match value {
                Some(value) => dates::parse(value)
                    .map(Some)
                    .map_err(|e| format!("{field}: {e}")),
                None => Ok(None),
            };
            match (
                read("pubDate", &raw.published),
                read("updated", &raw.updated),
            ) {
                (Ok(p), Ok(u)) => (p, u),
                (Err(why), _) | (_, Err(why)) => return FeedItem::failed(id, why),
            }
        }
        None => (
            entry.published.map(|time| Timestamp {
                seconds: time.timestamp(),
                nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
            }),
            entry.updated.map(|time| Timestamp {
                seconds: time.timestamp(),
                nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
            }),
        ),
    };
    let publish_time = published.or(updated);
    if publish_time.is_none() {
        notes.push("no date: the time of import is its publish time".to_string());
    }
    let version = [published, updated]
        .iter()
        .flatten()
        .map(|t| t.seconds)
        .max()
        .unwrap_or(0)
        .max(0);

    let content = entry.content.as_ref().and_then(|c| c.body.clone());
    let (body, summary) = match (content, &entry.summary) {
        (Some(body), summary) => (body, summary.as_ref().map(text).unwrap_or_default()),
        (None, Some(summary)) => (summary.content.clone(), String::new()),
        (None, None) => (String::new(), String::new()),
    };
    let lead: String = plain_text(&body).chars().take(LEAD_TEXT_CHARS).collect();
    let dateline = dateline::from_lead(&lead).map(|lead| lead.dateline);

    let mut issuer = Organization::default();
    let mut channels = Vec::new();
    let categories: Vec<(String, Option<String>)> = match raw {
        Some(raw) => raw.categories.clone(),
        None => entry
            .categories
            .iter()
            .map(|c| {
                (
                    c.label.clone().unwrap_or_else(|| c.term.clone()),
                    c.scheme.clone(),
                )
            })
            .collect(),
    };
    for (term, domain) in &categories {
        let term = decode_text(term);
        let domain = domain.as_deref().unwrap_or_default().to_ascii_lowercase();
        if domain.contains("isin") || securities::isin(&term).is_some() {
            match securities::isin(&term) {
                Some(isin) => add_isin(&mut issuer, isin),
                None => notes.push(format!("{term:?} is not an ISIN")),
            }
        } else if ["stock", "ticker", "symbol"]
            .iter()
            .any(|d| domain.contains(d))
        {
            match securities::ticker_from_category(&term) {
                Some(ticker) => add_ticker(&mut issuer, ticker),
                None if !term.is_empty() && !term.contains(' ') => add_ticker(
                    &mut issuer,
                    Ticker {
                        exchange: String::new(),
                        symbol: term.to_ascii_uppercase(),
                    },
                ),
                None => notes.push(format!("{term:?} is not a listing")),
            }
        } else if let Some(ticker) = securities::ticker_from_category(&term)
            .filter(|t| securities::is_known_exchange(&t.exchange))
        {
            add_ticker(&mut issuer, ticker);
        } else {
            push_unique(&mut channels, &term);
        }
    }
    let (mut subjects, mut industries, mut keywords) = (Vec::new(), Vec::new(), Vec::new());
    if let Some(raw) = raw {
        for value in &raw.subjects {
            push_unique(&mut subjects, value);
        }
        for value in &raw.industries {
            push_unique(&mut industries, value);
        }
        for value in &raw.keywords {
            for keyword in value.split([',', ';']) {
                push_unique(&mut keywords, keyword);
            }
        }
        for value in &raw.tickers {
            match securities::ticker_from_category(value) {
                Some(ticker) => add_ticker(&mut issuer, ticker),
                None if !value.trim().is_empty() => add_ticker(
                    &mut issuer,
                    Ticker {
                        exchange: String::new(),
                        symbol: value.trim().to_ascii_uppercase(),
                    },
                ),
                None => {}
            }
        }
        for value in &raw.isins {
            match securities::isin(value) {
                Some(isin) => add_isin(&mut issuer, isin),
                None => notes.push(format!("{value:?} is not an ISIN")),
            }
        }
        if let Some(name) = &raw.issuer {
            issuer.name = decode_text(name);
        }
    }
    if issuer.tickers.is_empty() {
        for ticker in securities::tickers_in_text(&lead) {
            add_ticker(&mut issuer, ticker);
        }
    }

    let item_language = raw
        .and_then(|r| r.language.clone())
        .or(entry.language.clone());
    let language = item_language
        .as_deref()
        .and_then(language)
        .or_else(|| feed_language.and_then(language))
        .unwrap_or_default();

    let mut media = Vec::new();
    for object in &entry.media {
        let caption = object.title.as_ref().map(text).unwrap_or_default();
        for content in &object.content {
            let Some(url) = content.url.as_ref().and_then(|u| http_url(u.as_str())) else {
                continue;
            };
            if media.len() < crate::domain::validate::MAX_VALUES
                && !media.iter().any(|m: &MediaAsset| m.url == url)
            {
                media.push(MediaAsset {
                    url,
                    mime_type: content
                        .content_type
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                    caption: caption.clone(),
                });
            }
        }
    }

    let url = entry
        .links
        .iter()
        .find_map(|l| http_url(&l.href))
        .unwrap_or_default();
    let has_issuer =
        !issuer.name.is_empty() || !issuer.tickers.is_empty() || !issuer.securities.is_empty();
    let release = PressRelease {
        source: source(provider, &id, &url, version),
        headline,
        summary,
        body,
        body_format: BodyFormat::Html as i32,
        language,
        dateline,
        issuer: has_issuer.then_some(issuer),
        channels,
        subjects,
        industries,
        keywords,
        media,
        publish_time,
        ..Default::default()
    };
    FeedItem::ok(id, release, notes)
}
