//! The Pressroom benchmark (see `BENCHMARKS.md`):
//!
//! ```text
//! cargo bench --bench bench -- [--quick] [--store postgres] [get] [ingest] [fanout] [replay] [list] [search] [feeds] [alerts] [writes] [subscribe]
//! ```
//!
//! The real server runs in this process on `127.0.0.1:0` with a temporary
//! data dir, built through the library's `App` from `serve` flags, and real
//! gRPC clients drive it over real connections. The machines here are shared
//! and noisy, so every speed is printed beside a reference measured in the
//! same run on the same machine, the limit the service could reach if its own
//! code cost nothing, and as a ratio to it; the targets are ratios too.
//!
//! - [`generate`]: the seeded generator of realistic press releases.
//! - [`server`]: the in-process server and connections to it.
//! - [`echo`]: the gRPC echo servers, the references on the wire.
//! - [`corpus`]: the store loaded with many releases, shared by the reading
//!   scenarios, and the in-process references that need the store itself.
//! - [`measure`]: latencies, percentiles, memory, the summary.
//! - [`delivery`]: watchers that note each arrival and writes at a fixed
//!   rate, shared by [`fanout`] and [`alerts`].
//! - One module per scenario: [`get`], [`ingest`], [`fanout`], [`replay`],
//!   [`list`], [`search`], [`feeds`], [`alerts`], [`writes`] (in-process,
//!   for callgrind A/B of the write path), [`postgres`] (`--store
//!   postgres`: the PostgreSQL engine), [`subscribe`] (beside NATS
//!   JetStream).

/// The allocator the `pressroom` binary uses, so that what is measured is
/// what ships (the references run on it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod alerts;
mod corpus;
mod delivery;
mod echo;
mod fanout;
mod feeds;
mod generate;
mod get;
mod ingest;
mod list;
mod measure;
mod postgres;
mod replay;
mod search;
mod server;
mod subscribe;
mod writes;

use std::time::{Duration, Instant};

use corpus::Corpus;
use measure::Summary;

/// Any failure ends the run with its message.
pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The scenarios, in the order they run: those on fresh data dirs first,
/// then those reading the corpus (the list reference needs the store before
/// the server holds it).
const SCENARIOS: [&str; 11] = [
    "fanout",
    "subscribe",
    "ingest",
    "list",
    "get",
    "replay",
    "search",
    "feeds",
    "alerts",
    "writes",
    "postgres",
];

/// What `--store postgres` runs when no scenario is named: the engine's
/// own scenario, then those reading the corpus, which then lives in
/// PostgreSQL.
const POSTGRES_SCENARIOS: [&str; 7] = [
    "postgres", "list", "get", "replay", "search", "feeds", "alerts",
];

/// The sizes and durations of a run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `--quick`.
    pub quick: bool,
    /// `--store postgres`: the corpus lives in PostgreSQL.
    pub postgres: bool,
    /// Releases in the corpus.
    pub corpus: usize,
    /// Replays of the corpus on each side (alternating; the median counts).
    pub replays: usize,
    /// One measuring round of `get`, for each side.
    pub get_round: Duration,
    /// Rounds of `get` on each side, alternating the server and the echo.
    pub get_rounds: usize,
    /// Releases created by the `ingest` callers.
    pub creates: usize,
    /// Length of the warm-up at 20 releases/s of `fanout` (not counted).
    pub fanout_warm_up: Duration,
    /// Length of the 20 releases/s phase of `fanout`.
    pub fanout_phase: Duration,
    /// Length of each higher-rate step of `fanout`.
    pub fanout_step: Duration,
    /// Releases written by each half of the slow-consumer soak.
    pub soak_writes: usize,
    /// Calls of `list` on each side.
    pub list_calls: usize,
    /// Queries of `search` on each side.
    pub search_calls: usize,
    /// One measuring round of `feeds`, for each kind of request.
    pub feeds_round: Duration,
    /// Rounds of `feeds`, alternating the kinds.
    pub feeds_rounds: usize,
}

impl Plan {
    fn new(quick: bool, postgres: bool) -> Self {
        if quick {
            Self {
                quick,
                postgres,
                corpus: 20_000,
                replays: 3,
                get_round: Duration::from_secs(1),
                get_rounds: 5,
                creates: 3_000,
                fanout_warm_up: Duration::from_secs(3),
                fanout_phase: Duration::from_secs(5),
                fanout_step: Duration::from_secs(3),
                soak_writes: 1_000,
                list_calls: 300,
                search_calls: 300,
                feeds_round: Duration::from_secs(1),
                feeds_rounds: 5,
            }
        } else {
            Self {
                quick,
                postgres,
                corpus: 100_000,
                replays: 3,
                get_round: Duration::from_secs(3),
                get_rounds: 9,
                creates: 20_000,
                fanout_warm_up: Duration::from_secs(10),
                fanout_phase: Duration::from_secs(20),
                fanout_step: Duration::from_secs(8),
                soak_writes: 5_000,
                list_calls: 2_000,
                search_calls: 2_000,
                feeds_round: Duration::from_secs(3),
                feeds_rounds: 7,
            }
        }
    }
}

const USAGE: &str = "usage: cargo bench --bench bench -- [--quick] [--store postgres] [SCENARIO...]
scenarios: get ingest fanout replay list search feeds alerts writes subscribe postgres
           (default: all but postgres)
  --store postgres   the PostgreSQL engine on a private durable PostgreSQL
            (env PRESSROOM_BENCH_STORE=postgres): the scenarios named run
            with the corpus in it; with none named, scenario postgres
            (creates against raw INSERT and sled, fan-out across two
            replicas) and the corpus readers (list get replay search feeds
            alerts)
  --quick   about a minute: smaller corpus, shorter phases
  --bench   given by `cargo bench`; without it (e.g. under `cargo test
            --all-targets`) nothing is run";

fn main() {
    // Missed targets are reported in the summary; they do not fail the tool.
    if let Err(error) = run() {
        eprintln!("bench: {error}");
        let mut source = error.source();
        while let Some(cause) = source {
            eprintln!("  caused by: {cause}");
            source = cause.source();
        }
        std::process::exit(1);
    }
}

/// Parses the arguments and runs the selected scenarios.
fn run() -> BenchResult<()> {
    let mut quick = false;
    let mut benching = false;
    let mut selected: Vec<&'static str> = Vec::new();
    let mut args = std::env::args().skip(1);
    let mut postgres =
        std::env::var("PRESSROOM_BENCH_STORE").is_ok_and(|store| store == "postgres");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            store_arg if store_arg == "--store" || store_arg.starts_with("--store=") => {
                let store = match arg.split_once('=') {
                    Some((_, store)) => store.to_string(),
                    None => args.next().unwrap_or_default(),
                };
                match store.as_str() {
                    "postgres" => postgres = true,
                    "sled" => postgres = false,
                    other => return Err(format!("unknown store {other:?}\n{USAGE}").into()),
                }
            }
            "--quick" => quick = true,
            // cargo bench passes `--bench`; cargo test does not.
            "--bench" => benching = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            name => match SCENARIOS.iter().find(|s| **s == name) {
                Some(scenario) => {
                    if !selected.contains(scenario) {
                        selected.push(scenario)
                    }
                }
                None => return Err(format!("unknown argument {name:?}\n{USAGE}").into()),
            },
        }
    }
    if !benching {
        println!("bench: run by `cargo bench --bench bench` (see BENCHMARKS.md); nothing to do");
        return Ok(());
    }
    if selected.is_empty() {
        selected = if postgres {
            POSTGRES_SCENARIOS.to_vec()
        } else {
            SCENARIOS
                .iter()
                .copied()
                .filter(|s| *s != "postgres")
                .collect()
        };
    }
    let plan = Plan::new(quick, postgres);
    init_logging();
    print_machine(&plan, &selected);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let missed = runtime.block_on(run_scenarios(&plan, &selected))?;
    println!(
        "\n   {} targets missed; the run took {:.0} s",
        missed,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn run_scenarios(plan: &Plan, selected: &[&str]) -> BenchResult<usize> {
    let mut summary = Summary::default();
    let mut corpus: Option<Corpus> = None;
    for scenario in SCENARIOS {
        if !selected.contains(&scenario) {
            continue;
        }
        match scenario {
            "fanout" => fanout::run(plan, &mut summary).await?,
            "subscribe" => subscribe::run(plan, &mut summary).await?,
            "ingest" => {
                let corpus = loaded(&mut corpus, plan).await?;
                ingest::run(plan, corpus, &mut summary).await?
            }
            "list" => list::run(plan, loaded(&mut corpus, plan).await?, &mut summary).await?,
            "get" => get::run(plan, loaded(&mut corpus, plan).await?, &mut summary).await?,
            "replay" => replay::run(plan, loaded(&mut corpus, plan).await?, &mut summary).await?,
            "search" => search::run(plan, loaded(&mut corpus, plan).await?, &mut summary).await?,
            "feeds" => feeds::run(plan, loaded(&mut corpus, plan).await?, &mut summary).await?,
            "alerts" => alerts::run(plan, loaded(&mut corpus, plan).await?, &mut summary).await?,
            "writes" => writes::run(plan).await?,
            "postgres" => postgres::run(plan, &mut summary).await?,
            _ => {}
        }
    }
    if let Some(corpus) = corpus {
        corpus.stop().await?;
    }
    Ok(summary.print())
}

/// The corpus, built the first time a scenario needs it.
async fn loaded<'a>(corpus: &'a mut Option<Corpus>, plan: &Plan) -> BenchResult<&'a mut Corpus> {
    if corpus.is_none() {
        *corpus = Some(Corpus::build(plan).await?);
    }
    corpus
        .as_mut()
        .ok_or_else(|| "the corpus could not be built".into())
}

/// Only errors are logged (`RUST_LOG` overrides): the server's notices
/// would drown the figures.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Prints what the run is, and on what.
fn print_machine(plan: &Plan, selected: &[&str]) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpu = read_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown CPU".into());
    let memory = read_field("/proc/meminfo", "MemTotal").unwrap_or_else(|| "unknown".into());
    let rustc = std::process::Command::new("rustc")
        .arg("-V")
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_else(|| "rustc unknown".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    println!(
        "Pressroom benchmark ({} mode)",
        if plan.quick { "quick" } else { "full" }
    );
    println!("   machine: {cores} cores ({cpu}), {memory} RAM, {rustc}; load average {load}");
    println!(
        "   server and clients share this process and these cores; figures are ratios to references measured in this run"
    );
    println!(
        "   scenarios: {}; the corpus in {}",
        selected.join(" "),
        if plan.postgres { "PostgreSQL" } else { "sled" }
    );
    if let Ok(extra) = std::env::var("PRESSROOM_BENCH_SERVE_FLAGS") {
        println!("   servers get these flags beyond the defaults: {extra}");
    }
}

/// The value of the first `name: value` line of a /proc file.
fn read_field(path: &str, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|line| line.starts_with(name))
        .and_then(|line| line.split_once(':'))
        .map(|(_, value)| value.trim().to_string())
}
