//! The integration tests: one binary, every test against the real server on
//! `127.0.0.1:0` with its own temporary data dir, through the generated
//! client.

mod helpers;

mod create;
mod embargo;
mod import;
mod list;
mod search;
mod server;
mod stats;
mod update_and_withdraw;
mod watch;
