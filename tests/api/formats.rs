//! Wire formats through the real server and the real CLI: real NewsML-G2,
//! NewsML 1.2, ninjs and RSS documents imported field by field, later
//! versions of a source becoming updates, a ninjs export read back into a
//! fresh server, and `pressroom follow` kept in step with a changing feed
//! served over HTTP on port 0 (304s, 500s, garbage, a restart).

use std::{
    collections::VecDeque,
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex, PoisonError},
};

use assert_cmd::Command;
use axum::{extract::State, http::HeaderMap, response::IntoResponse, routing::get};
use pressroom::{
    formats,
    proto::v1::{
        CreatePressReleaseRequest, DeletePressReleaseRequest, ImportPressReleasesRequest,
        PressRelease, Source, press_release::State as ReleaseState,
    },
};
use tonic::Code;

use crate::helpers::{
    TestResult, TestServer, create_request, from_now, list_all, release, temp_dir,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/formats");

/// The client binary, pointed at `addr`.
fn pressroom(addr: SocketAddr) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pressroom"));
    command
        .env("PRESSROOM_SERVER", format!("http://{addr}"))
        .env_remove("PRESSROOM_TOKEN")
        .env_remove("PRESSROOM_CA_CERT");
    command
}

/// Runs it on the blocking pool; (exit code, stdout, stderr).
async fn run(mut command: Command) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || match command.output() {
        Ok(output) => (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
        Err(error) => (-1, String::new(), error.to_string()),
    })
    .await
    .unwrap_or_else(|e| (-1, String::new(), e.to_string()))
}

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

fn find<'a>(all: &'a [PressRelease], headline: &str) -> &'a PressRelease {
    all.iter()
        .find(|r| r.headline.starts_with(headline))
        .unwrap_or_else(|| panic!("no press release {headline:?} among {}", all.len()))
}

#[tokio::test]
async fn real_wire_documents_import_field_by_field() -> TestResult {
    let mut server = TestServer::start().await;
    let files = [
        "iptc-g2-listing-1-news-item.xml",
        "iptc-g2-listing-2-text-nitf.xml",
        "dpa-g2-with-dateline.xml",
        "dpa-g2-embargoed.xml",
        "businesswire-newsml-1.2-20130731006140.xml",
        "businesswire-ninjs-3.0-20130731006140.json",
        "ntb-ninjs-2.0-text.json",
        "globenewswire-us-2021-02-20.rss",
        "gov-scot-news.rss",
    ];
    let mut command = pressroom(server.addr);
    command.arg("import").args(files.iter().map(|f| fixture(f)));
    let (code, out, err) = run(command).await;
    assert_eq!(code, 4, "one item has no body: {out}{err}");
    assert!(
        out.contains("14 items read: 13 created, 0 duplicates, 1 failed, 0 updated"),
        "{out}"
    );
    assert!(
        out.contains("urn:newsml:acmenews.com:20161018:US-FINANCE-FED: no body"),
        "the failed item is named with its reason: {out}"
    );
    assert!(
        err.contains("no body: its description is the body"),
        "{err}"
    );

    let all = list_all(&mut server.client).await?;
    assert_eq!(all.len(), 13);

    // GlobeNewswire: tickers and the ISIN on the issuer, not channels;
    // the dateline from the lead.
    let ebix = find(&all, "Ebix Shares Strong Business Outlook");
    let issuer = ebix.issuer.clone().unwrap_or_default();
    assert_eq!(issuer.name, "Ebix, Inc.");
    assert_eq!(
        issuer
            .tickers
            .iter()
            .map(|t| format!("{}:{}", t.exchange, t.symbol))
            .collect::<Vec<_>>(),
        ["NASDAQ:EBIX"]
    );
    assert_eq!(issuer.securities.len(), 1);
    assert_eq!(
        (
            issuer.securities[0].scheme.as_str(),
            issuer.securities[0].value.as_str()
        ),
        ("ISIN", "US2787152063")
    );
    assert_eq!(ebix.channels, ["Calendar of Events"]);
    let dateline = ebix.dateline.clone().unwrap_or_default();
    assert_eq!(
        (
            dateline.locality.as_str(),
            dateline.region.as_str(),
            dateline.country_code.as_str()
        ),
        ("Johns Creek", "Georgia", "US")
    );
    assert_eq!(ebix.publish_time.map(|t| t.seconds), Some(1_613_779_500));
    assert!(ebix.body.starts_with("<p") && ebix.body.contains("JOHNS CREEK, Ga."));

    // The filter the issue asked for: by ticker.
    let by_ticker = server
        .client
        .list_press_releases(pressroom::proto::v1::ListPressReleasesRequest {
            filter: Some(pressroom::proto::v1::PressReleaseFilter {
                tickers: vec!["NASDAQ:EBIX".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?
        .into_inner()
        .press_releases;
    assert_eq!(by_ticker.len(), 1);

    // dpa: German, a dateline, a version; the embargo of 2025 has passed.
    let dpa = find(&all, "DeepSeek-Schock aus China");
    assert_eq!(dpa.language, "de");
    assert_eq!(dpa.subheadline, "Künstliche Intelligenz");
    assert_eq!(
        dpa.source
            .as_ref()
            .map(|s| (s.provider.as_str(), s.version)),
        Some(("dpa", 2))
    );
    assert!(!dpa.body.contains("<script") && dpa.body.contains("<h2>"));
    let embargoed = find(&all, "Steinmeier: Russland zerstört");
    assert_eq!(
        embargoed.embargo_time.map(|t| t.seconds),
        Some(1_737_655_200)
    );
    assert_eq!(embargoed.publish_time, embargoed.embargo_time);
    assert_eq!(embargoed.state(), ReleaseState::Published);

    // Business Wire's NewsML 1.2: dateline, ticker, contacts, media.
    let business_wire = all
        .iter()
        .find(|r| {
            r.source
                .as_ref()
                .is_some_and(|s| s.item_id.starts_with("urn:newsml:businesswire.com"))
        })
        .ok_or("no Business Wire NewsML item")?;
    let dateline = business_wire.dateline.clone().unwrap_or_default();
    assert_eq!(
        (dateline.text.as_str(), dateline.region.as_str()),
        ("KANSAS CITY, Mo.", "Missouri")
    );
    assert_eq!(
        business_wire
            .issuer
            .as_ref()
            .map(|i| (i.name.as_str(), i.tickers[0].symbol.as_str())),
        Some(("Applebee’s", "DIN"))
    );
    assert_eq!(business_wire.contacts.len(), 2);
    assert_eq!(business_wire.media.len(), 9);

    // NTB's ninjs 2.0: Norwegian, description as body.
    let ntb = find(&all, "Google har kjøpt giganttomt i Skien");
    assert_eq!(ntb.language, "nb-NO");
    assert!(ntb.body.starts_with("IT-giganten Google"));

    // A government newsroom.
    let scot = find(&all, "Scotland's future must be decided");
    assert_eq!(scot.channels, ["Communities", "Constitution"]);

    // Importing it all again: nothing new, nothing changed.
    let mut command = pressroom(server.addr);
    command.arg("import").args(files.iter().map(|f| fixture(f)));
    let (_, out, _) = run(command).await;
    assert!(
        out.contains("14 items read: 0 created, 13 duplicates, 1 failed, 0 updated"),
        "{out}"
    );
    Ok(())
}

/// The dpa story of the fixture, as the parser makes it.
fn dpa_story() -> PressRelease {
    let bytes = std::fs::read(fixture("dpa-g2-with-dateline.xml")).unwrap_or_default();
    let items = formats::parse_document(&bytes, None).unwrap_or_default();
    items
        .into_iter()
        .next()
        .and_then(|i| i.release.ok())
        .unwrap_or_default()
}

fn with_version(mut release: PressRelease, version: i64, headline: &str) -> PressRelease {
    if let Some(source) = &mut release.source {
        source.version = version;
    }
    release.headline = headline.to_string();
    release
}

fn import_one(release: PressRelease) -> Vec<ImportPressReleasesRequest> {
    vec![ImportPressReleasesRequest {
        press_release: Some(release),
        request_id: String::new(),
    }]
}

#[tokio::test]
async fn a_later_version_of_a_source_updates_its_press_release() -> TestResult {
    let mut server = TestServer::start().await;
    let story = dpa_story();
    assert_eq!(story.source.as_ref().map(|s| s.version), Some(2));
    let importer = server.client.clone();
    let import = |release: PressRelease| {
        let mut client = importer.clone();
        async move {
            client
                .import_press_releases(tokio_stream::iter(import_one(release)))
                .await
                .map(tonic::Response::into_inner)
        }
    };

    let first = import(story.clone()).await?;
    assert_eq!((first.created, first.updated, first.duplicates), (1, 0, 0));
    let again = import(story.clone()).await?;
    assert_eq!((again.created, again.updated, again.duplicates), (0, 0, 1));
    let before = list_all(&mut server.client).await?;
    assert_eq!(before.len(), 1);
    let original = before[0].clone();

    // Version 3 with a corrected headline: the same press release, updated.
    let corrected = with_version(
        story.clone(),
        3,
        "DeepSeek-Schock: Zeichen für eine KI-Zeitenwende?",
    );
    let third = import(corrected.clone()).await?;
    assert_eq!(
        (third.created, third.updated, third.duplicates),
        (0, 1, 0),
        "{third:?}"
    );
    let after = list_all(&mut server.client).await?;
    assert_eq!(after.len(), 1, "an update, not a duplicate");
    let updated = &after[0];
    assert_eq!(updated.name, original.name);
    assert_eq!(updated.create_time, original.create_time);
    assert_eq!(updated.revision, original.revision + 1);
    assert_eq!(
        updated.headline,
        "DeepSeek-Schock: Zeichen für eine KI-Zeitenwende?"
    );
    assert_eq!(updated.source.as_ref().map(|s| s.version), Some(3));
    assert_eq!(updated.publish_time, original.publish_time);

    // Version 3 again: a duplicate; version 2 again: older, a duplicate.
    let repeat = import(corrected.clone()).await?;
    assert_eq!(
        (repeat.created, repeat.updated, repeat.duplicates),
        (0, 0, 1)
    );
    let older = import(story.clone()).await?;
    assert_eq!((older.created, older.updated, older.duplicates), (0, 0, 1));
    // Version 3 with other content still conflicts.
    let clash = import(with_version(story.clone(), 3, "Something else")).await?;
    assert_eq!(clash.failed.len(), 1);
    assert_eq!(clash.failed[0].code, Code::AlreadyExists as i32);
    assert!(clash.failed[0].message.contains("version 3"), "{clash:?}");

    // CreatePressRelease follows the same rule and answers with the update.
    let fourth = server
        .client
        .create_press_release(CreatePressReleaseRequest {
            press_release: Some(with_version(story.clone(), 4, "Version four")),
            request_id: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(fourth.name, original.name);
    assert_eq!(fourth.revision, original.revision + 2);
    assert_eq!(fourth.headline, "Version four");
    assert_eq!(list_all(&mut server.client).await?.len(), 1);

    // Two later versions in one import settle in version order.
    let both = server
        .client
        .import_press_releases(tokio_stream::iter(
            [
                with_version(story.clone(), 6, "Version six"),
                with_version(story.clone(), 5, "Version five"),
            ]
            .into_iter()
            .flat_map(import_one)
            .collect::<Vec<_>>(),
        ))
        .await?
        .into_inner();
    assert_eq!((both.updated, both.duplicates), (1, 1), "{both:?}");
    let last = list_all(&mut server.client).await?;
    assert_eq!(last[0].headline, "Version six");
    Ok(())
}

/// Item `e-1` of a wire at `version`, embargoed `embargo_seconds` ahead if given.
fn versioned(version: i64, headline: &str, embargo_seconds: Option<i64>) -> PressRelease {
    PressRelease {
        source: Some(Source {
            provider: "wire".into(),
            item_id: "e-1".into(),
            version,
            ..Default::default()
        }),
        embargo_time: embargo_seconds.map(from_now),
        ..release(headline)
    }
}

#[tokio::test]
async fn a_later_version_settles_the_embargo_as_an_update_does() -> TestResult {
    let mut server = TestServer::start().await;
    let creator = server.client.clone();
    let create = |release: PressRelease| {
        let mut client = creator.clone();
        async move {
            client
                .create_press_release(create_request(release))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let first = create(versioned(1, "Under embargo", Some(3_600))).await?;
    assert_eq!(first.state(), ReleaseState::Embargoed);
    assert_eq!(first.publish_time, first.embargo_time);

    // A later version still under embargo stays embargoed.
    let second = create(versioned(2, "Still under embargo", Some(7_200))).await?;
    assert_eq!(second.name, first.name);
    assert_eq!(second.state(), ReleaseState::Embargoed);
    assert_eq!(second.publish_time, second.embargo_time);

    // One without an embargo publishes it now, and it is listed: its
    // publish time was only the embargo's, so it is not kept.
    let before = from_now(-1);
    let third = create(versioned(3, "Published early", None)).await?;
    assert_eq!(third.name, first.name);
    assert_eq!(third.state(), ReleaseState::Published);
    let published = third.publish_time.ok_or("no publish time")?;
    assert!(
        published.seconds >= before.seconds && published.seconds <= from_now(1).seconds,
        "published now, not at the old embargo time: {published:?}"
    );
    assert_eq!(list_all(&mut server.client).await?.len(), 1);

    // A published release cannot be embargoed again by a later version.
    let again = create(versioned(4, "Embargoed again", Some(3_600))).await;
    assert_eq!(
        again.map(|r| r.headline).map_err(|s| s.code()),
        Err(Code::FailedPrecondition)
    );
    // A later version without an embargo keeps the publish time.
    let fifth = create(versioned(5, "Corrected", None)).await?;
    assert_eq!(fifth.publish_time, third.publish_time);
    assert_eq!(fifth.revision, third.revision + 1);

    // A withdrawn release is never brought back by a later version.
    server
        .client
        .delete_press_release(DeletePressReleaseRequest {
            name: first.name.clone(),
            ..Default::default()
        })
        .await?;
    let after = create(versioned(6, "Back again", None)).await;
    assert_eq!(after.map_err(|s| s.code()).err(), Some(Code::AlreadyExists));
    assert!(list_all(&mut server.client).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_ninjs_export_reads_back_into_a_fresh_server() -> TestResult {
    let mut first = TestServer::start().await;
    let mut command = pressroom(first.addr);
    command.args([
        "import",
        &fixture("globenewswire-us-2021-02-20.rss"),
        &fixture("businesswire-newsml-1.2-20130731006140.xml"),
    ]);
    let (code, out, err) = run(command).await;
    assert_eq!(code, 0, "{out}{err}");
    let originals = list_all(&mut first.client).await?;
    assert_eq!(originals.len(), 6);

    // `get -o ninjs`: one ninjs 3.0 object.
    let ebix = find(&originals, "Ebix Shares").clone();
    let mut command = pressroom(first.addr);
    command.args(["get", &ebix.name, "-o", "ninjs"]);
    let (code, out, err) = run(command).await;
    assert_eq!(code, 0, "{err}");
    let object: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(object["standard"]["version"], "3.0");
    assert_eq!(
        object["uri"],
        ebix.source
            .as_ref()
            .map(|s| s.item_id.clone())
            .unwrap_or_default()
    );
    assert_eq!(object["headlines"][0]["value"], ebix.headline);
    assert_eq!(object["organisations"][0]["symbols"][0]["ticker"], "EBIX");
    assert_eq!(
        object["organisations"][0]["symbols"][1]["ticker"],
        "US2787152063"
    );
    assert_eq!(object["located"], "Johns Creek");

    // `export --format ninjs` into a fresh server.
    let dir = temp_dir();
    let file = dir.path().join("export.jsonl");
    let mut command = pressroom(first.addr);
    command
        .args(["export", "--format", "ninjs", "--output"])
        .arg(&file);
    let (code, _, err) = run(command).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&file)?.lines().count(), 6);

    let mut second = TestServer::start().await;
    let mut command = pressroom(second.addr);
    command.arg("import").arg(&file);
    let (code, out, err) = run(command).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("6 items read: 6 created"), "{out}");
    let copies = list_all(&mut second.client).await?;
    assert_eq!(copies.len(), 6);
    for original in &originals {
        let copy = copies
            .iter()
            .find(|c| c.source == original.source)
            .unwrap_or_else(|| panic!("{:?} did not come back", original.source));
        // What both models hold comes back as it was.
        assert_eq!(copy.headline, original.headline);
        assert_eq!(copy.subheadline, original.subheadline);
        assert_eq!(copy.summary, original.summary);
        assert_eq!(copy.body, original.body);
        assert_eq!(copy.body_format, original.body_format);
        assert_eq!(copy.language, original.language);
        assert_eq!(copy.issuer, original.issuer);
        assert_eq!(copy.contacts.len(), original.contacts.len());
        assert_eq!(copy.channels, original.channels);
        assert_eq!(copy.subjects, original.subjects);
        assert_eq!(copy.industries, original.industries);
        assert_eq!(copy.keywords, original.keywords);
        assert_eq!(copy.media, original.media);
        assert_eq!(copy.publish_time, original.publish_time);
        // What ninjs cannot hold: the dateline's region and printed text.
        let (a, b) = (
            copy.dateline.clone().unwrap_or_default(),
            original.dateline.clone().unwrap_or_default(),
        );
        assert_eq!((a.locality, a.country_code), (b.locality, b.country_code));
    }
    // Importing the export again changes nothing.
    let mut command = pressroom(second.addr);
    command.arg("import").arg(&file);
    let (_, out, _) = run(command).await;
    assert!(out.contains("0 created, 6 duplicates"), "{out}");
    Ok(())
}

/// A scripted response: status, ETag, body.
type Scripted = (u16, Option<String>, Vec<u8>);

/// A scripted HTTP server: each request takes the next response of the
/// script (the last one repeats) and records its conditional headers.
#[derive(Clone, Default)]
struct Script {
    responses: Arc<Mutex<VecDeque<Scripted>>>,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

async fn serve_script(State(script): State<Script>, headers: HeaderMap) -> impl IntoResponse {
    script
        .seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(
            headers
                .get("if-none-match")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        );
    let mut responses = script
        .responses
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let (status, etag, body) = if responses.len() > 1 {
        responses.pop_front().unwrap_or_default()
    } else {
        responses.front().cloned().unwrap_or_default()
    };
    let mut builder = axum::http::Response::builder()
        .status(status)
        .header("content-type", "application/rss+xml");
    if let Some(etag) = etag {
        builder = builder.header("etag", etag);
    }
    builder
        .body(axum::body::Body::from(body))
        .unwrap_or_default()
}

async fn start_script(script: Script) -> Result<SocketAddr, std::io::Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/feed.rss", get(serve_script))
        .with_state(script);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

fn follow(addr: SocketAddr, feed: SocketAddr, state: &Path, polls: u32) -> Command {
    let mut command = pressroom(addr);
    command
        .args([
            "follow",
            &format!("http://{feed}/feed.rss"),
            "--interval",
            "100ms",
            "--max-backoff",
            "300ms",
            "--polls",
            &polls.to_string(),
            "--state-file",
        ])
        .arg(state);
    command
}

#[tokio::test]
async fn follow_keeps_pressroom_in_step_with_a_changing_feed() -> TestResult {
    let mut server = TestServer::start().await;
    let feed = std::fs::read_to_string(fixture("globenewswire-us-2021-02-20.rss"))?;
    // The next version of the feed: Ebix's item re-published a minute
    // later with a corrected headline, and a new item on top.
    let changed = feed
        .replace(
            "<title>Ebix Shares Strong Business Outlook and Discusses Recent Events</title>",
            "<title>Ebix Shares Strong Business Outlook, Discusses Recent Events</title>",
        )
        .replace(
            "<dc:modified>Sat, 20 Feb 2021 00:06 GMT</dc:modified>",
            "<dc:modified>Sat, 20 Feb 2021 00:07 GMT</dc:modified>",
        )
        .replacen(
            "    <item>",
            "    <item>\n      <guid>https://www.globenewswire.com/news-release/new</guid>\n      \
             <title>A new item</title>\n      <description>NEW YORK, Feb. 20, 2021 (GLOBE NEWSWIRE) -- Text.</description>\n      \
             <pubDate>Sat, 20 Feb 2021 04:00 GMT</pubDate>\n    </item>\n    <item>",
            1,
        );
    assert_ne!(changed, feed);
    let script = Script::default();
    script
        .responses
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend([
            (200, Some("\"v1\"".to_string()), feed.clone().into_bytes()),
            (304, None, Vec::new()),
            (500, None, b"overloaded".to_vec()),
            (
                200,
                Some("\"junk\"".to_string()),
                b"<html>not a feed</html>".to_vec(),
            ),
            (
                200,
                Some("\"v2\"".to_string()),
                changed.clone().into_bytes(),
            ),
        ]);
    let feed_addr = start_script(script.clone()).await?;
    let dir = temp_dir();
    let state = dir.path().join("follow-state.json");

    let (code, _, err) = run(follow(server.addr, feed_addr, &state, 5)).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("follow url="))
        .collect();
    assert_eq!(lines.len(), 5, "a line per poll:\n{err}");
    assert!(
        lines[0].contains("status=200 items=5 sent=5") && lines[0].contains("created=5"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("status=304") && lines[1].contains("sent=0"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("error=\"HTTP status 500\"") && lines[2].contains("failures=1"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains("error=\"the document cannot be read") && lines[3].contains("failures=2"),
        "{}",
        lines[3]
    );
    assert!(
        lines[4].contains("status=200 items=6 sent=2 unchanged=4")
            && lines[4].contains("created=1 updated=1 duplicates=0 failed=0"),
        "{}",
        lines[4]
    );
    // Conditional GETs: the second request named the first's ETag; after
    // the garbage (whose ETag was not kept) the feed was asked for again
    // with the last good one.
    let seen = script
        .seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert_eq!(seen[0], None);
    assert_eq!(seen[1].as_deref(), Some("\"v1\""));
    assert_eq!(seen[4].as_deref(), Some("\"v1\""));

    let stored = list_all(&mut server.client).await?;
    assert_eq!(stored.len(), 6);
    let ebix = find(&stored, "Ebix Shares Strong Business Outlook");
    assert_eq!(
        ebix.headline,
        "Ebix Shares Strong Business Outlook, Discusses Recent Events"
    );
    assert_eq!(ebix.revision, 2, "updated, not duplicated");

    // A restart with the same state file: the server answers 200 with the
    // same document under a new ETag; nothing is sent again.
    script
        .responses
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    script
        .responses
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push_back((200, Some("\"v3\"".to_string()), changed.into_bytes()));
    let (code, _, err) = run(follow(server.addr, feed_addr, &state, 1)).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("status=200 items=6 sent=0 unchanged=6"),
        "{err}"
    );
    let seen = script
        .seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert_eq!(
        seen.last().cloned().flatten().as_deref(),
        Some("\"v2\""),
        "the restart sends the saved ETag"
    );
    let again = list_all(&mut server.client).await?;
    assert_eq!(
        again
            .iter()
            .map(|r| (&r.name, r.revision))
            .collect::<Vec<_>>(),
        stored
            .iter()
            .map(|r| (&r.name, r.revision))
            .collect::<Vec<_>>(),
        "nothing changed on the server"
    );

    // Without the state file everything is sent once more, and the server
    // finds only duplicates: idempotent by source and version.
    std::fs::remove_file(&state)?;
    let (code, _, err) = run(follow(server.addr, feed_addr, &state, 1)).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("sent=6") && err.contains("created=0 updated=0 duplicates=6"),
        "{err}"
    );
    assert_eq!(list_all(&mut server.client).await?.len(), 6);
    Ok(())
}
