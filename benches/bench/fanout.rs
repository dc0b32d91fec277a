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

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use pressroom::proto::v1::{
    CreatePressReleaseRequest, PressRelease, WatchPressReleasesRequest, WatchPressReleasesResponse,
    watch_press_releases_response::Kind,
};
use prost::Message as _;
use tokio::task::JoinHandle;
use tonic::{Streaming, transport::Channel};

use crate::{
    BenchResult, Plan,
    generate::Generator,
    ingest,
    measure::{
        Latencies, Summary, Verdict, cpu_time, kib, mib, ms, per_second, ratio, rss_bytes,
        thousands,
    },
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
/// Writers of the soak.
const SOAK_CALLERS: usize = 16;
/// The server flag raising the per-key watcher limit (1,000 by default):
/// without keys every watcher is the same anonymous caller.
const FLAGS: &[&str] = &["--max-watchers-per-key", "10000"];
/// Messages a stalled watch may hold by design: its buffer
/// (`--watch-buffer`, 16) and one chunk of events read from the log (32).
const HELD_PER_WATCHER: usize = 16 + 32;

/// What one live watcher received.
pub struct Watcher {
    /// When the times in `received` count from.
    pub epoch: Instant,
    /// Item numbers and when they arrived (µs since `epoch`), kept small:
    /// this is the benchmark's own memory.
    pub received: Mutex<Vec<(u32, u32)>>,
    pub count: AtomicUsize,
    /// Has had its first progress (it is following).
    pub ready: AtomicBool,
}

impl Watcher {
    /// A watcher whose times count from `epoch`.
    pub fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            received: Mutex::default(),
            count: AtomicUsize::new(0),
            ready: AtomicBool::new(false),
        }
    }

    /// Forgets what was received, to count a new phase.
    pub fn reset(&self, room: usize) {
        let mut received = lock(&self.received);
        received.clear();
        received.reserve(room);
        drop(received);
        self.count.store(0, Ordering::Release);
    }
}

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
    soak(plan, &server, &channels, &mut generator, summary).await?;
    drop(channels);
    server.stop().await?;
    Ok(())
}

/// Reads a watch stream, noting when each event arrives.
pub async fn follow(mut stream: Streaming<WatchPressReleasesResponse>, watcher: Arc<Watcher>) {
    while let Ok(Some(message)) = stream.message().await {
        let at = Instant::now();
        match message.kind {
            Some(Kind::Event(event)) => {
                if let Some(item) = event.press_release.as_ref().and_then(item_number) {
                    let micros = at.saturating_duration_since(watcher.epoch).as_micros();
                    lock(&watcher.received).push((item, micros as u32));
                    watcher.count.fetch_add(1, Ordering::Release);
                }
            }
            Some(Kind::Progress(_)) => watcher.ready.store(true, Ordering::Release),
            None => {}
        }
    }
}

/// The generator's number of a release (the end of its source item id).
pub fn item_number(release: &PressRelease) -> Option<u32> {
    release
        .source
        .as_ref()?
        .item_id
        .rsplit('-')
        .next()?
        .parse()
        .ok()
}

pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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

/// What a run of writes at a fixed rate did.
pub struct Written {
    /// When each release written was acknowledged, by item number.
    pub oks: HashMap<u32, Instant>,
    pub written: usize,
    pub errors: usize,
    pub started: Instant,
}

impl Written {
    /// The rate achieved: writes per second until the last OK.
    pub fn achieved(&self) -> f64 {
        let last_ok = self.oks.values().max().copied().unwrap_or(self.started);
        per_second(
            self.written,
            last_ok.saturating_duration_since(self.started),
        )
    }
}

/// Writes `releases` at `rate`, each its own call started on schedule (an
/// open loop: a slow write does not slow the rate); returns when every
/// call has been answered.
pub async fn write_at_rate(
    channels: &[Channel],
    releases: Vec<PressRelease>,
    rate: f64,
) -> BenchResult<Written> {
    let oks: Arc<Mutex<HashMap<u32, Instant>>> = Arc::default();
    let started = Instant::now();
    let mut writers = Vec::with_capacity(releases.len());
    for (k, release) in releases.into_iter().enumerate() {
        let due = started + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let mut client = server::client(channels[k % channels.len()].clone());
        let oks = Arc::clone(&oks);
        writers.push(tokio::spawn(async move {
            let item = item_number(&release);
            let written = client
                .create_press_release(CreatePressReleaseRequest {
                    press_release: Some(release),
                    request_id: String::new(),
                })
                .await;
            match (written, item) {
                (Ok(_), Some(item)) => {
                    lock(&oks).insert(item, Instant::now());
                    true
                }
                _ => false,
            }
        }));
    }
    let mut written = 0;
    let mut errors = 0;
    for writer in writers {
        if writer.await? {
            written += 1;
        } else {
            errors += 1;
        }
    }
    let oks = std::mem::take(&mut *lock(&oks));
    Ok(Written {
        oks,
        written,
        errors,
        started,
    })
}

/// Samples this process's memory every 100 ms until told to stop.
pub async fn sample_rss(sampling: Arc<AtomicBool>) -> Vec<u64> {
    let mut samples = Vec::new();
    while sampling.load(Ordering::Acquire) {
        if let Some(rss) = rss_bytes() {
            samples.push(rss);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(rss) = rss_bytes() {
        samples.push(rss);
    }
    samples
}

/// The memory at the middle and at the end of a series of samples.
pub fn halves(samples: &[u64]) -> (u64, u64) {
    let mid = samples.get(samples.len() / 2).copied().unwrap_or(0);
    let end = samples.last().copied().unwrap_or(0);
    (mid, end)
}

/// Whether memory stayed flat from `mid` to `end`: it grew by at most
/// 16 MiB or 5%, whichever is more.
pub fn is_flat(mid: u64, end: u64) -> bool {
    let allowed = (16 * 1024 * 1024).max(mid / 20);
    end <= mid + allowed
}

/// Writes with [`SOAK_CALLERS`] concurrent callers, timed.
struct Writes {
    count: usize,
    elapsed: Duration,
    latencies: Latencies,
    /// CPU time of the process.
    cpu: Duration,
    /// The largest release written, encoded.
    largest: usize,
}

impl Writes {
    fn rate(&self) -> f64 {
        per_second(self.count, self.elapsed)
    }

    fn cpu_per_write(&self) -> String {
        format!(
            "{:.0} µs",
            self.cpu.as_secs_f64() * 1e6 / self.count.max(1) as f64
        )
    }

    fn print(&self, label: &str) {
        println!(
            "   {label:<28} {:>6} writes/s  p50 {}  p99 {}  {} CPU per write",
            thousands(self.rate()),
            ms(self.latencies.p50()),
            ms(self.latencies.p99()),
            self.cpu_per_write()
        );
    }
}

async fn writes(
    channels: &[Channel],
    generator: &mut Generator,
    count: usize,
) -> BenchResult<Writes> {
    let releases = Arc::new(generator.releases(count));
    let largest = releases.iter().map(|r| r.encoded_len()).max().unwrap_or(0);
    let cpu = cpu_time();
    let (elapsed, latencies) = ingest::create_with(channels, releases, SOAK_CALLERS).await?;
    Ok(Writes {
        count,
        elapsed,
        latencies,
        cpu: cpu
            .zip(cpu_time())
            .map(|(a, b)| b.saturating_sub(a))
            .unwrap_or_default(),
        largest,
    })
}

/// The slow-consumer soak: writes without stalled watchers, with them
/// (first while their buffers fill, then in the steady state), and without
/// them again; the steady state is compared with the mean of the two
/// without.
async fn soak(
    plan: &Plan,
    server: &Server,
    channels: &[Channel],
    generator: &mut Generator,
    summary: &mut Summary,
) -> BenchResult<()> {
    let half = plan.soak_writes / 2;
    println!(
        "   slow consumers: rounds of {} writes by {SOAK_CALLERS} callers, without, with 1,000 watchers that never read, and without again",
        thousands(half as f64)
    );
    let rss_start = rss_bytes().unwrap_or(0);
    let before = writes(channels, generator, half).await?;
    let rss_before = rss_bytes().unwrap_or(0);

    let mut stalling = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        stalling.push(server::connect_stalling(server.addr).await?);
    }
    let mut stalled = Vec::with_capacity(WATCHERS);
    for i in 0..WATCHERS {
        let mut client = server::client(stalling[i % CONNECTIONS].clone());
        stalled.push(
            client
                .watch_press_releases(WatchPressReleasesRequest::default())
                .await?
                .into_inner(),
        );
    }
    let rss_open = rss_bytes().unwrap_or(0);
    // The first round fills every stalled watcher's buffers (a cost paid
    // once per watcher); the second is the steady state.
    let filling = writes(channels, generator, half).await?;
    let rss_filled = rss_bytes().unwrap_or(0);
    let steady = writes(channels, generator, half).await?;
    let rss_steady = rss_bytes().unwrap_or(0);
    let snapshot = server.watchers.snapshot();
    let held: usize = snapshot.iter().map(|s| s.buffered_bytes).sum();
    let held_messages: usize = snapshot.iter().map(|s| s.buffered_messages).sum();
    drop(stalled);
    drop(stalling);
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.watchers.active() > 0 {
        if Instant::now() > deadline {
            return Err("the stalled watch streams did not end".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = writes(channels, generator, half).await?;

    // A stalled watch holds at most its buffer and a chunk of events (each
    // the release plus a cursor and a few fields), and the transport its
    // 64 KiB window.
    let largest = filling.largest.max(steady.largest) as u64;
    let bound = WATCHERS as u64 * (HELD_PER_WATCHER as u64 * (largest + 128) + 65_535);
    before.print("without");
    filling.print("with, while buffers fill");
    steady.print("with, steady");
    after.print("without, again");
    // Writes alone grow the process too (sled's page cache fills up to its
    // 256 MiB; the allocator keeps what it has had): a round without
    // watchers is the baseline.
    let baseline = rss_before.saturating_sub(rss_start);
    let growth = rss_steady.saturating_sub(rss_before);
    let steady_growth = rss_steady.saturating_sub(rss_filled);
    println!(
        "   memory: {} before the first round, {} after it (+{}), {} with the stalled watchers open, {} after the filling round, {} after the steady round",
        mib(rss_start as f64),
        mib(rss_before as f64),
        mib(baseline as f64),
        mib(rss_open as f64),
        mib(rss_filled as f64),
        mib(rss_steady as f64),
    );
    println!(
        "   the server's watch buffers held {} messages, {} ({} per stalled watcher); design bound {}",
        thousands(held_messages as f64),
        mib(held as f64),
        kib(held as f64 / WATCHERS as f64),
        mib(bound as f64)
    );
    let ratio_steady = steady.rate() / ((before.rate() + after.rate()) / 2.0);
    summary.verdict(
        "fanout",
        "soak: writes/s with 1,000 stalled",
        ratio(ratio_steady),
        "≥ 0.90× without (ours)",
        Verdict::of(ratio_steady >= 0.9),
    );
    summary.verdict(
        "fanout",
        "soak: memory growth with them (2 rounds)",
        mib(growth as f64),
        format!("≤ {} + 2 × baseline", mib(bound as f64)),
        Verdict::of(growth <= bound + 2 * baseline),
    );
    summary.verdict(
        "fanout",
        "soak: memory growth, steady round",
        mib(steady_growth as f64),
        "flat (≤ baseline + 16 MiB)",
        Verdict::of(steady_growth <= baseline + 16 * 1024 * 1024),
    );
    Ok(())
}
