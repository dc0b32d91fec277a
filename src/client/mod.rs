//! The command-line client: the verbs of the `pressroom` binary other than
//! `serve`, over the generated gRPC client (and, for `restore`, the store
//! directly, offline). Each verb parses nothing itself: clap hands it its
//! arguments; it prints results to stdout and returns errors to `main`.

mod backup;
mod connect;
mod keys;

pub use backup::{BackupArgs, RestoreArgs};
pub use connect::{Client, ClientArgs, ClientError, connect};
pub use keys::KeysArgs;

/// Runs a client verb.
pub async fn run(command: crate::Command) -> Result<(), ClientError> {
    match command {
        crate::Command::Serve(_) => Err(ClientError::Usage("`serve` is not a client verb".into())),
        crate::Command::Backup(args) => backup::backup(args).await,
        crate::Command::Restore(args) => backup::restore(args).await,
        crate::Command::Keys(args) => keys::run(args),
    }
}
