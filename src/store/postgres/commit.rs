//! The commit protocol of the PostgreSQL engine.
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
//! rolled back (the batch is tried again, three times in all, each time on
//! a fresh connection: one whose commit failed is never reused). When
//! neither can be learned the callers get [`StoreError::Unavailable`];
//! nothing is acknowledged twice, and a caller's retry with its request id
//! finds the release if it was written.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use deadpool_postgres::{Object, Pool};
use tokio::sync::{oneshot, watch};
use tokio_postgres::{Statement, types::ToSql};
use uuid::Uuid;

use crate::{
    proto::{Timestamp, compare_times, v1::PressRelease},
    store::{
        Change, ChangeResult, StoreError, StoreFuture,
        position::{time_bytes, time_from_bytes},
    },
};

use super::{
    PostgresStore,
    engine::{connection_lost, corrupt, db_error, decode_record, to_i64},
    plan::{Loaded, Plan, Rows, Wanted},
};

/// How often a batch is tried when it was certainly not committed (the
/// connection was lost before or during `COMMIT`).
const ATTEMPTS: u32 = 3;

/// How long a commit whose outcome was lost is looked for.
const RESOLVE_FOR: Duration = Duration::from_secs(20);

/// Opens a commit transaction. The settings a commit relies on are the
/// transaction's own (`SET LOCAL`), not the session's, so that they hold
/// through a pooler that hands each transaction another server connection
/// (pgbouncer in transaction mode): `COMMIT` waits for the WAL flush (and
/// the synchronous standbys the server is configured with), and a
/// transaction left idle while holding the head lock ends on its own.
const BEGIN: &str = "BEGIN; SET LOCAL synchronous_commit = on; \
     SET LOCAL idle_in_transaction_session_timeout = '15s'";
/// [`BEGIN`], with records compressed by lz4 rather than pglz (a server
/// built with it: most are).
const BEGIN_LZ4: &str = "BEGIN; SET LOCAL synchronous_commit = on; \
     SET LOCAL idle_in_transaction_session_timeout = '15s'; \
     SET LOCAL default_toast_compression = lz4";

/// Locks the head row: every commit's first statement.
const LOCK_HEAD: &str = "SELECT head, commit_time,
        (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
     FROM pressroom.log_head FOR UPDATE";

/// The writer's commits whose `COMMIT` is in flight, in the order they
/// were applied, each with the log head after it, until
/// [`Store::sync`](crate::store::Store::sync) takes it. In order, because
/// two of them can name the same head: a batch applied after one whose
/// `COMMIT` failed is numbered after the same head.
#[derive(Default)]
pub(super) struct InFlight {
    commits: std::sync::Mutex<VecDeque<(u64, Outcome)>>,
}

/// Where the outcome of a `COMMIT` in flight arrives.
type Outcome = oneshot::Receiver<Result<(), StoreError>>;

impl InFlight {
    fn put(&self, head: u64, outcome: Outcome) {
        self.commits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push_back((head, outcome));
    }

    /// The oldest commit applied up to `head`.
    fn take(&self, head: u64) -> Option<Outcome> {
        let mut commits = self
            .commits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = commits.iter().position(|(applied, _)| *applied == head)?;
        commits.remove(at).map(|(_, outcome)| outcome)
    }
}

/// What a commit transaction needs besides its connection: the pool (for
/// resolving a lost `COMMIT` on a fresh connection) and the head to move.
#[derive(Clone)]
struct Committer {
    pool: Pool,
    head: Arc<watch::Sender<u64>>,
    /// What opens a commit transaction.
    begin: &'static str,
}

impl PostgresStore {
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
        self.committer()
            .commit(changes, commit_time, &mut None)
            .await
    }

    /// The writer's half of a commit: runs the transaction up to its
    /// outcomes (head locked, checks read, batch planned) and returns them
    /// with the log head after them, while the statements and `COMMIT`
    /// travel on (one round trip). [`PostgresStore::sync_applied`] waits for
    /// that `COMMIT`. The next batch's transaction can start meanwhile: its
    /// first statement waits for the head lock, that is for this `COMMIT`,
    /// so batches still commit one after the other, in order.
    pub(super) async fn apply_batch(
        &self,
        changes: Vec<Change>,
        commit_time: Option<Timestamp>,
    ) -> Result<(Vec<ChangeResult>, u64), StoreError> {
        let (planned, outcomes) = oneshot::channel();
        let (committed, outcome) = oneshot::channel();
        let committer = self.committer();
        tokio::spawn(async move {
            let mut planned = Some(planned);
            let result = committer.commit(&changes, commit_time, &mut planned).await;
            match planned {
                // Ended before its outcomes were handed out (failed, or
                // nothing to wait for).
                Some(planned) => {
                    let _ = planned.send(result.map(|results| (results, None)));
                }
                None => {
                    let _ = committed.send(result.map(drop));
                }
            }
        });
        let (results, last_seq) = outcomes.await.map_err(|_| StoreError::Closed)??;
        match last_seq {
            Some(head) => {
                self.in_flight().put(head, outcome);
                Ok((results, head))
            }
            // Nothing written: nothing to wait for.
            None => Ok((results, 0)),
        }
    }

    /// Waits for the `COMMIT` of the batch [`PostgresStore::apply_batch`]
    /// returned `head` for.
    pub(super) fn sync_applied(&self, head: u64) -> StoreFuture<()> {
        let outcome = self.in_flight().take(head);
        Box::pin(async move {
            match outcome {
                Some(outcome) => outcome.await.map_err(|_| StoreError::Closed)?,
                None => Ok(()),
            }
        })
    }

    fn committer(&self) -> Committer {
        Committer {
            pool: self.pool().clone(),
            head: self.head_sender(),
            begin: if self.lz4() { BEGIN_LZ4 } else { BEGIN },
        }
    }

    /// Whether the commit of `batch_id` was made (see [`resolve`]).
    #[cfg(test)]
    pub(super) async fn resolve(&self, batch_id: Uuid) -> Result<bool, StoreError> {
        resolve(self.pool(), batch_id).await
    }
}

/// Outcomes handed to the writer before `COMMIT`, with the last sequence
/// number written (`None` when nothing is).
type PlannedOutcomes = Result<(Vec<ChangeResult>, Option<u64>), StoreError>;

impl Committer {
    /// Commits `changes`, trying again (on a fresh connection) while the
    /// batch was certainly not committed and its outcomes were not handed
    /// out through `planned` yet. Once they were, a batch found not
    /// committed fails: the writer's next batch may be numbered already.
    async fn commit(
        &self,
        changes: &[Change],
        proposed: Option<Timestamp>,
        planned: &mut Option<oneshot::Sender<PlannedOutcomes>>,
    ) -> Result<Vec<ChangeResult>, StoreError> {
        let mut tries = 1;
        loop {
            let handed_out = planned.is_none();
            match self.attempt(changes, proposed, planned).await {
                Attempt::Done(results) => return Ok(results),
                Attempt::Failed(error) => return Err(error),
                Attempt::NotCommitted(error)
                    if tries >= ATTEMPTS || (planned.is_none() && !handed_out) =>
                {
                    return Err(error);
                }
                Attempt::NotCommitted(error) => {
                    tracing::warn!(error = %crate::telemetry::chain(&error), tries, "commit not made; trying it again");
                    tries += 1;
                }
            }
        }
    }

    async fn attempt(
        &self,
        changes: &[Change],
        proposed: Option<Timestamp>,
        planned: &mut Option<oneshot::Sender<PlannedOutcomes>>,
    ) -> Attempt {
        let client = match self.pool.get().await {
            Ok(client) => client,
            Err(error) => {
                return Attempt::Failed(StoreError::Unavailable(format!(
                    "no database connection: {error}"
                )));
            }
        };
        let batch_id = Uuid::new_v4();
        let step = transact(&client, self.begin, changes, proposed, batch_id, planned).await;
        if !matches!(step, Step::Done { .. }) {
            // Never hand this connection out again: it may be closing (its
            // end not seen yet) or inside a transaction, and the next
            // commit would fail on it.
            drop(Object::take(client));
        }
        match step {
            Step::Done { results, last_seq } => {
                if let Some(last_seq) = last_seq {
                    super::follow::advance(&self.head, last_seq);
                }
                Attempt::Done(results)
            }
            Step::NotCommitted(error) => Attempt::NotCommitted(error),
            Step::Failed(error) => Attempt::Failed(error),
            Step::CommitLost {
                error,
                results,
                last_seq,
            } => {
                tracing::warn!(error = %crate::telemetry::chain(&error), %batch_id, "the answer to COMMIT was lost; looking the batch up");
                match resolve(&self.pool, batch_id).await {
                    Ok(true) => {
                        super::follow::advance(&self.head, last_seq);
                        Attempt::Done(results)
                    }
                    Ok(false) => Attempt::NotCommitted(error),
                    Err(unknown) => Attempt::Failed(unknown),
                }
            }
        }
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

/// Whether the commit of `batch_id` was made. Waits for the head lock
/// first, so that a transaction still running on a lost connection has
/// ended; keeps trying for a while when the database cannot be reached.
async fn resolve(pool: &Pool, batch_id: Uuid) -> Result<bool, StoreError> {
    let deadline = tokio::time::Instant::now() + RESOLVE_FOR;
    loop {
        let last = match lookup_batch(pool, batch_id).await {
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

async fn lookup_batch(pool: &Pool, batch_id: Uuid) -> Result<bool, StoreError> {
    let mut client = pool
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

/// How one transaction on one connection ended.
enum Step {
    /// Committed, or nothing to write (`last_seq` is `None` then).
    Done {
        results: Vec<ChangeResult>,
        last_seq: Option<u64>,
    },
    /// Certainly not committed; the connection may be lost.
    NotCommitted(StoreError),
    /// Failed, not committed.
    Failed(StoreError),
    /// `COMMIT` was sent and its answer lost: committed or not is unknown.
    CommitLost {
        error: StoreError,
        results: Vec<ChangeResult>,
        last_seq: u64,
    },
}

/// Runs one commit transaction on `client`, in two round trips: `BEGIN`,
/// the head lock and the reads the checks need; then, once the batch is
/// planned, every table's statement and `COMMIT`. The outcomes go to
/// `planned` (when given) as soon as they are known, before `COMMIT`.
async fn transact(
    client: &Object,
    begin: &str,
    changes: &[Change],
    proposed: Option<Timestamp>,
    batch_id: Uuid,
    planned: &mut Option<oneshot::Sender<PlannedOutcomes>>,
) -> Step {
    let (results, rows, commit_time) = match plan(client, begin, changes, proposed).await {
        Ok(Planned {
            results,
            rows: None,
        }) => {
            // Nothing to write: the answers were read under the lock.
            if let Err(error) = client.batch_execute("ROLLBACK").await {
                return not_committed(error);
            }
            if let Some(planned) = planned.take() {
                let _ = planned.send(Ok((results.clone(), None)));
            }
            return Step::Done {
                results,
                last_seq: None,
            };
        }
        Ok(Planned {
            results,
            rows: Some((rows, commit_time)),
        }) => (results, rows, commit_time),
        Err(PlanError::Store(error)) => return Step::Failed(error),
        Err(PlanError::Db(error)) => return not_committed(error),
    };
    let statements = match prepare_writes(client).await {
        Ok(statements) => statements,
        Err(error) => return not_committed(error),
    };
    if let Some(planned) = planned.take() {
        let _ = planned.send(Ok((results.clone(), Some(rows.last_seq))));
    }
    let committing = std::time::Instant::now();
    // The statements and COMMIT go out together. A statement refused
    // aborts the transaction (its COMMIT then rolls back): certainly not
    // committed. A connection lost on the way leaves the outcome unknown.
    let (written, committed) = tokio::join!(
        write(client, &statements, &rows, &commit_time, batch_id),
        client.batch_execute("COMMIT"),
    );
    metrics::histogram!("pressroom_flush_seconds").record(committing.elapsed().as_secs_f64());
    let lost = |error: tokio_postgres::Error| Step::CommitLost {
        error: db_error(error),
        results: results.clone(),
        last_seq: rows.last_seq,
    };
    match (written, committed) {
        (Err(error), _) if error.as_db_error().is_some() && !connection_lost(&error) => {
            Step::Failed(db_error(error))
        }
        (Err(error), _) => lost(error),
        (Ok(()), Err(error)) if error.as_db_error().is_some() && !connection_lost(&error) => {
            // Refused at COMMIT (a deferred check): rolled back.
            Step::Failed(db_error(error))
        }
        (Ok(()), Err(error)) => lost(error),
        (Ok(()), Ok(())) => Step::Done {
            last_seq: Some(rows.last_seq),
            results,
        },
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

/// Opens the transaction, locks the head and reads what the checks need,
/// in one round trip; then plans the batch.
async fn plan(
    client: &Object,
    begin: &str,
    changes: &[Change],
    proposed: Option<Timestamp>,
) -> Result<Planned, PlanError> {
    let wanted = Wanted::of(changes);
    let lock = client.prepare_cached(LOCK_HEAD).await?;
    let (_, row, mut loaded) = tokio::try_join!(
        async { client.batch_execute(begin).await.map_err(PlanError::from) },
        async { client.query_one(&lock, &[]).await.map_err(PlanError::from) },
        load(client, &wanted),
    )?;
    let missing = loaded.missing_targets();
    loaded
        .releases
        .extend(read_releases(client, &missing).await?);
    let head = row.get::<_, i64>(0).max(0) as u64;
    let last_time = time_from_bytes(
        row.get::<_, &[u8]>(1)
            .try_into()
            .map_err(|_| PlanError::Store(corrupt("log_head.commit_time")))?,
    );
    let clock = proposed.unwrap_or_else(|| micros_to_timestamp(row.get(2)));
    let commit_time = std::cmp::max_by(last_time, clock, compare_times);

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

/// Reads, in bulk and pipelined, the rows a batch's checks need (sent
/// behind the head lock, so they read what is committed once it is held).
async fn load(client: &Object, wanted: &Wanted) -> Result<Loaded, PlanError> {
    let mut loaded = Loaded::default();
    let (releases, requests, sources) = tokio::try_join!(
        read_releases(client, &wanted.ids),
        async {
            if wanted.request_ids.is_empty() {
                return Ok(Vec::new());
            }
            let statement = client
                .prepare_cached(
                    "SELECT request_id, release_id FROM pressroom.request_ids
                     WHERE request_id = ANY($1::text[])",
                )
                .await?;
            Ok(client.query(&statement, &[&wanted.request_ids]).await?)
        },
        async {
            if wanted.sources.is_empty() {
                return Ok(Vec::new());
            }
            let statement = client
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
            Ok(client.query(&statement, &[&providers, &items]).await?)
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
    Ok(loaded)
}

/// Releases by id, with their last sequence numbers.
async fn read_releases(
    client: &Object,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, (PressRelease, u64))>, PlanError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let statement = client
        .prepare_cached(
            "SELECT id, record, last_seq FROM pressroom.releases WHERE id = ANY($1::uuid[])",
        )
        .await?;
    let rows = client.query(&statement, &[&ids]).await?;
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
/// Inserts source claims, or moves them to a later version's fingerprint.
pub(super) const INSERT_SOURCES: &str =
    "INSERT INTO pressroom.sources (provider, item_id, release_id, fingerprint)
     SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::bytea[])
     ON CONFLICT (provider, item_id) DO UPDATE SET
        release_id = excluded.release_id, fingerprint = excluded.fingerprint";
/// Appends change-log entries.
pub(super) const INSERT_ENTRIES: &str = "INSERT INTO pressroom.change_log (seq, entry)
     SELECT * FROM unnest($1::int8[], $2::bytea[])";
/// Adds to the published counts per hour.
pub(super) const ADD_HOURS: &str = "INSERT INTO pressroom.published_hours (hour, count)
     SELECT * FROM unnest($1::int8[], $2::int8[])
     ON CONFLICT (hour) DO UPDATE SET count = published_hours.count + excluded.count";

/// The prepared statements a commit writes with.
struct Writes {
    upsert: Statement,
    requests: Statement,
    sources: Statement,
    log: Statement,
    hours: Statement,
    head: Statement,
    notify: Statement,
}

/// Prepares (once per connection; cached after) what [`write`] sends.
async fn prepare_writes(client: &Object) -> Result<Writes, tokio_postgres::Error> {
    let (upsert, requests, sources, log, hours, head, notify) = tokio::try_join!(
        client.prepare_cached(UPSERT_RELEASES),
        client.prepare_cached(INSERT_REQUESTS),
        client.prepare_cached(INSERT_SOURCES),
        client.prepare_cached(INSERT_ENTRIES),
        client.prepare_cached(ADD_HOURS),
        client.prepare_cached(
            "WITH c AS (INSERT INTO pressroom.commits (first_seq, last_seq, commit_time, batch_id)
                        VALUES ($1, $2, $3, $4))
             UPDATE pressroom.log_head
             SET head = $2, commit_time = $3, published_total = published_total + $5"
        ),
        client.prepare_cached("SELECT pg_notify('pressroom_log', $1::text)"),
    )?;
    Ok(Writes {
        upsert,
        requests,
        sources,
        log,
        hours,
        head,
        notify,
    })
}

/// Sends a planned batch's statements: every table in one statement, all
/// of them pipelined (each is sent when first polled, before any answer is
/// awaited, so a `COMMIT` polled after this future follows them).
async fn write(
    client: &Object,
    statements: &Writes,
    rows: &Rows,
    commit_time: &Timestamp,
    batch_id: Uuid,
) -> Result<(), tokio_postgres::Error> {
    let Writes {
        upsert,
        requests,
        sources,
        log,
        hours,
        head,
        notify,
    } = statements;

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
        client.execute(upsert, &upsert_params),
        async {
            if request_ids.is_empty() {
                return Ok(0);
            }
            client.execute(requests, &request_params).await
        },
        async {
            if providers.is_empty() {
                return Ok(0);
            }
            client.execute(sources, &source_params).await
        },
        client.execute(log, &log_params),
        async {
            if hour_keys.is_empty() {
                return Ok(0);
            }
            client.execute(hours, &hour_params).await
        },
        client.execute(head, &head_params),
        client.execute(notify, &notify_params),
    )?;
    Ok(())
}

/// A failure before `COMMIT` was sent: nothing was committed. A lost
/// connection is worth another try; a refused statement is not.
fn not_committed(error: tokio_postgres::Error) -> Step {
    match db_error(error) {
        unavailable @ StoreError::Unavailable(_) => Step::NotCommitted(unavailable),
        other => Step::Failed(other),
    }
}

/// Microseconds since the epoch as a timestamp.
fn micros_to_timestamp(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}
