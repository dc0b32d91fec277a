//! Where a watch may start: positions past the log, cursors of another
//! store or made up, and start times out of range (the extremes of the
//! range are accepted).

use pressroom::proto::v1::{WatchPressReleasesRequest, watch_press_releases_request::Start};
use proptest::test_runner::TestRng;
use tonic::Code;

use super::{INVALID, expect_status, random_text, still_serving, two_releases};
use crate::helpers::{TestResult, at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_watch_starting_points_are_refused() -> TestResult {
    let (_server, mut client, created, mut rng) = two_releases().await?;
    for (what, start, codes) in starting_points(&mut rng) {
        let watched = client
            .watch_press_releases(WatchPressReleasesRequest {
                filter: None,
                start: Some(start),
                ..Default::default()
            })
            .await;
        expect_status(&format!("Watch from {what}"), watched, codes)?;
    }
    still_serving(&mut client, &created).await
}

/// Where a stream might start, and the codes each must get (by the
/// watch's names of the oneof: a subscription's create and seek map them
/// onto theirs).
pub(super) fn starting_points(rng: &mut TestRng) -> Vec<(String, Start, &'static [Code])> {
    let mut starts: Vec<(String, Start, &'static [Code])> = vec![
        ("position 99".into(), Start::Position(99), INVALID),
        ("position -1".into(), Start::Position(-1), INVALID),
        (
            "a cursor of another store".into(),
            Start::AfterCursor(
                pressroom::feed::cursor::Cursor {
                    store_id: uuid::Uuid::new_v4(),
                    seq: 1,
                }
                .encode(),
            ),
            &[Code::FailedPrecondition],
        ),
    ];
    for seconds in [i64::MAX, i64::MIN, 253_402_300_800, -62_135_596_801] {
        starts.push((
            format!("start time {seconds}"),
            Start::StartTime(at(seconds)),
            INVALID,
        ));
    }
    let mut bad_nanos = at(0);
    bad_nanos.nanos = -1;
    starts.push((
        "start time nanos -1".into(),
        Start::StartTime(bad_nanos),
        INVALID,
    ));
    for extreme in [253_402_300_799, -62_135_596_800] {
        starts.push((
            format!("start time {extreme}"),
            Start::StartTime(at(extreme)),
            &[Code::Ok],
        ));
    }
    for _ in 0..200 {
        let text = random_text(rng, 40);
        starts.push((
            format!("cursor {text:?}"),
            Start::AfterCursor(text),
            INVALID,
        ));
    }
    starts
}
