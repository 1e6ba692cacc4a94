//! ScrubClaim through the generated gRPC client against a real claims server and the real
//! eligibility server it reads coverage dates from, on SQLite and, when `MEDBILL_TEST_PG_URL` is
//! set, on PostgreSQL. The scrub rules come from a `[claims]` configuration with made-up NCCI
//! files (HCPCS Level II codes only) written to a temporary directory; today is pinned.
//!
//! Edits that CreateClaim's own validation makes unreachable through the API (REQUIRED_FIELD,
//! NPI_CHECK_DIGIT, DIAGNOSIS_POINTER_RANGE, CPT_FORMAT) are covered by the engine's unit tests.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;
use medbill_claims::settings::{ClaimsConfig, NcciConfig, PayerRulesConfig};
use medbill_claims::store::NewStatus;
use medbill_claims::{ClaimStatus, ClaimsService, StatusChangeSource, open_store};
use medbill_domain::{ClaimId, CoverageId, TenantId};
use medbill_eligibility::EligibilityService;
use medbill_proto::claims::v1 as pb;
use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_proto::eligibility::v1 as elig;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_runtime::client::TracedChannel;
use medbill_runtime::config::{ClientConfig, RetryPolicy};
use medbill_storage::testing::TestEnv;
use medbill_testkit::fixtures::{billing_provider, patient_demographics, register_provider};
use medbill_testkit::{Caller, TENANT_A, TestServer, channel_to};
use tonic::Code;

type Client = ClaimsServiceClient<TracedChannel>;

const PTP: &str = "Layout sample: made-up rows, HCPCS Level II codes only\n\
    Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\tDeletion Date\tModifier\tPTP Edit Rationale\n\
    G0439\tG0444\t\t20200101\t*\t1\tMisuse of column two code with column one code\n";
const MUE: &str = "HCPCS/CPT Code\tPractitioner Services MUE Values\tMUE Adjudication Indicator\tMUE Rationale\n\
    G0444\t1\t2 Date of Service Edit: Policy\tNature of Service/Procedure\n";

/// The scrub's "today": 2026-06-01.
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 1).unwrap_or_default()
}

/// A year later: every 2026 date of service is past a 90-day limit.
fn a_year_later() -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 6, 1).unwrap_or_default()
}

struct Suite {
    claims: TestServer,
    eligibility: TestServer,
    service: ClaimsService,
    env_db: medbill_storage::Database,
    rules: Arc<medbill_claims::scrub::ScrubRules>,
    _files: tempfile::TempDir,
}

impl Suite {
    /// Starts eligibility and claims; `cpt` writes a licensed CPT file with 10001 only.
    async fn start(env: &TestEnv, cpt: bool) -> anyhow::Result<Self> {
        let eligibility_store =
            medbill_eligibility::open_store(env.connect("eligibility").await?).await?;
        let eligibility = TestServer::start(tonic::service::Routes::new(
            EligibilityService::new(eligibility_store).into_server(),
        ))
        .await;
        let files = tempfile::tempdir()?;
        let write = |name: &str, text: &str| -> anyhow::Result<PathBuf> {
            let path = files.path().join(name);
            std::fs::write(&path, text)?;
            Ok(path)
        };
        let mut config = ClaimsConfig::default();
        config.code_sets.ncci = NcciConfig {
            ptp_practitioner: vec![write("ptp.txt", PTP)?],
            mue_practitioner: vec![write("mue.txt", MUE)?],
            ..NcciConfig::default()
        };
        if cpt {
            config.code_sets.cpt_file =
                Some(write("cpt.csv", "code,description\n10001,made up\n")?);
        }
        config.payers = vec![PayerRulesConfig {
            payer_id: "60054".to_owned(),
            timely_filing_days: 90,
            procedures_requiring_authorization: vec!["J3490".to_owned()],
            follow_up_days: 30,
        }];
        let rules = Arc::new(config.scrub_rules()?);
        let service = fresh_service(env.db(), &eligibility, rules.clone()).await?;
        let claims =
            TestServer::start(tonic::service::Routes::new(service.clone().into_server())).await;
        for caller in [Caller::TenantA, Caller::TenantB] {
            let mut client = ClaimsServiceClient::new(claims.channel(caller));
            register_provider(&mut client, billing_provider()).await?;
        }
        Ok(Self {
            claims,
            eligibility,
            service,
            env_db: env.db().clone(),
            rules,
            _files: files,
        })
    }

    /// Another claims server over the same store and rules, with its own eligibility client
    /// (and so no coverage dates read yet).
    async fn second_server(&self) -> anyhow::Result<TestServer> {
        let service = fresh_service(&self.env_db, &self.eligibility, self.rules.clone()).await?;
        Ok(TestServer::start(tonic::service::Routes::new(service.into_server())).await)
    }

    fn client(&self, caller: Caller) -> Client {
        ClaimsServiceClient::new(self.claims.channel(caller))
    }

    /// Creates a coverage in force from `effective` for payer 60054.
    async fn coverage(&self, caller: Caller, effective: &str) -> anyhow::Result<String> {
        let mut c = EligibilityServiceClient::new(channel_to(&self.eligibility.url(), caller));
        let req = elig::CreateCoverageRequest {
            idempotency_key: CoverageId::new().to_string(),
            patient_ref: "pat-1".to_owned(),
            payer_id: "60054".to_owned(),
            payer_name: "AETNA".to_owned(),
            member_id: "W123456789".to_owned(),
            subscriber_first_name: "JANE".to_owned(),
            subscriber_last_name: "DOE".to_owned(),
            subscriber_birth_date: "1984-03-09".to_owned(),
            effective_date: effective.to_owned(),
            ..Default::default()
        };
        let coverage = c.create_coverage(req).await?.into_inner().coverage;
        Ok(coverage.map(|c| c.id).unwrap_or_default())
    }
}

async fn fresh_service(
    db: &medbill_storage::Database,
    eligibility: &TestServer,
    rules: Arc<medbill_claims::scrub::ScrubRules>,
) -> anyhow::Result<ClaimsService> {
    let channel = medbill_runtime::client::connect(&eligibility.url(), &ClientConfig::default())?;
    // Short pauses keep the "eligibility down" test quick.
    let retry = RetryPolicy {
        initial_backoff_ms: 10,
        max_backoff_ms: 50,
        ..RetryPolicy::default()
    };
    let store = open_store(db.clone()).await?;
    Ok(
        ClaimsService::new(store, EligibilityServiceClient::new(channel), retry)
            .with_scrub_rules(rules)
            .with_today(today),
    )
}

fn line(code: &str, day: &str, pointers: Vec<u32>) -> pb::ClaimLine {
    pb::ClaimLine {
        procedure_code: code.to_owned(),
        charge: "100.00".to_owned(),
        units: "1".to_owned(),
        service_date: day.to_owned(),
        diagnosis_pointers: pointers,
        ..Default::default()
    }
}

/// A clean claim: E119 and I10, G0439 and J1100 on 2026-05-04.
fn input(pcn: &str, coverage_id: &str) -> pb::ClaimInput {
    pb::ClaimInput {
        patient_control_number: pcn.to_owned(),
        claim_type: pb::ClaimType::Professional.into(),
        coverage_id: coverage_id.to_owned(),
        payer_id: "60054".to_owned(),
        patient_ref: "pat-1".to_owned(),
        billing_provider_npi: "1234567893".to_owned(),
        place_of_service: "11".to_owned(),
        diagnoses: vec!["E119".to_owned(), "I10".to_owned()],
        lines: vec![
            line("G0439", "2026-05-04", vec![1, 2]),
            line("J1100", "2026-05-04", vec![2]),
        ],
        demographics: Some(patient_demographics()),
        ..Default::default()
    }
}

async fn create(c: &mut Client, claim: pb::ClaimInput) -> anyhow::Result<pb::Claim> {
    let req = pb::CreateClaimRequest {
        idempotency_key: format!("create-{}", claim.patient_control_number),
        claim: Some(claim),
    };
    c.create_claim(req)
        .await?
        .into_inner()
        .claim
        .ok_or_else(|| anyhow::anyhow!("response without claim"))
}

fn scrub_request(key: &str, claim_id: &str) -> pb::ScrubClaimRequest {
    pb::ScrubClaimRequest {
        idempotency_key: key.to_owned(),
        claim_id: claim_id.to_owned(),
    }
}

async fn scrub(
    c: &mut Client,
    key: &str,
    claim_id: &str,
) -> anyhow::Result<pb::ScrubClaimResponse> {
    Ok(c.scrub_claim(scrub_request(key, claim_id))
        .await?
        .into_inner())
}

/// The findings of `edit` as (severity, field, line, x12).
fn fired(r: &pb::ScrubClaimResponse, edit: &str) -> Vec<(pb::ScrubSeverity, String, u32, String)> {
    r.findings
        .iter()
        .filter(|f| f.edit_code == edit)
        .map(|f| {
            (
                f.severity(),
                f.field.clone(),
                f.line_number,
                f.x12_location.clone(),
            )
        })
        .collect()
}

use pb::ScrubSeverity::{Error, Info, Warning};

fn one(
    severity: pb::ScrubSeverity,
    field: &str,
    line: u32,
    x12: &str,
) -> Vec<(pb::ScrubSeverity, String, u32, String)> {
    vec![(severity, field.to_owned(), line, x12.to_owned())]
}

/// Creates the claim, scrubs it, and checks that it was held with exactly the finding
/// `(edit, severity, field, line, x12)` among its findings, errors first, and that GetClaim
/// returns the same findings.
async fn expect_held(
    c: &mut Client,
    claim: pb::ClaimInput,
    edit: &str,
    expected: Vec<(pb::ScrubSeverity, String, u32, String)>,
) -> anyhow::Result<pb::ScrubClaimResponse> {
    let created = create(c, claim).await?;
    let r = scrub(c, &format!("scrub-{}", created.id), &created.id).await?;
    assert_eq!(fired(&r, edit), expected, "{edit}: {:#?}", r.findings);
    assert!(!r.passed, "{edit}");
    let claim = r.claim.clone().unwrap_or_default();
    assert_eq!(claim.status(), pb::ClaimStatus::Held, "{edit}");
    assert_eq!(claim.scrub_findings, r.findings);
    let severities: Vec<i32> = r.findings.iter().map(|f| f.severity).collect();
    let mut sorted = severities.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(severities, sorted, "errors first");
    for f in &r.findings {
        assert!(
            !f.message.is_empty()
                && !f.message.contains("JANE")
                && !f.message.contains("W123456789")
        );
    }
    let got = c
        .get_claim(pb::GetClaimRequest {
            id: created.id.clone(),
        })
        .await?
        .into_inner()
        .claim;
    assert_eq!(
        got.as_ref(),
        Some(&claim),
        "GetClaim returns the scrubbed claim with its findings"
    );
    Ok(r)
}

medbill_storage::conformance_tests! {
    namespace = "claims";

    async fn a_clean_claim_becomes_ready(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env, false).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "2026-01-01").await?;
        let created = create(&mut a, input("PCN-1", &cov)).await?;
        let r = scrub(&mut a, "s-1", &created.id).await?;
        assert!(r.passed);
        assert_eq!(r.findings, vec![]);
        let claim = r.claim.unwrap_or_default();
        assert_eq!(claim.status(), pb::ClaimStatus::Ready);
        let micros = |t: &Option<prost_types::Timestamp>| t.as_ref().map(|t| (t.seconds, t.nanos));
        assert!(micros(&claim.updated_at) >= micros(&created.updated_at));

        // A CPT code without a licensed file: an INFO note, still READY.
        let mut with_cpt = input("PCN-2", &cov);
        with_cpt.lines[1].procedure_code = "99213".to_owned();
        let created = create(&mut a, with_cpt).await?;
        let r = scrub(&mut a, "s-2", &created.id).await?;
        assert!(r.passed);
        assert_eq!(fired(&r, "CPT_NOT_CHECKED"), one(Info, "lines[1].procedure_code", 2, "2400 SV1-01-2"));
        assert_eq!(r.findings[0].message, "CPT content not checked: no licensed CPT file configured (99213 has the CPT format)");
        assert_eq!(r.claim.unwrap_or_default().status(), pb::ClaimStatus::Ready);

        // ListClaims carries the findings of each claim's latest scrub.
        let listed = a.list_claims(pb::ListClaimsRequest { page_size: 10, ..Default::default() }).await?.into_inner().claims;
        assert_eq!(listed.len(), 2);
        assert!(listed[0].scrub_findings.is_empty());
        assert_eq!(listed[1].scrub_findings.len(), 1);
        assert_eq!(listed[1].scrub_findings[0].edit_code, "CPT_NOT_CHECKED");
        Ok(())
    }

    async fn each_kind_of_finding_holds_the_claim(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env, false).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "2025-01-01").await?;
        let base = |pcn: &str| input(pcn, &cov);

        let mut c = base("ICD-1");
        c.diagnoses[1] = "S301XXA".to_owned(); // deleted in FY2026
        let r = expect_held(&mut a, c, "ICD10_INVALID_ON_DOS", one(Error, "diagnoses[1]", 1, "2300 HI02-2")).await?;
        assert!(r.findings[0].message.ends_with("it is valid in FY2025"), "{}", r.findings[0].message);

        let mut c = base("ICD-2");
        c.diagnoses[0] = "E11".to_owned();
        expect_held(&mut a, c, "ICD10_NOT_BILLABLE", one(Error, "diagnoses[0]", 1, "2300 HI01-2")).await?;

        let mut c = base("ICD-3");
        c.diagnoses[0] = "Q9999".to_owned();
        expect_held(&mut a, c, "ICD10_UNKNOWN", one(Error, "diagnoses[0]", 1, "2300 HI01-2")).await?;

        let mut c = base("HCPCS-1");
        c.lines[1].procedure_code = "A9998".to_owned();
        expect_held(&mut a, c, "HCPCS_INVALID", one(Error, "lines[1].procedure_code", 2, "2400 SV1-01-2")).await?;

        let mut c = base("PTR-1");
        c.lines[0].diagnosis_pointers = vec![1, 1];
        expect_held(&mut a, c, "DIAGNOSIS_POINTER_DUPLICATE", one(Error, "lines[0].diagnosis_pointers[1]", 1, "2400 SV1-07-2")).await?;

        let mut c = base("PTR-2");
        c.diagnoses = vec!["S52501A".to_owned(), "W010XXA".to_owned()];
        c.lines[1].diagnosis_pointers = vec![2, 1];
        expect_held(&mut a, c, "DIAGNOSIS_POINTER_PRIMARY", one(Error, "lines[1].diagnosis_pointers[0]", 2, "2400 SV1-07-1")).await?;

        let mut c = base("MOD-1");
        c.lines[0].modifiers = vec!["ZQ".to_owned()];
        expect_held(&mut a, c, "MODIFIER_UNKNOWN", one(Error, "lines[0].modifiers[0]", 1, "2400 SV1-01-3")).await?;

        let mut c = base("MOD-2");
        c.lines[1].modifiers = vec!["LT".to_owned(), "RT".to_owned()];
        expect_held(&mut a, c, "MODIFIER_NOT_ALLOWED", one(Error, "lines[1].modifiers[1]", 2, "2400 SV1-01-4")).await?;

        let mut c = base("POS-1");
        c.place_of_service = "30".to_owned();
        expect_held(&mut a, c, "POS_INVALID", one(Error, "place_of_service", 0, "2300 CLM05-1")).await?;

        let mut c = base("NCCI-1");
        c.lines[1].procedure_code = "G0444".to_owned();
        let r = expect_held(&mut a, c, "NCCI_PTP", one(Error, "lines[1].procedure_code", 2, "2400 SV1-01-2")).await?;
        assert!(r.findings[0].message.contains("59, XE, XS, XP or XU"), "{}", r.findings[0].message);
        // The same pair with XS passes.
        let mut c = base("NCCI-2");
        c.lines[1].procedure_code = "G0444".to_owned();
        c.lines[1].modifiers = vec!["XS".to_owned()];
        let created = create(&mut a, c).await?;
        assert!(scrub(&mut a, "s-ncci-2", &created.id).await?.passed);

        let mut c = base("MUE-1");
        c.lines[0].procedure_code = "G0444".to_owned();
        c.lines[0].units = "2".to_owned();
        expect_held(&mut a, c, "MUE_UNITS", one(Error, "lines[0].units", 1, "2400 SV1-04")).await?;

        let mut c = base("AUTH-1");
        c.lines[1].procedure_code = "J3490".to_owned();
        let r = expect_held(&mut a, c, "PRIOR_AUTH_MISSING", one(Error, "lines[1].prior_authorization", 2, "2400 REF02 (REF01 G1)")).await?;
        assert!(r.findings[0].message.contains("payer 60054 requires a prior authorization number for J3490"));

        // 2026-02-01 is 120 days before today, past payer 60054's 90 days; no shipped
        // ICD-10-CM edition covers it, which is a warning, not an error.
        let mut c = base("TF-1");
        for l in &mut c.lines {
            l.service_date = "2026-02-01".to_owned();
        }
        let r = expect_held(&mut a, c, "TIMELY_FILING", one(Error, "lines[0].service_date", 1, "2400 DTP03")).await?;
        assert!(r.findings[0].message.contains("120 days ago") && r.findings[0].message.contains("90 days"), "{}", r.findings[0].message);
        assert_eq!(
            fired(&r, "ICD10_CODE_SET_MISSING"),
            vec![
                (Warning, "diagnoses[0]".to_owned(), 1, "2300 HI01-2".to_owned()),
                (Warning, "diagnoses[1]".to_owned(), 1, "2300 HI02-2".to_owned()),
            ]
        );
        assert!(!r.findings.iter().any(|f| f.edit_code.starts_with("ICD10_") && f.severity() == Error));

        let mut c = base("DX-1");
        c.diagnoses.push("I10".to_owned());
        let created = create(&mut a, c).await?;
        let r = scrub(&mut a, "s-dx-1", &created.id).await?;
        assert!(r.passed, "a warning does not hold the claim");
        assert_eq!(fired(&r, "DIAGNOSIS_NOT_POINTED"), one(Warning, "diagnoses[2]", 0, "2300 HI03-2"));
        assert_eq!(r.claim.unwrap_or_default().status(), pb::ClaimStatus::Ready);
        Ok(())
    }

    async fn coverage_not_in_force_on_the_date_of_service_holds_the_claim(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env, false).await?;
        let mut a = suite.client(Caller::TenantA);
        let late = suite.coverage(Caller::TenantA, "2026-05-05").await?;
        let mut c = input("COV-1", &late);
        c.lines[1].service_date = "2026-05-05".to_owned();
        let r = expect_held(&mut a, c, "COVERAGE_INACTIVE", one(Error, "lines[0].service_date", 1, "2400 DTP03")).await?;
        assert_eq!(r.findings[0].message, "the date of service of line 1 is before the coverage's effective date");
        Ok(())
    }

    async fn a_licensed_cpt_file_checks_cpt_codes(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env, true).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "2026-01-01").await?;
        let mut c = input("CPT-1", &cov);
        c.lines[0].procedure_code = "10001".to_owned();
        c.lines[1].procedure_code = "10002".to_owned();
        let r = expect_held(&mut a, c, "CPT_INVALID", one(Error, "lines[1].procedure_code", 2, "2400 SV1-01-2")).await?;
        assert!(fired(&r, "CPT_NOT_CHECKED").is_empty());
        Ok(())
    }

    async fn a_new_scrub_replaces_the_findings(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env, false).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "2026-01-01").await?;
        let created = create(&mut a, input("PCN-1", &cov)).await?;
        assert!(scrub(&mut a, "s-1", &created.id).await?.passed);

        // The same store scrubbed a year later: past the filing limit, HELD.
        let later = suite.service.clone().with_today(a_year_later);
        let server = TestServer::start(tonic::service::Routes::new(later.into_server())).await;
        let mut a_later = ClaimsServiceClient::new(server.channel(Caller::TenantA));
        let r = scrub(&mut a_later, "s-2", &created.id).await?;
        assert!(!r.passed);
        assert_eq!(r.findings.iter().map(|f| f.edit_code.as_str()).collect::<Vec<_>>(), vec!["TIMELY_FILING"]);
        assert_eq!(r.claim.unwrap_or_default().status(), pb::ClaimStatus::Held);

        // Scrubbed again today: READY, and only this scrub's findings remain.
        let r = scrub(&mut a, "s-3", &created.id).await?;
        assert!(r.passed);
        let got = a.get_claim(pb::GetClaimRequest { id: created.id.clone() }).await?.into_inner().claim.unwrap_or_default();
        assert_eq!(got.status(), pb::ClaimStatus::Ready);
        assert!(got.scrub_findings.is_empty(), "{:?}", got.scrub_findings);
        Ok(())
    }

    async fn only_draft_held_or_ready_claims_are_scrubbed(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env, false).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "2026-01-01").await?;
        let created = create(&mut a, input("PCN-1", &cov)).await?;
        assert!(scrub(&mut a, "s-1", &created.id).await?.passed);
        // Submitted through the store (SubmitClaims is not this RPC's business).
        let store = open_store(env.db().clone()).await?;
        let tenant = TenantId::parse(TENANT_A)?;
        let id = ClaimId::parse(&created.id)?;
        let mut tx = env.db().begin().await?;
        store
            .transition(&mut tx, &tenant, id, NewStatus { to: ClaimStatus::Submitted, source: StatusChangeSource::Submission, source_id: "batch-1", reason: "sent" })
            .await?;
        tx.commit().await?;

        let err = a.scrub_claim(scrub_request("s-2", &created.id)).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert_eq!(
            err.message(),
            format!("claim {} is SUBMITTED; only DRAFT, HELD or READY claims can be scrubbed", created.id)
        );
        let got = a.get_claim(pb::GetClaimRequest { id: created.id.clone() }).await?.into_inner().claim.unwrap_or_default();
        assert_eq!(got.status(), pb::ClaimStatus::Submitted, "nothing was written");
        // The refused key left no record: it is free for another request.
        let other = create(&mut a, input("PCN-2", &cov)).await?;
        assert!(scrub(&mut a, "s-2", &other.id).await?.passed);
        Ok(())
    }

    async fn retries_replay_and_reused_keys_are_refused(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env, false).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "2026-01-01").await?;
        let mut c = input("PCN-1", &cov);
        c.lines[1].procedure_code = "A9998".to_owned();
        let first_claim = create(&mut a, c).await?;
        let first = scrub(&mut a, "s-1", &first_claim.id).await?;
        let again = scrub(&mut a, "s-1", &first_claim.id).await?;
        assert_eq!(again, first, "a retry returns the first response");

        let store = open_store(env.db().clone()).await?;
        let tenant = TenantId::parse(TENANT_A)?;
        let history = store.status_history(&tenant, ClaimId::parse(&first_claim.id)?).await?;
        let scrubs: Vec<_> = history.iter().filter(|h| h.source == StatusChangeSource::Scrub).collect();
        assert_eq!(scrubs.len(), 1, "the retry changed nothing");
        assert_eq!(scrubs[0].to, ClaimStatus::Held);
        assert_eq!(scrubs[0].reason, "1 scrub error");

        let other = create(&mut a, input("PCN-2", &cov)).await?;
        let reused = a.scrub_claim(scrub_request("s-1", &other.id)).await.unwrap_err();
        assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");
        assert!(reused.message().contains("s-1"), "{}", reused.message());
        let got = a.get_claim(pb::GetClaimRequest { id: other.id.clone() }).await?.into_inner().claim.unwrap_or_default();
        assert_eq!(got.status(), pb::ClaimStatus::Draft);
        assert!(got.scrub_findings.is_empty());
        Ok(())
    }

    async fn bad_requests_name_the_field_and_other_tenants_claims_are_not_found(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env, false).await?;
        let mut a = suite.client(Caller::TenantA);
        let mut b = suite.client(Caller::TenantB);
        let cov = suite.coverage(Caller::TenantA, "2026-01-01").await?;
        let created = create(&mut a, input("PCN-1", &cov)).await?;

        let err = b.scrub_claim(scrub_request("s-1", &created.id)).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        let missing = ClaimId::new().to_string();
        let err = a.scrub_claim(scrub_request("s-2", &missing)).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err:?}");

        for (req, field) in [
            (scrub_request("s-3", ""), "claim_id"),
            (scrub_request("s-4", "not-a-uuid"), "claim_id"),
            (scrub_request("", &created.id), "idempotency_key"),
        ] {
            let err = a.scrub_claim(req).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
            assert!(err.message().contains(field), "{field}: {}", err.message());
        }
        let got = a.get_claim(pb::GetClaimRequest { id: created.id.clone() }).await?.into_inner().claim.unwrap_or_default();
        assert_eq!(got.status(), pb::ClaimStatus::Draft, "nothing was written");
        Ok(())
    }

    async fn eligibility_down_is_unavailable_unless_the_dates_were_read(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env, false).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "2026-01-01").await?;
        let first = create(&mut a, input("PCN-1", &cov)).await?;
        let second = create(&mut a, input("PCN-2", &cov)).await?;
        let other = suite.second_server().await?;
        let mut a_other = ClaimsServiceClient::new(other.channel(Caller::TenantA));
        suite.eligibility.shutdown().await;

        // A server that never read the coverage cannot scrub: UNAVAILABLE, nothing written.
        let err = a_other.scrub_claim(scrub_request("s-1", &first.id)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert_eq!(err.message(), "eligibility service unavailable; retry");
        let got = a.get_claim(pb::GetClaimRequest { id: first.id.clone() }).await?.into_inner().claim.unwrap_or_default();
        assert_eq!(got.status(), pb::ClaimStatus::Draft);
        assert!(got.scrub_findings.is_empty());

        // The server that created the claims read the coverage then and reuses its dates.
        assert!(scrub(&mut a, "s-1", &first.id).await?.passed);
        assert!(scrub(&mut a, "s-2", &second.id).await?.passed);
        Ok(())
    }
}
