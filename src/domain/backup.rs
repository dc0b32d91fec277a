//! `BackupPressReleases`: a backup taken between two commits (so it is the
//! store at one change-log position) into a scratch file under the data
//! dir, then streamed to the caller in chunks and deleted.

use std::{io::Read, path::PathBuf, sync::Arc};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use super::{DomainError, PressReleases};
use crate::store::StoreError;

/// Bytes per streamed chunk.
const CHUNK: usize = 256 * 1024;

/// The chunks of a backup file.
pub type BackupStream = ReceiverStream<Result<Vec<u8>, DomainError>>;

impl PressReleases {
    /// Takes a consistent backup and streams it.
    pub async fn backup(&self) -> Result<BackupStream, DomainError> {
        let scratch = self.scratch.clone();
        std::fs::create_dir_all(&scratch).map_err(|e| DomainError::Internal(Box::new(e)))?;
        let path = scratch.join(format!("backup-{}.tmp", Uuid::now_v7()));
        let store = Arc::clone(&self.store);
        let file_path = path.clone();
        let info = self
            .writer
            .exclusive(move |_durable| {
                let mut file = std::fs::File::create(&file_path).map_err(StoreError::engine)?;
                let info = store.backup(&mut file)?;
                file.sync_all().map_err(StoreError::engine)?;
                Ok::<_, StoreError>(info)
            })
            .await??;
        tracing::info!(
            position = info.position,
            entries = info.entries,
            "backup taken; streaming it"
        );
        let (sender, receiver) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || stream_file(path, sender));
        Ok(ReceiverStream::new(receiver))
    }
}

/// Sends a file in chunks, then deletes it (also when the caller leaves).
fn stream_file(path: PathBuf, sender: mpsc::Sender<Result<Vec<u8>, DomainError>>) {
    let sent = (|| {
        let mut file = std::fs::File::open(&path)?;
        loop {
            let mut chunk = vec![0; CHUNK];
            let n = file.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            chunk.truncate(n);
            if sender.blocking_send(Ok(chunk)).is_err() {
                return Ok(());
            }
        }
    })();
    if let Err(error) = sent {
        let error: std::io::Error = error;
        let _ = sender.blocking_send(Err(DomainError::Internal(Box::new(error))));
    }
    if let Err(error) = std::fs::remove_file(&path) {
        tracing::warn!(path = %path.display(), %error, "cannot remove a backup scratch file");
    }
}
