//! Later versions of a source: an update of the same press release (by
//! import or create), older and equal ones duplicates, and the embargo
//! settled as an update settles it.

use pressroom::{
    formats,
    proto::v1::{
        CreatePressReleaseRequest, DeletePressReleaseRequest, ImportPressReleasesRequest,
        PressRelease, Source, press_release::State as ReleaseState,
    },
};
use tonic::Code;

use super::fixture;
use crate::helpers::{TestResult, TestServer, create_request, from_now, list_all, release};

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
