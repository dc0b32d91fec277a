//! Assembles the server. [`App::build`] validates the configuration, opens
//! the store and binds the port (port 0 works; [`App::local_addr`] tells the
//! real one); [`App::run_until`] serves until the given future completes and
//! then shuts down in order: health turns `NOT_SERVING`, long-lived streams
//! are told to end, no new calls are taken, calls in flight finish (bounded
//! by the grace period), the writer commits what is queued, the store is
//! flushed and closed.

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Server, server::TcpIncoming};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::{
    api::PressReleaseApi,
    config::{ConfigError, ServeConfig},
    domain::PressReleases,
    feed::{Feed, FeedSettings, WatcherRegistry, embargo},
    proto::{FILE_DESCRIPTOR_SET, v1::press_release_service_server::PressReleaseServiceServer},
    search::{self, SearchError, SearchIndex},
    store::{SledStore, Store, StoreError, Writer},
    telemetry,
};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data dir could not be created.
    #[error("cannot create the data dir {path}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be opened or flushed.
    #[error("the store in {path} failed")]
    Store {
        /// The sled directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The search index could not be opened or started.
    #[error("the search index failed to start")]
    Search(#[from] SearchError),
    /// Server reflection could not be built from the descriptors.
    #[error("cannot build server reflection")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("the gRPC server failed")]
    Transport(#[from] tonic::transport::Error),
}

/// A server that has opened its store and bound its port.
pub struct App {
    config: ServeConfig,
    store: Arc<SledStore>,
    listener: TcpListener,
    local_addr: SocketAddr,
    watchers: WatcherRegistry,
}

impl App {
    /// Validates `config`, opens the store and binds the listen address.
    pub async fn build(config: ServeConfig) -> Result<Self, AppError> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| AppError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let store_dir = config.data_dir.join("store");
        let cache_bytes = config.cache_mb * 1024 * 1024;
        let opening = store_dir.clone();
        let store = on_store(&store_dir, move || SledStore::open(&opening, cache_bytes)).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| AppError::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| AppError::Bind {
            addr: config.listen,
            source,
        })?;
        tracing::info!(
            data_dir = %config.data_dir.display(),
            log_head = store.log_head(),
            store_id = %store.store_id(),
            "store opened"
        );
        Ok(Self {
            config,
            store: Arc::new(store),
            listener,
            local_addr,
            watchers: WatcherRegistry::default(),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The open watch streams and what each holds.
    pub fn watchers(&self) -> WatcherRegistry {
        self.watchers.clone()
    }

    /// Serves until `shutdown` completes, then shuts down gracefully.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), AppError> {
        let Self {
            config,
            store,
            listener,
            local_addr,
            watchers,
        } = self;
        let store_dir = config.data_dir.join("store");
        let engine: Arc<dyn Store> = store.clone();

        let stop_writer = CancellationToken::new();
        let (writer, writer_task) = Writer::start(
            Arc::clone(&engine),
            config.max_write_batch,
            stop_writer.clone(),
        );
        let draining = CancellationToken::new();
        let search_dir = config.data_dir.join("search");
        let durable = *writer.durable_head().borrow();
        let (search_index, search_start) =
            SearchIndex::open(&search_dir, engine.store_id(), durable)?;
        let stop_indexer = CancellationToken::new();
        let indexer = search::spawn(
            search_index.clone(),
            search_start,
            Arc::clone(&engine),
            &writer,
            stop_indexer.clone(),
        )?;
        let releases = PressReleases::new(Arc::clone(&engine), writer.clone(), search_index);
        let feed = Feed::new(
            Arc::clone(&engine),
            &writer,
            FeedSettings {
                progress_interval: config.watch_progress_interval,
                buffer: config.watch_buffer,
            },
            draining.clone(),
            watchers,
        );
        let scheduler = tokio::spawn(embargo::run(
            releases.clone(),
            Arc::clone(&engine),
            writer,
            draining.clone(),
        ));
        let api = PressReleaseApi::new(releases, feed);

        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<PressReleaseServiceServer<PressReleaseApi>>()
            .await;
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        let signal = {
            let draining = draining.clone();
            let health = health.clone();
            async move {
                shutdown.await;
                tracing::info!("shutting down: no new calls; draining calls in flight");
                health
                    .set_not_serving::<PressReleaseServiceServer<PressReleaseApi>>()
                    .await;
                health
                    .set_service_status("", tonic_health::ServingStatus::NotServing)
                    .await;
                draining.cancel();
            }
        };

        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        tracing::info!(%local_addr, "serving pressroom.v1.PressReleaseService");
        let serve = Server::builder()
            .layer(
                TraceLayer::new_for_grpc()
                    .make_span_with(|request: &tonic::codegen::http::Request<_>| {
                        tracing::info_span!(
                            "rpc",
                            method = %request.uri().path(),
                            name = tracing::field::Empty,
                        )
                    })
                    .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                    .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
            )
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(api.into_server())
            .serve_with_incoming_shutdown(incoming, signal);
        let grace = config.shutdown_grace;
        let served = tokio::select! {
            served = serve => served,
            () = overdue(&draining, grace) => {
                tracing::warn!(?grace, "calls still open after the grace period; closing them");
                Ok(())
            }
        };

        draining.cancel();
        if let Err(error) = scheduler.await {
            tracing::error!(%error, "the embargo scheduler failed");
        }
        stop_indexer.cancel();
        if let Err(error) = indexer.await {
            tracing::error!(%error, "the search indexer failed");
        }
        stop_writer.cancel();
        if let Err(error) = writer_task.await {
            tracing::error!(%error, "the writer task failed");
        }
        let flushing = Arc::clone(&store);
        on_store(&store_dir, move || flushing.flush()).await?;
        tracing::info!(log_head = store.log_head(), "stopped");
        served.map_err(AppError::from)
    }
}

/// Runs blocking store work (opening, flushing) off the async threads.
async fn on_store<T: Send + 'static>(
    path: &std::path::Path,
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

/// Completes `grace` after draining began.
async fn overdue(draining: &CancellationToken, grace: Duration) {
    draining.cancelled().await;
    tokio::time::sleep(grace).await;
}

/// Runs `pressroom serve` until SIGTERM or SIGINT.
pub async fn serve(config: ServeConfig) -> Result<(), AppError> {
    telemetry::init(config.log_format);
    let app = App::build(config).await?;
    app.run_until(crate::shutdown::signal()).await
}
