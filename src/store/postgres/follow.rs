//! Following the shared head of the change log.
//!
//! Readers on every replica follow the shared head: a task polls it every
//! `poll_interval` and `LISTEN`s on a dedicated connection only to wake
//! early (a lost notification costs latency, never an event).
//! [`PostgresStore::log_head`](super::PostgresStore::log_head) is that
//! followed head; the replica's own commits move it at once. Every entry up
//! to a head read from the database is committed and visible (commits are
//! serialised by the head row), so a reader never sees a gap.

use std::{sync::Arc, time::Duration};

use deadpool_postgres::Pool;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::store::StoreError;

use super::{connect::Target, engine::db_error};

/// The channel commits notify on.
pub(super) const CHANNEL: &str = "pressroom_log";

/// Polls the shared head every `poll`, and whenever `wake` is notified.
pub(super) async fn follow(
    pool: Pool,
    head: Arc<watch::Sender<u64>>,
    wake: Arc<Notify>,
    poll: Duration,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
        match read_head(&pool).await {
            Ok(latest) => {
                failures = 0;
                advance(&head, latest);
            }
            Err(error) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(100) {
                    tracing::warn!(error = %crate::telemetry::chain(&error), failures, "cannot read the shared head");
                }
            }
        }
    }
}

/// `LISTEN`s for commits on a dedicated connection and wakes the follower;
/// reconnects when the connection is lost.
pub(super) async fn listen(target: Target, wake: Arc<Notify>, stop: CancellationToken) {
    loop {
        let (sender, mut notes) = tokio::sync::mpsc::unbounded_channel();
        match target.connect_dedicated(Some(sender)).await {
            Ok(client) => match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                Ok(()) => {
                    // Whatever was committed while not listening.
                    wake.notify_one();
                    loop {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            note = notes.recv() => match note {
                                Some(_) => wake.notify_one(),
                                None => break,
                            },
                        }
                    }
                }
                Err(error) => tracing::debug!(%error, "LISTEN failed"),
            },
            Err(error) => tracing::debug!(%error, "cannot open the LISTEN connection"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

pub(super) async fn read_head(pool: &Pool) -> Result<u64, StoreError> {
    let client = pool
        .get()
        .await
        .map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))?;
    let statement = client
        .prepare_cached("SELECT head FROM pressroom.log_head")
        .await
        .map_err(db_error)?;
    let row = client.query_one(&statement, &[]).await.map_err(db_error)?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

/// Moves a followed head forward (never back).
pub(super) fn advance(head: &watch::Sender<u64>, to: u64) {
    head.send_if_modified(|current| {
        if to > *current {
            *current = to;
            true
        } else {
            false
        }
    });
}
