//! Conformance suite of the claims store: every test runs on SQLite, and on PostgreSQL when
//! `MEDBILL_TEST_PG_URL` is set, each on a fresh database.

use anyhow::{Context, Result, ensure};
use chrono::NaiveDate;
use medbill_claims::model::{
    ClaimFilter, ClaimStatus, ClaimType, FrequencyCode, NewClaim, NewClaimLine, StatusChangeSource,
};
use medbill_claims::store::{ClaimStoreError, NAMESPACE, NewStatus, PG_MIGRATOR, SQLITE_MIGRATOR};
use medbill_claims::{Claim, ClaimStore, SqlClaimStore};
use medbill_domain::{Money, Npi, PatientControlNumber, TenantId};
use medbill_storage::idempotency::{self, Begin, Fingerprint};
use medbill_storage::{Database, with_db};
use rust_decimal_macros::dec;

fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).expect("valid tenant")
}

fn money(s: &str) -> Money {
    Money::parse(s).expect("valid amount")
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("valid date")
}

fn line(code: &str, charge: &str, day: &str) -> NewClaimLine {
    NewClaimLine {
        line_control_number: None,
        procedure_code: code.into(),
        modifiers: vec![],
        revenue_code: None,
        charge: money(charge),
        units: dec!(1),
        service_date: date(day),
        diagnosis_pointers: vec![1],
        prior_authorization_number: None,
        referral_number: None,
    }
}

fn new_claim(pcn: &str, patient: &str, payer: &str, day: &str) -> NewClaim {
    NewClaim {
        patient_control_number: PatientControlNumber::parse(pcn).expect("valid pcn"),
        claim_type: ClaimType::Professional,
        frequency_code: FrequencyCode::Original,
        payer_claim_control_number: None,
        coverage_id: format!("cov-{patient}"),
        payer_id: payer.into(),
        patient_ref: patient.into(),
        billing_provider_npi: Npi::parse("1234567893").expect("valid npi"),
        rendering_provider_npi: None,
        place_of_service: Some("11".into()),
        facility_type_code: None,
        diagnoses: vec!["E119".into(), "I10".into()],
        lines: vec![line("99213", "125.00", day), line("G0439", "80.55", day)],
        total_charge: None,
        service_date_from: None,
        service_date_to: None,
        encounter_ref: Some("enc-1".into()),
        details: Default::default(),
    }
}

/// What a create under an idempotency key came to.
#[derive(Debug)]
enum Keyed {
    Created(Box<Claim>),
    Replayed,
    Conflict,
}

/// Creates a claim as CreateClaim does: in one transaction with its idempotency key (the
/// fingerprint here is simply the claim's debug form).
async fn create_keyed(
    store: &SqlClaimStore,
    t: &TenantId,
    key: &str,
    input: &NewClaim,
) -> Result<Keyed, ClaimStoreError> {
    let fp = Fingerprint::of(format!("{input:?}").as_bytes());
    match idempotency::begin(store.database(), t.as_str(), "test/CreateClaim", key, &fp).await? {
        Begin::Replay(_) => Ok(Keyed::Replayed),
        Begin::Conflict => Ok(Keyed::Conflict),
        Begin::New(mut op) => {
            let claim = store.create_claim(op.tx(), t, input).await?;
            op.commit(claim.id.to_string().as_bytes()).await?;
            Ok(Keyed::Created(Box::new(claim)))
        }
    }
}

/// Creates a claim that must be new.
async fn create(
    store: &SqlClaimStore,
    t: &TenantId,
    key: &str,
    input: &NewClaim,
) -> Result<Claim, ClaimStoreError> {
    match create_keyed(store, t, key, input).await? {
        Keyed::Created(claim) => Ok(*claim),
        other => panic!("key {key}: expected a new claim, got {other:?}"),
    }
}

async fn count(db: &Database, table: &'static str) -> Result<i64> {
    let sql: &'static str = match table {
        "claims" => "SELECT COUNT(*) FROM claims",
        "claim_lines" => "SELECT COUNT(*) FROM claim_lines",
        "claim_diagnoses" => "SELECT COUNT(*) FROM claim_diagnoses",
        "claim_status_history" => "SELECT COUNT(*) FROM claim_status_history",
        "platform_idempotency" => "SELECT COUNT(*) FROM platform_idempotency",
        other => anyhow::bail!("no count query for {other}"),
    };
    Ok(with_db!(db, |pool| sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await?))
}

/// A batch of `claims` to store (the content does not matter to the store).
fn batch(
    id: uuid::Uuid,
    claims: &[medbill_domain::ClaimId],
) -> medbill_claims::submission::NewBatch<'_> {
    medbill_claims::submission::NewBatch {
        id,
        route: "60054",
        claim_type: ClaimType::Professional,
        payer_id: "60054",
        control_number: 1,
        set_control_number: "0001",
        claim_ids: claims,
        total_charge: money("1.00"),
        content: b"ISA",
    }
}

medbill_storage::conformance_tests! {
    namespace = "claims";
    migrations = (&PG_MIGRATOR, &SQLITE_MIGRATOR);

    async fn creates_gets_and_records_history(db: Database) -> Result<()> {
        let store = SqlClaimStore::new(db.clone());
        let t = tenant("tenant-a");
        let mut input = new_claim("PCN-1", "pat-1", "60054", "2026-03-02");
        input.lines[1].modifiers = vec!["25".into(), "59".into()];
        input.lines[1].diagnosis_pointers = vec![2, 1];
        input.lines[1].units = dec!(1.5);
        input.lines[0].line_control_number = Some("LINE-A".into());
        input.lines[1].service_date = date("2026-03-04");
        let c = &create(&store, &t, "k1", &input).await?;
        assert_eq!(c.status, ClaimStatus::Draft);
        assert_eq!(c.total_charge, money("205.55"));
        assert_eq!(c.total_charge.to_minor_units()?, 20555);
        assert_eq!(c.service_date_from, date("2026-03-02"));
        assert_eq!(c.service_date_to, date("2026-03-04"));
        assert_eq!(c.diagnoses, vec!["E119".to_string(), "I10".to_string()]);
        assert_eq!(c.lines.len(), 2);
        assert_eq!(c.lines[0].line_number, 1);
        assert_eq!(c.lines[0].line_control_number, "LINE-A");
        assert_eq!(c.lines[1].line_number, 2);
        assert!(!c.lines[1].line_control_number.is_empty(), "the store assigns a REF*6R");
        assert_eq!(c.lines[1].modifiers, vec!["25".to_string(), "59".to_string()]);
        assert_eq!(c.lines[1].diagnosis_pointers, vec![2, 1]);
        assert_eq!(c.lines[1].units, dec!(1.5));
        assert_eq!(c.lines[1].charge, money("80.55"));
        assert_eq!(c.encounter_ref.as_deref(), Some("enc-1"));

        let got = store.get_claim(&t, c.id).await?.context("claim not found")?;
        assert_eq!(&got, c);

        let history = store.status_history(&t, c.id).await?;
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].from, None);
        assert_eq!(history[0].to, ClaimStatus::Draft);
        assert_eq!(history[0].source, StatusChangeSource::Create);
        assert_eq!(history[0].sequence, 1);
        assert_eq!(history[0].patient_control_number.as_str(), "PCN-1");
        Ok(())
    }

    async fn lists_with_filters_and_keyset_paging(db: Database) -> Result<()> {
        let store = SqlClaimStore::new(db);
        let t = tenant("tenant-a");
        let mut ids = Vec::new();
        for i in 0..5 {
            let patient = if i % 2 == 0 { "pat-even" } else { "pat-odd" };
            let payer = if i < 3 { "60054" } else { "87726" };
            let day = format!("2026-03-0{}", i + 1);
            let input = new_claim(&format!("PCN-{i}"), patient, payer, &day);
            let c = create(&store, &t, &format!("k{i}"), &input).await?;
            ids.push(c.id);
        }
        let all = store.list_claims(&t, &ClaimFilter::default(), None, 100).await?;
        assert_eq!(all.iter().map(|c| c.id).collect::<Vec<_>>(), ids, "id (creation) order");
        assert!(all.iter().all(|c| c.lines.len() == 2 && c.diagnoses.len() == 2));

        // Keyset paging: 2 + 2 + 1, no overlap, no gap.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.list_claims(&t, &ClaimFilter::default(), after, 2).await?;
            if page.is_empty() {
                break;
            }
            ensure!(page.len() <= 2);
            after = page.last().map(|c| c.id);
            seen.extend(page.into_iter().map(|c| c.id));
        }
        assert_eq!(seen, ids);

        let by_patient = ClaimFilter { patient_ref: Some("pat-even".into()), ..Default::default() };
        let got = store.list_claims(&t, &by_patient, None, 100).await?;
        assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[0], ids[2], ids[4]]);
        // A filtered page resumes after its cursor with the filter still applied.
        let page2 = store.list_claims(&t, &by_patient, Some(ids[0]), 1).await?;
        assert_eq!(page2.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[2]]);

        let by_payer = ClaimFilter { payer_id: Some("87726".into()), ..Default::default() };
        assert_eq!(store.list_claims(&t, &by_payer, None, 100).await?.len(), 2);

        let by_dates = ClaimFilter {
            service_date_from: Some(date("2026-03-02")),
            service_date_to: Some(date("2026-03-03")),
            ..Default::default()
        };
        let got = store.list_claims(&t, &by_dates, None, 100).await?;
        assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[1], ids[2]]);

        let by_status = ClaimFilter { statuses: vec![ClaimStatus::Paid, ClaimStatus::Draft], ..Default::default() };
        assert_eq!(store.list_claims(&t, &by_status, None, 100).await?.len(), 5);
        let by_status = ClaimFilter { statuses: vec![ClaimStatus::Paid, ClaimStatus::PartiallyPaid], ..Default::default() };
        assert!(store.list_claims(&t, &by_status, None, 100).await?.is_empty());

        let by_pcn = ClaimFilter { patient_control_number: Some("PCN-3".into()), ..Default::default() };
        let got = store.list_claims(&t, &by_pcn, None, 100).await?;
        assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[3]]);

        let by_coverage = ClaimFilter { coverage_id: Some("cov-pat-odd".into()), ..Default::default() };
        assert_eq!(store.list_claims(&t, &by_coverage, None, 100).await?.len(), 2);

        // Status events of the tenant, in sequence order.
        let events = store.status_changes_after(&t, 0, 100).await?;
        assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        let later = store.status_changes_after(&t, 3, 100).await?;
        assert_eq!(later.iter().map(|e| e.claim_id).collect::<Vec<_>>(), vec![ids[3], ids[4]]);
        Ok(())
    }

    async fn scopes_every_read_to_the_tenant(db: Database) -> Result<()> {
        let store = SqlClaimStore::new(db);
        let a = tenant("tenant-a");
        let b = tenant("tenant-b");
        let input = new_claim("PCN-1", "pat-1", "60054", "2026-03-02");
        let created = create(&store, &a, "k1", &input).await?;
        assert_eq!(store.get_claim(&b, created.id).await?, None);
        assert!(store.list_claims(&b, &ClaimFilter::default(), None, 100).await?.is_empty());
        assert!(store.status_history(&b, created.id).await?.is_empty());
        assert!(store.status_changes_after(&b, 0, 100).await?.is_empty());

        // The same CLM01 and the same idempotency key are free in another tenant.
        let other = create(&store, &b, "k1", &input).await?;
        assert_ne!(other.id, created.id);
        // Sequences are per tenant.
        assert_eq!(store.status_history(&b, other.id).await?[0].sequence, 1);
        Ok(())
    }

    async fn create_is_idempotent_by_key(db: Database) -> Result<()> {
        let store = SqlClaimStore::new(db.clone());
        let t = tenant("tenant-a");
        let input = new_claim("PCN-1", "pat-1", "60054", "2026-03-02");
        create(&store, &t, "k1", &input).await?;
        let again = create_keyed(&store, &t, "k1", &input).await?;
        ensure!(matches!(again, Keyed::Replayed), "the retry must be a replay: {again:?}");
        assert_eq!(count(&db, "claims").await?, 1);
        assert_eq!(count(&db, "claim_lines").await?, 2);
        assert_eq!(count(&db, "claim_status_history").await?, 1);

        let mut different = input.clone();
        different.patient_control_number = PatientControlNumber::parse("PCN-2")?;
        let reused = create_keyed(&store, &t, "k1", &different).await?;
        ensure!(matches!(reused, Keyed::Conflict), "unexpected {reused:?}");
        assert_eq!(count(&db, "claims").await?, 1);
        Ok(())
    }

    async fn duplicate_patient_control_number_is_precise_and_writes_nothing(db: Database) -> Result<()> {
        let store = SqlClaimStore::new(db.clone());
        let t = tenant("tenant-a");
        let input = new_claim("PCN-1", "pat-1", "60054", "2026-03-02");
        create(&store, &t, "k1", &input).await?;
        let before = (count(&db, "claims").await?, count(&db, "platform_idempotency").await?);

        let dup = new_claim("PCN-1", "pat-2", "60054", "2026-03-05");
        let err = create(&store, &t, "k2", &dup).await.unwrap_err();
        assert!(
            matches!(&err, ClaimStoreError::DuplicatePatientControlNumber(p) if p == "PCN-1"),
            "unexpected {err:?}"
        );
        assert_eq!(
            err.to_string(),
            "a claim with patient control number PCN-1 already exists; CLM01 must be unique"
        );
        let after = (count(&db, "claims").await?, count(&db, "platform_idempotency").await?);
        assert_eq!(before, after, "the failed create wrote nothing, not even its key");

        // The key was not consumed: a corrected request with it succeeds.
        let fixed = new_claim("PCN-2", "pat-2", "60054", "2026-03-05");
        create(&store, &t, "k2", &fixed).await?;
        Ok(())
    }

    async fn a_failure_mid_write_leaves_nothing(db: Database) -> Result<()> {
        // A trigger makes the second line's insert fail after the header, the diagnoses and the first
        // line were written in the same transaction.
        match &db {
            Database::Sqlite(pool) => {
                sqlx::query(
                    "CREATE TRIGGER fail_line BEFORE INSERT ON claim_lines \
                     WHEN NEW.procedure_code = '99499' BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
                )
                .execute(pool)
                .await?;
            }
            Database::Postgres(pool) => {
                sqlx::query(
                    "CREATE FUNCTION fail_line() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN IF NEW.procedure_code = '99499' THEN RAISE EXCEPTION 'injected failure'; END IF; \
                     RETURN NEW; END $$",
                )
                .execute(pool)
                .await?;
                sqlx::query(
                    "CREATE TRIGGER fail_line BEFORE INSERT ON claim_lines \
                     FOR EACH ROW EXECUTE FUNCTION fail_line()",
                )
                .execute(pool)
                .await?;
            }
        }
        let store = SqlClaimStore::new(db.clone());
        let t = tenant("tenant-a");
        let mut input = new_claim("PCN-1", "pat-1", "60054", "2026-03-02");
        input.lines[1].procedure_code = "99499".into();
        let err = create(&store, &t, "k1", &input).await.unwrap_err();
        assert!(matches!(err, ClaimStoreError::Storage(_)), "unexpected {err:?}");
        for table in ["claims", "claim_lines", "claim_diagnoses", "claim_status_history", "platform_idempotency"] {
            assert_eq!(count(&db, table).await?, 0, "{table} must be empty after the failed create");
        }
        // The sequence was not consumed either: the next event of the tenant is number 1.
        let ok_input = new_claim("PCN-1", "pat-1", "60054", "2026-03-02");
        let ok = create(&store, &t, "k1", &ok_input).await?;
        assert_eq!(store.status_history(&t, ok.id).await?[0].sequence, 1);
        Ok(())
    }

    async fn rejects_invalid_claims_before_writing(db: Database) -> Result<()> {
        let store = SqlClaimStore::new(db.clone());
        let t = tenant("tenant-a");
        let mut input = new_claim("PCN-1", "pat-1", "60054", "2026-03-02");
        input.lines[0].diagnosis_pointers = vec![3];
        let err = create(&store, &t, "k1", &input).await.unwrap_err();
        match err {
            ClaimStoreError::Invalid(e) => assert_eq!(e.field, "lines[0].diagnosis_pointers[0]"),
            other => anyhow::bail!("unexpected {other:?}"),
        }
        assert_eq!(count(&db, "claims").await?, 0);
        assert_eq!(count(&db, "platform_idempotency").await?, 0);
        Ok(())
    }

    async fn status_changes_follow_the_life_cycle(db: Database) -> Result<()> {
        let store = SqlClaimStore::new(db.clone());
        let t = tenant("tenant-a");
        let c = create(&store, &t, "k1", &new_claim("PCN-1", "pat-1", "60054", "2026-03-02")).await?;

        let mut tx = db.begin().await?;
        let change = store
            .transition(&mut tx, &t, c.id, NewStatus { to: ClaimStatus::Ready, source: StatusChangeSource::Scrub, source_id: "", reason: "scrubbing passed" })
            .await?;
        tx.commit().await?;
        assert_eq!((change.from, change.to), (ClaimStatus::Draft, ClaimStatus::Ready));
        assert_eq!(store.get_claim(&t, c.id).await?.context("claim")?.status, ClaimStatus::Ready);
        let history = store.status_history(&t, c.id).await?;
        assert_eq!(history.len(), 2);
        // The entry written at the commit is the change returned, numbered after the creation.
        let written = &history[1];
        assert_eq!(
            (written.id, written.sequence, written.claim_id, written.from, written.to, written.at),
            (change.history_id, 2, change.claim_id, Some(change.from), change.to, change.at)
        );
        assert_eq!((written.source, written.reason.as_str()), (StatusChangeSource::Scrub, "scrubbing passed"));
        assert_eq!(written.patient_control_number, change.patient_control_number);

        // READY -> PAID skips submission: refused naming both statuses, nothing written.
        let mut tx = db.begin().await?;
        let err = store
            .transition(&mut tx, &t, c.id, NewStatus { to: ClaimStatus::Paid, source: StatusChangeSource::Adjudication, source_id: "era-1", reason: "paid" })
            .await
            .unwrap_err();
        drop(tx);
        assert!(matches!(err, ClaimStoreError::IllegalTransition(_)), "unexpected {err:?}");
        assert_eq!(err.to_string(), "a claim in status READY cannot move to PAID");
        assert_eq!(store.get_claim(&t, c.id).await?.context("claim")?.status, ClaimStatus::Ready);
        assert_eq!(count(&db, "claim_status_history").await?, 2);

        // Another tenant's claim is not found, and a rolled-back change leaves no trace.
        let mut tx = db.begin().await?;
        let err = store
            .transition(&mut tx, &tenant("tenant-b"), c.id, NewStatus { to: ClaimStatus::Void, source: StatusChangeSource::Void, source_id: "", reason: "x" })
            .await
            .unwrap_err();
        assert!(matches!(err, ClaimStoreError::NotFound(id) if id == c.id), "unexpected {err:?}");
        store
            .transition(&mut tx, &t, c.id, NewStatus { to: ClaimStatus::Void, source: StatusChangeSource::Void, source_id: "", reason: "cancelled" })
            .await?;
        tx.rollback().await?;
        assert_eq!(store.get_claim(&t, c.id).await?.context("claim")?.status, ClaimStatus::Ready);
        assert_eq!(count(&db, "claim_status_history").await?, 2);
        Ok(())
    }

    async fn a_batch_moves_its_claims_at_once_with_gap_free_history(db: Database) -> Result<()> {
        let store = SqlClaimStore::new(db.clone());
        let t = tenant("tenant-a");
        // More claims than one statement takes, so the chunks meet.
        let mut ready = Vec::new();
        for i in 0..503 {
            let c = create(&store, &t, &format!("k{i}"), &new_claim(&format!("PCN-{i}"), "pat-1", "60054", "2026-03-02")).await?;
            ready.push(c.id);
        }
        let draft = create(&store, &t, "k-draft", &new_claim("PCN-D", "pat-1", "60054", "2026-03-02")).await?;
        let mut tx = db.begin().await?;
        for id in &ready {
            store.transition(&mut tx, &t, *id, NewStatus { to: ClaimStatus::Ready, source: StatusChangeSource::Scrub, source_id: "", reason: "clean" }).await?;
        }
        tx.commit().await?;
        let before = count(&db, "claim_status_history").await?;
        assert_eq!(before, 504 + 503);

        // A DRAFT claim among them: refused naming both statuses, nothing written.
        let mut with_draft = ready.clone();
        with_draft.insert(501, draft.id);
        let mut tx = db.begin().await?;
        let err = store.create_batch(&mut tx, &t, &batch(uuid::Uuid::now_v7(), &with_draft)).await.unwrap_err();
        drop(tx);
        assert_eq!(err.to_string(), "a claim in status DRAFT cannot move to SUBMITTED");
        assert_eq!(count(&db, "claim_status_history").await?, before);
        assert_eq!(store.get_claim(&t, ready[0]).await?.context("claim")?.status, ClaimStatus::Ready);

        // Another tenant's claims are not found.
        let mut tx = db.begin().await?;
        let err = store.create_batch(&mut tx, &tenant("tenant-b"), &batch(uuid::Uuid::now_v7(), &ready[..2])).await.unwrap_err();
        drop(tx);
        assert!(matches!(err, ClaimStoreError::NotFound(id) if id == ready[0]), "unexpected {err:?}");

        let id = uuid::Uuid::now_v7();
        let mut tx = db.begin().await?;
        store.create_batch(&mut tx, &t, &batch(id, &ready)).await?;
        tx.commit().await?;
        let changes = store.status_changes_after(&t, u64::try_from(before)?, 1000).await?;
        assert_eq!(changes.len(), ready.len());
        for (i, (change, claim)) in changes.iter().zip(&ready).enumerate() {
            assert_eq!(change.sequence, u64::try_from(before)? + 1 + i as u64, "gap-free, in batch order");
            assert_eq!((change.claim_id, change.from, change.to), (*claim, Some(ClaimStatus::Ready), ClaimStatus::Submitted));
            assert_eq!(change.source_id, id.to_string());
        }
        let stored = store.get_batch(&t, id, false).await?.context("batch")?;
        assert_eq!(stored.claim_ids, ready, "positions in order across chunks");
        let last = store.get_claim(&t, ready[502]).await?.context("claim")?;
        assert_eq!((last.status, last.submission_batch_id), (ClaimStatus::Submitted, Some(id)));
        assert_eq!(store.get_claim(&t, draft.id).await?.context("claim")?.status, ClaimStatus::Draft);
        Ok(())
    }

    async fn open_store_migrates_and_reopens(env: medbill_storage::testing::TestEnv) -> Result<()> {
        // A second connection to the same (already migrated) database: migrations are idempotent.
        let db = env.connect(NAMESPACE).await?;
        let store = medbill_claims::open_store(db.clone()).await?;
        let t = tenant("tenant-a");
        let input = new_claim("PCN-9", "pat-1", "60054", "2026-03-02");
        let mut tx = db.begin().await?;
        let c = store.create_claim(&mut tx, &t, &input).await?;
        tx.commit().await?;
        let reopened = medbill_claims::open_store(db).await?;
        assert_eq!(reopened.get_claim(&t, c.id).await?, Some(c));
        Ok(())
    }
}
