//! `medbill serve` run as a process: where it listens, what a bind failure says, how a
//! configuration error is printed, the log format chosen, what split mode says at start, TLS,
//! `medbill health`, and the zero-setup binary paying a claim end to end.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{connects, failure, free_addr, medbill, spawn_listening, stdout_until, stop};

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

/// The address a started medbill printed in its "medbill listening on ADDR (...)" line.
fn listening_addr(lines: &[String]) -> SocketAddr {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("medbill listening on "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no listening line in {lines:?}"))
}

#[test]
fn medbill_health_says_serving_for_a_running_service_and_fails_when_none_listens() {
    let data = tempfile::tempdir().expect("a temp dir");
    let mut child = medbill(&[
        "--target",
        "claims",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.path().to_str().expect("UTF-8"),
    ])
    .spawn()
    .expect("medbill starts");
    let url = format!(
        "http://{}",
        listening_addr(&stdout_until(&mut child, "medbill listening"))
    );
    let health = |service: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_medbill"))
            .args(["health", "--url", &url, "--service", service])
            .output()
            .expect("medbill health runs")
    };
    let whole = health("");
    let claims = health("medbill.claims.v1.ClaimsService");
    let other = health("medbill.collections.v1.CollectionsService");
    stop(child);
    let closed = health("");

    assert!(whole.status.success(), "{whole:?}");
    assert_eq!(String::from_utf8_lossy(&whole.stdout), "server: SERVING\n");
    assert!(claims.status.success(), "{claims:?}");
    // A service this process does not run is not SERVING here.
    assert!(!other.status.success(), "{other:?}");
    assert!(!closed.status.success(), "{closed:?}");
    assert!(
        String::from_utf8_lossy(&closed.stderr).contains("cannot connect"),
        "{closed:?}"
    );
}

#[test]
fn a_tls_listener_with_client_certificates_answers_medbill_health_only_with_one() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let dir = tempfile::tempdir().expect("a temp dir");
    let write = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).expect("write");
        path.to_str().expect("UTF-8").to_owned()
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "medbill test CA");
    let ca_key = KeyPair::generate().expect("key");
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let issue = |name: &str| {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec![name.to_owned()])
            .expect("params")
            .signed_by(&key, &ca, &ca_key)
            .expect("signed");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = issue("localhost");
    let (client_cert, client_key) = issue("ehr.example");
    let ca_file = write("ca.crt", &ca.pem());
    let data = dir.path().join("data");
    let mut child = medbill(&[
        "--target",
        "eligibility",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().expect("UTF-8"),
    ])
    .env("MEDBILL_TLS__CERT", write("tls.crt", &server_cert))
    .env("MEDBILL_TLS__KEY", write("tls.key", &server_key))
    .env("MEDBILL_TLS__CLIENT_CA", &ca_file)
    .spawn()
    .expect("medbill starts");
    let lines = stdout_until(&mut child, "medbill listening");
    let port = listening_addr(&lines).port();
    let health = |url: String, with_cert: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_medbill"));
        cmd.args(["health", "--url", &url, "--ca-file", &ca_file]);
        if with_cert {
            cmd.args(["--cert-file", &write("client.crt", &client_cert)])
                .args(["--key-file", &write("client.key", &client_key)]);
        }
        cmd.output().expect("medbill health runs")
    };
    let mutual = health(format!("https://localhost:{port}"), true);
    let no_cert = health(format!("https://localhost:{port}"), false);
    let plaintext = health(format!("http://127.0.0.1:{port}"), false);
    stop(child);

    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("tls: on, client certificates required")),
        "{lines:?}"
    );
    assert!(mutual.status.success(), "{mutual:?}");
    assert!(!no_cert.status.success(), "{no_cert:?}");
    assert!(!plaintext.status.success(), "{plaintext:?}");
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
    use medbill_testkit::fixtures::{
        billing_provider, demo_member_coverage, office_visit_claim, register_provider,
    };
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
    let mut child = spawn_listening(cmd);
    let url = format!("http://{addr}");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let mut elig = eligibility::eligibility_service_client::EligibilityServiceClient::new(
            channel_to(&url, Caller::Anonymous),
        );
        let coverage = elig
            .create_coverage(demo_member_coverage("cov-zero", "ehr-zero"))
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
                claim: Some(office_visit_claim("ZERO-1", &coverage, "ehr-zero")),
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

/// The collections story (`medbill_testkit::collections_story`) told through the zero-setup
/// binary, its months walked on the training clock (`[collections.training_clock]`).
#[test]
fn the_zero_setup_binary_tells_the_collections_story_on_a_training_clock() {
    use medbill_testkit::collections_story::{self, AGENCY, AGENCY_FEE_RATE, day};
    use medbill_testkit::{Caller, channel_to};

    let dir = tempfile::tempdir().expect("a data directory");
    let today = dir.path().join("today");
    std::fs::write(&today, day(0).to_string()).expect("write the date");
    let file = dir.path().join("medbill.toml");
    std::fs::write(
        &file,
        format!(
            "[collections.training_clock]\ndate_file = {:?}\n\n\
             [[collections.agencies]]\nid = \"{AGENCY}\"\nfee_rate = \"{AGENCY_FEE_RATE}\"\n",
            today.display().to_string()
        ),
    )
    .expect("write the config");
    let addr = free_addr();
    let mut cmd = medbill(&[
        "--config",
        file.to_str().expect("UTF-8"),
        "--target",
        "all",
        "--listen",
        &addr.to_string(),
        "--data-dir",
        &dir.path().display().to_string(),
    ]);
    cmd.env("MEDBILL_PAYER_SIM__LISTEN", "127.0.0.1:0");
    let mut child = spawn_listening(cmd);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let told = runtime.block_on(async {
        let mut c = medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient::new(
            channel_to(&format!("http://{addr}"), Caller::Anonymous),
        );
        collections_story::run(&mut c, &|date| Ok(std::fs::write(&today, date.to_string())?))
            .await
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = told {
        panic!("the story failed through the binary: {e:#}");
    }
}

#[test]
fn a_training_clock_is_refused_where_callers_are_authenticated() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let today = dir.path().join("today");
    std::fs::write(&today, "2026-01-05").expect("write the date");
    let file = dir.path().join("medbill.toml");
    std::fs::write(
        &file,
        format!(
            "[auth.tokens]\n\"a-long-enough-test-token\" = \"tenant-a\"\n\n\
             [collections.training_clock]\ndate_file = {:?}\n",
            today.display().to_string()
        ),
    )
    .expect("write the config");
    let stderr = failure(medbill(&[
        "--config",
        file.to_str().expect("UTF-8"),
        "--target",
        "collections",
        "--data-dir",
        &dir.path().display().to_string(),
    ]));
    assert!(stderr.contains("collections.training_clock"), "{stderr}");
    assert!(
        stderr.contains("training and test environments only"),
        "{stderr}"
    );
}
