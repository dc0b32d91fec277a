//! The `pressroom` binary: parses arguments and hands over to the library:
//! `serve` to [`pressroom::app`], every other verb to [`pressroom::client`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pressroom::{ServeConfig, client, telemetry};

/// mimalloc instead of the system allocator: the store's commits and the
/// feed's fan-out allocate a great deal (see BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `pressroom`: a gRPC service that stores, retrieves and streams press
/// releases.
#[derive(Debug, Parser)]
#[command(name = "pressroom", version, about, long_about = None)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands: the server, and the client's verbs.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeConfig>),
    #[command(flatten)]
    Client(Box<client::Command>),
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(config) => match pressroom::app::serve(*config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("pressroom: {}", telemetry::chain(&error));
                ExitCode::FAILURE
            }
        },
        Command::Client(command) => match client::run(*command).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("pressroom: {}", error.report());
                ExitCode::from(error.exit_code())
            }
        },
    }
}
