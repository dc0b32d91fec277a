//! Reading releases from the sled engine: point reads, the list walk,
//! publishing counts and the embargo index. Nothing is shown before it is
//! durable: a read that may have seen a change not yet synced waits for its
//! sync (or syncs it itself, see [`durability::HELP_AFTER`]).

use std::sync::atomic::Ordering;

use prost::Message as _;
use uuid::Uuid;

#[cfg(doc)]
use crate::store::Store;
use crate::{
    proto::{
        Timestamp, compare_times,
        v1::{PressRelease, press_release::State},
    },
    store::{EncodedRelease, ListPosition, ListQuery, StoreError},
};

use super::{
    durability,
    engine::SledStore,
    layout,
    record::{
        ReleaseHead, StoredEncoded, StoredRelease, corrupt, decode_count, open, open_message,
        unwrap_record,
    },
    walk::walk,
};

impl SledStore {
    /// Waits, after a read, until everything it may have seen is durable.
    fn settle(&self) -> Result<(), StoreError> {
        self.wait_durable(self.head.load(Ordering::SeqCst))
    }

    /// Returns once the log is durable up to `seq`: the writer's sync
    /// normally gets there first; if it has not within
    /// [`durability::HELP_AFTER`], this read syncs once the batch is applied
    /// rather than wait on a task that may need this thread to run.
    fn wait_durable(&self, seq: u64) -> Result<(), StoreError> {
        if self.durability.wait_durable(seq, durability::HELP_AFTER)? {
            return Ok(());
        }
        self.durability.wait_applied(seq)?;
        self.sync(seq)
    }
    /// A release's record, once durable: a record whose latest change is
    /// not on disk yet is waited for, then read again.
    fn read_release(&self, id: &Uuid) -> Result<Option<PressRelease>, StoreError> {
        let key = layout::release_key(id);
        loop {
            let Some(value) = self.db.get(&key).map_err(StoreError::engine)? else {
                return Ok(None);
            };
            let stored: StoredRelease = open_message(&key, &value)?;
            if stored.last_seq <= self.durability.head() {
                return unwrap_record(&key, stored).map(Some);
            }
            self.wait_durable(stored.last_seq)?;
        }
    }
}

/// The engine's reads, blocking.
impl SledStore {
    /// See [`Store::get`].
    pub fn get(&self, id: &Uuid) -> Result<Option<PressRelease>, StoreError> {
        self.read_release(id)
    }

    /// See [`Store::get_encoded`]: the stored bytes, only the head decoded.
    pub fn get_encoded(&self, id: &Uuid) -> Result<Option<EncodedRelease>, StoreError> {
        let key = layout::release_key(id);
        loop {
            let Some(value) = self.db.get(&key).map_err(StoreError::engine)? else {
                return Ok(None);
            };
            open(&key, &value)?;
            // The value's own buffer, not a copy: the release is a slice of it.
            let payload = bytes::Bytes::from_owner(value).slice(4..);
            let stored = StoredEncoded::decode(payload).map_err(|_| corrupt(&key))?;
            if stored.last_seq <= self.durability.head() {
                let head =
                    ReleaseHead::decode(stored.release.clone()).map_err(|_| corrupt(&key))?;
                return Ok(Some(EncodedRelease {
                    state: head.state,
                    revision: head.revision,
                    bytes: stored.release,
                }));
            }
            self.wait_durable(stored.last_seq)?;
        }
    }

    /// See [`Store::list`].
    pub fn list(
        &self,
        query: &ListQuery,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<(ListPosition, PressRelease)>, StoreError> {
        let mut out = Vec::new();
        walk(&self.db, query, after, &mut |position| {
            // The index walk is not a snapshot: a commit may have changed the
            // release since its index entry was read. Keep it only if it is
            // still published at this place and still matches.
            if let Some(release) = self.read_release(&position.release_id())? {
                let current = ListPosition::new(
                    &release.publish_time.unwrap_or_default(),
                    &position.release_id(),
                );
                if release.state() == State::Published
                    && current == position
                    && query.matches(&release)
                {
                    out.push((position, release));
                }
            }
            Ok(out.len() < limit)
        })?;
        self.settle()?;
        Ok(out)
    }

    /// See [`Store::published_times`].
    pub fn published_times(
        &self,
        query: &ListQuery,
        visit: &mut dyn FnMut(Timestamp),
    ) -> Result<(), StoreError> {
        // Settled first: what is visited cannot be taken back.
        self.settle()?;
        walk(&self.db, query, None, &mut |position| {
            visit(position.publish_time());
            Ok(true)
        })
    }

    /// See [`Store::published_total`].
    pub fn published_total(&self) -> Result<u64, StoreError> {
        let key = layout::total_count_key();
        let total = match self.db.get(&key).map_err(StoreError::engine)? {
            Some(value) => decode_count(&key, &value)?,
            None => 0,
        };
        self.settle()?;
        Ok(total)
    }

    /// See [`Store::published_per_hour`].
    pub fn published_per_hour(
        &self,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let mut out = Vec::new();
        if from_hour >= to_hour {
            return Ok(out);
        }
        for entry in self
            .db
            .range(layout::hour_count_key(from_hour)..layout::hour_count_key(to_hour))
        {
            let (key, value) = entry.map_err(StoreError::engine)?;
            let hour = layout::hour_from_count_key(&key).ok_or_else(|| corrupt(&key))?;
            out.push((hour, decode_count(&key, &value)?));
        }
        self.settle()?;
        Ok(out)
    }
    /// See [`Store::next_embargo`].
    pub fn next_embargo(&self) -> Result<Option<(Timestamp, Uuid)>, StoreError> {
        match self.db.scan_prefix([layout::EMBARGO]).next() {
            Some(entry) => {
                let (key, _) = entry.map_err(StoreError::engine)?;
                layout::parse_embargo_key(&key)
                    .map(Some)
                    .ok_or_else(|| corrupt(&key))
            }
            None => Ok(None),
        }
    }

    /// See [`Store::embargoes_due`].
    pub fn embargoes_due(&self, now: &Timestamp, limit: usize) -> Result<Vec<Uuid>, StoreError> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix([layout::EMBARGO]).take(limit) {
            let (key, _) = entry.map_err(StoreError::engine)?;
            let (time, id) = layout::parse_embargo_key(&key).ok_or_else(|| corrupt(&key))?;
            if compare_times(&time, now).is_gt() {
                break;
            }
            out.push(id);
        }
        Ok(out)
    }

    /// See [`Store::embargoed`].
    pub fn embargoed(&self) -> Result<Vec<PressRelease>, StoreError> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix([layout::EMBARGO]) {
            let (key, _) = entry.map_err(StoreError::engine)?;
            let (_, id) = layout::parse_embargo_key(&key).ok_or_else(|| corrupt(&key))?;
            if let Some(release) = self.read_release(&id)? {
                out.push(release);
            }
        }
        self.settle()?;
        Ok(out)
    }

    /// See [`Store::embargoes_pending`].
    pub fn embargoes_pending(&self) -> Result<u64, StoreError> {
        let mut count = 0;
        for entry in self.db.scan_prefix([layout::EMBARGO]) {
            entry.map_err(StoreError::engine)?;
            count += 1;
        }
        Ok(count)
    }
}
