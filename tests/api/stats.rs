//! GetPressReleaseStats: exact counts with fixed publish times, with and
//! without a filter, and the per-day histogram.

use pressroom::proto::v1::{
    DeletePressReleaseRequest, GetPressReleaseStatsRequest, GetPressReleaseStatsResponse,
    PressRelease, PressReleaseFilter,
};

use crate::helpers::{TestResult, TestServer, create_request, from_now, release, violated_fields};

const HOUR: i64 = 3_600;
const DAY: i64 = 24 * HOUR;

fn day_of(seconds_from_now: i64) -> String {
    let t = from_now(seconds_from_now);
    jiff::Timestamp::from_second(t.seconds)
        .map(|t| {
            t.to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .date()
                .to_string()
        })
        .unwrap_or_default()
}

async fn stats(
    server: &mut TestServer,
    filter: Option<PressReleaseFilter>,
    days: Option<(String, String)>,
) -> Result<GetPressReleaseStatsResponse, tonic::Status> {
    let (start, end) = days.unwrap_or_default();
    Ok(server
        .client
        .get_press_release_stats(GetPressReleaseStatsRequest {
            filter,
            histogram_start_day: start,
            histogram_end_day: end,
        })
        .await?
        .into_inner())
}

#[tokio::test]
async fn exact_counts_with_and_without_a_filter() -> TestResult {
    let mut server = TestServer::start().await;
    let published = |headline: &str, ago: i64, channel: &str| PressRelease {
        publish_time: Some(from_now(-ago)),
        channels: vec![channel.into()],
        ..release(headline)
    };
    let mut inputs = Vec::new();
    for i in 0..3 {
        inputs.push(published(&format!("yesterday {i}"), 20 * HOUR, "Energy"));
    }
    // Either side of the 24-hour edge, minutes apart.
    inputs.push(published("just inside a day", DAY - 300, "Energy"));
    inputs.push(published("just outside a day", DAY + 300, "Business"));
    for i in 0..2 {
        inputs.push(published(&format!("last month {i}"), 30 * DAY, "Business"));
    }
    for i in 0..4 {
        inputs.push(published(
            &format!("two years ago {i}"),
            730 * DAY,
            "Energy",
        ));
    }
    for input in inputs {
        server
            .client
            .create_press_release(create_request(input))
            .await?;
    }
    // Neither an embargoed nor a withdrawn release counts.
    let embargoed = PressRelease {
        embargo_time: Some(from_now(3_600)),
        ..release("embargoed")
    };
    server
        .client
        .create_press_release(create_request(embargoed))
        .await?;
    let withdrawn = server
        .client
        .create_press_release(create_request(published("withdrawn", 2 * HOUR, "Energy")))
        .await?
        .into_inner();
    server
        .client
        .delete_press_release(DeletePressReleaseRequest {
            name: withdrawn.name,
            ..Default::default()
        })
        .await?;

    let all = stats(&mut server, None, None).await?;
    assert_eq!(
        (all.total, all.last_24_hours, all.last_365_days),
        (11, 4, 7)
    );
    assert!(all.histogram.is_empty());
    assert!(all.as_of.is_some());
    let energy = Some(PressReleaseFilter {
        channels: vec!["energy".into()],
        ..Default::default()
    });
    let filtered = stats(&mut server, energy.clone(), None).await?;
    assert_eq!(
        (
            filtered.total,
            filtered.last_24_hours,
            filtered.last_365_days
        ),
        (8, 4, 4)
    );

    // The histogram over the last 40 days, unfiltered and filtered.
    let range = (day_of(-40 * DAY), day_of(0));
    let days = stats(&mut server, None, Some(range.clone()))
        .await?
        .histogram;
    assert_eq!(days.len(), 41);
    assert_eq!(days.first().map(|d| d.day.clone()), Some(range.0.clone()));
    assert_eq!(days.last().map(|d| d.day.clone()), Some(range.1.clone()));
    let on = |days: &[pressroom::proto::v1::DayCount], day: String| {
        days.iter()
            .filter(|d| d.day == day)
            .map(|d| d.count)
            .sum::<i64>()
    };
    assert_eq!(days.iter().map(|d| d.count).sum::<i64>(), 7);
    assert_eq!(on(&days, day_of(-30 * DAY)), 2);
    let energy_days = stats(&mut server, energy, Some(range)).await?.histogram;
    assert_eq!(energy_days.iter().map(|d| d.count).sum::<i64>(), 4);
    assert_eq!(on(&energy_days, day_of(-30 * DAY)), 0);

    let bad = stats(
        &mut server,
        None,
        Some(("2026-13-01".into(), "2026-12-01".into())),
    )
    .await
    .err()
    .ok_or("bad day")?;
    assert_eq!(violated_fields(&bad), ["histogram_start_day"]);
    let backwards = stats(
        &mut server,
        None,
        Some(("2026-12-02".into(), "2026-12-01".into())),
    )
    .await
    .err()
    .ok_or("backwards")?;
    assert_eq!(violated_fields(&backwards), ["histogram_end_day"]);
    Ok(())
}
