//! `GetPressReleaseStats`: counts of published releases by publish time.
//! Unfiltered counts come from the hourly counters the store keeps with
//! every commit (plus a walk of the published index over the partial hours
//! at a window's edges, so the counts are exact); a filter walks the indexes
//! of the fields it names once, reading no records.

use std::sync::Arc;

use jiff::{civil::Date, tz::TimeZone};

use super::{DomainError, PressReleases, filter};
use crate::{
    proto::{
        Timestamp, compare_times,
        v1::{DayCount, GetPressReleaseStatsRequest, GetPressReleaseStatsResponse},
    },
    store::{ListQuery, Store, StoreError},
    text::shown,
};

/// Most days one histogram may cover.
const MAX_HISTOGRAM_DAYS: i64 = 3_660;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

impl PressReleases {
    /// Counts published press releases.
    pub async fn stats(
        &self,
        request: GetPressReleaseStatsRequest,
    ) -> Result<GetPressReleaseStatsResponse, DomainError> {
        let query = filter::to_query(request.filter.as_ref(), "filter")?;
        let days = histogram_days(&request.histogram_start_day, &request.histogram_end_day)?;
        let store = Arc::clone(&self.store);
        let now = crate::proto::now();
        count(&*store, &query, days, now)
            .await
            .map_err(DomainError::from)
    }
}

/// The histogram's days as (first day's start, number of days), in seconds.
fn histogram_days(start: &str, end: &str) -> Result<Option<(i64, i64)>, DomainError> {
    let parse = |field: &str, text: &str| {
        text.parse::<Date>()
            .ok()
            .and_then(|date| date.to_zoned_datetime(TimeZone::UTC).ok())
            .map(|zoned| zoned.timestamp().as_second())
            .ok_or_else(|| {
                DomainError::invalid(
                    field,
                    format!("must be a day like 2026-11-27, got {}", shown(text)),
                )
            })
    };
    match (start.is_empty(), end.is_empty()) {
        (true, true) => Ok(None),
        (false, true) => Err(DomainError::invalid(
            "histogram_end_day",
            "is required with histogram_start_day",
        )),
        (true, false) => Err(DomainError::invalid(
            "histogram_start_day",
            "is required with histogram_end_day",
        )),
        (false, false) => {
            let first = parse("histogram_start_day", start)?;
            let last = parse("histogram_end_day", end)?;
            let days = (last - first) / DAY + 1;
            if days < 1 {
                return Err(DomainError::invalid(
                    "histogram_end_day",
                    "must not be before histogram_start_day",
                ));
            }
            if days > MAX_HISTOGRAM_DAYS {
                return Err(DomainError::invalid(
                    "histogram_end_day",
                    format!("a histogram covers at most {MAX_HISTOGRAM_DAYS} days"),
                ));
            }
            Ok(Some((first, days)))
        }
    }
}

async fn count(
    store: &dyn Store,
    query: &ListQuery,
    days: Option<(i64, i64)>,
    now: Timestamp,
) -> Result<GetPressReleaseStatsResponse, StoreError> {
    // Windows end at `now` inclusive: [now - length, now + 1ns).
    let end = plus(&now, 0, 1);
    let day_ago = plus(&now, -DAY, 0);
    let year_ago = plus(&now, -365 * DAY, 0);
    let mut histogram: Vec<i64> = vec![0; days.map_or(0, |(_, n)| n as usize)];
    let unfiltered = query == &ListQuery::default();
    let (total, last_24_hours, last_365_days) = if unfiltered {
        let total = store.published_total().await? as i64;
        let last_24_hours = count_between(store, &day_ago, &end).await?;
        let last_365_days = count_between(store, &year_ago, &end).await?;
        if let Some((first, n)) = days {
            for (hour, count) in store
                .published_per_hour(first / HOUR, (first + n * DAY) / HOUR)
                .await?
            {
                let day = (hour * HOUR - first) / DAY;
                if let Some(slot) = histogram.get_mut(day as usize) {
                    *slot += count as i64;
                }
            }
        }
        (total, last_24_hours, last_365_days)
    } else {
        let (mut total, mut last_24_hours, mut last_365_days) = (0, 0, 0);
        let mut visit = |time: Timestamp| {
            total += 1;
            let in_window = |from: &Timestamp| {
                compare_times(&time, from).is_ge() && compare_times(&time, &end).is_lt()
            };
            if in_window(&day_ago) {
                last_24_hours += 1;
            }
            if in_window(&year_ago) {
                last_365_days += 1;
            }
            if let Some((first, _)) = days {
                let day = (time.seconds - first).div_euclid(DAY);
                if let Some(slot) = usize::try_from(day).ok().and_then(|d| histogram.get_mut(d)) {
                    *slot += 1;
                }
            }
        };
        store.published_times(query, &mut visit).await?;
        (total, last_24_hours, last_365_days)
    };
    let histogram = match days {
        Some((first, _)) => histogram
            .into_iter()
            .enumerate()
            .map(|(i, count)| DayCount {
                day: day_name(first + i as i64 * DAY),
                count,
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(GetPressReleaseStatsResponse {
        total,
        last_24_hours,
        last_365_days,
        histogram,
        as_of: Some(now),
    })
}

/// Published releases with `from <= publish_time < to`, exactly: whole hours
/// from the counters, the partial hours at the edges from the index.
async fn count_between(
    store: &dyn Store,
    from: &Timestamp,
    to: &Timestamp,
) -> Result<i64, StoreError> {
    let first_full = if from.nanos == 0 && from.seconds.rem_euclid(HOUR) == 0 {
        from.seconds / HOUR
    } else {
        from.seconds.div_euclid(HOUR) + 1
    };
    let last_full = to.seconds.div_euclid(HOUR);
    let walk = async |a: &Timestamp, b: &Timestamp| -> Result<i64, StoreError> {
        let mut n = 0;
        let edge = ListQuery {
            published_at_or_after: Some(*a),
            published_before: Some(*b),
            ..Default::default()
        };
        store.published_times(&edge, &mut |_| n += 1).await?;
        Ok(n)
    };
    if first_full >= last_full {
        return walk(from, to).await;
    }
    let hours: u64 = store
        .published_per_hour(first_full, last_full)
        .await?
        .into_iter()
        .map(|(_, count)| count)
        .sum();
    let head = walk(from, &at_hour(first_full)).await?;
    let tail = walk(&at_hour(last_full), to).await?;
    Ok(hours as i64 + head + tail)
}

fn at_hour(hour: i64) -> Timestamp {
    Timestamp {
        seconds: hour * HOUR,
        nanos: 0,
    }
}

/// `time` moved by whole seconds and nanoseconds.
fn plus(time: &Timestamp, seconds: i64, nanos: i32) -> Timestamp {
    let mut out = Timestamp {
        seconds: time.seconds + seconds,
        nanos: time.nanos + nanos,
    };
    if out.nanos >= 1_000_000_000 {
        out.seconds += 1;
        out.nanos -= 1_000_000_000;
    }
    out
}

fn day_name(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_zoned_datetime(TimeZone::UTC).date().to_string())
        .unwrap_or_default()
}
