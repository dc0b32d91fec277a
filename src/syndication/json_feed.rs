//! JSON Feed 1.1 (<https://www.jsonfeed.org/version/1.1/>), written with
//! serde: per item the name as `id`, the link as `url`, the headline as
//! `title`, the HTML body as `content_html`, the summary as `summary`,
//! `date_published` and `date_modified`, channels and subjects as `tags`,
//! the issuer in `authors`, the language, and media as `attachments`. What
//! JSON Feed has no field for goes into the `_pressroom` extension object
//! (the spec's way to extend): the dateline, industries and tickers.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::entry::{Entry, FeedInfo};
use crate::proto::v1::Dateline;

/// The feed as a JSON Feed 1.1 document.
pub fn write(info: &FeedInfo, entries: &[Entry<'_>]) -> Result<String, serde_json::Error> {
    let feed = JsonFeed {
        version: "https://jsonfeed.org/version/1.1",
        title: &info.title,
        home_page_url: &info.home_url,
        feed_url: &info.self_url,
        description: &info.description,
        items: entries.iter().map(item).collect(),
    };
    serde_json::to_string(&feed)
}

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: &'a str,
    feed_url: &'a str,
    description: &'a str,
    items: Vec<Item<'a>>,
}

#[derive(Serialize)]
struct Item<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    title: &'a str,
    content_html: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    date_published: String,
    date_modified: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<Author<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    language: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<Attachment<'a>>,
    _pressroom: Extension<'a>,
}

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    url: &'a str,
}

#[derive(Serialize)]
struct Attachment<'a> {
    url: &'a str,
    mime_type: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    title: &'a str,
}

/// What JSON Feed has no field for.
#[derive(Serialize)]
struct Extension<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    dateline: Option<&'a Dateline>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    industries: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tickers: Vec<String>,
}

fn item<'a>(entry: &'a Entry<'a>) -> Item<'a> {
    let release = entry.release;
    let issuer = release.issuer.as_ref();
    Item {
        id: &release.name,
        url: entry.link.as_deref(),
        title: &release.headline,
        content_html: &entry.html,
        summary: entry.summary,
        date_published: rfc3339(entry.published),
        date_modified: rfc3339(entry.updated),
        authors: entry
            .author
            .map(|name| Author {
                name,
                url: issuer.map_or("", |issuer| issuer.website.as_str()),
            })
            .into_iter()
            .collect(),
        tags: entry.categories.clone(),
        language: &release.language,
        attachments: release
            .media
            .iter()
            .filter(|media| !media.url.is_empty() && !media.mime_type.is_empty())
            .map(|media| Attachment {
                url: &media.url,
                mime_type: &media.mime_type,
                title: &media.caption,
            })
            .collect(),
        _pressroom: Extension {
            dateline: release
                .dateline
                .as_ref()
                .filter(|d| **d != Dateline::default()),
            industries: &release.industries,
            tickers: issuer
                .map(|issuer| {
                    issuer
                        .tickers
                        .iter()
                        .map(|t| match t.exchange.as_str() {
                            "" => t.symbol.clone(),
                            exchange => format!("{exchange}:{}", t.symbol),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        },
    }
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
