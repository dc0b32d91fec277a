//! The PostgreSQL engine itself: opening (schema, store id, the head
//! follower), the commit protocol, and the reads.
//!
//! **Commits.** Every commit is one transaction that first locks the single
//! `log_head` row (`SELECT … FOR UPDATE`). Commits from every replica are so
//! serialised and numbered in commit order: a transaction holding the lock
//! reads the head, numbers its entries after it, writes them and the new
//! head, and commits; the next one can only read the head once this one is
//! visible. A rolled-back commit wrote nothing and numbered nothing, so the
//! log has no gaps, and a reader that sees head `h` sees every entry up to
//! `h`. Request ids, sources and revisions are checked under the same lock,
//! so they hold across replicas. The commit time is the later of the last
//! commit's and the database's clock (`clock_timestamp()`), so it never goes
//! back, whatever the replicas' clocks say. One transaction per writer
//! batch, each table written with one multi-row statement (`unnest` of
//! arrays), the statements pipelined: a batch costs a handful of round
//! trips and one `COMMIT`, whatever its size.
//!
//! **Unknown outcomes.** Each commit writes a random batch id in the same
//! transaction. When `COMMIT` fails without an answer (the connection was
//! lost), a fresh connection waits for the head lock — so the lost
//! transaction has ended one way or the other — and looks the batch id up:
//! found means committed (the callers get their answers), absent means
//! rolled back (the batch is tried once more). When neither can be learned
//! the callers get [`StoreError::Unavailable`]; nothing is acknowledged
//! twice, and a caller's retry with its request id finds the release if it
//! was written.
//!
//! **Following.** Readers on every replica follow the shared head: a task
//! polls it every `poll_interval` and `LISTEN`s on a dedicated connection
//! only to wake early (a lost notification costs latency, never an event).
//! [`PostgresStore::log_head`] is that followed head; the replica's own
//! commits move it at once.

use std::{sync::Arc, time::Duration};

use deadpool_postgres::{Pool, Transaction};
use futures_util::StreamExt;
use prost::Message;
use tokio::sync::{Notify, watch};
use tokio_postgres::types::ToSql;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    proto::{Timestamp, compare_times, v1::PressRelease},
    store::{
        BackupInfo, Change, ChangeResult, ListPosition, ListQuery, LogEntry, StoreError,
        position::{TIME_LEN, time_bytes, time_from_bytes},
    },
};

use super::{
    connect::Target,
    plan::{Loaded, Plan, Rows, Wanted, facet_term},
    schema,
};

/// The channel commits notify on.
const CHANNEL: &str = "pressroom_log";

/// How long a commit whose outcome was lost is looked for.
const RESOLVE_FOR: Duration = Duration::from_secs(20);

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
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            poll_interval: Duration::from_millis(200),
            listen: true,
        }
    }
}

/// A store in a PostgreSQL database, shared by any number of replicas.
pub struct PostgresStore {
    pool: Pool,
    target: Target,
    store_id: Uuid,
    head: Arc<watch::Sender<u64>>,
    stop: CancellationToken,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// How one attempt at a commit ended.
enum Attempt {
    /// Committed (or nothing to write): the outcomes.
    Done(Vec<ChangeResult>),
    /// Certainly not committed, and worth one more try (the connection was
    /// lost before `COMMIT`, or the lost commit was found rolled back).
    NotCommitted(StoreError),
    /// Failed; not committed.
    Failed(StoreError),
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
        Ok(Self {
            pool,
            target,
            store_id,
            head,
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

    /// Applies `changes` as one transaction, in order, numbered after the
    /// shared head, and returns once `COMMIT` has returned (durable as the
    /// database's `synchronous_commit` makes it). `commit_time` is a time the
    /// caller asks for (tests); `None` takes the database's clock. Either way
    /// it never goes back.
    pub async fn commit(
        &self,
        changes: &[Change],
        commit_time: Option<Timestamp>,
    ) -> Result<Vec<ChangeResult>, StoreError> {
        match self.attempt(changes, commit_time).await {
            Attempt::Done(results) => Ok(results),
            Attempt::Failed(error) => Err(error),
            Attempt::NotCommitted(error) => {
                tracing::warn!(error = %crate::telemetry::chain(&error), "commit not made; trying it once more");
                match self.attempt(changes, commit_time).await {
                    Attempt::Done(results) => Ok(results),
                    Attempt::Failed(error) | Attempt::NotCommitted(error) => Err(error),
                }
            }
        }
    }

    async fn attempt(&self, changes: &[Change], proposed: Option<Timestamp>) -> Attempt {
        let mut client = match self.pool.get().await {
            Ok(client) => client,
            Err(error) => {
                return Attempt::Failed(StoreError::Unavailable(format!(
                    "no database connection: {error}"
                )));
            }
        };
        let tx = match client.transaction().await {
            Ok(tx) => tx,
            Err(error) => return Attempt::NotCommitted(db_error(error)),
        };
        let batch_id = Uuid::new_v4();
        let rows = match plan(&tx, changes, proposed).await {
            Ok(Planned {
                results,
                rows: None,
            }) => {
                // Nothing to write: the answers were read under the lock.
                let _ = tx.rollback().await;
                return Attempt::Done(results);
            }
            Ok(Planned {
                results,
                rows: Some((rows, commit_time)),
            }) => match write(&tx, &rows, &commit_time, batch_id).await {
                Ok(()) => (results, rows.last_seq),
                Err(error) => return not_committed(error),
            },
            Err(PlanError::Store(error)) => return Attempt::Failed(error),
            Err(PlanError::Db(error)) => return not_committed(error),
        };
        let (results, last_seq) = rows;
        let committing = std::time::Instant::now();
        let committed = tx.commit().await;
        metrics::histogram!("pressroom_flush_seconds").record(committing.elapsed().as_secs_f64());
        match committed {
            Ok(()) => {
                self.advance(last_seq);
                Attempt::Done(results)
            }
            Err(error) => {
                tracing::warn!(%error, %batch_id, "the answer to COMMIT was lost; looking the batch up");
                drop(client);
                match self.resolve(batch_id).await {
                    Ok(true) => {
                        self.advance(last_seq);
                        Attempt::Done(results)
                    }
                    Ok(false) => Attempt::NotCommitted(db_error(error)),
                    Err(unknown) => Attempt::Failed(unknown),
                }
            }
        }
    }

    /// Whether the commit of `batch_id` was made. Waits for the head lock
    /// first, so that a transaction still running on a lost connection has
    /// ended; keeps trying for a while when the database cannot be reached.
    pub(super) async fn resolve(&self, batch_id: Uuid) -> Result<bool, StoreError> {
        let deadline = tokio::time::Instant::now() + RESOLVE_FOR;
        loop {
            let last = match self.lookup_batch(batch_id).await {
                Ok(found) => return Ok(found),
                Err(error) => error.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "the outcome of a commit could not be learned (batch {batch_id}): {last}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn lookup_batch(&self, batch_id: Uuid) -> Result<bool, StoreError> {
        let mut client = self
            .pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let tx = client.transaction().await.map_err(db_error)?;
        tx.batch_execute(
            "SET LOCAL lock_timeout = '10s';
             SELECT 1 FROM pressroom.log_head FOR SHARE;",
        )
        .await
        .map_err(db_error)?;
        let found = tx
            .query_opt(
                "SELECT 1 FROM pressroom.commits WHERE batch_id = $1",
                &[&batch_id],
            )
            .await
            .map_err(db_error)?
            .is_some();
        let _ = tx.rollback().await;
        Ok(found)
    }

    pub(super) fn advance(&self, head: u64) {
        advance(&self.head, head);
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
        let statement = client
            .prepare_cached(&format!("{LIST_SELECT} LIMIT $6"))
            .await
            .map_err(db_error)?;
        let filter = ListFilter::new(query, after);
        let limit = limit.min(i64::MAX as usize) as i64;
        let mut params = filter.params();
        params.push(&limit);
        let rows = client.query(&statement, &params).await.map_err(db_error)?;
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

    /// Calls `visit` with the publish time of every published release that
    /// matches `query`, newest first.
    pub async fn published_times(
        &self,
        query: &ListQuery,
        visit: &mut (dyn FnMut(Timestamp) + Send),
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(LIST_SELECT).await.map_err(db_error)?;
        let filter = ListFilter::new(query, None);
        let rows = client
            .query_raw(&statement, filter.params())
            .await
            .map_err(db_error)?;
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

    /// A backup through Pressroom is not offered on this engine: the
    /// database's own backups cover it.
    pub async fn backup(&self, _out: &mut dyn std::io::Write) -> Result<BackupInfo, StoreError> {
        Err(StoreError::Unsupported(
            "BackupPressReleases is not available with the PostgreSQL store: back up the \
             database itself (pg_dump, or CloudNativePG's backups), which holds every release, \
             the change log and the store id"
                .into(),
        ))
    }

    /// Nothing to do: a commit is durable when `COMMIT` returns.
    pub async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
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

/// What planning a batch gave: the outcomes, and what to write with the
/// commit time (none when nothing is written).
struct Planned {
    results: Vec<ChangeResult>,
    rows: Option<(Rows, Timestamp)>,
}

enum PlanError {
    Store(StoreError),
    Db(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for PlanError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Db(error)
    }
}

/// Locks the head, reads what the checks need, and plans the batch.
async fn plan(
    tx: &Transaction<'_>,
    changes: &[Change],
    proposed: Option<Timestamp>,
) -> Result<Planned, PlanError> {
    let lock = tx
        .prepare_cached(
            "SELECT head, commit_time,
                    (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
             FROM pressroom.log_head FOR UPDATE",
        )
        .await?;
    let row = tx.query_one(&lock, &[]).await?;
    let head = row.get::<_, i64>(0).max(0) as u64;
    let last_time = time_from_bytes(
        row.get::<_, &[u8]>(1)
            .try_into()
            .map_err(|_| PlanError::Store(corrupt("log_head.commit_time")))?,
    );
    let clock = proposed.unwrap_or_else(|| micros_to_timestamp(row.get(2)));
    let commit_time = std::cmp::max_by(last_time, clock, compare_times);

    let loaded = load(tx, &Wanted::of(changes)).await?;
    let mut plan = Plan::new(loaded, head, commit_time);
    let mut results = Vec::with_capacity(changes.len());
    for change in changes {
        let result = plan
            .apply(change.clone())
            .map_err(|id| PlanError::Store(corrupt(&format!("releases/{id}"))))?;
        results.push(result);
    }
    Ok(Planned {
        results,
        rows: plan.into_rows().map(|rows| (rows, commit_time)),
    })
}

/// Reads, in bulk and pipelined, the rows a batch's checks need.
async fn load(tx: &Transaction<'_>, wanted: &Wanted) -> Result<Loaded, PlanError> {
    let mut loaded = Loaded::default();
    let (releases, requests, sources) = tokio::try_join!(
        read_releases(tx, &wanted.ids),
        async {
            if wanted.request_ids.is_empty() {
                return Ok(Vec::new());
            }
            let statement = tx
                .prepare_cached(
                    "SELECT request_id, release_id FROM pressroom.request_ids
                     WHERE request_id = ANY($1::text[])",
                )
                .await?;
            Ok(tx.query(&statement, &[&wanted.request_ids]).await?)
        },
        async {
            if wanted.sources.is_empty() {
                return Ok(Vec::new());
            }
            let statement = tx
                .prepare_cached(
                    "SELECT s.provider, s.item_id, s.release_id, s.fingerprint
                     FROM pressroom.sources s
                     JOIN unnest($1::text[], $2::text[]) AS w(provider, item_id)
                       USING (provider, item_id)",
                )
                .await?;
            let (providers, items): (Vec<&str>, Vec<&str>) = wanted
                .sources
                .iter()
                .map(|(p, i)| (p.as_str(), i.as_str()))
                .unzip();
            Ok(tx.query(&statement, &[&providers, &items]).await?)
        },
    )?;
    loaded.releases.extend(releases);
    for row in requests {
        loaded.requests.insert(row.get(0), row.get(1));
    }
    for row in sources {
        loaded
            .sources
            .insert((row.get(0), row.get(1)), (row.get(2), row.get(3)));
    }
    let missing = loaded.missing_targets();
    loaded.releases.extend(read_releases(tx, &missing).await?);
    Ok(loaded)
}

/// Releases by id, with their last sequence numbers.
async fn read_releases(
    tx: &Transaction<'_>,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, (PressRelease, u64))>, PlanError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let statement = tx
        .prepare_cached(
            "SELECT id, record, last_seq FROM pressroom.releases WHERE id = ANY($1::uuid[])",
        )
        .await?;
    let rows = tx.query(&statement, &[&ids]).await?;
    rows.iter()
        .map(|row| {
            let id: Uuid = row.get(0);
            let release = decode_record(&id, row.get(1)).map_err(PlanError::Store)?;
            Ok((id, (release, row.get::<_, i64>(2).max(0) as u64)))
        })
        .collect()
}

/// Inserts or replaces release rows (see [`super::plan::ReleaseRow`]).
pub(super) const UPSERT_RELEASES: &str = "INSERT INTO pressroom.releases
        (id, record, revision, last_seq, list_position, facets, embargo_key)
     SELECT id, record, revision, last_seq, list_position,
            string_to_array(facets, E'\\x1f'), embargo_key
     FROM unnest($1::uuid[], $2::bytea[], $3::int8[], $4::int8[], $5::bytea[],
                 $6::text[], $7::bytea[])
          AS t(id, record, revision, last_seq, list_position, facets, embargo_key)
     ON CONFLICT (id) DO UPDATE SET
        record = excluded.record, revision = excluded.revision,
        last_seq = excluded.last_seq, list_position = excluded.list_position,
        facets = excluded.facets, embargo_key = excluded.embargo_key";
/// Inserts request ids.
pub(super) const INSERT_REQUESTS: &str =
    "INSERT INTO pressroom.request_ids (request_id, release_id)
     SELECT * FROM unnest($1::text[], $2::uuid[])";
/// Inserts sources.
pub(super) const INSERT_SOURCES: &str =
    "INSERT INTO pressroom.sources (provider, item_id, release_id, fingerprint)
     SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::bytea[])";
/// Appends change-log entries.
pub(super) const INSERT_ENTRIES: &str = "INSERT INTO pressroom.change_log (seq, entry)
     SELECT * FROM unnest($1::int8[], $2::bytea[])";
/// Adds to the published counts per hour.
pub(super) const ADD_HOURS: &str = "INSERT INTO pressroom.published_hours (hour, count)
     SELECT * FROM unnest($1::int8[], $2::int8[])
     ON CONFLICT (hour) DO UPDATE SET count = published_hours.count + excluded.count";

/// Writes a planned batch: every table in one statement, pipelined.
async fn write(
    tx: &Transaction<'_>,
    rows: &Rows,
    commit_time: &Timestamp,
    batch_id: Uuid,
) -> Result<(), tokio_postgres::Error> {
    let statements = tokio::try_join!(
        tx.prepare_cached(UPSERT_RELEASES),
        tx.prepare_cached(INSERT_REQUESTS),
        tx.prepare_cached(INSERT_SOURCES),
        tx.prepare_cached(INSERT_ENTRIES),
        tx.prepare_cached(ADD_HOURS),
        tx.prepare_cached(
            "WITH c AS (INSERT INTO pressroom.commits (first_seq, last_seq, commit_time, batch_id)
                        VALUES ($1, $2, $3, $4))
             UPDATE pressroom.log_head
             SET head = $2, commit_time = $3, published_total = published_total + $5"
        ),
        tx.prepare_cached("SELECT pg_notify('pressroom_log', $1::text)"),
    )?;
    let (upsert, requests, sources, log, hours, head, notify) = statements;

    let release_ids: Vec<Uuid> = rows.releases.iter().map(|r| r.id).collect();
    let records: Vec<&[u8]> = rows.releases.iter().map(|r| r.record.as_slice()).collect();
    let revisions: Vec<i64> = rows.releases.iter().map(|r| r.revision).collect();
    let last_seqs: Vec<i64> = rows.releases.iter().map(|r| r.last_seq).collect();
    let positions: Vec<Option<&[u8]>> = rows
        .releases
        .iter()
        .map(|r| r.list_position.as_deref())
        .collect();
    let facets: Vec<Option<&str>> = rows.releases.iter().map(|r| r.facets.as_deref()).collect();
    let embargo_keys: Vec<Option<&[u8]>> = rows
        .releases
        .iter()
        .map(|r| r.embargo_key.as_deref())
        .collect();
    let (request_ids, request_targets): (Vec<&str>, Vec<Uuid>) = rows
        .requests
        .iter()
        .map(|(request, id)| (request.as_str(), *id))
        .unzip();
    let providers: Vec<&str> = rows.sources.iter().map(|s| s.0.as_str()).collect();
    let items: Vec<&str> = rows.sources.iter().map(|s| s.1.as_str()).collect();
    let source_targets: Vec<Uuid> = rows.sources.iter().map(|s| s.2).collect();
    let fingerprints: Vec<&[u8]> = rows.sources.iter().map(|s| s.3.as_slice()).collect();
    let seqs: Vec<i64> = rows.entries.iter().map(|(seq, _)| *seq).collect();
    let entries: Vec<&[u8]> = rows.entries.iter().map(|(_, e)| e.as_slice()).collect();
    let (hour_keys, hour_deltas): (Vec<i64>, Vec<i64>) = rows.hours.iter().copied().unzip();
    let (first, last) = (to_i64(rows.first_seq), to_i64(rows.last_seq));
    let time = time_bytes(commit_time);
    let last_text = rows.last_seq.to_string();

    let time = time.as_slice();
    let upsert_params: [&(dyn ToSql + Sync); 7] = [
        &release_ids,
        &records,
        &revisions,
        &last_seqs,
        &positions,
        &facets,
        &embargo_keys,
    ];
    let request_params: [&(dyn ToSql + Sync); 2] = [&request_ids, &request_targets];
    let source_params: [&(dyn ToSql + Sync); 4] =
        [&providers, &items, &source_targets, &fingerprints];
    let log_params: [&(dyn ToSql + Sync); 2] = [&seqs, &entries];
    let hour_params: [&(dyn ToSql + Sync); 2] = [&hour_keys, &hour_deltas];
    let head_params: [&(dyn ToSql + Sync); 5] =
        [&first, &last, &time, &batch_id, &rows.total_delta];
    let notify_params: [&(dyn ToSql + Sync); 1] = [&last_text];
    // Issued together, so they travel pipelined, and run in this order.
    tokio::try_join!(
        tx.execute(&upsert, &upsert_params),
        async {
            if request_ids.is_empty() {
                return Ok(0);
            }
            tx.execute(&requests, &request_params).await
        },
        async {
            if providers.is_empty() {
                return Ok(0);
            }
            tx.execute(&sources, &source_params).await
        },
        tx.execute(&log, &log_params),
        async {
            if hour_keys.is_empty() {
                return Ok(0);
            }
            tx.execute(&hours, &hour_params).await
        },
        tx.execute(&head, &head_params),
        tx.execute(&notify, &notify_params),
    )?;
    Ok(())
}

/// The `WHERE` of a list: positions after the page's, within the time
/// bounds, with at least one value of every facet group. Parameters: `$1`
/// exclusive lower bound, `$2` inclusive upper bound (or null), `$3` every
/// wanted `tag:value`, `$4` its group, `$5` how many groups.
const LIST_SELECT: &str = "SELECT list_position, record FROM pressroom.releases
     WHERE list_position IS NOT NULL
       AND list_position > $1
       AND ($2::bytea IS NULL OR list_position <= $2)
       AND ($5::int8 = 0 OR (
            SELECT count(DISTINCT w.grp) FROM unnest($3::text[], $4::int4[]) AS w(term, grp)
            WHERE w.term = ANY(facets)) = $5::int8)
     ORDER BY list_position";

/// A list query as statement parameters.
struct ListFilter {
    lower: Vec<u8>,
    upper: Option<Vec<u8>>,
    terms: Vec<String>,
    groups: Vec<i32>,
    group_count: i64,
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
        let mut terms = Vec::new();
        let mut groups = Vec::new();
        for (group, (facet, values)) in query.facets.iter().enumerate() {
            for value in values {
                terms.push(facet_term(facet.tag(), value));
                groups.push(group as i32);
            }
        }
        Self {
            lower,
            upper,
            terms,
            groups,
            group_count: query.facets.len() as i64,
        }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.lower,
            &self.upper,
            &self.terms,
            &self.groups,
            &self.group_count,
        ]
    }
}

/// Polls the shared head every `poll`, and whenever `wake` is notified.
async fn follow(
    pool: Pool,
    head: Arc<watch::Sender<u64>>,
    wake: Arc<Notify>,
    poll: Duration,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
        match read_head(&pool).await {
            Ok(latest) => {
                failures = 0;
                advance(&head, latest);
            }
            Err(error) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(100) {
                    tracing::warn!(error = %crate::telemetry::chain(&error), failures, "cannot read the shared head");
                }
            }
        }
    }
}

/// `LISTEN`s for commits on a dedicated connection and wakes the follower;
/// reconnects when the connection is lost.
async fn listen(target: Target, wake: Arc<Notify>, stop: CancellationToken) {
    loop {
        let (sender, mut notes) = tokio::sync::mpsc::unbounded_channel();
        match target.connect_dedicated(Some(sender)).await {
            Ok(client) => match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                Ok(()) => {
                    // Whatever was committed while not listening.
                    wake.notify_one();
                    loop {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            note = notes.recv() => match note {
                                Some(_) => wake.notify_one(),
                                None => break,
                            },
                        }
                    }
                }
                Err(error) => tracing::debug!(%error, "LISTEN failed"),
            },
            Err(error) => tracing::debug!(%error, "cannot open the LISTEN connection"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn read_head(pool: &Pool) -> Result<u64, StoreError> {
    let client = pool
        .get()
        .await
        .map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))?;
    let statement = client
        .prepare_cached("SELECT head FROM pressroom.log_head")
        .await
        .map_err(db_error)?;
    let row = client.query_one(&statement, &[]).await.map_err(db_error)?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

/// Moves a followed head forward (never back).
fn advance(head: &watch::Sender<u64>, to: u64) {
    head.send_if_modified(|current| {
        if to > *current {
            *current = to;
            true
        } else {
            false
        }
    });
}

/// An error from the database as a store error: a lost or refused
/// connection is [`StoreError::Unavailable`], anything else an engine error.
pub(super) fn db_error(error: tokio_postgres::Error) -> StoreError {
    let connection_lost = error.is_closed()
        || error.as_db_error().is_none()
        || error.code().is_some_and(|code| {
            let code = code.code();
            // 08: connection exception; 57P0x: shutdown, termination.
            code.starts_with("08") || code.starts_with("57P")
        });
    if connection_lost {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::engine(error)
    }
}

/// A failure before `COMMIT` was sent: nothing was committed. A lost
/// connection is worth another try; a refused statement is not.
fn not_committed(error: tokio_postgres::Error) -> Attempt {
    match db_error(error) {
        unavailable @ StoreError::Unavailable(_) => Attempt::NotCommitted(unavailable),
        other => Attempt::Failed(other),
    }
}

fn decode_record(id: &Uuid, bytes: &[u8]) -> Result<PressRelease, StoreError> {
    PressRelease::decode(bytes).map_err(|_| corrupt(&format!("releases/{id}")))
}

fn parse_embargo_key(key: &[u8]) -> Result<(Timestamp, Uuid), StoreError> {
    let (time, id) = key
        .split_first_chunk::<TIME_LEN>()
        .ok_or_else(|| corrupt("releases.embargo_key"))?;
    let id = Uuid::from_slice(id).map_err(|_| corrupt("releases.embargo_key"))?;
    Ok((time_from_bytes(time), id))
}

fn corrupt(key: &str) -> StoreError {
    StoreError::Corrupt { key: key.into() }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Microseconds since the epoch as a timestamp.
fn micros_to_timestamp(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}
