//! Access: API keys as for gRPC, bad requests refused with the gRPC
//! message, the limits shared with gRPC calls, and the metrics.

use std::time::{Duration, Instant};

use http::StatusCode;
use pressroom::proto::v1::{
    ImportPressReleasesRequest, ListPressReleasesRequest, PressReleaseFilter,
    SearchPressReleasesRequest,
};
use tokio_stream::wrappers::ReceiverStream;

use super::{Feeds, with_keys};
use crate::helpers::{TestResult, TestServer, release};

#[tokio::test]
async fn keys_are_enforced_as_for_grpc() -> TestResult {
    let (server, keys) = with_keys(&[]).await;
    let feeds = Feeds::of(&server)?;
    let none = feeds.get("/feeds/rss", &[]).await?;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.header("www-authenticate"),
        "Bearer realm=\"pressroom\""
    );
    assert_eq!(none.problem()?["code"], "UNAUTHENTICATED");
    assert_eq!(none.header("cache-control"), "no-store");
    let wrong = feeds
        .get("/feeds/rss", &[("authorization", "Bearer not-a-key")])
        .await?;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let wrong_param = feeds.get("/feeds/rss?key=not-a-key", &[]).await?;
    assert_eq!(wrong_param.status, StatusCode::UNAUTHORIZED);
    // An unauthenticated caller learns nothing about its parameters.
    let unknown = feeds.get("/feeds/rss?chanel=x", &[]).await?;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);

    for key in [&keys.reader, &keys.publisher, &keys.admin] {
        let bearer = format!("Bearer {key}");
        let by_header = feeds
            .get("/feeds/atom", &[("authorization", &bearer)])
            .await?;
        assert_eq!(by_header.status, StatusCode::OK, "{}", by_header.text());
        let by_param = feeds.get(&format!("/feeds/json?key={key}"), &[]).await?;
        assert_eq!(by_param.status, StatusCode::OK, "{}", by_param.text());
    }

    // Without keys, feeds are served on loopback only, as gRPC is.
    let refused =
        pressroom::ServeConfig::from_args(["--data-dir", "x", "--feeds-listen", "0.0.0.0:0"])?
            .validate()
            .err()
            .ok_or("an open feeds port without keys was accepted")?;
    assert!(refused.to_string().contains("--feeds-listen"), "{refused}");
    let insecure = pressroom::ServeConfig::from_args([
        "--data-dir",
        "x",
        "--feeds-listen",
        "0.0.0.0:0",
        "--insecure",
    ])?;
    assert!(insecure.validate().is_ok());
    Ok(())
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_grpc_message() -> TestResult {
    let mut server = TestServer::start_with(&["--feeds-listen", "127.0.0.1:0"]).await;
    let feeds = Feeds::of(&server)?;

    let bad_filter = feeds
        .get("/feeds/rss?country=USA&language=%3F%3F", &[])
        .await?;
    assert_eq!(bad_filter.status, StatusCode::BAD_REQUEST);
    let grpc = server
        .client
        .list_press_releases(ListPressReleasesRequest {
            filter: Some(PressReleaseFilter {
                countries: vec!["USA".into()],
                languages: vec!["??".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .err()
        .ok_or("List accepted a bad filter")?;
    let problem = bad_filter.problem()?;
    assert_eq!(problem["detail"], grpc.message());
    assert_eq!(problem["code"], "INVALID_ARGUMENT");
    assert_eq!(problem["status"], 400);

    let bad_query = feeds.get("/feeds/atom?q=%22unclosed", &[]).await?;
    assert_eq!(bad_query.status, StatusCode::BAD_REQUEST);
    let grpc = server
        .client
        .search_press_releases(SearchPressReleasesRequest {
            query: "\"unclosed".into(),
            ..Default::default()
        })
        .await
        .err()
        .ok_or("Search accepted a bad query")?;
    assert_eq!(bad_query.problem()?["detail"], grpc.message());

    for (path, status, needle) in [
        ("/feeds/json?chanel=Tech", 400, "chanel"),
        ("/feeds/json?limit=0", 400, "limit"),
        ("/feeds/json?limit=5&limit=6", 400, "only once"),
        ("/feeds/xml", 404, "/feeds/xml"),
        ("/nothing/here", 404, "/feeds/rss"),
    ] {
        let answer = feeds.get(path, &[]).await?;
        assert_eq!(answer.status.as_u16(), status, "{path}");
        let detail = answer.problem()?["detail"].to_string();
        assert!(detail.contains(needle), "{path}: {detail}");
    }
    let posted = feeds.send(reqwest::Method::POST, "/feeds/rss", &[]).await?;
    assert_eq!(posted.status, StatusCode::METHOD_NOT_ALLOWED);
    Ok(())
}

#[tokio::test]
async fn feeds_share_the_limits_and_show_in_the_metrics() -> TestResult {
    let (server, keys) = with_keys(&[
        "--metrics-listen",
        "127.0.0.1:0",
        "--max-concurrent-requests-per-key",
        "1",
    ])
    .await;
    let feeds = Feeds::of(&server)?;
    let reader = format!("Bearer {}", keys.reader);

    // An import that stays open holds the publisher key's only slot: that
    // key's feed requests are refused, other keys' are served.
    let (items, receiver) = tokio::sync::mpsc::channel::<ImportPressReleasesRequest>(1);
    let mut importer = crate::helpers::client_with(server.addr, Some(&keys.publisher)).await;
    let import = tokio::spawn(async move {
        importer
            .import_press_releases(ReceiverStream::new(receiver))
            .await
    });
    items
        .send(ImportPressReleasesRequest {
            press_release: Some(release("held")),
            request_id: String::new(),
        })
        .await?;
    let publisher = format!("Bearer {}", keys.publisher);
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let answer = feeds
            .get("/feeds/json", &[("authorization", &publisher)])
            .await?;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            break answer;
        }
        assert!(Instant::now() < deadline, "the key's limit never applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.header("retry-after"), "1");
    let problem = refused.problem()?;
    assert_eq!(problem["code"], "RESOURCE_EXHAUSTED");
    assert!(
        problem["detail"].to_string().contains("ingest"),
        "{problem}"
    );
    let other = feeds
        .get("/feeds/json", &[("authorization", &reader)])
        .await?;
    assert_eq!(other.status, StatusCode::OK);
    drop(items);
    assert_eq!(import.await??.into_inner().created, 1);

    let etag = other.header("etag");
    let not_modified = feeds
        .get(
            "/feeds/json",
            &[("authorization", &reader), ("if-none-match", &etag)],
        )
        .await?;
    // The import committed meanwhile: the tag may have moved once.
    let etag = match not_modified.status {
        StatusCode::NOT_MODIFIED => etag,
        _ => not_modified.header("etag"),
    };
    let not_modified = feeds
        .get(
            "/feeds/json",
            &[("authorization", &reader), ("if-none-match", &etag)],
        )
        .await?;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);

    let metrics_addr = server.metrics_addr.ok_or("no metrics port")?;
    let scraped = feeds
        .http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let value = |line_start: &str| -> f64 {
        scraped
            .lines()
            .find(|line| line.starts_with(line_start))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    for code in ["200", "304", "429"] {
        let counted = value(&format!(
            "pressroom_feed_requests_total{{format=\"json\",code=\"{code}\"}}"
        ));
        assert!(counted >= 1.0, "{code} not counted:\n{scraped}");
    }
    assert!(
        scraped.contains("pressroom_feed_request_seconds_bucket{format=\"json\""),
        "{scraped}"
    );
    Ok(())
}
