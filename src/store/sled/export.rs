//! Exporting a sled store whole, for moving it to another engine
//! (`pressroom migrate`): one pass over the keyspace, every value checked,
//! handing over the records, the change log, the commit times, request ids
//! and sources as [`TransferItem`]s. The indexes and counts stay behind
//! (the importing engine derives its own). Run it on a store no server has
//! open: sled locks its directory, so opening one in use fails.

use uuid::Uuid;

use crate::store::{LogEntry, StoreError, TransferItem, position::time_from_bytes};

use super::{
    SledStore, layout,
    record::{SourceClaim, StoredRelease, corrupt, open, open_message, unwrap_record},
};

impl SledStore {
    /// Calls `visit` with every item of the store, in key order (commits,
    /// log entries, request ids, records, sources), and returns the
    /// change-log head. Stops at the first error `visit` returns.
    pub fn export(
        &self,
        visit: &mut dyn FnMut(TransferItem) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        for entry in self.db.iter() {
            let (key, value) = entry.map_err(StoreError::engine)?;
            let Some((&prefix, rest)) = key.split_first() else {
                continue;
            };
            let item = match prefix {
                layout::RELEASE => {
                    let id = Uuid::from_slice(rest).map_err(|_| corrupt(&key))?;
                    let stored: StoredRelease = open_message(&key, &value)?;
                    let last_seq = stored.last_seq;
                    TransferItem::Release {
                        id,
                        release: Box::new(unwrap_record(&key, stored)?),
                        last_seq,
                    }
                }
                layout::LOG => TransferItem::Entry(open_message::<LogEntry>(&key, &value)?),
                layout::COMMIT_TIME => {
                    let time: [u8; 12] = rest
                        .get(..12)
                        .and_then(|t| t.try_into().ok())
                        .ok_or_else(|| corrupt(&key))?;
                    TransferItem::Commit {
                        first_seq: layout::seq_from_commit_time_key(&key)
                            .ok_or_else(|| corrupt(&key))?,
                        time: time_from_bytes(&time),
                    }
                }
                layout::REQUEST => TransferItem::RequestId {
                    request_id: String::from_utf8(rest.to_vec()).map_err(|_| corrupt(&key))?,
                    release_id: Uuid::from_slice(open(&key, &value)?).map_err(|_| corrupt(&key))?,
                },
                layout::SOURCE => {
                    let split = rest
                        .iter()
                        .position(|b| *b == 0)
                        .ok_or_else(|| corrupt(&key))?;
                    let text =
                        |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| corrupt(&key));
                    let claim: SourceClaim = open_message(&key, &value)?;
                    TransferItem::Source {
                        provider: text(&rest[..split])?,
                        item_id: text(&rest[split + 1..])?,
                        release_id: Uuid::from_slice(&claim.release_id)
                            .map_err(|_| corrupt(&key))?,
                        fingerprint: claim.fingerprint,
                    }
                }
                // Indexes, counts and meta: derived or carried otherwise.
                _ => continue,
            };
            visit(item)?;
        }
        Ok(self.head.load(std::sync::atomic::Ordering::Acquire))
    }
}
