//! Reading the log ahead: chunks of entries read in tasks of their own,
//! the events the subscription selects from them, and the slots they fill.

use std::{collections::VecDeque, sync::Arc};

use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{CHUNK_ENTRIES, Dispatcher, Key, READS_IN_FLIGHT, Slot};
use crate::{
    feed::{
        Shared,
        cursor::Cursor,
        selection::{Indexed, Selection},
    },
    proto::wire::PressReleaseEvent,
    store::{LogEntry, StoreError},
};

/// Events read from the log for a subscription.
pub(super) struct Read {
    /// The dispatcher's epoch when the read started.
    epoch: u64,
    /// The entry it read after.
    after: u64,
    /// Read up to here: the last entry read, or the read's bound when it
    /// returned its whole range.
    up_to: u64,
    /// The events selected: position, release, event.
    events: Vec<(u64, Uuid, PressReleaseEvent)>,
}

/// The reads in flight, oldest first.
pub(super) type Reading = VecDeque<JoinHandle<Result<Read, StoreError>>>;

impl Dispatcher {
    /// Starts reading the next chunks of entries, up to `readable`, in
    /// tasks of their own: reading releases overlaps with handing out
    /// events and taking acks. Each read covers a range of at most
    /// [`CHUNK_ENTRIES`] positions, so it returns all of the range (the log
    /// is gapless) and the next read starts where it ends.
    pub(super) fn start_reads(&mut self, readable: u64) {
        while self.reading.len() < READS_IN_FLIGHT && self.has_room() && self.requested < readable {
            let (shared, selection) = (Arc::clone(&self.shared), Arc::clone(&self.selection));
            let (start, after, epoch) = (self.start, self.requested, self.epoch);
            let bound = readable.min(after + CHUNK_ENTRIES as u64);
            self.reading.push_back(tokio::spawn(async move {
                read_events(&shared, &selection, start, after, bound, epoch).await
            }));
            self.requested = bound;
        }
    }

    /// Drops the reads in flight: reading starts again after `self.read`.
    pub(super) fn drop_reads(&mut self) {
        for read in self.reading.drain(..) {
            read.abort();
        }
        self.requested = self.read;
    }

    /// Takes in what a read found: a slot per event not acknowledged yet.
    pub(super) fn take_read(&mut self, read: Read) {
        if read.epoch != self.epoch || read.after != self.read {
            // Read before a seek, or not where reading stands: read again.
            self.drop_reads();
            return;
        }
        for (seq, release, event) in read.events {
            let known = self.loaded.remove(&seq);
            if known.is_some_and(|state| state.acked) {
                continue;
            }
            self.slots.insert(
                seq,
                Slot {
                    release,
                    kind: event.r#type,
                    cursor: event.cursor.clone(),
                    commit_time: event.commit_time,
                    event: Some(event),
                    deliveries: known.map_or(0, |state| state.deliveries),
                    holder: None,
                },
            );
            let queue = self.by_release.entry(release).or_default();
            queue.push_back(seq);
            if queue.len() == 1 {
                self.ready.insert(Key::Event(seq));
            }
        }
        self.read = self.read.max(read.up_to);
        // Entries read past: nothing stored for them matters any more.
        self.loaded = self.loaded.split_off(&(self.read + 1));
    }
}

/// Reads the entries after `after` up to `bound` (a chunk of them) and
/// selects the events a subscription that started after `start` delivers.
async fn read_events(
    shared: &Shared,
    selection: &Selection,
    start: u64,
    after: u64,
    bound: u64,
    epoch: u64,
) -> Result<Read, StoreError> {
    let entries: Vec<LogEntry> = match shared.tail.range(after, bound, CHUNK_ENTRIES) {
        Some(recent) => recent.iter().map(|t| t.entry.clone()).collect(),
        None => shared.store.read_log(after, bound, CHUNK_ENTRIES).await?,
    };
    // Fewer entries than the limit: every entry up to `bound` is here.
    let whole_range = entries.len() < CHUNK_ENTRIES;
    let store_id = shared.store.store_id();
    let indexed = Indexed::default();
    let mut read = Read {
        epoch,
        after,
        up_to: after,
        events: Vec::new(),
    };
    // A selection of everything needs only a release's state: its stored
    // bytes go out as they are, never decoded (nor encoded again).
    let encoded = selection.takes_everything();
    for entry in entries {
        read.up_to = entry.seq;
        let Ok(release) = Uuid::from_slice(&entry.release_id) else {
            continue;
        };
        let event = if encoded {
            let Some((kind, version)) = selection.encoded_event_for(shared, start, &entry).await?
            else {
                continue;
            };
            PressReleaseEvent {
                cursor: Cursor {
                    store_id,
                    seq: entry.seq,
                }
                .encode(),
                r#type: kind as i32,
                press_release: Some(version.bytes),
                commit_time: entry.commit_time,
                highlights: Vec::new(),
            }
        } else {
            let Some((kind, version)) =
                selection.event_for(shared, start, &entry, &indexed).await?
            else {
                continue;
            };
            version
                .into_event(store_id, &entry, kind, Vec::new())
                .into()
        };
        read.events.push((entry.seq, release, event));
    }
    if whole_range {
        read.up_to = bound;
    }
    Ok(read)
}

/// Waits for the oldest read in flight (never, if there is none).
pub(super) async fn read_done(reading: &mut Reading) -> Result<Read, StoreError> {
    let Some(task) = reading.front_mut() else {
        return std::future::pending().await;
    };
    let result = task
        .await
        .unwrap_or_else(|panic| Err(StoreError::engine(panic)));
    reading.pop_front();
    result
}
