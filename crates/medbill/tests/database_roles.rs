//! How a deployment shares one PostgreSQL database (docs/deploy.md): several replicas starting at
//! once migrate one fresh database without stepping on each other, and a service whose role owns
//! only its own schema starts with no other privilege and cannot read another service's tables,
//! and cannot change or delete its own audit rows except through the operator's purge.
//! PostgreSQL only (skipped without `MEDBILL_TEST_PG_URL`).

mod common;

use std::path::Path;
use std::process::Child;

use common::{medbill, stdout_until, stop};
use medbill_storage::Backend;
use medbill_storage::testing::{self, PG_URL_ENV, TestEnv};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

const SERVICES: [&str; 4] = ["eligibility", "claims", "remittance", "collections"];

/// `medbill serve --target <target>` on `url`, every listener on a free port.
fn serve(target: &str, url: &str) -> Child {
    medbill(&[
        "--target",
        target,
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        url,
    ])
    .env("MEDBILL_PAYER_SIM__LISTEN", "127.0.0.1:0")
    .spawn()
    .expect("medbill starts")
}

/// The number of migration files in `dir` (relative to the workspace root).
fn migration_count(dir: &str) -> i64 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(dir);
    let count = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    i64::try_from(count).expect("a small count")
}

/// `url` with its user replaced by `role` (trust authentication on the test server).
fn as_role(url: &str, role: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let host_and_db = rest.split_once('@').map_or(rest, |(_, after)| after);
    format!("{scheme}://{role}@{host_and_db}")
}

#[test]
fn two_processes_starting_at_once_migrate_one_fresh_database_once() {
    testing::run(
        Backend::Postgres,
        "two_processes_migrate_one_fresh_database",
        "deploy_test",
        None,
        |env: TestEnv| async move {
            // Both start before either has migrated anything: the race replicas see in a rollout.
            let mut first = serve("all", env.url());
            let mut second = serve("all", env.url());
            stdout_until(&mut first, "medbill listening");
            stdout_until(&mut second, "medbill listening");
            stop(first);
            stop(second);

            let mut conn = PgConnection::connect(env.url()).await.expect("connect");
            let platform = migration_count("crates/storage/migrations/postgres");
            for service in SERVICES {
                let own = migration_count(&format!("services/{service}/migrations/postgres"));
                let (applied, all_succeeded): (i64, bool) = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT count(*), coalesce(bool_and(success), false) FROM \"{service}\"._sqlx_migrations"
                )))
                .fetch_one(&mut conn)
                .await
                .expect("the service's migrations table");
                assert_eq!(
                    (applied, all_succeeded),
                    (own, true),
                    "{service}: each migration applied once"
                );
                let (platform_applied,): (i64,) = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT count(*) FROM \"{service}\"._medbill_platform_migrations"
                )))
                .fetch_one(&mut conn)
                .await
                .expect("the platform migrations table");
                assert_eq!(platform_applied, platform, "{service}: platform migrations");
            }
            conn.close().await.ok();
        },
    );
}

/// Login roles made for one test, dropped when it ends (also when it fails).
struct Roles {
    names: Vec<String>,
}

impl Drop for Roles {
    fn drop(&mut self) {
        let Ok(server) = std::env::var(PG_URL_ENV) else {
            return;
        };
        let names = std::mem::take(&mut self.names);
        // The test's runtime is still running here: clean up from a thread with its own.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async {
                let mut conn = PgConnection::connect(&server).await.expect("connect");
                // The test database, with everything the roles own, is dropped by then.
                for name in names {
                    let drop_role = format!("DROP ROLE IF EXISTS \"{name}\"");
                    if let Err(e) = conn.execute(AssertSqlSafe(drop_role)).await {
                        eprintln!("warning: cannot drop test role {name}: {e}");
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

#[test]
fn a_service_role_owning_only_its_schema_starts_and_cannot_read_another_schema() {
    if std::env::var(PG_URL_ENV).is_err() {
        eprintln!("note: skipping: {PG_URL_ENV} is not set");
        return;
    }
    let run = uuid::Uuid::new_v4().simple().to_string();
    let role = |service: &str| format!("medbill_t{}_{service}", &run[..8]);
    let roles = Roles {
        names: vec![role("claims"), role("eligibility")],
    };
    testing::run(
        Backend::Postgres,
        "a_service_role_owning_only_its_schema",
        "deploy_test",
        None,
        |env: TestEnv| async move {
            let mut admin = PgConnection::connect(env.url()).await.expect("connect");
            for service in ["claims", "eligibility"] {
                let name = role(service);
                // What the CloudNativePG bootstrap does (deploy/k8s/postgres): a login role per
                // service, owning its schema, and nothing else.
                for sql in [
                    format!("CREATE ROLE \"{name}\" LOGIN"),
                    format!("CREATE SCHEMA \"{service}\" AUTHORIZATION \"{name}\""),
                ] {
                    admin.execute(AssertSqlSafe(sql)).await.expect("setup");
                }
            }
            admin.close().await.ok();

            let claims_url = as_role(env.url(), &role("claims"));
            let mut claims_conn = PgConnection::connect(&claims_url).await.expect("connect");
            let create = claims_conn
                .execute("CREATE SCHEMA not_allowed")
                .await
                .expect_err("the role may not create schemas");
            assert!(create.to_string().contains("permission denied"), "{create}");

            let mut claims = serve("claims", &claims_url);
            let mut eligibility = serve("eligibility", &as_role(env.url(), &role("eligibility")));
            stdout_until(&mut claims, "medbill listening");
            stdout_until(&mut eligibility, "medbill listening");
            stop(claims);
            stop(eligibility);

            // Its own tables are there and readable; the other service's are not.
            let (own,): (i64,) = sqlx::query_as("SELECT count(*) FROM claims._sqlx_migrations")
                .fetch_one(&mut claims_conn)
                .await
                .expect("its own schema");
            assert_eq!(own, migration_count("services/claims/migrations/postgres"));
            let denied = sqlx::query("SELECT count(*) FROM eligibility._sqlx_migrations")
                .fetch_one(&mut claims_conn)
                .await
                .expect_err("another service's schema");
            assert!(
                denied
                    .to_string()
                    .contains("permission denied for schema eligibility"),
                "{denied}"
            );

            // The audit trail binds the role that owns it: no UPDATE or DELETE of its rows...
            for sql in [
                "UPDATE claims.platform_audit SET subject = 'someone-else'",
                "DELETE FROM claims.platform_audit",
            ] {
                let refused = claims_conn
                    .execute(sql)
                    .await
                    .expect_err("the owner may not change audit rows");
                assert!(
                    refused.to_string().contains("permission denied"),
                    "{refused}"
                );
            }
            // ...but the operator's purge, run as that role, gets past both for its own
            // transaction only.
            let db = medbill_storage::Database::connect(
                &claims_url,
                &testing::test_pool_settings(),
                "claims",
            )
            .await
            .expect("connect as the claims role");
            medbill_storage::audit::purge(&db, 0)
                .await
                .expect("the purge runs as the owning role");
            db.close().await;
            let refused = claims_conn
                .execute("DELETE FROM claims.platform_audit")
                .await
                .expect_err("DELETE refused again after the purge");
            assert!(
                refused.to_string().contains("permission denied"),
                "{refused}"
            );
            claims_conn.close().await.ok();
        },
    );
    drop(roles);
}
