//! `ingest`: durable writes. 64 concurrent callers create releases on a
//! fresh server over 8 connections; the corpus load measures
//! `ImportPressReleases`. The reference is sled in-process writing the same
//! records (the encoded `PressRelease`s as the server stored them, keyed by
//! id) in batches, one flush per batch: of 64 for creates (the most the 64
//! callers can share), of the import's batch size for the import.
//!
//! Beside the reference, to tell where the time goes: the same records
//! committed in the same batches through `Store::commit` on a fresh
//! `SledStore` in-process (the storage layer with its indexes, change log
//! and counters, without the server: no validation, no search indexer, no
//! transport).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use pressroom::{
    domain::{IMPORT_BATCH, name},
    proto::v1::{CreatePressReleaseRequest, PressRelease},
    store::{Change, NewRelease, SledStore, Store},
};
use prost::Message as _;

use crate::{
    BenchResult, Plan,
    corpus::{self, CACHE_BYTES, Corpus},
    generate::Generator,
    measure::{Latencies, Summary, Verdict, mib, ms, per_second, ratio, thousands},
    server::{self, Server},
};

/// Concurrent callers.
const CALLERS: usize = 64;
/// Connections they share.
const CONNECTIONS: usize = 8;

pub async fn run(plan: &Plan, corpus: &mut Corpus, summary: &mut Summary) -> BenchResult<()> {
    println!(
        "\n== ingest: CreatePressRelease with {CALLERS} concurrent callers over {CONNECTIONS} connections; ImportPressReleases"
    );
    let releases = Arc::new(Generator::new(2, "create").releases(plan.creates));
    let dir = server::temp_dir()?;
    let data_dir = server::data_dir(&dir);
    let server = Server::start(&data_dir, &[]).await?;
    let channels = server::connections(server.addr, CONNECTIONS).await?;
    let (elapsed, latencies) = create_all(&channels, Arc::clone(&releases)).await?;
    drop(channels);
    server.stop().await?;
    let created = releases.len();

    // The same records, as the server stored them.
    let store_dir = data_dir.join("store");
    let scanned_dir = store_dir.clone();
    let stored = tokio::task::spawn_blocking(move || corpus::scan(&scanned_dir)).await??;
    let entries = tokio::task::spawn_blocking(move || sled_entries(&store_dir)).await??;
    let records = Arc::new(stored.0);
    let reference = sled_load(encoded(&records)?, 64).await?;
    let through_store = store_load(Arc::clone(&records), 64).await?;
    let create_rate = per_second(created, elapsed);
    let reference_rate = per_second(created, reference);
    let per_release = |n: usize| n as f64 / created.max(1) as f64;
    let total: usize = entries.iter().map(|(_, n)| n).sum();
    println!(
        "   the store writes {:.1} sled entries per release: {}",
        per_release(total),
        entries
            .iter()
            .map(|(prefix, n)| format!("{} {:.1}", prefix_name(*prefix), per_release(*n)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "   create     {:>8} releases/s   p50 {}   p99 {}   ({} releases)",
        thousands(create_rate),
        ms(latencies.p50()),
        ms(latencies.p99()),
        thousands(created as f64)
    );
    println!(
        "   sled       {:>8} releases/s   (apply_batch of 64 + flush, in-process)",
        thousands(reference_rate)
    );
    println!(
        "   store      {:>8} releases/s   (Store::commit of 64, in-process: keys, indexes, log, flush)",
        thousands(per_second(created, through_store))
    );
    let create_ratio = create_rate / reference_rate;
    summary.verdict(
        "ingest",
        "create throughput vs sled (batches of 64)",
        ratio(create_ratio),
        "≥ 0.70×",
        Verdict::of(create_ratio >= 0.7),
    );

    let imported = &corpus.imported;
    let import_reference = sled_load(encoded(&corpus.records)?, IMPORT_BATCH).await?;
    let import_through_store = store_load(Arc::clone(&corpus.records), IMPORT_BATCH).await?;
    let import_rate = per_second(imported.count, imported.elapsed);
    let import_reference_rate = per_second(imported.count, import_reference);
    println!(
        "   import     {:>8} releases/s   ({} releases, {}, in one call: {:.1} s)",
        thousands(import_rate),
        thousands(imported.count as f64),
        mib(imported.bytes as f64),
        imported.elapsed.as_secs_f64()
    );
    println!(
        "   sled       {:>8} releases/s   (apply_batch of {IMPORT_BATCH} + flush, in-process)",
        thousands(import_reference_rate)
    );
    println!(
        "   store      {:>8} releases/s   (Store::commit of {IMPORT_BATCH}, in-process)",
        thousands(per_second(imported.count, import_through_store))
    );
    let import_ratio = import_rate / import_reference_rate;
    summary.verdict(
        "ingest",
        format!("import throughput vs sled (batches of {IMPORT_BATCH})"),
        ratio(import_ratio),
        "≥ 0.80×",
        Verdict::of(import_ratio >= 0.8),
    );
    Ok(())
}

/// Creates every release with [`CALLERS`] concurrent callers; returns the
/// time taken and each call's latency.
pub async fn create_all(
    channels: &[tonic::transport::Channel],
    releases: Arc<Vec<PressRelease>>,
) -> BenchResult<(Duration, Latencies)> {
    create_with(channels, releases, CALLERS).await
}

/// Creates every release with `callers` concurrent callers.
pub async fn create_with(
    channels: &[tonic::transport::Channel],
    releases: Arc<Vec<PressRelease>>,
    callers: usize,
) -> BenchResult<(Duration, Latencies)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(callers);
    for i in 0..callers {
        let mut client = server::client(channels[i % channels.len()].clone());
        let releases = Arc::clone(&releases);
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::with_capacity(releases.len() / callers + 1);
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(release) = releases.get(index) else {
                    return Ok::<_, tonic::Status>(latencies);
                };
                let call = Instant::now();
                client
                    .create_press_release(CreatePressReleaseRequest {
                        press_release: Some(release.clone()),
                        request_id: String::new(),
                    })
                    .await?;
                latencies.push(call.elapsed());
            }
        }));
    }
    let mut all = Latencies::with_capacity(releases.len());
    for task in tasks {
        all.extend(task.await??);
    }
    Ok((started.elapsed(), all))
}

/// Records keyed by their ids, encoded.
fn encoded(records: &[PressRelease]) -> BenchResult<Vec<(Vec<u8>, Vec<u8>)>> {
    records
        .iter()
        .map(|record| {
            let id = name::parse("name", &record.name).map_err(|e| format!("{e:?}"))?;
            Ok((id.as_bytes().to_vec(), record.encode_to_vec()))
        })
        .collect()
}

/// Commits `records` as creates through `Store::commit` on a fresh
/// `SledStore`, `batch` at a time; returns the time taken.
async fn store_load(records: Arc<Vec<PressRelease>>, batch: usize) -> BenchResult<Duration> {
    let dir = server::temp_dir()?;
    let path = dir.path().join("store");
    tokio::task::spawn_blocking(move || {
        let store = SledStore::open(&path, CACHE_BYTES)?;
        let mut batches: Vec<Vec<Change>> = Vec::with_capacity(records.len() / batch + 1);
        for chunk in records.chunks(batch) {
            let mut changes = Vec::with_capacity(chunk.len());
            for record in chunk {
                let id = name::parse("name", &record.name).map_err(|e| format!("{e:?}"))?;
                changes.push(Change::Create(NewRelease {
                    id,
                    release: record.clone(),
                    request_id: None,
                    source: record
                        .source
                        .as_ref()
                        .map(|s| (s.provider.clone(), s.item_id.clone())),
                    fingerprint: vec![0; 32],
                }));
            }
            batches.push(changes);
        }
        let started = Instant::now();
        for changes in batches {
            store.commit(changes, pressroom::proto::now())?;
        }
        let elapsed = started.elapsed();
        drop(store);
        drop(dir);
        Ok(elapsed)
    })
    .await?
}

/// What the entries under a key prefix are (see `store::sled::layout`).
fn prefix_name(prefix: u8) -> String {
    match prefix {
        b'm' => "meta".into(),
        b'r' => "record".into(),
        b'l' => "change log".into(),
        b't' => "commit time".into(),
        b'c' => "counts".into(),
        b'p' => "published index".into(),
        b'f' => "facet indexes".into(),
        b'e' => "embargo index".into(),
        b'q' => "request ids".into(),
        b's' => "sources".into(),
        other => format!("`{}`", char::from(other)),
    }
}

/// How many entries a store holds, by key prefix.
fn sled_entries(store_dir: &std::path::Path) -> BenchResult<Vec<(u8, usize)>> {
    let db = sled::Config::new().path(store_dir).open()?;
    let mut counts = std::collections::BTreeMap::new();
    for entry in db.iter() {
        let (key, _) = entry?;
        if let Some(prefix) = key.first() {
            *counts.entry(*prefix).or_insert(0) += 1;
        }
    }
    Ok(counts.into_iter().collect())
}

/// Writes `records` into a fresh sled database in batches of `batch`, one
/// flush per batch; returns the time taken.
async fn sled_load(records: Vec<(Vec<u8>, Vec<u8>)>, batch: usize) -> BenchResult<Duration> {
    let dir = server::temp_dir()?;
    let path = dir.path().join("sled");
    tokio::task::spawn_blocking(move || {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        let started = Instant::now();
        for chunk in records.chunks(batch) {
            let mut writes = sled::Batch::default();
            for (key, value) in chunk {
                writes.insert(key.as_slice(), value.as_slice());
            }
            db.apply_batch(writes)?;
            db.flush()?;
        }
        let elapsed = started.elapsed();
        drop(db);
        drop(dir);
        Ok(elapsed)
    })
    .await?
}
