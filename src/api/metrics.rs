//! The standard gRPC server metrics, under the names existing dashboards
//! use: `grpc_server_started_total`, `grpc_server_handled_total` (with the
//! status code), `grpc_server_handling_seconds`, `grpc_server_msg_received_total`
//! and `grpc_server_msg_sent_total`. Messages are counted by reading the gRPC
//! framing of the request and response bodies as they pass; the status
//! comes from the response headers (an early error) or from the trailers.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use bytes::{Buf, Bytes};
use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame};
use metrics::{Counter, Histogram};
use tonic::{Code, Status, body::Body};
use tower::{Layer, Service};

use super::methods::{KNOWN, Method};

/// Records the standard gRPC metrics. Built with [`MetricsLayer::recording`]
/// after the recorder is installed, it registers every known method's
/// metrics once; [`MetricsLayer::off`] records nothing.
#[derive(Clone)]
pub struct MetricsLayer {
    methods: Option<Arc<HashMap<&'static str, MethodMetrics>>>,
}

impl MetricsLayer {
    /// Records into the installed recorder.
    pub fn recording() -> Self {
        let mut methods: HashMap<&'static str, MethodMetrics> = KNOWN
            .values()
            .map(|method| (method.path, MethodMetrics::new(method)))
            .collect();
        let unknown = Method::of_path("unknown");
        methods.insert(unknown.path, MethodMetrics::new(&unknown));
        Self {
            methods: Some(Arc::new(methods)),
        }
    }

    /// Records nothing (no metrics endpoint).
    pub fn off() -> Self {
        Self { methods: None }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> GrpcMetrics<S> {
        GrpcMetrics {
            inner,
            methods: self.methods.clone(),
        }
    }
}

/// The recording service.
#[derive(Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    methods: Option<Arc<HashMap<&'static str, MethodMetrics>>>,
}

/// The metrics of one method, registered once.
struct MethodMetrics {
    started: Counter,
    received: Counter,
    sent: Counter,
    handling: Histogram,
    /// `grpc_server_handled_total` per code, by the code's number.
    handled: Vec<Counter>,
}

impl MethodMetrics {
    fn new(method: &Method) -> Self {
        let labels = [
            ("grpc_type", method.kind.label()),
            ("grpc_service", method.service),
            ("grpc_method", method.name),
        ];
        let handled = (0..=16)
            .map(|code| {
                let code = code_name(Code::from_i32(code));
                let mut labels = labels.to_vec();
                labels.push(("grpc_code", code));
                metrics::counter!("grpc_server_handled_total", &labels)
            })
            .collect();
        Self {
            started: metrics::counter!("grpc_server_started_total", &labels),
            received: metrics::counter!("grpc_server_msg_received_total", &labels),
            sent: metrics::counter!("grpc_server_msg_sent_total", &labels),
            handling: metrics::histogram!("grpc_server_handling_seconds", &labels),
            handled,
        }
    }
}

/// One call being recorded.
struct Call {
    metrics: Arc<HashMap<&'static str, MethodMetrics>>,
    path: &'static str,
    started: Instant,
}

impl Call {
    fn metrics(&self) -> Option<&MethodMetrics> {
        self.metrics
            .get(self.path)
            .or_else(|| self.metrics.get("unknown"))
    }

    fn finished(&self, code: Code) {
        if let Some(metrics) = self.metrics() {
            if let Some(handled) = metrics.handled.get(code as usize) {
                handled.increment(1);
            }
            metrics
                .handling
                .record(self.started.elapsed().as_secs_f64());
        }
    }
}

impl<S> Service<Request<Body>> for GrpcMetrics<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let method = Method::of_path(request.uri().path());
        request.extensions_mut().insert(method);
        let Some(metrics) = self.methods.clone() else {
            return Box::pin(self.inner.call(request));
        };
        let call = Call {
            metrics,
            path: method.path,
            started: Instant::now(),
        };
        let Some(method_metrics) = call.metrics() else {
            return Box::pin(self.inner.call(request));
        };
        method_metrics.started.increment(1);
        let received = method_metrics.received.clone();
        let sent = method_metrics.sent.clone();
        let request = request.map(|body| {
            Body::new(Counting {
                inner: body,
                frames: Frames::default(),
                messages: received,
                done: None,
            })
        });
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let early = status_in(response.headers());
            if let Some(code) = early {
                call.finished(code);
            }
            Ok(response.map(|body| {
                Body::new(Counting {
                    inner: body,
                    frames: Frames::default(),
                    messages: sent,
                    done: early.is_none().then_some(call),
                })
            }))
        })
    }
}

/// A body that counts the gRPC messages in it and, for a response, records
/// the call's outcome when the trailers pass (or when it is dropped before
/// them: the client went away).
struct Counting {
    inner: Body,
    frames: Frames,
    messages: Counter,
    done: Option<Call>,
}

impl HttpBody for Counting {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let messages = self.frames.feed(data.chunk());
                    self.messages.increment(messages);
                } else if let Some(trailers) = frame.trailers_ref() {
                    let code = status_in(trailers).unwrap_or(Code::Unknown);
                    if let Some(call) = self.done.take() {
                        call.finished(code);
                    }
                }
            }
            Poll::Ready(Some(Err(status))) => {
                if let Some(call) = self.done.take() {
                    call.finished(status.code());
                }
            }
            Poll::Ready(None) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        if let Some(call) = self.done.take() {
            call.finished(Code::Cancelled);
        }
    }
}

/// Follows the gRPC length-prefixed framing (a flag byte, a 4-byte length,
/// the message) across data chunks, counting messages.
#[derive(Default)]
struct Frames {
    header: [u8; 5],
    header_len: usize,
    remaining: u64,
}

impl Frames {
    /// Feeds a chunk; returns how many messages started in it.
    fn feed(&mut self, mut chunk: &[u8]) -> u64 {
        let mut started = 0;
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let skip = (self.remaining as usize).min(chunk.len());
                self.remaining -= skip as u64;
                chunk = &chunk[skip..];
                continue;
            }
            let take = (5 - self.header_len).min(chunk.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&chunk[..take]);
            self.header_len += take;
            chunk = &chunk[take..];
            if self.header_len == 5 {
                started += 1;
                self.header_len = 0;
                let mut len = [0; 4];
                len.copy_from_slice(&self.header[1..]);
                self.remaining = u64::from(u32::from_be_bytes(len));
            }
        }
        started
    }
}

fn status_in(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    value.parse::<i32>().ok().map(Code::from_i32)
}

/// The code names existing gRPC dashboards use.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(messages: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for message in messages {
            out.push(0);
            out.extend_from_slice(&(message.len() as u32).to_be_bytes());
            out.extend_from_slice(message);
        }
        out
    }

    proptest! {
        #[test]
        fn counts_messages_however_the_bytes_are_split(
            messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..10),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let bytes = framed(&messages);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            points.push(0);
            points.push(bytes.len());
            points.sort_unstable();
            let mut frames = Frames::default();
            let total: u64 = points.windows(2).map(|w| frames.feed(&bytes[w[0]..w[1]])).sum();
            prop_assert_eq!(total, messages.len() as u64);
        }
    }
}
