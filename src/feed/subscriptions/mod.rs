//! Subscriptions: named readers of the change log whose state the store
//! keeps, shared by the streams open on them. [`Subscriptions`] serves the
//! `SubscriptionService` calls; each subscription in use has one
//! [`dispatcher`] task (started by the first call that needs it, ended by
//! delete or shutdown) that owns its state in memory and commits it, behind
//! a [`gate`] that runs it only while this process holds the
//! subscription's lease (replicas sharing a store take turns).
//!
//! A subscription is a watch that remembers: its events are chosen by the
//! same [`Selection`] over the same tail, and its positions are the same
//! cursors.

mod dispatcher;
mod gate;

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};
use tokio_stream::{Stream, StreamExt as _};

pub(crate) use self::dispatcher::StreamItem;
use self::dispatcher::{Command, Status};
use super::{Feed, Shared, cursor::Cursor, selection::Selection};
use crate::{
    domain::{
        Caller, DomainError, filter, name as release_name, standing_query,
        subscription::{self as rules, NewSubscription},
    },
    proto::v1::{
        CreateSubscriptionRequest, DeadLetter, ListDeadLettersRequest, ListDeadLettersResponse,
        ListSubscriptionsRequest, ListSubscriptionsResponse, ReplayDeadLettersRequest,
        SeekSubscriptionRequest, StreamSubscriptionRequest, Subscription,
        seek_subscription_request::Target, subscription::Start,
        watch_press_releases_request::Start as WatchStart,
    },
    store::{Store, SubscriptionRecord},
};

/// Commands a dispatcher may have queued.
const COMMAND_DEPTH: usize = 1_024;

/// The running dispatchers, by subscription id.
#[derive(Default)]
pub(super) struct Dispatchers {
    running: AsyncMutex<HashMap<String, mpsc::Sender<Command>>>,
    /// Held while a subscription is created, so that concurrent creates
    /// cannot pass the limit together.
    creating: AsyncMutex<()>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    next_stream: AtomicU64,
}

/// The `SubscriptionService` over the feed.
#[derive(Clone)]
pub struct Subscriptions {
    shared: Arc<Shared>,
}

impl Feed {
    /// The subscriptions over this feed's change log.
    pub fn subscriptions(&self) -> Subscriptions {
        Subscriptions {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Subscriptions {
    fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// Creates a subscription.
    pub async fn create(
        &self,
        request: CreateSubscriptionRequest,
        caller: &Caller,
    ) -> Result<Subscription, DomainError> {
        let NewSubscription {
            subscription,
            start,
            ..
        } = rules::validate_new(request, caller)?;
        let feed = Feed {
            shared: Arc::clone(&self.shared),
        };
        let start = feed
            .start_position(start.map(|start| match start {
                Start::AfterCursor(cursor) => WatchStart::AfterCursor(cursor),
                Start::Position(position) => WatchStart::Position(position),
                Start::StartTime(time) => WatchStart::StartTime(time),
            }))
            .await
            .map_err(|error| prefix_fields(error, "subscription."))?;
        let record = SubscriptionRecord {
            subscription: Some(subscription.clone()),
            start,
        };
        let limit = self.shared.settings.max_subscriptions;
        let _creating = self.shared.dispatchers.creating.lock().await;
        if self.store().subscriptions("", limit).await?.len() >= limit {
            return Err(DomainError::ResourceExhausted(format!(
                "the server has reached its limit of {limit} subscriptions; delete one first"
            )));
        }
        let created = self.store().create_subscription(&record, start).await?;
        if !created {
            return Err(DomainError::AlreadyExists {
                name: subscription.name.clone(),
                message: format!("{} already exists", subscription.name),
            });
        }
        let status = Status {
            position: start,
            backlog: self.head().saturating_sub(start),
            ..Status::default()
        };
        Ok(self.with_status(subscription, status))
    }

    /// Gets a subscription with where it stands.
    pub async fn get(&self, name: &str) -> Result<Subscription, DomainError> {
        let id = rules::parse_name("name", name)?.to_string();
        let (record, state) = self.load(&id).await?;
        let subscription = record.subscription.unwrap_or_default();
        let running = self.running(&id).await;
        let status = match running {
            Some(commands) => {
                let (reply, answer) = oneshot::channel();
                match commands.send(Command::Status { reply }).await {
                    Ok(()) => answer.await.ok(),
                    Err(_) => None,
                }
            }
            None => None,
        };
        let status = status.unwrap_or(Status {
            position: state.position,
            outstanding: 0,
            backlog: self.head().saturating_sub(state.position),
            dead_letters: state.dead_letters.len() as u64,
            streams: 0,
        });
        Ok(self.with_status(subscription, status))
    }

    /// Lists subscriptions by name.
    pub async fn list(
        &self,
        request: ListSubscriptionsRequest,
    ) -> Result<ListSubscriptionsResponse, DomainError> {
        let size = rules::page_size("page_size", request.page_size)?;
        let after = rules::decode_subscriptions_token(&request.page_token)?;
        let records = self.store().subscriptions(&after, size + 1).await?;
        let more = records.len() > size;
        let subscriptions: Vec<Subscription> = records
            .into_iter()
            .take(size)
            .filter_map(|record| record.subscription)
            .collect();
        let next_page_token = match (more, subscriptions.last()) {
            (true, Some(last)) => {
                rules::encode_token(last.name.strip_prefix(rules::PREFIX).unwrap_or_default())
            }
            _ => String::new(),
        };
        Ok(ListSubscriptionsResponse {
            subscriptions,
            next_page_token,
        })
    }

    /// Deletes a subscription; its streams end.
    pub async fn delete(&self, name: &str, caller: &Caller) -> Result<(), DomainError> {
        let id = rules::parse_name("name", name)?.to_string();
        let mut running = self.shared.dispatchers.running.lock().await;
        self.check_owner(&id, caller, "deleting").await?;
        if let Some(commands) = running.remove(&id) {
            let (reply, answer) = oneshot::channel();
            if commands.send(Command::Delete { reply }).await.is_ok() {
                let _ = answer.await;
            }
        }
        let deleting = id.clone();
        let deleted = self.store().delete_subscription(&deleting).await?;
        drop(running);
        if !deleted {
            return Err(not_found(&id));
        }
        Ok(())
    }

    /// Moves a subscription to a cursor, a time, the beginning or now.
    pub async fn seek(
        &self,
        request: SeekSubscriptionRequest,
        caller: &Caller,
    ) -> Result<Subscription, DomainError> {
        let id = rules::parse_name("subscription", &request.subscription)?.to_string();
        self.check_owner(&id, caller, "seeking").await?;
        let start = match request.target {
            None => return Err(DomainError::invalid("target", "is required")),
            Some(Target::AfterCursor(cursor)) => WatchStart::AfterCursor(cursor),
            Some(Target::Time(time)) => WatchStart::StartTime(time),
            Some(Target::Position(position)) => WatchStart::Position(position),
        };
        let feed = Feed {
            shared: Arc::clone(&self.shared),
        };
        // A seek's time is `time`, not a watch's `start_time`.
        let position = feed.start_position(Some(start)).await.map_err(|error| {
            map_fields(error, |field| match field {
                "start_time" => "time".into(),
                other => other.into(),
            })
        })?;
        let commands = self.dispatcher(&id).await?;
        let (reply, answer) = oneshot::channel();
        commands
            .send(Command::Seek { position, reply })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())??;
        self.get(&request.subscription).await
    }

    /// Lists a subscription's dead letters.
    pub async fn dead_letters(
        &self,
        request: ListDeadLettersRequest,
    ) -> Result<ListDeadLettersResponse, DomainError> {
        let id = rules::parse_name("subscription", &request.subscription)?.to_string();
        let size = rules::page_size("page_size", request.page_size)?;
        let after = rules::decode_dead_letters_token(&request.page_token)?;
        let (_, state) = self.load(&id).await?;
        let store_id = self.store().store_id();
        let mut letters: Vec<_> = state
            .dead_letters
            .into_iter()
            .filter(|letter| letter.seq > after)
            .collect();
        letters.sort_by_key(|letter| letter.seq);
        let more = letters.len() > size;
        letters.truncate(size);
        let next_page_token = match (more, letters.last()) {
            (true, Some(last)) => rules::encode_token(&last.seq.to_string()),
            _ => String::new(),
        };
        let dead_letters = letters
            .into_iter()
            .map(|letter| DeadLetter {
                cursor: Cursor {
                    store_id,
                    seq: letter.seq,
                }
                .encode(),
                press_release: uuid::Uuid::from_slice(&letter.release_id)
                    .map(|id| release_name::format(&id))
                    .unwrap_or_default(),
                r#type: letter.event_type,
                delivery_attempts: letter.deliveries as i32,
                dead_letter_time: letter.time,
                replaying: letter.replaying,
            })
            .collect();
        Ok(ListDeadLettersResponse {
            dead_letters,
            next_page_token,
        })
    }

    /// Delivers dead letters again; how many.
    pub async fn replay(&self, request: ReplayDeadLettersRequest) -> Result<i32, DomainError> {
        let id = rules::parse_name("subscription", &request.subscription)?.to_string();
        let store_id = self.store().store_id();
        let seqs = if request.cursors.is_empty() {
            None
        } else {
            let mut seqs = Vec::with_capacity(request.cursors.len());
            for (i, text) in request.cursors.iter().enumerate() {
                let cursor = Cursor::decode(text)
                    .ok()
                    .filter(|cursor| cursor.store_id == store_id)
                    .ok_or_else(|| {
                        DomainError::invalid(
                            format!("cursors[{i}]"),
                            "is not a dead letter's cursor of this server",
                        )
                    })?;
                seqs.push(cursor.seq);
            }
            Some(seqs)
        };
        let commands = self.dispatcher(&id).await?;
        let (reply, answer) = oneshot::channel();
        commands
            .send(Command::Replay { seqs, reply })
            .await
            .map_err(|_| gone())?;
        let replayed = answer.await.map_err(|_| gone())??;
        Ok(replayed as i32)
    }

    /// Opens a stream on the subscription the first request names; the
    /// rest of `requests` carry acks and nacks.
    pub async fn stream(
        &self,
        first: StreamSubscriptionRequest,
        requests: impl Stream<Item = StreamSubscriptionRequest> + Send + 'static,
    ) -> Result<SubscriptionStream, DomainError> {
        let id = rules::parse_name("subscription", &first.subscription)?.to_string();
        let max = match first.max_outstanding_events {
            n if (1..=rules::MAX_OUTSTANDING).contains(&n) => n as usize,
            _ => {
                return Err(DomainError::invalid(
                    "max_outstanding_events",
                    "must be between 1 and 10000 in the first request",
                ));
            }
        };
        let commands = self.dispatcher(&id).await?;
        let stream = self
            .shared
            .dispatchers
            .next_stream
            .fetch_add(1, Ordering::Relaxed);
        // Room for every event it may hold plus as many confirmations.
        let (sender, receiver) = mpsc::channel(2 * max + 16);
        let (reply, attached) = oneshot::channel();
        commands
            .send(Command::Attach {
                stream,
                sender,
                max,
                limit: self.shared.settings.max_subscription_streams,
                reply,
            })
            .await
            .map_err(|_| gone())?;
        attached.await.map_err(|_| gone())??;
        let first_acks = Command::Requests {
            stream,
            acks: first.ack_ids,
            nacks: first.nack_ids,
            max: None,
        };
        let forwarding = commands.clone();
        tokio::spawn(async move {
            if forwarding.send(first_acks).await.is_err() {
                return;
            }
            let mut requests = std::pin::pin!(requests);
            while let Some(request) = requests.next().await {
                let max = match request.max_outstanding_events {
                    n if (1..=rules::MAX_OUTSTANDING).contains(&n) => Some(n as usize),
                    _ => None,
                };
                let command = Command::Requests {
                    stream,
                    acks: request.ack_ids,
                    nacks: request.nack_ids,
                    max,
                };
                if forwarding.send(command).await.is_err() {
                    return;
                }
            }
            let _ = forwarding.send(Command::Gone { stream }).await;
        });
        Ok(SubscriptionStream {
            receiver,
            gone: Some((commands, stream)),
        })
    }

    /// The dispatcher of a subscription (its gate), started if it is not
    /// running.
    async fn dispatcher(&self, id: &str) -> Result<mpsc::Sender<Command>, DomainError> {
        let mut running = self.shared.dispatchers.running.lock().await;
        if let Some(commands) = running.get(id)
            && !commands.is_closed()
        {
            return Ok(commands.clone());
        }
        // Refused at once when it does not exist (the gate loads it when it
        // holds the lease).
        if self.store().subscription(id).await?.is_none() {
            return Err(not_found(id));
        }
        let (commands, receiver) = mpsc::channel(COMMAND_DEPTH);
        let task = tokio::spawn(gate::run(
            Arc::clone(&self.shared),
            id.to_string(),
            receiver,
            commands.downgrade(),
        ));
        {
            let mut tasks = self
                .shared
                .dispatchers
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            tasks.retain(|task| !task.is_finished());
            tasks.push(task);
        }
        running.insert(id.to_string(), commands.clone());
        Ok(commands)
    }

    async fn running(&self, id: &str) -> Option<mpsc::Sender<Command>> {
        let running = self.shared.dispatchers.running.lock().await;
        running.get(id).filter(|c| !c.is_closed()).cloned()
    }

    /// Whether `caller` may seek or delete subscription `id` (which must
    /// exist).
    async fn check_owner(&self, id: &str, caller: &Caller, what: &str) -> Result<(), DomainError> {
        let record: SubscriptionRecord = self
            .store()
            .subscription(id)
            .await?
            .ok_or_else(|| not_found(id))?;
        rules::check_owner(
            record
                .subscription
                .as_ref()
                .unwrap_or(&Subscription::default()),
            caller,
            what,
        )
    }

    async fn load(
        &self,
        id: &str,
    ) -> Result<(SubscriptionRecord, crate::store::SubscriptionState), DomainError> {
        let record = self.store().subscription(id).await?;
        let state = self.store().subscription_state(id).await?;
        match (record, state) {
            (Some(record), Some(state)) => Ok((record, state)),
            _ => Err(not_found(id)),
        }
    }

    fn head(&self) -> u64 {
        *self.shared.durable_head.borrow()
    }

    /// The resource with its output-only state filled in.
    fn with_status(&self, mut subscription: Subscription, status: Status) -> Subscription {
        subscription.acked_cursor = Cursor {
            store_id: self.store().store_id(),
            seq: status.position,
        }
        .encode();
        subscription.outstanding_events = status.outstanding as i64;
        subscription.backlog = status.backlog as i64;
        subscription.dead_letter_count = status.dead_letters as i64;
        subscription
    }
}

/// Waits for every dispatcher to end (they end when the feed stops).
pub(super) async fn join(dispatchers: &Dispatchers) {
    let tasks: Vec<_> = std::mem::take(
        &mut *dispatchers
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for task in tasks {
        if let Err(error) = task.await {
            tracing::error!(%error, "a subscription's dispatcher failed");
        }
    }
}

/// The server's end of a StreamSubscription stream.
pub struct SubscriptionStream {
    receiver: mpsc::Receiver<StreamItem>,
    /// Tells the dispatcher when the stream is dropped.
    gone: Option<(mpsc::Sender<Command>, u64)>,
}

impl Stream for SubscriptionStream {
    type Item = StreamItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StreamItem>> {
        self.receiver.poll_recv(cx)
    }
}

impl Drop for SubscriptionStream {
    fn drop(&mut self) {
        if let Some((commands, stream)) = self.gone.take() {
            // If the queue is full the dispatcher finds the stream closed at
            // its next tick.
            let _ = commands.try_send(Command::Gone { stream });
        }
    }
}

/// The events a subscription delivers: its filter and query, as a watch's.
fn selection_of(shared: &Shared, record: &SubscriptionRecord) -> Result<Selection, DomainError> {
    let subscription = record.subscription.clone().unwrap_or_default();
    let query = filter::to_query(subscription.filter.as_ref(), "filter")?;
    let text = match subscription.query.as_str() {
        "" => None,
        text => {
            let (parsed, standing) = standing_query(text)?;
            Some(shared.watchers.queries.open(standing, parsed))
        }
    };
    Ok(Selection::new(query, text, false))
}

fn not_found(id: &str) -> DomainError {
    DomainError::NotFound {
        name: rules::name(id),
    }
}

fn gone() -> DomainError {
    DomainError::Unavailable(
        "the subscription stopped (deleted, or the server is shutting down)".into(),
    )
}

/// The same error with its fields under `prefix`.
fn prefix_fields(error: DomainError, prefix: &str) -> DomainError {
    map_fields(error, |field| format!("{prefix}{field}"))
}

/// The same error with its fields renamed by `rename`.
fn map_fields(error: DomainError, rename: impl Fn(&str) -> String) -> DomainError {
    match error {
        DomainError::InvalidArgument(violations) => DomainError::InvalidArgument(
            violations
                .into_iter()
                .map(|mut v| {
                    v.field = rename(&v.field);
                    v
                })
                .collect(),
        ),
        other => other,
    }
}
