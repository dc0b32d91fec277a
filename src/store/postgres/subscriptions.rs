//! Subscription state in the PostgreSQL engine (issue 18): definitions,
//! positions, per-event states and dead letters in four tables (see
//! [`schema`](super::schema)), written without change-log entries.
//!
//! **Group commit.** [`Store::commit_subscriptions`](crate::store::Store)
//! calls queue their changes for one committer task, which takes every
//! call waiting when it starts and applies them all in one transaction
//! (the rows of each table in one `unnest` statement, pipelined) and one
//! `COMMIT`: concurrent dispatchers share a commit as the writer's callers
//! share a batch. Each call keeps its own outcome.
//!
//! **Fencing.** The transaction first locks the position rows of the
//! subscriptions it touches (`FOR UPDATE`, in id order), so a delete waits
//! for it or it finds the subscription gone and skips its changes (a late
//! commit never brings a deleted subscription back). Each position row
//! also holds a lease epoch, moved on by every replica that takes the
//! subscription's lease ([`lease`](super::lease)); a call whose process
//! holds the lease with an older epoch, or has lost it, is refused — so a
//! replica that lost its lease cannot write over the state the new holder
//! loaded, whatever its clock or its network says.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use deadpool_postgres::Pool;
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_util::sync::CancellationToken;

use crate::store::{
    EventState, StoreError, StoredDeadLetter, SubscriptionChange, SubscriptionRecord,
    SubscriptionState,
};

use super::{
    PostgresStore,
    engine::{corrupt, db_error, to_i64},
};

/// Most calls one transaction takes.
const MAX_GROUP: usize = 256;

/// The leases this process holds, by subscription id: the lease's
/// instance, and its epoch (`None` once lost). A subscription without an
/// entry is not fenced (tools and tests commit without a lease).
pub(super) type HeldLeases = Arc<Mutex<HashMap<String, (u64, Option<i64>)>>>;

/// One call waiting for the committer.
struct Pending {
    changes: Vec<SubscriptionChange>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The committer's queue and the leases held: what the engine keeps for
/// subscriptions.
pub(super) struct SubscriptionCommits {
    queue: mpsc::UnboundedSender<Pending>,
    leases: HeldLeases,
    /// Transactions committed so far (calls share them; tests read it).
    #[cfg_attr(not(test), allow(dead_code))]
    transactions: Arc<AtomicU64>,
}

impl SubscriptionCommits {
    /// Starts the committer on `pool`; it ends with `stop`.
    pub(super) fn start(pool: Pool, stop: CancellationToken) -> Self {
        let (queue, pending) = mpsc::unbounded_channel();
        let leases = HeldLeases::default();
        let transactions = Arc::new(AtomicU64::new(0));
        tokio::spawn(committer(
            pool,
            Arc::clone(&leases),
            Arc::clone(&transactions),
            pending,
            stop,
        ));
        Self {
            queue,
            leases,
            transactions,
        }
    }

    /// How many transactions the committer has made.
    #[cfg(test)]
    pub(super) fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    /// The leases this process holds.
    pub(super) fn leases(&self) -> &HeldLeases {
        &self.leases
    }
}

impl PostgresStore {
    /// See [`Store::create_subscription`](crate::store::Store).
    pub async fn create_subscription(
        &self,
        record: &SubscriptionRecord,
        position: u64,
    ) -> Result<bool, StoreError> {
        let id = record.id()?;
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "WITH created AS (
                     INSERT INTO pressroom.subscriptions (id, record) VALUES ($1, $2)
                     ON CONFLICT (id) DO NOTHING RETURNING id)
                 INSERT INTO pressroom.subscription_positions (id, position)
                 SELECT id, $3 FROM created",
            )
            .await
            .map_err(db_error)?;
        let created = client
            .execute(
                &statement,
                &[&id, &record.encode_to_vec(), &to_i64(position)],
            )
            .await
            .map_err(db_error)?;
        Ok(created == 1)
    }

    /// See [`Store::subscription`](crate::store::Store).
    pub async fn subscription(&self, id: &str) -> Result<Option<SubscriptionRecord>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT record FROM pressroom.subscriptions WHERE id = $1")
            .await
            .map_err(db_error)?;
        let row = client
            .query_opt(&statement, &[&id])
            .await
            .map_err(db_error)?;
        row.map(|row| decode_record(id, row.get(0))).transpose()
    }

    /// See [`Store::subscriptions`](crate::store::Store).
    pub async fn subscriptions(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, record FROM pressroom.subscriptions
                 WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .await
            .map_err(db_error)?;
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = client
            .query(&statement, &[&after, &limit])
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| decode_record(row.get(0), row.get(1)))
            .collect()
    }

    /// See [`Store::delete_subscription`](crate::store::Store): the other
    /// tables' rows go with the definition (`ON DELETE CASCADE`).
    pub async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("DELETE FROM pressroom.subscriptions WHERE id = $1")
            .await
            .map_err(db_error)?;
        let deleted = client.execute(&statement, &[&id]).await.map_err(db_error)?;
        Ok(deleted == 1)
    }

    /// See [`Store::subscription_state`](crate::store::Store): one
    /// snapshot (`REPEATABLE READ`), three pipelined reads.
    pub async fn subscription_state(
        &self,
        id: &str,
    ) -> Result<Option<SubscriptionState>, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db_error)?;
        let params: [&(dyn ToSql + Sync); 1] = [&id];
        let (position, events, letters) = futures_util::try_join!(
            tx.query_opt(
                "SELECT position FROM pressroom.subscription_positions WHERE id = $1",
                &params,
            ),
            tx.query(
                "SELECT seq, acked, deliveries FROM pressroom.subscription_events
                 WHERE subscription = $1",
                &params,
            ),
            tx.query(
                "SELECT seq, letter FROM pressroom.subscription_dead_letters
                 WHERE subscription = $1 ORDER BY seq",
                &params,
            ),
        )
        .map_err(db_error)?;
        let _ = tx.rollback().await;
        let Some(position) = position else {
            return Ok(None);
        };
        let mut state = SubscriptionState {
            position: position.get::<_, i64>(0).max(0) as u64,
            ..Default::default()
        };
        for row in &events {
            state.events.insert(
                row.get::<_, i64>(0).max(0) as u64,
                EventState {
                    acked: row.get(1),
                    deliveries: row.get::<_, i32>(2).max(0) as u32,
                },
            );
        }
        for row in &letters {
            let seq: i64 = row.get(0);
            let letter = StoredDeadLetter::decode(row.get::<_, &[u8]>(1))
                .map_err(|_| corrupt(&format!("subscription_dead_letters/{id}/{seq}")))?;
            state.dead_letters.push(letter);
        }
        Ok(Some(state))
    }

    /// See [`Store::commit_subscriptions`](crate::store::Store): queued for
    /// the committer, answered when the transaction holding it has
    /// committed.
    pub async fn commit_subscriptions(
        &self,
        changes: Vec<SubscriptionChange>,
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.subscription_commits()
            .queue
            .send(Pending { changes, reply })
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// Takes every waiting call and commits them together, one transaction at
/// a time.
async fn committer(
    pool: Pool,
    leases: HeldLeases,
    transactions: Arc<AtomicU64>,
    mut pending: mpsc::UnboundedReceiver<Pending>,
    stop: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            next = pending.recv() => match next {
                Some(first) => first,
                None => return,
            },
            () = stop.cancelled() => return,
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match pending.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let committed = commit_group(&pool, &leases, &group).await;
        transactions.fetch_add(1, Ordering::Relaxed);
        let outcomes = match committed {
            Ok(refused) => (0..group.len())
                .map(|i| {
                    if refused.contains(&i) {
                        Err(lease_lost())
                    } else {
                        Ok(())
                    }
                })
                .collect(),
            Err(error) => vec![Err(error); group.len()],
        };
        for (call, outcome) in group.into_iter().zip(outcomes) {
            let _ = call.reply.send(outcome);
        }
    }
}

fn lease_lost() -> StoreError {
    StoreError::Unavailable(
        "this replica no longer holds the subscription's lease; another one dispatches it".into(),
    )
}

/// One transaction for `group`; returns the calls refused for a lease this
/// process no longer holds.
async fn commit_group(
    pool: &Pool,
    leases: &HeldLeases,
    group: &[Pending],
) -> Result<BTreeSet<usize>, StoreError> {
    let ids: Vec<String> = group
        .iter()
        .flat_map(|call| call.changes.iter().map(|c| c.id().to_string()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut client = pool
        .get()
        .await
        .map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))?;
    let tx = client.transaction().await.map_err(db_error)?;
    let lock = tx
        .prepare_cached(
            "SELECT id, position, lease FROM pressroom.subscription_positions
             WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .await
        .map_err(db_error)?;
    let rows = tx.query(&lock, &[&ids]).await.map_err(db_error)?;
    let stored: HashMap<String, (u64, i64)> = rows
        .iter()
        .map(|row| {
            (
                row.get::<_, String>(0),
                (row.get::<_, i64>(1).max(0) as u64, row.get::<_, i64>(2)),
            )
        })
        .collect();
    let held = leases
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let fenced_off = |id: &str| match (held.get(id), stored.get(id)) {
        (Some((_, Some(epoch))), Some((_, lease))) => epoch != lease,
        (Some((_, None)), Some(_)) => true,
        _ => false,
    };
    let mut refused = BTreeSet::new();
    let mut plan = Plan::default();
    for (i, call) in group.iter().enumerate() {
        if call.changes.iter().any(|c| fenced_off(c.id())) {
            refused.insert(i);
            continue;
        }
        for change in &call.changes {
            plan.add(change, &stored);
        }
    }
    plan.write(&tx).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(refused)
}

/// What a group of changes leaves, per subscription.
#[derive(Default)]
struct Plan {
    subscriptions: BTreeMap<String, Net>,
}

/// The net effect of a batch on one subscription.
struct Net {
    position: u64,
    moved: bool,
    /// Stored event states at or before this are forgotten.
    forget_up_to: Option<u64>,
    /// Event states written (`None`: removed) after the forgetting.
    events: BTreeMap<u64, Option<EventState>>,
    /// Dead letters written (`None`: removed).
    letters: BTreeMap<u64, Option<StoredDeadLetter>>,
}

impl Plan {
    /// Adds one change, as the sled engine applies it; a change for a
    /// subscription that does not exist is skipped.
    fn add(&mut self, change: &SubscriptionChange, stored: &HashMap<String, (u64, i64)>) {
        let id = change.id();
        let net = match self.subscriptions.get_mut(id) {
            Some(net) => net,
            None => {
                let Some((position, _)) = stored.get(id) else {
                    return;
                };
                self.subscriptions.entry(id.to_string()).or_insert(Net {
                    position: *position,
                    moved: false,
                    forget_up_to: None,
                    events: BTreeMap::new(),
                    letters: BTreeMap::new(),
                })
            }
        };
        match change {
            SubscriptionChange::Advance { position, .. } => {
                if *position > net.position {
                    net.forget_up_to = net.forget_up_to.max(Some(*position));
                    net.events = net.events.split_off(&(position + 1));
                    net.position = *position;
                    net.moved = true;
                }
            }
            SubscriptionChange::Event { seq, state, .. } => {
                if *seq > net.position {
                    net.events.insert(*seq, Some(*state));
                }
            }
            SubscriptionChange::DeadLetter { letter, .. } => {
                net.events.insert(letter.seq, None);
                net.letters.insert(letter.seq, Some(letter.clone()));
            }
            SubscriptionChange::RemoveDeadLetter { seq, .. } => {
                net.letters.insert(*seq, None);
            }
            SubscriptionChange::Seek { position, .. } => {
                net.forget_up_to = Some(u64::MAX);
                net.events.clear();
                net.position = *position;
                net.moved = true;
            }
        }
    }

    /// Writes the plan: one statement per kind of row, pipelined in this
    /// order (forgetting before writing).
    async fn write(self, tx: &deadpool_postgres::Transaction<'_>) -> Result<(), StoreError> {
        let mut forget = (Vec::new(), Vec::new());
        let mut unset = (Vec::new(), Vec::new());
        let mut set = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut letters = (Vec::new(), Vec::new(), Vec::new());
        let mut unletter = (Vec::new(), Vec::new());
        let mut positions = (Vec::new(), Vec::new());
        for (id, net) in self.subscriptions {
            if let Some(up_to) = net.forget_up_to {
                forget.0.push(id.clone());
                forget.1.push(to_i64(up_to));
            }
            for (seq, state) in net.events {
                match state {
                    Some(state) => {
                        set.0.push(id.clone());
                        set.1.push(to_i64(seq));
                        set.2.push(state.acked);
                        set.3
                            .push(i32::try_from(state.deliveries).unwrap_or(i32::MAX));
                    }
                    None => {
                        unset.0.push(id.clone());
                        unset.1.push(to_i64(seq));
                    }
                }
            }
            for (seq, letter) in net.letters {
                match letter {
                    Some(letter) => {
                        letters.0.push(id.clone());
                        letters.1.push(to_i64(seq));
                        letters.2.push(letter.encode_to_vec());
                    }
                    None => {
                        unletter.0.push(id.clone());
                        unletter.1.push(to_i64(seq));
                    }
                }
            }
            if net.moved {
                positions.0.push(id);
                positions.1.push(to_i64(net.position));
            }
        }
        let statements = [
            (
                !forget.0.is_empty(),
                "DELETE FROM pressroom.subscription_events e
                 USING unnest($1::text[], $2::int8[]) AS f(id, up_to)
                 WHERE e.subscription = f.id AND e.seq <= f.up_to",
            ),
            (
                !unset.0.is_empty(),
                "DELETE FROM pressroom.subscription_events e
                 USING unnest($1::text[], $2::int8[]) AS d(id, seq)
                 WHERE e.subscription = d.id AND e.seq = d.seq",
            ),
            (
                !set.0.is_empty(),
                "INSERT INTO pressroom.subscription_events (subscription, seq, acked, deliveries)
                 SELECT * FROM unnest($1::text[], $2::int8[], $3::bool[], $4::int4[])
                 ON CONFLICT (subscription, seq)
                 DO UPDATE SET acked = excluded.acked, deliveries = excluded.deliveries",
            ),
            (
                !letters.0.is_empty(),
                "INSERT INTO pressroom.subscription_dead_letters (subscription, seq, letter)
                 SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[])
                 ON CONFLICT (subscription, seq) DO UPDATE SET letter = excluded.letter",
            ),
            (
                !unletter.0.is_empty(),
                "DELETE FROM pressroom.subscription_dead_letters d
                 USING unnest($1::text[], $2::int8[]) AS r(id, seq)
                 WHERE d.subscription = r.id AND d.seq = r.seq",
            ),
            (
                !positions.0.is_empty(),
                "UPDATE pressroom.subscription_positions p SET position = u.position
                 FROM unnest($1::text[], $2::int8[]) AS u(id, position)
                 WHERE p.id = u.id",
            ),
        ];
        // Prepared (cached per connection) first, so that the executions
        // below are sent in order without waiting on each other.
        let mut prepared = Vec::new();
        for (wanted, sql) in statements {
            prepared.push(if wanted {
                Some(tx.prepare_cached(sql).await.map_err(db_error)?)
            } else {
                None
            });
        }
        let [forget_s, unset_s, set_s, letters_s, unletter_s, positions_s] =
            <[Option<tokio_postgres::Statement>; 6]>::try_from(prepared)
                .map_err(|_| corrupt("subscription statements"))?;
        let forget: [&(dyn ToSql + Sync); 2] = [&forget.0, &forget.1];
        let unset: [&(dyn ToSql + Sync); 2] = [&unset.0, &unset.1];
        let set: [&(dyn ToSql + Sync); 4] = [&set.0, &set.1, &set.2, &set.3];
        let letters: [&(dyn ToSql + Sync); 3] = [&letters.0, &letters.1, &letters.2];
        let unletter: [&(dyn ToSql + Sync); 2] = [&unletter.0, &unletter.1];
        let positions: [&(dyn ToSql + Sync); 2] = [&positions.0, &positions.1];
        futures_util::try_join!(
            execute(tx, forget_s, &forget),
            execute(tx, unset_s, &unset),
            execute(tx, set_s, &set),
            execute(tx, letters_s, &letters),
            execute(tx, unletter_s, &unletter),
            execute(tx, positions_s, &positions),
        )
        .map_err(db_error)?;
        Ok(())
    }
}

/// Executes a statement the plan needs (nothing for one it does not).
async fn execute(
    tx: &deadpool_postgres::Transaction<'_>,
    statement: Option<tokio_postgres::Statement>,
    params: &[&(dyn ToSql + Sync)],
) -> Result<(), tokio_postgres::Error> {
    match statement {
        Some(statement) => tx.execute(&statement, params).await.map(drop),
        None => Ok(()),
    }
}

fn decode_record(id: &str, bytes: &[u8]) -> Result<SubscriptionRecord, StoreError> {
    SubscriptionRecord::decode(bytes).map_err(|_| corrupt(&format!("subscriptions/{id}")))
}
