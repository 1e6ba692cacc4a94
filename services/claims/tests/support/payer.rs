//! The claims service as the submission tests run it: a real eligibility server for coverage
//! checks, payer-sim as the payer over its CORE HTTP endpoint, and the claims server between
//! them, each in its own database namespace.

use std::sync::Arc;

use medbill_claims::settings::SubmissionConfig;
use medbill_claims::submission::delivery::Submitter;
use medbill_claims::{ClaimStore, ClaimsService, open_store};
use medbill_connect::{
    Connections, CoreHttpConfig, PayerConnection, RetryPolicy as ConnectRetry, TransportConfig,
};
use medbill_domain::{ClaimId, CoverageId, TenantId};
use medbill_eligibility::EligibilityService;
use medbill_payer_sim::{PayerSimConfig, PayerSimHandle};
use medbill_proto::claims::v1 as pb;
use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_proto::eligibility::v1 as elig;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_runtime::client::TracedChannel;
use medbill_runtime::config::{ClientConfig, RetryPolicy};
use medbill_storage::testing::TestEnv;
use medbill_testkit::fixtures::{billing_provider, patient_demographics, register_provider};
use medbill_testkit::{Caller, TestServer, channel_to};

/// The claims client.
pub type Client = ClaimsServiceClient<TracedChannel>;

/// The payer-sim payer the sample coverages are with.
pub const PAYER: &str = "SIMPPO";
/// payer-sim's second payer (secondary coverages).
pub const SECOND_PAYER: &str = "SIMHMO";

/// Claims, eligibility and payer-sim, wired as `serve --target all` wires them.
pub struct PayerSuite {
    pub claims: TestServer,
    pub eligibility: TestServer,
    pub sim: PayerSimHandle,
    pub store: Arc<dyn ClaimStore>,
    /// The payer routes, as the acknowledgement pickup task uses them.
    pub submitter: Submitter,
}

/// A payer connection to `sim` for `payer_id` over CORE HTTP.
pub fn connection_to(sim: &PayerSimHandle, payer_id: &str) -> PayerConnection {
    PayerConnection {
        payer_id: payer_id.to_owned(),
        sender_id: "MEDBILL".to_owned(),
        receiver_id: payer_id.to_owned(),
        transport: TransportConfig::CoreHttp(CoreHttpConfig::new(sim.url())),
        batch_transport: None,
        retry: ConnectRetry {
            max_attempts: 1,
            ..ConnectRetry::default()
        },
    }
}

impl PayerSuite {
    /// Starts payer-sim, eligibility and claims; registers the sample billing provider for both
    /// tenants.
    pub async fn start(env: &TestEnv) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let sim = medbill_payer_sim::start(PayerSimConfig::default(), listener).await?;
        let eligibility_store =
            medbill_eligibility::open_store(env.connect("eligibility").await?).await?;
        let eligibility = TestServer::start(tonic::service::Routes::new(
            EligibilityService::new(eligibility_store).into_server(),
        ))
        .await;
        let channel =
            medbill_runtime::client::connect(&eligibility.url(), &ClientConfig::default())?;
        let payers = vec![
            connection_to(&sim, PAYER),
            connection_to(&sim, SECOND_PAYER),
        ];
        let config = SubmissionConfig {
            contact_phone: "2175550100".to_owned(),
            usage: "test".to_owned(),
            ..SubmissionConfig::default()
        };
        let submitter = Submitter::new(Connections::open(&payers)?, &payers, &config);
        let store = open_store(env.db().clone()).await?;
        let service = ClaimsService::new(
            store.clone(),
            EligibilityServiceClient::new(channel),
            RetryPolicy::default(),
        )
        .with_submitter(submitter.clone());
        let claims = TestServer::start(tonic::service::Routes::new(service.into_server())).await;
        for caller in [Caller::TenantA, Caller::TenantB] {
            let mut client = ClaimsServiceClient::new(claims.channel(caller));
            register_provider(&mut client, billing_provider()).await?;
        }
        Ok(Self {
            claims,
            eligibility,
            sim,
            store,
            submitter,
        })
    }

    pub fn client(&self, caller: Caller) -> Client {
        ClaimsServiceClient::new(self.claims.channel(caller))
    }

    /// Creates a coverage with payer-sim's payer for `member_id` (a catalog member).
    pub async fn coverage(
        &self,
        caller: Caller,
        patient_ref: &str,
        member_id: &str,
    ) -> anyhow::Result<String> {
        self.coverage_with(
            caller,
            patient_ref,
            PAYER,
            member_id,
            elig::CoverageOrder::Primary,
        )
        .await
    }

    /// Creates a coverage with `payer_id` (a payer-sim payer) for `member_id` in `order`.
    pub async fn coverage_with(
        &self,
        caller: Caller,
        patient_ref: &str,
        payer_id: &str,
        member_id: &str,
        order: elig::CoverageOrder,
    ) -> anyhow::Result<String> {
        let mut c = EligibilityServiceClient::new(channel_to(&self.eligibility.url(), caller));
        let coverage = c
            .create_coverage(elig::CreateCoverageRequest {
                idempotency_key: CoverageId::new().to_string(),
                patient_ref: patient_ref.to_owned(),
                payer_id: payer_id.to_owned(),
                coverage_order: order.into(),
                payer_name: if payer_id == PAYER {
                    "SIMULATED PPO HEALTH".to_owned()
                } else {
                    "SIMULATED HMO CARE".to_owned()
                },
                member_id: member_id.to_owned(),
                group_number: "GRP100".to_owned(),
                subscriber_first_name: "AVERY".to_owned(),
                subscriber_last_name: "TESTPATIENT".to_owned(),
                subscriber_birth_date: "1985-03-14".to_owned(),
                effective_date: "2026-01-01".to_owned(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .coverage
            .ok_or_else(|| anyhow::anyhow!("response without coverage"))?;
        Ok(coverage.id)
    }

    /// Moves a claim DRAFT -> READY through the store, as a clean scrub does.
    pub async fn make_ready(&self, caller: Caller, claim_id: &str) -> anyhow::Result<()> {
        self.advance(caller, claim_id, medbill_claims::ClaimStatus::Ready)
            .await
    }

    /// Moves a claim to `to` through the store (one legal step).
    pub async fn advance(
        &self,
        caller: Caller,
        claim_id: &str,
        to: medbill_claims::ClaimStatus,
    ) -> anyhow::Result<()> {
        let tenant = TenantId::parse(match caller {
            Caller::TenantB => medbill_testkit::TENANT_B,
            _ => medbill_testkit::TENANT_A,
        })?;
        let mut tx = self.store.database().begin().await?;
        self.store
            .transition(
                &mut tx,
                &tenant,
                ClaimId::parse(claim_id)?,
                medbill_claims::store::NewStatus {
                    to,
                    source: medbill_claims::StatusChangeSource::Scrub,
                    source_id: "",
                    reason: "moved by the test",
                },
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A professional claim on `coverage_id` with two lines on 2026-03-02.
pub fn professional(pcn: &str, coverage_id: &str, patient_ref: &str) -> pb::ClaimInput {
    let line = |code: &str, charge: &str, pointers: Vec<u32>| pb::ClaimLine {
        procedure_code: code.to_owned(),
        charge: charge.to_owned(),
        units: "1".to_owned(),
        service_date: "2026-03-02".to_owned(),
        diagnosis_pointers: pointers,
        ..Default::default()
    };
    pb::ClaimInput {
        patient_control_number: pcn.to_owned(),
        claim_type: pb::ClaimType::Professional.into(),
        coverage_id: coverage_id.to_owned(),
        payer_id: PAYER.to_owned(),
        patient_ref: patient_ref.to_owned(),
        billing_provider_npi: "1234567893".to_owned(),
        place_of_service: "11".to_owned(),
        diagnoses: vec!["E119".to_owned(), "I10".to_owned()],
        lines: vec![
            line("99213", "125.00", vec![1]),
            line("G0439", "80.55", vec![2, 1]),
        ],
        demographics: Some(patient_demographics()),
        prior_authorization_number: "AUTH123".to_owned(),
        ..Default::default()
    }
}

/// Creates a claim and returns it.
pub async fn create(c: &mut Client, key: &str, claim: pb::ClaimInput) -> anyhow::Result<pb::Claim> {
    c.create_claim(pb::CreateClaimRequest {
        idempotency_key: key.to_owned(),
        claim: Some(claim),
    })
    .await?
    .into_inner()
    .claim
    .ok_or_else(|| anyhow::anyhow!("response without claim"))
}

/// Reads a claim.
pub async fn get(c: &mut Client, id: &str) -> anyhow::Result<pb::Claim> {
    c.get_claim(pb::GetClaimRequest { id: id.to_owned() })
        .await?
        .into_inner()
        .claim
        .ok_or_else(|| anyhow::anyhow!("response without claim"))
}

impl PayerSuite {
    /// Runs one pass of the acknowledgement pickup task; returns the files taken.
    pub async fn pick_up(&self) -> anyhow::Result<usize> {
        medbill_claims::acknowledgements::pickup_once(self.store.as_ref(), &self.submitter)
            .await
            .map_err(|e| anyhow::anyhow!(e))
    }

    /// Creates a claim for `member_id` and moves it to READY.
    pub async fn ready_claim(
        &self,
        c: &mut Client,
        pcn: &str,
        member_id: &str,
    ) -> anyhow::Result<pb::Claim> {
        let cov = self
            .coverage(Caller::TenantA, &format!("pat-{pcn}"), member_id)
            .await?;
        let claim = create(
            c,
            &format!("create-{pcn}"),
            professional(pcn, &cov, &format!("pat-{pcn}")),
        )
        .await?;
        self.make_ready(Caller::TenantA, &claim.id).await?;
        Ok(claim)
    }
}

/// Submits every READY claim of the caller's tenant under `key`.
pub async fn submit_all(c: &mut Client, key: &str) -> anyhow::Result<pb::SubmitClaimsResponse> {
    Ok(c.submit_claims(pb::SubmitClaimsRequest {
        idempotency_key: key.to_owned(),
        ..Default::default()
    })
    .await?
    .into_inner())
}
