//! Statistics over odd days: malformed, reversed, too long a span, or at
//! the edges of the calendar.

use pressroom::proto::v1::{GetPressReleaseStatsRequest, PressReleaseFilter};
use tonic::Code;

use super::{INVALID, expect_status, still_serving, two_releases};
use crate::helpers::TestResult;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_over_odd_days_are_refused_or_counted() -> TestResult {
    let (_server, mut client, created, _) = two_releases().await?;
    let days: Vec<(&str, &str, &[Code])> = vec![
        ("2026-13-01", "2026-12-31", INVALID),
        ("2026-01-01", "", INVALID),
        ("", "2026-01-01", INVALID),
        ("2026-02-01", "2026-01-01", INVALID),
        ("2000-01-01", "2026-01-01", INVALID),
        ("yesterday", "today", INVALID),
        ("2026-01-01\0", "2026-01-02", INVALID),
        (
            "-009999-01-01",
            "-009990-01-01",
            &[Code::Ok, Code::InvalidArgument],
        ),
        (
            "9999-12-01",
            "9999-12-31",
            &[Code::Ok, Code::InvalidArgument],
        ),
        (
            "0000-01-01",
            "0000-12-31",
            &[Code::Ok, Code::InvalidArgument],
        ),
        ("2026-02-29", "2026-03-01", INVALID),
        (
            "+2026-01-01",
            "2026-01-02",
            &[Code::Ok, Code::InvalidArgument],
        ),
        ("2026-1-1", "2026-1-2", &[Code::Ok, Code::InvalidArgument]),
    ];
    for (start, end, codes) in days {
        let stats = client
            .get_press_release_stats(GetPressReleaseStatsRequest {
                filter: None,
                histogram_start_day: start.into(),
                histogram_end_day: end.into(),
            })
            .await;
        expect_status(&format!("Stats from {start:?} to {end:?}"), stats, codes)?;
        let filtered = client
            .get_press_release_stats(GetPressReleaseStatsRequest {
                filter: Some(PressReleaseFilter {
                    channels: vec!["business".into()],
                    ..Default::default()
                }),
                histogram_start_day: start.into(),
                histogram_end_day: end.into(),
            })
            .await;
        expect_status(
            &format!("filtered Stats from {start:?} to {end:?}"),
            filtered,
            codes,
        )?;
    }
    still_serving(&mut client, &created).await
}
