//! `medbill demo`: a synthetic hospital's day through the whole revenue cycle, over the public
//! gRPC APIs only, with a progress bar per stage and a summary a billing manager reads.
//!
//! ```text
//! medbill demo                                  # starts the suite in this process (SQLite)
//! medbill demo --encounters 1000 --json day.json
//! medbill demo --write-suite ./day             # for a suite started elsewhere:
//! medbill serve --config ./day/suite.toml &
//! medbill demo --url http://127.0.0.1:50051
//! ```
//!
//! `hospital` generates the day (seeded), `cycle` drives it through the services stage by
//! stage, `summary` reads the figures back from the services, `progress` draws the bars.

pub mod cycle;
pub mod hospital;
pub mod progress;
pub mod summary;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use medbill_runtime::config::{ClientConfig, Secret};

use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_proto::remittance::v1::remittance_service_client::RemittanceServiceClient;

use crate::bench::claims::InProcess;
use cycle::{Clients, Options};
use hospital::Hospital;
use progress::Progress;
use summary::Summary;

/// Arguments of `medbill demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// gRPC URL of a running suite started with `--write-suite`'s configuration; omit it to
    /// start the suite in this process.
    #[arg(long)]
    pub url: Option<String>,
    /// In split mode (one process per service), the eligibility service's URL (default --url).
    #[arg(long, requires = "url")]
    pub eligibility_url: Option<String>,
    /// In split mode, the claims service's URL (default --url).
    #[arg(long, requires = "url")]
    pub claims_url: Option<String>,
    /// In split mode, the remittance service's URL (default --url).
    #[arg(long, requires = "url")]
    pub remittance_url: Option<String>,
    /// In split mode, the collections service's URL (default --url).
    #[arg(long, requires = "url")]
    pub collections_url: Option<String>,
    /// Bearer token (omit in dev mode, where no tokens are configured).
    #[arg(long, env = "MEDBILL_DEMO_TOKEN")]
    pub token: Option<String>,
    /// Encounters of the day.
    #[arg(long, default_value_t = 300)]
    pub encounters: usize,
    /// Seed of the synthetic hospital: the same seed makes the same patients and encounters.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Date of service of the day (inside the ICD-10-CM year the suite ships and within the
    /// payers' timely filing limit).
    #[arg(long, default_value = "2026-09-15")]
    pub day: String,
    /// Calls in flight at once in each stage.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Items per call where the services take many at once (CreateClaims, ScrubClaims,
    /// RecordPayments); 1 makes one unary call per item (CreateClaim, ScrubClaim, RecordPayment).
    #[arg(long, default_value_t = 250)]
    pub batch: usize,
    /// Batch calls in flight at once.
    #[arg(long, default_value_t = 2)]
    pub batch_concurrency: usize,
    /// Longest wait, in seconds, for the payer's acknowledgements, payments and the ledgers
    /// (default: 180 plus one per 20 encounters).
    #[arg(long)]
    pub wait_secs: Option<u64>,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Database of the in-process suite (also `MEDBILL_DATABASE_URL`; default: SQLite files in
    /// a fresh temporary directory).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Directory for the in-process suite's SQLite files (kept afterwards).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Write the suite configuration the day needs (`suite.toml`) and payer-sim's catalog of
    /// the hospital's members (`catalog.toml`) into this directory, and exit: `medbill serve
    /// --config DIR/suite.toml` then runs a suite for `--url`.
    #[arg(long)]
    pub write_suite: Option<PathBuf>,
    /// No progress bars (they are drawn only on a terminal anyway).
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `medbill demo`: prints the summary (or the catalog) and writes the JSON.
///
/// # Errors
/// Bad arguments, the suite cannot be started or reached, a stage fails.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let day = chrono::NaiveDate::parse_from_str(&args.day, "%Y-%m-%d")
        .context("--day must be YYYY-MM-DD")?;
    if let Some(dir) = &args.write_suite {
        let hospital = Hospital::generate(args.seed, args.encounters, day, "");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let catalog = dir.join("catalog.toml");
        std::fs::write(&catalog, hospital.payer_catalog()?)
            .with_context(|| format!("writing {}", catalog.display()))?;
        let catalog = std::path::absolute(&catalog)?;
        let config = dir.join("suite.toml");
        std::fs::write(&config, toml::to_string(&suite_settings(&catalog))?)
            .with_context(|| format!("writing {}", config.display()))?;
        println!("wrote {} and {}", catalog.display(), config.display());
        return Ok(());
    }
    let outcome = run_day(&args, day, true).await?;
    let summary = outcome.summary.context("a summary")?;
    println!("{summary}");
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The settings the day needs beyond a zero-setup suite: payer-sim's catalog of the hospital's
/// members, payment without delay, the payer's files picked up every second, and the knee
/// replacement among the procedures SIMPPO authorizes in advance.
fn suite_settings(catalog: &std::path::Path) -> toml::Table {
    let text = format!(
        r#"
[payer_sim]
catalog = {catalog:?}
adjudication_lag_secs = 0

[claims.submission]
acknowledgement_poll_secs = 1

[[claims.payers]]
payer_id = "SIMPPO"
procedures_requiring_authorization = ["27447"]

[remittance.era_pickup]
poll_secs = 1
"#,
        catalog = catalog.display().to_string()
    );
    text.parse().unwrap_or_default()
}

/// What a run of the day gives.
pub struct DayOutcome {
    /// Where it ran ("in process, SQLite", "in process, PostgreSQL" or the URL).
    pub target: String,
    /// Stage timings and the ids made.
    pub record: cycle::Record,
    /// The run's claims by status at the end.
    pub claim_statuses: std::collections::BTreeMap<String, u64>,
    /// The summary, when asked for.
    pub summary: Option<Summary>,
}

/// Generates the hospital, runs its day against the suite (started here without `--url`) and,
/// when `summarise`, reads the summary back.
///
/// # Errors
/// The suite cannot be started or reached, a stage fails.
pub async fn run_day(
    args: &DemoArgs,
    day: chrono::NaiveDate,
    summarise: bool,
) -> anyhow::Result<DayOutcome> {
    let run = uuid::Uuid::now_v7().simple().to_string();
    // Six characters of the random part: keys and control numbers unique to this run.
    let run = run[run.len() - 6..].to_owned();
    let hospital = Hospital::generate(args.seed, args.encounters, day, &run);
    let mut suite = None;
    let mut catalog_file = None;
    let url = match &args.url {
        Some(url) => url.clone(),
        None => {
            let path = std::env::temp_dir().join(format!("medbill-demo-{run}-catalog.toml"));
            std::fs::write(&path, hospital.payer_catalog()?)
                .with_context(|| format!("writing {}", path.display()))?;
            let started = InProcess::start_configured(
                args.data_dir.as_ref(),
                args.database_url.as_ref(),
                &run,
                |loaded| {
                    suite_settings(&path)
                        .into_iter()
                        .fold(loaded, |loaded, (key, value)| {
                            loaded.with_value(&key, value)
                        })
                },
            )
            .await?;
            catalog_file = Some(path);
            let url = started.url();
            suite = Some(started);
            url
        }
    };
    let config = ClientConfig {
        token: args.token.clone().map(Secret::new),
        request_timeout_ms: 120_000,
        ..ClientConfig::default()
    };
    let connect = |flag: &str, service_url: &Option<String>| {
        let service_url = service_url.as_ref().unwrap_or(&url);
        medbill_runtime::client::connect(service_url, &config)
            .with_context(|| format!("--{flag} {service_url} cannot be used"))
    };
    let clients = Clients {
        eligibility: EligibilityServiceClient::new(connect(
            "eligibility-url",
            &args.eligibility_url,
        )?),
        claims: ClaimsServiceClient::new(connect("claims-url", &args.claims_url)?),
        remittance: RemittanceServiceClient::new(connect("remittance-url", &args.remittance_url)?),
        collections: CollectionsServiceClient::new(connect(
            "collections-url",
            &args.collections_url,
        )?),
    };
    let options = Options {
        concurrency: args.concurrency.max(1),
        batch: args.batch.clamp(1, 1000),
        batch_concurrency: args.batch_concurrency.max(1),
        wait: Duration::from_secs(
            args.wait_secs
                .unwrap_or(180 + args.encounters as u64 / 20)
                .max(1),
        ),
        today: chrono::Utc::now().date_naive(),
        run,
    };
    let progress = Progress::new(!args.quiet);
    let target = match &suite {
        Some(s) => s.target.clone(),
        None => url.clone(),
    };
    let outcome = async {
        let record = cycle::run(&hospital, &clients, &options, &progress).await?;
        // The summary reads every claim already; without one, only the statuses are read.
        let (summary, claim_statuses) = if summarise {
            let summary = summary::collect(&hospital, &record, &clients).await?;
            let statuses = summary.claims.by_status.clone();
            (Some(summary), statuses)
        } else {
            let mut statuses = std::collections::BTreeMap::new();
            for claim in cycle::claims_by_control_number(&clients, &record.control_numbers).await? {
                *statuses
                    .entry(summary::status_name(claim.status()))
                    .or_insert(0) += 1;
            }
            (None, statuses)
        };
        anyhow::Ok(DayOutcome {
            target,
            record,
            claim_statuses,
            summary,
        })
    }
    .await;
    if let Some(suite) = suite {
        suite.stop().await?;
    }
    if let Some(path) = catalog_file {
        let _ = std::fs::remove_file(path);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_settings_name_the_catalog_and_the_fast_polls() {
        let path = std::path::Path::new("/tmp/a \"quoted\" dir/catalog.toml");
        let settings = suite_settings(path);
        assert_eq!(
            settings["payer_sim"]["catalog"].as_str(),
            Some("/tmp/a \"quoted\" dir/catalog.toml")
        );
        assert_eq!(
            settings["claims"]["submission"]["acknowledgement_poll_secs"].as_integer(),
            Some(1)
        );
        assert_eq!(
            settings["remittance"]["era_pickup"]["poll_secs"].as_integer(),
            Some(1)
        );
    }
}
