//! Storage: the bytes on disk, the keys, the indexes, the change log and
//! durability. It knows nothing of gRPC, and owns no business rules beyond
//! the few that must be checked inside a commit to be race-free: request-id
//! idempotency, source uniqueness and compare-and-swap on the revision.
//!
//! The [`Store`] trait is what an engine provides, and `conformance` is
//! the suite any engine must pass. Each engine has its own folder, as
//! Garage's `db/` has one adapter per engine: [`sled`] (the
//! [`SledStore`], embedded, the default) and [`postgres`] (the
//! [`PostgresStore`], a database that stateless replicas share; its methods
//! are async, and it joins the trait once the trait is). What every engine
//! shares lives here: the trait and its types, the change log's
//! [`LogEntry`], [`ListPosition`]s (what page tokens carry), the [`facets`]
//! and their hashes, [`TransferItem`]s (a store moving between engines),
//! and the [`Writer`].
//!
//! All writes reach an engine through the one [`Writer`] task, which batches
//! them, commits each batch atomically, flushes once, and only then answers
//! the callers and moves the durable head of the change log that readers
//! follow. Subscription state (see [`SubscriptionChange`]) is the one
//! exception: it is no change to press releases and writes no change-log
//! entry, so each subscription commits its own batches through
//! [`Store::commit_subscriptions`], and an engine lets concurrent commits
//! share a sync with each other and with the writer's.

mod backup;
pub mod facets;
mod log;
mod position;
pub mod postgres;
pub mod sled;
mod subscriptions;
mod transfer;
mod writer;

#[cfg(test)]
pub(crate) mod conformance;

use std::{error::Error as StdError, sync::Arc};

use uuid::Uuid;

use crate::proto::{Timestamp, compare_times, v1::PressRelease};

pub use self::postgres::{PostgresOptions, PostgresStore};
pub use self::sled::{RestoreError, SledStore};
pub use backup::{BackupFile, BackupInfo};
pub use facets::{Facet, facet_hash, facet_values};
pub use log::{ChangeKind, LogEntry};
pub use position::ListPosition;
pub use subscriptions::{
    EventState, StoredDeadLetter, SubscriptionChange, SubscriptionLease, SubscriptionRecord,
    SubscriptionState,
};
pub use transfer::{PortableReader, PortableWriter, TransferItem};
pub use writer::Writer;

/// What went wrong in the storage layer.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine reported an error (I/O, usually).
    #[error("the storage engine failed")]
    Engine(#[source] Arc<dyn StdError + Send + Sync>),
    /// A stored value failed its checksum or could not be decoded.
    #[error("the value stored under key `{key}` is damaged")]
    Corrupt {
        /// The key, printable.
        key: String,
    },
    /// An earlier commit could not be made durable; no more writes are taken.
    #[error("writes are refused after an earlier commit could not be flushed")]
    Poisoned,
    /// The writer has stopped (the server is shutting down).
    #[error("the writer has stopped")]
    Closed,
    /// The data dir was written by another version of Pressroom.
    #[error("the store has format version {found}; this build reads version {supported}")]
    UnsupportedFormat {
        /// Version found on disk.
        found: u32,
        /// Version this build reads and writes.
        supported: u32,
    },
    /// The database cannot be reached, or a commit's outcome could not be
    /// learned; nothing of the commit was acknowledged.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// This engine does not do that (the message says what to do instead).
    #[error("{0}")]
    Unsupported(String),
}

impl StoreError {
    /// Wraps an engine error.
    pub fn engine(error: impl StdError + Send + Sync + 'static) -> Self {
        Self::Engine(Arc::new(error))
    }
}

/// A change the domain asks the store to make.
#[derive(Clone, Debug)]
pub enum Change {
    /// Create a new press release.
    Create(NewRelease),
    /// Replace a press release's record if its revision is still the one
    /// expected (compare-and-swap).
    Replace(Replacement),
}

/// A press release to create, fully formed (name, times, revision, etag).
#[derive(Clone, Debug)]
pub struct NewRelease {
    /// The release id (the `{id}` of its name).
    pub id: Uuid,
    /// The record to store.
    pub release: PressRelease,
    /// Idempotency key: if a release was created with it, that one is
    /// returned instead.
    pub request_id: Option<String>,
    /// `(provider, item_id)`, unique across the store.
    pub source: Option<(String, String)>,
    /// Fingerprint of the caller's content, compared when `source` exists.
    pub fingerprint: Vec<u8>,
}

/// A new record for an existing press release.
#[derive(Clone, Debug)]
pub struct Replacement {
    /// The release id.
    pub id: Uuid,
    /// The revision the record must still have.
    pub expected_revision: i64,
    /// The new record.
    pub release: PressRelease,
    /// What kind of change this is, for the change log.
    pub kind: ChangeKind,
    /// For a later version of the release's source: the fingerprint of its
    /// content, which the source claim takes in the same commit, so that the
    /// same version sent again is found as a duplicate. The source is the
    /// one `release` names; if another release holds it, the change is
    /// refused with [`Rejected::SourceTaken`]. `None` leaves the claim as
    /// it is (an update by mask, a withdrawal, an embargo lifted).
    pub source_fingerprint: Option<Vec<u8>>,
}

/// A change that was carried out.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    /// Written, with this sequence number in the change log.
    Committed {
        /// The stored record.
        release: PressRelease,
        /// Its change-log sequence number.
        seq: u64,
    },
    /// Nothing written: an equal create was made before (same request id, or
    /// same source with the same content). This is what is stored.
    Existing(PressRelease),
}

/// A change that was refused; nothing of it was written.
#[derive(Clone, Debug, PartialEq)]
pub enum Rejected {
    /// Another press release holds the same source: a create with other
    /// content, or a replacement naming a source not its own. This is it.
    SourceTaken(PressRelease),
    /// No such release.
    NotFound,
    /// The release's revision is no longer the one expected. This is it now.
    Stale(PressRelease),
}

/// The outcome of one change within a commit.
pub type ChangeResult = Result<Applied, Rejected>;

/// Which published releases a `list` returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListQuery {
    /// For each facet, the normalised values of which one must match.
    /// Facets are AND-ed; an empty list of facets does not restrict.
    pub facets: Vec<(Facet, Vec<String>)>,
    /// Only releases published at or after this time.
    pub published_at_or_after: Option<Timestamp>,
    /// Only releases published before this time.
    pub published_before: Option<Timestamp>,
}

impl ListQuery {
    /// Whether a release satisfies the query (used to re-check what an index
    /// walk found, since a concurrent commit may have changed it since).
    pub fn matches(&self, release: &PressRelease) -> bool {
        let time = release.publish_time.unwrap_or_default();
        if let Some(after) = &self.published_at_or_after
            && compare_times(&time, after).is_lt()
        {
            return false;
        }
        if let Some(before) = &self.published_before
            && compare_times(&time, before).is_ge()
        {
            return false;
        }
        if self.facets.is_empty() {
            return true;
        }
        let values = facet_values(release);
        self.facets.iter().all(|(facet, wanted)| {
            wanted
                .iter()
                .any(|value| values.contains(&(*facet, value.clone())))
        })
    }
}

/// A press release as stored, encoded (see [`Store::get_encoded`]).
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedRelease {
    /// Its `state` (a `press_release::State`).
    pub state: i32,
    /// Its `revision`.
    pub revision: i64,
    /// The encoded `PressRelease`.
    pub bytes: bytes::Bytes,
}

impl EncodedRelease {
    /// Its state.
    pub fn state(&self) -> crate::proto::v1::press_release::State {
        crate::proto::v1::press_release::State::try_from(self.state).unwrap_or_default()
    }
}

/// A future a [`Store`] hands back that borrows nothing: it can be held
/// while other work goes on (the writer holds a sync while it applies the
/// next batch).
pub type StoreFuture<T> = futures_util::future::BoxFuture<'static, Result<T, StoreError>>;

/// A storage engine. Its operations are async: an engine on the network
/// (PostgreSQL) awaits its database, and an embedded engine (sled) runs
/// what may take long on the blocking pool and answers cheap point reads on
/// the caller's thread, as it sees fit; callers just await. The operations
/// are shaped so a networked engine can answer each in one round trip
/// (e.g. [`Store::read_changes`] reads log entries with their records).
///
/// A new operation is added here with a one-line doc saying what it
/// returns, to every engine (`sled/engine.rs`, `postgres/engine.rs`), and
/// to the conformance suite's blocking adapter (`conformance.rs`).
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// A random id chosen when the store was created, kept by backups and
    /// migrations (cursors carry it).
    fn store_id(&self) -> Uuid;

    /// Applies `changes` in order as one atomic commit and makes it durable
    /// before returning. Each change sees the effects of the ones before it.
    /// Every change that writes appends one change-log entry, numbered
    /// without gaps. `commit_time` is what tests ask for; `None` takes the
    /// engine's clock (the database's, for a shared one); either way commit
    /// times never go back. An `Err` means none of the batch is
    /// acknowledged.
    async fn commit(
        &self,
        changes: Vec<Change>,
        commit_time: Option<Timestamp>,
    ) -> Result<Vec<ChangeResult>, StoreError>;

    /// The first half of [`Store::commit`], for a writer that overlaps a
    /// commit's sync with the next commit's work: applies `changes` as one
    /// atomic commit and returns their outcomes and the log head after
    /// them, maybe before they are durable. Until [`Store::sync`] has made
    /// them durable no read shows them, and nothing may be acknowledged.
    /// An engine whose commits are durable when applied (one transaction
    /// each) keeps this default.
    async fn apply(
        &self,
        changes: Vec<Change>,
        commit_time: Option<Timestamp>,
    ) -> Result<(Vec<ChangeResult>, u64), StoreError> {
        let results = self.commit(changes, commit_time).await?;
        let head = results
            .iter()
            .filter_map(|result| match result {
                Ok(Applied::Committed { seq, .. }) => Some(*seq),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        Ok((results, head))
    }

    /// The second half of [`Store::commit`]: starts making everything
    /// applied up to log position `head` durable (and readable) at once, and
    /// returns a future that answers when it is. An `Err` means it may not
    /// be, and no later commit will be either.
    fn sync(&self, head: u64) -> StoreFuture<()> {
        let _ = head;
        Box::pin(std::future::ready(Ok(())))
    }

    /// The current record of a release, withdrawn ones included.
    async fn get(&self, id: &Uuid) -> Result<Option<PressRelease>, StoreError>;

    /// Like [`Store::get`], the record as its encoded bytes with the few
    /// fields a stream selects on, for readers that pass it on unchanged.
    /// An engine that keeps the encoded record overrides this default
    /// (which encodes what `get` decoded).
    async fn get_encoded(&self, id: &Uuid) -> Result<Option<EncodedRelease>, StoreError> {
        Ok(self.get(id).await?.map(|release| EncodedRelease {
            state: release.state,
            revision: release.revision,
            bytes: prost::Message::encode_to_vec(&release).into(),
        }))
    }

    /// Published releases matching `query`, in list order, starting after
    /// `after`, at most `limit` of them.
    async fn list(
        &self,
        query: &ListQuery,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<(ListPosition, PressRelease)>, StoreError>;

    /// Calls `visit` with the publish time of every published release that
    /// matches `query`, newest first, reading only the indexes.
    async fn published_times(
        &self,
        query: &ListQuery,
        visit: &mut (dyn FnMut(Timestamp) + Send),
    ) -> Result<(), StoreError>;

    /// How many releases are published (kept with every commit).
    async fn published_total(&self) -> Result<u64, StoreError>;

    /// Published releases per publish hour (hours since the epoch) for the
    /// hours `from_hour <= h < to_hour` that have any, in order (kept with
    /// every commit).
    async fn published_per_hour(
        &self,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError>;

    /// The sequence number of the last committed change-log entry this
    /// store knows of (0 when the log is empty).
    fn log_head(&self) -> u64;

    /// The head of a change log that other processes also write to, as
    /// this one follows it (PostgreSQL replicas); `None` for an engine this
    /// process alone writes (its writer's durable head says it all).
    fn followed_head(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// Learns the change log's head now and returns it: a replica of a
    /// shared store asks the database (and its followed head moves on at
    /// once); an engine this process alone writes knows it already.
    async fn latest_head(&self) -> Result<u64, StoreError> {
        Ok(self.log_head())
    }

    /// Change-log entries with `after < seq <= up_to`, in order, at most
    /// `limit` of them.
    async fn read_log(
        &self,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError>;

    /// Like [`Store::read_log`], each entry with the current record of its
    /// release when `with_records` (the record may be newer than the
    /// entry: compare revisions), for readers that want both in one go.
    async fn read_changes(
        &self,
        after: u64,
        up_to: u64,
        limit: usize,
        with_records: bool,
    ) -> Result<Vec<(LogEntry, Option<PressRelease>)>, StoreError> {
        let entries = self.read_log(after, up_to, limit).await?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let release = match Uuid::from_slice(&entry.release_id) {
                Ok(id) if with_records => self.get(&id).await?,
                _ => None,
            };
            out.push((entry, release));
        }
        Ok(out)
    }

    /// The log position from which the entries committed at or after `time`
    /// follow: reading after it yields exactly those entries.
    async fn log_position_at(&self, time: &Timestamp) -> Result<u64, StoreError>;

    /// The earliest pending embargo: its time and release.
    async fn next_embargo(&self) -> Result<Option<(Timestamp, Uuid)>, StoreError>;

    /// Embargoed releases whose embargo time is at or before `now`, earliest
    /// first, at most `limit` of them.
    async fn embargoes_due(&self, now: &Timestamp, limit: usize) -> Result<Vec<Uuid>, StoreError>;

    /// Every embargoed release, earliest embargo first.
    async fn embargoed(&self) -> Result<Vec<PressRelease>, StoreError>;

    /// How many embargoed releases wait for their time.
    async fn embargoes_pending(&self) -> Result<u64, StoreError>;

    /// Whether [`Store::backup_file`] needs the writer paused (see
    /// [`Writer::exclusive`]) to see one log position; an engine that reads
    /// a snapshot does not.
    fn backup_needs_writer_paused(&self) -> bool {
        true
    }

    /// Writes a backup of everything into a scratch file of the engine's
    /// and returns it to be read; the file is deleted when the
    /// [`BackupFile`] is dropped.
    async fn backup_file(&self) -> Result<BackupFile, StoreError>;

    /// Makes everything committed so far durable.
    async fn flush(&self) -> Result<(), StoreError>;

    /// Stores a new subscription, positioned after log position `position`,
    /// durably; `false` (and nothing written) if one with its id exists.
    /// Engines that keep no subscriptions yet answer [`StoreError::Unsupported`].
    async fn create_subscription(
        &self,
        record: &SubscriptionRecord,
        position: u64,
    ) -> Result<bool, StoreError> {
        let _ = (record, position);
        Err(unsupported_subscriptions())
    }

    /// A subscription's definition, by id.
    async fn subscription(&self, id: &str) -> Result<Option<SubscriptionRecord>, StoreError> {
        let _ = id;
        Err(unsupported_subscriptions())
    }

    /// Subscriptions whose id sorts after `after`, in id order, at most
    /// `limit` of them.
    async fn subscriptions(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let _ = (after, limit);
        Err(unsupported_subscriptions())
    }

    /// Deletes a subscription with all its state, durably; `false` if there
    /// was none.
    async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let _ = id;
        Err(unsupported_subscriptions())
    }

    /// A subscription's state, if it exists.
    async fn subscription_state(&self, id: &str) -> Result<Option<SubscriptionState>, StoreError> {
        let _ = id;
        Err(unsupported_subscriptions())
    }

    /// Applies changes to subscription state atomically and durably, without
    /// a change-log entry; changes for subscriptions that do not exist are
    /// skipped. Called by several tasks at once: an engine lets concurrent
    /// calls share one sync (group commit).
    async fn commit_subscriptions(
        &self,
        changes: Vec<SubscriptionChange>,
    ) -> Result<(), StoreError> {
        let _ = changes;
        Err(unsupported_subscriptions())
    }

    /// The right to dispatch subscription `id` in this process: with
    /// replicas sharing the store, one process at a time dispatches a
    /// subscription, and [`Store::commit_subscriptions`] refuses the
    /// changes of a process that has lost its lease. An engine this
    /// process alone writes grants it at once (this default).
    fn subscription_lease(&self, id: &str) -> SubscriptionLease {
        let _ = id;
        SubscriptionLease::granted()
    }
}

/// The answer of an engine that keeps no subscriptions yet.
fn unsupported_subscriptions() -> StoreError {
    StoreError::Unsupported(
        "this storage engine does not keep subscriptions yet (use the sled engine)".into(),
    )
}
