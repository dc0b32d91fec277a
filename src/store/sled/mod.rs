//! The sled engine: one embedded sled database in a directory, behind the
//! [`Store`](crate::store::Store) trait. Split by job:
//!
//! - `engine`: the [`SledStore`] itself: opening its data dir, backing it
//!   up and restoring it.
//! - `commit`: writes: a commit applied, then synced.
//! - `reads`: releases read once durable: get, list, counts, embargoes.
//! - `change_log`: reading the change log.
//! - `subscription_ops`: subscription calls, under the subscription lock.
//! - `adapter`: the async `Store` impl, handing blocking work to the pool.
//! - `durability`: what makes a commit durable (flush, then fsync), and the
//!   durable head reads wait for.
//! - `plan`: how a commit's changes become one atomic sled batch.
//! - `walk`: the index walk (leapfrog join of facet indexes) behind `List`.
//! - `layout`: the key layout of the one keyspace.
//! - `record`: how values are encoded and checksummed.
//! - `backup`: the backup format, written and restored.
//! - `subscriptions`: subscription definitions and state.
//! - `export`: the whole store as engine-neutral items, for migrating.
//!
//! Nothing outside this folder knows sled's keys, values or files.

mod adapter;
mod backup;
mod change_log;
mod commit;
mod durability;
mod engine;
mod export;
mod layout;
mod plan;
mod reads;
mod record;
mod subscription_ops;
mod subscriptions;
mod walk;

pub use backup::RestoreError;
pub use engine::SledStore;
