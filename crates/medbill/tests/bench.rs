//! The claims and cycle benches at a tiny size, in process on SQLite: every phase runs and the
//! figures add up.
//! Nothing is asserted on time.

use medbill::bench::claims::{self, Mode, Plan};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claims_bench_creates_scrubs_and_submits_fifty_claims() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let plan = Plan {
        url: None,
        token: None,
        concurrency: 8,
        connections: 2,
        claims: 50,
        duration: None,
        mode: Mode::All,
        database_url: Some(format!("sqlite://{}/", dir.path().display())),
        data_dir: Some(dir.path().to_owned()),
        date_of_service: "2026-05-04".to_owned(),
        batch: 0,
        batch_concurrency: 1,
    };
    let report = claims::run(&plan).await?;
    let printed = report.to_string();
    let (create, created) = report.create.as_ref().expect("create phase");
    assert_eq!(
        (create.ok, create.error_count(), *created),
        (50, 0, 50),
        "{printed}"
    );
    let (scrub, scrubbed, passed) = report.scrub.as_ref().expect("scrub phase");
    assert_eq!(
        (scrub.ok, *scrubbed, *passed),
        (50, 50, 50),
        "every claim scrubs clean: {printed}"
    );
    let submit = report.submit.as_ref().expect("submit phase");
    assert_eq!(submit.claims, 50, "{printed}");
    assert_eq!((submit.batches, submit.failed_batches), (1, 0), "{printed}");
    // One call with the batch, one that finds nothing READY.
    assert_eq!(submit.calls.ok, 2, "{printed}");
    assert!(submit.rss_peak >= submit.rss_before, "{printed}");
    assert!(printed.contains("| CreateClaim "), "{printed}");
    assert!(printed.contains("| SubmitClaims (per call) "), "{printed}");

    // A mode measures its phase and marks the ones it needed as preparation.
    let plan = Plan {
        claims: 5,
        mode: Mode::Scrub,
        ..plan
    };
    let report = claims::run(&plan).await?;
    assert!(report.submit.is_none());
    assert_eq!(report.scrub.as_ref().map(|s| s.2), Some(5));
    assert!(
        report.to_string().contains("| CreateClaim (prep) "),
        "{report}"
    );

    // The batch path: 45 claims in calls of 20 (the last carries 5), every one created,
    // scrubbed clean and submitted (in a fresh database: the run above left five READY).
    let dir = tempfile::tempdir()?;
    let plan = Plan {
        database_url: Some(format!("sqlite://{}/", dir.path().display())),
        data_dir: Some(dir.path().to_owned()),
        claims: 45,
        mode: Mode::All,
        batch: 20,
        batch_concurrency: 2,
        ..plan
    };
    let report = claims::run(&plan).await?;
    let printed = report.to_string();
    let (create, created) = report.create.as_ref().expect("create phase");
    assert_eq!(
        (create.ok, create.flagged, *created),
        (3, 0, 45),
        "{printed}"
    );
    let (scrub, scrubbed, passed) = report.scrub.as_ref().expect("scrub phase");
    assert_eq!((scrub.ok, *scrubbed, *passed), (3, 45, 45), "{printed}");
    assert_eq!(
        report.submit.as_ref().map(|s| s.claims),
        Some(45),
        "{printed}"
    );
    assert!(printed.contains("| CreateClaims (20 a call) "), "{printed}");
    assert!(printed.contains("| ScrubClaims (20 a call) "), "{printed}");
    Ok(())
}

/// The whole-cycle bench at a tiny size: every stage is timed and every claim made is
/// accounted for at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cycle_bench_times_every_stage_of_a_small_day() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let args = medbill::demo::DemoArgs {
        url: None,
        eligibility_url: None,
        claims_url: None,
        remittance_url: None,
        collections_url: None,
        token: None,
        encounters: 20,
        seed: 3,
        day: "2026-09-15".to_owned(),
        concurrency: 8,
        // Several batch calls per stage (the demo's tests run one call per stage).
        batch: 6,
        batch_concurrency: 2,
        wait_secs: Some(120),
        json: None,
        database_url: Some(format!("sqlite://{}/", dir.path().display())),
        data_dir: Some(dir.path().to_owned()),
        write_suite: None,
        quiet: true,
    };
    let printed = medbill::bench::cycle::run(args).await?;
    for stage in [
        "on file",
        "eligibility",
        "claims",
        "scrub",
        "submit",
        "payer acknowledgements",
        "payment",
        "patient ledgers",
        "statements",
        "patient payments",
        "whole day",
    ] {
        assert!(
            printed.contains(&format!("| {stage} ")),
            "{stage}: {printed}"
        );
    }
    let created: u64 = printed
        .lines()
        .find(|l| l.starts_with("| claims "))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|n| n.trim().parse().ok())
        .expect("the claims stage's items");
    let at_the_end: u64 = printed
        .lines()
        .find_map(|l| l.strip_prefix("claims: "))
        .expect("the claims by status")
        .split(", ")
        .filter_map(|s| s.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(created, at_the_end, "{printed}");
    assert!(
        created >= 15,
        "20 encounters less the self-pay ones: {printed}"
    );
    Ok(())
}
