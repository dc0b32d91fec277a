//! Two `pressroom serve` processes on one PostgreSQL share a subscription:
//! one replica dispatches it at a time (its lease), consumers on the other
//! stand by and take over when the holder's streams go or the holder is
//! killed; nothing confirmed comes again, nothing unacknowledged is lost,
//! and no event is held by two streams at once. A seek on a replica
//! without the lease waits for it, then answers UNAVAILABLE; a delete made
//! there ends the holder's streams with NOT_FOUND.

use std::collections::{BTreeSet, HashMap};

use pressroom::{
    proto::v1::press_release_service_client::PressReleaseServiceClient,
    store::postgres::{ClusterOptions, LocalCluster},
};

use super::*;
use crate::{helpers::channel, postgres::replica};

/// What the consumers of the test have seen.
#[derive(Default)]
struct Ledger {
    /// Events held now (delivered, not acked), by release: the consumer.
    held: HashMap<String, usize>,
    /// Releases whose ack the server confirmed.
    confirmed: BTreeSet<String>,
    /// Ack id → release, for the acks sent.
    acked: HashMap<String, String>,
    /// Every delivery: consumer, release.
    deliveries: Vec<(usize, String)>,
}

impl Ledger {
    /// Takes a consumer's next events (within `wait`), checking that none
    /// was confirmed before or is held by another consumer.
    async fn poll(
        &mut self,
        index: usize,
        consumer: &mut Consumer,
        wait: Duration,
    ) -> Result<Vec<ReceivedEvent>, Box<dyn std::error::Error + Send + Sync>> {
        let events = consumer.events(wait).await?;
        self.note_confirmed(consumer);
        for event in &events {
            let name = name_of(event);
            assert!(
                !self.confirmed.contains(&name),
                "{name} came again to consumer {index} after its ack was confirmed"
            );
            if let Some(other) = self.held.insert(name.clone(), index) {
                assert_eq!(
                    other, index,
                    "{name} was delivered to consumer {index} while consumer {other} held it"
                );
            }
            self.deliveries.push((index, name));
        }
        Ok(events)
    }

    /// Acks `events` from `consumer`.
    async fn ack(&mut self, consumer: &Consumer, events: &[ReceivedEvent]) {
        for event in events {
            let name = name_of(event);
            self.held.remove(&name);
            self.acked.insert(event.ack_id.clone(), name);
        }
        consumer.ack(events).await;
    }

    fn note_confirmed(&mut self, consumer: &Consumer) {
        for id in &consumer.confirmed {
            if let Some(name) = self.acked.get(id) {
                self.confirmed.insert(name.clone());
            }
        }
    }

    /// Consumers that have received anything since delivery `from`.
    fn receivers_since(&self, from: usize) -> BTreeSet<usize> {
        self.deliveries[from..].iter().map(|(c, _)| *c).collect()
    }
}

/// Creates `n` releases named `{prefix} {i}` on `addr`, in a task.
fn write(
    addr: std::net::SocketAddr,
    prefix: &str,
    n: usize,
) -> tokio::task::JoinHandle<Result<Vec<String>, tonic::Status>> {
    let prefix = prefix.to_string();
    tokio::spawn(async move {
        create_with(
            PressReleaseServiceClient::new(channel(addr).await),
            &prefix,
            n,
        )
        .await
    })
}

/// Polls `consumers` (ack every event with `ack`) until `done` holds or
/// `within` passes.
async fn drain(
    ledger: &mut Ledger,
    consumers: &mut [(usize, Consumer)],
    within: Duration,
    ack: bool,
    done: impl Fn(&Ledger) -> bool,
) -> TestResult {
    let until = tokio::time::Instant::now() + within;
    while !done(ledger) {
        if tokio::time::Instant::now() > until {
            return Err(format!(
                "not done within {within:?}: {} deliveries, {} confirmed",
                ledger.deliveries.len(),
                ledger.confirmed.len()
            )
            .into());
        }
        for (index, consumer) in consumers.iter_mut() {
            let events = ledger
                .poll(*index, consumer, Duration::from_millis(50))
                .await?;
            if ack && !events.is_empty() {
                ledger.ack(consumer, &events).await;
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_a_subscription_one_at_a_time_and_hand_it_over_or_take_it_from_a_killed_one()
-> TestResult {
    let cluster = LocalCluster::start(&ClusterOptions::default())
        .map_err(|e| format!("a local PostgreSQL is needed for this test: {e}"))?;
    cluster.create_database("pressroom").await?;
    let url = cluster.url("pressroom");
    let dir = temp_dir();
    let mut servers = [replica(&url, &dir, "a")?, replica(&url, &dir, "b")?];
    let addrs = [servers[0].addr, servers[1].addr];
    let mut client = SubscriptionServiceClient::new(channel(addrs[0]).await);
    create(&mut client, "shared", 60, 5, None).await?;
    let open = |replica: usize| async move {
        let mut client = SubscriptionServiceClient::new(channel(addrs[replica]).await);
        Consumer::open(&mut client, "shared", 16).await
    };
    // Consumers 0 and 1 on A, 2 and 3 on B.
    let mut consumers = Vec::new();
    for index in 0..4 {
        consumers.push((index, open(index / 2).await?));
    }
    let mut ledger = Ledger::default();
    let mut created = BTreeSet::new();

    // 1. Writers on both replicas: one replica's consumers get the events,
    // the other's stand by; shares disjoint, together complete.
    let writers = [write(addrs[0], "Left", 30), write(addrs[1], "Right", 30)];
    for writer in writers {
        created.extend(writer.await??);
    }
    drain(
        &mut ledger,
        &mut consumers,
        Duration::from_secs(30),
        true,
        |l| l.confirmed.len() >= 60,
    )
    .await?;
    let receivers = ledger.receivers_since(0);
    let holder = match receivers.iter().map(|c| c / 2).collect::<BTreeSet<_>>() {
        one if one.len() == 1 => one.into_iter().next().unwrap_or_default(),
        both => return Err(format!("replicas {both:?} both dispatched at once").into()),
    };
    let other = 1 - holder;
    assert_eq!(ledger.confirmed, created, "every event, confirmed once");

    // 2. The holder's streams go: the other replica takes the lease and
    // its consumers get the next events.
    consumers.retain(|(index, _)| index / 2 != holder);
    let from = ledger.deliveries.len();
    let writer = write(addrs[other], "Handed over", 30);
    created.extend(writer.await??);
    drain(
        &mut ledger,
        &mut consumers,
        Duration::from_secs(30),
        true,
        |l| l.confirmed.len() >= 90,
    )
    .await?;
    assert!(
        ledger.receivers_since(from).iter().all(|c| c / 2 == other),
        "after the hand-over only the new holder's consumers receive"
    );
    assert_eq!(ledger.confirmed, created);

    // 3. New consumers on the first replica stand by; the holder's
    // consumers take events and ack only half; the holder is killed.
    for index in 4..6 {
        consumers.push((index, open(holder).await?));
    }
    let writer = write(addrs[holder], "Killed", 40);
    created.extend(writer.await??);
    let mut on_holder: Vec<(usize, Consumer)> = Vec::new();
    let mut standing_by: Vec<(usize, Consumer)> = Vec::new();
    for (index, consumer) in consumers {
        if index / 2 == other && index < 4 {
            on_holder.push((index, consumer));
        } else {
            standing_by.push((index, consumer));
        }
    }
    let mut unacked = BTreeSet::new();
    let mut sent: Vec<String> = Vec::new();
    let mut turn = 0u64;
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while ledger.held.len() + ledger.confirmed.len() < 110 {
        if tokio::time::Instant::now() > until {
            return Err("the holder's consumers did not get 20 of the new events".into());
        }
        for (index, consumer) in on_holder.iter_mut() {
            let events = ledger
                .poll(*index, consumer, Duration::from_millis(50))
                .await?;
            // Every other event, counted across messages.
            let (ack, keep): (Vec<_>, Vec<_>) = events.into_iter().partition(|_| {
                turn += 1;
                turn.is_multiple_of(2)
            });
            unacked.extend(keep.iter().map(name_of));
            ledger.ack(consumer, &ack).await;
            sent.extend(ack.into_iter().map(|e| e.ack_id));
        }
        for (index, consumer) in standing_by.iter_mut() {
            let events = ledger
                .poll(*index, consumer, Duration::from_millis(10))
                .await?;
            assert!(
                events.is_empty(),
                "consumer {index} received while standing by"
            );
        }
    }
    // Every ack sent is confirmed before the kill (events that come
    // meanwhile are held, unacknowledged).
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while !sent.iter().all(|id| {
        on_holder
            .iter()
            .any(|(_, consumer)| consumer.confirmed.contains(id))
    }) {
        if tokio::time::Instant::now() > until {
            return Err("acks were not confirmed within 10 s".into());
        }
        for (index, consumer) in on_holder.iter_mut() {
            let events = ledger
                .poll(*index, consumer, Duration::from_millis(50))
                .await?;
            unacked.extend(events.iter().map(name_of));
        }
    }
    assert!(!unacked.is_empty(), "the holder's consumers hold events");
    let killed = &mut servers[other];
    killed.child.kill()?;
    killed.child.wait()?;
    drop(on_holder);
    // The holder's held events go back: nobody holds them now.
    ledger.held.clear();
    let from = ledger.deliveries.len();
    let everything = created.clone();
    drain(
        &mut ledger,
        &mut standing_by,
        Duration::from_secs(30),
        true,
        move |l| l.confirmed == everything,
    )
    .await?;
    let after_kill: BTreeSet<String> = ledger.deliveries[from..]
        .iter()
        .map(|(_, name)| name.clone())
        .collect();
    let lost: Vec<_> = unacked.difference(&after_kill).collect();
    assert!(
        lost.is_empty(),
        "events the killed holder's consumers held did not come to the other replica: {lost:?}"
    );
    assert_eq!(ledger.confirmed, created, "every event confirmed, once");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_waits_for_the_lease_and_a_delete_elsewhere_ends_the_holder_s_streams() -> TestResult {
    let cluster = LocalCluster::start(&ClusterOptions::default())
        .map_err(|e| format!("a local PostgreSQL is needed for this test: {e}"))?;
    cluster.create_database("pressroom").await?;
    let url = cluster.url("pressroom");
    let dir = temp_dir();
    let servers = [replica(&url, &dir, "a")?, replica(&url, &dir, "b")?];
    let mut on_a = SubscriptionServiceClient::new(channel(servers[0].addr).await);
    let mut on_b = SubscriptionServiceClient::new(channel(servers[1].addr).await);
    create(&mut on_a, "held", 60, 5, None).await?;
    // A holds the lease while its consumer's stream is open.
    let mut consumer = Consumer::open(&mut on_a, "held", 4).await?;
    create_with(
        PressReleaseServiceClient::new(channel(servers[0].addr).await),
        "Held",
        1,
    )
    .await?;
    assert_eq!(consumer.take(1, Duration::from_secs(10)).await?.len(), 1);

    // A seek on B waits for the lease, then gives up: UNAVAILABLE.
    let started = tokio::time::Instant::now();
    let refused = on_b
        .seek_subscription(SeekSubscriptionRequest {
            subscription: "subscriptions/held".into(),
            target: Some(Target::Position(StartPosition::Beginning as i32)),
        })
        .await
        .err()
        .ok_or("a seek on the replica without the lease went through")?;
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(started.elapsed() >= Duration::from_secs(4));

    // A delete on B: A's stream ends with NOT_FOUND within seconds.
    on_b.delete_subscription(DeleteSubscriptionRequest {
        name: "subscriptions/held".into(),
    })
    .await?;
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let ended = loop {
        match consumer.events(Duration::from_millis(500)).await {
            Err(status) => break status,
            Ok(_) if tokio::time::Instant::now() > until => {
                return Err("the holder's stream outlived the subscription".into());
            }
            Ok(_) => {}
        }
    };
    assert_eq!(ended.code(), Code::NotFound, "{ended:?}");
    Ok(())
}
