//! `medbill audit`: the operator's side of the audit trail (docs/audit.md). `export` writes the
//! records as JSON lines for a SIEM; `purge` deletes records older than the retention, the only
//! way a record ever leaves the trail.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use medbill::serve;
use medbill_runtime::config::{ConfigOverrides, ServiceKind};
use medbill_storage::Database;
use medbill_storage::audit::{self, AuditQuery, AuditRecord, Order};

/// Audit trail tools.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Write audit records as JSON lines (one object per call), oldest first per service.
    Export {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Only records at or after this time (`2026-01-31` or RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only records before this time (`2026-02-01` or RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Only this tenant's records (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Delete records older than the retention (`audit.retention_days`, six years by default),
    /// or than `--before` / `--older-than-days`. Prints how many went per service.
    Purge {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Delete records before this date (`2020-01-01` or RFC 3339).
        #[arg(long, conflicts_with = "older_than_days")]
        before: Option<String>,
        /// Delete records older than this many days.
        #[arg(long)]
        older_than_days: Option<u32>,
    },
}

/// Which databases to open: the configuration `serve` would use, or flags.
#[derive(Debug, clap::Args)]
pub struct DatabaseArgs {
    /// TOML configuration file (also `MEDBILL_CONFIG`).
    #[arg(long, env = "MEDBILL_CONFIG")]
    config: Option<PathBuf>,
    /// `postgres://...` or `sqlite://...` (config key `database_url`).
    #[arg(long)]
    database_url: Option<String>,
    /// Directory of the default SQLite databases (config key `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Only this service's records (default: all four).
    #[arg(long, value_parser = parse_service)]
    service: Vec<ServiceKind>,
}

fn parse_service(name: &str) -> Result<ServiceKind, String> {
    ServiceKind::ALL
        .into_iter()
        .find(|s| s.as_str() == name)
        .ok_or_else(|| {
            format!("unknown service {name:?}; one of eligibility, claims, remittance, collections")
        })
}

impl DatabaseArgs {
    /// Opens each chosen service's database, its platform tables migrated (as `serve` would).
    async fn open(&self) -> anyhow::Result<Vec<(ServiceKind, Database)>> {
        let overrides = ConfigOverrides {
            database_url: self.database_url.clone(),
            data_dir: self.data_dir.clone(),
            ..ConfigOverrides::default()
        };
        let loaded = serve::load_config(self.config.as_deref(), &overrides)
            .map_err(|e| anyhow::anyhow!("loading configuration: {e}"))?;
        let config = loaded.config();
        let services = if self.service.is_empty() {
            ServiceKind::ALL.to_vec()
        } else {
            self.service.clone()
        };
        let mut out = Vec::new();
        for service in services {
            let db = Database::connect(
                &config.effective_database_url(),
                &config.database_pool,
                service.as_str(),
            )
            .await
            .with_context(|| format!("{service}: opening {}", config.database_url_for_display()))?;
            db.migrate_platform()
                .await
                .with_context(|| format!("{service}: platform migrations"))?;
            out.push((service, db));
        }
        Ok(out)
    }
}

/// Reads `2026-01-31` (midnight UTC) or an RFC 3339 time as unix microseconds.
fn parse_time(flag: &str, value: &str) -> anyhow::Result<i64> {
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let midnight = date.and_hms_opt(0, 0, 0).context("midnight exists")?;
        return Ok(midnight.and_utc().timestamp_micros());
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc).timestamp_micros())
        .with_context(|| format!("--{flag} {value:?}: expected YYYY-MM-DD or an RFC 3339 time"))
}

/// Runs an audit command.
pub async fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Export {
            database,
            since,
            until,
            tenant,
            output,
        } => {
            let query = AuditQuery {
                tenant_id: tenant,
                since: since
                    .as_deref()
                    .map(|s| parse_time("since", s))
                    .transpose()?,
                until: until
                    .as_deref()
                    .map(|s| parse_time("until", s))
                    .transpose()?,
                ..AuditQuery::default()
            };
            let databases = database.open().await?;
            let mut out: Box<dyn std::io::Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut written = 0u64;
            for (service, db) in &databases {
                written += export(db, &query, &mut out)
                    .await
                    .with_context(|| format!("{service}: exporting"))?;
            }
            out.flush().context("writing the export")?;
            if let Some(path) = output {
                eprintln!("{written} audit records written to {}", path.display());
            }
            Ok(())
        }
        AuditCommand::Purge {
            database,
            before,
            older_than_days,
        } => {
            let before = match (before, older_than_days) {
                (Some(date), _) => parse_time("before", &date)?,
                (None, days) => {
                    let days = match days {
                        Some(days) => days,
                        None => {
                            let overrides = ConfigOverrides::default();
                            serve::load_config(database.config.as_deref(), &overrides)
                                .map_err(|e| anyhow::anyhow!("loading configuration: {e}"))?
                                .config()
                                .audit
                                .retention_days
                        }
                    };
                    (Utc::now() - chrono::Duration::days(i64::from(days))).timestamp_micros()
                }
            };
            let cutoff = medbill_storage::time::from_micros(before)
                .map_or_else(|| before.to_string(), |t| t.to_rfc3339());
            for (service, db) in database.open().await? {
                let deleted = audit::purge(&db, before)
                    .await
                    .with_context(|| format!("{service}: purging"))?;
                println!("{service}: {deleted} audit records before {cutoff} deleted");
            }
            Ok(())
        }
    }
}

/// Writes one database's records matching `query` as JSON lines; returns how many.
async fn export(
    db: &Database,
    query: &AuditQuery,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<u64> {
    const PAGE: u32 = 1000;
    let mut cursor: Option<String> = None;
    let mut written = 0u64;
    loop {
        let page = audit::list(db, query, Order::OldestFirst, cursor.as_deref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        cursor = Some(last.id.clone());
        let full = page.len() == PAGE as usize;
        for record in page {
            serde_json::to_writer(&mut *out, &json_line(record))?;
            out.write_all(b"\n")?;
            written += 1;
        }
        if !full {
            break;
        }
    }
    Ok(written)
}

/// One record as a SIEM reads it.
fn json_line(r: AuditRecord) -> serde_json::Value {
    let time = medbill_storage::time::from_micros(r.occurred_at).map(|t| t.to_rfc3339());
    serde_json::json!({
        "id": r.id,
        "time": time,
        "tenant": r.tenant_id,
        "subject": r.subject,
        "peer": r.peer,
        "service": r.service,
        "method": r.method,
        "resources": r.resources.iter().map(|(kind, id)| serde_json::json!({"type": kind, "id": id})).collect::<Vec<_>>(),
        "resources_truncated": r.resources_truncated,
        "code": r.code,
        "code_name": format!("{:?}", tonic::Code::from(r.code)),
        "trace_id": r.trace_id,
    })
}
