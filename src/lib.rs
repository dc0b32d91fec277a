//! Pressroom stores, retrieves and streams press releases over gRPC, out of
//! an embedded sled database.
//!
//! A request flows down through the layers, and readers of the change log
//! follow what the store committed:
//!
//! - [`config`]: the flags and environment variables of `serve`, validated
//!   at start-up (the binary's `main.rs` puts `serve` beside the client's
//!   verbs).
//! - [`app`]: `App::build` wires everything (store, writer, change-log
//!   readers, gRPC server, side ports) and fails early; `App::run_until`
//!   serves and shuts down in order. [`shutdown`] turns signals into the
//!   future that ends it.
//! - [`api`]: the gRPC adapters, which translate messages only; the layers
//!   in front of them (auth, limits, metrics); errors become statuses in one
//!   place. [`api_keys`]: the API keys file the auth layer checks.
//! - [`domain`]: the rules of press releases, one file per job: validation,
//!   sanitising, etags and revisions, embargo state, idempotency, later
//!   versions of a source, field masks, paging, imports, search and
//!   statistics requests, backups.
//! - [`store`]: the storage trait, its conformance suite and the one writer
//!   that commits and flushes; the engines beneath it (sled embedded,
//!   PostgreSQL shared by replicas) own the keys, the indexes and the
//!   change log.
//! - [`feed`]: readers of the change log: watch streams (history, then
//!   live, optionally narrowed by a standing text query), subscriptions
//!   (named consumers whose position and acks the store keeps, shared by
//!   the streams open on them) and the embargo scheduler.
//! - [`search`]: the tantivy full-text index, one more reader of the log,
//!   and the matcher of standing queries (search's semantics without an
//!   index).
//! - [`syndication`]: RSS, Atom and JSON Feed over HTTP, for consumers that
//!   do not speak gRPC: built from the domain's List and Search, with the
//!   same keys and limits, and conditional GET.
//! - [`proto`]: the generated `pressroom.v1` messages, server and client,
//!   and the helpers of their `Timestamp`.
//! - [`telemetry`]: tracing set up once; [`prometheus`]: the metrics
//!   endpoint; [`text`]: values quoted and text cut for people.
//! - [`client`]: the command-line verbs over the generated client
//!   (`follow` polls wire feeds into the server); [`formats`]: the wire
//!   formats they import and export (JSON Lines, RSS, Atom, NewsML-G2,
//!   NewsML 1.2, ninjs).

pub mod api;
pub mod api_keys;
pub mod app;
pub mod client;
pub mod config;
pub mod domain;
pub mod feed;
pub mod formats;
pub mod prometheus;
pub mod proto;
pub mod search;
pub mod shutdown;
pub mod store;
pub mod syndication;
pub mod telemetry;
pub mod text;

pub use app::{App, AppError};
pub use config::ServeConfig;
