//! The claims service through its generated gRPC client against a real server on port 0 (runtime
//! bootstrap: auth with two tenants, health, reflection), pointed at a real eligibility server for
//! its coverage checks, on SQLite and, when `MEDBILL_TEST_PG_URL` is set, on PostgreSQL.

mod support;

use medbill_domain::CoverageId;
use medbill_proto::claims::v1 as pb;
use medbill_proto::common::v1::ServiceDateRange;
use medbill_storage::testing::TestEnv;
use medbill_testkit::Caller;
use medbill_testkit::fixtures::{billing_provider, register_provider};
use support::{Client, Cov, Suite};
use tonic::Code;

fn line(code: &str, charge: &str, day: &str, pointers: Vec<u32>) -> pb::ClaimLine {
    pb::ClaimLine {
        procedure_code: code.to_owned(),
        charge: charge.to_owned(),
        units: "1".to_owned(),
        service_date: day.to_owned(),
        diagnosis_pointers: pointers,
        ..Default::default()
    }
}

fn input(pcn: &str, cov: &Cov) -> pb::ClaimInput {
    pb::ClaimInput {
        patient_control_number: pcn.to_owned(),
        claim_type: pb::ClaimType::Professional.into(),
        coverage_id: cov.id.clone(),
        payer_id: cov.payer_id.clone(),
        patient_ref: cov.patient_ref.clone(),
        billing_provider_npi: "1234567893".to_owned(),
        place_of_service: "11".to_owned(),
        diagnoses: vec!["E119".to_owned(), "I10".to_owned()],
        lines: vec![
            line("99213", "125.00", "2026-03-02", vec![1]),
            line("G0439", "80.55", "2026-03-03", vec![2, 1]),
        ],
        ..Default::default()
    }
}

fn request(key: &str, claim: pb::ClaimInput) -> pb::CreateClaimRequest {
    pb::CreateClaimRequest {
        idempotency_key: key.to_owned(),
        claim: Some(claim),
    }
}

async fn create(c: &mut Client, req: pb::CreateClaimRequest) -> anyhow::Result<pb::Claim> {
    c.create_claim(req)
        .await?
        .into_inner()
        .claim
        .ok_or_else(|| anyhow::anyhow!("response without claim"))
}

async fn list(
    c: &mut Client,
    req: pb::ListClaimsRequest,
) -> Result<pb::ListClaimsResponse, tonic::Status> {
    Ok(c.list_claims(req).await?.into_inner())
}

async fn list_all(c: &mut Client) -> anyhow::Result<Vec<pb::Claim>> {
    let req = pb::ListClaimsRequest {
        page_size: 500,
        ..Default::default()
    };
    Ok(list(c, req).await?.claims)
}

/// Asserts an INVALID_ARGUMENT whose message names `field`.
fn assert_invalid(status: &tonic::Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains(field),
        "message should name {field}: {}",
        status.message()
    );
}

medbill_storage::conformance_tests! {
    namespace = "claims";

    async fn creates_gets_and_lists(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let mut claim = input("PCN-1", &cov);
        claim.lines[1].modifiers = vec!["25".to_owned()];
        claim.lines[1].units = "1.5".to_owned();
        claim.lines[0].charge = "125.5".to_owned();
        claim.total_charge = "206.05".to_owned();
        let created = create(&mut a, request("k-1", claim)).await?;
        assert_eq!(created.id.len(), 36);
        assert_eq!(created.status, pb::ClaimStatus::Draft as i32);
        assert_eq!(created.frequency_code, "1");
        assert_eq!(created.total_charge, "206.05", "computed from the lines");
        assert_eq!(created.service_date_from, "2026-03-02");
        assert_eq!(created.service_date_to, "2026-03-03");
        assert_eq!(created.lines.len(), 2);
        assert_eq!(created.lines[0].charge, "125.50");
        assert_eq!(created.lines[0].line_number, 1);
        assert_eq!(created.lines[1].line_number, 2);
        assert_eq!(created.lines[1].units, "1.5");
        assert_eq!(created.lines[1].modifiers, vec!["25".to_owned()]);
        assert_eq!(created.lines[1].diagnosis_pointers, vec![2, 1]);
        assert!(!created.lines[0].line_control_number.is_empty());
        assert_ne!(created.lines[0].line_control_number, created.lines[1].line_control_number);
        assert_eq!(created.diagnoses, vec!["E119".to_owned(), "I10".to_owned()]);
        assert!(created.created_at.is_some());

        let got = a.get_claim(pb::GetClaimRequest { id: created.id.clone() }).await?.into_inner();
        assert_eq!(got.claim.as_ref(), Some(&created));
        assert_eq!(list_all(&mut a).await?, vec![created]);
        Ok(())
    }

    async fn filters_pages_and_rejects_foreign_tokens(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let aetna = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let uhc = suite.coverage(Caller::TenantA, "pat-1", "87726").await?;
        let mut ids = Vec::new();
        for i in 0..5 {
            let cov = if i % 2 == 0 { &aetna } else { &uhc };
            ids.push(create(&mut a, request(&format!("k-{i}"), input(&format!("PCN-{i}"), cov))).await?.id);
        }

        let mut seen = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = list(&mut a, pb::ListClaimsRequest { page_size: 2, page_token: token.clone(), ..Default::default() }).await?;
            pages += 1;
            assert!(page.claims.len() <= 2);
            seen.extend(page.claims.into_iter().map(|c| c.id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, ids);

        let by_payer = pb::ListClaimsRequest { payer_id: "87726".to_owned(), page_size: 1, ..Default::default() };
        let first = list(&mut a, by_payer.clone()).await?;
        assert_eq!(first.claims.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![ids[1].clone()]);
        let second = list(&mut a, pb::ListClaimsRequest { page_token: first.next_page_token.clone(), ..by_payer.clone() }).await?;
        assert_eq!(second.claims.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![ids[3].clone()]);

        // The token of the payer query presented with other filters is refused.
        let foreign = list(&mut a, pb::ListClaimsRequest { page_token: first.next_page_token.clone(), payer_id: "60054".to_owned(), ..Default::default() }).await.unwrap_err();
        assert_invalid(&foreign, "page_token");
        let garbage = list(&mut a, pb::ListClaimsRequest { page_token: "not-a-token".to_owned(), ..Default::default() }).await.unwrap_err();
        assert_invalid(&garbage, "page_token");
        // Another tenant cannot use it either.
        let mut b = suite.client(Caller::TenantB);
        let stolen = list(&mut b, pb::ListClaimsRequest { page_token: first.next_page_token, ..by_payer }).await.unwrap_err();
        assert_invalid(&stolen, "page_token");

        let by_status = pb::ListClaimsRequest { statuses: vec![pb::ClaimStatus::Draft.into()], ..Default::default() };
        assert_eq!(list(&mut a, by_status).await?.claims.len(), 5);
        let by_status = pb::ListClaimsRequest { statuses: vec![pb::ClaimStatus::Paid.into(), pb::ClaimStatus::Denied.into()], ..Default::default() };
        assert!(list(&mut a, by_status).await?.claims.is_empty());
        let by_pcn = pb::ListClaimsRequest { patient_control_number: "PCN-2".to_owned(), ..Default::default() };
        assert_eq!(list(&mut a, by_pcn).await?.claims.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![ids[2].clone()]);
        let by_dates = pb::ListClaimsRequest {
            service_dates: Some(ServiceDateRange { from_date: "2026-03-04".to_owned(), to_date: String::new() }),
            ..Default::default()
        };
        assert!(list(&mut a, by_dates).await?.claims.is_empty());
        let bad_dates = pb::ListClaimsRequest {
            service_dates: Some(ServiceDateRange { from_date: "2026-13-01".to_owned(), to_date: String::new() }),
            ..Default::default()
        };
        assert_invalid(&list(&mut a, bad_dates).await.unwrap_err(), "service_dates.from_date");
        let bad_size = pb::ListClaimsRequest { page_size: -1, ..Default::default() };
        assert_invalid(&list(&mut a, bad_size).await.unwrap_err(), "page_size");

        // Many CLM01s in one look-up: found ones in id order with their lines, unknown ones absent,
        // another tenant's claims NOT found (absent).
        let numbers = |n: &[&str]| pb::GetClaimsByPatientControlNumbersRequest { patient_control_numbers: n.iter().map(|s| (*s).to_owned()).collect() };
        let found = a.get_claims_by_patient_control_numbers(numbers(&["PCN-3", "PCN-0", "NOPE", "PCN-3"])).await?.into_inner().claims;
        assert_eq!(found.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![ids[0].clone(), ids[3].clone()]);
        assert!(found.iter().all(|c| !c.lines.is_empty()), "claims come with their lines");
        assert!(b.get_claims_by_patient_control_numbers(numbers(&["PCN-0"])).await?.into_inner().claims.is_empty());
        let none = a.get_claims_by_patient_control_numbers(numbers(&[])).await.unwrap_err();
        assert_invalid(&none, "patient_control_numbers");
        let blank = a.get_claims_by_patient_control_numbers(numbers(&["PCN-0", " "])).await.unwrap_err();
        assert_invalid(&blank, "patient_control_numbers[1]");
        let many: Vec<String> = (0..1_001).map(|i| format!("P{i}")).collect();
        let too_many = a.get_claims_by_patient_control_numbers(pb::GetClaimsByPatientControlNumbersRequest { patient_control_numbers: many }).await.unwrap_err();
        assert_invalid(&too_many, "patient_control_numbers");
        Ok(())
    }

    async fn retries_are_idempotent_and_key_reuse_is_refused(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let other_patient = suite.coverage(Caller::TenantA, "pat-2", "60054").await?;
        let req = request("k-1", input("PCN-1", &cov));
        let first = create(&mut a, req.clone()).await?;
        let again = create(&mut a, req).await?;
        assert_eq!(again, first, "a retry returns the first result");
        assert_eq!(list_all(&mut a).await?.len(), 1, "and writes once");

        let reused = a.create_claim(request("k-1", input("PCN-2", &cov))).await.unwrap_err();
        assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");
        assert!(reused.message().contains("k-1"), "{}", reused.message());
        assert_eq!(list_all(&mut a).await?.len(), 1);

        let dup = a.create_claim(request("k-2", input("PCN-1", &other_patient))).await.unwrap_err();
        assert_eq!(dup.code(), Code::AlreadyExists, "{dup:?}");
        assert!(dup.message().contains("patient control number PCN-1"), "{}", dup.message());
        assert_eq!(list_all(&mut a).await?.len(), 1);
        Ok(())
    }

    async fn tenants_are_isolated(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let mut b = suite.client(Caller::TenantB);
        let cov_a = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let cov_b = suite.coverage(Caller::TenantB, "pat-1", "60054").await?;
        let created = create(&mut a, request("k-1", input("PCN-1", &cov_a))).await?;
        let err = b.get_claim(pb::GetClaimRequest { id: created.id.clone() }).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        assert!(list_all(&mut b).await?.is_empty());
        // Tenant B may use the same CLM01 and key for its own claim.
        let theirs = create(&mut b, request("k-1", input("PCN-1", &cov_b))).await?;
        assert_ne!(theirs.id, created.id);
        assert_eq!(list_all(&mut a).await?, vec![created]);
        Ok(())
    }

    async fn bad_input_names_the_field_and_writes_nothing(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        type Edit = fn(&mut pb::CreateClaimRequest);
        let cases: Vec<(&str, Edit)> = vec![
            ("claim.lines[0].charge", |r| r.claim.as_mut().unwrap().lines[0].charge = "12.3.4".into()),
            ("claim.lines[1].charge", |r| r.claim.as_mut().unwrap().lines[1].charge = "1.005".into()),
            ("claim.lines[0].charge", |r| r.claim.as_mut().unwrap().lines[0].charge = String::new()),
            ("claim.lines[0].units", |r| r.claim.as_mut().unwrap().lines[0].units = "1e3".into()),
            ("claim.patient_control_number", |r| r.claim.as_mut().unwrap().patient_control_number = String::new()),
            ("claim.patient_control_number", |r| r.claim.as_mut().unwrap().patient_control_number = "THIS-IS-TWENTY-ONE-X".to_owned() + "Y"),
            ("claim.patient_control_number", |r| r.claim.as_mut().unwrap().patient_control_number = "PCN*1".into()),
            ("claim.billing_provider_npi", |r| r.claim.as_mut().unwrap().billing_provider_npi = "1234567890".into()),
            ("claim.rendering_provider_npi", |r| r.claim.as_mut().unwrap().rendering_provider_npi = "12345".into()),
            ("claim.claim_type", |r| r.claim.as_mut().unwrap().claim_type = 0),
            ("claim.coverage_id", |r| r.claim.as_mut().unwrap().coverage_id = "cov-1".into()),
            ("claim.payer_id", |r| r.claim.as_mut().unwrap().payer_id = String::new()),
            ("claim.place_of_service", |r| r.claim.as_mut().unwrap().place_of_service = String::new()),
            ("claim.diagnoses", |r| r.claim.as_mut().unwrap().diagnoses.clear()),
            ("claim.diagnoses[1]", |r| r.claim.as_mut().unwrap().diagnoses[1] = "I10.0".into()),
            ("claim.lines", |r| r.claim.as_mut().unwrap().lines.clear()),
            ("claim.lines[1].diagnosis_pointers[0]", |r| r.claim.as_mut().unwrap().lines[1].diagnosis_pointers = vec![3]),
            ("claim.lines[0].modifiers", |r| r.claim.as_mut().unwrap().lines[0].modifiers = ["25", "59", "GT", "95", "XE"].map(String::from).to_vec()),
            ("claim.lines[0].procedure_code", |r| r.claim.as_mut().unwrap().lines[0].procedure_code = "9921".into()),
            ("claim.lines[0].service_date", |r| r.claim.as_mut().unwrap().lines[0].service_date = "03/02/2026".into()),
            ("claim.lines[1].line_number", |r| r.claim.as_mut().unwrap().lines[1].line_number = 7),
            ("claim.total_charge", |r| r.claim.as_mut().unwrap().total_charge = "205.50".into()),
            ("claim.service_date_from", |r| r.claim.as_mut().unwrap().service_date_from = "2026-03-03".into()),
            ("claim", |r| r.claim = None),
            ("idempotency_key", |r| r.idempotency_key = String::new()),
        ];
        for (i, (field, edit)) in cases.into_iter().enumerate() {
            let mut req = request(&format!("k-{i}"), input("PCN-1", &cov));
            edit(&mut req);
            let err = a.create_claim(req).await.unwrap_err();
            assert_invalid(&err, field);
        }
        assert!(list_all(&mut a).await?.is_empty(), "nothing was written");
        // The total matches: accepted (the guard above is about a mismatch only).
        let mut ok = request("k-ok", input("PCN-1", &cov));
        ok.claim.as_mut().unwrap().total_charge = "205.55".into();
        create(&mut a, ok).await?;

        let bad_id = a.get_claim(pb::GetClaimRequest { id: "nope".into() }).await.unwrap_err();
        assert_invalid(&bad_id, "id");
        Ok(())
    }

    async fn unknown_or_missing_tokens_are_unauthenticated(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        for caller in [Caller::Anonymous, Caller::UnknownToken] {
            let mut c = suite.client(caller);
            let err = c.create_claim(request("k-1", input("PCN-1", &cov))).await.unwrap_err();
            assert_eq!(err.code(), Code::Unauthenticated, "{caller:?}: {err:?}");
            let err = c.list_claims(pb::ListClaimsRequest::default()).await.unwrap_err();
            assert_eq!(err.code(), Code::Unauthenticated, "{caller:?}: {err:?}");
        }
        let mut a = suite.client(Caller::TenantA);
        assert!(list_all(&mut a).await?.is_empty(), "nothing was written");
        Ok(())
    }

    async fn unknown_coverage_is_a_failed_precondition_and_writes_nothing(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let unknown = Cov { id: CoverageId::new().to_string(), patient_ref: "pat-1".to_owned(), payer_id: "60054".to_owned() };
        let err = a.create_claim(request("k-1", input("PCN-1", &unknown))).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert_eq!(err.message(), format!("claim.coverage_id: coverage {} does not exist for this tenant", unknown.id));
        assert!(list_all(&mut a).await?.is_empty(), "nothing was written");
        Ok(())
    }

    async fn coverage_of_another_payer_or_patient_is_invalid(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;

        let mut other_payer = input("PCN-1", &cov);
        other_payer.payer_id = "87726".to_owned();
        let err = a.create_claim(request("k-1", other_payer)).await.unwrap_err();
        assert_invalid(&err, "claim.payer_id");
        assert!(err.message().contains("87726") && err.message().contains("60054"), "names both payers: {}", err.message());
        assert!(err.message().contains(&cov.id), "{}", err.message());

        let mut other_patient = input("PCN-1", &cov);
        other_patient.patient_ref = "pat-2".to_owned();
        let err = a.create_claim(request("k-2", other_patient)).await.unwrap_err();
        assert_invalid(&err, "claim.patient_ref");
        assert!(!err.message().contains("pat-"), "patient refs are not echoed: {}", err.message());

        assert!(list_all(&mut a).await?.is_empty(), "nothing was written");
        // The same claim with the coverage's own payer and patient is accepted.
        create(&mut a, request("k-3", input("PCN-1", &cov))).await?;
        assert_eq!(list_all(&mut a).await?.len(), 1);
        Ok(())
    }

    async fn a_tenant_cannot_use_another_tenants_coverage(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let theirs = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let mut b = suite.client(Caller::TenantB);
        let err = b.create_claim(request("k-1", input("PCN-1", &theirs))).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert!(err.message().contains("claim.coverage_id") && err.message().contains(&theirs.id), "{}", err.message());
        assert!(list_all(&mut b).await?.is_empty(), "nothing was written");
        // Tenant A, whose token the claims service forwards, may use it.
        let mut a = suite.client(Caller::TenantA);
        create(&mut a, request("k-1", input("PCN-1", &theirs))).await?;
        // Read for tenant A now, it is still not tenant B's.
        let err = b.create_claim(request("k-2", input("PCN-2", &theirs))).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        Ok(())
    }

    async fn eligibility_down_is_unavailable_and_writes_nothing(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let mut a = suite.client(Caller::TenantA);
        let first = create(&mut a, request("k-1", input("PCN-1", &cov))).await?;
        // A coverage the claims service has not read yet (one it read is reused for a while).
        let unread = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;

        suite.eligibility.shutdown().await;
        let err = a.create_claim(request("k-2", input("PCN-2", &unread))).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert_eq!(err.message(), "eligibility service unavailable; retry");
        assert_eq!(list_all(&mut a).await?, vec![first], "nothing more was written");
        // The coverage read for the first claim is reused: claims on it go on being created.
        create(&mut a, request("k-3", input("PCN-3", &cov))).await?;
        Ok(())
    }

    async fn providers_are_registered_masked_updated_and_listed(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let got = a.get_provider(pb::GetProviderRequest { npi: "1234567893".into() }).await?.into_inner().provider.unwrap();
        assert_eq!(got.tax_id, "*****6789", "the tax id is never answered whole");
        assert_eq!(got.tax_id_type, pb::TaxIdType::Ein as i32);
        assert_eq!(got.organization_name, "GENERAL HOSPITAL BILLING");

        let doctor = pb::Provider {
            npi: "1234567802".into(),
            kind: pb::ProviderKind::Individual.into(),
            person_name: Some(medbill_proto::common::v1::PersonName { last_name: "SMITH".into(), first_name: "ANNA".into(), ..Default::default() }),
            taxonomy_code: "207Q00000X".into(),
            ..Default::default()
        };
        let created = register_provider(&mut a, doctor.clone()).await?;
        assert_eq!(created.person_name.as_ref().unwrap().last_name, "SMITH");
        assert!(created.tax_id.is_empty());
        // The same NPI under another key is a duplicate.
        let dup = a.create_provider(pb::CreateProviderRequest { idempotency_key: "other".into(), provider: Some(doctor.clone()) }).await.unwrap_err();
        assert_eq!(dup.code(), Code::AlreadyExists, "{dup:?}");

        for (bad, field) in [
            (pb::Provider { npi: "1234567890".into(), ..doctor.clone() }, "provider.npi"),
            (pb::Provider { taxonomy_code: "207Q0000X".into(), ..doctor.clone() }, "provider.taxonomy_code"),
            (pb::Provider { kind: 0, ..doctor.clone() }, "provider.kind"),
            (pb::Provider { tax_id_type: pb::TaxIdType::Ssn.into(), tax_id: "12-345".into(), ..doctor.clone() }, "provider.tax_id"),
            (pb::Provider { person_name: None, ..doctor.clone() }, "provider.person_name.last_name"),
            (pb::Provider { npi: "1987654328".into(), kind: pb::ProviderKind::ServiceFacility.into(), person_name: None, organization_name: "CLINIC".into(), ..Default::default() }, "provider.address"),
        ] {
            let err = a.create_provider(pb::CreateProviderRequest { idempotency_key: format!("bad-{field}"), provider: Some(bad) }).await.unwrap_err();
            assert_invalid(&err, field);
            assert!(!err.message().contains("12-345"), "a tax id is never echoed: {}", err.message());
        }

        // An update with a tax id type and no digits keeps the tax id on file.
        let mut renamed = billing_provider();
        renamed.organization_name = "GENERAL HOSPITAL".into();
        renamed.tax_id = String::new();
        let updated = a.update_provider(pb::UpdateProviderRequest { idempotency_key: "u-1".into(), provider: Some(renamed) }).await?.into_inner().provider.unwrap();
        assert_eq!(updated.organization_name, "GENERAL HOSPITAL");
        assert_eq!(updated.tax_id, "*****6789");
        let unknown = a.update_provider(pb::UpdateProviderRequest { idempotency_key: "u-2".into(), provider: Some(pb::Provider { npi: "1555555550".into(), ..doctor.clone() }) }).await.unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

        let all = a.list_providers(pb::ListProvidersRequest { page_size: 1, ..Default::default() }).await?.into_inner();
        assert_eq!(all.providers.iter().map(|p| p.npi.as_str()).collect::<Vec<_>>(), vec!["1234567802"]);
        let next = a.list_providers(pb::ListProvidersRequest { page_size: 1, page_token: all.next_page_token, ..Default::default() }).await?.into_inner();
        assert_eq!(next.providers.iter().map(|p| p.npi.as_str()).collect::<Vec<_>>(), vec!["1234567893"]);
        assert!(next.next_page_token.is_empty());
        let people = a.list_providers(pb::ListProvidersRequest { kind: pb::ProviderKind::Individual.into(), ..Default::default() }).await?.into_inner();
        assert_eq!(people.providers.len(), 1);

        // Tenant B has only its own billing provider.
        let mut b = suite.client(Caller::TenantB);
        let theirs = b.get_provider(pb::GetProviderRequest { npi: "1234567802".into() }).await.unwrap_err();
        assert_eq!(theirs.code(), Code::NotFound);
        let b_billing = b.get_provider(pb::GetProviderRequest { npi: "1234567893".into() }).await?.into_inner().provider.unwrap();
        assert_eq!(b_billing.organization_name, "GENERAL HOSPITAL BILLING", "A's update did not touch B's record");
        Ok(())
    }

    async fn claims_name_providers_on_file_and_carry_837_details(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let mut claim = input("PCN-1", &cov);
        claim.rendering_provider_npi = "1234567802".into();
        let err = a.create_claim(request("k-1", claim.clone())).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert!(err.message().contains("claim.rendering_provider_npi"), "{}", err.message());
        assert!(list_all(&mut a).await?.is_empty(), "nothing was written");

        register_provider(&mut a, pb::Provider {
            npi: "1234567802".into(),
            kind: pb::ProviderKind::Individual.into(),
            person_name: Some(medbill_proto::common::v1::PersonName { last_name: "SMITH".into(), first_name: "ANNA".into(), ..Default::default() }),
            ..Default::default()
        }).await?;
        claim.demographics = Some(pb::ClaimDemographics {
            patient: Some(pb::ClaimPerson {
                name: Some(medbill_proto::common::v1::PersonName { last_name: "DOE".into(), first_name: "JANE".into(), ..Default::default() }),
                birth_date: "1984-03-09".into(),
                gender: "F".into(),
                address: Some(medbill_proto::common::v1::Address { line1: "2 OAK ST".into(), city: "SPRINGFIELD".into(), state: "IL".into(), postal_code: "62701".into(), ..Default::default() }),
            }),
            ..Default::default()
        });
        claim.prior_authorization_number = "AUTH-001".into();
        claim.lines[0].prior_authorization_number = "AUTH-LINE-1".into();
        claim.lines[1].referral_number = "REF9F".into();
        let created = create(&mut a, request("k-2", claim.clone())).await?;
        assert_eq!(created.rendering_provider_npi, "1234567802");
        assert_eq!(created.prior_authorization_number, "AUTH-001");
        assert_eq!(created.lines[0].prior_authorization_number, "AUTH-LINE-1");
        assert_eq!(created.lines[1].referral_number, "REF9F");
        let demographics = created.demographics.clone().unwrap();
        assert_eq!(demographics.relationship_to_subscriber, "18", "the coverage's relationship (self) when the claim gives none");
        assert_eq!(demographics.patient.as_ref().unwrap().birth_date, "1984-03-09");
        let got = a.get_claim(pb::GetClaimRequest { id: created.id.clone() }).await?.into_inner().claim.unwrap();
        assert_eq!(got, created, "details survive the round trip through the store");

        // Bad details name their field and write nothing.
        for (bad, field) in [
            ({ let mut c = claim.clone(); c.patient_control_number = "PCN-2".into(); c.demographics.as_mut().unwrap().relationship_to_subscriber = "99".into(); c }, "claim.demographics.relationship_to_subscriber"),
            ({ let mut c = claim.clone(); c.patient_control_number = "PCN-2".into(); c.demographics.as_mut().unwrap().patient.as_mut().unwrap().gender = "X".into(); c }, "claim.demographics.patient.gender"),
            ({ let mut c = claim.clone(); c.patient_control_number = "PCN-2".into(); c.prior_authorization_number = "AUTH*1".into(); c }, "claim.prior_authorization_number"),
            ({ let mut c = claim.clone(); c.patient_control_number = "PCN-2".into(); c.lines[1].referral_number = "x".repeat(51); c }, "claim.lines[1].referral_number"),
            ({ let mut c = claim.clone(); c.patient_control_number = "PCN-2".into(); c.institutional = Some(pb::InstitutionalDetails::default()); c }, "claim.institutional"),
        ] {
            let err = a.create_claim(request(&format!("bad-{field}"), bad)).await.unwrap_err();
            assert_invalid(&err, field);
            assert!(!err.message().contains("DOE") && !err.message().contains("1984"), "no PHI echoed: {}", err.message());
        }

        // An institutional claim needs its UB-04 fields, and its attending provider on file.
        let mut inst = input("PCN-3", &cov);
        inst.claim_type = pb::ClaimType::Institutional.into();
        inst.place_of_service = String::new();
        inst.facility_type_code = "13".into();
        for l in &mut inst.lines {
            l.revenue_code = "0450".into();
        }
        let err = a.create_claim(request("k-3", inst.clone())).await.unwrap_err();
        assert_invalid(&err, "claim.institutional");
        inst.institutional = Some(pb::InstitutionalDetails {
            admission_date: "2026-03-02".into(),
            admission_hour: "1430".into(),
            admission_type: "1".into(),
            admission_source: "7".into(),
            discharge_status: "01".into(),
            attending_provider_npi: "1666666668".into(),
            occurrence_codes: vec![pb::OccurrenceCode { code: "11".into(), date: "2026-03-01".into() }],
            value_codes: vec![pb::ValueCode { code: "80".into(), amount: "1".into() }],
            condition_codes: vec!["07".into()],
            admitting_diagnosis: "R079".into(),
        });
        let err = a.create_claim(request("k-4", inst.clone())).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert!(err.message().contains("claim.institutional.attending_provider_npi"), "{}", err.message());
        register_provider(&mut a, pb::Provider {
            npi: "1666666668".into(),
            kind: pb::ProviderKind::Individual.into(),
            person_name: Some(medbill_proto::common::v1::PersonName { last_name: "JONES".into(), first_name: "AL".into(), ..Default::default() }),
            ..Default::default()
        }).await?;
        let inst_claim = create(&mut a, request("k-5", inst.clone())).await?;
        assert_eq!(inst_claim.institutional, inst.institutional);
        assert_eq!(list_all(&mut a).await?.len(), 2);
        Ok(())
    }
}
