//! Reading one ninjs object (1.x, 2.x or 3.0) into a press release.
//!
//! `uri` → `source.item_id` (a `urn:pressroom:…` uri written by
//! [`to_ninjs`](super::to_ninjs) gives back the provider and id it came
//! from), `version` → `source.version`, `infoSources[0].name` (else the
//! uri's host) → `source.provider`; `headlines` (`main` role, else the
//! first; a `sub` role → subheadline) or `headline`; `bodies` (HTML
//! preferred) or `body_html`/`body_text`; `descriptions` or
//! `description_text` → summary; `language`; `subjects` by name (a
//! `urn:pressroom:industry:`/`channel:` uri puts it back among industries
//! or channels); `keywords`; `located` and `places` → dateline;
//! `organisations` with `symbols` → issuer, tickers and ISINs; `people`
//! with contact info → contacts; `associations` and `renditions` → media;
//! `firstCreated` (else `versionCreated`, `contentCreated`) → publish time;
//! `embargoed`. A `pubStatus` of `canceled` is refused, never imported.

use serde_json::Value;

use super::{CHANNEL_URN, INDUSTRY_URN, NAME_URN, SOURCE_URN, unescape};
use crate::{
    formats::{FeedItem, dateline, dates, decode_text, host_of, http_url, language, push_unique},
    proto::v1::{
        Contact, Dateline, MediaAsset, Organization, PressRelease, Source, Ticker,
        press_release::BodyFormat,
    },
};

/// A field under its 3.0 name or its 1.x/2.x lower-case name.
fn field<'v>(object: &'v Value, name: &str) -> Option<&'v Value> {
    object
        .get(name)
        .or_else(|| object.get(name.to_ascii_lowercase()))
}

fn string(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn array<'v>(object: &'v Value, name: &str) -> &'v [Value] {
    field(object, name)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Reads one ninjs object.
pub fn from_value(object: &Value, provider_hint: Option<&str>) -> FeedItem {
    let uri = string(field(object, "uri"));
    let id = if uri.is_empty() {
        "(no uri)".to_string()
    } else {
        uri.clone()
    };
    if !object.is_object() {
        return FeedItem::failed(id, "not a JSON object".into());
    }
    let mut notes = Vec::new();
    if string(field(object, "pubStatus")).eq_ignore_ascii_case("canceled") {
        return FeedItem::failed(id, "withdrawn by its provider (pubStatus canceled)".into());
    }
    let version_text = string(field(object, "version"));
    let version = match version_text.parse::<i64>() {
        Ok(v) if v >= 0 => v,
        _ if version_text.is_empty() => 0,
        _ => {
            notes.push(format!(
                "version {version_text:?} is not a number; left out"
            ));
            0
        }
    };

    let info_source = array(object, "infoSources")
        .first()
        .map(|s| string(s.get("name")))
        .filter(|n| !n.is_empty());
    let mut request_name = String::new();
    let (provider, item_id) = if let Some(rest) = uri.strip_prefix(SOURCE_URN) {
        match rest.split_once(':') {
            Some((provider, item)) => (unescape(provider), unescape(item)),
            None => (String::new(), String::new()),
        }
    } else if let Some(name) = uri.strip_prefix(NAME_URN) {
        // A press release without a source: its name is the request id.
        request_name = name.to_string();
        (String::new(), String::new())
    } else {
        let provider = provider_hint
            .map(str::to_string)
            .or(info_source.clone())
            .or_else(|| host_of(&uri))
            .unwrap_or_else(|| "ninjs".to_string());
        (provider, uri.clone())
    };
    let provider = match provider_hint {
        Some(hint) if !item_id.is_empty() => hint.to_string(),
        _ => provider,
    };

    let time = |name: &str| {
        let text = string(field(object, name));
        if text.is_empty() {
            Ok(None)
        } else {
            dates::parse(&text)
                .map(Some)
                .map_err(|e| format!("{name}: {e}"))
        }
    };
    let (first, version_created, content_created, embargoed) = match (
        time("firstCreated"),
        time("versionCreated"),
        time("contentCreated"),
        time("embargoed"),
    ) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        (Err(why), ..) | (_, Err(why), ..) | (_, _, Err(why), _) | (.., Err(why)) => {
            return FeedItem::failed(id, why);
        }
    };

    let mut release = PressRelease {
        name: request_name,
        publish_time: if embargoed.is_some() {
            None
        } else {
            first.or(version_created).or(content_created)
        },
        embargo_time: embargoed,
        language: language(&string(field(object, "language"))).unwrap_or_default(),
        ..Default::default()
    };

    // Headlines.
    let headlines = array(object, "headlines");
    let main = headlines
        .iter()
        .find(|h| string(h.get("role")) == "main")
        .or(headlines.first());
    release.headline = main
        .map(|h| decode_text(&string(h.get("value"))))
        .unwrap_or_else(|| decode_text(&string(field(object, "headline"))));
    release.subheadline = headlines
        .iter()
        .find(|h| {
            Some(*h) != main && matches!(string(h.get("role")).as_str(), "sub" | "subheadline")
        })
        .map(|h| decode_text(&string(h.get("value"))))
        .unwrap_or_default();

    // Body: HTML preferred.
    let bodies = array(object, "bodies");
    let html = bodies.iter().find(|b| {
        let kind = string(field(b, "contentType"));
        kind.contains("html") || string(b.get("role")).contains("html")
    });
    if let Some(body) = html.or(bodies.first()) {
        release.body = string(body.get("value"));
        let kind = string(field(body, "contentType"));
        release.body_format = if kind.contains("plain") {
            BodyFormat::PlainText
        } else {
            BodyFormat::Html
        } as i32;
    } else if let Some(body) = field(object, "body_html").filter(|b| b.is_string()) {
        release.body = string(Some(body));
        release.body_format = BodyFormat::Html as i32;
    } else {
        release.body = string(field(object, "body_text"));
        release.body_format = BodyFormat::PlainText as i32;
    }

    // Summary.
    let descriptions = array(object, "descriptions");
    release.summary = descriptions
        .first()
        .map(|d| crate::formats::plain_text(&string(d.get("value"))))
        .unwrap_or_else(|| decode_text(&string(field(object, "description_text"))));

    if release.body.trim().is_empty() && !release.summary.is_empty() {
        // Some wires send short items as a description only.
        release.body = std::mem::take(&mut release.summary);
        release.body_format = BodyFormat::PlainText as i32;
        notes.push("no body: its description is the body".into());
    }

    // Subjects, industries, channels, keywords.
    for subject in array(object, "subjects") {
        let name = string(subject.get("name"));
        let uri = string(subject.get("uri"));
        let value = if name.is_empty() {
            string(subject.get("literal"))
        } else {
            name
        };
        if let Some(industry) = uri.strip_prefix(INDUSTRY_URN) {
            push_unique(&mut release.industries, &unescape(industry));
        } else if let Some(channel) = uri.strip_prefix(CHANNEL_URN) {
            push_unique(&mut release.channels, &unescape(channel));
        } else if !value.is_empty() {
            push_unique(&mut release.subjects, &value);
        }
    }
    for keyword in array(object, "keywords") {
        push_unique(&mut release.keywords, &string(Some(keyword)));
    }

    // Where: `located` (the city) and places.
    let located = string(field(object, "located"));
    let mut place = Dateline::default();
    if !located.is_empty() {
        place = dateline::from_printed(&located);
    }
    for candidate in array(object, "places") {
        let uri = string(candidate.get("uri"));
        let name = string(candidate.get("name"));
        if let Some(code) = uri
            .strip_prefix("iso3166-1a2:")
            .or_else(|| uri.strip_prefix("http://cv.iptc.org/newscodes/iso3166-1a2/"))
        {
            place.country_code = code.to_ascii_uppercase();
        } else if place.country_code.is_empty()
            && let Some(code) = dateline::country_code(&name)
        {
            place.country_code = code;
        }
    }
    if !place.text.is_empty() || !place.country_code.is_empty() {
        release.dateline = Some(place);
    }

    // The issuer: the first organisation, with its symbols.
    if let Some(organisation) = array(object, "organisations").first() {
        let mut issuer = Organization {
            name: string(organisation.get("name")),
            website: http_url(&string(organisation.get("uri"))).unwrap_or_default(),
            ..Default::default()
        };
        for symbol in array(organisation, "symbols") {
            let kind = string(field(symbol, "symbolType"));
            let ticker = string(symbol.get("ticker"));
            let value = if ticker.is_empty() {
                string(symbol.get("symbol"))
            } else {
                ticker
            };
            if kind.to_ascii_lowercase().ends_with("isin") {
                match crate::formats::securities::isin(&value) {
                    Some(isin) => crate::formats::securities::add_isin(&mut issuer, isin),
                    None => notes.push(format!("{value:?} is not an ISIN")),
                }
            } else if !value.is_empty() {
                crate::formats::securities::add_ticker(
                    &mut issuer,
                    Ticker {
                        exchange: string(symbol.get("exchange")).to_ascii_uppercase(),
                        symbol: value.to_ascii_uppercase(),
                    },
                );
            }
        }
        release.issuer = Some(issuer);
    }

    // Contacts: people with contact info.
    for person in array(object, "people") {
        let info = array(person, "contactInfo");
        if info.is_empty() {
            continue;
        }
        let of = |kind: &str| {
            info.iter()
                .find(|i| string(i.get("type")).eq_ignore_ascii_case(kind))
                .map(|i| string(i.get("value")))
                .unwrap_or_default()
        };
        release.contacts.push(Contact {
            name: string(person.get("name")),
            organization: string(person.get("literal")),
            email: of("email"),
            phone: of("phone"),
        });
    }

    // Media: associations and their renditions.
    for association in array(object, "associations") {
        let caption = array(association, "headlines")
            .first()
            .map(|h| string(h.get("value")))
            .or_else(|| Some(string(association.get("headline"))))
            .unwrap_or_default();
        let renditions = array(association, "renditions");
        let mut added = false;
        for rendition in renditions {
            if let Some(url) = http_url(&string(rendition.get("href"))) {
                push_media(
                    &mut release.media,
                    url,
                    string(field(rendition, "contentType")),
                    &caption,
                );
                added = true;
            }
        }
        if !added && let Some(url) = http_url(&string(association.get("uri"))) {
            push_media(&mut release.media, url, String::new(), &caption);
        }
    }
    // ninjs 2.x keeps renditions of the item itself as an object or array.
    if let Some(Value::Object(renditions)) = field(object, "renditions") {
        for rendition in renditions.values() {
            if let Some(url) = http_url(&string(rendition.get("href"))) {
                push_media(
                    &mut release.media,
                    url,
                    string(field(rendition, "contentType")),
                    "",
                );
            }
        }
    }

    let web = array(object, "infoSources")
        .first()
        .map(|s| string(s.get("uri")))
        .and_then(|u| http_url(&u))
        .or_else(|| http_url(&uri))
        .unwrap_or_default();
    if !item_id.is_empty() {
        release.source = Some(Source {
            provider,
            item_id,
            url: web,
            version,
        });
    }
    FeedItem::ok(id, release, notes)
}

fn push_media(media: &mut Vec<MediaAsset>, url: String, mime_type: String, caption: &str) {
    if media.len() < crate::domain::validate::MAX_VALUES && !media.iter().any(|m| m.url == url) {
        media.push(MediaAsset {
            url,
            mime_type,
            caption: caption.chars().take(1_000).collect(),
        });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn two_x_names_and_odd_values() {
        let two = json!({
            "uri": "8d19cf88-b3ab-4972-8fec-1207599f2872",
            "version": "6",
            "versioncreated": "2019-08-09T09:46:53Z",
            "language": "nb-NO",
            "headlines": [{"role": "main", "value": "Google har kjøpt giganttomt i Skien"}],
            "descriptions": [{"role": "text", "contenttype": "text/plain", "value": "IT-giganten"}],
            "subjects": [{"name": "Teknologi", "literal": "13010000"}]
        });
        let release = from_value(&two, Some("ntb")).release.unwrap_or_default();
        assert_eq!(release.language, "nb-NO");
        assert_eq!(release.publish_time.map(|t| t.seconds), Some(1_565_344_013));
        let source = release.source.unwrap_or_default();
        assert_eq!((source.provider.as_str(), source.version), ("ntb", 6));
        assert!(
            from_value(&json!({"uri": "x", "versionCreated": "soon"}), None)
                .release
                .is_err()
        );
    }

    #[test]
    fn the_business_wire_release_as_ninjs_3() {
        let object: Value = serde_json::from_slice(include_bytes!(
            "../../../tests/fixtures/formats/businesswire-ninjs-3.0-20130731006140.json"
        ))
        .unwrap_or_default();
        let item = from_value(&object, None);
        let release = item.release.unwrap_or_default();
        let source = release.source.clone().unwrap_or_default();
        assert_eq!(
            (
                source.provider.as_str(),
                source.item_id.as_str(),
                source.version
            ),
            (
                "businesswire.com",
                "http://www.businesswire.com/news/home/20130731006140/en",
                1
            )
        );
        assert_eq!(
            source.url,
            "http://www.businesswire.com/news/home/20130731006140/en"
        );
        assert_eq!(
            release.headline,
            "Lunch Taking a Toll? Let Applebee’s® Industrial Strength Lunch Decoy Stand In"
        );
        assert_eq!(release.language, "en");
        assert_eq!(release.subjects.len(), 10);
        assert_eq!(release.subjects[3], "Restaurant/Bar");
        assert_eq!(release.body_format(), BodyFormat::Html);
        assert!(
            release
                .body
                .starts_with("With more Applebee’s<sup >®</sup> Lunch Combos")
        );
        assert_eq!(release.publish_time.map(|t| t.seconds), Some(1_375_284_720));
        assert_eq!(release.media.len(), 9);
        assert_eq!(release.media[6].mime_type, "video/x-ms-wmv");
    }

    #[test]
    fn an_ntb_item_as_ninjs_2() {
        let object: Value = serde_json::from_slice(include_bytes!(
            "../../../tests/fixtures/formats/ntb-ninjs-2.0-text.json"
        ))
        .unwrap_or_default();
        let item = from_value(&object, None);
        assert!(item.notes.iter().any(|n| n.contains("no body")), "{item:?}");
        let release = item.release.unwrap_or_default();
        assert_eq!(release.headline, "Google har kjøpt giganttomt i Skien");
        assert_eq!(release.language, "nb-NO");
        assert!(
            release
                .body
                .starts_with("IT-giganten Google har kjøpt en tomt")
        );
        assert_eq!(release.body_format(), BodyFormat::PlainText);
        assert_eq!(
            release.subjects,
            ["Innenriks", "Teknologi", "Industri", "Olje og energi"]
        );
        // firstcreated, not versioncreated.
        assert_eq!(release.publish_time.map(|t| t.seconds), Some(1_565_343_004));
        let source = release.source.unwrap_or_default();
        assert_eq!(
            (
                source.provider.as_str(),
                source.item_id.as_str(),
                source.version
            ),
            ("ninjs", "8d19cf88-b3ab-4972-8fec-1207599f2872", 6)
        );
    }
}
