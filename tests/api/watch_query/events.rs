//! What a query stream delivers: history then live, progress while nothing
//! matches, resuming from an event's or a progress cursor, highlights on
//! request; UNMATCHED, withdrawals and embargoes as for filtered streams.

use std::time::Duration;

use pressroom::proto::{
    FieldMask,
    v1::{
        DeletePressReleaseRequest, EventType, PressRelease, PressReleaseEvent, PressReleaseFilter,
        UpdatePressReleaseRequest, WatchPressReleasesRequest, watch_press_releases_request::Start,
    },
};
use tonic::Status;

use super::{Client, Failure, beginning, create, now, query_watch};
use crate::helpers::{
    TestResult, TestServer, Watched, assert_cursor_order, from_now, read_events, read_until,
    read_until_caught_up, release, seq, watch,
};

#[tokio::test]
async fn history_then_live_with_progress_while_nothing_matches_and_resume() -> TestResult {
    let mut server = TestServer::start_with(&["--watch-progress-interval", "200ms"]).await;
    let client = &mut server.client;
    let query = "merger OR acquisition";
    let mut wanted = Vec::new();
    for i in 0..20 {
        if i % 4 == 0 {
            wanted.push(
                create(
                    client,
                    release(&format!("Acme announces merger number {i}")),
                )
                .await?
                .name,
            );
        } else {
            create(client, release(&format!("Acme opens factory number {i}"))).await?;
        }
    }
    let mut stream = watch(client, query_watch(query, None, beginning())).await?;
    let history = read_until_caught_up(&mut stream).await?;
    assert_eq!(history.names(), wanted, "history: the matches, in order");
    assert!(
        history
            .events
            .iter()
            .all(|e| e.r#type() == EventType::Created)
    );
    let marked = history.events[0]
        .highlights
        .iter()
        .find(|h| h.field == "headline")
        .map(|h| h.snippet.clone());
    assert_eq!(
        marked.as_deref(),
        Some("Acme announces <mark>merger</mark> number 0")
    );
    let mut plain = watch(
        client,
        WatchPressReleasesRequest {
            highlight: false,
            ..query_watch(query, None, beginning())
        },
    )
    .await?;
    let unmarked = read_until_caught_up(&mut plain).await?;
    assert_eq!(unmarked.names(), wanted);
    assert!(
        unmarked.events.iter().all(|e| e.highlights.is_empty()),
        "highlights only when asked for"
    );

    // Nothing matches: progress keeps coming, and moves.
    let mut last_quiet = String::new();
    for i in 0..10 {
        last_quiet = create(client, release(&format!("Acme reports results {i}")))
            .await?
            .name;
    }
    let quiet = read_until(&mut stream, Duration::from_secs(20), |w| {
        w.progress.iter().any(|p| seq(&p.cursor) >= 30)
    })
    .await?;
    assert!(
        quiet.events.is_empty(),
        "no event while nothing matches: {:?}",
        quiet.names()
    );
    assert!(!last_quiet.is_empty());

    // Live matches arrive.
    let live = vec![
        create(client, release("Globex completes acquisition"))
            .await?
            .name,
        create(client, release("Initech mergers approved"))
            .await?
            .name,
    ];
    let seen = read_events(&mut stream, 2).await?;
    assert_eq!(seen.names(), live);
    let resume_after = seen.last_cursor();
    drop(stream);

    // Missed while away: exactly those, resumed from the last cursor.
    let missed = create(client, release("Umbrella weighs a merger"))
        .await?
        .name;
    for i in 0..5 {
        create(client, release(&format!("Umbrella opens plant {i}"))).await?;
    }
    let mut resumed = watch(
        client,
        query_watch(query, None, Start::AfterCursor(resume_after)),
    )
    .await?;
    let again = read_until_caught_up(&mut resumed).await?;
    assert_eq!(again.names(), vec![missed.clone()]);

    // Resumed from a progress cursor, nothing is repeated either.
    let progress_cursor = quiet.last_cursor();
    let mut from_progress = watch(
        client,
        query_watch(query, None, Start::AfterCursor(progress_cursor)),
    )
    .await?;
    let rest = read_until_caught_up(&mut from_progress).await?;
    let mut expected = live;
    expected.push(missed);
    assert_eq!(rest.names(), expected);
    assert_cursor_order(&rest);
    Ok(())
}

/// Waits until the stream has read past log position `position`.
async fn read_past(
    stream: &mut tonic::Streaming<pressroom::proto::v1::WatchPressReleasesResponse>,
    position: u64,
) -> Result<Watched, Failure> {
    read_until(stream, Duration::from_secs(20), |w| {
        w.cursors.last().is_some_and(|c| seq(c) >= position)
    })
    .await
}

/// The next event: its type, its release's name, and the event.
async fn next_event(
    stream: &mut tonic::Streaming<pressroom::proto::v1::WatchPressReleasesResponse>,
) -> Result<(EventType, String, PressReleaseEvent), Failure> {
    let event = read_events(stream, 1).await?.events.remove(0);
    let name = event.press_release.clone().unwrap_or_default().name;
    Ok((event.r#type(), name, event))
}

async fn update(
    client: &mut Client,
    current: &PressRelease,
    change: PressRelease,
    paths: &[&str],
) -> Result<PressRelease, Status> {
    Ok(client
        .update_press_release(UpdatePressReleaseRequest {
            press_release: Some(PressRelease {
                name: current.name.clone(),
                etag: current.etag.clone(),
                ..change
            }),
            update_mask: Some(FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        })
        .await?
        .into_inner())
}

#[tokio::test]
async fn unmatched_withdrawn_and_embargoed_as_for_filtered_streams() -> TestResult {
    let mut server = TestServer::start_with(&["--watch-progress-interval", "100ms"]).await;
    let filter = PressReleaseFilter {
        channels: vec!["Business".into()],
        ..Default::default()
    };
    let mut stream = watch(
        &mut server.new_client().await,
        query_watch("headline:merger", Some(filter), now()),
    )
    .await?;
    read_until_caught_up(&mut stream).await?;
    let client = &mut server.client;
    let business = |headline: &str| PressRelease {
        channels: vec!["Business".into()],
        ..release(headline)
    };
    let headline = |text: &str| PressRelease {
        headline: text.into(),
        ..Default::default()
    };

    // Each step's event is read before the next step, so that no change is
    // compacted away by the next one.
    let a = create(client, business("Acme agrees merger")).await?;
    let (kind, name, created) = next_event(&mut stream).await?;
    assert_eq!((kind, name), (EventType::Created, a.name.clone()));
    assert!(
        created
            .highlights
            .iter()
            .any(|h| h.snippet.contains("<mark>merger</mark>")),
        "{:?}",
        created.highlights
    );
    let b = create(client, business("Globex opens factory")).await?;
    // The stream reads past B before B changes, so the recent tail knows
    // that B never matched.
    read_past(&mut stream, 2).await?;
    let a = update(client, &a, headline("Acme reports results"), &["headline"]).await?;
    let (kind, name, unmatched) = next_event(&mut stream).await?;
    assert_eq!((kind, name), (EventType::Unmatched, a.name.clone()));
    assert!(
        unmatched.highlights.is_empty(),
        "no highlights on UNMATCHED"
    );
    update(
        client,
        &b,
        headline("Globex opens second factory"),
        &["headline"],
    )
    .await?;
    let a = update(client, &a, headline("Acme merger back on"), &["headline"]).await?;
    let (kind, name, _) = next_event(&mut stream).await?;
    assert_eq!(
        (kind, name),
        (EventType::Updated, a.name.clone()),
        "B, which never matched, is not UNMATCHED"
    );
    update(
        client,
        &a,
        PressRelease {
            channels: vec!["Sports".into()],
            ..Default::default()
        },
        &["channels"],
    )
    .await?;
    let (kind, name, _) = next_event(&mut stream).await?;
    assert_eq!(
        (kind, name),
        (EventType::Unmatched, a.name.clone()),
        "the filter"
    );
    let c = create(client, business("Initech merger")).await?;
    let (kind, name, _) = next_event(&mut stream).await?;
    assert_eq!((kind, name), (EventType::Created, c.name.clone()));
    client
        .delete_press_release(DeletePressReleaseRequest {
            name: c.name.clone(),
            ..Default::default()
        })
        .await?;
    let (kind, name, _) = next_event(&mut stream).await?;
    assert_eq!((kind, name), (EventType::Withdrawn, c.name.clone()));
    let e = create(client, business("Umbrella builds plant")).await?;
    read_past(&mut stream, 9).await?;
    client
        .delete_press_release(DeletePressReleaseRequest {
            name: e.name.clone(),
            ..Default::default()
        })
        .await?;
    let d = create(
        client,
        PressRelease {
            embargo_time: Some(from_now(2)),
            ..business("Stark merger embargoed")
        },
    )
    .await?;
    let (kind, name, _) = next_event(&mut stream).await?;
    assert_eq!(
        (kind, name),
        (EventType::Published, d.name),
        "the embargoed match at its time; nothing for E, which never matched"
    );
    let extra = read_until(&mut stream, Duration::from_millis(500), |w| {
        !w.events.is_empty()
    })
    .await;
    assert!(extra.is_err(), "nothing more");
    Ok(())
}
