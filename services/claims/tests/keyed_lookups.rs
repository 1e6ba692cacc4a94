//! Look-ups by key or id read the rows asked for, through an index on the key, whatever the
//! planner statistics say.
//!
//! On a fresh database that was never analysed (autovacuum off for its tables), empty and then
//! growing to 12,000 rows per table, `EXPLAIN` of every keyed look-up the claims store
//! makes (and of the foreign-key check PostgreSQL runs against `claims` for each child row) must
//! show an index scan on one of the expected indexes with the key columns in its index condition,
//! and no sequential scan: on PostgreSQL for the plan of the literal query (a custom plan) and for
//! the generic plan of the prepared one (a prepared statement planned while the table is small
//! keeps its plan as the table grows), on SQLite for `EXPLAIN QUERY PLAN` of the statement as
//! prepared.
//!
//! The statements are copied from `src/store/` (keep them in step). Not covered:
//! - `ListClaims` filtered by patient control number: its
//!   `($9 IS NULL OR patient_control_number = $9)` cannot use `claims_patient_control_number_key`
//!   in a generic plan or on SQLite;
//! - the claims joined to `WatchClaims`' history page: without statistics PostgreSQL may read the
//!   tenant's claims once per history entry and match the id in the join, instead of looking each
//!   claim up;
//! - how PostgreSQL reads a claim's history (the claims joined to it are checked): while the table
//!   is small and `claim_status_history_claim_idx` is a level taller than
//!   `claim_status_history_sequence_key`, it reads the tenant's whole history in sequence order
//!   through the latter, which spares it a sort; no index makes the claim's own index cheaper
//!   there for certain.

use medbill_claims::store::{PG_MIGRATOR, SQLITE_MIGRATOR};
use medbill_storage::{Database, with_db};
use sqlx::{AssertSqlSafe, Row};

use Arg::{Int, Text};

/// The id of claim 6 (of tenant `t-0`), which the look-ups ask for.
const ID_6: &str = "0190f3a2-0000-7000-8000-100000000006";

/// The tables the look-ups read.
const TABLES: [&str; 4] = [
    "claims",
    "claim_diagnoses",
    "claim_lines",
    "claim_status_history",
];

const TENANT_AND_ID: &[(&str, &str)] = &[("tenant_id", "="), ("id", "=")];
const TENANT_AND_CLAIM: &[(&str, &str)] = &[("tenant_id", "="), ("claim_id", "=")];

const ID: &[(&str, &str)] = &[("id", "=")];

/// `claims` by id: the hash index on id (migration 0002), or either unique index.
const CLAIM_BY_ID: Use = Use {
    table: "claims",
    alias: None,
    pg: &[
        index("claims_id_hash_idx", ID),
        index("claims_pkey", TENANT_AND_ID),
        index("claims_id_key", ID),
    ],
    sqlite: &[
        index("sqlite_autoindex_claims_1", TENANT_AND_ID),
        index("claims_id_key", ID),
    ],
};

/// The store's keyed look-ups, as `src/store/` writes them.
const LOOKUPS: &[Lookup] = &[
    Lookup {
        name: "claim by id",
        sql: "SELECT id, patient_control_number, claim_type, status, frequency_code, \
              payer_claim_control_number, coverage_id, payer_id, patient_ref, billing_provider_npi, \
              rendering_provider_npi, place_of_service, facility_type_code, total_charge_cents, \
              service_date_from, service_date_to, encounter_ref, created_at, updated_at \
              FROM claims WHERE tenant_id = $1 AND id = $2",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[CLAIM_BY_ID],
        postgres_only: false,
    },
    Lookup {
        name: "diagnoses of a claim",
        sql: "SELECT claim_id, code FROM claim_diagnoses WHERE tenant_id = $1 AND claim_id = $2 \
              ORDER BY position",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[Use {
            table: "claim_diagnoses",
            alias: None,
            pg: &[index("claim_diagnoses_pkey", TENANT_AND_CLAIM)],
            sqlite: &[index(
                "sqlite_autoindex_claim_diagnoses_1",
                TENANT_AND_CLAIM,
            )],
        }],
        postgres_only: false,
    },
    Lookup {
        name: "lines of a claim",
        sql: "SELECT claim_id, line_number, line_control_number, procedure_code, modifiers, \
              revenue_code, charge_cents, units, service_date, diagnosis_pointers \
              FROM claim_lines WHERE tenant_id = $1 AND claim_id = $2 ORDER BY line_number",
        args: &[Text("t-0"), Text(ID_6)],
        // The primary key, which also gives line order, or the line-control-number key.
        uses: &[Use {
            table: "claim_lines",
            alias: None,
            pg: &[
                index("claim_lines_pkey", TENANT_AND_CLAIM),
                index("claim_lines_line_control_number_key", TENANT_AND_CLAIM),
            ],
            sqlite: &[
                index("sqlite_autoindex_claim_lines_1", TENANT_AND_CLAIM),
                index("sqlite_autoindex_claim_lines_2", TENANT_AND_CLAIM),
            ],
        }],
        postgres_only: false,
    },
    Lookup {
        name: "claim status before a change",
        sql: "SELECT status, patient_control_number FROM claims WHERE tenant_id = $1 AND id = $2",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[CLAIM_BY_ID],
        postgres_only: false,
    },
    Lookup {
        name: "claim status change",
        sql: "UPDATE claims SET status = $1, updated_at = $2 \
              WHERE tenant_id = $3 AND id = $4 AND status = $5",
        args: &[
            Text("READY"),
            Int(7),
            Text("t-0"),
            Text(ID_6),
            Text("DRAFT"),
        ],
        // The status index binds all its columns here: as good as the primary key.
        uses: &[Use {
            pg: &[
                index("claims_id_hash_idx", ID),
                index("claims_pkey", TENANT_AND_ID),
                index("claims_id_key", ID),
                index("claims_tenant_status_idx", STATUS_KEY),
            ],
            sqlite: &[
                index("sqlite_autoindex_claims_1", TENANT_AND_ID),
                index("claims_id_key", ID),
                index("claims_tenant_status_idx", STATUS_KEY),
            ],
            ..CLAIM_BY_ID
        }],
        postgres_only: false,
    },
    Lookup {
        name: "status history of a claim",
        sql: "SELECT h.id, h.sequence, h.claim_id, c.patient_control_number, h.from_status, \
              h.to_status, h.source, h.source_id, h.reason, h.at \
              FROM claim_status_history h JOIN claims c ON c.tenant_id = h.tenant_id AND c.id = h.claim_id \
              WHERE h.tenant_id = $1 AND h.claim_id = $2 ORDER BY h.sequence",
        args: &[Text("t-0"), Text(ID_6)],
        // The claim only: how the history is read is not checked (see the module docs).
        uses: &[Use {
            alias: Some("c"),
            ..CLAIM_BY_ID
        }],
        postgres_only: false,
    },
    Lookup {
        name: "foreign-key check of a claim's diagnosis, line or history entry",
        sql: "SELECT 1 FROM ONLY claims x WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE OF x",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[Use {
            alias: Some("x"),
            ..CLAIM_BY_ID
        }],
        postgres_only: true,
    },
];

const STATUS_KEY: &[(&str, &str)] = &[("tenant_id", "="), ("status", "="), ("id", "=")];

/// Adds claims `from..=to` (over three tenants), each with one diagnosis, one line and one
/// history entry, in portable SQL. Ids are shaped like the service's (36 characters, rising like
/// UUID v7) and the listed columns have few distinct values, as in a real tenant's claims, so
/// the indexes have realistic sizes and heights.
async fn fill(db: &Database, from: i64, to: i64) -> anyhow::Result<()> {
    if from > to {
        return Ok(());
    }
    let series = "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) ";
    let statements = [
        "INSERT INTO claims (tenant_id, id, patient_control_number, claim_type, status, \
         frequency_code, coverage_id, payer_id, patient_ref, billing_provider_npi, \
         total_charge_cents, service_date_from, service_date_to, created_at, updated_at) \
         SELECT 't-' || (i % 3), '0190f3a2-0000-7000-8000-' || (100000000000 + i), 'P' || i, \
         'PROFESSIONAL', 'DRAFT', '1', 'cov-' || (i % 50), 'PAYER-' || (i % 5), 'p-' || (i % 70), \
         '1234567893', 100, '2026-03-0' || (1 + i % 7), '2026-03-0' || (1 + i % 7), i, i FROM n",
        "INSERT INTO claim_diagnoses (tenant_id, claim_id, position, code) \
         SELECT 't-' || (i % 3), '0190f3a2-0000-7000-8000-' || (100000000000 + i), 1, 'J069' \
         FROM n",
        "INSERT INTO claim_lines (tenant_id, claim_id, line_number, line_control_number, \
         procedure_code, charge_cents, units, service_date) \
         SELECT 't-' || (i % 3), '0190f3a2-0000-7000-8000-' || (100000000000 + i), 1, \
         '0190f3a2-0000-7000-9000-' || (100000000000 + i), '99213', 100, '1', '2026-03-02' FROM n",
        "INSERT INTO claim_status_history (tenant_id, id, sequence, claim_id, to_status, source, at) \
         SELECT 't-' || (i % 3), '0190f3a2-0000-7000-a000-' || (100000000000 + i), i, \
         '0190f3a2-0000-7000-8000-' || (100000000000 + i), 'DRAFT', 'CREATE', i FROM n",
    ];
    for statement in statements {
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
    namespace = "claims";
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
