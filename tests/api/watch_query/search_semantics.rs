//! Exactly search's semantics: what a query stream holds (replayed, live,
//! and from history older than the recent tail) is what search finds for
//! the same query and filter, on the generated corpus.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use pressroom::proto::v1::{
    EventType, PressReleaseEvent, PressReleaseFilter, SearchPressReleasesRequest,
};
use tonic::{Code, Status};

use super::{
    Client, beginning,
    corpus::{Rng, filters, queries, write_corpus},
    now, query_watch,
};
use crate::helpers::{
    TestResult, TestServer, Watched, assert_cursor_order, read_until, read_until_caught_up, seq,
    watch,
};

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
