//! Per-payer connection configuration, deserialisable with serde (the runtime config embeds a table of these).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::secret::{Secret, SecretSource};

/// How medbill reaches one payer (or the clearinghouse that fronts it).
///
/// ```toml
/// [[payers]]
/// payer_id = "ACME"
/// sender_id = "MEDBILL01"
/// receiver_id = "ACMEHEALTH"
///
/// [payers.transport]
/// kind = "core_http"
/// endpoint = "https://core.acme.example/core"
/// credentials = { kind = "basic", username = "medbill", password = { env = "ACME_PASSWORD" } }
///
/// [payers.batch_transport]
/// kind = "mailbox"
/// dir = "/var/lib/medbill/mailbox/acme"
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayerConnection {
    /// Our identifier of the payer; callers look connections up by it.
    pub payer_id: String,
    /// CORE `SenderID`: who we are to this trading partner.
    pub sender_id: String,
    /// CORE `ReceiverID`: who the trading partner is.
    pub receiver_id: String,
    /// The transport for real-time exchanges, and for batch files unless `batch_transport` is set.
    pub transport: TransportConfig,
    /// A separate transport for batch files (clearinghouses often take real time over HTTPS and batches by SFTP).
    #[serde(default)]
    pub batch_transport: Option<TransportConfig>,
    /// When and how often failed exchanges are tried again.
    #[serde(default)]
    pub retry: RetryPolicy,
}

impl PayerConnection {
    /// Checks the identifiers and transport settings without touching the network or the secrets.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: String| ConfigError::Invalid {
            payer_id: self.payer_id.clone(),
            field,
            reason,
        };
        if self.payer_id.trim().is_empty() {
            return Err(invalid("payer_id", "must not be empty".into()));
        }
        crate::envelope::check_party_id(&self.sender_id).map_err(|r| invalid("sender_id", r))?;
        crate::envelope::check_party_id(&self.receiver_id)
            .map_err(|r| invalid("receiver_id", r))?;
        if self.retry.max_attempts == 0 {
            return Err(invalid("retry.max_attempts", "must be at least 1".into()));
        }
        for transport in std::iter::once(&self.transport).chain(self.batch_transport.as_ref()) {
            if let TransportConfig::CoreHttp(http) = transport {
                let uri: http::Uri = http
                    .endpoint
                    .parse()
                    .map_err(|e| invalid("transport.endpoint", format!("not a URL: {e}")))?;
                match uri.scheme_str() {
                    Some("http" | "https") => {}
                    _ => {
                        return Err(invalid(
                            "transport.endpoint",
                            "scheme must be http or https".into(),
                        ));
                    }
                }
                if uri.host().is_none() {
                    return Err(invalid("transport.endpoint", "has no host".into()));
                }
                if http.request_timeout_ms == 0 || http.connect_timeout_ms == 0 {
                    return Err(invalid("transport.*_timeout_ms", "must be positive".into()));
                }
            }
        }
        Ok(())
    }
}

/// Which transport a payer is reached by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TransportConfig {
    /// HTTP(S) MIME multipart in the manner of CAQH CORE Connectivity Rule vC2.2.0.
    CoreHttp(CoreHttpConfig),
    /// A directory with `outbound/`, `inbound/` and `archive/` folders, as SFTP drop boxes work (batch only).
    Mailbox(MailboxConfig),
}

impl TransportConfig {
    /// Returns the short name used in logs and errors.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::CoreHttp(_) => "core_http",
            Self::Mailbox(_) => "mailbox",
        }
    }
}

/// Settings of the CORE HTTP transport.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreHttpConfig {
    /// The endpoint URL; `https://` turns TLS on.
    pub endpoint: String,
    /// Credentials sent with every request (Basic or Bearer); none when absent.
    #[serde(default)]
    pub credentials: Option<CredentialsConfig>,
    /// A PEM file of CA certificates to trust instead of the public web roots (private clearinghouse CAs).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Limit on establishing a TCP (and TLS) connection, in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Limit on one attempt (send the request and read the whole response), in milliseconds.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Idle keep-alive connections kept per host; real-time traffic reuses them.
    #[serde(default = "default_max_idle_per_host")]
    pub max_idle_per_host: usize,
}

impl CoreHttpConfig {
    /// Returns a configuration for `endpoint` with default timeouts and no credentials.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            credentials: None,
            ca_file: None,
            connect_timeout_ms: default_connect_timeout_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            max_idle_per_host: default_max_idle_per_host(),
        }
    }

    /// Returns the connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// Returns the per-attempt request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

fn default_connect_timeout_ms() -> u64 {
    3_000
}

fn default_request_timeout_ms() -> u64 {
    15_000
}

fn default_max_idle_per_host() -> usize {
    256
}

/// Settings of the mailbox transport.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    /// The trading partner's mailbox directory (holding `outbound/`, `inbound/`, `archive/`).
    pub dir: PathBuf,
}

/// References to the credentials sent to a payer; the secrets themselves are read at start-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialsConfig {
    /// HTTP Basic authentication.
    Basic {
        /// The user name (not secret).
        username: String,
        /// Where the password is read from.
        password: SecretSource,
    },
    /// A bearer token in the `Authorization` header.
    Bearer {
        /// Where the token is read from.
        token: SecretSource,
    },
}

impl CredentialsConfig {
    /// Reads the referenced secrets.
    pub fn resolve(&self) -> Result<Credentials, ConfigError> {
        Ok(match self {
            Self::Basic { username, password } => Credentials::Basic {
                username: username.clone(),
                password: password.resolve()?,
            },
            Self::Bearer { token } => Credentials::Bearer {
                token: token.resolve()?,
            },
        })
    }
}

/// Credentials with their secrets loaded; `Debug` shows no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// HTTP Basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// A bearer token.
    Bearer {
        /// The token.
        token: Secret,
    },
}

impl Credentials {
    /// Returns the `Authorization` header value for these credentials.
    pub fn authorization_value(&self) -> Secret {
        use base64::Engine as _;
        match self {
            Self::Basic { username, password } => {
                let raw = format!("{username}:{}", password.expose());
                Secret::new(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ))
            }
            Self::Bearer { token } => Secret::new(format!("Bearer {}", token.expose())),
        }
    }
}

/// Exponential backoff for retryable failures (connect errors, timeouts, HTTP 429/502/503/504, CORE `Receiver Down`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Wait before the second attempt, in milliseconds.
    pub initial_backoff_ms: u64,
    /// Upper bound of one wait, in milliseconds.
    pub max_backoff_ms: u64,
    /// Factor by which the wait grows after each attempt.
    pub multiplier: u32,
    /// Randomises each wait between half and all of its value, so many clients do not retry in lockstep.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff_ms: 100,
            max_backoff_ms: 2_000,
            multiplier: 2,
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// Returns a policy that tries once only.
    pub fn no_retry() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Returns the wait after failed attempt number `attempt` (1-based), before jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = u64::from(self.multiplier.max(1)).saturating_pow(attempt.saturating_sub(1));
        let millis = self
            .initial_backoff_ms
            .saturating_mul(factor)
            .min(self.max_backoff_ms);
        Duration::from_millis(millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Root {
        payers: Vec<PayerConnection>,
    }

    #[test]
    fn toml_table_of_payers_deserialises() {
        let text = r#"
            [[payers]]
            payer_id = "ACME"
            sender_id = "MEDBILL01"
            receiver_id = "ACMEHEALTH"
            [payers.transport]
            kind = "core_http"
            endpoint = "https://core.acme.example/core"
            request_timeout_ms = 5000
            credentials = { kind = "basic", username = "medbill", password = { env = "ACME_PASSWORD" } }
            [payers.batch_transport]
            kind = "mailbox"
            dir = "/var/lib/medbill/mailbox/acme"
            [payers.retry]
            max_attempts = 5

            [[payers]]
            payer_id = "BETA"
            sender_id = "MEDBILL01"
            receiver_id = "BETA"
            [payers.transport]
            kind = "core_http"
            endpoint = "http://127.0.0.1:9000/core"
            credentials = { kind = "bearer", token = { file = "/run/secrets/beta" } }
        "#;
        let root: Root = toml::from_str(text).unwrap();
        assert_eq!(root.payers.len(), 2);
        let acme = &root.payers[0];
        acme.validate().unwrap();
        let TransportConfig::CoreHttp(http) = &acme.transport else {
            panic!("expected core_http");
        };
        assert_eq!(http.request_timeout_ms, 5000);
        assert_eq!(http.connect_timeout_ms, 3000);
        assert_eq!(
            http.credentials,
            Some(CredentialsConfig::Basic {
                username: "medbill".into(),
                password: SecretSource::Env("ACME_PASSWORD".into()),
            })
        );
        assert_eq!(
            acme.batch_transport,
            Some(TransportConfig::Mailbox(MailboxConfig {
                dir: "/var/lib/medbill/mailbox/acme".into()
            }))
        );
        assert_eq!(acme.retry.max_attempts, 5);
        assert_eq!(acme.retry.initial_backoff_ms, 100);
        assert_eq!(root.payers[1].retry, RetryPolicy::default());
    }

    #[test]
    fn unknown_field_is_rejected() {
        let text = r#"
            payer_id = "ACME"
            sender_id = "S"
            receiver_id = "R"
            endpiont = "typo"
            transport = { kind = "mailbox", dir = "/tmp/x" }
        "#;
        let err = toml::from_str::<PayerConnection>(text).unwrap_err();
        assert!(err.to_string().contains("endpiont"), "{err}");
    }

    #[test]
    fn validate_rejects_a_non_http_endpoint() {
        let conn = PayerConnection {
            payer_id: "ACME".into(),
            sender_id: "S".into(),
            receiver_id: "R".into(),
            transport: TransportConfig::CoreHttp(CoreHttpConfig::new("ftp://example.invalid/x")),
            batch_transport: None,
            retry: RetryPolicy::default(),
        };
        let err = conn.validate().unwrap_err();
        assert!(err.to_string().contains("transport.endpoint"), "{err}");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
            multiplier: 3,
            jitter: false,
        };
        assert_eq!(policy.backoff(1), Duration::from_millis(100));
        assert_eq!(policy.backoff(2), Duration::from_millis(300));
        assert_eq!(policy.backoff(3), Duration::from_millis(900));
        assert_eq!(policy.backoff(4), Duration::from_millis(1_000));
        assert_eq!(policy.backoff(60), Duration::from_millis(1_000));
    }

    #[test]
    fn basic_credentials_encode_as_rfc7617() {
        let creds = Credentials::Basic {
            username: "Aladdin".into(),
            password: Secret::new("open sesame"),
        };
        assert_eq!(
            creds.authorization_value().expose(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
