//! The wire formats press releases come in and go out in, as pure functions
//! over bytes (no I/O, no network), so that each can be unit-tested and
//! fuzzed:
//!
//! - JSON Lines and JSON in the proto3 JSON mapping (what `export` writes);
//! - RSS 2.0 / Atom feeds ([`rss`]), mapped the way a news editor reads them;
//! - IPTC NewsML-G2 ([`newsml_g2`]) and its predecessor NewsML 1.2
//!   ([`newsml`], Business Wire's format);
//! - IPTC ninjs 2.x and 3.0 ([`ninjs`]), read and written.
//!
//! Each document becomes [`FeedItem`]s: a press release with `source` set
//! (provider, the item's id, its version) so that importing the same item
//! again finds it, and a later version updates it; or, for an item that
//! cannot become one, the reason. Notes say what was read but could not be
//! kept. The shared pieces: datelines ([`dateline`]), dates ([`dates`]),
//! listings and ISINs ([`securities`]).

pub mod dateline;
pub mod dates;
pub mod newsml;
pub mod newsml_g2;
pub mod ninjs;
pub mod rss;
pub mod securities;

use crate::proto::v1::{PressRelease, Source};

/// Why an input could not be read as press releases at all.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Not a press release in the proto3 JSON mapping.
    #[error("not a press release in JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Not an RSS or Atom feed.
    #[error("not an RSS or Atom feed: {0}")]
    Feed(#[from] feed_rs::parser::ParseFeedError),
    /// Not well-formed XML.
    #[error("not well-formed XML: {0}")]
    Xml(#[from] roxmltree::Error),
    /// Well-formed, but not a format Pressroom reads.
    #[error("{0}")]
    Unknown(String),
}

/// One item of a document, converted.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedItem {
    /// The item's id in its document (guid, uri), for messages about it.
    pub id: String,
    /// The press release it becomes, or why it cannot become one.
    pub release: Result<PressRelease, String>,
    /// What was read but not kept, or guessed (for the import summary).
    pub notes: Vec<String>,
}

impl FeedItem {
    fn ok(id: String, release: PressRelease, notes: Vec<String>) -> Self {
        Self {
            id,
            release: Ok(release),
            notes,
        }
    }

    fn failed(id: String, why: String) -> Self {
        Self {
            id,
            release: Err(why),
            notes: Vec::new(),
        }
    }
}

/// The formats [`parse_document`] tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// RSS 2.0, RSS 1.0 or Atom.
    Feed,
    /// IPTC NewsML-G2 (`newsMessage` or `newsItem`).
    NewsMlG2,
    /// IPTC NewsML 1.2 (`NewsML`).
    NewsMl12,
    /// IPTC ninjs (a JSON object with `uri`).
    Ninjs,
    /// A press release in the proto3 JSON mapping.
    ProtoJson,
}

/// Which format a document is in, by its first element or JSON keys.
pub fn detect(bytes: &[u8]) -> Option<Format> {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return Some(if ninjs::looks_like_ninjs(trimmed) {
            Format::Ninjs
        } else {
            Format::ProtoJson
        });
    }
    let root = first_element(trimmed)?;
    let local = root.rsplit(':').next().unwrap_or(root.as_str());
    Some(match local {
        "newsMessage" | "newsItem" => Format::NewsMlG2,
        "NewsML" => Format::NewsMl12,
        _ => Format::Feed,
    })
}

/// The name of the first element of an XML document (past the prolog,
/// comments and doctype).
fn first_element(text: &str) -> Option<String> {
    let mut rest = text;
    loop {
        let at = rest.find('<')?;
        rest = &rest[at..];
        if rest.starts_with("<?") {
            rest = &rest[rest.find("?>")? + 2..];
        } else if rest.starts_with("<!--") {
            rest = &rest[rest.find("-->")? + 3..];
        } else if rest.starts_with("<!") {
            rest = &rest[rest.find('>')? + 1..];
        } else {
            let name: String = rest[1..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
                .collect();
            return (!name.is_empty()).then_some(name);
        }
    }
}

/// Parses a document in any format Pressroom imports (except JSON Lines,
/// which is read line by line with [`parse_json_item`]). `provider_hint`
/// names the source provider (for example `ein-presswire`); without it each
/// format finds one in the document.
pub fn parse_document(
    bytes: &[u8],
    provider_hint: Option<&str>,
) -> Result<Vec<FeedItem>, FeedError> {
    match detect(bytes) {
        Some(Format::NewsMlG2) => newsml_g2::parse(bytes, provider_hint),
        Some(Format::NewsMl12) => newsml::parse(bytes, provider_hint),
        Some(Format::Ninjs | Format::ProtoJson) => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| FeedError::Unknown(format!("not UTF-8 JSON: {e}")))?;
            let value: serde_json::Value = serde_json::from_str(text)?;
            let objects = match value {
                serde_json::Value::Array(items) => items,
                one => vec![one],
            };
            Ok(objects
                .into_iter()
                .enumerate()
                .map(|(i, object)| json_item(object, provider_hint, &format!("item {}", i + 1)))
                .collect())
        }
        Some(Format::Feed) | None => rss::parse(bytes, provider_hint),
    }
}

/// Parses an XML or feed document (RSS, Atom, NewsML-G2, NewsML 1.2).
/// Kept under its old name: the import tool and the fuzz targets call it.
pub fn parse_feed(bytes: &[u8], provider_hint: Option<&str>) -> Result<Vec<FeedItem>, FeedError> {
    parse_document(bytes, provider_hint)
}

/// Parses one line of JSON Lines (or a whole JSON file) holding one press
/// release in the proto3 JSON mapping.
pub fn parse_jsonl_line(line: &str) -> Result<PressRelease, FeedError> {
    Ok(serde_json::from_str(line)?)
}

/// One JSON object: ninjs (it has `uri`) or a press release in the proto3
/// JSON mapping. The second value is the request id an item exported by
/// Pressroom carries (its name), so that importing an export twice creates
/// nothing new.
pub fn parse_json_item(
    text: &str,
    provider_hint: Option<&str>,
) -> Result<(FeedItem, String), FeedError> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    let item = json_item(value, provider_hint, "item");
    let request_id = match &item.release {
        Ok(release) if release.source.is_none() => release.name.clone(),
        _ => String::new(),
    };
    Ok((item, request_id))
}

fn json_item(value: serde_json::Value, provider_hint: Option<&str>, fallback: &str) -> FeedItem {
    if value.get("uri").is_some() {
        return ninjs::from_value(&value, provider_hint);
    }
    match serde_json::from_value::<PressRelease>(value) {
        Ok(release) => {
            let id = if release.name.is_empty() {
                fallback.to_string()
            } else {
                release.name.clone()
            };
            FeedItem::ok(id, release, Vec::new())
        }
        Err(error) => FeedItem::failed(
            fallback.to_string(),
            format!("not a press release in JSON: {error}"),
        ),
    }
}

/// The source of an item: provider, id, page and version.
fn source(provider: &str, item_id: &str, url: &str, version: i64) -> Option<Source> {
    (!item_id.is_empty()).then(|| Source {
        provider: provider.to_string(),
        item_id: item_id.to_string(),
        url: url.to_string(),
        version,
    })
}

/// HTML or text with entities as plain text: markup dropped, entities
/// decoded (`R&amp;D` → `R&D`, also when a feed escaped it twice),
/// whitespace tidied.
pub fn plain_text(text: &str) -> String {
    let stripped = if text.contains('<') {
        // Block ends become spaces, so that words of two paragraphs do not
        // run together.
        let spaced = text
            .replace("</p>", "</p> ")
            .replace("<br", " <br")
            .replace("</li>", "</li> ");
        ammonia::Builder::empty().clean(&spaced).to_string()
    } else {
        text.to_string()
    };
    decode_text(&stripped)
}

/// Text with entities decoded (also when a feed escaped them twice, as in
/// `R&amp;amp;D`) and whitespace tidied; markup is left as text.
pub fn decode_text(text: &str) -> String {
    let mut decoded = text.to_string();
    for _ in 0..2 {
        let next = html_escape::decode_html_entities(&decoded).into_owned();
        if next == decoded {
            break;
        }
        decoded = next;
    }
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A valid BCP-47 tag or nothing.
fn language(tag: &str) -> Option<String> {
    let tag = tag.trim();
    (!tag.is_empty() && oxilangtag::LanguageTag::parse(tag).is_ok()).then(|| tag.to_string())
}

/// The host of a URL without `www.`.
fn host_of(href: &str) -> Option<String> {
    let url = url::Url::parse(href).ok()?;
    let host = url.host_str()?;
    Some(host.strip_prefix("www.").unwrap_or(host).to_string())
}

/// A name as a provider: lower case, words joined by `-`.
fn slug(title: &str) -> String {
    title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

/// An http(s) URL or nothing.
fn http_url(href: &str) -> Option<String> {
    let url = url::Url::parse(href.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

/// Adds a value to a list unless blank or already there (ignoring case);
/// long values are cut to what the server accepts.
fn push_unique(list: &mut Vec<String>, value: &str) {
    let value = decode_text(value);
    let value: String = value
        .chars()
        .take(crate::domain::validate::MAX_SHORT_CHARS)
        .collect();
    if !value.is_empty()
        && list.len() < crate::domain::validate::MAX_VALUES
        && !list.iter().any(|v| v.eq_ignore_ascii_case(&value))
    {
        list.push(value);
    }
}

/// Serialises the children of an XML element as HTML: element local names,
/// attributes without namespaces, text escaped. Elements named in `skip`
/// are left out with their content. The server sanitises the result.
fn children_as_html(node: roxmltree::Node<'_, '_>, skip: &[&str]) -> String {
    let mut out = String::new();
    for child in node.children() {
        write_html(child, skip, &mut out);
    }
    out.trim().to_string()
}

fn write_html(node: roxmltree::Node<'_, '_>, skip: &[&str], out: &mut String) {
    if node.is_text() {
        out.push_str(&html_escape::encode_text(node.text().unwrap_or_default()));
        return;
    }
    if !node.is_element() {
        return;
    }
    let name = node.tag_name().name();
    if skip.contains(&name) {
        return;
    }
    out.push('<');
    out.push_str(name);
    for attribute in node.attributes() {
        if attribute.namespace().is_some() || attribute.name() == "xmlns" {
            continue;
        }
        out.push(' ');
        out.push_str(attribute.name());
        out.push_str("=\"");
        out.push_str(&html_escape::encode_double_quoted_attribute(
            attribute.value(),
        ));
        out.push('"');
    }
    if node.has_children() {
        out.push('>');
        for child in node.children() {
            write_html(child, skip, out);
        }
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    } else if matches!(name, "br" | "hr" | "img") {
        out.push_str(" />");
    } else {
        out.push_str("></");
        out.push_str(name);
        out.push('>');
    }
}

/// The first descendant element (or self) with this local name.
fn find<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.descendants()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

/// The child elements with this local name.
fn children<'a, 'i: 'a>(
    node: roxmltree::Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |n| n.is_element() && n.tag_name().name() == name)
}

/// The first child element with this local name.
fn child<'a, 'i: 'a>(
    node: roxmltree::Node<'a, 'i>,
    name: &'a str,
) -> Option<roxmltree::Node<'a, 'i>> {
    children(node, name).next()
}

/// All text inside an element, whitespace tidied.
fn text_of(node: roxmltree::Node<'_, '_>) -> String {
    let mut out = String::new();
    for d in node.descendants().filter(|n| n.is_text()) {
        out.push_str(d.text().unwrap_or_default());
        out.push(' ');
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Options for reading XML: DTDs are allowed (NewsML 1.2 files carry a
/// doctype) but entities are bounded by the parser.
fn parse_xml(text: &str) -> Result<roxmltree::Document<'_>, roxmltree::Error> {
    roxmltree::Document::parse_with_options(
        text,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::press_release::BodyFormat;

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

    fn only(items: Vec<FeedItem>) -> PressRelease {
        assert_eq!(items.len(), 1, "{items:?}");
        items
            .into_iter()
            .next()
            .and_then(|i| i.release.ok())
            .unwrap_or_default()
    }

    #[test]
    fn an_rss_item_becomes_a_press_release() -> Result<(), FeedError> {
        let release = only(parse_feed(RSS.as_bytes(), None)?);
        let source = release.source.clone().unwrap_or_default();
        assert_eq!(source.provider, "einpresswire.com");
        assert_eq!(source.item_id, "688361234");
        assert_eq!(source.url, "https://www.einpresswire.com/article/688361234");
        assert_eq!(source.version, 1_707_397_020, "the item's time");
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
        let named = only(parse_feed(RSS.as_bytes(), Some("ein-presswire"))?);
        assert_eq!(
            named.source.as_ref().map(|s| s.provider.as_str()),
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

    #[test]
    fn formats_are_told_apart_by_their_first_element() {
        assert_eq!(detect(RSS.as_bytes()), Some(Format::Feed));
        assert_eq!(
            detect(b"<?xml version=\"1.0\"?>\n<!-- x -->\n<newsMessage xmlns=\"http://iptc.org/std/nar/2006-10-01/\">"),
            Some(Format::NewsMlG2)
        );
        assert_eq!(
            detect(b"\n<NewsML Version=\"1.2\">"),
            Some(Format::NewsMl12)
        );
        assert_eq!(
            detect(b"<!DOCTYPE NewsML SYSTEM \"x.dtd\"><NewsML>"),
            Some(Format::NewsMl12)
        );
        assert_eq!(
            detect(br#"{"uri": "x", "headlines": []}"#),
            Some(Format::Ninjs)
        );
        assert_eq!(detect(br#"{"headline": "x"}"#), Some(Format::ProtoJson));
        assert_eq!(detect(b"   "), None);
    }

    #[test]
    fn plain_text_decodes_what_feeds_escape() {
        assert_eq!(plain_text("Acme R&amp;amp;D <b>lab</b>"), "Acme R&D lab");
        assert_eq!(plain_text("Acme R&amp;D\n  lab"), "Acme R&D lab");
        assert_eq!(plain_text("5 &lt; 6"), "5 < 6");
    }
}
