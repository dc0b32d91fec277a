//! Command-line flags, each with an environment variable, in one place.
//! [`ServeConfig::validate`] checks them at start-up and says what is wrong
//! with each mistake.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::telemetry::LogFormat;

/// `pressroom`: a gRPC service that stores, retrieves and streams press
/// releases.
#[derive(Debug, Parser)]
#[command(name = "pressroom", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeConfig),
}

/// Settings of `pressroom serve`.
#[derive(Clone, Debug, Args)]
pub struct ServeConfig {
    /// Address to listen on for gRPC.
    #[arg(long, env = "PRESSROOM_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Directory for the data; created if missing.
    #[arg(long, env = "PRESSROOM_DATA_DIR", default_value = "./pressroom-data")]
    pub data_dir: PathBuf,

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
}

impl ServeConfig {
    /// Parses `serve` settings from arguments (after `serve`), with the
    /// environment variables as fallbacks.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let cli = Cli::try_parse_from(
            ["pressroom".into(), "serve".into()]
                .into_iter()
                .chain(args.into_iter().map(Into::into)),
        )?;
        let Command::Serve(config) = cli.command;
        Ok(config)
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
            ..config
        };
        let message = bad
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.contains("--cache-mb") && message.contains("--max-write-batch"),
            "{message}"
        );
        assert!(ServeConfig::from_args(["--shutdown-grace", "soon"]).is_err());
        Ok(())
    }
}
