//! `medbill bench cycle`: the `medbill demo` day at scale, each stage timed.
//!
//! ```text
//! medbill bench cycle --encounters 100000
//! medbill bench cycle --encounters 100000 --database-url postgres://postgres@127.0.0.1:5432/cycle
//! ```
//!
//! The same synthetic hospital, the same stages and the same public gRPC calls as the demo
//! (see `crate::demo`), without progress bars and without the summary's per-account ledger
//! reads; it prints each stage's items, time and rate, the whole day's time and the slowest
//! stage, then the claims by status (so a run that lost claims shows it).

use std::fmt::Write as _;

use super::load::Table;
use crate::demo::{self, DemoArgs};

/// Runs the day and returns its figures as text.
///
/// # Errors
/// As `medbill demo`: bad arguments, the suite cannot be started or reached, a stage fails.
pub async fn run(args: DemoArgs) -> anyhow::Result<String> {
    let day = chrono::NaiveDate::parse_from_str(&args.day, "%Y-%m-%d")?;
    let outcome = demo::run_day(&args, day, false).await?;
    let stages = &outcome.record.stages;
    let mut out = format!(
        "bench cycle: {} encounters (seed {}), {}, concurrency {}\n\n",
        args.encounters, args.seed, outcome.target, args.concurrency
    );
    let mut table = Table::new(&["stage", "items", "seconds", "items/s"]);
    let total: f64 = stages.iter().map(|s| s.seconds).sum();
    for s in stages {
        table.row(vec![
            s.stage.to_owned(),
            s.items.to_string(),
            format!("{:.2}", s.seconds),
            rate(s.items, s.seconds),
        ]);
    }
    table.row(vec![
        "whole day".to_owned(),
        args.encounters.to_string(),
        format!("{total:.2}"),
        rate(args.encounters as u64, total),
    ]);
    write!(out, "{table}")?;
    if let Some(slowest) = stages.iter().max_by(|a, b| a.seconds.total_cmp(&b.seconds)) {
        writeln!(
            out,
            "\nslowest stage: {} ({:.0} % of the day)",
            slowest.stage,
            100.0 * slowest.seconds / total.max(f64::EPSILON)
        )?;
    }
    let statuses: Vec<String> = outcome
        .claim_statuses
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    writeln!(out, "claims: {}", statuses.join(", "))?;
    Ok(out)
}

fn rate(items: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return "-".to_owned();
    }
    format!("{:.0}", items as f64 / seconds)
}
