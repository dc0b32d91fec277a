//! The PostgreSQL engine: the store in a PostgreSQL database that any
//! number of stateless replicas share. Split by job:
//!
//! - `engine`: the [`PostgresStore`]: opening, connections, database errors.
//! - `reads`: releases, the change log and embargoes, read.
//! - `list_filter`: a list query as one SQL statement.
//! - `backup`: the whole store from one snapshot, in the portable format.
//! - `adapter`: the async `Store` impl.
//! - `commit`: the commit protocol: one head row locked by every commit (a
//!   gapless log in commit order across replicas), batch ids to resolve a
//!   commit whose answer was lost.
//! - `follow`: following the shared head (poll, `LISTEN` to wake early).
//! - `plan`: how a batch of changes becomes the rows one commit writes.
//! - `schema`: the tables, created and migrated on open, versioned.
//! - `connect`: the URL, TLS as `sslmode` asks, the connection pool.
//! - `import`: a whole store moved in from another engine (`migrate`).
//! - `leadership`: an advisory lock held by one replica at a time.
//! - `subscriptions`: subscription state, group-committed and fenced.
//! - `lease`: which replica dispatches a subscription.
//! - `cluster`: a private PostgreSQL in a temp dir, for tests and benches.
//!
//! Why tokio-postgres with deadpool-postgres: tokio-postgres speaks the
//! binary protocol, pipelines the statements of one transaction (a commit
//! costs about one round trip per dependent step, not per statement), and
//! delivers `LISTEN` notifications on its connection; deadpool-postgres is
//! a small pool over it with a per-connection cache of prepared statements,
//! so each statement is prepared once per connection. sqlx has no
//! pipelining, and the synchronous `postgres` crate cannot run inside the
//! tokio runtime. Nothing outside this folder knows the tables.

mod adapter;
mod backup;
pub mod cluster;
mod commit;
mod connect;
mod engine;
mod follow;
mod import;
mod leadership;
mod lease;
mod list_filter;
mod plan;
mod reads;
mod schema;
mod subscriptions;

#[cfg(test)]
mod subscription_tests;
#[cfg(test)]
mod tests;

pub use cluster::{ClusterError, ClusterOptions, LocalCluster};
pub use connect::ConnectError;
pub use engine::{PostgresOptions, PostgresStore};
pub use import::ImportSummary;
pub use leadership::{EMBARGO_SCHEDULER, Leadership, LeadershipTiming};
