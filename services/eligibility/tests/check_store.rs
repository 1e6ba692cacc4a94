//! Conformance of the eligibility-check records on SQLite and, when `MEDBILL_TEST_PG_URL` is set,
//! PostgreSQL: an exchange's audit row round-trips (raw X12 included) and stays in its tenant, is
//! written in the transaction of the call's idempotency key or not at all, and an upgraded
//! database holds no idempotency records of the older form. CheckEligibility's idempotency
//! (replays, key reuse, answers from the cache or shared) is tested through gRPC in
//! tests/checks.rs.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate};
use medbill_domain::{EligibilityCheckId, IdempotencyKey, Money, TenantId};
use medbill_eligibility::model::{
    Accumulator, BenefitSummary, CheckStatus, CoverageStatus, EligibilityCheck,
};
use medbill_eligibility::{CheckFilter, EligibilityStore, StoredCheck, open_store};
use medbill_storage::idempotency::{self, Begin, Fingerprint, Lookup};
use medbill_storage::testing::TestEnv;
use medbill_storage::{Database, with_db};
use sqlx::migrate::Migrator;

fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).expect("valid tenant id")
}

fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::parse(s).expect("valid key")
}

fn fp(s: &str) -> Fingerprint {
    Fingerprint::of(s.as_bytes())
}
fn check() -> EligibilityCheck {
    let m = |s: &str| Money::parse(s).ok();
    EligibilityCheck {
        id: EligibilityCheckId::new(),
        coverage_id: None,
        patient_ref: Some("pat-1".into()),
        payer_id: "SIMPPO".into(),
        member_id: "SPX100000001".into(),
        provider_npi: "1234567893".into(),
        date_of_service: NaiveDate::from_ymd_opt(2026, 3, 2).expect("date"),
        service_type_codes: vec!["30".into()],
        status: CheckStatus::Completed,
        summary: Some(BenefitSummary {
            coverage_status: CoverageStatus::Active,
            individual_deductible: Some(Accumulator {
                total: m("1500.00"),
                remaining: m("1250.50"),
            }),
            ..BenefitSummary::unknown()
        }),
        benefits: Vec::new(),
        rejections: Vec::new(),
        subscriber: None,
        dependent: None,
        trace_number: "T1".into(),
        error_message: None,
        raw_request: b"ISA*270...".to_vec(),
        raw_response: b"ISA*271...".to_vec(),
        created_at: DateTime::from_timestamp(1_772_000_000, 123_456_000).expect("instant"),
        responded_at: DateTime::from_timestamp(1_772_000_001, 0),
    }
}

fn stored(tenant_id: &str, k: &str, check: EligibilityCheck) -> StoredCheck {
    StoredCheck {
        tenant_id: tenant(tenant_id),
        idempotency_key: key(k),
        payer_attempts: 1,
        check,
    }
}

/// A failed exchange: the payer never answered.
fn failed() -> EligibilityCheck {
    EligibilityCheck {
        id: EligibilityCheckId::new(),
        status: CheckStatus::Failed,
        summary: Some(BenefitSummary::unknown()),
        error_message: Some("payer SIMPPO could not be reached (3 attempt(s))".into()),
        raw_response: Vec::new(),
        responded_at: None,
        ..check()
    }
}

/// Writes a check in a transaction of its own.
async fn insert(store: &dyn EligibilityStore, check: &StoredCheck) -> anyhow::Result<()> {
    let mut tx = store.database().begin().await?;
    store.insert_check(&mut tx, check).await?;
    tx.commit().await?;
    Ok(())
}

async fn count(db: &Database, sql: &'static str) -> anyhow::Result<i64> {
    Ok(with_db!(db, |pool| sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await?))
}

fn without_raw(mut c: EligibilityCheck) -> EligibilityCheck {
    c.raw_request.clear();
    c.raw_response.clear();
    c
}

/// Writes the first `count` migrations of one dialect to a fresh directory, to build a database
/// as an earlier version left it.
fn first_migrations(dialect: &str, count: usize) -> anyhow::Result<PathBuf> {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    let to = std::env::temp_dir().join(format!("medbill-elig-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&to)?;
    let mut names: Vec<_> = std::fs::read_dir(&from)?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names.into_iter().take(count) {
        std::fs::copy(from.join(&name), to.join(&name))?;
    }
    Ok(to)
}

medbill_storage::conformance_tests! {
    namespace = "eligibility";

    async fn a_check_round_trips_raw_x12_included(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let t = tenant("tenant-a");
        let a = stored("tenant-a", "k-1", check());
        // A retry after a failed exchange writes another row under the same key.
        let down = stored("tenant-a", "k-1", failed());
        insert(store.as_ref(), &down).await?;
        insert(store.as_ref(), &a).await?;

        let with_raw = store.get_check(&t, &a.check.id, true).await?.expect("stored");
        assert_eq!(with_raw, a.check, "exact round trip, raw X12 included");
        let plain = store.get_check(&t, &a.check.id, false).await?.expect("stored");
        assert_eq!(plain, without_raw(a.check.clone()));
        assert_eq!(store.get_check(&t, &down.check.id, true).await?, Some(down.check.clone()), "no 271 reads back as none");
        assert!(store.get_check(&tenant("tenant-b"), &a.check.id, true).await?.is_none(), "tenant scoped");
        assert!(store.list_checks(&tenant("tenant-b"), &CheckFilter::default(), None, 10).await?.is_empty());

        let listed = store.list_checks(&t, &CheckFilter::default(), None, 10).await?;
        let mut expected = vec![without_raw(down.check.clone()), without_raw(a.check.clone())];
        expected.sort_by_key(|c| c.id);
        assert_eq!(listed, expected, "in id order, without raw X12");
        let only_failed = CheckFilter { status: Some(CheckStatus::Failed), ..CheckFilter::default() };
        assert_eq!(store.list_checks(&t, &only_failed, None, 10).await?, vec![without_raw(down.check)]);
        Ok(())
    }

    async fn a_check_commits_with_its_key_or_not_at_all(db: Database) -> anyhow::Result<()> {
        let store = open_store(db.clone()).await?;
        let t = tenant("tenant-a");
        let scope = "test/CheckEligibility";
        let first = stored("tenant-a", "k-1", check());
        let Begin::New(mut op) = idempotency::begin(&db, "tenant-a", scope, "k-1", &fp("r")).await? else {
            anyhow::bail!("a fresh key is new");
        };
        store.insert_check(op.tx(), &first).await?;
        drop(op);
        assert!(store.get_check(&t, &first.check.id, false).await?.is_none(), "rolled back with the key");
        assert_eq!(idempotency::lookup(&db, "tenant-a", scope, "k-1", &fp("r")).await?, Lookup::Absent);

        let Begin::New(mut op) = idempotency::begin(&db, "tenant-a", scope, "k-1", &fp("r")).await? else {
            anyhow::bail!("the key is free again");
        };
        store.insert_check(op.tx(), &first).await?;
        op.commit(b"response").await?;
        assert!(store.get_check(&t, &first.check.id, false).await?.is_some());
        assert!(matches!(
            idempotency::begin(&db, "tenant-a", scope, "k-1", &fp("r")).await?,
            Begin::Replay(r) if r == b"response"
        ));
        assert!(matches!(idempotency::begin(&db, "tenant-a", scope, "k-1", &fp("other")).await?, Begin::Conflict));
        assert_eq!(store.list_checks(&t, &CheckFilter::default(), None, 10).await?.len(), 1);
        Ok(())
    }

    async fn an_upgraded_database_holds_no_idempotency_records_of_the_older_form(env: TestEnv) -> anyhow::Result<()> {
        // A database as the version before the keys moved left it: migrations 0001 and 0002,
        // with a check whose key lives only on its row.
        let (pg_dir, sqlite_dir) = (first_migrations("postgres", 2)?, first_migrations("sqlite", 2)?);
        let pg = Migrator::new(pg_dir.as_path()).await?;
        let sqlite = Migrator::new(sqlite_dir.as_path()).await?;
        std::fs::remove_dir_all(pg_dir)?;
        std::fs::remove_dir_all(sqlite_dir)?;
        let db = env.db().clone();
        db.migrate(&pg, &sqlite).await?;
        let old = check();
        let detail = medbill_eligibility::mapping::encode_check_detail(&old);
        with_db!(db, |pool| {
            sqlx::query(
                "INSERT INTO eligibility_checks (tenant_id, id, idempotency_key, request_fingerprint, \
                 coverage_id, patient_ref, payer_id, member_id, provider_npi, date_of_service, \
                 service_type_codes, status, coverage_status, trace_number, aaa_codes, detail, \
                 raw_270, payer_attempts, created_at) \
                 VALUES ('tenant-a', $1, 'old-key', $2, NULL, 'pat-1', 'SIMPPO', 'SPX100000001', \
                 '1234567893', '2026-03-02', '30', 'COMPLETED', 'ACTIVE', 'T1', '', $3, $4, 1, $5)",
            )
            .bind(old.id.to_string())
            .bind(fp("request").to_hex())
            .bind(&detail)
            .bind(&old.raw_request)
            .bind(medbill_storage::time::to_micros(old.created_at))
            .execute(pool)
            .await?;
        });

        // Migration 0003 runs after the platform migration that cleared the older records, and
        // copies the check's key back in under the older scope with an id as its response.
        let (pg_dir, sqlite_dir) = (first_migrations("postgres", 3)?, first_migrations("sqlite", 3)?);
        let pg = Migrator::new(pg_dir.as_path()).await?;
        let sqlite = Migrator::new(sqlite_dir.as_path()).await?;
        std::fs::remove_dir_all(pg_dir)?;
        std::fs::remove_dir_all(sqlite_dir)?;
        db.migrate(&pg, &sqlite).await?;
        const OLD_FORM: &str = "SELECT COUNT(*) FROM platform_idempotency WHERE scope LIKE 'eligibility.%'";
        assert_eq!(count(&db, OLD_FORM).await?, 1, "0003 re-inserts the older form");

        // This version's migrations drop them; the check itself stays.
        let store = open_store(db.clone()).await?;
        assert_eq!(count(&db, OLD_FORM).await?, 0);
        assert_eq!(count(&db, "SELECT COUNT(*) FROM platform_idempotency").await?, 0);
        let t = tenant("tenant-a");
        assert_eq!(store.get_check(&t, &old.id, false).await?, Some(without_raw(old)));
        Ok(())
    }
}
