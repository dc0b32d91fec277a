//! Prometheus metrics: the process-wide recorder (installed once), the
//! gauges refreshed at each scrape (releases published, change-log head,
//! active watchers, search index lag, embargoes pending), and the `/metrics`
//! endpoint on its own listen address.

use std::{future::Future, sync::OnceLock};

use axum::{Router, routing::get};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::{net::TcpListener, sync::watch};

use crate::{feed::WatcherRegistry, search::SearchIndex, store::Store};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// The recorder's handle, installing the recorder on first use. `None` if
/// another recorder was installed first.
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("grpc_server_handling_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("pressroom_flush_seconds".into()),
                        LATENCY_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("pressroom_write_batch_size".into()),
                        BATCH_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("pressroom_feed_request_seconds".into()),
                        LATENCY_BUCKETS,
                    )
                });
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                Err(error) => {
                    tracing::error!(%error, "cannot configure metrics");
                    return None;
                }
            };
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => Some(handle),
                Err(error) => {
                    tracing::error!(%error, "cannot install the metrics recorder");
                    None
                }
            }
        })
        .clone()
}

/// What the gauges are read from.
#[derive(Clone)]
pub struct Sources {
    /// The store.
    pub store: std::sync::Arc<dyn Store>,
    /// The durable head of the change log.
    pub durable_head: watch::Receiver<u64>,
    /// Open watch streams.
    pub watchers: WatcherRegistry,
    /// The search index.
    pub search: SearchIndex,
}

impl Sources {
    async fn refresh(&self) {
        let head = *self.durable_head.borrow();
        metrics::gauge!("pressroom_change_log_head").set(head as f64);
        metrics::gauge!("pressroom_active_watchers").set(self.watchers.active() as f64);
        metrics::gauge!("pressroom_search_index_lag")
            .set(head.saturating_sub(self.search.position()) as f64);
        match self.store.published_total().await {
            Ok(total) => metrics::gauge!("pressroom_releases_published").set(total as f64),
            Err(error) => tracing::warn!(%error, "cannot read the published count"),
        }
        match self.store.embargoes_pending().await {
            Ok(pending) => metrics::gauge!("pressroom_embargoes_pending").set(pending as f64),
            Err(error) => tracing::warn!(%error, "cannot count pending embargoes"),
        }
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    sources: Sources,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let sources = sources.clone();
            async move {
                let Some(handle) = handle() else {
                    return String::from("# metrics are unavailable in this process\n");
                };
                sources.refresh().await;
                tokio::task::spawn_blocking(move || {
                    handle.run_upkeep();
                    handle.render()
                })
                .await
                .unwrap_or_default()
            }
        }),
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
