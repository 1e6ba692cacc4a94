//! A claims server with its eligibility server, for the tests of the RPCs after submission:
//! claims are created through the gRPC client and moved along legal paths with the store's
//! `transition`, as acknowledgements would move them.

#![allow(dead_code)]

pub mod payer;

use std::sync::Arc;

use medbill_claims::store::NewStatus;
use medbill_claims::{ClaimStatus, ClaimStore, ClaimsService, StatusChangeSource, open_store};
use medbill_domain::{ClaimId, CoverageId, TenantId};
use medbill_eligibility::EligibilityService;
use medbill_proto::claims::v1 as pb;
use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_proto::eligibility::v1 as elig;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_runtime::client::TracedChannel;
use medbill_runtime::config::{ClientConfig, RetryPolicy};
use medbill_runtime::service::ShutdownTrigger;
use medbill_storage::testing::TestEnv;
use medbill_testkit::fixtures::{billing_provider, register_provider};
use medbill_testkit::{Caller, TENANT_A, TestServer, channel_to};

pub type Client = ClaimsServiceClient<TracedChannel>;

/// The servers, the claims store behind them and the trigger of their stopping signal.
pub struct Suite {
    pub claims: TestServer,
    pub eligibility: TestServer,
    pub store: Arc<dyn ClaimStore>,
    pub stopping: ShutdownTrigger,
}

impl Suite {
    pub async fn start(env: &TestEnv) -> anyhow::Result<Self> {
        let eligibility_store =
            medbill_eligibility::open_store(env.connect("eligibility").await?).await?;
        let eligibility = TestServer::start(tonic::service::Routes::new(
            EligibilityService::new(eligibility_store).into_server(),
        ))
        .await;
        let channel =
            medbill_runtime::client::connect(&eligibility.url(), &ClientConfig::default())?;
        let store = open_store(env.db().clone()).await?;
        let (stopping, signal) = ShutdownTrigger::new();
        // Short pauses keep the "eligibility down" tests quick; the attempts are the default's.
        let retry = RetryPolicy {
            initial_backoff_ms: 10,
            max_backoff_ms: 50,
            ..RetryPolicy::default()
        };
        let service =
            ClaimsService::new(store.clone(), EligibilityServiceClient::new(channel), retry)
                .with_stopping(signal);
        let claims = TestServer::start(tonic::service::Routes::new(service.into_server())).await;
        for caller in [Caller::TenantA, Caller::TenantB] {
            let mut client = ClaimsServiceClient::new(claims.channel(caller));
            register_provider(&mut client, billing_provider()).await?;
        }
        Ok(Self {
            claims,
            eligibility,
            store,
            stopping,
        })
    }

    pub fn client(&self, caller: Caller) -> Client {
        ClaimsServiceClient::new(self.claims.channel(caller))
    }

    /// Creates a coverage of `patient_ref` with `payer_id` in the eligibility service.
    pub async fn coverage(
        &self,
        caller: Caller,
        patient_ref: &str,
        payer_id: &str,
    ) -> anyhow::Result<Cov> {
        let mut c = EligibilityServiceClient::new(channel_to(&self.eligibility.url(), caller));
        let req = elig::CreateCoverageRequest {
            idempotency_key: CoverageId::new().to_string(),
            patient_ref: patient_ref.to_owned(),
            payer_id: payer_id.to_owned(),
            payer_name: "AETNA".to_owned(),
            member_id: "W123456789".to_owned(),
            subscriber_first_name: "JANE".to_owned(),
            subscriber_last_name: "DOE".to_owned(),
            subscriber_birth_date: "1984-03-09".to_owned(),
            effective_date: "2025-01-01".to_owned(),
            ..Default::default()
        };
        let coverage = c
            .create_coverage(req)
            .await?
            .into_inner()
            .coverage
            .ok_or_else(|| anyhow::anyhow!("response without coverage"))?;
        Ok(Cov {
            id: coverage.id,
            patient_ref: patient_ref.to_owned(),
            payer_id: payer_id.to_owned(),
        })
    }

    /// Creates a claim of tenant A through the client (two lines, 100.00 + 100.00, on `day`).
    pub async fn claim(
        &self,
        c: &mut Client,
        pcn: &str,
        cov: &Cov,
        day: &str,
    ) -> anyhow::Result<pb::Claim> {
        let req = pb::CreateClaimRequest {
            idempotency_key: format!("create-{pcn}"),
            claim: Some(input(pcn, cov, day)),
        };
        c.create_claim(req)
            .await?
            .into_inner()
            .claim
            .ok_or_else(|| anyhow::anyhow!("response without claim"))
    }

    /// Moves a claim of tenant A along `path` (each step legal), committing once.
    pub async fn walk(&self, claim_id: &str, path: &[ClaimStatus]) -> anyhow::Result<()> {
        let tenant = TenantId::parse(TENANT_A)?;
        let id = ClaimId::parse(claim_id)?;
        let mut tx = self.store.database().begin().await?;
        for to in path {
            let source = match to {
                ClaimStatus::Ready | ClaimStatus::Held => StatusChangeSource::Scrub,
                ClaimStatus::Submitted => StatusChangeSource::Submission,
                _ => StatusChangeSource::ClaimAcknowledgement,
            };
            self.store
                .transition(
                    &mut tx,
                    &tenant,
                    id,
                    NewStatus {
                        to: *to,
                        source,
                        source_id: "",
                        reason: "test",
                    },
                )
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Moves a DRAFT claim of tenant A to SUBMITTED.
    pub async fn submit(&self, claim_id: &str) -> anyhow::Result<()> {
        self.walk(claim_id, &[ClaimStatus::Ready, ClaimStatus::Submitted])
            .await
    }

    /// Moves a DRAFT claim of tenant A to ACCEPTED.
    pub async fn accept(&self, claim_id: &str) -> anyhow::Result<()> {
        self.walk(
            claim_id,
            &[
                ClaimStatus::Ready,
                ClaimStatus::Submitted,
                ClaimStatus::Accepted,
            ],
        )
        .await
    }

    /// Reads a claim through the client.
    pub async fn get(&self, c: &mut Client, id: &str) -> anyhow::Result<pb::Claim> {
        c.get_claim(pb::GetClaimRequest { id: id.to_owned() })
            .await?
            .into_inner()
            .claim
            .ok_or_else(|| anyhow::anyhow!("response without claim"))
    }
}

/// A coverage as a claim refers to it.
pub struct Cov {
    pub id: String,
    pub patient_ref: String,
    pub payer_id: String,
}

pub fn line(code: &str, charge: &str, day: &str) -> pb::ClaimLine {
    pb::ClaimLine {
        procedure_code: code.to_owned(),
        charge: charge.to_owned(),
        units: "1".to_owned(),
        service_date: day.to_owned(),
        diagnosis_pointers: vec![1],
        ..Default::default()
    }
}

pub fn input(pcn: &str, cov: &Cov, day: &str) -> pb::ClaimInput {
    pb::ClaimInput {
        patient_control_number: pcn.to_owned(),
        claim_type: pb::ClaimType::Professional.into(),
        coverage_id: cov.id.clone(),
        payer_id: cov.payer_id.clone(),
        patient_ref: cov.patient_ref.clone(),
        billing_provider_npi: "1234567893".to_owned(),
        place_of_service: "11".to_owned(),
        diagnoses: vec!["E119".to_owned()],
        lines: vec![line("99213", "100.00", day), line("G0439", "100.00", day)],
        ..Default::default()
    }
}

/// Asserts a status with `code` whose message contains every one of `parts`.
pub fn assert_status(status: &tonic::Status, code: tonic::Code, parts: &[&str]) {
    assert_eq!(status.code(), code, "{status:?}");
    for part in parts {
        assert!(
            status.message().contains(part),
            "message should contain {part:?}: {}",
            status.message()
        );
    }
}
