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
//! transport), and sled writing exactly the entries that store wrote, in
//! the same batches (the storage layout's own limit). Every reference is
//! durable as the store is: sled's flush, then `fdatasync` of its log.
//! The CPU time per create is the whole process's (server and callers),
//! counted until it is idle again, so the search indexer's catching up is
//! in it.

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
    store::{Change, LogEntry, NewRelease, SledStore},
};
use prost::Message as _;

use crate::{
    BenchResult, Plan,
    corpus::{self, CACHE_BYTES, Corpus},
    generate::Generator,
    measure::{Latencies, Summary, Verdict, cpu_time, mib, ms, per_second, ratio, thousands},
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
    let cpu_before = cpu_time();
    let (elapsed, latencies) = create_all(&channels, Arc::clone(&releases)).await?;
    let cpu_during = cpu_time();
    // The work left once the answers are out (the search indexer catching
    // up): until the process is idle.
    let cpu_after = until_idle().await;
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
    let (through_store, written) = store_load(Arc::clone(&records), 64).await?;
    let same_entries = sled_replay(written).await?;
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
    println!(
        "   sled, same {:>8} releases/s   (the store's own entries, {:.1} per release, in its batches of 64: the layout's limit)",
        thousands(per_second(created, same_entries)),
        per_release(total)
    );
    let store_ratio = same_entries.as_secs_f64() / through_store.as_secs_f64().max(1e-9);
    summary.verdict(
        "ingest",
        "Store::commit of 64 vs sled writing the same entries",
        ratio(store_ratio),
        "≥ 0.50×",
        Verdict::of(store_ratio >= 0.5),
    );
    let per_create = |until: Option<Duration>| {
        cpu_before
            .zip(until)
            .map(|(a, b)| b.saturating_sub(a).as_secs_f64() * 1e6 / created.max(1) as f64)
    };
    let (during, with_catch_up) = (per_create(cpu_during), per_create(cpu_after));
    println!(
        "   CPU per create: {} µs while creating, {} µs until idle (search indexer caught up), server and clients together",
        during.map_or("?".into(), |us| format!("{us:.0}")),
        with_catch_up.map_or("?".into(), |us| format!("{us:.0}")),
    );
    summary.verdict(
        "ingest",
        "CPU per create, until idle",
        with_catch_up.map_or("?".into(), |us| format!("{us:.0} µs")),
        "≤ 250 µs",
        Verdict::of(with_catch_up.is_some_and(|us| us <= 250.0)),
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
    let (import_through_store, _) = store_load(Arc::clone(&corpus.records), IMPORT_BATCH).await?;
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
        "report",
        Verdict::Report,
    );
    let import_store_ratio = import_rate / per_second(imported.count, import_through_store);
    summary.verdict(
        "ingest",
        format!("import vs Store::commit of {IMPORT_BATCH} in-process"),
        ratio(import_store_ratio),
        "≥ 0.80×",
        Verdict::of(import_store_ratio >= 0.8),
    );
    let import_create_ratio = import_rate / create_rate;
    summary.verdict(
        "ingest",
        "import vs create throughput",
        ratio(import_create_ratio),
        "≥ 1.50×",
        Verdict::of(import_create_ratio >= 1.5),
    );
    Ok(())
}

/// The process's CPU time once it has been idle (under 5 ms of CPU in
/// 200 ms) for a moment, or after 60 s.
async fn until_idle() -> Option<Duration> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = cpu_time()?;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = cpu_time()?;
        if now.saturating_sub(last) < Duration::from_millis(5) || Instant::now() > deadline {
            return Some(now);
        }
        last = now;
    }
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
/// `SledStore`, `batch` at a time; returns the time taken, and the
/// database's entries in the batches that wrote them (for [`sled_replay`]).
async fn store_load(
    records: Arc<Vec<PressRelease>>,
    batch: usize,
) -> BenchResult<(Duration, Batches)> {
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
            store.commit(changes, Some(pressroom::proto::now()))?;
        }
        let elapsed = started.elapsed();
        drop(store);
        let ids = records
            .iter()
            .map(|record| name::parse("name", &record.name).map_err(|e| format!("{e:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        let written = written_batches(&path, &ids, batch)?;
        drop(dir);
        Ok((elapsed, written))
    })
    .await?
}

/// A sled key and its value.
type Pair = (Vec<u8>, Vec<u8>);
/// Key/value pairs, one `Vec` per sled batch.
type Batches = Vec<Vec<Pair>>;

/// The entries of the store in `store_dir`, grouped into the batches that
/// wrote them: each release's own (record, change-log entry, list and facet
/// index entries, source and request-id claims) with the others of its
/// batch of `batch`, plus in every batch the published counts and one
/// commit-time entry (see `store::sled::layout`).
fn written_batches(
    store_dir: &std::path::Path,
    ids: &[uuid::Uuid],
    batch: usize,
) -> BenchResult<Batches> {
    let db = sled::Config::new().path(store_dir).open()?;
    let mut by_release: std::collections::HashMap<Vec<u8>, Vec<Pair>> =
        std::collections::HashMap::new();
    let mut counts = Vec::new();
    let mut commit_times = Vec::new();
    for entry in db.iter() {
        let (key, value) = entry?;
        let pair = (key.to_vec(), value.to_vec());
        // Values are a 4-byte checksum and a payload.
        let owner = match key.first() {
            Some(b'r') => key.get(1..17).map(<[u8]>::to_vec),
            Some(b'p' | b'f' | b'e') => key.get(key.len().saturating_sub(16)..).map(<[u8]>::to_vec),
            Some(b'l') => value
                .get(4..)
                .and_then(|payload| LogEntry::decode(payload).ok())
                .map(|entry| entry.release_id),
            Some(b'q') => value.get(4..20).map(<[u8]>::to_vec),
            // A source claim: field 1 (tag, length 16), the release id.
            Some(b's') => value.get(6..22).map(<[u8]>::to_vec),
            Some(b'c') => {
                counts.push(pair);
                continue;
            }
            Some(b't') => {
                commit_times.push(pair);
                continue;
            }
            _ => continue,
        };
        by_release
            .entry(owner.ok_or("an entry without its release")?)
            .or_default()
            .push(pair);
    }
    Ok(ids
        .chunks(batch)
        .enumerate()
        .map(|(i, chunk)| {
            let mut writes: Vec<_> = chunk
                .iter()
                .flat_map(|id| {
                    by_release
                        .remove(id.as_bytes().as_slice())
                        .unwrap_or_default()
                })
                .collect();
            writes.extend(counts.iter().cloned());
            writes.extend(commit_times.get(i).cloned());
            writes
        })
        .collect())
}

/// Writes `batches` into a fresh sled database, each with one `apply_batch`
/// and made durable as the store makes a commit durable (sled's flush, then
/// `fdatasync` of its log); returns the time taken.
async fn sled_replay(batches: Batches) -> BenchResult<Duration> {
    let dir = server::temp_dir()?;
    let path = dir.path().join("sled");
    tokio::task::spawn_blocking(move || {
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        let log = std::fs::File::open(path.join("db"))?;
        let started = Instant::now();
        for pairs in batches {
            let mut writes = sled::Batch::default();
            for (key, value) in pairs {
                writes.insert(key, value);
            }
            db.apply_batch(writes)?;
            db.flush()?;
            log.sync_data()?;
        }
        let elapsed = started.elapsed();
        drop(db);
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
/// flush and `fdatasync` per batch; returns the time taken.
async fn sled_load(records: Vec<(Vec<u8>, Vec<u8>)>, batch: usize) -> BenchResult<Duration> {
    let dir = server::temp_dir()?;
    let path = dir.path().join("sled");
    tokio::task::spawn_blocking(move || {
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        let log = std::fs::File::open(path.join("db"))?;
        let started = Instant::now();
        for chunk in records.chunks(batch) {
            let mut writes = sled::Batch::default();
            for (key, value) in chunk {
                writes.insert(key.as_slice(), value.as_slice());
            }
            db.apply_batch(writes)?;
            db.flush()?;
            log.sync_data()?;
        }
        let elapsed = started.elapsed();
        drop(db);
        drop(dir);
        Ok(elapsed)
    })
    .await?
}
