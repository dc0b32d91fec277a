//! The PostgreSQL engine itself: the [`PostgresStore`] and opening it
//! (schema, store id, the head follower), its connections, and how database
//! errors become store errors. Its other jobs live next door: the reads in
//! [`reads`](super::reads) (list statements in
//! [`list_filter`](super::list_filter)), backups in
//! [`backup`](super::backup), the [`Store`] impl in
//! [`adapter`](super::adapter), commits in [`commit`](super::commit), the
//! head follower in [`follow`](super::follow).

use std::{sync::Arc, time::Duration};

use deadpool_postgres::Pool;
use prost::Message;
use tokio::sync::{Notify, watch};
use tokio_postgres::types::ToSql;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[cfg(doc)]
use crate::store::Store;
use crate::{proto::v1::PressRelease, store::StoreError};

use super::{
    commit::InFlight,
    connect::Target,
    follow::{follow, listen, read_head},
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
    pub(super) pool: Pool,
    target: Target,
    pub(super) store_id: Uuid,
    head: Arc<watch::Sender<u64>>,
    /// The writer's commits whose `COMMIT` is in flight.
    in_flight: InFlight,
    /// Whether the server compresses with lz4.
    lz4: bool,
    pub(super) scratch_dir: std::path::PathBuf,
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

    pub(super) async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<tokio_postgres::Row, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(db_error)?;
        client.query_one(&statement, params).await.map_err(db_error)
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
pub(super) fn decode_record(id: &Uuid, bytes: &[u8]) -> Result<PressRelease, StoreError> {
    PressRelease::decode(bytes).map_err(|_| corrupt(&format!("releases/{id}")))
}
pub(super) fn corrupt(key: &str) -> StoreError {
    StoreError::Corrupt { key: key.into() }
}

pub(super) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
