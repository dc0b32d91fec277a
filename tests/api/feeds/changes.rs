//! Releases that change: embargoed ones never appear before their time,
//! withdrawn ones leave, updated ones show their new content.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use pressroom::proto::v1::{DeletePressReleaseRequest, PressRelease, UpdatePressReleaseRequest};

use super::{Error, Feeds, seconds, uuid_of};
use crate::helpers::{TestResult, TestServer, create_request, release};

#[tokio::test]
async fn embargoed_releases_never_appear_and_withdrawn_ones_leave() -> TestResult {
    // "Never appear" is shown only by answers that came before the embargo
    // time, exact to the nanosecond; a round whose answers came after it
    // proves nothing either way and is run again with a longer embargo, on
    // a fresh server (as in embargo.rs).
    for seconds in [3, 10, 30] {
        if embargoed_and_withdrawn(Duration::from_secs(seconds)).await? {
            return Ok(());
        }
    }
    Err("the checks never finished before the embargo time".into())
}

/// One round, with an embargo `ahead`; `false` when the answers that must
/// not show the embargoed release came after its time.
async fn embargoed_and_withdrawn(ahead: Duration) -> Result<bool, Error> {
    let mut server = TestServer::start_with(&["--feeds-listen", "127.0.0.1:0"]).await;
    let feeds = Feeds::of(&server)?;
    let published = server
        .client
        .create_press_release(create_request(release("Out now")))
        .await?
        .into_inner();
    let embargoed = server
        .client
        .create_press_release(create_request(PressRelease {
            embargo_time: Some(pressroom::proto::timestamp(SystemTime::now() + ahead)),
            ..release("Not before its time")
        }))
        .await?
        .into_inner();
    let embargo_at = embargoed
        .embargo_time
        .map(|t| UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanos as u32))
        .ok_or("no embargo time")?;
    let mut texts = Vec::new();
    for format in ["rss", "atom", "json"] {
        let answer = feeds.get(&format!("/feeds/{format}"), &[]).await?;
        texts.push((format, answer.text()));
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
    let remaining = feeds.names("").await?;
    if SystemTime::now() >= embargo_at {
        return Ok(false);
    }
    for (format, text) in &texts {
        assert!(text.contains(&uuid_of(&published.name)), "{format}");
        assert!(!text.contains(&uuid_of(&embargoed.name)), "{format}");
        assert!(!text.contains("Not before its time"), "{format}");
    }
    assert_eq!(after.status, StatusCode::OK);
    assert!(!after.text().contains(&uuid_of(&published.name)));
    assert_eq!(remaining, Vec::<String>::new());

    // Once its embargo passes, the release appears.
    let deadline = Instant::now()
        + embargo_at
            .duration_since(SystemTime::now())
            .unwrap_or_default()
        + Duration::from_secs(12);
    while feeds.names("").await? != [embargoed.name.clone()] {
        assert!(
            Instant::now() < deadline,
            "the embargo never lifted in the feed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(true)
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
