//! A private PostgreSQL cluster in a temp dir, on a free loopback port: what
//! the tests and the benchmark run the PostgreSQL engine against. It uses
//! the installed server binaries (`initdb`, `postgres`, `pg_isready`; Debian
//! puts PostgreSQL 15's in `/usr/lib/postgresql/15/bin`, `PRESSROOM_PG_BIN`
//! names another folder). PostgreSQL refuses to run as root, so when this
//! process is root the server runs as the unprivileged `postgres` account.
//!
//! Missing binaries are an error that says how to install them: a test on
//! PostgreSQL fails without them, it never passes by skipping. The cluster
//! is stopped and its folder removed when the [`LocalCluster`] is dropped.
//! It is not meant for production: authentication is `trust`, and it only
//! listens on 127.0.0.1.

use std::{
    fs,
    io::Read,
    net::TcpListener,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Where Debian installs PostgreSQL 15's server binaries.
pub const DEFAULT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// The superuser of a local cluster.
pub const SUPERUSER: &str = "pressroom";

/// How long start-up may take before it is called a failure.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What went wrong starting or driving a local cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The server binaries are not installed.
    #[error(
        "PostgreSQL's server binaries are not in {dir} (no `{program}` there). Install them with \
         `apt-get install -y postgresql-15` (Debian; `.ci/run` does this), or set PRESSROOM_PG_BIN \
         to the folder that holds initdb, postgres and pg_isready"
    )]
    Missing {
        /// The folder looked in.
        dir: String,
        /// The program that was missing.
        program: &'static str,
    },
    /// Running as root, but there is no `postgres` account to run the server as.
    #[error(
        "running as root and there is no `postgres` account to run PostgreSQL as (the \
         postgresql-15 package creates it)"
    )]
    NoServerAccount,
    /// A command failed.
    #[error("`{command}` failed: {output}")]
    Command {
        /// What was run.
        command: String,
        /// What it printed.
        output: String,
    },
    /// The server did not come up in time, or exited.
    #[error("PostgreSQL did not start: {reason}; its log says:\n{log}")]
    NotStarted {
        /// What was seen.
        reason: String,
        /// The end of the server's log.
        log: String,
    },
    /// A file operation failed.
    #[error("local cluster: {0}")]
    Io(#[from] std::io::Error),
}

/// How to run a local cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// `fsync` and `synchronous_commit` on (what a benchmark of durable
    /// writes needs); off makes tests faster and changes nothing a test that
    /// does not power off the machine can see.
    pub durable: bool,
    /// `max_connections`.
    pub max_connections: u32,
    /// A certificate and key (PEM) to serve TLS with (`ssl = on`).
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            durable: false,
            max_connections: 200,
            tls: None,
        }
    }
}

/// A running PostgreSQL cluster in a temp dir, stopped when dropped.
#[derive(Debug)]
pub struct LocalCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    server: Option<Child>,
    /// `(uid, gid)` the server runs as, when this process is root.
    account: Option<(u32, u32)>,
}

impl LocalCluster {
    /// Initialises and starts a cluster with `options`.
    pub fn start(options: &ClusterOptions) -> Result<Self, ClusterError> {
        let bin = std::env::var_os("PRESSROOM_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN_DIR));
        for program in ["initdb", "postgres", "pg_isready"] {
            if !bin.join(program).is_file() {
                return Err(ClusterError::Missing {
                    dir: bin.display().to_string(),
                    program,
                });
            }
        }
        let account = if running_as_root()? {
            Some(postgres_account()?.ok_or(ClusterError::NoServerAccount)?)
        } else {
            None
        };
        let dir = tempfile::Builder::new().prefix("pressroom-pg-").tempdir()?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))?;
        if let Some((uid, gid)) = account {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let mut cluster = Self {
            dir,
            bin,
            port: 0,
            server: None,
            account,
        };
        let data = cluster.data_dir();
        let mut initdb = cluster.command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", SUPERUSER, "-E", "UTF8", "--locale=C"])
            .arg("--no-sync");
        run(&mut initdb)?;
        if let Some((cert, key)) = &options.tls {
            // The server reads its key only if it is private to its account.
            for (from, name) in [(cert, "server.crt"), (key, "server.key")] {
                let to = data.join(name);
                fs::copy(from, &to)?;
                fs::set_permissions(&to, fs::Permissions::from_mode(0o600))?;
                if let Some((uid, gid)) = account {
                    std::os::unix::fs::chown(&to, Some(uid), Some(gid))?;
                }
            }
        }
        let on_off = |on: bool| if on { "on" } else { "off" };
        let settings = [
            "listen_addresses = '127.0.0.1'".to_string(),
            "unix_socket_directories = ''".to_string(),
            format!("max_connections = {}", options.max_connections),
            format!("fsync = {}", on_off(options.durable)),
            format!("synchronous_commit = {}", on_off(options.durable)),
            format!("full_page_writes = {}", on_off(options.durable)),
            "shared_buffers = '128MB'".to_string(),
            format!("ssl = {}", on_off(options.tls.is_some())),
            "log_min_messages = 'warning'".to_string(),
        ];
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))?;
        std::io::Write::write_all(&mut conf, (settings.join("\n") + "\n").as_bytes())?;
        // A free port can be taken by someone else between finding it and
        // the server binding it: try a few.
        let mut last = None;
        for _ in 0..3 {
            match cluster.start_server() {
                Ok(()) => return Ok(cluster),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| ClusterError::NotStarted {
            reason: "no attempt".into(),
            log: String::new(),
        }))
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the server (the postmaster), while it runs:
    /// benchmarks add up the CPU time of it and its children.
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }

    /// A connection URL for `database` as the superuser, TLS off.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// A URL for `database` with other query parameters (e.g. `sslmode=...`).
    pub fn url_with(&self, database: &str, query: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@127.0.0.1:{}/{database}?{query}",
            self.port
        )
    }

    /// Creates a database (the superuser owns it).
    pub async fn create_database(&self, name: &str) -> Result<(), tokio_postgres::Error> {
        let client = self.admin().await?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await?
            .is_some();
        if !exists {
            client
                .batch_execute(&format!("CREATE DATABASE \"{}\"", name.replace('"', "")))
                .await?;
        }
        Ok(())
    }

    /// A plain connection to the `postgres` database as the superuser, for
    /// test set-up and fault injection (`pg_terminate_backend`).
    pub async fn admin(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        self.connect("postgres").await
    }

    /// A plain connection to `database` as the superuser.
    pub async fn connect(
        &self,
        database: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) =
            tokio_postgres::connect(&self.url(database), tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "local cluster admin connection ended");
            }
        });
        Ok(client)
    }

    /// The end of the server's log (for failure messages).
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = fs::File::open(self.log_file()) {
            let _ = file.read_to_string(&mut text);
        }
        let start = text.len().saturating_sub(4_000);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }

    /// Stops the server (fast shutdown: open sessions are ended, what was
    /// committed is kept) and waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        // SIGINT is PostgreSQL's fast shutdown; `kill` needs no unsafe code.
        let _ = Command::new("kill")
            .args(["-INT", &server.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match server.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = server.kill();
                    let _ = server.wait();
                    return;
                }
            }
        }
    }

    /// For a cluster kept for the whole life of a process (a test binary's
    /// shared one, in a static that is never dropped): a detached watchdog
    /// stops the server and removes its folder once process `pid` has
    /// exited, however it exits.
    pub fn stop_when_gone(&self, pid: u32) -> Result<(), ClusterError> {
        let Some(server) = self.server.as_ref() else {
            return Ok(());
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             kill -INT {server} 2>/dev/null; \
             for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 {server} 2>/dev/null || break; sleep 0.5; done; \
             kill -KILL {server} 2>/dev/null; rm -rf '{dir}'",
            server = server.id(),
            dir = self.dir.path().display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(())
    }

    /// Starts the server again after [`stop`](Self::stop), on the same port.
    pub fn restart(&mut self) -> Result<(), ClusterError> {
        self.stop();
        let port = self.port;
        self.launch(port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.account {
            command.uid(uid).gid(gid);
        }
        command.current_dir(self.dir.path());
        command
    }

    fn start_server(&mut self) -> Result<(), ClusterError> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        self.launch(port)
    }

    fn launch(&mut self, port: u16) -> Result<(), ClusterError> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file())?;
        if let Some((uid, gid)) = self.account {
            std::os::unix::fs::chown(self.log_file(), Some(uid), Some(gid))?;
        }
        let mut command = self.command("postgres");
        command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.server = Some(command.spawn()?);
        self.port = port;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(server) = self.server.as_mut()
                && let Some(status) = server.try_wait()?
            {
                self.server = None;
                return Err(ClusterError::NotStarted {
                    reason: format!("the server exited with {status}"),
                    log: self.log_tail(),
                });
            }
            let ready = self
                .command("pg_isready")
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .args(["-U", SUPERUSER, "-d", "postgres"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            if ready.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(ClusterError::NotStarted {
                    reason: format!("no connection within {START_TIMEOUT:?}"),
                    log: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a command to completion, its output in the error when it fails.
fn run(command: &mut Command) -> Result<(), ClusterError> {
    let output = command.stdin(Stdio::null()).output()?;
    if output.status.success() {
        return Ok(());
    }
    Err(ClusterError::Command {
        command: format!("{command:?}"),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

/// Whether this process runs as root (its effective uid, from /proc).
fn running_as_root() -> Result<bool, ClusterError> {
    let status = fs::read_to_string("/proc/self/status")?;
    Ok(status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .is_some_and(|effective| effective == "0"))
}

/// The uid and gid of the `postgres` account, from /etc/passwd.
fn postgres_account() -> Result<Option<(u32, u32)>, ClusterError> {
    let passwd = fs::read_to_string(Path::new("/etc/passwd"))?;
    Ok(passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.as_slice() {
            ["postgres", _, uid, gid, ..] => Some((uid.parse().ok()?, gid.parse().ok()?)),
            _ => None,
        }
    }))
}
