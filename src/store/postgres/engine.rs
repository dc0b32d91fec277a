//! The PostgreSQL engine itself: opening (schema, store id, the head
//! follower), and the reads. Commits are in [`commit`](super::commit), the
//! head follower in [`follow`](super::follow).

use std::{sync::Arc, time::Duration};

use deadpool_postgres::Pool;
use futures_util::StreamExt;
use prost::Message;
use tokio::sync::{Notify, watch};
use tokio_postgres::types::{ToSql, Type};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    proto::{Timestamp, v1::PressRelease},
    store::{
        BackupFile, BackupInfo, Change, ChangeResult, ListPosition, ListQuery, LogEntry,
        PortableWriter, Store, StoreError, StoreFuture, SubscriptionChange, SubscriptionLease,
        SubscriptionRecord, SubscriptionState, TransferItem,
        position::{TIME_LEN, time_bytes, time_from_bytes},
    },
};

use super::{
    commit::InFlight,
    connect::Target,
    follow::{follow, listen, read_head},
    plan::facet_term,
    schema,
    subscriptions::SubscriptionCommits,
};

/// Settings of the PostgreSQL engine.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Most connections in the pool.
    pub pool_size: usize,
    /// How often the shared head is polled.
    pub poll_interval: Duration,
    /// Whether to `LISTEN` for commits to wake early (off only in tests that
    /// show polling alone is enough).
    pub listen: bool,
    /// Where backups are written before they are streamed.
    pub scratch_dir: std::path::PathBuf,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            poll_interval: Duration::from_millis(200),
            listen: true,
            scratch_dir: std::env::temp_dir(),
        }
    }
}

/// A store in a PostgreSQL database, shared by any number of replicas.
pub struct PostgresStore {
    pool: Pool,
    target: Target,
    store_id: Uuid,
    head: Arc<watch::Sender<u64>>,
    /// The writer's commits whose `COMMIT` is in flight.
    in_flight: InFlight,
    /// Whether the server compresses with lz4.
    lz4: bool,
    scratch_dir: std::path::PathBuf,
    subscriptions: SubscriptionCommits,
    stop: CancellationToken,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl PostgresStore {
    /// Connects to the database `url` names, creates or migrates the schema,
    /// and starts following the shared head. Must run inside a tokio runtime.
    pub async fn open(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let target = Target::parse(url).map_err(StoreError::engine)?;
        let mut setup = target
            .connect_dedicated(None)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to the database: {e}")))?;
        let store_id = schema::prepare(&mut setup).await?;
        // Records are compressed with lz4 where the server has it: a
        // fraction of the CPU of PostgreSQL's default (pglz) to write and to
        // read back.
        let lz4 = setup
            .query_opt(
                "SELECT 1 FROM pg_settings
                 WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)",
                &[],
            )
            .await
            .map_err(db_error)?
            .is_some();
        drop(setup);
        // Every commit waits for the database to make it durable (on disk,
        // and on a synchronous standby where there is one), whatever the
        // database's default. A transaction left idle by a replica that went
        // away would hold the head lock: the server ends such sessions.
        let pool = target
            .pool(
                options.pool_size,
                "-c synchronous_commit=on -c idle_in_transaction_session_timeout=15s",
            )
            .map_err(StoreError::engine)?;
        let head = read_head(&pool).await?;
        let head = Arc::new(watch::channel(head).0);
        let stop = CancellationToken::new();
        let wake = Arc::new(Notify::new());
        if options.listen {
            tokio::spawn(listen(target.clone(), Arc::clone(&wake), stop.clone()));
        }
        tokio::spawn(follow(
            pool.clone(),
            Arc::clone(&head),
            wake,
            options.poll_interval,
            stop.clone(),
        ));
        let subscriptions = SubscriptionCommits::start(pool.clone(), stop.clone());
        Ok(Self {
            pool,
            target,
            store_id,
            head,
            in_flight: InFlight::default(),
            lz4,
            scratch_dir: options.scratch_dir,
            subscriptions,
            stop,
        })
    }

    /// The store id, kept in the database.
    pub fn store_id(&self) -> Uuid {
        self.store_id
    }

    /// The last change-log entry this replica knows is committed: the
    /// shared head as last followed, or its own latest commit.
    pub fn log_head(&self) -> u64 {
        *self.head.borrow()
    }

    /// The followed head, to wait on.
    pub fn follow_head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// The connection pool.
    pub(super) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// What [`Target`] this store connects to (leadership and tests open
    /// their own connections to it).
    pub(super) fn target(&self) -> &Target {
        &self.target
    }

    /// The subscription committer and the leases held.
    pub(super) fn subscription_commits(&self) -> &SubscriptionCommits {
        &self.subscriptions
    }

    /// The head this store moves (its own commits, and the follower's).
    pub(super) fn head_sender(&self) -> Arc<watch::Sender<u64>> {
        Arc::clone(&self.head)
    }

    /// Whether the server compresses with lz4 (commits ask for it).
    pub(super) fn lz4(&self) -> bool {
        self.lz4
    }

    /// The writer's commits whose `COMMIT` is in flight.
    pub(super) fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    pub(super) fn advance(&self, head: u64) {
        super::follow::advance(&self.head, head);
    }

    /// The current record of a release, withdrawn ones included.
    pub async fn get(&self, id: &Uuid) -> Result<Option<PressRelease>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT record FROM pressroom.releases WHERE id = $1")
            .await
            .map_err(db_error)?;
        let row = client
            .query_opt(&statement, &[id])
            .await
            .map_err(db_error)?;
        row.map(|row| decode_record(id, row.get(0))).transpose()
    }

    /// Published releases matching `query`, in list order, after `after`,
    /// at most `limit`.
    pub async fn list(
        &self,
        query: &ListQuery,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<(ListPosition, PressRelease)>, StoreError> {
        let client = self.client().await?;
        let filter = ListFilter::new(query, after);
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = filter
            .query(&client, Some(&limit), true)
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let position_bytes: &[u8] = row.get(0);
                let position = ListPosition::from_slice(position_bytes)
                    .ok_or_else(|| corrupt("releases.list_position"))?;
                let release = decode_record(&position.release_id(), row.get(1))?;
                Ok((position, release))
            })
            .collect()
    }

    /// How PostgreSQL runs [`PostgresStore::list`] for `query` (`EXPLAIN
    /// ANALYZE` of the same statement with the same values, run for real):
    /// the plan's lines, for operators and the benchmark to see which index
    /// a filter uses.
    pub async fn explain_list(
        &self,
        query: &ListQuery,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let filter = ListFilter::new(query, None);
        let limit = limit.min(i64::MAX as usize) as i64;
        let sql = format!("EXPLAIN (ANALYZE, BUFFERS) {}", filter.sql(true, true));
        let rows = client
            .query_typed(&sql, &filter.params(Some(&limit)))
            .await
            .map_err(db_error)?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Calls `visit` with the publish time of every published release that
    /// matches `query`, newest first.
    pub async fn published_times(
        &self,
        query: &ListQuery,
        visit: &mut (dyn FnMut(Timestamp) + Send),
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let filter = ListFilter::new(query, None);
        let rows = filter.stream(&client).await.map_err(db_error)?;
        let mut rows = std::pin::pin!(rows);
        while let Some(row) = rows.next().await {
            let row = row.map_err(db_error)?;
            let position = ListPosition::from_slice(row.get(0))
                .ok_or_else(|| corrupt("releases.list_position"))?;
            visit(position.publish_time());
        }
        Ok(())
    }

    /// How many releases are published.
    pub async fn published_total(&self) -> Result<u64, StoreError> {
        let total: i64 = self
            .query_one("SELECT published_total FROM pressroom.log_head", &[])
            .await?
            .get(0);
        Ok(total.max(0) as u64)
    }

    /// Published releases per publish hour, `from_hour <= h < to_hour`.
    pub async fn published_per_hour(
        &self,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT hour, count FROM pressroom.published_hours
                 WHERE hour >= $1 AND hour < $2 AND count > 0 ORDER BY hour",
            )
            .await
            .map_err(db_error)?;
        let rows = client
            .query(&statement, &[&from_hour, &to_hour])
            .await
            .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|row| (row.get::<_, i64>(0), row.get::<_, i64>(1).max(0) as u64))
            .collect())
    }

    /// Change-log entries with `after < seq <= up_to`, in order, at most
    /// `limit`.
    pub async fn read_log(
        &self,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        if after >= up_to || limit == 0 {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT seq, entry FROM pressroom.change_log
                 WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
            )
            .await
            .map_err(db_error)?;
        let (after, up_to) = (to_i64(after), to_i64(up_to));
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = client
            .query(&statement, &[&after, &up_to, &limit])
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.get(0);
                LogEntry::decode(row.get::<_, &[u8]>(1))
                    .map_err(|_| corrupt(&format!("change_log/{seq}")))
            })
            .collect()
    }

    /// The log position after which the entries committed at or after
    /// `time` follow.
    pub async fn log_position_at(&self, time: &Timestamp) -> Result<u64, StoreError> {
        let row = self
            .query_one(
                "SELECT coalesce(
                    (SELECT first_seq - 1 FROM pressroom.commits
                     WHERE commit_time >= $1 ORDER BY commit_time, first_seq LIMIT 1),
                    (SELECT head FROM pressroom.log_head))",
                &[&time_bytes(time).as_slice()],
            )
            .await?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    /// The earliest pending embargo.
    pub async fn next_embargo(&self) -> Result<Option<(Timestamp, Uuid)>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT embargo_key FROM pressroom.releases
                 WHERE embargo_key IS NOT NULL ORDER BY embargo_key LIMIT 1",
            )
            .await
            .map_err(db_error)?;
        let row = client.query_opt(&statement, &[]).await.map_err(db_error)?;
        row.map(|row| parse_embargo_key(row.get(0))).transpose()
    }

    /// Embargoed releases due at `now`, earliest first, at most `limit`.
    pub async fn embargoes_due(
        &self,
        now: &Timestamp,
        limit: usize,
    ) -> Result<Vec<Uuid>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT embargo_key FROM pressroom.releases
                 WHERE embargo_key IS NOT NULL AND embargo_key <= $1
                 ORDER BY embargo_key LIMIT $2",
            )
            .await
            .map_err(db_error)?;
        let mut bound = time_bytes(now).to_vec();
        bound.extend_from_slice(&[0xff; 16]);
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = client
            .query(&statement, &[&bound, &limit])
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| parse_embargo_key(row.get(0)).map(|(_, id)| id))
            .collect()
    }

    /// Every embargoed release, earliest embargo first.
    pub async fn embargoed(&self) -> Result<Vec<PressRelease>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, record FROM pressroom.releases
                 WHERE embargo_key IS NOT NULL ORDER BY embargo_key",
                &[],
            )
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| decode_record(&row.get::<_, Uuid>(0), row.get(1)))
            .collect()
    }

    /// How many embargoed releases wait.
    pub async fn embargoes_pending(&self) -> Result<u64, StoreError> {
        let count: i64 = self
            .query_one(
                "SELECT count(*) FROM pressroom.releases WHERE embargo_key IS NOT NULL",
                &[],
            )
            .await?
            .get(0);
        Ok(count.max(0) as u64)
    }

    /// Writes a backup of the whole store, as it is at one change-log
    /// position, in the portable format ([`PortableWriter`]): one
    /// `REPEATABLE READ` read-only transaction sees a single snapshot, so
    /// writers need not pause. `pressroom restore --to` reads it back into
    /// an empty database. (The database's own backups are the other way,
    /// and the one for point-in-time recovery.)
    pub async fn backup(
        &self,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<BackupInfo, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db_error)?;
        let head: i64 = tx
            .query_one("SELECT head FROM pressroom.log_head", &[])
            .await
            .map_err(db_error)?
            .get(0);
        let store_id: Uuid = tx
            .query_one("SELECT store_id FROM pressroom.meta", &[])
            .await
            .map_err(db_error)?
            .get(0);
        let mut writer =
            PortableWriter::new(out, store_id, head.max(0) as u64).map_err(StoreError::engine)?;
        let tables: [(&str, ItemOf); 5] = [
            (
                "SELECT first_seq, commit_time FROM pressroom.commits ORDER BY first_seq",
                |row| {
                    let time: &[u8] = row.get(1);
                    Ok(TransferItem::Commit {
                        first_seq: row.get::<_, i64>(0).max(0) as u64,
                        time: time_from_bytes(
                            time.try_into()
                                .map_err(|_| corrupt("commits.commit_time"))?,
                        ),
                    })
                },
            ),
            (
                "SELECT seq, entry FROM pressroom.change_log ORDER BY seq",
                |row| {
                    let seq: i64 = row.get(0);
                    LogEntry::decode(row.get::<_, &[u8]>(1))
                        .map(TransferItem::Entry)
                        .map_err(|_| corrupt(&format!("change_log/{seq}")))
                },
            ),
            (
                "SELECT request_id, release_id FROM pressroom.request_ids ORDER BY request_id",
                |row| {
                    Ok(TransferItem::RequestId {
                        request_id: row.get(0),
                        release_id: row.get(1),
                    })
                },
            ),
            (
                "SELECT id, record, last_seq FROM pressroom.releases ORDER BY id",
                |row| {
                    let id: Uuid = row.get(0);
                    Ok(TransferItem::Release {
                        id,
                        release: Box::new(decode_record(&id, row.get(1))?),
                        last_seq: row.get::<_, i64>(2).max(0) as u64,
                    })
                },
            ),
            (
                "SELECT provider, item_id, release_id, fingerprint FROM pressroom.sources
                 ORDER BY provider, item_id",
                |row| {
                    Ok(TransferItem::Source {
                        provider: row.get(0),
                        item_id: row.get(1),
                        release_id: row.get(2),
                        fingerprint: row.get(3),
                    })
                },
            ),
        ];
        for (sql, item_of) in tables {
            let none: [&(dyn ToSql + Sync); 0] = [];
            let rows = tx.query_raw(sql, none).await.map_err(db_error)?;
            let mut rows = std::pin::pin!(rows);
            while let Some(row) = rows.next().await {
                let item = item_of(&row.map_err(db_error)?)?;
                writer.item(&item).map_err(StoreError::engine)?;
            }
        }
        let info = writer.finish().map_err(StoreError::engine)?;
        let _ = tx.rollback().await;
        Ok(info)
    }

    /// [`backup`](Self::backup) into a scratch file without a name in the
    /// engine's scratch dir, returned to be read.
    pub async fn backup_file(&self) -> Result<BackupFile, StoreError> {
        std::fs::create_dir_all(&self.scratch_dir).map_err(StoreError::engine)?;
        let mut file = tempfile::tempfile_in(&self.scratch_dir).map_err(StoreError::engine)?;
        let info = self.backup(&mut file).await?;
        BackupFile::from_written(file, info)
    }

    /// Nothing to do: a commit is durable when `COMMIT` returns.
    pub async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))
    }

    async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<tokio_postgres::Row, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(db_error)?;
        client.query_one(&statement, params).await.map_err(db_error)
    }
}

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

/// The `WHERE` of a list: positions after the page's, within the time
/// bounds, with at least one value of every facet group. Parameters: `$1`
/// exclusive lower bound, `$2` inclusive upper bound (or null), `$3` every
/// wanted `tag:value`, `$4` its group, `$5` how many groups.
/// A list query as a statement: published releases in list order within
/// the bounds, and for each facet of the filter, `facets && $n` (one of its
/// values is among the release's) — the operator the GIN index on `facets`
/// answers, so a narrow filter reads its matches from the index instead of
/// walking the list order and checking every release.
struct ListFilter {
    lower: Vec<u8>,
    upper: Option<Vec<u8>>,
    /// Per facet of the filter, the terms of which one must match.
    groups: Vec<Vec<String>>,
}

impl ListFilter {
    fn new(query: &ListQuery, after: Option<&ListPosition>) -> Self {
        // Newest first: "before b" starts after every position at b.
        let mut lower = after.map(|p| p.0.to_vec()).unwrap_or_default();
        if let Some(before) = &query.published_before {
            let at_before = ListPosition::new(before, &Uuid::max()).0.to_vec();
            lower = lower.max(at_before);
        }
        let upper = query
            .published_at_or_after
            .as_ref()
            .map(|after| ListPosition::new(after, &Uuid::max()).0.to_vec());
        let groups = query
            .facets
            .iter()
            .map(|(facet, values)| {
                values
                    .iter()
                    .map(|value| facet_term(facet.tag(), value))
                    .collect()
            })
            .collect();
        Self {
            lower,
            upper,
            groups,
        }
    }

    /// The statement: the position and, with `record`, the record.
    fn sql(&self, limited: bool, record: bool) -> String {
        use std::fmt::Write as _;
        let mut sql = String::from(if record {
            "SELECT list_position, record"
        } else {
            "SELECT list_position"
        });
        sql.push_str(
            " FROM pressroom.releases
             WHERE list_position IS NOT NULL AND list_position > $1
               AND ($2::bytea IS NULL OR list_position <= $2)",
        );
        for n in 0..self.groups.len() {
            let _ = write!(sql, " AND facets && ${}::text[]", n + 3);
        }
        sql.push_str(" ORDER BY list_position");
        if limited {
            let _ = write!(sql, " LIMIT ${}", self.groups.len() + 3);
        }
        sql
    }

    fn params<'a>(&'a self, limit: Option<&'a i64>) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
        let mut params: Vec<(&(dyn ToSql + Sync), Type)> =
            vec![(&self.lower, Type::BYTEA), (&self.upper, Type::BYTEA)];
        params.extend(
            self.groups
                .iter()
                .map(|group| (group as &(dyn ToSql + Sync), Type::TEXT_ARRAY)),
        );
        if let Some(limit) = limit {
            params.push((limit, Type::INT8));
        }
        params
    }

    /// Runs the query. Without facets it is one prepared statement; with
    /// them it is planned for the values given (an unnamed statement, still
    /// one round trip), since whether the GIN index or the list order is
    /// the faster way depends on how common the values are — a generic
    /// plan of a prepared statement would guess.
    async fn query(
        &self,
        client: &deadpool_postgres::Object,
        limit: Option<&i64>,
        record: bool,
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let sql = self.sql(limit.is_some(), record);
        let params = self.params(limit);
        if self.groups.is_empty() {
            let statement = client.prepare_cached(&sql).await?;
            let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
            client.query(&statement, &values).await
        } else {
            client.query_typed(&sql, &params).await
        }
    }

    /// The positions of every match, streamed.
    async fn stream(
        &self,
        client: &deadpool_postgres::Object,
    ) -> Result<tokio_postgres::RowStream, tokio_postgres::Error> {
        let sql = self.sql(false, false);
        let params = self.params(None);
        if self.groups.is_empty() {
            let statement = client.prepare_cached(&sql).await?;
            let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
            client.query_raw(&statement, values).await
        } else {
            client.query_typed_raw(&sql, params).await
        }
    }
}

/// An error from the database as a store error: a lost or refused
/// connection is [`StoreError::Unavailable`], anything else an engine error.
pub(super) fn db_error(error: tokio_postgres::Error) -> StoreError {
    if connection_lost(&error) {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::engine(error)
    }
}

/// Whether `error` says the connection or the server went away (what was
/// in flight on it may or may not have been done), rather than that the
/// database refused a statement.
pub(super) fn connection_lost(error: &tokio_postgres::Error) -> bool {
    error.is_closed()
        || error.as_db_error().is_none()
        || error.code().is_some_and(|code| {
            let code = code.code();
            // 08: connection exception; 57P0x: shutdown, termination.
            code.starts_with("08") || code.starts_with("57P")
        })
}

/// Turns a row of one table into the item a backup holds.
type ItemOf = fn(&tokio_postgres::Row) -> Result<TransferItem, StoreError>;

pub(super) fn decode_record(id: &Uuid, bytes: &[u8]) -> Result<PressRelease, StoreError> {
    PressRelease::decode(bytes).map_err(|_| corrupt(&format!("releases/{id}")))
}

fn parse_embargo_key(key: &[u8]) -> Result<(Timestamp, Uuid), StoreError> {
    let (time, id) = key
        .split_first_chunk::<TIME_LEN>()
        .ok_or_else(|| corrupt("releases.embargo_key"))?;
    let id = Uuid::from_slice(id).map_err(|_| corrupt("releases.embargo_key"))?;
    Ok((time_from_bytes(time), id))
}

pub(super) fn corrupt(key: &str) -> StoreError {
    StoreError::Corrupt { key: key.into() }
}

pub(super) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
