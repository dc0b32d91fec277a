//! The feeds' metrics, beside the gRPC ones: `pressroom_feed_requests_total`
//! by format and HTTP status (a 304 is its own status, so conditional hits
//! show), and `pressroom_feed_request_seconds` by format. Handles are
//! registered once, so recording costs no lookup; like the gRPC metrics,
//! nothing is recorded without a metrics endpoint.

use std::{collections::HashMap, time::Duration};

use http::StatusCode;
use metrics::{Counter, Histogram};

use super::request::Format;

/// The statuses a feed request can end with.
const STATUSES: [u16; 11] = [200, 304, 400, 401, 403, 404, 429, 499, 500, 503, 504];

/// Records feed requests, or nothing.
#[derive(Clone, Default)]
pub struct SyndicationMetrics {
    recording: Option<std::sync::Arc<Handles>>,
}

struct Handles {
    requests: HashMap<(&'static str, u16), Counter>,
    seconds: HashMap<&'static str, Histogram>,
}

impl SyndicationMetrics {
    /// Records into the installed recorder.
    pub fn recording() -> Self {
        let labels = Format::ALL
            .iter()
            .map(|format| format.label())
            .chain(["none"]);
        let mut requests = HashMap::new();
        let mut seconds = HashMap::new();
        for format in labels {
            for status in STATUSES {
                requests.insert(
                    (format, status),
                    metrics::counter!(
                        "pressroom_feed_requests_total",
                        "format" => format,
                        "code" => status.to_string()
                    ),
                );
            }
            seconds.insert(
                format,
                metrics::histogram!("pressroom_feed_request_seconds", "format" => format),
            );
        }
        Self {
            recording: Some(std::sync::Arc::new(Handles { requests, seconds })),
        }
    }

    /// Records nothing.
    pub fn off() -> Self {
        Self::default()
    }

    /// Counts a request for `format` (`None`: the path named none) that
    /// ended with `status` after `took`.
    pub fn record(&self, format: Option<Format>, status: StatusCode, took: Duration) {
        let Some(handles) = &self.recording else {
            return;
        };
        let format = format.map_or("none", Format::label);
        // Statuses outside the known set count as 500 (none is expected).
        let status = if STATUSES.contains(&status.as_u16()) {
            status.as_u16()
        } else {
            500
        };
        if let Some(counter) = handles.requests.get(&(format, status)) {
            counter.increment(1);
        }
        if let Some(histogram) = handles.seconds.get(format) {
            histogram.record(took.as_secs_f64());
        }
    }
}
