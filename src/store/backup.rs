//! What engines share about backups: the [`BackupInfo`] a backup reports,
//! and the [`BackupFile`] a backup is taken into before it is streamed, so
//! that the writer is held up only while the backup is written, never while
//! a slow caller downloads it. Each engine owns its backup format (see the
//! sled engine's) and where its scratch files go.

use std::{
    fs::File,
    io::{self, Read, Seek as _, Write},
    path::Path,
};

use uuid::Uuid;

use super::StoreError;

/// What a backup holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackupInfo {
    /// The store it came from.
    pub store_id: Uuid,
    /// The change-log position it was taken at.
    pub position: u64,
    /// How many keys it holds.
    pub entries: u64,
}

/// A backup in a scratch file, read from its start. The file has no name
/// on disk (or loses it as soon as it is made), so it is gone once this is
/// dropped, and a crash leaves nothing behind.
#[derive(Debug)]
pub struct BackupFile {
    info: BackupInfo,
    file: File,
}

impl BackupFile {
    /// Creates a scratch file in `dir` (made if missing), has `write` write
    /// a backup into it, and returns it ready to be read.
    pub fn write_in(
        dir: &Path,
        write: impl FnOnce(&mut dyn Write) -> Result<BackupInfo, StoreError>,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(StoreError::engine)?;
        let mut file = tempfile::tempfile_in(dir).map_err(StoreError::engine)?;
        let info = write(&mut file)?;
        file.rewind().map_err(StoreError::engine)?;
        Ok(Self { info, file })
    }

    /// A backup an engine has written into `file` itself (an async engine,
    /// which cannot use [`write_in`](Self::write_in)): `file` is a scratch
    /// file without a name (`tempfile::tempfile_in`), rewound here.
    pub fn from_written(mut file: File, info: BackupInfo) -> Result<Self, StoreError> {
        file.rewind().map_err(StoreError::engine)?;
        Ok(Self { info, file })
    }

    /// What the backup holds.
    pub fn info(&self) -> BackupInfo {
        self.info
    }
}

impl Read for BackupFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
}
