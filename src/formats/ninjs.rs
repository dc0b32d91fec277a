//! IPTC ninjs (News in JSON), read in its 1.x, 2.x (lower-case names such
//! as `versioncreated`) and 3.0 (camelCase, `versionCreated`) shapes, and
//! written as ninjs 3.0.
//!
//! Read: `uri` → `source.item_id` (a `urn:pressroom:…` uri written by
//! [`to_ninjs`] gives back the provider and id it came from), `version` →
//! `source.version`, `infoSources[0].name` (else the uri's host) →
//! `source.provider`; `headlines` (`main` role, else the first; a `sub`
//! role → subheadline) or `headline`; `bodies` (HTML preferred) or
//! `body_html`/`body_text`; `descriptions` or `description_text` → summary;
//! `language`; `subjects` by name (a `urn:pressroom:industry:`/`channel:`
//! uri puts it back among industries or channels); `keywords`; `located`
//! and `places` → dateline; `organisations` with `symbols` → issuer,
//! tickers and ISINs; `people` with contact info → contacts;
//! `associations` and `renditions` → media; `firstCreated` (else
//! `versionCreated`, `contentCreated`) → publish time; `embargoed`.
//!
//! Written: all of the above from a press release. What ninjs cannot hold
//! is lost on a round trip: the dateline's region and printed text (only
//! `located`, the city, and the country as a place remain), a contact's
//! organization, the press release's name, state, revision and etag (the
//! uri and version stand for them), the body format of plain-text bodies
//! beyond `contentType`, and the withdrawal reason.

use serde_json::{Map, Value, json};

use super::{FeedItem, dateline, dates, decode_text, host_of, http_url, language, push_unique};
use crate::proto::{
    Timestamp,
    v1::{
        Contact, Dateline, MediaAsset, Organization, PressRelease, SecurityIdentifier, Source,
        Ticker, press_release::BodyFormat, press_release::State,
    },
};

/// The uri prefix of press releases that had a source without a URI id.
const SOURCE_URN: &str = "urn:pressroom:source:";
/// The uri prefix of press releases that had no source at all.
const NAME_URN: &str = "urn:pressroom:";
/// Subjects that are industries or channels, as written by [`to_ninjs`].
const INDUSTRY_URN: &str = "urn:pressroom:industry:";
const CHANNEL_URN: &str = "urn:pressroom:channel:";
/// The ISIN symbol type of IPTC's financial instrument symbol types.
const ISIN_TYPE: &str = "http://cv.iptc.org/newscodes/financialinstrumentsymboltype/isin";

/// Whether a JSON text is a ninjs object (it has `uri`) rather than a press
/// release in the proto3 JSON mapping.
pub fn looks_like_ninjs(text: &str) -> bool {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => object.contains_key("uri"),
        Ok(Value::Array(items)) => items.first().is_some_and(|i| i.get("uri").is_some()),
        _ => text.contains("\"uri\""),
    }
}

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

/// Percent-encodes what would end a URN part.
fn escape(part: &str) -> String {
    url::form_urlencoded::byte_serialize(part.as_bytes()).collect()
}

fn unescape(part: &str) -> String {
    url::form_urlencoded::parse(format!("x={part}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
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
        .map(|d| super::plain_text(&string(d.get("value"))))
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
                match super::securities::isin(&value) {
                    Some(isin) => super::securities::add_isin(&mut issuer, isin),
                    None => notes.push(format!("{value:?} is not an ISIN")),
                }
            } else if !value.is_empty() {
                super::securities::add_ticker(
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

fn rfc3339(time: Option<Timestamp>) -> Option<String> {
    let time = time?;
    jiff::Timestamp::new(time.seconds, time.nanos)
        .ok()
        .map(|t| t.to_string())
}

/// The uri of a press release: its source's id when that is a URI, else a
/// `urn:pressroom:` URN that [`from_value`] reads back.
fn uri_of(release: &PressRelease) -> String {
    match &release.source {
        Some(source) if !source.item_id.is_empty() => {
            let is_uri = url::Url::parse(&source.item_id).is_ok();
            if is_uri {
                source.item_id.clone()
            } else {
                format!(
                    "{SOURCE_URN}{}:{}",
                    escape(&source.provider),
                    escape(&source.item_id)
                )
            }
        }
        _ => format!("{NAME_URN}{}", release.name),
    }
}

/// A press release as a ninjs 3.0 object.
pub fn to_ninjs(release: &PressRelease) -> Value {
    let mut out = Map::new();
    let mut put = |key: &str, value: Value| {
        let empty = match &value {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        };
        if !empty {
            out.insert(key.to_string(), value);
        }
    };
    put("uri", json!(uri_of(release)));
    put(
        "standard",
        json!({
            "name": "ninjs",
            "version": "3.0",
            "schema": "https://www.iptc.org/std/ninjs/ninjs-schema_3.0.json"
        }),
    );
    put("type", json!("text"));
    let version = release
        .source
        .as_ref()
        .map(|s| s.version)
        .filter(|v| *v > 0)
        .unwrap_or(release.revision);
    put("version", json!(version.to_string()));
    put("firstCreated", json!(rfc3339(release.publish_time)));
    put("versionCreated", json!(rfc3339(release.update_time)));
    put("embargoed", json!(rfc3339(release.embargo_time)));
    put(
        "pubStatus",
        json!(match release.state() {
            State::Embargoed => "withheld",
            State::Withdrawn => "canceled",
            _ => "usable",
        }),
    );
    put("language", json!(release.language));
    let mut headlines = vec![json!({"role": "main", "value": release.headline})];
    if !release.subheadline.is_empty() {
        headlines.push(json!({"role": "sub", "value": release.subheadline}));
    }
    put("headlines", Value::Array(headlines));
    if !release.summary.is_empty() {
        put(
            "descriptions",
            json!([{"role": "summary", "contentType": "text/plain", "value": release.summary}]),
        );
    }
    let content_type = if release.body_format() == BodyFormat::Html {
        "text/html"
    } else {
        "text/plain"
    };
    if !release.body.is_empty() {
        put(
            "bodies",
            json!([{"role": "main", "contentType": content_type, "value": release.body}]),
        );
    }
    let mut subjects: Vec<Value> = release
        .subjects
        .iter()
        .map(|s| json!({"name": s, "rel": "about"}))
        .collect();
    subjects.extend(
        release
            .industries
            .iter()
            .map(|s| json!({"name": s, "uri": format!("{INDUSTRY_URN}{}", escape(s))})),
    );
    subjects.extend(
        release
            .channels
            .iter()
            .map(|s| json!({"name": s, "uri": format!("{CHANNEL_URN}{}", escape(s))})),
    );
    put("subjects", Value::Array(subjects));
    put("keywords", json!(release.keywords));
    if let Some(dateline) = &release.dateline {
        let located = if dateline.locality.is_empty() {
            &dateline.text
        } else {
            &dateline.locality
        };
        put("located", json!(located));
        if !dateline.country_code.is_empty() {
            put(
                "places",
                json!([{
                    "name": isocountry::CountryCode::for_alpha2(&dateline.country_code)
                        .map(|c| c.name().to_string())
                        .unwrap_or_else(|_| dateline.country_code.clone()),
                    "uri": format!("http://cv.iptc.org/newscodes/iso3166-1a2/{}", dateline.country_code),
                    "rel": "located"
                }]),
            );
        }
    }
    if let Some(issuer) = &release.issuer {
        let mut symbols: Vec<Value> = issuer
            .tickers
            .iter()
            .map(|t| json!({"ticker": t.symbol, "exchange": t.exchange}))
            .collect();
        symbols.extend(issuer.securities.iter().map(|s: &SecurityIdentifier| {
            if s.scheme == "ISIN" {
                json!({"ticker": s.value, "symbolType": ISIN_TYPE})
            } else {
                json!({"ticker": s.value, "symbolType": format!("http://cv.iptc.org/newscodes/financialinstrumentsymboltype/{}", s.scheme.to_ascii_lowercase())})
            }
        }));
        let mut organisation = Map::new();
        organisation.insert("name".into(), json!(issuer.name));
        organisation.insert("rel".into(), json!("issuer"));
        if !issuer.website.is_empty() {
            organisation.insert("uri".into(), json!(issuer.website));
        }
        if !symbols.is_empty() {
            organisation.insert("symbols".into(), Value::Array(symbols));
        }
        put("organisations", json!([Value::Object(organisation)]));
    }
    let people: Vec<Value> = release
        .contacts
        .iter()
        .map(|c| {
            let mut info = Vec::new();
            if !c.email.is_empty() {
                info.push(json!({"type": "email", "value": c.email}));
            }
            if !c.phone.is_empty() {
                info.push(json!({"type": "phone", "value": c.phone}));
            }
            json!({"name": c.name, "rel": "contact", "contactInfo": info})
        })
        .collect();
    put("people", Value::Array(people));
    let associations: Vec<Value> = release
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let kind = match m.mime_type.split('/').next().unwrap_or_default() {
                "image" => "picture",
                "video" => "video",
                "audio" => "audio",
                _ => "text",
            };
            let mut association = json!({
                "name": format!("media{}", i + 1),
                "type": kind,
                "uri": m.url,
                "renditions": [{"name": "original", "href": m.url, "contentType": m.mime_type}],
            });
            if !m.caption.is_empty()
                && let Some(object) = association.as_object_mut()
            {
                object.insert("headlines".into(), json!([{"value": m.caption}]));
            }
            association
        })
        .collect();
    put("associations", Value::Array(associations));
    if let Some(source) = &release.source
        && !source.provider.is_empty()
    {
        let mut info = Map::new();
        info.insert("name".into(), json!(source.provider));
        info.insert("role".into(), json!("source"));
        if !source.url.is_empty() {
            info.insert("uri".into(), json!(source.url));
        }
        put("infoSources", json!([Value::Object(info)]));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> PressRelease {
        PressRelease {
            name: "pressReleases/01a21ed9-2856-7715-bb2d-c16c7be80858".into(),
            source: Some(Source {
                provider: "globenewswire.com".into(),
                item_id: "2179136".into(),
                url: "https://www.globenewswire.com/news-release/2021/02/20/2179136/0/en/x.html"
                    .into(),
                version: 1_613_779_560,
            }),
            headline: "Ebix Shares Strong Business Outlook".into(),
            subheadline: "And discusses recent events".into(),
            summary: "Ebix today issued a press release.".into(),
            body: "<p>JOHNS CREEK, Ga. -- Ebix, Inc.</p>".into(),
            body_format: BodyFormat::Html as i32,
            language: "en".into(),
            dateline: Some(Dateline {
                text: "JOHNS CREEK, Ga., Feb. 19, 2021".into(),
                locality: "Johns Creek".into(),
                region: "Georgia".into(),
                country_code: "US".into(),
            }),
            issuer: Some(Organization {
                name: "Ebix, Inc.".into(),
                website: "https://www.ebix.com/".into(),
                tickers: vec![Ticker {
                    exchange: "NASDAQ".into(),
                    symbol: "EBIX".into(),
                }],
                securities: vec![SecurityIdentifier {
                    scheme: "ISIN".into(),
                    value: "US2787152063".into(),
                }],
            }),
            contacts: vec![Contact {
                name: "Darren Joseph".into(),
                organization: String::new(),
                email: "ir@ebix.com".into(),
                phone: "678-281-2027".into(),
            }],
            channels: vec!["Calendar of Events".into()],
            subjects: vec!["Company Announcement".into()],
            industries: vec!["Software & Computer Services".into()],
            keywords: vec!["India".into()],
            media: vec![MediaAsset {
                url: "https://ml.globenewswire.com/Resource/Download/31b2dc60".into(),
                mime_type: "image/jpeg".into(),
                caption: "Logo".into(),
            }],
            publish_time: Some(Timestamp {
                seconds: 1_613_779_500,
                nanos: 0,
            }),
            state: State::Published as i32,
            revision: 2,
            ..Default::default()
        }
    }

    #[test]
    fn a_round_trip_keeps_what_both_models_hold() {
        let original = full();
        let written = to_ninjs(&original);
        assert_eq!(
            written["uri"],
            "urn:pressroom:source:globenewswire.com:2179136"
        );
        assert_eq!(written["version"], "1613779560");
        assert_eq!(written["firstCreated"], "2021-02-20T00:05:00Z");
        let read = from_value(&written, None);
        let back = read.release.clone().unwrap_or_default();
        // What ninjs cannot hold: the dateline's region and printed text,
        // and the server's own fields.
        let expected = PressRelease {
            name: String::new(),
            state: 0,
            revision: 0,
            dateline: Some(Dateline {
                text: "Johns Creek".into(),
                locality: "Johns Creek".into(),
                region: String::new(),
                country_code: "US".into(),
            }),
            ..original
        };
        assert_eq!(back, expected, "{read:?}");
    }

    #[test]
    fn a_release_without_source_keeps_its_name() {
        let mut release = full();
        release.source = None;
        let written = to_ninjs(&release);
        assert_eq!(
            written["uri"],
            "urn:pressroom:pressReleases/01a21ed9-2856-7715-bb2d-c16c7be80858"
        );
        let back = from_value(&written, None).release.unwrap_or_default();
        assert_eq!(back.name, release.name);
        assert_eq!(back.source, None);
    }

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
            "../../tests/fixtures/formats/businesswire-ninjs-3.0-20130731006140.json"
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
            "../../tests/fixtures/formats/ntb-ninjs-2.0-text.json"
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
