//! OIDC access tokens and scopes through the real binary's start, called through the generated
//! clients: a test identity provider mints tokens with its own key and serves its JWKS over HTTP
//! on a loopback port. A clerk's token records payments and is refused refunds and write-offs;
//! another tenant's token cannot see the first tenant's account; a static token with scopes
//! works beside JWTs; and in a split deployment claims passes the caller's JWT on to
//! eligibility, which checks it again (tenant and scope). SQLite always; PostgreSQL too when
//! `MEDBILL_TEST_PG_URL` is set.

mod common;

use common::claims::{PAYER, claim_input};
use medbill::serve::{self, Target};
use medbill_proto::claims::v1 as claims;
use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient;
use medbill_proto::eligibility::v1 as eligibility;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_runtime::client::{self, TracedChannel};
use medbill_runtime::config::{ClientConfig, Config, LoadedConfig, Secret, StaticToken};
use medbill_runtime::oidc::OidcConfig;
use medbill_storage::testing::TestEnv;
use medbill_testkit::fixtures::{billing_provider, demo_member_coverage, register_provider};
use medbill_testkit::idp::{self, TestIdentityProvider};
use medbill_testkit::{TENANT_A, TENANT_B, two_tenant_auth};
use tonic::Code;

/// A front-desk kiosk's static token: tenant A, read-only collections.
const FRONT_DESK: &str = "front-desk-kiosk-token";

/// The binary's configuration for the test database, trusting `provider`'s tokens.
fn config(env: &TestEnv, provider: &TestIdentityProvider) -> Config {
    let mut auth = two_tenant_auth();
    auth.oidc = Some(OidcConfig {
        issuer: provider.issuer(),
        audience: vec![idp::AUDIENCE.to_owned()],
        jwks_url: Some(provider.jwks_url()),
        ..OidcConfig::default()
    });
    auth.static_tokens = vec![StaticToken {
        token: Some(Secret::new(FRONT_DESK)),
        tenant: TENANT_A.to_owned(),
        scopes: vec!["collections.read".to_owned()],
        subject: Some("front-desk-kiosk".to_owned()),
        ..StaticToken::default()
    }];
    Config {
        database_url: Some(env.url().to_owned()),
        auth,
        ..Config::default()
    }
}

async fn start(config: Config, target: Target) -> anyhow::Result<serve::Running> {
    let loaded = LoadedConfig::new(config).with_value("payer_sim.listen", "127.0.0.1:0");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    serve::start(&loaded, target, listener).await
}

/// A channel whose calls carry `token`.
fn as_token(url: &str, token: &str) -> TracedChannel {
    let config = ClientConfig {
        token: Some(Secret::new(token)),
        ..ClientConfig::default()
    };
    client::connect(url, &config).expect("a channel")
}

fn denied_naming(status: &tonic::Status, scope: &str) {
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains(&format!("`{scope}`")),
        "{status:?}"
    );
}

medbill_storage::conformance_tests! {
    async fn a_clerk_records_payments_but_cannot_refund_or_write_off_and_tenants_stay_apart(env: TestEnv) -> anyhow::Result<()> {
        let provider = TestIdentityProvider::start().await;
        let suite = start(config(&env, &provider), Target::All).await?;
        let url = suite.handle.url();
        let clerk_token = provider.token(TENANT_A, "clerk-7", "collections.read collections.payments");
        let mut clerk = CollectionsServiceClient::new(as_token(&url, &clerk_token));

        let account = clerk
            .open_account(pb::OpenAccountRequest { idempotency_key: "acct-1".into(), patient_ref: "oidc-patient-1".into(), guarantor_ref: String::new() })
            .await?
            .into_inner()
            .account
            .expect("an account");
        let payment = pb::RecordPaymentRequest {
            idempotency_key: "pay-1".into(),
            account_id: account.id.clone(),
            amount: "20.00".into(),
            method: pb::PaymentMethod::Card as i32,
            ..Default::default()
        };
        clerk.record_payment(payment).await?;

        let refund = pb::IssueRefundRequest {
            idempotency_key: "refund-1".into(),
            account_id: account.id.clone(),
            amount: "5.00".into(),
            method: pb::PaymentMethod::Card as i32,
            reason: "overpaid".into(),
            ..Default::default()
        };
        let status = clerk.issue_refund(refund.clone()).await.expect_err("a clerk cannot refund");
        denied_naming(&status, "collections.privileged");
        let write_off = pb::WriteOffRequest {
            idempotency_key: "wo-1".into(),
            account_id: account.id.clone(),
            amount: "1.00".into(),
            kind: pb::WriteOffKind::SmallBalance as i32,
            reason: "policy".into(),
        };
        let status = clerk.write_off(write_off).await.expect_err("a clerk cannot write off");
        denied_naming(&status, "collections.privileged");

        // The supervisor holds the privileged scope: the refund goes through.
        let supervisor_token = provider.token(TENANT_A, "supervisor-2", "collections.read collections.privileged");
        let mut supervisor = CollectionsServiceClient::new(as_token(&url, &supervisor_token));
        supervisor.issue_refund(refund).await?;

        // Another tenant's token, with every collections scope, does not see the account.
        let other_token = provider.token(TENANT_B, "clerk-9", "collections.read collections.payments collections.privileged");
        let mut other = CollectionsServiceClient::new(as_token(&url, &other_token));
        let status = other
            .get_account(pb::GetAccountRequest { id: account.id.clone(), include_aging: false })
            .await
            .expect_err("another tenant's account");
        assert_eq!(status.code(), Code::NotFound, "{status:?}");

        // A static token with scopes reads, and is refused what its scopes do not cover.
        let mut desk = CollectionsServiceClient::new(as_token(&url, FRONT_DESK));
        let seen = desk
            .get_account(pb::GetAccountRequest { id: account.id.clone(), include_aging: false })
            .await?
            .into_inner()
            .account
            .expect("an account");
        assert_eq!(seen.id, account.id);
        let status = desk
            .open_account(pb::OpenAccountRequest { idempotency_key: "acct-2".into(), patient_ref: "oidc-patient-2".into(), guarantor_ref: String::new() })
            .await
            .expect_err("read-only");
        denied_naming(&status, "collections.payments");

        // Bad tokens are refused before any handler runs.
        let mut expired_claims = provider.claims(TENANT_A, "clerk-7", "collections.read");
        expired_claims["exp"] = (idp::now() - 3600).into();
        expired_claims["nbf"] = (idp::now() - 7200).into();
        let expired = provider.mint(&expired_claims);
        let status = CollectionsServiceClient::new(as_token(&url, &expired))
            .get_account(pb::GetAccountRequest { id: account.id.clone(), include_aging: false })
            .await
            .expect_err("expired");
        assert_eq!(status.code(), Code::Unauthenticated);
        assert!(status.message().contains("expired"), "{status:?}");
        assert!(!status.message().contains(&expired), "{status:?}");

        suite.shutdown().await?;
        Ok(())
    }

    async fn split_claims_passes_the_callers_jwt_on_to_eligibility(env: TestEnv) -> anyhow::Result<()> {
        let provider = TestIdentityProvider::start().await;
        let eligibility_server = start(config(&env, &provider), Target::Eligibility).await?;
        let mut claims_config = config(&env, &provider);
        claims_config.endpoints.eligibility = Some(eligibility_server.handle.url());
        let claims_server = start(claims_config, Target::Claims).await?;

        let ehr_token = provider.token(TENANT_A, "ehr-system", "eligibility.read eligibility.write claims.read claims.write");
        let coverage = EligibilityServiceClient::new(as_token(&eligibility_server.handle.url(), &ehr_token))
            .create_coverage(demo_member_coverage("cov-oidc-1", "oidc-patient-1"))
            .await?
            .into_inner()
            .coverage
            .expect("a coverage");

        let mut ehr = ClaimsServiceClient::new(as_token(&claims_server.handle.url(), &ehr_token));
        register_provider(&mut ehr, billing_provider()).await?;
        // CreateClaim checks the coverage at eligibility with the caller's own token.
        let created = ehr
            .create_claim(claims::CreateClaimRequest { idempotency_key: "claim-1".into(), claim: Some(claim_input("OIDC-1", &coverage.id, "oidc-patient-1")) })
            .await?
            .into_inner()
            .claim
            .expect("a claim");
        assert_eq!(created.coverage_id, coverage.id);

        // Without eligibility.read a claim on a coverage claims has not read yet is refused by
        // eligibility, and claims passes the refusal on: the caller's token reached it.
        let second = EligibilityServiceClient::new(as_token(&eligibility_server.handle.url(), &ehr_token))
            .create_coverage(eligibility::CreateCoverageRequest {
                idempotency_key: "cov-oidc-2".into(),
                patient_ref: "oidc-patient-2".into(),
                payer_id: PAYER.into(),
                payer_name: "PAYER".into(),
                coverage_order: eligibility::CoverageOrder::Primary.into(),
                member_id: "SPX100000002".into(),
                subscriber_first_name: "BLAKE".into(),
                subscriber_last_name: "TESTPATIENT".into(),
                subscriber_birth_date: "1990-07-01".into(),
                effective_date: "2026-01-01".into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .coverage
            .expect("a coverage");
        let claims_only = provider.token(TENANT_A, "ehr-system", "claims.read claims.write");
        let status = ClaimsServiceClient::new(as_token(&claims_server.handle.url(), &claims_only))
            .create_claim(claims::CreateClaimRequest { idempotency_key: "claim-2".into(), claim: Some(claim_input("OIDC-2", &second.id, "oidc-patient-2")) })
            .await
            .expect_err("eligibility refuses the forwarded token");
        denied_naming(&status, "eligibility.read");

        // Tenant B's token, forwarded, does not find tenant A's coverage.
        let other = provider.token(TENANT_B, "ehr-b", "eligibility.read claims.read claims.write");
        let mut other_claims = ClaimsServiceClient::new(as_token(&claims_server.handle.url(), &other));
        register_provider(&mut other_claims, billing_provider()).await?;
        let status = other_claims
            .create_claim(claims::CreateClaimRequest { idempotency_key: "claim-3".into(), claim: Some(claim_input("OIDC-3", &coverage.id, "oidc-patient-1")) })
            .await
            .expect_err("another tenant's coverage");
        assert!(status.message().contains(&coverage.id), "{status:?}");

        claims_server.shutdown().await?;
        eligibility_server.shutdown().await?;
        Ok(())
    }
}
