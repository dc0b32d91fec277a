//! WatchPressReleases: order, resuming, history then live, compaction,
//! filters and progress, slow consumers, bad cursors.

use std::{collections::HashSet, time::Duration};

use pressroom::proto::FieldMask;
use pressroom::proto::v1::press_release_service_client::PressReleaseServiceClient;
use pressroom::{
    feed::cursor::Cursor,
    proto::v1::{
        DeletePressReleaseRequest, EventType, ImportPressReleasesRequest, PressRelease,
        PressReleaseFilter, StartPosition, UpdatePressReleaseRequest, WatchPressReleasesRequest,
        press_release::State, watch_press_releases_request::Start,
    },
};
use tonic::{Code, transport::Channel};

use crate::helpers::{
    TestResult, TestServer, assert_cursor_order, create_request, read_events, read_until,
    read_until_caught_up, release, seq, watch,
};

fn from(start: Start) -> WatchPressReleasesRequest {
    WatchPressReleasesRequest {
        filter: None,
        start: Some(start),
        ..Default::default()
    }
}

fn beginning() -> WatchPressReleasesRequest {
    from(Start::Position(StartPosition::Beginning as i32))
}

fn now() -> WatchPressReleasesRequest {
    from(Start::Position(StartPosition::Now as i32))
}

fn after(cursor: &str) -> WatchPressReleasesRequest {
    from(Start::AfterCursor(cursor.into()))
}

async fn create(server: &mut TestServer, headline: &str) -> Result<PressRelease, tonic::Status> {
    Ok(server
        .client
        .create_press_release(create_request(release(headline)))
        .await?
        .into_inner())
}

/// Imports `count` releases in one call.
async fn import(server: &mut TestServer, count: usize, prefix: &str) -> TestResult {
    let items: Vec<_> = (0..count)
        .map(|i| ImportPressReleasesRequest {
            press_release: Some(release(&format!("{prefix} {i}"))),
            request_id: String::new(),
        })
        .collect();
    let response = server
        .client
        .import_press_releases(tokio_stream::iter(items))
        .await?
        .into_inner();
    assert_eq!(response.created, count as i64);
    Ok(())
}

#[tokio::test]
async fn eight_writers_and_three_watchers_each_get_exactly_theirs() -> TestResult {
    let mut server = TestServer::start().await;
    import(&mut server, 1_000, "history").await?;
    // A cursor in the middle of history: after the 400th change.
    let mut probe = watch(&mut server.client, beginning()).await?;
    let first = read_events(&mut probe, 400).await?;
    let middle = first.events[399].cursor.clone();
    drop(probe);

    let mut from_beginning = watch(&mut server.new_client().await, beginning()).await?;
    let mut from_now = watch(&mut server.new_client().await, now()).await?;
    let mut from_middle = watch(&mut server.new_client().await, after(&middle)).await?;
    read_until_caught_up(&mut from_now).await?;

    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(server.new_client().await);
    }
    let writers = spawn_writers(clients, 25, "live");
    // The from-beginning watcher is still catching up while the writers run.
    let beginning_seen = read_events(&mut from_beginning, 1_200).await?;
    let now_seen = read_events(&mut from_now, 200).await?;
    let middle_seen = read_events(&mut from_middle, 800).await?;
    let mut live = HashSet::new();
    for writer in writers {
        live.extend(writer.await??);
    }

    for (watched, expected_len) in [
        (&beginning_seen, 1_200),
        (&now_seen, 200),
        (&middle_seen, 800),
    ] {
        assert_cursor_order(watched);
        let names = watched.names();
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(names.len(), expected_len);
        assert_eq!(unique.len(), expected_len, "nothing twice");
        assert!(
            live.iter().all(|n| unique.contains(n)),
            "every live change arrives"
        );
    }
    let history: HashSet<String> = first.names().into_iter().collect();
    assert!(
        middle_seen.names().iter().all(|n| !history.contains(n)),
        "nothing from before the cursor"
    );
    assert_eq!(seq(&middle_seen.events[0].cursor), seq(&middle) + 1);
    assert!(
        now_seen
            .events
            .iter()
            .all(|e| e.r#type() == EventType::Created)
    );

    // Nothing more arrives: each watcher got exactly its share.
    for stream in [&mut from_beginning, &mut from_now, &mut from_middle] {
        let extra = read_until(stream, Duration::from_millis(300), |w| !w.events.is_empty()).await;
        assert!(extra.is_err(), "no further events");
    }
    Ok(())
}

/// One task per client, each creating `each` releases; their names.
fn spawn_writers(
    clients: Vec<PressReleaseServiceClient<Channel>>,
    each: usize,
    label: &str,
) -> Vec<tokio::task::JoinHandle<Result<Vec<String>, tonic::Status>>> {
    clients
        .into_iter()
        .enumerate()
        .map(|(w, mut client)| {
            let label = label.to_string();
            tokio::spawn(async move {
                let mut names = Vec::new();
                for i in 0..each {
                    let created = client
                        .create_press_release(create_request(release(&format!("{label} {w}-{i}"))))
                        .await?;
                    names.push(created.into_inner().name);
                }
                Ok(names)
            })
        })
        .collect()
}

/// Replays from the beginning while writers add `4 × 25` releases; checks
/// that exactly `history + 100` distinct releases arrive in cursor order.
async fn replay_while_writing(server: &mut TestServer, history: usize, label: &str) -> TestResult {
    let mut stream = watch(&mut server.new_client().await, beginning()).await?;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(server.new_client().await);
    }
    let writers = spawn_writers(clients, 25, label);
    let seen = read_events(&mut stream, history + 100).await?;
    let mut live = HashSet::new();
    for writer in writers {
        live.extend(writer.await??);
    }
    assert_cursor_order(&seen);
    let names = seen.names();
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), history + 100, "nothing twice");
    assert!(
        live.iter().all(|n| unique.contains(n)),
        "every live change arrives"
    );
    let extra = read_until(&mut stream, Duration::from_millis(300), |w| {
        !w.events.is_empty()
    })
    .await;
    assert!(extra.is_err(), "no further events");
    Ok(())
}

/// History older than the recent tail the server keeps in memory is read
/// from the store; the replay must cross into the tail (and,
/// after a restart, into changes made since) without a gap or a repeat.
#[tokio::test]
async fn a_replay_longer_than_the_recent_tail_crosses_into_it_exactly() -> TestResult {
    let mut server = TestServer::start().await;
    // More than the 4,096 recent changes the tail keeps.
    for batch in 0..6 {
        import(&mut server, 1_000, &format!("history {batch}")).await?;
    }
    replay_while_writing(&mut server, 6_000, "live").await?;
    // After a restart the tail starts empty: all history is in the store.
    let mut server = server.restart().await;
    replay_while_writing(&mut server, 6_100, "after restart").await?;
    Ok(())
}

#[tokio::test]
async fn resuming_misses_nothing_and_repeats_nothing() -> TestResult {
    let mut server = TestServer::start().await;
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(create(&mut server, &format!("first {i}")).await?.name);
    }
    let mut stream = watch(&mut server.client, beginning()).await?;
    let part = read_events(&mut stream, 3).await?;
    drop(stream);
    for i in 0..5 {
        made.push(create(&mut server, &format!("second {i}")).await?.name);
    }
    let mut resumed = watch(&mut server.client, after(&part.last_cursor())).await?;
    let rest = read_events(&mut resumed, 7).await?;
    let mut seen = part.names();
    seen.extend(rest.names());
    assert_eq!(seen, made, "consumer restart: everything once, in order");

    // Resume from a Progress cursor too.
    let caught_up = read_until_caught_up(&mut resumed).await?;
    let progress_cursor = caught_up.last_cursor();
    drop(resumed);

    // Server restart: cursors stay valid and nothing is lost.
    let mut server = server.restart().await;
    let mut after_restart = Vec::new();
    for i in 0..3 {
        after_restart.push(create(&mut server, &format!("third {i}")).await?.name);
    }
    let mut resumed = watch(&mut server.client, after(&progress_cursor)).await?;
    let third = read_events(&mut resumed, 3).await?;
    assert_eq!(third.names(), after_restart);
    let extra = read_until(&mut resumed, Duration::from_millis(300), |w| {
        !w.events.is_empty()
    })
    .await;
    assert!(extra.is_err(), "nothing twice after a restart");
    Ok(())
}

#[tokio::test]
async fn start_time_starts_with_changes_committed_at_or_after_it() -> TestResult {
    let mut server = TestServer::start().await;
    for i in 0..3 {
        create(&mut server, &format!("before {i}")).await?;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let since = pressroom::proto::now();
    let mut later = Vec::new();
    for i in 0..2 {
        later.push(create(&mut server, &format!("after {i}")).await?.name);
    }
    let mut stream = watch(&mut server.client, from(Start::StartTime(since))).await?;
    let watched = read_until_caught_up(&mut stream).await?;
    assert_eq!(watched.names(), later);
    Ok(())
}

#[tokio::test]
async fn replay_is_compacted_per_release() -> TestResult {
    let mut server = TestServer::start().await;
    let x = create(&mut server, "X").await?;
    let updated = server
        .client
        .update_press_release(UpdatePressReleaseRequest {
            press_release: Some(PressRelease {
                name: x.name.clone(),
                etag: x.etag.clone(),
                headline: "X corrected".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["headline".into()],
            }),
        })
        .await?
        .into_inner();
    server
        .client
        .delete_press_release(DeletePressReleaseRequest {
            name: x.name.clone(),
            etag: updated.etag,
            reason: "error".into(),
        })
        .await?;
    let y = create(&mut server, "Y").await?;
    let mut stream = watch(&mut server.client, beginning()).await?;
    let watched = read_until_caught_up(&mut stream).await?;
    let kinds: Vec<(EventType, String)> = watched
        .events
        .iter()
        .map(|e| (e.r#type(), e.press_release.clone().unwrap_or_default().name))
        .collect();
    assert_eq!(
        kinds,
        [
            (EventType::Withdrawn, x.name.clone()),
            (EventType::Created, y.name)
        ]
    );
    let tombstone = watched.events[0].press_release.clone().unwrap_or_default();
    assert_eq!(tombstone.state(), State::Withdrawn);
    assert!(
        tombstone.headline.is_empty() && tombstone.body.is_empty(),
        "the content is gone"
    );
    assert_eq!(
        seq(&watched.events[0].cursor),
        3,
        "the withdrawal is the third change"
    );
    Ok(())
}

#[tokio::test]
async fn a_filtered_watch_gets_progress_and_is_told_when_a_release_leaves() -> TestResult {
    let mut server = TestServer::start_with(&["--watch-progress-interval", "200ms"]).await;
    let sport = |headline: &str, channel: &str| PressRelease {
        channels: vec![channel.into()],
        ..release(headline)
    };
    let request = WatchPressReleasesRequest {
        filter: Some(PressReleaseFilter {
            channels: vec!["Sport".into()],
            ..Default::default()
        }),
        start: Some(Start::Position(StartPosition::Now as i32)),
        ..Default::default()
    };
    let mut stream = watch(&mut server.new_client().await, request).await?;
    read_until_caught_up(&mut stream).await?;

    // Only non-matching writes: progress keeps coming, with moving cursors.
    let mut unrelated = Vec::new();
    for i in 0..5 {
        let created = server
            .client
            .create_press_release(create_request(sport(&format!("business {i}"), "Business")))
            .await?
            .into_inner();
        unrelated.push(created);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Progress reports the position reached: it gets to the last write
    // (seq 5), however slowly a loaded machine made the writes.
    let quiet = read_until(&mut stream, Duration::from_secs(10), |w| {
        w.progress.len() >= 3 && w.progress.last().is_some_and(|p| seq(&p.cursor) >= 5)
    })
    .await?;
    assert!(
        quiet.events.is_empty(),
        "no event for releases outside the filter"
    );
    assert!(quiet.progress.iter().all(|p| p.caught_up));

    // A matching release arrives; changed to stop matching, it is UNMATCHED.
    let matching = server
        .client
        .create_press_release(create_request(sport("match", "sport")))
        .await?
        .into_inner();
    let seen = read_events(&mut stream, 1).await?;
    assert_eq!(seen.events[0].r#type(), EventType::Created);
    assert_eq!(seen.names(), std::slice::from_ref(&matching.name));
    server
        .client
        .update_press_release(UpdatePressReleaseRequest {
            press_release: Some(PressRelease {
                name: matching.name.clone(),
                etag: matching.etag.clone(),
                channels: vec!["Business".into()],
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["channels".into()],
            }),
        })
        .await?;
    // Withdrawing a release the filter never matched says nothing.
    server
        .client
        .delete_press_release(DeletePressReleaseRequest {
            name: unrelated[0].name.clone(),
            ..Default::default()
        })
        .await?;
    let left = read_events(&mut stream, 1).await?;
    assert_eq!(left.events[0].r#type(), EventType::Unmatched);
    assert_eq!(left.names(), std::slice::from_ref(&matching.name));
    let extra = read_until(&mut stream, Duration::from_millis(500), |w| {
        !w.events.is_empty()
    })
    .await;
    assert!(extra.is_err(), "no event for the unrelated withdrawal");
    Ok(())
}

#[tokio::test]
async fn a_stalled_watcher_holds_bounded_data_and_slows_nobody() -> TestResult {
    let server = TestServer::start().await;
    // The stalled consumer: its own connection with ordinary 64 KiB HTTP/2
    // windows, never read.
    let _stalled = watch(&mut server.stalling_client().await, now()).await?;
    let mut reader = watch(&mut server.new_client().await, now()).await?;
    read_until_caught_up(&mut reader).await?;

    let mut writers = Vec::new();
    for w in 0..10 {
        let mut client = server.new_client().await;
        writers.push(tokio::spawn(async move {
            for i in 0..500 {
                let mut input = release(&format!("burst {w}-{i}"));
                input.body = "A paragraph of a press release. ".repeat(64);
                client.create_press_release(create_request(input)).await?;
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    // 5,000 creates from a debug build on a loaded machine (and on
    // PostgreSQL) can take longer than `read_events`' minute: the bound
    // here is on what is held, not on speed.
    let received = read_until(&mut reader, Duration::from_secs(300), |w| {
        w.events.len() >= 5_000
    })
    .await?;
    for writer in writers {
        writer.await??;
    }
    assert_eq!(
        received.names().iter().collect::<HashSet<_>>().len(),
        5_000,
        "the live watcher gets everything"
    );

    let snapshot = server.watchers.snapshot();
    assert_eq!(snapshot.len(), 2);
    // What the server holds for the stalled stream: at most its 16-message
    // buffer (the transport below holds at most its HTTP/2 send buffer), and
    // it stopped reading the log long before the end.
    let stalled = snapshot[0];
    assert!(
        stalled.buffered_messages <= 16,
        "the stalled stream's buffer is bounded: {stalled:?}"
    );
    assert!(stalled.buffered_bytes <= 16 * 4_096, "{stalled:?}");
    assert!(
        stalled.position < 1_000,
        "the stalled stream stopped reading the log: {stalled:?}"
    );
    assert_eq!(snapshot[1].position, 5_000);
    Ok(())
}

#[tokio::test]
async fn bad_cursors_are_refused_clearly() -> TestResult {
    let mut server = TestServer::start().await;
    let mut other = TestServer::start().await;
    create(&mut other, "elsewhere").await?;
    let mut stream = watch(&mut other.client, beginning()).await?;
    let foreign = read_events(&mut stream, 1).await?.last_cursor();

    let status = watch(&mut server.client, after("not-a-cursor"))
        .await
        .err()
        .ok_or("malformed cursor accepted")?;
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = watch(&mut server.client, after(&foreign))
        .await
        .err()
        .ok_or("foreign cursor accepted")?;
    assert_eq!(status.code(), Code::FailedPrecondition);

    create(&mut server, "here").await?;
    let mut stream = watch(&mut server.client, beginning()).await?;
    let mine =
        Cursor::decode(&read_events(&mut stream, 1).await?.last_cursor()).map_err(|_| "cursor")?;
    let ahead = Cursor {
        seq: mine.seq + 10,
        ..mine
    }
    .encode();
    let status = watch(&mut server.client, after(&ahead))
        .await
        .err()
        .ok_or("cursor ahead accepted")?;
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("ahead"), "{}", status.message());
    Ok(())
}

#[tokio::test]
async fn a_thousand_watchers_each_get_every_change() -> TestResult {
    let mut server = TestServer::start().await;
    let mut streams = Vec::new();
    for _ in 0..10 {
        let client = server.new_client().await;
        for _ in 0..100 {
            streams.push(watch(&mut client.clone(), now()).await?);
        }
    }
    assert_eq!(server.watchers.active(), 1_000);
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(create(&mut server, &format!("fan-out {i}")).await?.name);
    }
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move { read_events(&mut stream, 5).await.map(|w| w.names()) })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await??, made);
    }
    Ok(())
}
