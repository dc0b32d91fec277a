//! IPTC NewsML 1.2, the format Business Wire (and others) deliver: a
//! `NewsML` envelope with `NewsItem`s made of nested `NewsComponent`s, each
//! with a `Role`. Each news item becomes a press release:
//!
//! - `NewsIdentifier`: the item's URN without its revision
//!   (`urn:newsml:{ProviderId}:{DateId}:{NewsItemId}`) → `source.item_id`,
//!   `RevisionId` → `source.version`, `ProviderId` → `source.provider`;
//! - the first `HeadLine` → headline; the `SubHeadLine` component →
//!   subheadline; `DateLine` → the dateline (city, US state or province,
//!   country); the `Body` component's XHTML → the body;
//! - the `Contact` component → contacts (name, phone, email, organization,
//!   as the wire lays them out); components with other roles (Logo, Photo,
//!   Video) → media, one per rendition, captioned with their headline;
//! - `AdministrativeMetadata/Source/Party` → issuer; a "Securities
//!   Identifier" metadata block → the issuer's ticker (and ISIN); keyword
//!   properties → industries (`…Industry…`), subjects (`…Category…`,
//!   `…Subject…`), keywords (the rest; a country keyword fills in the
//!   dateline's country when the dateline names none);
//! - `FirstCreated` (else `ThisRevisionCreated`) → publish time.

use roxmltree::Node;

use super::{
    FeedError, FeedItem, child, children, children_as_html, dateline, dates, find, language,
    parse_xml, plain_text, push_unique,
    securities::{self, add_isin, add_ticker},
    slug, source, text_of,
};
use crate::proto::v1::{
    Contact, MediaAsset, Organization, PressRelease, Ticker, press_release::BodyFormat,
};

/// Parses a NewsML 1.2 document.
pub fn parse(bytes: &[u8], provider_hint: Option<&str>) -> Result<Vec<FeedItem>, FeedError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| FeedError::Unknown(format!("NewsML that is not UTF-8: {e}")))?;
    let document = parse_xml(text)?;
    let root = document.root_element();
    let items: Vec<Node<'_, '_>> = children(root, "NewsItem").collect();
    if items.is_empty() {
        return Err(FeedError::Unknown(
            "a NewsML document with no NewsItem".into(),
        ));
    }
    Ok(items
        .into_iter()
        .map(|item| convert(item, provider_hint))
        .collect())
}

/// A `FormalName` attribute.
fn formal<'a>(node: Node<'a, '_>) -> &'a str {
    node.attribute("FormalName").unwrap_or_default()
}

fn convert(item: Node<'_, '_>, provider_hint: Option<&str>) -> FeedItem {
    let identifier = find(item, "NewsIdentifier");
    let field = |name: &str| {
        identifier
            .and_then(|i| child(i, name))
            .map(text_of)
            .unwrap_or_default()
    };
    let (provider_id, date_id, item_id) =
        (field("ProviderId"), field("DateId"), field("NewsItemId"));
    let urn = if item_id.is_empty() {
        String::new()
    } else {
        format!("urn:newsml:{provider_id}:{date_id}:{item_id}")
    };
    let id = if urn.is_empty() {
        "(a NewsItem without NewsItemId)".to_string()
    } else {
        urn.clone()
    };
    let revision = field("RevisionId");
    let version = match revision.parse::<i64>() {
        Ok(v) if v >= 0 => v,
        _ if revision.is_empty() => 0,
        _ => return FeedItem::failed(id, format!("RevisionId {revision:?} is not a number")),
    };
    let management = child(item, "NewsManagement");
    if let Some(status) = management.and_then(|m| child(m, "Status")) {
        let status = formal(status).to_ascii_lowercase();
        if status == "canceled" || status == "cancelled" || status == "withdrawn" {
            return FeedItem::failed(id, format!("withdrawn by its provider (Status {status})"));
        }
    }
    let time = |name: &str| {
        management
            .and_then(|m| child(m, name))
            .map(text_of)
            .filter(|t| !t.is_empty())
            .map(|t| dates::parse(&t).map_err(|e| format!("{name}: {e}")))
            .transpose()
    };
    let publish_time = match (time("FirstCreated"), time("ThisRevisionCreated")) {
        (Ok(first), Ok(this)) => first.or(this),
        (Err(why), _) | (_, Err(why)) => return FeedItem::failed(id, why),
    };
    let provider = provider_hint
        .map(str::to_string)
        .or_else(|| (!provider_id.is_empty()).then(|| slug_provider(&provider_id)))
        .unwrap_or_else(|| "newsml".to_string());

    let mut release = PressRelease {
        publish_time,
        body_format: BodyFormat::Html as i32,
        ..Default::default()
    };
    release.headline = find(item, "HeadLine").map(text_of).unwrap_or_default();
    release.language = find(item, "Language")
        .map(formal)
        .and_then(language)
        .unwrap_or_default();
    release.dateline = find(item, "DateLine")
        .map(text_of)
        .filter(|d| !d.is_empty())
        .map(|d| dateline::from_printed(&d));

    let mut issuer = Organization {
        name: find(item, "AdministrativeMetadata")
            .and_then(|m| find(m, "Source"))
            .and_then(|s| child(s, "Party"))
            .map(|p| formal(p).to_string())
            .unwrap_or_default(),
        ..Default::default()
    };
    let mut country = None;
    for metadata in item
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "Metadata")
    {
        let kind = child(metadata, "MetadataType")
            .map(formal)
            .unwrap_or_default();
        let properties: Vec<(&str, &str)> = children(metadata, "Property")
            .map(|p| (formal(p), p.attribute("Value").unwrap_or_default()))
            .collect();
        if kind.eq_ignore_ascii_case("Securities Identifier") {
            let value = |name: &str| {
                properties
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_string())
                    .unwrap_or_default()
            };
            let symbol = value("Ticker Symbol");
            if !symbol.is_empty() {
                add_ticker(
                    &mut issuer,
                    Ticker {
                        exchange: value("Exchange").to_ascii_uppercase(),
                        symbol: symbol.to_ascii_uppercase(),
                    },
                );
            }
            if let Some(isin) = securities::isin(&value("ISIN")) {
                add_isin(&mut issuer, isin);
            }
            continue;
        }
        for (name, value) in properties {
            let lower = name.to_ascii_lowercase();
            if lower.contains("industry") {
                push_unique(&mut release.industries, value);
            } else if lower.contains("category") || lower.contains("subject") {
                push_unique(&mut release.subjects, value);
            } else {
                if lower.contains("country") && country.is_none() {
                    country = dateline::country_code(value);
                }
                push_unique(&mut release.keywords, value);
            }
        }
    }

    for component in item
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "NewsComponent")
    {
        let Some(role) = child(component, "Role").map(formal) else {
            continue;
        };
        let content = children(component, "ContentItem").collect::<Vec<_>>();
        let xhtml_body = || {
            content.iter().find_map(|c| {
                let data = child(*c, "DataContent")?;
                let body = find(data, "body");
                Some(match body {
                    Some(body) => children_as_html(body, &["head"]),
                    None => children_as_html(data, &["head"]),
                })
            })
        };
        match role.to_ascii_lowercase().as_str() {
            "body" | "main" => release.body = xhtml_body().unwrap_or_default(),
            "subheadline" => {
                release.subheadline = xhtml_body().map(|h| plain_text(&h)).unwrap_or_default();
            }
            "summary" | "abstract" => {
                release.summary = xhtml_body().map(|h| plain_text(&h)).unwrap_or_default();
            }
            "contact" => {
                if let Some(data) = content.iter().find_map(|c| child(*c, "DataContent")) {
                    release.contacts = contacts(data);
                }
            }
            "headline" | "stylesheet" => {}
            _ => {
                let caption = child(component, "NewsLines")
                    .and_then(|l| child(l, "HeadLine"))
                    .map(text_of)
                    .unwrap_or_default();
                for rendition in &content {
                    let Some(href) = rendition.attribute("Href").and_then(super::http_url) else {
                        continue;
                    };
                    if release.media.len() < crate::domain::validate::MAX_VALUES {
                        release.media.push(MediaAsset {
                            url: href,
                            mime_type: child(*rendition, "MimeType")
                                .map(|m| formal(m).to_string())
                                .unwrap_or_default(),
                            caption: caption.chars().take(1_000).collect(),
                        });
                    }
                }
            }
        }
    }
    if release.body.trim().is_empty() {
        return FeedItem::failed(id, "no Body component with text".into());
    }
    if let (Some(dateline), Some(code)) = (&mut release.dateline, country)
        && dateline.country_code.is_empty()
    {
        dateline.country_code = code;
    }
    if !issuer.name.is_empty() || !issuer.tickers.is_empty() || !issuer.securities.is_empty() {
        release.issuer = Some(issuer);
    }
    let mut notes = Vec::new();
    if urn.is_empty() {
        notes.push("no NewsItemId: importing it again makes a second press release".into());
    }
    release.source = source(&provider, &urn, "", version);
    FeedItem::ok(id, release, notes)
}

/// `businesswire.com` stays as it is; other ids are made provider names.
fn slug_provider(provider_id: &str) -> String {
    if provider_id.contains('.') {
        provider_id.to_ascii_lowercase()
    } else {
        slug(provider_id)
    }
}

/// Contacts as wires lay them out: an organization line, then `Name,
/// phone`, then an email, with `or` between contacts.
fn contacts(data: Node<'_, '_>) -> Vec<Contact> {
    let mut lines = vec![String::new()];
    collect_lines(data, &mut lines);
    let lines: Vec<String> = lines
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    let mut found: Vec<Contact> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.contains('@') && !line.contains(' ') {
            match found.last_mut() {
                Some(last) if last.email.is_empty() => last.email = line.clone(),
                _ => found.push(Contact {
                    email: line.clone(),
                    ..Default::default()
                }),
            }
            continue;
        }
        let Some((name, phone)) = line.rsplit_once(',') else {
            continue;
        };
        let phone = phone.trim();
        let digits = phone.chars().filter(char::is_ascii_digit).count();
        if digits < 7 || phone.chars().any(char::is_alphabetic) {
            continue;
        }
        let organization = i
            .checked_sub(1)
            .and_then(|j| lines.get(j))
            .filter(|l| {
                !l.contains('@')
                    && !l.chars().any(|c| c.is_ascii_digit())
                    && !l.eq_ignore_ascii_case("or")
            })
            .cloned()
            .unwrap_or_default();
        found.push(Contact {
            name: name.trim().to_string(),
            organization,
            phone: phone.to_string(),
            email: String::new(),
        });
    }
    found.truncate(crate::domain::validate::MAX_VALUES);
    found
}

/// The text of an XHTML fragment, one entry per line (`br`, paragraphs).
fn collect_lines(node: Node<'_, '_>, lines: &mut Vec<String>) {
    for child in node.children() {
        if child.is_text() {
            if let Some(last) = lines.last_mut() {
                last.push_str(child.text().unwrap_or_default());
            }
        } else if child.is_element() {
            let name = child.tag_name().name();
            if name == "head" || name == "style" {
                continue;
            }
            if matches!(name, "br" | "p" | "div" | "li") {
                lines.push(String::new());
            }
            collect_lines(child, lines);
            if matches!(name, "p" | "div" | "li") {
                lines.push(String::new());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_business_wire_release_field_by_field() -> Result<(), String> {
        let items = parse(
            include_bytes!(
                "../../tests/fixtures/formats/businesswire-newsml-1.2-20130731006140.xml"
            ),
            None,
        )
        .map_err(|e| e.to_string())?;
        assert_eq!(items.len(), 1);
        let release = items[0].release.clone()?;
        let source = release.source.clone().unwrap_or_default();
        assert_eq!(
            (
                source.provider.as_str(),
                source.item_id.as_str(),
                source.version
            ),
            (
                "businesswire.com",
                "urn:newsml:businesswire.com:20010714:20130731006140",
                1
            )
        );
        assert_eq!(
            release.headline,
            "Lunch Taking a Toll? Let Applebee’s® Industrial Strength Lunch Decoy Stand In"
        );
        assert_eq!(
            release.subheadline,
            "With a Year’s Worth of Lunch Combos Starting at $6.99, New 62-Inch, 12-Gauge Vinyl Model Built to Endure Even More Mundane Work Situations"
        );
        let dateline = release.dateline.clone().unwrap_or_default();
        assert_eq!(
            (
                dateline.text.as_str(),
                dateline.locality.as_str(),
                dateline.region.as_str(),
                dateline.country_code.as_str()
            ),
            ("KANSAS CITY, Mo.", "Kansas City", "Missouri", "US")
        );
        assert_eq!(release.language, "en");
        let issuer = release.issuer.clone().unwrap_or_default();
        assert_eq!(issuer.name, "Applebee’s");
        assert_eq!(
            issuer
                .tickers
                .iter()
                .map(|t| (t.exchange.as_str(), t.symbol.as_str()))
                .collect::<Vec<_>>(),
            [("NYSE", "DIN")]
        );
        assert_eq!(
            release.industries,
            [
                "Other Consumer",
                "Restaurant/Bar",
                "Retail",
                "Food/Beverage",
                "Consumer"
            ]
        );
        assert_eq!(release.subjects, ["Product/Service", "Photo/Multimedia"]);
        // 20130731T153200+0000
        assert_eq!(release.publish_time.map(|t| t.seconds), Some(1_375_284_720));
        assert!(
            release
                .body
                .starts_with("<p>\n      With more Applebee’s<sup>®</sup> Lunch Combos")
        );
        assert!(
            release
                .body
                .contains("<span class=\"bwuline\">Classic Turkey Breast Sandwich</span>")
        );
        assert_eq!(release.contacts.len(), 2);
        assert_eq!(
            (
                release.contacts[0].organization.as_str(),
                release.contacts[0].name.as_str(),
                release.contacts[0].phone.as_str(),
                release.contacts[0].email.as_str()
            ),
            (
                "Crossroads",
                "Chase Wagner",
                "816-877-5219",
                "cwagner@crossroads.us"
            )
        );
        assert_eq!(
            (
                release.contacts[1].organization.as_str(),
                release.contacts[1].name.as_str()
            ),
            ("Applebee’s", "Dan Smith")
        );
        assert_eq!(
            release.media.len(),
            9,
            "six video renditions and three logos"
        );
        assert_eq!(release.media[3].mime_type, "video/x-ms-wmv");
        assert!(
            release.media[0]
                .caption
                .starts_with("Now that Applebee's has over 200 lunch combos")
        );
        Ok(())
    }
}
