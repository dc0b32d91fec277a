//! The integration tests: one binary, every test against the real server on
//! `127.0.0.1:0` with its own temporary data dir, through the generated
//! client.

mod helpers;

mod backup;
mod cli;
mod crash;
mod create;
mod durability;
mod embargo;
mod feeds;
mod formats;
mod hostile;
mod import;
mod limits;
mod list;
mod metrics;
mod migrate;
mod otlp;
mod postgres;
mod search;
mod security;
mod server;
mod stats;
mod subscriptions;
mod tls;
mod update_and_withdraw;
mod watch;
mod watch_query;
