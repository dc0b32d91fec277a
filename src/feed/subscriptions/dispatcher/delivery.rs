//! Delivery: handing ready events to the streams with room, and what
//! settles or takes back a delivery (acks, nacks, expired deadlines,
//! streams going away, dead letters, seeks and replays), with the ack ids
//! that name a delivery.

use std::collections::HashMap;

use tokio::time::Instant;
use uuid::Uuid;

use super::{Dispatcher, EVENTS_PER_MESSAGE, Key, Slot};
use crate::{
    feed::cursor::Cursor,
    proto::{
        self,
        v1::{EventType, press_release::State},
        wire::{PressReleaseEvent, ReceivedEvent, StreamSubscriptionResponse},
    },
    store::{EventState, StoreError, StoredDeadLetter, SubscriptionChange},
    telemetry,
};

impl Dispatcher {
    /// Hands ready events to the streams with room, in turn: each stream
    /// takes up to a message's worth (or its room) before the next one's
    /// turn, so that a read of a few hundred events goes out in full
    /// messages rather than a few events to every stream; the stream after
    /// the last one served goes first in the next round.
    pub(super) async fn dispatch(&mut self) {
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

    /// The event an ack id names, if `stream` may settle it: the delivery
    /// it names is the latest, held by that stream or by none (expired and
    /// not delivered again yet).
    pub(super) fn accepted(&self, stream: u64, id: &str) -> Option<Key> {
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
    pub(super) fn ack(&mut self, stream: u64, id: &str) -> bool {
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
    pub(super) fn release(&mut self, key: Key) {
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
    pub(super) fn gone(&mut self, stream: u64) {
        let Some(s) = self.streams.remove(&stream) else {
            return;
        };
        for key in s.held {
            self.release(key);
        }
    }

    /// Deliveries whose deadline passed are delivered again.
    pub(super) fn expire(&mut self) {
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
    pub(super) fn seek(&mut self, position: u64) {
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
    pub(super) async fn replay(&mut self, seqs: Option<Vec<u64>>) -> usize {
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
    pub(super) async fn start_replay(
        &mut self,
        letter: &StoredDeadLetter,
        deliveries: u32,
    ) -> bool {
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
