//! IPTC ninjs (News in JSON), read in its 1.x, 2.x (lower-case names such
//! as `versioncreated`) and 3.0 (camelCase, `versionCreated`) shapes, and
//! written as ninjs 3.0. This module owns what both directions share: the
//! `urn:pressroom:` URIs that carry what ninjs has no field for, and telling
//! a ninjs object from a press release in the proto3 JSON mapping. Reading
//! ([`from_value`]) and writing ([`to_ninjs`]) each have a file of their
//! own.
//!
//! What ninjs cannot hold is lost on a round trip: the dateline's region
//! and printed text (only `located`, the city, and the country as a place
//! remain), a contact's organization, the press release's name, state,
//! revision and etag (the uri and version stand for them), the body format
//! of plain-text bodies beyond `contentType`, and the withdrawal reason.

mod read;
mod write;

use serde_json::Value;

pub use self::{read::from_value, write::to_ninjs};

/// The uri prefix of press releases that had a source without a URI id.
const SOURCE_URN: &str = "urn:pressroom:source:";
/// The uri prefix of press releases that had no source at all.
const NAME_URN: &str = "urn:pressroom:";
/// Subjects that are industries or channels, as written by [`to_ninjs`].
const INDUSTRY_URN: &str = "urn:pressroom:industry:";
const CHANNEL_URN: &str = "urn:pressroom:channel:";

/// Whether a JSON text is a ninjs object (it has `uri`) rather than a press
/// release in the proto3 JSON mapping.
pub fn looks_like_ninjs(text: &str) -> bool {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => object.contains_key("uri"),
        Ok(Value::Array(items)) => items.first().is_some_and(|i| i.get("uri").is_some()),
        _ => text.contains("\"uri\""),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{
        Timestamp,
        v1::{
            Contact, Dateline, MediaAsset, Organization, PressRelease, SecurityIdentifier, Source,
            Ticker, press_release::BodyFormat, press_release::State,
        },
    };

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
}
