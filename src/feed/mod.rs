//! Readers of the change log. [`Feed`] serves `WatchPressReleases`: each
//! stream is a task that reads the log at its own pace, up to the durable
//! head the writer publishes, and hands events to its consumer through a
//! small bounded buffer; new commits only wake it. [`embargo`] publishes
//! embargoed releases when their time comes. [`Subscriptions`] are watches
//! whose position and acknowledgements the store keeps, shared by the
//! streams open on them.
//!
//! Nothing here writes press releases to the store directly (subscriptions
//! write only their own state), and no reader is ever handed a
//! sled subscriber or an unbounded queue: a stalled consumer holds at most
//! its buffer and one chunk of events, and slows nobody else.

pub mod cursor;
pub mod embargo;
mod queries;
mod selection;
mod subscriptions;
mod tail;
mod watch;

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::sync::{mpsc, watch as tokio_watch};
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;

use crate::{
    domain::{Caller, DomainError, filter, standing_query, validate},
    proto::v1::{
        StartPosition, WatchPressReleasesRequest, WatchPressReleasesResponse,
        watch_press_releases_request::Start,
    },
    search::SearchIndex,
    store::{Store, Writer},
};
use cursor::Cursor;
use selection::Selection;
pub use subscriptions::{SubscriptionStream, Subscriptions};

/// How watch streams behave.
#[derive(Clone, Debug)]
pub struct FeedSettings {
    /// A Progress is sent when nothing else was sent for this long.
    pub progress_interval: Duration,
    /// Messages a stream may hold for a slow consumer.
    pub buffer: usize,
    /// Most streams open at once.
    pub max_watchers: usize,
    /// Most streams open at once for one API key.
    pub max_watchers_per_key: usize,
    /// Most subscriptions kept.
    pub max_subscriptions: usize,
    /// Most streams open at once on one subscription.
    pub max_subscription_streams: usize,
}

/// Longest a stream's start waits for this replica's head to reach the
/// shared head it just read (the writer forwards it at once; this only
/// bounds a stuck forwarder).
const HEAD_WAIT: Duration = Duration::from_secs(2);

/// One item of a watch stream.
pub type WatchItem = Result<WatchPressReleasesResponse, DomainError>;

/// Serves watch streams over a store's change log.
#[derive(Clone)]
pub struct Feed {
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<dyn Store>,
    /// Answers, for history, which releases match a stream's query.
    search: SearchIndex,
    durable_head: tokio_watch::Receiver<u64>,
    /// The recent changes, read once for all streams.
    tail: Arc<tail::Tail>,
    /// How far the tail has read; streams read up to here.
    tail_head: tokio_watch::Receiver<u64>,
    /// The task that fills the tail, awaited at shutdown.
    tail_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    settings: FeedSettings,
    stop: CancellationToken,
    watchers: WatcherRegistry,
    /// The subscriptions in use.
    dispatchers: subscriptions::Dispatchers,
}

impl Feed {
    /// A feed over `store`, following the writer's durable head. Streams end
    /// with UNAVAILABLE once `stop` is cancelled.
    pub fn new(
        store: Arc<dyn Store>,
        writer: &Writer,
        search: SearchIndex,
        settings: FeedSettings,
        stop: CancellationToken,
        watchers: WatcherRegistry,
    ) -> Self {
        let durable_head = writer.durable_head();
        let tail = Arc::new(tail::Tail::default());
        let (tail_sender, tail_head) = tokio_watch::channel(*durable_head.borrow());
        let tail_task = tokio::spawn(tail::follow(
            Arc::clone(&tail),
            Arc::clone(&store),
            durable_head.clone(),
            tail_sender,
            watchers.clone(),
            stop.clone(),
        ));
        Self {
            shared: Arc::new(Shared {
                store,
                search,
                durable_head,
                tail,
                tail_head,
                tail_task: Mutex::new(Some(tail_task)),
                settings,
                stop,
                watchers,
                dispatchers: subscriptions::Dispatchers::default(),
            }),
        }
    }

    /// Waits for the feed's own tasks to end (they end when `stop` is
    /// cancelled): the subscriptions' (which commit their last acks first)
    /// and the tail's.
    pub async fn join(&self) {
        subscriptions::join(&self.shared.dispatchers).await;
        let task = self
            .shared
            .tail_task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task
            && let Err(error) = task.await
        {
            tracing::error!(%error, "the change log's tail reader failed");
        }
    }

    /// Starts a watch stream for `caller`.
    pub async fn watch(
        &self,
        request: WatchPressReleasesRequest,
        caller: &Caller,
    ) -> Result<WatchStream, DomainError> {
        let query = filter::to_query(request.filter.as_ref(), "filter")?;
        let text = match request.query.as_str() {
            "" => None,
            text => {
                let (parsed, standing) = standing_query(text)?;
                Some(self.shared.watchers.queries.open(standing, parsed))
            }
        };
        if request.highlight && text.is_none() {
            return Err(DomainError::invalid(
                "highlight",
                "needs a query: highlights mark the query's words",
            ));
        }
        let start = self.start_position(request.start).await?;
        let (sender, receiver) = mpsc::channel(self.shared.settings.buffer.max(1));
        let stats = self
            .shared
            .watchers
            .register(start, &caller.name, &self.shared.settings)?;
        let task = watch::Reader {
            shared: Arc::clone(&self.shared),
            selection: Selection::new(query, text, request.highlight),
            start,
            sender,
            stats: Arc::clone(&stats),
        };
        tokio::spawn(task.run());
        Ok(WatchStream { receiver, stats })
    }

    /// Resolves where a stream starts: it delivers what comes after this
    /// log position.
    async fn start_position(&self, start: Option<Start>) -> Result<u64, DomainError> {
        if self.shared.store.followed_head().is_some() {
            // A replica of a shared store: learn the head now, so that what
            // another replica acknowledged before this call (a cursor it
            // issued, say) is within this stream's reach from the start.
            let latest = self.shared.store.latest_head().await?;
            let mut durable = self.shared.durable_head.clone();
            let _ = tokio::time::timeout(HEAD_WAIT, durable.wait_for(|head| *head >= latest)).await;
        }
        let durable = *self.shared.durable_head.borrow();
        match start {
            None => Ok(durable),
            Some(Start::Position(position)) => match StartPosition::try_from(position) {
                Ok(StartPosition::Beginning) => Ok(0),
                Ok(StartPosition::Now | StartPosition::Unspecified) => Ok(durable),
                Err(_) => Err(DomainError::invalid(
                    "position",
                    format!("unknown value {position}"),
                )),
            },
            Some(Start::StartTime(time)) => {
                if !validate::is_valid_time(&time) {
                    return Err(DomainError::invalid(
                        "start_time",
                        "must be a valid timestamp between 0001-01-01 and 9999-12-31",
                    ));
                }
                Ok(self.shared.store.log_position_at(&time).await?.min(durable))
            }
            Some(Start::AfterCursor(text)) => {
                let cursor = Cursor::decode(&text).map_err(|_| {
                    DomainError::invalid("after_cursor", "is not a cursor from this service")
                })?;
                if cursor.store_id != self.shared.store.store_id() {
                    return Err(DomainError::FailedPrecondition(
                        "the cursor was issued by another Pressroom store; start again from the beginning"
                            .into(),
                    ));
                }
                if cursor.seq > durable {
                    return Err(DomainError::FailedPrecondition(format!(
                        "the cursor is ahead of this server's change log (at {durable}); \
                         the store may have been restored from an older backup: start again from the beginning"
                    )));
                }
                Ok(cursor.seq)
            }
        }
    }
}

/// The consumer's end of a watch stream.
pub struct WatchStream {
    receiver: mpsc::Receiver<WatchItem>,
    stats: Arc<WatcherStats>,
}

impl Stream for WatchStream {
    type Item = WatchItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchItem>> {
        let polled = self.receiver.poll_recv(cx);
        if let Poll::Ready(Some(item)) = &polled {
            self.stats.taken(item);
        }
        polled
    }
}

pub use queries::QueryStats;

/// The watch streams that are open, and what each holds.
#[derive(Clone, Default)]
pub struct WatcherRegistry {
    streams: Arc<Mutex<HashMap<u64, Arc<WatcherStats>>>>,
    next_id: Arc<AtomicU64>,
    /// The text queries of the open streams.
    queries: queries::OpenQueries,
    /// Subscriptions being served (they read the tail as streams do).
    subscribers: Arc<AtomicUsize>,
}

/// What one watch stream holds and how far it has read.
#[derive(Debug, Default)]
pub struct WatcherStats {
    id: u64,
    /// The API key's name.
    key: String,
    position: AtomicU64,
    buffered_messages: AtomicUsize,
    buffered_bytes: AtomicUsize,
}

/// A snapshot of one stream's [`WatcherStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatcherSnapshot {
    /// Log position read up to.
    pub position: u64,
    /// Messages read from the log but not yet taken by the transport.
    pub buffered_messages: usize,
    /// Their encoded size.
    pub buffered_bytes: usize,
}

impl WatcherRegistry {
    /// Every open stream.
    pub fn snapshot(&self) -> Vec<WatcherSnapshot> {
        let streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<_> = streams
            .values()
            .map(|s| {
                (
                    s.id,
                    WatcherSnapshot {
                        position: s.position.load(Ordering::Relaxed),
                        buffered_messages: s.buffered_messages.load(Ordering::Relaxed),
                        buffered_bytes: s.buffered_bytes.load(Ordering::Relaxed),
                    },
                )
            })
            .collect();
        out.sort_by_key(|(id, _)| *id);
        out.into_iter().map(|(_, snapshot)| snapshot).collect()
    }

    /// How the open streams' text queries stand, and what matching changes
    /// against them has cost.
    pub fn queries(&self) -> QueryStats {
        self.queries.stats()
    }

    /// Whether the tail should keep records: a watch stream or a
    /// subscription reads them.
    fn reads_records(&self) -> bool {
        self.subscribers.load(Ordering::Relaxed) > 0 || self.active() > 0
    }

    fn subscriber_started(&self) {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
    }

    fn subscriber_ended(&self) {
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
    }

    /// How many streams are open.
    pub fn active(&self) -> usize {
        self.streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Registers a stream, unless a limit is reached.
    fn register(
        &self,
        position: u64,
        key: &str,
        settings: &FeedSettings,
    ) -> Result<Arc<WatcherStats>, DomainError> {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if streams.len() >= settings.max_watchers {
            return Err(DomainError::ResourceExhausted(format!(
                "the server has reached its limit of {} watch streams; retry later",
                settings.max_watchers
            )));
        }
        let of_key = streams.values().filter(|s| s.key == key).count();
        if of_key >= settings.max_watchers_per_key {
            return Err(DomainError::ResourceExhausted(format!(
                "the key {key:?} has reached its limit of {} watch streams",
                settings.max_watchers_per_key
            )));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let stats = Arc::new(WatcherStats {
            id,
            key: key.to_string(),
            position: AtomicU64::new(position),
            ..Default::default()
        });
        streams.insert(id, Arc::clone(&stats));
        Ok(stats)
    }

    fn unregister(&self, stats: &WatcherStats) {
        self.streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&stats.id);
    }
}

impl WatcherStats {
    fn queued(&self, item: &WatchItem) {
        self.buffered_messages.fetch_add(1, Ordering::Relaxed);
        self.buffered_bytes
            .fetch_add(size_of_item(item), Ordering::Relaxed);
    }

    fn taken(&self, item: &WatchItem) {
        self.buffered_messages.fetch_sub(1, Ordering::Relaxed);
        self.buffered_bytes
            .fetch_sub(size_of_item(item), Ordering::Relaxed);
    }
}

fn size_of_item(item: &WatchItem) -> usize {
    use prost::Message as _;
    item.as_ref().map(|m| m.encoded_len()).unwrap_or(0)
}
