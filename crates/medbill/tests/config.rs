//! The configuration as `medbill serve` loads it: the documented hospital example loads through
//! the real loader with the values it shows, and docs/configuration.md names every section.

use std::path::{Path, PathBuf};

use medbill::serve;
use medbill_connect::TransportConfig;
use medbill_eligibility::{EligibilityConfig, EligibilitySettings};
use medbill_runtime::config::{ConfigOverrides, LogFormat, ServiceKind};

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

#[test]
fn the_hospital_split_example_loads_with_its_values() {
    let file = docs().join("examples/hospital-split.toml");
    let loaded = serve::load_config(Some(&file), &ConfigOverrides::default())
        .unwrap_or_else(|e| panic!("{} must load: {e}", file.display()));

    let config = loaded.config();
    assert_eq!(config.listen.to_string(), "0.0.0.0:50051");
    assert_eq!(
        config.endpoints.get(ServiceKind::Collections),
        Some("http://collections.medbill.svc:50051")
    );
    assert_eq!(config.grpc.max_decoding_message_size, 32 * 1024 * 1024);
    assert_eq!(config.grpc.shutdown_grace_ms, 5_000);
    assert_eq!(config.telemetry.log_format, LogFormat::Json);
    assert_eq!(config.outbox.batch_size, 500);
    assert_eq!(config.database_pool.max_connections, 20);
    let oidc = config.auth.oidc.as_ref().expect("[auth.oidc]");
    assert_eq!(oidc.audience, ["medbill"]);
    assert_eq!(oidc.algorithms, ["RS256", "PS256", "ES256"]);

    let (eligibility, payers) = EligibilityConfig::load(&loaded).expect("eligibility section");
    assert_eq!(eligibility.cache_ttl_secs, 43_200);
    assert_eq!(
        eligibility
            .provider_for("st-marys-clinic")
            .map(|p| p.organization_name.as_str()),
        Some("ST MARYS FAMILY CLINIC")
    );
    assert_eq!(
        eligibility
            .provider_for("another-tenant")
            .map(|p| p.npi.as_str()),
        Some("1234567893"),
        "the default provider answers for tenants without their own"
    );
    assert_eq!(eligibility.fee_schedules.len(), 3);
    assert_eq!(
        eligibility.fee_schedules[1].payer_id, None,
        "self-pay rates"
    );
    assert_eq!(
        payers
            .iter()
            .map(|p| p.payer_id.as_str())
            .collect::<Vec<_>>(),
        ["60054", "BCBSX"]
    );
    assert!(matches!(
        &payers[0].batch_transport,
        Some(TransportConfig::Mailbox(m)) if m.dir == Path::new("/var/lib/medbill/mailbox/clearinghouse")
    ));
    assert_eq!(payers[0].retry.initial_backoff_ms, 200);

    // What eligibility checks at its start (NPIs, fee amounts) holds too.
    let settings =
        EligibilitySettings::from_config(&eligibility, &payers).expect("usable settings");
    assert_eq!(
        settings
            .allowed_amount("st-marys-clinic", Some("60054"), "99214")
            .map(|m| m.to_string()),
        Some("131.50".to_owned())
    );
    assert_eq!(settings.payer_ids("60054").sender_id, "STMARYS01");
}

#[test]
fn configuration_md_documents_every_top_level_key_and_section() {
    let text = std::fs::read_to_string(docs().join("configuration.md")).expect("docs");
    let keys = medbill_runtime::config::runtime_keys()
        .iter()
        .copied()
        .chain(serve::sections());
    for key in keys {
        assert!(
            text.contains(&format!("| `{key}")) || text.contains(&format!("| `{key}.")),
            "docs/configuration.md has no row for `{key}`"
        );
    }
    for section in ["[eligibility]", "[[payers]]", "[claims]", "[payer_sim]"] {
        assert!(text.contains(section), "no heading for {section}");
    }
    for key in [
        "eligibility.default_provider.npi",
        "eligibility.providers.<tenant>",
        "eligibility.fee_schedules[].allowed",
        "eligibility.cache_max_entries",
        "payers[].transport.credentials",
        "payer_sim.listen",
        "claims.code_sets.icd10cm[].valid_from",
        "claims.code_sets.ncci.ptp_practitioner",
        "claims.payers[].timely_filing_days",
        "claims.payers[].procedures_requiring_authorization",
    ] {
        assert!(
            text.contains(key),
            "docs/configuration.md does not name {key}"
        );
    }
}

/// `medbill config check` with only the given `MEDBILL_*` variables.
fn config_check(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_medbill"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MEDBILL_") {
            cmd.env_remove(name);
        }
    }
    cmd.args(["config", "check"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("medbill runs")
}

#[test]
fn config_check_loads_as_serve_does_and_names_what_is_wrong() {
    let file = docs().join("examples/hospital-split.toml");
    let file = file.to_str().expect("UTF-8 path");

    let ok = config_check(&["--config", file], &[]);
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "configuration OK\n");

    let typo = config_check(&["--config", file], &[("MEDBILL_OUTBOX__OWNERR", "pod-1")]);
    assert!(!typo.status.success());
    assert!(
        String::from_utf8_lossy(&typo.stderr).contains("MEDBILL_OUTBOX__OWNERR"),
        "{typo:?}"
    );

    // A misspelt first segment is no setting at all: serve ignores it, check warns or fails.
    let stray = [("MEDBILL_DATABSE_URL", "postgres://x@db/medbill")];
    let warned = config_check(&["--config", file], &stray);
    assert!(warned.status.success(), "{warned:?}");
    assert!(
        String::from_utf8_lossy(&warned.stderr).contains("warning: MEDBILL_DATABSE_URL"),
        "{warned:?}"
    );
    let denied = config_check(&["--config", file, "--deny-unknown-env"], &stray);
    assert!(!denied.status.success(), "{denied:?}");

    // What a service checks at its start fails here too (an NPI with a bad check digit).
    let bad_npi = config_check(
        &["--config", file],
        &[(
            "MEDBILL_ELIGIBILITY__DEFAULT_PROVIDER",
            r#"{npi="1234567890", organization_name="X"}"#,
        )],
    );
    assert!(!bad_npi.status.success(), "{bad_npi:?}");
}
