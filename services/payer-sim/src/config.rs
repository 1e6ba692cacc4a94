//! payer-sim configuration (serde, every field defaulted): the `[payer_sim]` section of the
//! medbill configuration, which the binary reads when it runs payer-sim.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use medbill_connect::CredentialsConfig;
use serde::{Deserialize, Serialize};

use crate::faults::Fault;

/// Top-level configuration key of the payer-sim section.
pub const SECTION: &str = "payer_sim";

/// Default listen address.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 50061);

/// How payer-sim runs.
///
/// ```toml
/// listen = "127.0.0.1:50061"
/// path = "/core"
/// catalog = "/etc/medbill/payer-sim-catalog.toml"   # absent: the built-in demo catalog
/// sender_id = "MEDBILLSIM"
/// receiver_ids = []                                 # CORE ReceiverIDs served; empty: any
/// fault = { kind = "delay", ms = 200 }              # optional, at start
/// adjudication_lag_secs = 0                         # accepted claims are paid after this
/// deposit_file = "/var/lib/medbill/deposits.jsonl"  # optional: deposits, one JSON a line
///
/// [[credentials]]                                   # absent: no authentication
/// sender_ids = ["MEDBILL01"]
/// credentials = { kind = "basic", username = "medbill", password = { env = "PAYER_SIM_PASSWORD" } }
///
/// [tls]                                             # optional: serve HTTPS
/// cert_file = "/etc/medbill/sim.pem"
/// key_file = "/etc/medbill/sim.key"
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PayerSimConfig {
    /// Where to listen (the caller binds it; see [`crate::start`]). `medbill serve --target
    /// payer-sim --listen ADDR` overrides it.
    pub listen: SocketAddr,
    /// The HTTP path of the CORE endpoint.
    pub path: String,
    /// A plan catalog file; `None` uses the built-in demo catalog.
    pub catalog: Option<PathBuf>,
    /// ISA06/GS02 of answers when the 270's ISA08/GS03 cannot be echoed (1 to 15 characters).
    pub sender_id: String,
    /// CORE `ReceiverID`s accepted; empty accepts any.
    pub receiver_ids: Vec<String>,
    /// Credentials accepted; empty means no authentication.
    pub credentials: Vec<AcceptedCredentialConfig>,
    /// Serves HTTPS with this certificate when set.
    pub tls: Option<TlsFiles>,
    /// A fault switched on from the start (see [`crate::Faults`]).
    pub fault: Option<Fault>,
    /// How long a graceful shutdown waits for requests in flight, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// Seconds between a claim's acceptance (277CA A2) and its adjudication and payment (835);
    /// 0 pays at the submitter's next retrieval.
    pub adjudication_lag_secs: u64,
    /// A file every deposit is appended to, one JSON object a line (see the crate README);
    /// absent: deposits are kept in memory only (`PayerSimHandle::deposits`).
    pub deposit_file: Option<PathBuf>,
}

impl Default for PayerSimConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            path: "/core".to_owned(),
            catalog: None,
            sender_id: "MEDBILLSIM".to_owned(),
            receiver_ids: Vec::new(),
            credentials: Vec::new(),
            tls: None,
            fault: None,
            shutdown_grace_ms: 5_000,
            adjudication_lag_secs: 0,
            deposit_file: None,
        }
    }
}

/// Credentials payer-sim accepts, and the `SenderID`s they may use (any when empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptedCredentialConfig {
    /// References to the credentials (secrets are read at start).
    pub credentials: CredentialsConfig,
    /// The sender ids these credentials may send as; empty means any.
    #[serde(default)]
    pub sender_ids: Vec<String>,
}

/// A PEM certificate chain and private key for HTTPS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain (PEM).
    pub cert_file: PathBuf,
    /// The private key (PEM).
    pub key_file: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_toml_gives_the_defaults() {
        let c: PayerSimConfig = toml::from_str("").unwrap();
        assert_eq!(c, PayerSimConfig::default());
        assert_eq!(c.listen.to_string(), "127.0.0.1:50061");
    }

    #[test]
    fn full_toml_reads() {
        let c: PayerSimConfig = toml::from_str(
            r#"
            listen = "0.0.0.0:9000"
            catalog = "/tmp/catalog.toml"
            receiver_ids = ["SIMPPO"]
            fault = { kind = "unavailable" }
            [[credentials]]
            sender_ids = ["MEDBILL01"]
            credentials = { kind = "bearer", token = { env = "SIM_TOKEN" } }
            "#,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.fault, Some(Fault::Unavailable));
        assert_eq!(c.credentials.len(), 1);
        assert_eq!(c.path, "/core");
        let err = toml::from_str::<PayerSimConfig>("lisen = \"x\"").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }
}
