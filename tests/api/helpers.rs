//! Spawns the real server for a test and hands out clients.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use pressroom::{
    App, AppError, ServeConfig,
    feed::{WatcherRegistry, cursor::Cursor},
    proto::v1::{
        CreatePressReleaseRequest, PressRelease, PressReleaseEvent, Progress,
        WatchPressReleasesRequest, WatchPressReleasesResponse,
        press_release_service_client::PressReleaseServiceClient,
        watch_press_releases_response::Kind,
    },
    store::SledStore,
};
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};
use tokio_stream::StreamExt;
use tonic::{Code, Status, Streaming, transport::Channel};
use tonic_types::StatusExt;

/// Test results: any error fails the test with its message.
pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A running server on a temporary data dir.
pub struct TestServer {
    pub addr: SocketAddr,
    pub client: PressReleaseServiceClient<Channel>,
    pub watchers: WatcherRegistry,
    pub health_addr: Option<SocketAddr>,
    pub metrics_addr: Option<SocketAddr>,
    pub feeds_addr: Option<SocketAddr>,
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

    /// Starts a server on a fresh data dir with extra `serve` flags.
    pub async fn start_with(flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        Self::start_in(Arc::new(dir), flags).await
    }

    /// Starts a server on sled whatever `PRESSROOM_TEST_STORE` says, for a
    /// test about sled's own files (its data dir is a [`sled_temp_dir`]).
    pub async fn start_on_sled() -> Self {
        Self::start_in(sled_temp_dir(), &[]).await
    }

    /// [`TestServer::start_on_sled`] with extra `serve` flags.
    pub async fn start_on_sled_with(flags: &[&str]) -> Self {
        Self::start_in(sled_temp_dir(), flags).await
    }

    /// Starts a server on an existing data dir.
    pub async fn start_in(dir: Arc<TempDir>, flags: &[&str]) -> Self {
        Self::launch(dir, None, flags).await
    }

    /// Starts a server over a store the test opened itself (see
    /// [`open_store`]) and keeps a handle on.
    pub async fn start_on_store(dir: Arc<TempDir>, store: Arc<SledStore>) -> Self {
        Self::launch(dir, Some(store), &[]).await
    }

    async fn launch(dir: Arc<TempDir>, store: Option<Arc<SledStore>>, flags: &[&str]) -> Self {
        let data_dir = dir.path().join("data");
        let database = match store {
            None if !flags.contains(&"--store") => shared_database(&dir).await,
            _ => None,
        };
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
        if let Some(url) = database {
            args.extend(["--store".to_string(), url]);
        }
        let config = ServeConfig::from_args(args).unwrap_or_else(|e| panic!("config: {e}"));
        init_logging();
        let app = match store {
            Some(store) => App::build_on(config, store).await,
            None => App::build(config).await,
        }
        .unwrap_or_else(|e| panic!("build: {}", pressroom::telemetry::chain(&e)));
        let addr = app.local_addr();
        let watchers = app.watchers();
        let health_addr = app.health_addr();
        let metrics_addr = app.metrics_addr();
        let feeds_addr = app.feeds_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let client = if flags.contains(&"--tls-cert") {
            // TLS servers: the test makes its own clients.
            PressReleaseServiceClient::new(
                Channel::from_static("http://127.0.0.1:1").connect_lazy(),
            )
        } else {
            PressReleaseServiceClient::new(channel(addr).await)
        };
        Self {
            addr,
            client,
            watchers,
            health_addr,
            metrics_addr,
            feeds_addr,
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
        self.restart_with(&[]).await
    }

    /// Stops the server, then starts a new one on the same data dir with
    /// extra flags.
    pub async fn restart_with(self, flags: &[&str]) -> Self {
        let dir = self.stop().await;
        Self::start_in(dir, flags).await
    }

    /// A client on its own connection with fixed 64 KiB HTTP/2 windows, for
    /// a consumer that stops reading.
    pub async fn stalling_client(&self) -> PressReleaseServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap_or_else(|e| panic!("uri: {e}"))
            .initial_stream_window_size(Some(65_535))
            .initial_connection_window_size(Some(65_535))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        PressReleaseServiceClient::new(channel)
    }

    /// A client on its own connection.
    pub async fn new_client(&self) -> PressReleaseServiceClient<Channel> {
        PressReleaseServiceClient::new(self.channel().await)
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

pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap_or_else(|e| panic!("uri: {e}"))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// Opens the store a server on `dir` would open, for
/// [`TestServer::start_on_store`].
pub fn open_store(dir: &TempDir) -> Arc<SledStore> {
    let store_dir = dir.path().join("data").join("store");
    std::fs::create_dir_all(&store_dir).unwrap_or_else(|e| panic!("store dir: {e}"));
    let store = SledStore::open(&store_dir, 16 << 20)
        .unwrap_or_else(|e| panic!("open the store: {}", pressroom::telemetry::chain(&e)));
    Arc::new(store)
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
pub fn at(seconds: i64) -> pressroom::proto::Timestamp {
    pressroom::proto::Timestamp { seconds, nanos: 0 }
}

/// Now, as a timestamp, plus `seconds`.
pub fn from_now(seconds: i64) -> pressroom::proto::Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    at(now + seconds)
}

/// A timestamp that orders as `proto::compare_times` does; `None` sorts
/// first.
pub fn instant(time: Option<pressroom::proto::Timestamp>) -> Option<Instant> {
    time.map(Instant)
}

/// A timestamp with an order (prost's `Timestamp` has none).
#[derive(Debug, PartialEq)]
pub struct Instant(pressroom::proto::Timestamp);

impl PartialOrd for Instant {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(pressroom::proto::compare_times(&self.0, &other.0))
    }
}

/// The names on the first page of an unfiltered List.
pub async fn listed_names(
    client: &mut PressReleaseServiceClient<Channel>,
) -> Result<Vec<String>, Status> {
    Ok(client
        .list_press_releases(pressroom::proto::v1::ListPressReleasesRequest::default())
        .await?
        .into_inner()
        .press_releases
        .into_iter()
        .map(|r| r.name)
        .collect())
}

/// `PRESSROOM_TEST_STORE=postgres` runs the servers of the tests on
/// PostgreSQL: one private cluster for the whole test binary (a watchdog
/// stops it when the process is gone), a database per data dir, kept in a
/// file beside it so a restarted server finds the same one. Tests that work
/// on sled's files themselves start their servers on a store they opened
/// (`start_on_store`), or pass `--store`, and keep their engine.
async fn shared_database(dir: &TempDir) -> Option<String> {
    use pressroom::store::postgres::{ClusterOptions, LocalCluster};
    static CLUSTER: std::sync::OnceLock<LocalCluster> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if std::env::var("PRESSROOM_TEST_STORE").ok()? != "postgres"
        || dir.path().join(ON_SLED).exists()
    {
        return None;
    }
    let remembered = dir.path().join("postgres-url");
    if let Ok(url) = std::fs::read_to_string(&remembered) {
        return Some(url);
    }
    let cluster = CLUSTER.get_or_init(|| {
        let cluster = LocalCluster::start(&ClusterOptions {
            max_connections: 1000,
            ..ClusterOptions::default()
        })
        .unwrap_or_else(|e| panic!("PRESSROOM_TEST_STORE=postgres needs a local PostgreSQL: {e}"));
        cluster
            .stop_when_gone(std::process::id())
            .unwrap_or_else(|e| panic!("the cluster's watchdog: {e}"));
        cluster
    });
    let name = format!(
        "test_{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    cluster
        .create_database(&name)
        .await
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    let url = cluster.url(&name);
    std::fs::write(&remembered, &url).unwrap_or_else(|e| panic!("{}: {e}", remembered.display()));
    Some(url)
}

/// The flags a `pressroom serve` process on data dir `dir` needs to run on
/// the engine the API tests run on: `--store URL` under
/// `PRESSROOM_TEST_STORE=postgres`, none on sled.
pub async fn store_flags(dir: &TempDir) -> Vec<String> {
    match shared_database(dir).await {
        Some(url) => vec!["--store".into(), url],
        None => Vec::new(),
    }
}

/// Opens a watch stream.
pub async fn watch(
    client: &mut PressReleaseServiceClient<Channel>,
    request: WatchPressReleasesRequest,
) -> Result<Streaming<WatchPressReleasesResponse>, Status> {
    Ok(client.watch_press_releases(request).await?.into_inner())
}

/// What a watch stream delivered.
#[derive(Debug, Default)]
pub struct Watched {
    pub events: Vec<PressReleaseEvent>,
    pub progress: Vec<Progress>,
    /// Every cursor in the order received (events and progress).
    pub cursors: Vec<String>,
}

impl Watched {
    /// The last cursor received.
    pub fn last_cursor(&self) -> String {
        self.cursors.last().cloned().unwrap_or_default()
    }

    /// The names of the events, in order.
    pub fn names(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| {
                e.press_release
                    .as_ref()
                    .map(|r| r.name.clone())
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// Reads from a stream until `done` says so, failing after `timeout`.
pub async fn read_until(
    stream: &mut Streaming<WatchPressReleasesResponse>,
    timeout: Duration,
    mut done: impl FnMut(&Watched) -> bool,
) -> Result<Watched, Box<dyn std::error::Error + Send + Sync>> {
    let mut watched = Watched::default();
    let deadline = tokio::time::Instant::now() + timeout;
    while !done(&watched) {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| {
                format!(
                    "timed out; got {} events, {} progress",
                    watched.events.len(),
                    watched.progress.len()
                )
            })?;
        match next.ok_or("the stream ended")??.kind {
            Some(Kind::Event(event)) => {
                watched.cursors.push(event.cursor.clone());
                watched.events.push(event);
            }
            Some(Kind::Progress(progress)) => {
                watched.cursors.push(progress.cursor.clone());
                watched.progress.push(progress);
            }
            None => return Err("a message without a kind".into()),
        }
    }
    Ok(watched)
}

/// Reads until `count` events have arrived.
pub async fn read_events(
    stream: &mut Streaming<WatchPressReleasesResponse>,
    count: usize,
) -> Result<Watched, Box<dyn std::error::Error + Send + Sync>> {
    read_until(stream, Duration::from_secs(60), |w| w.events.len() >= count).await
}

/// Reads until the stream reports it has caught up.
pub async fn read_until_caught_up(
    stream: &mut Streaming<WatchPressReleasesResponse>,
) -> Result<Watched, Box<dyn std::error::Error + Send + Sync>> {
    read_until(stream, Duration::from_secs(60), |w| {
        w.progress.iter().any(|p| p.caught_up)
    })
    .await
}

/// The log position of a cursor (tests may look inside; callers may not).
pub fn seq(cursor: &str) -> u64 {
    Cursor::decode(cursor)
        .unwrap_or_else(|_| panic!("not a cursor: {cursor:?}"))
        .seq
}

/// Asserts event cursors strictly increase and no cursor goes back.
pub fn assert_cursor_order(watched: &Watched) {
    let events: Vec<u64> = watched.events.iter().map(|e| seq(&e.cursor)).collect();
    assert!(
        events.windows(2).all(|w| w[0] < w[1]),
        "event cursors must strictly increase: {events:?}"
    );
    let all: Vec<u64> = watched.cursors.iter().map(|c| seq(c)).collect();
    assert!(
        all.windows(2).all(|w| w[0] <= w[1]),
        "cursors must never go back: {all:?}"
    );
}

/// Flips a byte in the middle of a release's record in the store of a
/// stopped server, as a fault of the disk would.
pub fn damage_record(data_dir: &std::path::Path, name: &str) -> TestResult {
    let db = sled::open(data_dir.join("store"))?;
    let id = uuid::Uuid::parse_str(name.trim_start_matches("pressReleases/"))?;
    let key = [&[b'r'][..], id.as_bytes()].concat();
    let mut value = db.get(&key)?.ok_or("no record")?.to_vec();
    let middle = value.len() / 2;
    value[middle] ^= 0x20;
    db.insert(&key, value)?;
    db.flush()?;
    Ok(())
}

/// The file that keeps a data dir's servers on sled.
const ON_SLED: &str = "on-sled";

/// A [`temp_dir`] whose servers run on sled whatever `PRESSROOM_TEST_STORE`
/// says.
pub fn sled_temp_dir() -> Arc<TempDir> {
    let dir = temp_dir();
    std::fs::write(dir.path().join(ON_SLED), b"")
        .unwrap_or_else(|e| panic!("{}: {e}", dir.path().display()));
    dir
}

/// A temporary directory for a server's data and files.
pub fn temp_dir() -> Arc<TempDir> {
    Arc::new(tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}")))
}

/// The API keys of a test, written to a keys file.
pub struct TestKeys {
    pub path: PathBuf,
    pub reader: String,
    pub publisher: String,
    pub admin: String,
}

/// Writes a keys file with one key per role into `dir`.
pub fn write_keys(dir: &std::path::Path) -> TestKeys {
    use pressroom::{api_keys::keys_file_line, domain::Role};
    let key = |role: &str| format!("test-{role}-{}", uuid::Uuid::new_v4());
    let keys = TestKeys {
        path: dir.join("keys"),
        reader: key("reader"),
        publisher: key("publisher"),
        admin: key("admin"),
    };
    let text = [
        keys_file_line("dashboard", Role::Reader, &keys.reader),
        keys_file_line("ingest", Role::Publisher, &keys.publisher),
        keys_file_line("ops", Role::Admin, &keys.admin),
    ]
    .join("\n");
    std::fs::write(&keys.path, text).unwrap_or_else(|e| panic!("keys file: {e}"));
    keys
}

/// A client of the server sending `token`, as the `pressroom` CLI connects.
pub async fn client_with(addr: SocketAddr, token: Option<&str>) -> pressroom::client::Client {
    pressroom::client::connect(&pressroom::client::ClientArgs {
        server: format!("http://{addr}"),
        token: token.map(str::to_string),
        ca_cert: None,
    })
    .await
    .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// The real `pressroom` binary, running as a child process; SIGKILLed when
/// dropped (a test that fails or panics leaves no server behind).
pub struct Binary {
    pub child: std::process::Child,
    /// The gRPC address it reported.
    pub addr: SocketAddr,
    /// Its log lines so far (stderr), collected in the background.
    pub logs: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Binary {
    /// Starts `pressroom serve` with `args` and waits until it listens.
    pub fn serve(args: &[&str]) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Self::serve_under(&[], env!("CARGO_BIN_EXE_pressroom"), args)
    }

    /// Starts `binary serve` with `args` under the command `wrapper` (e.g.
    /// `strace` and its flags; none when empty), and waits until it listens.
    pub fn serve_under(
        wrapper: &[&str],
        binary: &str,
        args: &[&str],
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        use std::io::BufRead;
        let mut command = match wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = std::process::Command::new(program);
                command.args(wrapper_args).arg(binary);
                command
            }
            None => std::process::Command::new(binary),
        };
        let mut child = command
            .arg("serve")
            .args(["--log-format", "json", "--listen", "127.0.0.1:0"])
            .args(args)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (found, addr) = std::sync::mpsc::channel();
        let collected = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("serving pressroom.v1.PressReleaseService")
                    && let Some(rest) = line.split("\"addr\":\"").nth(1)
                    && let Some(addr) = rest.split('"').next()
                {
                    let _ = found.send(addr.to_string());
                }
                collected
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(line);
            }
        });
        let addr = addr
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| "the binary did not report its address")?
            .parse()?;
        Ok(Self { child, addr, logs })
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(
        mut self,
    ) -> Result<std::process::ExitStatus, Box<dyn std::error::Error + Send + Sync>> {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        // Does nothing once the child has been waited for.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every published release, following List's pages.
pub async fn list_all(
    client: &mut PressReleaseServiceClient<Channel>,
) -> Result<Vec<PressRelease>, Status> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_press_releases(pressroom::proto::v1::ListPressReleasesRequest {
                page_size: 500,
                page_token: token,
                ..Default::default()
            })
            .await?
            .into_inner();
        out.extend(page.press_releases);
        token = page.next_page_token;
        if token.is_empty() {
            return Ok(out);
        }
    }
}
