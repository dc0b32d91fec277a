//! The slow-consumer soak of `fanout`: rounds of writes by concurrent
//! callers without, with, and again without 1,000 watchers that never read
//! (on connections with 64 KiB HTTP/2 windows); the write rate they leave
//! and the memory they cost, against the design bound of what a stalled
//! watch may hold.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use pressroom::proto::v1::WatchPressReleasesRequest;
use prost::Message as _;
use tonic::transport::Channel;

use super::{CONNECTIONS, WATCHERS};
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

/// Writers of the soak.
const SOAK_CALLERS: usize = 16;
/// Messages a stalled watch may hold by design: its buffer
/// (`--watch-buffer`, 16) and one chunk of events read from the log (32).
const HELD_PER_WATCHER: usize = 16 + 32;

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
pub(super) async fn soak(
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
