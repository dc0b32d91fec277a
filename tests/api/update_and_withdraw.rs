//! UpdatePressRelease (masks, revisions, etags) and DeletePressRelease
//! (withdrawal: purge, tombstone, invisibility).

use pressroom::proto::FieldMask;
use pressroom::{
    proto::v1::{
        DeletePressReleaseRequest, GetPressReleaseRequest, ListPressReleasesRequest, PressRelease,
        Source, UpdatePressReleaseRequest, press_release::State,
    },
    store::SledStore,
};
use tonic::Code;

use crate::helpers::{
    TestResult, TestServer, create_request, from_now, instant, release, violated_fields,
};

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

fn update(release: PressRelease, paths: &[&str]) -> UpdatePressReleaseRequest {
    UpdatePressReleaseRequest {
        press_release: Some(release),
        update_mask: mask(paths),
    }
}

#[tokio::test]
async fn update_follows_the_mask_and_bumps_the_revision() -> TestResult {
    let mut server = TestServer::start().await;
    let mut input = release("Original headline");
    input.channels = vec!["Business".into()];
    let created = server
        .client
        .create_press_release(create_request(input))
        .await?
        .into_inner();

    let patch = PressRelease {
        name: created.name.clone(),
        etag: created.etag.clone(),
        headline: "Corrected headline".into(),
        channels: vec!["Technology".into()],
        body: "not in the mask".into(),
        revision: 99,
        ..Default::default()
    };
    let updated = server
        .client
        .update_press_release(update(patch, &["headline", "channels", "revision"]))
        .await?
        .into_inner();
    assert_eq!(updated.headline, "Corrected headline");
    assert_eq!(updated.channels, ["Technology"]);
    assert_eq!(
        updated.body, created.body,
        "fields outside the mask are kept"
    );
    assert_eq!(
        updated.revision, 2,
        "output-only fields in the mask are ignored"
    );
    assert_ne!(updated.etag, created.etag);
    assert_eq!(updated.create_time, created.create_time);
    assert!(instant(updated.update_time) > instant(created.update_time));

    // The listing follows the change: the old channel no longer finds it.
    let by_channel = |channel: &str| ListPressReleasesRequest {
        filter: Some(pressroom::proto::v1::PressReleaseFilter {
            channels: vec![channel.into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(
        server
            .client
            .list_press_releases(by_channel("business"))
            .await?
            .into_inner()
            .press_releases
            .is_empty()
    );
    assert_eq!(
        server
            .client
            .list_press_releases(by_channel("technology"))
            .await?
            .into_inner()
            .press_releases,
        std::slice::from_ref(&updated)
    );

    // `*` replaces every writable field: a release without a body is invalid.
    let everything = PressRelease {
        name: updated.name.clone(),
        etag: updated.etag.clone(),
        headline: "Only a headline".into(),
        ..Default::default()
    };
    let status = server
        .client
        .update_press_release(update(everything, &["*"]))
        .await
        .err()
        .ok_or("expected INVALID_ARGUMENT")?;
    assert_eq!(violated_fields(&status), ["press_release.body"]);

    // An empty mask changes the fields that are set.
    let implicit = PressRelease {
        name: updated.name.clone(),
        etag: updated.etag.clone(),
        summary: "Now with a summary".into(),
        ..Default::default()
    };
    let third = server
        .client
        .update_press_release(update(implicit, &[]))
        .await?
        .into_inner();
    assert_eq!(third.summary, "Now with a summary");
    assert_eq!(third.headline, "Corrected headline");
    assert_eq!(third.revision, 3);
    Ok(())
}

#[tokio::test]
async fn a_stale_etag_is_aborted() -> TestResult {
    let mut server = TestServer::start().await;
    let created = server
        .client
        .create_press_release(create_request(release("Contested")))
        .await?
        .into_inner();
    let edit = |headline: &str, etag: &str| PressRelease {
        name: created.name.clone(),
        etag: etag.into(),
        headline: headline.into(),
        ..Default::default()
    };
    server
        .client
        .update_press_release(update(edit("First editor", &created.etag), &["headline"]))
        .await?;
    let status = server
        .client
        .update_press_release(update(edit("Second editor", &created.etag), &["headline"]))
        .await
        .err()
        .ok_or("expected ABORTED")?;
    assert_eq!(status.code(), Code::Aborted);

    // Concurrent editors with the same etag: exactly one wins.
    let current = server
        .client
        .get_press_release(GetPressReleaseRequest {
            name: created.name.clone(),
        })
        .await?
        .into_inner();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut client = server.client.clone();
        let request = update(edit(&format!("Racer {i}"), &current.etag), &["headline"]);
        tasks.push(tokio::spawn(async move {
            client.update_press_release(request).await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        match task.await? {
            Ok(_) => winners += 1,
            Err(status) => assert_eq!(status.code(), Code::Aborted, "{status:?}"),
        }
    }
    assert_eq!(winners, 1);

    let status = server
        .client
        .update_press_release(update(edit("No etag", ""), &["headline"]))
        .await
        .err()
        .ok_or("etag is required")?;
    assert_eq!(violated_fields(&status), ["press_release.etag"]);
    let status = server
        .client
        .update_press_release(update(edit("x", &current.etag), &["nope"]))
        .await
        .err()
        .ok_or("unknown path")?;
    assert_eq!(violated_fields(&status), ["update_mask"]);
    Ok(())
}

#[tokio::test]
async fn source_cannot_change_and_published_cannot_be_embargoed() -> TestResult {
    let mut server = TestServer::start().await;
    let created = server
        .client
        .create_press_release(create_request(release("Fixed")))
        .await?
        .into_inner();
    let status = server
        .client
        .update_press_release(update(
            PressRelease {
                name: created.name.clone(),
                etag: created.etag.clone(),
                source: Some(Source {
                    provider: "w".into(),
                    item_id: "1".into(),
                    url: String::new(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            &["source"],
        ))
        .await
        .err()
        .ok_or("source is immutable")?;
    assert_eq!(violated_fields(&status), ["press_release.source"]);
    let status = server
        .client
        .update_press_release(update(
            PressRelease {
                name: created.name.clone(),
                etag: created.etag.clone(),
                embargo_time: Some(from_now(3_600)),
                ..Default::default()
            },
            &["embargo_time"],
        ))
        .await
        .err()
        .ok_or("re-embargo must fail")?;
    assert_eq!(status.code(), Code::FailedPrecondition);

    // Lifting an embargo early publishes the release.
    let embargoed = server
        .client
        .create_press_release(create_request(PressRelease {
            embargo_time: Some(from_now(3_600)),
            ..release("Early")
        }))
        .await?
        .into_inner();
    let lifted = server
        .client
        .update_press_release(update(
            PressRelease {
                name: embargoed.name.clone(),
                etag: embargoed.etag.clone(),
                ..Default::default()
            },
            &["embargo_time"],
        ))
        .await?
        .into_inner();
    assert_eq!(lifted.state(), State::Published);
    assert!(instant(lifted.publish_time) >= instant(embargoed.create_time));
    assert!(instant(lifted.publish_time) < instant(embargoed.publish_time));
    Ok(())
}

#[tokio::test]
async fn withdrawal_purges_content_and_leaves_a_tombstone() -> TestResult {
    let mut server = TestServer::start_on_sled().await;
    let mut input = release("To be withdrawn");
    input.channels = vec!["Business".into()];
    input.summary = "Secret summary".into();
    let created = server
        .client
        .create_press_release(create_request(input))
        .await?
        .into_inner();
    let kept = server
        .client
        .create_press_release(create_request(release("Kept")))
        .await?
        .into_inner();

    let stale = server
        .client
        .delete_press_release(DeletePressReleaseRequest {
            name: created.name.clone(),
            etag: "stale".into(),
            reason: String::new(),
        })
        .await
        .err()
        .ok_or("a wrong etag must fail")?;
    assert_eq!(stale.code(), Code::Aborted);

    let tombstone = server
        .client
        .delete_press_release(DeletePressReleaseRequest {
            name: created.name.clone(),
            etag: created.etag.clone(),
            reason: "Issued in error".into(),
        })
        .await?
        .into_inner();
    assert_eq!(tombstone.state(), State::Withdrawn);
    assert_eq!(tombstone.name, created.name);
    assert_eq!(tombstone.revision, 2);
    assert_eq!(tombstone.withdrawal_reason, "Issued in error");
    assert!(
        tombstone.headline.is_empty() && tombstone.body.is_empty() && tombstone.channels.is_empty()
    );

    let get = server
        .client
        .get_press_release(GetPressReleaseRequest {
            name: created.name.clone(),
        })
        .await
        .err()
        .ok_or("expected NOT_FOUND")?;
    assert_eq!(get.code(), Code::NotFound);
    let again = server
        .client
        .delete_press_release(DeletePressReleaseRequest {
            name: created.name.clone(),
            ..Default::default()
        })
        .await
        .err()
        .ok_or("withdrawing twice")?;
    assert_eq!(again.code(), Code::NotFound);
    let update_after = server
        .client
        .update_press_release(update(
            PressRelease {
                name: created.name.clone(),
                etag: tombstone.etag.clone(),
                headline: "x".into(),
                ..Default::default()
            },
            &["headline"],
        ))
        .await
        .err()
        .ok_or("updating a withdrawn release")?;
    assert_eq!(update_after.code(), Code::NotFound);
    let listed = server
        .client
        .list_press_releases(ListPressReleasesRequest::default())
        .await?
        .into_inner()
        .press_releases;
    assert_eq!(listed, [kept]);

    // On disk only the tombstone remains under the release's key.
    let data_dir = server.data_dir();
    let _dir = server.stop().await;
    let store = SledStore::open(&data_dir.join("store"), 16 << 20)?;
    let id = uuid::Uuid::parse_str(created.name.trim_start_matches("pressReleases/"))?;
    let stored = store.get(&id)?.ok_or("the tombstone is kept")?;
    assert_eq!(stored, tombstone);
    Ok(())
}
