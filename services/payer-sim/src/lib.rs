//! payer-sim: the payer on the other side of medbill's clearinghouse connection, for development,
//! tests and benchmarks.
//!
//! It serves the CORE HTTP endpoint of `medbill-connect` ([`medbill_connect::CoreServer`]) and
//! answers real-time 270 eligibility inquiries with 271 responses built from a plan catalog
//! (payers, plans, members: see `README.md`): EB*1 / EB*6, deductible and out-of-pocket totals and
//! remaining amounts, coinsurance, copays by service type, the in-network flag, and AAA rejections
//! (79 unknown payer, 43 bad provider NPI, 72 invalid member id, 75 not found, 73 name mismatch,
//! 71 birth date mismatch, 67 dependent not found). A 270 that fails X12 syntax checks gets a 999;
//! a payload that is not X12 gets the CORE error `PayloadIllegal`.
//!
//! It also takes 837P/837I batches in CORE batch mode and keeps a TA1, 999s and 277CAs for
//! pickup ([`claims`], edits in [`claim_rules`]), and answers 276 inquiries with 277s from the
//! claims it received ([`status`]), and 278 prior authorization requests and inquiries from the
//! catalog's rules ([`prior_auth`]). Accepted claims are adjudicated from the catalog and paid in
//! balanced 835s queued for pickup, with deposit records ([`payment`]); the accumulators they move
//! show in the next 271.
//!
//! [`Faults`] switch on misbehaviour at start or at run time: AAA 42, HTTP 503, CORE
//! `Receiver Down`, a delay, a garbage answer, an answer about another member.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use medbill_payer_sim::{Fault, PayerSimConfig};
//! let config = PayerSimConfig::default(); // 127.0.0.1:50061, built-in catalog
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! let sim = medbill_payer_sim::start(config, listener).await?;
//! println!("payer-sim at {}", sim.url()); // http://127.0.0.1:50061/core
//! sim.faults().set(Fault::Unavailable); // every request now gets HTTP 503
//! sim.faults().clear();
//! sim.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! No member data (names, ids, birth dates) is logged; logs carry payload ids, codes and sizes.

#![forbid(unsafe_code)]

pub mod adjudicate;
pub mod catalog;
pub mod claim_rules;
pub mod claims;
pub mod config;
pub mod faults;
pub mod handler;
pub mod payment;
pub mod prior_auth;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::serve::ListenerExt as _;
use medbill_connect::{AcceptedCredential, CoreServer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use catalog::{Catalog, CatalogError, DEFAULT_CATALOG_TOML};
pub use claims::{ClaimFront, ClaimRecord, ResultFile};
pub use config::{AcceptedCredentialConfig, DEFAULT_LISTEN, PayerSimConfig, SECTION, TlsFiles};
pub use faults::{Fault, Faults};
pub use handler::SimHandler;
pub use payment::{Deposit, Payments};

/// Why payer-sim could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PayerSimError {
    /// The plan catalog could not be read or is invalid.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A credential secret or TLS file could not be loaded.
    #[error("payer-sim: {0}")]
    Connect(#[from] medbill_connect::ConfigError),
    /// A setting is invalid.
    #[error("payer-sim configuration: {field}: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The listen address could not be bound.
    #[error("payer-sim listener {addr}: {reason}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error (e.g. address already in use).
        reason: std::io::Error,
    },
    /// The listener's address could not be read.
    #[error("payer-sim listener: {0}")]
    Listener(std::io::Error),
    /// The server stopped with an I/O error.
    #[error("payer-sim server failed: {0}")]
    Serve(std::io::Error),
    /// The server task panicked or was cancelled.
    #[error("payer-sim server task ended abnormally: {0}")]
    Task(String),
}

/// A running payer-sim: its address, fault switches, request count and shutdown.
///
/// Dropping the handle stops the server too (without waiting).
#[derive(Debug)]
pub struct PayerSimHandle {
    local_addr: SocketAddr,
    url: String,
    faults: Faults,
    requests: Arc<AtomicU64>,
    payer_ids: Vec<String>,
    claims: Arc<ClaimFront>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    grace: Duration,
}

impl PayerSimHandle {
    /// Returns the ids of the payers this simulator answers for, sorted.
    pub fn payer_ids(&self) -> &[String] {
        &self.payer_ids
    }

    /// Returns the address the server listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Returns the CORE endpoint URL, e.g. `http://127.0.0.1:50061/core`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns the claim front end: the claims received (accepted ones with their REF*1K payer
    /// claim control number, for 276 answers and adjudication) and the files waiting for pickup.
    /// Held in memory for the life of the process.
    pub fn claims(&self) -> &Arc<ClaimFront> {
        &self.claims
    }

    /// Returns the claims accepted so far (277CA A2), oldest first.
    pub fn accepted_claims(&self) -> Vec<ClaimRecord> {
        self.claims.accepted_claims()
    }

    /// Returns the claim with payer claim control number `number` (277CA REF*1K).
    pub fn claim_by_payer_number(&self, number: &str) -> Option<ClaimRecord> {
        self.claims.claim_by_payer_number(number)
    }

    /// Returns the deposits payer-sim's payments made so far (what the payees' banks show).
    pub fn deposits(&self) -> Vec<Deposit> {
        self.claims.payments().deposits()
    }

    /// Returns the fault switches (changes apply to the next request).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Returns how many CORE requests reached the handler (authenticated, envelope valid), faults
    /// included: what a test counts to tell a cache hit from a payer call.
    pub fn requests_received(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Stops accepting, lets requests in flight finish (up to `shutdown_grace_ms`), then returns.
    pub async fn shutdown(mut self) -> Result<(), PayerSimError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(self.grace, &mut task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(PayerSimError::Serve(e)),
            Ok(Err(e)) => Err(PayerSimError::Task(e.to_string())),
            Err(_) => {
                warn!(
                    grace_ms = self.grace.as_millis(),
                    "payer-sim requests still in flight after the grace period; aborting them"
                );
                task.abort();
                Ok(())
            }
        }
    }
}

impl Drop for PayerSimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts payer-sim on `listener` with the catalog the configuration names (or the built-in one).
///
/// The catalog is read and checked here, once; answering a 270 does no file I/O.
pub async fn start(
    config: PayerSimConfig,
    listener: TcpListener,
) -> Result<PayerSimHandle, PayerSimError> {
    let catalog = match &config.catalog {
        Some(path) => Catalog::load(path)?,
        None => Catalog::default_catalog()?,
    };
    start_with_catalog(config, catalog, listener).await
}

/// Binds `config.listen` and starts payer-sim there; a bind failure names the address.
pub async fn bind_and_start(config: PayerSimConfig) -> Result<PayerSimHandle, PayerSimError> {
    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|reason| PayerSimError::Bind {
                addr: config.listen,
                reason,
            })?;
    start(config, listener).await
}

/// Starts payer-sim on `listener` with a catalog built by the caller (`config.catalog` is ignored).
pub async fn start_with_catalog(
    config: PayerSimConfig,
    catalog: Catalog,
    listener: TcpListener,
) -> Result<PayerSimHandle, PayerSimError> {
    check(&config)?;
    let local_addr = listener.local_addr().map_err(PayerSimError::Listener)?;
    let accepted = config
        .credentials
        .iter()
        .map(|c| {
            Ok(AcceptedCredential {
                credentials: c.credentials.resolve()?,
                sender_ids: c.sender_ids.clone(),
            })
        })
        .collect::<Result<Vec<_>, medbill_connect::ConfigError>>()?;
    let tls = match &config.tls {
        Some(files) => Some(medbill_connect::http::tls::server_tls_config(
            &files.cert_file,
            &files.key_file,
        )?),
        None => None,
    };
    let faults = Faults::new(config.fault.clone());
    let requests = Arc::new(AtomicU64::new(0));
    let payer_ids = catalog.payer_ids().into_iter().map(str::to_owned).collect();
    let claims = Arc::new(ClaimFront::with_payments(Payments::new(
        Duration::from_secs(config.adjudication_lag_secs),
        config.deposit_file.clone(),
    )));
    let handler = handler::SimHandler::new(
        Arc::new(catalog),
        faults.clone(),
        requests.clone(),
        config.sender_id.clone(),
    )
    .with_claims(claims.clone());
    let mut server = CoreServer::new(handler).with_receiver_ids(config.receiver_ids.clone());
    if !accepted.is_empty() {
        server = server.with_credentials(accepted);
    }
    let router = server.router(&config.path);
    let (tx, rx) = oneshot::channel::<()>();
    let signal = async move {
        // A dropped handle stops the server as well as an explicit shutdown.
        let _ = rx.await;
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let task = match tls {
        Some(tls) => tokio::spawn(medbill_connect::http::tls::serve_tls(
            listener, router, tls, signal,
        )),
        None => {
            // Small answers on keep-alive connections must not wait for Nagle's algorithm.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(signal)
                    .await
            })
        }
    };
    let url = format!("{scheme}://{local_addr}{}", config.path);
    info!(%local_addr, path = %config.path, tls = scheme == "https", "payer-sim listening");
    Ok(PayerSimHandle {
        local_addr,
        url,
        faults,
        requests,
        payer_ids,
        claims,
        shutdown: Some(tx),
        task: Some(task),
        grace: Duration::from_millis(config.shutdown_grace_ms),
    })
}

fn check(config: &PayerSimConfig) -> Result<(), PayerSimError> {
    let invalid = |field, reason: &str| PayerSimError::Config {
        field,
        reason: reason.to_owned(),
    };
    if !config.path.starts_with('/') {
        return Err(invalid("path", "must start with '/'"));
    }
    let id = &config.sender_id;
    if id.len() < 2 || id.len() > 15 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "sender_id",
            "must be 2 to 15 printable ASCII characters (ISA06/GS02)",
        ));
    }
    Ok(())
}
