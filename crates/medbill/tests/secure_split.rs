//! A split deployment secured the way docs/security.md describes, as separate `medbill serve`
//! processes: eligibility and claims each on TLS requiring client certificates from one CA;
//! an EHR calling with an OIDC client-credentials token from the (test) identity provider, bad
//! tokens and a missing scope refused with the right codes (the refusal of a scope on the audit
//! record); claims calling eligibility over
//! mutual TLS with the caller's token forwarded; every call in the append-only audit trail that
//! ListAuditEvents and `medbill audit export` return, with no PHI in it; per-tenant limits
//! shedding a flooding tenant without hurting another. On SQLite (a data directory per process)
//! and, with `MEDBILL_TEST_PG_URL`, on one fresh PostgreSQL database.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;

use common::{medbill, stop_gracefully};
use medbill_proto::claims::v1 as claims;
use medbill_proto::eligibility::v1 as eligibility;
use medbill_proto::medbill::audit::v1 as audit;
use medbill_runtime::client::{self, TracedChannel};
use medbill_runtime::config::{ClientConfig, Secret};
use medbill_runtime::credentials::{ClientCredentials, ClientCredentialsConfig};
use medbill_runtime::tls::ClientTlsFiles;
use medbill_storage::Backend;
use medbill_storage::testing::{self, TestEnv};
use medbill_testkit::fixtures::{
    billing_provider, demo_member_coverage, office_visit_claim, register_provider,
};
use medbill_testkit::idp::{self, RegisteredClient, TestIdentityProvider};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tonic::Code;

type Eligibility = eligibility::eligibility_service_client::EligibilityServiceClient<TracedChannel>;
type Claims = claims::claims_service_client::ClaimsServiceClient<TracedChannel>;
type Audit = audit::audit_service_client::AuditServiceClient<TracedChannel>;

/// clinic-b calls with a static token; clinic-a's EHR and compliance officer with the provider's.
const TOKENS: &str = r#"{"tok-clinic-b"="clinic-b"}"#;

/// The PHI the walk sends; none of it may be in the audit trail.
const PHI: [&str; 4] = ["TESTPATIENT", "AVERY", "1985-03-14", "SPX100000001"];

/// A CA and the certificates it issued, as files.
struct Pki {
    dir: tempfile::TempDir,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

/// A certificate and its key, as file paths.
struct Issued {
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca_key = KeyPair::generate().expect("a CA key");
        let ca = params.self_signed(&ca_key).expect("a CA");
        let dir = tempfile::tempdir().expect("a directory for the PKI");
        std::fs::write(dir.path().join("ca.crt"), ca.pem()).expect("write the CA");
        Self { dir, ca, ca_key }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Issues a certificate for `dns_name`, written as `<file>.crt` and `<file>.key`.
    fn issue(&self, file: &str, dns_name: &str) -> Issued {
        let key = KeyPair::generate().expect("a key");
        let cert = CertificateParams::new(vec![dns_name.to_owned()])
            .expect("params")
            .signed_by(&key, &self.ca, &self.ca_key)
            .expect("a certificate");
        let issued = Issued {
            cert: self.dir.path().join(format!("{file}.crt")),
            key: self.dir.path().join(format!("{file}.key")),
        };
        std::fs::write(&issued.cert, cert.pem()).expect("write the certificate");
        std::fs::write(&issued.key, key.serialize_pem()).expect("write the key");
        issued
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Where a process keeps its data: its own SQLite directory, or the shared PostgreSQL database.
enum Store<'a> {
    Sqlite(&'a Path),
    Postgres(&'a str),
}

/// Starts one service on TLS with mutual TLS, the two tenants' tokens and the settings in `env`.
fn serve(
    target: &str,
    store: &Store<'_>,
    pki: &Pki,
    provider: &TestIdentityProvider,
    env: &[(&str, String)],
) -> (Child, SocketAddr) {
    let listener = pki.issue(target, "localhost");
    let data_dir = match store {
        Store::Sqlite(root) => root.join(target),
        Store::Postgres(_) => pki.dir.path().join(target),
    };
    let mut args = vec![
        "--target",
        target,
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        path(&data_dir),
    ];
    if let Store::Postgres(url) = store {
        args.extend(["--database-url", url]);
    }
    let mut cmd = medbill(&args);
    cmd.env("MEDBILL_TLS__CERT", &listener.cert)
        .env("MEDBILL_TLS__KEY", &listener.key)
        .env("MEDBILL_TLS__CLIENT_CA", pki.ca_file())
        .env("MEDBILL_AUTH__TOKENS", TOKENS)
        .env("MEDBILL_GRPC__SHUTDOWN_GRACE_MS", "0")
        // Warnings only: stderr is read when the process has exited, so it must not fill its pipe.
        .env("MEDBILL_TELEMETRY__FILTER", "warn")
        .env("MEDBILL_AUTH__OIDC__ISSUER", provider.issuer())
        .env("MEDBILL_AUTH__OIDC__AUDIENCE", idp::AUDIENCE)
        .env("MEDBILL_AUTH__OIDC__JWKS_URL", provider.jwks_url());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let mut child = cmd.spawn().expect("medbill starts");
    // Read up to the listening line, then keep draining: a process whose stdout is closed
    // cannot print its shutdown lines and would not exit cleanly.
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut lines = Vec::new();
    for line in stdout.by_ref().map_while(Result::ok) {
        let listening = line.contains("medbill listening");
        lines.push(line);
        if listening {
            break;
        }
    }
    std::thread::spawn(move || stdout.for_each(drop));
    let addr = lines
        .iter()
        .find_map(|l| l.strip_prefix("medbill listening on "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no listening address in {lines:?}"));
    (child, addr)
}

/// A channel to `addr` over TLS as `localhost`, with a client certificate when given.
fn channel(addr: SocketAddr, ca: &Path, client: Option<&Issued>, token: &Secret) -> TracedChannel {
    let config = ClientConfig {
        token: Some(token.clone()),
        tls: ClientTlsFiles {
            ca_file: Some(ca.to_path_buf()),
            cert_file: client.map(|c| c.cert.clone()),
            key_file: client.map(|c| c.key.clone()),
        },
        ..ClientConfig::default()
    };
    client::connect(&format!("https://localhost:{}", addr.port()), &config).expect("a valid URL")
}

/// Reports whether a call failed in the connection (the handshake or the h2 layer), not in a
/// handler: how a listener refuses a client it does not let in. The code tonic gives such a
/// failure depends on where the connection broke (UNAVAILABLE, INTERNAL or CANCELLED).
fn refused_by_transport(status: &tonic::Status) -> bool {
    std::error::Error::source(status).is_some_and(|e| e.is::<tonic::transport::Error>())
}

/// The EHR's access token, through the provider's client-credentials grant.
async fn client_credentials(provider: &TestIdentityProvider, scope: &str) -> Secret {
    provider.register_client(
        "ehr-clinic-a",
        RegisteredClient {
            secret: "ehr-secret".into(),
            tenant: "clinic-a".into(),
            scope: scope.into(),
            expires_in: 600,
        },
    );
    ClientCredentials::new(&ClientCredentialsConfig {
        token_url: provider.token_url(),
        client_id: "ehr-clinic-a".into(),
        client_secret: Some(Secret::new("ehr-secret")),
        scope: Some(scope.into()),
        audience: Some(idp::AUDIENCE.into()),
        tenant: "clinic-a".into(),
        ..ClientCredentialsConfig::default()
    })
    .expect("a client-credentials client")
    .token()
    .await
    .expect("a token from the provider")
}

async fn walk(store: Store<'_>) {
    let provider = TestIdentityProvider::start().await;
    let ehr_token = client_credentials(
        &provider,
        "eligibility.read eligibility.write claims.read claims.write",
    )
    .await;
    let clinic_b = Secret::new("tok-clinic-b");
    let pki = Pki::new("medbill test CA");
    let ca = pki.ca_file();
    let claims_client = pki.issue("claims-client", "claims.medbill");
    let ehr = pki.issue("ehr", "ehr.example");
    let stranger_pki = Pki::new("another CA");
    let stranger = stranger_pki.issue("stranger", "ehr.example");

    // Eligibility sheds a tenant over 2 calls a second (burst 10).
    let (eligibility_child, eligibility_addr) = serve(
        "eligibility",
        &store,
        &pki,
        &provider,
        &[
            ("MEDBILL_LIMITS__TENANT_CALLS_PER_SEC", "2".into()),
            ("MEDBILL_LIMITS__TENANT_BURST", "10".into()),
        ],
    );
    let (claims_child, claims_addr) = serve(
        "claims",
        &store,
        &pki,
        &provider,
        &[
            (
                "MEDBILL_ENDPOINTS__ELIGIBILITY",
                format!("https://localhost:{}", eligibility_addr.port()),
            ),
            ("MEDBILL_CLIENT__TLS__CA_FILE", path(&ca).to_owned()),
            (
                "MEDBILL_CLIENT__TLS__CERT_FILE",
                path(&claims_client.cert).to_owned(),
            ),
            (
                "MEDBILL_CLIENT__TLS__KEY_FILE",
                path(&claims_client.key).to_owned(),
            ),
        ],
    );

    // Without a certificate from the CA nothing gets through, whatever the token.
    let plaintext = client::connect(
        &format!("http://127.0.0.1:{}", claims_addr.port()),
        &ClientConfig {
            token: Some(ehr_token.clone()),
            ..ClientConfig::default()
        },
    )
    .expect("a URL");
    let refused = Claims::new(plaintext)
        .list_claims(claims::ListClaimsRequest::default())
        .await
        .expect_err("plaintext against a TLS listener");
    assert!(refused_by_transport(&refused), "{refused:?}");
    for client in [None, Some(&stranger)] {
        let refused = Claims::new(channel(claims_addr, &ca, client, &ehr_token))
            .list_claims(claims::ListClaimsRequest::default())
            .await
            .expect_err("no client certificate from the CA");
        assert!(refused_by_transport(&refused), "{refused:?}");
    }

    // With one, bad tokens are still refused, each with its code.
    let claims_with =
        |token: &str| Claims::new(channel(claims_addr, &ca, Some(&ehr), &Secret::new(token)));
    let now = idp::now();
    let mut expired = provider.claims("clinic-a", "ehr-clinic-a", "claims.read");
    expired["exp"] = (now - 3_600).into();
    let mut other_audience = provider.claims("clinic-a", "ehr-clinic-a", "claims.read");
    other_audience["aud"] = "another-suite".into();
    let good = provider.claims("clinic-a", "ehr-clinic-a", "claims.read");
    for (what, token) in [
        ("forged signature", provider.forge(&good)),
        ("expired", provider.mint(&expired)),
        ("wrong audience", provider.mint(&other_audience)),
        ("alg none", provider.unsigned(&good)),
        (
            "HS256 keyed with the public key",
            provider.hmac_with_public_key(&good),
        ),
    ] {
        let refused = claims_with(&token)
            .list_claims(claims::ListClaimsRequest::default())
            .await
            .expect_err(what);
        assert_eq!(refused.code(), Code::Unauthenticated, "{what}: {refused:?}");
    }
    // A good token without the scope an RPC needs.
    let read_only = provider.token("clinic-a", "viewer", "claims.read");
    let denied = claims_with(&read_only)
        .void_claim(claims::VoidClaimRequest {
            idempotency_key: "void-denied".into(),
            ..Default::default()
        })
        .await
        .expect_err("no claims.write");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(denied.message().contains("claims.write"), "{denied:?}");

    // A coverage, a provider, and a claim whose coverage check crosses to eligibility over mutual
    // TLS carrying the EHR's token.
    let mut elig_a = Eligibility::new(channel(eligibility_addr, &ca, Some(&ehr), &ehr_token));
    let coverage = elig_a
        .create_coverage(demo_member_coverage("cov-secure-1", "ehr-secure-1"))
        .await
        .expect("a coverage")
        .into_inner()
        .coverage
        .expect("a coverage")
        .id;
    let mut claims_a = Claims::new(channel(claims_addr, &ca, Some(&ehr), &ehr_token));
    register_provider(&mut claims_a, billing_provider())
        .await
        .expect("a provider");
    let claim = claims_a
        .create_claim(claims::CreateClaimRequest {
            idempotency_key: "claim-secure-1".into(),
            claim: Some(office_visit_claim("SECURE-1", &coverage, "ehr-secure-1")),
        })
        .await
        .expect("a claim checked against its coverage in eligibility")
        .into_inner()
        .claim
        .expect("a claim");
    assert_eq!(claim.coverage_id, coverage);
    // clinic-b sees none of it.
    let mut claims_b = Claims::new(channel(claims_addr, &ca, Some(&ehr), &clinic_b));
    let hidden = claims_b
        .get_claim(claims::GetClaimRequest {
            id: claim.id.clone(),
        })
        .await
        .expect_err("another tenant's claim");
    assert_eq!(hidden.code(), Code::NotFound);

    // clinic-b floods eligibility: shed with a retry hint, while clinic-a is still served.
    let mut elig_b = Eligibility::new(channel(eligibility_addr, &ca, Some(&ehr), &clinic_b));
    let mut shed = 0;
    for _ in 0..40 {
        // Calls within the burst reach the handler; what it answers does not matter here.
        if let Err(status) = elig_b
            .list_coverages(eligibility::ListCoveragesRequest::default())
            .await
            && status.code() == Code::ResourceExhausted
        {
            assert!(status.metadata().get("grpc-retry-pushback-ms").is_some());
            shed += 1;
        }
    }
    assert!(
        shed >= 15,
        "only {shed} of 40 calls over the limit were refused"
    );
    let fine = elig_a
        .get_coverage(eligibility::GetCoverageRequest {
            id: coverage.clone(),
        })
        .await
        .expect("clinic-a is not hurt by clinic-b's flood");
    assert_eq!(
        fine.into_inner().coverage.map(|c| c.id),
        Some(coverage.clone())
    );

    // The audit trail: the EHR cannot read it; the compliance officer sees every call, by whom.
    let officer = Secret::new(provider.token("clinic-a", "compliance-officer", "audit.read"));
    let listing = |token: &Secret| {
        let mut client = Audit::new(channel(claims_addr, &ca, Some(&ehr), token));
        async move {
            client
                .list_audit_events(audit::ListAuditEventsRequest {
                    page_size: 100,
                    ..Default::default()
                })
                .await
        }
    };
    let refused = listing(&ehr_token).await.expect_err("no audit.read");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let events = listing(&officer)
        .await
        .expect("the officer reads the audit trail")
        .into_inner()
        .events;
    let created = events
        .iter()
        .find(|e| e.method == "CreateClaim")
        .unwrap_or_else(|| panic!("no CreateClaim in {events:#?}"));
    assert_eq!(created.subject, "ehr-clinic-a");
    assert_eq!(created.code, 0);
    assert!(
        created.resources.iter().any(|r| r.resource_id == claim.id),
        "{created:?}"
    );
    // Only clinic-a's callers: clinic-b's GetClaim is in clinic-b's trail, not here.
    assert!(
        events.iter().all(|e| ["ehr-clinic-a", "viewer", "compliance-officer"]
            .contains(&e.subject.as_str())),
        "{events:#?}"
    );
    assert!(
        !events.iter().any(|e| e.method == "GetClaim"),
        "{events:#?}"
    );

    // SIGTERM: the reads still queued are written before the processes exit.
    stop_gracefully(claims_child);
    stop_gracefully(eligibility_child);

    // The operator's export of the claims database holds the same calls, and no PHI.
    let mut export = std::process::Command::new(env!("CARGO_BIN_EXE_medbill"));
    export.args(["audit", "export", "--service", "claims"]);
    match &store {
        Store::Sqlite(root) => {
            export.args(["--data-dir", path(&root.join("claims"))]);
        }
        Store::Postgres(url) => {
            export.args(["--database-url", url]);
        }
    }
    let out = export
        .env_remove("MEDBILL_CONFIG")
        .output()
        .expect("medbill audit export runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(lines.lines().count() >= events.len(), "{lines}");
    assert!(lines.contains(&claim.id), "{lines}");
    for phi in PHI {
        assert!(!lines.contains(phi), "PHI {phi} in the audit export");
    }
    // The viewer's attempt to void a claim without the scope is on the record too (written in
    // a batch, so certainly by the time the process has shut down).
    let denied_attempt = lines.lines().any(|line| {
        let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        record["method"] == "VoidClaim"
            && record["subject"] == "viewer"
            && record["code"] == Code::PermissionDenied as i32
    });
    assert!(denied_attempt, "{lines}");
}

#[test]
fn a_split_deployment_on_mutual_tls_and_oidc_is_authenticated_audited_and_limited_on_sqlite() {
    let data = tempfile::tempdir().expect("a data directory");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(walk(Store::Sqlite(data.path())));
}

#[test]
fn a_split_deployment_on_mutual_tls_and_oidc_is_authenticated_audited_and_limited_on_postgres() {
    testing::run(
        Backend::Postgres,
        "a_split_deployment_on_mutual_tls_on_postgres",
        "secure_split",
        None,
        |env: TestEnv| async move { walk(Store::Postgres(env.url())).await },
    );
}
