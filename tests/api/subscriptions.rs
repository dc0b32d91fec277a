//! Subscriptions against the real server with real clients: shared
//! consumers, redelivery after a deadline or a lost stream, restarts,
//! per-release order, dead letters, seek, roles and bad requests.
//!
//! On sled whatever `PRESSROOM_TEST_STORE` says: the PostgreSQL engine does
//! not keep subscription state yet (it refuses with FAILED_PRECONDITION).

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use pressroom::proto::v1::{
    CreateSubscriptionRequest, DeleteSubscriptionRequest, EventType, GetSubscriptionRequest,
    ListDeadLettersRequest, ListSubscriptionsRequest, PressRelease, ReceivedEvent,
    ReplayDeadLettersRequest, SeekSubscriptionRequest, StartPosition, StreamSubscriptionRequest,
    StreamSubscriptionResponse, Subscription, UpdatePressReleaseRequest,
    seek_subscription_request::Target, subscription::Start,
    subscription_service_client::SubscriptionServiceClient,
};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Code, Streaming, transport::Channel};

use crate::helpers::{
    TestResult, TestServer, create_request, release, sled_temp_dir, violated_fields, write_keys,
};

type Subs = SubscriptionServiceClient<Channel>;

async fn subs(server: &TestServer) -> Subs {
    SubscriptionServiceClient::new(server.channel().await)
}

/// Creates subscription `id` with `ack_deadline_s` and `max_deliveries`.
async fn create(
    client: &mut Subs,
    id: &str,
    ack_deadline_s: i64,
    max_deliveries: i32,
    start: Option<Start>,
) -> Result<Subscription, tonic::Status> {
    Ok(client
        .create_subscription(CreateSubscriptionRequest {
            subscription_id: id.into(),
            subscription: Some(Subscription {
                ack_deadline: Some(pbjson_types::Duration {
                    seconds: ack_deadline_s,
                    nanos: 0,
                }),
                max_deliveries,
                start,
                ..Default::default()
            }),
        })
        .await?
        .into_inner())
}

/// One StreamSubscription stream.
struct Consumer {
    requests: mpsc::Sender<StreamSubscriptionRequest>,
    responses: Streaming<StreamSubscriptionResponse>,
    confirmed: HashSet<String>,
}

impl Consumer {
    async fn open(client: &mut Subs, id: &str, max: i32) -> Result<Self, tonic::Status> {
        let (requests, receiver) = mpsc::channel(1024);
        let _ = requests
            .send(StreamSubscriptionRequest {
                subscription: format!("subscriptions/{id}"),
                max_outstanding_events: max,
                ..Default::default()
            })
            .await;
        let responses = client
            .stream_subscription(ReceiverStream::new(receiver))
            .await?
            .into_inner();
        Ok(Self {
            requests,
            responses,
            confirmed: HashSet::new(),
        })
    }

    /// The events of the next message that has any, within `wait`
    /// (confirmations on the way are noted); empty if none came.
    async fn events(&mut self, wait: Duration) -> Result<Vec<ReceivedEvent>, tonic::Status> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(until, self.responses.next()).await;
            match next {
                Err(_) => return Ok(Vec::new()),
                Ok(None) => return Err(tonic::Status::aborted("the stream ended")),
                Ok(Some(message)) => {
                    let message = message?;
                    self.confirmed.extend(message.acknowledged_ids);
                    if !message.received_events.is_empty() {
                        return Ok(message.received_events);
                    }
                }
            }
        }
    }

    /// Every event that comes until `n` have, or `wait` passes with none.
    async fn take(
        &mut self,
        n: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedEvent>, tonic::Status> {
        let mut out = Vec::new();
        while out.len() < n {
            let events = self.events(wait).await?;
            if events.is_empty() {
                break;
            }
            out.extend(events);
        }
        Ok(out)
    }

    async fn ack(&self, events: &[ReceivedEvent]) {
        let _ = self
            .requests
            .send(StreamSubscriptionRequest {
                ack_ids: events.iter().map(|e| e.ack_id.clone()).collect(),
                ..Default::default()
            })
            .await;
    }

    async fn nack(&self, events: &[ReceivedEvent]) {
        let _ = self
            .requests
            .send(StreamSubscriptionRequest {
                nack_ids: events.iter().map(|e| e.ack_id.clone()).collect(),
                ..Default::default()
            })
            .await;
    }

    /// Waits until the server confirmed every ack of `events`.
    async fn confirmed(&mut self, events: &[ReceivedEvent]) -> TestResult {
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        while !events.iter().all(|e| self.confirmed.contains(&e.ack_id)) {
            let message = tokio::time::timeout_at(until, self.responses.next())
                .await
                .map_err(|_| "acks were not confirmed within 10 s")?
                .ok_or("the stream ended")??;
            self.confirmed.extend(message.acknowledged_ids);
        }
        Ok(())
    }
}

fn name_of(event: &ReceivedEvent) -> String {
    event
        .event
        .as_ref()
        .and_then(|e| e.press_release.as_ref())
        .map(|r| r.name.clone())
        .unwrap_or_default()
}

async fn create_releases(
    server: &TestServer,
    prefix: &str,
    n: usize,
) -> Result<Vec<String>, tonic::Status> {
    let mut client = server.client.clone();
    let mut names = Vec::new();
    for i in 0..n {
        let created = client
            .create_press_release(create_request(release(&format!("{prefix} {i}"))))
            .await?
            .into_inner();
        names.push(created.name);
    }
    Ok(names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_consumers_share_every_event_while_writers_create() -> TestResult {
    let server = TestServer::start_on_sled().await;
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
    let server = TestServer::start_on_sled().await;
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
async fn a_restart_redelivers_everything_unacknowledged_and_nothing_acknowledged() -> TestResult {
    let server = TestServer::start_on_sled().await;
    let mut client = subs(&server).await;
    create(&mut client, "durable", 60, 5, None).await?;
    let mut consumer = Consumer::open(&mut client, "durable", 100).await?;
    create_releases(&server, "Before restart", 10).await?;
    let events = consumer.take(10, Duration::from_secs(5)).await?;
    assert_eq!(events.len(), 10);
    // Ack every other one, out of order, and wait for the confirmation.
    let (acked, unacked): (Vec<_>, Vec<_>) =
        events.iter().enumerate().partition(|(i, _)| i % 2 == 1);
    let acked: Vec<ReceivedEvent> = acked.into_iter().map(|(_, e)| e.clone()).collect();
    let unacked: Vec<String> = unacked.into_iter().map(|(_, e)| name_of(e)).collect();
    consumer.ack(&acked).await;
    consumer.confirmed(&acked).await?;
    drop(consumer);
    drop(client);

    let server = server.restart().await;
    let mut client = subs(&server).await;
    let mut consumer = Consumer::open(&mut client, "durable", 100).await?;
    let again = consumer.take(10, Duration::from_secs(2)).await?;
    let mut got: Vec<String> = again.iter().map(name_of).collect();
    got.sort();
    let mut expected = unacked.clone();
    expected.sort();
    assert_eq!(got, expected, "exactly the unacknowledged ones again");
    assert!(
        again.iter().all(|e| e.delivery_attempt == 2),
        "delivery counts survive: {:?}",
        again.iter().map(|e| e.delivery_attempt).collect::<Vec<_>>()
    );
    consumer.ack(&again).await;
    consumer.confirmed(&again).await?;
    drop(consumer);
    drop(client);

    let server = server.restart().await;
    let mut client = subs(&server).await;
    let mut consumer = Consumer::open(&mut client, "durable", 100).await?;
    let nothing = consumer.take(1, Duration::from_secs(1)).await?;
    assert!(
        nothing.is_empty(),
        "acknowledged events came again: {:?}",
        nothing.iter().map(name_of).collect::<Vec<_>>()
    );
    create_releases(&server, "After restart", 1).await?;
    assert_eq!(consumer.take(1, Duration::from_secs(5)).await?.len(), 1);
    let status = client
        .get_subscription(GetSubscriptionRequest {
            name: "subscriptions/durable".into(),
        })
        .await?
        .into_inner();
    assert_eq!(status.outstanding_events, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_one_release_come_in_order_and_never_to_two_consumers_at_once() -> TestResult {
    let server = TestServer::start_on_sled().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_becomes_a_dead_letter_and_can_be_replayed() -> TestResult {
    let server = TestServer::start_on_sled().await;
    let mut client = subs(&server).await;
    create(&mut client, "poison", 60, 2, None).await?;
    let mut consumer = Consumer::open(&mut client, "poison", 10).await?;
    let names = create_releases(&server, "Maybe poison", 2).await?;
    let poison = names[0].clone();
    let mut attempts = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < until {
        let events = consumer.events(Duration::from_millis(300)).await?;
        if events.is_empty() && attempts >= 2 {
            break;
        }
        for event in events {
            if name_of(&event) == poison {
                attempts += 1;
                assert_eq!(event.delivery_attempt, attempts);
                consumer.nack(std::slice::from_ref(&event)).await;
            } else {
                consumer.ack(std::slice::from_ref(&event)).await;
            }
        }
    }
    assert_eq!(
        attempts, 2,
        "delivered max_deliveries times, then set aside"
    );
    let letters = client
        .list_dead_letters(ListDeadLettersRequest {
            subscription: "subscriptions/poison".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .dead_letters;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].press_release, poison);
    assert_eq!(letters[0].delivery_attempts, 2);
    assert_eq!(letters[0].r#type(), EventType::Created);
    let got = client
        .get_subscription(GetSubscriptionRequest {
            name: "subscriptions/poison".into(),
        })
        .await?
        .into_inner();
    assert_eq!(got.dead_letter_count, 1);

    let replayed = client
        .replay_dead_letters(ReplayDeadLettersRequest {
            subscription: "subscriptions/poison".into(),
            cursors: vec![letters[0].cursor.clone()],
        })
        .await?
        .into_inner();
    assert_eq!(replayed.replayed, 1);
    let again = consumer.take(1, Duration::from_secs(5)).await?;
    assert_eq!(
        again.iter().map(name_of).collect::<Vec<_>>(),
        std::slice::from_ref(&poison)
    );
    assert_eq!(again[0].delivery_attempt, 1, "a replay counts afresh");
    consumer.ack(&again).await;
    consumer.confirmed(&again).await?;
    let letters = client
        .list_dead_letters(ListDeadLettersRequest {
            subscription: "subscriptions/poison".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .dead_letters;
    assert!(letters.is_empty(), "{letters:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_replays_from_a_cursor_or_the_beginning_and_skips_to_now() -> TestResult {
    let server = TestServer::start_on_sled().await;
    let mut client = subs(&server).await;
    create(
        &mut client,
        "seeker",
        60,
        5,
        Some(Start::Position(StartPosition::Beginning as i32)),
    )
    .await?;
    let names = create_releases(&server, "Seek", 5).await?;
    let mut consumer = Consumer::open(&mut client, "seeker", 100).await?;
    let events = consumer.take(5, Duration::from_secs(5)).await?;
    assert_eq!(events.iter().map(name_of).collect::<Vec<_>>(), names);
    consumer.ack(&events).await;
    consumer.confirmed(&events).await?;
    let third = events[2]
        .event
        .as_ref()
        .map(|e| e.cursor.clone())
        .unwrap_or_default();

    let seek = |target| SeekSubscriptionRequest {
        subscription: "subscriptions/seeker".into(),
        target: Some(target),
    };
    client
        .seek_subscription(seek(Target::AfterCursor(third)))
        .await?;
    let replayed = consumer.take(2, Duration::from_secs(5)).await?;
    assert_eq!(replayed.iter().map(name_of).collect::<Vec<_>>(), names[3..]);
    // Acks of deliveries from before a seek are ignored.
    consumer.ack(&events).await;

    client
        .seek_subscription(seek(Target::Position(StartPosition::Beginning as i32)))
        .await?;
    let all = consumer.take(5, Duration::from_secs(5)).await?;
    assert_eq!(all.iter().map(name_of).collect::<Vec<_>>(), names);

    let now = client
        .seek_subscription(seek(Target::Position(StartPosition::Now as i32)))
        .await?
        .into_inner();
    assert_eq!(now.backlog, 0);
    assert!(
        consumer
            .take(1, Duration::from_millis(500))
            .await?
            .is_empty(),
        "the backlog is skipped"
    );
    let later = create_releases(&server, "After the seek", 1).await?;
    let next = consumer.take(1, Duration::from_secs(5)).await?;
    assert_eq!(next.iter().map(name_of).collect::<Vec<_>>(), later);

    let bad = client
        .seek_subscription(seek(Target::AfterCursor("nope".into())))
        .await
        .err()
        .ok_or("a bad cursor was taken")?;
    assert_eq!(bad.code(), Code::InvalidArgument);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_create_and_consume_but_only_the_creator_or_an_admin_deletes() -> TestResult {
    let dir = sled_temp_dir();
    let keys = write_keys(dir.path());
    let path = keys.path.display().to_string();
    let server = TestServer::start_in(dir, &["--keys-file", &path]).await;
    let connect = |token: Option<String>| {
        let addr = server.addr;
        async move {
            pressroom::client::connect_subscriptions(&pressroom::client::ClientArgs {
                server: format!("http://{addr}"),
                token,
                ca_cert: None,
            })
            .await
        }
    };
    let mut reader = connect(Some(keys.reader.clone())).await?;
    let mut publisher = connect(Some(keys.publisher.clone())).await?;
    let mut admin = connect(Some(keys.admin.clone())).await?;
    let mut nobody = connect(None).await?;

    let refused = nobody
        .list_subscriptions(ListSubscriptionsRequest::default())
        .await
        .err()
        .ok_or("no key, yet listed")?;
    assert_eq!(refused.code(), Code::Unauthenticated);

    let created = reader
        .create_subscription(CreateSubscriptionRequest {
            subscription_id: "readers".into(),
            subscription: Some(Subscription::default()),
        })
        .await?
        .into_inner();
    assert_eq!(created.creator, "dashboard");
    // Another key may read and consume it…
    publisher
        .get_subscription(GetSubscriptionRequest {
            name: created.name.clone(),
        })
        .await?;
    let (tx, rx) = mpsc::channel(4);
    tx.send(StreamSubscriptionRequest {
        subscription: created.name.clone(),
        max_outstanding_events: 1,
        ..Default::default()
    })
    .await?;
    let mut stream = publisher
        .stream_subscription(ReceiverStream::new(rx))
        .await?
        .into_inner();
    // …but not seek or delete it.
    let denied = publisher
        .seek_subscription(SeekSubscriptionRequest {
            subscription: created.name.clone(),
            target: Some(Target::Position(StartPosition::Now as i32)),
        })
        .await
        .err()
        .ok_or("seeking another key's subscription")?;
    assert_eq!(denied.code(), Code::PermissionDenied);
    let delete = DeleteSubscriptionRequest {
        name: created.name.clone(),
    };
    let denied = publisher
        .delete_subscription(delete.clone())
        .await
        .err()
        .ok_or("deleting another key's subscription")?;
    assert_eq!(denied.code(), Code::PermissionDenied);
    admin.delete_subscription(delete.clone()).await?;
    // The open stream ends with NOT_FOUND.
    let ended = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await?
        .ok_or("the stream ended without a status")?
        .err()
        .ok_or("a message, not the end")?;
    assert_eq!(ended.code(), Code::NotFound);
    drop(tx);
    let gone = reader
        .get_subscription(GetSubscriptionRequest {
            name: created.name.clone(),
        })
        .await
        .err()
        .ok_or("still there")?;
    assert_eq!(gone.code(), Code::NotFound);

    // The creator deletes its own.
    reader
        .create_subscription(CreateSubscriptionRequest {
            subscription_id: "own".into(),
            subscription: Some(Subscription::default()),
        })
        .await?;
    reader
        .delete_subscription(DeleteSubscriptionRequest {
            name: "subscriptions/own".into(),
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn bad_requests_are_refused_by_field_and_lists_page() -> TestResult {
    let server = TestServer::start_on_sled().await;
    let mut client = subs(&server).await;
    let bad = client
        .create_subscription(CreateSubscriptionRequest {
            subscription_id: "Bad_Id".into(),
            subscription: Some(Subscription {
                ack_deadline: Some(pbjson_types::Duration {
                    seconds: 3_600,
                    nanos: 0,
                }),
                max_deliveries: 5_000,
                query: "-only".into(),
                filter: Some(pressroom::proto::v1::PressReleaseFilter {
                    countries: vec!["ZZ".into()],
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
        .await
        .err()
        .ok_or("a bad create was taken")?;
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&bad),
        [
            "subscription_id",
            "subscription.filter.countries[0]",
            "subscription.query",
            "subscription.ack_deadline",
            "subscription.max_deliveries"
        ]
    );
    let bad_start = create(
        &mut client,
        "x",
        10,
        1,
        Some(Start::AfterCursor("junk".into())),
    )
    .await
    .err()
    .ok_or("a bad cursor was taken")?;
    assert_eq!(violated_fields(&bad_start), ["subscription.after_cursor"]);

    for id in ["b", "a", "c"] {
        create(&mut client, id, 10, 1, None).await?;
    }
    let twice = create(&mut client, "a", 10, 1, None)
        .await
        .err()
        .ok_or("created twice")?;
    assert_eq!(twice.code(), Code::AlreadyExists);
    let first = client
        .list_subscriptions(ListSubscriptionsRequest {
            page_size: 2,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    let second = client
        .list_subscriptions(ListSubscriptionsRequest {
            page_size: 2,
            page_token: first.next_page_token.clone(),
        })
        .await?
        .into_inner();
    let names: Vec<_> = first
        .subscriptions
        .iter()
        .chain(&second.subscriptions)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["subscriptions/a", "subscriptions/b", "subscriptions/c"]
    );
    assert!(second.next_page_token.is_empty());
    let junk = client
        .list_subscriptions(ListSubscriptionsRequest {
            page_size: 2,
            page_token: "junk".into(),
        })
        .await
        .err()
        .ok_or("a junk token")?;
    assert_eq!(junk.code(), Code::InvalidArgument);

    let missing = client
        .get_subscription(GetSubscriptionRequest {
            name: "subscriptions/nope".into(),
        })
        .await
        .err()
        .ok_or("found nothing")?;
    assert_eq!(missing.code(), Code::NotFound);
    let malformed = client
        .get_subscription(GetSubscriptionRequest {
            name: "nope".into(),
        })
        .await
        .err()
        .ok_or("a malformed name")?;
    assert_eq!(violated_fields(&malformed), ["name"]);

    for (first, code) in [
        (
            StreamSubscriptionRequest {
                subscription: "subscriptions/a".into(),
                max_outstanding_events: 0,
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            StreamSubscriptionRequest {
                subscription: String::new(),
                max_outstanding_events: 1,
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            StreamSubscriptionRequest {
                subscription: "subscriptions/nope".into(),
                max_outstanding_events: 1,
                ..Default::default()
            },
            Code::NotFound,
        ),
    ] {
        let got = client
            .stream_subscription(tokio_stream::iter(vec![first.clone()]))
            .await
            .err()
            .ok_or("a bad stream was opened")?;
        assert_eq!(got.code(), code, "{first:?}");
    }
    // Junk ack ids are ignored; the stream keeps serving.
    let mut consumer = Consumer::open(&mut client, "a", 1).await?;
    let _ = consumer
        .requests
        .send(StreamSubscriptionRequest {
            ack_ids: vec!["junk".into(), "1.2.3".into()],
            nack_ids: vec!["".into()],
            ..Default::default()
        })
        .await;
    let names = create_releases(&server, "Still serving", 1).await?;
    let got = consumer.take(1, Duration::from_secs(5)).await?;
    assert_eq!(got.iter().map(name_of).collect::<Vec<_>>(), names);
    Ok(())
}

/// Runs the `pressroom` binary against `addr`: (exit code, stdout, stderr).
async fn cli(addr: std::net::SocketAddr, args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::new(env!("CARGO_BIN_EXE_pressroom"))
            .env("PRESSROOM_SERVER", format!("http://{addr}"))
            .env_remove("PRESSROOM_TOKEN")
            .env_remove("PRESSROOM_CA_CERT")
            .args(&args)
            .timeout(Duration::from_secs(30))
            .output()
    })
    .await;
    match output {
        Ok(Ok(output)) => (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
        Ok(Err(error)) => (-1, String::new(), error.to_string()),
        Err(error) => (-1, String::new(), error.to_string()),
    }
}

fn event_names(jsonl: &str) -> Result<Vec<String>, serde_json::Error> {
    jsonl
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<pressroom::proto::v1::PressReleaseEvent>(l)
                .map(|e| e.press_release.map(|r| r.name).unwrap_or_default())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_consumes_seeks_lists_and_deletes() -> TestResult {
    let server = TestServer::start_on_sled().await;
    let addr = server.addr;
    let (code, out, err) = cli(
        addr,
        &[
            "subscription",
            "create",
            "wire",
            "--from-beginning",
            "--ack-deadline",
            "5s",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let created: Subscription = serde_json::from_str(&out)?;
    assert_eq!(created.name, "subscriptions/wire");
    assert_eq!(created.ack_deadline.map(|d| d.seconds), Some(5));
    let names = create_releases(&server, "From the terminal", 3).await?;

    let (code, out, err) = cli(
        addr,
        &["consume", "wire", "-o", "jsonl", "--max-events", "2"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(event_names(&out)?, names[..2]);
    // The first two were acknowledged before it exited: the next run gets
    // the third only.
    let (code, out, err) = cli(
        addr,
        &["consume", "wire", "-o", "jsonl", "--max-events", "1"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(event_names(&out)?, names[2..]);

    let (code, out, err) = cli(addr, &["subscription", "get", "wire", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let got: Subscription = serde_json::from_str(&out)?;
    assert_eq!((got.backlog, got.outstanding_events), (0, 0), "{got:?}");

    let (code, _, err) = cli(addr, &["subscription", "seek", "wire", "--to-beginning"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(
        addr,
        &["consume", "wire", "-o", "jsonl", "--max-events", "3"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(event_names(&out)?, names);

    let (code, out, err) = cli(addr, &["subscription", "list", "-o", "jsonl"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let (code, _, err) = cli(addr, &["subscription", "create", "Bad_Id"]).await;
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("subscription_id"), "{err}");
    let (code, _, err) = cli(addr, &["subscription", "seek", "wire"]).await;
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = cli(addr, &["subscription", "delete", "wire"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(addr, &["subscription", "get", "wire"]).await;
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = cli(addr, &["consume", "wire", "--max-events", "1"]).await;
    assert_eq!(code, 3, "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_redeliveries_and_dead_letters_per_subscription() -> TestResult {
    let server = TestServer::start_on_sled_with(&["--metrics-listen", "127.0.0.1:0"]).await;
    let metrics = server.metrics_addr.ok_or("no metrics port")?;
    let mut client = subs(&server).await;
    create(&mut client, "metered", 60, 2, None).await?;
    let mut consumer = Consumer::open(&mut client, "metered", 10).await?;
    create_releases(&server, "Metered", 3).await?;
    let first = consumer.take(3, Duration::from_secs(5)).await?;
    consumer.nack(&first).await;
    let second = consumer.take(3, Duration::from_secs(5)).await?;
    assert!(second.iter().all(|e| e.delivery_attempt == 2));
    consumer.ack(&second[..2]).await;
    consumer.nack(&second[2..]).await;
    consumer.confirmed(&second[..2]).await?;
    // Gauges are refreshed every second.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let text = crate::metrics::scrape(metrics).await?;
    let value = |name: &str| -> f64 {
        let prefix = format!("{name}{{subscription=\"metered\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(-1.0)
    };
    assert_eq!(
        value("pressroom_subscription_redeliveries_total"),
        3.0,
        "{text}"
    );
    assert_eq!(
        value("pressroom_subscription_dead_letters_total"),
        1.0,
        "{text}"
    );
    assert_eq!(value("pressroom_subscription_dead_letters"), 1.0, "{text}");
    assert_eq!(value("pressroom_subscription_backlog"), 0.0, "{text}");
    assert_eq!(value("pressroom_subscription_outstanding"), 0.0, "{text}");
    assert!(
        value("pressroom_subscription_oldest_unacked_seconds") >= 0.0,
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_forgets_no_unacknowledged_event_and_repeats_no_confirmed_ack() -> TestResult
{
    let dir = sled_temp_dir();
    let data = dir.path().join("data").display().to_string();
    let server = crate::helpers::Binary::serve(&["--data-dir", &data])?;
    let channel = |addr: std::net::SocketAddr| async move {
        let channel: Result<Channel, Box<dyn std::error::Error + Send + Sync>> =
            match Channel::from_shared(format!("http://{addr}")) {
                Ok(endpoint) => endpoint.connect().await.map_err(Into::into),
                Err(error) => Err(error.into()),
            };
        channel
    };
    let mut client = SubscriptionServiceClient::new(channel(server.addr).await?);
    create(&mut client, "killed", 60, 5, None).await?;
    let mut consumer = Consumer::open(&mut client, "killed", 400).await?;
    // Writers go on while the consumer acks every other event.
    let writing = {
        let mut releases =
            pressroom::proto::v1::press_release_service_client::PressReleaseServiceClient::new(
                channel(server.addr).await?,
            );
        tokio::spawn(async move {
            for i in 0..400 {
                if releases
                    .create_press_release(create_request(release(&format!("Before the kill {i}"))))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    let mut acked = Vec::new();
    let mut turn = 0;
    while consumer.confirmed.len() < 40 {
        let events = consumer.events(Duration::from_secs(10)).await?;
        if events.is_empty() {
            return Err("no events while writers write".into());
        }
        let mine: Vec<ReceivedEvent> = events
            .into_iter()
            .filter(|_| {
                turn += 1;
                turn % 2 == 0
            })
            .collect();
        consumer.ack(&mine).await;
        acked.extend(mine);
    }
    // SIGKILL, mid-run: writes, deliveries and acks in flight.
    drop(server);
    writing.abort();
    let confirmed: HashSet<String> = acked
        .iter()
        .filter(|e| consumer.confirmed.contains(&e.ack_id))
        .map(name_of)
        .collect();
    drop(consumer);
    drop(client);

    let server = crate::helpers::Binary::serve(&["--data-dir", &data])?;
    let mut releases =
        pressroom::proto::v1::press_release_service_client::PressReleaseServiceClient::new(
            channel(server.addr).await?,
        );
    let all: HashSet<String> = crate::helpers::list_all(&mut releases)
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    let mut client = SubscriptionServiceClient::new(channel(server.addr).await?);
    let mut consumer = Consumer::open(&mut client, "killed", 100).await?;
    let mut again = HashSet::new();
    loop {
        let events = consumer.events(Duration::from_secs(2)).await?;
        if events.is_empty() {
            break;
        }
        consumer.ack(&events).await;
        again.extend(events.iter().map(name_of));
    }
    let repeated: Vec<_> = confirmed.intersection(&again).collect();
    assert!(
        repeated.is_empty(),
        "confirmed acks delivered again: {repeated:?}"
    );
    let missing: Vec<_> = all
        .iter()
        .filter(|name| !confirmed.contains(*name) && !again.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} releases neither confirmed nor delivered after the kill: {missing:?}",
        missing.len(),
        all.len()
    );
    assert!(confirmed.len() >= 40 && all.len() > confirmed.len());
    Ok(())
}
