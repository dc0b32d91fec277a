//! The indexer: a task that follows the change log into the index. For
//! each entry that is still its release's latest, it replaces the release's
//! document (or deletes it, when the release is no longer published). It
//! commits at most every [`COMMIT_INTERVAL`] (or every [`COMMIT_EVERY`]
//! changes while catching up), with the log position in the commit payload,
//! and reloads the searcher so that a write is searchable within about a
//! second of being acknowledged. During a bulk load (writes faster than
//! [`BUSY_RATE`]) it indexes at most [`BUSY_INDEX_RATE`] and lets the index
//! lag, so that the writes keep the cores; it catches up on its own once
//! the load ends.

use std::{
    sync::{Arc, PoisonError, atomic::Ordering},
    time::{Duration, Instant},
};

use tantivy::IndexWriter;
use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{SearchError, SearchIndex, Status, payload};
use crate::{
    proto::v1::{PressRelease, press_release::State},
    store::{LogEntry, Store, Writer},
    telemetry,
};

/// Longest a change waits to be committed once read.
const COMMIT_INTERVAL: Duration = Duration::from_millis(500);
/// Longest a durable change waits to be read while fewer than a chunk wait.
const READ_DELAY: Duration = Duration::from_millis(100);
/// Changes per second above which writes count as a bulk load: the indexer
/// then indexes at most [`BUSY_INDEX_RATE`] and lags, catching up once the
/// load ends. Ordinary rates (≤ 500/s) are indexed as they come.
const BUSY_RATE: f64 = 1_000.0;
/// Changes per second indexed during a bulk load.
const BUSY_INDEX_RATE: f64 = 500.0;
/// The longest pause between two chunks.
const MAX_PAUSE: Duration = Duration::from_secs(2);
/// While catching up, commit after this many changes.
const COMMIT_EVERY: usize = 20_000;
/// Log entries read in one go.
const CHUNK: usize = 1_000;
/// Memory tantivy may use for indexing.
const WRITER_HEAP: usize = 64 * 1024 * 1024;

/// Starts the indexer after log position `start`; it stops when `stop` is
/// cancelled, committing what it has. It reads the store (changes with
/// their records, a chunk at a time), and hands them to tantivy on the
/// blocking pool.
pub fn spawn(
    index: SearchIndex,
    start: u64,
    store: Arc<dyn Store>,
    writer: &Writer,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, SearchError> {
    // One indexing thread: the server's other work needs the other cores.
    let tantivy_writer: IndexWriter = index.shared.index.writer_with_num_threads(1, WRITER_HEAP)?;
    let indexer = Indexer {
        index,
        writer: tantivy_writer,
        store,
        head: writer.durable_head(),
        position: start,
        committed: start,
        pending: 0,
        last_commit: Instant::now(),
    };
    Ok(tokio::spawn(indexer.run(stop)))
}

struct Indexer {
    index: SearchIndex,
    writer: IndexWriter,
    store: Arc<dyn Store>,
    head: watch::Receiver<u64>,
    /// Last log entry applied to the writer.
    position: u64,
    /// Last log entry in a commit.
    committed: u64,
    /// Documents changed since the last commit.
    pending: usize,
    last_commit: Instant,
}

/// What the indexer does next.
#[derive(Clone, Copy)]
enum Next {
    /// Read the log up to this position.
    Read(u64),
    /// Commit what was read.
    Commit,
    /// Wait this long (or for a commit).
    Wait(Duration),
}

impl Indexer {
    async fn run(mut self, stop: CancellationToken) {
        // When the oldest change not read yet was first seen.
        let mut unread_since: Option<Instant> = None;
        // When the last chunk was read.
        let mut last_read: Option<Instant> = None;
        while !stop.is_cancelled() {
            let durable = *self.head.borrow_and_update();
            let next = if self.position < durable {
                // Changes are read in batches: a chunk's worth, or what
                // came within READ_DELAY (fewer hand-offs and log scans
                // while writes stream in).
                let since = *unread_since.get_or_insert_with(Instant::now);
                match READ_DELAY.checked_sub(since.elapsed()) {
                    Some(wait) if !wait.is_zero() && durable - self.position < CHUNK as u64 => {
                        Next::Wait(wait)
                    }
                    _ => {
                        unread_since = None;
                        Next::Read(durable)
                    }
                }
            } else if self.committed < self.position {
                match COMMIT_INTERVAL.checked_sub(self.last_commit.elapsed()) {
                    Some(wait) if !wait.is_zero() => Next::Wait(wait),
                    _ => Next::Commit,
                }
            } else {
                Next::Wait(Duration::from_secs(3600))
            };
            let wait = match next {
                Next::Wait(wait) => wait,
                work => {
                    let reading = matches!(work, Next::Read(_));
                    let started = Instant::now();
                    let from = self.position;
                    let read = match work {
                        Next::Read(durable) => Some(
                            self.store
                                .read_changes(self.position, durable, CHUNK, true)
                                .await,
                        ),
                        _ => None,
                    };
                    let Some((indexer, result)) = self
                        .blocking(move |me| match read {
                            Some(changes) => me.take(changes?),
                            None => me.commit(),
                        })
                        .await
                    else {
                        return;
                    };
                    self = indexer;
                    match result {
                        Ok(()) if reading => {
                            // Writes streaming in faster than ordinary
                            // rates: feed tantivy (whose own thread does
                            // the work) no faster than BUSY_INDEX_RATE,
                            // leaving the cores to the writes, and catch
                            // up when they calm down.
                            let took = started.elapsed();
                            let read = self.position.saturating_sub(from);
                            let since = last_read.map_or(READ_DELAY, |at| started - at);
                            last_read = Some(started);
                            let budget = Duration::from_secs_f64(read as f64 / BUSY_INDEX_RATE);
                            if read as f64 > BUSY_RATE * since.as_secs_f64() && budget > took {
                                (budget - took).min(MAX_PAUSE)
                            } else {
                                continue;
                            }
                        }
                        Ok(()) => continue,
                        Err(error) => {
                            tracing::error!(error = %telemetry::chain(&error), "search indexing failed; retrying");
                            self = match self.blocking(Indexer::restart).await {
                                Some((indexer, _)) => indexer,
                                None => return,
                            };
                            Duration::from_secs(1)
                        }
                    }
                }
            };
            let paused = matches!(next, Next::Read(_));
            tokio::select! {
                _ = self.head.changed(), if !paused => {}
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => {}
            }
        }
        if let Some((indexer, Err(error))) = self.blocking(Indexer::commit).await {
            tracing::error!(error = %telemetry::chain(&error), "final search index commit failed");
            drop(indexer);
        }
        tracing::debug!("search indexer stopped");
    }

    /// Runs `work` on the blocking pool; `None` if it panicked.
    async fn blocking(
        mut self,
        work: impl FnOnce(&mut Self) -> Result<(), SearchError> + Send + 'static,
    ) -> Option<(Self, Result<(), SearchError>)> {
        match tokio::task::spawn_blocking(move || {
            let result = work(&mut self);
            (self, result)
        })
        .await
        {
            Ok(done) => Some(done),
            Err(error) => {
                tracing::error!(%error, "the search indexer failed");
                None
            }
        }
    }

    /// Takes a chunk of the log into the writer.
    fn take(&mut self, changes: Vec<(LogEntry, Option<PressRelease>)>) -> Result<(), SearchError> {
        for (entry, release) in changes {
            self.apply(&entry, release)?;
            self.position = entry.seq;
        }
        if self.pending >= COMMIT_EVERY {
            self.commit()?;
        }
        Ok(())
    }

    /// Drops what was not committed, to start again from the last commit.
    fn restart(&mut self) -> Result<(), SearchError> {
        self.writer.rollback()?;
        self.position = self.committed;
        self.pending = 0;
        Ok(())
    }

    /// Brings the release of `entry` up to date in the index, unless a later
    /// entry will.
    fn apply(
        &mut self,
        entry: &LogEntry,
        release: Option<PressRelease>,
    ) -> Result<(), SearchError> {
        let Ok(id) = Uuid::from_slice(&entry.release_id) else {
            return Ok(());
        };
        let Some(release) = release else {
            return Ok(());
        };
        if release.revision != entry.revision {
            return Ok(());
        }
        let fields = &self.index.shared.fields;
        // A release's first entry has no document to replace (a delete
        // costs a term lookup in every segment at the next commit).
        if entry.prev_seq != 0 {
            self.writer.delete_term(fields.id_term(&id));
        }
        if release.state() == State::Published {
            self.writer.add_document(fields.document(&id, &release))?;
        }
        self.pending += 1;
        Ok(())
    }

    /// Commits the documents with the log position, and makes them
    /// searchable.
    fn commit(&mut self) -> Result<(), SearchError> {
        if self.committed == self.position && self.pending == 0 {
            return Ok(());
        }
        let store_id = self.store.store_id();
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&payload(store_id, self.position));
        prepared.commit()?;
        self.index.shared.reader.reload()?;
        self.committed = self.position;
        self.pending = 0;
        self.last_commit = Instant::now();
        self.index
            .shared
            .committed
            .store(self.committed, Ordering::Release);
        let mut status = self
            .index
            .shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Status::Rebuilding { target, .. } = *status {
            *status = if self.committed >= target {
                tracing::info!(position = self.committed, "search index rebuilt");
                Status::Ready
            } else {
                Status::Rebuilding {
                    indexed: self.committed,
                    target,
                }
            };
        }
        Ok(())
    }
}
