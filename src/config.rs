//! The configuration of `pressroom serve`: its flags, each with an
//! environment variable, in one place. [`ServeConfig::validate`] checks them
//! at start-up and says what is wrong with each mistake. (The other verbs'
//! arguments live with them in [`crate::client`]; `main.rs` puts both
//! together.)

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser};

use crate::telemetry::LogFormat;

/// Settings of `pressroom serve`.
#[derive(Clone, Debug, Args)]
pub struct ServeConfig {
    /// Address to listen on for gRPC.
    #[arg(long, env = "PRESSROOM_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Directory for the data; created if missing. With `--store` it holds
    /// only this replica's search index and scratch files.
    #[arg(long, env = "PRESSROOM_DATA_DIR", default_value = "./pressroom-data")]
    pub data_dir: PathBuf,

    /// Where press releases are stored: unset for sled in `--data-dir` (the
    /// default, one process), or a PostgreSQL URL such as
    /// `postgres://user:secret@db/pressroom?sslmode=verify-full`, which any
    /// number of replicas share.
    #[arg(long, env = "PRESSROOM_STORE", hide_env_values = true)]
    pub store: Option<String>,

    /// With `--store`: most connections this replica opens to the database
    /// (the head follower and the embargo scheduler's lock hold one more
    /// each).
    #[arg(long, env = "PRESSROOM_STORE_POOL_SIZE", default_value_t = 16)]
    pub store_pool_size: usize,

    /// With `--store`: how often this replica polls the shared change log's
    /// head for other replicas' commits (`LISTEN` wakes it earlier; the poll
    /// bounds how late a lost notification makes it), e.g. `200ms`.
    #[arg(long, env = "PRESSROOM_STORE_POLL_INTERVAL", default_value = "200ms", value_parser = parse_duration)]
    pub store_poll_interval: Duration,

    /// Log format: `auto` (pretty on a terminal, JSON otherwise), `pretty` or
    /// `json`. Levels come from `RUST_LOG` (default `info`).
    #[arg(long, env = "PRESSROOM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// How long shutdown waits for calls in flight before closing
    /// connections, e.g. `10s`.
    #[arg(long, env = "PRESSROOM_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Size of sled's page cache, in MiB.
    #[arg(long, env = "PRESSROOM_CACHE_MB", default_value_t = 256)]
    pub cache_mb: u64,

    /// Most changes committed (and flushed) together.
    #[arg(long, env = "PRESSROOM_MAX_WRITE_BATCH", default_value_t = 1024)]
    pub max_write_batch: usize,

    /// A watch stream sends a Progress when nothing else was sent for this
    /// long, e.g. `5s`.
    #[arg(long, env = "PRESSROOM_WATCH_PROGRESS_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub watch_progress_interval: Duration,

    /// Messages a watch stream buffers for a slow consumer.
    #[arg(long, env = "PRESSROOM_WATCH_BUFFER", default_value_t = 16)]
    pub watch_buffer: usize,

    /// Most watch streams open at once.
    #[arg(long, env = "PRESSROOM_MAX_WATCHERS", default_value_t = 10_000)]
    pub max_watchers: usize,

    /// Most watch streams open at once for one API key.
    #[arg(long, env = "PRESSROOM_MAX_WATCHERS_PER_KEY", default_value_t = 1_000)]
    pub max_watchers_per_key: usize,

    /// Most subscriptions kept; creating one more is refused with
    /// RESOURCE_EXHAUSTED.
    #[arg(long, env = "PRESSROOM_MAX_SUBSCRIPTIONS", default_value_t = 1_000)]
    pub max_subscriptions: usize,

    /// Most StreamSubscription streams open at once on one subscription;
    /// one more is refused with RESOURCE_EXHAUSTED.
    #[arg(
        long,
        env = "PRESSROOM_MAX_SUBSCRIPTION_STREAMS",
        default_value_t = 1_000
    )]
    pub max_subscription_streams: usize,

    /// API keys file: one `<name> <role> sha256:<hex>` per line (see
    /// `pressroom keys generate`). Reloaded on SIGHUP and when it changes.
    /// Without it authentication is off, which is allowed only on a loopback
    /// address unless `--insecure` is given.
    #[arg(long, env = "PRESSROOM_KEYS_FILE")]
    pub keys_file: Option<PathBuf>,

    /// Serve without authentication even on a non-loopback address.
    #[arg(long, env = "PRESSROOM_INSECURE")]
    pub insecure: bool,

    /// TLS certificate chain (PEM); with `--tls-key` turns TLS on.
    #[arg(long, env = "PRESSROOM_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, env = "PRESSROOM_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// CA certificate (PEM) that client certificates must chain to: mutual TLS.
    #[arg(long, env = "PRESSROOM_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,

    /// Longest a TLS handshake may take.
    #[arg(long, env = "PRESSROOM_TLS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub tls_handshake_timeout: Duration,

    /// Plaintext address serving only grpc.health.v1 (for Kubernetes probes
    /// when TLS is on), e.g. `0.0.0.0:50052`.
    #[arg(long, env = "PRESSROOM_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,

    /// Address serving Prometheus metrics at `/metrics`, e.g. `0.0.0.0:9090`.
    #[arg(long, env = "PRESSROOM_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Address serving RSS, Atom and JSON Feed over HTTP at
    /// `/feeds/{rss|atom|json}`, e.g. `0.0.0.0:8080`; off when unset. It
    /// takes the same API keys as gRPC (`Authorization: Bearer` or `?key=`).
    #[arg(long, env = "PRESSROOM_FEEDS_LISTEN")]
    pub feeds_listen: Option<SocketAddr>,

    /// Public base URL of the pages that show press releases: a feed item
    /// links to this URL followed by the release's name (without it, to the
    /// release's source URL), e.g. `https://newsroom.example.com/`.
    #[arg(long, env = "PRESSROOM_FEEDS_LINK_BASE")]
    pub feeds_link_base: Option<url::Url>,

    /// How long feed readers and browsers may reuse a feed before asking
    /// again (`Cache-Control: max-age`); `0s` makes them ask every time.
    /// Asking again is cheap: an unchanged feed is a 304.
    #[arg(long, env = "PRESSROOM_FEEDS_MAX_AGE", default_value = "60s", value_parser = parse_duration)]
    pub feeds_max_age: Duration,

    /// Largest request message, in bytes.
    #[arg(long, env = "PRESSROOM_MAX_REQUEST_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_request_bytes: usize,

    /// Longest a unary call may take (a shorter client deadline wins).
    #[arg(long, env = "PRESSROOM_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Most calls in flight at once (watch streams aside); past it calls are
    /// refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "PRESSROOM_MAX_CONCURRENT_REQUESTS", default_value_t = 512)]
    pub max_concurrent_requests: usize,

    /// Most calls in flight at once for one API key (gRPC calls and feed
    /// requests; when API keys are on); past it that key's calls are refused
    /// with RESOURCE_EXHAUSTED (HTTP 429).
    #[arg(
        long,
        env = "PRESSROOM_MAX_CONCURRENT_REQUESTS_PER_KEY",
        default_value_t = 128
    )]
    pub max_concurrent_requests_per_key: usize,

    /// Most concurrent HTTP/2 streams per connection.
    #[arg(
        long,
        env = "PRESSROOM_MAX_STREAMS_PER_CONNECTION",
        default_value_t = 1_024
    )]
    pub max_streams_per_connection: u32,

    /// HTTP/2 keepalive ping interval.
    #[arg(long, env = "PRESSROOM_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub keepalive_interval: Duration,

    /// How long a keepalive ping may go unanswered before the connection is
    /// closed.
    #[arg(long, env = "PRESSROOM_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub keepalive_timeout: Duration,

    /// OTLP/gRPC endpoint to export traces to, e.g. `http://otel-collector:4317`;
    /// off when unset.
    #[arg(long, env = "PRESSROOM_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

impl ServeConfig {
    /// Parses `serve` settings from arguments (after `serve`), with the
    /// environment variables as fallbacks.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        /// `pressroom serve` alone.
        #[derive(Parser)]
        #[command(name = "pressroom serve")]
        struct Serve {
            #[command(flatten)]
            config: ServeConfig,
        }
        let program = std::ffi::OsString::from("pressroom serve");
        let serve = Serve::try_parse_from(
            std::iter::once(program).chain(args.into_iter().map(Into::into)),
        )?;
        Ok(serve.config)
    }

    /// Checks the settings, with a clear message for each mistake.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.data_dir.as_os_str().is_empty() {
            problems.push("--data-dir (PRESSROOM_DATA_DIR) must not be empty".to_string());
        } else if self.data_dir.exists() && !self.data_dir.is_dir() {
            problems.push(format!(
                "--data-dir (PRESSROOM_DATA_DIR) {} exists and is not a directory",
                self.data_dir.display()
            ));
        }
        if let Some(url) = &self.store
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            problems.push(
                "--store (PRESSROOM_STORE) must be a PostgreSQL URL (postgres://…); \
                 leave it unset for sled in --data-dir"
                    .into(),
            );
        }
        if !(1..=1_000).contains(&self.store_pool_size) {
            problems.push(format!(
                "--store-pool-size (PRESSROOM_STORE_POOL_SIZE) must be between 1 and 1000, got {}",
                self.store_pool_size
            ));
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(60))
            .contains(&self.store_poll_interval)
        {
            problems.push(format!(
                "--store-poll-interval (PRESSROOM_STORE_POLL_INTERVAL) must be between 10ms and 60s, got {:?}",
                self.store_poll_interval
            ));
        }
        if !(1..=1 << 20).contains(&self.cache_mb) {
            problems.push(format!(
                "--cache-mb (PRESSROOM_CACHE_MB) must be between 1 and 1048576, got {}",
                self.cache_mb
            ));
        }
        if !(1..=100_000).contains(&self.max_write_batch) {
            problems.push(format!(
                "--max-write-batch (PRESSROOM_MAX_WRITE_BATCH) must be between 1 and 100000, got {}",
                self.max_write_batch
            ));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(3600))
            .contains(&self.watch_progress_interval)
        {
            problems.push(
                "--watch-progress-interval (PRESSROOM_WATCH_PROGRESS_INTERVAL) must be between 100ms and 1h"
                    .into(),
            );
        }
        if !(1..=10_000).contains(&self.watch_buffer) {
            problems.push(format!(
                "--watch-buffer (PRESSROOM_WATCH_BUFFER) must be between 1 and 10000, got {}",
                self.watch_buffer
            ));
        }
        if self.keys_file.is_none() && !self.listen.ip().is_loopback() && !self.insecure {
            problems.push(format!(
                "--listen (PRESSROOM_LISTEN) {} is not a loopback address and there is no \
                 --keys-file (PRESSROOM_KEYS_FILE): configure API keys, or pass --insecure \
                 (PRESSROOM_INSECURE) to serve without authentication anyway",
                self.listen
            ));
        }
        if let Some(feeds) = self.feeds_listen
            && self.keys_file.is_none()
            && !feeds.ip().is_loopback()
            && !self.insecure
        {
            problems.push(format!(
                "--feeds-listen (PRESSROOM_FEEDS_LISTEN) {feeds} is not a loopback address and \
                 there is no --keys-file (PRESSROOM_KEYS_FILE): configure API keys, or pass \
                 --insecure (PRESSROOM_INSECURE) to serve feeds without authentication anyway"
            ));
        }
        if let Some(base) = &self.feeds_link_base
            && !matches!(base.scheme(), "http" | "https")
        {
            problems.push(format!(
                "--feeds-link-base (PRESSROOM_FEEDS_LINK_BASE) must be an http or https URL, got {base}"
            ));
        }
        if self.feeds_max_age > Duration::from_secs(86_400) {
            problems.push("--feeds-max-age (PRESSROOM_FEEDS_MAX_AGE) must be at most 1d".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            problems.push(
                "--tls-cert (PRESSROOM_TLS_CERT) and --tls-key (PRESSROOM_TLS_KEY) go together"
                    .into(),
            );
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            problems.push(
                "--tls-client-ca (PRESSROOM_TLS_CLIENT_CA) needs --tls-cert and --tls-key".into(),
            );
        }
        for (flag, addr) in [
            ("--health-listen", self.health_listen),
            ("--metrics-listen", self.metrics_listen),
            ("--feeds-listen", self.feeds_listen),
        ] {
            if let Some(addr) = addr
                && addr == self.listen
                && addr.port() != 0
            {
                problems.push(format!("{flag} must differ from --listen ({addr})"));
            }
        }
        if !(1024..=256 * 1024 * 1024).contains(&self.max_request_bytes) {
            problems.push(format!(
                "--max-request-bytes (PRESSROOM_MAX_REQUEST_BYTES) must be between 1024 and 268435456, got {}",
                self.max_request_bytes
            ));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&self.request_timeout)
        {
            problems.push(
                "--request-timeout (PRESSROOM_REQUEST_TIMEOUT) must be between 100ms and 1h".into(),
            );
        }
        for (flag, value) in [
            (
                "--max-concurrent-requests (PRESSROOM_MAX_CONCURRENT_REQUESTS)",
                self.max_concurrent_requests,
            ),
            (
                "--max-concurrent-requests-per-key (PRESSROOM_MAX_CONCURRENT_REQUESTS_PER_KEY)",
                self.max_concurrent_requests_per_key,
            ),
            ("--max-watchers (PRESSROOM_MAX_WATCHERS)", self.max_watchers),
            (
                "--max-watchers-per-key (PRESSROOM_MAX_WATCHERS_PER_KEY)",
                self.max_watchers_per_key,
            ),
            (
                "--max-subscriptions (PRESSROOM_MAX_SUBSCRIPTIONS)",
                self.max_subscriptions,
            ),
            (
                "--max-subscription-streams (PRESSROOM_MAX_SUBSCRIPTION_STREAMS)",
                self.max_subscription_streams,
            ),
            (
                "--max-streams-per-connection (PRESSROOM_MAX_STREAMS_PER_CONNECTION)",
                self.max_streams_per_connection as usize,
            ),
        ] {
            if value == 0 {
                problems.push(format!("{flag} must be at least 1"));
            }
        }
        if self.shutdown_grace > Duration::from_secs(600) {
            problems.push("--shutdown-grace (PRESSROOM_SHUTDOWN_GRACE) must be at most 10m".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems))
        }
    }
}

/// Everything wrong with a configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

/// Parses durations such as `10s`, `1m 30s` or `PT10S`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("not a duration like `10s` or `2m`: {e}"))?;
    Duration::try_from(signed).map_err(|_| "must not be negative".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_mistakes_are_named() -> Result<(), Box<dyn std::error::Error>> {
        let config = ServeConfig::from_args(["--data-dir", "x", "--listen", "127.0.0.1:1"])?;
        assert!(config.validate().is_ok());
        assert_eq!(config.shutdown_grace, Duration::from_secs(10));
        let bad = ServeConfig {
            cache_mb: 0,
            max_write_batch: 0,
            store: Some("mysql://db/pressroom".into()),
            store_pool_size: 0,
            store_poll_interval: Duration::from_secs(61),
            ..config
        };
        let message = bad
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.contains("--cache-mb")
                && message.contains("--max-write-batch")
                && message.contains("--store (")
                && message.contains("--store-pool-size")
                && message.contains("--store-poll-interval"),
            "{message}"
        );
        assert_eq!(config.store_pool_size, 16);
        assert_eq!(config.store_poll_interval, Duration::from_millis(200));
        assert!(ServeConfig::from_args(["--shutdown-grace", "soon"]).is_err());
        Ok(())
    }
}
