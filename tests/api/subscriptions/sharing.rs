//! Consumers sharing a subscription: disjoint shares that together hold
//! every event, redelivery after a deadline or a lost stream, per-release
//! order.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_consumers_share_every_event_while_writers_create() -> TestResult {
    let server = TestServer::start().await;
    let mut client = subs(&server).await;
    create(&mut client, "wire", 60, 5, None).await?;
    let received: Arc<Mutex<Vec<Vec<String>>>> = Arc::new(Mutex::new(vec![Vec::new(); 3]));
    let stop = tokio_util::sync::CancellationToken::new();
    let mut consumers = Vec::new();
    for c in 0..3 {
        let mut consumer = Consumer::open(&mut subs(&server).await, "wire", 8).await?;
        let received = Arc::clone(&received);
        let stop = stop.clone();
        consumers.push(tokio::spawn(async move {
            while !stop.is_cancelled() {
                let events = consumer.events(Duration::from_millis(200)).await?;
                if let Ok(mut received) = received.lock() {
                    received[c].extend(events.iter().map(name_of));
                }
                consumer.ack(&events).await;
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    let mut writers = Vec::new();
    for w in 0..4 {
        let server_client = server.client.clone();
        writers.push(tokio::spawn(async move {
            let mut client = server_client;
            let mut names = Vec::new();
            for i in 0..50 {
                let created = client
                    .create_press_release(create_request(release(&format!("Writer {w} item {i}"))))
                    .await?
                    .into_inner();
                names.push(created.name);
            }
            Ok::<_, tonic::Status>(names)
        }));
    }
    let mut created = BTreeSet::new();
    for writer in writers {
        created.extend(writer.await??);
    }
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let total: usize = received
            .lock()
            .map(|r| r.iter().map(Vec::len).sum())
            .unwrap_or(0);
        if total >= created.len() || tokio::time::Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A moment more: nothing else may come.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    for consumer in consumers {
        consumer.await??;
    }
    let shares = received.lock().map(|r| r.clone()).unwrap_or_default();
    let all: Vec<&String> = shares.iter().flatten().collect();
    let union: BTreeSet<String> = all.iter().map(|s| s.to_string()).collect();
    assert_eq!(all.len(), union.len(), "an event went to two consumers");
    assert_eq!(union, created, "together the consumers got every event");
    for (i, share) in shares.iter().enumerate() {
        assert!(
            !share.is_empty(),
            "consumer {i} got nothing: {:?}",
            shares.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_consumer_s_events_go_to_the_others_after_the_deadline_and_a_killed_one_s_at_once()
-> TestResult {
    let server = TestServer::start().await;
    let mut client = subs(&server).await;
    create(&mut client, "deadline", 1, 5, None).await?;
    // It may hold 5: once it holds 5 (expired or not) it gets no more.
    let mut hung = Consumer::open(&mut client, "deadline", 5).await?;
    let names = create_releases(&server, "Held", 5).await?;
    let held = hung.take(5, Duration::from_secs(5)).await?;
    assert_eq!(held.len(), 5);
    let started = tokio::time::Instant::now();
    let mut other = Consumer::open(&mut subs(&server).await, "deadline", 100).await?;
    let again = other.take(5, Duration::from_secs(5)).await?;
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "redelivered only after the 1 s deadline ({:?})",
        started.elapsed()
    );
    let mut got: Vec<String> = again.iter().map(name_of).collect();
    got.sort();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(got, expected);
    assert!(again.iter().all(|e| e.delivery_attempt == 2));
    // The hung consumer's late acks no longer count.
    hung.ack(&held).await;
    other.ack(&again).await;
    other.confirmed(&again).await?;
    assert!(held.iter().all(|e| !hung.confirmed.contains(&e.ack_id)));

    // A consumer that goes away: what it held comes to the others at once.
    drop(hung);
    let mut killed = Consumer::open(&mut subs(&server).await, "deadline", 100).await?;
    // `other` is full of nothing now; the new events may go to either.
    let more = create_releases(&server, "Lost", 4).await?;
    let mut seen = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while seen.len() < 4 && tokio::time::Instant::now() < until {
        let events = killed.events(Duration::from_millis(200)).await?;
        seen.extend(events);
        let at_other = other.events(Duration::from_millis(10)).await?;
        other.ack(&at_other).await;
        seen.extend(at_other.into_iter().map(|mut e| {
            e.ack_id.clear();
            e
        }));
    }
    let killed_held: Vec<_> = seen
        .iter()
        .filter(|e| !e.ack_id.is_empty())
        .cloned()
        .collect();
    drop(killed);
    let started = tokio::time::Instant::now();
    let after = other
        .take(killed_held.len(), Duration::from_millis(900))
        .await?;
    let mut redelivered: Vec<String> = after.iter().map(name_of).collect();
    redelivered.sort();
    let mut expected: Vec<String> = killed_held.iter().map(name_of).collect();
    expected.sort();
    assert_eq!(redelivered, expected, "{more:?}");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "before the deadline"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_one_release_come_in_order_and_never_to_two_consumers_at_once() -> TestResult {
    let server = TestServer::start().await;
    let mut client = subs(&server).await;
    create(&mut client, "ordered", 60, 5, None).await?;
    // Per release: whether a consumer is processing it, and the last
    // revision processed.
    let state: Arc<Mutex<HashMap<String, (bool, i64)>>> = Arc::default();
    let violations: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut consumers = Vec::new();
    for c in 0..3u64 {
        let mut consumer = Consumer::open(&mut subs(&server).await, "ordered", 4).await?;
        let (state, violations, stop) = (Arc::clone(&state), Arc::clone(&violations), stop.clone());
        consumers.push(tokio::spawn(async move {
            let mut turn = c;
            while !stop.is_cancelled() {
                for event in consumer.events(Duration::from_millis(100)).await? {
                    let release: PressRelease = event
                        .event
                        .clone()
                        .and_then(|e| e.press_release)
                        .unwrap_or_default();
                    if let Ok(mut state) = state.lock() {
                        let entry = state.entry(release.name.clone()).or_insert((false, 0));
                        if entry.0 {
                            violations
                                .lock()
                                .map(|mut v| v.push(format!("{} held twice", release.name)))
                                .ok();
                        }
                        if release.revision <= entry.1 {
                            violations
                                .lock()
                                .map(|mut v| {
                                    v.push(format!(
                                        "{} revision {} after {}",
                                        release.name, release.revision, entry.1
                                    ))
                                })
                                .ok();
                        }
                        entry.0 = true;
                    }
                    turn = (turn * 7 + 3) % 11;
                    tokio::time::sleep(Duration::from_millis(turn)).await;
                    if let Ok(mut state) = state.lock() {
                        state.insert(release.name.clone(), (false, release.revision));
                    }
                    consumer.ack(std::slice::from_ref(&event)).await;
                }
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    // 12 releases, each changed 4 times, the releases in parallel.
    let mut writers = Vec::new();
    for r in 0..12 {
        let mut client = server.client.clone();
        writers.push(tokio::spawn(async move {
            let mut current = client
                .create_press_release(create_request(release(&format!("Ordered {r}"))))
                .await?
                .into_inner();
            for u in 0..4 {
                current.headline = format!("Ordered {r} change {u}");
                current = client
                    .update_press_release(UpdatePressReleaseRequest {
                        press_release: Some(current.clone()),
                        update_mask: Some(pressroom::proto::FieldMask {
                            paths: vec!["headline".into()],
                        }),
                    })
                    .await?
                    .into_inner();
            }
            Ok::<_, tonic::Status>((current.name, current.revision))
        }));
    }
    let mut last = HashMap::new();
    for writer in writers {
        let (name, revision) = writer.await??;
        last.insert(name, revision);
    }
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done = state
            .lock()
            .map(|s| {
                last.iter()
                    .all(|(name, rev)| s.get(name).is_some_and(|(busy, r)| !busy && r == rev))
            })
            .unwrap_or(false);
        if done || tokio::time::Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    for consumer in consumers {
        consumer.await??;
    }
    let violations = violations.lock().map(|v| v.clone()).unwrap_or_default();
    assert!(violations.is_empty(), "{violations:#?}");
    let state = state.lock().map(|s| s.clone()).unwrap_or_default();
    for (name, revision) in &last {
        assert_eq!(
            state.get(name).map(|s| s.1),
            Some(*revision),
            "{name} ends at its last revision"
        );
    }
    Ok(())
}
