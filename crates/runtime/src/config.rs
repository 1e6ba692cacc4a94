//! Layered configuration: defaults, then a TOML file, then `MEDBILL_*` environment variables,
//! then a few command-line flags.
//!
//! * The file comes from the `--config` flag (passed to [`load`]) or else from `MEDBILL_CONFIG`.
//!   A file that was asked for but does not exist is an error (a typo must not silently fall
//!   back to defaults); with neither set, no file is read.
//! * Environment variables are `MEDBILL_` followed by the key path, sections separated by a
//!   double underscore: `MEDBILL_GRPC__REQUEST_TIMEOUT_MS=5000`, `MEDBILL_DATABASE_URL=postgres://...`.
//!   Values are parsed like TOML values, so a map is written inline:
//!   `MEDBILL_AUTH__TOKENS='{"tok-a"="clinic-a","tok-b"="clinic-b"}'`.
//!   Only variables whose first segment names a known key or section are read, so unrelated
//!   variables such as `MEDBILL_TEST_PG_URL` do not trip the unknown-key check.
//! * Unknown keys in the file or in a known section are errors, so typos are caught at start.
//!
//! The runtime owns the shared keys ([`Config`]: listen address, database, endpoints, auth, gRPC,
//! client, telemetry, outbox). Each service owns its own section (`[eligibility]`, `[[payers]]`,
//! `[payer_sim]`, ...) and extracts it from the same layered sources with
//! [`LoadedConfig::section`]; [`load`] is told the section names so that a top-level key nobody
//! claims is rejected, and each section's type rejects unknown keys inside it
//! (`#[serde(deny_unknown_fields)]`).
//!
//! Errors name the key as the user wrote it: `grpc.request_timeout_ms` for the file,
//! `MEDBILL_GRPC__REQUEST_TIMEOUT_MS` for the environment.
//!
//! Durations are integer milliseconds (`*_ms`) or seconds (`*_secs`): no floats.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Prefix of every environment variable read by [`load`].
pub const ENV_PREFIX: &str = "MEDBILL_";
/// Environment variable naming the TOML config file when no `--config` flag is given.
pub const CONFIG_FILE_ENV: &str = "MEDBILL_CONFIG";
/// Tenant every caller gets in dev mode (no tokens configured).
pub const DEFAULT_TENANT: &str = "default";

/// Holds a secret string (a bearer token) whose `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the secret value; call only where it is sent or compared, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"***\")")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

/// Names one of the four services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// Coverage, eligibility checks, estimates, prior authorisation.
    Eligibility,
    /// Claims, submission, acknowledgements.
    Claims,
    /// ERAs, denials, deposits.
    Remittance,
    /// Patient accounts, ledger, statements.
    Collections,
}

impl ServiceKind {
    /// All services, in dependency-free start order.
    pub const ALL: [ServiceKind; 4] = [
        ServiceKind::Eligibility,
        ServiceKind::Claims,
        ServiceKind::Remittance,
        ServiceKind::Collections,
    ];

    /// Returns the lowercase name used in flags, file names and config keys.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Eligibility => "eligibility",
            ServiceKind::Claims => "claims",
            ServiceKind::Remittance => "remittance",
            ServiceKind::Collections => "collections",
        }
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Holds the shared configuration every service runs with (the runtime's keys).
///
/// Services' own sections are not here: they are read from [`LoadedConfig::section`]. Unknown
/// top-level keys are rejected by [`load`] (which knows the services' section names), not by
/// this type, so it carries no `deny_unknown_fields` at the top; every nested section does.
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address the gRPC server listens on.
    pub listen: SocketAddr,
    /// Directory for the default SQLite databases and other local state.
    pub data_dir: PathBuf,
    /// Database URL (`postgres://...` or `sqlite://...`); unset means
    /// `sqlite://<data_dir>/medbill.db` (see [`Config::effective_database_url`]). The storage
    /// layer gives each service its own PostgreSQL schema or SQLite file from this one URL.
    pub database_url: Option<String>,
    /// A file holding the PostgreSQL password (a mounted Secret), for a `database_url` that
    /// carries none; read when the configuration loads.
    pub database_password_file: Option<PathBuf>,
    /// The password read from `database_password_file`.
    #[serde(skip)]
    pub database_password: Option<Secret>,
    /// Connection-pool settings (same keys as `medbill_storage::PoolSettings`).
    pub database_pool: DatabasePoolConfig,
    /// Where the other services are reached in split mode.
    pub endpoints: Endpoints,
    /// Bearer tokens and their tenants.
    pub auth: AuthConfig,
    /// Server-side gRPC limits and shutdown behaviour.
    pub grpc: GrpcConfig,
    /// Outbound (service-to-service) client settings.
    pub client: ClientConfig,
    /// Logging and tracing.
    pub telemetry: TelemetryConfig,
    /// Transactional outbox relay.
    pub outbox: OutboxConfig,
    /// The Prometheus `/metrics` listener and the outbox poll (`[metrics]`).
    pub metrics: crate::metrics::MetricsConfig,
    /// TLS and mutual TLS on the gRPC listener (`[tls]`).
    pub tls: crate::tls::TlsConfig,
    /// Per-tenant and per-subject call rates and concurrency per service (`[limits]`).
    pub limits: crate::limits::LimitsConfig,
    /// The audit trail (`[audit]`).
    pub audit: crate::audit::AuditConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50051),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_password_file: None,
            database_password: None,
            database_pool: DatabasePoolConfig::default(),
            endpoints: Endpoints::default(),
            auth: AuthConfig::default(),
            grpc: GrpcConfig::default(),
            client: ClientConfig::default(),
            telemetry: TelemetryConfig::default(),
            outbox: OutboxConfig::default(),
            metrics: crate::metrics::MetricsConfig::default(),
            tls: crate::tls::TlsConfig::default(),
            limits: crate::limits::LimitsConfig::default(),
            audit: crate::audit::AuditConfig::default(),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url_password),
            )
            .field("database_password_file", &self.database_password_file)
            .field("database_pool", &self.database_pool)
            .field("endpoints", &self.endpoints)
            .field("auth", &self.auth)
            .field("grpc", &self.grpc)
            .field("client", &self.client)
            .field("telemetry", &self.telemetry)
            .field("outbox", &self.outbox)
            .field("metrics", &self.metrics)
            .field("tls", &self.tls)
            .field("limits", &self.limits)
            .field("audit", &self.audit)
            .finish()
    }
}

impl Config {
    /// Returns the database URL to connect with: `database_url` when set, else
    /// `sqlite://<data_dir>/medbill.db` (from which storage derives one file per service,
    /// e.g. `medbill-claims.db`).
    /// With `database_password_file`, the password goes into a PostgreSQL URL that has none.
    pub fn effective_database_url(&self) -> String {
        let url = match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("medbill.db").display()),
        };
        match (&self.database_password, url::Url::parse(&url)) {
            (Some(password), Ok(mut parsed))
                if parsed.scheme().starts_with("postgres") && parsed.password().is_none() =>
            {
                // Percent-encoded by `set_password`, so any character may be in the file.
                match parsed.set_password(Some(password.expose())) {
                    Ok(()) => parsed.to_string(),
                    Err(()) => url,
                }
            }
            _ => url,
        }
    }

    /// Returns [`Config::effective_database_url`] with any password replaced by `***`, for
    /// printing at start.
    pub fn database_url_for_display(&self) -> String {
        redact_url_password(&self.effective_database_url())
    }

    /// Returns the URL at which `service` is called: the configured endpoint, or else this
    /// process at `local_addr` (the `--target all` case, and any service not split out).
    pub fn endpoint_for(&self, service: ServiceKind, local_addr: SocketAddr) -> String {
        self.endpoints
            .get(service)
            .map(str::to_owned)
            .unwrap_or_else(|| local_url(local_addr))
    }

    /// Reads the `*_file` secrets (`auth.tokens_file`, `client.token_file`,
    /// `database_password_file`). An error names the key and the file, never what is in it.
    pub fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        fn read(key: &str, path: &Path) -> Result<String, ConfigError> {
            std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
                key: key.to_owned(),
                reason: format!("{}: {e}", path.display()),
            })
        }
        if let Some(path) = &self.auth.tokens_file {
            let text = read("auth.tokens_file", path)?;
            let tokens: BTreeMap<String, String> = toml::from_str(&text).map_err(|e| {
                // The parser's message quotes the file: give only the line.
                let line = e
                    .span()
                    .map(|span| text[..span.start].matches('\n').count() + 1)
                    .unwrap_or(1);
                ConfigError::Invalid {
                    key: "auth.tokens_file".to_owned(),
                    reason: format!(
                        "{}: line {line} is not a \"<token>\" = \"<tenant>\" pair",
                        path.display()
                    ),
                }
            })?;
            for (token, tenant) in tokens {
                if self
                    .auth
                    .tokens
                    .insert(Secret::new(token), tenant)
                    .is_some()
                {
                    return Err(ConfigError::Invalid {
                        key: "auth.tokens_file".to_owned(),
                        reason: format!("{}: a token is also in auth.tokens", path.display()),
                    });
                }
            }
        }
        for (index, entry) in self.auth.static_tokens.iter_mut().enumerate() {
            if let Some(path) = &entry.token_file {
                let key = format!("auth.static_tokens[{index}].token_file");
                if entry.token.is_some() {
                    return Err(ConfigError::Invalid {
                        key,
                        reason: "set token or token_file, not both".to_owned(),
                    });
                }
                entry.token = Some(Secret::new(read(&key, path)?.trim()));
            }
        }
        if let Some(oidc) = &mut self.client.oidc
            && let Some(path) = &oidc.client_secret_file
        {
            if oidc.client_secret.is_some() {
                return Err(ConfigError::Invalid {
                    key: "client.oidc.client_secret_file".to_owned(),
                    reason: "set client.oidc.client_secret or client_secret_file, not both"
                        .to_owned(),
                });
            }
            let secret = read("client.oidc.client_secret_file", path)?;
            oidc.client_secret = Some(Secret::new(secret.trim()));
        }
        if let Some(path) = &self.client.token_file {
            if self.client.token.is_some() {
                return Err(ConfigError::Invalid {
                    key: "client.token_file".to_owned(),
                    reason: "set client.token or client.token_file, not both".to_owned(),
                });
            }
            self.client.token = Some(Secret::new(read("client.token_file", path)?.trim()));
        }
        if let Some(path) = &self.database_password_file {
            let password = read("database_password_file", path)?;
            self.database_password = Some(Secret::new(password.trim_end_matches(['\r', '\n'])));
        }
        Ok(())
    }

    /// Checks values that deserialise but make no sense (zero limits, empty tenants).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                reason: reason.to_owned(),
            })
        };
        for (token, tenant) in &self.auth.tokens {
            if token.expose().trim().is_empty() {
                return invalid("auth.tokens", "a token is empty");
            }
            if token
                .expose()
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
            {
                return invalid(
                    "auth.tokens",
                    "a token contains whitespace or control characters",
                );
            }
            if tenant.trim().is_empty() {
                return invalid("auth.tokens", "a token maps to an empty tenant");
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (index, entry) in self.auth.static_tokens.iter().enumerate() {
            let key = format!("auth.static_tokens[{index}]");
            let Some(token) = &entry.token else {
                return invalid(&key, "needs token or token_file");
            };
            if token.expose().is_empty()
                || token
                    .expose()
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
            {
                return invalid(
                    &format!("{key}.token"),
                    "is empty or contains whitespace or control characters",
                );
            }
            if self.auth.tokens.contains_key(token) || !seen.insert(token.clone()) {
                return invalid(
                    &format!("{key}.token"),
                    "the same token is configured twice",
                );
            }
            if entry.tenant.trim().is_empty() {
                return invalid(&format!("{key}.tenant"), "is required");
            }
            if let Some(scope) = entry.scopes.iter().find(|s| !crate::scopes::is_known(s)) {
                return Err(ConfigError::Invalid {
                    key: format!("{key}.scopes"),
                    reason: format!(
                        "unknown scope `{scope}`; expected some of {}",
                        crate::scopes::ALL.join(", ")
                    ),
                });
            }
        }
        if let Some(oidc) = &self.auth.oidc
            && let Some((key, reason)) = oidc.problem()
        {
            return invalid(key, &reason);
        }
        if let Some(oidc) = &self.client.oidc
            && let Some((key, reason)) = oidc.problem()
        {
            return invalid(key, reason);
        }
        if self.grpc.max_decoding_message_size == 0 {
            return invalid("grpc.max_decoding_message_size", "must be greater than 0");
        }
        if self.grpc.max_encoding_message_size == 0 {
            return invalid("grpc.max_encoding_message_size", "must be greater than 0");
        }
        if self.grpc.max_concurrent_streams == 0 {
            return invalid("grpc.max_concurrent_streams", "must be at least 1");
        }
        if self.grpc.max_header_list_size < 1024 {
            return invalid("grpc.max_header_list_size", "must be at least 1024");
        }
        if self.grpc.request_timeout_ms == 0 {
            return invalid("grpc.request_timeout_ms", "must be greater than 0");
        }
        if self.client.request_timeout_ms == 0 {
            return invalid("client.request_timeout_ms", "must be greater than 0");
        }
        if self.client.connect_timeout_ms == 0 {
            return invalid("client.connect_timeout_ms", "must be greater than 0");
        }
        if self.client.retry.max_attempts == 0 {
            return invalid("client.retry.max_attempts", "must be at least 1");
        }
        if self.outbox.poll_interval_ms == 0 {
            return invalid("outbox.poll_interval_ms", "must be greater than 0");
        }
        if self.outbox.batch_size == 0 {
            return invalid("outbox.batch_size", "must be greater than 0");
        }
        if self.outbox.max_attempts == 0 {
            return invalid("outbox.max_attempts", "must be at least 1");
        }
        if self.database_pool.max_connections == 0 {
            return invalid("database_pool.max_connections", "must be at least 1");
        }
        if self.database_pool.sqlite_max_connections == 0 {
            return invalid("database_pool.sqlite_max_connections", "must be at least 1");
        }
        if let Some((key, reason)) = self.tls.problem() {
            return invalid(key, reason);
        }
        if self.client.tls.cert_file.is_some() != self.client.tls.key_file.is_some() {
            return invalid(
                "client.tls.cert_file",
                "client.tls.cert_file and client.tls.key_file go together",
            );
        }
        for service in ServiceKind::ALL {
            if let Some(url) = self.endpoints.get(service)
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(ConfigError::Invalid {
                    key: format!("endpoints.{service}"),
                    reason: "must start with http:// or https://".to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// Returns `http://addr`, replacing an unspecified address (0.0.0.0, ::) with loopback so the
/// URL is dialable.
pub fn local_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// Hides the password of `scheme://user:password@host/...` URLs.
fn redact_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_owned(),
    }
}

/// Holds the per-service URLs used in split mode; an unset one means "this process".
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Endpoints {
    /// URL of the eligibility service, e.g. `http://eligibility:50051`.
    pub eligibility: Option<String>,
    /// URL of the claims service.
    pub claims: Option<String>,
    /// URL of the remittance service.
    pub remittance: Option<String>,
    /// URL of the collections service.
    pub collections: Option<String>,
}

impl Endpoints {
    /// Returns the configured URL of `service`, if any.
    pub fn get(&self, service: ServiceKind) -> Option<&str> {
        match service {
            ServiceKind::Eligibility => self.eligibility.as_deref(),
            ServiceKind::Claims => self.claims.as_deref(),
            ServiceKind::Remittance => self.remittance.as_deref(),
            ServiceKind::Collections => self.collections.as_deref(),
        }
    }
}

/// Holds how callers are authenticated: static bearer tokens and/or JWTs from an identity
/// provider. Nothing configured means dev mode: every caller without a token is the tenant
/// [`DEFAULT_TENANT`] with every scope.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Token -> tenant id (the original form: such a token carries every scope).
    pub tokens: BTreeMap<Secret, String>,
    /// A file of more tokens, `"<token>" = "<tenant>"` lines as under `[auth.tokens]` (a mounted
    /// Secret); read when the configuration loads and added to `tokens`.
    pub tokens_file: Option<PathBuf>,
    /// Static tokens with their scopes (`[[auth.static_tokens]]`).
    pub static_tokens: Vec<StaticToken>,
    /// JWT access tokens from an OIDC / OAuth 2.0 identity provider (`[auth.oidc]`).
    pub oidc: Option<crate::oidc::OidcConfig>,
}

/// One `[[auth.static_tokens]]` entry: a token, its tenant and exactly the scopes it carries.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StaticToken {
    /// The token (prefer `token_file`).
    pub token: Option<Secret>,
    /// A file holding the token (a mounted Secret), read when the configuration loads.
    pub token_file: Option<PathBuf>,
    /// The tenant it acts for.
    pub tenant: String,
    /// The scopes it carries (see `medbill_runtime::scopes`).
    pub scopes: Vec<String>,
    /// The subject it is recorded as; unset: `token:<digest prefix>`.
    pub subject: Option<String>,
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticToken")
            .field("token_file", &self.token_file)
            .field("tenant", &self.tenant)
            .field("scopes", &self.scopes)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// Reports whether no authentication is configured (dev mode).
    pub fn is_dev_mode(&self) -> bool {
        self.tokens.is_empty() && self.static_tokens.is_empty() && self.oidc.is_none()
    }

    /// Returns a static token that authenticates as `tenant`, for calls made on a tenant's
    /// behalf without an inbound request (e.g. the outbox relay): from `auth.tokens` the
    /// smallest such token (a stable choice), else the first `[[auth.static_tokens]]` entry.
    pub fn token_for_tenant(&self, tenant: &str) -> Option<&Secret> {
        self.tokens
            .iter()
            .find(|(_, t)| t.as_str() == tenant)
            .map(|(token, _)| token)
            .or_else(|| {
                self.static_tokens
                    .iter()
                    .find(|s| s.tenant == tenant)
                    .and_then(|s| s.token.as_ref())
            })
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenants: std::collections::BTreeSet<&str> =
            self.tokens.values().map(String::as_str).collect();
        f.debug_struct("AuthConfig")
            .field("token_count", &self.tokens.len())
            .field("tenants", &tenants)
            .field("static_tokens", &self.static_tokens)
            .field("oidc", &self.oidc)
            .finish()
    }
}

/// Holds server-side gRPC limits, the default deadline and shutdown timing.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConfig {
    /// Largest request message a service decodes, in bytes (larger: OUT_OF_RANGE, as tonic answers).
    pub max_decoding_message_size: usize,
    /// Largest response message a service encodes, in bytes.
    pub max_encoding_message_size: usize,
    /// Deadline applied to calls that carry no `grpc-timeout` (a shorter client deadline wins).
    pub request_timeout_ms: u64,
    /// After a shutdown signal: how long health reports NOT_SERVING before the listener closes
    /// (lets load balancers stop routing here first).
    pub shutdown_grace_ms: u64,
    /// Longest wait for in-flight calls to finish after the listener closes.
    pub drain_timeout_ms: u64,
    /// Calls one HTTP/2 connection may have open at once (the SETTINGS the client must obey).
    pub max_concurrent_streams: u32,
    /// Largest header block (metadata) a request may carry, in bytes.
    pub max_header_list_size: u32,
    /// Streams a client may open and reset before the server has accepted them; beyond it the
    /// connection is closed (HTTP/2 "rapid reset").
    pub max_pending_reset_streams: usize,
    /// How often an idle connection is pinged; 0 = never.
    pub keepalive_interval_ms: u64,
    /// A connection whose client does not answer a ping within this is closed.
    pub keepalive_timeout_ms: u64,
    /// Connections are closed gracefully after this long, so clients reconnect and spread over
    /// new replicas; 0 = never.
    pub max_connection_age_secs: u64,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            max_decoding_message_size: 16 * 1024 * 1024,
            max_encoding_message_size: 16 * 1024 * 1024,
            request_timeout_ms: 30_000,
            shutdown_grace_ms: 0,
            drain_timeout_ms: 30_000,
            max_concurrent_streams: 256,
            max_header_list_size: 16 * 1024,
            max_pending_reset_streams: 20,
            keepalive_interval_ms: 60_000,
            keepalive_timeout_ms: 20_000,
            max_connection_age_secs: 0,
        }
    }
}

impl GrpcConfig {
    /// Returns the default request deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Holds outbound client settings for service-to-service calls.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// TCP/HTTP2 connect timeout.
    pub connect_timeout_ms: u64,
    /// Per-call deadline when the caller sets none (sent as `grpc-timeout`).
    pub request_timeout_ms: u64,
    /// Token sent on calls that carry no `authorization` of their own.
    pub token: Option<Secret>,
    /// A file holding `token` (a mounted Secret), read when the configuration loads.
    pub token_file: Option<PathBuf>,
    /// Retry policy for idempotent calls.
    pub retry: RetryPolicy,
    /// What `https://` endpoints are trusted with and shown (`[client.tls]`).
    pub tls: crate::tls::ClientTlsFiles,
    /// The service's own OAuth client-credentials grant (`[client.oidc]`), for calls made
    /// without an inbound request.
    pub oidc: Option<crate::credentials::ClientCredentialsConfig>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 5_000,
            request_timeout_ms: 10_000,
            token: None,
            token_file: None,
            retry: RetryPolicy::default(),
            tls: crate::tls::ClientTlsFiles::default(),
            oidc: None,
        }
    }
}

/// Holds retry settings for idempotent calls (see [`crate::client::retry_idempotent`]).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retry).
    pub max_attempts: u32,
    /// Backoff cap before the first retry; doubles each retry (full jitter below the cap).
    pub initial_backoff_ms: u64,
    /// Upper bound of any single backoff.
    pub max_backoff_ms: u64,
    /// Also retry DEADLINE_EXCEEDED (only sensible for reads).
    pub retry_deadline_exceeded: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff_ms: 50,
            max_backoff_ms: 2_000,
            retry_deadline_exceeded: false,
        }
    }
}

/// Selects the log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable multi-line output (default, for development).
    #[default]
    Pretty,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Holds logging and tracing settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `service.name` resource attribute of exported spans.
    pub service_name: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// `EnvFilter` directives; `RUST_LOG`, when set, wins.
    pub filter: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            service_name: "medbill".to_owned(),
            log_format: LogFormat::Pretty,
            // The OpenTelemetry SDK logs routine lifecycle messages at INFO.
            filter: "info,opentelemetry=warn,opentelemetry_sdk=warn".to_owned(),
        }
    }
}

/// Relay settings of the transactional outbox: the storage crate's own type, so keys and
/// defaults have one source.
pub type OutboxConfig = medbill_storage::outbox::RelayConfig;

/// Connection-pool settings: the storage crate's own type, so keys and defaults have one source.
pub type DatabasePoolConfig = medbill_storage::PoolSettings;

/// Holds the few values command-line flags may override (highest precedence).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ConfigOverrides {
    /// `--listen`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--data-dir`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--database-url`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// `--log-format`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

/// Serialises flag overrides into figment's nested shape.
#[derive(Serialize)]
struct OverrideLayer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    telemetry: Option<TelemetryOverride>,
}

#[derive(Serialize)]
struct TelemetryOverride {
    log_format: LogFormat,
}

/// Reports a configuration that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named config file does not exist.
    #[error("config file {path} does not exist")]
    FileNotFound {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// A value has the wrong type, or a key is unknown. The text names each key as the user
    /// wrote it (`grpc.request_timeout_ms` in a file, `MEDBILL_GRPC__REQUEST_TIMEOUT_MS` in the
    /// environment) and where it came from.
    #[error("invalid configuration: {0}")]
    Rejected(String),
    /// A value deserialised but is out of range.
    #[error("invalid configuration key {key}: {reason}")]
    Invalid {
        /// Dotted key path.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigError {
    /// Describes a figment error against the figment it came from (see [`ConfigError::Rejected`]).
    fn from_figment(figment: &Figment, error: figment::Error) -> Self {
        let lines: Vec<String> = error
            .into_iter()
            .map(|e| describe_figment_error(figment, &e))
            .collect();
        ConfigError::Rejected(lines.join("; "))
    }
}

/// Returns the top-level keys of [`Config`] (the runtime's own keys), read from its
/// `Deserialize` implementation so the list cannot drift from the struct.
pub fn runtime_keys() -> &'static [&'static str] {
    static KEYS: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let mut fields: &'static [&'static str] = &[];
        let _ = Config::deserialize(FieldsProbe(&mut fields));
        fields
    })
}

/// A deserializer that only records the field names a derived `Deserialize` asks for.
struct FieldsProbe<'a>(&'a mut &'static [&'static str]);

impl<'de> serde::Deserializer<'de> for FieldsProbe<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// Whether the first key segment of a `MEDBILL_*` variable (`outbox` of
/// `MEDBILL_OUTBOX__OWNER`) is a key the runtime or one of `sections` claims: the loader reads
/// only those variables and ignores the rest.
pub fn is_claimed_segment(first: &str, sections: &[impl AsRef<str>]) -> bool {
    runtime_keys().iter().any(|k| k.eq_ignore_ascii_case(first))
        || sections
            .iter()
            .any(|k| k.as_ref().eq_ignore_ascii_case(first))
}

/// Builds the layered figment (defaults are supplied by `#[serde(default)]`): TOML file, then
/// environment, then flag overrides. `config_file` is the `--config` flag; without it
/// `MEDBILL_CONFIG` is consulted. `sections` names the services' top-level keys, so that their
/// environment variables are read too.
pub fn figment(
    config_file: Option<&Path>,
    overrides: &ConfigOverrides,
    sections: &[&str],
) -> Result<Figment, ConfigError> {
    let mut figment = Figment::new();
    let file = config_file
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(CONFIG_FILE_ENV).map(PathBuf::from));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::FileNotFound { path });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    let sections: Vec<String> = sections.iter().map(|s| (*s).to_owned()).collect();
    let env = Env::prefixed(ENV_PREFIX).split("__").filter(move |key| {
        is_claimed_segment(
            key.as_str().split('.').next().unwrap_or_default(),
            &sections,
        )
    });
    figment = figment.merge(env);
    let layer = OverrideLayer {
        listen: overrides.listen,
        data_dir: overrides.data_dir.as_deref(),
        database_url: overrides.database_url.as_deref(),
        telemetry: overrides
            .log_format
            .map(|log_format| TelemetryOverride { log_format }),
    };
    Ok(figment.merge(Serialized::defaults(layer)))
}

/// Loads and validates the configuration (see the module docs for the layering).
///
/// `sections` are the top-level keys the services claim (`eligibility`, `payers`, ...): a
/// top-level key that is neither one of them nor a [`runtime_keys`] key is an error. The
/// sections themselves are checked by their owners ([`LoadedConfig::section`]).
pub fn load(
    config_file: Option<&Path>,
    overrides: &ConfigOverrides,
    sections: &[&str],
) -> Result<LoadedConfig, ConfigError> {
    let figment = figment(config_file, overrides, sections)?;
    let loaded = LoadedConfig::from_figment(figment)?;
    loaded.check_top_level_keys(sections)?;
    Ok(loaded)
}

/// The loaded configuration: the shared runtime keys ([`Config`]) and the layered sources the
/// services extract their own sections from ([`LoadedConfig::section`]).
#[derive(Clone)]
pub struct LoadedConfig {
    config: Config,
    figment: Figment,
}

impl fmt::Debug for LoadedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The figment holds raw values (tokens among them): never print it.
        f.debug_struct("LoadedConfig")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for LoadedConfig {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl LoadedConfig {
    /// Wraps a configuration built in code, with no file or environment behind it: every service
    /// section has its defaults until [`LoadedConfig::with_value`] sets one (tests, tools).
    pub fn new(config: Config) -> Self {
        Self {
            config,
            figment: Figment::new(),
        }
    }

    /// Extracts and validates the runtime keys of `figment`.
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError::from_figment(&figment, e))?;
        config.read_secret_files()?;
        config.validate()?;
        Ok(Self { config, figment })
    }

    /// Returns the shared runtime configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Returns the shared runtime configuration for changes made in code (tests, tools).
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// Sets the service-section value at the dotted `key` (e.g. `payer_sim.listen`) above every
    /// other source. Runtime keys are changed through [`LoadedConfig::config_mut`] instead.
    pub fn with_value(mut self, key: &str, value: impl Serialize) -> Self {
        self.figment = self.figment.merge(Serialized::default(key, value));
        self
    }

    /// Reports whether `key` (dotted path) is set by any source.
    pub fn contains(&self, key: &str) -> bool {
        self.figment.contains(key)
    }

    /// Extracts the section at top-level key `key` as `T`; a section no source sets is
    /// `T::default()`. `T` should be `#[serde(deny_unknown_fields)]` so typos inside the section
    /// are rejected; errors name the key as the user wrote it.
    pub fn section<T: DeserializeOwned + Default>(&self, key: &str) -> Result<T, ConfigError> {
        if !self.figment.contains(key) {
            return Ok(T::default());
        }
        self.figment.extract_inner::<T>(key).map_err(|error| {
            // figment appends the section key to the error's path; put it first again.
            let segments: Vec<String> = key.split('.').map(str::to_owned).collect();
            let lines: Vec<String> = error
                .into_iter()
                .map(|mut e| {
                    if e.path.ends_with(&segments) {
                        e.path.rotate_right(segments.len());
                    }
                    describe_figment_error(&self.figment, &e)
                })
                .collect();
            ConfigError::Rejected(lines.join("; "))
        })
    }

    /// Rejects top-level keys that are neither runtime keys nor one of `sections`.
    pub fn check_top_level_keys(&self, sections: &[&str]) -> Result<(), ConfigError> {
        let top: BTreeMap<String, figment::value::Value> = self
            .figment
            .extract()
            .map_err(|e| ConfigError::from_figment(&self.figment, e))?;
        let mut unknown = Vec::new();
        for key in top.keys() {
            let claimed = runtime_keys().iter().chain(sections).any(|k| k == key);
            if !claimed {
                let origin = self
                    .figment
                    .find_metadata(key)
                    .map(|md| origin_of(md, std::slice::from_ref(key)))
                    .unwrap_or_else(|| key.clone());
                unknown.push(origin);
            }
        }
        if unknown.is_empty() {
            return Ok(());
        }
        let mut expected: Vec<&str> = runtime_keys().iter().chain(sections).copied().collect();
        expected.sort_unstable();
        expected.dedup();
        Err(ConfigError::Rejected(
            unknown
                .into_iter()
                .map(|key| {
                    format!(
                        "{key}: unknown key; expected one of {}",
                        expected.join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        ))
    }
}

/// Describes one figment error as `KEY (in SOURCE): REASON`, naming the key as the user wrote it
/// (figment's own text prefixes file keys with the profile, `default.`).
fn describe_figment_error(figment: &Figment, error: &figment::Error) -> String {
    use figment::error::Kind;
    let mut path = error.path.clone();
    let reason = match &error.kind {
        Kind::UnknownField(field, expected) => {
            if path.last() != Some(field) {
                path.push(field.clone());
            }
            format!("unknown key; expected {}", one_of(expected))
        }
        Kind::UnknownVariant(found, expected) => {
            format!("unknown value `{found}`; expected {}", one_of(expected))
        }
        Kind::MissingField(field) => {
            if path.last().map(String::as_str) != Some(field.as_ref()) {
                path.push(field.to_string());
            }
            "is required".to_owned()
        }
        other => other.to_string(),
    };
    let metadata = error.metadata.as_ref().or_else(|| {
        (1..=path.len())
            .rev()
            .find_map(|n| figment.find_metadata(&path[..n].join(".")))
    });
    let key = match metadata {
        Some(md) => origin_of(md, &path),
        None if path.is_empty() => "configuration".to_owned(),
        None => dotted(&path),
    };
    format!("{key}: {reason}")
}

/// Names the key at `path` as its source spells it: `MEDBILL_A__B` for an environment variable,
/// `a.b (in FILE)` for a file, `a.b` otherwise; array elements as `a[0].b`.
fn origin_of(md: &figment::Metadata, path: &[String]) -> String {
    let is_index = |s: &String| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if md.name.contains("environment variable") {
        // The variable is named down to the first array index; below it the value is inline TOML.
        let split = path.iter().position(is_index).unwrap_or(path.len());
        let name = path[..split]
            .iter()
            .map(|s| s.to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join("__");
        return format!("{ENV_PREFIX}{name}{}", dotted(&path[split..]));
    }
    let key = if path.is_empty() {
        "configuration".to_owned()
    } else {
        dotted(path)
    };
    match &md.source {
        Some(figment::Source::File(file)) => format!("{key} (in {})", file.display()),
        _ => key,
    }
}

/// Joins key segments with dots, array indexes as `[n]`: `payers[0].sender_id`.
fn dotted(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(segment);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}

/// Formats serde's expected names: `` `a`, `b` or `c` ``.
fn one_of(names: &[&str]) -> String {
    match names {
        [] => "nothing".to_owned(),
        [one] => format!("`{one}`"),
        [init @ .., last] => format!(
            "{} or `{last}`",
            init.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
// figment's Jail fixes the closures' error type to figment::Error, which is large.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    /// Sections a test pretends services claim.
    const SECTIONS: &[&str] = &["widgets", "gadgets"];

    fn load_in_jail(
        file: Option<&str>,
        overrides: &ConfigOverrides,
    ) -> Result<Config, ConfigError> {
        load_sources(file, overrides).map(|loaded| loaded.config().clone())
    }

    fn load_sources(
        file: Option<&str>,
        overrides: &ConfigOverrides,
    ) -> Result<LoadedConfig, ConfigError> {
        load(file.map(Path::new), overrides, SECTIONS)
    }

    /// A service's section as a service crate would declare it.
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Widgets {
        ttl_secs: u64,
        max_entries: usize,
        owner: Option<Owner>,
        per_tenant: BTreeMap<String, Owner>,
    }

    impl Default for Widgets {
        fn default() -> Self {
            Self {
                ttl_secs: 60,
                max_entries: 10,
                owner: None,
                per_tenant: BTreeMap::new(),
            }
        }
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Owner {
        name: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Gadget {
        id: String,
        #[serde(default)]
        weight: u32,
    }

    #[test]
    fn defaults_apply_without_file_env_or_flags() {
        Jail::expect_with(|_jail| {
            let config =
                load_in_jail(None, &ConfigOverrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(
                config.listen,
                "127.0.0.1:50051".parse::<SocketAddr>().unwrap()
            );
            assert_eq!(config.data_dir, PathBuf::from("./data"));
            assert_eq!(config.database_url, None);
            assert_eq!(
                config.effective_database_url(),
                "sqlite://./data/medbill.db"
            );
            assert_eq!(config.database_pool, DatabasePoolConfig::default());
            assert!(config.auth.is_dev_mode());
            assert_eq!(config.grpc.max_decoding_message_size, 16 * 1024 * 1024);
            assert_eq!(config.grpc.request_timeout(), Duration::from_secs(30));
            assert_eq!(config.telemetry.log_format, LogFormat::Pretty);
            assert_eq!(config.outbox.poll_interval_ms, 1_000);
            Ok(())
        });
    }

    #[test]
    fn secrets_come_from_mounted_files_and_errors_never_quote_them() {
        Jail::expect_with(|jail| {
            jail.create_file("tokens", "\"tok-file\" = \"clinic-b\"\n")?;
            jail.create_file("client-token", "svc-token-1\n")?;
            jail.create_file("db-password", "p@ss:w/rd\n")?;
            jail.create_file(
                "medbill.toml",
                r#"
                database_url = "postgres://claims@db:5432/medbill?sslmode=verify-full"
                database_password_file = "db-password"
                [auth]
                tokens = { "tok-inline" = "clinic-a" }
                tokens_file = "tokens"
                [client]
                token_file = "client-token"
                "#,
            )?;
            let config = load_in_jail(Some("medbill.toml"), &ConfigOverrides::default())
                .map_err(|e| e.to_string())?;
            let tenants: Vec<(&str, &str)> = config
                .auth
                .tokens
                .iter()
                .map(|(t, tenant)| (t.expose(), tenant.as_str()))
                .collect();
            assert_eq!(
                tenants,
                [("tok-file", "clinic-b"), ("tok-inline", "clinic-a")]
            );
            assert_eq!(
                config.client.token.as_ref().map(Secret::expose),
                Some("svc-token-1")
            );
            // The password goes in percent-encoded; what is printed hides it.
            assert_eq!(
                config.effective_database_url(),
                "postgres://claims:p%40ss%3Aw%2Frd@db:5432/medbill?sslmode=verify-full"
            );
            assert!(!config.database_url_for_display().contains("ss%3A"));
            assert!(!format!("{config:?}").contains("p@ss"));

            // A malformed tokens file: the error says where, not what.
            jail.create_file("tokens", "\"tok-secret-123\" = clinic-b\n")?;
            let err = load_in_jail(Some("medbill.toml"), &ConfigOverrides::default())
                .expect_err("a malformed tokens file")
                .to_string();
            assert!(
                err.contains("auth.tokens_file") && err.contains("line 1"),
                "{err}"
            );
            assert!(
                !err.contains("tok-secret-123") && !err.contains("clinic-b"),
                "{err}"
            );

            // A missing file names the key and the path.
            jail.create_file("tokens", "")?;
            std::fs::remove_file("client-token").map_err(|e| e.to_string())?;
            let err = load_in_jail(Some("medbill.toml"), &ConfigOverrides::default())
                .expect_err("a missing token file")
                .to_string();
            assert!(
                err.contains("client.token_file") && err.contains("client-token"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn file_overrides_defaults_env_overrides_file_flags_override_env() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "medbill.toml",
                r#"
                listen = "127.0.0.1:6000"
                data_dir = "/srv/file"
                database_url = "sqlite:///srv/file/x.db"
                [grpc]
                request_timeout_ms = 1111
                max_decoding_message_size = 2048
                [telemetry]
                log_format = "json"
                service_name = "from-file"
                [endpoints]
                claims = "http://claims:50051"
                "#,
            )?;
            // The file alone beats the defaults.
            let from_file = load_in_jail(Some("medbill.toml"), &ConfigOverrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(from_file.listen.port(), 6000);
            assert_eq!(from_file.grpc.request_timeout_ms, 1111);
            assert_eq!(from_file.grpc.max_decoding_message_size, 2048);
            // Untouched keys of a section the file mentions keep their defaults.
            assert_eq!(from_file.grpc.drain_timeout_ms, 30_000);
            assert_eq!(from_file.telemetry.service_name, "from-file");

            // Env beats the file.
            jail.set_env("MEDBILL_LISTEN", "127.0.0.1:7000");
            jail.set_env("MEDBILL_GRPC__REQUEST_TIMEOUT_MS", "2222");
            jail.set_env("MEDBILL_DATABASE_URL", "postgres://env/db");
            jail.set_env("MEDBILL_TELEMETRY__LOG_FORMAT", "pretty");
            let from_env = load_in_jail(Some("medbill.toml"), &ConfigOverrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(from_env.listen.port(), 7000);
            assert_eq!(from_env.grpc.request_timeout_ms, 2222);
            assert_eq!(
                from_env.grpc.max_decoding_message_size, 2048,
                "file value kept"
            );
            assert_eq!(from_env.database_url.as_deref(), Some("postgres://env/db"));
            assert_eq!(from_env.telemetry.log_format, LogFormat::Pretty);
            assert_eq!(
                from_env.endpoints.claims.as_deref(),
                Some("http://claims:50051")
            );

            // Flags beat env.
            let flags = ConfigOverrides {
                listen: Some("127.0.0.1:8000".parse().unwrap()),
                data_dir: Some(PathBuf::from("/srv/flag")),
                database_url: Some("sqlite:///srv/flag/y.db".to_owned()),
                log_format: Some(LogFormat::Json),
            };
            let from_flags =
                load_in_jail(Some("medbill.toml"), &flags).map_err(|e| e.to_string())?;
            assert_eq!(from_flags.listen.port(), 8000);
            assert_eq!(from_flags.data_dir, PathBuf::from("/srv/flag"));
            assert_eq!(
                from_flags.database_url.as_deref(),
                Some("sqlite:///srv/flag/y.db")
            );
            assert_eq!(from_flags.telemetry.log_format, LogFormat::Json);
            // Flags that are not given leave env values alone.
            assert_eq!(from_flags.grpc.request_timeout_ms, 2222);
            Ok(())
        });
    }

    #[test]
    fn pool_and_outbox_sections_layer_like_the_rest() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "medbill.toml",
                "[outbox]\nbatch_size = 7\nlease_ms = 1234\n[database_pool]\nmax_connections = 20\n",
            )?;
            jail.set_env("MEDBILL_DATABASE_POOL__MAX_CONNECTIONS", "3");
            jail.set_env("MEDBILL_OUTBOX__POLL_INTERVAL_MS", "250");
            let config = load_in_jail(Some("medbill.toml"), &ConfigOverrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(config.database_pool.max_connections, 3);
            assert_eq!(config.database_pool.sqlite_max_connections, 4);
            assert_eq!(config.outbox.batch_size, 7);
            assert_eq!(config.outbox.lease_ms, 1234);
            assert_eq!(config.outbox.poll_interval_ms, 250);
            assert_eq!(config.outbox.max_attempts, 20);
            Ok(())
        });
    }

    #[test]
    fn service_sections_layer_like_the_rest_and_reject_typos() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "medbill.toml",
                r#"
                [widgets]
                ttl_secs = 30
                [widgets.owner]
                name = "default"
                [widgets.per_tenant.clinic-a]
                name = "a"
                [[gadgets]]
                id = "g1"
                [[gadgets]]
                id = "g2"
                weight = 7
                "#,
            )?;
            jail.set_env("MEDBILL_WIDGETS__TTL_SECS", "5");
            let loaded = load_sources(Some("medbill.toml"), &ConfigOverrides::default())
                .map_err(|e| e.to_string())?;
            let widgets: Widgets = loaded.section("widgets").map_err(|e| e.to_string())?;
            assert_eq!(widgets.ttl_secs, 5, "env beats the file");
            assert_eq!(widgets.max_entries, 10, "untouched key keeps its default");
            assert_eq!(
                widgets.owner.as_ref().map(|o| o.name.as_str()),
                Some("default")
            );
            assert_eq!(
                widgets.per_tenant.get("clinic-a").map(|o| o.name.as_str()),
                Some("a")
            );
            let gadgets: Vec<Gadget> = loaded.section("gadgets").map_err(|e| e.to_string())?;
            assert_eq!(gadgets.len(), 2);
            assert_eq!((gadgets[1].id.as_str(), gadgets[1].weight), ("g2", 7));

            // A typo inside a section names the whole key and the file, without figment's profile.
            jail.create_file("typo.toml", "[widgets]\nttl_sces = 1\n")?;
            let loaded = load_sources(Some("typo.toml"), &ConfigOverrides::default())
                .map_err(|e| e.to_string())?;
            let err = loaded.section::<Widgets>("widgets").expect_err("typo");
            let text = err.to_string();
            assert!(text.contains("widgets.ttl_sces (in "), "{text}");
            assert!(text.contains("typo.toml"), "{text}");
            assert!(!text.contains("default."), "{text}");

            // A bad value from the environment names the variable.
            jail.set_env("MEDBILL_WIDGETS__MAX_ENTRIES", "many");
            let loaded =
                load_sources(None, &ConfigOverrides::default()).map_err(|e| e.to_string())?;
            let text = loaded
                .section::<Widgets>("widgets")
                .expect_err("not a number")
                .to_string();
            assert!(text.contains("MEDBILL_WIDGETS__MAX_ENTRIES"), "{text}");
            Ok(())
        });
        Jail::expect_with(|_jail| {
            let loaded =
                load_sources(None, &ConfigOverrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(
                loaded
                    .section::<Widgets>("widgets")
                    .map_err(|e| e.to_string())?,
                Widgets::default()
            );
            assert!(
                loaded
                    .section::<Vec<Gadget>>("gadgets")
                    .map_err(|e| e.to_string())?
                    .is_empty()
            );
            Ok(())
        });
    }

    #[test]
    fn top_level_keys_must_be_claimed_by_the_runtime_or_a_section() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "medbill.toml",
                "listen = \"127.0.0.1:1\"\n[widgetz]\nttl_secs = 1\n",
            )?;
            let err = load_sources(Some("medbill.toml"), &ConfigOverrides::default())
                .expect_err("unclaimed section");
            let text = err.to_string();
            assert!(text.contains("widgetz (in "), "{text}");
            assert!(text.contains("unknown key"), "{text}");
            assert!(
                text.contains("widgets"),
                "the expected keys are listed: {text}"
            );

            // The same file is fine when a service claims the section.
            load(
                Some(Path::new("medbill.toml")),
                &ConfigOverrides::default(),
                &["widgetz"],
            )
            .map_err(|e| e.to_string())?;

            // Environment variables of claimed sections are read; others are ignored.
            jail.set_env("MEDBILL_GADGETS", r#"[{id="from-env"}]"#);
            jail.set_env("MEDBILL_UNRELATED__THING", "1");
            let loaded =
                load_sources(None, &ConfigOverrides::default()).map_err(|e| e.to_string())?;
            let gadgets: Vec<Gadget> = loaded.section("gadgets").map_err(|e| e.to_string())?;
            assert_eq!(gadgets[0].id, "from-env");
            Ok(())
        });
    }

    #[test]
    fn runtime_keys_are_the_config_fields() {
        let keys = runtime_keys();
        for key in [
            "listen",
            "data_dir",
            "database_url",
            "database_pool",
            "endpoints",
            "auth",
            "grpc",
            "client",
            "telemetry",
            "outbox",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        assert!(
            !keys.contains(&"eligibility"),
            "service sections are not runtime keys"
        );
    }

    #[test]
    fn errors_name_the_key_once_as_written() {
        Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "[grpc]\nrequest_timout_ms = 5\n")?;
            let text = load_in_jail(Some("typo.toml"), &ConfigOverrides::default())
                .expect_err("typo")
                .to_string();
            assert!(text.contains("grpc.request_timout_ms (in "), "{text}");
            assert!(text.contains("unknown key; expected"), "{text}");
            assert!(!text.contains("default."), "{text}");
            assert_eq!(text.matches("request_timout_ms").count(), 1, "{text}");

            jail.create_file("type.toml", "[grpc]\nrequest_timeout_ms = \"soon\"\n")?;
            let text = load_in_jail(Some("type.toml"), &ConfigOverrides::default())
                .expect_err("a string")
                .to_string();
            assert!(text.contains("grpc.request_timeout_ms (in "), "{text}");
            assert!(!text.contains("default."), "{text}");

            jail.set_env("MEDBILL_GRPC__REQUEST_TIMEOUT_MS", "soon");
            let text = load_in_jail(None, &ConfigOverrides::default())
                .expect_err("a string")
                .to_string();
            assert!(
                text.contains("MEDBILL_GRPC__REQUEST_TIMEOUT_MS: invalid type"),
                "{text}"
            );
            Ok(())
        });
        Jail::expect_with(|jail| {
            // Array elements read as they are written: by index in a file, inline in a variable.
            jail.create_file(
                "arr.toml",
                "[[gadgets]]\nid = \"g1\"\n[[gadgets]]\nweight = 1\n",
            )?;
            let loaded = load_sources(Some("arr.toml"), &ConfigOverrides::default())
                .map_err(|e| e.to_string())?;
            let text = loaded
                .section::<Vec<Gadget>>("gadgets")
                .expect_err("no id")
                .to_string();
            assert!(text.contains("gadgets[1].id (in "), "{text}");
            assert!(text.contains("is required"), "{text}");
            jail.set_env("MEDBILL_GADGETS", "[{weight=1}]");
            let loaded =
                load_sources(None, &ConfigOverrides::default()).map_err(|e| e.to_string())?;
            let text = loaded
                .section::<Vec<Gadget>>("gadgets")
                .expect_err("no id")
                .to_string();
            assert!(
                text.contains("MEDBILL_GADGETS[0].id: is required"),
                "{text}"
            );
            Ok(())
        });
    }

    #[test]
    fn database_url_for_display_hides_the_password() {
        let config = Config {
            database_url: Some("postgres://medbill:pw@db/medbill".to_owned()),
            ..Config::default()
        };
        assert_eq!(
            config.effective_database_url(),
            "postgres://medbill:pw@db/medbill"
        );
        assert_eq!(
            config.database_url_for_display(),
            "postgres://medbill:***@db/medbill"
        );
    }

    #[test]
    fn config_file_is_found_through_env_var() {
        Jail::expect_with(|jail| {
            jail.create_file("other.toml", "data_dir = \"/from/env/file\"")?;
            jail.set_env("MEDBILL_CONFIG", "other.toml");
            let config =
                load_in_jail(None, &ConfigOverrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.data_dir, PathBuf::from("/from/env/file"));
            Ok(())
        });
    }

    #[test]
    fn tokens_come_from_file_or_inline_env_map() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "medbill.toml",
                r#"
                [auth.tokens]
                "file-token" = "clinic-file"
                "#,
            )?;
            let config = load_in_jail(Some("medbill.toml"), &ConfigOverrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(
                config
                    .auth
                    .tokens
                    .get(&Secret::new("file-token"))
                    .map(String::as_str),
                Some("clinic-file")
            );
            assert!(!config.auth.is_dev_mode());

            jail.set_env(
                "MEDBILL_AUTH__TOKENS",
                r#"{"Tok-A"="clinic-a","tok-b"="clinic-b"}"#,
            );
            let config = load_in_jail(Some("medbill.toml"), &ConfigOverrides::default())
                .map_err(|e| e.to_string())?;
            // The env map replaces nothing it does not name; token case is preserved.
            assert_eq!(
                config
                    .auth
                    .tokens
                    .get(&Secret::new("Tok-A"))
                    .map(String::as_str),
                Some("clinic-a")
            );
            assert_eq!(
                config.auth.token_for_tenant("clinic-b").map(Secret::expose),
                Some("tok-b")
            );
            Ok(())
        });
    }

    #[test]
    fn static_tokens_oidc_and_client_credentials_load_and_are_checked() {
        Jail::expect_with(|jail| {
            jail.create_file("desk-token", "desk-s3cret\n")?;
            jail.create_file("client-secret", "cc-s3cret\n")?;
            jail.create_file(
                "medbill.toml",
                r#"
                [[auth.static_tokens]]
                token_file = "desk-token"
                tenant = "clinic-a"
                scopes = ["collections.read", "collections.payments"]
                subject = "front-desk"

                [auth.oidc]
                issuer = "https://idp.example"
                audience = ["medbill", "medbill-api"]
                jwks_url = "https://idp.example/jwks"

                [client.oidc]
                token_url = "https://idp.example/token"
                client_id = "relay"
                client_secret_file = "client-secret"
                tenant = "clinic-a"
                "#,
            )?;
            let config = load_in_jail(Some("medbill.toml"), &ConfigOverrides::default())
                .map_err(|e| e.to_string())?;
            assert!(!config.auth.is_dev_mode());
            assert_eq!(
                config.auth.token_for_tenant("clinic-a").map(Secret::expose),
                Some("desk-s3cret")
            );
            let oidc = config.auth.oidc.as_ref().expect("oidc");
            assert_eq!(oidc.audience, ["medbill", "medbill-api"]);
            assert_eq!((oidc.leeway_secs, oidc.jwks_min_refetch_secs), (60, 30));
            let client = config.client.oidc.as_ref().expect("client.oidc");
            assert_eq!(
                client.client_secret.as_ref().map(Secret::expose),
                Some("cc-s3cret")
            );
            let debug = format!("{config:?}");
            assert!(!debug.contains("desk-s3cret"), "{debug}");
            assert!(!debug.contains("cc-s3cret"), "{debug}");
            Ok(())
        });
        let rejected = |toml: &str| {
            let mut text = String::new();
            Jail::expect_with(|jail| {
                jail.create_file("bad.toml", toml)?;
                text = load_in_jail(Some("bad.toml"), &ConfigOverrides::default())
                    .expect_err("rejected")
                    .to_string();
                Ok(())
            });
            text
        };
        let text = rejected(
            "[[auth.static_tokens]]\ntoken = \"t\"\ntenant = \"a\"\nscopes = [\"claims.raed\"]\n",
        );
        assert!(text.contains("auth.static_tokens[0].scopes"), "{text}");
        assert!(text.contains("claims.raed"), "{text}");
        let text = rejected(
            "[auth.oidc]\nissuer = \"i\"\naudience = \"a\"\njwks_url = \"https://i/jwks\"\nalgorithms = [\"HS256\"]\n",
        );
        assert!(text.contains("auth.oidc.algorithms"), "{text}");
        assert!(text.contains("HMAC"), "{text}");
        let text = rejected("[auth.oidc]\nissuer = \"i\"\naudience = \"a\"\n");
        assert!(text.contains("jwks_url"), "{text}");
        let text = rejected(
            "[client.oidc]\ntoken_url = \"https://i/token\"\nclient_id = \"c\"\ntenant = \"a\"\n",
        );
        assert!(text.contains("client.oidc.client_secret_file"), "{text}");
        let text = rejected(
            "[auth.tokens]\n\"same\" = \"a\"\n[[auth.static_tokens]]\ntoken = \"same\"\ntenant = \"a\"\n",
        );
        assert!(text.contains("configured twice"), "{text}");
        assert!(!text.contains("same\""), "{text}");
    }

    #[test]
    fn debug_never_shows_tokens_or_database_password() {
        Jail::expect_with(|jail| {
            jail.set_env("MEDBILL_AUTH__TOKENS", r#"{"sup3r-s3cret"="clinic-a"}"#);
            jail.set_env("MEDBILL_CLIENT__TOKEN", "client-s3cret");
            jail.set_env(
                "MEDBILL_DATABASE_URL",
                "postgres://medbill:pa55word@db:5432/medbill",
            );
            let config =
                load_in_jail(None, &ConfigOverrides::default()).map_err(|e| e.to_string())?;
            let debug = format!("{config:?}");
            assert!(!debug.contains("sup3r-s3cret"), "{debug}");
            assert!(!debug.contains("client-s3cret"), "{debug}");
            assert!(!debug.contains("pa55word"), "{debug}");
            assert!(
                debug.contains("clinic-a"),
                "tenants are not secret: {debug}"
            );
            assert!(
                debug.contains("postgres://medbill:***@db:5432/medbill"),
                "{debug}"
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "[grpc]\nrequest_timout_ms = 5\n")?;
            let err = load_in_jail(Some("typo.toml"), &ConfigOverrides::default())
                .expect_err("typo must be rejected");
            assert!(err.to_string().contains("request_timout_ms"), "{err}");

            let err = load_in_jail(Some("nope.toml"), &ConfigOverrides::default())
                .expect_err("missing file must be rejected");
            assert!(matches!(err, ConfigError::FileNotFound { .. }), "{err}");

            // Unrelated MEDBILL_ variables (test harness settings) are ignored...
            jail.set_env("MEDBILL_TEST_PG_URL", "postgres://x");
            load_in_jail(None, &ConfigOverrides::default()).map_err(|e| e.to_string())?;
            // ...but a typo inside a known section is not.
            jail.set_env("MEDBILL_GRPC__REQUEST_TIMOUT_MS", "5");
            assert!(load_in_jail(None, &ConfigOverrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn out_of_range_values_are_rejected_with_the_key() {
        Jail::expect_with(|jail| {
            jail.set_env("MEDBILL_CLIENT__RETRY__MAX_ATTEMPTS", "0");
            let err = load_in_jail(None, &ConfigOverrides::default()).expect_err("0 attempts");
            assert!(
                err.to_string().contains("client.retry.max_attempts"),
                "{err}"
            );
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("MEDBILL_ENDPOINTS__CLAIMS", "claims:50051");
            let err = load_in_jail(None, &ConfigOverrides::default()).expect_err("no scheme");
            assert!(err.to_string().contains("endpoints.claims"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn endpoints_default_to_this_process() {
        let mut config = Config::default();
        let local: SocketAddr = "0.0.0.0:4000".parse().unwrap();
        assert_eq!(
            config.endpoint_for(ServiceKind::Claims, local),
            "http://127.0.0.1:4000"
        );
        config.endpoints.claims = Some("http://claims.svc:50051".to_owned());
        assert_eq!(
            config.endpoint_for(ServiceKind::Claims, local),
            "http://claims.svc:50051"
        );
        assert_eq!(
            config.endpoint_for(ServiceKind::Remittance, "127.0.0.1:9".parse().unwrap()),
            "http://127.0.0.1:9"
        );
    }

    #[test]
    fn redaction_handles_urls_without_password() {
        assert_eq!(
            redact_url_password("sqlite://./data/x.db"),
            "sqlite://./data/x.db"
        );
        assert_eq!(
            redact_url_password("postgres://u@h/db"),
            "postgres://u@h/db"
        );
        assert_eq!(
            redact_url_password("postgres://u:p@h/db?x=1"),
            "postgres://u:***@h/db?x=1"
        );
        assert_eq!(redact_url_password("not a url"), "not a url");
    }
}
