//! The gRPC server: TLS, the HTTP/2 transport settings, the layers every
//! call passes (in order: the tracing span, the gRPC metrics,
//! authentication, the limits), and the services (ours, grpc.health.v1,
//! reflection v1 and v1alpha). [`GrpcServer::build`] wires it all, so that a
//! bad certificate or descriptor fails the build; [`GrpcServer::serve_until`]
//! serves until shutdown and then drains.

use std::{future::Future, net::SocketAddr, path::PathBuf, time::Duration};

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig, server::TcpIncoming};
use tonic_health::{
    ServingStatus,
    server::{HealthReporter, HealthService},
};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

use super::{AppError, Bound};
use crate::{
    api::{
        PressReleaseApi, SubscriptionApi, auth::AuthLayer, limits::LimitsLayer,
        metrics::MetricsLayer,
    },
    api_keys::Keys,
    config::ServeConfig,
    prometheus,
    proto::{FILE_DESCRIPTOR_SET, v1::press_release_service_server::PressReleaseServiceServer},
};

/// Our service, as the health reporter names it.
type Service = PressReleaseServiceServer<PressReleaseApi>;

/// The gRPC server, wired and bound, ready to serve.
pub(super) struct GrpcServer {
    /// The server, serving until `draining` is cancelled (lazy: nothing
    /// runs until it is polled).
    serving: BoxFuture<'static, Result<(), tonic::transport::Error>>,
    addr: SocketAddr,
    tls: bool,
    health: HealthReporter,
    draining: CancellationToken,
    grace: Duration,
}

impl GrpcServer {
    /// Wires the server on `listener`: TLS (`tls`), the transport settings
    /// and layers of `config`, authentication against `keys`, the `limits`
    /// (shared with the feeds), and the services, with `health` reporting
    /// ours as serving. It stops taking calls once `draining` is cancelled.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn build(
        config: &ServeConfig,
        tls: Option<ServerTlsConfig>,
        keys: Option<Keys>,
        limits: LimitsLayer,
        api: PressReleaseApi,
        subscriptions: SubscriptionApi,
        health: HealthReporter,
        listener: Bound,
        draining: CancellationToken,
    ) -> Result<Self, AppError> {
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;
        health.set_serving::<Service>().await;

        let metrics = if config.metrics_listen.is_some() {
            // The layer registers its metrics with the recorder: install it first.
            prometheus::handle();
            MetricsLayer::recording()
        } else {
            MetricsLayer::off()
        };
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
            .layer(metrics)
            .layer(AuthLayer::new(keys))
            .layer(limits);

        let tls_on = tls.is_some();
        let mut server = Server::builder();
        if let Some(tls) = tls {
            server = server.tls_config(tls)?;
        }
        let incoming = TcpIncoming::from(listener.listener).with_nodelay(Some(true));
        let serving = server
            .http2_keepalive_interval(Some(config.keepalive_interval))
            .http2_keepalive_timeout(Some(config.keepalive_timeout))
            .max_concurrent_streams(config.max_streams_per_connection)
            .layer(layers)
            .add_service(health_service(&health))
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(
                api.into_server()
                    .max_decoding_message_size(config.max_request_bytes),
            )
            .add_service(
                subscriptions
                    .into_server()
                    .max_decoding_message_size(config.max_request_bytes),
            )
            .serve_with_incoming_shutdown(incoming, draining.clone().cancelled_owned());
        Ok(Self {
            serving: Box::pin(serving),
            addr: listener.addr,
            tls: tls_on,
            health,
            draining,
            grace: config.shutdown_grace,
        })
    }

    /// Serves until `shutdown` completes (or the server fails), then drains:
    /// health turns `NOT_SERVING`, streams are told to end and no new calls
    /// are taken, and calls in flight get the grace period to finish.
    pub(super) async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let Self {
            mut serving,
            addr,
            tls,
            health,
            draining,
            grace,
        } = self;
        tracing::info!(%addr, tls, "serving pressroom.v1.PressReleaseService");
        let stopped_early = tokio::select! {
            served = &mut serving => Some(served),
            () = shutdown => None,
        };
        if let Some(served) = stopped_early {
            draining.cancel();
            return served;
        }

        tracing::info!("shutting down: no new calls; draining calls in flight");
        health.set_not_serving::<Service>().await;
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        draining.cancel();
        tokio::select! {
            served = serving => served,
            () = tokio::time::sleep(grace) => {
                tracing::warn!(?grace, "calls still open after the grace period; closing them");
                Ok(())
            }
        }
    }
}

/// The grpc.health.v1 service answering from `health`'s statuses.
pub(super) fn health_service(
    health: &HealthReporter,
) -> tonic_health::pb::health_server::HealthServer<HealthService> {
    tonic_health::pb::health_server::HealthServer::new(HealthService::from_health_reporter(
        health.clone(),
    ))
}

/// Reads the TLS files, if TLS is configured.
pub(super) fn tls_config(config: &ServeConfig) -> Result<Option<ServerTlsConfig>, AppError> {
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
