//! The sled engine itself: opening a data dir (its format version and store
//! id, waiting out a lock sled is letting go of, clearing backup scratch
//! files a crash left), the [`Store`] impl, and the reads. Everything lives
//! in one sled tree under the prefixes of [`layout`], so that a commit is a
//! single atomic `apply_batch` (sled batches are atomic on one tree, across
//! crashes too) followed by one `flush`. Only the writer task calls
//! [`Store::commit`], so the change-log head needs no lock, and no sled
//! transaction is needed: the commit [plans](super::plan) its batch against
//! an in-memory overlay of what the batch has written so far.
//!
//! Sharp edge kept in mind: sled 0.34's `flush_async` can deadlock when
//! called from many tasks, so only the writer flushes, synchronously.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use prost::Message as _;
use uuid::Uuid;

use crate::{
    proto::{
        Timestamp, compare_times,
        v1::{PressRelease, press_release::State},
    },
    store::{
        BackupFile, BackupInfo, Change, ChangeResult, EncodedRelease, ListPosition, ListQuery,
        LogEntry, Store, StoreError, StoreFuture, SubscriptionChange, SubscriptionRecord,
        SubscriptionState,
    },
};

use super::{
    backup::{self, RestoreError},
    durability::{self, Durability},
    layout,
    plan::Plan,
    record::{
        ReleaseHead, StoredEncoded, StoredRelease, corrupt, decode_count, open, open_message, seal,
        unwrap_record,
    },
    subscriptions,
    walk::walk,
};

/// The on-disk format this build reads and writes.
const FORMAT_VERSION: u32 = 3;

/// A [`Store`] on a sled database in a directory.
pub struct SledStore {
    pub(super) db: sled::Db,
    store_id: Uuid,
    /// The log head as applied: moved before a batch is applied, so that a
    /// read that sees a change knows it may have to wait for it.
    pub(super) head: AtomicU64,
    /// The log head as synced, and the syncing.
    durability: Durability,
    /// Commit times never go backwards, even if the clock does.
    last_commit_time: Mutex<Timestamp>,
    /// Where backups are written before they are streamed.
    scratch: PathBuf,
    /// Held while a change to subscriptions is planned and applied.
    subscriptions: Mutex<()>,
}

impl SledStore {
    /// Opens (or creates) the database in `path`, with a page cache of
    /// `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let config = sled::Config::new().path(path).cache_capacity(cache_bytes);
        let db = open_waiting_for_lock(&config, LOCK_WAIT).map_err(StoreError::engine)?;
        // Only now that the directory is ours: a running server's backup in
        // progress is not a leftover.
        let scratch = backup::clear_scratch(path).map_err(StoreError::engine)?;
        let store_id = Self::read_or_init_meta(&db)?;
        let (head, last_commit_time) = match db
            .scan_prefix([layout::LOG])
            .next_back()
            .transpose()
            .map_err(StoreError::engine)?
        {
            Some((key, value)) => {
                let entry: LogEntry = open_message(&key, &value)?;
                (entry.seq, entry.commit_time.unwrap_or_default())
            }
            None => (0, Timestamp::default()),
        };
        let durability = Durability::open(path, head).map_err(StoreError::engine)?;
        Ok(Self {
            db,
            store_id,
            head: AtomicU64::new(head),
            durability,
            last_commit_time: Mutex::new(last_commit_time),
            scratch,
            subscriptions: Mutex::new(()),
        })
    }

    /// Holds every commit after sled has written it and before it is
    /// synced, until the guard is dropped: a test can see what reads do
    /// while a change is applied but not yet durable.
    #[cfg(feature = "test-hooks")]
    pub fn hold_syncs(&self) -> super::durability::hold::Held<'_> {
        self.durability.hold()
    }

    /// Waits, after a read, until everything it may have seen is durable.
    fn settle(&self) -> Result<(), StoreError> {
        self.wait_durable(self.head.load(Ordering::SeqCst))
    }

    /// Returns once the log is durable up to `seq`: the writer's sync
    /// normally gets there first; if it has not within
    /// [`durability::HELP_AFTER`], this read syncs once the batch is applied
    /// rather than wait on a task that may need this thread to run.
    fn wait_durable(&self, seq: u64) -> Result<(), StoreError> {
        if self.durability.wait_durable(seq, durability::HELP_AFTER)? {
            return Ok(());
        }
        self.durability.wait_applied(seq)?;
        self.sync(seq)
    }

    fn read_or_init_meta(db: &sled::Db) -> Result<Uuid, StoreError> {
        let format_key = layout::meta_key("format");
        let id_key = layout::meta_key("store_id");
        match db.get(&format_key).map_err(StoreError::engine)? {
            Some(value) => {
                let bytes: [u8; 4] = open(&format_key, &value)?
                    .try_into()
                    .map_err(|_| corrupt(&format_key))?;
                let found = u32::from_le_bytes(bytes);
                if found != FORMAT_VERSION {
                    return Err(StoreError::UnsupportedFormat {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                let value = db
                    .get(&id_key)
                    .map_err(StoreError::engine)?
                    .ok_or_else(|| corrupt(&id_key))?;
                Uuid::from_slice(open(&id_key, &value)?).map_err(|_| corrupt(&id_key))
            }
            None => {
                if db.iter().next().is_some() {
                    return Err(corrupt(&format_key));
                }
                let store_id = Uuid::new_v4();
                let mut batch = sled::Batch::default();
                batch.insert(id_key, seal(store_id.as_bytes()));
                batch.insert(format_key, seal(&FORMAT_VERSION.to_le_bytes()));
                db.apply_batch(batch).map_err(StoreError::engine)?;
                db.flush().map_err(StoreError::engine)?;
                Ok(store_id)
            }
        }
    }

    /// A release's record, once durable: a record whose latest change is
    /// not on disk yet is waited for, then read again.
    fn read_release(&self, id: &Uuid) -> Result<Option<PressRelease>, StoreError> {
        let key = layout::release_key(id);
        loop {
            let Some(value) = self.db.get(&key).map_err(StoreError::engine)? else {
                return Ok(None);
            };
            let stored: StoredRelease = open_message(&key, &value)?;
            if stored.last_seq <= self.durability.head() {
                return unwrap_record(&key, stored).map(Some);
            }
            self.wait_durable(stored.last_seq)?;
        }
    }
}

/// The engine's operations, blocking (the [`Store`] impl below hands them
/// to the blocking pool where they may take long).
impl SledStore {
    /// See [`Store::store_id`].
    pub fn store_id(&self) -> Uuid {
        self.store_id
    }

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

    /// See [`Store::get`].
    pub fn get(&self, id: &Uuid) -> Result<Option<PressRelease>, StoreError> {
        self.read_release(id)
    }

    /// See [`Store::get_encoded`]: the stored bytes, only the head decoded.
    pub fn get_encoded(&self, id: &Uuid) -> Result<Option<EncodedRelease>, StoreError> {
        let key = layout::release_key(id);
        loop {
            let Some(value) = self.db.get(&key).map_err(StoreError::engine)? else {
                return Ok(None);
            };
            open(&key, &value)?;
            // The value's own buffer, not a copy: the release is a slice of it.
            let payload = bytes::Bytes::from_owner(value).slice(4..);
            let stored = StoredEncoded::decode(payload).map_err(|_| corrupt(&key))?;
            if stored.last_seq <= self.durability.head() {
                let head =
                    ReleaseHead::decode(stored.release.clone()).map_err(|_| corrupt(&key))?;
                return Ok(Some(EncodedRelease {
                    state: head.state,
                    revision: head.revision,
                    bytes: stored.release,
                }));
            }
            self.wait_durable(stored.last_seq)?;
        }
    }

    /// See [`Store::list`].
    pub fn list(
        &self,
        query: &ListQuery,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<(ListPosition, PressRelease)>, StoreError> {
        let mut out = Vec::new();
        walk(&self.db, query, after, &mut |position| {
            // The index walk is not a snapshot: a commit may have changed the
            // release since its index entry was read. Keep it only if it is
            // still published at this place and still matches.
            if let Some(release) = self.read_release(&position.release_id())? {
                let current = ListPosition::new(
                    &release.publish_time.unwrap_or_default(),
                    &position.release_id(),
                );
                if release.state() == State::Published
                    && current == position
                    && query.matches(&release)
                {
                    out.push((position, release));
                }
            }
            Ok(out.len() < limit)
        })?;
        self.settle()?;
        Ok(out)
    }

    /// See [`Store::published_times`].
    pub fn published_times(
        &self,
        query: &ListQuery,
        visit: &mut dyn FnMut(Timestamp),
    ) -> Result<(), StoreError> {
        // Settled first: what is visited cannot be taken back.
        self.settle()?;
        walk(&self.db, query, None, &mut |position| {
            visit(position.publish_time());
            Ok(true)
        })
    }

    /// See [`Store::published_total`].
    pub fn published_total(&self) -> Result<u64, StoreError> {
        let key = layout::total_count_key();
        let total = match self.db.get(&key).map_err(StoreError::engine)? {
            Some(value) => decode_count(&key, &value)?,
            None => 0,
        };
        self.settle()?;
        Ok(total)
    }

    /// See [`Store::published_per_hour`].
    pub fn published_per_hour(
        &self,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let mut out = Vec::new();
        if from_hour >= to_hour {
            return Ok(out);
        }
        for entry in self
            .db
            .range(layout::hour_count_key(from_hour)..layout::hour_count_key(to_hour))
        {
            let (key, value) = entry.map_err(StoreError::engine)?;
            let hour = layout::hour_from_count_key(&key).ok_or_else(|| corrupt(&key))?;
            out.push((hour, decode_count(&key, &value)?));
        }
        self.settle()?;
        Ok(out)
    }

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

    /// See [`Store::next_embargo`].
    pub fn next_embargo(&self) -> Result<Option<(Timestamp, Uuid)>, StoreError> {
        match self.db.scan_prefix([layout::EMBARGO]).next() {
            Some(entry) => {
                let (key, _) = entry.map_err(StoreError::engine)?;
                layout::parse_embargo_key(&key)
                    .map(Some)
                    .ok_or_else(|| corrupt(&key))
            }
            None => Ok(None),
        }
    }

    /// See [`Store::embargoes_due`].
    pub fn embargoes_due(&self, now: &Timestamp, limit: usize) -> Result<Vec<Uuid>, StoreError> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix([layout::EMBARGO]).take(limit) {
            let (key, _) = entry.map_err(StoreError::engine)?;
            let (time, id) = layout::parse_embargo_key(&key).ok_or_else(|| corrupt(&key))?;
            if compare_times(&time, now).is_gt() {
                break;
            }
            out.push(id);
        }
        Ok(out)
    }

    /// See [`Store::embargoed`].
    pub fn embargoed(&self) -> Result<Vec<PressRelease>, StoreError> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix([layout::EMBARGO]) {
            let (key, _) = entry.map_err(StoreError::engine)?;
            let (_, id) = layout::parse_embargo_key(&key).ok_or_else(|| corrupt(&key))?;
            if let Some(release) = self.read_release(&id)? {
                out.push(release);
            }
        }
        self.settle()?;
        Ok(out)
    }

    /// See [`Store::embargoes_pending`].
    pub fn embargoes_pending(&self) -> Result<u64, StoreError> {
        let mut count = 0;
        for entry in self.db.scan_prefix([layout::EMBARGO]) {
            entry.map_err(StoreError::engine)?;
            count += 1;
        }
        Ok(count)
    }

    /// Writes a backup of everything to `out`. The caller makes sure no
    /// commit runs meanwhile (see [`crate::store::Writer::exclusive`]).
    pub fn backup(&self, out: &mut dyn std::io::Write) -> Result<BackupInfo, StoreError> {
        backup::write(
            &self.db,
            self.store_id,
            FORMAT_VERSION,
            self.log_head(),
            out,
        )
        .map_err(StoreError::engine)
    }

    /// See [`Store::backup_file`].
    pub fn backup_file(&self) -> Result<BackupFile, StoreError> {
        BackupFile::write_in(&self.scratch, |out| self.backup(out))
    }

    /// See [`Store::flush`].
    pub fn flush(&self) -> Result<(), StoreError> {
        self.durability.sync(&self.db)
    }

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

impl SledStore {
    /// Restores a backup into `data_dir` (its `store` folder must not hold
    /// a store yet).
    pub fn restore(
        input: &mut dyn std::io::Read,
        data_dir: &Path,
    ) -> Result<BackupInfo, RestoreError> {
        backup::restore(input, data_dir, FORMAT_VERSION)
    }
}

/// How long opening waits for another holder of the data dir's lock to let
/// go of it.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens the database, waiting up to `wait` while its directory lock is
/// held. sled 0.34 lets go of the lock from a background thread some moments
/// after the last handle is dropped (spacejam/sled#1289), so a database this
/// process has just closed (a restart in place, a restore then serve) can be
/// briefly locked; another process holding it for longer still gets the
/// error.
fn open_waiting_for_lock(
    config: &sled::Config,
    wait: std::time::Duration,
) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + wait;
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match config.open() {
            Err(sled::Error::Io(error))
                if is_lock_contention(&error) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(100));
            }
            opened => return opened,
        }
    }
}

/// Whether opening failed because the directory lock is held. sled 0.34
/// reports it as an `Other` I/O error whose text names the lock (its
/// `Config::open`), the underlying `WouldBlock` only in that text.
fn is_lock_contention(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::Other
        && error.to_string().starts_with("could not acquire lock")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    #[test]
    fn passes_the_conformance_suite() {
        let runtime = conformance::Engine::runtime();
        let open = |dir: &Path| {
            SledStore::open(dir, 16 << 20)
                .map(|s| conformance::Engine::new(Arc::new(Arc::new(s)), Arc::clone(&runtime)))
        };
        conformance::run(&open);
        conformance::run_subscriptions(&open);
    }

    #[test]
    fn an_encoded_record_is_the_record_and_its_head() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let id = Uuid::now_v7();
        let store = SledStore::open(dir.path(), 16 << 20)?;
        store.commit(
            vec![conformance::create(id, "Pass me through", &["Tech"])],
            Some(Timestamp::default()),
        )?;
        let record = store.get(&id)?.ok_or("no record")?;
        let encoded = store.get_encoded(&id)?.ok_or("no encoded record")?;
        assert_eq!(PressRelease::decode(encoded.bytes.clone())?, record);
        assert_eq!(encoded.bytes, record.encode_to_vec());
        assert_eq!(
            (encoded.state, encoded.revision),
            (record.state, record.revision)
        );
        assert_eq!(store.get_encoded(&Uuid::now_v7())?, None);
        Ok(())
    }

    #[test]
    fn a_flipped_byte_in_a_record_is_reported_not_returned()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let id = Uuid::now_v7();
        {
            let store = SledStore::open(dir.path(), 16 << 20)?;
            store.commit(
                vec![conformance::create(id, "Flip me", &["Tech"])],
                Some(Timestamp::default()),
            )?;
            let key = layout::release_key(&id);
            let mut value = store.db.get(&key)?.map(|v| v.to_vec()).unwrap_or_default();
            let last = value.len() - 1;
            value[last] ^= 0x01;
            store.db.insert(&key, value)?;
            store.db.flush()?;
        }
        let store = SledStore::open(dir.path(), 16 << 20)?;
        assert!(matches!(store.get(&id), Err(StoreError::Corrupt { .. })));
        Ok(())
    }

    #[test]
    fn a_read_of_an_applied_change_nobody_syncs_syncs_it_itself()
    -> Result<(), Box<dyn std::error::Error>> {
        // The writer's task starts each sync; a read waiting on the runtime
        // thread that task needs (a Get on a current-thread runtime) must
        // not wait for it forever. Here nobody ever calls `sync`.
        let dir = tempfile::tempdir()?;
        let store = SledStore::open(dir.path(), 16 << 20)?;
        let id = Uuid::now_v7();
        let (_, head) = store.apply(
            vec![conformance::create(id, "Applied, not synced", &["Tech"])],
            Some(Timestamp::default()),
        )?;
        assert!(store.durability.head() < head, "not durable yet");
        let read = store.get(&id)?;
        assert_eq!(
            read.map(|release| release.headline),
            Some("Applied, not synced".to_string())
        );
        assert!(store.durability.head() >= head, "shown only once durable");
        let listed = store.list(&ListQuery::default(), None, 10)?;
        assert_eq!(listed.len(), 1);
        Ok(())
    }

    #[test]
    fn backup_scratch_files_go_with_their_reader_and_leftovers_on_open()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let scratch = dir.path().join(backup::SCRATCH_DIR);
        let in_scratch = || -> std::io::Result<usize> { Ok(std::fs::read_dir(&scratch)?.count()) };
        {
            let store = SledStore::open(dir.path(), 16 << 20)?;
            let backup = store.backup_file()?;
            assert!(backup.info().entries > 0);
            drop(backup);
            assert_eq!(in_scratch()?, 0, "no file outlives its reader");
        }
        // A crash in the middle of a backup, with a named scratch file.
        std::fs::write(scratch.join("backup-cut-short.tmp"), b"partial")?;
        let _store = SledStore::open(dir.path(), 16 << 20)?;
        assert!(!scratch.exists(), "leftovers are removed on open");
        Ok(())
    }

    #[test]
    fn opening_waits_while_the_lock_is_let_go() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().to_path_buf();
        // Another handle holds the directory's lock, and lets go of it a
        // moment later.
        let held = sled::open(&path)?;
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(held);
        });
        let store = SledStore::open(&path, 16 << 20);
        releaser
            .join()
            .map_err(|_| "the releasing thread panicked")?;
        assert!(
            store.is_ok(),
            "opened once the lock was free: {:?}",
            store.err()
        );
        Ok(())
    }

    #[test]
    fn a_lock_held_for_good_is_an_error_after_the_wait() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let _held = sled::open(dir.path())?;
        let config = sled::Config::new().path(dir.path());
        let started = std::time::Instant::now();
        let opened = open_waiting_for_lock(&config, std::time::Duration::from_millis(200));
        assert!(
            matches!(&opened, Err(sled::Error::Io(e)) if is_lock_contention(e)),
            "the lock error, once the wait is over: {:?}",
            opened.err()
        );
        assert!(started.elapsed() >= std::time::Duration::from_millis(200));
        Ok(())
    }

    #[test]
    fn refuses_a_data_dir_of_another_format() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        {
            let store = SledStore::open(dir.path(), 16 << 20)?;
            store
                .db
                .insert(layout::meta_key("format"), seal(&99u32.to_le_bytes()))?;
            store.db.flush()?;
        }
        assert!(matches!(
            SledStore::open(dir.path(), 16 << 20),
            Err(StoreError::UnsupportedFormat { found: 99, .. })
        ));
        Ok(())
    }
}
