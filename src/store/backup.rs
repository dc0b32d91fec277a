//! What engines share about backups: the [`BackupInfo`] a backup reports.
//! Each engine owns its backup format (see the sled engine's).

use uuid::Uuid;

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
