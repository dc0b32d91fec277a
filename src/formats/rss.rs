//! RSS 2.0, RSS 1.0 and Atom feeds, read the way a news editor reads a
//! wire's feed. feed-rs parses the feed (encodings, content types, links,
//! media); a second pass over the XML reads what feed-rs does not keep: the
//! dates as written (so an odd one is read leniently or reported for its
//! item, never replaced by "now"), category domains, per-item language,
//! Dublin Core and vendor namespaces.
//!
//! The mapping:
//! - headline, summary: plain text, entities decoded (also double-escaped
//!   ones such as `R&amp;amp;D`);
//! - body: `content:encoded` (or Atom content), else the description, as
//!   HTML; its lead gives the dateline for the common wire patterns;
//! - categories: `EXCHANGE:SYMBOL` (or a `…/stock` domain) → issuer tickers,
//!   ISINs (or an `…/ISIN` domain) → issuer securities, the rest → channels;
//!   listings in the lead (`(NYSE: DIN)`) → tickers when no category named
//!   one;
//! - Dublin Core: `subject` → subjects, `keyword` → keywords, `contributor`
//!   → issuer, `language` → language, `date`/`modified` → times; other
//!   namespaces by local name: `industry` → industries, `subject` →
//!   subjects, `keyword(s)`/`tag` → keywords, `company`/`organization`/
//!   `issuer` → issuer, `ticker`/`symbol`/`stock` → tickers, `isin`;
//! - `source`: provider (the hint, else the feed's host), the guid/id, the
//!   link, and as version the item's last-modified (else published) time in
//!   seconds, so a re-published item updates its press release.

use feed_rs::model::{Entry, Text};

use super::{
    FeedError, FeedItem, dateline, dates, decode_text, host_of, http_url, language, parse_xml,
    plain_text, push_unique,
    securities::{self, add_isin, add_ticker},
    slug, source,
};
use crate::proto::{
    Timestamp,
    v1::{MediaAsset, Organization, PressRelease, Ticker, press_release::BodyFormat},
};

const ATOM: &str = "http://www.w3.org/2005/Atom";
const XML: &str = "http://www.w3.org/XML/1998/namespace";

/// How much of the body's text is searched for listings.
const LEAD_TEXT_CHARS: usize = 2_000;

/// Parses an RSS or Atom feed. `provider_hint` names the source (for
/// example `ein-presswire`); without it the feed's site host is used.
pub fn parse(bytes: &[u8], provider_hint: Option<&str>) -> Result<Vec<FeedItem>, FeedError> {
    let feed = feed_rs::parser::parse(bytes)?;
    let provider = provider_hint
        .map(str::to_string)
        .or_else(|| feed.links.iter().find_map(|link| host_of(&link.href)))
        .or_else(|| feed.title.as_ref().map(|t| slug(&t.content)))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "feed".to_string());
    let text = String::from_utf8_lossy(bytes);
    let raw = raw_items(&text);
    let feed_language = feed.language.clone();
    let count = feed.entries.len();
    Ok(feed
        .entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let found = raw.as_ref().and_then(|raw| {
                raw.iter()
                    .find(|r| r.id.as_deref() == Some(entry.id.as_str()))
                    .or_else(|| (raw.len() == count).then(|| &raw[i]))
            });
            convert(entry, found, &provider, feed_language.as_deref())
        })
        .collect())
}

/// What the second pass reads of one item.
#[derive(Debug, Default)]
struct RawItem {
    id: Option<String>,
    published: Option<String>,
    updated: Option<String>,
    language: Option<String>,
    /// Term (or label) and domain (or scheme).
    categories: Vec<(String, Option<String>)>,
    subjects: Vec<String>,
    industries: Vec<String>,
    keywords: Vec<String>,
    issuer: Option<String>,
    tickers: Vec<String>,
    isins: Vec<String>,
}

/// Reads every item's raw elements; `None` when the feed is not XML that a
/// strict parser accepts (feed-rs's values are used then).
fn raw_items(text: &str) -> Option<Vec<RawItem>> {
    let document = parse_xml(text).ok()?;
    let items = document.descendants().filter(|n| {
        n.is_element()
            && match n.tag_name().name() {
                "item" => n.tag_name().namespace() != Some(ATOM),
                "entry" => n.tag_name().namespace() == Some(ATOM),
                _ => false,
            }
    });
    Some(items.map(raw_item).collect())
}

fn raw_item(item: roxmltree::Node<'_, '_>) -> RawItem {
    let mut raw = RawItem {
        language: item.attribute((XML, "lang")).map(str::to_string),
        ..Default::default()
    };
    for element in item.children().filter(roxmltree::Node::is_element) {
        let name = element.tag_name().name();
        let namespace = element.tag_name().namespace().unwrap_or_default();
        let value = element
            .text()
            .map(str::trim)
            .unwrap_or_default()
            .to_string();
        let set = |slot: &mut Option<String>| {
            if slot.is_none() && !value.is_empty() {
                *slot = Some(value.clone());
            }
        };
        let dublin_core =
            namespace.contains("purl.org/dc/") || namespace.contains("dublincore.org");
        match (namespace, name) {
            ("" | ATOM, "guid" | "id") => set(&mut raw.id),
            ("", "pubDate") | (ATOM, "published") => set(&mut raw.published),
            (ATOM, "updated") => set(&mut raw.updated),
            ("", "category") => raw.categories.push((
                value.clone(),
                element.attribute("domain").map(str::to_string),
            )),
            (ATOM, "category") => {
                let term = element
                    .attribute("label")
                    .or(element.attribute("term"))
                    .unwrap_or_default();
                raw.categories.push((
                    term.to_string(),
                    element.attribute("scheme").map(str::to_string),
                ));
            }
            (_, "date" | "issued" | "created") if dublin_core => set(&mut raw.published),
            (_, "modified") if dublin_core => set(&mut raw.updated),
            (_, "language") if dublin_core => set(&mut raw.language),
            (_, "subject") if dublin_core => raw.subjects.push(value),
            (_, "keyword" | "keywords") if dublin_core => raw.keywords.push(value),
            (_, "contributor") if dublin_core => set(&mut raw.issuer),
            (_, _) if dublin_core => {}
            // Core RSS, Atom and the common modules feed-rs reads itself.
            ("" | ATOM, _) => {}
            (ns, _)
                if ns.contains("purl.org/rss/1.0")
                    || ns.contains("search.yahoo.com/mrss")
                    || ns.contains("w3.org") => {}
            (_, vendor) => match vendor.to_ascii_lowercase().as_str() {
                "industry" | "industries" => raw.industries.push(value),
                "subject" | "subjects" => raw.subjects.push(value),
                "keyword" | "keywords" | "tag" => raw.keywords.push(value),
                "company" | "organization" | "organisation" | "issuer" => set(&mut raw.issuer),
                "ticker" | "symbol" | "stock" => raw.tickers.push(value),
                "isin" => raw.isins.push(value),
                "language" | "lang" => set(&mut raw.language),
                _ => {}
            },
        }
    }
    raw
}

/// A feed text as plain text.
fn text(text: &Text) -> String {
    if text.content_type.as_str().contains("html") {
        plain_text(&text.content)
    } else {
        decode_text(&text.content)
    }
}

fn convert(
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

#[cfg(test)]
mod tests {
    use super::*;

    const GLOBENEWSWIRE: &[u8] =
        include_bytes!("../../tests/fixtures/formats/globenewswire-us-2021-02-20.rss");
    const GOV_SCOT: &[u8] = include_bytes!("../../tests/fixtures/formats/gov-scot-news.rss");

    fn releases(bytes: &[u8]) -> Vec<PressRelease> {
        let items = parse(bytes, None).unwrap_or_else(|e| panic!("{e}"));
        items
            .into_iter()
            .map(|i| i.release.unwrap_or_else(|why| panic!("{why}")))
            .collect()
    }

    fn pairs(issuer: &Option<Organization>) -> Vec<String> {
        let issuer = issuer.clone().unwrap_or_default();
        issuer
            .tickers
            .iter()
            .map(|t| format!("{}:{}", t.exchange, t.symbol))
            .chain(
                issuer
                    .securities
                    .iter()
                    .map(|s| format!("{} {}", s.scheme, s.value)),
            )
            .collect()
    }

    #[test]
    fn globenewswire_as_an_editor_reads_it() {
        let all = releases(GLOBENEWSWIRE);
        assert_eq!(all.len(), 5);
        let ebix = &all[1];
        assert_eq!(
            ebix.headline,
            "Ebix Shares Strong Business Outlook and Discusses Recent Events"
        );
        assert_eq!(pairs(&ebix.issuer), ["NASDAQ:EBIX", "ISIN US2787152063"]);
        assert_eq!(
            ebix.issuer.as_ref().map(|i| i.name.as_str()),
            Some("Ebix, Inc."),
            "dc:contributor is the issuer"
        );
        assert_eq!(
            ebix.channels,
            ["Calendar of Events"],
            "no ticker among channels"
        );
        assert_eq!(ebix.keywords, ["India"]);
        assert_eq!(ebix.language, "en");
        let dateline = ebix.dateline.clone().unwrap_or_default();
        assert_eq!(
            (
                dateline.text.as_str(),
                dateline.locality.as_str(),
                dateline.region.as_str(),
                dateline.country_code.as_str()
            ),
            (
                "JOHNS CREEK, Ga., Feb. 19, 2021",
                "Johns Creek",
                "Georgia",
                "US"
            )
        );
        // `Sat, 20 Feb 2021 00:05 GMT`: no seconds; the version is the
        // dc:modified time, a minute later.
        assert_eq!(ebix.publish_time.map(|t| t.seconds), Some(1_613_779_500));
        let source = ebix.source.clone().unwrap_or_default();
        assert_eq!(source.provider, "globenewswire.com");
        assert_eq!(source.version, 1_613_779_560);
        assert!(source.item_id.ends_with(
            "/2179136/0/en/Ebix-Shares-Strong-Business-Outlook-and-Discusses-Recent-Events.html"
        ));
        assert!(ebix.body.starts_with("<p align=\"justify\">JOHNS CREEK"));

        let access = &all[4];
        assert_eq!(
            access.headline,
            "Access-Power & Co., Inc. is pleased to announce the Company has hired Ben Borgers as its PCAOB/CPA Auditor"
        );
        assert_eq!(
            pairs(&access.issuer),
            ["OTHER OTC:ACCR", "ISIN US00431N1081"]
        );
        let dateline = access.dateline.clone().unwrap_or_default();
        assert_eq!(
            (dateline.locality.as_str(), dateline.region.as_str()),
            ("Grand Haven", "Michigan")
        );

        let fsis = &all[2];
        let dateline = fsis.dateline.clone().unwrap_or_default();
        assert_eq!(
            (
                dateline.locality.as_str(),
                dateline.region.as_str(),
                dateline.country_code.as_str()
            ),
            ("Washington", "District of Columbia", "US")
        );
        assert_eq!(
            fsis.issuer.as_ref().map(|i| i.name.as_str()),
            Some("USDA Food Safety and Inspection Service")
        );

        let naropa = &all[3];
        assert_eq!(naropa.media.len(), 1);
        assert_eq!(naropa.media[0].mime_type, "image/jpeg");
        assert_eq!(
            naropa.dateline.as_ref().map(|d| d.region.as_str()),
            Some("Colorado")
        );
        let rail = &all[0];
        assert_eq!(rail.issuer.as_ref().map(|i| i.tickers.len()), Some(0));
        assert_eq!(
            rail.dateline
                .as_ref()
                .map(|d| (d.locality.as_str(), d.country_code.as_str())),
            Some(("Washington", "US"))
        );
    }

    #[test]
    fn a_government_newsroom_feed() {
        let all = releases(GOV_SCOT);
        assert_eq!(all.len(), 2);
        let first = &all[0];
        assert_eq!(
            first.headline,
            "Scotland's future must be decided by the people who live here"
        );
        assert_eq!(first.channels, ["Communities", "Constitution"]);
        assert_eq!(first.language, "en");
        // `Tue, 27 Jun 2017 15:05:00 +0100`
        assert_eq!(first.publish_time.map(|t| t.seconds), Some(1_498_572_300));
        assert!(
            first
                .summary
                .starts_with("First Minister Nicola Sturgeon today gave a statement")
        );
        assert_eq!(
            first.body,
            "<p>We don't need a referendum to leave the EU, we can just leave.</p>"
        );
        assert_eq!(
            first.issuer, None,
            "dc:creator is a CMS user, not an issuer"
        );
        assert_eq!(first.dateline, None, "no wire credit, no dateline");
        let source = first.source.clone().unwrap_or_default();
        assert_eq!(
            (source.provider.as_str(), source.item_id.as_str()),
            ("news.gov.scot", "f5efd7f6-e9e4-4e70-a47c-e8dec8cb0400")
        );
        let second = &all[1];
        assert!(
            second.body.starts_with("GP practices in some of Scotland"),
            "the description is the body"
        );
        assert!(second.body.contains("£4.8 million"));
    }

    /// An RSS item around the given extra elements and date.
    fn feed(item: &str) -> String {
        format!(
            r#"<?xml version="1.0"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:prn="http://www.prnewswire.com/rss/ns">
<channel><title>Wire</title><link>https://wire.example/</link><language>en-us</language>
<item><title>Acme R&amp;amp;D opens a lab</title><guid>g-1</guid><description>Text.</description>{item}</item>
</channel></rss>"#
        )
    }

    #[test]
    fn odd_dates_are_read_or_reported_per_item() {
        for (date, seconds) in [
            ("Tue, 01 Oct 2024 13:00:00 UT", 1_727_787_600),
            ("Tue, 01 Oct 2024 09:00:00 EDT", 1_727_787_600),
            ("Mon, 30 Sep 2024 24:00:00 GMT", 1_727_740_800),
            ("Tue, 01 Oct 2024 13:00 +0000", 1_727_787_600),
        ] {
            let items = parse(feed(&format!("<pubDate>{date}</pubDate>")).as_bytes(), None)
                .unwrap_or_default();
            let release = items[0].release.clone().unwrap_or_default();
            assert_eq!(
                release.publish_time.map(|t| t.seconds),
                Some(seconds),
                "{date}"
            );
        }
        let items = parse(
            feed("<pubDate>the first of October</pubDate>").as_bytes(),
            None,
        )
        .unwrap_or_default();
        let why = items[0].release.clone().err().unwrap_or_default();
        assert!(
            why.contains("pubDate") && why.contains("the first of October"),
            "{why}"
        );
        let undated = parse(feed("").as_bytes(), None).unwrap_or_default();
        assert_eq!(
            undated[0]
                .release
                .as_ref()
                .ok()
                .and_then(|r| r.publish_time),
            None
        );
        assert!(undated[0].notes.iter().any(|n| n.contains("no date")));
    }

    #[test]
    fn entities_language_and_vendor_namespaces() {
        let items = parse(
            feed(
                "<dc:language>fr</dc:language><prn:industry>BAN</prn:industry>\
                 <prn:subject>ERN</prn:subject><prn:company>Acme SA</prn:company>\
                 <prn:ticker>EPA:ACME</prn:ticker><prn:isin>US7046991078</prn:isin>\
                 <category>NYSE:ACME</category><category>Banking</category>",
            )
            .as_bytes(),
            None,
        )
        .unwrap_or_default();
        let release = items[0].release.clone().unwrap_or_default();
        assert_eq!(release.headline, "Acme R&D opens a lab");
        assert_eq!(
            release.language, "fr",
            "the item's language beats the feed's"
        );
        assert_eq!(release.industries, ["BAN"]);
        assert_eq!(release.subjects, ["ERN"]);
        assert_eq!(release.channels, ["Banking"]);
        assert_eq!(
            pairs(&release.issuer),
            ["NYSE:ACME", "EPA:ACME", "ISIN US7046991078"]
        );
        assert_eq!(release.issuer.map(|i| i.name), Some("Acme SA".to_string()));
    }
}
