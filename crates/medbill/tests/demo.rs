//! `medbill demo` against `medbill serve` processes, on SQLite and PostgreSQL: a fixed seed's
//! day runs through every stage, the summary's figures equal what the services' RPCs report,
//! and they equal the figures worked out by hand for that seed (see `expected_day`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{free_addr, medbill, medbill_command, spawn_listening, stop_gracefully};
use medbill_proto::claims::v1 as claims;
use medbill_proto::collections::v1 as coll;
use medbill_proto::remittance::v1 as remit;
use medbill_storage::Backend;
use medbill_storage::testing::{self, TestEnv};
use medbill_testkit::{Caller, channel_to};
use rust_decimal::Decimal;

const SEED: &str = "7";
const ENCOUNTERS: &str = "40";

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Writes the suite configuration, starts `medbill serve` with it, runs `medbill demo --url`
/// and checks its summary against the services.
async fn day(database_url: Option<&str>) {
    let dir = tempfile::tempdir().expect("a directory");
    let suite = dir.path().join("suite");
    let out = medbill_command(
        "demo",
        &[
            "--write-suite",
            path(&suite),
            "--seed",
            SEED,
            "--encounters",
            ENCOUNTERS,
        ],
    )
    .output()
    .expect("medbill demo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let addr = free_addr();
    let listen = addr.to_string();
    let config = suite.join("suite.toml");
    let data = dir.path().join("data");
    let mut args = vec![
        "--target",
        "all",
        "--listen",
        &listen,
        "--config",
        path(&config),
        "--data-dir",
        path(&data),
    ];
    if let Some(url) = database_url {
        args.extend(["--database-url", url]);
    }
    let mut cmd = medbill(&args);
    cmd.env("MEDBILL_PAYER_SIM__LISTEN", "127.0.0.1:0");
    let serve = spawn_listening(cmd);
    let url = format!("http://{addr}");

    let json = dir.path().join("day.json");
    let demo = tokio::task::spawn_blocking({
        let (url, json) = (url.clone(), json.clone());
        move || {
            medbill_command(
                "demo",
                &[
                    "--url",
                    &url,
                    "--seed",
                    SEED,
                    "--encounters",
                    ENCOUNTERS,
                    "--json",
                    path(&json),
                    "--quiet",
                    "--wait-secs",
                    "120",
                ],
            )
            .output()
            .expect("medbill demo runs")
        }
    })
    .await
    .expect("the demo's thread");
    let printed = String::from_utf8_lossy(&demo.stdout).into_owned();
    assert!(
        demo.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the JSON summary")).expect("JSON");
    assert!(printed.contains("first-pass acceptance"), "{printed}");

    against_the_services(&url, &summary).await;
    assert_eq!(expected_day(), worked_out(&summary), "{printed}");
    stop_gracefully(serve);
}

/// Every figure of the summary, read again from the services by a separate client.
async fn against_the_services(url: &str, summary: &serde_json::Value) {
    let channel = channel_to(url, Caller::Anonymous);
    let mut c = claims::claims_service_client::ClaimsServiceClient::new(channel.clone());
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut charged = Decimal::ZERO;
    let mut secondary = 0u64;
    let mut page_token = String::new();
    loop {
        let page = c
            .list_claims(claims::ListClaimsRequest {
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await
            .expect("ListClaims")
            .into_inner();
        // The demo's own claims; the secondary (COB) claims the suite made are counted apart.
        for claim in &page.claims {
            if claim.primary_claim_id.is_empty() {
                *by_status
                    .entry(
                        claim
                            .status()
                            .as_str_name()
                            .trim_start_matches("CLAIM_STATUS_")
                            .to_owned(),
                    )
                    .or_insert(0) += 1;
                charged += claim.total_charge.parse::<Decimal>().expect("a charge");
            } else {
                secondary += 1;
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let reported: BTreeMap<String, u64> =
        serde_json::from_value(summary["claims"]["by_status"].clone()).expect("by_status");
    assert_eq!(reported, by_status);
    assert_eq!(
        summary["dollars"]["charged"],
        charged.round_dp(2).to_string()
    );
    assert_eq!(summary["claims"]["secondary_claims"], secondary);

    let mut r = remit::remittance_service_client::RemittanceServiceClient::new(channel.clone());
    let denials = r
        .list_denials(remit::ListDenialsRequest::default())
        .await
        .expect("ListDenials")
        .into_inner();
    assert_eq!(summary["denials"]["total"], denials.total_count);

    let mut l = coll::collections_service_client::CollectionsServiceClient::new(channel);
    let mut owed = Decimal::ZERO;
    let mut page_token = String::new();
    loop {
        let page = l
            .list_accounts(coll::ListAccountsRequest {
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await
            .expect("ListAccounts")
            .into_inner();
        for a in &page.accounts {
            owed += a.balance.parse::<Decimal>().expect("a balance");
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(
        summary["dollars"]["owed_by_patients"],
        owed.round_dp(2).to_string()
    );
    assert_eq!(
        summary["patient_aging"]["total"],
        owed.round_dp(2).to_string()
    );
    // Every dollar the patients were billed is collected, written off or still owed.
    let d = |k: &str| {
        summary["dollars"][k]
            .as_str()
            .expect("a decimal string")
            .parse::<Decimal>()
            .expect("a decimal")
    };
    assert_eq!(
        d("collected") + d("written_off") + d("owed_by_patients"),
        d("patient_responsibility") + d("self_pay_billed")
    );
}

/// The figures of the summary that the seed decides, as one comparable map.
fn worked_out(summary: &serde_json::Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut put = |k: &str, v: &serde_json::Value| {
        out.insert(k.to_owned(), v.to_string().trim_matches('"').to_owned());
    };
    put("scenarios", &summary["scenarios"]);
    put("claims.by_status", &summary["claims"]["by_status"]);
    put("claims.held_by_edit", &summary["claims"]["held_by_edit"]);
    put(
        "claims.first_pass",
        &summary["claims"]["first_pass_acceptance_rate"],
    );
    put("claims.secondary", &summary["claims"]["secondary_claims"]);
    for k in [
        "charged",
        "allowed",
        "paid_by_insurance",
        "patient_responsibility",
        "self_pay_billed",
        "collected",
        "written_off",
        "owed_by_patients",
    ] {
        put(&format!("dollars.{k}"), &summary["dollars"][k]);
    }
    let reasons: Vec<String> = summary["denials"]["by_reason"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| format!("{}x{}={}", r["reason"], r["count"], r["amount"]).replace('"', ""))
        .collect();
    put("denials", &serde_json::Value::String(reasons.join(" ")));
    put("patient_choices", &summary["patient_choices"]);
    out
}

/// Seed 7, 40 encounters, worked out by hand from the generator's mix (the first 15 are one of
/// each scenario), payer-sim's catalog (fee schedules, unlisted rates, copays, deductibles,
/// out-of-pocket maximum; the generated members have met nothing yet) and the suite's rules.
fn expected_day() -> BTreeMap<String, String> {
    let mut e = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        e.insert(k.to_owned(), v.to_owned());
    };
    put(
        "scenarios",
        r#"{"BadDiagnosis":3,"DeductibleVisit":3,"Duplicate":1,"EmergencyVisit":4,"HmoVisit":3,"InvalidModifier":2,"KneeReplacement":3,"MissingAuthorization":3,"NotCoveredOnDate":2,"NotCoveredService":2,"OfficeVisit":8,"RetroTerminated":1,"SecondaryCoverage":2,"SelfPay":2,"TimelyFilingMiss":1}"#,
    );
    // 38 claims (40 less 2 self-pay). HELD: 3 header diagnoses (E11) + 1 timely filing. Sent 34:
    // REJECTED by the 277CA: the 2 members whose coverage ended before the visit. DENIED 7:
    // 3 CT scans without authorization (CO-197), 2 therapy lines with modifier GO (CO-4), the
    // retro-terminated member (CO-27), the duplicate (OA-18). PAID 25: 8 office + 1 original of
    // the duplicate + 3 HSA + 3 HMO + 4 emergency + 3 knee + 2 with a secondary plan + 2 LASIK
    // (PR-204: the payer pays nothing and the patient owes all, which is a processed claim).
    put(
        "claims.by_status",
        r#"{"DENIED":7,"HELD":4,"PAID":25,"REJECTED":2}"#,
    );
    put(
        "claims.held_by_edit",
        r#"{"ICD10_NOT_BILLABLE":3,"TIMELY_FILING":1}"#,
    );
    put("claims.first_pass", "94.1%"); // 32 of 34
    // The two patients with an HMO second plan, after PPO-GOLD paid and left their share.
    put("claims.secondary", "2");
    put(
        "denials",
        "CO-197x3=3600.00 CO-4x2=180.00 PR-204x2=4200.00 CO-27x1=185.00 OA-18x1=185.00",
    );
    // 21 office-type visits x 185.00 (99213 150 + 85025 35) + 3 x 245.00 (99214 + 85025) +
    // 4 x 945.00 (emergency) + 3 x 32,000 (knee) + 3 x 1,200 (CT) + 2 x 90 + 2 x 2,100.
    put("dollars.charged", "112380.00");
    // Allowed: PPO office 100 + 12 (x10), HMO 90 + 21 (unlisted 85025 at 0.6, x3), HSA 150 + 12
    // (x3), emergency 630 (unlisted 0.7 x 900) + 12 (x4), knee 22,400 (0.7 x 32,000, x3).
    put("dollars.allowed", "71707.00");
    // Paid: PPO office 75 (copay 25; the lab goes to the deductible) x10 = 750, HMO 70 x3 =
    // 210, HSA and emergency 0 (all deductible), knee 22,400 - 5,000 out-of-pocket = 17,400 x3.
    put("dollars.paid_by_insurance", "53160.00");
    // Patients' share: 37 x10 + 41 x3 + 162 x3 + 642 x4 + 5,000 x3 + 2,100 x2 (PR-204).
    put("dollars.patient_responsibility", "22747.00");
    put("dollars.self_pay_billed", "370.00"); // 2 x 185.00, no self-pay discount configured
    // After the statements: 12 pay in full, 2 are granted assistance, 1 takes a plan (the
    // seeded choices); collected + written off + owed = 22,747 + 370.
    put("dollars.collected", "8809.00");
    put("dollars.written_off", "226.00");
    put("dollars.owed_by_patients", "14082.00");
    put(
        "patient_choices",
        r#"{"financial assistance":2,"not paid yet":12,"paid in full":12,"payment plan":1}"#,
    );
    e
}

#[test]
fn a_day_at_the_hospital_adds_up_on_sqlite() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(day(None));
}

#[test]
fn a_day_at_the_hospital_adds_up_on_postgres() {
    testing::run(
        Backend::Postgres,
        "a_day_at_the_hospital_adds_up_on_postgres",
        "demo_day",
        None,
        |env: TestEnv| async move { day(Some(env.url())).await },
    );
}
