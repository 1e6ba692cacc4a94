//! Conformance of the eligibility-check records on SQLite and, when `MEDBILL_TEST_PG_URL` is set,
//! PostgreSQL: group commit, one idempotency key per request whether the answer was asked of the
//! payer or reused, raw X12 kept, and keys recorded before the upgrade still replaying.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate};
use medbill_domain::{EligibilityCheckId, IdempotencyKey, Money, TenantId};
use medbill_eligibility::model::{
    Accumulator, BenefitSummary, CheckStatus, CoverageStatus, EligibilityCheck,
};
use medbill_eligibility::store::{CheckRecord, KeyLookup, KeyedCheck, Recorded};
use medbill_eligibility::{CheckFilter, StoredCheck, open_store};
use medbill_storage::idempotency::Fingerprint;
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

fn exchange(tenant_id: &str, k: &str, fingerprint: &str) -> StoredCheck {
    StoredCheck {
        tenant_id: tenant(tenant_id),
        idempotency_key: key(k),
        request_fingerprint: fp(fingerprint),
        payer_attempts: 1,
        check: check(),
    }
}

fn reused(tenant_id: &str, k: &str, fingerprint: &str, id: EligibilityCheckId) -> CheckRecord {
    CheckRecord::Reused {
        tenant_id: tenant(tenant_id),
        idempotency_key: key(k),
        request_fingerprint: fp(fingerprint),
        check_id: id,
    }
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

    async fn a_batch_records_each_key_once_and_round_trips(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let a = exchange("tenant-a", "k-1", "f1");
        let same_key = exchange("tenant-a", "k-1", "f2");
        let same_request = exchange("tenant-a", "k-1", "f1");
        let other_tenant = exchange("tenant-b", "k-1", "f3");
        let outcomes = store
            .record_checks(&[
                CheckRecord::Exchange(Box::new(a.clone())),
                CheckRecord::Exchange(Box::new(same_key)),
                CheckRecord::Exchange(Box::new(same_request)),
                CheckRecord::Exchange(Box::new(other_tenant.clone())),
                reused("tenant-a", "k-2", "f4", a.check.id),
            ])
            .await?;
        let first = KeyedCheck { check: without_raw(a.check.clone()), reused: false };
        assert_eq!(
            outcomes,
            vec![
                Recorded::New,
                Recorded::Conflict,
                Recorded::Replay(Box::new(first.clone())),
                Recorded::New,
                Recorded::New,
            ],
            "keys are per tenant; a reused answer records its key too"
        );

        let t = tenant("tenant-a");
        let with_raw = store.get_check(&t, &a.check.id, true).await?.expect("stored");
        assert_eq!(with_raw, a.check, "exact round trip, raw X12 included");
        let plain = store.get_check(&t, &a.check.id, false).await?.expect("stored");
        assert_eq!(plain, without_raw(a.check.clone()));
        assert!(store.get_check(&tenant("tenant-b"), &a.check.id, true).await?.is_none(), "tenant scoped");

        assert_eq!(store.find_check_by_key(&t, &key("k-1"), &fp("f1")).await?, KeyLookup::Replay(Box::new(first)));
        assert_eq!(store.find_check_by_key(&t, &key("k-1"), &fp("f9")).await?, KeyLookup::Conflict);
        let by_reuse = KeyedCheck { check: without_raw(a.check.clone()), reused: true };
        assert_eq!(store.find_check_by_key(&t, &key("k-2"), &fp("f4")).await?, KeyLookup::Replay(Box::new(by_reuse.clone())));
        assert_eq!(store.find_check_by_key(&t, &key("k-3"), &fp("f4")).await?, KeyLookup::Free);
        assert_eq!(
            store.record_check(&reused("tenant-a", "k-2", "f5", a.check.id)).await?,
            Recorded::Conflict,
            "a key that reused an answer is still one request"
        );
        assert_eq!(
            store.record_check(&reused("tenant-a", "k-2", "f4", EligibilityCheckId::new())).await?,
            Recorded::Replay(Box::new(by_reuse)),
        );
        let b_key = store.find_check_by_key(&tenant("tenant-b"), &key("k-1"), &fp("f3")).await?;
        assert_eq!(b_key, KeyLookup::Replay(Box::new(KeyedCheck { check: without_raw(other_tenant.check), reused: false })));

        let listed = store.list_checks(&t, &CheckFilter::default(), None, 10).await?;
        assert_eq!(listed.len(), 1, "reusing an answer writes no audit row");
        let failed = CheckFilter { status: Some(CheckStatus::Failed), ..CheckFilter::default() };
        assert!(store.list_checks(&t, &failed, None, 10).await?.is_empty());
        Ok(())
    }

    async fn keys_recorded_before_the_upgrade_keep_replaying(env: TestEnv) -> anyhow::Result<()> {
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
        let fingerprint = fp("request").to_hex();
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
            .bind(&fingerprint)
            .bind(&detail)
            .bind(&old.raw_request)
            .bind(medbill_storage::time::to_micros(old.created_at))
            .execute(pool)
            .await?;
        });

        let store = open_store(db).await?;
        let t = tenant("tenant-a");
        assert_eq!(
            store.find_check_by_key(&t, &key("old-key"), &fp("request")).await?,
            KeyLookup::Replay(Box::new(KeyedCheck { check: without_raw(old.clone()), reused: false }))
        );
        assert_eq!(store.find_check_by_key(&t, &key("old-key"), &fp("other")).await?, KeyLookup::Conflict);
        // A key may be recorded again once its record is purged: the audit rows no longer hold it.
        let again = exchange("tenant-a", "old-key", "again");
        medbill_storage::idempotency::purge_before(
            env.db(),
            medbill_storage::time::to_micros(old.created_at) + 1,
        )
        .await?;
        assert_eq!(store.record_check(&CheckRecord::Exchange(Box::new(again))).await?, Recorded::New);
        Ok(())
    }
}
