//! Writing to the sled engine: a commit's batch planned and applied (the
//! log head moved first, so that reads wait for it), then synced; a failed
//! apply or sync poisons the store rather than let anything build on what
//! may or may not be on disk. Blocking: the [`adapter`](super::adapter)
//! hands these to the blocking pool.

use std::sync::{PoisonError, atomic::Ordering};

#[cfg(doc)]
use crate::store::Store;
use crate::{
    proto::{Timestamp, compare_times},
    store::{Change, ChangeResult, StoreError},
};

use super::{engine::SledStore, plan::Plan};

/// The engine's operations, blocking (the [`Store`] impl in `adapter`
/// hands them to the blocking pool where they may take long).
impl SledStore {
    /// See [`Store::commit`].
    pub fn commit(
        &self,
        changes: Vec<Change>,
        commit_time: Option<Timestamp>,
    ) -> Result<Vec<ChangeResult>, StoreError> {
        let (results, head) = self.apply(changes, commit_time)?;
        self.sync(head)?;
        Ok(results)
    }

    /// See [`Store::apply`].
    pub fn apply(
        &self,
        changes: Vec<Change>,
        commit_time: Option<Timestamp>,
    ) -> Result<(Vec<ChangeResult>, u64), StoreError> {
        let commit_time = commit_time.unwrap_or_else(crate::proto::now);
        if self.durability.is_poisoned() {
            return Err(StoreError::Poisoned);
        }
        let mut last_commit_time = self
            .last_commit_time
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let commit_time = std::cmp::max_by(*last_commit_time, commit_time, compare_times);
        let mut plan = Plan::new(&self.db, self.head.load(Ordering::Acquire), commit_time);
        let results = changes
            .into_iter()
            .map(|change| plan.apply(change))
            .collect::<Result<Vec<_>, _>>()?;
        let Some((batch, head)) = plan.into_batch() else {
            return Ok((results, self.head.load(Ordering::Acquire)));
        };
        // Moved first: a read that sees any of the batch waits for its sync.
        self.head.store(head, Ordering::SeqCst);
        if let Err(error) = self.db.apply_batch(batch) {
            // What was applied may or may not be there; refuse to build on
            // it, and let no read show it.
            self.durability.poison();
            return Err(StoreError::engine(error));
        }
        *last_commit_time = commit_time;
        self.durability.applied(head);
        Ok((results, head))
    }

    /// See [`Store::sync`].
    pub fn sync(&self, head: u64) -> Result<(), StoreError> {
        if self.durability.is_poisoned() {
            return Err(StoreError::Poisoned);
        }
        if self.durability.head() >= head {
            return Ok(());
        }
        let syncing = std::time::Instant::now();
        let synced = self.durability.sync(&self.db);
        metrics::histogram!("pressroom_flush_seconds").record(syncing.elapsed().as_secs_f64());
        if let Err(error) = synced {
            self.durability.poison();
            return Err(error);
        }
        self.durability.advance(head);
        Ok(())
    }
    /// See [`Store::flush`].
    pub fn flush(&self) -> Result<(), StoreError> {
        self.durability.sync(&self.db)
    }
}
