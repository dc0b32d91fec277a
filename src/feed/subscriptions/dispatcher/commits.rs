//! Commits: the subscription's state changes gathered into one commit at
//! a time (group commit), acks confirmed to their streams once durable,
//! the tick's periodic work, and ending the streams when the run ends or
//! a commit fails.

use std::{collections::BTreeMap, sync::Arc};

use tokio::{task::JoinHandle, time::Instant};

use super::{CONFIRM_DELAY, Dispatcher};
use crate::{
    domain::DomainError,
    proto::{self, wire::StreamSubscriptionResponse},
    store::{EventState, StoreError, SubscriptionChange},
};

/// Which delivery counts a commit takes.
#[derive(Clone, Copy)]
enum Counts {
    None,
    /// Those made before the last tick (a tick's commit).
    Aged,
    /// All of them (shutting down).
    All,
}

/// Work to do once the next commit is durable (or has failed).
pub(super) type AfterCommit = Box<dyn FnOnce(&Result<(), DomainError>) + Send>;

/// The commit in flight, and what waits for it.
pub(super) type Committing = Option<(JoinHandle<Result<(), StoreError>>, Vec<AfterCommit>)>;

impl Dispatcher {
    /// Starts a commit of what changed, unless one is in flight. Delivery
    /// counts wait for the tick (see the module's doc): with many events in
    /// flight, a commit per ack batch would otherwise write (and a later
    /// advance remove) a count for each of them.
    pub(super) fn commit(&mut self) {
        self.commit_if(Counts::None);
    }

    fn commit_if(&mut self, with: Counts) {
        if self.committing.is_some() {
            return;
        }
        let counts = match with {
            Counts::None => BTreeMap::new(),
            Counts::Aged => {
                let fresh = std::mem::take(&mut self.counts);
                std::mem::replace(&mut self.aged, fresh)
            }
            Counts::All => {
                let mut all = std::mem::take(&mut self.aged);
                all.append(&mut self.counts);
                all
            }
        };
        let position = self.position();
        let mut changes = std::mem::take(&mut self.changes);
        if !counts.is_empty()
            || !self.dirty.is_empty()
            || !self.after_commit.is_empty()
            || !self.acks_to_commit.is_empty()
            || !changes.is_empty()
        {
            if position > self.committed_position {
                changes.push(SubscriptionChange::Advance {
                    id: self.id.clone(),
                    position,
                });
            }
            let dirty = std::mem::take(&mut self.dirty);
            changes.extend(dirty.into_iter().filter(|(seq, _)| *seq > position).map(
                |(seq, state)| SubscriptionChange::Event {
                    id: self.id.clone(),
                    seq,
                    state,
                },
            ));
            changes.extend(counts.into_iter().filter(|(seq, _)| *seq > position).map(
                |(seq, deliveries)| SubscriptionChange::Event {
                    id: self.id.clone(),
                    seq,
                    state: EventState {
                        acked: false,
                        deliveries,
                    },
                },
            ));
        }
        if changes.is_empty() && self.after_commit.is_empty() && self.acks_to_commit.is_empty() {
            return;
        }
        self.acks_committing = std::mem::take(&mut self.acks_to_commit);
        self.committed_position = self.committed_position.max(position);
        let store = Arc::clone(&self.shared.store);
        let task = tokio::spawn(async move { store.commit_subscriptions(changes).await });
        self.committing = Some((task, std::mem::take(&mut self.after_commit)));
    }

    /// A commit returned: its waiters are told.
    pub(super) fn committed(
        &mut self,
        (result, after): (Result<(), StoreError>, Vec<AfterCommit>),
    ) -> Result<(), DomainError> {
        let result = result.map_err(DomainError::from);
        for work in after {
            work(&result);
        }
        let acks = std::mem::take(&mut self.acks_committing);
        if result.is_ok() {
            for (stream, id) in acks {
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.confirmations.push(id);
                    s.confirm_by
                        .get_or_insert_with(|| Instant::now() + CONFIRM_DELAY);
                }
            }
        }
        result
    }

    /// When the next confirmations are due to go alone.
    pub(super) fn next_confirmation(&self) -> Option<Instant> {
        self.streams.values().filter_map(|s| s.confirm_by).min()
    }

    /// Sends the confirmations that no events took along within
    /// [`CONFIRM_DELAY`] (all of them with `now`).
    pub(super) fn confirm(&mut self, now: bool) {
        let due = Instant::now();
        for s in self.streams.values_mut() {
            if s.confirmations.is_empty() || !(now || s.confirm_by.is_some_and(|by| by <= due)) {
                continue;
            }
            s.confirm_by = None;
            // A stream that stopped reading misses its confirmations; its
            // acks are durable anyway.
            let _ = s.sender.try_send(Ok(StreamSubscriptionResponse {
                received_events: Vec::new(),
                acknowledged_ids: std::mem::take(&mut s.confirmations),
            }));
        }
    }

    /// Waits for the commit in flight, then commits what is left.
    pub(super) async fn finish_commits(&mut self) {
        for _ in 0..3 {
            if self.committing.is_some() {
                let done = commit_done(&mut self.committing).await;
                if self.committed(done).is_err() {
                    return;
                }
            }
            if self.position() > self.committed_position {
                self.changes.push(SubscriptionChange::Advance {
                    id: self.id.clone(),
                    position: self.position(),
                });
            }
            self.commit_if(Counts::All);
            if self.committing.is_none() {
                return;
            }
        }
    }

    /// Periodic work: metrics, and a position moved past entries that held
    /// nothing for this subscription is committed now and then.
    pub(super) fn tick(&mut self) {
        let streams: Vec<u64> = self
            .streams
            .iter()
            .filter(|(_, s)| s.sender.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for stream in streams {
            self.gone(stream);
        }
        if self.position() > self.committed_position && self.committing.is_none() {
            self.changes.push(SubscriptionChange::Advance {
                id: self.id.clone(),
                position: self.position(),
            });
        }
        self.commit_if(Counts::Aged);
        let status = self.status();
        let label = self.id.clone();
        metrics::gauge!("pressroom_subscription_backlog", "subscription" => label.clone())
            .set(status.backlog as f64);
        metrics::gauge!("pressroom_subscription_outstanding", "subscription" => label.clone())
            .set(status.outstanding as f64);
        metrics::gauge!("pressroom_subscription_dead_letters", "subscription" => label.clone())
            .set(status.dead_letters as f64);
        let oldest = self
            .slots
            .values()
            .next()
            .and_then(|slot| slot.commit_time)
            .map(|time| {
                let now = proto::now();
                (now.seconds - time.seconds) as f64
                    + f64::from(now.nanos - time.nanos) / 1_000_000_000.0
            })
            .unwrap_or(0.0);
        metrics::gauge!("pressroom_subscription_oldest_unacked_seconds", "subscription" => label)
            .set(oldest.max(0.0));
    }

    pub(super) fn clear_metrics(&self) {
        for name in [
            "pressroom_subscription_backlog",
            "pressroom_subscription_outstanding",
            "pressroom_subscription_dead_letters",
            "pressroom_subscription_oldest_unacked_seconds",
        ] {
            metrics::gauge!(name, "subscription" => self.id.clone()).set(0.0);
        }
    }

    /// Ends every stream with an error.
    pub(super) fn end_streams(&mut self, error: impl Fn() -> DomainError) {
        for (_, stream) in self.streams.drain() {
            let _ = stream.sender.try_send(Err(error()));
        }
    }

    /// A commit failed: the streams end, and the subscription is loaded
    /// again from the store by the next stream.
    pub(super) async fn fail(&mut self, error: &DomainError) {
        tracing::error!(subscription = %self.id, %error, "subscription stopped");
        self.end_streams(|| clone_error(error));
    }
}

/// Waits for the commit in flight (never, if there is none).
pub(super) async fn commit_done(
    committing: &mut Committing,
) -> (Result<(), StoreError>, Vec<AfterCommit>) {
    let Some((task, _)) = committing.as_mut() else {
        return std::future::pending().await;
    };
    let result = task
        .await
        .unwrap_or_else(|panic| Err(StoreError::engine(panic)));
    let after = committing
        .take()
        .map(|(_, after)| after)
        .unwrap_or_default();
    (result, after)
}

/// An error to hand to several waiters (the domain's errors do not clone).
pub(super) fn clone_error(error: &DomainError) -> DomainError {
    match error {
        DomainError::Unavailable(message) => DomainError::Unavailable(message.clone()),
        DomainError::NotFound { name } => DomainError::NotFound { name: name.clone() },
        _ => DomainError::Unavailable(
            "the subscription's state could not be saved; see the server's log".into(),
        ),
    }
}
