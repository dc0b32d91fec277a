//! The fuzz targets' code paths as property tests, through the same
//! oracles, so that CI runs them on every change.

use pressroom::{
    domain::update_mask,
    proto::{
        FieldMask, Timestamp,
        v1::{
            Contact, CreatePressReleaseRequest, Dateline, GetPressReleaseStatsRequest,
            ListPressReleasesRequest, MediaAsset, Organization, PressRelease, PressReleaseFilter,
            SearchPressReleasesRequest, Source, Ticker, UpdatePressReleaseRequest,
            WatchPressReleasesRequest, watch_press_releases_request::Start,
        },
    },
};
use proptest::{collection::vec, prelude::*};
use prost::Message;

use super::checks;

/// Text as callers send it: anything, blanks, controls, markup.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\PC{0,24}",
        ".{0,12}",
        "[ \t\n\r\u{0}\u{7f}\u{200b}a-zA-Z<>&;\"'/:=@.-]{0,32}",
    ]
}

/// HTML as wires send it, sloppy and hostile.
fn html() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        "[a-zA-Z &;#0-9]{0,12}",
        "<(p|b|a|div|script|style|img|table|tr|td|svg|math|template|noscript|iframe|select|option|form)( (href|src|onerror|style|class)=\"[^\"]{0,12}\")?>",
        "</(p|b|a|div|script|style|table|tr|td|svg|math|template|noscript|iframe|select|option|form)>",
        "<!--[^>]{0,8}-->",
        "&(amp|lt|gt|quot|#x?[0-9a-f]{1,6}|[a-z]{1,6});?",
        "<!\\[CDATA\\[[^\\]]{0,8}\\]\\]>",
        Just("<".to_string()),
        Just(">".to_string()),
    ];
    vec(fragment, 0..12).prop_map(|parts| parts.concat())
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "(https?|ftp|javascript|data)://[a-z0-9.:@\\[\\]%-]{0,20}(/[^ ]{0,10})?",
        "\\PC{0,20}",
    ]
}

fn code() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-zA-Z]{2,3}",
        "[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8}){0,3}",
        "\\PC{0,10}",
    ]
}

fn timestamp() -> impl Strategy<Value = Option<Timestamp>> {
    let parts = prop_oneof![
        (any::<i64>(), any::<i32>()),
        (-62_135_596_801..=253_402_300_800i64, -1..=1_000_000_000i32),
    ];
    prop_oneof![
        Just(None),
        parts.prop_map(|(seconds, nanos)| Some(Timestamp { seconds, nanos })),
    ]
}

prop_compose! {
    fn press_release()(
        (headline, subheadline, summary) in (text(), text(), text()),
        (body, body_format) in (prop_oneof![text(), html()], -1..4i32),
        (language, country, locality) in (code(), code(), text()),
        (provider, item_id, source_url) in (text(), text(), url()),
        (issuer, website, tickers) in (text(), url(), vec((text(), text()), 0..3)),
        (contacts, media) in (vec((text(), text()), 0..3), vec((url(), text()), 0..3)),
        (channels, keywords) in (vec(text(), 0..4), vec(text(), 0..3)),
        (publish_time, embargo_time) in (timestamp(), timestamp()),
    ) -> PressRelease {
        PressRelease {
            source: (!provider.is_empty() || !item_id.is_empty())
                .then_some(Source { provider, item_id, url: source_url, ..Default::default() }),
            headline,
            subheadline,
            summary,
            body,
            body_format,
            language,
            dateline: Some(Dateline { locality, country_code: country, ..Default::default() }),
            issuer: Some(Organization {
                name: issuer,
                website,
                tickers: tickers
                    .into_iter()
                    .map(|(exchange, symbol)| Ticker { exchange, symbol })
                    .collect(),
                ..Default::default()
            }),
            contacts: contacts
                .into_iter()
                .map(|(name, email)| Contact { name, email, ..Default::default() })
                .collect(),
            media: media
                .into_iter()
                .map(|(url, caption)| MediaAsset { url, caption, ..Default::default() })
                .collect(),
            channels,
            keywords,
            publish_time,
            embargo_time,
            ..Default::default()
        }
    }
}

prop_compose! {
    fn filter()(
        (channels, countries, languages) in (vec(text(), 0..3), vec(code(), 0..3), vec(code(), 0..3)),
        (issuers, tickers) in (vec(text(), 0..2), vec(text(), 0..2)),
        (after, before) in (timestamp(), timestamp()),
    ) -> PressReleaseFilter {
        PressReleaseFilter {
            channels,
            countries,
            languages,
            issuers,
            tickers,
            publish_time_after: after,
            publish_time_before: before,
            ..Default::default()
        }
    }
}

/// Mask paths: the writable ones, output-only ones, and junk.
fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(update_mask::WRITABLE.to_vec()).prop_map(str::to_string),
        proptest::sample::select(vec![
            "*",
            "name",
            "etag",
            "revision",
            "state",
            "source.url",
            ""
        ])
        .prop_map(str::to_string),
        "\\PC{0,12}",
    ]
}

/// Strings shaped like the opaque ones callers send back.
fn opaque() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{0,60}",
        "[A-Za-z0-9+/=_-]{36,44}",
        "\\PC{0,40}"
    ]
}

proptest! {
    #[test]
    fn any_bytes_as_any_request(which in any::<u8>(), data in vec(any::<u8>(), 0..512)) {
        checks::request(which, &data);
    }

    #[test]
    fn creates(release in press_release(), request_id in text()) {
        let request = CreatePressReleaseRequest { press_release: Some(release), request_id };
        checks::create_request(&request.encode_to_vec());
    }

    #[test]
    fn mutated_creates(release in press_release(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = CreatePressReleaseRequest { press_release: Some(release), request_id: String::new() }
            .encode_to_vec();
        if !bytes.is_empty() {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        checks::create_request(&bytes);
        checks::request(3, &bytes);
    }

    #[test]
    fn updates(patch in press_release(), name in prop_oneof![opaque(), Just("pressReleases/01a21ed9-2856-7715-bb2d-c16c7be80858".to_string())], paths in proptest::option::of(vec(path(), 0..4))) {
        let request = UpdatePressReleaseRequest {
            press_release: Some(PressRelease { name, ..patch }),
            update_mask: paths.map(|paths| FieldMask { paths }),
        };
        checks::update_request(&request.encode_to_vec());
    }

    #[test]
    fn lists_searches_stats_and_watches(
        filter in proptest::option::of(filter()),
        token in opaque(),
        query in prop_oneof![text(), "[a-z \"():-]{0,24}", "(headline|body|issuer|nope|OR|-|\"| |a|é)*"],
        (page_size, include_embargoed) in (any::<i32>(), any::<bool>()),
        (cursor, start_time, position) in (opaque(), timestamp(), any::<i32>()),
    ) {
        let list = ListPressReleasesRequest { filter: filter.clone(), page_size, page_token: token.clone(), include_embargoed };
        checks::list_request(&list.encode_to_vec());
        let search = SearchPressReleasesRequest { query, filter: filter.clone(), page_size, page_token: token, ..Default::default() };
        checks::search_request(&search.encode_to_vec());
        let stats = GetPressReleaseStatsRequest { filter: filter.clone(), ..Default::default() };
        checks::stats_request(&stats.encode_to_vec());
        let starts = [
            Some(Start::AfterCursor(cursor)),
            start_time.map(Start::StartTime),
            Some(Start::Position(position)),
            None,
        ];
        for start in starts {
            let watch = WatchPressReleasesRequest {
                filter: filter.clone(),
                start,
                ..Default::default()
            };
            checks::watch_request(&watch.encode_to_vec());
        }
    }

    #[test]
    fn opaque_strings(text in opaque(), query in any::<[u8; 8]>()) {
        checks::cursor(&text);
        checks::page_token_for(&text, query);
        checks::resource_name("name", &text);
    }

    #[test]
    fn names(text in "pressReleases/[0-9a-fA-F{}-]{0,40}") {
        checks::resource_name("name", &text);
    }

    #[test]
    fn search_queries(text in prop_oneof!["\\PC{0,40}", "(headline:|body:|nope:|OR|-|\"| |a|b|!|é)*"]) {
        checks::search_query(&text);
    }

    #[test]
    fn json_lines(
        headline in text(),
        body in prop_oneof![text(), html()],
        time in prop_oneof![text(), Just("2024-02-08T12:57:00Z".to_string()), "[0-9+-]{1,6}-[0-9]{2}-[0-9]{2}T[0-9:.]{8,20}(Z|[+-][0-9]{2}:[0-9]{2})"],
        (format, revision) in (prop_oneof![text(), Just("BODY_FORMAT_HTML".to_string())], any::<i64>()),
        junk in "\\PC{0,20}",
    ) {
        let line = serde_json::json!({
            "headline": headline,
            "body": body,
            "publishTime": time,
            "bodyFormat": format,
            "revision": revision.to_string(),
            "channels": [junk],
        })
        .to_string();
        checks::feed(0, line.as_bytes());
    }

    #[test]
    fn any_text_as_json_lines(text in "\\PC{0,64}") {
        checks::feed(0, text.as_bytes());
    }

    #[test]
    fn feeds(
        (title, description, content) in (text(), text(), html()),
        (guid, link, category) in (text(), url(), text()),
        (date, language, hint) in (prop_oneof![text(), Just("Thu, 08 Feb 2024 12:57:00 +0000".to_string()), Just("2024-02-08T12:57:00Z".to_string())], code(), any::<u8>()),
        atom in any::<bool>(),
    ) {
        let escape = |s: &str| html_escape::encode_text(s).into_owned();
        let document = if atom {
            format!(
                r#"<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{}"><title>{}</title><link href="{}"/><entry><id>{}</id><title type="html">{}</title><updated>{}</updated><category term="{}"/><summary>{}</summary><content type="html">{}</content></entry></feed>"#,
                escape(&language), escape(&title), escape(&link), escape(&guid), escape(&title),
                escape(&date), escape(&category), escape(&description), escape(&content),
            )
        } else {
            format!(
                r#"<?xml version="1.0"?><rss version="2.0"><channel><title>{}</title><link>{}</link><language>{}</language><item><title>{}</title><guid>{}</guid><pubDate>{}</pubDate><category>{}</category><description>{}</description></item></channel></rss>"#,
                escape(&title), escape(&link), escape(&language), escape(&title), escape(&guid),
                escape(&date), escape(&category), escape(&content),
            )
        };
        checks::feed(hint | 1, document.as_bytes());
    }

    #[test]
    fn any_bytes_as_feeds(data in vec(any::<u8>(), 0..256), hint in any::<u8>()) {
        checks::feed(hint | 1, &data);
    }
}
