//! The task behind one watch stream. It reads the change log in chunks from
//! its position up to the durable head, turns entries into events (see
//! [`Selection`]), and waits on its consumer's bounded buffer; when it has
//! caught up it waits for the head to move. It sends a Progress once caught
//! up and whenever nothing was sent for the progress interval.

use std::sync::Arc;

use tokio::{sync::mpsc, time::Instant};

use super::{Shared, WatchItem, WatcherStats, cursor::Cursor, selection::Selection};
use crate::{
    domain::DomainError,
    proto::v1::{
        PressReleaseEvent, Progress, WatchPressReleasesResponse,
        watch_press_releases_response::Kind,
    },
    store::{Store, StoreError},
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
        let mut head = self.shared.durable_head.clone();
        let interval = self.shared.settings.progress_interval;
        let mut position = self.start;
        let mut caught_up = false;
        let mut last_sent = Instant::now();
        loop {
            let durable = *head.borrow_and_update();
            if position < durable {
                let chunk = match self.read_chunk(position, durable) {
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
                    self.send(self.progress(position, false)).await?;
                    last_sent = Instant::now();
                }
                tokio::task::yield_now().await;
                continue;
            }
            if !caught_up {
                caught_up = true;
                self.send(self.progress(position, true)).await?;
                last_sent = Instant::now();
            }
            tokio::select! {
                changed = head.changed() => {
                    if changed.is_err() {
                        return Err(Stop::Shutdown);
                    }
                }
                () = tokio::time::sleep_until(last_sent + interval) => {
                    self.send(self.progress(position, true)).await?;
                    last_sent = Instant::now();
                }
                () = self.shared.stop.cancelled() => return Err(Stop::Shutdown),
                () = self.sender.closed() => return Err(Stop::Gone),
            }
        }
    }

    /// Reads entries after `position`, up to `durable`, until a chunk's
    /// worth of entries or events.
    fn read_chunk(&self, position: u64, durable: u64) -> Result<Chunk, StoreError> {
        let store: &dyn Store = &*self.shared.store;
        let store_id = store.store_id();
        let entries = store.read_log(position, durable, CHUNK_ENTRIES)?;
        let mut chunk = Chunk {
            events: Vec::new(),
            position,
        };
        for entry in entries {
            chunk.position = entry.seq;
            if let Some((kind, release)) = self.selection.event_for(store, self.start, &entry)? {
                chunk.events.push(PressReleaseEvent {
                    cursor: Cursor {
                        store_id,
                        seq: entry.seq,
                    }
                    .encode(),
                    r#type: kind as i32,
                    press_release: Some(release),
                    commit_time: entry.commit_time,
                });
                if chunk.events.len() >= CHUNK_EVENTS {
                    break;
                }
            }
        }
        Ok(chunk)
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
