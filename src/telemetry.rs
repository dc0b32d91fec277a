//! Logging and tracing, set up once per process: `RUST_LOG` filters
//! (default `info`), output is JSON in production and human-readable on a
//! terminal, and spans are exported over OTLP/gRPC when an endpoint is
//! configured. Request bodies and secrets are never logged.

use std::{error::Error, io::IsTerminal};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    Auto,
    /// Human-readable.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Keeps the trace exporter alive; [`Telemetry::shutdown`] flushes it.
#[derive(Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "flushing traces failed");
        }
    }
}

/// Installs the global subscriber; later calls (tests) are no-ops. Must run
/// inside the tokio runtime when `otlp_endpoint` is set.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> Telemetry {
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let output = if json {
        fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        fmt::layer().with_writer(std::io::stderr).boxed()
    };
    let (provider, otlp_error) = match otlp_endpoint.map(otlp_provider) {
        Some(Ok(provider)) => (Some(provider), None),
        Some(Err(error)) => (None, Some(error)),
        None => (None, None),
    };
    let traces = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("pressroom")));
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .with(traces)
        .try_init()
        .is_ok();
    if let Some(error) = otlp_error {
        tracing::error!(error = %chain(&*error), "cannot set up OTLP trace export; traces stay local");
    }
    if let (true, Some(endpoint)) = (installed, otlp_endpoint) {
        tracing::info!(endpoint, "exporting traces over OTLP/gRPC");
    }
    Telemetry {
        provider: if installed { provider } else { None },
    }
}

fn otlp_provider(endpoint: &str) -> Result<SdkTracerProvider, Box<dyn Error + Send + Sync>> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("pressroom").build())
        .build())
}

/// An error and all its causes, `outer: inner: innermost`.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
