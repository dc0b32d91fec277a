//! Spawns the real server for a test and hands out clients.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use pressroom::{
    App, AppError, ServeConfig,
    proto::v1::{
        CreatePressReleaseRequest, PressRelease,
        press_release_service_client::PressReleaseServiceClient,
    },
};
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt;

/// Test results: any error fails the test with its message.
pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A running server on a temporary data dir.
pub struct TestServer {
    pub addr: SocketAddr,
    pub client: PressReleaseServiceClient<Channel>,
    dir: Arc<TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), AppError>>>,
}

impl TestServer {
    /// Starts a server on a fresh data dir.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        Self::start_in(Arc::new(dir), &[]).await
    }

    /// Starts a server on an existing data dir.
    pub async fn start_in(dir: Arc<TempDir>, flags: &[&str]) -> Self {
        let data_dir = dir.path().join("data");
        let mut args = vec![
            "--listen".to_string(),
            "127.0.0.1:0".to_string(),
            "--data-dir".to_string(),
            data_dir.display().to_string(),
            "--shutdown-grace".to_string(),
            "2s".to_string(),
            "--cache-mb".to_string(),
            "16".to_string(),
        ];
        args.extend(flags.iter().map(|f| f.to_string()));
        let config = ServeConfig::from_args(args).unwrap_or_else(|e| panic!("config: {e}"));
        init_logging();
        let app = App::build(config)
            .await
            .unwrap_or_else(|e| panic!("build: {e}"));
        let addr = app.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let client = PressReleaseServiceClient::new(channel(addr).await);
        Self {
            addr,
            client,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The server's data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A new connection to the server.
    pub async fn channel(&self) -> Channel {
        channel(self.addr).await
    }

    /// Asks the server to stop and waits until it has; returns its data dir.
    pub async fn stop(mut self) -> Arc<TempDir> {
        self.stop_in_place().await;
        Arc::clone(&self.dir)
    }

    /// Stops the server, then starts a new one on the same data dir.
    pub async fn restart(self) -> Self {
        let dir = self.stop().await;
        Self::start_in(dir, &[]).await
    }

    /// Asks the server to stop and returns the time it took to finish.
    pub async fn stop_in_place(&mut self) -> Duration {
        let started = std::time::Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("server stopped with an error: {e}"),
                Err(e) => panic!("server task failed: {e}"),
            }
        }
        started.elapsed()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Sends the server's logs through the test harness, which shows them only
/// for failing tests. `RUST_LOG` filters as usual.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap_or_else(|e| panic!("uri: {e}"))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// A valid press release with the given headline.
pub fn release(headline: &str) -> PressRelease {
    PressRelease {
        headline: headline.into(),
        body: format!("{headline}. The full text of the announcement."),
        language: "en".into(),
        ..Default::default()
    }
}

/// A create request for `release`.
pub fn create_request(release: PressRelease) -> CreatePressReleaseRequest {
    CreatePressReleaseRequest {
        press_release: Some(release),
        request_id: String::new(),
    }
}

/// Asserts an INVALID_ARGUMENT status and returns the fields its BadRequest
/// detail names.
pub fn violated_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// A timestamp `seconds` from the Unix epoch.
pub fn at(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

/// Now, as a timestamp, plus `seconds`.
pub fn from_now(seconds: i64) -> prost_types::Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    at(now + seconds)
}

/// A timestamp as a comparable `(seconds, nanos)`; `None` sorts first.
pub fn instant(time: Option<prost_types::Timestamp>) -> Option<(i64, i32)> {
    time.map(|t| (t.seconds, t.nanos))
}
