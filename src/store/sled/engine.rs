//! The sled engine itself: the [`SledStore`] and its data dir: opening one
//! (its format version and store id, waiting out a lock sled is letting go
//! of, clearing backup scratch files a crash left), backing it up and
//! restoring it. Everything lives in one sled tree under the prefixes of
//! [`layout`], so that a commit is a single atomic `apply_batch` (sled
//! batches are atomic on one tree, across crashes too) followed by one
//! `flush`. Only the writer task calls [`Store::commit`], so the change-log
//! head needs no lock, and no sled transaction is needed: the commit
//! [plans](super::plan) its batch against an in-memory overlay of what the
//! batch has written so far.
//!
//! The store's other jobs live next door: [`commit`](super::commit) (writes
//! and syncs), [`reads`](super::reads), [`change_log`](super::change_log)
//! (reading the log), [`subscription_ops`](super::subscription_ops) and
//! [`adapter`](super::adapter) (the async [`Store`] impl).
//!
//! Sharp edge kept in mind: sled 0.34's `flush_async` can deadlock when
//! called from many tasks, so only the writer flushes, synchronously.

use std::{
    path::{Path, PathBuf},
    sync::{Mutex, atomic::AtomicU64},
};

use uuid::Uuid;

#[cfg(doc)]
use crate::store::Store;
use crate::{
    proto::Timestamp,
    store::{BackupFile, BackupInfo, LogEntry, StoreError},
};

use super::{
    backup::{self, RestoreError},
    durability::Durability,
    layout,
    record::{corrupt, open, open_message, seal},
};

/// The on-disk format this build reads and writes.
const FORMAT_VERSION: u32 = 3;

/// A [`Store`] on a sled database in a directory.
pub struct SledStore {
    pub(super) db: sled::Db,
    pub(super) store_id: Uuid,
    /// The log head as applied: moved before a batch is applied, so that a
    /// read that sees a change knows it may have to wait for it.
    pub(super) head: AtomicU64,
    /// The log head as synced, and the syncing.
    pub(super) durability: Durability,
    /// Commit times never go backwards, even if the clock does.
    pub(super) last_commit_time: Mutex<Timestamp>,
    /// Where backups are written before they are streamed.
    scratch: PathBuf,
    /// Held while a change to subscriptions is planned and applied.
    pub(super) subscriptions: Mutex<()>,
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

    /// See [`Store::store_id`].
    pub fn store_id(&self) -> Uuid {
        self.store_id
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
    use std::sync::Arc;

    use prost::Message as _;

    use super::*;
    use crate::{
        proto::v1::PressRelease,
        store::{ListQuery, conformance},
    };

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
