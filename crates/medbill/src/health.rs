//! `medbill health`: asks a running medbill's gRPC health service and exits 0 only when it
//! answers SERVING. For container health checks where no native gRPC probe exists (Docker's
//! HEALTHCHECK, compose); Kubernetes probes the health service itself.

use std::path::PathBuf;

use anyhow::{Context, bail};
use medbill_runtime::client;
use medbill_runtime::config::ClientConfig;
use medbill_runtime::tls::ClientTlsFiles;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Where to ask and about what.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The gRPC listener to ask.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub url: String,
    /// The service to ask about (`medbill.claims.v1.ClaimsService`); empty asks about the
    /// server as a whole.
    #[arg(long, default_value = "")]
    pub service: String,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub timeout_ms: u64,
    /// For an `https://` URL: PEM CA certificates to trust (default: the public web roots).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// For a listener that requires client certificates: this client's PEM certificate.
    #[arg(long, requires = "key_file")]
    pub cert_file: Option<PathBuf>,
    /// The private key of `--cert-file`.
    #[arg(long, requires = "cert_file")]
    pub key_file: Option<PathBuf>,
}

/// Checks once; an error says what did not answer or what it answered.
pub async fn run(args: HealthArgs) -> anyhow::Result<()> {
    let config = ClientConfig {
        connect_timeout_ms: args.timeout_ms,
        request_timeout_ms: args.timeout_ms,
        tls: ClientTlsFiles {
            ca_file: args.ca_file.clone(),
            cert_file: args.cert_file.clone(),
            key_file: args.key_file.clone(),
        },
        ..ClientConfig::default()
    };
    // Connected now (not lazily), so "nothing listens" and "did not answer" read apart.
    let channel = client::endpoint(&args.url, &config)
        .with_context(|| format!("health: {}", args.url))?
        .connect()
        .await
        .with_context(|| format!("health: cannot connect to {}", args.url))?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: args.service.clone(),
        })
        .await
        .with_context(|| format!("health: {} did not answer", args.url))?
        .into_inner();
    let what = if args.service.is_empty() {
        "server"
    } else {
        args.service.as_str()
    };
    match answer.status() {
        ServingStatus::Serving => {
            println!("{what}: SERVING");
            Ok(())
        }
        other => bail!("health: {what} at {} is {}", args.url, other.as_str_name()),
    }
}
