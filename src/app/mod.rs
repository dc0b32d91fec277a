//! Assembles the server and runs it.
//!
//! [`App::build`] does all the wiring and fails early: it validates the
//! configuration, loads the API keys and TLS files, opens the store, binds
//! every port (port 0 works; the accessors tell the real ones), starts the
//! writer and the readers of the change log, and wires the gRPC server and
//! the side ports (health, metrics, HTTP feeds), ready to serve.
//! [`App::run_until`] starts serving, and when the given future completes
//! shuts down in order: health turns `NOT_SERVING`, long-lived streams are
//! told to end, no new calls are taken, calls in flight finish (bounded by
//! the grace period), the side ports close, the background readers stop,
//! the writer commits what is queued, and the store is flushed and closed.
//!
//! The parts, one file each: `backend` (the store, its writer, the domain
//! and the change-log readers), `grpc` (TLS, transport, the layers every
//! call passes, the services), `side_ports` (health port, metrics endpoint,
//! HTTP feeds, keys reload) and `error`. The limits (`api::limits`) are
//! built here, once, for the gRPC calls and the feeds together.

mod backend;
mod error;
mod grpc;
mod side_ports;

use std::{future::Future, net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic_health::server::HealthReporter;

pub use self::error::AppError;
use self::{
    backend::{Backend, Engine},
    grpc::GrpcServer,
    side_ports::SidePorts,
};
use crate::{
    api::limits::LimitsLayer, api_keys::Keys, config::ServeConfig, feed::WatcherRegistry,
    prometheus, store::SledStore, syndication::SyndicationMetrics, telemetry,
};

/// A server that has opened its store, bound its ports and wired
/// everything, ready to run.
pub struct App {
    addr: SocketAddr,
    health_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    feeds_addr: Option<SocketAddr>,
    backend: Backend,
    grpc: GrpcServer,
    side_ports: SidePorts,
    /// Stops everything started if the app is dropped before it has run
    /// (or while it runs).
    _abandoned: DropGuard,
}

impl App {
    /// Validates `config`, opens the store, binds the listen addresses and
    /// wires every part of the server; any mistake shows here.
    pub async fn build(config: ServeConfig) -> Result<Self, AppError> {
        config.validate()?;
        prepare_data_dir(&config)?;
        let engine = Backend::open_store(&config).await?;
        Self::build_with(config, engine).await
    }

    /// [`App::build`] over a store already open in `<data dir>/store`, for
    /// a caller that keeps a handle on it (a test that holds its syncs
    /// open, say).
    pub async fn build_on(config: ServeConfig, store: Arc<SledStore>) -> Result<Self, AppError> {
        Self::build_with(config, Engine::Sled(store)).await
    }

    async fn build_with(config: ServeConfig, engine: Engine) -> Result<Self, AppError> {
        config.validate()?;
        let store = engine.store();
        let keys = config.keys_file.as_deref().map(Keys::load).transpose()?;
        let tls = grpc::tls_config(&config)?;
        let listener = Bound::bind(config.listen).await?;
        let health_port = Bound::bind_if_set(config.health_listen).await?;
        let metrics_port = Bound::bind_if_set(config.metrics_listen).await?;
        let feeds_port = Bound::bind_if_set(config.feeds_listen).await?;
        tracing::info!(
            data_dir = %config.data_dir.display(),
            log_head = store.log_head(),
            store_id = %store.store_id(),
            "store opened"
        );
        warn_if_unauthenticated(keys.as_ref(), listener.addr);

        // Every task started from here on stops when this is cancelled.
        let everything = CancellationToken::new();
        let abandoned = everything.clone().drop_guard();
        let draining = everything.child_token();
        let backend = Backend::start(&config, engine, &everything, draining.clone())?;
        let health = HealthReporter::new();
        let addr = listener.addr;
        // gRPC calls and feed requests share the limits.
        let mut limits = LimitsLayer::new(config.max_concurrent_requests, config.request_timeout);
        if keys.is_some() {
            limits = limits.per_key(config.max_concurrent_requests_per_key);
        }
        let grpc = GrpcServer::build(
            &config,
            tls,
            keys.clone(),
            limits.clone(),
            backend.api(),
            backend.subscription_api(),
            health.clone(),
            listener,
            draining,
        )
        .await?;

        let (health_addr, metrics_addr, feeds_addr) = (
            health_port.as_ref().map(|port| port.addr),
            metrics_port.as_ref().map(|port| port.addr),
            feeds_port.as_ref().map(|port| port.addr),
        );
        let mut side_ports = SidePorts::new(everything.child_token());
        if let Some(port) = health_port {
            side_ports.health(port, &health);
        }
        if let Some(port) = metrics_port {
            side_ports.metrics(port, backend.metrics_sources());
        }
        if let Some(port) = feeds_port {
            let metrics = if config.metrics_listen.is_some() {
                prometheus::handle();
                SyndicationMetrics::recording()
            } else {
                SyndicationMetrics::off()
            };
            side_ports.feeds(port, backend.feeds(&config, keys.clone(), limits, metrics));
        }
        if let Some(keys) = keys {
            side_ports.reload_keys(keys);
        }
        Ok(Self {
            addr,
            health_addr,
            metrics_addr,
            feeds_addr,
            backend,
            grpc,
            side_ports,
            _abandoned: abandoned,
        })
    }

    /// The address the gRPC server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the plaintext health port, if any.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_addr
    }

    /// The address of the metrics endpoint, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The address of the HTTP feeds, if any.
    pub fn feeds_addr(&self) -> Option<SocketAddr> {
        self.feeds_addr
    }

    /// The open watch streams and what each holds.
    pub fn watchers(&self) -> WatcherRegistry {
        self.backend.watchers()
    }

    /// Serves until `shutdown` completes, then shuts down in order.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), AppError> {
        let Self {
            backend,
            grpc,
            side_ports,
            _abandoned,
            ..
        } = self;
        let side_ports = side_ports.start();
        let served = grpc.serve_until(shutdown).await;
        side_ports.stop().await;
        backend.stop().await?;
        served.map_err(AppError::from)
    }
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

/// A bound listener and its address.
struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Bound {
    /// Binds `addr` (port 0 picks a free port).
    async fn bind(addr: SocketAddr) -> Result<Self, AppError> {
        let bind_error = |source| AppError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok(Self { listener, addr })
    }

    /// Binds `addr` if there is one.
    async fn bind_if_set(addr: Option<SocketAddr>) -> Result<Option<Self>, AppError> {
        match addr {
            Some(addr) => Ok(Some(Self::bind(addr).await?)),
            None => Ok(None),
        }
    }
}

/// Creates the data dir.
fn prepare_data_dir(config: &ServeConfig) -> Result<(), AppError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| AppError::DataDir {
        path: config.data_dir.clone(),
        source,
    })
}

/// Says whether authentication is on, and warns loudly when it is off.
fn warn_if_unauthenticated(keys: Option<&Keys>, listen: SocketAddr) {
    match keys {
        Some(keys) => tracing::info!(
            keys = keys.current().len(),
            "API keys loaded; authentication is on"
        ),
        None => tracing::warn!(
            %listen,
            "AUTHENTICATION IS OFF: there is no keys file, so every caller may do everything, \
             including reading embargoed press releases. Configure --keys-file before serving \
             anyone but yourself."
        ),
    }
}
