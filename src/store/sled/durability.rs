//! What makes a sled commit durable, and the durable head that reads wait
//! for.
//!
//! sled 0.34's `flush` writes its buffers and ends in `sync_file_range` on
//! Linux, which survives a crash of the process but not of the machine: it
//! neither flushes the device's write cache nor the file's metadata. So a
//! commit is durable here only once, after that flush, every file it may
//! have written has been `fdatasync`ed: sled keeps its whole log in one file
//! (`db`; a sync through any descriptor of it covers it, so it is opened
//! once and kept), and writes a log item too large for a segment to a blob
//! file of its own under `blobs/`, which sled never syncs. Blob files are
//! synced, with their directory, before the log that points at them. (The
//! other way, keeping every item under sled's blob threshold, would need a
//! larger `segment_size`, which sled refuses to change on an existing
//! database, and sled logs whole nodes on consolidation, so no request limit
//! alone could promise it.)
//!
//! Durable before visible: sled shows a batch to readers as soon as it is
//! applied, before it is on disk. The engine moves its log head before it
//! applies a batch and this durable head after the sync; a read that may
//! have seen something past the durable head waits here (at most one sync)
//! before it answers. The commit path itself never waits here.
//!
//! A read must never depend on the writer's task to end its wait: the
//! read may be holding the very runtime thread that task needs to start
//! the next sync (a Get on a current-thread runtime, or as many waiting
//! reads as worker threads). So a read that has waited [`HELP_AFTER`]
//! waits only for the batch to be applied (which runs on the blocking
//! pool), and then syncs it itself.

use std::{
    collections::HashSet,
    ffi::OsString,
    fs::File,
    io,
    path::{Path, PathBuf},
    sync::{
        Condvar, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::store::StoreError;

/// How long a read waits for the writer's sync before it syncs itself.
pub(super) const HELP_AFTER: Duration = Duration::from_millis(50);

/// Where sled keeps its log, in the database's directory.
const LOG_FILE: &str = "db";
/// Where sled keeps the items too large for its log.
const BLOBS_DIR: &str = "blobs";

/// The durable head, and the files to sync to move it.
pub(super) struct Durability {
    dir: PathBuf,
    log: File,
    /// Blob files synced already (sled removes them when it reclaims them).
    synced_blobs: Mutex<HashSet<OsString>>,
    durable: AtomicU64,
    /// The last log sequence number of a batch sled has finished applying.
    applied: AtomicU64,
    /// Batches applied outside the change log (subscription state) whose
    /// sync has returned, counted; held while syncing, so syncs run one at
    /// a time.
    syncing: Mutex<u64>,
    /// How many batches have been applied outside the change log.
    outside: AtomicU64,
    poisoned: AtomicBool,
    /// Guards nothing but the wait on `moved`.
    waiting: Mutex<()>,
    moved: Condvar,
    #[cfg(feature = "test-hooks")]
    hold: hold::Hold,
}

impl Durability {
    /// Opens the log file of the sled database in `dir`, whose log is
    /// durable up to `head`, and syncs the directory so that the files sled
    /// created are there after a power cut too.
    pub(super) fn open(dir: &Path, head: u64) -> io::Result<Self> {
        let log = File::open(dir.join(LOG_FILE))?;
        log.sync_data()?;
        sync_dir(dir)?;
        let durability = Self {
            dir: dir.to_path_buf(),
            log,
            synced_blobs: Mutex::new(HashSet::new()),
            durable: AtomicU64::new(head),
            applied: AtomicU64::new(head),
            syncing: Mutex::new(0),
            outside: AtomicU64::new(0),
            poisoned: AtomicBool::new(false),
            waiting: Mutex::new(()),
            moved: Condvar::new(),
            #[cfg(feature = "test-hooks")]
            hold: hold::Hold::default(),
        };
        durability.sync_blobs()?;
        Ok(durability)
    }

    /// Makes everything applied to `db` so far durable: sled's flush, then
    /// new blob files and their directory, then the log file.
    /// Syncs run one at a time, and each covers the batches applied
    /// outside the change log before it started.
    pub(super) fn sync(&self, db: &sled::Db) -> Result<(), StoreError> {
        let mut synced = self.syncing.lock().unwrap_or_else(PoisonError::into_inner);
        self.sync_locked(db, &mut synced)
    }

    fn sync_locked(&self, db: &sled::Db, synced: &mut u64) -> Result<(), StoreError> {
        let covers = self.outside.load(Ordering::Acquire);
        db.flush().map_err(StoreError::engine)?;
        #[cfg(feature = "test-hooks")]
        self.hold.wait();
        self.sync_blobs().map_err(StoreError::engine)?;
        self.log.sync_data().map_err(StoreError::engine)?;
        *synced = (*synced).max(covers);
        Ok(())
    }

    /// Counts a batch applied outside the change log; pass the number
    /// returned to [`Durability::sync_outside`].
    pub(super) fn applied_outside(&self) -> u64 {
        self.outside.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Returns once batch `applied` (numbered by
    /// [`Durability::applied_outside`]) is durable: at once if a sync that
    /// started after it was applied has finished (group commit), else after
    /// a sync of its own.
    pub(super) fn sync_outside(&self, db: &sled::Db, applied: u64) -> Result<(), StoreError> {
        let mut synced = self.syncing.lock().unwrap_or_else(PoisonError::into_inner);
        if *synced >= applied {
            return Ok(());
        }
        if self.is_poisoned() {
            return Err(StoreError::Poisoned);
        }
        let result = self.sync_locked(db, &mut synced);
        if result.is_err() {
            drop(synced);
            self.poison();
        }
        result
    }

    /// Syncs the blob files not synced yet, then the blobs directory.
    fn sync_blobs(&self) -> io::Result<()> {
        let dir = self.dir.join(BLOBS_DIR);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        };
        let mut synced = self
            .synced_blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut present = HashSet::with_capacity(synced.len());
        let mut new = false;
        for entry in entries {
            let name = entry?.file_name();
            if !synced.contains(&name) {
                match File::open(dir.join(&name)) {
                    Ok(file) => file.sync_data()?,
                    // Reclaimed by sled meanwhile.
                    Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                    Err(error) => return Err(error),
                }
                new = true;
            }
            present.insert(name);
        }
        if new {
            sync_dir(&dir)?;
        }
        *synced = present;
        Ok(())
    }

    /// The last log sequence number known to be on disk.
    pub(super) fn head(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Records that the log is on disk up to `head` and wakes the reads
    /// waiting for it.
    pub(super) fn advance(&self, head: u64) {
        let _waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        self.durable.fetch_max(head, Ordering::AcqRel);
        self.moved.notify_all();
    }

    /// Records that sled has finished applying the batch ending at `head`
    /// and wakes the reads waiting for it.
    pub(super) fn applied(&self, head: u64) {
        let _waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        self.applied.fetch_max(head, Ordering::AcqRel);
        self.moved.notify_all();
    }

    /// Records that a commit could not be made durable: no more writes, and
    /// reads that wait for it fail.
    pub(super) fn poison(&self) {
        let _waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        self.poisoned.store(true, Ordering::Release);
        self.moved.notify_all();
    }

    /// Whether an earlier commit could not be made durable.
    pub(super) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Waits up to `patience` for the log to be durable up to `seq`;
    /// whether it is.
    pub(super) fn wait_durable(&self, seq: u64, patience: Duration) -> Result<bool, StoreError> {
        self.wait_until(|| self.head() >= seq, Some(patience))
    }

    /// Returns once sled has finished applying the batch holding `seq`.
    pub(super) fn wait_applied(&self, seq: u64) -> Result<(), StoreError> {
        self.wait_until(|| self.applied.load(Ordering::Acquire) >= seq, None)
            .map(drop)
    }

    fn wait_until(
        &self,
        done: impl Fn() -> bool,
        patience: Option<Duration>,
    ) -> Result<bool, StoreError> {
        if done() {
            return Ok(true);
        }
        let deadline = patience.map(|patience| std::time::Instant::now() + patience);
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if done() {
                return Ok(true);
            }
            if self.is_poisoned() {
                return Err(StoreError::Poisoned);
            }
            waiting = match deadline {
                None => self
                    .moved
                    .wait(waiting)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let Some(left) = deadline.checked_duration_since(std::time::Instant::now())
                    else {
                        return Ok(false);
                    };
                    self.moved
                        .wait_timeout(waiting, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// Holds every sync after sled's flush (the data applied and written,
    /// not yet synced) until the returned guard is dropped.
    #[cfg(feature = "test-hooks")]
    pub(super) fn hold(&self) -> hold::Held<'_> {
        self.hold.take()
    }
}

/// Syncs a directory, so that the entries created in it are durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(feature = "test-hooks")]
pub(super) mod hold {
    //! A test hook: syncs can be held open, to see what reads do meanwhile.

    use std::sync::{Condvar, Mutex, PoisonError};

    #[derive(Default)]
    pub(in crate::store::sled) struct Hold {
        held: Mutex<bool>,
        let_go: Condvar,
    }

    /// Syncs wait while this lives.
    pub struct Held<'a>(&'a Hold);

    impl Hold {
        pub(in crate::store::sled) fn take(&self) -> Held<'_> {
            *self.held.lock().unwrap_or_else(PoisonError::into_inner) = true;
            Held(self)
        }

        pub(in crate::store::sled) fn wait(&self) {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            while *held {
                held = self
                    .let_go
                    .wait(held)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }

    impl Drop for Held<'_> {
        fn drop(&mut self) {
            *self.0.held.lock().unwrap_or_else(PoisonError::into_inner) = false;
            self.0.let_go.notify_all();
        }
    }
}
