//! `fanout`: 1,000 live watchers (over 10 connections) on a fresh server
//! while releases are written at a fixed rate, each write its own call
//! started on schedule (an open loop, so a slow write does not slow the
//! rate). For every delivery, the latency from the write's OK (as its
//! writer saw it) to the watcher's receipt; an event that arrives before
//! its writer has seen the OK counts as 0. First a warm-up at 20 releases/s
//! (not counted), then the measured phase at 20 releases/s (20,000
//! deliveries/s), watching the memory; then the rate doubles step by step
//! until p99 reaches 100 ms, deliveries are lost, or the writes fall behind.
//!
//! Then the slow-consumer soak: rounds of writes (16 concurrent callers)
//! without, with, and again without 1,000 watchers that never read (on
//! connections with 64 KiB HTTP/2 windows), and the memory they cost.
//!
//! The server runs in this process, so "memory" is this process's resident
//! set (VmRSS): server and clients together; growth is what counts. The CPU
//! time per delivery or write is the whole process's too.
//!
//! The live watchers are this file; the soak is `soak.rs`.

mod soak;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use pressroom::proto::v1::WatchPressReleasesRequest;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::{
    BenchResult, Plan,
    delivery::{Watcher, follow, halves, is_flat, lock, sample_rss, write_at_rate},
    generate::Generator,
    measure::{Latencies, Summary, Verdict, cpu_time, mib, ms, per_second, rss_bytes, thousands},
    server::{self, Server},
};

/// Live watchers, and stalled ones in the soak.
const WATCHERS: usize = 1_000;
/// Connections the watchers share.
const CONNECTIONS: usize = 10;
/// The rate of the first phase.
const BASE_RATE: f64 = 20.0;
/// Its target p99.
const BASE_P99: Duration = Duration::from_millis(50);
/// The rates tried after it, while p99 stays under [`STEP_P99`].
const STEP_RATES: &[f64] = &[40.0, 80.0, 160.0, 320.0, 640.0, 1280.0];
const STEP_P99: Duration = Duration::from_millis(100);
/// How long deliveries may trail the last write of a phase; one not made
/// by then is lost (and counted with this latency).
const DRAIN: Duration = Duration::from_secs(10);
/// The server flag raising the per-key watcher limit (1,000 by default):
/// without keys every watcher is the same anonymous caller.
const FLAGS: &[&str] = &["--max-watchers-per-key", "10000"];

/// The figures of one phase.
struct Phase {
    rate: f64,
    achieved: f64,
    errors: usize,
    deliveries: usize,
    deliveries_per_second: f64,
    lost: usize,
    latencies: Latencies,
    /// VmRSS samples through the phase.
    rss: Vec<u64>,
    /// CPU time of the whole process (server and clients) per delivery.
    cpu_per_delivery: Option<Duration>,
}

impl Phase {
    fn passes(&self, p99: Duration) -> bool {
        self.latencies.p99() < p99
            && self.lost == 0
            && self.errors == 0
            && self.achieved >= 0.9 * self.rate
    }

    fn print(&self) {
        println!(
            "   {:>6}/s  wrote {:>6}/s  {:>9} deliveries ({:>7}/s, {} CPU each)  p50 {:>8}  p99 {:>8}  lost {}  errors {}  rss {}",
            thousands(self.rate),
            thousands(self.achieved),
            thousands(self.deliveries as f64),
            thousands(self.deliveries_per_second),
            self.cpu_per_delivery
                .map(|d| format!("{:.0} µs", d.as_secs_f64() * 1e6))
                .unwrap_or_else(|| "?".into()),
            ms(self.latencies.p50()),
            ms(self.latencies.p99()),
            self.lost,
            self.errors,
            self.rss.last().map(|b| mib(*b as f64)).unwrap_or_default()
        );
    }
}

pub async fn run(plan: &Plan, summary: &mut Summary) -> BenchResult<()> {
    println!(
        "\n== fanout: 1,000 live watchers over {CONNECTIONS} connections; writes at a fixed rate; then 1,000 stalled watchers"
    );
    println!("   (memory is this process's VmRSS: the server runs in it, beside its clients)");
    let dir = server::temp_dir()?;
    let server = Server::start(&server::data_dir(&dir), FLAGS).await?;
    let channels = server::connections(server.addr, CONNECTIONS).await?;
    let rss_idle = rss_bytes().unwrap_or(0);

    let epoch = Instant::now();
    let mut watchers = Vec::with_capacity(WATCHERS);
    let mut readers: Vec<JoinHandle<()>> = Vec::with_capacity(WATCHERS);
    for i in 0..WATCHERS {
        let mut client = server::client(channels[i % CONNECTIONS].clone());
        let stream = client
            .watch_press_releases(WatchPressReleasesRequest::default())
            .await?
            .into_inner();
        let watcher = Arc::new(Watcher::new(epoch));
        readers.push(tokio::spawn(follow(stream, Arc::clone(&watcher))));
        watchers.push(watcher);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !watchers.iter().all(|w| w.ready.load(Ordering::Acquire)) {
        if Instant::now() > deadline {
            return Err("the watchers did not all start following".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_watching = rss_bytes().unwrap_or(0);
    println!(
        "   memory: {} idle, {} with 1,000 watchers open",
        mib(rss_idle as f64),
        mib(rss_watching as f64)
    );

    let mut generator = Generator::new(3, "fanout");
    let warm_up = phase(
        &watchers,
        &channels,
        &mut generator,
        BASE_RATE,
        plan.fanout_warm_up,
    )
    .await?;
    println!(
        "   {:.0} s at {:.0} releases/s to warm up (not counted):",
        plan.fanout_warm_up.as_secs_f64(),
        BASE_RATE
    );
    warm_up.print();
    let base = phase(
        &watchers,
        &channels,
        &mut generator,
        BASE_RATE,
        plan.fanout_phase,
    )
    .await?;
    println!(
        "   {:.0} s at {:.0} releases/s:",
        plan.fanout_phase.as_secs_f64(),
        BASE_RATE
    );
    base.print();
    let (mid, end) = halves(&base.rss);
    println!(
        "   memory through the phase: start {}, middle {}, end {}",
        base.rss.first().map(|b| mib(*b as f64)).unwrap_or_default(),
        mib(mid as f64),
        mib(end as f64)
    );
    summary.verdict(
        "fanout",
        "p99 OK→receipt at 20/s, 1,000 watchers",
        ms(base.latencies.p99()),
        "< 50 ms",
        Verdict::of(base.passes(BASE_P99)),
    );
    let growth = end as f64 - mid as f64;
    summary.verdict(
        "fanout",
        "memory growth, 2nd half of the 20/s phase",
        mib(growth),
        "flat (≤ max(16 MiB, 5%))",
        Verdict::of(is_flat(mid, end)),
    );

    println!(
        "   stepping the rate up ({:.0} s each) while p99 < 100 ms:",
        plan.fanout_step.as_secs_f64()
    );
    let mut highest = base.passes(STEP_P99).then_some(BASE_RATE);
    if highest.is_some() {
        for &rate in STEP_RATES {
            let step = phase(&watchers, &channels, &mut generator, rate, plan.fanout_step).await?;
            step.print();
            if !step.passes(STEP_P99) {
                break;
            }
            highest = Some(rate);
        }
    }
    summary.verdict(
        "fanout",
        "highest rate with p99 < 100 ms",
        highest
            .map(|r| format!("{}/s", thousands(r)))
            .unwrap_or_else(|| "none".into()),
        "report",
        Verdict::Report,
    );

    for reader in &readers {
        reader.abort();
    }
    for reader in readers {
        let _ = reader.await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.watchers.active() > 0 {
        if Instant::now() > deadline {
            return Err("the live watch streams did not end".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    soak::soak(plan, &server, &channels, &mut generator, summary).await?;
    drop(channels);
    server.stop().await?;
    Ok(())
}

/// Writes at `rate` for `duration` and gathers what the watchers received.
async fn phase(
    watchers: &[Arc<Watcher>],
    channels: &[Channel],
    generator: &mut Generator,
    rate: f64,
    duration: Duration,
) -> BenchResult<Phase> {
    let writes = (rate * duration.as_secs_f64()).round().max(1.0) as usize;
    let releases = generator.releases(writes);
    for watcher in watchers {
        watcher.reset(writes);
    }
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(sample_rss(Arc::clone(&sampling)));
    let cpu_before = cpu_time();
    let run = write_at_rate(channels, releases, rate).await?;
    let drained_by = Instant::now() + DRAIN;
    while watchers
        .iter()
        .any(|w| w.count.load(Ordering::Acquire) < run.written)
        && Instant::now() < drained_by
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu = cpu_before.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a));
    sampling.store(false, Ordering::Release);
    let rss = sampler.await?;

    let mut latencies = Latencies::with_capacity(run.written * watchers.len());
    let mut last_receipt = run.started;
    for watcher in watchers {
        for (item, micros) in lock(&watcher.received).drain(..) {
            let at = watcher.epoch + Duration::from_micros(u64::from(micros));
            if let Some(ok) = run.oks.get(&item) {
                latencies.push(at.saturating_duration_since(*ok));
                last_receipt = last_receipt.max(at);
            }
        }
    }
    let deliveries = latencies.len();
    let lost = (run.written * watchers.len()).saturating_sub(deliveries);
    for _ in 0..lost {
        latencies.push(DRAIN);
    }
    Ok(Phase {
        rate,
        achieved: run.achieved(),
        errors: run.errors,
        deliveries,
        deliveries_per_second: per_second(
            deliveries,
            last_receipt.saturating_duration_since(run.started),
        ),
        lost,
        latencies,
        rss,
        cpu_per_delivery: cpu.map(|c| c / deliveries.max(1) as u32),
    })
}
