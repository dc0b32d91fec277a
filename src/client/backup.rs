//! `pressroom backup` (streams a backup from a running server to a file)
//! and `pressroom restore` (writes a backup into an empty data dir, offline).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};
use tokio_stream::StreamExt as _;

use super::{ClientArgs, ClientError, connect};
use crate::{
    proto::v1::BackupPressReleasesRequest,
    store::{PortableReader, PostgresOptions, PostgresStore, SledStore, StoreError},
};

/// `pressroom backup`
#[derive(Clone, Debug, clap::Args)]
pub struct BackupArgs {
    /// The server to back up.
    #[command(flatten)]
    pub client: ClientArgs,

    /// The file to write, or an existing directory to write
    /// `pressroom-<time>.backup` into.
    #[arg(long)]
    pub output: PathBuf,

    /// With a directory: keep only the newest N backups in it.
    #[arg(long)]
    pub keep: Option<usize>,
}

/// `pressroom restore`
#[derive(Clone, Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup file.
    #[arg(long)]
    pub input: PathBuf,

    /// The data dir to restore a sled store's backup into; it must not hold
    /// a store yet.
    #[arg(long, env = "PRESSROOM_DATA_DIR", required_unless_present = "to")]
    pub data_dir: Option<PathBuf>,

    /// A PostgreSQL database (`postgres://…`) to restore a PostgreSQL
    /// store's backup into instead; it must not hold a store yet.
    #[arg(long)]
    pub to: Option<String>,
}

pub(super) async fn backup(args: BackupArgs) -> Result<(), ClientError> {
    let into_directory = args.output.is_dir();
    if args.keep.is_some() && !into_directory {
        return Err(ClientError::Usage(
            "--keep needs --output to be a directory".into(),
        ));
    }
    let target = if into_directory {
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        args.output.join(format!("pressroom-{stamp}.backup"))
    } else {
        args.output.clone()
    };
    let partial = target.with_extension("partial");
    let file_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ClientError::File { path, source }
    };
    let mut client = connect(&args.client).await?;
    let mut stream = client
        .backup_press_releases(BackupPressReleasesRequest {})
        .await?
        .into_inner();
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(&partial).map_err(file_error(&partial))?);
    // The last 32 bytes are the SHA-256 of everything before them.
    let mut hash = Sha256::new();
    let mut tail: Vec<u8> = Vec::new();
    let mut bytes = 0u64;
    while let Some(message) = stream.next().await {
        let chunk = message?.chunk;
        file.write_all(&chunk).map_err(file_error(&partial))?;
        bytes += chunk.len() as u64;
        tail.extend_from_slice(&chunk);
        if tail.len() > 32 {
            let settled = tail.len() - 32;
            hash.update(&tail[..settled]);
            tail.drain(..settled);
        }
    }
    let file = file.into_inner().map_err(|e| ClientError::File {
        path: partial.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(file_error(&partial))?;
    if tail.len() != 32 || hash.finalize().as_slice() != tail.as_slice() {
        let _ = std::fs::remove_file(&partial);
        return Err(ClientError::Other(
            "the backup arrived damaged or incomplete (checksum mismatch); nothing was kept".into(),
        ));
    }
    std::fs::rename(&partial, &target).map_err(file_error(&target))?;
    println!("backup written: {} ({bytes} bytes)", target.display());
    if let Some(keep) = args.keep {
        prune(&args.output, keep)?;
    }
    Ok(())
}

/// Deletes all but the newest `keep` backups in a directory.
fn prune(directory: &Path, keep: usize) -> Result<(), ClientError> {
    let listing = std::fs::read_dir(directory).map_err(|source| ClientError::File {
        path: directory.to_path_buf(),
        source,
    })?;
    let mut backups: Vec<PathBuf> = listing
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("pressroom-") && n.ends_with(".backup"))
        })
        .collect();
    // The names carry the time, so name order is age order.
    backups.sort();
    let excess = backups.len().saturating_sub(keep);
    for old in &backups[..excess] {
        std::fs::remove_file(old).map_err(|source| ClientError::File {
            path: old.clone(),
            source,
        })?;
        println!("removed old backup: {}", old.display());
    }
    Ok(())
}

pub(super) async fn restore(args: RestoreArgs) -> Result<(), ClientError> {
    if let Some(url) = &args.to {
        return restore_into_postgres(&args.input, url).await;
    }
    let Some(data_dir) = args.data_dir else {
        return Err(ClientError::Usage("--data-dir or --to is needed".into()));
    };
    let info = tokio::task::spawn_blocking(move || {
        let mut input = std::fs::File::open(&args.input).map_err(|source| ClientError::File {
            path: args.input.clone(),
            source,
        })?;
        SledStore::restore(&mut input, &data_dir).map_err(|e| ClientError::Other(Box::new(e)))
    })
    .await
    .map_err(|e| ClientError::Other(Box::new(e)))??;
    println!(
        "restored store {} at change-log position {} ({} entries); the search index is rebuilt on start",
        info.store_id, info.position, info.entries
    );
    Ok(())
}

/// Restores a backup of the PostgreSQL store (the portable format) into an
/// empty database, in one transaction: a damaged or truncated file, found
/// at the latest by the checksum at its end, leaves the database empty.
async fn restore_into_postgres(input: &Path, url: &str) -> Result<(), ClientError> {
    let file = std::fs::File::open(input).map_err(|source| ClientError::File {
        path: input.to_path_buf(),
        source,
    })?;
    let mut reader = PortableReader::open(std::io::BufReader::new(file))
        .map_err(|e| ClientError::Invalid(format!("{}: {e}", input.display())))?;
    let info = reader.info;
    let target = PostgresStore::open(url, PostgresOptions::default())
        .await
        .map_err(|e| ClientError::Other(Box::new(e)))?;
    let (items, received) = tokio::sync::mpsc::channel(4_096);
    let reading = tokio::task::spawn_blocking(move || {
        loop {
            match reader.next_item() {
                Ok(Some(item)) => {
                    if items.blocking_send(Ok(item)).is_err() {
                        return Ok(());
                    }
                }
                Ok(None) => return Ok(()),
                Err(error) => {
                    // The import sees the failure and commits nothing.
                    let _ = items.blocking_send(Err(StoreError::Closed));
                    return Err(error);
                }
            }
        }
    });
    let imported = target.import(info.store_id, info.position, received).await;
    let read = reading.await.map_err(|e| ClientError::Other(Box::new(e)))?;
    if let Err(error) = read {
        return Err(ClientError::Invalid(format!(
            "{}: {error}",
            input.display()
        )));
    }
    let summary = imported.map_err(|e| ClientError::Other(Box::new(e)))?;
    println!(
        "restored store {} at change-log position {} ({} releases) into the database",
        info.store_id, info.position, summary.releases
    );
    Ok(())
}
