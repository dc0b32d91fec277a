//! The sled engine's subscription calls: each change is planned by
//! [`subscriptions`] as one batch, applied under the engine's subscription
//! lock, then synced outside it.

use std::sync::PoisonError;

#[cfg(doc)]
use crate::store::Store;
use crate::store::{StoreError, SubscriptionChange, SubscriptionRecord, SubscriptionState};

#[cfg(doc)]
use super::durability::Durability;
use super::{engine::SledStore, subscriptions};

impl SledStore {
    /// See [`Store::create_subscription`].
    pub fn create_subscription(
        &self,
        record: &SubscriptionRecord,
        position: u64,
    ) -> Result<bool, StoreError> {
        let id = record.id()?;
        let applied = {
            let _lock = self.lock_subscriptions();
            if subscriptions::read(&self.db, &id)?.is_some() {
                return Ok(false);
            }
            self.apply_subscriptions(subscriptions::create(record, &id, position))?
        };
        self.durability.sync_outside(&self.db, applied)?;
        Ok(true)
    }

    /// See [`Store::subscription`].
    pub fn subscription(&self, id: &str) -> Result<Option<SubscriptionRecord>, StoreError> {
        subscriptions::read(&self.db, id)
    }

    /// See [`Store::subscriptions`].
    pub fn subscriptions(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        subscriptions::list(&self.db, after, limit)
    }

    /// See [`Store::delete_subscription`].
    pub fn delete_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let applied = {
            let _lock = self.lock_subscriptions();
            if subscriptions::read(&self.db, id)?.is_none() {
                return Ok(false);
            }
            self.apply_subscriptions(subscriptions::delete(&self.db, id)?)?
        };
        self.durability.sync_outside(&self.db, applied)?;
        Ok(true)
    }

    /// See [`Store::subscription_state`].
    pub fn subscription_state(&self, id: &str) -> Result<Option<SubscriptionState>, StoreError> {
        subscriptions::state(&self.db, id)
    }

    /// See [`Store::commit_subscriptions`].
    pub fn commit_subscriptions(&self, changes: Vec<SubscriptionChange>) -> Result<(), StoreError> {
        let applied = {
            let _lock = self.lock_subscriptions();
            match subscriptions::plan(&self.db, changes)? {
                Some(batch) => self.apply_subscriptions(batch)?,
                None => return Ok(()),
            }
        };
        self.durability.sync_outside(&self.db, applied)
    }
}

impl SledStore {
    fn lock_subscriptions(&self) -> std::sync::MutexGuard<'_, ()> {
        self.subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a batch of subscription state (no change-log entry) and
    /// returns its number for [`Durability::sync_outside`].
    fn apply_subscriptions(&self, batch: sled::Batch) -> Result<u64, StoreError> {
        if self.durability.is_poisoned() {
            return Err(StoreError::Poisoned);
        }
        if let Err(error) = self.db.apply_batch(batch) {
            self.durability.poison();
            return Err(StoreError::engine(error));
        }
        Ok(self.durability.applied_outside())
    }
}
