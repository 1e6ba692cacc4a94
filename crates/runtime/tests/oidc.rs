//! OIDC access tokens and scopes through a real server: a test identity provider mints tokens
//! with its own key and serves its JWKS over HTTP on a loopback port; the Whoami test service
//! (which needs `claims.read`) answers the caller's tenant. Every bad token is refused with
//! UNAUTHENTICATED and a reason that never contains the token; a token without the method's
//! scope is PERMISSION_DENIED naming it. Static tokens work beside JWTs, and the service's own
//! client-credentials token is fetched once and reused.

mod common;
#[path = "../../testkit/src/idp.rs"]
mod idp;

use common::Whoami;
use idp::{RegisteredClient, TestIdentityProvider};
use medbill_runtime::auth::Authenticator;
use medbill_runtime::config::{AuthConfig, GrpcConfig, Secret, StaticToken};
use medbill_runtime::credentials::{ClientCredentialsConfig, OutgoingTokens};
use medbill_runtime::oidc::OidcConfig;
use serde_json::json;
use tonic::Code;

fn oidc(provider: &TestIdentityProvider) -> OidcConfig {
    OidcConfig {
        issuer: provider.issuer(),
        audience: vec![idp::AUDIENCE.to_owned()],
        jwks_url: Some(provider.jwks_url()),
        // Rotation is exercised without waiting; the rate limit has its own test.
        jwks_min_refetch_secs: 0,
        leeway_secs: 5,
        ..OidcConfig::default()
    }
}

fn auth(provider: &TestIdentityProvider) -> AuthConfig {
    AuthConfig {
        oidc: Some(oidc(provider)),
        static_tokens: vec![
            StaticToken {
                token: Some(Secret::new("ehr-reader")),
                tenant: "clinic-s".into(),
                scopes: vec!["claims.read".into()],
                subject: Some("ehr-bridge".into()),
                ..StaticToken::default()
            },
            StaticToken {
                token: Some(Secret::new("no-claims")),
                tenant: "clinic-s".into(),
                scopes: vec!["collections.read".into()],
                ..StaticToken::default()
            },
        ],
        ..AuthConfig::default()
    }
}

async fn call(
    server: &medbill_runtime::server::ServerHandle,
    token: &str,
) -> Result<String, tonic::Status> {
    common::whoami(common::channel(server), common::with_token(token)).await
}

fn assert_refused(result: Result<String, tonic::Status>, code: Code, reason: &str, token: &str) {
    let status = result.expect_err("refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(reason),
        "expected `{reason}` in {:?}",
        status.message()
    );
    assert!(
        !status.message().contains(token),
        "the token is echoed: {status:?}"
    );
}

#[tokio::test]
async fn good_tokens_are_accepted_and_every_bad_one_is_refused_with_its_reason() {
    let provider = TestIdentityProvider::start().await;
    let server = common::start(Whoami::default(), &auth(&provider), &GrpcConfig::default()).await;

    let good = provider.token("clinic-a", "user-17", "claims.read claims.write");
    assert_eq!(call(&server, &good).await.unwrap(), "clinic-a");
    let other = provider.token("clinic-b", "svc-ehr", "claims.read");
    assert_eq!(call(&server, &other).await.unwrap(), "clinic-b");

    let claims = provider.claims("clinic-a", "user-17", "claims.read");
    let forged = provider.forge(&claims);
    assert_refused(
        call(&server, &forged).await,
        Code::Unauthenticated,
        "bad signature",
        &forged,
    );

    let mut expired = claims.clone();
    expired["exp"] = json!(idp::now() - 600);
    expired["nbf"] = json!(idp::now() - 900);
    let expired = provider.mint(&expired);
    assert_refused(
        call(&server, &expired).await,
        Code::Unauthenticated,
        "expired",
        &expired,
    );

    let mut early = claims.clone();
    early["nbf"] = json!(idp::now() + 600);
    let early = provider.mint(&early);
    assert_refused(
        call(&server, &early).await,
        Code::Unauthenticated,
        "not valid yet",
        &early,
    );

    let mut audience = claims.clone();
    audience["aud"] = json!("another-app");
    let audience = provider.mint(&audience);
    assert_refused(
        call(&server, &audience).await,
        Code::Unauthenticated,
        "wrong audience",
        &audience,
    );

    let mut issuer = claims.clone();
    issuer["iss"] = json!("http://evil.example");
    let issuer = provider.mint(&issuer);
    assert_refused(
        call(&server, &issuer).await,
        Code::Unauthenticated,
        "wrong issuer",
        &issuer,
    );

    let none = provider.unsigned(&claims);
    assert_refused(
        call(&server, &none).await,
        Code::Unauthenticated,
        "algorithm none is not allowed",
        &none,
    );

    let hmac = provider.hmac_with_public_key(&claims);
    assert_refused(
        call(&server, &hmac).await,
        Code::Unauthenticated,
        "algorithm HS256 is not allowed",
        &hmac,
    );

    let mut tenantless = claims.clone();
    tenantless.as_object_mut().unwrap().remove("tenant");
    let tenantless = provider.mint(&tenantless);
    assert_refused(
        call(&server, &tenantless).await,
        Code::Unauthenticated,
        "no `tenant` claim",
        &tenantless,
    );

    let garbage = "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln";
    assert_refused(
        call(&server, garbage).await,
        Code::Unauthenticated,
        "invalid bearer token",
        garbage,
    );
}

#[tokio::test]
async fn subject_and_scopes_come_from_the_configured_claims() {
    let provider = TestIdentityProvider::start().await;
    let mut config = auth(&provider);
    let oidc = config.oidc.as_mut().unwrap();
    oidc.subject_claim = "client_id".into();
    oidc.tenant_claim = "org".into();
    let authenticator = Authenticator::from_config(&config).unwrap();

    let mut claims = provider.claims("ignored", "ignored", "");
    claims["org"] = json!("clinic-a");
    claims["client_id"] = json!("ehr-system");
    claims.as_object_mut().unwrap().remove("scope");
    claims["scp"] = json!(["claims.read", "eligibility.read"]);
    let token = provider.mint(&claims);
    let header = format!("Bearer {token}");
    let who = authenticator
        .authenticate(Some(header.as_bytes()))
        .await
        .unwrap();
    assert_eq!(who.tenant.as_str(), "clinic-a");
    assert_eq!(who.subject.as_str(), "ehr-system");
    assert!(who.scopes.allows("claims.read"));
    assert!(who.scopes.allows("eligibility.read"));
    assert!(!who.scopes.allows("claims.write"));
    assert_eq!(who.token.unwrap().expose(), token);

    // A static token with scopes is its configured subject.
    let who = authenticator
        .authenticate(Some(b"Bearer ehr-reader"))
        .await
        .unwrap();
    assert_eq!(
        (who.tenant.as_str(), who.subject.as_str()),
        ("clinic-s", "ehr-bridge")
    );
}

#[tokio::test]
async fn a_missing_scope_is_permission_denied_naming_it_for_jwts_and_static_tokens() {
    let provider = TestIdentityProvider::start().await;
    let server = common::start(Whoami::default(), &auth(&provider), &GrpcConfig::default()).await;

    let clerk = provider.token(
        "clinic-a",
        "clerk-3",
        "collections.read collections.payments",
    );
    assert_refused(
        call(&server, &clerk).await,
        Code::PermissionDenied,
        "`claims.read`",
        &clerk,
    );
    let scopeless = provider.token("clinic-a", "clerk-3", "");
    assert_refused(
        call(&server, &scopeless).await,
        Code::PermissionDenied,
        "`claims.read`",
        &scopeless,
    );

    assert_eq!(call(&server, "ehr-reader").await.unwrap(), "clinic-s");
    assert_refused(
        call(&server, "no-claims").await,
        Code::PermissionDenied,
        "`claims.read`",
        "no-claims",
    );
    assert_refused(
        call(&server, "not-configured").await,
        Code::Unauthenticated,
        "unknown bearer token",
        "not-configured",
    );

    // A method no scope is defined for is refused, even to a token with every scope.
    let legacy = AuthConfig {
        tokens: [(Secret::new("legacy"), "clinic-l".to_owned())].into(),
        ..AuthConfig::default()
    };
    let server = common::start(Whoami::default(), &legacy, &GrpcConfig::default()).await;
    assert_eq!(call(&server, "legacy").await.unwrap(), "clinic-l");
    let status = common::call_path(
        common::channel(&server),
        "/medbill.test.Whoami/Other",
        "legacy",
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.message(),
        "permission denied: no scope is defined for medbill.test.Whoami/Other"
    );
}

#[tokio::test]
async fn an_unknown_kid_fetches_the_rotated_key_set_once() {
    let provider = TestIdentityProvider::start().await;
    let server = common::start(Whoami::default(), &auth(&provider), &GrpcConfig::default()).await;
    let first = provider.token("clinic-a", "user-1", "claims.read");
    assert_eq!(call(&server, &first).await.unwrap(), "clinic-a");
    assert_eq!(call(&server, &first).await.unwrap(), "clinic-a");
    assert_eq!(provider.jwks_fetches(), 1, "the key set is cached");

    provider.rotate("key-2");
    let rotated = provider.token("clinic-a", "user-1", "claims.read");
    assert_eq!(call(&server, &rotated).await.unwrap(), "clinic-a");
    assert_eq!(provider.jwks_fetches(), 2, "one refetch for the new kid");
    // The old key is gone from the provider's set, so its tokens no longer verify.
    assert_refused(
        call(&server, &first).await,
        Code::Unauthenticated,
        "unknown signing key",
        &first,
    );
}

#[tokio::test]
async fn unknown_kids_cannot_flood_the_identity_provider() {
    let provider = TestIdentityProvider::start().await;
    let mut config = auth(&provider);
    config.oidc.as_mut().unwrap().jwks_min_refetch_secs = 3600;
    let server = common::start(Whoami::default(), &config, &GrpcConfig::default()).await;
    let good = provider.token("clinic-a", "user-1", "claims.read");
    assert_eq!(call(&server, &good).await.unwrap(), "clinic-a");

    let claims = provider.claims("clinic-a", "user-1", "claims.read");
    let mut calls = Vec::new();
    for n in 0..20 {
        let token = provider
            .current_key()
            .sign(&claims, Some(&format!("made-up-{n}")));
        let channel = common::channel(&server);
        calls.push(tokio::spawn(async move {
            common::whoami(channel, common::with_token(&token)).await
        }));
    }
    for call in calls {
        let status = call.await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert!(
            status.message().contains("unknown signing key"),
            "{status:?}"
        );
    }
    assert_eq!(
        provider.jwks_fetches(),
        1,
        "no refetch within jwks_min_refetch_secs"
    );
}

#[tokio::test]
async fn the_jwks_can_come_from_a_file() {
    let provider = TestIdentityProvider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(
        &path,
        json!({"keys": [provider.current_key().jwk()]}).to_string(),
    )
    .unwrap();
    let mut config = oidc(&provider);
    config.jwks_url = None;
    config.jwks_file = Some(path);
    let authenticator = Authenticator::from_config(&AuthConfig {
        oidc: Some(config),
        ..AuthConfig::default()
    })
    .unwrap();
    let header = format!("Bearer {}", provider.token("clinic-a", "u", "claims.read"));
    let who = authenticator
        .authenticate(Some(header.as_bytes()))
        .await
        .unwrap();
    assert_eq!(who.tenant.as_str(), "clinic-a");
    assert_eq!(provider.jwks_fetches(), 0);
}

#[tokio::test]
async fn the_services_own_client_credentials_token_is_fetched_once_and_accepted() {
    let provider = TestIdentityProvider::start().await;
    provider.register_client(
        "remittance-relay",
        RegisteredClient {
            secret: "relay-s3cret".into(),
            tenant: "clinic-a".into(),
            scope: "claims.read claims.write".into(),
            expires_in: 3600,
        },
    );
    let grant = ClientCredentialsConfig {
        token_url: provider.token_url(),
        client_id: "remittance-relay".into(),
        client_secret: Some(Secret::new("relay-s3cret")),
        scope: Some("claims.read".into()),
        tenant: "clinic-a".into(),
        ..ClientCredentialsConfig::default()
    };
    let static_auth = AuthConfig {
        static_tokens: vec![StaticToken {
            token: Some(Secret::new("b-token")),
            tenant: "clinic-b".into(),
            scopes: vec!["claims.read".into()],
            ..StaticToken::default()
        }],
        ..AuthConfig::default()
    };
    let tokens = OutgoingTokens::new(&static_auth, Some(&grant)).unwrap();
    let first = tokens.for_tenant("clinic-a").await.unwrap().unwrap();
    let again = tokens.for_tenant("clinic-a").await.unwrap().unwrap();
    assert_eq!(first.expose(), again.expose());
    assert_eq!(
        provider.token_requests(),
        1,
        "cached until shortly before expiry"
    );
    assert_eq!(
        tokens
            .for_tenant("clinic-b")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "b-token"
    );
    let err = tokens.for_tenant("clinic-c").await.unwrap_err();
    assert!(err.to_string().contains("clinic-c"), "{err}");

    let server = common::start(Whoami::default(), &auth(&provider), &GrpcConfig::default()).await;
    assert_eq!(call(&server, first.expose()).await.unwrap(), "clinic-a");

    // A wrong secret is refused by the provider; the error never shows the secret.
    let wrong = ClientCredentialsConfig {
        client_secret: Some(Secret::new("guess")),
        ..grant.clone()
    };
    let err = OutgoingTokens::new(&AuthConfig::default(), Some(&wrong))
        .unwrap()
        .for_tenant("clinic-a")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid_client"), "{err}");
    assert!(!err.contains("guess"), "{err}");

    // A token about to expire is replaced.
    provider.register_client(
        "short-lived",
        RegisteredClient {
            secret: "s".into(),
            tenant: "clinic-a".into(),
            scope: "claims.read".into(),
            expires_in: 30,
        },
    );
    let short = ClientCredentialsConfig {
        client_id: "short-lived".into(),
        client_secret: Some(Secret::new("s")),
        refresh_before_secs: 60,
        ..grant
    };
    let tokens = OutgoingTokens::new(&AuthConfig::default(), Some(&short)).unwrap();
    let before = provider.token_requests();
    tokens.for_tenant("clinic-a").await.unwrap();
    tokens.for_tenant("clinic-a").await.unwrap();
    assert_eq!(provider.token_requests(), before + 2);
}
