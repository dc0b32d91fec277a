//! The store as a crash left it, opened in-process and checked.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::Path,
};

use pressroom::{
    domain::name,
    proto::v1::{PressRelease, press_release::State},
    store::{Facet, ListQuery, PostgresOptions, PostgresStore, SledStore, Store},
};
use uuid::Uuid;

use super::{CHANNELS, Error, StoreSnapshot};

/// Opens the store as a crash left it and checks it: the change log runs
/// 1..=head without a gap, each release's entries chain and count its
/// revisions, every record named in the log reads back (its checksum holds)
/// at the revision of its latest entry, and the published index, the total
/// and the channel index agree with the records.
/// `database` names the PostgreSQL store the server used, if it used one
/// (sled in `store_dir` otherwise).
pub(super) async fn check_store(
    store_dir: &Path,
    database: Option<&str>,
) -> Result<StoreSnapshot, Error> {
    let store: std::sync::Arc<dyn Store> = match database {
        None => {
            let store_dir = store_dir.to_path_buf();
            let sled = tokio::task::spawn_blocking(move || SledStore::open(&store_dir, 16 << 20))
                .await??;
            std::sync::Arc::new(std::sync::Arc::new(sled))
        }
        Some(url) => {
            std::sync::Arc::new(PostgresStore::open(url, PostgresOptions::default()).await?)
        }
    };
    let head = store.log_head();
    let mut latest: HashMap<Uuid, (u64, i64)> = HashMap::new();
    let mut seen = 0;
    while seen < head {
        let entries = store.read_log(seen, head, 1_000).await?;
        if entries.is_empty() {
            return Err(format!("the change log stops at {seen}; its head is {head}").into());
        }
        for entry in entries {
            if entry.seq != seen + 1 {
                return Err(format!("the change log jumps from {seen} to {}", entry.seq).into());
            }
            seen = entry.seq;
            let id = Uuid::from_slice(&entry.release_id)?;
            let (prev_seq, prev_revision) = latest.get(&id).copied().unwrap_or((0, 0));
            if entry.prev_seq != prev_seq || entry.revision != prev_revision + 1 {
                return Err(format!(
                    "log entry {} of {id}: previous entry {} and revision {}, expected {prev_seq} \
                     and {}",
                    entry.seq,
                    entry.prev_seq,
                    entry.revision,
                    prev_revision + 1
                )
                .into());
            }
            latest.insert(id, (entry.seq, entry.revision));
        }
    }

    let mut records = BTreeMap::new();
    for (id, (seq, revision)) in &latest {
        let record = store
            .get(id)
            .await?
            .ok_or_else(|| format!("{id} has log entries up to {seq} but no record"))?;
        if record.revision != *revision || record.name != name::format(id) {
            return Err(format!(
                "the record of {id} is {record:?}; its latest log entry {seq} says revision \
                 {revision}"
            )
            .into());
        }
        records.insert(record.name.clone(), record);
    }

    let published: BTreeMap<&String, &PressRelease> = records
        .iter()
        .filter(|(_, r)| r.state() == State::Published)
        .collect();
    let listed = store.list(&ListQuery::default(), None, usize::MAX).await?;
    let listed_names: BTreeSet<&String> = listed.iter().map(|(_, r)| &r.name).collect();
    let published_names: BTreeSet<&String> = published.keys().copied().collect();
    if listed_names != published_names {
        return Err(format!(
            "the published index lists {} releases, the records hold {} published",
            listed_names.len(),
            published_names.len()
        )
        .into());
    }
    for (_, release) in &listed {
        if published.get(&release.name).copied() != Some(release) {
            return Err(format!("the list reads {} unlike its record", release.name).into());
        }
    }
    let total = store.published_total().await?;
    if total != published.len() as u64 {
        return Err(format!(
            "the published total is {total}; {} are published",
            published.len()
        )
        .into());
    }
    for channel in CHANNELS {
        let query = ListQuery {
            facets: vec![(Facet::Channel, vec![Facet::Channel.normalize(channel)])],
            ..Default::default()
        };
        let indexed: BTreeSet<String> = store
            .list(&query, None, usize::MAX)
            .await?
            .into_iter()
            .map(|(_, r)| r.name)
            .collect();
        let expected: BTreeSet<String> = published
            .values()
            .filter(|r| r.channels.iter().any(|c| c == channel))
            .map(|r| r.name.clone())
            .collect();
        if indexed != expected {
            return Err(format!(
                "the channel index of {channel:?} lists {} releases, {} records have it",
                indexed.len(),
                expected.len()
            )
            .into());
        }
    }
    Ok(StoreSnapshot { records })
}
