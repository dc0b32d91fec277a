//! `pressroom follow` kept in step with a changing feed served over HTTP on
//! port 0 by a scripted server (304s, 500s, garbage, a restart).

use std::{
    collections::VecDeque,
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex, PoisonError},
};

use assert_cmd::Command;
use axum::{extract::State, http::HeaderMap, response::IntoResponse, routing::get};

use super::{find, fixture, pressroom, run};
use crate::helpers::{TestResult, TestServer, list_all, temp_dir};

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
