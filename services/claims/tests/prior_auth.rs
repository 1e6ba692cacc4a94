//! ScrubClaim checks a payer-required prior authorization against the approved ones the
//! eligibility service holds for the claim's coverage: payer-sim (built-in catalog) decides the
//! 278, the real eligibility server keeps it, the real claims server scrubs, through the
//! generated gRPC clients, on SQLite and, when `MEDBILL_TEST_PG_URL` is set, PostgreSQL.

use std::sync::Arc;

use chrono::NaiveDate;
use medbill_claims::settings::{ClaimsConfig, PayerRulesConfig};
use medbill_claims::{ClaimsService, open_store};
use medbill_connect::{
    Connections, CoreHttpConfig, PayerConnection, RetryPolicy as PayerRetry, TransportConfig,
};
use medbill_eligibility::{
    EligibilityConfig, EligibilityService, EligibilitySettings, ProviderConfig,
};
use medbill_payer_sim::PayerSimConfig;
use medbill_proto::claims::v1 as pb;
use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as elig;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_runtime::config::{ClientConfig, RetryPolicy};
use medbill_storage::testing::TestEnv;
use medbill_testkit::fixtures::{billing_provider, patient_demographics, register_provider};
use medbill_testkit::{Caller, TestServer, channel_to};

const DOS: &str = "2026-12-15";

struct Suite {
    claims: TestServer,
    eligibility: TestServer,
    _sim: medbill_payer_sim::PayerSimHandle,
}

impl Suite {
    async fn start(env: &TestEnv) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let sim = medbill_payer_sim::start(PayerSimConfig::default(), listener).await?;
        let payers = vec![PayerConnection {
            payer_id: "SIMPPO".into(),
            sender_id: "MEDBILL01".into(),
            receiver_id: "MEDBILLSIM".into(),
            transport: TransportConfig::CoreHttp(CoreHttpConfig::new(sim.url())),
            batch_transport: None,
            retry: PayerRetry::default(),
        }];
        let config = EligibilityConfig {
            default_provider: Some(ProviderConfig {
                npi: "1234567893".into(),
                organization_name: "SUNRISE FAMILY MEDICINE".into(),
                tax_id: None,
            }),
            ..EligibilityConfig::default()
        };
        let store = medbill_eligibility::open_store(env.connect("eligibility").await?).await?;
        let eligibility = TestServer::start(tonic::service::Routes::new(
            EligibilityService::with_payers(
                store,
                Connections::open(&payers)?,
                EligibilitySettings::from_config(&config, &payers)?,
            )
            .into_server(),
        ))
        .await;
        let claims_config = ClaimsConfig {
            payers: vec![PayerRulesConfig {
                payer_id: "SIMPPO".to_owned(),
                timely_filing_days: 365,
                procedures_requiring_authorization: vec!["E0601".to_owned()],
                follow_up_days: 30,
            }],
            ..ClaimsConfig::default()
        };
        let channel =
            medbill_runtime::client::connect(&eligibility.url(), &ClientConfig::default())?;
        let service = ClaimsService::new(
            open_store(env.db().clone()).await?,
            EligibilityServiceClient::new(channel),
            RetryPolicy::default(),
        )
        .with_scrub_rules(Arc::new(claims_config.scrub_rules()?))
        .with_today(|| NaiveDate::from_ymd_opt(2026, 12, 20).unwrap_or_default());
        let claims = TestServer::start(tonic::service::Routes::new(service.into_server())).await;
        for caller in [Caller::TenantA, Caller::TenantB] {
            let mut client = ClaimsServiceClient::new(claims.channel(caller));
            register_provider(&mut client, billing_provider()).await?;
        }
        Ok(Self {
            claims,
            eligibility,
            _sim: sim,
        })
    }

    fn eligibility(
        &self,
        caller: Caller,
    ) -> EligibilityServiceClient<medbill_runtime::client::TracedChannel> {
        EligibilityServiceClient::new(channel_to(&self.eligibility.url(), caller))
    }

    fn claims(
        &self,
        caller: Caller,
    ) -> ClaimsServiceClient<medbill_runtime::client::TracedChannel> {
        ClaimsServiceClient::new(self.claims.channel(caller))
    }
}

/// A coverage for the catalog's member SPX100000001 (plan PPO-GOLD) and an approved
/// authorization for 2 units of E0601 (4 asked, the plan certifies 2).
async fn authorized(suite: &Suite) -> anyhow::Result<(String, String)> {
    let mut e = suite.eligibility(Caller::TenantA);
    let coverage = e
        .create_coverage(elig::CreateCoverageRequest {
            idempotency_key: "cov-1".into(),
            patient_ref: "pat-1".into(),
            payer_id: "SIMPPO".into(),
            payer_name: "SIMULATED PPO HEALTH".into(),
            member_id: "SPX100000001".into(),
            subscriber_first_name: "AVERY".into(),
            subscriber_last_name: "TESTPATIENT".into(),
            subscriber_birth_date: "1985-03-14".into(),
            effective_date: "2026-01-01".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .coverage
        .unwrap_or_default()
        .id;
    let auth = e
        .request_prior_authorization(elig::RequestPriorAuthorizationRequest {
            idempotency_key: "pa-1".into(),
            coverage_id: coverage.clone(),
            service_type_code: "12".into(),
            diagnoses: vec!["G4733".into()],
            services: vec![elig::AuthorizedService {
                procedure: Some(common::Procedure {
                    code: "E0601".into(),
                    ..Default::default()
                }),
                requested_units: "4".into(),
                ..Default::default()
            }],
            requested_dates: Some(common::ServiceDateRange {
                from_date: "2026-12-01".into(),
                to_date: "2026-12-31".into(),
            }),
            ..Default::default()
        })
        .await?
        .into_inner()
        .prior_authorization
        .unwrap_or_default();
    assert_eq!(
        auth.status(),
        elig::PriorAuthorizationStatus::PartiallyApproved,
        "{auth:?}"
    );
    assert_eq!(auth.services[0].approved_units, "2");
    Ok((coverage, auth.authorization_number))
}

fn claim(
    pcn: &str,
    coverage_id: &str,
    units: &str,
    day: &str,
    number: Option<&str>,
) -> pb::ClaimInput {
    pb::ClaimInput {
        patient_control_number: pcn.to_owned(),
        claim_type: pb::ClaimType::Professional.into(),
        coverage_id: coverage_id.to_owned(),
        payer_id: "SIMPPO".to_owned(),
        patient_ref: "pat-1".to_owned(),
        billing_provider_npi: "1234567893".to_owned(),
        place_of_service: "12".to_owned(),
        diagnoses: vec!["G4733".to_owned()],
        lines: vec![
            pb::ClaimLine {
                procedure_code: "G0439".to_owned(),
                charge: "100.00".to_owned(),
                units: "1".to_owned(),
                service_date: day.to_owned(),
                diagnosis_pointers: vec![1],
                ..Default::default()
            },
            pb::ClaimLine {
                procedure_code: "E0601".to_owned(),
                charge: "300.00".to_owned(),
                units: units.to_owned(),
                service_date: day.to_owned(),
                diagnosis_pointers: vec![1],
                prior_authorization_number: number.unwrap_or_default().to_owned(),
                ..Default::default()
            },
        ],
        demographics: Some(patient_demographics()),
        ..Default::default()
    }
}

async fn scrubbed(
    c: &mut ClaimsServiceClient<medbill_runtime::client::TracedChannel>,
    input: pb::ClaimInput,
) -> anyhow::Result<pb::ScrubClaimResponse> {
    let key = input.patient_control_number.clone();
    let created = c
        .create_claim(pb::CreateClaimRequest {
            idempotency_key: format!("c-{key}"),
            claim: Some(input),
        })
        .await?
        .into_inner()
        .claim
        .unwrap_or_default();
    Ok(c.scrub_claim(pb::ScrubClaimRequest {
        idempotency_key: format!("s-{key}"),
        claim_id: created.id,
    })
    .await?
    .into_inner())
}

fn auth_findings(r: &pb::ScrubClaimResponse) -> Vec<(String, u32, String)> {
    r.findings
        .iter()
        .filter(|f| f.edit_code == "PRIOR_AUTH_MISSING")
        .map(|f| (f.field.clone(), f.line_number, f.message.clone()))
        .collect()
}

medbill_storage::conformance_tests! {
    namespace = "claims";

    async fn scrub_checks_the_number_against_the_approved_authorizations(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let (coverage, number) = authorized(&suite).await?;
        let mut c = suite.claims(Caller::TenantA);

        // The approved number, on the date and within the units: READY.
        let ok = scrubbed(&mut c, claim("PA-OK", &coverage, "2", DOS, Some(&number))).await?;
        assert!(auth_findings(&ok).is_empty(), "{:?}", ok.findings);
        assert_eq!(ok.claim.unwrap_or_default().status(), pb::ClaimStatus::Ready);

        // No number: HELD, naming the line and the approved authorization that covers it.
        let missing = scrubbed(&mut c, claim("PA-NONE", &coverage, "1", DOS, None)).await?;
        let found = auth_findings(&missing);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].0.as_str(), found[0].1), ("lines[1].prior_authorization", 2));
        assert!(found[0].2.contains(&format!("approved authorization {number} covers it")), "{}", found[0].2);
        assert_eq!(missing.claim.unwrap_or_default().status(), pb::ClaimStatus::Held);

        // Expired: the date of service is after the certified period.
        let late = scrubbed(&mut c, claim("PA-LATE", &coverage, "1", "2027-01-05", Some(&number))).await?;
        assert!(auth_findings(&late)[0].2.contains("expired"), "{:?}", late.findings);

        // Exhausted across claims: PA-OK billed the 2 units approved and the held PA-LATE one more
        // (a claim counts until it is voided, rejected or denied).
        let more = scrubbed(&mut c, claim("PA-MORE", &coverage, "1", DOS, Some(&number))).await?;
        let found = auth_findings(&more);
        assert!(found[0].2.contains("exhausted") && found[0].2.contains("other claims already billed 3"), "{found:?}");
        assert_eq!(more.claim.unwrap_or_default().status(), pb::ClaimStatus::Held);

        // Exhausted within the claim: 3 units billed, 2 approved.
        let over = scrubbed(&mut c, claim("PA-OVER", &coverage, "3", DOS, Some(&number))).await?;
        assert!(auth_findings(&over)[0].2.contains("exhausted"), "{:?}", over.findings);

        // A number the payer never approved.
        let unknown = scrubbed(&mut c, claim("PA-UNKNOWN", &coverage, "1", DOS, Some("NOPE123"))).await?;
        assert!(auth_findings(&unknown)[0].2.contains("not an approved authorization"), "{:?}", unknown.findings);
        assert_eq!(unknown.claim.unwrap_or_default().status(), pb::ClaimStatus::Held);
        Ok(())
    }
}
