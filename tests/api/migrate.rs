//! `pressroom migrate`, run as a process: a sled data dir written through
//! the real server moves into a PostgreSQL database (a private cluster the
//! test starts) with its names, revisions, etags, change log and store id.

use std::sync::Arc;

use assert_cmd::Command;
use pressroom::{
    proto::v1::{PressRelease, UpdatePressReleaseRequest},
    store::{
        PostgresOptions, PostgresStore,
        postgres::{ClusterOptions, LocalCluster},
    },
};
use uuid::Uuid;

use crate::helpers::{TestResult, TestServer, create_request, release};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_moves_into_postgres_with_names_etags_and_log() -> TestResult {
    let cluster = LocalCluster::start(&ClusterOptions::default())
        .map_err(|e| format!("a local PostgreSQL is needed for this test: {e}"))?;
    cluster.create_database("moved").await?;
    let url = cluster.url("moved");

    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let mut written: Vec<PressRelease> = Vec::new();
    for i in 0..20 {
        let mut request = create_request(release(&format!("Moved release {i}")));
        request.request_id = format!("move-{i}");
        written.push(client.create_press_release(request).await?.into_inner());
    }
    let mut edited = written[3].clone();
    edited.headline = "Edited before the move".into();
    written[3] = client
        .update_press_release(UpdatePressReleaseRequest {
            press_release: Some(edited),
            update_mask: Some(pressroom::proto::FieldMask {
                paths: vec!["headline".into()],
            }),
        })
        .await?
        .into_inner();
    let data_dir = server.data_dir();
    let dir: Arc<tempfile::TempDir> = server.stop().await;

    let migrate = |url: String, data_dir: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_pressroom"))
                .args(["migrate", "--data-dir"])
                .arg(&data_dir)
                .args(["--to", &url])
                .output()
        })
    };
    let output = migrate(url.clone(), data_dir.clone()).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "migrate failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("20 releases, 21 change-log entries"),
        "{stdout}"
    );

    let store = PostgresStore::open(&url, PostgresOptions::default()).await?;
    assert_eq!(store.log_head(), 21);
    for release in &written {
        let id: Uuid = release.name.trim_start_matches("pressReleases/").parse()?;
        let moved = store.get(&id).await?;
        assert_eq!(moved.as_ref(), Some(release), "{} as it was", release.name);
    }

    // Twice is refused: the database already holds the store.
    let again = migrate(url, data_dir).await??;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a store"));
    drop(dir);
    Ok(())
}
