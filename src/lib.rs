//! Pressroom stores, retrieves and streams press releases over gRPC, out of
//! an embedded sled database.
//!
//! A request flows down through the layers, and readers of the change log
//! follow what the store committed:
//!
//! - [`config`]: flags and environment variables, validated at start-up.
//! - [`app`]: builds the server (store, writer, services) and shuts it down
//!   in order; [`shutdown`] turns signals into the future that ends it.
//! - [`api`]: the gRPC adapters; they translate messages and statuses only.
//! - [`domain`]: the rules of press releases: validation, sanitising,
//!   etags and revisions, embargo state, idempotency, field masks, paging.
//! - [`feed`]: readers of the change log: watch streams (history, then
//!   live) and the embargo scheduler.
//! - [`search`]: the tantivy full-text index, one more reader of the log.
//! - [`store`]: the storage trait, the sled engine, the indexes, the change
//!   log, and the one writer that commits and flushes.
//! - [`proto`]: the generated `pressroom.v1` messages, server and client.
//! - [`telemetry`]: tracing set up once; [`prometheus`]: the metrics
//!   endpoint; [`api_keys`]: the API keys file.
//! - [`client`]: the command-line verbs; [`formats`]: the formats they
//!   import (JSON Lines, RSS, Atom).

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
pub mod telemetry;
pub mod text;

pub use app::{App, AppError};
pub use config::ServeConfig;
