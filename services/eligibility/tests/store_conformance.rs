//! Conformance suite of the eligibility store: every test runs on SQLite and, when
//! `MEDBILL_TEST_PG_URL` is set, on PostgreSQL, each on a fresh database.

use chrono::NaiveDate;
use medbill_domain::{CoverageId, TenantId};
use medbill_eligibility::store::StoreError;
use medbill_eligibility::{
    Coverage, CoverageFilter, CoverageOrder, EligibilityStore, NewCoverage, open_store,
};
use medbill_storage::Database;
use medbill_storage::idempotency::{self, Begin, Fingerprint};

fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).expect("valid tenant id")
}

/// What a create under an idempotency key came to.
#[derive(Debug)]
enum Keyed {
    Created(Box<Coverage>),
    Replayed(Vec<u8>),
    Conflict,
}

/// Creates a coverage as CreateCoverage does: in one transaction with its idempotency key (the
/// fingerprint here is the coverage's debug form plus the PHI fields that form redacts, the
/// stored response its id).
async fn create_keyed(
    store: &dyn EligibilityStore,
    t: &TenantId,
    key: &str,
    new: &NewCoverage,
) -> Result<Keyed, StoreError> {
    let fp = Fingerprint::of(
        format!("{new:?}|{}|{}", new.member_id, new.subscriber_last_name).as_bytes(),
    );
    match idempotency::begin(
        store.database(),
        t.as_str(),
        "test/CreateCoverage",
        key,
        &fp,
    )
    .await?
    {
        Begin::Replay(response) => Ok(Keyed::Replayed(response)),
        Begin::Conflict => Ok(Keyed::Conflict),
        Begin::New(mut op) => {
            let created = store.create_coverage(op.tx(), t, new).await?;
            op.commit(created.id.to_string().as_bytes()).await?;
            Ok(Keyed::Created(Box::new(created)))
        }
    }
}

/// Creates a coverage that must be new.
async fn create(
    store: &dyn EligibilityStore,
    t: &TenantId,
    key: &str,
    new: &NewCoverage,
) -> anyhow::Result<Coverage> {
    match create_keyed(store, t, key, new).await? {
        Keyed::Created(coverage) => Ok(*coverage),
        other => anyhow::bail!("key {key}: expected a new coverage, got {other:?}"),
    }
}

fn date(s: &str) -> NaiveDate {
    medbill_domain::parse_iso_date(s).expect("valid date")
}

fn coverage(patient_ref: &str, payer_id: &str) -> NewCoverage {
    NewCoverage {
        patient_ref: patient_ref.to_owned(),
        payer_id: payer_id.to_owned(),
        payer_name: "AETNA".to_owned(),
        member_id: "W123456789".to_owned(),
        group_number: Some("GRP-7".to_owned()),
        plan_name: None,
        subscriber_first_name: "JANE".to_owned(),
        subscriber_last_name: "DOE".to_owned(),
        subscriber_birth_date: date("1984-03-09"),
        relationship_to_subscriber: "18".to_owned(),
        coverage_order: CoverageOrder::Primary,
        effective_date: date("2026-01-01"),
        termination_date: Some(date("2026-12-31")),
    }
}

async fn count(store: &dyn EligibilityStore, t: &TenantId) -> anyhow::Result<usize> {
    Ok(store
        .list_coverages(t, &CoverageFilter::default(), None, 500)
        .await?
        .len())
}

medbill_storage::conformance_tests! {
    namespace = "eligibility";

    async fn creates_reads_and_lists(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let t = tenant("clinic-a");
        let new = coverage("pat-1", "60054");
        let created = create(store.as_ref(), &t, "k-1", &new).await?;
        assert_eq!(created.fields, new);
        assert_eq!(created.tenant_id, t);
        assert_eq!(created.created_at, created.updated_at);

        let read = store.get_coverage(&t, &created.id).await?.expect("coverage is stored");
        assert_eq!(read, created, "every field round-trips, timestamps to the microsecond");

        let listed = store.list_coverages(&t, &CoverageFilter::default(), None, 50).await?;
        assert_eq!(listed, vec![created]);
        assert!(store.get_coverage(&t, &CoverageId::new()).await?.is_none());
        Ok(())
    }

    async fn optional_fields_round_trip_as_absent(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let t = tenant("clinic-a");
        let mut new = coverage("pat-1", "60054");
        new.group_number = None;
        new.plan_name = Some("GOLD PPO".to_owned());
        new.termination_date = None;
        new.coverage_order = CoverageOrder::Tertiary;
        new.relationship_to_subscriber = "19".to_owned();
        let created = create(store.as_ref(), &t, "k-1", &new).await?;
        let read = store.get_coverage(&t, &created.id).await?.expect("stored");
        assert_eq!(read.fields, new);
        Ok(())
    }

    async fn lists_with_filters_and_keyset_paging(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let t = tenant("clinic-a");
        let mut ids = Vec::new();
        for (i, (patient, payer)) in [
            ("pat-1", "60054"),
            ("pat-2", "60054"),
            ("pat-1", "87726"),
            ("pat-1", "60054"),
            ("pat-3", "87726"),
        ]
        .into_iter()
        .enumerate()
        {
            let c = create(store.as_ref(), &t, &format!("k-{i}"), &coverage(patient, payer)).await?;
            ids.push(c.id);
        }

        // Unfiltered pages of two, in id (creation) order, resuming after the last id.
        let all = CoverageFilter::default();
        let mut seen = Vec::new();
        let mut after: Option<CoverageId> = None;
        loop {
            let page = store.list_coverages(&t, &all, after.as_ref(), 2).await?;
            assert!(page.len() <= 2);
            if page.is_empty() {
                break;
            }
            after = page.last().map(|c| c.id);
            seen.extend(page.into_iter().map(|c| c.id));
        }
        assert_eq!(seen, ids);

        let by_patient = CoverageFilter { patient_ref: Some("pat-1".into()), payer_id: None };
        let got: Vec<_> = store.list_coverages(&t, &by_patient, None, 50).await?.into_iter().map(|c| c.id).collect();
        assert_eq!(got, vec![ids[0], ids[2], ids[3]]);

        let by_payer = CoverageFilter { patient_ref: None, payer_id: Some("87726".into()) };
        let got: Vec<_> = store.list_coverages(&t, &by_payer, None, 50).await?.into_iter().map(|c| c.id).collect();
        assert_eq!(got, vec![ids[2], ids[4]]);

        let both = CoverageFilter { patient_ref: Some("pat-1".into()), payer_id: Some("60054".into()) };
        let first = store.list_coverages(&t, &both, None, 1).await?;
        assert_eq!(first.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[0]]);
        let second = store.list_coverages(&t, &both, Some(&ids[0]), 1).await?;
        assert_eq!(second.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[3]]);
        assert!(store.list_coverages(&t, &both, Some(&ids[3]), 1).await?.is_empty());
        Ok(())
    }

    async fn tenants_are_isolated(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let a = tenant("clinic-a");
        let b = tenant("clinic-b");
        let created = create(store.as_ref(), &a, "k-1", &coverage("pat-1", "60054")).await?;
        assert!(store.get_coverage(&b, &created.id).await?.is_none());
        assert_eq!(count(store.as_ref(), &b).await?, 0);
        let filter = CoverageFilter { patient_ref: Some("pat-1".into()), payer_id: None };
        assert!(store.list_coverages(&b, &filter, None, 50).await?.is_empty());

        // The same key in another tenant is another request.
        let other = create(store.as_ref(), &b, "k-1", &coverage("pat-1", "60054")).await?;
        assert_ne!(other.id, created.id);
        assert_eq!(count(store.as_ref(), &a).await?, 1);
        assert_eq!(count(store.as_ref(), &b).await?, 1);
        Ok(())
    }

    async fn a_coverage_commits_with_its_key(db: Database) -> anyhow::Result<()> {
        // The RPC's replay and key-reuse answers are tested through gRPC (tests/grpc.rs); here,
        // that the coverage is written in the key's transaction.
        let store = open_store(db).await?;
        let t = tenant("clinic-a");
        let new = coverage("pat-1", "60054");
        let first = create(store.as_ref(), &t, "k-1", &new).await?;
        let again = create_keyed(store.as_ref(), &t, "k-1", &new).await?;
        assert!(
            matches!(&again, Keyed::Replayed(id) if id == first.id.to_string().as_bytes()),
            "a retry replays the first response: {again:?}"
        );
        assert_eq!(count(store.as_ref(), &t).await?, 1, "a retry writes nothing");

        let mut different = new.clone();
        different.member_id = "OTHER".to_owned();
        let reused = create_keyed(store.as_ref(), &t, "k-1", &different).await?;
        assert!(matches!(reused, Keyed::Conflict), "{reused:?}");
        assert_eq!(count(store.as_ref(), &t).await?, 1);

        let second = create(store.as_ref(), &t, "k-2", &new).await?;
        assert_ne!(second.id, first.id, "a new key is a new coverage");
        assert_eq!(count(store.as_ref(), &t).await?, 2);
        Ok(())
    }

    async fn a_failed_write_leaves_nothing(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let t = tenant("clinic-a");
        // The database refuses a termination before the effective date (CHECK constraint),
        // after the idempotency key has been claimed in the same transaction.
        let mut bad = coverage("pat-1", "60054");
        bad.termination_date = Some(date("2025-12-31"));
        let err = create_keyed(store.as_ref(), &t, "k-1", &bad).await.expect_err("constraint");
        assert!(matches!(err, StoreError::Storage(_)), "{err}");
        assert_eq!(count(store.as_ref(), &t).await?, 0, "no coverage row");

        // The key was rolled back with the row: it is free for a (different) valid request.
        let good = coverage("pat-1", "60054");
        let created = create(store.as_ref(), &t, "k-1", &good).await?;
        assert_eq!(created.fields, good);
        assert_eq!(count(store.as_ref(), &t).await?, 1);
        Ok(())
    }

    async fn migrations_can_run_again(db: Database) -> anyhow::Result<()> {
        let store = open_store(db.clone()).await?;
        let t = tenant("clinic-a");
        let created = create(store.as_ref(), &t, "k-1", &coverage("pat-1", "60054")).await?;
        // A restart runs the migrations again; data survives.
        let reopened = open_store(db).await?;
        assert_eq!(reopened.get_coverage(&t, &created.id).await?, Some(created));
        Ok(())
    }
}
