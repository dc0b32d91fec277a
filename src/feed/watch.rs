//! The task behind one watch stream. It reads the change log in chunks from
//! its position up to the tail's head (recent changes from the shared tail,
//! older ones from the store), turns entries into events (see
//! [`Selection`]), and waits on its consumer's bounded buffer; when it has
//! caught up it waits for the head to move (a stream with a query, for a
//! change that may concern it). It sends a Progress once caught up and
//! whenever nothing was sent for the progress interval.

use std::{collections::VecDeque, sync::Arc};

use tokio::{sync::mpsc, time::Instant};
use uuid::Uuid;

use super::{
    Shared, WatchItem, WatcherStats,
    cursor::Cursor,
    selection::{Indexed, Selection, Source, Version},
    tail::TailEntry,
};
use crate::{
    domain::DomainError,
    proto::v1::{
        EventType, PressReleaseEvent, Progress, WatchPressReleasesResponse,
        watch_press_releases_response::Kind,
    },
    store::{EncodedRelease, LogEntry, StoreError},
    telemetry,
};

/// Most log entries read in one go.
const CHUNK_ENTRIES: usize = 512;
/// Most events produced in one go (held while the consumer is slow).
const CHUNK_EVENTS: usize = 32;

pub(super) struct Reader {
    pub(super) shared: Arc<Shared>,
    pub(super) selection: Selection,
    pub(super) start: u64,
    pub(super) sender: mpsc::Sender<WatchItem>,
    pub(super) stats: Arc<WatcherStats>,
}

/// Why a stream stopped.
enum Stop {
    /// The consumer went away.
    Gone,
    /// The server is shutting down.
    Shutdown,
}

impl Reader {
    pub(super) async fn run(self) {
        let ended = self.follow().await;
        match ended {
            Err(Stop::Gone) => {}
            Err(Stop::Shutdown) => {
                let _ = self.sender.try_send(Err(DomainError::Unavailable(
                    "the server is shutting down; resume from your last cursor".into(),
                )));
            }
            Ok(error) => {
                let _ = self.sender.try_send(Err(error));
            }
        }
        self.shared.watchers.unregister(&self.stats);
    }

    /// Streams until the consumer leaves, the server stops, or an error
    /// (which is returned, to end the stream with).
    async fn follow(&self) -> Result<DomainError, Stop> {
        let mut head = self.shared.tail_head.clone();
        let interval = self.shared.settings.progress_interval;
        let mut position = self.start;
        // Entries read but not yet turned into events (a chunk stops at
        // CHUNK_EVENTS events).
        let mut pending = VecDeque::new();
        // What the search index said of the entries in `pending`.
        let mut indexed = Indexed::default();
        // Records read with history entries in `pending` (see `read_chunk`).
        let mut records = Records::new();
        let mut caught_up = false;
        let mut last_sent = Instant::now();
        // A stream with a query, once live, sleeps through the changes that
        // cannot concern it (see `queries`).
        let mut wake = self
            .selection
            .group()
            .map(|group| (group.relevant(), self.shared.watchers.queries.everyone()));
        loop {
            // What the tail has taken in: all this stream can read now.
            let readable = *head.borrow_and_update();
            if position < readable {
                let chunk = match self
                    .read_chunk(&mut pending, &mut indexed, &mut records, position, readable)
                    .await
                {
                    Ok(chunk) => chunk,
                    Err(error) => return Ok(error.into()),
                };
                for event in chunk.events {
                    self.send(Kind::Event(event)).await?;
                    last_sent = Instant::now();
                }
                position = chunk.position;
                self.stats
                    .position
                    .store(position, std::sync::atomic::Ordering::Relaxed);
                if last_sent.elapsed() >= interval {
                    // Caught up again if this chunk reached what the stream
                    // can read (entries none of which were for it).
                    let up_to_date = caught_up && position >= readable;
                    self.send(self.progress(position, up_to_date)).await?;
                    last_sent = Instant::now();
                }
                tokio::task::yield_now().await;
                continue;
            }
            // Caught up the first time means with everything flushed, not
            // just with what the tail has taken in so far (it follows a
            // moment behind); after that, a stream that has read all the
            // tail offers is caught up.
            if !caught_up && self.at_head(position) {
                caught_up = true;
                self.send(self.progress(position, true)).await?;
                last_sent = Instant::now();
            }
            if caught_up && let Some((relevant, everyone)) = wake.as_mut() {
                tokio::select! {
                    changed = relevant.changed() => {
                        if changed.is_err() {
                            return Err(Stop::Shutdown);
                        }
                    }
                    changed = everyone.changed() => {
                        if changed.is_err() {
                            return Err(Stop::Shutdown);
                        }
                    }
                    () = tokio::time::sleep_until(last_sent + interval) => {
                        // Nothing announced since this stream last looked
                        // concerned it: pass over it unread. (The position
                        // announced is read first: a wake-up for anything up
                        // to it was sent before it was stored.)
                        let announced = self.shared.watchers.queries.announced();
                        let untouched = !relevant.has_changed().unwrap_or(true)
                            && !everyone.has_changed().unwrap_or(true);
                        let passed = announced.min(*head.borrow());
                        if untouched && pending.is_empty() && passed > position {
                            position = passed;
                            self.stats
                                .position
                                .store(position, std::sync::atomic::Ordering::Relaxed);
                        }
                        // Else read past what came meanwhile first: the
                        // progress then reports the position reached (sent
                        // after the next chunk, as the interval has passed).
                        if *head.borrow() <= position {
                            self.send(self.progress(position, caught_up)).await?;
                            last_sent = Instant::now();
                        }
                    }
                    () = self.shared.stop.cancelled() => return Err(Stop::Shutdown),
                    () = self.sender.closed() => return Err(Stop::Gone),
                }
                continue;
            }
            tokio::select! {
                changed = head.changed() => {
                    if changed.is_err() {
                        return Err(Stop::Shutdown);
                    }
                }
                () = tokio::time::sleep_until(last_sent + interval) => {
                    self.send(self.progress(position, caught_up)).await?;
                    last_sent = Instant::now();
                }
                () = self.shared.stop.cancelled() => return Err(Stop::Shutdown),
                () = self.sender.closed() => return Err(Stop::Gone),
            }
        }
    }

    /// Turns the entries after `position`, up to `bound`, into events until
    /// a chunk's worth; entries read but not used wait in `pending` (with
    /// what the search index said of them in `indexed`).
    async fn read_chunk(
        &self,
        pending: &mut VecDeque<LogEntry>,
        indexed: &mut Indexed,
        records: &mut Records,
        position: u64,
        bound: u64,
    ) -> Result<Chunk, StoreError> {
        let shared = &*self.shared;
        if pending.is_empty() {
            match shared.tail.range(position, bound, CHUNK_ENTRIES) {
                Some(recent) => {
                    pending.extend(recent.iter().map(|t| t.entry.clone()));
                    records.clear();
                    *indexed = Indexed::default();
                }
                None => {
                    pending.extend(
                        shared
                            .store
                            .read_log(position, bound, CHUNK_ENTRIES)
                            .await?,
                    );
                    // History older than the tail: the search index says
                    // which of these releases match, rather than this stream
                    // analysing each one (asked before the records are read,
                    // so that its answer is never older than they are).
                    *indexed = self.look_up(pending);
                    // The records, read in one go (on a network store, one
                    // round trip per chunk rather than per entry); one is
                    // kept for its entry only if it is that entry's version.
                    records.clear();
                    if let Some(last) = pending.back().map(|entry| entry.seq) {
                        for (entry, release) in shared
                            .store
                            .read_changes(position, last, pending.len(), true)
                            .await?
                        {
                            if let Some(release) = release.filter(|r| r.revision == entry.revision)
                            {
                                records.insert(entry.seq, Arc::new(release));
                            }
                        }
                    }
                }
            }
        }
        let store_id = shared.store.store_id();
        let mut chunk = Chunk {
            events: Vec::new(),
            position,
        };
        while let Some(entry) = pending.pop_front() {
            chunk.position = entry.seq;
            if let Some((kind, version)) = self
                .selection
                .event_for(
                    &WithRecords { shared, records },
                    self.start,
                    &entry,
                    indexed,
                )
                .await?
            {
                let highlights = match kind {
                    EventType::Created | EventType::Updated | EventType::Published => {
                        self.selection.highlights(&version)
                    }
                    _ => Vec::new(),
                };
                chunk
                    .events
                    .push(version.into_event(store_id, &entry, kind, highlights));
                if chunk.events.len() >= CHUNK_EVENTS {
                    break;
                }
            }
        }
        Ok(chunk)
    }

    /// Asks the search index which releases of these entries match the
    /// stream's query (nothing to ask without a query; on failure the
    /// stream matches them itself).
    fn look_up(&self, entries: &VecDeque<LogEntry>) -> Indexed {
        let Some((group, ids)) = self.selection.to_look_up(entries) else {
            return Indexed::default();
        };
        if ids.is_empty() {
            return Indexed::default();
        }
        match self.shared.search.matching_among(group.parsed(), &ids) {
            Ok((position, matching)) => {
                self.shared.watchers.queries.looked_up(ids.len());
                Indexed::new(position, &ids, matching)
            }
            Err(error) => {
                tracing::warn!(error = %telemetry::chain(&error), "the search index could not answer for a watch; matching in the stream");
                Indexed::default()
            }
        }
    }

    /// Whether `position` has reached every flushed change (the tail may be
    /// a moment behind the writer).
    fn at_head(&self, position: u64) -> bool {
        position >= *self.shared.durable_head.borrow()
    }

    fn progress(&self, position: u64, caught_up: bool) -> Kind {
        Kind::Progress(Progress {
            cursor: Cursor {
                store_id: self.shared.store.store_id(),
                seq: position,
            }
            .encode(),
            caught_up,
        })
    }

    /// Hands a message to the consumer's buffer, waiting while it is full.
    async fn send(&self, kind: Kind) -> Result<(), Stop> {
        let item: WatchItem = Ok(WatchPressReleasesResponse { kind: Some(kind) });
        let permit = tokio::select! {
            permit = self.sender.reserve() => permit.map_err(|_| Stop::Gone)?,
            () = self.shared.stop.cancelled() => return Err(Stop::Shutdown),
        };
        self.stats.queued(&item);
        permit.send(item);
        Ok(())
    }
}

struct Chunk {
    events: Vec<PressReleaseEvent>,
    /// The last entry read.
    position: u64,
}

/// Records read with a chunk of history, by the sequence number of the
/// entry whose version each is.
type Records = std::collections::HashMap<u64, Arc<crate::proto::v1::PressRelease>>;

/// The shared state, with the records read with a chunk of history: an
/// entry's own version among them needs no read of the store.
struct WithRecords<'a> {
    shared: &'a Shared,
    records: &'a Records,
}

impl Source for WithRecords<'_> {
    async fn entry(&self, seq: u64) -> Result<Option<LogEntry>, StoreError> {
        self.shared.entry(seq).await
    }

    fn recent(&self, seq: u64) -> Option<Arc<TailEntry>> {
        self.shared.recent(seq)
    }

    async fn current(&self, entry: &LogEntry) -> Result<Option<Version>, StoreError> {
        let Some(release) = self.records.get(&entry.seq) else {
            return self.shared.current(entry).await;
        };
        let later = Uuid::from_slice(&entry.release_id)
            .ok()
            .and_then(|id| self.shared.tail.latest(&id))
            .is_some_and(|latest| latest > entry.seq);
        Ok((!later).then(|| Version {
            release: Arc::clone(release),
            recent: None,
        }))
    }
}

impl Source for Shared {
    async fn entry(&self, seq: u64) -> Result<Option<LogEntry>, StoreError> {
        if let Some(recent) = self.tail.entry(seq) {
            return Ok(Some(recent.entry.clone()));
        }
        Ok(self
            .store
            .read_log(seq.saturating_sub(1), seq, 1)
            .await?
            .pop())
    }

    fn recent(&self, seq: u64) -> Option<Arc<TailEntry>> {
        self.tail.entry(seq)
    }

    async fn current(&self, entry: &LogEntry) -> Result<Option<Version>, StoreError> {
        let Some(found) = self.in_tail(entry)? else {
            return Ok(None);
        };
        let release = match found.usable_copy() {
            Some(release) => Some(Arc::clone(release)),
            None => self.store.get(&found.id).await?.map(Arc::new),
        };
        let recent = found.recent;
        Ok(release
            .filter(|release| release.revision == entry.revision)
            .map(|release| Version { release, recent }))
    }
}

impl Shared {
    /// Like [`Source::current`], the release as its encoded bytes (as the
    /// store keeps them; the tail's decoded copy is encoded).
    pub(super) async fn current_encoded(
        &self,
        entry: &LogEntry,
    ) -> Result<Option<EncodedRelease>, StoreError> {
        let Some(found) = self.in_tail(entry)? else {
            return Ok(None);
        };
        let release = match found.usable_copy() {
            Some(release) => Some(EncodedRelease {
                state: release.state,
                revision: release.revision,
                bytes: prost::Message::encode_to_vec(release.as_ref()).into(),
            }),
            None => self.store.get_encoded(&found.id).await?,
        };
        Ok(release.filter(|release| release.revision == entry.revision))
    }

    /// What the tail knows of a log entry's release, for [`Source::current`]
    /// and [`Shared::current_encoded`]: `None` when the tail has seen a later
    /// change of the release (a later entry speaks for it).
    fn in_tail(&self, entry: &LogEntry) -> Result<Option<InTail>, StoreError> {
        let Ok(id) = Uuid::from_slice(&entry.release_id) else {
            return Err(StoreError::Corrupt {
                key: format!("log entry {}", entry.seq),
            });
        };
        if self
            .tail
            .latest(&id)
            .is_some_and(|latest| latest > entry.seq)
        {
            return Ok(None);
        }
        // The tail's copy will do only while the tail has seen every flushed
        // change; otherwise a later change it has not read yet may exist, and
        // the store says.
        let complete = *self.tail_head.borrow() >= *self.durable_head.borrow();
        let recent = self
            .tail
            .entry(entry.seq)
            .filter(|recent| recent.entry.release_id == entry.release_id);
        Ok(Some(InTail {
            id,
            recent,
            complete,
        }))
    }
}

/// A log entry's release as the tail knows it.
struct InTail {
    id: Uuid,
    recent: Option<Arc<TailEntry>>,
    /// The tail had read every durable change when asked.
    complete: bool,
}

impl InTail {
    /// The tail's copy of the release, if it may stand for the store's.
    fn usable_copy(&self) -> Option<&Arc<crate::proto::v1::PressRelease>> {
        self.recent
            .as_ref()
            .and_then(|recent| recent.release.as_ref())
            .filter(|_| self.complete)
    }
}
