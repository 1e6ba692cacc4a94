//! `medbill serve` run as a process: where it listens, what a bind failure says, how a
//! configuration error is printed, the log format chosen, and what split mode says at start.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `medbill serve` command with no `MEDBILL_*` or `RUST_LOG` from the test's environment.
fn medbill(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medbill"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MEDBILL_") {
            cmd.env_remove(name);
        }
    }
    // Tests run side by side: each process takes a free port for /metrics, not the default.
    cmd.env("MEDBILL_METRICS__LISTEN", "127.0.0.1:0")
        .env_remove("RUST_LOG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Returns a loopback address nothing listens on (bound and released).
fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

/// Reads the child's stdout until a line contains `marker`; returns the lines read. Panics
/// (with stderr) when the process ends first.
fn stdout_until(child: &mut Child, marker: &str) -> Vec<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("UTF-8 stdout");
        let done = line.contains(marker);
        lines.push(line);
        if done {
            return lines;
        }
    }
    let _ = child.kill();
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    panic!("medbill ended before printing {marker:?}; stdout {lines:?}; stderr:\n{stderr}");
}

/// Stops the child and returns its stderr.
fn stop(mut child: Child) -> String {
    let _ = child.kill();
    let out = child.wait_with_output().expect("medbill exits");
    String::from_utf8(out.stderr).expect("UTF-8 stderr")
}

/// Runs a command that must fail; returns its stderr.
fn failure(mut cmd: Command) -> String {
    let out = cmd.output().expect("medbill runs");
    let stderr = String::from_utf8(out.stderr).expect("UTF-8 stderr");
    assert!(
        !out.status.success(),
        "expected a failure; stderr:\n{stderr}"
    );
    stderr
}

fn connects(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn payer_sim_alone_listens_on_the_listen_flag_and_logs_json_when_asked() {
    let addr = free_addr();
    let mut child = medbill(&[
        "--target",
        "payer-sim",
        "--listen",
        &addr.to_string(),
        "--log-format",
        "json",
    ])
    .spawn()
    .expect("medbill starts");
    let lines = stdout_until(&mut child, "payer-sim: CORE endpoint");
    assert_eq!(
        lines.last().map(String::as_str),
        Some(format!("payer-sim: CORE endpoint http://{addr}/core").as_str())
    );
    assert!(connects(addr), "nothing listens on {addr}");
    let stderr = stop(child);
    let first = stderr.lines().next().expect("a log line");
    let line: serde_json::Value = serde_json::from_str(first)
        .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {first}"));
    assert!(line.get("level").is_some(), "{first}");
}

#[test]
fn pretty_logs_stay_pretty() {
    let addr = free_addr();
    let mut child = medbill(&[
        "--target",
        "payer-sim",
        "--listen",
        &addr.to_string(),
        "--log-format",
        "pretty",
    ])
    .spawn()
    .expect("medbill starts");
    stdout_until(&mut child, "payer-sim: CORE endpoint");
    let stderr = stop(child);
    assert!(stderr.contains("payer-sim listening"), "{stderr}");
    assert!(
        stderr.lines().all(|l| !l.trim_start().starts_with('{')),
        "{stderr}"
    );
}

#[test]
fn every_bind_failure_names_the_listener_and_its_address() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("its address");
    let data = tempfile::tempdir().expect("a temp dir");
    let data_dir = data.path().to_str().expect("UTF-8 path");

    // payer-sim alone, on --listen.
    let stderr = failure(medbill(&[
        "--target",
        "payer-sim",
        "--listen",
        &addr.to_string(),
    ]));
    assert!(
        stderr.contains(&format!("payer-sim listener {addr}: ")),
        "{stderr}"
    );
    assert!(stderr.to_lowercase().contains("in use"), "{stderr}");

    // payer-sim beside the services, on payer_sim.listen.
    let mut cmd = medbill(&[
        "--target",
        "all",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data_dir,
    ]);
    cmd.env("MEDBILL_PAYER_SIM__LISTEN", addr.to_string());
    let stderr = failure(cmd);
    assert!(
        stderr.contains(&format!("payer-sim listener {addr}: ")),
        "{stderr}"
    );

    // The gRPC listener.
    let stderr = failure(medbill(&[
        "--target",
        "collections",
        "--listen",
        &addr.to_string(),
        "--data-dir",
        data_dir,
    ]));
    assert!(
        stderr.contains(&format!("gRPC listener {addr}: ")),
        "{stderr}"
    );
    drop(taken);
}

#[test]
fn a_configuration_error_is_printed_once_naming_the_key_as_written() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("medbill.toml");
    std::fs::write(&file, "[grpc]\nrequest_timout_ms = 5\n").expect("write");
    let stderr = failure(medbill(&["--config", file.to_str().expect("UTF-8")]));
    assert_eq!(stderr.matches("request_timout_ms").count(), 1, "{stderr}");
    assert!(stderr.contains("grpc.request_timout_ms (in "), "{stderr}");
    assert!(!stderr.contains("default."), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");

    let mut cmd = medbill(&[]);
    cmd.env("MEDBILL_GRPC__REQUEST_TIMEOUT_MS", "soon");
    let stderr = failure(cmd);
    assert_eq!(
        stderr.matches("MEDBILL_GRPC__REQUEST_TIMEOUT_MS").count(),
        1,
        "{stderr}"
    );

    // A service's section is checked whichever service runs, and an unclaimed table is refused.
    std::fs::write(&file, "[eligibility]\ncache_tll_secs = 1\n").expect("write");
    let stderr = failure(medbill(&[
        "--config",
        file.to_str().expect("UTF-8"),
        "--target",
        "claims",
    ]));
    assert!(
        stderr.contains("eligibility.cache_tll_secs (in "),
        "{stderr}"
    );
    std::fs::write(&file, "[eligibilty]\ncache_ttl_secs = 1\n").expect("write");
    let stderr = failure(medbill(&["--config", file.to_str().expect("UTF-8")]));
    assert!(stderr.contains("eligibilty (in "), "{stderr}");
    assert!(stderr.contains("unknown key"), "{stderr}");
}

#[test]
fn split_mode_eligibility_without_payers_says_so_at_start() {
    let data = tempfile::tempdir().expect("a temp dir");
    let mut child = medbill(&[
        "--target",
        "eligibility",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.path().to_str().expect("UTF-8"),
    ])
    .spawn()
    .expect("medbill starts");
    let lines = stdout_until(&mut child, "medbill listening");
    // The metrics line names the port actually taken, and it answers in Prometheus text.
    let metrics = lines
        .iter()
        .find_map(|l| l.strip_prefix("metrics: http://"))
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .and_then(|addr| addr.parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no metrics line in {lines:?}"));
    let mut stream = TcpStream::connect(metrics).expect("the metrics listener answers");
    std::io::Write::write_all(
        &mut stream,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .expect("request sent");
    let mut body = String::new();
    stream.read_to_string(&mut body).expect("response read");
    stop(child);
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("# TYPE"), "{body}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("eligibility: no [[payers]] configured")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("eligibility: no provider configured")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("eligibility: database sqlite://")),
        "{lines:?}"
    );
}

/// Waits (up to 30 s) until `check` returns `Some`.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The zero-setup binary pays claims: `medbill serve --target all` with nothing but a data
/// directory and two poll intervals; a claim created, scrubbed and submitted through the gRPC
/// clients is accepted and paid by the payer-sim inside, its 835 retrieved and posted by
/// remittance, and the copay reaches the patient's ledger.
#[test]
fn the_zero_setup_binary_pays_a_claim_and_posts_the_copay() {
    use medbill_proto::claims::v1 as claims;
    use medbill_proto::collections::v1 as collections;
    use medbill_proto::eligibility::v1 as eligibility;
    use medbill_testkit::fixtures::{billing_provider, patient_demographics, register_provider};
    use medbill_testkit::{Caller, channel_to};

    let dir = tempfile::tempdir().expect("a data directory");
    let addr = free_addr();
    let mut cmd = medbill(&[
        "--target",
        "all",
        "--listen",
        &addr.to_string(),
        "--data-dir",
        &dir.path().display().to_string(),
    ]);
    cmd.env("MEDBILL_PAYER_SIM__LISTEN", "127.0.0.1:0")
        .env("MEDBILL_CLAIMS__SUBMISSION__ACKNOWLEDGEMENT_POLL_SECS", "1")
        .env("MEDBILL_REMITTANCE__ERA_PICKUP__POLL_SECS", "1");
    let mut child = cmd.spawn().expect("medbill starts");
    // Its output is read to the end while it runs: a closed or full pipe would stop it.
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let started = stdout
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("medbill listening on"));
    assert!(started, "medbill ended before listening");
    std::thread::spawn(move || stdout.for_each(drop));
    let mut stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let url = format!("http://{addr}");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let mut elig = eligibility::eligibility_service_client::EligibilityServiceClient::new(
            channel_to(&url, Caller::Anonymous),
        );
        let coverage = elig
            .create_coverage(eligibility::CreateCoverageRequest {
                idempotency_key: "cov-zero".into(),
                patient_ref: "ehr-zero".into(),
                payer_id: "SIMPPO".into(),
                payer_name: "SIMULATED PPO HEALTH".into(),
                coverage_order: eligibility::CoverageOrder::Primary.into(),
                member_id: "SPX100000001".into(),
                subscriber_first_name: "AVERY".into(),
                subscriber_last_name: "TESTPATIENT".into(),
                subscriber_birth_date: "1985-03-14".into(),
                effective_date: "2026-01-01".into(),
                ..Default::default()
            })
            .await
            .expect("a coverage")
            .into_inner()
            .coverage
            .expect("a coverage")
            .id;
        let mut c = claims::claims_service_client::ClaimsServiceClient::new(channel_to(
            &url,
            Caller::Anonymous,
        ));
        register_provider(&mut c, billing_provider())
            .await
            .expect("a provider");
        let claim = c
            .create_claim(claims::CreateClaimRequest {
                idempotency_key: "c-zero".into(),
                claim: Some(claims::ClaimInput {
                    patient_control_number: "ZERO-1".into(),
                    claim_type: claims::ClaimType::Professional.into(),
                    coverage_id: coverage,
                    payer_id: "SIMPPO".into(),
                    patient_ref: "ehr-zero".into(),
                    billing_provider_npi: billing_provider().npi,
                    place_of_service: "11".into(),
                    diagnoses: vec!["I10".into()],
                    lines: vec![claims::ClaimLine {
                        procedure_code: "99213".into(),
                        charge: "130.00".into(),
                        units: "1".into(),
                        service_date: "2026-05-04".into(),
                        diagnosis_pointers: vec![1],
                        ..Default::default()
                    }],
                    demographics: Some(patient_demographics()),
                    ..Default::default()
                }),
            })
            .await
            .expect("a claim")
            .into_inner()
            .claim
            .expect("a claim");
        let scrubbed = c
            .scrub_claim(claims::ScrubClaimRequest {
                idempotency_key: "s-zero".into(),
                claim_id: claim.id.clone(),
            })
            .await
            .expect("scrubbed")
            .into_inner();
        assert!(scrubbed.passed, "{:?}", scrubbed.findings);
        c.submit_claims(claims::SubmitClaimsRequest {
            idempotency_key: "sub-zero".into(),
            ..Default::default()
        })
        .await
        .expect("submitted");
        let id = claim.id.clone();
        let paid = eventually("the claim PAID", || {
            let mut c = c.clone();
            let id = id.clone();
            async move {
                let claim = c
                    .get_claim(claims::GetClaimRequest { id })
                    .await
                    .ok()?
                    .into_inner()
                    .claim?;
                (claim.status() == claims::ClaimStatus::Paid).then_some(claim)
            }
        })
        .await;
        assert_eq!(paid.patient_control_number, "ZERO-1");
        // 99213 at SIMPPO: 100.00 allowed, 25.00 copay (PR-3), 75.00 paid.
        let ledger = collections::collections_service_client::CollectionsServiceClient::new(
            channel_to(&url, Caller::Anonymous),
        );
        eventually("the copay on the ledger", || {
            let mut l = ledger.clone();
            async move {
                let accounts = l
                    .list_accounts(collections::ListAccountsRequest {
                        patient_ref: "ehr-zero".into(),
                        ..Default::default()
                    })
                    .await
                    .ok()?
                    .into_inner()
                    .accounts;
                accounts.iter().any(|a| a.balance == "25.00").then_some(())
            }
        })
        .await;
    });
    let _ = child.kill();
    let _ = child.wait();
}
