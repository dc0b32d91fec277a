//! What an engine keeps for subscriptions: each one's definition, and its
//! state — its position (every event at or before it is settled), the
//! events after it that are acknowledged or were delivered more than once
//! (with their delivery counts), and its dead letters. These types are prost
//! messages, so an engine can store them as they are.
//!
//! Subscription state is written by [`Store::commit_subscriptions`]
//! (crate::store::Store), never with a change-log entry: acknowledgements
//! are not changes to press releases. Changes naming a subscription that
//! does not exist (deleted meanwhile) are skipped, so a late commit never
//! brings a deleted subscription back.

use std::collections::BTreeMap;

use crate::proto::{Timestamp, v1::Subscription};

/// A subscription's definition as stored.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscriptionRecord {
    /// The resource, as created: name, filter, query, ack deadline, max
    /// deliveries, creator, create time (output-only state fields unset).
    #[prost(message, optional, tag = "1")]
    pub subscription: Option<Subscription>,
    /// The log position it started after.
    #[prost(uint64, tag = "2")]
    pub start: u64,
}

impl SubscriptionRecord {
    /// The subscription's id (the `{subscription}` of its name).
    pub fn id(&self) -> Result<String, crate::store::StoreError> {
        self.subscription
            .as_ref()
            .and_then(|s| s.name.strip_prefix("subscriptions/"))
            .filter(|id| !id.is_empty() && !id.contains('\0'))
            .map(str::to_string)
            .ok_or_else(|| crate::store::StoreError::Corrupt {
                key: "a subscription record without a name".into(),
            })
    }
}

/// What is known of one event after a subscription's position.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct EventState {
    /// Acknowledged: never delivered again.
    #[prost(bool, tag = "1")]
    pub acked: bool,
    /// How many times it was delivered.
    #[prost(uint32, tag = "2")]
    pub deliveries: u32,
}

/// An event set aside after too many deliveries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredDeadLetter {
    /// The event's change-log position.
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    /// The release (16 bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub release_id: Vec<u8>,
    /// The event's type (`pressroom.v1.EventType`).
    #[prost(int32, tag = "3")]
    pub event_type: i32,
    /// How many times it was delivered.
    #[prost(uint32, tag = "4")]
    pub deliveries: u32,
    /// When it was set aside.
    #[prost(message, optional, tag = "5")]
    pub time: Option<Timestamp>,
    /// Being delivered again (replayed).
    #[prost(bool, tag = "6")]
    pub replaying: bool,
}

/// A subscription's state as stored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubscriptionState {
    /// Every event at or before this log position is settled (acknowledged,
    /// set aside, or not selected).
    pub position: u64,
    /// Events after `position` with something to remember, by position.
    pub events: BTreeMap<u64, EventState>,
    /// Dead letters, by event position.
    pub dead_letters: Vec<StoredDeadLetter>,
}

/// One change to subscription state; a batch of them is committed
/// atomically and durably by [`Store::commit_subscriptions`](crate::store::Store).
#[derive(Clone, Debug, PartialEq)]
pub enum SubscriptionChange {
    /// Moves the position forward to `position` (never back: a lower one
    /// leaves it) and forgets the event states at or before it.
    Advance {
        /// The subscription id.
        id: String,
        /// The new position.
        position: u64,
    },
    /// Records an event's state (the event is after the position).
    Event {
        /// The subscription id.
        id: String,
        /// The event's log position.
        seq: u64,
        /// Its state.
        state: EventState,
    },
    /// Adds or replaces a dead letter, and forgets the event's state.
    DeadLetter {
        /// The subscription id.
        id: String,
        /// The dead letter.
        letter: StoredDeadLetter,
    },
    /// Removes a dead letter (replayed and acknowledged).
    RemoveDeadLetter {
        /// The subscription id.
        id: String,
        /// The event's log position.
        seq: u64,
    },
    /// Sets the position, back or forward, and forgets every event state
    /// (dead letters stay).
    Seek {
        /// The subscription id.
        id: String,
        /// The new position.
        position: u64,
    },
}

impl SubscriptionChange {
    /// The subscription the change is for.
    pub fn id(&self) -> &str {
        match self {
            Self::Advance { id, .. }
            | Self::Event { id, .. }
            | Self::DeadLetter { id, .. }
            | Self::RemoveDeadLetter { id, .. }
            | Self::Seek { id, .. } => id,
        }
    }
}

/// The right of this process to dispatch one subscription, from
/// [`Store::subscription_lease`](crate::store::Store::subscription_lease).
/// An engine this process alone writes grants it at once and for good; a
/// shared engine (PostgreSQL replicas) grants it to one process at a time,
/// and may take it back (a lost session). Dropping the lease lets go.
pub struct SubscriptionLease {
    held: tokio::sync::watch::Receiver<bool>,
    exclusive: bool,
    /// Keeps the grant alive; dropped, it lets go.
    _grant: Box<dyn Send + Sync>,
}

impl SubscriptionLease {
    /// A lease held from the start and never lost (one process per store).
    pub fn granted() -> Self {
        let (sender, held) = tokio::sync::watch::channel(true);
        Self {
            held,
            exclusive: true,
            _grant: Box::new(sender),
        }
    }

    /// A lease contended with other processes: `held` says when this one
    /// holds it; `grant` lets go when dropped.
    pub fn contended(
        held: tokio::sync::watch::Receiver<bool>,
        grant: impl Send + Sync + 'static,
    ) -> Self {
        Self {
            held,
            exclusive: false,
            _grant: Box::new(grant),
        }
    }

    /// Whether this process holds the lease now.
    pub fn is_held(&self) -> bool {
        *self.held.borrow()
    }

    /// Whether no other process ever wants it (so there is no reason to
    /// let go of it while idle).
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    /// Waits until the lease is held (or, with `false`, lost). Never
    /// returns if the grant has ended without reaching that state.
    pub async fn until(&mut self, held: bool) {
        if self.held.wait_for(|now| *now == held).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
