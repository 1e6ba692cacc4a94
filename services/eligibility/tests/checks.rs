//! CheckEligibility, GetEligibilityCheck, ListEligibilityChecks and EstimatePatientCost through
//! the generated gRPC client, against payer-sim over the real CORE HTTP transport (its built-in
//! demo catalog: synthetic members), on SQLite and, when `MEDBILL_TEST_PG_URL` is set, PostgreSQL.

use std::collections::BTreeMap;

use medbill_connect::{Connections, CoreHttpConfig, PayerConnection, RetryPolicy, TransportConfig};
use medbill_eligibility::{
    EligibilityConfig, EligibilityService, EligibilitySettings, FeeScheduleConfig, ProviderConfig,
    open_store,
};
use medbill_payer_sim::{Fault, PayerSimConfig, PayerSimHandle};
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as pb;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_runtime::client::TracedChannel;
use medbill_storage::Database;
use medbill_testkit::{Caller, TestServer};
use tonic::Code;

type Client = EligibilityServiceClient<TracedChannel>;

/// Date of service used throughout (the catalog's active members start 2026-01-01).
const DOS: &str = "2026-03-02";
/// Attempts the connection makes before giving up.
const ATTEMPTS: u32 = 3;

struct Env {
    server: TestServer,
    sim: PayerSimHandle,
}

impl Env {
    fn client(&self, caller: Caller) -> Client {
        EligibilityServiceClient::new(self.server.channel(caller))
    }

    fn payer_calls(&self) -> u64 {
        self.sim.requests_received()
    }
}

fn payer(sim: &PayerSimHandle, id: &str, request_timeout_ms: u64) -> PayerConnection {
    let mut http = CoreHttpConfig::new(sim.url());
    http.request_timeout_ms = request_timeout_ms;
    PayerConnection {
        payer_id: id.into(),
        sender_id: "MEDBILL01".into(),
        receiver_id: "MEDBILLSIM".into(),
        transport: TransportConfig::CoreHttp(http),
        batch_transport: None,
        retry: RetryPolicy {
            max_attempts: ATTEMPTS,
            initial_backoff_ms: 5,
            max_backoff_ms: 20,
            multiplier: 2,
            jitter: false,
        },
    }
}

fn config() -> EligibilityConfig {
    EligibilityConfig {
        cache_ttl_secs: 3600,
        default_provider: Some(ProviderConfig {
            npi: "1234567893".into(),
            organization_name: "SUNRISE FAMILY MEDICINE".into(),
            tax_id: None,
        }),
        fee_schedules: vec![
            FeeScheduleConfig {
                tenant: medbill_testkit::TENANT_A.into(),
                payer_id: Some("SIMPPO".into()),
                allowed: BTreeMap::from([("99213".into(), "92.00".into())]),
            },
            FeeScheduleConfig {
                tenant: medbill_testkit::TENANT_A.into(),
                payer_id: None,
                allowed: BTreeMap::from([("99213".into(), "75.00".into())]),
            },
        ],
        ..EligibilityConfig::default()
    }
}

async fn setup_with(db: Database, request_timeout_ms: u64) -> anyhow::Result<Env> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = medbill_payer_sim::start(PayerSimConfig::default(), listener).await?;
    let payers = vec![
        payer(&sim, "SIMPPO", request_timeout_ms),
        payer(&sim, "SIMHMO", request_timeout_ms),
    ];
    let settings = EligibilitySettings::from_config(&config(), &payers)?;
    let connections = Connections::open(&payers)?;
    let store = open_store(db).await?;
    let service = EligibilityService::with_payers(store, connections, settings);
    let server = TestServer::start(tonic::service::Routes::new(service.into_server())).await;
    Ok(Env { server, sim })
}

async fn setup(db: Database) -> anyhow::Result<Env> {
    setup_with(db, 5_000).await
}

fn name(last: &str, first: &str) -> Option<common::PersonName> {
    Some(common::PersonName {
        last_name: last.into(),
        first_name: first.into(),
        ..Default::default()
    })
}

/// An inline check for a catalog member of SIMPPO.
fn inline(
    key: &str,
    member_id: &str,
    last: &str,
    first: &str,
    birth: &str,
) -> pb::CheckEligibilityRequest {
    pb::CheckEligibilityRequest {
        idempotency_key: key.into(),
        subject: Some(pb::check_eligibility_request::Subject::Inline(
            pb::InlineSubscriber {
                payer_id: "SIMPPO".into(),
                member_id: member_id.into(),
                subscriber_name: name(last, first),
                subscriber_birth_date: birth.into(),
                patient_ref: "pat-1".into(),
                ..Default::default()
            },
        )),
        date_of_service: DOS.into(),
        ..Default::default()
    }
}

fn avery(key: &str) -> pb::CheckEligibilityRequest {
    inline(key, "SPX100000001", "TESTPATIENT", "AVERY", "1985-03-14")
}

async fn check(
    c: &mut Client,
    req: pb::CheckEligibilityRequest,
) -> Result<pb::EligibilityCheck, tonic::Status> {
    c.check_eligibility(req)
        .await?
        .into_inner()
        .check
        .ok_or_else(|| tonic::Status::internal("response without check"))
}

async fn list(
    c: &mut Client,
    req: pb::ListEligibilityChecksRequest,
) -> anyhow::Result<pb::ListEligibilityChecksResponse> {
    Ok(c.list_eligibility_checks(req).await?.into_inner())
}

fn failed_only() -> pb::ListEligibilityChecksRequest {
    pb::ListEligibilityChecksRequest {
        status: pb::EligibilityCheckStatus::Failed as i32,
        ..Default::default()
    }
}

fn summary(c: &pb::EligibilityCheck) -> pb::BenefitSummary {
    c.summary.clone().unwrap_or_default()
}

medbill_storage::conformance_tests! {
    namespace = "eligibility";

    async fn an_active_member_gets_a_benefit_summary_and_the_exchange_is_kept(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        let got = check(&mut a, avery("k-1")).await?;
        assert_eq!(got.status, pb::EligibilityCheckStatus::Completed as i32);
        assert!(!got.from_cache);
        assert_eq!(got.payer_id, "SIMPPO");
        assert_eq!(got.date_of_service, DOS);
        assert_eq!(got.service_type_codes, vec!["30".to_owned()]);
        let s = summary(&got);
        assert_eq!(s.coverage_status, pb::CoverageStatus::Active as i32);
        assert_eq!(s.plan_name, "SIM PPO GOLD");
        assert_eq!(s.network_status, pb::NetworkStatus::InNetwork as i32);
        let ded = s.individual_deductible.clone().unwrap_or_default();
        assert_eq!((ded.total.as_str(), ded.remaining.as_str(), ded.met.as_str()), ("1500.00", "1250.00", "250.00"));
        let oop = s.individual_out_of_pocket.clone().unwrap_or_default();
        assert_eq!((oop.total.as_str(), oop.remaining.as_str()), ("5000.00", "4600.00"));
        assert_eq!(s.coinsurance_rate, "0.2");
        let office = s.service_types.iter().find(|t| t.service_type_code == "98").cloned().unwrap_or_default();
        assert_eq!(office.copay, "25.00");
        assert!(got.raw_request.is_empty() && got.raw_response.is_empty(), "raw only on request");
        assert_eq!(env.payer_calls(), 1);

        let stored = a.get_eligibility_check(pb::GetEligibilityCheckRequest { id: got.id.clone(), include_raw: true })
            .await?.into_inner().check.unwrap_or_default();
        let raw_270 = String::from_utf8(stored.raw_request.clone())?;
        let raw_271 = String::from_utf8(stored.raw_response.clone())?;
        assert!(raw_270.contains("ST*270*") && raw_270.contains(&format!("TRN*1*{}", got.trace_number)), "{raw_270}");
        assert!(raw_271.contains("ST*271*") && raw_271.contains(&format!("TRN*2*{}", got.trace_number)));
        assert_eq!(summary(&stored), s, "the stored summary is the answer returned");
        let mut without_raw = stored.clone();
        without_raw.raw_request.clear();
        without_raw.raw_response.clear();
        assert_eq!(without_raw, got);
        Ok(())
    }

    async fn inactive_not_found_and_bad_member_ids_are_told_apart(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        let inactive = check(&mut a, inline("k-1", "SPX100000004", "DEMOPERSON", "MORGAN", "1968-01-21")).await?;
        assert_eq!(inactive.status, pb::EligibilityCheckStatus::Completed as i32);
        assert_eq!(summary(&inactive).coverage_status, pb::CoverageStatus::Inactive as i32);

        let missing = check(&mut a, inline("k-2", "SPX100000099", "NOBODY", "NEMO", "1990-01-01")).await?;
        assert_eq!(missing.status, pb::EligibilityCheckStatus::Rejected as i32);
        let codes: Vec<_> = missing.rejections.iter().map(|r| r.reason_code.as_str()).collect();
        assert_eq!(codes, vec!["75"]);
        assert!(missing.rejections[0].description.to_lowercase().contains("not found"), "{:?}", missing.rejections);

        let bad = check(&mut a, inline("k-3", "SPX1", "TESTPATIENT", "AVERY", "1985-03-14")).await?;
        assert_eq!(bad.status, pb::EligibilityCheckStatus::Rejected as i32);
        assert_eq!(bad.rejections.iter().map(|r| r.reason_code.as_str()).collect::<Vec<_>>(), vec!["72"]);
        assert!(!bad.rejections[0].description.is_empty());
        assert_eq!(env.payer_calls(), 3);

        // Malformed input never reaches the payer and names the field.
        let cases = [
            ("inline.member_id", inline("k-4", "SPX*100", "A", "B", "1985-03-14")),
            ("date_of_service", pb::CheckEligibilityRequest { date_of_service: "2026-02-30".into(), ..avery("k-5") }),
            ("inline.subscriber_birth_date", inline("k-6", "SPX100000001", "TESTPATIENT", "AVERY", "03/14/1985")),
            ("service_type_codes", pb::CheckEligibilityRequest { service_type_codes: vec!["ABC".into()], ..avery("k-7") }),
            ("idempotency_key", avery("")),
            ("subject", pb::CheckEligibilityRequest { subject: None, ..avery("k-8") }),
        ];
        for (field, req) in cases {
            let status = check(&mut a, req).await.expect_err(field);
            assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
            assert!(status.message().contains(field), "{field}: {}", status.message());
        }
        let mut unknown = avery("k-9");
        if let Some(pb::check_eligibility_request::Subject::Inline(i)) = unknown.subject.as_mut() {
            i.payer_id = "NOSUCHPAYER".into();
        }
        let status = check(&mut a, unknown).await.expect_err("unknown payer");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("NOSUCHPAYER"), "{}", status.message());
        assert_eq!(env.payer_calls(), 3, "no payer call for bad input");
        Ok(())
    }

    async fn a_warm_cache_answers_without_the_payer_until_force_refresh(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        let first = check(&mut a, avery("k-1")).await?;
        let second = check(&mut a, avery("k-2")).await?;
        assert_eq!(env.payer_calls(), 1, "served from the cache");
        assert!(second.from_cache);
        assert_eq!(second.cached_from_check_id, first.id);
        assert_eq!(summary(&second), summary(&first));

        // Another date of service or service type is another question.
        check(&mut a, pb::CheckEligibilityRequest { service_type_codes: vec!["98".into()], ..avery("k-3") }).await?;
        assert_eq!(env.payer_calls(), 2);

        let fresh = check(&mut a, pb::CheckEligibilityRequest { force_refresh: true, ..avery("k-4") }).await?;
        assert_eq!(env.payer_calls(), 3, "force_refresh asks the payer");
        assert!(!fresh.from_cache);
        assert_ne!(fresh.id, first.id);
        let after = check(&mut a, avery("k-5")).await?;
        assert_eq!(after.cached_from_check_id, fresh.id, "the refreshed answer replaced the cached one");

        // A retry of the first call with its key returns the first check.
        let retry = check(&mut a, pb::CheckEligibilityRequest { force_refresh: true, ..avery("k-1") }).await;
        assert_eq!(retry.expect_err("different request under k-1").code(), Code::AlreadyExists);
        let same = check(&mut a, pb::CheckEligibilityRequest { force_refresh: true, ..avery("k-4") }).await?;
        assert_eq!(same.id, fresh.id, "same key and request replays");
        assert_eq!(env.payer_calls(), 3);
        Ok(())
    }

    async fn concurrent_identical_checks_share_one_payer_call(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        // Slow the payer so the calls overlap.
        env.sim.faults().set(Fault::Delay { ms: 300 });
        let mut tasks = Vec::new();
        for i in 0..16 {
            let mut c = env.client(Caller::TenantA);
            tasks.push(tokio::spawn(async move { check(&mut c, avery(&format!("k-{i}"))).await }));
        }
        let mut ids = std::collections::BTreeSet::new();
        let mut fresh = 0;
        for t in tasks {
            let got = t.await??;
            ids.insert(got.id.clone());
            fresh += usize::from(!got.from_cache);
        }
        assert_eq!(env.payer_calls(), 1, "sixteen callers, one payer call");
        assert_eq!(ids.len(), 1, "everyone got the same check");
        assert_eq!(fresh, 1, "one caller made the call, the others shared it");
        let mut a = env.client(Caller::TenantA);
        let all = list(&mut a, pb::ListEligibilityChecksRequest::default()).await?;
        assert_eq!(all.checks.len(), 1, "one audit row");
        Ok(())
    }

    async fn payer_down_is_unavailable_after_the_retries_and_nothing_is_cached(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        env.sim.faults().set(Fault::Unavailable);
        let status = check(&mut a, avery("k-1")).await.expect_err("down");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(status.message().contains("SIMPPO") && status.message().contains("3 attempt"), "{}", status.message());
        assert_eq!(env.payer_calls(), u64::from(ATTEMPTS), "retried");
        let failed = list(&mut a, failed_only()).await?.checks;
        assert_eq!(failed.len(), 1, "the failed exchange is kept");
        assert!(!failed[0].error_message.is_empty());
        let again = check(&mut a, avery("k-1")).await.expect_err("still down");
        assert_eq!(again.code(), Code::Unavailable, "the failure is not replayed as an answer: {again:?}");
        assert_eq!(env.payer_calls(), 2 * u64::from(ATTEMPTS), "the key did not record the failure");
        assert_eq!(list(&mut a, failed_only()).await?.checks.len(), 2, "each failed exchange is kept");

        // Once the payer is back, a retry under the same key gets an answer, then replays it.
        env.sim.faults().clear();
        let got = check(&mut a, avery("k-1")).await?;
        assert!(!got.from_cache, "the failure was not cached");
        assert_eq!(got.status, pb::EligibilityCheckStatus::Completed as i32);
        assert_eq!(env.payer_calls(), 2 * u64::from(ATTEMPTS) + 1);
        assert_eq!(check(&mut a, avery("k-1")).await?, got);
        let cached = check(&mut a, avery("k-2")).await?;
        assert!(cached.from_cache);
        assert_eq!(env.payer_calls(), 2 * u64::from(ATTEMPTS) + 1);

        env.sim.faults().set(Fault::ReceiverDown);
        let status = check(&mut a, pb::CheckEligibilityRequest { force_refresh: true, ..avery("k-3") }).await.expect_err("receiver down");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        Ok(())
    }

    async fn a_payer_timeout_is_deadline_exceeded(db: Database) -> anyhow::Result<()> {
        let env = setup_with(db, 200).await?;
        let mut a = env.client(Caller::TenantA);
        env.sim.faults().set(Fault::Delay { ms: 1_000 });
        let status = check(&mut a, avery("k-1")).await.expect_err("timeout");
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert!(status.message().contains("did not answer in time"), "{}", status.message());
        assert_eq!(list(&mut a, failed_only()).await?.checks.len(), 1);
        env.sim.faults().clear();
        assert!(!check(&mut a, avery("k-2")).await?.from_cache, "nothing cached");
        Ok(())
    }

    async fn garbage_and_wrong_answers_are_refused_and_kept_for_audit(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        env.sim.faults().set(Fault::Garbage);
        let status = check(&mut a, avery("k-1")).await.expect_err("garbage");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(status.message().contains("X12") || status.message().contains("271"), "{}", status.message());

        env.sim.faults().set(Fault::WrongMember);
        let status = check(&mut a, avery("k-2")).await.expect_err("wrong member");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(status.message().contains("does not answer this inquiry"), "{}", status.message());
        assert!(!status.message().contains("SPX1"), "no member ids in errors: {}", status.message());

        let failed = list(&mut a, failed_only()).await?.checks;
        assert_eq!(failed.len(), 2);
        for f in &failed {
            let full = a.get_eligibility_check(pb::GetEligibilityCheckRequest { id: f.id.clone(), include_raw: true })
                .await?.into_inner().check.unwrap_or_default();
            assert!(!full.raw_request.is_empty() && !full.raw_response.is_empty(), "raw exchange kept");
            assert_eq!(summary(&full).coverage_status, pb::CoverageStatus::Unknown as i32);
        }
        env.sim.faults().clear();
        assert!(!check(&mut a, avery("k-3")).await?.from_cache, "nothing cached");
        Ok(())
    }

    async fn birth_dates_are_named_and_never_echoed(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        let tomorrow = medbill_domain::format_iso_date(chrono::Utc::now().date_naive() + chrono::Days::new(1));
        let with_dependent = |key: &str, birth: &str| {
            let mut req = avery(key);
            if let Some(pb::check_eligibility_request::Subject::Inline(i)) = req.subject.as_mut() {
                i.dependent_name = name("TESTPATIENT", "RILEY");
                i.dependent_birth_date = birth.into();
            }
            req
        };
        let bad = ["03/14/1985", "1985-02-30", "19850314", tomorrow.as_str()];
        for (i, value) in bad.into_iter().enumerate() {
            let cases = [
                ("inline.subscriber_birth_date", inline(&format!("s-{i}"), "SPX100000001", "TESTPATIENT", "AVERY", value)),
                ("inline.dependent_birth_date", with_dependent(&format!("d-{i}"), value)),
            ];
            for (field, req) in cases {
                let status = check(&mut a, req).await.expect_err(field);
                assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
                assert!(status.message().contains(field), "{field}: {}", status.message());
                assert!(!status.message().contains(value), "{field} echoes the birth date: {}", status.message());
            }
            let coverage = a.create_coverage(pb::CreateCoverageRequest {
                idempotency_key: format!("c-{i}"),
                patient_ref: "pat-1".into(),
                payer_id: "SIMPPO".into(),
                payer_name: "SIMULATED PPO HEALTH".into(),
                member_id: "SPX100000001".into(),
                subscriber_first_name: "AVERY".into(),
                subscriber_last_name: "TESTPATIENT".into(),
                subscriber_birth_date: value.into(),
                effective_date: "2026-01-01".into(),
                ..Default::default()
            }).await.expect_err("bad birth date");
            assert_eq!(coverage.code(), Code::InvalidArgument, "{coverage:?}");
            assert!(coverage.message().contains("subscriber_birth_date"), "{}", coverage.message());
            assert!(!coverage.message().contains(value), "echoes the birth date: {}", coverage.message());
        }
        let missing = check(&mut a, with_dependent("d-none", "")).await.expect_err("no dependent birth date");
        assert!(missing.message().contains("inline.dependent_birth_date"), "{}", missing.message());
        assert_eq!(env.payer_calls(), 0, "no payer call for bad input");
        Ok(())
    }

    async fn checks_page_filter_and_stay_within_the_tenant(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        let mut ids = Vec::new();
        for day in 1..=5 {
            let req = pb::CheckEligibilityRequest { date_of_service: format!("2026-04-0{day}"), ..avery(&format!("k-{day}")) };
            ids.push(check(&mut a, req).await?.id);
        }
        check(&mut a, inline("k-r", "SPX100000099", "NOBODY", "NEMO", "1990-01-01")).await?;

        let mut seen = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = list(&mut a, pb::ListEligibilityChecksRequest {
                page_size: 2, page_token: token.clone(),
                status: pb::EligibilityCheckStatus::Completed as i32, ..Default::default()
            }).await?;
            pages += 1;
            seen.extend(page.checks.into_iter().map(|c| c.id));
            if page.next_page_token.is_empty() { break; }
            token = page.next_page_token;
        }
        assert_eq!(seen, ids);
        assert_eq!(pages, 3);
        let rejected = list(&mut a, pb::ListEligibilityChecksRequest { status: pb::EligibilityCheckStatus::Rejected as i32, ..Default::default() }).await?;
        assert_eq!(rejected.checks.len(), 1);
        let ranged = list(&mut a, pb::ListEligibilityChecksRequest {
            date_of_service: Some(common::DateRange { start_date: "2026-04-02".into(), end_date: "2026-04-03".into() }),
            ..Default::default()
        }).await?;
        assert_eq!(ranged.checks.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), ids[1..3].to_vec());
        let by_payer = list(&mut a, pb::ListEligibilityChecksRequest { payer_id: "SIMHMO".into(), ..Default::default() }).await?;
        assert!(by_payer.checks.is_empty());
        let status = a.list_eligibility_checks(pb::ListEligibilityChecksRequest { page_token: "junk".into(), ..Default::default() })
            .await.expect_err("bad token");
        assert_eq!(status.code(), Code::InvalidArgument);

        // Tenant B sees none of it, and its identical question is not answered from A's cache.
        let mut b = env.client(Caller::TenantB);
        assert!(list(&mut b, pb::ListEligibilityChecksRequest::default()).await?.checks.is_empty());
        let hidden = b.get_eligibility_check(pb::GetEligibilityCheckRequest { id: ids[0].clone(), include_raw: true }).await.expect_err("hidden");
        assert_eq!(hidden.code(), Code::NotFound);
        let before = env.payer_calls();
        let theirs = check(&mut b, pb::CheckEligibilityRequest { date_of_service: "2026-04-01".into(), ..avery("k-1") }).await?;
        assert!(!theirs.from_cache);
        assert_eq!(env.payer_calls(), before + 1);
        assert_eq!(list(&mut a, pb::ListEligibilityChecksRequest::default()).await?.checks.len(), 6);
        Ok(())
    }

    async fn checks_by_coverage_and_cost_estimates(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        let coverage = a.create_coverage(pb::CreateCoverageRequest {
            idempotency_key: "cov-1".into(),
            patient_ref: "pat-9".into(),
            payer_id: "SIMPPO".into(),
            payer_name: "SIMULATED PPO HEALTH".into(),
            member_id: "SPX100000001".into(),
            subscriber_first_name: "AVERY".into(),
            subscriber_last_name: "TESTPATIENT".into(),
            subscriber_birth_date: "1985-03-14".into(),
            effective_date: "2026-01-01".into(),
            ..Default::default()
        }).await?.into_inner().coverage.unwrap_or_default();
        let by_coverage = pb::CheckEligibilityRequest {
            idempotency_key: "chk-1".into(),
            subject: Some(pb::check_eligibility_request::Subject::CoverageId(coverage.id.clone())),
            date_of_service: DOS.into(),
            ..Default::default()
        };
        let got = check(&mut a, by_coverage).await?;
        assert_eq!(got.coverage_id, coverage.id);
        assert_eq!(got.patient_ref, "pat-9");
        assert_eq!(summary(&got).coverage_status, pb::CoverageStatus::Active as i32);
        let filtered = list(&mut a, pb::ListEligibilityChecksRequest { coverage_id: coverage.id.clone(), ..Default::default() }).await?;
        assert_eq!(filtered.checks.len(), 1);

        let services = vec![
            pb::EstimateServiceInput {
                procedure: Some(common::Procedure { code: "99213".into(), ..Default::default() }),
                service_type_code: "98".into(),
                charge: "150.00".into(),
                ..Default::default()
            },
            pb::EstimateServiceInput {
                procedure: Some(common::Procedure { code: "80053".into(), ..Default::default() }),
                charge: "400.00".into(),
                ..Default::default()
            },
        ];
        let request = pb::EstimatePatientCostRequest {
            idempotency_key: "est-1".into(),
            benefits_source: Some(pb::estimate_patient_cost_request::BenefitsSource::CoverageId(coverage.id.clone())),
            date_of_service: DOS.into(),
            services: services.clone(),
            ..Default::default()
        };
        let est = a.estimate_patient_cost(request.clone()).await?.into_inner().estimate.unwrap_or_default();
        assert_eq!(est.eligibility_check_id, got.id);
        assert!(!est.self_pay && !est.good_faith_estimate);
        let l0 = &est.lines[0];
        assert_eq!(l0.allowed_amount, "92.00");
        assert_eq!(l0.allowed_amount_source, pb::AllowedAmountSource::FeeSchedule as i32);
        let b0 = l0.breakdown.clone().unwrap_or_default();
        assert_eq!((b0.copay.as_str(), b0.patient_responsibility.as_str(), b0.plan_pays.as_str()), ("25.00", "25.00", "67.00"));
        let l1 = &est.lines[1];
        assert_eq!(l1.allowed_amount_source, pb::AllowedAmountSource::Charge as i32);
        let b1 = l1.breakdown.clone().unwrap_or_default();
        assert_eq!((b1.deductible.as_str(), b1.patient_responsibility.as_str()), ("400.00", "400.00"), "all within the 1250.00 left");
        let total = est.total.clone().unwrap_or_default();
        assert_eq!(total.patient_responsibility, "425.00");
        assert_eq!(est.total_charge, "550.00");
        assert_eq!(est.total_allowed, "492.00");
        assert_eq!(est.deductible_remaining_after, "850.00");
        assert_eq!(est.out_of_pocket_remaining_after, "4175.00");

        let retry = a.estimate_patient_cost(request.clone()).await?.into_inner().estimate.unwrap_or_default();
        assert_eq!(retry, est, "a retry returns the first estimate");
        let mut changed = request.clone();
        changed.services[1].charge = "401.00".into();
        let reuse = a.estimate_patient_cost(changed).await;
        assert_eq!(reuse.expect_err("key reuse").code(), Code::AlreadyExists);
        let got_back = a.get_cost_estimate(pb::GetCostEstimateRequest { id: est.id.clone() }).await?.into_inner().estimate.unwrap_or_default();
        assert_eq!(got_back, est);

        let gfe = a.estimate_patient_cost(pb::EstimatePatientCostRequest {
            idempotency_key: "est-2".into(),
            self_pay: true,
            patient_ref: "pat-9".into(),
            date_of_service: DOS.into(),
            services,
            ..Default::default()
        }).await?.into_inner().estimate.unwrap_or_default();
        assert!(gfe.self_pay && gfe.good_faith_estimate);
        assert!(gfe.disclaimer.contains("Good Faith Estimate"));
        assert_eq!(gfe.lines[0].allowed_amount, "75.00", "the tenant's self-pay rate");
        assert_eq!(gfe.total.clone().unwrap_or_default().patient_responsibility, "475.00");
        assert_eq!(gfe.total.clone().unwrap_or_default().plan_pays, "0.00");

        // No completed check for another date, and tenant B cannot read A's estimate.
        let none = a.estimate_patient_cost(pb::EstimatePatientCostRequest {
            idempotency_key: "est-3".into(), date_of_service: "2026-05-05".into(), ..request
        }).await.expect_err("no check");
        assert_eq!(none.code(), Code::FailedPrecondition, "{none:?}");
        let mut b = env.client(Caller::TenantB);
        let hidden = b.get_cost_estimate(pb::GetCostEstimateRequest { id: est.id.clone() }).await.expect_err("hidden");
        assert_eq!(hidden.code(), Code::NotFound);
        Ok(())
    }

    async fn the_key_is_checked_before_the_cache(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        let on = |key: &str, dos: &str| pb::CheckEligibilityRequest { date_of_service: dos.into(), ..avery(key) };
        let first = check(&mut a, on("k-1", DOS)).await?;
        let warm = check(&mut a, on("k-2", "2026-03-03")).await?;
        assert!(!first.from_cache && !warm.from_cache);

        // k-1 with another date of service is another request, cached answer or not.
        let status = check(&mut a, on("k-1", "2026-03-03")).await.expect_err("key reused");
        assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
        assert!(status.message().contains("k-1"), "{}", status.message());

        // A key answered from the cache is recorded too: it replays, and means one request.
        let cached = check(&mut a, on("k-3", DOS)).await?;
        assert!(cached.from_cache);
        assert_eq!(cached.cached_from_check_id, first.id);
        for other in [on("k-3", "2026-03-03"), on("k-3", "2026-03-04")] {
            let status = check(&mut a, other).await.expect_err("key reused");
            assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
        }
        let replayed = check(&mut a, on("k-3", DOS)).await?;
        assert_eq!(replayed, cached, "a retry gets the first answer again");
        assert_eq!(check(&mut a, on("k-1", DOS)).await?, first);
        assert_eq!(env.payer_calls(), 2, "refused and replayed calls never reach the payer");
        Ok(())
    }

    async fn twenty_different_bodies_on_one_key_get_one_answer(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        // Some bodies find their answer in the cache, the others wait on a slow payer.
        check(&mut a, avery("warm-1")).await?;
        env.sim.faults().set(Fault::Delay { ms: 200 });
        let body = |key: &str, variant: usize| {
            let mut req = if variant.is_multiple_of(4) {
                avery(key)
            } else {
                pb::CheckEligibilityRequest { date_of_service: format!("2026-04-{:02}", variant % 28 + 1), ..avery(key) }
            };
            if let Some(pb::check_eligibility_request::Subject::Inline(i)) = req.subject.as_mut() {
                i.patient_ref = format!("pat-{variant}");
            }
            req
        };
        for (key, variants) in [("race-1", 20), ("race-2", 5)] {
            let mut tasks = Vec::new();
            for i in 0..20usize {
                let mut c = env.client(Caller::TenantA);
                let req = body(key, i % variants);
                tasks.push(tokio::spawn(async move { (i % variants, check(&mut c, req).await) }));
            }
            let mut answered = Vec::new();
            for t in tasks {
                match t.await? {
                    (variant, Ok(got)) => answered.push((variant, got.id)),
                    (_, Err(status)) => assert_eq!(status.code(), Code::AlreadyExists, "{key}: {status:?}"),
                }
            }
            assert!(!answered.is_empty(), "{key}: one request wins the key");
            let (variant, id) = answered[0].clone();
            assert!(
                answered.iter().all(|(v, i)| *v == variant && *i == id),
                "{key}: only identical bodies get OK, all with the same check: {answered:?}"
            );
            if variants == 20 {
                assert_eq!(answered.len(), 1, "{key}: twenty different bodies, one answer");
            }
            // Afterwards the key answers its own request only.
            let again = check(&mut a, body(key, variant)).await?;
            assert_eq!(again.id, id);
            let other = check(&mut a, body(key, variant + 1)).await.expect_err("reused");
            assert_eq!(other.code(), Code::AlreadyExists);
        }
        Ok(())
    }

    async fn every_mutating_rpc_keys_under_its_full_method_name(db: Database) -> anyhow::Result<()> {
        let env = setup(db.clone()).await?;
        let mut a = env.client(Caller::TenantA);
        a.create_coverage(pb::CreateCoverageRequest {
            idempotency_key: "same-key".into(),
            patient_ref: "pat-1".into(),
            payer_id: "SIMPPO".into(),
            payer_name: "SIMULATED PPO HEALTH".into(),
            member_id: "SPX100000001".into(),
            subscriber_first_name: "AVERY".into(),
            subscriber_last_name: "TESTPATIENT".into(),
            subscriber_birth_date: "1985-03-14".into(),
            effective_date: "2026-01-01".into(),
            ..Default::default()
        }).await?;
        check(&mut a, avery("same-key")).await?;
        a.estimate_patient_cost(pb::EstimatePatientCostRequest {
            idempotency_key: "same-key".into(),
            self_pay: true,
            patient_ref: "pat-1".into(),
            date_of_service: DOS.into(),
            services: vec![pb::EstimateServiceInput {
                procedure: Some(common::Procedure { code: "99213".into(), ..Default::default() }),
                charge: "100.00".into(),
                ..Default::default()
            }],
            ..Default::default()
        }).await?;
        let scopes: Vec<String> = medbill_storage::with_db!(db, |pool| {
            sqlx::query_scalar("SELECT scope FROM platform_idempotency ORDER BY scope").fetch_all(pool).await?
        });
        assert_eq!(
            scopes,
            [
                "medbill.eligibility.v1.EligibilityService/CheckEligibility",
                "medbill.eligibility.v1.EligibilityService/CreateCoverage",
                "medbill.eligibility.v1.EligibilityService/EstimatePatientCost",
            ],
            "one key per RPC, the same key in each"
        );
        Ok(())
    }

    async fn a_provider_without_an_npi_is_refused_not_replaced(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        let with_provider = |key: &str, npi: &str| pb::CheckEligibilityRequest {
            provider: Some(common::ProviderRef { npi: npi.into(), organization_name: "NORTH CLINIC".into(), ..Default::default() }),
            ..avery(key)
        };
        for (key, npi) in [("p-1", ""), ("p-2", "1234567890"), ("p-3", "123456789"), ("p-4", "12345678931"), ("p-5", "12345678A3")] {
            let status = check(&mut a, with_provider(key, npi)).await.expect_err(npi);
            assert_eq!(status.code(), Code::InvalidArgument, "{npi:?}: {status:?}");
            assert!(status.message().contains("provider.npi"), "{}", status.message());
        }
        let given = check(&mut a, with_provider("p-6", "1245319599")).await?;
        assert_eq!(given.provider_npi, "1245319599");
        let unset = check(&mut a, pb::CheckEligibilityRequest {
            provider: Some(common::ProviderRef::default()),
            date_of_service: "2026-03-03".into(),
            ..avery("p-7")
        }).await?;
        assert_eq!(unset.provider_npi, "1234567893", "an empty provider is the configured one");
        Ok(())
    }

    async fn identifiers_follow_one_rule_in_checks_and_estimates(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        let megabyte = "P".repeat(1 << 20);
        for (i, bad) in [megabyte.as_str(), "pat\u{1}1", " pat-1", &"p".repeat(129)].into_iter().enumerate() {
            let mut req = avery(&format!("id-{i}"));
            if let Some(pb::check_eligibility_request::Subject::Inline(s)) = req.subject.as_mut() {
                s.patient_ref = bad.to_owned();
            }
            let status = check(&mut a, req).await.expect_err("bad patient_ref");
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
            assert!(status.message().contains("inline.patient_ref"), "{}", status.message());
            assert!(status.message().len() < 200, "the value is not echoed");

            let estimate = a.estimate_patient_cost(pb::EstimatePatientCostRequest {
                idempotency_key: format!("est-{i}"),
                self_pay: true,
                patient_ref: bad.to_owned(),
                date_of_service: DOS.into(),
                services: vec![pb::EstimateServiceInput {
                    procedure: Some(common::Procedure { code: "99213".into(), ..Default::default() }),
                    charge: "100.00".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }).await.expect_err("bad patient_ref");
            assert_eq!(estimate.code(), Code::InvalidArgument, "{estimate:?}");
            assert!(estimate.message().contains("patient_ref"), "{}", estimate.message());
        }
        let ok = "p".repeat(128);
        let mut req = avery("id-ok");
        if let Some(pb::check_eligibility_request::Subject::Inline(s)) = req.subject.as_mut() {
            s.patient_ref = ok.clone();
        }
        assert_eq!(check(&mut a, req).await?.patient_ref, ok);
        Ok(())
    }

    async fn estimates_validate_providers_and_lines_as_claims_do(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        let base = |key: &str| pb::EstimatePatientCostRequest {
            idempotency_key: key.into(),
            self_pay: true,
            patient_ref: "pat-1".into(),
            date_of_service: DOS.into(),
            services: vec![pb::EstimateServiceInput {
                procedure: Some(common::Procedure { code: "99213".into(), ..Default::default() }),
                charge: "100.00".into(),
                place_of_service: "11".into(),
                units: "2".into(),
                ..Default::default()
            }],
            provider: Some(common::ProviderRef { npi: "1234567893".into(), organization_name: "SUNRISE".into(), ..Default::default() }),
            ..Default::default()
        };
        a.estimate_patient_cost(base("ok")).await?;
        let npi = |key: &str, npi: &str| {
            let mut r = base(key);
            if let Some(p) = r.provider.as_mut() { p.npi = npi.into(); }
            r
        };
        let line = |key: &str, pos: &str, units: &str| {
            let mut r = base(key);
            r.services[0].place_of_service = pos.into();
            r.services[0].units = units.into();
            r
        };
        let cases = [
            ("provider.npi", npi("n-1", "1234567890")),
            ("provider.npi", npi("n-2", "")),
            ("provider.npi", npi("n-3", "123456789")),
            ("provider.npi", npi("n-4", "12345678931")),
            ("provider.npi", npi("n-5", "ABCDEFGHIJ")),
            ("services[0].place_of_service", line("l-1", "office", "1")),
            ("services[0].place_of_service", line("l-2", "123", "1")),
            ("services[0].units", line("l-3", "11", "99999999999999999999")),
            ("services[0].units", line("l-4", "11", "-1")),
        ];
        for (field, req) in cases {
            let status = a.estimate_patient_cost(req).await.expect_err(field);
            assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
            assert!(status.message().contains(field), "{field}: {}", status.message());
        }
        Ok(())
    }

    async fn an_estimate_breakdown_adds_up_on_the_wire(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        let got = check(&mut a, avery("k-1")).await?;
        let est = a.estimate_patient_cost(pb::EstimatePatientCostRequest {
            idempotency_key: "est-1".into(),
            benefits_source: Some(pb::estimate_patient_cost_request::BenefitsSource::EligibilityCheckId(got.id.clone())),
            date_of_service: DOS.into(),
            services: vec![
                pb::EstimateServiceInput {
                    procedure: Some(common::Procedure { code: "27447".into(), ..Default::default() }),
                    charge: "100000.00".into(),
                    ..Default::default()
                },
                pb::EstimateServiceInput {
                    procedure: Some(common::Procedure { code: "99213".into(), ..Default::default() }),
                    service_type_code: "98".into(),
                    charge: "150.00".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }).await?.into_inner().estimate.unwrap_or_default();
        let money = |s: &str| medbill_domain::Money::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let adds_up = |b: &pb::ResponsibilityBreakdown, allowed: &str| {
            assert_eq!(
                money(&b.deductible) + money(&b.coinsurance) + money(&b.copay) - money(&b.out_of_pocket_cap_reduction),
                money(&b.patient_responsibility),
                "{b:?}"
            );
            assert_eq!(money(&b.patient_responsibility) + money(&b.plan_pays), money(allowed), "{b:?}");
        };
        let b0 = est.lines[0].breakdown.clone().unwrap_or_default();
        assert_eq!(
            (b0.deductible.as_str(), b0.coinsurance.as_str(), b0.out_of_pocket_cap_reduction.as_str(), b0.patient_responsibility.as_str()),
            ("1250.00", "19750.00", "16400.00", "4600.00")
        );
        for l in &est.lines {
            adds_up(&l.breakdown.clone().unwrap_or_default(), &l.allowed_amount);
        }
        adds_up(&est.total.clone().unwrap_or_default(), &est.total_allowed);
        assert_eq!(est.out_of_pocket_remaining_after, "0.00");
        Ok(())
    }
}
