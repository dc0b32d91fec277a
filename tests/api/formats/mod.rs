//! Wire formats through the real server and the real CLI: real NewsML-G2,
//! NewsML 1.2, ninjs and RSS documents imported field by field, later
//! versions of a source becoming updates, a ninjs export read back into a
//! fresh server, and `pressroom follow` kept in step with a changing feed
//! served over HTTP on port 0 (304s, 500s, garbage, a restart).
//!
//! One file per kind of test: wire documents imported, later versions of a
//! source, the ninjs export read back, and `follow`. This file holds the
//! fixtures and the client binary they share.

mod export;
mod follow;
mod import;
mod versions;

use std::net::SocketAddr;

use assert_cmd::Command;
use pressroom::proto::v1::PressRelease;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/formats");

/// The client binary, pointed at `addr`.
fn pressroom(addr: SocketAddr) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pressroom"));
    command
        .env("PRESSROOM_SERVER", format!("http://{addr}"))
        .env_remove("PRESSROOM_TOKEN")
        .env_remove("PRESSROOM_CA_CERT");
    command
}

/// Runs it on the blocking pool; (exit code, stdout, stderr).
async fn run(mut command: Command) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || match command.output() {
        Ok(output) => (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
        Err(error) => (-1, String::new(), error.to_string()),
    })
    .await
    .unwrap_or_else(|e| (-1, String::new(), e.to_string()))
}

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

fn find<'a>(all: &'a [PressRelease], headline: &str) -> &'a PressRelease {
    all.iter()
        .find(|r| r.headline.starts_with(headline))
        .unwrap_or_else(|| panic!("no press release {headline:?} among {}", all.len()))
}
