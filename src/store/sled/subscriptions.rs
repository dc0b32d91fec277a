//! Subscription state in the sled engine: definitions under `u`, positions,
//! acked runs, event states and dead letters under `v` (see [`layout`]).
//! Each call builds one atomic sled batch; the engine applies it under its
//! subscription lock (so that a commit for a subscription being deleted
//! cannot bring it back) and then syncs, sharing the sync with any other
//! batch applied meanwhile.
//!
//! Acknowledged events after the position are kept as runs of sequence
//! numbers in one value per subscription, rewritten by each commit: several
//! streams acking interleaved events leave many acks after the position,
//! and a key per ack (written, then removed once the position passes it)
//! cost two tree updates per event. An acknowledged event's delivery count
//! is not kept (it is never delivered again). Delivery counts of events not
//! acknowledged keep a key each.

use std::collections::{BTreeSet, HashMap};

use crate::store::{StoreError, SubscriptionChange, SubscriptionRecord, SubscriptionState};

use super::{
    layout,
    record::{corrupt, open, open_message, seal, seal_message},
};

/// A subscription's definition.
pub(super) fn read(db: &sled::Db, id: &str) -> Result<Option<SubscriptionRecord>, StoreError> {
    let key = layout::subscription_key(id);
    match db.get(&key).map_err(StoreError::engine)? {
        Some(value) => open_message(&key, &value).map(Some),
        None => Ok(None),
    }
}

/// Definitions after `after`, in id order.
pub(super) fn list(
    db: &sled::Db,
    after: &str,
    limit: usize,
) -> Result<Vec<SubscriptionRecord>, StoreError> {
    let mut start = layout::subscription_key(after);
    // Strictly after: the smallest key greater than `after`'s.
    start.push(0);
    db.range(start..vec![layout::SUBSCRIPTION + 1])
        .take(limit)
        .map(|entry| {
            let (key, value) = entry.map_err(StoreError::engine)?;
            open_message(&key, &value)
        })
        .collect()
}

/// The batch that creates a subscription.
pub(super) fn create(record: &SubscriptionRecord, id: &str, position: u64) -> sled::Batch {
    let mut batch = sled::Batch::default();
    batch.insert(layout::subscription_key(id), seal_message(record));
    batch.insert(
        layout::subscription_position_key(id),
        seal(&position.to_le_bytes()),
    );
    batch
}

/// The batch that deletes a subscription and all its state.
pub(super) fn delete(db: &sled::Db, id: &str) -> Result<sled::Batch, StoreError> {
    let mut batch = sled::Batch::default();
    batch.remove(layout::subscription_key(id));
    for entry in db.scan_prefix(layout::subscription_state_prefix(id)) {
        let (key, _) = entry.map_err(StoreError::engine)?;
        batch.remove(key);
    }
    Ok(batch)
}

/// A subscription's state, if it exists.
pub(super) fn state(db: &sled::Db, id: &str) -> Result<Option<SubscriptionState>, StoreError> {
    if db
        .get(layout::subscription_key(id))
        .map_err(StoreError::engine)?
        .is_none()
    {
        return Ok(None);
    }
    let mut state = SubscriptionState {
        position: position(db, id)?,
        ..Default::default()
    };
    for entry in db.scan_prefix(layout::subscription_event_key(id, b'e', None)) {
        let (key, value) = entry.map_err(StoreError::engine)?;
        let seq = layout::seq_from_subscription_key(&key).ok_or_else(|| corrupt(&key))?;
        state.events.insert(seq, open_message(&key, &value)?);
    }
    for (start, end) in acked(db, id)? {
        for seq in start..=end {
            let event = state.events.entry(seq).or_default();
            event.acked = true;
        }
    }
    for entry in db.scan_prefix(layout::subscription_event_key(id, b'd', None)) {
        let (key, value) = entry.map_err(StoreError::engine)?;
        state.dead_letters.push(open_message(&key, &value)?);
    }
    Ok(Some(state))
}

/// The acknowledged events after the position, as stored: runs of
/// sequence numbers, each as its distance from the end of the run before
/// (the first from 0) and its length less one.
#[derive(Clone, PartialEq, prost::Message)]
struct AckedRuns {
    #[prost(uint64, repeated, tag = "1")]
    runs: Vec<u64>,
}

/// A subscription's acknowledged runs `(first, last)`, in order.
fn acked(db: &sled::Db, id: &str) -> Result<Vec<(u64, u64)>, StoreError> {
    let key = layout::subscription_acked_key(id);
    let Some(value) = db.get(&key).map_err(StoreError::engine)? else {
        return Ok(Vec::new());
    };
    let stored: AckedRuns = open_message(&key, &value)?;
    let mut runs = Vec::with_capacity(stored.runs.len() / 2);
    let mut end = 0u64;
    for pair in stored.runs.chunks(2) {
        let [gap, extra] = pair else {
            return Err(corrupt(&key));
        };
        let first = end.checked_add(*gap).ok_or_else(|| corrupt(&key))?;
        let last = first.checked_add(*extra).ok_or_else(|| corrupt(&key))?;
        runs.push((first, last));
        end = last;
    }
    Ok(runs)
}

/// Runs as stored.
fn seal_runs(runs: &[(u64, u64)]) -> Vec<u8> {
    let mut stored = AckedRuns {
        runs: Vec::with_capacity(runs.len() * 2),
    };
    let mut end = 0u64;
    for (first, last) in runs {
        stored.runs.push(first - end);
        stored.runs.push(last - first);
        end = *last;
    }
    seal_message(&stored)
}

/// `runs` with the sequence numbers `seqs` (sorted) added and everything at
/// or before `position` dropped.
fn merge_runs(runs: &[(u64, u64)], seqs: &[u64], position: u64) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(runs.len() + 1);
    let mut push = |first: u64, last: u64| {
        if last <= position {
            return;
        }
        let first = first.max(position + 1);
        match out.last_mut() {
            Some((_, end)) if first <= end.saturating_add(1) => *end = (*end).max(last),
            _ => out.push((first, last)),
        }
    };
    let (mut r, mut s) = (0, 0);
    while r < runs.len() || s < seqs.len() {
        let take_run = match (runs.get(r), seqs.get(s)) {
            (Some((first, _)), Some(seq)) => first <= seq,
            (Some(_), None) => true,
            _ => false,
        };
        if take_run {
            let (first, last) = runs[r];
            push(first, last);
            r += 1;
        } else {
            push(seqs[s], seqs[s]);
            s += 1;
        }
    }
    out
}

/// What a batch does to one subscription's position and acked runs.
struct Pending {
    position: u64,
    position_changed: bool,
    /// The stored runs.
    runs: Vec<(u64, u64)>,
    /// Whether the batch sought (which forgets the stored runs).
    sought: bool,
    /// Acked in this batch, after the position then.
    acked: Vec<u64>,
}

fn position(db: &sled::Db, id: &str) -> Result<u64, StoreError> {
    let key = layout::subscription_position_key(id);
    match db.get(&key).map_err(StoreError::engine)? {
        Some(value) => {
            let bytes: [u8; 8] = open(&key, &value)?.try_into().map_err(|_| corrupt(&key))?;
            Ok(u64::from_le_bytes(bytes))
        }
        None => Err(corrupt(&key)),
    }
}

/// The batch that applies `changes` (skipping those of subscriptions that
/// do not exist), or `None` if nothing is left to write.
pub(super) fn plan(
    db: &sled::Db,
    changes: Vec<SubscriptionChange>,
) -> Result<Option<sled::Batch>, StoreError> {
    let mut batch = sled::Batch::default();
    // Positions and acks as this batch leaves them, per subscription.
    let mut pending: HashMap<String, Pending> = HashMap::new();
    // Event states this batch writes, per subscription (a later Advance or
    // Seek in the same batch forgets them too).
    let mut written: HashMap<String, BTreeSet<u64>> = HashMap::new();
    for change in changes {
        let id = change.id();
        if !pending.contains_key(id) {
            if db
                .get(layout::subscription_key(id))
                .map_err(StoreError::engine)?
                .is_none()
            {
                continue;
            }
            let loaded = Pending {
                position: position(db, id)?,
                position_changed: false,
                runs: acked(db, id)?,
                sought: false,
                acked: Vec::new(),
            };
            pending.insert(id.to_string(), loaded);
        }
        let id = id.to_string();
        let Some(p) = pending.get_mut(&id) else {
            continue;
        };
        match change {
            SubscriptionChange::Advance { position, .. } => {
                if position > p.position {
                    forget_events(db, &mut batch, &id, Some(position))?;
                    if let Some(seqs) = written.get_mut(&id) {
                        let kept = seqs.split_off(&(position + 1));
                        for seq in std::mem::replace(seqs, kept) {
                            batch.remove(layout::subscription_event_key(&id, b'e', Some(seq)));
                        }
                    }
                    p.position = position;
                    p.position_changed = true;
                }
            }
            SubscriptionChange::Event { seq, state, .. } => {
                if seq > p.position {
                    if state.acked {
                        p.acked.push(seq);
                    } else {
                        batch.insert(
                            layout::subscription_event_key(&id, b'e', Some(seq)),
                            seal_message(&state),
                        );
                        written.entry(id.clone()).or_default().insert(seq);
                    }
                }
            }
            SubscriptionChange::DeadLetter { letter, .. } => {
                batch.remove(layout::subscription_event_key(&id, b'e', Some(letter.seq)));
                batch.insert(
                    layout::subscription_event_key(&id, b'd', Some(letter.seq)),
                    seal_message(&letter),
                );
            }
            SubscriptionChange::RemoveDeadLetter { seq, .. } => {
                batch.remove(layout::subscription_event_key(&id, b'd', Some(seq)));
            }
            SubscriptionChange::Seek { position, .. } => {
                forget_events(db, &mut batch, &id, None)?;
                for seq in written.remove(&id).unwrap_or_default() {
                    batch.remove(layout::subscription_event_key(&id, b'e', Some(seq)));
                }
                p.position = position;
                p.position_changed = true;
                p.runs.clear();
                p.sought = true;
                p.acked.clear();
            }
        }
    }
    let any = !pending.is_empty();
    for (id, mut p) in pending {
        if p.position_changed {
            batch.insert(
                layout::subscription_position_key(&id),
                seal(&p.position.to_le_bytes()),
            );
        }
        p.acked.sort_unstable();
        let runs = merge_runs(&p.runs, &p.acked, p.position);
        if runs != p.runs || p.sought {
            let key = layout::subscription_acked_key(&id);
            if runs.is_empty() {
                batch.remove(key);
            } else {
                batch.insert(key, seal_runs(&runs));
            }
        }
    }
    Ok(any.then_some(batch))
}

/// Removes the stored event states of a subscription up to `up_to` (all of
/// them with `None`).
fn forget_events(
    db: &sled::Db,
    batch: &mut sled::Batch,
    id: &str,
    up_to: Option<u64>,
) -> Result<(), StoreError> {
    let start = layout::subscription_event_key(id, b'e', Some(0));
    let end = match up_to {
        Some(seq) => layout::subscription_event_key(id, b'e', Some(seq)),
        None => layout::subscription_event_key(id, b'e', Some(u64::MAX)),
    };
    for entry in db.range(start..=end) {
        let (key, _) = entry.map_err(StoreError::engine)?;
        batch.remove(key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::merge_runs;

    #[test]
    fn runs_merge_coalesce_and_drop_what_the_position_passed() {
        assert_eq!(merge_runs(&[], &[5, 6, 7, 9], 0), [(5, 7), (9, 9)]);
        assert_eq!(
            merge_runs(&[(5, 7), (9, 9)], &[3, 8, 12], 0),
            [(3, 3), (5, 9), (12, 12)]
        );
        assert_eq!(merge_runs(&[(5, 7), (9, 9)], &[10], 6), [(7, 7), (9, 10)]);
        assert_eq!(merge_runs(&[(5, 7)], &[], 7), []);
        assert_eq!(
            merge_runs(&[(5, 7)], &[6], 0),
            [(5, 7)],
            "an ack taken twice"
        );
    }
}
