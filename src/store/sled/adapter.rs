//! The sled engine behind the async [`Store`] trait, and the `blocking`
//! hand-off to tokio's blocking pool that it uses for work that may wait on
//! the disk or walk many keys.

use std::sync::Arc;

use uuid::Uuid;

use crate::{
    proto::{Timestamp, v1::PressRelease},
    store::{
        BackupFile, Change, ChangeResult, EncodedRelease, ListPosition, ListQuery, LogEntry, Store,
        StoreError, StoreFuture, SubscriptionChange, SubscriptionRecord, SubscriptionState,
    },
};

use super::engine::SledStore;

/// Runs `work` on the store on the blocking pool.
async fn blocking<T: Send + 'static>(
    store: &Arc<SledStore>,
    work: impl FnOnce(&SledStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || work(&store))
        .await
        .unwrap_or_else(|panic| Err(StoreError::engine(panic)))
}

/// The sled engine behind the async [`Store`]: commits, syncs, scans and
/// backups run on the blocking pool (they may wait on the disk or walk
/// many keys); point reads and short range reads run on the caller's
/// thread, as they did when the trait was blocking. It is implemented on
/// `Arc<SledStore>` because work handed to the blocking pool needs a handle
/// of its own.
#[async_trait::async_trait]
impl Store for Arc<SledStore> {
    fn store_id(&self) -> Uuid {
        self.store_id
    }

    async fn create_subscription(
        &self,
        record: &SubscriptionRecord,
        position: u64,
    ) -> Result<bool, StoreError> {
        let record = record.clone();
        blocking(self, move |store| {
            store.create_subscription(&record, position)
        })
        .await
    }

    async fn subscription(&self, id: &str) -> Result<Option<SubscriptionRecord>, StoreError> {
        SledStore::subscription(self, id)
    }

    async fn subscriptions(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        SledStore::subscriptions(self, after, limit)
    }

    async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        blocking(self, move |store| store.delete_subscription(&id)).await
    }

    async fn subscription_state(&self, id: &str) -> Result<Option<SubscriptionState>, StoreError> {
        let id = id.to_string();
        blocking(self, move |store| store.subscription_state(&id)).await
    }

    async fn commit_subscriptions(
        &self,
        changes: Vec<SubscriptionChange>,
    ) -> Result<(), StoreError> {
        blocking(self, move |store| store.commit_subscriptions(changes)).await
    }

    async fn commit(
        &self,
        changes: Vec<Change>,
        commit_time: Option<Timestamp>,
    ) -> Result<Vec<ChangeResult>, StoreError> {
        blocking(self, move |store| store.commit(changes, commit_time)).await
    }

    async fn apply(
        &self,
        changes: Vec<Change>,
        commit_time: Option<Timestamp>,
    ) -> Result<(Vec<ChangeResult>, u64), StoreError> {
        blocking(self, move |store| store.apply(changes, commit_time)).await
    }

    fn sync(&self, head: u64) -> StoreFuture<()> {
        // Started now, not when first polled: the writer applies the next
        // batch meanwhile.
        let store = Arc::clone(self);
        let syncing = tokio::task::spawn_blocking(move || SledStore::sync(&store, head));
        Box::pin(async move {
            syncing
                .await
                .unwrap_or_else(|panic| Err(StoreError::engine(panic)))
        })
    }

    async fn get(&self, id: &Uuid) -> Result<Option<PressRelease>, StoreError> {
        SledStore::get(self, id)
    }

    async fn get_encoded(&self, id: &Uuid) -> Result<Option<EncodedRelease>, StoreError> {
        SledStore::get_encoded(self, id)
    }

    async fn list(
        &self,
        query: &ListQuery,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<(ListPosition, PressRelease)>, StoreError> {
        let (query, after) = (query.clone(), after.cloned());
        blocking(self, move |store| store.list(&query, after.as_ref(), limit)).await
    }

    async fn published_times(
        &self,
        query: &ListQuery,
        visit: &mut (dyn FnMut(Timestamp) + Send),
    ) -> Result<(), StoreError> {
        // The walk runs on the blocking pool; what it found is visited here
        // (12 bytes a release).
        let query = query.clone();
        let times = blocking(self, move |store| {
            let mut times = Vec::new();
            store.published_times(&query, &mut |time| times.push(time))?;
            Ok(times)
        })
        .await?;
        times.into_iter().for_each(visit);
        Ok(())
    }

    async fn published_total(&self) -> Result<u64, StoreError> {
        SledStore::published_total(self)
    }

    async fn published_per_hour(
        &self,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        blocking(self, move |store| {
            store.published_per_hour(from_hour, to_hour)
        })
        .await
    }

    fn log_head(&self) -> u64 {
        SledStore::log_head(self)
    }

    async fn read_log(
        &self,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        SledStore::read_log(self, after, up_to, limit)
    }

    async fn read_changes(
        &self,
        after: u64,
        up_to: u64,
        limit: usize,
        with_records: bool,
    ) -> Result<Vec<(LogEntry, Option<PressRelease>)>, StoreError> {
        blocking(self, move |store| {
            store.read_changes(after, up_to, limit, with_records)
        })
        .await
    }

    async fn log_position_at(&self, time: &Timestamp) -> Result<u64, StoreError> {
        SledStore::log_position_at(self, time)
    }

    async fn next_embargo(&self) -> Result<Option<(Timestamp, Uuid)>, StoreError> {
        SledStore::next_embargo(self)
    }

    async fn embargoes_due(&self, now: &Timestamp, limit: usize) -> Result<Vec<Uuid>, StoreError> {
        SledStore::embargoes_due(self, now, limit)
    }

    async fn embargoed(&self) -> Result<Vec<PressRelease>, StoreError> {
        blocking(self, SledStore::embargoed).await
    }

    async fn embargoes_pending(&self) -> Result<u64, StoreError> {
        blocking(self, SledStore::embargoes_pending).await
    }

    async fn backup_file(&self) -> Result<BackupFile, StoreError> {
        blocking(self, SledStore::backup_file).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        blocking(self, SledStore::flush).await
    }
}
