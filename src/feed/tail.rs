//! The recent tail of the change log, read once for every stream. A single
//! follower task reads each newly flushed entry and its record from the
//! store and keeps the last [`CAPACITY`] in memory; live streams read them
//! from here, so a thousand watchers cost one store read per change, not a
//! thousand. Streams replaying older history read the store directly.
//!
//! Streams follow the tail's head (what the follower has taken in), which
//! never passes the writer's durable head, so only flushed changes reach a
//! consumer. While no stream is open the follower keeps the entries
//! without their records (no reads, no memory for nobody); a stream that
//! meets such an entry reads the record from the store.
//!
//! When streams with text queries are open, the follower also matches each
//! published version it reads against all of their queries at once (see
//! [`OpenQueries`]) and keeps the outcome beside the record, with the
//! highlights each query's streams asked for.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError, RwLock},
};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    WatcherRegistry,
    queries::{Matched, OpenQueries, QueryGroup},
};
use crate::{
    proto::v1::{Highlight, PressRelease, press_release::State},
    store::{LogEntry, Store, StoreError},
    telemetry,
};

/// How many recent changes are kept.
pub const CAPACITY: usize = 4_096;
/// Entries the follower reads from the store in one go.
const CHUNK: usize = 1_024;

/// A change and its release as it was read right after the change.
pub(super) struct TailEntry {
    pub(super) entry: LogEntry,
    /// `None` if the release was not read (no stream was open) or is gone:
    /// the store has the answer.
    pub(super) release: Option<Arc<PressRelease>>,
    /// Which open queries the release matched, if it was read, published,
    /// and any stream had a query.
    pub(super) matched: Option<Matched>,
    /// Highlights made for the release, per query group.
    highlights: Mutex<Vec<(u64, Arc<[Highlight]>)>>,
}

impl TailEntry {
    fn new(entry: LogEntry, release: Option<Arc<PressRelease>>, matched: Option<Matched>) -> Self {
        Self {
            entry,
            release,
            matched,
            highlights: Mutex::default(),
        }
    }

    /// The highlights of `group`'s words in `release` (this entry's version
    /// of it), made once for all the group's streams.
    pub(super) fn highlights(
        &self,
        group: &QueryGroup,
        release: &PressRelease,
    ) -> Arc<[Highlight]> {
        let mut made = self
            .highlights
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, highlights)) = made.iter().find(|(id, _)| *id == group.id()) {
            return Arc::clone(highlights);
        }
        let highlights: Arc<[Highlight]> = group.highlights(release).into();
        made.push((group.id(), Arc::clone(&highlights)));
        highlights
    }
}

/// The recent changes.
#[derive(Default)]
pub(super) struct Tail {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: VecDeque<Arc<TailEntry>>,
    /// The latest sequence number of each release in `entries`.
    latest: HashMap<Uuid, u64>,
}

impl Tail {
    /// The entries with `after < seq <= up_to`, at most `limit`, if the tail
    /// holds all of them (`None` when `after + 1` is older than the tail).
    pub(super) fn range(
        &self,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> Option<Vec<Arc<TailEntry>>> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let first = inner.entries.front()?.entry.seq;
        if after + 1 < first {
            return None;
        }
        let skip = usize::try_from(after + 1 - first).ok()?;
        Some(
            inner
                .entries
                .iter()
                .skip(skip)
                .take_while(|t| t.entry.seq <= up_to)
                .take(limit)
                .cloned()
                .collect(),
        )
    }

    /// One entry, if the tail holds it.
    pub(super) fn entry(&self, seq: u64) -> Option<Arc<TailEntry>> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let first = inner.entries.front()?.entry.seq;
        let at = usize::try_from(seq.checked_sub(first)?).ok()?;
        inner.entries.get(at).cloned()
    }

    /// The latest change of a release the tail holds.
    pub(super) fn latest(&self, id: &Uuid) -> Option<u64> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner.latest.get(id).copied()
    }

    /// Takes in new entries; returns them as the tail holds them.
    fn append(&self, new: Vec<TailEntry>) -> Vec<Arc<TailEntry>> {
        let new: Vec<Arc<TailEntry>> = new.into_iter().map(Arc::new).collect();
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        for tail_entry in &new {
            if let Ok(id) = Uuid::from_slice(&tail_entry.entry.release_id) {
                inner.latest.insert(id, tail_entry.entry.seq);
            }
            inner.entries.push_back(Arc::clone(tail_entry));
        }
        while inner.entries.len() > CAPACITY {
            let Some(old) = inner.entries.pop_front() else {
                break;
            };
            if let Ok(id) = Uuid::from_slice(&old.entry.release_id)
                && inner.latest.get(&id) == Some(&old.entry.seq)
            {
                inner.latest.remove(&id);
            }
        }
        new
    }
}

/// Follows the durable head into the tail until `stop`; publishes how far
/// it has read on `tail_head`.
pub(super) async fn follow(
    tail: Arc<Tail>,
    store: Arc<dyn Store>,
    mut durable_head: watch::Receiver<u64>,
    tail_head: watch::Sender<u64>,
    watchers: WatcherRegistry,
    stop: CancellationToken,
) {
    let mut position = *tail_head.borrow();
    loop {
        let durable = *durable_head.borrow_and_update();
        if position < durable {
            let with_records = watchers.reads_records();
            match read(&*store, &watchers.queries, position, durable, with_records).await {
                Ok(entries) => {
                    if let Some(last) = entries.last() {
                        position = last.entry.seq;
                    }
                    let appended = tail.append(entries);
                    tail_head.send_replace(position);
                    watchers.queries.announce(&appended);
                    continue;
                }
                Err(error) => {
                    tracing::error!(error = %telemetry::chain(&error), "reading the change log's tail failed");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                () = stop.cancelled() => break,
            }
        }
        tokio::select! {
            changed = durable_head.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            () = stop.cancelled() => break,
        }
    }
}

/// Reads a chunk of the log (with the records when someone watches), and
/// matches what it read against the open queries (on the blocking pool:
/// that is CPU work).
async fn read(
    store: &dyn Store,
    queries: &OpenQueries,
    after: u64,
    durable: u64,
    with_records: bool,
) -> Result<Vec<TailEntry>, StoreError> {
    let changes = store
        .read_changes(after, durable, CHUNK, with_records)
        .await?;
    if !with_records || !queries.any() {
        return Ok(match_changes(changes, queries));
    }
    let queries = queries.clone();
    tokio::task::spawn_blocking(move || match_changes(changes, &queries))
        .await
        .map_err(StoreError::engine)
}

fn match_changes(
    changes: Vec<(LogEntry, Option<PressRelease>)>,
    queries: &OpenQueries,
) -> Vec<TailEntry> {
    changes
        .into_iter()
        .map(|(entry, release)| {
            let release = release.map(Arc::new);
            // Only the version this change made can be matched for it (a
            // later change may already have replaced the record read).
            let matched = release
                .as_ref()
                .filter(|r| r.revision == entry.revision && r.state() == State::Published)
                .and_then(|r| queries.match_release(r));
            TailEntry::new(entry, release, matched)
        })
        .collect()
}
