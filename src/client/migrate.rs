//! `pressroom migrate`: moves the store of a sled data dir into a
//! PostgreSQL database, whole, for the move from one server to replicas on
//! PostgreSQL. Names, revisions, etags, the change log and the store id come
//! along, so consumers' cursors resume on the new store and publishers'
//! retries (request ids, sources) are still recognised. The server must be
//! stopped (sled locks its data dir); the database must hold no store yet;
//! the import is one transaction, so a failed run leaves it empty.

use std::{path::PathBuf, sync::Arc};

use tokio::sync::mpsc;

use crate::store::{PostgresOptions, PostgresStore, SledStore, Store, StoreError};

use super::ClientError;

/// Arguments of `pressroom migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The data dir whose store moves (its server stopped).
    #[arg(long, env = "PRESSROOM_DATA_DIR")]
    pub data_dir: PathBuf,

    /// The PostgreSQL database to move it into (`postgres://…`); it must not
    /// hold a store yet.
    #[arg(long, env = "PRESSROOM_STORE")]
    pub to: String,
}

pub(super) async fn migrate(args: MigrateArgs) -> Result<(), ClientError> {
    let other = |e: StoreError| ClientError::Other(Box::new(e));
    let store_dir = args.data_dir.join("store");
    if !store_dir.is_dir() {
        return Err(ClientError::Usage(format!(
            "{} holds no store (no `store` folder)",
            args.data_dir.display()
        )));
    }
    let target = PostgresStore::open(&args.to, PostgresOptions::default())
        .await
        .map_err(other)?;
    let source = tokio::task::spawn_blocking(move || SledStore::open(&store_dir, 64 << 20))
        .await
        .map_err(|e| ClientError::Other(Box::new(e)))?
        .map_err(other)?;
    let source = Arc::new(source);
    let (store_id, head) = (source.store_id(), source.log_head());
    let (items, received) = mpsc::channel(4_096);
    let exporting = {
        let source = Arc::clone(&source);
        tokio::task::spawn_blocking(move || {
            let exported = source.export(&mut |item| {
                items
                    .blocking_send(Ok(item))
                    .map_err(|_| StoreError::Closed)
            });
            // A failed export reaches the import, which then commits nothing.
            if let Err(error) = &exported {
                let _ = items.blocking_send(Err(error.clone()));
            }
            exported
        })
    };
    let imported = target.import(store_id, head, received).await;
    let exported = exporting
        .await
        .map_err(|e| ClientError::Other(Box::new(e)))?;
    let summary = match (imported, exported) {
        (Ok(summary), Ok(_)) => summary,
        (Err(error), _) | (Ok(_), Err(error)) => return Err(other(error)),
    };
    println!(
        "moved store {store_id}: {} releases, {} change-log entries, {} request ids and sources",
        summary.releases, summary.entries, summary.keys
    );
    Ok(())
}
