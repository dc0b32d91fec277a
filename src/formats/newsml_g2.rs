//! IPTC NewsML-G2: a `newsMessage` with one or more `newsItem`s (in
//! `itemSet`), or a bare `newsItem`. Each text item becomes a press
//! release:
//!
//! - `guid` and `version` → `source.item_id` and `source.version` (a later
//!   version updates the press release made from an earlier one);
//!   `itemMeta/provider` (name, else qcode or uri) → `source.provider`;
//! - `headline` (the first, or rank 1) → headline, a second headline →
//!   subheadline, `description` (summary or teaser) → summary;
//! - `inlineXML` → the body as HTML: XHTML's `body` (without its `header`,
//!   which repeats the headline) or NITF's `body.content`; `inlineData` as
//!   plain text;
//! - `language` (else `xml:lang`) → language;
//! - `located` (city, `broader` region and country) → dateline parts,
//!   `dateline` → the dateline as printed (also read for its parts when
//!   there is no `located`);
//! - `subject`: the name where one is given, else the qcode, → subjects,
//!   or industries for industry schemes (ICB, GICS, NAICS, NACE, TRBC,
//!   `…industry…` types), or channels for category subjects; every qcode is
//!   kept in keywords; place subjects (`cpnat:geoArea`, `cpnat:poi`) are
//!   left out; `itemMeta/service` names → channels;
//! - `infoSource` (name, uri) → issuer;
//! - `firstCreated`, else `versionCreated`, else `contentCreated` → publish
//!   time; `embargoed` → embargo time (the publish time then follows it);
//! - `itemMeta/link` and `contentSet/remoteContent` → media.
//!
//! Items that are not text (pictures, packages, events) and items with
//! `pubStatus` canceled are reported, not imported.

use roxmltree::Node;

use super::{
    FeedError, FeedItem, child, children, children_as_html, dateline, dates, decode_text, find,
    host_of, http_url, language, parse_xml, plain_text, push_unique, slug, source, text_of,
};
use crate::proto::v1::{
    Dateline, MediaAsset, Organization, PressRelease, press_release::BodyFormat,
};

const XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Subject schemes (qcode prefixes) of industry vocabularies.
const INDUSTRY_SCHEMES: [&str; 8] = ["icb", "gics", "naics", "nace", "trbc", "sic", "isic", "in"];

/// Parses a NewsML-G2 document.
pub fn parse(bytes: &[u8], provider_hint: Option<&str>) -> Result<Vec<FeedItem>, FeedError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| FeedError::Unknown(format!("NewsML-G2 that is not UTF-8: {e}")))?;
    let document = parse_xml(text)?;
    let root = document.root_element();
    let items: Vec<Node<'_, '_>> = if root.tag_name().name() == "newsItem" {
        vec![root]
    } else {
        root.descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "newsItem")
            .collect()
    };
    if items.is_empty() {
        return Err(FeedError::Unknown(format!(
            "a NewsML-G2 {} with no newsItem",
            root.tag_name().name()
        )));
    }
    Ok(items
        .into_iter()
        .map(|item| convert(item, provider_hint))
        .collect())
}

fn convert(item: Node<'_, '_>, provider_hint: Option<&str>) -> FeedItem {
    let guid = item
        .attribute("guid")
        .unwrap_or_default()
        .trim()
        .to_string();
    let id = if guid.is_empty() {
        "(a newsItem without guid)".to_string()
    } else {
        guid.clone()
    };
    let mut notes = Vec::new();
    let item_meta = child(item, "itemMeta");
    let content_meta = child(item, "contentMeta");

    if let Some(class) = item_meta
        .and_then(|m| child(m, "itemClass"))
        .and_then(|c| c.attribute("qcode"))
        && !class.ends_with(":text")
        && !class.ends_with(":composite")
    {
        return FeedItem::failed(id, format!("a {class} item, not text"));
    }
    if let Some(status) = item_meta
        .and_then(|m| child(m, "pubStatus"))
        .and_then(|s| s.attribute("qcode"))
        && status.ends_with(":canceled")
    {
        return FeedItem::failed(id, "withdrawn by its provider (pubStatus canceled)".into());
    }
    let version = match item.attribute("version").map(str::trim) {
        None | Some("") => 0,
        Some(text) => match text.parse::<i64>() {
            Ok(v) if v >= 0 => v,
            _ => return FeedItem::failed(id, format!("version {text:?} is not a number")),
        },
    };

    let provider = provider_hint
        .map(str::to_string)
        .or_else(|| {
            item_meta
                .and_then(|m| child(m, "provider"))
                .and_then(party_name)
        })
        .unwrap_or_else(|| "newsml-g2".to_string());

    let time = |parent: Option<Node<'_, '_>>, name: &str| {
        parent
            .and_then(|p| child(p, name))
            .map(|n| text_of(n))
            .filter(|t| !t.is_empty())
            .map(|t| dates::parse(&t).map_err(|e| format!("{name}: {e}")))
            .transpose()
    };
    let (first, version_created, content_created, embargoed) = match (
        time(item_meta, "firstCreated"),
        time(item_meta, "versionCreated"),
        time(content_meta, "contentCreated"),
        time(item_meta, "embargoed"),
    ) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        (Err(why), ..) | (_, Err(why), ..) | (_, _, Err(why), _) | (.., Err(why)) => {
            return FeedItem::failed(id, why);
        }
    };
    let publish_time = if embargoed.is_some() {
        None
    } else {
        first.or(version_created).or(content_created)
    };

    let mut release = PressRelease {
        publish_time,
        embargo_time: embargoed,
        ..Default::default()
    };
    let mut url = String::new();
    if let Some(meta) = item_meta {
        for service in children(meta, "service") {
            if let Some(name) = child(service, "name").map(text_of) {
                push_unique(&mut release.channels, &name);
            }
        }
        for link in children(meta, "link") {
            let Some(href) = link.attribute("href").and_then(http_url) else {
                continue;
            };
            let rel = link.attribute("rel").unwrap_or_default();
            if rel.ends_with(":canonical") || rel.ends_with(":self") {
                url = href;
            } else {
                release.media.push(MediaAsset {
                    url: href,
                    mime_type: link.attribute("contenttype").unwrap_or_default().into(),
                    caption: child(link, "title").map(text_of).unwrap_or_default(),
                });
            }
        }
    }

    if let Some(meta) = content_meta {
        let headlines: Vec<Node<'_, '_>> = children(meta, "headline").collect();
        let main = headlines
            .iter()
            .find(|h| h.attribute("rank") == Some("1"))
            .or(headlines.first());
        release.headline = main.map(|h| text_of(*h)).unwrap_or_default();
        release.subheadline = headlines
            .iter()
            .find(|h| Some(*h) != main)
            .map(|h| text_of(*h))
            .unwrap_or_default();
        let descriptions: Vec<Node<'_, '_>> = children(meta, "description").collect();
        release.summary = descriptions
            .iter()
            .find(|d| {
                d.attribute("role")
                    .is_some_and(|r| r.ends_with(":summary") || r.ends_with(":teaser"))
            })
            .or(descriptions.first())
            .map(|d| plain_text(&text_of(*d)))
            .unwrap_or_default();
        release.language = child(meta, "language")
            .and_then(|l| l.attribute("tag"))
            .and_then(language)
            .unwrap_or_default();
        release.dateline = dateline_of(meta);
        for info in children(meta, "infoSource") {
            if let Some(name) = child(info, "name").map(text_of).filter(|n| !n.is_empty()) {
                release.issuer = Some(Organization {
                    name,
                    website: info.attribute("uri").and_then(http_url).unwrap_or_default(),
                    ..Default::default()
                });
                break;
            }
        }
        subjects(meta, &mut release);
    }
    if release.language.is_empty() {
        release.language = item
            .attribute((XML, "lang"))
            .and_then(language)
            .unwrap_or_default();
    }

    let content_set = child(item, "contentSet");
    if let Some(set) = content_set {
        if let Some(inline) = child(set, "inlineXML") {
            release.body = body_html(inline);
            release.body_format = BodyFormat::Html as i32;
        } else if let Some(data) = child(set, "inlineData") {
            release.body = data.text().unwrap_or_default().trim().to_string();
            release.body_format = BodyFormat::PlainText as i32;
        }
        for remote in children(set, "remoteContent") {
            if let Some(href) = remote.attribute("href").and_then(http_url) {
                release.media.push(MediaAsset {
                    url: href,
                    mime_type: remote.attribute("contenttype").unwrap_or_default().into(),
                    caption: String::new(),
                });
            }
        }
    }
    release.media.truncate(crate::domain::validate::MAX_VALUES);
    if release.body.trim().is_empty() {
        return FeedItem::failed(id, "no body text (an empty inlineXML)".into());
    }
    if release.dateline.is_none() {
        // Not in the metadata: maybe in the lead, as the wires print it.
        release.dateline = dateline::from_lead(&plain_text(&release.body)).map(|l| l.dateline);
    }
    if guid.is_empty() {
        notes.push("no guid: importing it again makes a second press release".into());
    }
    release.source = source(&provider, &guid, &url, version);
    FeedItem::ok(id, release, notes)
}

/// A party's name: its `name`, else the code of its qcode, else its uri's
/// host.
fn party_name(party: Node<'_, '_>) -> Option<String> {
    if let Some(name) = child(party, "name").map(text_of).filter(|n| !n.is_empty()) {
        return Some(slug(&name));
    }
    if let Some(qcode) = party.attribute("qcode") {
        let code = qcode.rsplit(':').next().unwrap_or(qcode);
        return Some(slug(code));
    }
    party.attribute("uri").and_then(host_of)
}

/// The dateline from `located` and `dateline`.
fn dateline_of(meta: Node<'_, '_>) -> Option<Dateline> {
    let printed = child(meta, "dateline").map(text_of).unwrap_or_default();
    let mut parts = if printed.is_empty() {
        Dateline::default()
    } else {
        dateline::from_printed(&printed)
    };
    if let Some(located) = child(meta, "located") {
        let name_or_code = |node: Node<'_, '_>| {
            child(node, "name")
                .map(text_of)
                .filter(|n| !n.is_empty())
                .or_else(|| {
                    node.attribute("qcode")
                        .map(|q| q.rsplit(':').next().unwrap_or(q).to_string())
                })
        };
        if let Some(city) = name_or_code(located) {
            // A name such as `New York, NY` says more than the city.
            let read = dateline::from_printed(&city);
            parts.locality = if read.locality.is_empty() {
                dateline::title_case(&city)
            } else {
                read.locality
            };
            if !read.region.is_empty() {
                parts.region = read.region;
            }
            if !read.country_code.is_empty() {
                parts.country_code = read.country_code;
            }
        }
        for broader in children(located, "broader") {
            let kind = broader.attribute("type").unwrap_or_default();
            let qcode = broader.attribute("qcode").unwrap_or_default();
            let name = name_or_code(broader).unwrap_or_default();
            if let Some(code) = qcode.strip_prefix("iso3166-1a2:") {
                parts.country_code = code.to_ascii_uppercase();
            } else if kind.ends_with(":country") || qcode.starts_with("cntry:") {
                if let Some(code) = dateline::country_code(&name) {
                    parts.country_code = code;
                }
            } else if parts.region.is_empty() && !name.is_empty() {
                parts.region = name;
            }
        }
        if parts.text.is_empty() {
            parts.text = parts.locality.clone();
        }
    }
    (!parts.text.is_empty() || !parts.locality.is_empty()).then_some(parts)
}

/// Subjects, industries, channels and the qcodes as keywords.
fn subjects(meta: Node<'_, '_>, release: &mut PressRelease) {
    for subject in children(meta, "subject") {
        let kind = subject.attribute("type").unwrap_or_default();
        if kind.ends_with(":geoArea") || kind.ends_with(":poi") {
            continue;
        }
        let qcode = subject.attribute("qcode").unwrap_or_default();
        let name = child(subject, "name")
            .map(text_of)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| qcode.to_string());
        if name.is_empty() {
            continue;
        }
        let scheme = qcode
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if INDUSTRY_SCHEMES.contains(&scheme.as_str())
            || kind.to_ascii_lowercase().contains("industry")
        {
            push_unique(&mut release.industries, &name);
        } else if kind.ends_with(":category") {
            push_unique(&mut release.channels, &name);
        } else {
            push_unique(&mut release.subjects, &name);
        }
        if !qcode.is_empty() {
            push_unique(&mut release.keywords, &decode_text(qcode));
        }
    }
}

/// The body of an `inlineXML` as HTML.
fn body_html(inline: Node<'_, '_>) -> String {
    // XHTML: the html element's body; NITF: body.content.
    if let Some(body) = find(inline, "body.content") {
        return children_as_html(body, &[]);
    }
    if let Some(body) = inline
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "body")
    {
        return children_as_html(body, &["header", "head"]);
    }
    children_as_html(inline, &["head"])
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITH_EMBED: &str = r#"<newsItem xmlns="http://iptc.org/std/nar/2006-10-01/" guid="urn:x:1" version="3" xml:lang="fr">
  <itemMeta><itemClass qcode="ninat:text"/><provider qcode="nprov:AFP"/>
    <versionCreated>2024-02-08T12:57:00Z</versionCreated></itemMeta>
  <contentMeta>
    <located qcode="geo:lyon"><name>Lyon</name><broader type="cptype:country" qcode="iso3166-1a2:FR"><name>France</name></broader></located>
    <subject qcode="icb:3010"><name>Banks</name></subject>
    <subject qcode="medtop:04000000"/>
    <headline>Une banque ouvre à Lyon</headline>
  </contentMeta>
  <contentSet><inlineXML contenttype="application/xhtml+xml"><html xmlns="http://www.w3.org/1999/xhtml"><body><p onclick="x()">Texte <b>gras</b> &amp; fin.</p></body></html></inlineXML></contentSet>
</newsItem>"#;

    #[test]
    fn a_bare_news_item() -> Result<(), FeedError> {
        let items = parse(WITH_EMBED.as_bytes(), None)?;
        let release = items[0].release.clone().map_err(FeedError::Unknown)?;
        let source = release.source.clone().unwrap_or_default();
        assert_eq!(
            (
                source.provider.as_str(),
                source.item_id.as_str(),
                source.version
            ),
            ("afp", "urn:x:1", 3)
        );
        assert_eq!(release.headline, "Une banque ouvre à Lyon");
        assert_eq!(release.language, "fr");
        assert_eq!(
            release.body,
            r#"<p onclick="x()">Texte <b>gras</b> &amp; fin.</p>"#
        );
        assert_eq!(release.industries, ["Banks"]);
        assert_eq!(release.subjects, ["medtop:04000000"]);
        assert_eq!(release.keywords, ["icb:3010", "medtop:04000000"]);
        let dateline = release.dateline.unwrap_or_default();
        assert_eq!(
            (dateline.locality.as_str(), dateline.country_code.as_str()),
            ("Lyon", "FR")
        );
        assert_eq!(release.publish_time.map(|t| t.seconds), Some(1_707_397_020));
        Ok(())
    }

    #[test]
    fn odd_items_are_reported() -> Result<(), FeedError> {
        let picture = WITH_EMBED.replace("ninat:text", "ninat:picture");
        assert!(parse(picture.as_bytes(), None)?[0].release.is_err());
        let bad_date = WITH_EMBED.replace("2024-02-08T12:57:00Z", "sometime");
        let why = parse(bad_date.as_bytes(), None)?[0]
            .release
            .clone()
            .err()
            .unwrap_or_default();
        assert!(
            why.contains("versionCreated") && why.contains("sometime"),
            "{why}"
        );
        assert!(
            parse(
                b"<newsMessage xmlns=\"http://iptc.org/std/nar/2006-10-01/\"/>",
                None
            )
            .is_err()
        );
        Ok(())
    }

    fn only(bytes: &[u8]) -> Result<PressRelease, String> {
        let items = parse(bytes, None).map_err(|e| e.to_string())?;
        assert_eq!(items.len(), 1);
        items
            .into_iter()
            .next()
            .map_or(Err("none".into()), |i| i.release)
    }

    #[test]
    fn a_dpa_story_field_by_field() -> Result<(), String> {
        let release = only(include_bytes!(
            "../../tests/fixtures/formats/dpa-g2-with-dateline.xml"
        ))?;
        let source = release.source.clone().unwrap_or_default();
        assert_eq!(
            (
                source.provider.as_str(),
                source.item_id.as_str(),
                source.version
            ),
            ("dpa", "urn:newsml:dpa.com:20090101:250128-930-357319", 2)
        );
        assert_eq!(
            release.headline,
            "DeepSeek-Schock aus China: Zeichen für KI-Zeitenwende?"
        );
        assert_eq!(release.subheadline, "Künstliche Intelligenz");
        assert!(release.summary.starts_with("Dass ein Start-up aus China"));
        assert_eq!(release.language, "de");
        let dateline = release.dateline.clone().unwrap_or_default();
        assert_eq!(
            (
                dateline.text.as_str(),
                dateline.locality.as_str(),
                dateline.country_code.as_str()
            ),
            ("New York", "New York", "US")
        );
        assert_eq!(
            release.subjects,
            ["Internet", "Börse"],
            "places are not subjects"
        );
        assert_eq!(release.channels, ["bdt", "edi", "edt", "erd", "wi"]);
        assert!(
            release.keywords.contains(&"medtop:20000394".to_string()),
            "qcodes kept"
        );
        // versionCreated 2025-01-28T09:18:34+01:00 (no firstCreated).
        assert_eq!(release.publish_time.map(|t| t.seconds), Some(1_738_052_314));
        assert_eq!(release.body_format(), BodyFormat::Html);
        assert!(
            !release.body.contains("<header"),
            "the header repeats the headline"
        );
        assert!(
            release
                .body
                .contains("<h2>Kalte Füße an der Wall Street</h2>")
        );
        assert!(
            release
                .body
                .contains("Ein Chatbot aus China schockt die Wall Street")
        );
        Ok(())
    }

    #[test]
    fn an_embargoed_dpa_story() -> Result<(), String> {
        let release = only(include_bytes!(
            "../../tests/fixtures/formats/dpa-g2-embargoed.xml"
        ))?;
        // 2025-01-23T19:00:00+01:00; the publish time follows the embargo.
        assert_eq!(release.embargo_time.map(|t| t.seconds), Some(1_737_655_200));
        assert_eq!(release.publish_time, None);
        assert_eq!(
            release.headline,
            "Steinmeier: Russland zerstört kulturelles Erbe der Ukraine"
        );
        assert_eq!(
            release.dateline.map(|d| (d.locality, d.country_code)),
            Some(("Berlin".into(), "DE".into()))
        );
        assert_eq!(release.media.len(), 1, "the seeAlso link");
        assert_eq!(release.media[0].url, "https://dpaq.de/FFJbkHx");
        assert_eq!(release.media[0].caption, "Informationen zur Ausstellung");
        Ok(())
    }

    #[test]
    fn iptc_examples() -> Result<(), String> {
        // LISTING 1 has no body: reported, with its guid.
        let items = parse(
            include_bytes!("../../tests/fixtures/formats/iptc-g2-listing-1-news-item.xml"),
            None,
        )
        .map_err(|e| e.to_string())?;
        assert_eq!(
            items[0].id,
            "urn:newsml:acmenews.com:20161018:US-FINANCE-FED"
        );
        assert!(
            items[0]
                .release
                .clone()
                .err()
                .unwrap_or_default()
                .contains("no body")
        );
        // LISTING 2: a NITF body, a located city, an infoSource.
        let release = only(include_bytes!(
            "../../tests/fixtures/formats/iptc-g2-listing-2-text-nitf.xml"
        ))?;
        assert_eq!(release.headline, "Fed to halt QE to avert \"bubble\"");
        assert_eq!(release.language, "en-US");
        assert_eq!(
            release.subjects,
            [
                "economy, business and finance",
                "central bank",
                "money and monetary policy"
            ]
        );
        assert_eq!(
            release.issuer.map(|i| i.name),
            Some("Associated Press".into())
        );
        assert_eq!(
            release.source.map(|s| (s.provider, s.version)),
            Some(("acmenews.com".into(), 10))
        );
        assert!(
            release
                .body
                .starts_with("<p>(New York, NY - October 21) Et, sent luptat")
        );
        assert!(!release.body.contains("hedline"), "body.head is left out");
        assert_eq!(
            release
                .dateline
                .map(|d| (d.locality, d.region, d.country_code)),
            Some(("New York".into(), "New York".into(), "US".into()))
        );
        Ok(())
    }
}
