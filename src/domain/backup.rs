//! `BackupPressReleases`: a backup taken between two commits (so it is the
//! store at one change-log position) into the store's scratch file, then
//! streamed to the caller in chunks. The file goes when the stream ends or
//! the caller leaves.

use std::io::Read;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{DomainError, PressReleases};
use crate::store::BackupFile;

/// Bytes per streamed chunk.
const CHUNK: usize = 256 * 1024;

/// The chunks of a backup file.
pub type BackupStream = ReceiverStream<Result<Vec<u8>, DomainError>>;

impl PressReleases {
    /// Takes a consistent backup and streams it.
    pub async fn backup(&self) -> Result<BackupStream, DomainError> {
        let store = std::sync::Arc::clone(&self.store);
        let backup = if store.backup_needs_writer_paused() {
            self.writer
                .exclusive(move |_durable| async move { store.backup_file().await })
                .await??
        } else {
            store.backup_file().await?
        };
        let info = backup.info();
        tracing::info!(
            position = info.position,
            entries = info.entries,
            "backup taken; streaming it"
        );
        let (sender, receiver) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || stream_backup(backup, sender));
        Ok(ReceiverStream::new(receiver))
    }
}

/// Sends a backup in chunks; dropping it at the end deletes its file.
fn stream_backup(mut backup: BackupFile, sender: mpsc::Sender<Result<Vec<u8>, DomainError>>) {
    loop {
        let mut chunk = vec![0; CHUNK];
        match backup.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                chunk.truncate(n);
                if sender.blocking_send(Ok(chunk)).is_err() {
                    return;
                }
            }
            Err(error) => {
                let _ = sender.blocking_send(Err(DomainError::Internal(Box::new(error))));
                return;
            }
        }
    }
}
