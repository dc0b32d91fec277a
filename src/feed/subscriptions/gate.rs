//! The gate in front of a subscription's [`Dispatcher`]: a subscription is
//! dispatched in this process only while it holds the subscription's lease
//! ([`Store::subscription_lease`](crate::store::Store::subscription_lease)).
//! On one process per store (sled) the lease is granted at once and for
//! good, and the gate only starts the dispatcher. With replicas sharing a
//! PostgreSQL store, one replica at a time holds it:
//!
//! - Streams opened on a replica without the lease wait (attached here,
//!   receiving nothing) and are handed to a dispatcher as soon as the
//!   lease comes: when the holder's last stream has gone (a holder without
//!   streams lets go within two seconds) or the holder died (its session
//!   ends). The new holder loads the state from the store after taking the
//!   lease, so it starts from everything its predecessor committed.
//! - A holder that loses the lease stops its dispatcher; its streams end
//!   with UNAVAILABLE (their clients open them again) and its commits are
//!   refused from the moment the new holder took over (the lease epoch),
//!   so nothing it had not confirmed is taken as acknowledged.
//! - Seek and replay on a replica without the lease wait up to
//!   [`DEFERRED_FOR`] for it, then answer UNAVAILABLE.
//! - A subscription deleted through another replica is noticed by the
//!   holder within two seconds; its streams end with NOT_FOUND.
//!
//! The trade-off: with consumers spread over replicas (a Kubernetes Service
//! in front), only the leaseholder's streams receive at a time; the others
//! stand by. A subscription's consumers that should all work at once
//! connect to one replica (or are few enough for one replica's streams).

use std::{sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use super::{
    dispatcher::{Command, Dispatcher, Ended, StreamItem},
    not_found, selection_of,
};
use crate::{
    domain::DomainError,
    feed::Shared,
    store::{Store, SubscriptionLease},
};

/// How long seek and replay wait for a lease another replica holds.
pub(super) const DEFERRED_FOR: Duration = Duration::from_secs(5);

/// How often the gate looks at its waiting streams and, while dispatching
/// on a shared store, whether the dispatcher is idle or the subscription
/// was deleted elsewhere.
const CHECK: Duration = Duration::from_secs(1);

/// A stream waiting for the lease.
struct Waiting {
    stream: u64,
    sender: mpsc::Sender<StreamItem>,
    max: usize,
}

/// Runs the gate of subscription `id` until it is deleted, fails, or the
/// server stops. `commands` is what the service sends it; `nudge` reaches
/// the same channel without keeping it open.
pub(super) async fn run(
    shared: Arc<Shared>,
    id: String,
    mut commands: mpsc::Receiver<Command>,
    nudge: mpsc::WeakSender<Command>,
) {
    let mut streams: Vec<Waiting> = Vec::new();
    let mut deferred: Vec<(Instant, Command)> = Vec::new();
    let mut lease: Option<SubscriptionLease> = None;
    let mut check = tokio::time::interval(CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shared.stop.clone();
    loop {
        if streams.is_empty() && deferred.is_empty() {
            lease = None;
        } else if lease.is_none() {
            lease = Some(shared.store.subscription_lease(&id));
        }
        if let Some(held) = lease.take_if(|lease| lease.is_held()) {
            let attached = std::mem::take(&mut streams);
            let waiting = std::mem::take(&mut deferred);
            match dispatch(&shared, &id, commands, held, attached, waiting, &nudge).await {
                Some((back, kept)) => {
                    commands = back;
                    lease = kept;
                    continue;
                }
                None => return,
            }
        }
        tokio::select! {
            () = until_held(&mut lease) => {}
            command = commands.recv() => match command {
                None => return,
                Some(Command::Attach { stream, sender, max, limit, reply }) => {
                    if streams.len() >= limit {
                        let _ = reply.send(Err(DomainError::ResourceExhausted(format!(
                            "{} has reached its limit of {limit} open streams",
                            crate::domain::subscription::name(&id)
                        ))));
                    } else {
                        let _ = reply.send(Ok(()));
                        streams.push(Waiting { stream, sender, max });
                    }
                }
                Some(Command::Requests { stream, max: Some(max), .. }) => {
                    for waiting in streams.iter_mut().filter(|w| w.stream == stream) {
                        waiting.max = max;
                    }
                }
                // Nothing was delivered from here: no acks to take.
                Some(Command::Requests { .. }) => {}
                Some(Command::Gone { stream }) => streams.retain(|w| w.stream != stream),
                // Unanswered: the caller reads the stored state.
                Some(Command::Status { .. }) => {}
                Some(command @ (Command::Seek { .. } | Command::Replay { .. })) => {
                    deferred.push((Instant::now(), command));
                }
                Some(Command::Delete { reply }) => {
                    end(streams, deferred, || not_found(&id));
                    let _ = reply.send(());
                    return;
                }
            },
            _ = check.tick() => {
                streams.retain(|w| !w.sender.is_closed());
                let now = Instant::now();
                let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut deferred)
                    .into_iter()
                    .partition(|(since, _)| now.duration_since(*since) >= DEFERRED_FOR);
                deferred = kept;
                end(Vec::new(), expired, elsewhere);
            }
            () = stop.cancelled() => {
                end(streams, deferred, || {
                    DomainError::Unavailable("the server is shutting down; open the stream again".into())
                });
                return;
            }
        }
    }
}

/// Loads the subscription and runs a dispatcher for it while the lease
/// lasts. Returns the commands (and the lease, if it is still wanted) when
/// the lease went or the dispatcher was idle; `None` when the gate ends.
async fn dispatch(
    shared: &Arc<Shared>,
    id: &str,
    commands: mpsc::Receiver<Command>,
    mut lease: SubscriptionLease,
    streams: Vec<Waiting>,
    deferred: Vec<(Instant, Command)>,
    nudge: &mpsc::WeakSender<Command>,
) -> Option<(mpsc::Receiver<Command>, Option<SubscriptionLease>)> {
    let store: &Arc<dyn Store> = &shared.store;
    let loaded = async {
        let record = store.subscription(id).await?;
        let state = store.subscription_state(id).await?;
        Ok::<_, DomainError>(record.zip(state))
    };
    let (record, state) = match loaded.await {
        Ok(Some(found)) => found,
        Ok(None) => {
            end(streams, deferred, || not_found(id));
            return None;
        }
        Err(error) => {
            tracing::error!(subscription = id, %error, "cannot load a subscription");
            end(streams, deferred, || {
                DomainError::Unavailable("the subscription's state cannot be read now".into())
            });
            return None;
        }
    };
    let selection = match selection_of(shared, &record) {
        Ok(selection) => selection,
        Err(error) => {
            let message = error.to_string();
            end(streams, deferred, || {
                DomainError::Unavailable(message.clone())
            });
            return None;
        }
    };
    let token = shared.stop.child_token();
    let mut dispatcher = Dispatcher::new(
        Arc::clone(shared),
        id.to_string(),
        record,
        state,
        selection,
        commands,
    )
    .stopping_on(token.clone());
    for Waiting {
        stream,
        sender,
        max,
    } in streams
    {
        // Taken in by the gate already, within the limit.
        let (reply, _) = oneshot::channel();
        dispatcher
            .handle(Command::Attach {
                stream,
                sender,
                max,
                limit: usize::MAX,
                reply,
            })
            .await;
    }
    for (_, command) in deferred {
        dispatcher.handle(command).await;
    }
    let readers = shared.watchers.clone();
    readers.subscriber_started();
    let running = async {
        let ended = dispatcher.run().await;
        token.cancel();
        ended
    };
    let watching = async {
        if lease.is_exclusive() {
            token.cancelled().await;
            return Some(lease);
        }
        watch_shared(shared, id, &mut lease, &token, nudge)
            .await
            .then_some(lease)
    };
    let (ended, lease) = tokio::join!(running, watching);
    readers.subscriber_ended();
    match ended {
        Ended::Stopped(commands) if !shared.stop.is_cancelled() => Some((commands, lease)),
        _ => None,
    }
}

/// While a dispatcher runs on a shared store: stops it when the lease is
/// lost (true: keep contending) or when it has had no streams for two
/// checks (false: let go, so another replica's streams get it), and tells
/// it when the subscription was deleted through another replica.
async fn watch_shared(
    shared: &Shared,
    id: &str,
    lease: &mut SubscriptionLease,
    token: &tokio_util::sync::CancellationToken,
    nudge: &mpsc::WeakSender<Command>,
) -> bool {
    let mut check = tokio::time::interval(CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle = 0;
    loop {
        tokio::select! {
            () = token.cancelled() => return true,
            () = lease.until(false) => {
                tracing::warn!(subscription = id, "the subscription's lease was lost; stopping its dispatcher");
                token.cancel();
                return true;
            }
            _ = check.tick() => {}
        }
        let Some(commands) = nudge.upgrade() else {
            return true;
        };
        let looked = async {
            let (reply, answer) = oneshot::channel();
            let streams = match commands.try_send(Command::Status { reply }) {
                Ok(()) => answer.await.ok().map(|status| status.streams),
                Err(_) => None,
            };
            let exists = shared.store.subscription(id).await.map(|r| r.is_some());
            (streams, exists)
        };
        let (streams, exists) = tokio::select! {
            () = token.cancelled() => return true,
            looked = looked => looked,
        };
        if matches!(exists, Ok(false)) {
            let (reply, _) = oneshot::channel();
            let _ = commands.try_send(Command::Delete { reply });
        }
        idle = if streams == Some(0) { idle + 1 } else { 0 };
        if idle >= 2 {
            tracing::debug!(
                subscription = id,
                "no streams: letting go of the subscription's lease"
            );
            token.cancel();
            return false;
        }
    }
}

/// Waits for a lease to be held (never, without one).
async fn until_held(lease: &mut Option<SubscriptionLease>) {
    match lease {
        Some(lease) => lease.until(true).await,
        None => std::future::pending().await,
    }
}

/// Ends waiting streams and answers deferred commands with `error`.
fn end(streams: Vec<Waiting>, deferred: Vec<(Instant, Command)>, error: impl Fn() -> DomainError) {
    for waiting in streams {
        let _ = waiting.sender.try_send(Err(error()));
    }
    for (_, command) in deferred {
        match command {
            Command::Seek { reply, .. } => {
                let _ = reply.send(Err(error()));
            }
            Command::Replay { reply, .. } => {
                let _ = reply.send(Err(error()));
            }
            _ => {}
        }
    }
}

/// The answer to a seek or replay that waited in vain for the lease.
fn elsewhere() -> DomainError {
    DomainError::Unavailable(
        "another replica dispatches this subscription now; try again when its streams have ended"
            .into(),
    )
}
