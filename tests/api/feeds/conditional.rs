//! Conditional GET: validators, 304s (which read no record), and what
//! moves them.

use std::time::{Duration, Instant};

use http::StatusCode;

use super::{Answer, Feeds};
use crate::helpers::{TestResult, TestServer, create_request, damage_record, release};

#[tokio::test]
async fn an_unchanged_feed_is_a_304_until_a_release_is_published() -> TestResult {
    let mut server = TestServer::start_with(&["--feeds-listen", "127.0.0.1:0"]).await;
    server
        .client
        .create_press_release(create_request(release("The first")))
        .await?;
    let feeds = Feeds::of(&server)?;
    let path = "/feeds/rss?language=en";
    let first = feeds.get(path, &[]).await?;
    assert_eq!(first.status, StatusCode::OK);
    let etag = first.header("etag");
    assert!(etag.starts_with("W/\""), "{etag}");
    assert_eq!(first.header("cache-control"), "private, max-age=60");
    let vary = |answer: &Answer| -> Vec<String> {
        answer
            .headers
            .get_all("vary")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .map(str::to_ascii_lowercase)
            .collect()
    };
    assert_eq!(vary(&first), ["accept-encoding"]);

    let again = feeds.get(path, &[("if-none-match", &etag)]).await?;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), etag);
    assert_eq!(again.header("cache-control"), "private, max-age=60");
    // A 304 carries the validators and Vary the 200 would (RFC 9110,
    // 15.4.5): a cache keys what it revalidates by encoding.
    assert_eq!(vary(&again), ["accept-encoding"], "Vary on the 304");
    // Last-Modified is sent too, though not always the same date: within
    // the second a position is first seen its date may still move on by
    // one (see syndication::validators).
    assert!(
        !again.header("last-modified").is_empty(),
        "Last-Modified on the 304"
    );
    let other_format = feeds
        .get("/feeds/atom?language=en", &[("if-none-match", &etag)])
        .await?;
    assert_eq!(
        other_format.status,
        StatusCode::OK,
        "each format has its own tag"
    );
    let gzipped = feeds.get(path, &[("accept-encoding", "gzip")]).await?;
    assert_eq!(gzipped.header("content-encoding"), "gzip");
    assert_eq!(gzipped.header("etag"), etag, "the same feed, compressed");
    assert_eq!(vary(&gzipped), ["accept-encoding"], "Vary once");
    assert!(gzipped.body.len() < first.body.len());
    let head = feeds.send(reqwest::Method::HEAD, path, &[]).await?;
    assert_eq!(
        (head.status, head.header("etag")),
        (StatusCode::OK, etag.clone())
    );
    // HEAD answers with the headers GET does, validators included, and so
    // does its 304.
    assert!(head.body.is_empty());
    assert!(
        !head.header("last-modified").is_empty(),
        "HEAD: last-modified"
    );
    for name in ["cache-control", "content-type"] {
        assert_eq!(head.header(name), first.header(name), "HEAD: {name}");
    }
    assert_eq!(vary(&head), ["accept-encoding"], "HEAD: vary");
    let head_again = feeds
        .send(reqwest::Method::HEAD, path, &[("if-none-match", &etag)])
        .await?;
    assert_eq!(head_again.status, StatusCode::NOT_MODIFIED);
    assert!(
        !head_again.header("last-modified").is_empty(),
        "HEAD 304: last-modified"
    );
    for name in ["etag", "cache-control"] {
        assert_eq!(
            head_again.header(name),
            again.header(name),
            "HEAD 304: {name}"
        );
    }
    assert_eq!(vary(&head_again), ["accept-encoding"], "HEAD 304: vary");

    // If-Modified-Since alone: a date handed out in the second the feed
    // changed cannot prove anything yet; within a second or two a date
    // that does is handed out, and then it is a 304.
    let deadline = Instant::now() + Duration::from_secs(5);
    let last_modified = loop {
        let date = feeds.get(path, &[]).await?.header("last-modified");
        let answer = feeds.get(path, &[("if-modified-since", &date)]).await?;
        if answer.status == StatusCode::NOT_MODIFIED {
            break date;
        }
        assert_eq!(answer.status, StatusCode::OK);
        assert!(Instant::now() < deadline, "If-Modified-Since never matched");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // If-None-Match decides alone when both are sent.
    let both = feeds
        .get(
            path,
            &[
                ("if-none-match", "W/\"other\""),
                ("if-modified-since", &last_modified),
            ],
        )
        .await?;
    assert_eq!(both.status, StatusCode::OK);

    let second = server
        .client
        .create_press_release(create_request(release("The second")))
        .await?
        .into_inner();
    let changed = feeds.get(path, &[("if-none-match", &etag)]).await?;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.header("etag"), etag);
    assert!(changed.text().contains(&second.name));
    let by_date = feeds
        .get(path, &[("if-modified-since", &last_modified)])
        .await?;
    assert_eq!(
        by_date.status,
        StatusCode::OK,
        "a date never hides a change"
    );

    // A feed with a search query is conditional too.
    let searched = "/feeds/json?q=second";
    let deadline = Instant::now() + Duration::from_secs(10);
    // The index makes a release searchable a moment before it publishes
    // the position it reached (a moment that can pass 100 ms while the
    // whole suite runs), so a tag that shows the release may still carry
    // the older position and move once more. A tag that moves costs a
    // refetch, never a stale 304: each tag handed out is sent back at once,
    // and a moved one must answer the whole feed, until one answers 304.
    let mut tag: Option<String> = None;
    loop {
        let conditional: Vec<(&str, &str)> =
            tag.iter().map(|t| ("if-none-match", t.as_str())).collect();
        let answer = feeds.get(searched, &conditional).await?;
        if answer.status == StatusCode::NOT_MODIFIED && tag.is_some() {
            break;
        }
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert!(
            Instant::now() < deadline,
            "never searchable, or never a 304 for its tag ({tag:?})"
        );
        if answer.text().contains(&second.name) {
            tag = Some(answer.header("etag"));
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_304_reads_no_record() -> TestResult {
    // A record damaged on disk fails every read of it; a conditional
    // request for a feed holding it still gets its 304, since deciding
    // reads nothing.
    let mut server = TestServer::start_on_sled_with(&["--feeds-listen", "127.0.0.1:0"]).await;
    let damaged = server
        .client
        .create_press_release(create_request(release("Will be damaged")))
        .await?
        .into_inner();
    let path = "/feeds/atom";
    let host = [("host", "feeds.test")];
    let etag = Feeds::of(&server)?.get(path, &host).await?.header("etag");
    let data_dir = server.data_dir();
    let dir = server.stop().await;
    damage_record(&data_dir, &damaged.name)?;
    let server = TestServer::start_in(dir, &["--feeds-listen", "127.0.0.1:0"]).await;
    let feeds = Feeds::of(&server)?;
    let full = feeds.get(path, &host).await?;
    assert_eq!(full.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(full.problem()?["code"], "INTERNAL");
    assert!(
        !full.text().contains("Will be"),
        "no content leaks into the error"
    );
    let conditional = feeds
        .get(path, &[host[0], ("if-none-match", &etag)])
        .await?;
    assert_eq!(conditional.status, StatusCode::NOT_MODIFIED);
    Ok(())
}
