//! Updates and withdrawals that must be refused: missing or stale etags,
//! bad names, masks that name nothing writable, content that fails its
//! checks, an embargo on a published release, a changed source.

use pressroom::proto::v1::{
    DeletePressReleaseRequest, PressRelease, Source, UpdatePressReleaseRequest,
};
use tonic::Code;

use super::{INVALID, expect_status, still_serving, two_releases};
use crate::helpers::{TestResult, at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_updates_are_refused() -> TestResult {
    let (_server, mut client, created, _) = two_releases().await?;
    let patch = |change: &dyn Fn(&mut PressRelease)| {
        let mut release = PressRelease {
            name: created.name.clone(),
            etag: created.etag.clone(),
            headline: "Changed".into(),
            ..Default::default()
        };
        change(&mut release);
        release
    };
    let with_mask = |release: PressRelease, paths: &[&str]| {
        let mut request = UpdatePressReleaseRequest {
            press_release: Some(release),
            update_mask: Some(Default::default()),
        };
        if let Some(mask) = request.update_mask.as_mut() {
            mask.paths = paths.iter().map(|p| p.to_string()).collect();
        }
        request
    };
    let updates: Vec<(&str, UpdatePressReleaseRequest, &[Code])> = vec![
        ("no release", UpdatePressReleaseRequest::default(), INVALID),
        (
            "no etag",
            with_mask(patch(&|r| r.etag.clear()), &["headline"]),
            INVALID,
        ),
        (
            "bad name",
            with_mask(patch(&|r| r.name = "x".into()), &["headline"]),
            INVALID,
        ),
        (
            "a nested path",
            with_mask(patch(&|_| {}), &["source.url"]),
            INVALID,
        ),
        (
            "an unknown path",
            with_mask(patch(&|_| {}), &["nope"]),
            INVALID,
        ),
        (
            "`*` with another path",
            with_mask(patch(&|_| {}), &["*", "headline"]),
            INVALID,
        ),
        (
            "a path with NUL",
            with_mask(patch(&|_| {}), &["head\0line"]),
            INVALID,
        ),
        ("an empty path", with_mask(patch(&|_| {}), &[""]), INVALID),
        (
            "a blank headline",
            with_mask(patch(&|r| r.headline = " ".into()), &["headline"]),
            INVALID,
        ),
        (
            "`*` with an empty release",
            with_mask(patch(&|_| {}), &["*"]),
            INVALID,
        ),
        (
            "a publish time out of range",
            with_mask(
                patch(&|r| r.publish_time = Some(at(i64::MAX))),
                &["publish_time"],
            ),
            INVALID,
        ),
        (
            "an embargo on a published release",
            with_mask(
                patch(&|r| r.embargo_time = Some(at(4_000_000_000))),
                &["embargo_time"],
            ),
            &[Code::FailedPrecondition],
        ),
        (
            "a stale etag",
            with_mask(patch(&|r| r.etag = "0000".into()), &["headline"]),
            &[Code::Aborted],
        ),
        (
            "a changed source",
            with_mask(
                patch(&|r| {
                    r.source = Some(Source {
                        provider: "other".into(),
                        item_id: "1".into(),
                        url: String::new(),
                        ..Default::default()
                    })
                }),
                &["source"],
            ),
            INVALID,
        ),
    ];
    for (what, request, codes) in updates {
        let updated = client.update_press_release(request).await;
        expect_status(&format!("Update with {what}"), updated, codes)?;
    }
    still_serving(&mut client, &created).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawals_with_a_stale_etag_or_a_bad_reason_are_refused() -> TestResult {
    let (_server, mut client, created, _) = two_releases().await?;
    let stale = client
        .delete_press_release(DeletePressReleaseRequest {
            name: created.name.clone(),
            etag: "stale".into(),
            reason: String::new(),
        })
        .await;
    expect_status("Delete with a stale etag", stale, &[Code::Aborted])?;
    let reason = client
        .delete_press_release(DeletePressReleaseRequest {
            name: created.name.clone(),
            etag: String::new(),
            reason: "bad\0reason".into(),
        })
        .await;
    expect_status("Delete with NUL in the reason", reason, INVALID)?;
    still_serving(&mut client, &created).await
}
