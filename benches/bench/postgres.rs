//! `--store postgres`: the PostgreSQL engine against a private, durable
//! PostgreSQL (`fsync` and `synchronous_commit` on) started for the run.
//!
//! - ingest: 64 concurrent callers create releases over 8 connections on a
//!   server with `--store`; the reference is raw PostgreSQL: 64 connections
//!   each `INSERT`ing the same encoded records one at a time (prepared,
//!   autocommit, synchronous commit), as `../shared/peers` measures it. The
//!   same creates on sled, in the same run, put both engines side by side.
//! - fanout across replicas: two servers on one database, live watchers on
//!   each, releases written on the first at 20/s; the latency from a
//!   write's OK to each watcher's receipt, on the replica that took the
//!   write and on the other (which learns of it by its head follower: a
//!   poll every 200 ms, woken early by `LISTEN`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use pressroom::{
    proto::v1::{
        CreatePressReleaseRequest, PressRelease, WatchPressReleasesRequest,
        watch_press_releases_response::Kind,
    },
    store::postgres::{ClusterOptions, LocalCluster},
};
use prost::Message as _;
use tokio_stream::StreamExt as _;

use crate::{
    BenchResult, Plan,
    generate::Generator,
    ingest,
    measure::{
        Latencies, Summary, Verdict, cpu_time, ms, per_second, ratio, thousands, tree_cpu_time,
    },
    server::{self, Server},
};

/// Raw INSERT connections, as many as the create callers.
const CONNECTIONS: usize = 64;
/// Watchers on each replica.
const WATCHERS: usize = 100;
/// Writes per second of the fan-out.
const RATE: f64 = 20.0;
/// How often a replica polls the shared head (the engine's default).
const POLL: Duration = Duration::from_millis(200);

/// CPU time used between two readings of (this process, the database).
fn since(before: (Duration, Duration), after: (Duration, Duration)) -> (Duration, Duration) {
    (
        after.0.saturating_sub(before.0),
        after.1.saturating_sub(before.1),
    )
}

pub async fn run(plan: &Plan, summary: &mut Summary) -> BenchResult<()> {
    println!(
        "\n== postgres: the PostgreSQL engine on a private durable PostgreSQL 15 (fsync, synchronous_commit on)"
    );
    let cluster = LocalCluster::start(&ClusterOptions {
        durable: true,
        max_connections: 400,
        tls: None,
    })?;
    let creates = plan.creates / 2;
    let releases = Arc::new(Generator::new(11, "postgres").releases(creates));

    // Raw INSERT of the same payload.
    cluster.create_database("raw").await?;
    let setup = cluster.connect("raw").await?;
    setup
        .batch_execute("CREATE TABLE ingest (id bigserial PRIMARY KEY, body bytea NOT NULL)")
        .await?;
    let payloads: Arc<Vec<Vec<u8>>> =
        Arc::new(releases.iter().map(|r| r.encode_to_vec()).collect());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // CPU time of this process (callers, and the server when there is
    // one) and of the database's processes.
    let postmaster = cluster.server_pid().unwrap_or_default();
    let cpu = move || {
        (
            cpu_time().unwrap_or_default(),
            tree_cpu_time(postmaster).unwrap_or_default(),
        )
    };
    let raw_cpu = cpu();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let client = cluster.connect("raw").await?;
        let (payloads, next) = (Arc::clone(&payloads), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let insert = client
                .prepare("INSERT INTO ingest (body) VALUES ($1)")
                .await?;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = payloads.get(i) else {
                    return Ok::<_, tokio_postgres::Error>(());
                };
                client.execute(&insert, &[body]).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let raw = started.elapsed();
    let raw_cpu = since(raw_cpu, cpu());

    // Creates through Pressroom on PostgreSQL, then on sled.
    cluster.create_database("pressroom").await?;
    let url = cluster.url("pressroom");
    let through = |store: Option<String>| {
        let releases = Arc::clone(&releases);
        async move {
            let dir = server::temp_dir()?;
            let data_dir = server::data_dir(&dir);
            let flags: Vec<&str> = match &store {
                Some(url) => vec!["--store", url],
                None => Vec::new(),
            };
            let server = Server::start(&data_dir, &flags).await?;
            let channels = server::connections(server.addr, 8).await?;
            let before = cpu();
            let (elapsed, latencies) = ingest::create_all(&channels, releases).await?;
            let used = since(before, cpu());
            drop(channels);
            server.stop().await?;
            BenchResult::Ok((elapsed, latencies, used))
        }
    };
    let (on_postgres, pg_latencies, pg_cpu) = through(Some(url.clone())).await?;
    let (on_sled, sled_latencies, sled_cpu) = through(None).await?;
    let rate = |elapsed| per_second(creates, elapsed);
    let per_record = |(this, database): (Duration, Duration)| {
        let us = |d: Duration| d.as_secs_f64() * 1e6 / creates.max(1) as f64;
        format!(
            "CPU per record {:.0} µs: this process {:.0} µs + PostgreSQL {:.0} µs",
            us(this + database),
            us(this),
            us(database)
        )
    };
    println!(
        "   raw INSERT {:>8} records/s   ({CONNECTIONS} connections, {} records of {} B on average); {}",
        thousands(rate(raw)),
        thousands(creates as f64),
        payloads.iter().map(Vec::len).sum::<usize>() / creates.max(1),
        per_record(raw_cpu)
    );
    println!(
        "   create, PostgreSQL {:>8} releases/s   p50 {}   p99 {}; {}",
        thousands(rate(on_postgres)),
        ms(pg_latencies.p50()),
        ms(pg_latencies.p99()),
        per_record(pg_cpu)
    );
    println!(
        "   create, sled       {:>8} releases/s   p50 {}   p99 {}; {}",
        thousands(rate(on_sled)),
        ms(sled_latencies.p50()),
        ms(sled_latencies.p99()),
        per_record(sled_cpu)
    );
    println!(
        "   (CPU while creating, callers and server in this process; the search index catches up later and is not all counted)"
    );
    let create_ratio = rate(on_postgres) / rate(raw);
    summary.verdict(
        "postgres",
        "durable create on PostgreSQL vs raw INSERT",
        ratio(create_ratio),
        "≥ 0.50×",
        Verdict::of(create_ratio >= 0.5),
    );
    summary.verdict(
        "postgres",
        "create on PostgreSQL vs on sled",
        ratio(rate(on_postgres) / rate(on_sled)),
        "report",
        Verdict::Report,
    );

    // Fan-out on the replica that took the write and on another one.
    cluster.create_database("fanout").await?;
    let url = cluster.url("fanout");
    let (dir_a, dir_b) = (server::temp_dir()?, server::temp_dir()?);
    let flags = ["--store", url.as_str(), "--max-watchers-per-key", "10000"];
    let a = Server::start(&server::data_dir(&dir_a), &flags).await?;
    let b = Server::start(&server::data_dir(&dir_b), &flags).await?;
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let arrivals = |addr| {
        let sent = Arc::clone(&sent);
        async move {
            let channels = server::connections(addr, 4).await?;
            let mut watchers = Vec::new();
            for i in 0..WATCHERS {
                let mut client = server::client(channels[i % channels.len()].clone());
                let mut stream = client
                    .watch_press_releases(WatchPressReleasesRequest::default())
                    .await?
                    .into_inner();
                let sent = Arc::clone(&sent);
                watchers.push(tokio::spawn(async move {
                    let mut latencies = Latencies::with_capacity(1024);
                    while let Some(Ok(message)) = stream.next().await {
                        let Some(Kind::Event(event)) = message.kind else {
                            continue;
                        };
                        let now = Instant::now();
                        let name = event.press_release.map(|r| r.name).unwrap_or_default();
                        let at = sent
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .get(&name)
                            .copied();
                        latencies.push(
                            at.map_or(Duration::ZERO, |at| now.saturating_duration_since(at)),
                        );
                    }
                    latencies
                }));
            }
            BenchResult::Ok((channels, watchers))
        }
    };
    let (channels_a, watchers_a) = arrivals(a.addr).await?;
    let (channels_b, watchers_b) = arrivals(b.addr).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut writer = a.client().await?;
    let writes = (RATE * plan.fanout_phase.as_secs_f64()) as usize;
    let fanout_releases = Generator::new(12, "fanout-replicas").releases(writes);
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / RATE));
    for release in fanout_releases {
        ticks.tick().await;
        let created: PressRelease = writer
            .create_press_release(CreatePressReleaseRequest {
                press_release: Some(release),
                request_id: String::new(),
            })
            .await?
            .into_inner();
        // Measured from the OK, as `fanout` does.
        sent.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(created.name, Instant::now());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(writer);
    a.stop().await?;
    b.stop().await?;
    drop((channels_a, channels_b));
    let collect = |watchers: Vec<tokio::task::JoinHandle<Latencies>>| async move {
        let mut all = Latencies::with_capacity(WATCHERS * writes);
        for watcher in watchers {
            all.extend(watcher.await?);
        }
        BenchResult::Ok(all)
    };
    let (on_a, on_b) = (collect(watchers_a).await?, collect(watchers_b).await?);
    println!(
        "   fanout at {RATE}/s, {WATCHERS} watchers each: the writing replica p50 {} p99 {} ({} deliveries); the other p50 {} p99 {} ({} deliveries)",
        ms(on_a.p50()),
        ms(on_a.p99()),
        thousands(on_a.len() as f64),
        ms(on_b.p50()),
        ms(on_b.p99()),
        thousands(on_b.len() as f64),
    );
    let allowance = on_a.p99().mul_f64(1.5) + POLL;
    summary.verdict(
        "postgres",
        "fanout p99 on another replica vs 1.5× the writer's + poll",
        format!("{} vs {}", ms(on_b.p99()), ms(allowance)),
        "≤ allowance",
        Verdict::of(on_b.p99() <= allowance && on_b.len() == on_a.len()),
    );
    drop(cluster);
    Ok(())
}
