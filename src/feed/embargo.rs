//! The embargo scheduler: publishes each embargoed release at its embargo
//! time. It is driven by the store's embargo index (ordered by time): it
//! sleeps until the earliest embargo, or until a commit (which may have
//! added or moved one), and never scans the releases. An embargo that passed
//! while the server was down is published as soon as it starts.

use std::{sync::Arc, time::Duration};

use crate::proto::{Timestamp, now};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    domain::PressReleases,
    store::{Store, Writer},
    telemetry,
};

/// The longest the scheduler sleeps without looking at the index again.
const LONGEST_SLEEP: Duration = Duration::from_secs(60);
/// Pause after a failure, so a broken entry cannot make it spin.
const BACKOFF: Duration = Duration::from_secs(1);

/// Runs until `stop` is cancelled; with `leading`, only while it says this
/// replica leads (replicas sharing one database take turns).
pub async fn run(
    releases: PressReleases,
    store: Arc<dyn Store>,
    writer: Writer,
    mut leading: Option<watch::Receiver<bool>>,
    stop: CancellationToken,
) {
    let mut head: watch::Receiver<u64> = writer.durable_head();
    loop {
        if let Some(leading) = leading.as_mut()
            && !*leading.borrow_and_update()
        {
            tokio::select! {
                changed = leading.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                () = stop.cancelled() => break,
            }
            continue;
        }
        let mut pause = Duration::ZERO;
        match releases.publish_due(now()).await {
            Ok(outcome) if outcome.more => continue,
            Ok(outcome) if outcome.stuck => pause = BACKOFF,
            Ok(_) => {}
            Err(error) => {
                tracing::error!(error = %telemetry::chain(&error), "publishing embargoed releases failed");
                pause = BACKOFF;
            }
        }
        let wait = match store.next_embargo().await {
            Ok(Some((at, _))) => until(&at).max(pause).min(LONGEST_SLEEP),
            Ok(None) => LONGEST_SLEEP,
            Err(error) => {
                tracing::error!(error = %telemetry::chain(&error), "reading the embargo index failed");
                BACKOFF
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            changed = head.changed(), if pause.is_zero() => {
                if changed.is_err() {
                    break;
                }
            }
            () = stop.cancelled() => break,
        }
    }
    tracing::debug!("embargo scheduler stopped");
}

/// How long until `at` (zero if it has passed).
fn until(at: &Timestamp) -> Duration {
    let at = std::time::UNIX_EPOCH
        + Duration::from_secs(at.seconds.max(0) as u64)
        + Duration::from_nanos(at.nanos.max(0) as u64);
    at.duration_since(std::time::SystemTime::now())
        .unwrap_or(Duration::ZERO)
}
