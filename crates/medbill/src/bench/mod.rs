//! `medbill bench`: load drivers against a suite, printing throughput and latency.
//!
//! One module per service driven (`eligibility`, `claims`, `prior_auth`, `collections`,
//! `remittance`) and one for the whole cycle (`cycle`); `load`
//! holds what they share (connecting, the token, running calls at a fixed concurrency, percentiles, tables).

pub mod claims;
pub mod collections;
pub mod cycle;
pub mod eligibility;
pub mod load;
pub mod prior_auth;
pub mod remittance;

use std::path::PathBuf;
use std::time::Duration;

use load::Limit;

/// Load drivers.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Drive CheckEligibility (warm: cache hits; cold: every call reaches the payer).
    Eligibility {
        /// gRPC URL of the suite (or of the eligibility service).
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        url: String,
        /// Bearer token (omit in dev mode, where no tokens are configured).
        #[arg(long, env = "MEDBILL_BENCH_TOKEN")]
        token: Option<String>,
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
    },
    /// Drive CreateClaim, ScrubClaim and SubmitClaims, each measured on its own. Without
    /// --url the suite (with payer-sim as the payer) starts in this process.
    Claims {
        /// gRPC URL of a running suite (or claims service, with eligibility reachable from it);
        /// omit it to start the suite in this process.
        #[arg(long)]
        url: Option<String>,
        /// Bearer token (omit in dev mode, where no tokens are configured).
        #[arg(long, env = "MEDBILL_BENCH_TOKEN")]
        token: Option<String>,
        /// create, scrub, submit (each after the phases it needs, untimed), or all.
        #[arg(long, value_enum, default_value_t = claims::Mode::All)]
        mode: claims::Mode,
        /// Calls in flight at once (create and scrub; SubmitClaims calls go one at a time).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Claims created, scrubbed and submitted.
        #[arg(long, default_value_t = 100_000)]
        claims: u64,
        /// Cap, in seconds, on each measured create and scrub phase (default: until --claims).
        #[arg(long)]
        duration: Option<u64>,
        /// HTTP/2 connections the calls are spread over.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Database of the in-process suite (also `MEDBILL_DATABASE_URL`; default: SQLite files
        /// in a fresh temporary directory).
        #[arg(long)]
        database_url: Option<String>,
        /// Directory for the in-process suite's SQLite files (kept afterwards).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Date of service of every claim (inside the shipped ICD-10-CM year and timely filing).
        #[arg(long, default_value = "2026-05-04")]
        date_of_service: String,
        /// Claims per CreateClaims / ScrubClaims call (the batch path, instead of CreateClaim
        /// and ScrubClaim); 0 calls the single RPCs.
        #[arg(long, default_value_t = 0)]
        batch: u64,
        /// Batch calls in flight at once.
        #[arg(long, default_value_t = 2)]
        batch_concurrency: usize,
    },
    /// Drive PostPatientResponsibility and RecordPayment, then a statement cycle and the
    /// statements' PDFs. Without --url the suite starts in this process.
    Collections {
        /// gRPC URL of a running suite (or collections service); omit it to start the suite in
        /// this process.
        #[arg(long)]
        url: Option<String>,
        /// Bearer token (omit in dev mode, where no tokens are configured).
        #[arg(long, env = "MEDBILL_BENCH_TOKEN")]
        token: Option<String>,
        /// Calls in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// HTTP/2 connections the calls are spread over.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Accounts filled (untimed, each owing 100.00), billed and stated by the cycle.
        #[arg(long, default_value_t = 1_000)]
        accounts: u64,
        /// Ledger entries filled over the accounts (untimed) before AgingReport is timed; 0
        /// skips it.
        #[arg(long, default_value_t = 0)]
        aging_entries: u64,
        /// The tenant the calls act for (the bearer token's; `default` in dev mode).
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Calls of PostPatientResponsibility and of RecordPayment.
        #[arg(long, default_value_t = 20_000)]
        calls: u64,
        /// Statements fetched with their PDF.
        #[arg(long, default_value_t = 1_000)]
        pdfs: u64,
        /// Items per call of PostPatientResponsibilities and RecordPayments (the batch path,
        /// measured after the single calls: --calls items each); 0 skips it.
        #[arg(long, default_value_t = 0)]
        batch: u64,
        /// Batch calls in flight at once.
        #[arg(long, default_value_t = 4)]
        batch_concurrency: usize,
        /// Database of the in-process suite (also `MEDBILL_DATABASE_URL`; default: SQLite files
        /// in a fresh temporary directory).
        #[arg(long)]
        database_url: Option<String>,
        /// Directory for the in-process suite's SQLite files (kept afterwards).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// A large 835 through IngestEraStream, matched, posted and delivered to claims and
    /// collections, each stage timed, with the peak resident memory. The suite starts in this
    /// process; the claims the 835 pays are created, scrubbed and submitted first (untimed).
    Remittance {
        /// Size of the 835 in MB (about 2,480 claim payments per MB).
        #[arg(long, default_value_t = 50.0)]
        mb: f64,
        /// Files of --mb uploaded at once (the extra ones pay no existing claim), to measure
        /// the memory of concurrent ingests.
        #[arg(long, default_value_t = 1)]
        concurrent_uploads: usize,
        /// Calls in flight while creating and scrubbing the claims (setup).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Database of the in-process suite (also `MEDBILL_DATABASE_URL`; default: SQLite files
        /// in a fresh temporary directory).
        #[arg(long)]
        database_url: Option<String>,
        /// Directory for the in-process suite's SQLite files (kept afterwards).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Date of service of every claim (inside the shipped ICD-10-CM year and timely filing).
        #[arg(long, default_value = "2026-05-04")]
        date_of_service: String,
        /// Create no claims: every payment goes to the unmatched worklist and nothing is
        /// delivered (ingest, posting and memory without the claims setup).
        #[arg(long)]
        skip_claims: bool,
    },
    /// Drive RequestPriorAuthorization (X12 278 to payer-sim and back), printing latency
    /// percentiles. Without --url the suite starts in this process.
    PriorAuth(PriorAuthArgs),
    /// A synthetic hospital's day at scale (the `medbill demo` flow: eligibility to patient
    /// payments), each stage timed. Without --url the suite starts in this process.
    Cycle(crate::demo::DemoArgs),
}

/// Arguments of `medbill bench prior-auth`.
#[derive(Debug, clap::Args)]
pub struct PriorAuthArgs {
    /// gRPC URL of a running suite (or eligibility service, with a route to payer-sim); omit it
    /// to start the suite in this process.
    #[arg(long)]
    url: Option<String>,
    /// Bearer token (omit in dev mode, where no tokens are configured).
    #[arg(long, env = "MEDBILL_BENCH_TOKEN")]
    token: Option<String>,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds to run (ignored when --requests is given).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Stop after this many calls instead of after --duration.
    #[arg(long)]
    requests: Option<u64>,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Procedure code asked for (27447: approved by payer-sim's built-in catalog).
    #[arg(long, default_value = "27447")]
    procedure: String,
    /// Database of the in-process suite (also `MEDBILL_DATABASE_URL`; default: SQLite files in a
    /// fresh temporary directory).
    #[arg(long)]
    database_url: Option<String>,
    /// Directory for the in-process suite's SQLite files (kept afterwards).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    member: eligibility::Member,
}

/// Runs a bench command and prints its figures.
///
/// # Errors
/// The suite cannot be reached or started, or a setup call fails.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Eligibility {
            url,
            token,
            concurrency,
            duration,
            requests,
            mode,
            connections,
            member,
        } => {
            let plan = eligibility::Plan {
                url,
                token,
                concurrency: concurrency.max(1),
                limit: match requests {
                    Some(n) => Limit {
                        requests: Some(n),
                        duration: None,
                    },
                    None => Limit {
                        requests: None,
                        duration: Some(Duration::from_secs(duration.max(1))),
                    },
                },
                mode,
                connections: connections.max(1),
                member,
            };
            println!("{}", eligibility::run(&plan).await?);
        }
        BenchCommand::Claims {
            url,
            token,
            mode,
            concurrency,
            claims,
            duration,
            connections,
            database_url,
            data_dir,
            date_of_service,
            batch,
            batch_concurrency,
        } => {
            let plan = claims::Plan {
                url,
                token,
                concurrency: concurrency.max(1),
                connections: connections.max(1),
                claims,
                duration: duration.map(|s| Duration::from_secs(s.max(1))),
                mode,
                database_url,
                data_dir,
                date_of_service,
                batch: batch.min(medbill_runtime::batch::MAX_BATCH_ITEMS as u64),
                batch_concurrency: batch_concurrency.max(1),
            };
            print!("{}", claims::run(&plan).await?);
        }
        BenchCommand::PriorAuth(a) => {
            let plan = prior_auth::Plan {
                url: a.url,
                token: a.token,
                concurrency: a.concurrency.max(1),
                limit: match a.requests {
                    Some(n) => Limit {
                        requests: Some(n),
                        duration: None,
                    },
                    None => Limit {
                        requests: None,
                        duration: Some(Duration::from_secs(a.duration.max(1))),
                    },
                },
                connections: a.connections.max(1),
                member: a.member,
                procedure: a.procedure,
                database_url: a.database_url,
                data_dir: a.data_dir,
            };
            println!("{}", prior_auth::run(&plan).await?);
        }
        BenchCommand::Cycle(mut args) => {
            args.quiet = true;
            print!("{}", cycle::run(args).await?);
        }
        BenchCommand::Remittance {
            mb,
            concurrent_uploads,
            concurrency,
            database_url,
            data_dir,
            date_of_service,
            skip_claims,
        } => {
            let plan = remittance::Plan {
                skip_claims,
                mb,
                concurrent_uploads: concurrent_uploads.max(1),
                concurrency: concurrency.max(1),
                database_url,
                data_dir,
                date_of_service,
            };
            print!("{}", remittance::run(&plan).await?);
        }
        BenchCommand::Collections {
            url,
            token,
            concurrency,
            connections,
            accounts,
            aging_entries,
            tenant,
            calls,
            pdfs,
            batch,
            batch_concurrency,
            database_url,
            data_dir,
        } => {
            let plan = collections::Plan {
                batch,
                batch_concurrency: batch_concurrency.max(1),
                url,
                token,
                concurrency: concurrency.max(1),
                connections: connections.max(1),
                accounts,
                aging_entries,
                tenant,
                calls,
                pdfs,
                database_url,
                data_dir,
            };
            print!("{}", collections::run(&plan).await?);
        }
    }
    Ok(())
}
