//! Query-plan checks for tests: keyed look-ups must read through an index on their key whatever the
//! planner statistics say (the services' `keyed_lookups` tests).
//!
//! A test lists each statement its store runs by key or id ([`Lookup`]) with the indexes each table
//! may be read through ([`Use`]), grows its tables through [`SIZES`] on a database that was never
//! analysed ([`without_autovacuum`]), and calls [`check_lookups`] at each size: on PostgreSQL the
//! custom and the generic plan of every statement, on SQLite `EXPLAIN QUERY PLAN`, must show index
//! scans on a listed index with the key columns in the index condition, and no sequential scan.

use sqlx::{AssertSqlSafe, Row};

use crate::{Database, StorageError};

/// Table sizes the plans are checked at, in rows per table.
///
/// Without statistics PostgreSQL estimates a table's rows from its size on disk, so which index
/// costs least changes as a table grows (and as each index gets its first inner page); the sizes
/// are close enough together to catch a wrong choice at any of those steps.
pub const SIZES: [i64; 14] = [
    0, 10, 50, 100, 150, 200, 300, 500, 700, 1000, 2000, 3000, 6000, 12000,
];

/// A statement the service runs, by key or id, and the index scans its plan must consist of.
pub struct Lookup {
    /// What is looked up.
    pub name: &'static str,
    /// The statement, with `$n` parameters.
    pub sql: &'static str,
    /// The values it is explained with.
    pub args: &'static [Arg],
    /// One entry per table (or alias) the statement reads.
    pub uses: &'static [Use],
    /// Checked on PostgreSQL only: a statement only PostgreSQL runs (a foreign-key check), or one
    /// whose SQLite plan its SQL decides (see the module docs).
    pub postgres_only: bool,
    /// The store runs it as a one-shot statement (`persistent(false)`: a batch's `IN` list, whose
    /// text changes with its length), so PostgreSQL plans each run with its values and the
    /// table's size then, and never keeps a generic plan: only the custom plan is checked there,
    /// and from [`PLANNED_EACH_TIME_FROM`] rows on (a smaller tenant may be read whole).
    pub planned_each_time: bool,
}

/// Rows from which a one-shot statement's PostgreSQL plan must use its key (see
/// [`Lookup::planned_each_time`]).
pub const PLANNED_EACH_TIME_FROM: i64 = 6_000;

/// A parameter value.
#[derive(Debug, Clone, Copy)]
pub enum Arg {
    /// A text value.
    Text(&'static str),
    /// An integer value.
    Int(i64),
}

impl Arg {
    /// Returns the value as SQL text.
    pub fn literal(self) -> String {
        match self {
            Arg::Text(s) => format!("'{s}'"),
            Arg::Int(i) => i.to_string(),
        }
    }
}

/// How a statement must read one table: by one of these indexes.
#[derive(Debug, Clone, Copy)]
pub struct Use {
    /// The table.
    pub table: &'static str,
    /// The alias the statement gives the table, if any.
    pub alias: Option<&'static str>,
    /// The indexes it may use on PostgreSQL, the one to prefer first.
    pub pg: &'static [Index],
    /// The same on SQLite (a table's primary key is `sqlite_autoindex_<table>_1`).
    pub sqlite: &'static [Index],
}

/// An index, and the comparisons (column and `=` or `>`) its scan condition must hold.
#[derive(Debug, Clone, Copy)]
pub struct Index {
    /// The index name.
    pub name: &'static str,
    /// The comparisons its scan condition must hold.
    pub key: &'static [(&'static str, &'static str)],
}

/// Builds an [`Index`].
pub const fn index(name: &'static str, key: &'static [(&'static str, &'static str)]) -> Index {
    Index { name, key }
}

/// Checks that the statement has a `$n` for each of its values, and none beyond.
pub fn check_parameters(lookup: &Lookup) {
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

/// Keeps autovacuum away from `tables`, then grows them through [`SIZES`] with `fill(first, last)`
/// (rows `first..=last`) and checks every look-up at each size. Returns what is wrong; empty when
/// every plan reads through its key's index.
pub async fn check_at_every_size<E: From<StorageError>>(
    db: &Database,
    tables: &[&str],
    lookups: &[Lookup],
    mut fill: impl AsyncFnMut(i64, i64) -> Result<(), E>,
) -> Result<Vec<String>, E> {
    without_autovacuum(db, tables).await?;
    let mut problems = Vec::new();
    let mut filled = 0;
    for rows in SIZES {
        if rows > filled {
            fill(filled + 1, rows).await?;
        }
        filled = rows;
        check_lookups(db, tables, lookups, rows, &mut problems).await?;
    }
    Ok(problems)
}

/// Inserts numbered rows `first..=last` in one transaction: each statement runs after
/// `WITH RECURSIVE n(i)` counting from `$1` to `$2` and selects from `n`; `blob`, when given, is
/// bound as `$3`.
pub async fn insert_numbered(
    db: &Database,
    statements: &[impl AsRef<str>],
    first: i64,
    last: i64,
    blob: Option<&[u8]>,
) -> Result<(), StorageError> {
    let series = "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) ";
    crate::with_db!(db, |pool| {
        let mut tx = pool.begin().await?;
        for statement in statements {
            let mut query = sqlx::query(AssertSqlSafe(format!("{series}{}", statement.as_ref())))
                .bind(first)
                .bind(last);
            if let Some(blob) = blob {
                query = query.bind(blob);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Keeps autovacuum (and so auto-analyse) away from the tables, as on a server without it.
pub async fn without_autovacuum(db: &Database, tables: &[&str]) -> Result<(), StorageError> {
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
pub async fn check_lookups(
    db: &Database,
    tables: &[&str],
    lookups: &[Lookup],
    rows: i64,
    problems: &mut Vec<String>,
) -> Result<(), StorageError> {
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
                if lookup.planned_each_time && rows < PLANNED_EACH_TIME_FROM {
                    continue;
                }
                for (which, plan) in explain_postgres(pool, lookup).await? {
                    if lookup.planned_each_time && which == "generic" {
                        continue;
                    }
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
) -> Result<[(&'static str, String); 2], StorageError> {
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
/// index condition, or a bitmap heap scan whose every bitmap index scan is such a scan.
fn check_pg_plan(lookup: &Lookup, plan: &str, context: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if plan.contains("Seq Scan") {
        problems.push("a sequential scan".to_owned());
    }
    let lines: Vec<&str> = plan.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
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
            // A bitmap heap scan reads what its bitmap index scans (its children) find.
            let index_scans: Vec<usize> = if lines[i].contains(&format!("Bitmap Heap Scan{target}"))
            {
                (i + 1..lines.len())
                    .take_while(|&j| indent(lines[j]) > indent(lines[i]))
                    .filter(|&j| lines[j].contains("Bitmap Index Scan on "))
                    .collect()
            } else {
                vec![i]
            };
            if index_scans.is_empty() {
                problems.push(format!("no bitmap index scan under {}", lines[i].trim()));
            }
            for k in index_scans {
                let Some(index) = used.pg.iter().find(|index| {
                    let scan = format!("Scan using {}{target}", index.name);
                    lines[k].contains(&format!("Index {scan}"))
                        || lines[k].contains(&format!("Index Only {scan}"))
                        || lines[k]
                            .trim_end()
                            .ends_with(&format!("Bitmap Index Scan on {}", index.name))
                }) else {
                    let trimmed = lines[k].trim().trim_start_matches("->").trim();
                    problems.push(format!("`{trimmed}` instead of {}", used.pg[0].name));
                    continue;
                };
                // The node's details run up to its first child (or the next node).
                let condition = lines[k + 1..]
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
