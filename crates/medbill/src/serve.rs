//! `medbill serve`: runs one service, or all four in one process, behind one gRPC listener.
//!
//! Every service is started the same way (see `medbill_runtime::service`): the binary lists
//! each crate's `SERVICE`, and for each one it runs it creates a `StartContext`, awaits its
//! `start`, adds its routes to the one gRPC server, and starts its background tasks (and one
//! outbox relay if it delivers any destination) in one `BackgroundTasks`. On shutdown gRPC
//! drains first, then the tasks stop.
//!
//! Every service gets its own database namespace (a PostgreSQL schema or a SQLite file) from
//! the one configured URL, and reaches the others through their gRPC clients at the
//! configured endpoints, which default to this process: the code path and the traces are the
//! same whether the services share a process or not.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use medbill_connect::{
    CoreHttpConfig, PayerConnection, RetryPolicy as ConnectRetryPolicy, TransportConfig,
};
use medbill_eligibility::{EligibilityConfig, ProviderConfig};
use medbill_payer_sim::{PayerSimConfig, PayerSimHandle};
use medbill_runtime::audit::AuditTrail;
use medbill_runtime::auth::Authenticator;
use medbill_runtime::config::{
    self, Config, ConfigError, ConfigOverrides, LoadedConfig, LogFormat, ServiceKind,
};
use medbill_runtime::server::{Server, ServerHandle, shutdown_signal};
use medbill_runtime::service::{
    BackgroundTask, BackgroundTasks, Destination, ServiceDef, ShutdownTrigger, StartContext,
    TaskError,
};
use medbill_runtime::{metrics, telemetry};
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;

/// Every service this binary runs, in start order.
pub const SERVICES: [ServiceDef; 4] = [
    medbill_eligibility::SERVICE,
    medbill_claims::SERVICE,
    medbill_remittance::SERVICE,
    medbill_collections::SERVICE,
];

/// Which services this process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// All four services in one process (the zero-setup default, on SQLite).
    All,
    /// The eligibility service only.
    Eligibility,
    /// The claims service only.
    Claims,
    /// The remittance service only.
    Remittance,
    /// The collections service only.
    Collections,
    /// The payer simulator only (the clearinghouse/payer counterparty for development).
    PayerSim,
}

impl Target {
    /// Returns the services the target runs, in start order.
    fn services(self) -> Vec<&'static ServiceDef> {
        let only = match self {
            Target::All => return SERVICES.iter().collect(),
            Target::PayerSim => return Vec::new(),
            Target::Eligibility => ServiceKind::Eligibility,
            Target::Claims => ServiceKind::Claims,
            Target::Remittance => ServiceKind::Remittance,
            Target::Collections => ServiceKind::Collections,
        };
        SERVICES.iter().filter(|def| def.service == only).collect()
    }

    fn runs_payer_sim(self) -> bool {
        matches!(self, Target::All | Target::PayerSim)
    }
}

/// Flags of `medbill serve`; each one overrides the file and the environment.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Which services to run.
    #[arg(long, value_enum, default_value = "all")]
    pub target: Target,
    /// TOML configuration file (also `MEDBILL_CONFIG`).
    #[arg(long, env = "MEDBILL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. `0.0.0.0:50051`: the gRPC listener (config key `listen`), or
    /// payer-sim's with `--target payer-sim` (config key `payer_sim.listen`).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Directory for the default SQLite databases (config key `data_dir`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// `postgres://...` or `sqlite://...` (config key `database_url`).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Log line format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
}

/// `--log-format` values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Returns every top-level configuration key a service (or payer-sim) claims.
pub fn sections() -> Vec<&'static str> {
    let mut sections: Vec<&'static str> = SERVICES
        .iter()
        .flat_map(|def| def.sections.iter().copied())
        .chain([medbill_payer_sim::SECTION])
        .collect();
    sections.sort_unstable();
    sections.dedup();
    sections
}

/// Loads the configuration as `medbill serve` does (file, environment, `overrides`) and checks
/// every service's section, whichever services will run, so a typo anywhere fails at start.
pub fn load_config(
    config_file: Option<&Path>,
    overrides: &ConfigOverrides,
) -> Result<LoadedConfig, ConfigError> {
    let loaded = config::load(config_file, overrides, &sections())?;
    for def in &SERVICES {
        (def.check)(&loaded)?;
    }
    payer_sim_config(&loaded)?;
    Ok(loaded)
}

/// Loads the configuration, starts the chosen services and serves until SIGTERM/SIGINT.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = ConfigOverrides {
        listen: args.listen,
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
        log_format: args.log_format.map(|f| match f {
            LogFormatArg::Pretty => LogFormat::Pretty,
            LogFormatArg::Json => LogFormat::Json,
        }),
    };
    let loaded =
        load_config(args.config.as_deref(), &overrides).context("loading configuration")?;
    let config = loaded.config();
    let _telemetry = telemetry::init(&config.telemetry).context("starting telemetry")?;
    if args.target == Target::PayerSim {
        // payer-sim alone serves no gRPC: `--listen` is its own address.
        let sim = start_payer_sim(&loaded, args.listen).await?;
        shutdown_signal().await;
        sim.shutdown().await?;
        println!("medbill stopped");
        return Ok(());
    }
    let metrics = metrics::init(&config.metrics, &config.telemetry.service_name)
        .await
        .context("starting metrics")?;
    if let Some(url) = metrics.url() {
        println!("metrics: {url}");
    }
    let listener = bind("gRPC", config.listen).await?;

    let running = start(&loaded, args.target, listener).await?;
    let names: Vec<&str> = running.services.iter().map(|s| s.as_str()).collect();
    println!(
        "medbill listening on {} ({})",
        running.handle.local_addr(),
        names.join(", ")
    );
    if config.auth.is_dev_mode() {
        println!(
            "auth: dev mode (no tokens configured): calls without a token act for tenant \"{}\"",
            config::DEFAULT_TENANT
        );
    }
    tracing::info!(addr = %running.handle.local_addr(), services = ?names,
        tasks = ?running.task_names(), "medbill started");
    running.run_until(shutdown_signal()).await?;
    println!("medbill stopped");
    Ok(())
}

/// Binds `addr`; a failure names the listener and the address.
async fn bind(what: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("{what} listener {addr}: {e}"))
}

/// A started set of services behind one listener, with their background tasks.
pub struct Running {
    /// The server: its address, health reporter and shutdown.
    pub handle: ServerHandle,
    /// The services it runs.
    pub services: Vec<ServiceKind>,
    tasks: BackgroundTasks,
    /// Fired when shutdown begins, before the drain (see `StartContext::stopping`).
    stopping: ShutdownTrigger,
    task_grace: Duration,
    /// The audit trail's writers, flushed after gRPC drained (none with `audit.enabled = false`).
    audit: Option<AuditTrail>,
    /// What each service declared, for the wiring tests.
    #[cfg(test)]
    started: Vec<Started>,
}

impl Running {
    /// Returns the names of the background tasks running (outbox relays, payer-sim, ...).
    pub fn task_names(&self) -> Vec<&str> {
        self.tasks.names()
    }

    /// Serves until `signal`, then drains in-flight calls and stops the background tasks
    /// (a relay records the delivery in hand first), waiting for them at most
    /// `grpc.drain_timeout_ms`.
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let stopping = self.stopping;
        let served = self
            .handle
            .run_until(async move {
                signal.await;
                stopping.trigger();
            })
            .await;
        // Every call has ended: write the records still queued before anything else stops.
        if let Some(audit) = &self.audit {
            audit.close().await;
        }
        let stopped = self.tasks.shutdown(self.task_grace).await;
        served.context("serving gRPC")?;
        stopped?;
        Ok(())
    }

    /// Stops now: the same drain as [`Running::run_until`], triggered at once.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.run_until(std::future::ready(())).await
    }
}

/// What one started service declared, kept for the wiring checks.
struct Started {
    service: ServiceKind,
    callees: Vec<ServiceKind>,
    delivers: Vec<Destination>,
    receives: Vec<Destination>,
}

/// Starts each of `target`'s services on `listener` (payer-sim first with `--target all`).
/// Prints each service's database and notices, as an operator wants to see at start.
pub async fn start(
    loaded: &LoadedConfig,
    target: Target,
    listener: TcpListener,
) -> anyhow::Result<Running> {
    anyhow::ensure!(
        target != Target::PayerSim,
        "payer-sim serves no gRPC; it runs alone through `medbill serve --target payer-sim`"
    );
    let local_addr = listener.local_addr()?;
    let mut loaded = loaded.clone();
    let mut tasks = BackgroundTasks::new();
    if target.runs_payer_sim() {
        let sim = start_payer_sim(&loaded, None).await?;
        let payers: Vec<PayerConnection> = loaded.section(medbill_eligibility::PAYERS_SECTION)?;
        if payers.is_empty() {
            loaded = with_demo_payers(loaded, &sim)?;
        }
        tasks.spawn(payer_sim_task(sim));
    }
    let loaded = Arc::new(loaded);
    let config = loaded.config();

    let mut routes = RoutesBuilder::default();
    let mut serving = Vec::new();
    let mut audited = Vec::new();
    let mut pending = Vec::new();
    let mut started = Vec::new();
    let (stopping, stopping_signal) = ShutdownTrigger::new();
    for def in target.services() {
        let service = def.service;
        let ctx = StartContext::new(service, loaded.clone(), local_addr, stopping_signal.clone());
        let parts = (def.start)(ctx.clone())
            .await
            .with_context(|| service.to_string())?;
        if let Some(db) = ctx.opened_database() {
            println!("{service}: database {}", db.redacted_url());
            // After start: its migrations created the outbox table the gauges read.
            metrics::observe_database(service.as_str(), db);
        }
        for notice in &parts.notices {
            println!("{service}: {notice}");
        }
        for route in parts.routes {
            serving.push(route.name());
            if let Some(db) = ctx.opened_database() {
                audited.push((route.name().to_owned(), db.clone()));
            }
            route.add_to(&mut routes);
        }
        pending.extend(parts.tasks);
        let delivers = match parts.outbox {
            Some(outbox) => {
                let destinations = outbox.destinations().to_vec();
                pending.push(outbox.into_task(service, &config.outbox));
                destinations
            }
            None => Vec::new(),
        };
        started.push(Started {
            service,
            callees: ctx.callees(),
            delivers,
            receives: parts.receives,
        });
    }
    check_destinations(&started)?;
    for (caller, callee) in unreachable_dependencies(config, &started) {
        println!(
            "warning: {caller} calls {callee}, which this process does not run and \
             `endpoints.{callee}` does not name; those calls will fail until it is configured"
        );
    }

    let mut server = Server::new(routes.routes())
        .descriptor_set(medbill_proto::FILE_DESCRIPTOR_SET)
        .grpc_config(&config.grpc)
        .authenticator(
            Authenticator::from_config(&config.auth).map_err(|e| anyhow::anyhow!("auth: {e}"))?,
        )
        .limits(config.limits);
    for name in serving {
        server = server.serving(name);
    }
    let audit = config
        .audit
        .enabled
        .then(|| AuditTrail::start(audited, &config.audit));
    if let Some(trail) = &audit {
        server = server
            .audit(trail.clone())
            .serving(medbill_proto::service_names::AUDIT);
    } else {
        println!("audit: off (audit.enabled = false); calls are not recorded");
    }
    if config.tls.enabled() {
        let acceptor = medbill_runtime::tls::ReloadingAcceptor::load(&config.tls)
            .context("tls: the listener's certificate files")?;
        println!(
            "tls: on{}; certificate files checked for rotation every {} ms",
            if config.tls.client_ca.is_some() {
                ", client certificates required (mutual TLS)"
            } else {
                ""
            },
            config.tls.reload_interval_ms
        );
        server = server.tls(Arc::new(acceptor));
    }
    let handle = server
        .start(listener)
        .await
        .context("starting the gRPC server")?;
    // After the server is up, so work that calls a service in this process finds it serving.
    for task in pending {
        tasks.spawn(task);
    }
    Ok(Running {
        handle,
        services: started.iter().map(|s| s.service).collect(),
        tasks,
        stopping,
        task_grace: Duration::from_millis(config.grpc.drain_timeout_ms),
        audit,
        #[cfg(test)]
        started,
    })
}

/// Refuses wiring that cannot work: a service receiving a destination addressed to another
/// service, or a destination delivered to a service in this process that does not receive it.
fn check_destinations(started: &[Started]) -> anyhow::Result<()> {
    for s in started {
        if let Some(d) = s.receives.iter().find(|d| d.receiver() != s.service) {
            anyhow::bail!(
                "{}: declares it receives outbox destination {d}, which is addressed to {}",
                s.service,
                d.receiver()
            );
        }
    }
    for s in started {
        for d in &s.delivers {
            let receiver = started.iter().find(|r| r.service == d.receiver());
            if let Some(receiver) = receiver
                && !receiver.receives.contains(d)
            {
                anyhow::bail!(
                    "{}: delivers outbox destination {d}, which {} does not declare it receives",
                    s.service,
                    receiver.service
                );
            }
        }
    }
    Ok(())
}

/// Returns the (caller, callee) pairs where the callee neither runs here nor has an endpoint:
/// in split mode the default endpoint is this process, which does not serve it.
fn unreachable_dependencies(
    config: &Config,
    started: &[Started],
) -> Vec<(ServiceKind, ServiceKind)> {
    let running: Vec<ServiceKind> = started.iter().map(|s| s.service).collect();
    started
        .iter()
        .flat_map(|s| s.callees.iter().map(move |&callee| (s.service, callee)))
        .filter(|(_, callee)| !running.contains(callee) && config.endpoints.get(*callee).is_none())
        .collect()
}

/// Reads the `[payer_sim]` section.
fn payer_sim_config(loaded: &LoadedConfig) -> Result<PayerSimConfig, ConfigError> {
    loaded.section(medbill_payer_sim::SECTION)
}

/// Starts the payer simulator on its own HTTP listener (`listen` when given, else
/// `payer_sim.listen`) and says where it listens.
async fn start_payer_sim(
    loaded: &LoadedConfig,
    listen: Option<SocketAddr>,
) -> anyhow::Result<PayerSimHandle> {
    let mut config = payer_sim_config(loaded)?;
    if let Some(addr) = listen {
        config.listen = addr;
    }
    // Its errors name payer-sim (and the address, for a bind failure) themselves.
    let sim = medbill_payer_sim::bind_and_start(config).await?;
    println!("payer-sim: CORE endpoint {}", sim.url());
    Ok(sim)
}

/// Runs payer-sim until shutdown, as a background task of the suite.
fn payer_sim_task(sim: PayerSimHandle) -> BackgroundTask {
    BackgroundTask::new("payer-sim", move |shutdown| async move {
        shutdown.requested().await;
        sim.shutdown().await.map_err(|e| Box::new(e) as TaskError)
    })
}

/// With payer-sim in this process and no `[[payers]]` configured, points eligibility at
/// payer-sim for every payer in its catalog (and names a demo provider when none is set), so the
/// zero-setup suite checks eligibility end to end. Says so, because a real deployment
/// configures its clearinghouse instead.
fn with_demo_payers(loaded: LoadedConfig, sim: &PayerSimHandle) -> anyhow::Result<LoadedConfig> {
    let payers: Vec<PayerConnection> = sim
        .payer_ids()
        .iter()
        .map(|payer_id| PayerConnection {
            payer_id: payer_id.clone(),
            sender_id: "MEDBILL".to_owned(),
            receiver_id: payer_id.clone(),
            transport: TransportConfig::CoreHttp(CoreHttpConfig::new(sim.url())),
            batch_transport: None,
            retry: ConnectRetryPolicy::default(),
        })
        .collect();
    let mut loaded = loaded.with_value(medbill_eligibility::PAYERS_SECTION, payers);
    let eligibility: EligibilityConfig = loaded.section(medbill_eligibility::SECTION)?;
    if eligibility.default_provider.is_none() {
        loaded = loaded.with_value(
            "eligibility.default_provider",
            ProviderConfig {
                npi: "1234567893".to_owned(),
                organization_name: "MEDBILL DEMO CLINIC".to_owned(),
                tax_id: None,
            },
        );
    }
    let claims: medbill_claims::ClaimsConfig = loaded.section(medbill_claims::SECTION)?;
    if claims.submission.contact_phone.is_empty() {
        // payer-sim accepts any submitter contact; a real route needs the operator's own.
        loaded = loaded
            .with_value("claims.submission.contact_phone", "5555550100")
            .with_value("claims.submission.usage", "test");
    }
    println!(
        "eligibility, claims: no [[payers]] configured; payers {} are answered by the in-process payer-sim",
        sim.payer_ids().join(", ")
    );
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(
        service: ServiceKind,
        callees: &[ServiceKind],
        delivers: &[Destination],
        receives: &[Destination],
    ) -> Started {
        Started {
            service,
            callees: callees.to_vec(),
            delivers: delivers.to_vec(),
            receives: receives.to_vec(),
        }
    }

    #[test]
    fn split_mode_names_dependencies_without_an_endpoint() {
        let mut config = Config::default();
        let claims = || started(ServiceKind::Claims, &[ServiceKind::Eligibility], &[], &[]);
        let eligibility = || started(ServiceKind::Eligibility, &[], &[], &[]);
        let remittance = || {
            started(
                ServiceKind::Remittance,
                &[ServiceKind::Collections],
                &[],
                &[],
            )
        };
        assert_eq!(
            unreachable_dependencies(&config, &[claims()]),
            [(ServiceKind::Claims, ServiceKind::Eligibility)]
        );
        assert!(unreachable_dependencies(&config, &[claims(), eligibility()]).is_empty());
        config.endpoints.eligibility = Some("http://eligibility:50051".to_owned());
        assert!(unreachable_dependencies(&config, &[claims()]).is_empty());
        assert_eq!(
            unreachable_dependencies(&config, &[remittance()]),
            [(ServiceKind::Remittance, ServiceKind::Collections)]
        );
    }

    #[test]
    fn outbox_wiring_is_checked_against_the_registry() {
        let open = Destination::CollectionsOpenAccount;
        let sender = || started(ServiceKind::Remittance, &[], &[open], &[]);
        // The receiver in this process must declare it.
        let deaf = started(ServiceKind::Collections, &[], &[], &[]);
        let err = check_destinations(&[sender(), deaf]).expect_err("undeclared receiver");
        assert!(
            err.to_string().contains("collections does not declare"),
            "{err}"
        );
        let receiver = || started(ServiceKind::Collections, &[], &[], &[open]);
        check_destinations(&[sender(), receiver()]).expect("declared");
        // Split mode: the receiver runs elsewhere.
        check_destinations(&[sender()]).expect("receiver elsewhere");
        // A service cannot receive another's destination.
        let thief = started(ServiceKind::Claims, &[], &[], &[open]);
        let err = check_destinations(&[thief]).expect_err("wrong receiver");
        assert!(
            err.to_string().contains("addressed to collections"),
            "{err}"
        );
    }

    #[test]
    fn every_section_is_claimed_once_listed_and_the_registry_is_covered() {
        let sections = sections();
        for key in ["eligibility", "payers", "payer_sim"] {
            assert!(sections.contains(&key), "{key} missing from {sections:?}");
        }
        for key in medbill_runtime::config::runtime_keys() {
            assert!(!sections.contains(key), "{key} is the runtime's");
        }
        let kinds: Vec<ServiceKind> = SERVICES.iter().map(|d| d.service).collect();
        assert_eq!(
            kinds,
            ServiceKind::ALL,
            "one SERVICE per service, in start order"
        );
    }

    #[tokio::test]
    async fn the_whole_suite_wires_every_destination_and_stops_its_tasks() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("medbill-serve-test-{}", std::process::id()));
        let mut loaded = LoadedConfig::default().with_value("payer_sim.listen", "127.0.0.1:0");
        loaded.config_mut().data_dir = dir.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let running = start(&loaded, Target::All, listener).await?;
        assert_eq!(running.services, ServiceKind::ALL);
        let tasks = running.task_names();
        assert!(tasks.contains(&"payer-sim"), "{tasks:?}");
        assert!(tasks.contains(&"remittance outbox relay"), "{tasks:?}");
        // Every destination in the registry is delivered by some service and received by its
        // receiver.
        for d in Destination::ALL {
            assert!(
                running.started.iter().any(|s| s.delivers.contains(d)),
                "{d}: no service delivers it"
            );
            let receiver = running.started.iter().find(|s| s.service == d.receiver());
            assert!(
                receiver.is_some_and(|r| r.receives.contains(d)),
                "{d}: its receiver does not declare it"
            );
        }
        running.shutdown().await?;
        let _ = std::fs::remove_dir_all(dir);
        Ok(())
    }
}
