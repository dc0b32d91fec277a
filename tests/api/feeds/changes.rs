//! Releases that change: embargoed ones never appear before their time,
//! withdrawn ones leave, updated ones show their new content.

use std::time::{Duration, Instant};

use http::StatusCode;
use pressroom::proto::v1::{DeletePressReleaseRequest, PressRelease, UpdatePressReleaseRequest};

use super::{Feeds, seconds, uuid_of};
use crate::helpers::{TestResult, TestServer, create_request, from_now, release};

#[tokio::test]
async fn embargoed_releases_never_appear_and_withdrawn_ones_leave() -> TestResult {
    let mut server = TestServer::start_with(&["--feeds-listen", "127.0.0.1:0"]).await;
    let published = server
        .client
        .create_press_release(create_request(release("Out now")))
        .await?
        .into_inner();
    let embargoed = server
        .client
        .create_press_release(create_request(PressRelease {
            embargo_time: Some(from_now(3)),
            ..release("Not before its time")
        }))
        .await?
        .into_inner();
    let feeds = Feeds::of(&server)?;
    for format in ["rss", "atom", "json"] {
        let answer = feeds.get(&format!("/feeds/{format}"), &[]).await?;
        let text = answer.text();
        assert!(text.contains(&uuid_of(&published.name)), "{format}");
        assert!(!text.contains(&uuid_of(&embargoed.name)), "{format}");
        assert!(!text.contains("Not before its time"), "{format}");
    }
    let before = feeds.get("/feeds/json", &[]).await?.header("etag");

    // Withdrawn: gone from every feed, and the tag moves.
    server
        .client
        .delete_press_release(DeletePressReleaseRequest {
            name: published.name.clone(),
            reason: "Issued in error".into(),
            ..Default::default()
        })
        .await?;
    let after = feeds
        .get("/feeds/json", &[("if-none-match", &before)])
        .await?;
    assert_eq!(after.status, StatusCode::OK);
    assert!(!after.text().contains(&uuid_of(&published.name)));
    assert_eq!(feeds.names("").await?, Vec::<String>::new());

    // Once its embargo passes, the release appears.
    let deadline = Instant::now() + Duration::from_secs(15);
    while feeds.names("").await? != [embargoed.name.clone()] {
        assert!(
            Instant::now() < deadline,
            "the embargo never lifted in the feed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test]
async fn updates_show_with_their_new_content() -> TestResult {
    let mut server = TestServer::start_with(&["--feeds-listen", "127.0.0.1:0"]).await;
    let created = server
        .client
        .create_press_release(create_request(release("Before the edit")))
        .await?
        .into_inner();
    let feeds = Feeds::of(&server)?;
    let etag = feeds.get("/feeds/atom", &[]).await?.header("etag");
    let updated = server
        .client
        .update_press_release(UpdatePressReleaseRequest {
            press_release: Some(PressRelease {
                name: created.name.clone(),
                etag: created.etag.clone(),
                headline: "After the edit".into(),
                ..Default::default()
            }),
            update_mask: Some(pressroom::proto::FieldMask {
                paths: vec!["headline".into()],
            }),
        })
        .await?
        .into_inner();
    let answer = feeds
        .get("/feeds/atom", &[("if-none-match", &etag)])
        .await?;
    assert_eq!(answer.status, StatusCode::OK);
    let feed = feed_rs::parser::parse(&answer.body[..])?;
    let entry = &feed.entries[0];
    assert_eq!(
        entry.title.as_ref().map(|t| t.content.as_str()),
        Some("After the edit")
    );
    assert_eq!(
        entry.updated.map(|t| t.timestamp()),
        Some(seconds(updated.update_time.as_ref()))
    );
    Ok(())
}
