//! Subscription state in the sled engine: definitions under `u`, positions,
//! event states and dead letters under `v` (see [`layout`]). Each call
//! builds one atomic sled batch; the engine applies it under its
//! subscription lock (so that a commit for a subscription being deleted
//! cannot bring it back) and then syncs, sharing the sync with any other
//! batch applied meanwhile.

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
    for entry in db.scan_prefix(layout::subscription_event_key(id, b'd', None)) {
        let (key, value) = entry.map_err(StoreError::engine)?;
        state.dead_letters.push(open_message(&key, &value)?);
    }
    Ok(Some(state))
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
    let mut any = false;
    // Positions as this batch leaves them, per subscription.
    let mut positions: HashMap<String, u64> = HashMap::new();
    // Event states this batch writes, per subscription (a later Advance or
    // Seek in the same batch forgets them too).
    let mut written: HashMap<String, BTreeSet<u64>> = HashMap::new();
    for change in changes {
        let id = change.id().to_string();
        let current = match positions.get(&id) {
            Some(position) => *position,
            None => {
                if db
                    .get(layout::subscription_key(&id))
                    .map_err(StoreError::engine)?
                    .is_none()
                {
                    continue;
                }
                position(db, &id)?
            }
        };
        any = true;
        match change {
            SubscriptionChange::Advance { position, .. } => {
                if position > current {
                    forget_events(db, &mut batch, &id, Some(position))?;
                    if let Some(seqs) = written.get_mut(&id) {
                        let kept = seqs.split_off(&(position + 1));
                        for seq in std::mem::replace(seqs, kept) {
                            batch.remove(layout::subscription_event_key(&id, b'e', Some(seq)));
                        }
                    }
                    batch.insert(
                        layout::subscription_position_key(&id),
                        seal(&position.to_le_bytes()),
                    );
                    positions.insert(id, position);
                } else {
                    positions.insert(id, current);
                }
            }
            SubscriptionChange::Event { seq, state, .. } => {
                if seq > current {
                    batch.insert(
                        layout::subscription_event_key(&id, b'e', Some(seq)),
                        seal_message(&state),
                    );
                    written.entry(id.clone()).or_default().insert(seq);
                }
                positions.insert(id, current);
            }
            SubscriptionChange::DeadLetter { letter, .. } => {
                batch.remove(layout::subscription_event_key(&id, b'e', Some(letter.seq)));
                batch.insert(
                    layout::subscription_event_key(&id, b'd', Some(letter.seq)),
                    seal_message(&letter),
                );
                positions.insert(id, current);
            }
            SubscriptionChange::RemoveDeadLetter { seq, .. } => {
                batch.remove(layout::subscription_event_key(&id, b'd', Some(seq)));
                positions.insert(id, current);
            }
            SubscriptionChange::Seek { position, .. } => {
                forget_events(db, &mut batch, &id, None)?;
                for seq in written.remove(&id).unwrap_or_default() {
                    batch.remove(layout::subscription_event_key(&id, b'e', Some(seq)));
                }
                batch.insert(
                    layout::subscription_position_key(&id),
                    seal(&position.to_le_bytes()),
                );
                positions.insert(id, position);
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
