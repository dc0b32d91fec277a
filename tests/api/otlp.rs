//! Trace export: the real binary, pointed at an OTLP/gRPC collector run by
//! the test, sends the spans of the calls it serves.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use pressroom::proto::v1::{
    ListPressReleasesRequest, press_release_service_client::PressReleaseServiceClient,
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use crate::helpers::{Binary, TestResult, temp_dir};

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self
            .spans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|span| span.name));
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test]
async fn spans_reach_an_otlp_collector() -> TestResult {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let dir = temp_dir();
    let data = dir.path().join("data").display().to_string();
    let binary = Binary::serve(&["--data-dir", &data, "--otlp-endpoint", &endpoint])?;
    let logs = Arc::clone(&binary.logs);
    let mut client = PressReleaseServiceClient::connect(format!("http://{}", binary.addr)).await?;
    client
        .list_press_releases(ListPressReleasesRequest::default())
        .await?;
    // Shutting down flushes the spans still buffered.
    let status = tokio::task::spawn_blocking(move || binary.terminate()).await??;
    assert!(status.success(), "{status:?}");
    let spans = collector
        .spans
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let logs = logs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .join("\n");
    assert!(
        spans.iter().any(|name| name == "rpc"),
        "spans received: {spans:?}\nserver log:\n{logs}"
    );
    Ok(())
}
