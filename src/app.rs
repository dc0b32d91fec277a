//! Assembles the server. [`App::build`] validates the configuration, loads
//! the API keys and TLS files, opens the store and binds every port (port 0
//! works; the accessors tell the real ones); [`App::run_until`] serves until
//! the given future completes and then shuts down in order: health turns
//! `NOT_SERVING`, long-lived streams are told to end, no new calls are
//! taken, calls in flight finish (bounded by the grace period), the
//! background readers stop, the writer commits what is queued, the store is
//! flushed and closed.
//!
//! Every call passes, in order: the tracing span, the gRPC metrics,
//! authentication, and the limits, before reaching a service.

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig, server::TcpIncoming};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::{
    api::{PressReleaseApi, auth::AuthLayer, limits::LimitsLayer, metrics::MetricsLayer},
    config::{ConfigError, ServeConfig},
    domain::PressReleases,
    feed::{Feed, FeedSettings, WatcherRegistry, embargo},
    keys::{Keys, KeysError},
    prometheus,
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
    /// The keys file is unusable.
    #[error("the keys file is unusable")]
    Keys(#[from] KeysError),
    /// A TLS file could not be read.
    #[error("cannot read the TLS file {path}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The data dir could not be prepared.
    #[error("cannot prepare the data dir {path}")]
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
    /// A listen address could not be bound.
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

/// A server that has opened its store and bound its ports.
pub struct App {
    config: ServeConfig,
    store: Arc<SledStore>,
    keys: Option<Keys>,
    tls: Option<ServerTlsConfig>,
    listener: Bound,
    health: Option<Bound>,
    metrics: Option<Bound>,
    watchers: WatcherRegistry,
}

/// A bound listener and its address.
struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Bound {
    async fn bind(addr: SocketAddr) -> Result<Self, AppError> {
        let bind_error = |source| AppError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok(Self { listener, addr })
    }
}

impl App {
    /// Validates `config`, loads keys and TLS files, opens the store and
    /// binds the listen addresses.
    pub async fn build(config: ServeConfig) -> Result<Self, AppError> {
        config.validate()?;
        let data_dir_error = |source| AppError::DataDir {
            path: config.data_dir.clone(),
            source,
        };
        std::fs::create_dir_all(&config.data_dir).map_err(data_dir_error)?;

        let keys = config.keys_file.as_deref().map(Keys::load).transpose()?;
        let tls = tls_config(&config)?;

        let store_dir = config.data_dir.join("store");
        let cache_bytes = config.cache_mb * 1024 * 1024;
        let opening = store_dir.clone();
        let store = on_store(&store_dir, move || SledStore::open(&opening, cache_bytes)).await?;
        let listener = Bound::bind(config.listen).await?;
        let health = match config.health_listen {
            Some(addr) => Some(Bound::bind(addr).await?),
            None => None,
        };
        let metrics = match config.metrics_listen {
            Some(addr) => Some(Bound::bind(addr).await?),
            None => None,
        };
        tracing::info!(
            data_dir = %config.data_dir.display(),
            log_head = store.log_head(),
            store_id = %store.store_id(),
            "store opened"
        );
        match &keys {
            Some(keys) => tracing::info!(
                keys = keys.current().len(),
                "API keys loaded; authentication is on"
            ),
            None => tracing::warn!(
                listen = %listener.addr,
                "AUTHENTICATION IS OFF: there is no keys file, so every caller may do everything, \
                 including reading embargoed press releases. Configure --keys-file before serving \
                 anyone but yourself."
            ),
        }
        Ok(Self {
            config,
            store: Arc::new(store),
            keys,
            tls,
            listener,
            health,
            metrics,
            watchers: WatcherRegistry::default(),
        })
    }

    /// The address the gRPC server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.addr
    }

    /// The address of the plaintext health port, if any.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health.as_ref().map(|b| b.addr)
    }

    /// The address of the metrics endpoint, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|b| b.addr)
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
            keys,
            tls,
            listener,
            health,
            metrics,
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
        // Cancelled when shutdown starts: streams end, background work stops.
        let draining = CancellationToken::new();
        // Cancelled once the gRPC server has stopped: the side ports close.
        let stopped = CancellationToken::new();

        let durable = *writer.durable_head().borrow();
        let (search_index, search_start) =
            SearchIndex::open(&config.data_dir.join("search"), engine.store_id(), durable)?;
        let stop_indexer = CancellationToken::new();
        let indexer = search::spawn(
            search_index.clone(),
            search_start,
            Arc::clone(&engine),
            &writer,
            stop_indexer.clone(),
        )?;
        let releases =
            PressReleases::new(Arc::clone(&engine), writer.clone(), search_index.clone());
        let feed = Feed::new(
            Arc::clone(&engine),
            &writer,
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
            Arc::clone(&engine),
            writer.clone(),
            draining.clone(),
        ));
        let mut side_tasks: Vec<JoinHandle<()>> = Vec::new();
        if let Some(keys) = keys.clone() {
            side_tasks.push(tokio::spawn(reload_keys(keys, stopped.clone())));
        }
        if let Some(metrics) = metrics {
            prometheus::handle();
            let sources = prometheus::Sources {
                store: Arc::clone(&engine),
                durable_head: writer.durable_head(),
                watchers,
                search: search_index,
            };
            let stop = stopped.clone();
            tracing::info!(addr = %metrics.addr, "serving Prometheus metrics at /metrics");
            side_tasks.push(tokio::spawn(async move {
                if let Err(error) =
                    prometheus::serve(metrics.listener, sources, stop.cancelled_owned()).await
                {
                    tracing::error!(%error, "the metrics endpoint failed");
                }
            }));
        }
        let api = PressReleaseApi::new(releases, feed.clone());

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<PressReleaseServiceServer<PressReleaseApi>>()
            .await;
        if let Some(health) = health {
            let service = health_service.clone();
            let stop = stopped.clone();
            tracing::info!(addr = %health.addr, "serving grpc.health.v1 in plaintext");
            side_tasks.push(tokio::spawn(async move {
                let served = Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(
                        TcpIncoming::from(health.listener),
                        stop.cancelled_owned(),
                    )
                    .await;
                if let Err(error) = served {
                    tracing::error!(error = %telemetry::chain(&error), "the health port failed");
                }
            }));
        }
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        let signal = {
            let draining = draining.clone();
            let health = health_reporter.clone();
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

        let mut server = Server::builder();
        if let Some(tls) = tls {
            server = server.tls_config(tls)?;
        }
        let layers = tower::ServiceBuilder::new()
            .layer(
                TraceLayer::new_for_grpc()
                    .make_span_with(|request: &http::Request<_>| {
                        tracing::info_span!(
                            "rpc",
                            method = %request.uri().path(),
                            name = tracing::field::Empty,
                            caller = tracing::field::Empty,
                        )
                    })
                    .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                    .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
            )
            .layer(if config.metrics_listen.is_some() {
                MetricsLayer::recording()
            } else {
                MetricsLayer::off()
            })
            .layer(AuthLayer::new(keys))
            .layer(LimitsLayer::new(
                config.max_concurrent_requests,
                config.request_timeout,
            ));
        let incoming = TcpIncoming::from(listener.listener).with_nodelay(Some(true));
        tracing::info!(addr = %listener.addr, tls = config.tls_cert.is_some(), "serving pressroom.v1.PressReleaseService");
        let serve = server
            .http2_keepalive_interval(Some(config.keepalive_interval))
            .http2_keepalive_timeout(Some(config.keepalive_timeout))
            .max_concurrent_streams(config.max_streams_per_connection)
            .layer(layers)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(
                api.into_server()
                    .max_decoding_message_size(config.max_request_bytes),
            )
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
        stopped.cancel();
        for task in side_tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "a side task failed");
            }
        }
        if let Err(error) = scheduler.await {
            tracing::error!(%error, "the embargo scheduler failed");
        }
        feed.join().await;
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

/// Reads the TLS files, if TLS is configured.
fn tls_config(config: &ServeConfig) -> Result<Option<ServerTlsConfig>, AppError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| AppError::Tls {
            path: path.clone(),
            source,
        })
    };
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let mut tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(read(cert)?, read(key)?))
        .timeout(config.tls_handshake_timeout);
    if let Some(ca) = &config.tls_client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(Some(tls))
}

/// Reloads the keys file on SIGHUP, and whenever it changes (checked every
/// two seconds: a Kubernetes Secret update only changes the file).
async fn reload_keys(keys: Keys, stop: CancellationToken) {
    #[cfg(unix)]
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    #[cfg(not(unix))]
    let mut hangups: Option<tokio::sync::mpsc::Receiver<()>> = None;
    loop {
        let hangup = async {
            match hangups.as_mut() {
                Some(stream) => {
                    stream.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = hangup => {
                tracing::info!("SIGHUP: reloading the keys file");
                keys.reload();
            }
            () = tokio::time::sleep(Duration::from_secs(2)) => keys.reload(),
            () = stop.cancelled() => break,
        }
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
    let telemetry = telemetry::init(config.log_format, config.otlp_endpoint.as_deref());
    let result = match App::build(config).await {
        Ok(app) => app.run_until(crate::shutdown::signal()).await,
        Err(error) => Err(error),
    };
    telemetry.shutdown();
    result
}
