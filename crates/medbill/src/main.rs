//! The medbill binary: `medbill serve` runs the services, `medbill x12` inspects and validates
//! X12 files, `medbill config check` checks a configuration, `medbill health` asks a running one whether it serves,
//! `medbill audit` exports and purges the audit trail.

mod audit_cli;
mod config_cli;
mod health;
mod x12_cli;

use medbill::{bench, demo, serve};

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
    /// Run one service, or all four in one process (`--target all`, the default).
    Serve(serve::ServeArgs),
    /// Load drivers against a running suite; they print throughput and latency.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// A synthetic hospital's day through the whole revenue cycle, with progress bars and a
    /// summary (starts the suite in this process unless `--url` is given).
    Demo(demo::DemoArgs),
    /// Configuration tools: `config check` loads it as `serve` would, starting nothing.
    #[command(subcommand)]
    Config(config_cli::ConfigCommand),
    /// The audit trail: `audit export` writes it as JSON lines, `audit purge` applies the
    /// retention.
    #[command(subcommand)]
    Audit(audit_cli::AuditCommand),
    /// Ask a running medbill's gRPC health service; exits 0 when it is SERVING.
    Health(health::HealthArgs),
    /// X12 tools: inspect and validate interchanges.
    #[command(subcommand)]
    X12(x12_cli::X12Command),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => block_on(serve::run(args)),
        Command::Bench(cmd) => block_on(bench::run(cmd)),
        Command::Demo(args) => block_on(demo::run(args)),
        Command::Config(cmd) => match config_cli::run(cmd) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("medbill: {err:#}");
                ExitCode::FAILURE
            }
        },
        Command::Audit(cmd) => block_on(audit_cli::run(cmd)),
        Command::Health(args) => block_on(health::run(args)),
        Command::X12(cmd) => x12_cli::run(cmd),
    }
}

fn block_on(task: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("medbill: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("medbill: {err:#}");
            ExitCode::FAILURE
        }
    }
}
