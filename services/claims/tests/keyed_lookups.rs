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
use medbill_storage::Database;

use Arg::{Int, Text};
use medbill_storage::query_plans::{
    Arg, Lookup, Use, check_at_every_size, check_parameters, index, insert_numbered,
};

/// The id of claim 6 (of tenant `t-0`), which the look-ups ask for.
const ID_6: &str = "0190f3a2-0000-7000-8000-100000000006";
/// The id of claim 9 (of tenant `t-0`).
const ID_9: &str = "0190f3a2-0000-7000-8000-100000000009";

/// The tables the look-ups read.
const TABLES: [&str; 5] = [
    "claims",
    "claim_diagnoses",
    "claim_lines",
    "claim_status_history",
    "claim_scrub_results",
];

const TENANT_AND_ID: &[(&str, &str)] = &[("tenant_id", "="), ("id", "=")];
const TENANT_AND_CLAIM: &[(&str, &str)] = &[("tenant_id", "="), ("claim_id", "=")];

const ID: &[(&str, &str)] = &[("id", "=")];
const PCN_KEY: &[(&str, &str)] = &[("tenant_id", "="), ("patient_control_number", "=")];

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
        planned_each_time: false,
    },
    Lookup {
        name: "claims by patient control numbers (a page of GetClaimsByPatientControlNumbers)",
        // Not `ORDER BY id` (the store sorts): with it both databases walk the tenant's claims
        // in id order and test each against the list.
        sql: "SELECT id, patient_control_number, status FROM claims \
              WHERE tenant_id = $1 AND patient_control_number IN ($2, $3, $4)",
        args: &[Text("t-0"), Text("P6"), Text("P9"), Text("P12")],
        uses: &[Use {
            table: "claims",
            alias: None,
            pg: &[index("claims_patient_control_number_key", PCN_KEY)],
            sqlite: &[index("sqlite_autoindex_claims_2", PCN_KEY)],
        }],
        postgres_only: false,
        planned_each_time: true,
    },
    Lookup {
        name: "claims moved together (a chunk of a batch's status change)",
        sql: "UPDATE claims SET status = $1, updated_at = $2, \
              submission_batch_id = COALESCE($5, submission_batch_id) \
              WHERE tenant_id || '' = $3 AND status || '' = $4 AND id IN ($6, $7)",
        args: &[
            Text("READY"),
            Int(7),
            Text("t-0"),
            Text("DRAFT"),
            Text("batch-1"),
            Text(ID_6),
            Text(ID_9),
        ],
        // Each claim by its id: never every claim of the tenant through an index on `tenant_id`
        // (SQLite took the status index, PostgreSQL that of secondary claims' primaries).
        uses: &[CLAIM_BY_ID],
        postgres_only: false,
        planned_each_time: true,
    },
    Lookup {
        name: "adjudications put in force together",
        sql: "UPDATE claims SET adjudication_id = CASE id WHEN $2 THEN $3 WHEN $4 THEN $5 END, \
              payer_claim_control_number = COALESCE(CASE id WHEN $6 THEN $7 WHEN $8 THEN $9 END, \
              payer_claim_control_number) WHERE tenant_id || '' = $1 AND id IN ($10, $11)",
        args: &[
            Text("t-0"),
            Text(ID_6),
            Text("adj-6"),
            Text(ID_9),
            Text("adj-9"),
            Text(ID_6),
            Text("ICN-6"),
            Text(ID_9),
            Text("ICN-9"),
            Text(ID_6),
            Text(ID_9),
        ],
        uses: &[CLAIM_BY_ID],
        postgres_only: false,
        planned_each_time: true,
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
        planned_each_time: false,
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
        planned_each_time: false,
    },
    Lookup {
        name: "scrub findings of a claim",
        sql: "SELECT claim_id, findings FROM claim_scrub_results \
              WHERE tenant_id = $1 AND claim_id IN ($2)",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[Use {
            table: "claim_scrub_results",
            alias: None,
            pg: &[index("claim_scrub_results_pkey", TENANT_AND_CLAIM)],
            sqlite: &[index(
                "sqlite_autoindex_claim_scrub_results_1",
                TENANT_AND_CLAIM,
            )],
        }],
        postgres_only: false,
        planned_each_time: false,
    },
    Lookup {
        name: "claim status before a change",
        sql: "SELECT status, patient_control_number FROM claims WHERE tenant_id = $1 AND id = $2",
        args: &[Text("t-0"), Text(ID_6)],
        uses: &[CLAIM_BY_ID],
        postgres_only: false,
        planned_each_time: false,
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
        planned_each_time: false,
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
        planned_each_time: false,
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
        planned_each_time: false,
    },
];

const STATUS_KEY: &[(&str, &str)] = &[("tenant_id", "="), ("status", "="), ("id", "=")];

/// Adds claims `from..=to` (over three tenants), each with one diagnosis, one line, one
/// history entry and one scrub result, in portable SQL. Ids are shaped like the service's (36
/// characters, rising like UUID v7) and the listed columns have few distinct values, as in a
/// real tenant's claims, so the indexes have realistic sizes and heights.
async fn fill(db: &Database, first: i64, last: i64) -> anyhow::Result<()> {
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
        "INSERT INTO claim_scrub_results (tenant_id, claim_id, scrubbed_at, error_count, findings) \
         SELECT 't-' || (i % 3), '0190f3a2-0000-7000-8000-' || (100000000000 + i), i, 0, '[]' \
         FROM n",
    ];
    Ok(insert_numbered(db, &statements, first, last, None).await?)
}

medbill_storage::conformance_tests! {
    namespace = "claims";
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
