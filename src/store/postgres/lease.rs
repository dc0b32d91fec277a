//! Subscription leases among replicas: which process dispatches a
//! subscription. A lease is a session advisory lock keyed by the
//! subscription (`pg_try_advisory_lock(LEASES, hashtext(id))`), contended
//! on a dedicated connection as the embargo scheduler's
//! [`leadership`](super::leadership) is; the lock goes with the session,
//! so a replica that dies or loses its connection lets go and another
//! takes over within a second.
//!
//! On taking the lock the holder moves the subscription's lease epoch on
//! (in its position row) and records it; commits of subscription state
//! then carry that epoch and are refused once another holder has moved it
//! ([`subscriptions`](super::subscriptions)). The lock says who should
//! dispatch; the epoch makes sure a holder that lost the lock without
//! noticing yet cannot write over the state its successor loaded.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::store::SubscriptionLease;

use super::{PostgresStore, connect::Target, subscriptions::HeldLeases};

/// The first key of every subscription's advisory lock (the second is the
/// hash of its id); two-key locks never meet the one-key locks of the
/// scheduler and migrations.
const LEASES: i32 = 0x7072_7375; // "prsu"

/// Between two checks of a held lease, and two tries to take one.
const CHECK: Duration = Duration::from_secs(1);

/// Tells lease instances apart (a new lease of the same subscription may
/// start before an old one has cleaned up).
static INSTANCES: AtomicU64 = AtomicU64::new(1);

/// What ends a lease when dropped: the contending task lets go.
struct Grant {
    _stop: DropGuard,
}

impl PostgresStore {
    /// Starts contending for the lease of subscription `id`.
    pub fn lease_subscription(&self, id: &str) -> SubscriptionLease {
        let (sender, held) = watch::channel(false);
        let stop = CancellationToken::new();
        let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(contend(
            self.target().clone(),
            std::sync::Arc::clone(self.subscription_commits().leases()),
            id.to_string(),
            instance,
            sender,
            stop.clone(),
        ));
        SubscriptionLease::contended(
            held,
            Grant {
                _stop: stop.drop_guard(),
            },
        )
    }
}

async fn contend(
    target: Target,
    leases: HeldLeases,
    id: String,
    instance: u64,
    held: watch::Sender<bool>,
    stop: CancellationToken,
) {
    let record = |epoch: Option<i64>| {
        let mut leases = leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        leases.insert(id.clone(), (instance, epoch));
    };
    loop {
        match target.connect_dedicated(None).await {
            Ok(client) => {
                let stopped = hold(&client, &id, &held, &record, &stop).await;
                held.send_replace(false);
                if stopped {
                    let _ = client
                        .execute(
                            "SELECT pg_advisory_unlock($1, hashtext($2))",
                            &[&LEASES, &id],
                        )
                        .await;
                    break;
                }
            }
            Err(error) => tracing::debug!(%error, "subscription lease: cannot connect"),
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(CHECK) => {}
        }
    }
    let mut leases = leases
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if leases.get(&id).is_some_and(|(i, _)| *i == instance) {
        leases.remove(&id);
    }
}

/// Takes the lock when it can, moves the epoch on, and holds it while the
/// session lasts. Returns true when stopped, false when the session was
/// lost (the lease is then recorded as lost: commits are refused until a
/// new epoch is taken).
async fn hold(
    client: &tokio_postgres::Client,
    id: &str,
    held: &watch::Sender<bool>,
    record: &impl Fn(Option<i64>),
    stop: &CancellationToken,
) -> bool {
    loop {
        match client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&LEASES, &id],
            )
            .await
        {
            Ok(row) if row.get::<_, bool>(0) => break,
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "subscription lease: lost the session");
                return false;
            }
        }
        tokio::select! {
            () = stop.cancelled() => return true,
            () = tokio::time::sleep(CHECK) => {}
        }
    }
    let epoch = match client
        .query_opt(
            "UPDATE pressroom.subscription_positions SET lease = lease + 1
             WHERE id = $1 RETURNING lease",
            &[&id],
        )
        .await
    {
        // Deleted meanwhile: nothing to fence, its commits are skipped.
        Ok(row) => row.map_or(0, |row| row.get::<_, i64>(0)),
        Err(error) => {
            tracing::debug!(%error, "subscription lease: lost the session");
            return false;
        }
    };
    record(Some(epoch));
    tracing::info!(subscription = id, epoch, "subscription lease taken");
    held.send_replace(true);
    loop {
        tokio::select! {
            () = stop.cancelled() => return true,
            () = tokio::time::sleep(CHECK) => {}
        }
        if let Err(error) = client.simple_query("SELECT 1").await {
            tracing::warn!(%error, subscription = id, "subscription lease lost with the session");
            record(None);
            return false;
        }
    }
}
