//! The task behind one subscription: it reads the change log from the
//! subscription's position (selecting events as a watch with the same
//! filter and query would), hands events to the streams open on it, takes
//! their acks and nacks, redelivers what is nacked, expired or held by a
//! stream that went away, and commits the subscription's state.
//!
//! Order per release: an event is *ready* only while it is the oldest
//! unsettled event of its release and no stream holds it, so the next event
//! of a release waits for the one before to be acknowledged (or set aside
//! as a dead letter). Releases are otherwise delivered in parallel.
//!
//! Durability: the state changes (position, acks after the position,
//! delivery counts, dead letters) gather while the previous commit is being
//! made durable and then go in one commit (group commit); an ack is
//! confirmed to its stream only once the commit holding it has returned
//! (with the stream's next events, or alone).
//! One commit is in flight at a time, so commits land in order. A delivery
//! count is committed by the first tick's commit (once a second) that finds
//! its event still unacknowledged a tick after the delivery: a crash within
//! those one to two seconds loses it, so such an event's next delivery
//! attempt is numbered as if that delivery had not been made (it is still
//! delivered again). Events acked within a second never cost a write for
//! their count.
//!
//! The work is split by job: [`reading`] reads the log ahead into slots,
//! [`delivery`] hands events to streams and settles them (acks, nacks,
//! expiry, seeks, replays of dead letters), and [`commits`] makes the
//! state durable and confirms acks once it is.

mod commits;
mod delivery;
mod reading;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Duration,
};

use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};
use uuid::Uuid;

use self::{
    commits::{AfterCommit, Committing, clone_error, commit_done},
    reading::{Reading, read_done},
};
use super::super::{Shared, selection::Selection};
use crate::{
    domain::DomainError,
    proto::{
        self,
        // Events go out with their releases as stored bytes.
        wire::{PressReleaseEvent, StreamSubscriptionResponse},
    },
    store::{
        EventState, StoredDeadLetter, SubscriptionChange, SubscriptionRecord, SubscriptionState,
    },
};

/// Most log entries read in one go.
const CHUNK_ENTRIES: usize = 256;
/// Reads of consecutive chunks in flight at once: the next chunk's
/// releases are read (from disk, when sled's cache does not hold them)
/// while the last one's events go out.
const READS_IN_FLIGHT: usize = 2;
/// Least number of unsettled events a subscription reads ahead.
const MIN_WINDOW: usize = 256;
/// Most unsettled events a subscription holds in memory.
const MAX_WINDOW: usize = 20_000;
/// How often metrics are refreshed and a position that moved past
/// unselected entries only is committed.
const TICK: Duration = Duration::from_secs(1);
/// Most events in one message to a stream: a stream's share goes out in a
/// few messages, so its consumer starts on the first while the server
/// encodes the next.
const EVENTS_PER_MESSAGE: usize = 50;
/// How long confirmations wait for events to ride with before they go in
/// a message of their own: with many streams, a message per stream per
/// commit would otherwise outnumber the events' own messages.
const CONFIRM_DELAY: Duration = Duration::from_millis(5);
/// Most queued commands taken in before the next dispatch round.
const COMMAND_BATCH: usize = 256;

/// One message to a stream, or the error that ends it.
pub(crate) type StreamItem = Result<StreamSubscriptionResponse, DomainError>;

/// What streams and the service ask of a dispatcher.
pub(crate) enum Command {
    /// A stream opened; refused if `limit` streams are open already.
    Attach {
        stream: u64,
        sender: mpsc::Sender<StreamItem>,
        max: usize,
        limit: usize,
        reply: oneshot::Sender<Result<(), DomainError>>,
    },
    /// A stream's acks and nacks (and maybe a new limit).
    Requests {
        stream: u64,
        acks: Vec<String>,
        nacks: Vec<String>,
        max: Option<usize>,
    },
    /// A stream went away.
    Gone { stream: u64 },
    /// Move to log position `position`; answered once durable.
    Seek {
        position: u64,
        reply: oneshot::Sender<Result<(), DomainError>>,
    },
    /// Replay dead letters (all with `None`); answered with how many, once
    /// durable.
    Replay {
        seqs: Option<Vec<u64>>,
        reply: oneshot::Sender<Result<usize, DomainError>>,
    },
    /// Where the subscription stands.
    Status { reply: oneshot::Sender<Status> },
    /// The subscription is being deleted: end the streams and stop.
    Delete { reply: oneshot::Sender<()> },
}

/// Where a running subscription stands.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Status {
    /// Everything up to here is settled.
    pub(crate) position: u64,
    /// Events delivered and not acknowledged.
    pub(crate) outstanding: u64,
    /// Entries not read yet, plus events read and not delivered.
    pub(crate) backlog: u64,
    /// Dead letters held.
    pub(crate) dead_letters: u64,
    /// Streams open.
    pub(crate) streams: u64,
}

/// Why a dispatcher's run ended.
pub(crate) enum Ended {
    /// Stopped by its stop token (the lease went, or the server is
    /// stopping): the commands, for whoever takes the subscription on.
    Stopped(mpsc::Receiver<Command>),
    /// Deleted, failed, or nobody can send it commands any more.
    Finished,
}

/// Which event: a regular one, or a dead letter being replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Key {
    Replay(u64),
    Event(u64),
}

/// An event read and not yet settled.
struct Slot {
    release: Uuid,
    /// The event as read, until its first delivery takes it (no copy of
    /// the release per delivery); a redelivery makes it again from the
    /// release as it is then, as a watch event carries it.
    event: Option<PressReleaseEvent>,
    /// What the event is: its type, cursor and commit time.
    kind: i32,
    cursor: String,
    commit_time: Option<proto::Timestamp>,
    deliveries: u32,
    /// The stream holding it, and until when.
    holder: Option<(u64, Instant)>,
}

/// A stream open on the subscription.
struct Stream {
    sender: mpsc::Sender<StreamItem>,
    max: usize,
    /// The events it holds now (their deadline has not passed).
    held: HashSet<Key>,
    /// The ack ids it was sent and has not acked or nacked yet, expired
    /// ones included: what it holds as it sees it, which `max` bounds.
    in_hand: HashSet<String>,
    /// Its acks that are on disk and not yet confirmed to it: they go with
    /// its next events, or alone if none are due.
    confirmations: Vec<String>,
    /// When the oldest of `confirmations` goes alone if no events took it.
    confirm_by: Option<Instant>,
}

impl Stream {
    fn room(&self) -> usize {
        self.max.saturating_sub(self.in_hand.len())
    }
}

pub(crate) struct Dispatcher {
    shared: Arc<Shared>,
    id: String,
    selection: Arc<Selection>,
    /// The log position the subscription started after.
    start: u64,
    ack_deadline: Duration,
    max_deliveries: u32,
    commands: mpsc::Receiver<Command>,
    /// Changes ack ids of earlier seeks (and incarnations) cannot touch.
    epoch: u64,
    /// Read up to here.
    read: u64,
    /// Reads started up to here (`read` when none is in flight).
    requested: u64,
    /// Event states loaded from the store, not yet passed by reading.
    loaded: BTreeMap<u64, EventState>,
    /// Unsettled events, by position.
    slots: BTreeMap<u64, Slot>,
    /// Dead letters being replayed, by position.
    replays: BTreeMap<u64, Slot>,
    /// Events no stream holds that may be delivered now.
    ready: BTreeSet<Key>,
    /// Unsettled events of each release, in order.
    by_release: HashMap<Uuid, VecDeque<u64>>,
    deadlines: BTreeSet<(Instant, Key)>,
    streams: HashMap<u64, Stream>,
    /// The stream the last event went to: the next round starts after it.
    last_served: u64,
    dead_letters: BTreeMap<u64, StoredDeadLetter>,
    /// State changes not committed yet: explicit ones, then acks after the
    /// position (committed with the next commit).
    changes: Vec<SubscriptionChange>,
    dirty: BTreeMap<u64, EventState>,
    /// Delivery counts not committed yet, made since the last tick, and
    /// those made before it (which the next tick commits).
    counts: BTreeMap<u64, u32>,
    aged: BTreeMap<u64, u32>,
    committed_position: u64,
    /// Acks taken (stream, ack id) since the last commit started, and those
    /// of the commit in flight: confirmed once it has returned.
    acks_to_commit: Vec<(u64, String)>,
    acks_committing: Vec<(u64, String)>,
    after_commit: Vec<AfterCommit>,
    committing: Committing,
    reading: Reading,
    deleted: bool,
    /// Ends the run (the server's stop, or the lease's end).
    stop: tokio_util::sync::CancellationToken,
}

impl Dispatcher {
    /// A dispatcher for a subscription as stored.
    pub(crate) fn new(
        shared: Arc<Shared>,
        id: String,
        record: SubscriptionRecord,
        state: SubscriptionState,
        selection: Selection,
        commands: mpsc::Receiver<Command>,
    ) -> Self {
        let subscription = record.subscription.unwrap_or_default();
        let shared_stop = shared.stop.clone();
        let mut dispatcher = Self {
            shared,
            id,
            selection: Arc::new(selection),
            start: record.start,
            ack_deadline: crate::domain::subscription::ack_deadline(&subscription),
            max_deliveries: subscription.max_deliveries.max(1) as u32,
            commands,
            epoch: u64::from(rand_u32()) << 16,
            read: state.position,
            requested: state.position,
            loaded: state.events,
            slots: BTreeMap::new(),
            replays: BTreeMap::new(),
            ready: BTreeSet::new(),
            by_release: HashMap::new(),
            deadlines: BTreeSet::new(),
            streams: HashMap::new(),
            last_served: 0,
            dead_letters: BTreeMap::new(),
            changes: Vec::new(),
            dirty: BTreeMap::new(),
            counts: BTreeMap::new(),
            aged: BTreeMap::new(),
            committed_position: state.position,
            acks_to_commit: Vec::new(),
            acks_committing: Vec::new(),
            after_commit: Vec::new(),
            committing: None,
            reading: VecDeque::new(),
            deleted: false,
            stop: shared_stop,
        };
        for letter in state.dead_letters {
            dispatcher.dead_letters.insert(letter.seq, letter);
        }
        dispatcher
    }

    /// The same dispatcher, stopping when `stop` is cancelled (a child of
    /// the server's stop).
    pub(crate) fn stopping_on(mut self, stop: tokio_util::sync::CancellationToken) -> Self {
        self.stop = stop;
        self
    }

    /// Runs until the subscription is deleted or the dispatcher is stopped.
    pub(crate) async fn run(mut self) -> Ended {
        // Dead letters being replayed when the subscription was last
        // stopped are delivered again.
        let replaying: Vec<StoredDeadLetter> = self
            .dead_letters
            .values()
            .filter(|letter| letter.replaying)
            .cloned()
            .collect();
        for letter in replaying {
            self.start_replay(&letter, letter.deliveries).await;
        }
        let mut head = self.shared.tail_head.clone();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = self.stop.clone();
        loop {
            let readable = *head.borrow_and_update();
            self.start_reads(readable);
            self.commit();
            let next_deadline = self.deadlines.first().map(|(at, _)| *at);
            let next_confirmation = self.next_confirmation();
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => {
                        self.handle(command).await;
                        // What else is queued goes in before the next
                        // dispatch: one round for many streams' acks.
                        for _ in 0..COMMAND_BATCH {
                            if self.deleted {
                                break;
                            }
                            match self.commands.try_recv() {
                                Ok(command) => self.handle(command).await,
                                Err(_) => break,
                            }
                        }
                    }
                    None => break,
                },
                changed = head.changed(), if self.has_room() && self.reading.is_empty() => {
                    if changed.is_err() {
                        break;
                    }
                }
                read = read_done(&mut self.reading) => match read {
                    Ok(read) => self.take_read(read),
                    Err(error) => {
                        self.fail(&error.into()).await;
                        return Ended::Finished;
                    }
                },
                () = sleep_until(next_deadline) => self.expire(),
                () = sleep_until(next_confirmation) => {}
                done = commit_done(&mut self.committing) => {
                    if let Err(error) = self.committed(done) {
                        self.fail(&error).await;
                        return Ended::Finished;
                    }
                }
                _ = tick.tick() => self.tick(),
                () = stop.cancelled() => break,
            }
            if self.deleted {
                let name = crate::domain::subscription::name(&self.id);
                self.end_streams(|| DomainError::NotFound { name: name.clone() });
                self.clear_metrics();
                return Ended::Finished;
            }
            self.dispatch().await;
            self.confirm(false);
        }
        // Shutting down: what was acknowledged is committed first.
        self.finish_commits().await;
        self.confirm(true);
        let message = if self.shared.stop.is_cancelled() {
            "the server is shutting down; open the stream again (unacknowledged events are delivered again)"
        } else {
            "another replica dispatches this subscription now; open the stream again (unacknowledged events are delivered again)"
        };
        self.end_streams(|| DomainError::Unavailable(message.into()));
        if stop.is_cancelled() {
            Ended::Stopped(self.commands)
        } else {
            Ended::Finished
        }
    }

    /// How many unsettled events to hold at most: enough to keep every
    /// stream busy.
    fn has_room(&self) -> bool {
        if self.streams.is_empty() {
            return false;
        }
        let wanted: usize = self.streams.values().map(|s| s.max).sum();
        self.slots.len() < (wanted * 4).clamp(MIN_WINDOW, MAX_WINDOW)
    }

    /// Every event at or before this is settled.
    fn position(&self) -> u64 {
        match self.slots.keys().next() {
            Some(first) => first - 1,
            None => self.read,
        }
    }

    /// Carries out one command (the run's loop, or whoever hands the
    /// dispatcher commands that came before it started).
    pub(crate) async fn handle(&mut self, command: Command) {
        match command {
            Command::Attach {
                stream,
                sender,
                max,
                limit,
                reply,
            } => {
                if self.streams.len() >= limit {
                    let _ = reply.send(Err(DomainError::ResourceExhausted(format!(
                        "{} has reached its limit of {limit} open streams",
                        crate::domain::subscription::name(&self.id)
                    ))));
                    return;
                }
                let _ = reply.send(Ok(()));
                self.streams.insert(
                    stream,
                    Stream {
                        sender,
                        max,
                        held: HashSet::new(),
                        in_hand: HashSet::new(),
                        confirmations: Vec::new(),
                        confirm_by: None,
                    },
                );
            }
            Command::Requests {
                stream,
                acks,
                nacks,
                max,
            } => {
                if let Some(s) = self.streams.get_mut(&stream) {
                    if let Some(max) = max {
                        s.max = max;
                    }
                    for id in acks.iter().chain(&nacks) {
                        s.in_hand.remove(id);
                    }
                }
                for id in acks {
                    if self.ack(stream, &id) {
                        self.acks_to_commit.push((stream, id));
                    }
                }
                for id in nacks {
                    if let Some(key) = self.accepted(stream, &id) {
                        self.release(key);
                    }
                }
            }
            Command::Gone { stream } => self.gone(stream),
            Command::Seek { position, reply } => {
                self.seek(position);
                self.after_commit.push(Box::new(move |result| {
                    let _ = reply.send(result.as_ref().map(|_| ()).map_err(clone_error));
                }));
            }
            Command::Replay { seqs, reply } => {
                let replayed = self.replay(seqs).await;
                self.after_commit.push(Box::new(move |result| {
                    let _ = reply.send(result.as_ref().map(|_| replayed).map_err(clone_error));
                }));
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Delete { reply } => {
                self.deleted = true;
                let _ = reply.send(());
            }
        }
    }

    fn status(&self) -> Status {
        let head = *self.shared.durable_head.borrow();
        let held = self
            .slots
            .values()
            .chain(self.replays.values())
            .filter(|s| s.holder.is_some())
            .count() as u64;
        let unheld = (self.slots.len() + self.replays.len()) as u64 - held;
        Status {
            position: self.position(),
            outstanding: held,
            backlog: head.saturating_sub(self.read) + unheld,
            dead_letters: self.dead_letters.len() as u64,
            streams: self.streams.len() as u64,
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn rand_u32() -> u32 {
    let mut bytes = [0; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return std::process::id();
    }
    u32::from_le_bytes(bytes)
}
