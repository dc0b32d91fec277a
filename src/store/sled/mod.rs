//! The sled engine: one embedded sled database in a directory, behind the
//! [`Store`](crate::store::Store) trait. Split by job:
//!
//! - `engine`: the [`SledStore`] itself: opening, the `Store` impl, reads.
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

mod backup;
mod durability;
mod engine;
mod export;
mod layout;
mod plan;
mod record;
mod subscriptions;
mod walk;

pub use backup::RestoreError;
pub use engine::SledStore;
