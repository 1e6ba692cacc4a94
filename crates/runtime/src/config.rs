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
//!   Only variables whose first segment names a known section are read, so unrelated
//!   variables such as `MEDBILL_TEST_PG_URL` do not trip the unknown-key check.
//! * Unknown keys in the file or in a known section are errors, so typos are caught at start.
//!
//! Durations are integer milliseconds (`*_ms`) or seconds (`*_secs`): no floats.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use medbill_connect::PayerConnection;

/// Prefix of every environment variable read by [`load`].
pub const ENV_PREFIX: &str = "MEDBILL_";
/// Environment variable naming the TOML config file when no `--config` flag is given.
pub const CONFIG_FILE_ENV: &str = "MEDBILL_CONFIG";
/// Tenant every caller gets in dev mode (no tokens configured).
pub const DEFAULT_TENANT: &str = "default";

/// Top-level sections and keys; the environment provider only reads these.
const TOP_LEVEL_KEYS: &[&str] = &[
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
    "eligibility",
    "payers",
    "payer_sim",
    "metrics",
];

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

/// Holds the whole medbill configuration.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the gRPC server listens on.
    pub listen: SocketAddr,
    /// Directory for the default SQLite databases and other local state.
    pub data_dir: PathBuf,
    /// Database URL (`postgres://...` or `sqlite://...`); unset means
    /// `sqlite://<data_dir>/medbill.db` (see [`Config::effective_database_url`]). The storage
    /// layer gives each service its own PostgreSQL schema or SQLite file from this one URL.
    pub database_url: Option<String>,
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
    /// Eligibility service settings.
    pub eligibility: EligibilityConfig,
    /// Clearinghouse / payer connections (`[[payers]]` tables), one per payer id.
    pub payers: Vec<PayerConnection>,
    /// The payer simulator run by `--target payer-sim` and `--target all` (`[payer_sim]`).
    pub payer_sim: medbill_payer_sim::PayerSimConfig,
    /// The Prometheus `/metrics` listener and the outbox poll (`[metrics]`).
    pub metrics: crate::metrics::MetricsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50051),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_pool: DatabasePoolConfig::default(),
            endpoints: Endpoints::default(),
            auth: AuthConfig::default(),
            grpc: GrpcConfig::default(),
            client: ClientConfig::default(),
            telemetry: TelemetryConfig::default(),
            outbox: OutboxConfig::default(),
            eligibility: EligibilityConfig::default(),
            payers: Vec::new(),
            payer_sim: medbill_payer_sim::PayerSimConfig::default(),
            metrics: crate::metrics::MetricsConfig::default(),
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
            .field("database_pool", &self.database_pool)
            .field("endpoints", &self.endpoints)
            .field("auth", &self.auth)
            .field("grpc", &self.grpc)
            .field("client", &self.client)
            .field("telemetry", &self.telemetry)
            .field("outbox", &self.outbox)
            .field("eligibility", &self.eligibility)
            .field("payers", &self.payers)
            .field("payer_sim", &self.payer_sim)
            .field("metrics", &self.metrics)
            .finish()
    }
}

impl Config {
    /// Returns the database URL to connect with: `database_url` when set, else
    /// `sqlite://<data_dir>/medbill.db` (from which storage derives one file per service,
    /// e.g. `medbill-claims.db`).
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("medbill.db").display()),
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
        if self.grpc.max_decoding_message_size == 0 {
            return invalid("grpc.max_decoding_message_size", "must be greater than 0");
        }
        if self.grpc.max_encoding_message_size == 0 {
            return invalid("grpc.max_encoding_message_size", "must be greater than 0");
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
        if self.eligibility.cache_max_entries == 0 {
            return invalid("eligibility.cache_max_entries", "must be at least 1");
        }
        for (i, schedule) in self.eligibility.fee_schedules.iter().enumerate() {
            if schedule.tenant.trim().is_empty() {
                return Err(ConfigError::Invalid {
                    key: format!("eligibility.fee_schedules[{i}].tenant"),
                    reason: "must not be empty".to_owned(),
                });
            }
        }
        let mut payer_ids = std::collections::BTreeSet::new();
        for payer in &self.payers {
            if let Err(e) = payer.validate() {
                return Err(ConfigError::Invalid {
                    key: format!("payers.{}", payer.payer_id),
                    reason: e.to_string(),
                });
            }
            if !payer_ids.insert(payer.payer_id.as_str()) {
                return Err(ConfigError::Invalid {
                    key: format!("payers.{}", payer.payer_id),
                    reason: "payer id configured twice".to_owned(),
                });
            }
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

/// Holds bearer tokens mapped to tenants. Empty means dev mode: every caller without a token
/// is the tenant [`DEFAULT_TENANT`].
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Token -> tenant id.
    pub tokens: BTreeMap<Secret, String>,
}

impl AuthConfig {
    /// Reports whether no tokens are configured (dev mode).
    pub fn is_dev_mode(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Returns a token that authenticates as `tenant`, for calls made on a tenant's behalf
    /// without an inbound request (e.g. the outbox relay). The smallest such token is chosen
    /// so the choice is stable.
    pub fn token_for_tenant(&self, tenant: &str) -> Option<&Secret> {
        self.tokens
            .iter()
            .find(|(_, t)| t.as_str() == tenant)
            .map(|(token, _)| token)
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenants: std::collections::BTreeSet<&str> =
            self.tokens.values().map(String::as_str).collect();
        f.debug_struct("AuthConfig")
            .field("token_count", &self.tokens.len())
            .field("tenants", &tenants)
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
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            max_decoding_message_size: 16 * 1024 * 1024,
            max_encoding_message_size: 16 * 1024 * 1024,
            request_timeout_ms: 30_000,
            shutdown_grace_ms: 0,
            drain_timeout_ms: 30_000,
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
    /// Retry policy for idempotent calls.
    pub retry: RetryPolicy,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 5_000,
            request_timeout_ms: 10_000,
            token: None,
            retry: RetryPolicy::default(),
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

/// Holds eligibility-service settings.
///
/// ```toml
/// [eligibility]
/// cache_ttl_secs = 3600
/// [eligibility.default_provider]          # the 270's information receiver when a call names none
/// npi = "1234567893"
/// organization_name = "MAIN STREET CLINIC"
/// [eligibility.providers.clinic-a]        # per-tenant provider (wins over the default)
/// npi = "1245319599"
/// organization_name = "CLINIC A"
/// [[eligibility.fee_schedules]]           # allowed amounts per tenant and payer
/// tenant = "clinic-a"
/// payer_id = "60054"                      # omit for the tenant's self-pay rates
/// allowed = { "99213" = "92.00", "80053" = "14.50" }
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EligibilityConfig {
    /// How long a 271 answer is reused for the same patient, payer and date of service.
    pub cache_ttl_secs: u64,
    /// Most answers kept in the in-memory cache; the oldest are dropped beyond it.
    pub cache_max_entries: usize,
    /// Provider asking (270 loop 2100B) when neither the call nor `providers` names one.
    pub default_provider: Option<ProviderConfig>,
    /// Provider asking, per tenant id.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Allowed amounts per tenant and payer for cost estimates.
    pub fee_schedules: Vec<FeeScheduleConfig>,
}

impl Default for EligibilityConfig {
    fn default() -> Self {
        Self {
            cache_ttl_secs: 24 * 60 * 60,
            cache_max_entries: 100_000,
            default_provider: None,
            providers: BTreeMap::new(),
            fee_schedules: Vec::new(),
        }
    }
}

impl EligibilityConfig {
    /// Returns the cache time-to-live.
    pub fn cache_ttl(&self) -> Duration {
        Duration::from_secs(self.cache_ttl_secs)
    }

    /// Returns the provider configured for `tenant`, else the default one.
    pub fn provider_for(&self, tenant: &str) -> Option<&ProviderConfig> {
        self.providers
            .get(tenant)
            .or(self.default_provider.as_ref())
    }
}

/// Identifies a provider in eligibility inquiries (not PHI).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// National Provider Identifier (10 digits, Luhn check digit).
    pub npi: String,
    /// Organisation name as sent to payers (NM103).
    pub organization_name: String,
    /// Employer identification number (9 digits); used as the 270 trace originator when set.
    #[serde(default)]
    pub tax_id: Option<String>,
}

/// Allowed amounts for one tenant and payer (or the tenant's self-pay rates when `payer_id` is
/// absent): procedure code -> amount per unit as a decimal string.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeeScheduleConfig {
    /// Tenant id the schedule belongs to.
    pub tenant: String,
    /// Payer id; absent means self-pay rates.
    #[serde(default)]
    pub payer_id: Option<String>,
    /// Procedure code (CPT/HCPCS) -> allowed amount per unit, e.g. `"92.00"`.
    pub allowed: BTreeMap<String, String>,
}

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
    /// A value has the wrong type, or a key is unknown (figment names key and source).
    #[error("invalid configuration: {0}")]
    Figment(#[from] Box<figment::Error>),
    /// A value deserialised but is out of range.
    #[error("invalid configuration key {key}: {reason}")]
    Invalid {
        /// Dotted key path.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Builds the layered figment (defaults are supplied by `#[serde(default)]`): TOML file, then
/// environment, then flag overrides. `config_file` is the `--config` flag; without it
/// `MEDBILL_CONFIG` is consulted.
pub fn figment(
    config_file: Option<&Path>,
    overrides: &ConfigOverrides,
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
    let env = Env::prefixed(ENV_PREFIX).split("__").filter(|key| {
        let first = key.as_str().split('.').next().unwrap_or_default();
        TOP_LEVEL_KEYS.iter().any(|k| k.eq_ignore_ascii_case(first))
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
pub fn load(
    config_file: Option<&Path>,
    overrides: &ConfigOverrides,
) -> Result<Config, ConfigError> {
    let config: Config = figment(config_file, overrides)?
        .extract()
        .map_err(Box::new)?;
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
// figment's Jail fixes the closures' error type to figment::Error, which is large.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load_in_jail(
        file: Option<&str>,
        overrides: &ConfigOverrides,
    ) -> Result<Config, ConfigError> {
        load(file.map(Path::new), overrides)
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
            assert_eq!(config.eligibility.cache_ttl(), Duration::from_secs(86_400));
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
    fn eligibility_and_payer_sections_layer_like_the_rest() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "medbill.toml",
                r#"
                [eligibility]
                cache_ttl_secs = 60
                [eligibility.default_provider]
                npi = "1234567893"
                organization_name = "DEFAULT CLINIC"
                [eligibility.providers.clinic-a]
                npi = "1245319599"
                organization_name = "CLINIC A"
                tax_id = "123456789"
                [[eligibility.fee_schedules]]
                tenant = "clinic-a"
                payer_id = "60054"
                allowed = { "99213" = "92.00" }
                [[eligibility.fee_schedules]]
                tenant = "clinic-a"
                allowed = { "99213" = "75.00" }
                [[payers]]
                payer_id = "60054"
                sender_id = "MEDBILL01"
                receiver_id = "ACMEHEALTH"
                [payers.transport]
                kind = "core_http"
                endpoint = "http://127.0.0.1:9/core"
                "#,
            )?;
            jail.set_env("MEDBILL_ELIGIBILITY__CACHE_TTL_SECS", "5");
            let config = load_in_jail(Some("medbill.toml"), &ConfigOverrides::default())
                .map_err(|e| e.to_string())?;
            let e = &config.eligibility;
            assert_eq!(e.cache_ttl(), Duration::from_secs(5), "env beats the file");
            assert_eq!(
                e.cache_max_entries, 100_000,
                "untouched key keeps its default"
            );
            assert_eq!(
                e.provider_for("clinic-a").map(|p| p.npi.as_str()),
                Some("1245319599")
            );
            assert_eq!(
                e.provider_for("other").map(|p| p.npi.as_str()),
                Some("1234567893")
            );
            assert_eq!(e.fee_schedules.len(), 2);
            assert_eq!(e.fee_schedules[1].payer_id, None);
            assert_eq!(
                e.fee_schedules[0].allowed.get("99213").map(String::as_str),
                Some("92.00")
            );
            assert_eq!(config.payers.len(), 1);
            assert_eq!(config.payers[0].payer_id, "60054");

            jail.create_file("typo.toml", "[eligibility]\ncache_tll_secs = 1\n")?;
            let err =
                load_in_jail(Some("typo.toml"), &ConfigOverrides::default()).expect_err("typo");
            assert!(err.to_string().contains("cache_tll_secs"), "{err}");
            Ok(())
        });
        Jail::expect_with(|_jail| {
            let config =
                load_in_jail(None, &ConfigOverrides::default()).map_err(|e| e.to_string())?;
            assert!(config.payers.is_empty());
            assert!(config.eligibility.fee_schedules.is_empty());
            assert_eq!(config.eligibility.provider_for("any"), None);
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
