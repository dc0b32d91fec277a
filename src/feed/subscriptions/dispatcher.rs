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

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Duration,
};

use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::Instant,
};
use uuid::Uuid;

use super::super::{
    Shared,
    cursor::Cursor,
    selection::{Indexed, Selection},
};
use crate::{
    domain::DomainError,
    proto::{
        self,
        v1::{EventType, press_release::State},
        // Events go out with their releases as stored bytes.
        wire::{PressReleaseEvent, ReceivedEvent, StreamSubscriptionResponse},
    },
    store::{
        EventState, LogEntry, StoreError, StoredDeadLetter, SubscriptionChange, SubscriptionRecord,
        SubscriptionState,
    },
    telemetry,
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
type AfterCommit = Box<dyn FnOnce(&Result<(), DomainError>) + Send>;

/// The reads in flight, oldest first.
type Reading = VecDeque<JoinHandle<Result<Read, StoreError>>>;

/// The commit in flight, and what waits for it.
type Committing = Option<(JoinHandle<Result<(), StoreError>>, Vec<AfterCommit>)>;

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

    /// Starts reading the next chunks of entries, up to `readable`, in
    /// tasks of their own: reading releases overlaps with handing out
    /// events and taking acks. Each read covers a range of at most
    /// [`CHUNK_ENTRIES`] positions, so it returns all of the range (the log
    /// is gapless) and the next read starts where it ends.
    fn start_reads(&mut self, readable: u64) {
        while self.reading.len() < READS_IN_FLIGHT && self.has_room() && self.requested < readable {
            let (shared, selection) = (Arc::clone(&self.shared), Arc::clone(&self.selection));
            let (start, after, epoch) = (self.start, self.requested, self.epoch);
            let bound = readable.min(after + CHUNK_ENTRIES as u64);
            self.reading.push_back(tokio::spawn(async move {
                read_events(&shared, &selection, start, after, bound, epoch).await
            }));
            self.requested = bound;
        }
    }

    /// Drops the reads in flight: reading starts again after `self.read`.
    fn drop_reads(&mut self) {
        for read in self.reading.drain(..) {
            read.abort();
        }
        self.requested = self.read;
    }

    /// Takes in what a read found: a slot per event not acknowledged yet.
    fn take_read(&mut self, read: Read) {
        if read.epoch != self.epoch || read.after != self.read {
            // Read before a seek, or not where reading stands: read again.
            self.drop_reads();
            return;
        }
        for (seq, release, event) in read.events {
            let known = self.loaded.remove(&seq);
            if known.is_some_and(|state| state.acked) {
                continue;
            }
            self.slots.insert(
                seq,
                Slot {
                    release,
                    kind: event.r#type,
                    cursor: event.cursor.clone(),
                    commit_time: event.commit_time,
                    event: Some(event),
                    deliveries: known.map_or(0, |state| state.deliveries),
                    holder: None,
                },
            );
            let queue = self.by_release.entry(release).or_default();
            queue.push_back(seq);
            if queue.len() == 1 {
                self.ready.insert(Key::Event(seq));
            }
        }
        self.read = self.read.max(read.up_to);
        // Entries read past: nothing stored for them matters any more.
        self.loaded = self.loaded.split_off(&(self.read + 1));
    }

    /// Hands ready events to the streams with room, in turn: each stream
    /// takes up to a message's worth (or its room) before the next one's
    /// turn, so that a read of a few hundred events goes out in full
    /// messages rather than a few events to every stream; the stream after
    /// the last one served goes first in the next round.
    async fn dispatch(&mut self) {
        if self.ready.is_empty() {
            return;
        }
        let mut open: Vec<(u64, usize)> = self
            .streams
            .iter()
            .filter(|(_, s)| s.room() > 0 && s.sender.capacity() > 0)
            .map(|(id, s)| (*id, s.room()))
            .collect();
        if open.is_empty() {
            return;
        }
        open.sort_unstable();
        let first = open
            .iter()
            .position(|(id, _)| *id > self.last_served)
            .unwrap_or(0);
        open.rotate_left(first);
        let deadline = Instant::now() + self.ack_deadline;
        let mut batches: HashMap<u64, Vec<ReceivedEvent>> = HashMap::new();
        let mut turn = 0;
        while !open.is_empty() {
            let Some(key) = self.ready.pop_first() else {
                break;
            };
            turn %= open.len();
            let stream = open[turn].0;
            let epoch = self.epoch;
            let event = match self.event_to_send(key).await {
                Ok(Some(event)) => event,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(subscription = %self.id, error = %telemetry::chain(&error), "cannot read an event's release; trying again later");
                    self.ready.insert(key);
                    break;
                }
            };
            let Some(slot) = self.slot_mut(key) else {
                continue;
            };
            slot.deliveries += 1;
            slot.holder = Some((stream, deadline));
            let attempt = slot.deliveries;
            let received = ReceivedEvent {
                ack_id: ack_id(epoch, key, attempt),
                event: Some(event),
                delivery_attempt: attempt as i32,
            };
            if attempt > 1 {
                metrics::counter!("pressroom_subscription_redeliveries_total", "subscription" => self.id.clone())
                    .increment(1);
            }
            if let Key::Event(seq) = key {
                self.counts.insert(seq, attempt);
                self.aged.remove(&seq);
            }
            self.deadlines.insert((deadline, key));
            if let Some(s) = self.streams.get_mut(&stream) {
                s.held.insert(key);
                s.in_hand.insert(received.ack_id.clone());
            }
            self.last_served = stream;
            let batch = batches.entry(stream).or_default();
            batch.push(received);
            let full = batch.len() >= EVENTS_PER_MESSAGE;
            let mut taken = true;
            if full {
                let events = std::mem::take(batch);
                taken = self.send_events(stream, events);
            }
            let free = &mut open[turn].1;
            *free -= 1;
            if *free == 0 || !taken {
                open.remove(turn);
            } else if full {
                turn += 1;
            }
        }
        for (stream, received_events) in batches {
            if !received_events.is_empty() {
                self.send_events(stream, received_events);
            }
        }
    }

    /// Sends events to a stream, with the confirmations waiting for it;
    /// whether the stream took them (else it is gone).
    fn send_events(&mut self, stream: u64, received_events: Vec<ReceivedEvent>) -> bool {
        let sent = self.streams.get_mut(&stream).map(|s| {
            s.confirm_by = None;
            s.sender.try_send(Ok(StreamSubscriptionResponse {
                received_events,
                acknowledged_ids: std::mem::take(&mut s.confirmations),
            }))
        });
        if matches!(sent, Some(Ok(()))) {
            return true;
        }
        // Room was checked first, so the stream is gone.
        self.gone(stream);
        false
    }

    /// The event to send for a slot: the one read, on its first delivery;
    /// else made again from the release as it is now.
    async fn event_to_send(&mut self, key: Key) -> Result<Option<PressReleaseEvent>, StoreError> {
        let Some(slot) = self.slot_mut(key) else {
            return Ok(None);
        };
        if let Some(event) = slot.event.take() {
            return Ok(Some(event));
        }
        let (release, kind, cursor, commit_time) = (
            slot.release,
            slot.kind,
            slot.cursor.clone(),
            slot.commit_time,
        );
        let press_release = self.shared.store.get_encoded(&release).await?;
        let kind = match &press_release {
            Some(r) if r.state() == State::Withdrawn => EventType::Withdrawn as i32,
            _ => kind,
        };
        Ok(Some(PressReleaseEvent {
            cursor,
            r#type: kind,
            press_release: press_release.map(|r| r.bytes),
            commit_time,
            highlights: Vec::new(),
        }))
    }

    fn slot_mut(&mut self, key: Key) -> Option<&mut Slot> {
        match key {
            Key::Event(seq) => self.slots.get_mut(&seq),
            Key::Replay(seq) => self.replays.get_mut(&seq),
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

    /// The event an ack id names, if `stream` may settle it: the delivery
    /// it names is the latest, held by that stream or by none (expired and
    /// not delivered again yet).
    fn accepted(&self, stream: u64, id: &str) -> Option<Key> {
        let (epoch, key, attempt) = parse_ack_id(id)?;
        if epoch != self.epoch {
            return None;
        }
        let slot = match key {
            Key::Event(seq) => self.slots.get(&seq)?,
            Key::Replay(seq) => self.replays.get(&seq)?,
        };
        let holder_ok = match slot.holder {
            Some((holder, _)) => holder == stream,
            None => true,
        };
        (slot.deliveries == attempt && holder_ok).then_some(key)
    }

    /// Settles an acknowledged event; whether the ack was taken.
    fn ack(&mut self, stream: u64, id: &str) -> bool {
        let Some(key) = self.accepted(stream, id) else {
            return false;
        };
        let Some(slot) = self.settle(key) else {
            return false;
        };
        match key {
            Key::Event(seq) => {
                if seq > self.position() {
                    self.dirty.insert(
                        seq,
                        EventState {
                            acked: true,
                            deliveries: slot.deliveries,
                        },
                    );
                } else {
                    self.dirty.remove(&seq);
                }
                self.counts.remove(&seq);
                self.aged.remove(&seq);
            }
            Key::Replay(seq) => {
                self.dead_letters.remove(&seq);
                self.changes.push(SubscriptionChange::RemoveDeadLetter {
                    id: self.id.clone(),
                    seq,
                });
            }
        }
        true
    }

    /// Takes an event out of every structure, making the next event of its
    /// release ready.
    fn settle(&mut self, key: Key) -> Option<Slot> {
        let slot = match key {
            Key::Event(seq) => self.slots.remove(&seq)?,
            Key::Replay(seq) => self.replays.remove(&seq)?,
        };
        self.ready.remove(&key);
        if let Some((stream, deadline)) = slot.holder {
            self.deadlines.remove(&(deadline, key));
            if let Some(s) = self.streams.get_mut(&stream) {
                s.held.remove(&key);
            }
        }
        if let Key::Event(seq) = key
            && let Some(queue) = self.by_release.get_mut(&slot.release)
        {
            queue.retain(|s| *s != seq);
            match queue.front() {
                Some(next) => {
                    let next = *next;
                    if self.slots.get(&next).is_some_and(|s| s.holder.is_none()) {
                        self.ready.insert(Key::Event(next));
                    }
                }
                None => {
                    self.by_release.remove(&slot.release);
                }
            }
        }
        Some(slot)
    }

    /// Takes an event back from its holder: ready again, or a dead letter
    /// once it has been delivered `max_deliveries` times.
    fn release(&mut self, key: Key) {
        let max = self.max_deliveries;
        let Some(slot) = self.slot_mut(key) else {
            return;
        };
        let holder = slot.holder.take();
        let deliveries = slot.deliveries;
        if let Some((stream, deadline)) = holder {
            self.deadlines.remove(&(deadline, key));
            if let Some(s) = self.streams.get_mut(&stream) {
                s.held.remove(&key);
            }
        }
        if deliveries >= max {
            self.dead_letter(key);
        } else {
            self.ready.insert(key);
        }
    }

    /// Sets an event aside as a dead letter.
    fn dead_letter(&mut self, key: Key) {
        let Some(slot) = self.settle(key) else {
            return;
        };
        let seq = match key {
            Key::Event(seq) | Key::Replay(seq) => seq,
        };
        self.dirty.remove(&seq);
        self.counts.remove(&seq);
        self.aged.remove(&seq);
        let letter = StoredDeadLetter {
            seq,
            release_id: slot.release.as_bytes().to_vec(),
            event_type: slot.kind,
            deliveries: slot.deliveries,
            time: Some(proto::now()),
            replaying: false,
        };
        tracing::warn!(subscription = %self.id, seq, deliveries = slot.deliveries, "event set aside as a dead letter");
        metrics::counter!("pressroom_subscription_dead_letters_total", "subscription" => self.id.clone())
            .increment(1);
        self.dead_letters.insert(seq, letter.clone());
        self.changes.push(SubscriptionChange::DeadLetter {
            id: self.id.clone(),
            letter,
        });
    }

    /// A stream went away: what it held is delivered again.
    fn gone(&mut self, stream: u64) {
        let Some(s) = self.streams.remove(&stream) else {
            return;
        };
        for key in s.held {
            self.release(key);
        }
    }

    /// Deliveries whose deadline passed are delivered again.
    fn expire(&mut self) {
        let now = Instant::now();
        while let Some((at, key)) = self.deadlines.first().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            let holder = match key {
                Key::Event(seq) => self.slots.get(&seq).and_then(|s| s.holder),
                Key::Replay(seq) => self.replays.get(&seq).and_then(|s| s.holder),
            };
            if holder.is_some_and(|(_, deadline)| deadline == at) {
                self.release(key);
            }
        }
    }

    /// Moves to `position`: everything read is dropped, outstanding
    /// deliveries are forgotten (a new epoch makes their ack ids stale).
    fn seek(&mut self, position: u64) {
        self.epoch += 1;
        self.slots.clear();
        self.ready.retain(|key| matches!(key, Key::Replay(_)));
        self.by_release.clear();
        self.deadlines.clear();
        self.loaded.clear();
        self.dirty.clear();
        self.counts.clear();
        self.aged.clear();
        for stream in self.streams.values_mut() {
            stream.held.clear();
        }
        let replaying: Vec<u64> = self.replays.keys().copied().collect();
        for seq in replaying {
            if let Some(slot) = self.replays.get_mut(&seq) {
                slot.holder = None;
            }
            self.ready.insert(Key::Replay(seq));
        }
        self.read = position;
        self.drop_reads();
        self.committed_position = position;
        self.changes
            .retain(|change| !matches!(change, SubscriptionChange::Advance { .. }));
        self.changes.push(SubscriptionChange::Seek {
            id: self.id.clone(),
            position,
        });
    }

    /// Starts delivering dead letters again; how many.
    async fn replay(&mut self, seqs: Option<Vec<u64>>) -> usize {
        let chosen: Vec<u64> = match seqs {
            Some(seqs) => seqs
                .into_iter()
                .filter(|seq| self.dead_letters.get(seq).is_some_and(|l| !l.replaying))
                .collect(),
            None => self
                .dead_letters
                .values()
                .filter(|l| !l.replaying)
                .map(|l| l.seq)
                .collect(),
        };
        let mut replayed = 0;
        for seq in chosen {
            let Some(mut letter) = self.dead_letters.get(&seq).cloned() else {
                continue;
            };
            letter.replaying = true;
            if self.start_replay(&letter, 0).await {
                replayed += 1;
                self.dead_letters.insert(seq, letter.clone());
                self.changes.push(SubscriptionChange::DeadLetter {
                    id: self.id.clone(),
                    letter,
                });
            }
        }
        replayed
    }

    /// A replay slot for a dead letter: the release as it is now (its
    /// tombstone if withdrawn since), with the event's type.
    async fn start_replay(&mut self, letter: &StoredDeadLetter, deliveries: u32) -> bool {
        let Ok(id) = Uuid::from_slice(&letter.release_id) else {
            return false;
        };
        let release = match self.shared.store.get_encoded(&id).await {
            Ok(Some(release)) => release,
            Ok(None) => return false,
            Err(error) => {
                tracing::warn!(error = %telemetry::chain(&error), "cannot read a dead letter's release");
                return false;
            }
        };
        let kind = if release.state() == State::Withdrawn {
            EventType::Withdrawn as i32
        } else {
            letter.event_type
        };
        let event = PressReleaseEvent {
            cursor: Cursor {
                store_id: self.shared.store.store_id(),
                seq: letter.seq,
            }
            .encode(),
            r#type: kind,
            press_release: Some(release.bytes),
            commit_time: None,
            highlights: Vec::new(),
        };
        self.replays.insert(
            letter.seq,
            Slot {
                release: id,
                kind: event.r#type,
                cursor: event.cursor.clone(),
                commit_time: event.commit_time,
                event: Some(event),
                deliveries,
                holder: None,
            },
        );
        self.ready.insert(Key::Replay(letter.seq));
        true
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

    /// Starts a commit of what changed, unless one is in flight. Delivery
    /// counts wait for the tick (see the module's doc): with many events in
    /// flight, a commit per ack batch would otherwise write (and a later
    /// advance remove) a count for each of them.
    fn commit(&mut self) {
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
    fn committed(
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
    fn next_confirmation(&self) -> Option<Instant> {
        self.streams.values().filter_map(|s| s.confirm_by).min()
    }

    /// Sends the confirmations that no events took along within
    /// [`CONFIRM_DELAY`] (all of them with `now`).
    fn confirm(&mut self, now: bool) {
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
    async fn finish_commits(&mut self) {
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
    fn tick(&mut self) {
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

    fn clear_metrics(&self) {
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
    fn end_streams(&mut self, error: impl Fn() -> DomainError) {
        for (_, stream) in self.streams.drain() {
            let _ = stream.sender.try_send(Err(error()));
        }
    }

    /// A commit failed: the streams end, and the subscription is loaded
    /// again from the store by the next stream.
    async fn fail(&mut self, error: &DomainError) {
        tracing::error!(subscription = %self.id, %error, "subscription stopped");
        self.end_streams(|| clone_error(error));
    }
}

/// Events read from the log for a subscription.
struct Read {
    /// The dispatcher's epoch when the read started.
    epoch: u64,
    /// The entry it read after.
    after: u64,
    /// The last entry read.
    up_to: u64,
    /// The events selected: position, release, event.
    events: Vec<(u64, Uuid, PressReleaseEvent)>,
}

/// Reads the entries after `after` up to `bound` (a chunk of them) and
/// selects the events a subscription that started after `start` delivers.
async fn read_events(
    shared: &Shared,
    selection: &Selection,
    start: u64,
    after: u64,
    bound: u64,
    epoch: u64,
) -> Result<Read, StoreError> {
    let entries: Vec<LogEntry> = match shared.tail.range(after, bound, CHUNK_ENTRIES) {
        Some(recent) => recent.iter().map(|t| t.entry.clone()).collect(),
        None => shared.store.read_log(after, bound, CHUNK_ENTRIES).await?,
    };
    // Fewer entries than the limit: every entry up to `bound` is here.
    let whole_range = entries.len() < CHUNK_ENTRIES;
    let store_id = shared.store.store_id();
    let indexed = Indexed::default();
    let mut read = Read {
        epoch,
        after,
        up_to: after,
        events: Vec::new(),
    };
    // A selection of everything needs only a release's state: its stored
    // bytes go out as they are, never decoded (nor encoded again).
    let encoded = selection.takes_everything();
    for entry in entries {
        read.up_to = entry.seq;
        let Ok(release) = Uuid::from_slice(&entry.release_id) else {
            continue;
        };
        let event = if encoded {
            let Some((kind, version)) = selection.encoded_event_for(shared, start, &entry).await?
            else {
                continue;
            };
            PressReleaseEvent {
                cursor: Cursor {
                    store_id,
                    seq: entry.seq,
                }
                .encode(),
                r#type: kind as i32,
                press_release: Some(version.bytes),
                commit_time: entry.commit_time,
                highlights: Vec::new(),
            }
        } else {
            let Some((kind, version)) =
                selection.event_for(shared, start, &entry, &indexed).await?
            else {
                continue;
            };
            version
                .into_event(store_id, &entry, kind, Vec::new())
                .into()
        };
        read.events.push((entry.seq, release, event));
    }
    if whole_range {
        read.up_to = bound;
    }
    Ok(read)
}

/// Waits for the oldest read in flight (never, if there is none).
async fn read_done(reading: &mut Reading) -> Result<Read, StoreError> {
    let Some(task) = reading.front_mut() else {
        return std::future::pending().await;
    };
    let result = task
        .await
        .unwrap_or_else(|panic| Err(StoreError::engine(panic)));
    reading.pop_front();
    result
}

/// Waits for the commit in flight (never, if there is none).
async fn commit_done(committing: &mut Committing) -> (Result<(), StoreError>, Vec<AfterCommit>) {
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

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// An error to hand to several waiters (the domain's errors do not clone).
fn clone_error(error: &DomainError) -> DomainError {
    match error {
        DomainError::Unavailable(message) => DomainError::Unavailable(message.clone()),
        DomainError::NotFound { name } => DomainError::NotFound { name: name.clone() },
        _ => DomainError::Unavailable(
            "the subscription's state could not be saved; see the server's log".into(),
        ),
    }
}

/// `{epoch}.{seq}.{attempt}`, or `{epoch}.d{seq}.{attempt}` for a replayed
/// dead letter.
fn ack_id(epoch: u64, key: Key, attempt: u32) -> String {
    match key {
        Key::Event(seq) => format!("{epoch:x}.{seq}.{attempt}"),
        Key::Replay(seq) => format!("{epoch:x}.d{seq}.{attempt}"),
    }
}

fn parse_ack_id(id: &str) -> Option<(u64, Key, u32)> {
    let mut parts = id.split('.');
    let epoch = u64::from_str_radix(parts.next()?, 16).ok()?;
    let which = parts.next()?;
    let attempt = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    let key = match which.strip_prefix('d') {
        Some(seq) => Key::Replay(seq.parse().ok()?),
        None => Key::Event(which.parse().ok()?),
    };
    Some((epoch, key, attempt))
}

fn rand_u32() -> u32 {
    let mut bytes = [0; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return std::process::id();
    }
    u32::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_ids_round_trip_and_junk_is_refused() {
        for key in [Key::Event(7), Key::Replay(9)] {
            assert_eq!(parse_ack_id(&ack_id(0xabc, key, 3)), Some((0xabc, key, 3)));
        }
        for junk in ["", "x", "1.2", "1.2.3.4", "zz.1.1", "1.d.1", "1.-1.1"] {
            assert_eq!(parse_ack_id(junk), None, "{junk}");
        }
    }
}
