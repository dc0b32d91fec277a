//! Backups of the PostgreSQL engine: the whole store at one change-log
//! position, from one read-only snapshot, in the portable format.

use futures_util::StreamExt;
use prost::Message;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::store::{
    BackupFile, BackupInfo, LogEntry, PortableWriter, StoreError, TransferItem,
    position::time_from_bytes,
};

use super::engine::{PostgresStore, corrupt, db_error, decode_record};

impl PostgresStore {
    /// Writes a backup of the whole store, as it is at one change-log
    /// position, in the portable format ([`PortableWriter`]): one
    /// `REPEATABLE READ` read-only transaction sees a single snapshot, so
    /// writers need not pause. `pressroom restore --to` reads it back into
    /// an empty database. (The database's own backups are the other way,
    /// and the one for point-in-time recovery.)
    pub async fn backup(
        &self,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<BackupInfo, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db_error)?;
        let head: i64 = tx
            .query_one("SELECT head FROM pressroom.log_head", &[])
            .await
            .map_err(db_error)?
            .get(0);
        let store_id: Uuid = tx
            .query_one("SELECT store_id FROM pressroom.meta", &[])
            .await
            .map_err(db_error)?
            .get(0);
        let mut writer =
            PortableWriter::new(out, store_id, head.max(0) as u64).map_err(StoreError::engine)?;
        let tables: [(&str, ItemOf); 5] = [
            (
                "SELECT first_seq, commit_time FROM pressroom.commits ORDER BY first_seq",
                |row| {
                    let time: &[u8] = row.get(1);
                    Ok(TransferItem::Commit {
                        first_seq: row.get::<_, i64>(0).max(0) as u64,
                        time: time_from_bytes(
                            time.try_into()
                                .map_err(|_| corrupt("commits.commit_time"))?,
                        ),
                    })
                },
            ),
            (
                "SELECT seq, entry FROM pressroom.change_log ORDER BY seq",
                |row| {
                    let seq: i64 = row.get(0);
                    LogEntry::decode(row.get::<_, &[u8]>(1))
                        .map(TransferItem::Entry)
                        .map_err(|_| corrupt(&format!("change_log/{seq}")))
                },
            ),
            (
                "SELECT request_id, release_id FROM pressroom.request_ids ORDER BY request_id",
                |row| {
                    Ok(TransferItem::RequestId {
                        request_id: row.get(0),
                        release_id: row.get(1),
                    })
                },
            ),
            (
                "SELECT id, record, last_seq FROM pressroom.releases ORDER BY id",
                |row| {
                    let id: Uuid = row.get(0);
                    Ok(TransferItem::Release {
                        id,
                        release: Box::new(decode_record(&id, row.get(1))?),
                        last_seq: row.get::<_, i64>(2).max(0) as u64,
                    })
                },
            ),
            (
                "SELECT provider, item_id, release_id, fingerprint FROM pressroom.sources
                 ORDER BY provider, item_id",
                |row| {
                    Ok(TransferItem::Source {
                        provider: row.get(0),
                        item_id: row.get(1),
                        release_id: row.get(2),
                        fingerprint: row.get(3),
                    })
                },
            ),
        ];
        for (sql, item_of) in tables {
            let none: [&(dyn ToSql + Sync); 0] = [];
            let rows = tx.query_raw(sql, none).await.map_err(db_error)?;
            let mut rows = std::pin::pin!(rows);
            while let Some(row) = rows.next().await {
                let item = item_of(&row.map_err(db_error)?)?;
                writer.item(&item).map_err(StoreError::engine)?;
            }
        }
        let info = writer.finish().map_err(StoreError::engine)?;
        let _ = tx.rollback().await;
        Ok(info)
    }

    /// [`backup`](Self::backup) into a scratch file without a name in the
    /// engine's scratch dir, returned to be read.
    pub async fn backup_file(&self) -> Result<BackupFile, StoreError> {
        std::fs::create_dir_all(&self.scratch_dir).map_err(StoreError::engine)?;
        let mut file = tempfile::tempfile_in(&self.scratch_dir).map_err(StoreError::engine)?;
        let info = self.backup(&mut file).await?;
        BackupFile::from_written(file, info)
    }
}

/// Turns a row of one table into the item a backup holds.
type ItemOf = fn(&tokio_postgres::Row) -> Result<TransferItem, StoreError>;
