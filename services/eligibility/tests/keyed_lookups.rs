//! Look-ups by key or id read the rows asked for, through an index on the key, whatever the
//! planner statistics say.
//!
//! On a fresh database that was never analysed (autovacuum off for its tables), empty and then
//! growing to 12,000 rows per table, `EXPLAIN` of every keyed look-up the eligibility store makes
//! (`medbill_eligibility::store::KEYED_LOOKUPS`), and of the `platform_idempotency` statements
//! `medbill_storage::idempotency` runs for it, must show an index scan on one of the expected
//! indexes with the key columns in its index condition, and no sequential scan: on PostgreSQL for
//! the plan of the literal query (a custom plan) and for the generic plan of the prepared one (a
//! prepared statement planned while the table is small keeps its plan as the table grows), on
//! SQLite for `EXPLAIN QUERY PLAN` of the statement as prepared.

use medbill_eligibility::store::{
    KEYED_LOOKUPS, KeyedLookup, PG_MIGRATOR, SELECT_PATIENT_COVERAGES, SQLITE_MIGRATOR,
};
use medbill_storage::Database;

use Arg::{Int, Text};
use medbill_storage::query_plans::{
    Arg, Lookup, Use, check_at_every_size, check_parameters, index, insert_numbered,
};

/// The id of row 6 of each table (of tenant `t-0`), which the look-ups ask for.
const ID_6: &str = "0190f3a2-0000-7000-8000-100000000006";

/// The idempotency scope of `CheckEligibility`, the RPC whose keys the look-ups ask for.
const SCOPE: &str = "medbill.eligibility.v1.EligibilityService/CheckEligibility";

/// The tables the look-ups read.
const TABLES: [&str; 4] = [
    "coverages",
    "eligibility_checks",
    "cost_estimates",
    "platform_idempotency",
];

const TENANT_AND_ID: &[(&str, &str)] = &[("tenant_id", "="), ("id", "=")];
const ID: &[(&str, &str)] = &[("id", "=")];
const IDEMPOTENCY_KEY: &[(&str, &str)] = &[("tenant_id", "="), ("scope", "="), ("idem_key", "=")];

/// `coverages` by id: the hash index on id (migration 0005), or either unique index.
const COVERAGE_BY_ID: Use = Use {
    table: "coverages",
    alias: None,
    pg: &[
        index("coverages_id_hash_idx", ID),
        index("coverages_pkey", TENANT_AND_ID),
        index("coverages_id_key", ID),
    ],
    sqlite: &[
        index("sqlite_autoindex_coverages_1", TENANT_AND_ID),
        index("coverages_id_key", ID),
    ],
};

/// `eligibility_checks` by id: the hash index on id (migration 0005), or either unique index.
const CHECK_BY_ID: Use = Use {
    table: "eligibility_checks",
    alias: None,
    pg: &[
        index("eligibility_checks_id_hash_idx", ID),
        index("eligibility_checks_pkey", TENANT_AND_ID),
        index("eligibility_checks_id_key", ID),
    ],
    sqlite: &[
        index("sqlite_autoindex_eligibility_checks_1", TENANT_AND_ID),
        index("eligibility_checks_id_key", ID),
    ],
};

/// `cost_estimates` by id: the hash index on id (migration 0005), or either unique index.
const ESTIMATE_BY_ID: Use = Use {
    table: "cost_estimates",
    alias: None,
    pg: &[
        index("cost_estimates_id_hash_idx", ID),
        index("cost_estimates_pkey", TENANT_AND_ID),
        index("cost_estimates_id_key", ID),
    ],
    sqlite: &[
        index("sqlite_autoindex_cost_estimates_1", TENANT_AND_ID),
        index("cost_estimates_id_key", ID),
    ],
};

/// `platform_idempotency` by key: its primary key.
const IDEMPOTENCY_BY_KEY: Use = Use {
    table: "platform_idempotency",
    alias: None,
    pg: &[index("platform_idempotency_pkey", IDEMPOTENCY_KEY)],
    sqlite: &[index(
        "sqlite_autoindex_platform_idempotency_1",
        IDEMPOTENCY_KEY,
    )],
};

/// `coverages` of one patient: the patient index, on tenant and patient.
const COVERAGES_OF_PATIENT: Use = Use {
    table: "coverages",
    alias: None,
    pg: &[index(
        "coverages_by_patient",
        &[("tenant_id", "="), ("patient_ref", "=")],
    )],
    sqlite: &[index(
        "coverages_by_patient",
        &[("tenant_id", "="), ("patient_ref", "=")],
    )],
};

/// The `platform_idempotency` statements of `medbill_storage::idempotency` that every
/// eligibility RPC runs through `medbill_runtime::idempotent` (the key look-up of `lookup` and of
/// `reserve` after a conflicting insert, and `complete`'s update), as that crate writes them.
const PLATFORM_LOOKUPS: &[Lookup] = &[
    Lookup {
        name: "idempotency key look-up",
        sql: "SELECT request_sha256, response FROM platform_idempotency \
              WHERE tenant_id = $1 AND scope = $2 AND idem_key = $3",
        args: &[Text("t-0"), Text(SCOPE), Text("key-6")],
        uses: &[IDEMPOTENCY_BY_KEY],
        postgres_only: false,
        planned_each_time: false,
    },
    Lookup {
        name: "idempotency completion",
        sql: "UPDATE platform_idempotency SET response = $1, completed_at = $2 \
              WHERE tenant_id = $3 AND scope = $4 AND idem_key = $5 AND response IS NULL",
        args: &[Text("f"), Int(7), Text("t-0"), Text(SCOPE), Text("key-6")],
        uses: &[IDEMPOTENCY_BY_KEY],
        postgres_only: false,
        planned_each_time: false,
    },
];

/// Returns the store's look-ups (all by `tenant_id = $1 AND id = $2`) with the indexes each may
/// use, followed by the platform statements.
fn lookups() -> Vec<Lookup> {
    let store = KEYED_LOOKUPS.iter().map(|lookup: &KeyedLookup| {
        let used = match lookup.table {
            "coverages" => &COVERAGE_BY_ID,
            "eligibility_checks" => &CHECK_BY_ID,
            "cost_estimates" => &ESTIMATE_BY_ID,
            other => panic!("{}: no expected indexes for {other}", lookup.name),
        };
        assert!(
            used.pg.iter().any(|i| i.name == lookup.index),
            "{}: {} is not among the indexes expected on {}",
            lookup.name,
            lookup.index,
            lookup.table
        );
        assert_eq!(lookup.params, 2, "{}: {}", lookup.name, lookup.sql);
        Lookup {
            name: lookup.name,
            sql: lookup.sql,
            args: &[Text("t-0"), Text(ID_6)],
            uses: std::slice::from_ref(used),
            postgres_only: false,
            planned_each_time: false,
        }
    });
    store
        .chain(PLATFORM_LOOKUPS.iter().map(|l| Lookup { ..*l }))
        .collect()
}

/// A patient's coverages, which claims reads for each adjudication that may need a secondary
/// claim. Checked on SQLite, whose plan is made once for every value: there the old
/// `($2 IS NULL OR patient_ref = $2)` form read every coverage of the tenant. PostgreSQL without
/// statistics ties the patient index with the primary key (on tenant) and takes the latter until
/// the table is analysed; that is left to autovacuum's analyse.
fn patient_lookup() -> Lookup {
    Lookup {
        name: "coverages of a patient",
        sql: SELECT_PATIENT_COVERAGES,
        args: &[Text("t-0"), Text("p-6"), Int(100)],
        uses: std::slice::from_ref(&COVERAGES_OF_PATIENT),
        postgres_only: false,
        planned_each_time: false,
    }
}

/// Adds rows `from..=to` to every table the look-ups read, over three tenants, in portable SQL.
/// Ids are shaped like the service's (36 characters, rising like UUID v7) and the listed columns
/// have few distinct values, as in a real tenant's rows, so the indexes have realistic sizes and
/// heights.
async fn fill(db: &Database, first: i64, last: i64) -> anyhow::Result<()> {
    let coverages = [
        "INSERT INTO coverages (tenant_id, id, patient_ref, payer_id, payer_name, member_id, \
         subscriber_first_name, subscriber_last_name, subscriber_birth_date, \
         relationship_to_subscriber, coverage_order, effective_date, created_at, updated_at) \
         SELECT 't-' || (i % 3), '0190f3a2-0000-7000-8000-' || (100000000000 + i), \
         'p-' || (i % 70), 'PAYER-' || (i % 5), 'PAYER', 'M' || i, 'F', 'L', '1980-01-01', '18', \
         'PRIMARY', '2026-01-01', i, i FROM n",
    ];
    insert_numbered(db, &coverages, first, last, None).await?;
    // The rest bind an empty detail blob as $3.
    let with_detail = [
        "INSERT INTO eligibility_checks (tenant_id, id, idempotency_key, \
         coverage_id, patient_ref, payer_id, member_id, provider_npi, date_of_service, \
         service_type_codes, status, coverage_status, trace_number, aaa_codes, detail, raw_270, \
         payer_attempts, created_at) \
         SELECT 't-' || (i % 3), '0190f3a2-0000-7000-8000-' || (100000000000 + i), 'key-' || i, \
         '0190f3a2-0000-7000-8000-' || (100000000000 + i % 50), 'p-' || (i % 70), \
         'PAYER-' || (i % 5), 'M', '1234567893', '2026-03-02', '30', 'COMPLETED', 'ACTIVE', 'T', \
         '', $3, $3, 1, i FROM n",
        "INSERT INTO cost_estimates (tenant_id, id, patient_ref, date_of_service, self_pay, \
         total_charge, total_allowed, total_patient, detail, created_at) \
         SELECT 't-' || (i % 3), '0190f3a2-0000-7000-8000-' || (100000000000 + i), \
         'p-' || (i % 70), '2026-03-02', false, 1, 1, 1, $3, i FROM n",
        "INSERT INTO platform_idempotency (tenant_id, scope, idem_key, request_sha256, response, \
         created_at, completed_at) \
         SELECT 't-' || (i % 3), 'medbill.eligibility.v1.EligibilityService/CheckEligibility', \
         'key-' || i, 'f', $3, i, i FROM n",
    ];
    Ok(insert_numbered(db, &with_detail, first, last, Some(&[0u8])).await?)
}

medbill_storage::conformance_tests! {
    namespace = "eligibility";
    migrations = (&PG_MIGRATOR, &SQLITE_MIGRATOR);

    async fn keyed_lookups_use_their_index_without_statistics(db: Database) -> anyhow::Result<()> {
        let mut lookups = lookups();
        if db.backend() == medbill_storage::Backend::Sqlite {
            lookups.push(patient_lookup());
        }
        let problems =
            check_at_every_size(&db, &TABLES, &lookups, async |first, last| fill(&db, first, last).await)
                .await?;
        assert!(problems.is_empty(), "{}", problems.join("\n\n"));
        Ok(())
    }
}

#[test]
fn every_lookup_binds_its_parameters() {
    for lookup in &lookups() {
        check_parameters(lookup);
    }
}
