//! The `pressroom` binary: parses arguments and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use pressroom::{Cli, Command, client, telemetry};

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
