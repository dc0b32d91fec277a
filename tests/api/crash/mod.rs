//! Crash safety: the real binary is killed with SIGKILL at random moments
//! while several writers create, update, withdraw and import. After each
//! kill the store is opened in-process as the crash left it and checked (a
//! change log without gaps, every record readable and consistent with its
//! log entries and indexes); then the binary is started again on the same
//! data dir and every acknowledged write is read back byte for byte. A write
//! that was in flight at the kill may or may not have landed; if it did, it
//! landed whole, and nothing else appears.
//!
//! `crash_10_cycles` runs with `cargo test`, on sled and (with a private
//! PostgreSQL, the server started with `--store`) on PostgreSQL;
//! `crash_200_cycles` on demand:
//! `cargo test --test api crash_200_cycles -- --ignored --nocapture`. Every
//! run prints its seed; `PRESSROOM_CRASH_SEED=<seed>` replays its random
//! choices (when each kill lands is still up to the machine).
//!
//! A consumer of a subscription runs beside the writers, acking a random
//! half of its events: after each restart no event whose ack was confirmed
//! comes again, and every one delivered and not acked does
//! (`subscription`).
//!
//! `writer` drives the writers, `store_check` checks the store as a crash
//! left it, and `verify` reads every acknowledged write back from the
//! restarted server; what they share (the model of what was written, the
//! seeded generator, the server process) is here.

mod store_check;
mod subscription;
mod verify;
mod writer;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    os::unix::process::ExitStatusExt as _,
    path::PathBuf,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use pressroom::proto::v1::{
    PressRelease, press_release::State, press_release_service_client::PressReleaseServiceClient,
};
use prost::Message as _;
use tonic::transport::Channel;

use self::{
    store_check::check_store,
    verify::verify,
    writer::{Writer, write_until_killed},
};
use crate::helpers::{Binary, TestResult};
use pressroom::store::postgres::{ClusterOptions, LocalCluster};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Concurrent writers per cycle.
const WRITERS: usize = 4;
/// Longest a writer waits for one answer before taking it as lost.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Channels the writers use; the channel index is checked after each crash.
const CHANNELS: [&str; 3] = ["markets", "energy", "technology"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_10_cycles() -> TestResult {
    run(10, 5, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_10_cycles_on_postgres() -> TestResult {
    let cluster = LocalCluster::start(&ClusterOptions::default())
        .map_err(|e| format!("a local PostgreSQL is needed for this test: {e}"))?;
    run(10, 5, Some(&cluster)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: runs on demand (`cargo test --test api crash_200_cycles -- --ignored`)"]
async fn crash_200_cycles() -> TestResult {
    run(200, 20, None).await
}

/// Where a run's server keeps its store: a temp dir (its data dir, and
/// sled in it), and with PostgreSQL a database of its own.
struct Site {
    dir: tempfile::TempDir,
    database: Option<String>,
}

impl Site {
    /// A fresh site; the `n`th database of `cluster`, if one is given.
    async fn fresh(cluster: Option<&LocalCluster>, n: u64) -> Result<Self, Error> {
        let database = match cluster {
            None => None,
            Some(cluster) => {
                let name = format!("crash_{n}");
                cluster.create_database(&name).await?;
                Some(cluster.url(&name))
            }
        };
        Ok(Self {
            dir: tempfile::tempdir()?,
            database,
        })
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The `serve` flags that put the server on this site.
    fn flags(&self) -> Vec<String> {
        let mut flags = vec!["--data-dir".into(), self.data_dir().display().to_string()];
        if let Some(url) = &self.database {
            flags.extend(["--store".into(), url.clone()]);
        }
        flags
    }

    /// Checks the store as the server left it.
    async fn check(&self) -> Result<StoreSnapshot, Error> {
        check_store(&self.data_dir().join("store"), self.database.as_deref()).await
    }
}

/// Runs `cycles` kill-and-check cycles, starting over on a fresh data dir
/// every `fresh_every` cycles (after a clean SIGTERM shutdown, itself
/// checked) so that the data stays small enough to check in full each time.
async fn run(cycles: u64, fresh_every: u64, cluster: Option<&LocalCluster>) -> TestResult {
    let seed = match std::env::var("PRESSROOM_CRASH_SEED") {
        Ok(text) => text.parse()?,
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64,
    };
    eprintln!("crash harness: {cycles} cycles, PRESSROOM_CRASH_SEED={seed}");
    let started = Instant::now();
    let mut rng = Rng(seed);
    let mut site = Site::fresh(cluster, 0).await?;
    let mut model = Model::default();
    let mut server = start(&site).await?;
    subscription::create(server.addr).await?;
    let mut acks = subscription::Acks::default();
    let mut totals = Totals::default();
    for cycle in 1..=cycles {
        if cycle > 1 && (cycle - 1) % fresh_every == 0 {
            stop_cleanly(server, &site).await?;
            site = Site::fresh(cluster, cycle).await?;
            model = Model::default();
            server = start(&site).await?;
            subscription::create(server.addr).await?;
            acks = subscription::Acks::default();
        }
        let context = |e: Error| -> Error {
            format!("cycle {cycle} (PRESSROOM_CRASH_SEED={seed}): {e}").into()
        };
        let state = (&mut model, &mut acks);
        server = crash_cycle(cycle, server, &site, state, &mut rng, &mut totals)
            .await
            .map_err(context)?;
    }
    stop_cleanly(server, &site).await?;
    eprintln!(
        "crash harness: {cycles} cycles passed in {:.1?}: {} writes acknowledged, {} in flight \
         at a kill ({} of them landed), {} kills during start-up, {} subscription events held \
         at a kill (each came again, or a later event of its release did)",
        started.elapsed(),
        totals.acknowledged,
        totals.in_flight,
        totals.landed,
        totals.start_kills,
        totals.redelivered,
    );
    Ok(())
}

/// Counts over a run, printed at its end.
#[derive(Default)]
struct Totals {
    acknowledged: u64,
    in_flight: u64,
    landed: u64,
    start_kills: u64,
    redelivered: u64,
}

/// One cycle: writers run against `server` until it is killed; the store is
/// checked as the crash left it; a new server is started and every
/// acknowledged release is read back. Returns the new server.
async fn crash_cycle(
    cycle: u64,
    mut server: Binary,
    site: &Site,
    (model, acks): (&mut Model, &mut subscription::Acks),
    rng: &mut Rng,
    totals: &mut Totals,
) -> Result<Binary, Error> {
    let shared = Arc::new(Mutex::new(std::mem::take(model)));
    let killed = Arc::new(AtomicBool::new(false));
    let consumed = Arc::new(Mutex::new(std::mem::take(acks)));
    let consumer = tokio::spawn(subscription::consume_until_killed(
        server.addr,
        Arc::clone(&consumed),
        Rng(rng.next()),
    ));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            tokio::spawn(write_until_killed(Writer {
                index: writer,
                cycle,
                rng: Rng(rng.next()),
                addr: server.addr,
                model: Arc::clone(&shared),
                killed: Arc::clone(&killed),
            }))
        })
        .collect();
    let delay = if rng.chance(10) {
        rng.below(20)
    } else {
        rng.range(20, 1_500)
    };
    tokio::time::sleep(Duration::from_millis(delay)).await;
    killed.store(true, Ordering::SeqCst);
    kill(&mut server.child, "the server")?;
    let mut failures = Vec::new();
    for writer in writers {
        match writer.await? {
            Ok(acknowledged) => totals.acknowledged += acknowledged,
            Err(error) => failures.push(error.to_string()),
        }
    }
    *model = std::mem::take(&mut *shared.lock().unwrap_or_else(PoisonError::into_inner));
    let consumer = consumer.await?;
    *acks = std::mem::take(&mut *consumed.lock().unwrap_or_else(PoisonError::into_inner));
    consumer.map_err(|e| format!("the subscription's consumer: {e}"))?;
    if !failures.is_empty() {
        return Err(format!(
            "writers failed before the kill: {failures:?}\nserver log:\n{}",
            log_tail(&server)
        )
        .into());
    }
    totals.in_flight += model.in_flight();

    if rng.chance(15) {
        // Crash again, while the server recovers and starts.
        totals.start_kills += 1;
        kill_during_start(site, Duration::from_millis(rng.below(600))).await?;
    }
    let snapshot = site
        .check()
        .await
        .map_err(|e| format!("the store after the kill: {e}"))?;

    let server = start(site).await?;
    let mut client = PressReleaseServiceClient::new(connect(server.addr).await?);
    let landed = verify(model, &snapshot, &mut client, rng)
        .await
        .map_err(|e| format!("after the restart: {e}\nserver log:\n{}", log_tail(&server)))?;
    totals.landed += landed;
    totals.redelivered += subscription::drain(server.addr, acks)
        .await
        .map_err(|e| format!("the subscription after the restart: {e}"))?
        as u64;
    Ok(server)
}

/// What the writers know: every release they were told was written, and
/// what they sent that got no answer.
#[derive(Default)]
struct Model {
    /// Acknowledged releases, by name.
    releases: BTreeMap<String, Tracked>,
    /// Creates sent without an answer, by headline (unique per attempt).
    pending_creates: BTreeMap<String, PendingCreate>,
    /// Imports sent without an answer, by tag. An import this small is one
    /// commit, so it lands whole or not at all.
    pending_imports: BTreeMap<String, (usize, Vec<PressRelease>)>,
    /// Items of acknowledged imports (whose names the answer does not give).
    imported: Vec<(usize, PressRelease)>,
    /// Names changed since the last check; they are read back with Get.
    touched: BTreeSet<String>,
}

impl Model {
    /// Writes sent and not answered.
    fn in_flight(&self) -> u64 {
        let updates = self
            .releases
            .values()
            .filter(|t| t.in_flight.is_some())
            .count();
        (updates + self.pending_creates.len() + self.pending_imports.len()) as u64
    }
}

/// A release the writers know.
struct Tracked {
    /// The writer that may change it (writers never race each other).
    owner: usize,
    /// The release as the last acknowledged write returned it.
    acked: PressRelease,
    /// A change sent without an answer.
    in_flight: Option<InFlight>,
}

/// A change sent without an answer.
enum InFlight {
    Update { headline: String, body: String },
    Withdraw { reason: String },
}

/// A create sent without an answer.
struct PendingCreate {
    owner: usize,
    request_id: String,
    sent: PressRelease,
}

/// What the store holds after a crash, as read in-process.
struct StoreSnapshot {
    /// Every record (withdrawn ones too), by name.
    records: BTreeMap<String, PressRelease>,
}

/// The release without the fields the server sets on every write.
fn content_of(release: &PressRelease) -> PressRelease {
    PressRelease {
        name: String::new(),
        state: 0,
        create_time: None,
        update_time: None,
        publish_time: None,
        revision: 0,
        etag: String::new(),
        ..release.clone()
    }
}

/// Whether `release` is the tombstone that withdrawing `current` with
/// `reason` leaves: the content purged, the next revision.
fn is_tombstone_of(release: &PressRelease, current: &PressRelease, reason: &str) -> bool {
    let purged = PressRelease {
        name: current.name.clone(),
        state: State::Withdrawn as i32,
        create_time: current.create_time,
        revision: current.revision + 1,
        withdrawal_reason: reason.into(),
        update_time: release.update_time,
        etag: release.etag.clone(),
        ..Default::default()
    };
    bytes(release) == bytes(&purged) && !release.etag.is_empty()
}

/// The encoded message: releases are compared byte for byte.
fn bytes(release: &PressRelease) -> Vec<u8> {
    release.encode_to_vec()
}

/// A small seeded generator (SplitMix64): enough to vary the work and the
/// moment of each kill, and to replay a run's choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// In `low..high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low))
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Starts the real binary on `site`.
async fn start(site: &Site) -> Result<Binary, Error> {
    let mut flags = site.flags();
    flags.extend(["--cache-mb", "16", "--shutdown-grace", "2s"].map(String::from));
    tokio::task::spawn_blocking(move || {
        Binary::serve(&flags.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await?
}

/// Stops the server with SIGTERM (it must exit cleanly), then checks the
/// store it leaves.
async fn stop_cleanly(server: Binary, site: &Site) -> Result<(), Error> {
    let logs = Arc::clone(&server.logs);
    let status = tokio::task::spawn_blocking(move || server.terminate()).await??;
    if !status.success() {
        let logs = logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n");
        return Err(format!("SIGTERM ended the server with {status}; log:\n{logs}").into());
    }
    site.check()
        .await
        .map_err(|e| format!("the store after a clean shutdown: {e}"))?;
    Ok(())
}

/// SIGKILLs a child, which must still have been running.
fn kill(child: &mut std::process::Child, what: &str) -> Result<(), Error> {
    child.kill()?;
    let status = child.wait()?;
    if status.signal() != Some(9) {
        return Err(format!("{what} had exited on its own before the kill: {status}").into());
    }
    Ok(())
}

/// Starts the binary on the data dir and SIGKILLs it `after` this long,
/// whether or not it has finished starting (recovering).
async fn kill_during_start(site: &Site, after: Duration) -> Result<(), Error> {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pressroom"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--cache-mb", "16"])
        .args(site.flags())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    tokio::time::sleep(after).await;
    tokio::task::spawn_blocking(move || kill(&mut child, "the server starting up")).await?
}

async fn connect(addr: SocketAddr) -> Result<Channel, Error> {
    Ok(Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?)
}

/// The last lines of a server's log, for a failure message.
fn log_tail(server: &Binary) -> String {
    let logs = server.logs.lock().unwrap_or_else(PoisonError::into_inner);
    let from = logs.len().saturating_sub(30);
    logs[from..].join("\n")
}
