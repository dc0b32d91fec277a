//! The live part of `alerts`: a fresh server with 10,000 streams (1,000
//! distinct queries, 10 streams each, over 20 connections, with
//! highlights); releases written at a fixed rate as in `fanout`. Every
//! stream's deliveries are checked against what an in-memory index of the
//! phase's releases says its query matches, so a lost or an extra delivery
//! is caught; the rate doubles step by step while p99 < 100 ms.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use pressroom::{
    proto::v1::WatchPressReleasesRequest,
    search::{
        query::{Query, parse},
        standing::BatchIndex,
    },
};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::{MATCHING_PER_CHANGE, STREAMS};
use crate::{
    BenchResult, Plan,
    delivery::{Watcher, follow, halves, is_flat, item_number, lock, sample_rss, write_at_rate},
    generate::Generator,
    measure::{Latencies, Summary, Verdict, cpu_time, mib, ms, rss_bytes, thousands},
    server::{self, Server},
};

/// Connections the streams share (the server allows 1,024 streams each).
const CONNECTIONS: usize = 20;
/// The rate of the first phase, and its target.
const BASE_RATE: f64 = 20.0;
const P99: Duration = Duration::from_millis(100);
/// The rates tried after it, while p99 stays under [`P99`].
const STEP_RATES: &[f64] = &[40.0, 80.0, 160.0, 320.0, 640.0];
/// How long deliveries may trail the last write; later ones count as lost.
const DRAIN: Duration = Duration::from_secs(10);
/// Without keys every stream is the same anonymous caller.
const FLAGS: &[&str] = &["--max-watchers", "20000", "--max-watchers-per-key", "20000"];

/// The figures of one live phase.
struct Phase {
    rate: f64,
    achieved: f64,
    errors: usize,
    deliveries: usize,
    lost: usize,
    extra: usize,
    latencies: Latencies,
    rss: Vec<u64>,
    cpu_per_delivery: Option<Duration>,
    /// The server's time matching, per change matched.
    matching_per_change: Option<Duration>,
}

impl Phase {
    fn passes(&self) -> bool {
        self.latencies.p99() < P99
            && self.lost == 0
            && self.extra == 0
            && self.errors == 0
            && self.achieved >= 0.9 * self.rate
    }

    fn print(&self) {
        println!(
            "   {:>5}/s  wrote {:>5}/s  {:>8} deliveries ({} CPU each)  p50 {:>8}  p99 {:>8}  matching {} per change  lost {}  extra {}  errors {}  rss {}",
            thousands(self.rate),
            thousands(self.achieved),
            thousands(self.deliveries as f64),
            self.cpu_per_delivery
                .map(|d| format!("{:.0} µs", d.as_secs_f64() * 1e6))
                .unwrap_or_else(|| "?".into()),
            ms(self.latencies.p50()),
            ms(self.latencies.p99()),
            self.matching_per_change
                .map(|d| format!("{:.0} µs", d.as_secs_f64() * 1e6))
                .unwrap_or_else(|| "?".into()),
            self.lost,
            self.extra,
            self.errors,
            self.rss.last().map(|b| mib(*b as f64)).unwrap_or_default()
        );
    }
}

/// The streams of the live part.
struct Streams {
    watchers: Vec<Arc<Watcher>>,
    /// The query (its index) of each watcher.
    query_of: Vec<usize>,
    /// The queries, to match each phase's releases with.
    batch: BatchIndex,
    readers: Vec<JoinHandle<()>>,
}

/// Opens the streams, then writes at rising rates while they keep up.
pub(super) async fn live(
    plan: &Plan,
    queries: &[String],
    summary: &mut Summary,
) -> BenchResult<()> {
    let dir = server::temp_dir()?;
    let server = Server::start(&server::data_dir(&dir), FLAGS).await?;
    let channels = server::connections(server.addr, CONNECTIONS).await?;
    let writers = server::connections(server.addr, 4).await?;
    let rss_idle = rss_bytes().unwrap_or(0);
    let parsed: Vec<Query> = queries.iter().map(|q| parse(q)).collect::<Result<_, _>>()?;
    let batch = BatchIndex::new(parsed.iter().enumerate().map(|(i, q)| (i as u64, q)))?;

    let epoch = Instant::now();
    let opening = Instant::now();
    let mut streams = Streams {
        watchers: Vec::with_capacity(STREAMS),
        query_of: Vec::with_capacity(STREAMS),
        batch,
        readers: Vec::with_capacity(STREAMS),
    };
    for i in 0..STREAMS {
        let query = i % queries.len();
        let mut client = server::client(channels[i % CONNECTIONS].clone());
        let stream = client
            .watch_press_releases(WatchPressReleasesRequest {
                query: queries[query].clone(),
                highlight: true,
                ..Default::default()
            })
            .await?
            .into_inner();
        let watcher = Arc::new(Watcher::new(epoch));
        streams
            .readers
            .push(tokio::spawn(follow(stream, Arc::clone(&watcher))));
        streams.watchers.push(watcher);
        streams.query_of.push(query);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while !streams
        .watchers
        .iter()
        .all(|w| w.ready.load(Ordering::Acquire))
    {
        if Instant::now() > deadline {
            return Err("the streams did not all start following".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_open = rss_bytes().unwrap_or(0);
    let stats = server.watchers.queries();
    println!(
        "   {} streams open in {:.1} s, {} distinct queries on the server; memory {} idle, {} with them open: {:.1} KiB per stream (clients included), compiled queries {:.0} bytes each",
        thousands(STREAMS as f64),
        opening.elapsed().as_secs_f64(),
        thousands(stats.groups as f64),
        mib(rss_idle as f64),
        mib(rss_open as f64),
        rss_open.saturating_sub(rss_idle) as f64 / 1024.0 / STREAMS as f64,
        stats.compiled_bytes as f64 / stats.groups.max(1) as f64
    );
    if stats.groups != queries.len() {
        return Err(format!(
            "the server holds {} query groups for {} distinct queries",
            stats.groups,
            queries.len()
        )
        .into());
    }
    summary.verdict(
        "alerts",
        "memory per open stream (process)",
        format!(
            "{:.1} KiB",
            rss_open.saturating_sub(rss_idle) as f64 / 1024.0 / STREAMS as f64
        ),
        "report",
        Verdict::Report,
    );

    let mut generator = Generator::new(16, "alerts");
    let warm_up = phase(
        &server,
        &streams,
        &writers,
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
        &server,
        &streams,
        &writers,
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
        "   memory through the phase: start {}, middle {}, end {} ({})",
        base.rss.first().map(|b| mib(*b as f64)).unwrap_or_default(),
        mib(mid as f64),
        mib(end as f64),
        if is_flat(mid, end) { "flat" } else { "growing" }
    );
    summary.verdict(
        "alerts",
        "p99 OK→receipt at 20/s, 10,000 streams",
        ms(base.latencies.p99()),
        "< 100 ms",
        Verdict::of(base.passes()),
    );
    summary.verdict(
        "alerts",
        "server's matching time per change",
        base.matching_per_change
            .map(|d| format!("{:.0} µs", d.as_secs_f64() * 1e6))
            .unwrap_or_else(|| "?".into()),
        "≤ 1 ms",
        Verdict::of(
            base.matching_per_change
                .is_some_and(|d| d <= MATCHING_PER_CHANGE),
        ),
    );
    println!(
        "   stepping the rate up ({:.0} s each) while p99 < 100 ms:",
        plan.fanout_step.as_secs_f64()
    );
    let mut highest = base.passes().then_some(BASE_RATE);
    if highest.is_some() {
        for &rate in STEP_RATES {
            let step = phase(
                &server,
                &streams,
                &writers,
                &mut generator,
                rate,
                plan.fanout_step,
            )
            .await?;
            step.print();
            if !step.passes() {
                break;
            }
            highest = Some(rate);
        }
    }
    summary.verdict(
        "alerts",
        "highest rate with p99 < 100 ms",
        highest
            .map(|r| format!("{}/s", thousands(r)))
            .unwrap_or_else(|| "none".into()),
        "report",
        Verdict::Report,
    );

    for reader in &streams.readers {
        reader.abort();
    }
    for reader in streams.readers.drain(..) {
        let _ = reader.await;
    }
    drop((channels, writers));
    server.stop().await
}

/// Writes at `rate` for `duration`; gathers and checks what each stream
/// received against what its query matches.
async fn phase(
    server: &Server,
    streams: &Streams,
    writers: &[Channel],
    generator: &mut Generator,
    rate: f64,
    duration: Duration,
) -> BenchResult<Phase> {
    let writes = (rate * duration.as_secs_f64()).round().max(1.0) as usize;
    let releases = generator.releases(writes);
    // Which items each query should deliver, by an index of the releases.
    let matched = streams.batch.matching(&releases)?;
    let mut wanted: HashMap<usize, HashSet<u32>> = HashMap::new();
    for (release, queries) in releases.iter().zip(&matched) {
        if let Some(item) = item_number(release) {
            for query in queries {
                wanted.entry(*query as usize).or_default().insert(item);
            }
        }
    }
    let expected_of = |w: usize| wanted.get(&streams.query_of[w]).map_or(0, HashSet::len);
    let expected: usize = (0..streams.watchers.len()).map(expected_of).sum();
    for watcher in &streams.watchers {
        watcher.reset(8);
    }
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(sample_rss(Arc::clone(&sampling)));
    let matching_before = server.watchers.queries();
    let cpu_before = cpu_time();
    let run = write_at_rate(writers, releases, rate).await?;
    let drained_by = Instant::now() + DRAIN;
    while streams
        .watchers
        .iter()
        .enumerate()
        .any(|(w, watcher)| watcher.count.load(Ordering::Acquire) < expected_of(w))
        && Instant::now() < drained_by
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu = cpu_before.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a));
    let matching_after = server.watchers.queries();
    sampling.store(false, Ordering::Release);
    let rss = sampler.await?;

    let mut latencies = Latencies::with_capacity(expected);
    let mut extra = 0;
    for (w, watcher) in streams.watchers.iter().enumerate() {
        let wants = wanted.get(&streams.query_of[w]);
        for (item, micros) in lock(&watcher.received).drain(..) {
            let Some(ok) = run.oks.get(&item) else {
                continue;
            };
            if !wants.is_some_and(|items| items.contains(&item)) {
                extra += 1;
                continue;
            }
            let at = watcher.epoch + Duration::from_micros(u64::from(micros));
            latencies.push(at.saturating_duration_since(*ok));
        }
    }
    let deliveries = latencies.len();
    let lost = expected.saturating_sub(deliveries);
    for _ in 0..lost {
        latencies.push(DRAIN);
    }
    let changes = matching_after
        .changes_matched
        .saturating_sub(matching_before.changes_matched);
    let spent = matching_after
        .matching
        .saturating_sub(matching_before.matching);
    Ok(Phase {
        rate,
        achieved: run.achieved(),
        errors: run.errors,
        deliveries,
        lost,
        extra,
        latencies,
        rss,
        cpu_per_delivery: cpu.map(|c| c / deliveries.max(1) as u32),
        matching_per_change: (changes > 0).then(|| spent / changes as u32),
    })
}
