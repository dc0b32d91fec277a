//! `subscribe`: a subscription shared by 1, 4 and 16 consumers, each
//! acknowledging every event, beside a NATS JetStream durable pull consumer
//! with the same number of consumers and acks, in the same run on the same
//! machine (`nats-server` from the PATH, file storage; Debian's package).
//!
//! Two measurements per number of consumers:
//!
//! - Drain: a backlog of releases (imported before; the same encoded
//!   releases published to a JetStream stream) is consumed from the start,
//!   every event acknowledged; events/s from opening the consumers until
//!   the last ack is settled: for Pressroom, confirmed on disk (fdatasync'ed);
//!   for JetStream, until the consumer reports no ack pending (JetStream
//!   does not fsync acks, nor its stream, on each write). Target ≥ 1.0×.
//! - Live: releases written at a fixed rate (an open loop: each write its
//!   own call, started on schedule) while the consumers consume; the
//!   latency from the write's OK (Pressroom: the create answered, durable;
//!   JetStream: the PubAck) to the delivery at a consumer; p99 reported.
//!
//! Each Pressroom consumer opens a StreamSubscription on its own
//! connection, may hold 200 events unacknowledged, and acks the events of
//! each message it receives in one request; each JetStream consumer pulls
//! batches of 100 on its own connection (asking for the next while it works
//! through one), decodes each message's release (as the gRPC client decodes
//! each event) and acks each message; the JetStream consumer's
//! `max_ack_pending` is 200 per consumer (with exactly one batch, a pull
//! now and then waited out its 30 s expiry). Beside them, for
//! where the time goes: one WatchPressReleases stream replaying the same
//! events (the events alone, without acks or subscription state). Clients and servers
//! share this machine's cores (nats-server in its own process). The search
//! index is let catch up after the import and after each live phase, so
//! that indexing does not share the cores with a drain.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt as _;
use pressroom::proto::v1::{
    CreateSubscriptionRequest, ImportPressReleasesRequest, PressRelease, StartPosition,
    StreamSubscriptionRequest, Subscription, subscription::Start,
    subscription_service_client::SubscriptionServiceClient,
};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    BenchResult, Plan,
    generate::Generator,
    measure::{
        Latencies, Summary, Verdict, cpu_time, cpu_time_of, ms, per_second, ratio, thousands,
    },
    server::{self, Server},
};

/// Consumers on one subscription, in turn.
const CONSUMERS: [usize; 3] = [1, 4, 16];
/// Events one consumer may hold unacknowledged: a stream's
/// `max_outstanding_events`, a JetStream consumer's share of
/// `max_ack_pending`.
const OUTSTANDING: usize = 200;
/// Messages a JetStream consumer pulls at a time (it asks for the next
/// batch while it works through one).
const BATCH: usize = 100;
/// How long deliveries may trail the last write of a live phase.
const DRAIN: Duration = Duration::from_secs(10);

pub async fn run(plan: &Plan, summary: &mut Summary) -> BenchResult<()> {
    // `PRESSROOM_BENCH_SUBSCRIBE_EVENTS` sets another backlog (a smaller
    // one for a profiler).
    let backlog = std::env::var("PRESSROOM_BENCH_SUBSCRIBE_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if plan.quick { 10_000 } else { 30_000 });
    let rate = 200.0;
    let phase = if plan.quick {
        Duration::from_secs(4)
    } else {
        Duration::from_secs(10)
    };
    println!();
    println!(
        "== subscribe: {backlog} events drained by 1, 4, 16 consumers acking each; then {rate}/s live for {} s",
        phase.as_secs()
    );
    let releases = Generator::new(18, "subscribe").releases(backlog);
    let live = Generator::new(19, "live").releases((rate * phase.as_secs_f64()) as usize * 4);

    let dir = server::temp_dir()?;
    let server = Server::start(&server::data_dir(&dir), &[]).await?;
    let mut client = server.client().await?;
    let items: Vec<_> = releases
        .iter()
        .cloned()
        .map(|release| ImportPressReleasesRequest {
            press_release: Some(release),
            request_id: String::new(),
        })
        .collect();
    let imported = client
        .import_press_releases(tokio_stream::iter(items))
        .await?
        .into_inner();
    if imported.created as usize != backlog {
        return Err(format!("imported {} of {backlog}", imported.created).into());
    }
    // The search indexer takes in a bulk load at its own pace: wait for it,
    // so that it does not share the cores with the drains.
    crate::corpus::searchable_after(&mut client, backlog).await?;
    if std::env::var("PRESSROOM_BENCH_SUBSCRIBE_PROFILE").is_ok_and(|v| v == "1") {
        return profile_drains(&server, backlog).await;
    }
    let nats = Nats::start().await?;
    let js = jetstream::new(async_nats::connect(&nats.url).await?);
    for (name, subject) in [("BACKLOG", "backlog"), ("LIVE", "live")] {
        js.create_stream(stream::Config {
            name: name.into(),
            subjects: vec![subject.into()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    }
    for (i, release) in releases.iter().enumerate() {
        js.publish("backlog", payload(i, release)).await?.await?;
    }

    // What the events alone cost, without subscriptions: one watch stream
    // replaying the same events (no acks, no state).
    let watched = replay_watch(&server, backlog).await?;
    println!(
        "   the same {backlog} events through one WatchPressReleases from the beginning: {} events/s ({:.2} s)",
        thousands(per_second(backlog, watched)),
        watched.as_secs_f64()
    );
    let mut live_releases = live.into_iter();
    let mut written = backlog;
    let nats_pid = nats.child.id().to_string();
    for consumers in CONSUMERS {
        // CPU per event (server and consumers; for JetStream, nats-server's
        // process too): what the neighbours on these shared cores change
        // least.
        let cpu_before = cpu_time();
        let ours = drain_pressroom(server.addr, consumers, backlog).await?;
        let ours_cpu = cpu_time().zip(cpu_before).map(|(a, b)| a.saturating_sub(b));
        let cpu_before = cpu_time().zip(cpu_time_of(&nats_pid));
        let theirs = drain_jetstream(&js, &nats.url, consumers, backlog).await?;
        let theirs_cpu = cpu_time()
            .zip(cpu_time_of(&nats_pid))
            .zip(cpu_before)
            .map(|((a, n), (b, m))| a.saturating_sub(b) + n.saturating_sub(m));
        let (ours_rate, theirs_rate) = (per_second(backlog, ours), per_second(backlog, theirs));
        let per_event = |cpu: Option<Duration>| {
            cpu.map(|cpu| {
                format!(
                    "{:.1} µs CPU/event",
                    cpu.as_secs_f64() * 1e6 / backlog as f64
                )
            })
            .unwrap_or_default()
        };
        println!(
            "   drain, {consumers:>2} consumer(s): pressroom {:>9} events/s ({:.2} s, acks on disk, {})   jetstream {:>9} events/s ({:.2} s, {})",
            thousands(ours_rate),
            ours.as_secs_f64(),
            per_event(ours_cpu),
            thousands(theirs_rate),
            theirs.as_secs_f64(),
            per_event(theirs_cpu)
        );
        let of_theirs = ours_rate / theirs_rate;
        summary.verdict(
            "subscribe",
            format!("drain events/s, {consumers} consumers, vs JetStream"),
            ratio(of_theirs),
            ">= 1.0x",
            Verdict::of(of_theirs >= 1.0),
        );

        let batch: Vec<PressRelease> = live_releases
            .by_ref()
            .take((rate * phase.as_secs_f64()) as usize)
            .collect();
        let ours = live_pressroom(&server, consumers, &batch, rate).await?;
        let theirs = live_jetstream(&js, &nats.url, consumers, &batch, rate).await?;
        // The live releases reach the search index at its own pace: wait
        // for it, as before the first drain, so that indexing them does not
        // share the cores with the next drain.
        written += batch.len();
        crate::corpus::searchable_after(&mut client, written).await?;
        println!(
            "   live at {rate}/s, {consumers:>2} consumer(s): pressroom p50 {} p99 {} ({} of {} delivered)   jetstream p50 {} p99 {} ({} of {})",
            ms(ours.p50()),
            ms(ours.p99()),
            ours.len(),
            batch.len(),
            ms(theirs.p50()),
            ms(theirs.p99()),
            theirs.len(),
            batch.len()
        );
        summary.verdict(
            "subscribe",
            format!("p99 write->delivery, {consumers} consumers"),
            ms(ours.p99()),
            format!("report (JetStream {})", ms(theirs.p99())),
            Verdict::Report,
        );
    }
    server.stop().await?;
    Ok(())
}

/// `PRESSROOM_BENCH_SUBSCRIBE_PROFILE=1`: the Pressroom drains alone (no
/// JetStream, no live phase), for a profiler that is switched on when
/// "drains start" is printed (e.g. `callgrind_control -i on` with
/// `--instr-atstart=no`; the run waits 3 s after printing it) and off at
/// "drains end".
async fn profile_drains(server: &Server, backlog: usize) -> BenchResult<()> {
    // `PRESSROOM_BENCH_SUBSCRIBE_CONSUMERS=16` profiles that many alone.
    let only: Option<usize> = std::env::var("PRESSROOM_BENCH_SUBSCRIBE_CONSUMERS")
        .ok()
        .and_then(|n| n.parse().ok());
    println!("   drains start");
    tokio::time::sleep(Duration::from_secs(3)).await;
    for consumers in CONSUMERS
        .into_iter()
        .filter(|n| only.is_none_or(|only| only == *n))
    {
        let cpu_before = cpu_time();
        let took = drain_pressroom(server.addr, consumers, backlog).await?;
        let cpu = cpu_time().zip(cpu_before).map(|(a, b)| a.saturating_sub(b));
        println!(
            "   drain, {consumers:>2} consumer(s): pressroom {:>9} events/s ({:.2} s, {:.1} µs CPU/event)",
            thousands(per_second(backlog, took)),
            took.as_secs_f64(),
            cpu.map_or(0.0, |cpu| cpu.as_secs_f64() * 1e6 / backlog as f64)
        );
    }
    println!("   drains end");
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(())
}

/// How long one watch stream takes to replay `backlog` events from the
/// beginning (until the first event past them, or caught up).
async fn replay_watch(server: &Server, backlog: usize) -> BenchResult<Duration> {
    use pressroom::proto::v1::{
        WatchPressReleasesRequest, watch_press_releases_request,
        watch_press_releases_response::Kind,
    };
    let mut client = server.client().await?;
    let started = Instant::now();
    let mut stream = client
        .watch_press_releases(WatchPressReleasesRequest {
            start: Some(watch_press_releases_request::Start::Position(
                StartPosition::Beginning as i32,
            )),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut events = 0;
    while let Some(message) = stream.message().await? {
        match message.kind {
            Some(Kind::Event(_)) => events += 1,
            Some(Kind::Progress(progress)) if progress.caught_up => break,
            _ => {}
        }
        if events >= backlog {
            break;
        }
    }
    Ok(started.elapsed())
}

/// A release as a JetStream message: its index, then the encoded release.
fn payload(index: usize, release: &PressRelease) -> Bytes {
    let mut out = (index as u64).to_be_bytes().to_vec();
    release.encode(&mut out).ok();
    Bytes::from(out)
}

fn index_of(payload: &[u8]) -> usize {
    payload
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(u64::MAX) as usize
}

type Subs = SubscriptionServiceClient<tonic::transport::Channel>;

async fn create_subscription(addr: SocketAddr, id: &str, start: StartPosition) -> BenchResult<()> {
    let mut client = Subs::new(server::connect(addr).await?);
    client
        .create_subscription(CreateSubscriptionRequest {
            subscription_id: id.into(),
            subscription: Some(Subscription {
                start: Some(Start::Position(start as i32)),
                ..Default::default()
            }),
        })
        .await?;
    Ok(())
}

/// Pressroom consumers on subscription `id`, each acking every event;
/// `received` gets the name of each event delivered and when. They end
/// when `stop` is cancelled; returns how many acks were confirmed.
fn pressroom_consumers(
    channels: Vec<tonic::transport::Channel>,
    id: &str,
    on_event: Arc<dyn Fn(&str) + Send + Sync>,
    confirmed: Arc<AtomicUsize>,
    stop: tokio_util::sync::CancellationToken,
) -> Vec<tokio::task::JoinHandle<BenchResult<()>>> {
    channels
        .into_iter()
        .map(|channel| {
            let (id, on_event, confirmed, stop) = (
                id.to_string(),
                Arc::clone(&on_event),
                Arc::clone(&confirmed),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut client = Subs::new(channel);
                let (requests, receiver) = mpsc::channel(1024);
                requests
                    .send(StreamSubscriptionRequest {
                        subscription: format!("subscriptions/{id}"),
                        max_outstanding_events: OUTSTANDING as i32,
                        ..Default::default()
                    })
                    .await?;
                let mut responses = client
                    .stream_subscription(ReceiverStream::new(receiver))
                    .await?
                    .into_inner();
                loop {
                    let message = tokio::select! {
                        message = responses.message() => message?,
                        () = stop.cancelled() => return Ok(()),
                    };
                    let Some(message) = message else {
                        return Ok(());
                    };
                    confirmed.fetch_add(message.acknowledged_ids.len(), Ordering::Relaxed);
                    if message.received_events.is_empty() {
                        continue;
                    }
                    let mut ack_ids = Vec::with_capacity(message.received_events.len());
                    for received in message.received_events {
                        if let Some(release) = received
                            .event
                            .as_ref()
                            .and_then(|e| e.press_release.as_ref())
                        {
                            on_event(&release.name);
                        }
                        ack_ids.push(received.ack_id);
                    }
                    requests
                        .send(StreamSubscriptionRequest {
                            ack_ids,
                            ..Default::default()
                        })
                        .await?;
                }
            })
        })
        .collect()
}

/// Drains the backlog through a new subscription from the beginning.
async fn drain_pressroom(
    addr: SocketAddr,
    consumers: usize,
    backlog: usize,
) -> BenchResult<Duration> {
    let id = format!("drain-{consumers}");
    create_subscription(addr, &id, StartPosition::Beginning).await?;
    let channels = server::connections(addr, consumers).await?;
    let confirmed = Arc::new(AtomicUsize::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let tasks = pressroom_consumers(
        channels,
        &id,
        Arc::new(|_: &str| {}),
        Arc::clone(&confirmed),
        stop.clone(),
    );
    let deadline = started + Duration::from_secs(300);
    while confirmed.load(Ordering::Relaxed) < backlog {
        if Instant::now() > deadline {
            return Err(format!(
                "pressroom drain: {} of {backlog} acks confirmed after 300 s",
                confirmed.load(Ordering::Relaxed)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    stop.cancel();
    for task in tasks {
        task.await??;
    }
    Ok(elapsed)
}

/// Drains the backlog stream through a new durable pull consumer.
async fn drain_jetstream(
    js: &jetstream::Context,
    url: &str,
    consumers: usize,
    backlog: usize,
) -> BenchResult<Duration> {
    let name = format!("drain{consumers}");
    js.get_stream("BACKLOG")
        .await?
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name.clone()),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::All,
            max_ack_pending: (OUTSTANDING * consumers) as i64,
            ..Default::default()
        })
        .await?;
    let received = Arc::new(AtomicUsize::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let tasks = jetstream_consumers(
        url,
        "BACKLOG",
        &name,
        consumers,
        Arc::new(|_: usize| {}),
        Arc::clone(&received),
        stop.clone(),
    )
    .await?;
    let deadline = started + Duration::from_secs(300);
    let mut consumer: consumer::PullConsumer =
        js.get_stream("BACKLOG").await?.get_consumer(&name).await?;
    loop {
        if received.load(Ordering::Relaxed) >= backlog {
            let info = consumer.info().await?;
            if info.num_ack_pending == 0 && info.num_pending == 0 {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "jetstream drain: {} of {backlog} received after 300 s",
                received.load(Ordering::Relaxed)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    stop.cancel();
    for task in tasks {
        task.await??;
    }
    Ok(elapsed)
}

/// JetStream consumers of durable consumer `name`, each on its own
/// connection, acking every message; `on_message` gets each index.
async fn jetstream_consumers(
    url: &str,
    stream_name: &str,
    name: &str,
    consumers: usize,
    on_message: Arc<dyn Fn(usize) + Send + Sync>,
    received: Arc<AtomicUsize>,
    stop: tokio_util::sync::CancellationToken,
) -> BenchResult<Vec<tokio::task::JoinHandle<BenchResult<()>>>> {
    let mut tasks = Vec::with_capacity(consumers);
    for _ in 0..consumers {
        let js = jetstream::new(async_nats::connect(url).await?);
        let consumer: consumer::PullConsumer =
            js.get_stream(stream_name).await?.get_consumer(name).await?;
        let (on_message, received, stop) =
            (Arc::clone(&on_message), Arc::clone(&received), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut messages = consumer
                .stream()
                .max_messages_per_batch(BATCH)
                .messages()
                .await?;
            loop {
                let message = tokio::select! {
                    message = messages.next() => message,
                    () = stop.cancelled() => return Ok(()),
                };
                let Some(message) = message else {
                    return Ok(());
                };
                let message = message?;
                // What a consumer does with an event: decode it (Pressroom's
                // client decodes each event as it receives it).
                let release = PressRelease::decode(message.payload.get(8..).unwrap_or_default())?;
                std::hint::black_box(&release);
                on_message(index_of(&message.payload));
                message.ack().await?;
                received.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    Ok(tasks)
}

/// Writes `batch` at `rate` while `consumers` consume a subscription that
/// starts now; the write→delivery latencies.
async fn live_pressroom(
    server: &Server,
    consumers: usize,
    batch: &[PressRelease],
    rate: f64,
) -> BenchResult<Latencies> {
    let id = format!("live-{consumers}");
    create_subscription(server.addr, &id, StartPosition::Now).await?;
    let delivered: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let noted = Arc::clone(&delivered);
    let stop = tokio_util::sync::CancellationToken::new();
    let tasks = pressroom_consumers(
        server::connections(server.addr, consumers).await?,
        &id,
        Arc::new(move |name: &str| {
            noted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name.to_string(), Instant::now());
        }),
        Arc::new(AtomicUsize::new(0)),
        stop.clone(),
    );
    // Let the streams open before the first write.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let written: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let writers = server::connections(server.addr, 4).await?;
    let started = Instant::now();
    let mut calls = Vec::with_capacity(batch.len());
    for (i, release) in batch.iter().enumerate() {
        tokio::time::sleep_until((started + Duration::from_secs_f64(i as f64 / rate)).into()).await;
        let mut client = server::client(writers[i % writers.len()].clone());
        let (release, written) = (release.clone(), Arc::clone(&written));
        calls.push(tokio::spawn(async move {
            let created = client
                .create_press_release(pressroom::proto::v1::CreatePressReleaseRequest {
                    press_release: Some(release),
                    request_id: String::new(),
                })
                .await?
                .into_inner();
            written
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(created.name, Instant::now());
            Ok::<_, tonic::Status>(())
        }));
    }
    for call in calls {
        call.await??;
    }
    let until = Instant::now() + DRAIN;
    while delivered
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
        < batch.len()
        && Instant::now() < until
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    for task in tasks {
        task.await??;
    }
    let written = written.lock().unwrap_or_else(PoisonError::into_inner);
    let delivered = delivered.lock().unwrap_or_else(PoisonError::into_inner);
    Ok(latencies(
        written
            .iter()
            .map(|(name, ok)| (*ok, delivered.get(name).copied())),
    ))
}

/// The same against JetStream: publish (awaiting the PubAck) at `rate`.
async fn live_jetstream(
    js: &jetstream::Context,
    url: &str,
    consumers: usize,
    batch: &[PressRelease],
    rate: f64,
) -> BenchResult<Latencies> {
    let name = format!("live{consumers}");
    js.get_stream("LIVE")
        .await?
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name.clone()),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::New,
            max_ack_pending: (OUTSTANDING * consumers) as i64,
            ..Default::default()
        })
        .await?;
    let delivered: Arc<Mutex<HashMap<usize, Instant>>> = Arc::default();
    let noted = Arc::clone(&delivered);
    let stop = tokio_util::sync::CancellationToken::new();
    let tasks = jetstream_consumers(
        url,
        "LIVE",
        &name,
        consumers,
        Arc::new(move |index: usize| {
            noted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(index, Instant::now());
        }),
        Arc::new(AtomicUsize::new(0)),
        stop.clone(),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let written: Arc<Mutex<HashMap<usize, Instant>>> = Arc::default();
    let mut writers = Vec::new();
    for _ in 0..4 {
        writers.push(jetstream::new(async_nats::connect(url).await?));
    }
    let started = Instant::now();
    let mut calls = Vec::with_capacity(batch.len());
    for (i, release) in batch.iter().enumerate() {
        tokio::time::sleep_until((started + Duration::from_secs_f64(i as f64 / rate)).into()).await;
        let (js, body, written) = (
            writers[i % writers.len()].clone(),
            payload(i, release),
            Arc::clone(&written),
        );
        calls.push(tokio::spawn(async move {
            js.publish("live", body).await?.await?;
            written
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(i, Instant::now());
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for call in calls {
        call.await??;
    }
    let until = Instant::now() + DRAIN;
    while delivered
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
        < batch.len()
        && Instant::now() < until
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    for task in tasks {
        task.await??;
    }
    let written = written.lock().unwrap_or_else(PoisonError::into_inner);
    let delivered = delivered.lock().unwrap_or_else(PoisonError::into_inner);
    Ok(latencies(
        written
            .iter()
            .map(|(i, ok)| (*ok, delivered.get(i).copied())),
    ))
}

/// Latency per delivery (0 for one that came before its writer saw the
/// OK); one never delivered counts as [`DRAIN`].
fn latencies(pairs: impl Iterator<Item = (Instant, Option<Instant>)>) -> Latencies {
    let mut out = Latencies::with_capacity(0);
    for (ok, delivered) in pairs {
        out.push(match delivered {
            Some(at) => at.saturating_duration_since(ok),
            None => DRAIN,
        });
    }
    out
}

/// A `nats-server` with JetStream on a free port and a temporary store,
/// killed when dropped.
struct Nats {
    url: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Nats {
    async fn start() -> BenchResult<Self> {
        let dir = server::temp_dir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let conf = dir.path().join("js.conf");
        let store = dir.path().join("js");
        std::fs::write(
            &conf,
            format!("listen: 127.0.0.1:{port}\njetstream {{ store_dir: {store:?} }}\n"),
        )?;
        let child = std::process::Command::new("nats-server")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot start nats-server (apt-get install -y nats-server): {e}")
            })?;
        let nats = Self {
            url: format!("nats://127.0.0.1:{port}"),
            child,
            _dir: dir,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > until {
                return Err("nats-server did not listen within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(nats)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
