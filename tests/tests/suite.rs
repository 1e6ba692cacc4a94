//! The whole suite as `medbill serve --target all` runs it (the binary's own `serve::start`),
//! called through generated clients the way an EHR would: health, reflection, and a create,
//! get and list of each service's main entity, with tenants kept apart. SQLite always;
//! PostgreSQL too when `MEDBILL_TEST_PG_URL` is set.

mod common;

use medbill::serve::Target;
use medbill_proto::claims::v1 as claims;
use medbill_proto::collections::v1 as collections;
use medbill_proto::eligibility::v1 as eligibility;
use medbill_proto::remittance::v1 as remittance;
use medbill_storage::testing::TestEnv;
use medbill_testkit::{Caller, channel_to};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Lists the services reflection advertises, and checks that reflection can describe each of
/// them (clients such as grpcurl and `buf curl` list, then describe everything).
async fn reflected_services(url: &str) -> anyhow::Result<Vec<String>> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let mut client = ServerReflectionClient::new(channel_to(url, Caller::Anonymous));
    let ask = |message: MessageRequest| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::once(ask(MessageRequest::ListServices(
            String::new(),
        ))))
        .await?
        .into_inner();
    let names: Vec<String> = match answers.message().await?.and_then(|r| r.message_response) {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => anyhow::bail!("unexpected reflection answer: {other:?}"),
    };
    for name in &names {
        let mut answers = client
            .server_reflection_info(tokio_stream::once(ask(
                MessageRequest::FileContainingSymbol(name.clone()),
            )))
            .await?
            .into_inner();
        match answers.message().await?.and_then(|r| r.message_response) {
            Some(MessageResponse::FileDescriptorResponse(files)) => {
                assert!(
                    !files.file_descriptor_proto.is_empty(),
                    "{name}: no descriptor"
                );
            }
            other => anyhow::bail!("reflection cannot describe {name}: {other:?}"),
        }
    }
    Ok(names)
}

/// An eligibility check for payer-sim's demo member Avery Testpatient at `payer_id`.
fn inline_check(key: &str, payer_id: &str) -> eligibility::CheckEligibilityRequest {
    eligibility::CheckEligibilityRequest {
        idempotency_key: key.into(),
        subject: Some(eligibility::check_eligibility_request::Subject::Inline(
            eligibility::InlineSubscriber {
                payer_id: payer_id.into(),
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
    }
}

medbill_storage::conformance_tests! {
    async fn all_four_services_answer_health_and_reflection_without_a_token(env: TestEnv) -> anyhow::Result<()> {
        let suite = common::start(&env, Target::All).await?;
        let url = suite.handle.url();

        let names = reflected_services(&url).await?;
        for service in medbill_proto::service_names::ALL {
            assert!(names.iter().any(|n| n == service), "{service} missing from {names:?}");
        }

        let mut health = HealthClient::new(channel_to(&url, Caller::Anonymous));
        for service in medbill_proto::service_names::ALL {
            let status = health
                .check(HealthCheckRequest { service: service.to_owned() })
                .await?
                .into_inner()
                .status;
            assert_eq!(status, ServingStatus::Serving as i32, "{service}");
        }
        suite.shutdown().await?;
        Ok(())
    }

    async fn each_service_creates_gets_and_lists_its_main_entity_per_tenant(env: TestEnv) -> anyhow::Result<()> {
        let suite = common::start(&env, Target::All).await?;
        let url = suite.handle.url();

        // eligibility: a coverage
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
        let got = elig
            .get_coverage(eligibility::GetCoverageRequest { id: coverage.id.clone() })
            .await?
            .into_inner()
            .coverage
            .expect("a coverage");
        assert_eq!(got.member_id, "W123456789");
        let listed = elig
            .list_coverages(eligibility::ListCoveragesRequest::default())
            .await?
            .into_inner()
            .coverages;
        assert_eq!(listed.iter().map(|c| &c.id).collect::<Vec<_>>(), [&coverage.id]);

        // claims: a professional claim on that coverage
        let mut claims_client =
            claims::claims_service_client::ClaimsServiceClient::new(channel_to(&url, Caller::TenantA));
        medbill_testkit::fixtures::register_provider(&mut claims_client, medbill_testkit::fixtures::billing_provider()).await?;
        let line = |code: &str, charge: &str, pointers: Vec<u32>| claims::ClaimLine {
            procedure_code: code.into(),
            charge: charge.into(),
            units: "1".into(),
            service_date: "2026-03-02".into(),
            diagnosis_pointers: pointers,
            ..Default::default()
        };
        let claim = claims_client
            .create_claim(claims::CreateClaimRequest {
                idempotency_key: "claim-1".into(),
                claim: Some(claims::ClaimInput {
                    patient_control_number: "PCN0001".into(),
                    claim_type: claims::ClaimType::Professional.into(),
                    coverage_id: coverage.id.clone(),
                    payer_id: "60054".into(),
                    patient_ref: "ehr-patient-1".into(),
                    billing_provider_npi: "1234567893".into(),
                    place_of_service: "11".into(),
                    diagnoses: vec!["E119".into()],
                    lines: vec![line("99213", "125.00", vec![1]), line("85025", "30.10", vec![1])],
                    ..Default::default()
                }),
            })
            .await?
            .into_inner()
            .claim
            .expect("a claim");
        assert_eq!(claim.total_charge, "155.10");
        let got = claims_client
            .get_claim(claims::GetClaimRequest { id: claim.id.clone() })
            .await?
            .into_inner()
            .claim
            .expect("a claim");
        assert_eq!(got.patient_control_number, "PCN0001");
        let listed = claims_client
            .list_claims(claims::ListClaimsRequest::default())
            .await?
            .into_inner()
            .claims;
        assert_eq!(listed.len(), 1);

        // remittance: an 835 (a public sample; see tests/fixtures/LICENSE-NOTICE)
        let mut remit = remittance::remittance_service_client::RemittanceServiceClient::new(
            channel_to(&url, Caller::TenantA),
        );
        let content = include_bytes!("fixtures/medicare-part-a.835").to_vec();
        let era = remit
            .ingest_era(remittance::IngestEraRequest {
                idempotency_key: "era-1".into(),
                content,
                file_name: "medicare-part-a.835".into(),
            })
            .await?
            .into_inner()
            .era
            .expect("an era");
        let got = remit
            .get_era(remittance::GetEraRequest { id: era.id.clone(), ..Default::default() })
            .await?
            .into_inner()
            .era
            .expect("an era");
        assert_eq!(got.id, era.id);
        assert_eq!(got.status, remittance::EraStatus::Received as i32);
        assert_eq!(got.payment_amount, "150000.00");
        assert_eq!(got.trace_number, "12345");
        let listed = remit
            .list_eras(remittance::ListErasRequest::default())
            .await?
            .into_inner()
            .eras;
        assert_eq!(listed.len(), 1);

        // collections: a patient account
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
        let got = coll
            .get_account(collections::GetAccountRequest { id: account.id.clone(), ..Default::default() })
            .await?
            .into_inner()
            .account
            .expect("an account");
        assert_eq!(got.balance, "0.00");
        let listed = coll
            .list_accounts(collections::ListAccountsRequest::default())
            .await?
            .into_inner()
            .accounts;
        assert_eq!(listed.len(), 1);

        // Tenant B sees none of tenant A's entities.
        let mut elig_b = eligibility::eligibility_service_client::EligibilityServiceClient::new(
            channel_to(&url, Caller::TenantB),
        );
        let hidden = elig_b
            .get_coverage(eligibility::GetCoverageRequest { id: coverage.id.clone() })
            .await
            .expect_err("tenant B must not read tenant A's coverage");
        assert_eq!(hidden.code(), tonic::Code::NotFound);
        let mut claims_b =
            claims::claims_service_client::ClaimsServiceClient::new(channel_to(&url, Caller::TenantB));
        assert!(claims_b.list_claims(claims::ListClaimsRequest::default()).await?.into_inner().claims.is_empty());
        let mut remit_b = remittance::remittance_service_client::RemittanceServiceClient::new(
            channel_to(&url, Caller::TenantB),
        );
        assert!(remit_b.list_eras(remittance::ListErasRequest::default()).await?.into_inner().eras.is_empty());
        let mut coll_b = collections::collections_service_client::CollectionsServiceClient::new(
            channel_to(&url, Caller::TenantB),
        );
        assert!(coll_b.list_accounts(collections::ListAccountsRequest::default()).await?.into_inner().accounts.is_empty());

        suite.shutdown().await?;
        Ok(())
    }

    async fn the_zero_setup_suite_checks_eligibility_through_its_payer_sim(env: TestEnv) -> anyhow::Result<()> {
        let suite = common::start(&env, Target::All).await?;
        let mut elig = eligibility::eligibility_service_client::EligibilityServiceClient::new(
            channel_to(&suite.handle.url(), Caller::TenantA),
        );
        let request = inline_check("check-1", "SIMPPO");
        let check = elig.check_eligibility(request).await?.into_inner().check.expect("a check");
        assert_eq!(check.status, eligibility::EligibilityCheckStatus::Completed as i32);
        let summary = check.summary.expect("a benefit summary");
        assert_eq!(summary.coverage_status, eligibility::CoverageStatus::Active as i32);
        let deductible = summary.individual_deductible.expect("a deductible");
        assert_eq!((deductible.total.as_str(), deductible.remaining.as_str()), ("1500.00", "1250.00"));

        let unknown = inline_check("check-2", "NO-SUCH-PAYER");
        let refused = elig.check_eligibility(unknown).await.expect_err("an unknown payer is refused");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().contains("NO-SUCH-PAYER"), "{}", refused.message());
        suite.shutdown().await?;
        Ok(())
    }
}
