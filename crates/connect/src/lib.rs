//! Clearinghouse connectivity for medbill: how X12 reaches payers and comes back.
//!
//! Two transports behind one API:
//!
//! - **CORE HTTP** ([`http`]): HTTP(S) `multipart/form-data` in the manner of CAQH CORE Connectivity Rule
//!   vC2.2.0, for real-time 270/271 and 276/277 and for batch files. [`http::client::CoreHttpClient`] is the
//!   client; [`http::server::CoreServer`] is the receiving router (payer-sim mounts it).
//! - **Mailbox** ([`mailbox`]): `outbound/` and `inbound/` folders per trading partner, as SFTP drop boxes
//!   work, for batch files (837 out; 999, 277CA, 835 in).
//!
//! Services hold a [`Connections`] built from a table of [`PayerConnection`]s and call
//! [`Connection::exchange`] (real time) or [`Connection::submit_batch`] / [`Connection::next_inbound`] /
//! [`Connection::acknowledge`] (batch). Retryable failures (connect errors, timeouts, HTTP 429/502/503/504,
//! CORE `Receiver Down`) are retried with exponential backoff; everything else fails at once with a typed
//! [`ConnectError`]. Payloads are PHI: they appear in no log line and no error, only payload ids and sizes.
//!
//! # Configuring a payer
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config: medbill_connect::PayerConnection = toml::from_str(r#"
//!     payer_id = "ACME"
//!     sender_id = "MEDBILL01"
//!     receiver_id = "ACMEHEALTH"
//!
//!     [transport]
//!     kind = "core_http"
//!     endpoint = "https://core.acme.example/core"
//!     ca_file = "/etc/medbill/acme-ca.pem"       # optional: trust a private CA
//!     connect_timeout_ms = 2000                  # default 3000
//!     request_timeout_ms = 10000                 # per attempt; default 15000
//!     credentials = { kind = "basic", username = "medbill", password = { env = "ACME_CORE_PASSWORD" } }
//!
//!     [batch_transport]                          # optional: batches by mailbox instead of HTTP
//!     kind = "mailbox"
//!     dir = "/var/lib/medbill/mailbox/acme"
//!
//!     [retry]                                    # optional; these are the defaults
//!     max_attempts = 3
//!     initial_backoff_ms = 100
//!     max_backoff_ms = 2000
//!     multiplier = 2
//!     jitter = true
//! "#)?;
//! config.validate()?;
//! # Ok(()) }
//! ```
//!
//! Bearer tokens: `credentials = { kind = "bearer", token = { file = "/run/secrets/acme-token" } }`.
//! Secrets are referenced, never written in the configuration; they are read when the connection opens.

pub mod config;
mod connection;
pub mod envelope;
pub mod error;
pub mod http;
pub mod mailbox;
pub mod multipart;
mod retry;
pub mod secret;
pub mod transport;

pub use config::{
    CoreHttpConfig, Credentials, CredentialsConfig, MailboxConfig, PayerConnection, RetryPolicy,
    TransportConfig,
};
pub use connection::{Connection, Connections};
pub use envelope::{ErrorCode, PayloadType, ProcessingMode};
pub use error::{ConfigError, ConnectError, ErrorKind};
pub use http::client::CoreHttpClient;
pub use http::server::{
    AcceptedCredential, CoreHandler, CoreServer, HandlerError, HandlerReply, InboundRequest,
};
pub use mailbox::{Mailbox, MailboxSide};
pub use secret::{Secret, SecretSource};
pub use transport::{
    BatchTransport, InboundFile, InboundKind, OutboundFile, RealTimeRequest, RealTimeResponse,
    RealTimeTransport, SubmissionReceipt,
};
