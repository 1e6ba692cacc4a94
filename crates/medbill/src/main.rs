//! The medbill binary.

mod x12_cli;

use std::process::ExitCode;

use clap::Parser;

/// medbill: revenue-cycle services and X12 tools.
#[derive(Debug, Parser)]
#[command(name = "medbill", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// X12 tools: inspect and validate interchanges.
    #[command(subcommand)]
    X12(x12_cli::X12Command),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::X12(cmd) => x12_cli::run(cmd),
    }
}
