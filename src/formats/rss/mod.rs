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
//!
//! [`parse`] reads the feed with feed-rs and the second pass, and pairs
//! each entry with its raw elements; the second pass has a file of its own
//! (`raw.rs`), and so has the mapping of one entry (`item.rs`).

mod item;
mod raw;

#[cfg(test)]
mod tests;

use super::{FeedError, FeedItem, host_of, slug};

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
    let raw = raw::raw_items(&text);
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
            item::convert(entry, found, &provider, feed_language.as_deref())
        })
        .collect())
}
