//! The second pass over a feed's XML: what feed-rs does not keep, read
//! from each item's own elements (the dates as written, category domains,
//! per-item language, Dublin Core and vendor namespaces). It only gathers
//! text; [`convert`](super::item::convert) decides what it means.

use crate::formats::parse_xml;

const ATOM: &str = "http://www.w3.org/2005/Atom";
const XML: &str = "http://www.w3.org/XML/1998/namespace";

/// What the second pass reads of one item.
#[derive(Debug, Default)]
pub(super) struct RawItem {
    pub(super) id: Option<String>,
    pub(super) published: Option<String>,
    pub(super) updated: Option<String>,
    pub(super) language: Option<String>,
    /// Term (or label) and domain (or scheme).
    pub(super) categories: Vec<(String, Option<String>)>,
    pub(super) subjects: Vec<String>,
    pub(super) industries: Vec<String>,
    pub(super) keywords: Vec<String>,
    pub(super) issuer: Option<String>,
    pub(super) tickers: Vec<String>,
    pub(super) isins: Vec<String>,
}

/// Reads every item's raw elements; `None` when the feed is not XML that a
/// strict parser accepts (feed-rs's values are used then).
pub(super) fn raw_items(text: &str) -> Option<Vec<RawItem>> {
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
