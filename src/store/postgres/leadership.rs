//! Leadership among replicas: a PostgreSQL session advisory lock that at
//! most one replica holds at a time, for work that one replica should do
//! for all (the embargo scheduler). Each [`Leadership`] contends for the
//! lock on a dedicated connection and says whether it holds it; the lock
//! goes with the session, so a replica that dies or loses its connection
//! lets go of it and another one takes over within its retry interval.
//!
//! Between the server ending a lost session and the old holder noticing
//! (its next check), two replicas may both believe they lead. Work done
//! under leadership must therefore be safe to do twice: the embargo
//! scheduler's publications are compare-and-swaps on the revision, so the
//! second one is refused as stale.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{PostgresStore, connect::Target};

/// The advisory-lock key of the embargo scheduler.
pub const EMBARGO_SCHEDULER: i64 = 0x7072_6573_7365_6d62; // "pressemb"

/// How often a holder checks that its session is still there, and how
/// often a replica without the lock tries to take it.
#[derive(Clone, Copy, Debug)]
pub struct LeadershipTiming {
    /// Between two checks of a held lock.
    pub check: Duration,
    /// Between two tries to take the lock.
    pub retry: Duration,
}

impl Default for LeadershipTiming {
    fn default() -> Self {
        Self {
            check: Duration::from_secs(1),
            retry: Duration::from_secs(2),
        }
    }
}

/// One replica's claim on a lock; contends while it lives, lets go when
/// dropped.
pub struct Leadership {
    leading: watch::Receiver<bool>,
    _stop: DropGuard,
}

impl Leadership {
    /// Whether this replica holds the lock now.
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Changes of [`is_leader`](Self::is_leader), to wait on.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }
}

impl PostgresStore {
    /// Starts contending for the advisory lock `key`.
    pub fn leadership(&self, key: i64, timing: LeadershipTiming) -> Leadership {
        let (sender, leading) = watch::channel(false);
        let stop = CancellationToken::new();
        tokio::spawn(contend(
            self.target().clone(),
            key,
            timing,
            sender,
            stop.clone(),
        ));
        Leadership {
            leading,
            _stop: stop.drop_guard(),
        }
    }
}

async fn contend(
    target: Target,
    key: i64,
    timing: LeadershipTiming,
    leading: watch::Sender<bool>,
    stop: CancellationToken,
) {
    loop {
        match target.connect_dedicated(None).await {
            Ok(client) => {
                if hold(&client, key, timing, &leading, &stop).await {
                    // Stopping: let go now rather than when the session ends.
                    let _ = client
                        .execute("SELECT pg_advisory_unlock($1)", &[&key])
                        .await;
                    leading.send_replace(false);
                    return;
                }
                leading.send_replace(false);
            }
            Err(error) => tracing::debug!(%error, "leadership: cannot connect"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(timing.retry) => {}
        }
    }
}

/// Takes the lock when it can and holds it while the session lasts.
/// Returns true when stopped, false when the session was lost.
async fn hold(
    client: &tokio_postgres::Client,
    key: i64,
    timing: LeadershipTiming,
    leading: &watch::Sender<bool>,
    stop: &CancellationToken,
) -> bool {
    loop {
        match client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
        {
            Ok(row) if row.get::<_, bool>(0) => break,
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "leadership: lost the session");
                return false;
            }
        }
        tokio::select! {
            () = stop.cancelled() => return true,
            () = tokio::time::sleep(timing.retry) => {}
        }
    }
    tracing::info!(key, "leadership taken");
    leading.send_replace(true);
    loop {
        tokio::select! {
            () = stop.cancelled() => return true,
            () = tokio::time::sleep(timing.check) => {}
        }
        if let Err(error) = client.simple_query("SELECT 1").await {
            tracing::warn!(%error, key, "leadership lost with the session");
            return false;
        }
    }
}
