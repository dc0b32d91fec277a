//! The oracles that the fuzz targets (`fuzz/fuzz_targets/`) and the property
//! tests (`tests/api/hostile/`, which includes this file) share. Each one
//! feeds arbitrary input through what the server does with it — decoding a
//! request, then the same validation, normalising and parsing — and panics
//! only where a rule is broken: a refusal must be a sensible error naming
//! the field, and what is accepted must be well-formed and round-trip.

use pressroom::{
    domain::{DomainError, filter, name, page_token, update_mask, validate},
    feed::cursor::Cursor,
    formats,
    proto::v1::{
        BackupPressReleasesRequest, CreatePressReleaseRequest, Dateline, DeletePressReleaseRequest,
        GetPressReleaseRequest, GetPressReleaseStatsRequest, ImportPressReleasesRequest,
        ListPressReleasesRequest, Organization, PressRelease, PressReleaseFilter,
        SearchPressReleasesRequest, StartPosition, Ticker, UpdatePressReleaseRequest,
        WatchPressReleasesRequest, press_release::BodyFormat, watch_press_releases_request::Start,
    },
    search::query,
    store::ListQuery,
};
use prost::Message;

/// The request types of `pressroom.v1.PressReleaseService`, in the order the
/// first byte of an input to [`request`] selects them.
pub const REQUESTS: [&str; 10] = [
    "CreatePressReleaseRequest",
    "GetPressReleaseRequest",
    "ListPressReleasesRequest",
    "UpdatePressReleaseRequest",
    "DeletePressReleaseRequest",
    "WatchPressReleasesRequest",
    "ImportPressReleasesRequest",
    "SearchPressReleasesRequest",
    "GetPressReleaseStatsRequest",
    "BackupPressReleasesRequest",
];

/// Decodes `data` as the request type `which` selects (see [`REQUESTS`])
/// and checks it as the server would.
pub fn request(which: u8, data: &[u8]) {
    match usize::from(which) % REQUESTS.len() {
        0 => create_request(data),
        1 => get_request(data),
        2 => list_request(data),
        3 => update_request(data),
        4 => delete_request(data),
        5 => watch_request(data),
        6 => import_request(data),
        7 => search_request(data),
        8 => stats_request(data),
        _ => {
            let _ = BackupPressReleasesRequest::decode(data);
        }
    }
}

/// `CreatePressRelease`: the content checks and normalising.
pub fn create_request(data: &[u8]) {
    if let Ok(request) = CreatePressReleaseRequest::decode(data)
        && let Some(release) = request.press_release
    {
        content(release);
    }
}

/// `ImportPressReleases`: each item is checked like a create.
pub fn import_request(data: &[u8]) {
    if let Ok(request) = ImportPressReleasesRequest::decode(data)
        && let Some(release) = request.press_release
    {
        content(release);
    }
}

/// `UpdatePressRelease`: the name, the field mask, the patch applied to a
/// stored release, and the content checks of the result.
pub fn update_request(data: &[u8]) {
    let Ok(request) = UpdatePressReleaseRequest::decode(data) else {
        return;
    };
    let Some(patch) = request.press_release else {
        return;
    };
    resource_name("press_release.name", &patch.name);
    let paths = match update_mask::paths(request.update_mask.as_ref(), &patch) {
        Ok(paths) => paths,
        Err(error) => return sensible(&error, "update_mask"),
    };
    for (i, path) in paths.iter().enumerate() {
        assert!(
            update_mask::WRITABLE.contains(path),
            "the mask yields {path:?}, which is not writable"
        );
        assert!(!paths[..i].contains(path), "the mask yields {path:?} twice");
    }
    let stored = stored_release();
    let mut next = stored.clone();
    update_mask::apply(&mut next, &patch, &paths);
    // Only the named fields change: putting them back restores the release.
    let mut restored = next.clone();
    update_mask::apply(&mut restored, &stored, &paths);
    assert_eq!(restored, stored, "applying {paths:?} changed other fields");
    content(next);
}

/// `GetPressRelease`: the name.
pub fn get_request(data: &[u8]) {
    if let Ok(request) = GetPressReleaseRequest::decode(data) {
        resource_name("name", &request.name);
    }
}

/// `DeletePressRelease`: the name.
pub fn delete_request(data: &[u8]) {
    if let Ok(request) = DeletePressReleaseRequest::decode(data) {
        resource_name("name", &request.name);
    }
}

/// `ListPressReleases`: the filter, then the page token against the
/// filter's fingerprint.
pub fn list_request(data: &[u8]) {
    let Ok(request) = ListPressReleasesRequest::decode(data) else {
        return;
    };
    let Some(query) = list_filter(request.filter.as_ref()) else {
        return;
    };
    let salt = if request.include_embargoed {
        "embargoed"
    } else {
        ""
    };
    let fingerprint = filter::fingerprint(&query, salt);
    if !request.page_token.is_empty() {
        page_token_for(&request.page_token, fingerprint);
    }
}

/// `WatchPressReleases`: the filter and the starting point.
pub fn watch_request(data: &[u8]) {
    let Ok(request) = WatchPressReleasesRequest::decode(data) else {
        return;
    };
    list_filter(request.filter.as_ref());
    match request.start {
        Some(Start::AfterCursor(text)) => cursor(&text),
        Some(Start::StartTime(time)) => {
            let valid = validate::is_valid_time(&time);
            assert_eq!(
                valid,
                (0..1_000_000_000).contains(&time.nanos)
                    && (-62_135_596_800..=253_402_300_799).contains(&time.seconds),
                "validity of {time:?}"
            );
        }
        Some(Start::Position(position)) => {
            let _ = StartPosition::try_from(position);
        }
        None => {}
    }
}

/// `SearchPressReleases`: the query, the filter, and the offset token.
pub fn search_request(data: &[u8]) {
    let Ok(request) = SearchPressReleasesRequest::decode(data) else {
        return;
    };
    search_query(&request.query);
    if let Some(query) = list_filter(request.filter.as_ref()) {
        let fingerprint = filter::fingerprint(&query, &request.query);
        if !request.page_token.is_empty() {
            page_token_for(&request.page_token, fingerprint);
        }
    }
}

/// `GetPressReleaseStats`: the filter (the days are checked in the service,
/// and covered over the network by the hostile-input test).
pub fn stats_request(data: &[u8]) {
    if let Ok(request) = GetPressReleaseStatsRequest::decode(data) {
        list_filter(request.filter.as_ref());
    }
}

/// A filter: refused with errors naming `filter.*`, or turned into a query
/// whose values are normalised, sorted and without duplicates.
pub fn list_filter(input: Option<&PressReleaseFilter>) -> Option<ListQuery> {
    match filter::to_query(input, "filter") {
        Ok(query) => {
            for (facet, values) in &query.facets {
                assert!(!values.is_empty(), "{facet:?} with no values");
                assert!(
                    values.windows(2).all(|w| w[0] < w[1]),
                    "{facet:?} values not sorted and distinct: {values:?}"
                );
                for value in values {
                    assert_eq!(&facet.normalize(value), value, "{facet:?} not normalised");
                }
            }
            for time in [&query.published_at_or_after, &query.published_before]
                .into_iter()
                .flatten()
            {
                assert!(validate::is_valid_time(time), "accepted {time:?}");
            }
            // The same filter again gives the same query.
            let again = filter::to_query(input, "filter");
            assert!(matches!(&again, Ok(q) if *q == query), "{again:?}");
            query.matches(&stored_release());
            Some(query)
        }
        Err(error) => {
            sensible(&error, "filter.");
            None
        }
    }
}

/// Content of a press release to create or store: refused with errors
/// naming `press_release.*`, or normalised into a release that passes again,
/// unchanged (normalising is idempotent).
pub fn content(mut release: PressRelease) {
    match validate::check_content(&mut release) {
        Ok(()) => {
            assert!(
                !release.headline.trim().is_empty(),
                "accepted a blank headline"
            );
            assert!(!release.body.trim().is_empty(), "accepted a blank body");
            assert!(
                release.body.len() <= validate::MAX_BODY_BYTES,
                "accepted a body of {} bytes",
                release.body.len()
            );
            let format = BodyFormat::try_from(release.body_format);
            assert!(
                matches!(format, Ok(BodyFormat::PlainText | BodyFormat::Html)),
                "normalised body format {format:?}"
            );
            if format == Ok(BodyFormat::Html) {
                assert!(
                    !release.body.to_ascii_lowercase().contains("<script"),
                    "a sanitised body keeps a script: {:?}",
                    release.body
                );
            }
            let mut again = release.clone();
            if let Err(error) = validate::check_content(&mut again) {
                panic!("a normalised release fails its checks: {error}; {release:?}");
            }
            assert_eq!(again, release, "normalising twice changes the release");
        }
        Err(error) => sensible(&error, "press_release."),
    }
}

/// A resource name: refused with an error naming `field`, or accepted only
/// in its one canonical form.
pub fn resource_name(field: &str, text: &str) {
    match name::parse(field, text) {
        Ok(id) => assert_eq!(name::format(&id), text, "accepted a non-canonical name"),
        Err(error) => sensible(&error, field),
    }
}

/// A watch cursor: accepted only as exactly what encoding makes.
pub fn cursor(text: &str) {
    if let Ok(cursor) = Cursor::decode(text) {
        assert_eq!(cursor.encode(), text, "accepted a non-canonical cursor");
    }
}

/// A page token checked against the query fingerprint `query`, as list and
/// search tokens; what decodes re-encodes to a token that decodes the same.
pub fn page_token_for(text: &str, query: [u8; 8]) {
    match page_token::decode(text, query) {
        Ok(position) => {
            let token = page_token::encode(query, &position);
            assert_eq!(page_token::decode(&token, query), Ok(position));
        }
        Err(error) => {
            let DomainError::InvalidArgument(violations) = error.to_domain() else {
                panic!("a token error that is not INVALID_ARGUMENT");
            };
            assert!(violations.iter().all(|v| v.field == "page_token"));
        }
    }
    if let Ok(offset) = page_token::decode_offset(text, query) {
        let token = page_token::encode_offset(query, offset);
        assert_eq!(page_token::decode_offset(&token, query), Ok(offset));
    }
}

/// A search query: a refusal points inside the query; what parses has at
/// least one required term, and every term is non-empty and placed inside
/// the query.
pub fn search_query(text: &str) {
    let chars = text.chars().count();
    match query::parse(text) {
        Ok(parsed) => {
            assert!(!parsed.required.is_empty(), "a query with no required term");
            for atom in parsed.required.iter().flatten().chain(&parsed.excluded) {
                assert!(!atom.text.is_empty(), "an empty term in {text:?}");
                assert!(atom.position < chars, "{atom:?} outside {text:?}");
            }
        }
        Err(error) => assert!(
            error.position <= chars,
            "error position {} in a query of {chars} characters",
            error.position
        ),
    }
}

/// The import parsers: an even `which` reads `input` as a line of JSON
/// Lines (a press release in the proto3 JSON mapping, or ninjs), an odd one
/// as an XML document: RSS, Atom, NewsML-G2 or NewsML 1.2, told apart by
/// its first element (with a provider hint when bit 1 is set). What they
/// make is checked like a create; a proto JSON line survives export and
/// import unchanged; a release written as ninjs reads back; an item that
/// cannot be imported says why; an item always has a provider and an id.
pub fn feed(which: u8, input: &[u8]) {
    let hint = (which & 2 != 0).then_some("fuzz-wire");
    if which.is_multiple_of(2) {
        let Ok(line) = std::str::from_utf8(input) else {
            return;
        };
        if let Ok(release) = formats::parse_jsonl_line(line) {
            let exported = match serde_json::to_string(&release) {
                Ok(json) => json,
                Err(error) => panic!("{release:?} cannot be written as JSON: {error}"),
            };
            match formats::parse_jsonl_line(&exported) {
                Ok(again) => assert_eq!(again, release, "changed by export and import: {exported}"),
                Err(error) => panic!("its own export is refused: {error}; {exported}"),
            }
            content(release);
            return;
        }
        let Ok((item, _)) = formats::parse_json_item(line, hint) else {
            return;
        };
        match item.release {
            Ok(release) => {
                let written = formats::ninjs::to_ninjs(&release);
                let again = formats::ninjs::from_value(&written, hint);
                assert!(
                    again.release.is_ok(),
                    "its own ninjs is refused: {:?}; {written}",
                    again.release
                );
                content(release);
            }
            Err(why) => assert!(!why.is_empty(), "a refused item says nothing"),
        }
    } else {
        let Ok(items) = formats::parse_feed(input, hint) else {
            return;
        };
        for item in items {
            let release = match item.release {
                Ok(release) => release,
                Err(why) => {
                    assert!(!why.is_empty(), "a refused item says nothing");
                    continue;
                }
            };
            if let Some(source) = &release.source {
                assert!(!source.provider.is_empty(), "an item without a provider");
                assert!(!source.item_id.is_empty(), "an item without an id");
                assert!(source.version >= 0, "a negative version");
                if let Some(hint) = hint {
                    assert_eq!(source.provider, hint);
                }
            }
            content(release);
        }
    }
}

/// A refusal must be INVALID_ARGUMENT, each violation naming a field under
/// `prefix` and saying what is wrong.
fn sensible(error: &DomainError, prefix: &str) {
    let DomainError::InvalidArgument(violations) = error else {
        panic!("refused with {error:?}, not INVALID_ARGUMENT");
    };
    assert!(!violations.is_empty(), "INVALID_ARGUMENT naming no field");
    for violation in violations {
        assert!(
            violation.field.starts_with(prefix),
            "violation of {:?}, expected a field under {prefix:?}",
            violation.field
        );
        assert!(!violation.description.is_empty(), "{violation:?}");
    }
}

/// A release as the store holds it: valid and normalised.
pub fn stored_release() -> PressRelease {
    let mut release = PressRelease {
        name: "pressReleases/01a21ed9-2856-7715-bb2d-c16c7be80858".into(),
        headline: "Acme opens a plant in Baku".into(),
        body: "<p>BAKU, Azerbaijan — Acme Corp today opened a <b>plant</b>.</p>".into(),
        body_format: BodyFormat::Html as i32,
        language: "en".into(),
        channels: vec!["Business".into()],
        dateline: Some(Dateline {
            country_code: "az".into(),
            ..Default::default()
        }),
        issuer: Some(Organization {
            name: "Acme Corp".into(),
            website: "https://acme.example".into(),
            tickers: vec![Ticker {
                exchange: "NYSE".into(),
                symbol: "ACME".into(),
            }],
            ..Default::default()
        }),
        revision: 3,
        etag: "eba210e44565cf96".into(),
        ..Default::default()
    };
    if let Err(error) = validate::check_content(&mut release) {
        panic!("the stored release of the checks is invalid: {error}");
    }
    release
}
