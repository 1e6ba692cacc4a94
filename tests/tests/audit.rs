//! The audit trail through the gRPC clients, the suite run as `medbill serve --target all` runs
//! it: every call of a walk over the four services is recorded with its method, subject, outcome
//! and resource ids and returned by `ListAuditEvents` (to its own tenant only); no stored record
//! holds a PHI value of the walk; a failed mutation is recorded with its code and changed
//! nothing; a mutation's record is written once, with the change; records of reads still queued
//! at a graceful shutdown are written. SQLite always; PostgreSQL with `MEDBILL_TEST_PG_URL`.

mod common;

use medbill::serve::Target;
use medbill_proto::claims::v1 as claims;
use medbill_proto::collections::v1 as collections;
use medbill_proto::eligibility::v1 as eligibility;
use medbill_proto::medbill::audit::v1 as audit;
use medbill_storage::audit::{AuditQuery, AuditRecord, Order};
use medbill_storage::testing::TestEnv;
use medbill_testkit::{Caller, channel_to};

/// PHI values the walk sends: names, member ids, birth dates.
const PHI: [&str; 10] = [
    "JANE",
    "DOE",
    "W123456789",
    "1984-03-09",
    "AVERY",
    "TESTPATIENT",
    "SPX100000001",
    "1985-03-14",
    "Jane",
    "Doe",
];

const SERVICES: [&str; 4] = ["eligibility", "claims", "remittance", "collections"];

/// Every audit record stored in the suite's four databases, read directly.
async fn stored_records(env: &TestEnv) -> anyhow::Result<Vec<AuditRecord>> {
    let mut all = Vec::new();
    for service in SERVICES {
        let db = env.connect(service).await?;
        all.extend(
            medbill_storage::audit::list(
                &db,
                &AuditQuery::default(),
                Order::OldestFirst,
                None,
                10_000,
            )
            .await?,
        );
    }
    Ok(all)
}

/// The events ListAuditEvents returns for `request`, every page.
async fn list_all(
    client: &mut audit::audit_service_client::AuditServiceClient<
        medbill_runtime::client::TracedChannel,
    >,
    mut request: audit::ListAuditEventsRequest,
) -> anyhow::Result<Vec<audit::AuditEvent>> {
    request.page_size = 3;
    let mut events = Vec::new();
    loop {
        let page = client
            .list_audit_events(request.clone())
            .await?
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return Ok(events);
        }
        request.page_token = page.next_page_token;
    }
}

fn has(event: &audit::AuditEvent, kind: &str, id: &str) -> bool {
    event
        .resources
        .iter()
        .any(|r| r.r#type == kind && r.resource_id == id)
}

fn of<'a>(events: &'a [audit::AuditEvent], method: &str) -> Vec<&'a audit::AuditEvent> {
    events.iter().filter(|e| e.method == method).collect()
}

fn claim_input(pcn: &str, coverage_id: &str) -> claims::ClaimInput {
    claims::ClaimInput {
        patient_control_number: pcn.into(),
        claim_type: claims::ClaimType::Professional.into(),
        coverage_id: coverage_id.into(),
        payer_id: "60054".into(),
        patient_ref: "ehr-patient-1".into(),
        billing_provider_npi: "1234567893".into(),
        place_of_service: "11".into(),
        diagnoses: vec!["E119".into()],
        lines: vec![claims::ClaimLine {
            procedure_code: "99213".into(),
            charge: "125.00".into(),
            units: "1".into(),
            service_date: "2026-03-02".into(),
            diagnosis_pointers: vec![1],
            ..Default::default()
        }],
        ..Default::default()
    }
}

medbill_storage::conformance_tests! {
    async fn every_call_of_a_walk_is_recorded_without_phi(env: TestEnv) -> anyhow::Result<()> {
        let suite = common::start(&env, Target::All).await?;
        let url = suite.handle.url();
        let mut elig = eligibility::eligibility_service_client::EligibilityServiceClient::new(
            channel_to(&url, Caller::TenantA),
        );
        let coverage = elig
            .create_coverage(eligibility::CreateCoverageRequest {
                idempotency_key: "cov-1".into(),
                patient_ref: "ehr-patient-1".into(),
                payer_id: "60054".into(),
                payer_name: "AETNA".into(),
                member_id: "W123456789".into(),
                subscriber_first_name: "JANE".into(),
                subscriber_last_name: "DOE".into(),
                subscriber_birth_date: "1984-03-09".into(),
                effective_date: "2026-01-01".into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .coverage
            .expect("a coverage");
        elig.get_coverage(eligibility::GetCoverageRequest { id: coverage.id.clone() }).await?;
        elig.list_coverages(eligibility::ListCoveragesRequest::default()).await?;
        let check = elig
            .check_eligibility(eligibility::CheckEligibilityRequest {
                idempotency_key: "check-1".into(),
                subject: Some(eligibility::check_eligibility_request::Subject::Inline(
                    eligibility::InlineSubscriber {
                        payer_id: "SIMPPO".into(),
                        member_id: "SPX100000001".into(),
                        subscriber_name: Some(medbill_proto::common::v1::PersonName {
                            last_name: "TESTPATIENT".into(),
                            first_name: "AVERY".into(),
                            ..Default::default()
                        }),
                        subscriber_birth_date: "1985-03-14".into(),
                        patient_ref: "ehr-patient-3".into(),
                        ..Default::default()
                    },
                )),
                date_of_service: "2026-03-02".into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .check
            .expect("a check");

        let mut claims_client =
            claims::claims_service_client::ClaimsServiceClient::new(channel_to(&url, Caller::TenantA));
        medbill_testkit::fixtures::register_provider(&mut claims_client, medbill_testkit::fixtures::billing_provider()).await?;
        let claim = claims_client
            .create_claim(claims::CreateClaimRequest {
                idempotency_key: "claim-1".into(),
                claim: Some(claim_input("PCN0001", &coverage.id)),
            })
            .await?
            .into_inner()
            .claim
            .expect("a claim");
        claims_client.get_claim(claims::GetClaimRequest { id: claim.id.clone() }).await?;
        // A failed mutation: the patient control number is taken.
        let taken = claims_client
            .create_claim(claims::CreateClaimRequest {
                idempotency_key: "claim-2".into(),
                claim: Some(claim_input("PCN0001", &coverage.id)),
            })
            .await
            .expect_err("a taken patient control number is refused");
        assert_eq!(taken.code(), tonic::Code::AlreadyExists, "{taken:?}");
        let listed = claims_client.list_claims(claims::ListClaimsRequest::default()).await?.into_inner().claims;
        assert_eq!(listed.len(), 1, "the failed mutation changed nothing");

        let mut remit = medbill_proto::remittance::v1::remittance_service_client::RemittanceServiceClient::new(
            channel_to(&url, Caller::TenantA),
        );
        remit.list_eras(medbill_proto::remittance::v1::ListErasRequest::default()).await?;

        let mut coll = collections::collections_service_client::CollectionsServiceClient::new(
            channel_to(&url, Caller::TenantA),
        );
        let account = coll
            .open_account(collections::OpenAccountRequest {
                idempotency_key: "acct-1".into(),
                patient_ref: "ehr-patient-1".into(),
                guarantor_ref: String::new(),
            })
            .await?
            .into_inner()
            .account
            .expect("an account");
        coll.get_account(collections::GetAccountRequest { id: account.id.clone(), ..Default::default() }).await?;
        let missing = coll
            .get_account(collections::GetAccountRequest { id: "no-such-account".into(), ..Default::default() })
            .await
            .expect_err("an unknown account");

        // Reads are written in batches: wait until the last call's record is in.
        let mut audit_a = audit::audit_service_client::AuditServiceClient::new(channel_to(&url, Caller::TenantA));
        let mut events = Vec::new();
        for _ in 0..100 {
            events = list_all(&mut audit_a, audit::ListAuditEventsRequest::default()).await?;
            if events.iter().any(|e| e.method == "GetAccount" && e.code == missing.code() as i32) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        for method in [
            "CreateCoverage", "GetCoverage", "ListCoverages", "CheckEligibility", "CreateProvider",
            "CreateClaim", "GetClaim", "ListClaims", "ListEras", "OpenAccount", "GetAccount",
        ] {
            assert!(!of(&events, method).is_empty(), "{method} not recorded: {events:#?}");
        }
        for event in &events {
            assert!(event.subject.starts_with("token:"), "{event:?}");
            assert!(event.peer.contains("127.0.0.1"), "{event:?}");
            assert!(event.time.is_some());
        }
        let create_coverage = of(&events, "CreateCoverage");
        assert_eq!(create_coverage.len(), 1, "a mutation is recorded once, with its change");
        assert!(has(create_coverage[0], "coverage", &coverage.id));
        assert!(has(create_coverage[0], "patient_ref", "ehr-patient-1"));
        assert_eq!(create_coverage[0].service, "medbill.eligibility.v1.EligibilityService");
        assert!(has(of(&events, "GetCoverage")[0], "coverage", &coverage.id));
        assert!(has(of(&events, "CheckEligibility")[0], "eligibility_check", &check.id));
        let creates = of(&events, "CreateClaim");
        assert_eq!(creates.len(), 2, "{creates:#?}");
        let ok = creates.iter().find(|e| e.code == 0).expect("the successful create");
        assert!(has(ok, "claim", &claim.id) && has(ok, "coverage", &coverage.id));
        let failed = creates.iter().find(|e| e.code != 0).expect("the failed create");
        assert_eq!(failed.code, tonic::Code::AlreadyExists as i32);
        assert!(has(of(&events, "GetClaim")[0], "claim", &claim.id));
        assert!(has(of(&events, "GetClaim")[0], "patient_ref", "ehr-patient-1"));
        assert!(has(of(&events, "OpenAccount")[0], "account", &account.id));
        let get_account = of(&events, "GetAccount");
        assert!(get_account.iter().any(|e| e.code == 0 && has(e, "account", &account.id)));
        assert_ne!(missing.code(), tonic::Code::Ok);
        assert!(get_account.iter().any(|e| e.code == missing.code() as i32));

        // Filters.
        let by_patient = list_all(&mut audit_a, audit::ListAuditEventsRequest {
            patient_ref: "ehr-patient-1".into(),
            ..Default::default()
        }).await?;
        assert!(by_patient.iter().all(|e| has(e, "patient_ref", "ehr-patient-1")));
        assert!(by_patient.iter().any(|e| e.method == "OpenAccount"));
        let by_claim = list_all(&mut audit_a, audit::ListAuditEventsRequest {
            resource_type: "claim".into(),
            resource_id: claim.id.clone(),
            ..Default::default()
        }).await?;
        assert!(by_claim.iter().any(|e| e.method == "GetClaim"));
        assert!(by_claim.iter().all(|e| has(e, "claim", &claim.id)));
        let by_method = list_all(&mut audit_a, audit::ListAuditEventsRequest {
            method: "medbill.claims.v1.ClaimsService/CreateClaim".into(),
            ..Default::default()
        }).await?;
        assert_eq!(by_method.len(), 2);
        let bad = audit_a
            .list_audit_events(audit::ListAuditEventsRequest { resource_id: "x".into(), ..Default::default() })
            .await
            .expect_err("resource_id alone");
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);

        // Another tenant sees none of it.
        let mut audit_b = audit::audit_service_client::AuditServiceClient::new(channel_to(&url, Caller::TenantB));
        let theirs = list_all(&mut audit_b, audit::ListAuditEventsRequest::default()).await?;
        assert!(theirs.iter().all(|e| e.method == "ListAuditEvents"), "{theirs:#?}");

        suite.shutdown().await?;

        // No PHI value in any stored record, of any tenant.
        let stored = stored_records(&env).await?;
        assert!(stored.len() >= events.len(), "{} stored", stored.len());
        for record in &stored {
            let text = format!("{record:?}");
            for phi in PHI {
                assert!(!text.contains(phi), "{phi} in {text}");
            }
        }
        Ok(())
    }

    async fn reads_still_queued_at_shutdown_are_written(env: TestEnv) -> anyhow::Result<()> {
        let suite = common::start_tuned(&env, Target::All, |mut loaded| {
            // Nothing is written before shutdown unless shutdown writes it.
            loaded.config_mut().audit.flush_ms = 600_000;
            loaded.config_mut().audit.batch_rows = 100_000;
            loaded
        })
        .await?;
        let url = suite.handle.url();
        let mut coll = collections::collections_service_client::CollectionsServiceClient::new(
            channel_to(&url, Caller::TenantA),
        );
        for _ in 0..5 {
            coll.list_accounts(collections::ListAccountsRequest::default()).await?;
        }
        suite.shutdown().await?;
        let stored = stored_records(&env).await?;
        let lists = stored.iter().filter(|r| r.method == "ListAccounts").count();
        assert_eq!(lists, 5, "{stored:#?}");
        Ok(())
    }
}
