//! JWT access tokens from the hospital's identity provider (`[auth.oidc]`).
//!
//! A token is accepted when its signature verifies against a key of the provider's JWKS, its
//! algorithm is on the allow-list, `iss` is the configured issuer, `aud` names one of the
//! configured audiences, `exp` has not passed and `nbf` has (both with `leeway_secs`), and it
//! carries the tenant claim. The subject (`sub`, or the configured claim such as `client_id`
//! or `azp` for client-credentials tokens) is kept for the audit trail; scopes come from the
//! `scope` claim (a space-separated string) or `scp` (an array), or the configured claim.
//!
//! HMAC algorithms and `none` are refused outright, whatever the configuration says: with an
//! HMAC algorithm allowed, a forger could sign with the provider's *public* key as the secret.
//! Symmetric (`oct`) keys in the JWKS are ignored for the same reason.
//!
//! The JWKS comes from `jwks_url` (fetched over HTTP(S)) or `jwks_file`. It is loaded on first
//! use, loaded again when a token names a key id it does not hold (the provider rotated its
//! keys) or when it is older than `jwks_max_age_secs`, and never more often than once per
//! `jwks_min_refetch_secs`, so a flood of tokens with made-up key ids cannot turn into a
//! flood of requests to the provider. Concurrent calls that need a refetch share one.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tokio::time::Instant;

use crate::auth::{Subject, Tenant};
use crate::scopes::Granted;

/// The algorithms allowed when `auth.oidc.algorithms` is not set.
pub const DEFAULT_ALGORITHMS: &[&str] = &["RS256", "PS256", "ES256"];

/// The `[auth.oidc]` section.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// The `iss` every token must carry (the provider's issuer URL).
    pub issuer: String,
    /// The audience(s) a token's `aud` must name one of; a string or a list.
    #[serde(deserialize_with = "one_or_many")]
    pub audience: Vec<String>,
    /// Where the provider publishes its keys (`https://idp/.../jwks`).
    pub jwks_url: Option<String>,
    /// A JWKS file instead of `jwks_url` (read again on an unknown key id, like the URL).
    pub jwks_file: Option<PathBuf>,
    /// The claim naming the tenant.
    pub tenant_claim: String,
    /// The claim naming the subject (`sub`; `client_id` or `azp` for client-credentials).
    pub subject_claim: String,
    /// The claim holding the scopes; unset: `scope` (space-separated), else `scp` (array).
    pub scope_claim: Option<String>,
    /// Allowed signing algorithms (RS256..RS512, PS256..PS512, ES256, ES384, EdDSA).
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway_secs: u64,
    /// The JWKS is fetched at most once per this many seconds.
    pub jwks_min_refetch_secs: u64,
    /// A JWKS older than this is fetched again before use (drops keys the provider revoked).
    pub jwks_max_age_secs: u64,
    /// Longest a JWKS fetch may take.
    pub jwks_timeout_ms: u64,
    /// PEM CA certificates trusted for an `https://` `jwks_url` instead of the public web roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audience: Vec::new(),
            jwks_url: None,
            jwks_file: None,
            tenant_claim: "tenant".to_owned(),
            subject_claim: "sub".to_owned(),
            scope_claim: None,
            algorithms: DEFAULT_ALGORITHMS.iter().map(|a| (*a).to_owned()).collect(),
            leeway_secs: 60,
            jwks_min_refetch_secs: 30,
            jwks_max_age_secs: 3600,
            jwks_timeout_ms: 5_000,
            ca_file: None,
        }
    }
}

impl OidcConfig {
    /// The key and reason of the first inconsistency, if any.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if self.issuer.trim().is_empty() {
            return Some(("auth.oidc.issuer", "is required".to_owned()));
        }
        if self.audience.is_empty() || self.audience.iter().any(|a| a.trim().is_empty()) {
            return Some((
                "auth.oidc.audience",
                "is required (a string or a list)".to_owned(),
            ));
        }
        match (&self.jwks_url, &self.jwks_file) {
            (None, None) | (Some(_), Some(_)) => {
                return Some((
                    "auth.oidc.jwks_url",
                    "set exactly one of auth.oidc.jwks_url and auth.oidc.jwks_file".to_owned(),
                ));
            }
            (Some(url), None) if !(url.starts_with("https://") || url.starts_with("http://")) => {
                return Some((
                    "auth.oidc.jwks_url",
                    "must start with https:// or http://".to_owned(),
                ));
            }
            _ => {}
        }
        if self.tenant_claim.trim().is_empty() {
            return Some(("auth.oidc.tenant_claim", "must not be empty".to_owned()));
        }
        if self.subject_claim.trim().is_empty() {
            return Some(("auth.oidc.subject_claim", "must not be empty".to_owned()));
        }
        if self.algorithms.is_empty() {
            return Some(("auth.oidc.algorithms", "must name at least one".to_owned()));
        }
        for name in &self.algorithms {
            if let Err(reason) = allowed_algorithm(name) {
                return Some(("auth.oidc.algorithms", reason));
            }
        }
        if self.jwks_timeout_ms == 0 {
            return Some(("auth.oidc.jwks_timeout_ms", "must be at least 1".to_owned()));
        }
        None
    }
}

/// Parses an algorithm name that may be allowed: asymmetric only.
fn allowed_algorithm(name: &str) -> Result<Algorithm, String> {
    if name.eq_ignore_ascii_case("none") {
        return Err("`none` is never allowed: it means an unsigned token".to_owned());
    }
    if name.to_ascii_uppercase().starts_with("HS") {
        return Err(format!(
            "{name} is never allowed: an HMAC algorithm would let a public key be used as the secret"
        ));
    }
    match name.parse::<Algorithm>() {
        Ok(alg) => Ok(alg),
        Err(_) => Err(format!(
            "{name} is not a supported algorithm (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
        )),
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// Why a JWT was refused. The messages name what is wrong, never the token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtRejection {
    /// Not three base64url parts with a JSON header.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// `exp` has passed (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    #[error("the token is not valid yet (nbf is in the future)")]
    NotYetValid,
    /// `aud` names none of the configured audiences.
    #[error("wrong audience: the token is not meant for {expected}")]
    WrongAudience {
        /// The configured audiences.
        expected: String,
    },
    /// `iss` is not the configured issuer.
    #[error("wrong issuer: the token was not issued by {expected}")]
    WrongIssuer {
        /// The configured issuer.
        expected: String,
    },
    /// A required registered claim is absent.
    #[error("the token has no `{0}` claim")]
    MissingClaim(String),
    /// The signature does not verify with the key the token names.
    #[error("bad signature: the token was not signed by the identity provider's key")]
    BadSignature,
    /// The key id is not in the provider's key set (after a refetch, where allowed).
    #[error("unknown signing key: the identity provider's key set has no key with this kid")]
    UnknownKid,
    /// The header's `alg` is not on the allow-list (or is `none` or HMAC).
    #[error("algorithm {0} is not allowed")]
    AlgorithmNotAllowed(String),
    /// The tenant claim is absent or empty.
    #[error("the token has no `{0}` claim naming the tenant")]
    MissingTenant(String),
    /// The subject claim is absent or empty.
    #[error("the token has no `{0}` claim naming the subject")]
    MissingSubject(String),
    /// The key set could not be fetched and none is cached.
    #[error("the identity provider's keys cannot be fetched right now")]
    KeysUnavailable,
}

/// What a verified token says about its caller.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    /// The tenant claim.
    pub tenant: Tenant,
    /// The subject claim.
    pub subject: Subject,
    /// The scopes the token carries.
    pub scopes: Granted,
}

/// One usable verification key of the JWKS.
struct StoredKey {
    kid: Option<String>,
    kind: KeyKind,
    /// The key's `alg`, when the JWKS pins one.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyKind {
    fn fits(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::EcP256 => alg == ES256,
            KeyKind::EcP384 => alg == ES384,
            KeyKind::Ed25519 => alg == EdDSA,
        }
    }
}

struct KeySet {
    keys: Vec<StoredKey>,
    fetched_at: Option<Instant>,
}

/// Verifies JWT access tokens against the provider's JWKS (see the module docs).
pub struct JwtVerifier {
    config: OidcConfig,
    algorithms: Vec<Algorithm>,
    keys: RwLock<KeySet>,
    /// Serialises refetches; holds when the last one was attempted.
    fetching: tokio::sync::Mutex<Option<Instant>>,
    http: crate::http_client::HttpClient,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.config.issuer)
            .field("audience", &self.config.audience)
            .finish_non_exhaustive()
    }
}

/// Reports whether `token` has the shape of a JWT (three base64url parts), so a static token
/// that is not one is never sent to the verifier.
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The header fields verification needs, read before any key is chosen.
struct RawHeader {
    alg: String,
    kid: Option<String>,
}

fn read_header(token: &str) -> Result<RawHeader, JwtRejection> {
    let encoded = token.split('.').next().ok_or(JwtRejection::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| JwtRejection::Malformed)?;
    let header: Value = serde_json::from_slice(&bytes).map_err(|_| JwtRejection::Malformed)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwtRejection::Malformed)?;
    // The name is the caller's: echo it only when it is a plausible algorithm name.
    let alg = if alg.len() <= 8 && alg.bytes().all(|b| b.is_ascii_alphanumeric()) {
        alg.to_owned()
    } else {
        "(unrecognised)".to_owned()
    };
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok(RawHeader { alg, kid })
}

impl JwtVerifier {
    /// Builds a verifier; the key set is loaded on first use.
    pub fn new(config: &OidcConfig) -> Result<Self, String> {
        if let Some((key, reason)) = config.problem() {
            return Err(format!("{key}: {reason}"));
        }
        let algorithms = config
            .algorithms
            .iter()
            .map(|name| allowed_algorithm(name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            config: config.clone(),
            algorithms,
            keys: RwLock::new(KeySet {
                keys: Vec::new(),
                fetched_at: None,
            }),
            fetching: tokio::sync::Mutex::new(None),
            http: crate::http_client::HttpClient::new(config.ca_file.as_deref())
                .map_err(|e| format!("auth.oidc.ca_file: {e}"))?,
        })
    }

    /// Verifies `token` and returns what it says about its caller.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, JwtRejection> {
        let header = read_header(token)?;
        let alg = self.check_algorithm(&header.alg)?;
        let stale = {
            let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
            keys.fetched_at
                .is_none_or(|at| at.elapsed() >= Duration::from_secs(self.config.jwks_max_age_secs))
        };
        if stale {
            self.refetch(None).await;
        }
        let key = match self.find_key(header.kid.as_deref(), alg)? {
            Some(key) => key,
            None => {
                // An unknown key id: the provider may have rotated; look again (rate limited).
                self.refetch(header.kid.as_deref()).await;
                self.find_key(header.kid.as_deref(), alg)?
                    .ok_or(JwtRejection::UnknownKid)?
            }
        };
        self.decode(token, alg, &key)
    }

    fn check_algorithm(&self, name: &str) -> Result<Algorithm, JwtRejection> {
        let alg = allowed_algorithm(name)
            .map_err(|_| JwtRejection::AlgorithmNotAllowed(name.to_owned()))?;
        if !self.algorithms.contains(&alg) {
            return Err(JwtRejection::AlgorithmNotAllowed(name.to_owned()));
        }
        Ok(alg)
    }

    /// Finds the key for `kid` that fits `alg`. `Ok(None)`: no key with that id (refetch may
    /// help); an error: a key exists but cannot be used with `alg`, or no key set is loaded.
    fn find_key(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Option<DecodingKey>, JwtRejection> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        if keys.fetched_at.is_none() {
            return Err(JwtRejection::KeysUnavailable);
        }
        let candidates: Vec<&StoredKey> = match kid {
            Some(kid) => keys
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            // Without a kid only an unambiguous key set will do.
            None => {
                let fitting: Vec<&StoredKey> =
                    keys.keys.iter().filter(|k| k.kind.fits(alg)).collect();
                if fitting.len() == 1 {
                    fitting
                } else {
                    Vec::new()
                }
            }
        };
        if candidates.is_empty() {
            return Ok(None);
        }
        candidates
            .into_iter()
            .find(|k| k.kind.fits(alg) && k.alg.is_none_or(|pinned| pinned == alg))
            .map(|k| Some(k.key.clone()))
            // The key exists but is of another type: someone chose the algorithm to suit a forgery.
            .ok_or_else(|| JwtRejection::AlgorithmNotAllowed(format!("{alg:?} for this key")))
    }

    fn decode(
        &self,
        token: &str,
        alg: Algorithm,
        key: &DecodingKey,
    ) -> Result<VerifiedToken, JwtRejection> {
        use jsonwebtoken::errors::ErrorKind;
        let mut validation = Validation::new(alg);
        validation.leeway = self.config.leeway_secs;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&self.config.audience);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => JwtRejection::BadSignature,
                ErrorKind::ExpiredSignature => JwtRejection::Expired,
                ErrorKind::ImmatureSignature => JwtRejection::NotYetValid,
                ErrorKind::InvalidAudience => JwtRejection::WrongAudience {
                    expected: self.config.audience.join(" or "),
                },
                ErrorKind::InvalidIssuer => JwtRejection::WrongIssuer {
                    expected: self.config.issuer.clone(),
                },
                ErrorKind::MissingRequiredClaim(claim) => JwtRejection::MissingClaim(claim.clone()),
                ErrorKind::InvalidAlgorithm => {
                    JwtRejection::AlgorithmNotAllowed(format!("{alg:?}"))
                }
                _ => JwtRejection::Malformed,
            })?;
        let claims = data.claims;
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty() && !v.chars().any(char::is_control))
        };
        let tenant = text(&self.config.tenant_claim)
            .ok_or_else(|| JwtRejection::MissingTenant(self.config.tenant_claim.clone()))?;
        let subject = text(&self.config.subject_claim)
            .ok_or_else(|| JwtRejection::MissingSubject(self.config.subject_claim.clone()))?;
        Ok(VerifiedToken {
            tenant: Tenant::new(tenant),
            subject: Subject::new(subject),
            scopes: Granted::Only(Arc::new(self.scopes_of(&claims))),
        })
    }

    fn scopes_of(&self, claims: &serde_json::Map<String, Value>) -> BTreeSet<String> {
        let read = |value: &Value| -> BTreeSet<String> {
            match value {
                Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
                Value::Array(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => BTreeSet::new(),
            }
        };
        match &self.config.scope_claim {
            Some(claim) => claims.get(claim).map(read).unwrap_or_default(),
            None => claims
                .get("scope")
                .or_else(|| claims.get("scp"))
                .map(read)
                .unwrap_or_default(),
        }
    }

    /// Loads the key set again unless one was attempted within `jwks_min_refetch_secs`, or
    /// (when `kid` is given) another call already brought that key in.
    async fn refetch(&self, kid: Option<&str>) {
        let mut last = self.fetching.lock().await;
        if let Some(kid) = kid {
            let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
            if keys.keys.iter().any(|k| k.kid.as_deref() == Some(kid)) {
                return;
            }
        } else {
            let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
            if keys
                .fetched_at
                .is_some_and(|at| at.elapsed() < Duration::from_secs(self.config.jwks_max_age_secs))
            {
                return;
            }
        }
        let min = Duration::from_secs(self.config.jwks_min_refetch_secs);
        if last.is_some_and(|at| at.elapsed() < min) {
            tracing::debug!("JWKS refetch skipped: the last one was too recent");
            return;
        }
        *last = Some(Instant::now());
        match self.load().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "identity provider keys loaded");
                let mut set = self.keys.write().unwrap_or_else(|e| e.into_inner());
                set.keys = keys;
                set.fetched_at = Some(Instant::now());
            }
            Err(reason) => {
                // The cached keys, if any, stay in use.
                tracing::warn!(%reason, "cannot load the identity provider's keys");
            }
        }
    }

    async fn load(&self) -> Result<Vec<StoredKey>, String> {
        let body = match (&self.config.jwks_url, &self.config.jwks_file) {
            (Some(url), _) => {
                let timeout = Duration::from_millis(self.config.jwks_timeout_ms);
                self.http.get(url, timeout).await?
            }
            (None, Some(path)) => tokio::fs::read(path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?,
            (None, None) => return Err("no JWKS source configured".to_owned()),
        };
        parse_jwks(&body)
    }
}

/// Reads the usable keys of a JWKS document: signature keys of a known asymmetric type; `oct`
/// (HMAC) keys and keys of other types are skipped, so one odd key does not hide the rest.
fn parse_jwks(body: &[u8]) -> Result<Vec<StoredKey>, String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
    let entries = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no `keys` array")?;
    let mut keys = Vec::new();
    for entry in entries {
        let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        let kind = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => KeyKind::Rsa,
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => KeyKind::EcP256,
                EllipticCurve::P384 => KeyKind::EcP384,
                _ => continue,
            },
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                KeyKind::Ed25519
            }
            // Symmetric keys never verify a token here (see the module docs).
            _ => continue,
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a| a.to_string().parse::<Algorithm>().ok());
        keys.push(StoredKey {
            kid: jwk.common.key_id.clone(),
            kind,
            alg,
            key,
        });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_and_none_are_never_allowed() {
        for name in ["HS256", "hs384", "HS512", "none", "None"] {
            assert!(allowed_algorithm(name).is_err(), "{name}");
        }
        for name in ["RS256", "PS256", "ES256", "ES384", "EdDSA"] {
            assert!(allowed_algorithm(name).is_ok(), "{name}");
        }
        let config = OidcConfig {
            issuer: "https://idp".into(),
            audience: vec!["medbill".into()],
            jwks_url: Some("https://idp/jwks".into()),
            algorithms: vec!["RS256".into(), "HS256".into()],
            ..OidcConfig::default()
        };
        let (key, reason) = config.problem().expect("HS256 refused");
        assert_eq!(key, "auth.oidc.algorithms");
        assert!(reason.contains("HMAC"), "{reason}");
    }

    #[test]
    fn jwt_shape_is_recognised() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(looks_like_jwt("eyJh.eyJz."));
        assert!(!looks_like_jwt("tok-a"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a+.b.c"));
    }

    #[test]
    fn jwks_keeps_asymmetric_signature_keys_only() {
        let body = br#"{"keys":[
            {"kty":"oct","kid":"h","k":"c2VjcmV0"},
            {"kty":"EC","kid":"e","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","kid":"enc","use":"enc","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"XYZ","kid":"odd"}
        ]}"#;
        let keys = parse_jwks(body).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.clone().unwrap()).collect();
        assert_eq!(kids, ["e"]);
        assert_eq!(keys[0].kind, KeyKind::EcP256);
    }
}
