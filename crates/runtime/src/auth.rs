//! Bearer-token authentication that resolves the caller's tenant, subject and scopes.
//!
//! A token is either static (`auth.tokens`, `[[auth.static_tokens]]`) or a JWT from the
//! identity provider (`[auth.oidc]`, see [`crate::oidc`]); both may be configured at once: a
//! presented token is first compared with the static ones, then, if it has a JWT's shape,
//! verified as one. [`AuthLayer`] checks the `authorization: Bearer <token>` header of every
//! call except health and reflection, rejects a missing, malformed, unknown or invalid token
//! with UNAUTHENTICATED (saying why, never echoing the token). The method's scope is checked
//! further in by [`crate::scopes::ScopeLayer`], inside the audit layer. [`AuthLayer`] stores the
//! resolved [`Tenant`], [`Subject`], [`Granted`] scopes and the presented token (for passing on
//! to downstream services) in the request extensions, where handlers read them with [`tenant`],
//! [`subject`] and [`caller_token`].
//!
//! Scopes of static tokens: a `[[auth.static_tokens]]` entry carries exactly its `scopes`; an
//! `auth.tokens` entry (the original form) carries every scope, privileged ones included, as it
//! could call every RPC before scopes existed; the server warns about them at start.
//!
//! Dev mode (no tokens configured): a call without a token is the tenant
//! [`crate::config::DEFAULT_TENANT`]. A call *with* a token is rejected as
//! unknown: the caller evidently expects a secured deployment, and silently filing its data
//! under "default" would mix tenants once tokens are configured.
//!
//! Tokens are compared as SHA-256 digests against every configured token without early exit,
//! so timing does not reveal how much of a token matched. Tokens are never logged.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tonic::Status;
use tonic::metadata::MetadataValue;
use tower::{Layer, Service};

use futures::future::BoxFuture;

use crate::config::{AuthConfig, DEFAULT_TENANT, Secret};
use crate::oidc::{JwtRejection, JwtVerifier};
use crate::scopes::Granted;

/// Path prefixes reachable without a token: probes and service discovery.
pub const EXEMPT_PATH_PREFIXES: &[&str] = &["/grpc.health.v1.Health/", "/grpc.reflection."];

/// The billing organisation a call acts for.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(String);

impl Tenant {
    /// Wraps a tenant id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// Returns the tenant id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tenant({:?})", self.0)
    }
}

/// Who made a call, as the audit trail and per-subject limits name them: the user or client id an
/// identity provider's token carries, `token:<digest prefix>` for a static token (never the token
/// itself), or [`Subject::ANONYMOUS`] in dev mode.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject(String);

impl Subject {
    /// The subject of a token-less call in dev mode.
    pub const ANONYMOUS: &'static str = "anonymous";

    /// Wraps a subject id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// Returns the subject id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Names a static token by the first bytes of its SHA-256 digest: stable across restarts,
    /// distinct per token, and useless for guessing the token.
    fn of_static_token(digest: &[u8; 32]) -> Self {
        let prefix: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        Self(format!("token:{prefix}"))
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subject({:?})", self.0)
    }
}

/// The bearer token a call was authenticated with, kept so handlers can pass it on.
#[derive(Clone, Debug)]
pub struct CallerToken(pub Secret);

/// Why a call was not authenticated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `authorization` header.
    #[error("missing bearer token: send the header `authorization: Bearer <token>`")]
    Missing,
    /// The header is not `Bearer <token>`.
    #[error("malformed authorization header: expected `Bearer <token>`")]
    Malformed,
    /// The token is not configured.
    #[error("unknown bearer token")]
    Unknown,
    /// A token was sent to a server in dev mode, which has none configured.
    #[error(
        "unknown bearer token: this server runs in dev mode (no tokens configured); \
         call it without a token, or configure auth.tokens"
    )]
    UnknownInDevMode,
    /// A JWT that was refused.
    #[error("invalid bearer token: {0}")]
    Jwt(JwtRejection),
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Self {
        match err {
            // Not the caller's fault, and worth retrying.
            AuthError::Jwt(JwtRejection::KeysUnavailable) => Status::unavailable(err.to_string()),
            _ => Status::unauthenticated(err.to_string()),
        }
    }
}

/// What [`Authenticator::authenticate`] learned about a caller.
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// The tenant the call acts for.
    pub tenant: Tenant,
    /// Who is calling.
    pub subject: Subject,
    /// The token presented (none in dev mode), for passing on to downstream services.
    pub token: Option<Secret>,
    /// The scopes the caller holds.
    pub scopes: Granted,
}

/// Why the authentication configuration cannot be used (the message names the key).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthSetupError(pub String);

/// One static token, by digest.
#[derive(Clone)]
struct StaticEntry {
    digest: [u8; 32],
    tenant: Tenant,
    subject: Subject,
    scopes: Granted,
}

/// Resolves bearer tokens to tenants, subjects and scopes.
#[derive(Clone)]
pub struct Authenticator {
    entries: Vec<StaticEntry>,
    jwt: Option<Arc<JwtVerifier>>,
    /// How many static tokens carry every scope (the `auth.tokens` form), for the start warning.
    all_scope_tokens: usize,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("token_count", &self.entries.len())
            .field("jwt", &self.jwt)
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two digests in time independent of where they differ.
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Authenticator {
    /// Builds an authenticator from the configuration. Fails when `[auth.oidc]` is unusable
    /// (the configuration check names the same problems first).
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthSetupError> {
        let mut entries: Vec<StaticEntry> = config
            .tokens
            .iter()
            .map(|(token, tenant)| {
                let digest = digest(token.expose());
                StaticEntry {
                    digest,
                    tenant: Tenant::new(tenant.clone()),
                    subject: Subject::of_static_token(&digest),
                    scopes: Granted::All,
                }
            })
            .collect();
        let all_scope_tokens = entries.len();
        for entry in &config.static_tokens {
            let Some(token) = &entry.token else {
                return Err(AuthSetupError(
                    "auth.static_tokens: an entry has neither token nor token_file".into(),
                ));
            };
            let digest = digest(token.expose());
            entries.push(StaticEntry {
                digest,
                tenant: Tenant::new(entry.tenant.clone()),
                subject: entry
                    .subject
                    .clone()
                    .map(Subject::new)
                    .unwrap_or_else(|| Subject::of_static_token(&digest)),
                scopes: Granted::only(entry.scopes.iter().cloned()),
            });
        }
        let jwt = config
            .oidc
            .as_ref()
            .map(JwtVerifier::new)
            .transpose()
            .map_err(AuthSetupError)?
            .map(Arc::new);
        Ok(Self {
            entries,
            jwt,
            all_scope_tokens,
        })
    }

    /// Builds a dev-mode authenticator (no tokens).
    pub fn dev() -> Self {
        Self {
            entries: Vec::new(),
            jwt: None,
            all_scope_tokens: 0,
        }
    }

    /// Reports whether no authentication is configured, so every token-less caller is the
    /// default tenant with every scope.
    pub fn is_dev_mode(&self) -> bool {
        self.entries.is_empty() && self.jwt.is_none()
    }

    /// How many static tokens carry every scope (`auth.tokens` entries).
    pub fn all_scope_token_count(&self) -> usize {
        self.all_scope_tokens
    }

    /// Resolves the caller of a call given its `authorization` header value (`None` when the
    /// header is absent).
    pub async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
    ) -> Result<Authenticated, AuthError> {
        let Some(raw) = authorization else {
            return if self.is_dev_mode() {
                Ok(Authenticated {
                    tenant: Tenant::new(DEFAULT_TENANT),
                    subject: Subject::new(Subject::ANONYMOUS),
                    token: None,
                    scopes: Granted::All,
                })
            } else {
                Err(AuthError::Missing)
            };
        };
        let token = parse_bearer(raw)?;
        if self.is_dev_mode() {
            return Err(AuthError::UnknownInDevMode);
        }
        let presented = digest(token);
        let mut found: Option<&StaticEntry> = None;
        // Every entry is compared so the time taken does not depend on which one matched.
        for entry in &self.entries {
            if digests_equal(&entry.digest, &presented) && found.is_none() {
                found = Some(entry);
            }
        }
        if let Some(entry) = found {
            return Ok(Authenticated {
                tenant: entry.tenant.clone(),
                subject: entry.subject.clone(),
                token: Some(Secret::new(token)),
                scopes: entry.scopes.clone(),
            });
        }
        match &self.jwt {
            Some(verifier) if crate::oidc::looks_like_jwt(token) => {
                let verified = verifier.verify(token).await.map_err(AuthError::Jwt)?;
                Ok(Authenticated {
                    tenant: verified.tenant,
                    subject: verified.subject,
                    token: Some(Secret::new(token)),
                    scopes: verified.scopes,
                })
            }
            _ => Err(AuthError::Unknown),
        }
    }
}

/// Extracts the token from `Bearer <token>` (scheme case-insensitive).
fn parse_bearer(raw: &[u8]) -> Result<&str, AuthError> {
    let value = std::str::from_utf8(raw).map_err(|_| AuthError::Malformed)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::Malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

/// Reports whether `path` is reachable without a token.
pub fn is_exempt(path: &str) -> bool {
    EXEMPT_PATH_PREFIXES
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

/// Returns the tenant resolved by [`AuthLayer`] for this call.
///
/// Fails with INTERNAL (and logs) when there is none, which means the server was built
/// without the auth layer: a bug, not a caller error.
pub fn tenant<T>(request: &tonic::Request<T>) -> Result<Tenant, Status> {
    request
        .extensions()
        .get::<Tenant>()
        .cloned()
        .ok_or_else(|| {
            tracing::error!("no tenant in request extensions: auth layer not installed");
            Status::internal("internal error")
        })
}

/// Returns who made this call, as resolved by [`AuthLayer`] (none when the layer is not installed).
pub fn subject<T>(request: &tonic::Request<T>) -> Option<Subject> {
    request.extensions().get::<Subject>().cloned()
}

/// Returns the scopes the caller holds, as resolved by [`AuthLayer`] (none when the layer is
/// not installed).
pub fn granted<T>(request: &tonic::Request<T>) -> Option<Granted> {
    request.extensions().get::<Granted>().cloned()
}

/// Returns the token the caller authenticated with (none in dev mode).
pub fn caller_token<T>(request: &tonic::Request<T>) -> Option<Secret> {
    request
        .extensions()
        .get::<CallerToken>()
        .map(|token| token.0.clone())
}

/// Sets `authorization: Bearer <token>` on an outgoing request.
pub fn attach_bearer<T>(request: &mut tonic::Request<T>, token: &Secret) -> Result<(), Status> {
    let value = MetadataValue::try_from(format!("Bearer {}", token.expose()))
        .map_err(|_| Status::internal("configured token is not a valid header value"))?;
    request.metadata_mut().insert("authorization", value);
    Ok(())
}

/// Passes the inbound caller's token on to an outgoing request, so the downstream service
/// resolves the same tenant. In dev mode there is no token and nothing is set.
pub fn forward_caller_token<T, U>(
    inbound: &tonic::Request<T>,
    outbound: &mut tonic::Request<U>,
) -> Result<(), Status> {
    match caller_token(inbound) {
        Some(token) => attach_bearer(outbound, &token),
        None => Ok(()),
    }
}

/// Tower layer that authenticates every non-exempt call (see the module docs); the scope of the
/// call is checked further in, by [`crate::scopes::ScopeLayer`], inside the audit layer so a
/// refusal is on the record.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    authenticator: Arc<Authenticator>,
}

impl AuthLayer {
    /// Wraps an authenticator.
    pub fn new(authenticator: Authenticator) -> Self {
        Self {
            authenticator: Arc::new(authenticator),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            authenticator: Arc::clone(&self.authenticator),
        }
    }
}

/// Service produced by [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for AuthService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
        if is_exempt(req.uri().path()) {
            return Box::pin(self.inner.call(req));
        }
        // The clone is the one made ready next time; this call uses the ready one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authenticator = Arc::clone(&self.authenticator);
        let span = tracing::Span::current();
        Box::pin(async move {
            let header = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(http::HeaderValue::as_bytes);
            let path = req.uri().path().to_owned();
            let authenticated = match authenticator.authenticate(header).await {
                Ok(authenticated) => authenticated,
                Err(err) => {
                    tracing::info!(path, reason = %err, "call rejected: unauthenticated");
                    return Ok(Status::from(err).into_http::<ResBody>());
                }
            };
            let Authenticated {
                tenant,
                subject,
                token,
                scopes,
            } = authenticated;
            span.record("tenant", tenant.as_str());
            req.extensions_mut().insert(tenant);
            req.extensions_mut().insert(subject);
            req.extensions_mut().insert(scopes);
            if let Some(token) = token {
                req.extensions_mut().insert(CallerToken(token));
            }
            inner.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::convert::Infallible;
    use tower::ServiceExt as _;

    fn configured() -> Authenticator {
        let mut tokens = BTreeMap::new();
        tokens.insert(Secret::new("tok-a"), "clinic-a".to_owned());
        tokens.insert(Secret::new("tok-b"), "clinic-b".to_owned());
        Authenticator::from_config(&AuthConfig {
            tokens,
            ..AuthConfig::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn known_tokens_resolve_to_their_tenants() {
        let auth = configured();
        let a = auth.authenticate(Some(b"Bearer tok-a")).await.unwrap();
        assert_eq!(a.tenant.as_str(), "clinic-a");
        assert_eq!(a.token.unwrap().expose(), "tok-a");
        let b = auth.authenticate(Some(b"bearer   tok-b ")).await.unwrap();
        assert_eq!(b.tenant.as_str(), "clinic-b");
        // Each token is its own subject, named without revealing the token.
        assert!(a.subject.as_str().starts_with("token:"), "{:?}", a.subject);
        assert_ne!(a.subject, b.subject);
        assert!(!a.subject.as_str().contains("tok-a"));
    }

    #[tokio::test]
    async fn missing_malformed_and_unknown_tokens_are_rejected() {
        let auth = configured();
        assert_eq!(
            auth.authenticate(None).await.unwrap_err(),
            AuthError::Missing
        );
        assert_eq!(
            auth.authenticate(Some(b"tok-a")).await.unwrap_err(),
            AuthError::Malformed
        );
        assert_eq!(
            auth.authenticate(Some(b"Basic dG9rLWE="))
                .await
                .unwrap_err(),
            AuthError::Malformed
        );
        assert_eq!(
            auth.authenticate(Some(b"Bearer ")).await.unwrap_err(),
            AuthError::Malformed
        );
        assert_eq!(
            auth.authenticate(Some(&[0xff, 0xfe])).await.unwrap_err(),
            AuthError::Malformed
        );
        assert_eq!(
            auth.authenticate(Some(b"Bearer tok-c")).await.unwrap_err(),
            AuthError::Unknown
        );
        // A prefix of a real token is not that token.
        assert_eq!(
            auth.authenticate(Some(b"Bearer tok-")).await.unwrap_err(),
            AuthError::Unknown
        );
    }

    #[tokio::test]
    async fn dev_mode_gives_the_default_tenant_and_rejects_tokens() {
        let auth = Authenticator::from_config(&AuthConfig::default()).unwrap();
        assert!(auth.is_dev_mode());
        let dev = auth.authenticate(None).await.unwrap();
        assert_eq!(dev.tenant.as_str(), DEFAULT_TENANT);
        assert_eq!(dev.subject.as_str(), Subject::ANONYMOUS);
        assert!(dev.token.is_none());
        let err = auth
            .authenticate(Some(b"Bearer anything"))
            .await
            .unwrap_err();
        assert_eq!(err, AuthError::UnknownInDevMode);
        assert!(err.to_string().contains("dev mode"));
    }

    #[tokio::test]
    async fn statuses_never_contain_the_token() {
        let auth = configured();
        let err = auth
            .authenticate(Some(b"Bearer secret-guess-123"))
            .await
            .unwrap_err();
        let status = Status::from(err);
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(!status.message().contains("secret-guess-123"));
        assert_eq!(status.message(), "unknown bearer token");
    }

    async fn call(
        auth: Authenticator,
        path: &str,
        authorization: Option<&str>,
    ) -> http::Response<String> {
        let inner = tower::service_fn(|req: http::Request<()>| async move {
            let tenant = req
                .extensions()
                .get::<Tenant>()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_else(|| "<none>".to_owned());
            Ok::<_, Infallible>(http::Response::new(tenant))
        });
        let mut builder = http::Request::builder().uri(path);
        if let Some(value) = authorization {
            builder = builder.header("authorization", value);
        }
        AuthLayer::new(auth)
            .layer(inner)
            .oneshot(builder.body(()).unwrap())
            .await
            .unwrap()
    }

    fn grpc_status(response: &http::Response<String>) -> Option<&str> {
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn layer_puts_the_tenant_in_extensions_or_answers_unauthenticated() {
        let ok = call(
            configured(),
            "/medbill.claims.v1.ClaimsService/GetClaim",
            Some("Bearer tok-b"),
        )
        .await;
        assert_eq!(ok.body(), "clinic-b");
        assert_eq!(grpc_status(&ok), None);

        let missing = call(
            configured(),
            "/medbill.claims.v1.ClaimsService/GetClaim",
            None,
        )
        .await;
        assert_eq!(grpc_status(&missing), Some("16"));
        assert!(missing.body().is_empty(), "inner service not called");
        let message = missing
            .headers()
            .get("grpc-message")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(message.contains("missing%20bearer%20token"), "{message}");

        let unknown = call(configured(), "/x.Y/Z", Some("Bearer nope")).await;
        assert_eq!(grpc_status(&unknown), Some("16"));

        let dev = call(Authenticator::dev(), "/x.Y/Z", None).await;
        assert_eq!(dev.body(), DEFAULT_TENANT);
    }

    #[tokio::test]
    async fn health_and_reflection_need_no_token() {
        for path in [
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            let response = call(configured(), path, None).await;
            assert_eq!(grpc_status(&response), None, "{path}");
            assert_eq!(response.body(), "<none>");
        }
        // Lookalikes are not exempt.
        let response = call(configured(), "/grpc.health.v1.HealthX/Check", None).await;
        assert_eq!(grpc_status(&response), Some("16"));
    }

    #[test]
    fn tenant_helper_reads_extensions_and_tokens_are_forwarded() {
        let mut inbound = tonic::Request::new(());
        assert_eq!(tenant(&inbound).unwrap_err().code(), tonic::Code::Internal);
        inbound.extensions_mut().insert(Tenant::new("clinic-a"));
        inbound
            .extensions_mut()
            .insert(CallerToken(Secret::new("tok-a")));
        assert_eq!(tenant(&inbound).unwrap().as_str(), "clinic-a");

        let mut outbound = tonic::Request::new(());
        forward_caller_token(&inbound, &mut outbound).unwrap();
        assert_eq!(
            outbound
                .metadata()
                .get("authorization")
                .unwrap()
                .to_str()
                .unwrap(),
            "Bearer tok-a"
        );

        let mut dev_outbound = tonic::Request::new(());
        forward_caller_token(&tonic::Request::new(()), &mut dev_outbound).unwrap();
        assert!(dev_outbound.metadata().get("authorization").is_none());
    }
}
