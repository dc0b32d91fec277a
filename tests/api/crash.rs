//! Crash safety: the real binary is killed with SIGKILL at random moments
//! while several writers create, update, withdraw and import. After each
//! kill the store is opened in-process as the crash left it and checked (a
//! change log without gaps, every record readable and consistent with its
//! log entries and indexes); then the binary is started again on the same
//! data dir and every acknowledged write is read back byte for byte. A write
//! that was in flight at the kill may or may not have landed; if it did, it
//! landed whole, and nothing else appears.
//!
//! `crash_10_cycles` runs with `cargo test`; `crash_200_cycles` on demand:
//! `cargo test --test api crash_200_cycles -- --ignored --nocapture`. Every
//! run prints its seed; `PRESSROOM_CRASH_SEED=<seed>` replays its random
//! choices (when each kill lands is still up to the machine).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::SocketAddr,
    os::unix::process::ExitStatusExt as _,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use pressroom::{
    domain::name,
    proto::v1::{
        CreatePressReleaseRequest, Dateline, DeletePressReleaseRequest, GetPressReleaseRequest,
        ImportPressReleasesRequest, PressRelease, UpdatePressReleaseRequest,
        press_release::{BodyFormat, State},
        press_release_service_client::PressReleaseServiceClient,
    },
    store::{Facet, ListQuery, SledStore, Store},
};
use prost::Message as _;
use tonic::{Code, Status, transport::Channel};
use uuid::Uuid;

use crate::helpers::{Binary, TestResult, list_all};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Concurrent writers per cycle.
const WRITERS: usize = 4;
/// Longest a writer waits for one answer before taking it as lost.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Channels the writers use; the channel index is checked after each crash.
const CHANNELS: [&str; 3] = ["markets", "energy", "technology"];
const COUNTRIES: [&str; 4] = ["US", "DE", "AZ", "JP"];
const WORDS: [&str; 12] = [
    "acme",
    "solar",
    "plant",
    "quarter",
    "record",
    "shares",
    "capacity",
    "today",
    "announced",
    "million",
    "panels",
    "growth",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_10_cycles() -> TestResult {
    run(10, 5).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: runs on demand (`cargo test --test api crash_200_cycles -- --ignored`)"]
async fn crash_200_cycles() -> TestResult {
    run(200, 20).await
}

/// Runs `cycles` kill-and-check cycles, starting over on a fresh data dir
/// every `fresh_every` cycles (after a clean SIGTERM shutdown, itself
/// checked) so that the data stays small enough to check in full each time.
async fn run(cycles: u64, fresh_every: u64) -> TestResult {
    let seed = match std::env::var("PRESSROOM_CRASH_SEED") {
        Ok(text) => text.parse()?,
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64,
    };
    eprintln!("crash harness: {cycles} cycles, PRESSROOM_CRASH_SEED={seed}");
    let started = Instant::now();
    let mut rng = Rng(seed);
    let mut dir = tempfile::tempdir()?;
    let mut model = Model::default();
    let mut server = start(&data_dir(dir.path())).await?;
    let mut totals = Totals::default();
    for cycle in 1..=cycles {
        if cycle > 1 && (cycle - 1) % fresh_every == 0 {
            stop_cleanly(server, dir.path()).await?;
            dir = tempfile::tempdir()?;
            model = Model::default();
            server = start(&data_dir(dir.path())).await?;
        }
        let context = |e: Error| -> Error {
            format!("cycle {cycle} (PRESSROOM_CRASH_SEED={seed}): {e}").into()
        };
        server = crash_cycle(cycle, server, dir.path(), &mut model, &mut rng, &mut totals)
            .await
            .map_err(context)?;
    }
    stop_cleanly(server, dir.path()).await?;
    eprintln!(
        "crash harness: {cycles} cycles passed in {:.1?}: {} writes acknowledged, {} in flight \
         at a kill ({} of them landed), {} kills during start-up",
        started.elapsed(),
        totals.acknowledged,
        totals.in_flight,
        totals.landed,
        totals.start_kills,
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
}

/// One cycle: writers run against `server` until it is killed; the store is
/// checked as the crash left it; a new server is started and every
/// acknowledged release is read back. Returns the new server.
async fn crash_cycle(
    cycle: u64,
    mut server: Binary,
    dir: &Path,
    model: &mut Model,
    rng: &mut Rng,
    totals: &mut Totals,
) -> Result<Binary, Error> {
    let shared = Arc::new(Mutex::new(std::mem::take(model)));
    let killed = Arc::new(AtomicBool::new(false));
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
        kill_during_start(dir, Duration::from_millis(rng.below(600))).await?;
    }
    let store_dir = data_dir(dir).join("store");
    let snapshot = tokio::task::spawn_blocking(move || check_store(&store_dir))
        .await?
        .map_err(|e| format!("the store after the kill: {e}"))?;

    let server = start(&data_dir(dir)).await?;
    let mut client = PressReleaseServiceClient::new(connect(server.addr).await?);
    let landed = verify(model, &snapshot, &mut client, rng)
        .await
        .map_err(|e| format!("after the restart: {e}\nserver log:\n{}", log_tail(&server)))?;
    totals.landed += landed;
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

/// One writer's task.
struct Writer {
    index: usize,
    cycle: u64,
    rng: Rng,
    addr: SocketAddr,
    model: Arc<Mutex<Model>>,
    killed: Arc<AtomicBool>,
}

/// Why a write did not go through.
enum WriteError {
    /// No answer, or an error status: it may or may not have been applied.
    Unanswered(Status),
    /// An answer that contradicts what was sent: always a failure.
    Wrong(String),
}

impl From<Status> for WriteError {
    fn from(status: Status) -> Self {
        WriteError::Unanswered(status)
    }
}

impl Writer {
    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn create(
        &mut self,
        client: &mut PressReleaseServiceClient<Channel>,
        tag: &str,
    ) -> Result<(), WriteError> {
        let sent = content(&mut self.rng, tag);
        let request_id = format!("crash-{tag}-{:016x}", self.rng.next());
        self.model().pending_creates.insert(
            sent.headline.clone(),
            PendingCreate {
                owner: self.index,
                request_id: request_id.clone(),
                sent: sent.clone(),
            },
        );
        let request = CreatePressReleaseRequest {
            press_release: Some(sent.clone()),
            request_id,
        };
        let release = answer(client.create_press_release(request)).await?;
        if content_of(&release) != content_of(&sent) || release.revision != 1 {
            return Err(WriteError::Wrong(format!(
                "create answered with other content: sent {sent:?}, got {release:?}"
            )));
        }
        let mut model = self.model();
        model.pending_creates.remove(&sent.headline);
        model.touched.insert(release.name.clone());
        model.releases.insert(
            release.name.clone(),
            Tracked {
                owner: self.index,
                acked: release,
                in_flight: None,
            },
        );
        Ok(())
    }

    /// One of this writer's releases that is not withdrawn.
    fn pick(&mut self) -> Option<PressRelease> {
        let mine: Vec<PressRelease> = self
            .model()
            .releases
            .values()
            .filter(|t| t.owner == self.index && t.acked.state() != State::Withdrawn)
            .map(|t| t.acked.clone())
            .collect();
        let at = self.rng.below(mine.len() as u64) as usize;
        mine.into_iter().nth(at)
    }

    /// Records the server's answer to a change of a tracked release.
    fn acknowledged(&self, release: PressRelease) {
        let mut model = self.model();
        model.touched.insert(release.name.clone());
        if let Some(tracked) = model.releases.get_mut(&release.name) {
            tracked.acked = release;
            tracked.in_flight = None;
        }
    }

    fn set_in_flight(&self, name: &str, change: Option<InFlight>) {
        if let Some(tracked) = self.model().releases.get_mut(name) {
            tracked.in_flight = change;
        }
    }

    async fn update(
        &mut self,
        client: &mut PressReleaseServiceClient<Channel>,
        tag: &str,
    ) -> Result<(), WriteError> {
        let Some(current) = self.pick() else {
            return self.create(client, tag).await;
        };
        let headline = format!("Crash test {tag} (updated)");
        let body = format!("{tag}: {}", words(&mut self.rng));
        self.set_in_flight(
            &current.name,
            Some(InFlight::Update {
                headline: headline.clone(),
                body: body.clone(),
            }),
        );
        let mut request = UpdatePressReleaseRequest {
            press_release: Some(PressRelease {
                name: current.name.clone(),
                etag: current.etag.clone(),
                headline: headline.clone(),
                body: body.clone(),
                ..Default::default()
            }),
            update_mask: Some(Default::default()),
        };
        if let Some(mask) = request.update_mask.as_mut() {
            mask.paths = vec!["headline".into(), "body".into()];
        }
        let release = answer(client.update_press_release(request)).await?;
        let expected = PressRelease {
            headline,
            body,
            ..current.clone()
        };
        if content_of(&release) != content_of(&expected) || release.revision != current.revision + 1
        {
            return Err(WriteError::Wrong(format!(
                "update answered with other content: expected {expected:?}, got {release:?}"
            )));
        }
        self.acknowledged(release);
        Ok(())
    }

    async fn withdraw(
        &mut self,
        client: &mut PressReleaseServiceClient<Channel>,
        tag: &str,
    ) -> Result<(), WriteError> {
        let Some(current) = self.pick() else {
            return self.create(client, tag).await;
        };
        let reason = format!("withdrawn by {tag}");
        self.set_in_flight(
            &current.name,
            Some(InFlight::Withdraw {
                reason: reason.clone(),
            }),
        );
        let request = DeletePressReleaseRequest {
            name: current.name.clone(),
            etag: current.etag.clone(),
            reason: reason.clone(),
        };
        let tombstone = answer(client.delete_press_release(request)).await?;
        if !is_tombstone_of(&tombstone, &current, &reason) {
            return Err(WriteError::Wrong(format!(
                "withdrawal answered with {tombstone:?}"
            )));
        }
        self.acknowledged(tombstone);
        Ok(())
    }

    async fn import(
        &mut self,
        client: &mut PressReleaseServiceClient<Channel>,
        tag: &str,
    ) -> Result<(), WriteError> {
        let count = self.rng.range(2, 20);
        let items: Vec<PressRelease> = (0..count)
            .map(|i| content(&mut self.rng, &format!("{tag}-i{i}")))
            .collect();
        self.model()
            .pending_imports
            .insert(tag.to_string(), (self.index, items.clone()));
        let requests: Vec<ImportPressReleasesRequest> = items
            .iter()
            .map(|item| ImportPressReleasesRequest {
                press_release: Some(item.clone()),
                request_id: String::new(),
            })
            .collect();
        let summary = answer(client.import_press_releases(tokio_stream::iter(requests))).await?;
        if summary.created != count as i64 || !summary.failed.is_empty() {
            return Err(WriteError::Wrong(format!(
                "import of {count} answered with {summary:?}"
            )));
        }
        let mut model = self.model();
        model.pending_imports.remove(tag);
        let owner = self.index;
        model
            .imported
            .extend(items.into_iter().map(|item| (owner, item)));
        Ok(())
    }
}

/// Writes until the server is killed; returns how many writes were
/// acknowledged. Fails on an error before the kill, or on an answer that
/// contradicts what was sent.
async fn write_until_killed(mut writer: Writer) -> Result<u64, Error> {
    let channel = connect(writer.addr).await?;
    let mut client = PressReleaseServiceClient::new(channel);
    let mut acknowledged = 0;
    for n in 0.. {
        let tag = format!("c{}-w{}-{n}", writer.cycle, writer.index);
        let outcome = match writer.rng.below(100) {
            0..45 => writer.create(&mut client, &tag).await,
            45..85 => writer.update(&mut client, &tag).await,
            85..93 => writer.withdraw(&mut client, &tag).await,
            _ => writer.import(&mut client, &tag).await,
        };
        match outcome {
            Ok(()) => acknowledged += 1,
            Err(WriteError::Wrong(message)) => {
                return Err(format!("writer {}: {message}", writer.index).into());
            }
            Err(WriteError::Unanswered(_)) if writer.killed.load(Ordering::SeqCst) => break,
            Err(WriteError::Unanswered(status)) => {
                return Err(format!("writer {}: {status:?}", writer.index).into());
            }
        }
    }
    Ok(acknowledged)
}

/// The answer to a call, or the status; no answer in time counts as none.
async fn answer<T>(
    call: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(reply) => reply.map(tonic::Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded("no answer in time")),
    }
}

/// What the store holds after a crash, as read in-process.
struct StoreSnapshot {
    /// Every record (withdrawn ones too), by name.
    records: BTreeMap<String, PressRelease>,
}

/// Opens the store as a crash left it and checks it: the change log runs
/// 1..=head without a gap, each release's entries chain and count its
/// revisions, every record named in the log reads back (its checksum holds)
/// at the revision of its latest entry, and the published index, the total
/// and the channel index agree with the records.
fn check_store(store_dir: &Path) -> Result<StoreSnapshot, Error> {
    let store = SledStore::open(store_dir, 16 << 20)?;
    let head = store.log_head();
    let mut latest: HashMap<Uuid, (u64, i64)> = HashMap::new();
    let mut seen = 0;
    while seen < head {
        let entries = store.read_log(seen, head, 1_000)?;
        if entries.is_empty() {
            return Err(format!("the change log stops at {seen}; its head is {head}").into());
        }
        for entry in entries {
            if entry.seq != seen + 1 {
                return Err(format!("the change log jumps from {seen} to {}", entry.seq).into());
            }
            seen = entry.seq;
            let id = Uuid::from_slice(&entry.release_id)?;
            let (prev_seq, prev_revision) = latest.get(&id).copied().unwrap_or((0, 0));
            if entry.prev_seq != prev_seq || entry.revision != prev_revision + 1 {
                return Err(format!(
                    "log entry {} of {id}: previous entry {} and revision {}, expected {prev_seq} \
                     and {}",
                    entry.seq,
                    entry.prev_seq,
                    entry.revision,
                    prev_revision + 1
                )
                .into());
            }
            latest.insert(id, (entry.seq, entry.revision));
        }
    }

    let mut records = BTreeMap::new();
    for (id, (seq, revision)) in &latest {
        let record = store
            .get(id)?
            .ok_or_else(|| format!("{id} has log entries up to {seq} but no record"))?;
        if record.revision != *revision || record.name != name::format(id) {
            return Err(format!(
                "the record of {id} is {record:?}; its latest log entry {seq} says revision \
                 {revision}"
            )
            .into());
        }
        records.insert(record.name.clone(), record);
    }

    let published: BTreeMap<&String, &PressRelease> = records
        .iter()
        .filter(|(_, r)| r.state() == State::Published)
        .collect();
    let listed = store.list(&ListQuery::default(), None, usize::MAX)?;
    let listed_names: BTreeSet<&String> = listed.iter().map(|(_, r)| &r.name).collect();
    let published_names: BTreeSet<&String> = published.keys().copied().collect();
    if listed_names != published_names {
        return Err(format!(
            "the published index lists {} releases, the records hold {} published",
            listed_names.len(),
            published_names.len()
        )
        .into());
    }
    for (_, release) in &listed {
        if published.get(&release.name).copied() != Some(release) {
            return Err(format!("the list reads {} unlike its record", release.name).into());
        }
    }
    let total = store.published_total()?;
    if total != published.len() as u64 {
        return Err(format!(
            "the published total is {total}; {} are published",
            published.len()
        )
        .into());
    }
    for channel in CHANNELS {
        let query = ListQuery {
            facets: vec![(Facet::Channel, vec![Facet::Channel.normalize(channel)])],
            ..Default::default()
        };
        let indexed: BTreeSet<String> = store
            .list(&query, None, usize::MAX)?
            .into_iter()
            .map(|(_, r)| r.name)
            .collect();
        let expected: BTreeSet<String> = published
            .values()
            .filter(|r| r.channels.iter().any(|c| c == channel))
            .map(|r| r.name.clone())
            .collect();
        if indexed != expected {
            return Err(format!(
                "the channel index of {channel:?} lists {} releases, {} records have it",
                indexed.len(),
                expected.len()
            )
            .into());
        }
    }
    Ok(StoreSnapshot { records })
}

/// Checks the restarted server against the model and the store snapshot,
/// settles every write that was in flight (landed whole, or not at all),
/// and returns how many of those landed.
async fn verify(
    model: &mut Model,
    snapshot: &StoreSnapshot,
    client: &mut PressReleaseServiceClient<Channel>,
    rng: &mut Rng,
) -> Result<u64, Error> {
    let mut landed = 0;
    let records = &snapshot.records;
    let mut by_headline: HashMap<&str, Vec<&PressRelease>> = HashMap::new();
    for record in records.values() {
        by_headline
            .entry(record.headline.as_str())
            .or_default()
            .push(record);
    }
    let find = |headline: &str| -> Result<Option<PressRelease>, Error> {
        match by_headline.get(headline).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([one]) => Ok(Some((*one).clone())),
            Some(many) => Err(format!("{} releases have headline {headline:?}", many.len()).into()),
        }
    };

    for (name, tracked) in &mut model.releases {
        let stored = records
            .get(name)
            .ok_or_else(|| format!("acknowledged {name} is gone"))?;
        if bytes(stored) == bytes(&tracked.acked) {
            tracked.in_flight = None;
            continue;
        }
        let acked = &tracked.acked;
        let in_flight_landed = match &tracked.in_flight {
            None => false,
            Some(InFlight::Update { headline, body }) => {
                let expected = PressRelease {
                    headline: headline.clone(),
                    body: body.clone(),
                    ..acked.clone()
                };
                stored.revision == acked.revision + 1 && content_of(stored) == content_of(&expected)
            }
            Some(InFlight::Withdraw { reason }) => is_tombstone_of(stored, acked, reason),
        };
        if !in_flight_landed {
            return Err(format!(
                "{name} is not as acknowledged (nor as the change in flight would make it):\n \
                 acknowledged {acked:?}\n stored {stored:?}"
            )
            .into());
        }
        landed += 1;
        model.touched.insert(name.clone());
        tracked.acked = stored.clone();
        tracked.in_flight = None;
    }

    for (headline, pending) in std::mem::take(&mut model.pending_creates) {
        let found = find(&headline)?;
        if let Some(found) = &found {
            if content_of(found) != content_of(&pending.sent) || found.revision != 1 {
                return Err(format!(
                    "a create in flight landed half-written: sent {:?}, stored {found:?}",
                    pending.sent
                )
                .into());
            }
            landed += 1;
        }
        // Retried with its request id, it is created once: the one that
        // landed is returned, or it is created now.
        let retry = CreatePressReleaseRequest {
            press_release: Some(pending.sent.clone()),
            request_id: pending.request_id,
        };
        let release = client.create_press_release(retry).await?.into_inner();
        match &found {
            Some(found) if bytes(found) != bytes(&release) => {
                return Err(format!(
                    "the retried create returned {release:?}, not the one that landed: {found:?}"
                )
                .into());
            }
            None if content_of(&release) != content_of(&pending.sent) => {
                return Err(format!("the retried create returned {release:?}").into());
            }
            _ => {}
        }
        model.touched.insert(release.name.clone());
        model.releases.insert(
            release.name.clone(),
            Tracked {
                owner: pending.owner,
                acked: release,
                in_flight: None,
            },
        );
    }

    for (tag, (owner, items)) in std::mem::take(&mut model.pending_imports) {
        let mut found = Vec::new();
        for item in &items {
            if let Some(record) = find(&item.headline)? {
                if content_of(&record) != content_of(item) {
                    return Err(format!(
                        "an import item landed half-written: sent {item:?}, stored {record:?}"
                    )
                    .into());
                }
                found.push(record);
            }
        }
        if !found.is_empty() && found.len() != items.len() {
            return Err(format!(
                "import {tag} in flight landed in part: {} of {} items",
                found.len(),
                items.len()
            )
            .into());
        }
        landed += u64::from(!found.is_empty());
        for record in found {
            model.touched.insert(record.name.clone());
            model.releases.insert(
                record.name.clone(),
                Tracked {
                    owner,
                    acked: record,
                    in_flight: None,
                },
            );
        }
    }

    for (owner, item) in std::mem::take(&mut model.imported) {
        let record = find(&item.headline)?
            .ok_or_else(|| format!("acknowledged import item {:?} is gone", item.headline))?;
        if content_of(&record) != content_of(&item) || record.revision != 1 {
            return Err(format!("import item sent as {item:?} is stored as {record:?}").into());
        }
        model.touched.insert(record.name.clone());
        model.releases.insert(
            record.name.clone(),
            Tracked {
                owner,
                acked: record,
                in_flight: None,
            },
        );
    }

    let unknown: Vec<&String> = records
        .keys()
        .filter(|name| !model.releases.contains_key(*name))
        .collect();
    if !unknown.is_empty() {
        return Err(format!("the store holds releases nobody sent: {unknown:?}").into());
    }

    // Through the API: List reads every published release, each exactly as
    // acknowledged; Get reads back what changed and a sample of the rest.
    let listed: BTreeMap<String, PressRelease> = list_all(client)
        .await
        .map_err(|s| format!("List after the restart: {s:?}"))?
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect();
    let live: BTreeMap<&String, &PressRelease> = model
        .releases
        .iter()
        .filter(|(_, t)| t.acked.state() != State::Withdrawn)
        .map(|(name, t)| (name, &t.acked))
        .collect();
    if listed.len() != live.len() {
        return Err(format!(
            "List returns {} releases; {} are known and not withdrawn",
            listed.len(),
            live.len()
        )
        .into());
    }
    for (name, acked) in &live {
        let listed = listed
            .get(*name)
            .ok_or_else(|| format!("List misses {name}"))?;
        if bytes(listed) != bytes(acked) {
            return Err(format!("List returns {listed:?}, acknowledged was {acked:?}").into());
        }
    }
    let mut to_get = std::mem::take(&mut model.touched);
    let names: Vec<&String> = model.releases.keys().collect();
    for _ in 0..20.min(names.len()) {
        let at = rng.below(names.len() as u64) as usize;
        to_get.insert(names[at].clone());
    }
    for name in to_get {
        let Some(tracked) = model.releases.get(&name) else {
            continue;
        };
        let got = client
            .get_press_release(GetPressReleaseRequest { name: name.clone() })
            .await;
        match (got, tracked.acked.state()) {
            (Ok(release), state) if state != State::Withdrawn => {
                if bytes(release.get_ref()) != bytes(&tracked.acked) {
                    return Err(format!(
                        "Get returns {:?}, acknowledged was {:?}",
                        release.get_ref(),
                        tracked.acked
                    )
                    .into());
                }
            }
            (Err(status), State::Withdrawn) if status.code() == Code::NotFound => {}
            (got, _) => {
                return Err(
                    format!("Get {name} returned {got:?}; expected {:?}", tracked.acked).into(),
                );
            }
        }
    }
    Ok(landed)
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

/// A press release to create, unique by its headline.
fn content(rng: &mut Rng, tag: &str) -> PressRelease {
    let channels = CHANNELS
        .iter()
        .filter(|_| rng.chance(50))
        .map(|c| c.to_string())
        .collect();
    let country = COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize];
    PressRelease {
        headline: format!("Crash test {tag}"),
        body: format!("{tag}: {}", words(rng)),
        body_format: BodyFormat::PlainText as i32,
        language: "en".into(),
        channels,
        keywords: vec![tag.to_string()],
        dateline: Some(Dateline {
            country_code: country.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Some text: 20 to 800 words.
fn words(rng: &mut Rng) -> String {
    let count = rng.range(20, 800);
    let mut text = String::new();
    for i in 0..count {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    text
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

fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

/// Starts the real binary on `data_dir`.
async fn start(data_dir: &Path) -> Result<Binary, Error> {
    let data_dir = data_dir.display().to_string();
    tokio::task::spawn_blocking(move || {
        Binary::serve(&[
            "--data-dir",
            &data_dir,
            "--cache-mb",
            "16",
            "--shutdown-grace",
            "2s",
        ])
    })
    .await?
}

/// Stops the server with SIGTERM (it must exit cleanly), then checks the
/// store it leaves.
async fn stop_cleanly(server: Binary, dir: &Path) -> Result<(), Error> {
    let logs = Arc::clone(&server.logs);
    let status = tokio::task::spawn_blocking(move || server.terminate()).await??;
    if !status.success() {
        let logs = logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n");
        return Err(format!("SIGTERM ended the server with {status}; log:\n{logs}").into());
    }
    let store_dir = data_dir(dir).join("store");
    tokio::task::spawn_blocking(move || check_store(&store_dir))
        .await?
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
async fn kill_during_start(dir: &Path, after: Duration) -> Result<(), Error> {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pressroom"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--cache-mb", "16", "--data-dir"])
        .arg(data_dir(dir))
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
