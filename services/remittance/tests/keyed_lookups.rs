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
use medbill_storage::Database;

use Arg::Text;
use medbill_storage::query_plans::{
    Arg, Lookup, Use, check_at_every_size, check_parameters, index, insert_numbered,
};

/// ERA 6 (of tenant `t-0`), which the look-ups ask for: its id (also its file's) and its file's
/// content hash.
const ID_6: &str = "0190f3a2-0000-7000-8000-100000000006";
const SHA_6: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// The tables the look-ups read.
const TABLES: [&str; 6] = [
    "era_files",
    "eras",
    "era_balance_problems",
    "era_provider_adjustments",
    "denials",
    "deposits",
];

const TENANT_AND_ID: &[(&str, &str)] = &[("tenant_id", "="), ("id", "=")];
const TENANT_AND_ERA: &[(&str, &str)] = &[("tenant_id", "="), ("era_id", "=")];

const ID: &[(&str, &str)] = &[("id", "=")];
const TENANT_AND_FILE: &[(&str, &str)] = &[("tenant_id", "="), ("file_id", "=")];

/// `era_files` by id (the file of an ERA, the foreign-key check of each ERA written).
const FILE_BY_ID: Use = Use {
    table: "era_files",
    alias: None,
    pg: &[
        index("era_files_id_hash_idx", ID),
        index("era_files_pkey", TENANT_AND_ID),
        index("era_files_id_key", ID),
    ],
    sqlite: &[
        index("sqlite_autoindex_era_files_1", TENANT_AND_ID),
        index("era_files_id_key", ID),
    ],
};

/// The ERAs of a file: the unique key on (tenant_id, file_id, set_position).
const ERAS_OF_FILE: Use = Use {
    table: "eras",
    alias: None,
    pg: &[index("eras_file_set_key", TENANT_AND_FILE)],
    sqlite: &[index("sqlite_autoindex_eras_2", TENANT_AND_FILE)],
};

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

/// The store's keyed look-ups, as `src/store.rs` (and `src/store/denials.rs`,
/// `src/store/deposits.rs`) write them.
const LOOKUPS: &[Lookup] = &[
    Lookup {
        name: "denial worklist item by id",
        sql: "SELECT id, status, note FROM denials WHERE tenant_id = $1 AND id = $2",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[Use {
            table: "denials",
            alias: None,
            pg: &[
                index("denials_id_hash_idx", ID),
                index("denials_pkey", TENANT_AND_ID),
                index("denials_id_key", ID),
            ],
            sqlite: &[
                index("sqlite_autoindex_denials_1", TENANT_AND_ID),
                index("denials_id_key", ID),
            ],
        }],
        postgres_only: false,
        planned_each_time: false,
    },
    Lookup {
        name: "the deposits of a trace number and payer",
        sql: "SELECT id, amount_cents FROM deposits \
              WHERE tenant_id = $1 AND trace_number = $2 AND payer_id = $3 ORDER BY id",
        args: &[Text("t-0"), Text("TRN6"), Text("")],
        uses: &[Use {
            table: "deposits",
            alias: None,
            pg: &[index(
                "deposits_trace_idx",
                &[("tenant_id", "="), ("trace_number", "="), ("payer_id", "=")],
            )],
            sqlite: &[index(
                "deposits_trace_idx",
                &[("tenant_id", "="), ("trace_number", "="), ("payer_id", "=")],
            )],
        }],
        postgres_only: false,
        planned_each_time: false,
    },
    Lookup {
        name: "ERA by id",
        sql: "SELECT id, file_id, set_position, set_control_number, received_at, updated_at, \
              content_sha256, byte_size, status, rejection_reason, file_name, handling_code, \
              payer_name, payer_id, payer_id_source, payee_name, payee_npi, payment_amount_cents, \
              credit_debit, payment_method, payment_date, trace_number, claim_count, deposit_id, \
              reconciliation_status FROM eras WHERE tenant_id = $1 AND id = $2",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[ERA_BY_ID],
        postgres_only: false,
        planned_each_time: false,
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
        planned_each_time: false,
    },
    Lookup {
        name: "provider adjustments of an ERA",
        sql: "SELECT era_id, provider_id, fiscal_period_date, reason, reference, amount_cents, \
              booked_at FROM era_provider_adjustments WHERE tenant_id = $1 AND era_id = $2 \
              ORDER BY position",
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
        planned_each_time: false,
    },
    Lookup {
        name: "the file of an ERA",
        sql: "SELECT file_id FROM eras WHERE tenant_id = $1 AND id = $2",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[ERA_BY_ID],
        postgres_only: false,
        planned_each_time: false,
    },
    Lookup {
        name: "content of a file",
        sql: "SELECT content FROM era_files WHERE tenant_id = $1 AND id = $2",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[FILE_BY_ID],
        postgres_only: false,
        planned_each_time: false,
    },
    Lookup {
        name: "file by content hash (the same file received again)",
        sql: "SELECT id FROM era_files WHERE tenant_id = $1 AND content_sha256 = $2",
        args: &[Text("t-0"), Text(SHA_6)],
        uses: &[Use {
            table: "era_files",
            alias: None,
            pg: &[
                index(
                    "era_files_content_sha256_hash_idx",
                    &[("content_sha256", "=")],
                ),
                index("era_files_content_sha256_key", SHA_KEY),
            ],
            sqlite: &[index("sqlite_autoindex_era_files_2", SHA_KEY)],
        }],
        postgres_only: false,
        planned_each_time: false,
    },
    Lookup {
        name: "ERAs of a file",
        sql: "SELECT id FROM eras WHERE tenant_id = $1 AND file_id = $2 ORDER BY set_position",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[ERAS_OF_FILE],
        postgres_only: false,
        planned_each_time: false,
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
        planned_each_time: false,
    },
    Lookup {
        name: "foreign-key check of an ERA's file",
        sql: "SELECT 1 FROM ONLY era_files x WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE OF x",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[Use {
            alias: Some("x"),
            ..FILE_BY_ID
        }],
        postgres_only: true,
        planned_each_time: false,
    },
];

const SHA_KEY: &[(&str, &str)] = &[("tenant_id", "="), ("content_sha256", "=")];

/// Adds ERAs `from..=to` (over three tenants), each with one balance problem and one provider
/// adjustment, in portable SQL. Ids and hashes are shaped like the service's (36 characters
/// rising like UUID v7; 64 characters in no order) and the listed columns have few distinct
/// values, so the indexes have realistic sizes and heights. ERA 6's hash is [`SHA_6`].
async fn fill(db: &Database, first: i64, last: i64) -> anyhow::Result<()> {
    let id = "'0190f3a2-0000-7000-8000-' || (100000000000 + i)";
    let sha = format!(
        "CASE WHEN i = 6 THEN '{SHA_6}' ELSE \
         '{}' || (100000000000 + (i * 7919) % 899999999999) END",
        &SHA_6[..52]
    );
    // Each file has one ERA with the file's id, as migration 0003 carries over earlier ERAs.
    let files = format!(
        "INSERT INTO era_files (tenant_id, id, received_at, content, content_sha256, byte_size) \
         SELECT 't-' || (i % 3), {id}, i, $3, {sha}, 1 FROM n"
    );
    insert_numbered(db, &[files], first, last, Some(&[0u8])).await?;
    let eras = format!(
        "INSERT INTO eras (tenant_id, id, file_id, set_position, received_at, updated_at, \
         content_sha256, byte_size, status, payer_id, trace_number, claim_count) \
         SELECT 't-' || (i % 3), {id}, {id}, 1, i, i, {sha}, 1, 'POSTED', 'PAYER-' || (i % 5), \
         'TRN' || i, 1 FROM n"
    );
    insert_numbered(db, &[eras], first, last, None).await?;
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
        format!(
            "INSERT INTO denials (tenant_id, id, claim_payment_id, line_number, era_id, \
             patient_control_number, claim_status_code, age_from, denied_cents, category, action, \
             created_at, updated_at) \
             SELECT 't-' || (i % 3), {id}, {id}, 0, {id}, 'P' || i, '4', '2026-01-01', 100, \
             'OTHER', 'APPEAL', i, i FROM n"
        ),
        format!(
            "INSERT INTO deposits (tenant_id, id, trace_number, amount_cents, deposit_date, status, \
             created_at, updated_at) \
             SELECT 't-' || (i % 3), {id}, 'TRN' || i, 100, '2026-01-01', 'MATCHED', i, i FROM n"
        ),
    ];
    Ok(insert_numbered(db, &children, first, last, None).await?)
}

medbill_storage::conformance_tests! {
    namespace = "remittance";
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
