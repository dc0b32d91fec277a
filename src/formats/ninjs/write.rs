//! Writing a press release as a ninjs 3.0 object: everything
//! [`from_value`](super::from_value) reads, under the same names; where
//! ninjs has no field (a source's provider and id that are not a URI, the
//! press release's name, industries and channels among subjects), a
//! `urn:pressroom:` URI that reading gives back.

use serde_json::{Map, Value, json};

use super::{CHANNEL_URN, INDUSTRY_URN, NAME_URN, SOURCE_URN, escape};
use crate::proto::{
    Timestamp,
    v1::{PressRelease, SecurityIdentifier, press_release::BodyFormat, press_release::State},
};

/// The ISIN symbol type of IPTC's financial instrument symbol types.
const ISIN_TYPE: &str = "http://cv.iptc.org/newscodes/financialinstrumentsymboltype/isin";

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
