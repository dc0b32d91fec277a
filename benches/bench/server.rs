//! The real Pressroom server, run in this process on `127.0.0.1:0` with a
//! data dir of the benchmark's, and the gRPC connections to it. The server
//! is built from the same flags as `pressroom serve` (defaults unless a
//! scenario says otherwise), through the library's own `App`.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use pressroom::{
    App, AppError, ServeConfig, feed::WatcherRegistry,
    proto::v1::press_release_service_client::PressReleaseServiceClient,
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

use crate::BenchResult;

/// A gRPC client of the press-release service.
pub type Client = PressReleaseServiceClient<Channel>;

/// Largest response a benchmark client accepts.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A running server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its open watch streams.
    pub watchers: WatcherRegistry,
    /// Where it serves the HTTP feeds, if it does.
    pub feeds_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), AppError>>>,
}

/// The `serve` flags every benchmark server gets, before a scenario's own:
/// the address, the data dir, and whatever `PRESSROOM_BENCH_SERVE_FLAGS`
/// holds (split at whitespace; e.g. `--cache-mb 1024`, to see what a
/// setting changes).
pub fn base_flags(data_dir: &Path) -> Vec<String> {
    let mut flags = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
    ];
    if let Ok(extra) = std::env::var("PRESSROOM_BENCH_SERVE_FLAGS") {
        flags.extend(extra.split_whitespace().map(str::to_string));
    }
    flags
}

/// The configuration a server with these flags runs with (also used to
/// give the echo servers the same transport settings).
pub fn config(data_dir: &Path, flags: &[&str]) -> BenchResult<ServeConfig> {
    let mut args = base_flags(data_dir);
    args.extend(flags.iter().map(|f| f.to_string()));
    Ok(ServeConfig::from_args(args)?)
}

/// The configuration of a server started without extra flags: the
/// transport settings the echo servers copy.
pub fn default_config() -> BenchResult<ServeConfig> {
    config(Path::new("unused"), &[])
}

impl Server {
    /// Starts a server on `data_dir` (created if missing) with extra
    /// `serve` flags.
    pub async fn start(data_dir: &Path, flags: &[&str]) -> BenchResult<Self> {
        let app = App::build(config(data_dir, flags)?).await?;
        let addr = app.local_addr();
        let watchers = app.watchers();
        let feeds_addr = app.feeds_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            watchers,
            feeds_addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// A client on a new connection.
    pub async fn client(&self) -> BenchResult<Client> {
        Ok(client(connect(self.addr).await?))
    }

    /// Stops the server and waits until it has flushed and closed its store.
    pub async fn stop(mut self) -> BenchResult<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A new connection to `addr`.
pub async fn connect(addr: SocketAddr) -> BenchResult<Channel> {
    Ok(Channel::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await?)
}

/// A connection with fixed 64 KiB HTTP/2 windows, for consumers that stop
/// reading: the server can push only that much before it must wait.
pub async fn connect_stalling(addr: SocketAddr) -> BenchResult<Channel> {
    Ok(Channel::from_shared(format!("http://{addr}"))?
        .initial_stream_window_size(Some(65_535))
        .initial_connection_window_size(Some(65_535))
        .connect()
        .await?)
}

/// `count` connections to `addr`.
pub async fn connections(addr: SocketAddr, count: usize) -> BenchResult<Vec<Channel>> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(connect(addr).await?);
    }
    Ok(out)
}

/// A client over `channel` that accepts large responses.
pub fn client(channel: Channel) -> Client {
    PressReleaseServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES)
}

/// A temporary directory for a scenario's data.
pub fn temp_dir() -> BenchResult<tempfile::TempDir> {
    Ok(tempfile::Builder::new()
        .prefix("pressroom-bench")
        .tempdir()?)
}

/// The data dir inside a scenario's temporary directory.
pub fn data_dir(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("data")
}
