//! The corpus: a data dir loaded with many releases through
//! `ImportPressReleases`, shared by the scenarios that read (get, replay,
//! list, search). Building it measures the import (the `ingest` scenario
//! reports it) and, with the server stopped, scans the store in-process
//! through the `Store` trait: the names, the stored records and the exact
//! messages a watcher from the beginning receives (the streaming echo sends
//! those), and the scan's own speed (the `replay` scenario reports it).
//!
//! The search index is then deleted, so that the first start rebuilds it
//! from the store with nothing else running: that rebuild is the indexing
//! rate the `search` scenario reports. sled locks its directory, so
//! in-process references run with the server stopped ([`Corpus::offline`]).
//!
//! With `--store postgres` the corpus lives in a private durable
//! PostgreSQL started for the run instead: the server runs with `--store`,
//! and the in-process references read the same database through the
//! PostgreSQL engine.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use pressroom::{
    feed::cursor::Cursor,
    proto::v1::{
        EventType, ImportPressReleasesRequest, PressRelease, PressReleaseEvent, Progress,
        SearchPressReleasesRequest, WatchPressReleasesResponse,
        watch_press_releases_response::Kind,
    },
    store::{
        ListPosition, ListQuery, LogEntry, PostgresOptions, PostgresStore, SledStore, Store,
        StoreError,
        postgres::{ClusterOptions, LocalCluster},
    },
};
use prost::Message as _;
use tempfile::TempDir;

use crate::{
    BenchResult, Plan,
    generate::{Generator, WIRE},
    measure::{mib, per_second, thousands},
    server::{self, Server},
};

/// The sled page cache the benchmark's in-process references use: the
/// server's default (`--cache-mb 256`).
pub const CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// How long the first start may take to rebuild the search index.
const REBUILD_TIMEOUT: Duration = Duration::from_secs(3600);

/// How the import went.
pub struct Imported {
    /// Releases imported.
    pub count: usize,
    /// From the call to its response.
    pub elapsed: Duration,
    /// Encoded size of the request items.
    pub bytes: usize,
}

/// How the in-process scan of the change log went.
pub struct Scanned {
    /// Log entries read (each with its record).
    pub entries: usize,
    /// Encoded size of the records read.
    pub bytes: usize,
    /// Time taken.
    pub elapsed: Duration,
}

/// How the search index rebuild at the first start went.
pub struct Rebuilt {
    /// From `App::build` until every release is searchable.
    pub elapsed: Duration,
}

/// A loaded data dir and what is known of it.
pub struct Corpus {
    dir: TempDir,
    /// With `--store postgres`: the database the corpus lives in, and its
    /// URL.
    database: Option<(LocalCluster, String)>,
    /// The releases in it, as stored, in change-log order.
    pub records: Arc<Vec<PressRelease>>,
    /// What a watcher from the beginning receives: an event per release,
    /// then a caught-up progress.
    pub replay: Arc<Vec<WatchPressReleasesResponse>>,
    /// The import that loaded it.
    pub imported: Imported,
    /// The in-process scan of it.
    pub scanned: Scanned,
    /// The search index rebuild, once the server has started.
    pub rebuilt: Option<Rebuilt>,
    server: Option<Server>,
}

/// How many of the `expected` releases were searchable at once, and how long
/// until all were.
pub(crate) async fn searchable_after(
    client: &mut server::Client,
    expected: usize,
) -> BenchResult<(usize, Duration)> {
    let started = Instant::now();
    let mut first = None;
    loop {
        let answer = client
            .search_press_releases(SearchPressReleasesRequest {
                query: WIRE.to_string(),
                page_size: 1,
                ..Default::default()
            })
            .await;
        let found = match answer {
            Ok(found) => found.get_ref().total_size as usize,
            Err(status) if status.code() == tonic::Code::Unavailable => 0,
            Err(status) => return Err(status.into()),
        };
        let first = *first.get_or_insert(found);
        if found >= expected {
            return Ok((first, started.elapsed()));
        }
        if started.elapsed() > REBUILD_TIMEOUT {
            return Err("the search index did not catch up with the import".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Corpus {
    /// Generates `plan.corpus` releases and imports them into a new data dir.
    pub async fn build(plan: &Plan) -> BenchResult<Self> {
        let count = plan.corpus;
        println!(
            "   (building the corpus: generating and importing {} releases into {})",
            thousands(count as f64),
            if plan.postgres {
                "a private durable PostgreSQL"
            } else {
                "sled"
            }
        );
        let dir = server::temp_dir()?;
        let data_dir = server::data_dir(&dir);
        let items: Vec<ImportPressReleasesRequest> = Generator::new(1, "corpus")
            .releases(count)
            .into_iter()
            .map(|release| ImportPressReleasesRequest {
                press_release: Some(release),
                request_id: String::new(),
            })
            .collect();
        let bytes = items.iter().map(|item| item.encoded_len()).sum();

        let database = if plan.postgres {
            let cluster = LocalCluster::start(&ClusterOptions {
                durable: true,
                max_connections: 200,
                tls: None,
            })?;
            cluster.create_database("corpus").await?;
            let url = cluster.url("corpus");
            Some((cluster, url))
        } else {
            None
        };
        let url = database.as_ref().map(|(_, url)| url.clone());
        let server = Server::start(&data_dir, &store_flags(url.as_deref())).await?;
        let mut client = server.client().await?;
        let started = Instant::now();
        let response = client
            .import_press_releases(tokio_stream::iter(items))
            .await?
            .into_inner();
        let elapsed = started.elapsed();
        if let Some(failure) = response.failed.first() {
            return Err(format!(
                "the corpus import refused {} items; the first, #{}: {}",
                response.failed.len(),
                failure.index,
                failure.message
            )
            .into());
        }
        if response.created as usize != count {
            return Err(format!(
                "the corpus import created {} of {count} releases ({} duplicates)",
                response.created, response.duplicates
            )
            .into());
        }
        // The search index may lag a bulk load; it must catch up on its own.
        let (indexed, catch_up) = searchable_after(&mut client, count).await?;
        println!(
            "   (search: {} of {} imported releases searchable when the import answered; all after {:.1} s more)",
            thousands(indexed as f64),
            thousands(count as f64),
            catch_up.as_secs_f64()
        );
        drop(client);
        server.stop().await?;
        let imported = Imported {
            count,
            elapsed,
            bytes,
        };
        println!(
            "   (imported in {:.1} s: {} releases/s, {}/s)",
            elapsed.as_secs_f64(),
            thousands(per_second(count, elapsed)),
            mib(bytes as f64 / elapsed.as_secs_f64())
        );

        if let Some((cluster, _)) = &database {
            // What autovacuum does within a minute of a bulk load: the
            // planner's statistics (how common each facet value is), which
            // decide whether a filtered list reads the GIN index or walks
            // the list order.
            cluster
                .connect("corpus")
                .await?
                .batch_execute("ANALYZE")
                .await?;
        }
        let (records, replay, scanned) = match &url {
            Some(url) => scan_postgres(url).await?,
            None => {
                let store_dir = data_dir.join("store");
                tokio::task::spawn_blocking(move || scan(&store_dir)).await??
            }
        };
        if records.len() != count {
            return Err(format!(
                "the store holds {} releases; {count} were imported",
                records.len()
            )
            .into());
        }
        // The first start rebuilds the index with nothing else running.
        std::fs::remove_dir_all(data_dir.join("search"))?;
        Ok(Self {
            dir,
            database,
            records: Arc::new(records),
            replay: Arc::new(replay),
            imported,
            scanned,
            rebuilt: None,
            server: None,
        })
    }

    fn data_dir(&self) -> PathBuf {
        server::data_dir(&self.dir)
    }

    fn url(&self) -> Option<&str> {
        self.database.as_ref().map(|(_, url)| url.as_str())
    }

    /// Which engine the corpus is in.
    pub fn engine(&self) -> &'static str {
        if self.database.is_some() {
            "PostgreSQL"
        } else {
            "sled"
        }
    }

    /// The names of the releases.
    pub fn names(&self) -> Vec<String> {
        self.records.iter().map(|r| r.name.clone()).collect()
    }

    /// The running server, started (and its search index made complete)
    /// if need be.
    pub async fn server(&mut self) -> BenchResult<&Server> {
        if self.server.is_none() {
            let started = Instant::now();
            // With the HTTP feeds on, for the `feeds` scenario.
            let mut flags = vec!["--feeds-listen", "127.0.0.1:0"];
            flags.extend(store_flags(self.url()));
            let server = Server::start(&self.data_dir(), &flags).await?;
            let mut client = server.client().await?;
            let expected = self.records.len();
            let deadline = started + REBUILD_TIMEOUT;
            loop {
                let answer = client
                    .search_press_releases(SearchPressReleasesRequest {
                        query: WIRE.to_string(),
                        page_size: 1,
                        ..Default::default()
                    })
                    .await;
                match answer {
                    Ok(found) if found.get_ref().total_size as usize >= expected => break,
                    Ok(_) => {}
                    Err(status) if status.code() == tonic::Code::Unavailable => {}
                    Err(status) => return Err(status.into()),
                }
                if Instant::now() > deadline {
                    return Err("the search index was not rebuilt in time".into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if self.rebuilt.is_none() {
                self.rebuilt = Some(Rebuilt {
                    elapsed: started.elapsed(),
                });
            }
            self.server = Some(server);
        }
        self.server
            .as_ref()
            .ok_or_else(|| "the corpus server is not running".into())
    }

    /// Runs `work` on the store in-process, with the server stopped (sled
    /// locks its directory; on PostgreSQL the reference gets the machine to
    /// itself as well); the server starts again when next needed.
    pub async fn offline<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(Reference<'_>) -> BenchResult<T> + Send + 'static,
    ) -> BenchResult<T> {
        if let Some(server) = self.server.take() {
            server.stop().await?;
        }
        let store_dir = self.data_dir().join("store");
        let url = self.url().map(str::to_string);
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || match url {
            Some(url) => {
                let store =
                    runtime.block_on(PostgresStore::open(&url, PostgresOptions::default()))?;
                work(Reference::Postgres(&store, runtime))
            }
            None => {
                let store = SledStore::open(&store_dir, CACHE_BYTES)?;
                work(Reference::Sled(&store))
            }
        })
        .await?
    }

    /// Stops the server.
    pub async fn stop(mut self) -> BenchResult<()> {
        if let Some(server) = self.server.take() {
            server.stop().await?;
        }
        Ok(())
    }
}

/// The store in-process, for a reference that runs on a blocking thread.
pub enum Reference<'a> {
    Sled(&'a SledStore),
    Postgres(&'a PostgresStore, tokio::runtime::Handle),
}

impl Reference<'_> {
    /// `Store::list`, waited for.
    pub fn list(
        &self,
        query: &ListQuery,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<(ListPosition, PressRelease)>, StoreError> {
        match self {
            Reference::Sled(store) => store.list(query, after, limit),
            Reference::Postgres(store, runtime) => {
                runtime.block_on(store.list(query, after, limit))
            }
        }
    }

    /// On PostgreSQL, how the database runs that list (`EXPLAIN ANALYZE`):
    /// its scans, rows filtered out and time, on one line.
    pub fn plan_of_list(&self, query: &ListQuery, limit: usize) -> BenchResult<Option<String>> {
        let Reference::Postgres(store, runtime) = self else {
            return Ok(None);
        };
        let lines = runtime.block_on(store.explain_list(query, limit))?;
        let kept: Vec<&str> = lines
            .iter()
            .map(|line| line.trim().trim_start_matches("->").trim())
            .filter(|line| {
                line.contains(" Scan ")
                    || line.starts_with("Rows Removed by Filter")
                    || line.starts_with("Execution Time")
            })
            .map(|line| line.split("  (").next().unwrap_or(line))
            .collect();
        Ok(Some(kept.join("; ")))
    }
}

/// `serve` flags that put the store in `url`'s database (none: sled).
fn store_flags(url: Option<&str>) -> Vec<&str> {
    match url {
        Some(url) => vec!["--store", url],
        None => Vec::new(),
    }
}

/// [`scan`] of a corpus in PostgreSQL: the change log with its records, a
/// chunk at a time (`Store::read_changes`, as a watcher on that engine
/// reads them).
async fn scan_postgres(
    url: &str,
) -> BenchResult<(Vec<PressRelease>, Vec<WatchPressReleasesResponse>, Scanned)> {
    let store = PostgresStore::open(url, PostgresOptions::default()).await?;
    let head = store.log_head();
    let started = Instant::now();
    let mut entries = Vec::new();
    let mut records = Vec::new();
    let mut bytes = 0;
    let mut position = 0;
    while position < head {
        let chunk = Store::read_changes(&store, position, head, 1_000, true).await?;
        let Some((last, _)) = chunk.last() else {
            break;
        };
        position = last.seq;
        for (entry, release) in chunk {
            let release = release
                .ok_or_else(|| format!("log entry {} names a missing release", entry.seq))?;
            bytes += release.encoded_len();
            records.push(release);
            entries.push(entry);
        }
    }
    let scanned = Scanned {
        entries: entries.len(),
        bytes,
        elapsed: started.elapsed(),
    };
    let replay = replay_of(store.store_id(), head, &entries, &records);
    Ok((records, replay, scanned))
}

/// Reads the whole change log and every release it names, as a watcher
/// does, through the `Store` trait; returns the records, the messages of a
/// replay from the beginning, and how long the reading took.
pub fn scan(
    store_dir: &std::path::Path,
) -> BenchResult<(Vec<PressRelease>, Vec<WatchPressReleasesResponse>, Scanned)> {
    let store = SledStore::open(store_dir, CACHE_BYTES)?;
    let head = store.log_head();
    let started = Instant::now();
    let mut entries = Vec::new();
    let mut records = Vec::new();
    let mut bytes = 0;
    let mut position = 0;
    while position < head {
        let chunk = store.read_log(position, head, 1_000)?;
        let Some(last) = chunk.last() else {
            break;
        };
        position = last.seq;
        for entry in chunk {
            let id = uuid::Uuid::from_slice(&entry.release_id)?;
            let release = store
                .get(&id)?
                .ok_or_else(|| format!("log entry {} names a missing release", entry.seq))?;
            bytes += release.encoded_len();
            records.push(release);
            entries.push(entry);
        }
    }
    let scanned = Scanned {
        entries: entries.len(),
        bytes,
        elapsed: started.elapsed(),
    };
    let replay = replay_of(store.store_id(), head, &entries, &records);
    Ok((records, replay, scanned))
}

/// The messages of a replay from the beginning: an event per entry, then
/// a caught-up progress at `head`.
fn replay_of(
    store_id: uuid::Uuid,
    head: u64,
    entries: &[LogEntry],
    records: &[PressRelease],
) -> Vec<WatchPressReleasesResponse> {
    let mut replay: Vec<WatchPressReleasesResponse> = entries
        .iter()
        .zip(records)
        .map(|(entry, release)| WatchPressReleasesResponse {
            kind: Some(Kind::Event(PressReleaseEvent {
                cursor: Cursor {
                    store_id,
                    seq: entry.seq,
                }
                .encode(),
                r#type: EventType::Created as i32,
                press_release: Some(release.clone()),
                commit_time: entry.commit_time,
                highlights: Vec::new(),
            })),
        })
        .collect();
    replay.push(WatchPressReleasesResponse {
        kind: Some(Kind::Progress(Progress {
            cursor: Cursor {
                store_id,
                seq: head,
            }
            .encode(),
            caught_up: true,
        })),
    });
    replay
}
