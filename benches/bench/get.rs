//! `get`: `GetPressRelease` throughput and latency with 64 calls in flight
//! over 8 connections, each caller asking for random releases of the
//! corpus. The reference is the echo server answering every call with one
//! release of the corpus' average encoded size, from memory, with the same
//! transport settings. The two are measured in alternating short rounds,
//! after a warm-up of each; the ratio is the median of the ratios of
//! adjacent rounds, so that a neighbour who comes and goes disturbs few
//! pairs. Beside it, the CPU time the whole process spends per call (server
//! and clients), which the neighbours hardly disturb.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use pressroom::proto::v1::GetPressReleaseRequest;
use prost::Message as _;

use crate::{
    BenchResult, Plan,
    corpus::Corpus,
    echo::{Echo, EchoServer},
    generate::Rng,
    measure::{
        Latencies, Summary, Verdict, cpu_time, kib, median, ms, per_second, ratio, thousands,
    },
    server,
};

/// Calls in flight.
const IN_FLIGHT: usize = 64;
/// Connections they share.
const CONNECTIONS: usize = 8;
/// Warm-up before the first round of each side.
const WARM_UP: Duration = Duration::from_secs(1);

/// Calls made and their latencies over some time.
#[derive(Default)]
struct Tally {
    calls: usize,
    elapsed: Duration,
    latencies: Latencies,
    bytes: usize,
    /// CPU time of the process.
    cpu: Duration,
    /// Calls per second of each round.
    rounds: Vec<f64>,
}

impl Tally {
    fn cpu_per_call(&self) -> Duration {
        self.cpu / self.calls.max(1) as u32
    }
}

pub async fn run(plan: &Plan, corpus: &mut Corpus, summary: &mut Summary) -> BenchResult<()> {
    println!(
        "\n== get: GetPressRelease, {IN_FLIGHT} in flight over {CONNECTIONS} connections, random releases of {}",
        thousands(corpus.records.len() as f64)
    );
    let names = Arc::new(corpus.names());
    let mean_size = corpus
        .records
        .iter()
        .map(|r| r.encoded_len())
        .sum::<usize>()
        / corpus.records.len().max(1);
    let typical = corpus
        .records
        .iter()
        .min_by_key(|r| r.encoded_len().abs_diff(mean_size))
        .cloned()
        .ok_or("the corpus is empty")?;
    let echo = EchoServer::start(
        Echo {
            release: Arc::new(typical.clone()),
            ..Default::default()
        },
        &server::default_config()?,
    )
    .await?;
    let server_addr = corpus.server().await?.addr;

    let server_channels = server::connections(server_addr, CONNECTIONS).await?;
    let echo_channels = server::connections(echo.addr, CONNECTIONS).await?;
    drive(&server_channels, &names, WARM_UP, 0).await?;
    drive(&echo_channels, &names, WARM_UP, 0).await?;
    let mut on_server = Tally::default();
    let mut on_echo = Tally::default();
    for round in 0..plan.get_rounds {
        let seed = round as u64 + 1;
        add(
            &mut on_server,
            drive(&server_channels, &names, plan.get_round, seed).await?,
        );
        add(
            &mut on_echo,
            drive(&echo_channels, &names, plan.get_round, seed).await?,
        );
    }
    drop(echo_channels);
    echo.stop().await?;

    let line = |who: &str, tally: &Tally| {
        println!(
            "   {who:<10} {:>8} calls/s (rounds {}–{})   p50 {}   p99 {}   {:.0} µs CPU per call   mean response {}",
            thousands(per_second(tally.calls, tally.elapsed)),
            thousands(tally.rounds.iter().copied().fold(f64::MAX, f64::min)),
            thousands(tally.rounds.iter().copied().fold(0.0, f64::max)),
            ms(tally.latencies.p50()),
            ms(tally.latencies.p99()),
            tally.cpu_per_call().as_secs_f64() * 1e6,
            kib(tally.bytes as f64 / tally.calls.max(1) as f64)
        );
    };
    line("pressroom", &on_server);
    line("echo", &on_echo);
    println!(
        "   ({} round(s) of {:.0} s each, alternating)",
        plan.get_rounds,
        plan.get_round.as_secs_f64()
    );
    let pairs: Vec<f64> = on_server
        .rounds
        .iter()
        .zip(&on_echo.rounds)
        .map(|(s, e)| s / e.max(1e-9))
        .collect();
    println!(
        "   ratios of adjacent rounds: {}",
        pairs
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let throughput = median(&pairs);
    summary.verdict(
        "get",
        "throughput vs echo (median of pairs)",
        ratio(throughput),
        "≥ 0.80×",
        Verdict::of(throughput >= 0.8),
    );
    summary.verdict(
        "get",
        "calls per CPU-second vs echo",
        ratio(
            on_echo.cpu_per_call().as_secs_f64() / on_server.cpu_per_call().as_secs_f64().max(1e-9),
        ),
        "report",
        Verdict::Report,
    );
    summary.verdict(
        "get",
        "p99 latency vs echo",
        ratio(on_server.latencies.p99().as_secs_f64() / on_echo.latencies.p99().as_secs_f64()),
        "report",
        Verdict::Report,
    );
    Ok(())
}

fn add(total: &mut Tally, round: Tally) {
    total.rounds.push(per_second(round.calls, round.elapsed));
    total.cpu += round.cpu;
    total.calls += round.calls;
    total.elapsed += round.elapsed;
    total.bytes += round.bytes;
    total.latencies.extend(round.latencies);
}

/// Keeps [`IN_FLIGHT`] calls going for `duration`.
async fn drive(
    channels: &[tonic::transport::Channel],
    names: &Arc<Vec<String>>,
    duration: Duration,
    seed: u64,
) -> BenchResult<Tally> {
    let cpu = cpu_time();
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(IN_FLIGHT);
    for i in 0..IN_FLIGHT {
        let mut client = server::client(channels[i % channels.len()].clone());
        let names = Arc::clone(names);
        let mut rng = Rng::new(seed * 1_000 + i as u64);
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let name = names[rng.below(names.len())].clone();
                let call = Instant::now();
                let release = client
                    .get_press_release(GetPressReleaseRequest { name })
                    .await?
                    .into_inner();
                tally.latencies.push(call.elapsed());
                tally.calls += 1;
                tally.bytes += release.encoded_len();
            }
            Ok::<_, tonic::Status>(tally)
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await??;
        total.calls += tally.calls;
        total.bytes += tally.bytes;
        total.latencies.extend(tally.latencies);
    }
    total.elapsed = started.elapsed();
    total.cpu = cpu
        .zip(cpu_time())
        .map(|(a, b)| b.saturating_sub(a))
        .unwrap_or_default();
    Ok(total)
}
