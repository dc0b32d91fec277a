//! The PostgreSQL engine behind the async [`Store`] trait.

use tokio::sync::watch;
use uuid::Uuid;

use crate::{
    proto::{Timestamp, v1::PressRelease},
    store::{
        BackupFile, Change, ChangeResult, ListPosition, ListQuery, LogEntry, Store, StoreError,
        StoreFuture, SubscriptionChange, SubscriptionLease, SubscriptionRecord, SubscriptionState,
    },
};

use super::{
    engine::{PostgresStore, db_error, decode_record},
    follow::read_head,
};

/// The engine's async methods are the [`Store`]'s; this only hands them
/// over (and reads a chunk of the log with its records in two statements).
#[async_trait::async_trait]
impl Store for PostgresStore {
    fn store_id(&self) -> Uuid {
        self.store_id
    }

    async fn commit(
        &self,
        changes: Vec<Change>,
        commit_time: Option<Timestamp>,
    ) -> Result<Vec<ChangeResult>, StoreError> {
        PostgresStore::commit(self, &changes, commit_time).await
    }

    async fn apply(
        &self,
        changes: Vec<Change>,
        commit_time: Option<Timestamp>,
    ) -> Result<(Vec<ChangeResult>, u64), StoreError> {
        self.apply_batch(changes, commit_time).await
    }

    fn sync(&self, head: u64) -> StoreFuture<()> {
        self.sync_applied(head)
    }

    async fn get(&self, id: &Uuid) -> Result<Option<PressRelease>, StoreError> {
        PostgresStore::get(self, id).await
    }

    async fn list(
        &self,
        query: &ListQuery,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<(ListPosition, PressRelease)>, StoreError> {
        PostgresStore::list(self, query, after, limit).await
    }

    async fn published_times(
        &self,
        query: &ListQuery,
        visit: &mut (dyn FnMut(Timestamp) + Send),
    ) -> Result<(), StoreError> {
        PostgresStore::published_times(self, query, visit).await
    }

    async fn published_total(&self) -> Result<u64, StoreError> {
        PostgresStore::published_total(self).await
    }

    async fn published_per_hour(
        &self,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        PostgresStore::published_per_hour(self, from_hour, to_hour).await
    }

    fn log_head(&self) -> u64 {
        PostgresStore::log_head(self)
    }

    fn followed_head(&self) -> Option<watch::Receiver<u64>> {
        Some(self.follow_head())
    }

    async fn latest_head(&self) -> Result<u64, StoreError> {
        let head = read_head(&self.pool).await?;
        self.advance(head);
        Ok(head)
    }

    async fn read_log(
        &self,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        PostgresStore::read_log(self, after, up_to, limit).await
    }

    async fn read_changes(
        &self,
        after: u64,
        up_to: u64,
        limit: usize,
        with_records: bool,
    ) -> Result<Vec<(LogEntry, Option<PressRelease>)>, StoreError> {
        let entries = PostgresStore::read_log(self, after, up_to, limit).await?;
        if !with_records || entries.is_empty() {
            return Ok(entries.into_iter().map(|entry| (entry, None)).collect());
        }
        let ids: Vec<Uuid> = entries
            .iter()
            .filter_map(|entry| Uuid::from_slice(&entry.release_id).ok())
            .collect();
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT id, record FROM pressroom.releases WHERE id = ANY($1)")
            .await
            .map_err(db_error)?;
        let rows = client.query(&statement, &[&ids]).await.map_err(db_error)?;
        let mut records = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let id: Uuid = row.get(0);
            records.insert(id, decode_record(&id, row.get(1))?);
        }
        Ok(entries
            .into_iter()
            .map(|entry| {
                let release = Uuid::from_slice(&entry.release_id)
                    .ok()
                    .and_then(|id| records.get(&id).cloned());
                (entry, release)
            })
            .collect())
    }

    async fn log_position_at(&self, time: &Timestamp) -> Result<u64, StoreError> {
        PostgresStore::log_position_at(self, time).await
    }

    async fn next_embargo(&self) -> Result<Option<(Timestamp, Uuid)>, StoreError> {
        PostgresStore::next_embargo(self).await
    }

    async fn embargoes_due(&self, now: &Timestamp, limit: usize) -> Result<Vec<Uuid>, StoreError> {
        PostgresStore::embargoes_due(self, now, limit).await
    }

    async fn embargoed(&self) -> Result<Vec<PressRelease>, StoreError> {
        PostgresStore::embargoed(self).await
    }

    async fn embargoes_pending(&self) -> Result<u64, StoreError> {
        PostgresStore::embargoes_pending(self).await
    }

    fn backup_needs_writer_paused(&self) -> bool {
        // One REPEATABLE READ snapshot: a log position of its own.
        false
    }

    async fn backup_file(&self) -> Result<BackupFile, StoreError> {
        PostgresStore::backup_file(self).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        PostgresStore::flush(self).await
    }

    async fn create_subscription(
        &self,
        record: &SubscriptionRecord,
        position: u64,
    ) -> Result<bool, StoreError> {
        PostgresStore::create_subscription(self, record, position).await
    }

    async fn subscription(&self, id: &str) -> Result<Option<SubscriptionRecord>, StoreError> {
        PostgresStore::subscription(self, id).await
    }

    async fn subscriptions(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        PostgresStore::subscriptions(self, after, limit).await
    }

    async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError> {
        PostgresStore::delete_subscription(self, id).await
    }

    async fn subscription_state(&self, id: &str) -> Result<Option<SubscriptionState>, StoreError> {
        PostgresStore::subscription_state(self, id).await
    }

    async fn commit_subscriptions(
        &self,
        changes: Vec<SubscriptionChange>,
    ) -> Result<(), StoreError> {
        PostgresStore::commit_subscriptions(self, changes).await
    }

    fn subscription_lease(&self, id: &str) -> SubscriptionLease {
        self.lease_subscription(id)
    }
}
