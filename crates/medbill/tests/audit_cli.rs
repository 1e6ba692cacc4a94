//! `medbill audit export` and `medbill audit purge` as an operator runs them, against each
//! service's database: the export writes one JSON object per record, filtered by time and
//! tenant; the purge deletes only records older than its cutoff. SQLite always; PostgreSQL
//! with `MEDBILL_TEST_PG_URL`.

use std::process::Command;

use medbill_storage::audit::{self, AuditQuery, AuditRecord, Order};
use medbill_storage::testing::TestEnv;

fn record(id: &str, day: &str, tenant: &str) -> AuditRecord {
    let at = chrono::DateTime::parse_from_rfc3339(&format!("{day}T12:00:00Z"))
        .expect("a time")
        .timestamp_micros();
    AuditRecord {
        id: id.to_owned(),
        occurred_at: at,
        tenant_id: tenant.to_owned(),
        subject: "token:0a1b2c".to_owned(),
        peer: Some("10.0.0.7:40000".to_owned()),
        service: "medbill.claims.v1.ClaimsService".to_owned(),
        method: "GetClaim".to_owned(),
        resources: vec![("claim".to_owned(), format!("claim-{id}"))],
        resources_truncated: false,
        code: 0,
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned()),
    }
}

/// `medbill audit <args> --database-url URL --service claims`.
fn audit_cmd(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medbill"));
    cmd.arg("audit")
        .args(args)
        .args(["--database-url", env.url(), "--service", "claims"])
        .env_remove("MEDBILL_CONFIG");
    cmd
}

fn run_ok(mut cmd: Command) -> String {
    let out = cmd.output().expect("medbill runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

medbill_storage::conformance_tests! {
    async fn export_writes_json_lines_and_purge_deletes_only_older_records(env: TestEnv) -> anyhow::Result<()> {
        let db = env.connect("claims").await?;
        audit::insert_batch(&db, &[
            record("0001", "2019-05-01", "clinic-a"),
            record("0002", "2026-02-01", "clinic-a"),
            record("0003", "2026-02-02", "clinic-b"),
        ]).await?;

        let stdout = run_ok(audit_cmd(&env, &["export", "--since", "2026-01-01"]));
        let lines: Vec<serde_json::Value> = stdout
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        let ids: Vec<&str> = lines.iter().filter_map(|l| l["id"].as_str()).collect();
        assert_eq!(ids, ["0002", "0003"]);
        assert_eq!(lines[0]["method"], "GetClaim");
        assert_eq!(lines[0]["tenant"], "clinic-a");
        assert_eq!(lines[0]["code_name"], "Ok");
        assert_eq!(lines[0]["resources"][0]["type"], "claim");
        assert_eq!(lines[0]["resources"][0]["id"], "claim-0002");
        assert_eq!(lines[0]["time"], "2026-02-01T12:00:00+00:00");

        let file = tempfile::NamedTempFile::new()?;
        let path = file.path().to_str().expect("a UTF-8 path").to_owned();
        run_ok(audit_cmd(&env, &["export", "--tenant", "clinic-b", "--output", &path]));
        let written = std::fs::read_to_string(&path)?;
        assert_eq!(written.lines().count(), 1);
        assert!(written.contains("\"0003\""), "{written}");

        let stdout = run_ok(audit_cmd(&env, &["purge", "--before", "2020-01-01"]));
        assert!(stdout.contains("claims: 1 audit records before 2020-01-01"), "{stdout}");
        let left = audit::list(&db, &AuditQuery::default(), Order::OldestFirst, None, 10).await?;
        assert_eq!(left.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["0002", "0003"]);
        // The default retention (six years) keeps both.
        let stdout = run_ok(audit_cmd(&env, &["purge"]));
        assert!(stdout.contains("claims: 0 audit records"), "{stdout}");
        Ok(())
    }
}
