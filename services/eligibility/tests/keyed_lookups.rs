//! Look-ups by idempotency key or id use their unique index whatever the planner statistics say.
//!
//! On a fresh database that was never analysed (autovacuum off for its tables), empty and then
//! holding tens, hundreds and a few thousand rows per table, `EXPLAIN` of every keyed look-up the
//! eligibility store makes, and of the `platform_idempotency` statements
//! `medbill_storage::idempotency` runs for it, must show an index scan on the unique index whose
//! columns the `WHERE` names exactly: on PostgreSQL for the plan of the literal query and for the
//! generic plan of the prepared one (a prepared statement planned while the table is small keeps
//! its plan as the table grows), on SQLite a search using the table's primary key.

use medbill_eligibility::store::{KEYED_LOOKUPS, KeyedLookup, PG_MIGRATOR, SQLITE_MIGRATOR};
use medbill_storage::{Backend, Database, with_db};
use sqlx::{AssertSqlSafe, Row};

/// Table sizes the plans are checked at, in rows per table.
const SIZES: [i64; 5] = [0, 10, 100, 1000, 3000];

/// The `platform_idempotency` statements of `medbill_storage::idempotency` that every
/// eligibility RPC runs through `medbill_runtime::idempotent` (the key look-up of `lookup` and of
/// `reserve` after a conflicting insert, and `complete`'s update), as that crate writes them.
const PLATFORM_STATEMENTS: &[KeyedLookup] = &[
    KeyedLookup {
        name: "idempotency key look-up",
        sql: "SELECT request_sha256, response FROM platform_idempotency \
              WHERE tenant_id = $1 AND scope = $2 AND idem_key = $3",
        table: "platform_idempotency",
        index: "platform_idempotency_pkey",
        params: 3,
    },
    KeyedLookup {
        name: "idempotency completion",
        sql: "UPDATE platform_idempotency SET completed_at = 1 \
              WHERE tenant_id = $1 AND scope = $2 AND idem_key = $3 AND response IS NULL",
        table: "platform_idempotency",
        index: "platform_idempotency_pkey",
        params: 3,
    },
];

/// Adds rows `from..=to` to every table the look-ups read, over three tenants, in portable SQL.
async fn fill(db: &Database, from: i64, to: i64) -> anyhow::Result<()> {
    if from > to {
        return Ok(());
    }
    let series = "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $3) ";
    let statements = [
        "INSERT INTO coverages (tenant_id, id, patient_ref, payer_id, payer_name, member_id, \
         subscriber_first_name, subscriber_last_name, subscriber_birth_date, \
         relationship_to_subscriber, coverage_order, effective_date, created_at, updated_at) \
         SELECT 't-' || (i % 3), 'id-' || i, 'p-' || i, 'PAYER', 'PAYER', 'M' || i, 'F', 'L', \
         '1980-01-01', '18', 'PRIMARY', '2026-01-01', i, i FROM n",
        "INSERT INTO eligibility_checks (tenant_id, id, idempotency_key, \
         coverage_id, patient_ref, payer_id, member_id, provider_npi, date_of_service, \
         service_type_codes, status, coverage_status, trace_number, aaa_codes, detail, raw_270, \
         payer_attempts, created_at) \
         SELECT 't-' || (i % 3), 'id-' || i, 'key-' || i, 'id-' || (i % 50), 'p-' || (i % 7), \
         'PAYER', 'M', '1234567893', '2026-03-02', '30', 'COMPLETED', 'ACTIVE', 'T', '', $2, $2, \
         1, i FROM n",
        "INSERT INTO cost_estimates (tenant_id, id, patient_ref, date_of_service, self_pay, \
         total_charge, total_allowed, total_patient, detail, created_at) \
         SELECT 't-' || (i % 3), 'id-' || i, 'p-' || (i % 7), '2026-03-02', false, 1, 1, 1, $2, i \
         FROM n",
        "INSERT INTO platform_idempotency (tenant_id, scope, idem_key, request_sha256, response, \
         created_at, completed_at) \
         SELECT 't-' || (i % 3), 'medbill.eligibility.v1.EligibilityService/CheckEligibility', \
         'key-' || i, 'f', $2, i, i FROM n",
    ];
    for statement in statements {
        let sql = format!("{series}{statement}");
        with_db!(db, |pool| {
            sqlx::query(AssertSqlSafe(sql))
                .bind(from)
                .bind(vec![0u8])
                .bind(to)
                .execute(pool)
                .await?;
        });
    }
    Ok(())
}

/// The values a look-up is asked with (a row of tenant `t-0` once there are enough rows).
fn arguments(lookup: &KeyedLookup) -> Vec<&'static str> {
    match lookup.params {
        3 => vec![
            "t-0",
            "medbill.eligibility.v1.EligibilityService/CheckEligibility",
            "key-6",
        ],
        _ => vec!["t-0", "id-6"],
    }
}

/// Returns the statement with `$n` replaced by the quoted arguments.
fn with_literals(sql: &str, args: &[&str]) -> String {
    let mut out = sql.to_owned();
    // Highest first, so `$1` does not eat the start of `$10`.
    for (i, arg) in args.iter().enumerate().rev() {
        out = out.replace(&format!("${}", i + 1), &format!("'{arg}'"));
    }
    out
}

/// Returns the columns the statement's `WHERE` compares for equality with a parameter.
fn key_columns(sql: &str) -> Vec<String> {
    let Some((_, filter)) = sql.split_once("WHERE") else {
        return Vec::new();
    };
    filter
        .split("AND")
        .filter_map(|part| part.split_once("= $"))
        .map(|(column, _)| column.trim().to_owned())
        .collect()
}

/// Checks a PostgreSQL plan: an index scan on the expected index, every key column in its
/// index condition, no sequential or bitmap scan.
fn assert_pg_plan(lookup: &KeyedLookup, plan: &str, which: &str) {
    let scan = format!("Scan using {} on {}", lookup.index, lookup.table);
    assert!(
        plan.contains(&format!("Index {scan}")) || plan.contains(&format!("Index Only {scan}")),
        "{} ({which}) does not use {}:\n{plan}",
        lookup.name,
        lookup.index
    );
    assert!(
        !plan.contains("Seq Scan") && !plan.contains("Bitmap"),
        "{} ({which}):\n{plan}",
        lookup.name
    );
    let condition = plan
        .lines()
        .find(|l| l.trim_start().starts_with("Index Cond:"))
        .unwrap_or_default();
    for column in key_columns(lookup.sql) {
        assert!(
            condition.contains(&format!("({column} =")),
            "{} ({which}): {column} is not in the index condition:\n{plan}",
            lookup.name
        );
    }
}

async fn explain_postgres(
    pool: &sqlx::PgPool,
    lookup: &KeyedLookup,
    rows: i64,
) -> anyhow::Result<()> {
    let args = arguments(lookup);
    let mut conn = pool.acquire().await?;
    let lines = |rows: Vec<sqlx::postgres::PgRow>| {
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    };
    // The plan for these values (a custom plan).
    let literal = format!("EXPLAIN {}", with_literals(lookup.sql, &args));
    let plan = sqlx::query(AssertSqlSafe(literal))
        .fetch_all(&mut *conn)
        .await?;
    assert_pg_plan(lookup, &lines(plan), &format!("custom plan, {rows} rows"));
    // The plan a prepared statement settles on after a few executions (a generic plan).
    sqlx::query("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await?;
    sqlx::query(AssertSqlSafe(format!("PREPARE keyed AS {}", lookup.sql)))
        .execute(&mut *conn)
        .await?;
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let plan = sqlx::query(AssertSqlSafe(format!(
        "EXPLAIN EXECUTE keyed({})",
        quoted.join(", ")
    )))
    .fetch_all(&mut *conn)
    .await?;
    assert_pg_plan(lookup, &lines(plan), &format!("generic plan, {rows} rows"));
    sqlx::query("DEALLOCATE keyed").execute(&mut *conn).await?;
    sqlx::query("RESET plan_cache_mode")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn explain_sqlite(
    pool: &sqlx::SqlitePool,
    lookup: &KeyedLookup,
    rows: i64,
) -> anyhow::Result<()> {
    let sql = format!(
        "EXPLAIN QUERY PLAN {}",
        with_literals(lookup.sql, &arguments(lookup))
    );
    let steps = sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await?;
    let plan: Vec<String> = steps
        .iter()
        .map(|r| r.try_get::<String, _>("detail").unwrap_or_default())
        .collect();
    let primary_key = format!("sqlite_autoindex_{}_1", lookup.table);
    let columns = key_columns(lookup.sql);
    let uses_key = plan.iter().any(|step| {
        step.starts_with(&format!("SEARCH {}", lookup.table))
            && (step.contains(&format!("USING INDEX {primary_key} ("))
                || step.contains(&format!("USING COVERING INDEX {primary_key} ("))
                || step.contains("USING PRIMARY KEY ("))
            && columns.iter().all(|c| step.contains(&format!("{c}=?")))
    });
    assert!(
        uses_key,
        "{} ({rows} rows) does not search {}'s primary key on {columns:?}: {plan:?}",
        lookup.name, lookup.table
    );
    Ok(())
}

medbill_storage::conformance_tests! {
    namespace = "eligibility";
    migrations = (&PG_MIGRATOR, &SQLITE_MIGRATOR);

    async fn keyed_lookups_use_their_unique_index_without_statistics(db: Database) -> anyhow::Result<()> {
        let tables = ["coverages", "eligibility_checks", "cost_estimates", "platform_idempotency"];
        if db.backend() == Backend::Postgres {
            for table in tables {
                with_db!(db, |pool| {
                    sqlx::query(AssertSqlSafe(format!(
                        "ALTER TABLE {table} SET (autovacuum_enabled = false)"
                    )))
                    .execute(pool)
                    .await?;
                });
            }
        }
        let mut filled = 0;
        for rows in SIZES {
            fill(&db, filled + 1, rows).await?;
            filled = rows;
            match &db {
                Database::Postgres(pool) => {
                    for table in tables {
                        let (tuples,): (f32,) = sqlx::query_as(
                            "SELECT reltuples FROM pg_class \
                             WHERE relname = $1 AND relnamespace = current_schema()::regnamespace",
                        )
                        .bind(table)
                        .fetch_one(pool)
                        .await?;
                        assert!(tuples < 0.0, "{table} has statistics ({tuples} tuples)");
                    }
                    for lookup in KEYED_LOOKUPS.iter().chain(PLATFORM_STATEMENTS) {
                        explain_postgres(pool, lookup, rows).await?;
                    }
                }
                Database::Sqlite(pool) => {
                    let (analysed,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'",
                    )
                    .fetch_one(pool)
                    .await?;
                    assert_eq!(analysed, 0, "never analysed");
                    for lookup in KEYED_LOOKUPS.iter().chain(PLATFORM_STATEMENTS) {
                        explain_sqlite(pool, lookup, rows).await?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[test]
fn every_lookup_names_its_key_columns() {
    for lookup in KEYED_LOOKUPS.iter().chain(PLATFORM_STATEMENTS) {
        assert_eq!(
            key_columns(lookup.sql).len(),
            lookup.params,
            "{}: {}",
            lookup.name,
            lookup.sql
        );
    }
}
