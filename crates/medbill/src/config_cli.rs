//! `medbill config check`: loads the configuration exactly as `medbill serve` would (file,
//! `MEDBILL_*` environment, every service's own checks) without starting anything, so a
//! ConfigMap or an environment can be checked before a rollout.

use std::path::PathBuf;

use medbill::serve;
use medbill_runtime::config::{self, ConfigOverrides};

/// Configuration tools.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Load the configuration as `serve` would and report the first problem (exit 1), or
    /// `configuration OK` (exit 0). `MEDBILL_*` variables that are no setting (`serve` ignores
    /// them, so a misspelt name would silently fall back to a default) are listed as warnings.
    Check {
        /// The TOML file (else `MEDBILL_CONFIG`, else defaults and environment only).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Fail on `MEDBILL_*` variables that are no setting, instead of warning.
        #[arg(long)]
        deny_unknown_env: bool,
    },
}

/// Runs a config command.
pub fn run(command: ConfigCommand) -> anyhow::Result<()> {
    let ConfigCommand::Check {
        config,
        deny_unknown_env,
    } = command;
    serve::load_config(config.as_deref(), &ConfigOverrides::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let ignored = ignored_variables(std::env::vars_os().map(|(name, _)| name));
    for name in &ignored {
        eprintln!("warning: {name} is no medbill setting; `medbill serve` ignores it");
    }
    if deny_unknown_env && !ignored.is_empty() {
        anyhow::bail!("{} MEDBILL_* variable(s) are no setting", ignored.len());
    }
    println!("configuration OK");
    Ok(())
}

/// The `MEDBILL_*` variables whose first key segment neither the runtime nor a service claims
/// (the same filter the loader applies), except `MEDBILL_CONFIG` which names the file.
fn ignored_variables(names: impl Iterator<Item = std::ffi::OsString>) -> Vec<String> {
    let sections = serve::sections();
    let mut ignored: Vec<String> = names
        .filter_map(|n| n.into_string().ok())
        .filter(|name| name != config::CONFIG_FILE_ENV)
        .filter(|name| {
            name.strip_prefix(config::ENV_PREFIX).is_some_and(|rest| {
                !config::is_claimed_segment(rest.split("__").next().unwrap_or_default(), &sections)
            })
        })
        .collect();
    ignored.sort();
    ignored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_variables_outside_every_section_are_ignored() {
        let names = [
            "MEDBILL_DATABASE_URL",
            "MEDBILL_OUTBOX__OWNER",
            "MEDBILL_CLAIMS__SUBMISSION__USAGE",
            "MEDBILL_CONFIG",
            "MEDBILL_DATABSE_URL",
            "MEDBILL_TEST_PG_URL",
            "PATH",
        ];
        assert_eq!(
            ignored_variables(names.iter().map(Into::into)),
            ["MEDBILL_DATABSE_URL", "MEDBILL_TEST_PG_URL"]
        );
    }
}
