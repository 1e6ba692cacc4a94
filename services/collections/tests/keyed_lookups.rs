//! Look-ups by key or id read the rows asked for, through an index on the key, whatever the
//! planner statistics say.
//!
//! On a fresh database that was never analysed (autovacuum off for its tables), empty and then
//! growing to 12,000 rows per table, `EXPLAIN` of every keyed look-up the collections
//! store makes, of those its triggers make on PostgreSQL and SQLite, and of the foreign-key checks
//! PostgreSQL runs for each journal entry and posting, must show an index scan on one of the
//! expected indexes with the key columns in its index condition, and no sequential scan: on
//! PostgreSQL for the plan of the literal query (a custom plan) and for the generic plan of the
//! prepared one (a prepared statement, or a trigger function's statement, planned while the table
//! is small keeps its plan as the table grows), on SQLite for `EXPLAIN QUERY PLAN` of the
//! statement as prepared.
//!
//! The statements are copied from `src/store.rs` and the migrations (keep them in step). A
//! journal entry's idempotency key is only ever checked by inserting it (the unique index
//! `journal_entries_by_key` enforces it without a plan), so there is no look-up by key to check.
//!
//! The balance `GetAccount` computes tests the ledger account inside its sum and joins with
//! `CROSS JOIN`, so both backends read the account's entries and then their postings (with the
//! ledger account in the WHERE clause they read all of the tenant's `PATIENT_AR` postings
//! through `postings_by_ledger_account`). The postings of an account's
//! entries are read the same way (entries first), on both backends.

use medbill_collections::store::{PG_MIGRATOR, SQLITE_MIGRATOR};
use medbill_storage::Database;

use Arg::Text;
use medbill_storage::query_plans::{
    Arg, Lookup, Use, check_at_every_size, check_parameters, index, insert_numbered,
};

/// Account 6 (of tenant `t-0`) and its journal entry, which the look-ups ask for.
const ACCOUNT_6: &str = "0190f3a2-0000-7000-8000-100000000006";
const ENTRY_6: &str = "0190f3a2-0000-7000-9000-100000000006";

/// The tables the look-ups read.
const TABLES: [&str; 4] = ["accounts", "journal_entries", "postings", "self_pay_bills"];

const TENANT_AND_ID: &[(&str, &str)] = &[("tenant_id", "="), ("id", "=")];
const TENANT_AND_ACCOUNT: &[(&str, &str)] = &[("tenant_id", "="), ("account_id", "=")];
const TENANT_AND_ENTRY: &[(&str, &str)] = &[("tenant_id", "="), ("entry_id", "=")];

/// `accounts` by id: the primary key.
const ACCOUNT_BY_ID: Use = Use {
    table: "accounts",
    alias: None,
    pg: &[index("accounts_pkey", TENANT_AND_ID)],
    sqlite: &[index("sqlite_autoindex_accounts_1", TENANT_AND_ID)],
};

/// `journal_entries` by id: the primary key.
const ENTRY_BY_ID: Use = Use {
    table: "journal_entries",
    alias: None,
    pg: &[index("journal_entries_pkey", TENANT_AND_ID)],
    sqlite: &[index("sqlite_autoindex_journal_entries_1", TENANT_AND_ID)],
};

/// `journal_entries e` of an account.
const ENTRIES_OF_ACCOUNT: Use = Use {
    table: "journal_entries",
    alias: Some("e"),
    pg: &[index("journal_entries_by_account", TENANT_AND_ACCOUNT)],
    sqlite: &[index("journal_entries_by_account", TENANT_AND_ACCOUNT)],
};

/// `postings p` of an entry.
const POSTINGS_OF_ENTRY: Use = Use {
    table: "postings",
    alias: Some("p"),
    pg: &[index("postings_pkey", TENANT_AND_ENTRY)],
    sqlite: &[index("sqlite_autoindex_postings_1", TENANT_AND_ENTRY)],
};

/// The store's and the triggers' keyed look-ups.
const LOOKUPS: &[Lookup] = &[
    Lookup {
        name: "account by id, with its balance",
        sql: "SELECT a.tenant_id, a.id, a.patient_ref, a.guarantor_ref, a.status, a.created_at, \
              a.updated_at, CAST(COALESCE((SELECT SUM(CASE WHEN p.ledger_account = 'PATIENT_AR' \
              THEN p.amount_cents ELSE 0 END) FROM journal_entries e CROSS JOIN postings p \
              WHERE p.tenant_id = e.tenant_id AND p.entry_id = e.id \
              AND e.tenant_id = a.tenant_id AND e.account_id = a.id), 0) AS BIGINT) AS balance_cents \
              FROM accounts a WHERE a.tenant_id = $1 AND a.id = $2",
        args: &[Text("t-0"), Text(ACCOUNT_6)],
        // The account, then its entries, then their postings: never the tenant's postings.
        uses: &[
            Use {
                alias: Some("a"),
                ..ACCOUNT_BY_ID
            },
            ENTRIES_OF_ACCOUNT,
            POSTINGS_OF_ENTRY,
        ],
        postgres_only: false,
        planned_each_time: false,
    },
    Lookup {
        name: "account before a posting",
        sql: "SELECT id FROM accounts WHERE tenant_id = $1 AND id = $2",
        args: &[Text("t-0"), Text(ACCOUNT_6)],
        uses: &[ACCOUNT_BY_ID],
        postgres_only: false,
        planned_each_time: false,
    },
    Lookup {
        name: "account touched by a posting",
        sql: "UPDATE accounts SET updated_at = $3 WHERE tenant_id = $1 AND id = $2",
        args: &[Text("t-0"), Text(ACCOUNT_6), Text("7")],
        uses: &[ACCOUNT_BY_ID],
        postgres_only: false,
        planned_each_time: false,
    },
    Lookup {
        name: "journal entries of an account",
        sql: "SELECT tenant_id, id, account_id, kind, memo, source_ref, posted_at, \
              idempotency_key FROM journal_entries WHERE tenant_id = $1 \
              AND account_id = $2 ORDER BY id",
        args: &[Text("t-0"), Text(ACCOUNT_6)],
        uses: &[Use {
            alias: None,
            ..ENTRIES_OF_ACCOUNT
        }],
        postgres_only: false,
        planned_each_time: false,
    },
    Lookup {
        name: "postings of an account",
        sql: "SELECT p.entry_id, p.line_no, p.ledger_account, p.amount_cents, p.claim_ref \
              FROM journal_entries e CROSS JOIN postings p \
              WHERE p.tenant_id = e.tenant_id AND p.entry_id = e.id \
              AND e.tenant_id = $1 AND e.account_id = $2 ORDER BY p.entry_id, p.line_no",
        args: &[Text("t-0"), Text(ACCOUNT_6)],
        // The account's entries, then their postings: never the tenant's postings (with a plain
        // JOIN, SQLite walked all of them in primary-key order to save a sort).
        uses: &[ENTRIES_OF_ACCOUNT, POSTINGS_OF_ENTRY],
        postgres_only: false,
        planned_each_time: false,
    },
    Lookup {
        name: "self-pay bills of a run of accounts (statements)",
        sql: "SELECT b.entry_id, b.service_date, b.gross_cents, b.discount_cents \
              FROM journal_entries e CROSS JOIN self_pay_bills b \
              WHERE b.tenant_id = e.tenant_id AND b.entry_id = e.id \
              AND e.tenant_id = $1 AND e.account_id BETWEEN $2 AND $3",
        args: &[Text("t-0"), Text(ACCOUNT_6), Text(ACCOUNT_6)],
        // The accounts' entries, then each entry's bill: never the tenant's every bill per entry.
        uses: &[
            Use {
                pg: &[index("journal_entries_by_account", &[("tenant_id", "=")])],
                sqlite: &[index("journal_entries_by_account", &[("tenant_id", "=")])],
                ..ENTRIES_OF_ACCOUNT
            },
            Use {
                table: "self_pay_bills",
                alias: Some("b"),
                pg: &[index("self_pay_bills_by_entry", TENANT_AND_ENTRY)],
                sqlite: &[index("self_pay_bills_by_entry", TENANT_AND_ENTRY)],
            },
        ],
        postgres_only: false,
        planned_each_time: false,
    },
    Lookup {
        name: "postings of a new journal entry (the balance trigger)",
        sql: "SELECT count(*), coalesce(sum(amount_cents), 0) FROM postings \
              WHERE tenant_id = $1 AND entry_id = $2",
        args: &[Text("t-0"), Text(ENTRY_6)],
        uses: &[Use {
            alias: None,
            ..POSTINGS_OF_ENTRY
        }],
        postgres_only: false,
        planned_each_time: false,
    },
    Lookup {
        name: "journal entry of a new posting (the append-only trigger)",
        sql: "SELECT 1 FROM journal_entries WHERE tenant_id = $1 AND id = $2",
        args: &[Text("t-0"), Text(ENTRY_6)],
        uses: &[ENTRY_BY_ID],
        postgres_only: false,
        planned_each_time: false,
    },
    Lookup {
        name: "foreign-key check of a journal entry's account",
        sql: "SELECT 1 FROM ONLY accounts x WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE OF x",
        args: &[Text("t-0"), Text(ACCOUNT_6)],
        uses: &[Use {
            alias: Some("x"),
            ..ACCOUNT_BY_ID
        }],
        postgres_only: true,
        planned_each_time: false,
    },
    Lookup {
        name: "foreign-key check of a posting's journal entry",
        sql: "SELECT 1 FROM ONLY journal_entries x WHERE tenant_id = $1 AND id = $2 \
              FOR KEY SHARE OF x",
        args: &[Text("t-0"), Text(ENTRY_6)],
        uses: &[Use {
            alias: Some("x"),
            ..ENTRY_BY_ID
        }],
        postgres_only: true,
        planned_each_time: false,
    },
];

/// Adds accounts `from..=to` (over three tenants), each with one journal entry of two postings
/// and a self-pay bill,
/// in portable SQL and one transaction (an entry's postings go first, see the migrations). Ids are
/// shaped like the service's (36 characters, rising like UUID v7) and the listed columns have few
/// distinct values, so the indexes have realistic sizes and heights.
async fn fill(db: &Database, first: i64, last: i64) -> anyhow::Result<()> {
    let account = "'0190f3a2-0000-7000-8000-' || (100000000000 + i)";
    let entry = "'0190f3a2-0000-7000-9000-' || (100000000000 + i)";
    let statements = [
        format!(
            "INSERT INTO accounts (tenant_id, id, patient_ref, status, created_at, updated_at) \
             SELECT 't-' || (i % 3), {account}, 'p-' || i, 'OPEN', i, i FROM n"
        ),
        format!(
            "INSERT INTO postings (tenant_id, entry_id, line_no, ledger_account, amount_cents, \
             account_id, posted_at) SELECT 't-' || (i % 3), {entry}, 1, 'PATIENT_AR', 100, {account}, i FROM n"
        ),
        format!(
            "INSERT INTO postings (tenant_id, entry_id, line_no, ledger_account, amount_cents, \
             account_id, posted_at) SELECT 't-' || (i % 3), {entry}, 2, 'REVENUE', -100, {account}, i FROM n"
        ),
        format!(
            "INSERT INTO journal_entries (tenant_id, id, account_id, kind, memo, posted_at, \
             idempotency_key) \
             SELECT 't-' || (i % 3), {entry}, {account}, 'CHARGE', '', i, 'key-' || i FROM n"
        ),
        format!(
            "INSERT INTO self_pay_bills (tenant_id, claim_ref, entry_id, service_date, \
             gross_cents, discount_cents) \
             SELECT 't-' || (i % 3), 'claim-' || i, {entry}, '2026-09-15', 100, 0 FROM n"
        ),
    ];
    Ok(insert_numbered(db, &statements, first, last, None).await?)
}

medbill_storage::conformance_tests! {
    namespace = "collections";
    migrations = (&PG_MIGRATOR, &SQLITE_MIGRATOR);

    async fn keyed_lookups_use_their_index_without_statistics(db: Database) -> anyhow::Result<()> {
        let problems =
            check_at_every_size(&db, &TABLES, LOOKUPS, async |first, last| fill(&db, first, last).await)
                .await?;
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
