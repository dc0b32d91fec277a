//! The `pressroom` binary: parses arguments and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use pressroom::{Cli, Command, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(config) => pressroom::app::serve(config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pressroom: {}", telemetry::chain(&error));
            ExitCode::FAILURE
        }
    }
}
