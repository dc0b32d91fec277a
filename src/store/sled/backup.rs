//! The backup format of the sled engine: every key and value of the store,
//! as they are at one change-log position, in one file that carries its own
//! checksum. Restoring writes them into an empty data dir, so names,
//! revisions, etags, the change log (and so every cursor issued before the
//! backup) and the store id come back as they were; the search index is
//! rebuilt on start.
//!
//! ```text
//! "PRESSROOM-BACKUP\n" | u32 format | u32 store format | store id (16) | u64 position
//! then per entry: 1 | u32 key length | key | u32 value length | value
//! then: 0 | u64 entry count | SHA-256 of everything before it (32)
//! ```
//! Integers are little-endian.
//!
//! Backups taken while serving are written into scratch files in
//! [`SCRATCH_DIR`] inside the store's directory (sled leaves what it does
//! not know there alone); what a crash left there is removed when the store
//! is opened.

use std::{
    io::{self, Read, Write},
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::store::BackupInfo;

/// The folder, inside the store's directory, of backups being taken.
pub(super) const SCRATCH_DIR: &str = "backup.tmp";

const MAGIC: &[u8] = b"PRESSROOM-BACKUP\n";
const VERSION: u32 = 1;
/// Entries written to sled per batch while restoring.
const RESTORE_BATCH: usize = 10_000;

/// Why a backup could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Reading the backup or writing the store failed.
    #[error("I/O failed")]
    Io(#[from] io::Error),
    /// sled failed.
    #[error("the new store failed")]
    Engine(#[from] sled::Error),
    /// Not a backup, or a damaged one.
    #[error("not a valid backup: {0}")]
    Invalid(String),
    /// The data dir already holds a store.
    #[error("{0} already holds a store; restore into an empty data dir")]
    NotEmpty(PathBuf),
}

/// Removes the scratch files of backups that were cut short from the store
/// in `store_dir`, and returns where new ones go.
pub(super) fn clear_scratch(store_dir: &Path) -> io::Result<PathBuf> {
    let scratch = store_dir.join(SCRATCH_DIR);
    match std::fs::remove_dir_all(&scratch) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(scratch),
    }
}

/// Hashes what passes through.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes every key of `db` to `out`. The caller makes sure no commit runs
/// meanwhile, so that the copy is the store at `position`.
pub(crate) fn write(
    db: &sled::Db,
    store_id: Uuid,
    store_format: u32,
    position: u64,
    out: &mut dyn Write,
) -> io::Result<BackupInfo> {
    let mut out = Hashing {
        inner: io::BufWriter::with_capacity(1 << 20, out),
        hash: Sha256::new(),
    };
    out.write_all(MAGIC)?;
    out.write_all(&VERSION.to_le_bytes())?;
    out.write_all(&store_format.to_le_bytes())?;
    out.write_all(store_id.as_bytes())?;
    out.write_all(&position.to_le_bytes())?;
    let mut entries = 0u64;
    for entry in db.iter() {
        let (key, value) = entry.map_err(io::Error::other)?;
        out.write_all(&[1])?;
        write_bytes(&mut out, &key)?;
        write_bytes(&mut out, &value)?;
        entries += 1;
    }
    out.write_all(&[0])?;
    out.write_all(&entries.to_le_bytes())?;
    let digest = out.hash.finalize_reset();
    out.inner.write_all(&digest)?;
    out.inner.flush()?;
    Ok(BackupInfo {
        store_id,
        position,
        entries,
    })
}

fn write_bytes(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(io::Error::other)?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(bytes)
}

/// Hashes what is read.
struct Checked<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Checked<R> {
    fn exact<const N: usize>(&mut self) -> Result<[u8; N], RestoreError> {
        let mut buf = [0; N];
        self.inner.read_exact(&mut buf).map_err(truncated)?;
        self.hash.update(buf);
        Ok(buf)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, RestoreError> {
        let len = u32::from_le_bytes(self.exact::<4>()?) as usize;
        let mut buf = vec![0; len];
        self.inner.read_exact(&mut buf).map_err(truncated)?;
        self.hash.update(&buf);
        Ok(buf)
    }
}

fn truncated(error: io::Error) -> RestoreError {
    if error.kind() == io::ErrorKind::UnexpectedEof {
        RestoreError::Invalid("the backup is truncated".into())
    } else {
        RestoreError::Io(error)
    }
}

/// Restores a backup into `data_dir/store`, which must not hold a store.
/// The store is built beside it and moved into place only once the whole
/// backup has been read and its checksum verified.
pub(crate) fn restore(
    input: &mut dyn Read,
    data_dir: &Path,
    store_format: u32,
) -> Result<BackupInfo, RestoreError> {
    let target = data_dir.join("store");
    if target.exists() && std::fs::read_dir(&target)?.next().is_some() {
        return Err(RestoreError::NotEmpty(target));
    }
    let mut input = Checked {
        inner: io::BufReader::with_capacity(1 << 20, input),
        hash: Sha256::new(),
    };
    let mut magic = [0; MAGIC.len()];
    input.inner.read_exact(&mut magic).map_err(truncated)?;
    if magic != MAGIC {
        return Err(RestoreError::Invalid(
            "it does not start like a Pressroom backup".into(),
        ));
    }
    input.hash.update(magic);
    let version = u32::from_le_bytes(input.exact::<4>()?);
    let format = u32::from_le_bytes(input.exact::<4>()?);
    if version != VERSION || format != store_format {
        return Err(RestoreError::Invalid(format!(
            "backup format {version} of store format {format}; this build restores {VERSION} of {store_format}"
        )));
    }
    let store_id = Uuid::from_bytes(input.exact::<16>()?);
    let position = u64::from_le_bytes(input.exact::<8>()?);

    let staging = data_dir.join("store.restoring");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(data_dir)?;
    let db = sled::Config::new().path(&staging).open()?;
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    let mut entries = 0u64;
    loop {
        match input.exact::<1>()? {
            [1] => {
                let key = input.bytes()?;
                let value = input.bytes()?;
                batch.insert(key, value);
                in_batch += 1;
                entries += 1;
                if in_batch == RESTORE_BATCH {
                    db.apply_batch(std::mem::take(&mut batch))?;
                    in_batch = 0;
                }
            }
            [0] => break,
            [tag] => return Err(RestoreError::Invalid(format!("unknown entry tag {tag}"))),
        }
    }
    let count = u64::from_le_bytes(input.exact::<8>()?);
    let digest = input.hash.finalize_reset();
    let mut expected = [0; 32];
    input.inner.read_exact(&mut expected).map_err(truncated)?;
    if count != entries || digest.as_slice() != expected {
        drop(db);
        std::fs::remove_dir_all(&staging)?;
        return Err(RestoreError::Invalid(
            "the checksum does not match: the backup is damaged".into(),
        ));
    }
    db.apply_batch(batch)?;
    db.flush()?;
    drop(db);
    if target.exists() {
        std::fs::remove_dir(&target)?;
    }
    std::fs::rename(&staging, &target)?;
    // An index of the data that was here would not match the restored store.
    let search = data_dir.join("search");
    if search.exists() {
        std::fs::remove_dir_all(&search)?;
    }
    Ok(BackupInfo {
        store_id,
        position,
        entries,
    })
}
