//! Conformance suite of the ERA store: every test runs on SQLite, and on PostgreSQL when
//! `MEDBILL_TEST_PG_URL` is set, each on a fresh database.

use anyhow::{Context, Result, ensure};
use chrono::{Duration, Utc};
use medbill_domain::{EraId, Money, TenantId};
use std::sync::Arc;

use medbill_remittance::model::{BalanceLevel, EraFilter, EraStatus, sha256_hex};
use medbill_remittance::store::{EraStoreError, NAMESPACE, PG_MIGRATOR, SQLITE_MIGRATOR};
use medbill_remittance::{EraStore, Ingested, SqlEraStore, ingest_file};
use medbill_storage::idempotency::{self, Begin, Fingerprint};
use medbill_storage::{Database, with_db};

const BALANCED: &[u8] = include_bytes!("fixtures/medicare-part-a.835");
const UNBALANCED: &[u8] = include_bytes!("fixtures/medicare-part-a-unbalanced.835");
const BAD_AMOUNT: &[u8] = include_bytes!("fixtures/medicare-part-a-bad-amount.835");

fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).expect("valid tenant")
}

fn money(s: &str) -> Money {
    Money::parse(s).expect("valid amount")
}

/// What an ingest under an idempotency key came to.
#[derive(Debug)]
enum Keyed {
    Done(Box<Ingested>),
    Conflict,
}

/// A file to ingest: its bytes and name.
struct NewFile {
    content: Vec<u8>,
    file_name: String,
}

fn parse_era(content: Vec<u8>, file_name: String) -> NewFile {
    NewFile { content, file_name }
}

/// Ingests as IngestEra does: in one transaction with its idempotency key (the fingerprint here
/// is the content and file name; a replay answers the first ERA the key recorded).
async fn ingest_keyed(
    store: &dyn EraStore,
    t: &TenantId,
    key: &str,
    e: &NewFile,
) -> Result<Keyed, EraStoreError> {
    let mut bytes = e.content.clone();
    bytes.extend_from_slice(e.file_name.as_bytes());
    let fp = Fingerprint::of(&bytes);
    match idempotency::begin(store.database(), t.as_str(), "test/IngestEra", key, &fp).await? {
        Begin::Conflict => Ok(Keyed::Conflict),
        Begin::Replay(id) => {
            let id = EraId::parse(std::str::from_utf8(&id).expect("utf-8 id")).expect("era id");
            let era = store
                .get_era(t, id)
                .await?
                .expect("the recorded ERA exists");
            Ok(Keyed::Done(Box::new(Ingested {
                eras: vec![era],
                duplicate: true,
            })))
        }
        Begin::New(mut op) => {
            let sha = sha256_hex(&e.content);
            let content = Arc::new(e.content.clone());
            let ingested = ingest_file(store, op.tx(), t, content, &sha, &e.file_name).await?;
            op.commit(ingested.eras[0].id.to_string().as_bytes())
                .await?;
            Ok(Keyed::Done(Box::new(ingested)))
        }
    }
}

/// What an ingest of a one-set file came to: its one ERA.
#[derive(Debug)]
struct One {
    era: medbill_remittance::Era,
    duplicate: bool,
}

async fn ingest(
    store: &dyn EraStore,
    t: &TenantId,
    key: &str,
    e: &NewFile,
) -> Result<One, EraStoreError> {
    match ingest_keyed(store, t, key, e).await? {
        Keyed::Done(ingested) => {
            assert_eq!(ingested.eras.len(), 1, "a one-set file");
            Ok(One {
                era: ingested.eras[0].clone(),
                duplicate: ingested.duplicate,
            })
        }
        Keyed::Conflict => panic!("key {key} was used for another request"),
    }
}

/// A balanced file whose bytes differ from the fixture (so it is another ERA), with its own TRN02.
fn variant(trace: &str) -> Vec<u8> {
    String::from_utf8_lossy(BALANCED)
        .replace("TRN*1*12345*", &format!("TRN*1*{trace}*"))
        .into_bytes()
}

async fn count(db: &Database, table: &'static str) -> Result<i64> {
    let sql: &'static str = match table {
        "eras" => "SELECT COUNT(*) FROM eras",
        "era_files" => "SELECT COUNT(*) FROM era_files",
        "era_balance_problems" => "SELECT COUNT(*) FROM era_balance_problems",
        "era_provider_adjustments" => "SELECT COUNT(*) FROM era_provider_adjustments",
        "platform_idempotency" => "SELECT COUNT(*) FROM platform_idempotency",
        "claim_payments" => "SELECT COUNT(*) FROM claim_payments",
        "claim_payment_lines" => "SELECT COUNT(*) FROM claim_payment_lines",
        "claim_payment_adjustments" => "SELECT COUNT(*) FROM claim_payment_adjustments",
        "claim_payment_postings" => "SELECT COUNT(*) FROM claim_payment_postings",
        other => anyhow::bail!("no count query for {other}"),
    };
    Ok(with_db!(db, |pool| sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await?))
}

medbill_storage::conformance_tests! {
    namespace = "remittance";
    migrations = (&PG_MIGRATOR, &SQLITE_MIGRATOR);

    async fn ingests_and_gets_with_summary_and_raw_content(db: Database) -> Result<()> {
        let store = SqlEraStore::new(db);
        let t = tenant("tenant-a");
        let new = parse_era(BALANCED.to_vec(), "medicare.835".into());
        let ingested = ingest(&store, &t, "k1", &new).await?;
        ensure!(!ingested.duplicate);
        let era = &ingested.era;
        assert_eq!(era.status, EraStatus::Received);
        assert_eq!(era.content_sha256, sha256_hex(BALANCED));
        assert_eq!(era.byte_size, BALANCED.len() as u64);
        assert_eq!(era.file_name, "medicare.835");
        assert_eq!(era.summary.payment_amount, Some(money("150000.00")));
        assert_eq!(era.summary.trace_number.as_deref(), Some("12345"));
        assert_eq!(era.summary.payer_id.as_deref(), Some("999"));
        assert_eq!(era.summary.payee_npi.as_deref(), Some("6543210903"));
        assert_eq!(era.summary.payment_date.map(|d| d.to_string()).as_deref(), Some("2002-09-13"));
        assert_eq!(era.summary.claim_count, 2);
        assert_eq!(era.provider_adjustments.len(), 1);
        assert_eq!(era.provider_adjustments[0].amount, money("-1.27"));

        let got = store.get_era(&t, era.id).await?.context("ERA not found")?;
        assert_eq!(&got, era);
        let raw = store.era_content(&t, era.id).await?.context("content not found")?;
        assert_eq!(raw, BALANCED, "the raw bytes round-trip exactly");
        Ok(())
    }

    async fn stores_balance_problems_of_an_unbalanced_era(db: Database) -> Result<()> {
        let store = SqlEraStore::new(db);
        let t = tenant("tenant-a");
        let new = parse_era(UNBALANCED.to_vec(), String::new());
        let era = ingest(&store, &t, "k1", &new).await?.era;
        assert_eq!(era.status, EraStatus::Unbalanced);
        let got = store.get_era(&t, era.id).await?.context("ERA not found")?;
        assert_eq!(got.balance_problems.len(), 2);
        assert_eq!(got.balance_problems[0].level, BalanceLevel::Claim);
        assert_eq!(got.balance_problems[0].claim_ref, "777777");
        assert_eq!(got.balance_problems[0].difference, money("-0.03"));
        assert_eq!(got.balance_problems[1].level, BalanceLevel::Transaction);
        assert_eq!(got.balance_problems[1].actual, money("149999.97"));
        assert_eq!(got, era);
        Ok(())
    }

    async fn keeps_a_rejected_file(db: Database) -> Result<()> {
        let store = SqlEraStore::new(db);
        let t = tenant("tenant-a");
        let new = parse_era(BAD_AMOUNT.to_vec(), String::new());
        let era = ingest(&store, &t, "k1", &new).await?.era;
        assert_eq!(era.status, EraStatus::Rejected);
        assert!(era.rejection_reason.contains("BPR02"), "{}", era.rejection_reason);
        assert_eq!(era.summary.payment_amount, None);
        assert_eq!(store.era_content(&t, era.id).await?.as_deref(), Some(BAD_AMOUNT));
        Ok(())
    }

    async fn the_same_835_twice_is_one_era(db: Database) -> Result<()> {
        let store = SqlEraStore::new(db.clone());
        let t = tenant("tenant-a");
        let new = parse_era(BALANCED.to_vec(), String::new());
        let first = ingest(&store, &t, "k1", &new).await?;
        // Another key, same bytes: the existing ERA, nothing written.
        let second = ingest(&store, &t, "k2", &new).await?;
        ensure!(second.duplicate);
        assert_eq!(second.era, first.era);
        // The same key again: a replay.
        let third = ingest(&store, &t, "k1", &new).await?;
        ensure!(third.duplicate);
        assert_eq!(third.era.id, first.era.id);
        assert_eq!(count(&db, "eras").await?, 1);
        assert_eq!(count(&db, "era_files").await?, 1);
        assert_eq!(count(&db, "era_provider_adjustments").await?, 1);
        assert_eq!(store.list_eras(&t, &EraFilter::default(), None, 100).await?.len(), 1);
        Ok(())
    }

    async fn a_key_reused_for_other_content_is_refused(db: Database) -> Result<()> {
        let store = SqlEraStore::new(db.clone());
        let t = tenant("tenant-a");
        let a = parse_era(BALANCED.to_vec(), String::new());
        ingest(&store, &t, "k1", &a).await?;
        let b = parse_era(UNBALANCED.to_vec(), String::new());
        let reused = ingest_keyed(&store, &t, "k1", &b).await?;
        ensure!(matches!(reused, Keyed::Conflict), "unexpected {reused:?}");
        assert_eq!(count(&db, "eras").await?, 1);
        Ok(())
    }

    async fn scopes_every_read_to_the_tenant(db: Database) -> Result<()> {
        let store = SqlEraStore::new(db);
        let a = tenant("tenant-a");
        let b = tenant("tenant-b");
        let new = parse_era(BALANCED.to_vec(), String::new());
        let era = ingest(&store, &a, "k1", &new).await?.era;
        assert_eq!(store.get_era(&b, era.id).await?, None);
        assert_eq!(store.era_content(&b, era.id).await?, None);
        assert!(store.list_eras(&b, &EraFilter::default(), None, 100).await?.is_empty());
        // The same file sent by another tenant is that tenant's own ERA.
        let theirs = ingest(&store, &b, "k1", &new).await?;
        ensure!(!theirs.duplicate);
        assert_ne!(theirs.era.id, era.id);
        Ok(())
    }

    async fn lists_with_filters_and_keyset_paging(db: Database) -> Result<()> {
        let store = SqlEraStore::new(db);
        let t = tenant("tenant-a");
        let start = Utc::now() - Duration::seconds(1);
        let mut ids = Vec::new();
        for i in 0..4 {
            let new = parse_era(variant(&format!("TRACE{i}")), String::new());
            ids.push(ingest(&store, &t, &format!("k{i}"), &new).await?.era.id);
        }
        let unbalanced = parse_era(UNBALANCED.to_vec(), String::new());
        ids.push(ingest(&store, &t, "ku", &unbalanced).await?.era.id);

        let all = store.list_eras(&t, &EraFilter::default(), None, 100).await?;
        assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), ids);

        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.list_eras(&t, &EraFilter::default(), after, 2).await?;
            if page.is_empty() {
                break;
            }
            ensure!(page.len() <= 2);
            after = page.last().map(|e| e.id);
            seen.extend(page.into_iter().map(|e| e.id));
        }
        assert_eq!(seen, ids);

        let by_status = EraFilter { status: Some(EraStatus::Unbalanced), ..Default::default() };
        let got = store.list_eras(&t, &by_status, None, 100).await?;
        assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ids[4]]);
        assert_eq!(got[0].balance_problems.len(), 2, "listed ERAs carry their problems");

        let by_trace = EraFilter { trace_number: Some("TRACE2".into()), ..Default::default() };
        let got = store.list_eras(&t, &by_trace, None, 100).await?;
        assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ids[2]]);

        let by_payer = EraFilter { payer_id: Some("999".into()), ..Default::default() };
        assert_eq!(store.list_eras(&t, &by_payer, None, 100).await?.len(), 5);
        let by_payer = EraFilter { payer_id: Some("nobody".into()), ..Default::default() };
        assert!(store.list_eras(&t, &by_payer, None, 100).await?.is_empty());

        let in_range = EraFilter { received_from: Some(start), received_to: Some(Utc::now() + Duration::seconds(1)), ..Default::default() };
        assert_eq!(store.list_eras(&t, &in_range, None, 100).await?.len(), 5);
        let before = EraFilter { received_to: Some(start), ..Default::default() };
        assert!(store.list_eras(&t, &before, None, 100).await?.is_empty());

        // A filtered page resumes after its cursor with the filter still applied.
        let received = EraFilter { status: Some(EraStatus::Received), ..Default::default() };
        let page = store.list_eras(&t, &received, Some(ids[1]), 10).await?;
        assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ids[2], ids[3]]);
        Ok(())
    }

    async fn a_failure_mid_write_leaves_nothing(db: Database) -> Result<()> {
        // A trigger makes the PLB insert fail after the ERA row was written in the same transaction.
        match &db {
            Database::Sqlite(pool) => {
                sqlx::query(
                    "CREATE TRIGGER fail_plb BEFORE INSERT ON era_provider_adjustments \
                     BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
                )
                .execute(pool)
                .await?;
            }
            Database::Postgres(pool) => {
                sqlx::query(
                    "CREATE FUNCTION fail_plb() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN RAISE EXCEPTION 'injected failure'; END $$",
                )
                .execute(pool)
                .await?;
                sqlx::query(
                    "CREATE TRIGGER fail_plb BEFORE INSERT ON era_provider_adjustments \
                     FOR EACH ROW EXECUTE FUNCTION fail_plb()",
                )
                .execute(pool)
                .await?;
            }
        }
        let store = SqlEraStore::new(db.clone());
        let t = tenant("tenant-a");
        let new = parse_era(BALANCED.to_vec(), String::new());
        let err = ingest(&store, &t, "k1", &new).await.unwrap_err();
        assert!(matches!(err, EraStoreError::Storage(_)), "unexpected {err:?}");
        for table in ["era_files", "eras", "era_balance_problems", "era_provider_adjustments", "platform_idempotency", "claim_payments", "claim_payment_lines"] {
            assert_eq!(count(&db, table).await?, 0, "{table} must be empty after the failed ingest");
        }
        Ok(())
    }

    async fn open_store_migrates_and_reopens(env: medbill_storage::testing::TestEnv) -> Result<()> {
        let db = env.connect(NAMESPACE).await?;
        let store = medbill_remittance::open_store(db.clone()).await?;
        let t = tenant("tenant-a");
        let new = parse_era(BALANCED.to_vec(), String::new());
        let era = ingest(store.as_ref(), &t, "k1", &new).await?.era;
        let reopened = medbill_remittance::open_store(db).await?;
        assert_eq!(reopened.get_era(&t, era.id).await?, Some(era));
        Ok(())
    }

    async fn claim_payments_are_stored_as_the_835_said_and_posted_once(db: Database) -> Result<()> {
        use medbill_remittance::model::{ClaimPaymentFilter, LineMatch, PostingStatus};
        use medbill_remittance::store::{PaymentStore, PostingMethod, PostingOutcome};
        let store = SqlEraStore::new(db.clone());
        let t = tenant("tenant-a");
        let era = ingest(&store, &t, "k1", &parse_era(BALANCED.to_vec(), String::new())).await?.era;
        assert_eq!(count(&db, "claim_payments").await?, 2);
        assert!(count(&db, "claim_payment_adjustments").await? > 0);
        let filter = ClaimPaymentFilter { era_id: Some(era.id), ..Default::default() };
        let payments = store.list_claim_payments(&t, &filter, None, 10).await?;
        assert_eq!(payments.iter().map(|p| (p.position, p.status)).collect::<Vec<_>>(), vec![(1, PostingStatus::Pending), (2, PostingStatus::Pending)]);
        let first = &payments[0];
        assert_eq!(first.payment.paid, money("138018.40"));
        assert_eq!(first.payer_id, "999");
        let groups: Vec<&str> = first.payment.adjustments.iter().map(|a| a.group.as_str()).collect();
        assert!(!groups.is_empty(), "claim CAS kept by group");
        // Another tenant sees none of them.
        assert!(store.list_claim_payments(&tenant("tenant-b"), &filter, None, 10).await?.is_empty());
        assert!(store.get_claim_payment(&tenant("tenant-b"), first.id).await?.is_none());

        // Two workers: only one leases the ERA.
        let a = store.lease_postable("worker-a", 60_000_000, 10).await?;
        let b = store.lease_postable("worker-b", 60_000_000, 10).await?;
        assert_eq!(a.iter().map(|(_, id)| *id).collect::<Vec<_>>(), vec![era.id]);
        assert!(b.is_empty(), "a leased ERA is not leased again: {b:?}");

        let outcome = |p: &medbill_remittance::model::ClaimPayment| PostingOutcome {
            id: p.id,
            status: PostingStatus::Posted,
            claim_id: "claim-1".into(),
            match_note: String::new(),
            reverses: None,
            lines: p.payment.lines.iter().map(|l| (l.line_number, LineMatch::Unmatched, None, String::new())).collect(),
            method: PostingMethod::Auto,
            reason: String::new(),
        };
        let outcomes: Vec<_> = payments.iter().map(outcome).collect();
        let mut tx = db.begin().await?;
        store.record_postings(&mut tx, &t, era.id, PostingStatus::Pending, &outcomes).await?;
        store.mark_posted(&mut tx, &t, era.id).await?;
        tx.commit().await?;
        let posted = store.list_claim_payments(&t, &filter, None, 10).await?;
        assert!(posted.iter().all(|p| p.status == PostingStatus::Posted && p.claim_id == "claim-1" && p.posted_at.is_some()));
        assert_eq!(count(&db, "claim_payment_postings").await?, 2);
        assert_eq!(store.get_era(&t, era.id).await?.map(|e| e.status), Some(EraStatus::Posted));

        // Posting again (a second worker that lost the race) changes nothing and says why.
        let mut tx = db.begin().await?;
        let err = store.record_postings(&mut tx, &t, era.id, PostingStatus::Pending, &outcomes).await.unwrap_err();
        tx.rollback().await?;
        assert!(matches!(err, EraStoreError::Conflict(_)), "{err:?}");
        let mut tx = db.begin().await?;
        let err = store.mark_posted(&mut tx, &t, era.id).await.unwrap_err();
        tx.rollback().await?;
        assert!(matches!(err, EraStoreError::Conflict(_)), "{err:?}");
        assert_eq!(count(&db, "claim_payment_postings").await?, 2);
        Ok(())
    }

    async fn an_unbalanced_era_is_held_until_an_operator_releases_it(db: Database) -> Result<()> {
        use medbill_remittance::model::{ClaimPaymentFilter, PostingStatus};
        use medbill_remittance::store::PaymentStore;
        let store = SqlEraStore::new(db.clone());
        let t = tenant("tenant-a");
        let era = ingest(&store, &t, "k1", &parse_era(UNBALANCED.to_vec(), String::new())).await?.era;
        assert_eq!(era.status, EraStatus::Unbalanced);
        let held = ClaimPaymentFilter { status: Some(PostingStatus::Held), ..Default::default() };
        assert_eq!(store.list_claim_payments(&t, &held, None, 10).await?.len(), 2);
        assert!(store.lease_postable("w", 60_000_000, 10).await?.is_empty(), "an unbalanced ERA is not posted");
        let mut tx = db.begin().await?;
        store.release_unbalanced(&mut tx, &t, era.id, "checked with the payer").await?;
        tx.commit().await?;
        assert_eq!(store.review_reason(&t, era.id).await?, "checked with the payer");
        assert!(store.list_claim_payments(&t, &held, None, 10).await?.is_empty());
        assert_eq!(store.lease_postable("w", 60_000_000, 10).await?.len(), 1);
        let mut tx = db.begin().await?;
        let err = store.release_unbalanced(&mut tx, &t, era.id, "again").await.unwrap_err();
        tx.rollback().await?;
        assert!(matches!(err, EraStoreError::Precondition(_)), "{err:?}");
        Ok(())
    }
}
