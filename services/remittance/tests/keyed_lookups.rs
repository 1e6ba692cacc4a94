//! Look-ups by key or id read the rows asked for, through an index on the key, whatever the
//! planner statistics say.
//!
//! On a fresh database that was never analysed (autovacuum off for its tables), empty and then
//! growing to 12,000 rows per table, `EXPLAIN` of every keyed look-up the remittance store
//! makes (and of the foreign-key check PostgreSQL runs against `eras` for each child row) must
//! show an index scan on one of the expected indexes with the key columns in its index condition,
//! and no sequential scan: on PostgreSQL for the plan of the literal query (a custom plan) and for
//! the generic plan of the prepared one (a prepared statement planned while the table is small
//! keeps its plan as the table grows), on SQLite for `EXPLAIN QUERY PLAN` of the statement as
//! prepared.
//!
//! The statements are copied from `src/store.rs` (keep them in step).

use medbill_remittance::store::{PG_MIGRATOR, SQLITE_MIGRATOR};
use medbill_storage::{Database, with_db};
use sqlx::{AssertSqlSafe, Row};

use Arg::Text;

/// ERA 6 (of tenant `t-0`), which the look-ups ask for: its id and content hash.
const ID_6: &str = "0190f3a2-0000-7000-8000-100000000006";
const SHA_6: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// The tables the look-ups read.
const TABLES: [&str; 3] = ["eras", "era_balance_problems", "era_provider_adjustments"];

const TENANT_AND_ID: &[(&str, &str)] = &[("tenant_id", "="), ("id", "=")];
const TENANT_AND_ERA: &[(&str, &str)] = &[("tenant_id", "="), ("era_id", "=")];

const ID: &[(&str, &str)] = &[("id", "=")];

/// `eras` by id: the hash index on id (migration 0002), or either unique index.
const ERA_BY_ID: Use = Use {
    table: "eras",
    alias: None,
    pg: &[
        index("eras_id_hash_idx", ID),
        index("eras_pkey", TENANT_AND_ID),
        index("eras_id_key", ID),
    ],
    sqlite: &[
        index("sqlite_autoindex_eras_1", TENANT_AND_ID),
        index("eras_id_key", ID),
    ],
};

/// The store's keyed look-ups, as `src/store.rs` writes them.
const LOOKUPS: &[Lookup] = &[
    Lookup {
        name: "ERA by id",
        sql: "SELECT id, received_at, updated_at, content_sha256, byte_size, status, \
              rejection_reason, file_name, handling_code, payer_name, payer_id, payee_name, \
              payee_npi, payment_amount_cents, credit_debit, payment_method, payment_date, \
              trace_number, claim_count FROM eras WHERE tenant_id = $1 AND id = $2",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[ERA_BY_ID],
        postgres_only: false,
    },
    Lookup {
        name: "balance problems of an ERA",
        sql: "SELECT era_id, level, claim_ref, line_control_number, line_number, expected_cents, \
              actual_cents, difference_cents, message FROM era_balance_problems \
              WHERE tenant_id = $1 AND era_id = $2 ORDER BY position",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[Use {
            table: "era_balance_problems",
            alias: None,
            pg: &[index("era_balance_problems_pkey", TENANT_AND_ERA)],
            sqlite: &[index(
                "sqlite_autoindex_era_balance_problems_1",
                TENANT_AND_ERA,
            )],
        }],
        postgres_only: false,
    },
    Lookup {
        name: "provider adjustments of an ERA",
        sql: "SELECT era_id, provider_id, fiscal_period_date, reason, reference, amount_cents \
              FROM era_provider_adjustments WHERE tenant_id = $1 AND era_id = $2 ORDER BY position",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[Use {
            table: "era_provider_adjustments",
            alias: None,
            pg: &[index("era_provider_adjustments_pkey", TENANT_AND_ERA)],
            sqlite: &[index(
                "sqlite_autoindex_era_provider_adjustments_1",
                TENANT_AND_ERA,
            )],
        }],
        postgres_only: false,
    },
    Lookup {
        name: "ERA content",
        sql: "SELECT content FROM eras WHERE tenant_id = $1 AND id = $2",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[ERA_BY_ID],
        postgres_only: false,
    },
    Lookup {
        name: "ERA by content hash (the same file received again)",
        sql: "SELECT id FROM eras WHERE tenant_id = $1 AND content_sha256 = $2",
        args: &[Text("t-0"), Text(SHA_6)],
        uses: &[Use {
            table: "eras",
            alias: None,
            pg: &[
                index("eras_content_sha256_hash_idx", &[("content_sha256", "=")]),
                index("eras_content_sha256_key", SHA_KEY),
            ],
            sqlite: &[index("sqlite_autoindex_eras_2", SHA_KEY)],
        }],
        postgres_only: false,
    },
    Lookup {
        name: "foreign-key check of an ERA's balance problem or provider adjustment",
        sql: "SELECT 1 FROM ONLY eras x WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE OF x",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[Use {
            alias: Some("x"),
            ..ERA_BY_ID
        }],
        postgres_only: true,
    },
];

const SHA_KEY: &[(&str, &str)] = &[("tenant_id", "="), ("content_sha256", "=")];

/// Adds ERAs `from..=to` (over three tenants), each with one balance problem and one provider
/// adjustment, in portable SQL. Ids and hashes are shaped like the service's (36 characters
/// rising like UUID v7; 64 characters in no order) and the listed columns have few distinct
/// values, so the indexes have realistic sizes and heights. ERA 6's hash is [`SHA_6`].
async fn fill(db: &Database, from: i64, to: i64) -> anyhow::Result<()> {
    if from > to {
        return Ok(());
    }
    let series = "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) ";
    let id = "'0190f3a2-0000-7000-8000-' || (100000000000 + i)";
    let sha = format!(
        "CASE WHEN i = 6 THEN '{SHA_6}' ELSE \
         '{}' || (100000000000 + (i * 7919) % 899999999999) END",
        &SHA_6[..52]
    );
    let eras = format!(
        "INSERT INTO eras (tenant_id, id, received_at, updated_at, content, content_sha256, \
         byte_size, status, payer_id, trace_number, claim_count) \
         SELECT 't-' || (i % 3), {id}, i, i, $3, {sha}, 1, 'POSTED', 'PAYER-' || (i % 5), \
         'TRN' || i, 1 FROM n"
    );
    with_db!(db, |pool| {
        sqlx::query(AssertSqlSafe(format!("{series}{eras}")))
            .bind(from)
            .bind(to)
            .bind(vec![0u8])
            .execute(pool)
            .await?;
    });
    let children = [
        format!(
            "INSERT INTO era_balance_problems (tenant_id, era_id, position, level, claim_ref, \
             expected_cents, actual_cents, difference_cents) \
             SELECT 't-' || (i % 3), {id}, 1, 'CLAIM', 'P' || i, 100, 90, 10 FROM n"
        ),
        format!(
            "INSERT INTO era_provider_adjustments (tenant_id, era_id, position, provider_id, \
             fiscal_period_date, reason, amount_cents) \
             SELECT 't-' || (i % 3), {id}, 1, '1234567893', '2026-12-31', 'WO', 10 FROM n"
        ),
    ];
    for statement in children {
        let sql = format!("{series}{statement}");
        with_db!(db, |pool| {
            sqlx::query(AssertSqlSafe(sql))
                .bind(from)
                .bind(to)
                .execute(pool)
                .await?;
        });
    }
    Ok(())
}

medbill_storage::conformance_tests! {
    namespace = "remittance";
    migrations = (&PG_MIGRATOR, &SQLITE_MIGRATOR);

    async fn keyed_lookups_use_their_index_without_statistics(db: Database) -> anyhow::Result<()> {
        without_autovacuum(&db, &TABLES).await?;
        let mut problems = Vec::new();
        let mut filled = 0;
        for rows in SIZES {
            fill(&db, filled + 1, rows).await?;
            filled = rows;
            check_lookups(&db, &TABLES, LOOKUPS, rows, &mut problems).await?;
        }
        assert!(problems.is_empty(), "{}", problems.join("\n\n"));
        Ok(())
    }
}

#[test]
fn every_lookup_binds_its_parameters() {
    for lookup in LOOKUPS {
        check_parameters(lookup);
    }
}

// The plan checks below are the same in the claims, remittance and collections tests.

/// Table sizes the plans are checked at, in rows per table.
///
/// Without statistics PostgreSQL estimates a table's rows from its size on disk, so which index
/// costs least changes as a table grows (and as each index gets its first inner page); the sizes
/// are close enough together to catch a wrong choice at any of those steps.
const SIZES: [i64; 14] = [
    0, 10, 50, 100, 150, 200, 300, 500, 700, 1000, 2000, 3000, 6000, 12000,
];

/// A statement the service runs, by key or id, and the index scans its plan must consist of.
struct Lookup {
    /// What is looked up.
    name: &'static str,
    /// The statement, with `$n` parameters.
    sql: &'static str,
    /// The values it is explained with.
    args: &'static [Arg],
    /// One entry per table (or alias) the statement reads.
    uses: &'static [Use],
    /// Checked on PostgreSQL only: a statement only PostgreSQL runs (a foreign-key check), or one
    /// whose SQLite plan its SQL decides (see the module docs).
    postgres_only: bool,
}

/// A parameter value.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code, reason = "not every service's look-ups take a number")]
enum Arg {
    Text(&'static str),
    Int(i64),
}

impl Arg {
    fn literal(self) -> String {
        match self {
            Arg::Text(s) => format!("'{s}'"),
            Arg::Int(i) => i.to_string(),
        }
    }
}

/// How a statement must read one table: by one of these indexes.
#[derive(Debug, Clone, Copy)]
struct Use {
    table: &'static str,
    /// The alias the statement gives the table, if any.
    alias: Option<&'static str>,
    /// The indexes it may use on PostgreSQL, the one to prefer first.
    pg: &'static [Index],
    /// The same on SQLite (a table's primary key is `sqlite_autoindex_<table>_1`).
    sqlite: &'static [Index],
}

/// An index, and the comparisons (column and `=` or `>`) its scan condition must hold.
#[derive(Debug, Clone, Copy)]
struct Index {
    name: &'static str,
    key: &'static [(&'static str, &'static str)],
}

const fn index(name: &'static str, key: &'static [(&'static str, &'static str)]) -> Index {
    Index { name, key }
}

/// Checks that the statement has a `$n` for each of its values, and none beyond.
fn check_parameters(lookup: &Lookup) {
    for n in 1..=lookup.args.len() {
        assert!(
            lookup.sql.contains(&format!("${n}")),
            "{}: no ${n}",
            lookup.name
        );
    }
    let n = lookup.args.len() + 1;
    assert!(
        !lookup.sql.contains(&format!("${n}")),
        "{}: ${n} has no value",
        lookup.name
    );
}

/// Keeps autovacuum (and so auto-analyse) away from the tables, as on a server without it.
async fn without_autovacuum(db: &Database, tables: &[&str]) -> anyhow::Result<()> {
    if let Database::Postgres(pool) = db {
        for table in tables {
            sqlx::query(AssertSqlSafe(format!(
                "ALTER TABLE {table} SET (autovacuum_enabled = false)"
            )))
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}

/// Explains every look-up at the current table size and adds what is wrong to `problems`, after
/// checking that no table has statistics.
async fn check_lookups(
    db: &Database,
    tables: &[&str],
    lookups: &[Lookup],
    rows: i64,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    match db {
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
            for lookup in lookups {
                for (which, plan) in explain_postgres(pool, lookup).await? {
                    let context = format!("{} ({which} plan, {rows} rows)", lookup.name);
                    problems.extend(check_pg_plan(lookup, &plan, &context));
                }
            }
        }
        Database::Sqlite(pool) => {
            let (analysed,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
                    .fetch_one(pool)
                    .await?;
            assert_eq!(analysed, 0, "never analysed");
            for lookup in lookups.iter().filter(|l| !l.postgres_only) {
                let mut query =
                    sqlx::query(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", lookup.sql)));
                for arg in lookup.args {
                    query = match *arg {
                        Arg::Text(s) => query.bind(s),
                        Arg::Int(i) => query.bind(i),
                    };
                }
                let steps: Vec<String> = query
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| r.try_get::<String, _>("detail").unwrap_or_default())
                    .collect();
                let context = format!("{} ({rows} rows)", lookup.name);
                problems.extend(check_sqlite_plan(lookup, &steps, &context));
            }
        }
    }
    Ok(())
}

/// Returns the custom plan (of the statement with its values written in) and the generic plan
/// (of the prepared statement, as used after a few executions), without costs.
async fn explain_postgres(
    pool: &sqlx::PgPool,
    lookup: &Lookup,
) -> anyhow::Result<[(&'static str, String); 2]> {
    let mut conn = pool.acquire().await?;
    let mut literal = lookup.sql.to_owned();
    // Highest first, so `$1` does not eat the start of `$10`.
    for (i, arg) in lookup.args.iter().enumerate().rev() {
        literal = literal.replace(&format!("${}", i + 1), &arg.literal());
    }
    let lines = |rows: Vec<sqlx::postgres::PgRow>| {
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let custom = sqlx::query(AssertSqlSafe(format!("EXPLAIN (COSTS OFF) {literal}")))
        .fetch_all(&mut *conn)
        .await?;
    sqlx::query("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await?;
    sqlx::query(AssertSqlSafe(format!("PREPARE keyed AS {}", lookup.sql)))
        .execute(&mut *conn)
        .await?;
    let values: Vec<String> = lookup.args.iter().map(|a| a.literal()).collect();
    let generic = sqlx::query(AssertSqlSafe(format!(
        "EXPLAIN (COSTS OFF) EXECUTE keyed({})",
        values.join(", ")
    )))
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query("DEALLOCATE keyed").execute(&mut *conn).await?;
    sqlx::query("RESET plan_cache_mode")
        .execute(&mut *conn)
        .await?;
    Ok([("custom", lines(custom)), ("generic", lines(generic))])
}

/// Returns what is wrong with a PostgreSQL plan: nothing may be read by a sequential scan, and
/// every scan of a listed table must be an index scan on its index with the key columns in the
/// index condition.
fn check_pg_plan(lookup: &Lookup, plan: &str, context: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if plan.contains("Seq Scan") {
        problems.push("a sequential scan".to_owned());
    }
    let lines: Vec<&str> = plan.lines().collect();
    for used in lookup.uses {
        let target = match used.alias {
            Some(alias) => format!(" on {} {alias}", used.table),
            None => format!(" on {}", used.table),
        };
        let scans: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains("Scan") && lines[i].ends_with(&target))
            .collect();
        if scans.is_empty() {
            problems.push(format!("no scan{target}"));
        }
        for i in scans {
            let Some(index) = used.pg.iter().find(|index| {
                let scan = format!("Scan using {}{target}", index.name);
                lines[i].contains(&format!("Index {scan}"))
                    || lines[i].contains(&format!("Index Only {scan}"))
            }) else {
                let trimmed = lines[i].trim().trim_start_matches("->").trim();
                problems.push(format!("`{trimmed}` instead of {}", used.pg[0].name));
                continue;
            };
            // The node's details run up to its first child (or the next node).
            let condition = lines[i + 1..]
                .iter()
                .take_while(|l| !l.contains("->"))
                .find_map(|l| l.trim().strip_prefix("Index Cond: "))
                .unwrap_or_default();
            let clauses: Vec<&str> = condition
                .split(" AND ")
                .map(|c| c.trim_start_matches('('))
                .collect();
            for (column, op) in index.key {
                if !clauses
                    .iter()
                    .any(|c| c.starts_with(&format!("{column} {op} ")))
                {
                    problems.push(format!(
                        "{column} {op} is not in the index condition of {}",
                        index.name
                    ));
                }
            }
        }
    }
    problems
        .into_iter()
        .map(|p| format!("{context}: {p}:\n{plan}"))
        .collect()
}

/// Returns what is wrong with a SQLite query plan: each table must be searched with its index on
/// the key columns, never scanned.
fn check_sqlite_plan(lookup: &Lookup, steps: &[String], context: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for used in lookup.uses {
        let name = used.alias.unwrap_or(used.table);
        let reads: Vec<&String> = steps
            .iter()
            .filter(|s| {
                s.strip_prefix("SEARCH ")
                    .or_else(|| s.strip_prefix("SCAN "))
                    .is_some_and(|rest| rest == name || rest.starts_with(&format!("{name} ")))
            })
            .collect();
        if reads.is_empty() {
            problems.push(format!("{name} is not read"));
        }
        for step in reads {
            let Some((index, terms)) = used.sqlite.iter().find_map(|index| {
                ["USING INDEX", "USING COVERING INDEX"]
                    .iter()
                    .find_map(|how| {
                        step.strip_prefix(&format!("SEARCH {name} {how} {} (", index.name))
                            .map(|terms| (index, terms))
                    })
            }) else {
                problems.push(format!("`{step}` instead of {}", used.sqlite[0].name));
                continue;
            };
            let terms: Vec<&str> = terms.trim_end_matches(')').split(" AND ").collect();
            for (column, op) in index.key {
                if !terms
                    .iter()
                    .any(|t| t.starts_with(&format!("{column}{op}?")))
                {
                    problems.push(format!("`{step}` does not search on {column}{op}?"));
                }
            }
        }
    }
    problems
        .into_iter()
        .map(|p| format!("{context}: {p}: {steps:?}"))
        .collect()
}
