//! `replay`: one watcher catching up on the whole corpus from the
//! beginning, until the server says it has caught up. The reference is the
//! streaming echo sending the very same messages from memory (the
//! transport's limit); beside it, the in-process scan of the change log and
//! the records through the `Store` trait, measured when the corpus was
//! built (the storage's limit). The server and the echo replay in turn,
//! several times; the ratio is the median of the ratios of adjacent replays.

use std::time::{Duration, Instant};

use pressroom::proto::v1::{
    StartPosition, WatchPressReleasesRequest, watch_press_releases_request::Start,
    watch_press_releases_response::Kind,
};
use prost::Message as _;

use crate::{
    BenchResult, Plan,
    corpus::Corpus,
    echo::{Echo, EchoServer},
    measure::{Summary, Verdict, cpu_time, median, mib, per_second, ratio, thousands},
    server,
};

/// Longest a replay may take.
const TIMEOUT: Duration = Duration::from_secs(1800);

/// What one replay received.
pub struct Replayed {
    pub events: usize,
    pub bytes: usize,
    pub elapsed: Duration,
    /// CPU time of the process (server and client).
    pub cpu: Duration,
}

impl Replayed {
    fn mib_per_second(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / (1024.0 * 1024.0)
    }
}

pub async fn run(plan: &Plan, corpus: &mut Corpus, summary: &mut Summary) -> BenchResult<()> {
    println!(
        "\n== replay: one watcher from the beginning of {} releases until caught up{}",
        thousands(corpus.records.len() as f64),
        if plan.quick {
            " (--quick: the full run replays 100,000)"
        } else {
            ""
        }
    );
    let addr = corpus.server().await?.addr;
    let echo = EchoServer::start(
        Echo {
            stream: corpus.replay.clone(),
            ..Default::default()
        },
        &server::default_config()?,
    )
    .await?;
    let mut on_server = Vec::with_capacity(plan.replays);
    let mut on_echo = Vec::with_capacity(plan.replays);
    for _ in 0..plan.replays {
        on_server.push(replay(addr, "", false).await?);
        on_echo.push(replay(echo.addr, "", false).await?);
    }
    echo.stop().await?;
    let pairs: Vec<f64> = on_server
        .iter()
        .zip(&on_echo)
        .map(|(s, e)| s.mib_per_second() / e.mib_per_second().max(1e-9))
        .collect();
    let (Some(on_server), Some(on_echo)) = (typical(on_server), typical(on_echo)) else {
        return Err("no replay was made".into());
    };
    if on_server.events != corpus.records.len() {
        return Err(format!(
            "the replay delivered {} events; the corpus holds {}",
            on_server.events,
            corpus.records.len()
        )
        .into());
    }
    let line = |who: &str, r: &Replayed| {
        println!(
            "   {who:<10} {:>7.1} MiB/s   {:>8} events/s   ({} in {:.2} s, {:.1} ms CPU per MiB)",
            r.mib_per_second(),
            thousands(per_second(r.events, r.elapsed)),
            mib(r.bytes as f64),
            r.elapsed.as_secs_f64(),
            r.cpu.as_secs_f64() * 1000.0 / (r.bytes as f64 / (1024.0 * 1024.0)).max(1e-9)
        );
    };
    line("pressroom", &on_server);
    line("echo", &on_echo);
    println!(
        "   (the median of {} replays each, alternating; ratios of adjacent replays: {})",
        plan.replays,
        pairs
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let scanned = &corpus.scanned;
    println!(
        "   {:<10} {:>7.1} MiB/s   {:>8} entries/s   (read_log + get in-process, measured at load)",
        "store scan",
        scanned.bytes as f64 / scanned.elapsed.as_secs_f64() / (1024.0 * 1024.0),
        thousands(per_second(scanned.entries, scanned.elapsed)),
    );
    let ratio_to_echo = median(&pairs);
    summary.verdict(
        "replay",
        "catch-up MiB/s vs streaming echo",
        ratio(ratio_to_echo),
        "≥ 0.70×",
        Verdict::of(ratio_to_echo >= 0.7),
    );
    Ok(())
}

/// The median replay, by speed.
pub fn typical(mut replays: Vec<Replayed>) -> Option<Replayed> {
    replays.sort_by_key(|r| r.elapsed);
    let middle = replays.len() / 2;
    replays.into_iter().nth(middle)
}

/// Watches from the beginning until caught up, with a text query unless
/// `query` is empty (and its highlights if `highlight`).
pub async fn replay(
    addr: std::net::SocketAddr,
    query: &str,
    highlight: bool,
) -> BenchResult<Replayed> {
    let mut client = server::client(server::connect(addr).await?);
    let cpu = cpu_time();
    let started = Instant::now();
    let deadline = started + TIMEOUT;
    let mut stream = client
        .watch_press_releases(WatchPressReleasesRequest {
            start: Some(Start::Position(StartPosition::Beginning as i32)),
            query: query.to_string(),
            highlight,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut replayed = Replayed {
        events: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        cpu: Duration::ZERO,
    };
    loop {
        let message = tokio::time::timeout_at(deadline.into(), stream.message())
            .await
            .map_err(|_| "the replay timed out")??
            .ok_or("the stream ended before catching up")?;
        replayed.bytes += message.encoded_len();
        match message.kind {
            Some(Kind::Event(_)) => replayed.events += 1,
            Some(Kind::Progress(progress)) if progress.caught_up => break,
            _ => {}
        }
    }
    replayed.elapsed = started.elapsed();
    replayed.cpu = cpu
        .zip(cpu_time())
        .map(|(a, b)| b.saturating_sub(a))
        .unwrap_or_default();
    Ok(replayed)
}
