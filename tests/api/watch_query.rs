//! WatchPressReleases with a text query: exactly search's semantics (in
//! both directions, on generated data, replayed and live), history then
//! live, resuming, progress while nothing matches, UNMATCHED, withdrawals
//! and embargoes as for filtered streams, highlights, bad queries refused as
//! search refuses them, equal queries matched once, and the CLI.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use assert_cmd::Command;
use pressroom::proto::{
    FieldMask,
    v1::{
        DeletePressReleaseRequest, EventType, ImportPressReleasesRequest, Organization,
        PressRelease, PressReleaseEvent, PressReleaseFilter, SearchPressReleasesRequest,
        StartPosition, UpdatePressReleaseRequest, WatchPressReleasesRequest,
        press_release::BodyFormat, press_release_service_client::PressReleaseServiceClient,
        watch_press_releases_request::Start,
    },
};
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt as _;

use crate::helpers::{
    TestResult, TestServer, Watched, assert_cursor_order, create_request, from_now, read_events,
    read_until, read_until_caught_up, release, seq, watch,
};

type Client = PressReleaseServiceClient<Channel>;
type Failure = Box<dyn std::error::Error + Send + Sync>;

/// A watch request with a query (and filter), from a starting point.
fn query_watch(
    query: &str,
    filter: Option<PressReleaseFilter>,
    start: Start,
) -> WatchPressReleasesRequest {
    WatchPressReleasesRequest {
        filter,
        start: Some(start),
        query: query.into(),
        highlight: true,
    }
}

fn beginning() -> Start {
    Start::Position(StartPosition::Beginning as i32)
}

fn now() -> Start {
    Start::Position(StartPosition::Now as i32)
}

/// What a consumer holds after applying events in order: upserts by name,
/// WITHDRAWN and UNMATCHED as deletes.
fn held(events: &[PressReleaseEvent]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for event in events {
        let name = event
            .press_release
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default();
        match event.r#type() {
            EventType::Created | EventType::Updated | EventType::Published => {
                out.insert(name);
            }
            _ => {
                out.remove(&name);
            }
        }
    }
    out
}

/// Every name search finds for a query and filter, following the pages.
async fn searched(
    client: &mut Client,
    query: &str,
    filter: Option<PressReleaseFilter>,
) -> Result<BTreeSet<String>, Status> {
    let mut out = BTreeSet::new();
    let mut token = String::new();
    loop {
        let page = client
            .search_press_releases(SearchPressReleasesRequest {
                query: query.into(),
                filter: filter.clone(),
                page_size: 100,
                page_token: token,
                ..Default::default()
            })
            .await?
            .into_inner();
        out.extend(
            page.results
                .into_iter()
                .filter_map(|r| r.press_release.map(|p| p.name)),
        );
        token = page.next_page_token;
        if token.is_empty() {
            return Ok(out);
        }
    }
}

/// Waits until search finds `word` (written last), so that the index
/// holds every change before it.
async fn wait_for_index(client: &mut Client, word: &str) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match searched(client, word, None).await {
            Ok(found) if !found.is_empty() => return Ok(()),
            Ok(_) => {}
            Err(status) if status.code() == Code::Unavailable => {}
            Err(status) => return Err(status.into()),
        }
        if Instant::now() > deadline {
            return Err(format!("search never found {word:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A tiny seeded PRNG (splitmix64), so the generated data are the same on
/// every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const NOUNS: &[&str] = &[
    "acquisition",
    "acquisitions",
    "merger",
    "mergers",
    "recall",
    "recalls",
    "battery",
    "batteries",
    "factory",
    "factories",
    "solar",
    "panel",
    "panels",
    "vaccine",
    "trial",
    "trials",
    "dividend",
    "outage",
    "lidar",
    "turbine",
];
const VERBS: &[&str] = &[
    "acquires", "acquired", "merging", "recalled", "launches", "launched", "opens", "reports",
    "running", "runs",
];
const ADJECTIVES: &[&str] = &[
    "new",
    "record",
    "strategic",
    "global",
    "electric",
    "quarterly",
];
const ISSUERS: &[&str] = &[
    "Acme Corp",
    "Globex",
    "Initech Systems",
    "Umbrella Pharma",
    "Stark Industries",
    "Wayne Enterprises",
];
const CHANNELS: &[&str] = &["Business", "Energy", "Health"];

fn sentence(rng: &mut Rng) -> String {
    format!(
        "The {} {} a {} {} and the {} {}.",
        rng.pick(NOUNS),
        rng.pick(VERBS),
        rng.pick(ADJECTIVES),
        rng.pick(NOUNS),
        rng.pick(NOUNS),
        rng.pick(&["grew", "said", "e-mail", "don't", "Co."]),
    )
}

/// A release of the generated corpus; every body names the test wire.
fn generated(rng: &mut Rng) -> PressRelease {
    let issuer = rng.pick(ISSUERS);
    let sentences: Vec<String> = (0..1 + rng.below(5)).map(|_| sentence(rng)).collect();
    let html = rng.chance(30);
    let body = if html {
        format!(
            "<p>Testwire &amp; {}</p><ul><li>{}</li></ul>",
            sentences.join("</p><p>"),
            rng.pick(NOUNS)
        )
    } else {
        format!("Testwire: {}", sentences.join(" "))
    };
    PressRelease {
        headline: format!(
            "{issuer} {} {} {}",
            rng.pick(VERBS),
            rng.pick(ADJECTIVES),
            rng.pick(NOUNS)
        ),
        subheadline: if rng.chance(30) {
            sentence(rng)
        } else {
            String::new()
        },
        summary: if rng.chance(50) {
            sentence(rng)
        } else {
            String::new()
        },
        body,
        body_format: if html {
            BodyFormat::Html
        } else {
            BodyFormat::PlainText
        } as i32,
        language: "en".into(),
        issuer: Some(Organization {
            name: issuer.into(),
            ..Default::default()
        }),
        keywords: (0..rng.below(4))
            .map(|_| rng.pick(NOUNS).to_string())
            .collect(),
        channels: vec![rng.pick(CHANNELS).to_string()],
        ..Default::default()
    }
}

/// Queries of every form the language has, written by hand and generated.
fn queries(rng: &mut Rng) -> Vec<String> {
    let mut out: Vec<String> = [
        "merger",
        "acquisition OR merger",
        "\"strategic acquisition\"",
        "acquire -recall",
        "headline:recall",
        "issuer:acme",
        "issuer:\"initech systems\"",
        "keywords:battery",
        "body:\"solar panel\"",
        "battery factory",
        "\"record dividend\" OR outage",
        "running",
        "vaccine trial -headline:vaccine",
        "summary:turbine",
        "lidar OR turbine OR outage -globex",
        "\"electric battery\" issuer:globex",
        "\"don t\" -\"new lidar\"",
        "testwire",
    ]
    .iter()
    .map(|q| q.to_string())
    .collect();
    let fields = [
        "",
        "",
        "",
        "headline:",
        "body:",
        "issuer:",
        "keywords:",
        "summary:",
    ];
    while out.len() < 40 {
        let mut text = String::new();
        let mut excluded_last = false;
        for i in 0..1 + rng.below(3) {
            let field = fields[rng.below(fields.len())];
            let atom = if rng.chance(30) {
                format!("{field}\"{} {}\"", rng.pick(ADJECTIVES), rng.pick(NOUNS))
            } else {
                format!("{field}{}", rng.pick(NOUNS))
            };
            // `OR` only between two terms that are not excluded.
            match (i, rng.below(4)) {
                (0, _) | (_, 0 | 1) => text.push_str(&format!("{atom} ")),
                (_, 2) if !excluded_last => text.push_str(&format!("OR {atom} ")),
                _ => {
                    text.push_str(&format!("-{atom} "));
                    excluded_last = true;
                    continue;
                }
            }
            excluded_last = false;
        }
        out.push(text.trim().to_string());
    }
    out
}

/// The filters the queries are tried with.
fn filters() -> Vec<Option<PressReleaseFilter>> {
    vec![
        None,
        Some(PressReleaseFilter {
            channels: vec!["Energy".into()],
            ..Default::default()
        }),
    ]
}

/// Writes the generated corpus: creates, then updates, withdrawals and
/// embargoes among them, then a sentinel written last. Returns how many
/// changes were written.
async fn write_corpus(client: &mut Client, rng: &mut Rng, count: usize) -> Result<u64, Failure> {
    let mut items = Vec::with_capacity(count);
    for i in 0..count {
        let mut release = generated(rng);
        if i % 29 == 0 {
            // Embargoed far ahead: never visible, never found.
            release.embargo_time = Some(from_now(86_400 * 30));
        }
        items.push(ImportPressReleasesRequest {
            press_release: Some(release),
            request_id: format!("corpus-{i}"),
        });
    }
    let imported = client
        .import_press_releases(tokio_stream::iter(items))
        .await?
        .into_inner();
    assert_eq!(imported.created as usize, count, "{:?}", imported.failed);
    let mut changes = count as u64;
    let all = crate::helpers::list_all(client).await?;
    for (i, current) in all.iter().enumerate() {
        if i % 4 == 0 {
            let replacement = generated(rng);
            client
                .update_press_release(UpdatePressReleaseRequest {
                    press_release: Some(PressRelease {
                        name: current.name.clone(),
                        etag: current.etag.clone(),
                        ..replacement
                    }),
                    update_mask: Some(FieldMask {
                        paths: [
                            "headline",
                            "summary",
                            "body",
                            "body_format",
                            "keywords",
                            "channels",
                        ]
                        .map(String::from)
                        .to_vec(),
                    }),
                })
                .await?;
            changes += 1;
        } else if i % 7 == 0 {
            client
                .delete_press_release(DeletePressReleaseRequest {
                    name: current.name.clone(),
                    ..Default::default()
                })
                .await?;
            changes += 1;
        }
    }
    client
        .create_press_release(create_request(release("Zzsentinel closes the corpus")))
        .await?;
    Ok(changes + 1)
}

/// Compares what a stream holds with what search finds, for one query and
/// filter; returns how many matched.
fn assert_same(
    query: &str,
    filter: &Option<PressReleaseFilter>,
    watched: &Watched,
    found: &BTreeSet<String>,
) -> usize {
    let holds = held(&watched.events);
    let delivered_not_found: Vec<_> = holds.difference(found).collect();
    let found_not_delivered: Vec<_> = found.difference(&holds).collect();
    assert!(
        delivered_not_found.is_empty() && found_not_delivered.is_empty(),
        "query {query:?} with filter {filter:?}: delivered but not found by search {delivered_not_found:?}; \
         found by search but not delivered {found_not_delivered:?}"
    );
    assert_cursor_order(watched);
    holds.len()
}

#[tokio::test]
async fn a_replayed_query_stream_holds_exactly_what_search_finds() -> TestResult {
    let mut server = TestServer::start().await;
    let mut rng = Rng(16);
    write_corpus(&mut server.client, &mut rng, 240).await?;
    wait_for_index(&mut server.client, "zzsentinel").await?;
    let mut client = server.new_client().await;
    let mut matched_somewhere = 0;
    for query in queries(&mut rng) {
        for filter in filters() {
            let found = searched(&mut client, &query, filter.clone()).await?;
            let mut stream = watch(
                &mut client,
                query_watch(&query, filter.clone(), beginning()),
            )
            .await?;
            let watched = read_until_caught_up(&mut stream).await?;
            if assert_same(&query, &filter, &watched, &found) > 0 {
                matched_somewhere += 1;
            }
            // An event is a release as search finds it now, and says where.
            for event in &watched.events {
                if matches!(event.r#type(), EventType::Created | EventType::Updated) {
                    let name = event.press_release.as_ref().map(|r| &r.name);
                    assert!(
                        name.is_some_and(|n| found.contains(n)),
                        "{query:?}: {name:?}"
                    );
                }
            }
        }
    }
    assert!(
        matched_somewhere >= 40,
        "only {matched_somewhere} query streams matched anything"
    );
    Ok(())
}

#[tokio::test]
async fn live_query_streams_hold_exactly_what_search_finds() -> TestResult {
    let mut server = TestServer::start_with(&["--watch-progress-interval", "200ms"]).await;
    let mut rng = Rng(1616);
    let queries = queries(&mut rng);
    // The streams have a connection of their own: read only at the end,
    // they hold up its flow-control window meanwhile.
    let mut client = server.new_client().await;
    let mut streams = Vec::new();
    for query in &queries {
        for filter in filters() {
            let mut stream = watch(&mut client, query_watch(query, filter.clone(), now())).await?;
            read_until_caught_up(&mut stream).await?;
            streams.push((query.clone(), filter, stream));
        }
    }
    let changes = write_corpus(&mut server.client, &mut rng, 200).await?;
    wait_for_index(&mut server.client, "zzsentinel").await?;
    let mut matched_somewhere = 0;
    for (query, filter, mut stream) in streams {
        let watched = read_until(&mut stream, Duration::from_secs(60), |w| {
            w.cursors.last().is_some_and(|c| seq(c) >= changes)
        })
        .await?;
        let found = searched(&mut server.client, &query, filter.clone()).await?;
        if assert_same(&query, &filter, &watched, &found) > 0 {
            matched_somewhere += 1;
        }
    }
    assert!(
        matched_somewhere >= 40,
        "only {matched_somewhere} query streams matched anything"
    );
    let stats = server.watchers.queries();
    assert!(
        stats.changes_matched > 0 && stats.changes_matched <= changes,
        "each change is matched once for all {} streams, not once per stream: {stats:?}",
        queries.len() * 2
    );
    Ok(())
}

#[tokio::test]
async fn history_older_than_the_recent_tail_holds_exactly_what_search_finds() -> TestResult {
    let mut server = TestServer::start_with(&["--watch-progress-interval", "200ms"]).await;
    let mut rng = Rng(4242);
    let queries = [
        "merger",
        "\"strategic acquisition\"",
        "acquire -recall",
        "issuer:acme",
        "body:\"solar panel\"",
        "lidar OR turbine OR outage -globex",
    ];
    // Live streams of the same queries are open while the corpus is
    // written, as in production: the recent tail is matched for them. They
    // are read only at the end, on a connection of their own (unread, they
    // hold up their connection's flow-control window).
    let mut live_client = server.new_client().await;
    let mut live = Vec::new();
    for query in queries {
        let mut stream = watch(&mut live_client, query_watch(query, None, now())).await?;
        read_until_caught_up(&mut stream).await?;
        live.push((query, stream));
    }
    // More changes than the tail holds (4,096): the oldest are read from
    // the store, and the search index answers for them.
    let changes = write_corpus(&mut server.client, &mut rng, 5_000).await?;
    wait_for_index(&mut server.client, "zzsentinel").await?;
    let mut client = server.new_client().await;
    // Replayed: the live streams' queries, whose groups the tail matched,
    // and queries no stream had while the changes were made.
    for query in queries
        .iter()
        .chain(&["battery factory", "headline:recall"])
    {
        for filter in filters() {
            let found = searched(&mut client, query, filter.clone()).await?;
            let mut stream =
                watch(&mut client, query_watch(query, filter.clone(), beginning())).await?;
            let watched = read_until_caught_up(&mut stream).await?;
            assert_same(query, &filter, &watched, &found);
        }
    }
    for (query, mut stream) in live {
        let watched = read_until(&mut stream, Duration::from_secs(60), |w| {
            w.cursors.last().is_some_and(|c| seq(c) >= changes)
        })
        .await?;
        let found = searched(&mut client, query, None).await?;
        assert_same(query, &None, &watched, &found);
    }
    let stats = server.watchers.queries();
    assert!(
        stats.looked_up > 0,
        "the search index answered for history: {stats:?}"
    );
    Ok(())
}

async fn create(client: &mut Client, release: PressRelease) -> Result<PressRelease, Status> {
    Ok(client
        .create_press_release(create_request(release))
        .await?
        .into_inner())
}

#[tokio::test]
async fn history_then_live_with_progress_while_nothing_matches_and_resume() -> TestResult {
    let mut server = TestServer::start_with(&["--watch-progress-interval", "200ms"]).await;
    let client = &mut server.client;
    let query = "merger OR acquisition";
    let mut wanted = Vec::new();
    for i in 0..20 {
        if i % 4 == 0 {
            wanted.push(
                create(
                    client,
                    release(&format!("Acme announces merger number {i}")),
                )
                .await?
                .name,
            );
        } else {
            create(client, release(&format!("Acme opens factory number {i}"))).await?;
        }
    }
    let mut stream = watch(client, query_watch(query, None, beginning())).await?;
    let history = read_until_caught_up(&mut stream).await?;
    assert_eq!(history.names(), wanted, "history: the matches, in order");
    assert!(
        history
            .events
            .iter()
            .all(|e| e.r#type() == EventType::Created)
    );
    let marked = history.events[0]
        .highlights
        .iter()
        .find(|h| h.field == "headline")
        .map(|h| h.snippet.clone());
    assert_eq!(
        marked.as_deref(),
        Some("Acme announces <mark>merger</mark> number 0")
    );
    let mut plain = watch(
        client,
        WatchPressReleasesRequest {
            highlight: false,
            ..query_watch(query, None, beginning())
        },
    )
    .await?;
    let unmarked = read_until_caught_up(&mut plain).await?;
    assert_eq!(unmarked.names(), wanted);
    assert!(
        unmarked.events.iter().all(|e| e.highlights.is_empty()),
        "highlights only when asked for"
    );

    // Nothing matches: progress keeps coming, and moves.
    let mut last_quiet = String::new();
    for i in 0..10 {
        last_quiet = create(client, release(&format!("Acme reports results {i}")))
            .await?
            .name;
    }
    let quiet = read_until(&mut stream, Duration::from_secs(20), |w| {
        w.progress.iter().any(|p| seq(&p.cursor) >= 30)
    })
    .await?;
    assert!(
        quiet.events.is_empty(),
        "no event while nothing matches: {:?}",
        quiet.names()
    );
    assert!(!last_quiet.is_empty());

    // Live matches arrive.
    let live = vec![
        create(client, release("Globex completes acquisition"))
            .await?
            .name,
        create(client, release("Initech mergers approved"))
            .await?
            .name,
    ];
    let seen = read_events(&mut stream, 2).await?;
    assert_eq!(seen.names(), live);
    let resume_after = seen.last_cursor();
    drop(stream);

    // Missed while away: exactly those, resumed from the last cursor.
    let missed = create(client, release("Umbrella weighs a merger"))
        .await?
        .name;
    for i in 0..5 {
        create(client, release(&format!("Umbrella opens plant {i}"))).await?;
    }
    let mut resumed = watch(
        client,
        query_watch(query, None, Start::AfterCursor(resume_after)),
    )
    .await?;
    let again = read_until_caught_up(&mut resumed).await?;
    assert_eq!(again.names(), vec![missed.clone()]);

    // Resumed from a progress cursor, nothing is repeated either.
    let progress_cursor = quiet.last_cursor();
    let mut from_progress = watch(
        client,
        query_watch(query, None, Start::AfterCursor(progress_cursor)),
    )
    .await?;
    let rest = read_until_caught_up(&mut from_progress).await?;
    let mut expected = live;
    expected.push(missed);
    assert_eq!(rest.names(), expected);
    assert_cursor_order(&rest);
    Ok(())
}

/// Waits until the stream has read past log position `position`.
async fn read_past(
    stream: &mut tonic::Streaming<pressroom::proto::v1::WatchPressReleasesResponse>,
    position: u64,
) -> Result<Watched, Failure> {
    read_until(stream, Duration::from_secs(20), |w| {
        w.cursors.last().is_some_and(|c| seq(c) >= position)
    })
    .await
}

/// The next event: its type, its release's name, and the event.
async fn next_event(
    stream: &mut tonic::Streaming<pressroom::proto::v1::WatchPressReleasesResponse>,
) -> Result<(EventType, String, PressReleaseEvent), Failure> {
    let event = read_events(stream, 1).await?.events.remove(0);
    let name = event.press_release.clone().unwrap_or_default().name;
    Ok((event.r#type(), name, event))
}

async fn update(
    client: &mut Client,
    current: &PressRelease,
    change: PressRelease,
    paths: &[&str],
) -> Result<PressRelease, Status> {
    Ok(client
        .update_press_release(UpdatePressReleaseRequest {
            press_release: Some(PressRelease {
                name: current.name.clone(),
                etag: current.etag.clone(),
                ..change
            }),
            update_mask: Some(FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        })
        .await?
        .into_inner())
}

#[tokio::test]
async fn unmatched_withdrawn_and_embargoed_as_for_filtered_streams() -> TestResult {
    let mut server = TestServer::start_with(&["--watch-progress-interval", "100ms"]).await;
    let filter = PressReleaseFilter {
        channels: vec!["Business".into()],
        ..Default::default()
    };
    let mut stream = watch(
        &mut server.new_client().await,
        query_watch("headline:merger", Some(filter), now()),
    )
    .await?;
    read_until_caught_up(&mut stream).await?;
    let client = &mut server.client;
    let business = |headline: &str| PressRelease {
        channels: vec!["Business".into()],
        ..release(headline)
    };
    let headline = |text: &str| PressRelease {
        headline: text.into(),
        ..Default::default()
    };

    // Each step's event is read before the next step, so that no change is
    // compacted away by the next one.
    let a = create(client, business("Acme agrees merger")).await?;
    let (kind, name, created) = next_event(&mut stream).await?;
    assert_eq!((kind, name), (EventType::Created, a.name.clone()));
    assert!(
        created
            .highlights
            .iter()
            .any(|h| h.snippet.contains("<mark>merger</mark>")),
        "{:?}",
        created.highlights
    );
    let b = create(client, business("Globex opens factory")).await?;
    // The stream reads past B before B changes, so the recent tail knows
    // that B never matched.
    read_past(&mut stream, 2).await?;
    let a = update(client, &a, headline("Acme reports results"), &["headline"]).await?;
    let (kind, name, unmatched) = next_event(&mut stream).await?;
    assert_eq!((kind, name), (EventType::Unmatched, a.name.clone()));
    assert!(
        unmatched.highlights.is_empty(),
        "no highlights on UNMATCHED"
    );
    update(
        client,
        &b,
        headline("Globex opens second factory"),
        &["headline"],
    )
    .await?;
    let a = update(client, &a, headline("Acme merger back on"), &["headline"]).await?;
    let (kind, name, _) = next_event(&mut stream).await?;
    assert_eq!(
        (kind, name),
        (EventType::Updated, a.name.clone()),
        "B, which never matched, is not UNMATCHED"
    );
    update(
        client,
        &a,
        PressRelease {
            channels: vec!["Sports".into()],
            ..Default::default()
        },
        &["channels"],
    )
    .await?;
    let (kind, name, _) = next_event(&mut stream).await?;
    assert_eq!(
        (kind, name),
        (EventType::Unmatched, a.name.clone()),
        "the filter"
    );
    let c = create(client, business("Initech merger")).await?;
    let (kind, name, _) = next_event(&mut stream).await?;
    assert_eq!((kind, name), (EventType::Created, c.name.clone()));
    client
        .delete_press_release(DeletePressReleaseRequest {
            name: c.name.clone(),
            ..Default::default()
        })
        .await?;
    let (kind, name, _) = next_event(&mut stream).await?;
    assert_eq!((kind, name), (EventType::Withdrawn, c.name.clone()));
    let e = create(client, business("Umbrella builds plant")).await?;
    read_past(&mut stream, 9).await?;
    client
        .delete_press_release(DeletePressReleaseRequest {
            name: e.name.clone(),
            ..Default::default()
        })
        .await?;
    let d = create(
        client,
        PressRelease {
            embargo_time: Some(from_now(2)),
            ..business("Stark merger embargoed")
        },
    )
    .await?;
    let (kind, name, _) = next_event(&mut stream).await?;
    assert_eq!(
        (kind, name),
        (EventType::Published, d.name),
        "the embargoed match at its time; nothing for E, which never matched"
    );
    let extra = read_until(&mut stream, Duration::from_millis(500), |w| {
        !w.events.is_empty()
    })
    .await;
    assert!(extra.is_err(), "nothing more");
    Ok(())
}

/// The status, its message and the fields its BadRequest names.
fn described(status: &Status) -> (Code, String, Vec<(String, String)>) {
    let fields = status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default();
    (status.code(), status.message().to_string(), fields)
}

#[tokio::test]
async fn bad_queries_are_refused_as_search_refuses_them() -> TestResult {
    let mut server = TestServer::start().await;
    let long = "acme ".repeat(201);
    for query in [
        "OR acme",
        "acme OR",
        "acme \"solar",
        "color:red",
        "-recall",
        "acme \"!!!\"",
        "headline: acme",
        "acme\u{7}bell",
        long.as_str(),
    ] {
        let searched = server
            .client
            .search_press_releases(SearchPressReleasesRequest {
                query: query.into(),
                ..Default::default()
            })
            .await;
        let watched = server
            .client
            .watch_press_releases(query_watch(query, None, now()))
            .await;
        let (Err(search), Err(watch)) = (searched, watched) else {
            return Err(format!("{query:?} was not refused by both").into());
        };
        assert_eq!(
            search.code(),
            Code::InvalidArgument,
            "{query:?}: {search:?}"
        );
        assert_eq!(described(&watch), described(&search), "{query:?}");
    }
    let without_query = server
        .client
        .watch_press_releases(WatchPressReleasesRequest {
            highlight: true,
            ..Default::default()
        })
        .await
        .err()
        .map(|status| described(&status));
    assert!(
        without_query.is_some_and(|(code, _, fields)| code == Code::InvalidArgument
            && fields.iter().any(|(field, _)| field == "highlight")),
        "highlight needs a query"
    );
    let refused = server
        .client
        .watch_press_releases(query_watch("acme \"!!!\"", None, now()))
        .await
        .err()
        .map(|s| s.message().to_string())
        .unwrap_or_default();
    assert!(refused.contains("position 5"), "{refused}");
    Ok(())
}

#[tokio::test]
async fn equal_queries_share_one_matching() -> TestResult {
    let mut server = TestServer::start().await;
    let mut client = server.new_client().await;
    let mut streams = Vec::new();
    for query in [
        "solar OR wind acme",
        "acme  wind OR solar",
        "acme wind OR solar",
        "tidal",
    ] {
        let mut stream = watch(&mut client, query_watch(query, None, now())).await?;
        read_until_caught_up(&mut stream).await?;
        streams.push(stream);
    }
    assert_eq!(server.watchers.queries().groups, 2);
    create(&mut server.client, release("Acme builds a wind farm")).await?;
    for stream in streams.iter_mut().take(3) {
        assert_eq!(read_events(stream, 1).await?.events.len(), 1);
    }
    assert_eq!(
        server.watchers.queries().changes_matched,
        1,
        "one change, matched once for four streams"
    );
    drop(streams);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.watchers.queries().groups > 0 {
        if Instant::now() > deadline {
            return Err("the groups outlived their streams".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::test]
async fn the_cli_watches_with_a_query() -> TestResult {
    let mut server = TestServer::start().await;
    let wanted = create(
        &mut server.client,
        release("Acme announces a product recall"),
    )
    .await?;
    create(&mut server.client, release("Acme announces record results")).await?;
    let addr = server.addr;
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pressroom"))
            .env("PRESSROOM_SERVER", format!("http://{addr}"))
            .env_remove("PRESSROOM_TOKEN")
            .args([
                "watch",
                "--query",
                "recalled OR \"product recalls\"",
                "--highlight",
                "--from-beginning",
                "--until-caught-up",
                "-o",
                "jsonl",
            ])
            .output()
    })
    .await??;
    assert!(output.status.success(), "{output:?}");
    let events: Vec<PressReleaseEvent> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let names: Vec<String> = events
        .iter()
        .filter_map(|e| e.press_release.as_ref().map(|r| r.name.clone()))
        .collect();
    assert_eq!(names, vec![wanted.name]);
    assert!(!events[0].highlights.is_empty());

    let refused = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pressroom"))
            .env("PRESSROOM_SERVER", format!("http://{addr}"))
            .env_remove("PRESSROOM_TOKEN")
            .args(["watch", "--query", "acme OR"])
            .output()
    })
    .await??;
    assert_eq!(refused.status.code(), Some(4), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("position 5"));
    Ok(())
}
