//! An identity provider for tests, real enough to be the other side of OIDC: it holds its own
//! ES256 signing keys (made fresh per test), publishes them as a JWKS over HTTP on a loopback
//! port, mints access tokens, answers OAuth client-credentials requests on its token endpoint,
//! and rotates keys on demand. It counts the requests it serves, so tests can check caching.
//!
//! It also makes the bad tokens an attacker would try: a forged signature, `alg: none`, and an
//! HS256 token keyed with the provider's public key.
//!
//! This file depends only on crates the runtime's own tests have, so they include it by path.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The audience the tests' tokens are meant for.
pub const AUDIENCE: &str = "medbill";

/// One ES256 key pair.
pub struct SigningKey {
    /// Its key id.
    pub kid: String,
    pkcs8: Vec<u8>,
    /// Uncompressed public point: 0x04 || x || y.
    public_raw: Vec<u8>,
    /// The public key as SubjectPublicKeyInfo DER (what an attacker can download).
    pub public_der: Vec<u8>,
}

impl SigningKey {
    /// Makes a fresh P-256 key named `kid`.
    pub fn generate(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .expect("generate a P-256 key");
        Self {
            kid: kid.to_owned(),
            pkcs8: pair.serialize_der(),
            public_raw: pair.public_key_raw().to_vec(),
            public_der: pair.public_key_der(),
        }
    }

    /// The key as a JWK.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "EC",
            "crv": "P-256",
            "use": "sig",
            "alg": "ES256",
            "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(&self.public_raw[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&self.public_raw[33..65]),
        })
    }

    /// Signs `claims` as an ES256 JWT naming this key's id (or `kid` when given).
    pub fn sign(&self, claims: &Value, kid: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.unwrap_or(&self.kid).to_owned());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8))
            .expect("sign a token")
    }
}

/// A client registered for the client-credentials grant.
#[derive(Clone, Debug)]
pub struct RegisteredClient {
    /// Its secret.
    pub secret: String,
    /// The tenant its tokens carry.
    pub tenant: String,
    /// The scopes its tokens carry, space-separated.
    pub scope: String,
    /// The lifetime of its tokens, in seconds.
    pub expires_in: u64,
}

struct Inner {
    addr: SocketAddr,
    /// Keys published in the JWKS.
    published: Mutex<Vec<Arc<SigningKey>>>,
    /// The key new tokens are signed with.
    current: Mutex<Arc<SigningKey>>,
    clients: Mutex<BTreeMap<String, RegisteredClient>>,
    jwks_fetches: AtomicUsize,
    token_requests: AtomicUsize,
}

/// The running provider; it stops when dropped.
#[derive(Clone)]
pub struct TestIdentityProvider {
    inner: Arc<Inner>,
    _server: Arc<ServerTask>,
}

struct ServerTask(tokio::task::JoinHandle<()>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

impl TestIdentityProvider {
    /// Starts the provider on a loopback port with one key, `key-1`.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the identity provider");
        let addr = listener.local_addr().expect("its address");
        let first = Arc::new(SigningKey::generate("key-1"));
        let inner = Arc::new(Inner {
            addr,
            published: Mutex::new(vec![first.clone()]),
            current: Mutex::new(first),
            clients: Mutex::new(BTreeMap::new()),
            jwks_fetches: AtomicUsize::new(0),
            token_requests: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            inner,
            _server: Arc::new(ServerTask(task)),
        }
    }

    /// The issuer (`iss`) of its tokens.
    pub fn issuer(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Where it publishes its keys.
    pub fn jwks_url(&self) -> String {
        format!("http://{}/jwks", self.inner.addr)
    }

    /// Its token endpoint.
    pub fn token_url(&self) -> String {
        format!("http://{}/token", self.inner.addr)
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.inner.jwks_fetches.load(Ordering::SeqCst)
    }

    /// How many token requests it answered.
    pub fn token_requests(&self) -> usize {
        self.inner.token_requests.load(Ordering::SeqCst)
    }

    /// The key new tokens are signed with.
    pub fn current_key(&self) -> Arc<SigningKey> {
        self.inner.current.lock().expect("lock").clone()
    }

    /// Replaces the signing key with a new one named `kid` and publishes only the new key.
    pub fn rotate(&self, kid: &str) {
        let key = Arc::new(SigningKey::generate(kid));
        *self.inner.published.lock().expect("lock") = vec![key.clone()];
        *self.inner.current.lock().expect("lock") = key;
    }

    /// Registers a client for the client-credentials grant.
    pub fn register_client(&self, client_id: &str, client: RegisteredClient) {
        self.inner
            .clients
            .lock()
            .expect("lock")
            .insert(client_id.to_owned(), client);
    }

    /// Standard claims: this issuer, [`AUDIENCE`], valid from now for five minutes.
    pub fn claims(&self, tenant: &str, subject: &str, scope: &str) -> Value {
        let now = now();
        json!({
            "iss": self.issuer(),
            "aud": AUDIENCE,
            "sub": subject,
            "tenant": tenant,
            "scope": scope,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        })
    }

    /// Signs `claims` with the current key.
    pub fn mint(&self, claims: &Value) -> String {
        self.current_key().sign(claims, None)
    }

    /// A token for `tenant` and `subject` with `scope` (space-separated).
    pub fn token(&self, tenant: &str, subject: &str, scope: &str) -> String {
        self.mint(&self.claims(tenant, subject, scope))
    }

    /// Signs `claims` with a key of the attacker's, under the current key's id.
    pub fn forge(&self, claims: &Value) -> String {
        let kid = self.current_key().kid.clone();
        SigningKey::generate("attacker").sign(claims, Some(&kid))
    }

    /// An unsigned token (`alg: none`).
    pub fn unsigned(&self, claims: &Value) -> String {
        let header = json!({"alg": "none", "typ": "JWT", "kid": self.current_key().kid});
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    /// An HS256 token whose secret is the current public key, as published (the key-confusion
    /// attack).
    pub fn hmac_with_public_key(&self, claims: &Value) -> String {
        let key = self.current_key();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&key.public_der))
            .expect("sign with HMAC")
    }
}

fn json_answer(status: StatusCode, body: &Value) -> axum::response::Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn jwks(State(inner): State<Arc<Inner>>) -> axum::response::Response {
    inner.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let keys: Vec<Value> = inner
        .published
        .lock()
        .expect("lock")
        .iter()
        .map(|k| k.jwk())
        .collect();
    json_answer(StatusCode::OK, &json!({ "keys": keys }))
}

async fn token(State(inner): State<Arc<Inner>>, body: String) -> axum::response::Response {
    inner.token_requests.fetch_add(1, Ordering::SeqCst);
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let refuse = |error: &str| {
        json_answer(
            StatusCode::UNAUTHORIZED,
            &json!({"error": error, "error_description": "refused by the test provider"}),
        )
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return refuse("unsupported_grant_type");
    }
    let client = form
        .get("client_id")
        .and_then(|id| inner.clients.lock().expect("lock").get(id).cloned());
    let Some(client) = client.filter(|c| form.get("client_secret") == Some(&c.secret)) else {
        return refuse("invalid_client");
    };
    // Only registered scopes are granted, however many are asked for.
    let scope = match form.get("scope") {
        Some(asked) => asked
            .split_whitespace()
            .filter(|s| client.scope.split_whitespace().any(|r| r == *s))
            .collect::<Vec<_>>()
            .join(" "),
        None => client.scope.clone(),
    };
    let now = now();
    let claims = json!({
        "iss": format!("http://{}", inner.addr),
        "aud": form.get("audience").cloned().unwrap_or_else(|| AUDIENCE.to_owned()),
        "sub": form.get("client_id"),
        "client_id": form.get("client_id"),
        "tenant": client.tenant,
        "scope": scope,
        "iat": now,
        "exp": now + client.expires_in as i64,
    });
    let key = inner.current.lock().expect("lock").clone();
    json_answer(
        StatusCode::OK,
        &json!({
            "access_token": key.sign(&claims, None),
            "token_type": "Bearer",
            "expires_in": client.expires_in,
        }),
    )
}
