//! What runs beside the gRPC server: the plaintext health port (for
//! Kubernetes probes when the gRPC port speaks TLS), the Prometheus metrics
//! endpoint, the HTTP feeds, and the reloading of the keys file. Each is
//! prepared by `App::build` and started by `App::run_until`; they stop once
//! the gRPC server has stopped.

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::server::HealthReporter;

use super::{Bound, grpc::health_service};
use crate::{api_keys::Keys, prometheus, syndication::Syndication, telemetry};

/// The side tasks, prepared and not yet started.
pub(super) struct SidePorts {
    tasks: Vec<BoxFuture<'static, ()>>,
    stop: CancellationToken,
}

/// The side tasks, running.
pub(super) struct RunningSidePorts {
    tasks: Vec<JoinHandle<()>>,
    stop: CancellationToken,
}

impl SidePorts {
    /// No side tasks yet; those added stop when `stop` is cancelled.
    pub(super) fn new(stop: CancellationToken) -> Self {
        Self {
            tasks: Vec::new(),
            stop,
        }
    }

    /// Serves grpc.health.v1, as `health` reports it, in plaintext on `port`.
    pub(super) fn health(&mut self, port: Bound, health: &HealthReporter) {
        let service = health_service(health);
        let stop = self.stop.clone();
        self.tasks.push(Box::pin(async move {
            tracing::info!(addr = %port.addr, "serving grpc.health.v1 in plaintext");
            let served = Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    TcpIncoming::from(port.listener),
                    stop.cancelled_owned(),
                )
                .await;
            if let Err(error) = served {
                tracing::error!(error = %telemetry::chain(&error), "the health port failed");
            }
        }));
    }

    /// Serves the Prometheus metrics at `/metrics` on `port`, with gauges
    /// read from `sources`.
    pub(super) fn metrics(&mut self, port: Bound, sources: prometheus::Sources) {
        prometheus::handle();
        let stop = self.stop.clone();
        self.tasks.push(Box::pin(async move {
            tracing::info!(addr = %port.addr, "serving Prometheus metrics at /metrics");
            if let Err(error) =
                prometheus::serve(port.listener, sources, stop.cancelled_owned()).await
            {
                tracing::error!(%error, "the metrics endpoint failed");
            }
        }));
    }

    /// Serves the HTTP feeds on `port`.
    pub(super) fn feeds(&mut self, port: Bound, feeds: Syndication) {
        let stop = self.stop.clone();
        self.tasks.push(Box::pin(async move {
            tracing::info!(
                addr = %port.addr,
                "serving RSS, Atom and JSON Feed at /feeds/{{rss,atom,json}}"
            );
            if let Err(error) = feeds.serve(port.listener, stop.cancelled_owned()).await {
                tracing::error!(%error, "the feeds listener failed");
            }
        }));
    }

    /// Reloads `keys` from its file on SIGHUP and whenever the file changes.
    pub(super) fn reload_keys(&mut self, keys: Keys) {
        self.tasks
            .push(Box::pin(reload_keys(keys, self.stop.clone())));
    }

    /// Starts every side task.
    pub(super) fn start(self) -> RunningSidePorts {
        RunningSidePorts {
            tasks: self.tasks.into_iter().map(tokio::spawn).collect(),
            stop: self.stop,
        }
    }
}

impl RunningSidePorts {
    /// Closes the side ports and waits for every side task to end.
    pub(super) async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "a side task failed");
            }
        }
    }
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
