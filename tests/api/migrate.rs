//! `pressroom migrate` and `pressroom restore --to`, run as processes: a
//! sled data dir written through the real server moves into a PostgreSQL
//! database (a private cluster the test starts) with its names, revisions,
//! etags, change log and store id; a backup of that store restores into
//! another database as it was, and a damaged one is refused.

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

    let server = TestServer::start_on_sled().await;
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

    // A backup of the PostgreSQL store restores into another database as it
    // was; a damaged one is refused and leaves that database empty.
    let backup_path = dir.path().join("pg.backup");
    let mut file = std::fs::File::create(&backup_path)?;
    let info = store.backup(&mut file).await?;
    assert_eq!((info.store_id, info.position), (store.store_id(), 21));
    let mut damaged = std::fs::read(&backup_path)?;
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x20;
    let damaged_path = dir.path().join("damaged.backup");
    std::fs::write(&damaged_path, damaged)?;
    let restore = |input: std::path::PathBuf, database: &str| {
        let url = cluster.url(database);
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_pressroom"))
                .args(["restore", "--input"])
                .arg(&input)
                .args(["--to", &url])
                .env_remove("PRESSROOM_DATA_DIR")
                .output()
        })
    };
    cluster.create_database("restored").await?;
    let refused = restore(damaged_path, "restored").await??;
    assert!(!refused.status.success(), "a damaged backup is refused");
    let restored =
        PostgresStore::open(&cluster.url("restored"), PostgresOptions::default()).await?;
    assert_eq!(restored.log_head(), 0, "and nothing of it was kept");
    let output = restore(backup_path, "restored").await??;
    assert!(
        output.status.success(),
        "restore failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let restored =
        PostgresStore::open(&cluster.url("restored"), PostgresOptions::default()).await?;
    assert_eq!(restored.store_id(), store.store_id());
    assert_eq!(
        restored.read_log(0, 21, 100).await?,
        store.read_log(0, 21, 100).await?
    );
    for release in &written {
        let id: Uuid = release.name.trim_start_matches("pressReleases/").parse()?;
        assert_eq!(restored.get(&id).await?.as_ref(), Some(release));
    }
    drop(dir);
    Ok(())
}
