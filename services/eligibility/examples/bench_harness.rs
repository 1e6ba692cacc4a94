//! `medbill bench eligibility` against the eligibility service alone: starts payer-sim and the
//! eligibility service (dev-mode auth) on loopback ports in this process, then runs the same load
//! driver the binary uses (`crates/medbill/src/bench/eligibility.rs`) against them.
//!
//! ```text
//! cargo run --release -p medbill-eligibility --example bench_harness -- \
//!     [--database-url postgres://...] --mode warm --concurrency 64 --duration 10
//! ```
//! Without `--database-url` a fresh SQLite file in a temporary directory is used.

// The binary's eligibility driver and the helpers it shares (the claims driver needs the whole
// binary, so only these two files are compiled in; this harness uses part of them).
#[allow(dead_code)]
#[path = "../../../crates/medbill/src/bench/eligibility.rs"]
mod eligibility;
#[allow(dead_code)]
#[path = "../../../crates/medbill/src/bench/load.rs"]
mod load;

use std::time::Duration;

use clap::Parser;
use medbill_connect::{Connections, CoreHttpConfig, PayerConnection, RetryPolicy, TransportConfig};
use medbill_eligibility::{
    EligibilityConfig, EligibilityService, EligibilitySettings, ProviderConfig, open_store,
};
use medbill_runtime::auth::Authenticator;
use medbill_runtime::config::AuthConfig;
use medbill_runtime::server::Server;
use medbill_storage::{Database, PoolSettings};

#[derive(Debug, Parser)]
struct Args {
    /// Database for the eligibility service (default: SQLite in a temporary directory).
    #[arg(long)]
    database_url: Option<String>,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds to run (ignored when --requests is given).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Stop after this many calls instead of after --duration.
    #[arg(long)]
    requests: Option<u64>,
    /// warm (cache hits) or cold (every call reaches the payer).
    #[arg(long, value_enum, default_value_t = eligibility::Mode::Warm)]
    mode: eligibility::Mode,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    #[command(flatten)]
    member: eligibility::Member,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp = std::env::temp_dir().join(format!("medbill-bench-{}", std::process::id()));
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/medbill.db", tmp.display()));

    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = medbill_payer_sim::start(medbill_payer_sim::PayerSimConfig::default(), sim_listener)
        .await?;
    let payers: Vec<PayerConnection> = ["SIMPPO", "SIMHMO"]
        .into_iter()
        .map(|id| PayerConnection {
            payer_id: id.into(),
            sender_id: "MEDBILL01".into(),
            receiver_id: "MEDBILLSIM".into(),
            transport: TransportConfig::CoreHttp(CoreHttpConfig::new(sim.url())),
            batch_transport: None,
            retry: RetryPolicy::default(),
        })
        .collect();
    let config = EligibilityConfig {
        default_provider: Some(ProviderConfig {
            npi: "1234567893".into(),
            organization_name: "BENCH CLINIC".into(),
            tax_id: None,
        }),
        ..EligibilityConfig::default()
    };
    let settings = EligibilitySettings::from_config(&config, &payers)?;
    let db = Database::connect(&url, &PoolSettings::default(), "eligibility").await?;
    println!("database: {}", db.redacted_url());
    let store = open_store(db).await?;
    let service = EligibilityService::with_payers(store, Connections::open(&payers)?, settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = Server::new(tonic::service::Routes::new(service.into_server()))
        .authenticator(Authenticator::from_config(&AuthConfig::default())?)
        .start(listener)
        .await?;

    let plan = eligibility::Plan {
        url: server.url(),
        token: None,
        concurrency: args.concurrency.max(1),
        limit: match args.requests {
            Some(n) => load::Limit {
                requests: Some(n),
                duration: None,
            },
            None => load::Limit {
                requests: None,
                duration: Some(Duration::from_secs(args.duration.max(1))),
            },
        },
        mode: args.mode,
        connections: args.connections.max(1),
        member: args.member,
    };
    println!("{}", eligibility::run(&plan).await?);
    println!("payer-sim requests: {}", sim.requests_received());
    server.shutdown().await?;
    sim.shutdown().await?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
