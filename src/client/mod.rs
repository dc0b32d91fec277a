//! The command-line client: the verbs of the `pressroom` binary other than
//! `serve` ([`Command`], which `main.rs` flattens into the binary's own
//! subcommands), over the generated gRPC client (and, for `restore`, the
//! store directly, offline). clap hands each verb its arguments; it prints
//! results to stdout and returns errors, which `main` reports with an exit
//! code that tells "not found", "invalid input", "not allowed" and
//! "unavailable" apart.

mod backup;
mod connect;
mod export;
mod filter;
mod follow;
mod import;
mod keygen;
mod migrate;
mod output;
mod releases;
mod subscriptions;
mod watch;

pub use backup::{BackupArgs, RestoreArgs};
pub use connect::{
    Client, ClientArgs, ClientError, SubscriptionClient, connect, connect_subscriptions,
};
pub use export::{ExportArgs, ExportFormat};
pub use follow::FollowArgs;
pub use import::ImportArgs;
pub use keygen::KeysArgs;
pub use migrate::MigrateArgs;
pub use releases::{
    CreateArgs, GetArgs, ListArgs, SearchArgs, StatsArgs, UpdateArgs, WithdrawArgs,
};
pub use subscriptions::{ConsumeArgs, SubscriptionArgs};
pub use watch::WatchArgs;

use tonic::Code;
use tonic_types::StatusExt as _;

/// Exit code when the thing asked for does not exist.
pub const EXIT_NOT_FOUND: u8 = 3;
/// Exit code when the input was refused as invalid.
pub const EXIT_INVALID: u8 = 4;
/// Exit code when the key is missing, unknown or not allowed.
pub const EXIT_NOT_ALLOWED: u8 = 5;
/// Exit code when the server cannot be reached or is overloaded.
pub const EXIT_UNAVAILABLE: u8 = 6;

/// The client verbs.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a press release from a JSON file or flags.
    Create(Box<CreateArgs>),
    /// Get a press release by name.
    Get(GetArgs),
    /// List press releases, newest first.
    List(ListArgs),
    /// Change fields of a press release.
    Update(UpdateArgs),
    /// Withdraw a press release (its content is purged).
    Withdraw(WithdrawArgs),
    /// Follow the feed: history, then live; resumable with a cursor file.
    Watch(WatchArgs),
    /// Manage subscriptions (named consumers whose position the server
    /// keeps).
    Subscription(SubscriptionArgs),
    /// Consume a subscription: print each event, then acknowledge it.
    Consume(ConsumeArgs),
    /// Search press releases.
    Search(SearchArgs),
    /// Count press releases.
    Stats(StatsArgs),
    /// Import JSON Lines, JSON (or ninjs) files, RSS or Atom feeds, NewsML.
    Import(ImportArgs),
    /// Export press releases as JSON Lines (or ninjs).
    Export(ExportArgs),
    /// Follow wire feeds: poll them and import new and changed items.
    Follow(Box<FollowArgs>),
    /// Stream a consistent backup of a running server to a file (admin key).
    Backup(BackupArgs),
    /// Restore a backup into an empty data dir (server stopped).
    Restore(RestoreArgs),
    /// Make API keys and keys-file lines.
    Keys(KeysArgs),
    /// Move a sled data dir's store into an empty PostgreSQL database
    /// (server stopped); names, change log and store id come along.
    Migrate(MigrateArgs),
}

/// Runs a client verb.
pub async fn run(command: Command) -> Result<(), ClientError> {
    match command {
        Command::Create(args) => releases::create(*args).await,
        Command::Get(args) => releases::get(args).await,
        Command::List(args) => releases::list(args).await,
        Command::Update(args) => releases::update(args).await,
        Command::Withdraw(args) => releases::withdraw(args).await,
        Command::Watch(args) => watch::watch(args).await,
        Command::Subscription(args) => subscriptions::subscription(args).await,
        Command::Consume(args) => subscriptions::consume(args).await,
        Command::Search(args) => releases::search(args).await,
        Command::Stats(args) => releases::stats(args).await,
        Command::Import(args) => import::import(args).await,
        Command::Export(args) => export::export(args).await,
        Command::Follow(args) => follow::follow(*args).await,
        Command::Backup(args) => backup::backup(args).await,
        Command::Restore(args) => backup::restore(args).await,
        Command::Keys(args) => keygen::run(args),
        Command::Migrate(args) => migrate::migrate(args).await,
    }
}

impl ClientError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Status(status) => match status.code() {
                Code::NotFound => EXIT_NOT_FOUND,
                Code::InvalidArgument
                | Code::FailedPrecondition
                | Code::AlreadyExists
                | Code::OutOfRange
                | Code::Aborted => EXIT_INVALID,
                Code::Unauthenticated | Code::PermissionDenied => EXIT_NOT_ALLOWED,
                Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => {
                    EXIT_UNAVAILABLE
                }
                _ => 1,
            },
            Self::Connect(_) => EXIT_UNAVAILABLE,
            Self::Usage(_) => 2,
            Self::Invalid(_) => EXIT_INVALID,
            Self::File { .. } | Self::Other(_) => 1,
        }
    }

    /// What to print on stderr: the gRPC code and message, and each field
    /// violation on its own line.
    pub fn report(&self) -> String {
        let Self::Status(status) = self else {
            return crate::telemetry::chain(self);
        };
        let code = code_name(status.code());
        match status.get_details_bad_request() {
            Some(bad) if !bad.field_violations.is_empty() => {
                // The message lists the violations too; spell them out instead.
                let summary = status.message().split(": ").next().unwrap_or_default();
                let mut out = format!("{code}: {summary}");
                for violation in bad.field_violations {
                    out.push_str(&format!(
                        "\n  {}: {}",
                        violation.field, violation.description
                    ));
                }
                out
            }
            _ => format!("{code}: {}", status.message()),
        }
    }
}

/// A gRPC code as callers know it, e.g. `INVALID_ARGUMENT`.
fn code_name(code: Code) -> String {
    let mut out = String::new();
    for (i, c) in format!("{code:?}").chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}
