//! Everything behind the gRPC API: the store and the one writer that commits
//! to it, the domain service, and the readers of the change log (the search
//! indexer, the feed behind watch streams, the embargo scheduler). Started
//! by `App::build`; stopped by [`Backend::stop`] in the order that lets
//! each part finish what the one before it still hands over: the scheduler
//! and the feed first, then the indexer, then the writer commits what is
//! queued, and the store is flushed last.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::AppError;
use crate::{
    api::{PressReleaseApi, limits::LimitsLayer},
    api_keys::Keys,
    config::ServeConfig,
    domain::PressReleases,
    feed::{Feed, FeedSettings, WatcherRegistry, embargo},
    prometheus,
    search::{self, SearchIndex},
    store::{SledStore, Store, StoreError, Writer},
    syndication::{Syndication, SyndicationMetrics, SyndicationSettings},
};

/// The store, its writer, the domain and the change-log readers, running.
pub(super) struct Backend {
    store: Arc<SledStore>,
    store_dir: PathBuf,
    writer: Writer,
    writer_task: JoinHandle<()>,
    stop_writer: CancellationToken,
    search: SearchIndex,
    indexer: JoinHandle<()>,
    stop_indexer: CancellationToken,
    releases: PressReleases,
    feed: Feed,
    watchers: WatcherRegistry,
    scheduler: JoinHandle<()>,
}

impl Backend {
    /// Opens the store in `<data dir>/store` (off the async threads: sled
    /// recovers its log while opening).
    pub(super) async fn open_store(config: &ServeConfig) -> Result<Arc<SledStore>, AppError> {
        let store_dir = store_dir(config);
        let cache_bytes = config.cache_mb * 1024 * 1024;
        let opening = store_dir.clone();
        let store = on_store(&store_dir, move || SledStore::open(&opening, cache_bytes)).await?;
        Ok(Arc::new(store))
    }

    /// Starts the writer on `store`, opens the search index and starts its
    /// indexer, and starts the feed and the embargo scheduler, which stop
    /// when `draining` is cancelled. The writer and the indexer stop on
    /// tokens of `everything`'s, cancelled in order by [`Backend::stop`] (or
    /// all at once if the app is dropped before it runs).
    pub(super) fn start(
        config: &ServeConfig,
        store: Arc<SledStore>,
        everything: &CancellationToken,
        draining: CancellationToken,
    ) -> Result<Self, AppError> {
        let engine: Arc<dyn Store> = Arc::new(Arc::clone(&store));
        let stop_writer = everything.child_token();
        let (writer, writer_task) = Writer::start(
            Arc::clone(&engine),
            config.max_write_batch,
            stop_writer.clone(),
        );

        let durable = *writer.durable_head().borrow();
        let (search, search_start) =
            SearchIndex::open(&config.data_dir.join("search"), engine.store_id(), durable)?;
        let stop_indexer = everything.child_token();
        let indexer = search::spawn(
            search.clone(),
            search_start,
            Arc::clone(&engine),
            &writer,
            stop_indexer.clone(),
        )?;

        let releases = PressReleases::new(Arc::clone(&engine), writer.clone(), search.clone());
        let watchers = WatcherRegistry::default();
        let feed = Feed::new(
            Arc::clone(&engine),
            &writer,
            search.clone(),
            FeedSettings {
                progress_interval: config.watch_progress_interval,
                buffer: config.watch_buffer,
                max_watchers: config.max_watchers,
                max_watchers_per_key: config.max_watchers_per_key,
            },
            draining.clone(),
            watchers.clone(),
        );
        let scheduler = tokio::spawn(embargo::run(
            releases.clone(),
            engine,
            writer.clone(),
            draining,
        ));
        Ok(Self {
            store,
            store_dir: store_dir(config),
            writer,
            writer_task,
            stop_writer,
            search,
            indexer,
            stop_indexer,
            releases,
            feed,
            watchers,
            scheduler,
        })
    }

    /// The gRPC service over the domain and the feed.
    pub(super) fn api(&self) -> PressReleaseApi {
        PressReleaseApi::new(self.releases.clone(), self.feed.clone())
    }

    /// The HTTP feeds over the domain, as `config` sets them up.
    pub(super) fn feeds(
        &self,
        config: &ServeConfig,
        keys: Option<Keys>,
        limits: LimitsLayer,
        metrics: SyndicationMetrics,
    ) -> Syndication {
        let settings = SyndicationSettings {
            link_base: config.feeds_link_base.clone(),
            max_age: config.feeds_max_age.as_secs(),
            store_id: self.store.store_id(),
        };
        Syndication::new(self.releases.clone(), keys, limits, metrics, settings)
    }

    /// What the metrics endpoint reads its gauges from.
    pub(super) fn metrics_sources(&self) -> prometheus::Sources {
        prometheus::Sources {
            store: Arc::new(Arc::clone(&self.store)),
            durable_head: self.writer.durable_head(),
            watchers: self.watchers.clone(),
            search: self.search.clone(),
        }
    }

    /// The open watch streams and what each holds.
    pub(super) fn watchers(&self) -> WatcherRegistry {
        self.watchers.clone()
    }

    /// Stops everything in order, once the gRPC server has stopped and
    /// draining was cancelled: the scheduler and the feed end, the indexer
    /// stops, the writer commits what is queued, and the store is flushed.
    pub(super) async fn stop(self) -> Result<(), AppError> {
        if let Err(error) = self.scheduler.await {
            tracing::error!(%error, "the embargo scheduler failed");
        }
        self.feed.join().await;
        self.stop_indexer.cancel();
        if let Err(error) = self.indexer.await {
            tracing::error!(%error, "the search indexer failed");
        }
        self.stop_writer.cancel();
        if let Err(error) = self.writer_task.await {
            tracing::error!(%error, "the writer task failed");
        }
        let flushing = Arc::clone(&self.store);
        on_store(&self.store_dir, move || SledStore::flush(&flushing)).await?;
        tracing::info!(log_head = self.store.log_head(), "stopped");
        Ok(())
    }
}

/// Where the sled database lives.
fn store_dir(config: &ServeConfig) -> PathBuf {
    config.data_dir.join("store")
}

/// Runs blocking store work (opening, flushing) off the async threads.
async fn on_store<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|panic| Err(StoreError::engine(panic)))
        .map_err(|source| AppError::Store {
            path: path.to_path_buf(),
            source,
        })
}
