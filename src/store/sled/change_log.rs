//! Reading the sled engine's change log: its head, entries by sequence
//! number (with their records if asked), and the position at a time.

use std::sync::atomic::Ordering;

use uuid::Uuid;

#[cfg(doc)]
use crate::store::Store;
use crate::{
    proto::{Timestamp, v1::PressRelease},
    store::{LogEntry, StoreError},
};

use super::{
    engine::SledStore,
    layout,
    record::{corrupt, open_message},
};

impl SledStore {
    /// See [`Store::log_head`].
    pub fn log_head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// See [`Store::read_log`].
    pub fn read_log(
        &self,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        if after >= up_to {
            return Ok(Vec::new());
        }
        let range = layout::log_key(after.saturating_add(1))..=layout::log_key(up_to);
        self.db
            .range(range)
            .take(limit)
            .map(|entry| {
                let (key, value) = entry.map_err(StoreError::engine)?;
                open_message(&key, &value)
            })
            .collect()
    }

    /// See [`Store::read_changes`].
    pub fn read_changes(
        &self,
        after: u64,
        up_to: u64,
        limit: usize,
        with_records: bool,
    ) -> Result<Vec<(LogEntry, Option<PressRelease>)>, StoreError> {
        let entries = self.read_log(after, up_to, limit)?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let release = match Uuid::from_slice(&entry.release_id) {
                Ok(id) if with_records => self.get(&id)?,
                _ => None,
            };
            out.push((entry, release));
        }
        Ok(out)
    }

    /// See [`Store::log_position_at`].
    pub fn log_position_at(&self, time: &Timestamp) -> Result<u64, StoreError> {
        let start = layout::commit_time_prefix(time);
        match self.db.range(start..vec![layout::COMMIT_TIME + 1]).next() {
            Some(entry) => {
                let (key, _) = entry.map_err(StoreError::engine)?;
                let seq = layout::seq_from_commit_time_key(&key).ok_or_else(|| corrupt(&key))?;
                Ok(seq.saturating_sub(1))
            }
            None => Ok(self.log_head()),
        }
    }
}
