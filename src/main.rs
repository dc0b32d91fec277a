//! The `pressroom` binary: parses arguments and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use pressroom::{Cli, Command, client, telemetry};

/// mimalloc instead of the system allocator: the store's commits and the
/// feed's fan-out allocate a great deal (see BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(config) => match pressroom::app::serve(*config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("pressroom: {}", telemetry::chain(&error));
                ExitCode::FAILURE
            }
        },
        command => match client::run(command).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("pressroom: {}", error.report());
                ExitCode::from(error.exit_code())
            }
        },
    }
}
