//! The formats press releases are imported from: JSON Lines and JSON files
//! in the proto3 JSON mapping (what `export` writes), and RSS 2.0 / Atom
//! feeds as the wires publish them (parsed by feed-rs). A feed item becomes a
//! press release with `source` set from the feed and the item's guid or id,
//! so importing the same feed again finds every item already there.
//!
//! These are pure functions over bytes: no I/O, no network.

use crate::proto::{
    Timestamp,
    v1::{PressRelease, Source, press_release::BodyFormat},
};

/// Why an input could not be read as press releases.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Not a press release in the proto3 JSON mapping.
    #[error("not a press release in JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Not an RSS or Atom feed.
    #[error("not an RSS or Atom feed: {0}")]
    Feed(#[from] feed_rs::parser::ParseFeedError),
}

/// One item of a feed, converted.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedItem {
    /// The item's guid or id (for messages about it).
    pub id: String,
    /// The press release it becomes.
    pub release: PressRelease,
}

/// Parses one line of JSON Lines (or a whole JSON file) holding one press
/// release in the proto3 JSON mapping.
pub fn parse_jsonl_line(line: &str) -> Result<PressRelease, FeedError> {
    Ok(serde_json::from_str(line)?)
}

/// Parses an RSS 2.0 or Atom feed. `provider_hint` names the source (for
/// example `ein-presswire`); without it the feed's site host is used.
pub fn parse_feed(bytes: &[u8], provider_hint: Option<&str>) -> Result<Vec<FeedItem>, FeedError> {
    let feed = feed_rs::parser::parse(bytes)?;
    let provider = provider_hint
        .map(str::to_string)
        .or_else(|| feed.links.iter().find_map(|link| host_of(&link.href)))
        .or_else(|| feed.title.as_ref().map(|t| slug(&t.content)))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "feed".to_string());
    let feed_language = feed.language.clone();
    Ok(feed
        .entries
        .into_iter()
        .map(|entry| {
            let content = entry.content.as_ref().and_then(|c| c.body.clone());
            let (body, summary) = match (content, &entry.summary) {
                (Some(body), summary) => (body, summary.as_ref().map(text).unwrap_or_default()),
                (None, Some(summary)) => (summary.content.clone(), String::new()),
                (None, None) => (String::new(), String::new()),
            };
            let mut channels: Vec<String> = Vec::new();
            for category in &entry.categories {
                let term = category.label.as_deref().unwrap_or(&category.term).trim();
                if !term.is_empty() && !channels.iter().any(|c| c == term) {
                    channels.push(term.to_string());
                }
            }
            let language = entry
                .language
                .clone()
                .or_else(|| feed_language.clone())
                .filter(|tag| oxilangtag::LanguageTag::parse(tag.as_str()).is_ok())
                .unwrap_or_default();
            let release = PressRelease {
                source: Some(Source {
                    provider: provider.clone(),
                    item_id: entry.id.clone(),
                    url: entry
                        .links
                        .first()
                        .map(|l| l.href.clone())
                        .unwrap_or_default(),
                    ..Default::default()
                }),
                headline: entry.title.as_ref().map(text).unwrap_or_default(),
                summary,
                body,
                body_format: BodyFormat::Html as i32,
                language,
                channels,
                publish_time: entry.published.or(entry.updated).map(|time| Timestamp {
                    seconds: time.timestamp(),
                    nanos: time.timestamp_subsec_nanos() as i32,
                }),
                ..Default::default()
            };
            FeedItem {
                id: entry.id,
                release,
            }
        })
        .collect())
}

/// A feed's text as plain text: markup dropped if it is HTML, whitespace
/// tidied.
fn text(text: &feed_rs::model::Text) -> String {
    let content = if text.content_type.as_str().contains("html") {
        let cleaned = ammonia::Builder::empty().clean(&text.content).to_string();
        html_escape::decode_html_entities(&cleaned).into_owned()
    } else {
        text.content.clone()
    };
    content.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The host of a URL without `www.`.
fn host_of(href: &str) -> Option<String> {
    let url = url::Url::parse(href).ok()?;
    let host = url.host_str()?;
    Some(host.strip_prefix("www.").unwrap_or(host).to_string())
}

/// A title as a provider name: lower case, words joined by `-`.
fn slug(title: &str) -> String {
    title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
  <channel>
    <title>EIN Presswire - Business</title>
    <link>https://www.einpresswire.com/newsfeeds/business</link>
    <language>en-us</language>
    <item>
      <title>Ilham Aliyev received Secretary-General of &lt;SCO&gt;</title>
      <link>https://www.einpresswire.com/article/688361234</link>
      <guid isPermaLink="false">688361234</guid>
      <pubDate>Thu, 08 Feb 2024 12:57:00 +0000</pubDate>
      <category>Politics</category>
      <category>World &amp; Regional</category>
      <description>President received the Secretary-General.</description>
      <content:encoded><![CDATA[<p>President of the Republic of Azerbaijan <b>Ilham Aliyev</b> has received...</p>]]></content:encoded>
    </item>
  </channel>
</rss>"#;

    #[test]
    fn an_rss_item_becomes_a_press_release() -> Result<(), FeedError> {
        let items = parse_feed(RSS.as_bytes(), None)?;
        assert_eq!(items.len(), 1);
        let release = &items[0].release;
        let source = release.source.clone().unwrap_or_default();
        assert_eq!(source.provider, "einpresswire.com");
        assert_eq!(source.item_id, "688361234");
        assert_eq!(source.url, "https://www.einpresswire.com/article/688361234");
        assert_eq!(
            release.headline,
            "Ilham Aliyev received Secretary-General of <SCO>"
        );
        assert!(release.body.starts_with("<p>President"));
        assert_eq!(release.body_format(), BodyFormat::Html);
        assert_eq!(release.summary, "President received the Secretary-General.");
        assert_eq!(release.channels, ["Politics", "World & Regional"]);
        assert_eq!(release.language, "en-us");
        assert_eq!(release.publish_time.map(|t| t.seconds), Some(1_707_397_020));
        let named = parse_feed(RSS.as_bytes(), Some("ein-presswire"))?;
        assert_eq!(
            named[0]
                .release
                .source
                .as_ref()
                .map(|s| s.provider.as_str()),
            Some("ein-presswire")
        );
        Ok(())
    }

    #[test]
    fn json_lines_use_the_proto3_json_mapping() -> Result<(), FeedError> {
        let release = parse_jsonl_line(
            r#"{"headline":"H","body":"B","bodyFormat":"BODY_FORMAT_HTML","publishTime":"2024-02-08T12:57:00Z","revision":"3"}"#,
        )?;
        assert_eq!(release.headline, "H");
        assert_eq!(release.body_format(), BodyFormat::Html);
        assert_eq!(release.publish_time.map(|t| t.seconds), Some(1_707_397_020));
        assert_eq!(release.revision, 3);
        let line = serde_json::to_string(&release)?;
        assert_eq!(
            parse_jsonl_line(&line)?,
            release,
            "what is written reads back"
        );
        assert!(parse_jsonl_line("{not json").is_err());
        assert!(parse_feed(b"<html>no feed</html>", None).is_err());
        Ok(())
    }
}
