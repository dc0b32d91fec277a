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
    api::{PressReleaseApi, SubscriptionApi, limits::LimitsLayer},
    api_keys::Keys,
    config::ServeConfig,
    domain::PressReleases,
    feed::{Feed, FeedSettings, WatcherRegistry, embargo},
    prometheus,
    search::{self, SearchIndex},
    store::{
        PostgresOptions, PostgresStore, SledStore, Store, StoreError, Writer,
        postgres::{EMBARGO_SCHEDULER, Leadership, LeadershipTiming},
    },
    syndication::{Syndication, SyndicationMetrics, SyndicationSettings},
};

/// The engine the store lives in, opened.
pub(super) enum Engine {
    /// sled in `<data dir>/store`: this process alone.
    Sled(Arc<SledStore>),
    /// A PostgreSQL database that replicas share.
    Postgres(Arc<PostgresStore>),
}

impl Engine {
    /// The store behind the trait every part uses.
    pub(super) fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Sled(sled) => Arc::new(Arc::clone(sled)),
            Self::Postgres(postgres) => Arc::clone(postgres) as Arc<dyn Store>,
        }
    }
}

/// The store, its writer, the domain and the change-log readers, running.
pub(super) struct Backend {
    engine: Engine,
    store: Arc<dyn Store>,
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
    /// This replica's turn at the embargo scheduler (PostgreSQL only).
    leadership: Option<Leadership>,
}

impl Backend {
    /// Opens the store: the PostgreSQL database `--store` names, else sled
    /// in `<data dir>/store` (off the async threads: sled recovers its log
    /// while opening).
    pub(super) async fn open_store(config: &ServeConfig) -> Result<Engine, AppError> {
        if let Some(url) = &config.store {
            let scratch_dir = config.data_dir.join("scratch");
            std::fs::create_dir_all(&scratch_dir).map_err(|source| AppError::DataDir {
                path: scratch_dir.clone(),
                source,
            })?;
            let options = PostgresOptions {
                scratch_dir,
                pool_size: config.store_pool_size,
                poll_interval: config.store_poll_interval,
                ..PostgresOptions::default()
            };
            let store = PostgresStore::open(url, options)
                .await
                .map_err(AppError::Database)?;
            return Ok(Engine::Postgres(Arc::new(store)));
        }
        let store_dir = store_dir(config);
        let cache_bytes = config.cache_mb * 1024 * 1024;
        let opening = store_dir.clone();
        let store = on_store(&store_dir, move || SledStore::open(&opening, cache_bytes)).await?;
        Ok(Engine::Sled(Arc::new(store)))
    }

    /// Starts the writer on `store`, opens the search index and starts its
    /// indexer, and starts the feed and the embargo scheduler, which stop
    /// when `draining` is cancelled. The writer and the indexer stop on
    /// tokens of `everything`'s, cancelled in order by [`Backend::stop`] (or
    /// all at once if the app is dropped before it runs).
    pub(super) fn start(
        config: &ServeConfig,
        engine: Engine,
        everything: &CancellationToken,
        draining: CancellationToken,
    ) -> Result<Self, AppError> {
        let store = engine.store();
        let stop_writer = everything.child_token();
        let (writer, writer_task) = Writer::start(
            Arc::clone(&store),
            config.max_write_batch,
            stop_writer.clone(),
        );

        let durable = *writer.durable_head().borrow();
        let (search, search_start) =
            SearchIndex::open(&config.data_dir.join("search"), store.store_id(), durable)?;
        let stop_indexer = everything.child_token();
        let indexer = search::spawn(
            search.clone(),
            search_start,
            Arc::clone(&store),
            &writer,
            stop_indexer.clone(),
        )?;

        let releases = PressReleases::new(Arc::clone(&store), writer.clone(), search.clone());
        let watchers = WatcherRegistry::default();
        let feed = Feed::new(
            Arc::clone(&store),
            &writer,
            search.clone(),
            FeedSettings {
                progress_interval: config.watch_progress_interval,
                buffer: config.watch_buffer,
                max_watchers: config.max_watchers,
                max_watchers_per_key: config.max_watchers_per_key,
                max_subscriptions: config.max_subscriptions,
                max_subscription_streams: config.max_subscription_streams,
            },
            draining.clone(),
            watchers.clone(),
        );
        // Replicas on one database take turns: the scheduler runs only while
        // this one holds the advisory lock (an overlap is harmless: a second
        // publication of the same release is refused as stale).
        let leadership = match &engine {
            Engine::Sled(_) => None,
            Engine::Postgres(postgres) => {
                Some(postgres.leadership(EMBARGO_SCHEDULER, LeadershipTiming::default()))
            }
        };
        let scheduler = tokio::spawn(embargo::run(
            releases.clone(),
            Arc::clone(&store),
            writer.clone(),
            leadership.as_ref().map(Leadership::watch),
            draining,
        ));
        Ok(Self {
            engine,
            store,
            leadership,
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

    /// The gRPC subscription service over the feed.
    pub(super) fn subscription_api(&self) -> SubscriptionApi {
        SubscriptionApi::new(self.feed.subscriptions())
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
            store: Arc::clone(&self.store),
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
        drop(self.leadership);
        match &self.engine {
            Engine::Sled(sled) => {
                let flushing = Arc::clone(sled);
                on_store(&self.store_dir, move || SledStore::flush(&flushing)).await?;
            }
            // Every commit was durable when COMMIT returned.
            Engine::Postgres(_) => {}
        }
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
