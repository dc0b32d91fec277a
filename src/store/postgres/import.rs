//! Importing a whole store moved from another engine (`pressroom migrate`)
//! into an empty database, in one transaction: the store id, every record,
//! the change log with its commit times, request ids and sources, as they
//! were; the indexes (list positions, facets, embargo keys) and the
//! published counts are derived from the records. Either all of it is there
//! afterwards, or nothing.

use std::collections::BTreeMap;

use prost::Message;
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::{
    proto::{Timestamp, v1::press_release::State},
    store::{StoreError, TransferItem, position::time_bytes},
};

use super::{
    PostgresStore,
    commit::{ADD_HOURS, INSERT_ENTRIES, INSERT_REQUESTS, INSERT_SOURCES, UPSERT_RELEASES},
    engine::db_error,
    plan::{ReleaseRow, release_row},
};

/// Rows sent per statement.
const CHUNK: usize = 1_000;

/// What an import brought in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportSummary {
    /// Releases (withdrawn ones included).
    pub releases: u64,
    /// Change-log entries; also the head.
    pub entries: u64,
    /// Request ids and sources.
    pub keys: u64,
}

#[derive(Default)]
struct Pending {
    releases: Vec<ReleaseRow>,
    requests: Vec<(String, Uuid)>,
    sources: Vec<(String, String, Uuid, Vec<u8>)>,
    entries: Vec<(i64, Vec<u8>)>,
}

impl PostgresStore {
    /// Imports what `items` bring into this store's database, which must
    /// hold no release and no change-log entry yet, and takes over
    /// `store_id`. The log must arrive gapless from 1, in order, and end at
    /// `head`. An `Err` among the items (the source failed), a channel that
    /// closes early or a log that ends elsewhere aborts the import: nothing
    /// is committed.
    pub async fn import(
        &self,
        store_id: Uuid,
        head: u64,
        mut items: mpsc::Receiver<Result<TransferItem, StoreError>>,
    ) -> Result<ImportSummary, StoreError> {
        let mut client = self
            .pool()
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let tx = client.transaction().await.map_err(db_error)?;
        let current: i64 = tx
            .query_one("SELECT head FROM pressroom.log_head FOR UPDATE", &[])
            .await
            .map_err(db_error)?
            .get(0);
        let releases: i64 = tx
            .query_one("SELECT count(*) FROM pressroom.releases", &[])
            .await
            .map_err(db_error)?
            .get(0);
        if current != 0 || releases != 0 {
            return Err(StoreError::Unsupported(format!(
                "the database already holds a store ({releases} releases, change log at \
                 {current}); move a store only into an empty database"
            )));
        }
        let mut pending = Pending::default();
        let mut summary = ImportSummary {
            releases: 0,
            entries: 0,
            keys: 0,
        };
        let mut hours: BTreeMap<i64, i64> = BTreeMap::new();
        let mut total = 0i64;
        let mut commits: Vec<(u64, Timestamp)> = Vec::new();
        let mut last_time = Timestamp::default();
        while let Some(item) = items.recv().await {
            match item? {
                TransferItem::Release {
                    id,
                    release,
                    last_seq,
                } => {
                    if release.state() == State::Published {
                        let hour = release
                            .publish_time
                            .unwrap_or_default()
                            .seconds
                            .div_euclid(3600);
                        *hours.entry(hour).or_default() += 1;
                        total += 1;
                    }
                    pending.releases.push(release_row(&id, &release, last_seq));
                    summary.releases += 1;
                }
                TransferItem::Entry(entry) => {
                    if entry.seq != summary.entries + 1 {
                        return Err(StoreError::Corrupt {
                            key: format!(
                                "change-log entry {} where {} was expected",
                                entry.seq,
                                summary.entries + 1
                            ),
                        });
                    }
                    summary.entries = entry.seq;
                    last_time = entry.commit_time.unwrap_or_default();
                    pending
                        .entries
                        .push((entry.seq as i64, entry.encode_to_vec()));
                }
                TransferItem::Commit { first_seq, time } => commits.push((first_seq, time)),
                TransferItem::RequestId {
                    request_id,
                    release_id,
                } => {
                    pending.requests.push((request_id, release_id));
                    summary.keys += 1;
                }
                TransferItem::Source {
                    provider,
                    item_id,
                    release_id,
                    fingerprint,
                } => {
                    pending
                        .sources
                        .push((provider, item_id, release_id, fingerprint));
                    summary.keys += 1;
                }
            }
            if pending.releases.len() >= CHUNK
                || pending.entries.len() >= CHUNK
                || pending.requests.len() >= CHUNK
                || pending.sources.len() >= CHUNK
            {
                flush(&tx, &mut pending).await?;
            }
        }
        flush(&tx, &mut pending).await?;
        if summary.entries != head {
            return Err(StoreError::Corrupt {
                key: format!(
                    "the change log ended at {} where the source's ends at {head}",
                    summary.entries
                ),
            });
        }

        // One commits row per commit, with the entries up to the next one.
        commits.sort_by_key(|(first, _)| *first);
        for (index, (first_seq, time)) in commits.iter().enumerate() {
            let last_seq = commits
                .get(index + 1)
                .map_or(summary.entries, |(next, _)| next.saturating_sub(1));
            let (first, last) = (*first_seq as i64, last_seq as i64);
            tx.execute(
                "INSERT INTO pressroom.commits (first_seq, last_seq, commit_time, batch_id)
                 VALUES ($1, $2, $3, $4)",
                &[&first, &last, &time_bytes(time).as_slice(), &Uuid::new_v4()],
            )
            .await
            .map_err(db_error)?;
        }
        let (hour_keys, counts): (Vec<i64>, Vec<i64>) = hours.into_iter().unzip();
        tx.execute(ADD_HOURS, &[&hour_keys, &counts])
            .await
            .map_err(db_error)?;
        let entries = summary.entries as i64;
        tx.execute(
            "UPDATE pressroom.log_head SET head = $1, commit_time = $2, published_total = $3",
            &[&entries, &time_bytes(&last_time).as_slice(), &total],
        )
        .await
        .map_err(db_error)?;
        tx.execute("UPDATE pressroom.meta SET store_id = $1", &[&store_id])
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.advance(summary.entries);
        Ok(summary)
    }
}

/// Writes what is pending, one statement per table.
async fn flush(
    tx: &deadpool_postgres::Transaction<'_>,
    pending: &mut Pending,
) -> Result<(), StoreError> {
    let releases = std::mem::take(&mut pending.releases);
    if !releases.is_empty() {
        let ids: Vec<Uuid> = releases.iter().map(|r| r.id).collect();
        let records: Vec<&[u8]> = releases.iter().map(|r| r.record.as_slice()).collect();
        let revisions: Vec<i64> = releases.iter().map(|r| r.revision).collect();
        let last_seqs: Vec<i64> = releases.iter().map(|r| r.last_seq).collect();
        let positions: Vec<Option<&[u8]>> = releases
            .iter()
            .map(|r| r.list_position.as_deref())
            .collect();
        let facets: Vec<Option<&str>> = releases.iter().map(|r| r.facets.as_deref()).collect();
        let embargoes: Vec<Option<&[u8]>> =
            releases.iter().map(|r| r.embargo_key.as_deref()).collect();
        let params: [&(dyn ToSql + Sync); 7] = [
            &ids, &records, &revisions, &last_seqs, &positions, &facets, &embargoes,
        ];
        tx.execute(UPSERT_RELEASES, &params)
            .await
            .map_err(db_error)?;
    }
    let requests = std::mem::take(&mut pending.requests);
    if !requests.is_empty() {
        let (keys, ids): (Vec<&str>, Vec<Uuid>) =
            requests.iter().map(|(k, id)| (k.as_str(), *id)).unzip();
        tx.execute(INSERT_REQUESTS, &[&keys, &ids])
            .await
            .map_err(db_error)?;
    }
    let sources = std::mem::take(&mut pending.sources);
    if !sources.is_empty() {
        let providers: Vec<&str> = sources.iter().map(|s| s.0.as_str()).collect();
        let items: Vec<&str> = sources.iter().map(|s| s.1.as_str()).collect();
        let ids: Vec<Uuid> = sources.iter().map(|s| s.2).collect();
        let fingerprints: Vec<&[u8]> = sources.iter().map(|s| s.3.as_slice()).collect();
        tx.execute(INSERT_SOURCES, &[&providers, &items, &ids, &fingerprints])
            .await
            .map_err(db_error)?;
    }
    let entries = std::mem::take(&mut pending.entries);
    if !entries.is_empty() {
        let (seqs, bytes): (Vec<i64>, Vec<&[u8]>) =
            entries.iter().map(|(s, e)| (*s, e.as_slice())).unzip();
        tx.execute(INSERT_ENTRIES, &[&seqs, &bytes])
            .await
            .map_err(db_error)?;
    }
    Ok(())
}
