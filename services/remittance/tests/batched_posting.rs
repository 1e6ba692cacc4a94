//! Posting a large multi-set 835 in batches, on SQLite and (when `MEDBILL_TEST_PG_URL` is set)
//! PostgreSQL: every claim payment posted once across batch boundaries (multi-row statements of
//! up to a few hundred rows, outbox messages enqueued many per statement, claims looked up a page
//! at a time), a redelivery changing nothing, a failure in the middle of an ERA's posting leaving
//! nothing of it, and payments with no claim on the unmatched worklist.
//!
//! The claims service is outside this crate's reach: [`ClaimsServiceStandIn`] answers from a
//! map, counting how often it was asked.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use async_trait::async_trait;
use medbill_domain::TenantId;
use medbill_remittance::directory::{ClaimDirectory, ClaimView, DirectoryError};
use medbill_remittance::ingest::parse_file;
use medbill_remittance::model::{ClaimPaymentFilter, EraStatus, PostingStatus, sha256_hex};
use medbill_remittance::posting::Poster;
use medbill_remittance::{EraStore, Ingested, ingest_file, open_store};
use medbill_storage::{Database, with_db};

/// Stands in for the claims service: the claims it knows by CLP01, and how many look-ups
/// (calls) it answered.
struct ClaimsServiceStandIn {
    claims: HashMap<String, ClaimView>,
    calls: AtomicUsize,
}

#[async_trait]
impl ClaimDirectory for ClaimsServiceStandIn {
    async fn by_patient_control_number(
        &self,
        _: &TenantId,
        pcn: &str,
    ) -> Result<Vec<ClaimView>, DirectoryError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(self.claims.get(pcn).cloned().into_iter().collect())
    }

    async fn by_patient_control_numbers(
        &self,
        _: &TenantId,
        pcns: &[String],
    ) -> Result<HashMap<String, Vec<ClaimView>>, DirectoryError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(pcns
            .iter()
            .filter_map(|p| self.claims.get(p).map(|c| (p.clone(), vec![c.clone()])))
            .collect())
    }

    async fn by_id(&self, _: &TenantId, id: &str) -> Result<Option<ClaimView>, DirectoryError> {
        Ok(self.claims.values().find(|c| c.id == id).cloned())
    }
}

/// About 600 claim payments in a few sets of 20 to 400 (so sets span several statement
/// batches), balanced, with reversals and patient responsibility.
fn file() -> Vec<u8> {
    medbill_x12::bench_data::generate_835(600 * 1024, 11)
}

/// The claims the payer adjudicated, one per CLP01 billed to the ERA's payer, except every
/// tenth CLP01, which has no claim (those payments go to the unmatched worklist).
fn claims_of(content: &[u8]) -> (ClaimsServiceStandIn, usize) {
    let mut claims = HashMap::new();
    let mut missing = 0;
    let mut n: u64 = 0;
    for era in parse_file(content).expect("a readable 835") {
        let payer = era.summary.payer_id.clone().unwrap_or_default();
        for p in &era.claim_payments {
            let pcn = p.patient_control_number.clone();
            n += 1;
            if n.is_multiple_of(10) && !claims.contains_key(&pcn) {
                missing += 1;
                continue;
            }
            claims.entry(pcn.clone()).or_insert_with(|| ClaimView {
                id: format!("claim-{pcn}"),
                patient_control_number: pcn,
                payer_id: payer.clone(),
                patient_ref: "patient".into(),
                total_charge: Some(p.charge.abs()),
                service_date_from: None,
                lines: Vec::new(),
            });
        }
    }
    (
        ClaimsServiceStandIn {
            claims,
            calls: AtomicUsize::new(0),
        },
        missing,
    )
}

async fn ingest(store: &dyn EraStore, t: &TenantId, content: &[u8]) -> Result<Ingested> {
    let mut tx = store.database().begin().await?;
    let ingested = ingest_file(
        store,
        &mut tx,
        t,
        Arc::new(content.to_vec()),
        &sha256_hex(content),
        "batch.835",
    )
    .await?;
    tx.commit().await?;
    Ok(ingested)
}

async fn post_all(poster: &Poster) -> Result<usize> {
    let mut posted = 0;
    loop {
        let n = poster.run_once().await?;
        if n == 0 {
            return Ok(posted);
        }
        posted += n;
    }
}

async fn scalar(db: &Database, sql: &'static str) -> Result<i64> {
    Ok(with_db!(db, |pool| sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await?))
}

/// (payments POSTED, UNMATCHED, PENDING, posting records, adjudication messages, patient
/// responsibility messages).
async fn tally(db: &Database) -> Result<[i64; 6]> {
    Ok([
        scalar(
            db,
            "SELECT COUNT(*) FROM claim_payments WHERE posting_status = 'POSTED'",
        )
        .await?,
        scalar(
            db,
            "SELECT COUNT(*) FROM claim_payments WHERE posting_status = 'UNMATCHED'",
        )
        .await?,
        scalar(
            db,
            "SELECT COUNT(*) FROM claim_payments WHERE posting_status = 'PENDING'",
        )
        .await?,
        scalar(db, "SELECT COUNT(*) FROM claim_payment_postings").await?,
        scalar(
            db,
            "SELECT COUNT(*) FROM platform_outbox WHERE destination = 'claims.ApplyAdjudication'",
        )
        .await?,
        scalar(
            db,
            "SELECT COUNT(*) FROM platform_outbox \
             WHERE destination = 'collections.PostPatientResponsibility'",
        )
        .await?,
    ])
}

medbill_storage::conformance_tests! {
    async fn every_payment_is_posted_once_across_batches(db: Database) -> Result<()> {
        let content = file();
        let (directory, missing) = claims_of(&content);
        let directory = Arc::new(directory);
        let store = open_store(db.clone()).await?;
        let t = TenantId::parse("tenant-a")?;
        let ingested = ingest(store.as_ref(), &t, &content).await?;
        let payments: i64 = ingested.eras.iter().map(|e| i64::from(e.summary.claim_count)).sum();
        let largest = ingested.eras.iter().map(|e| e.summary.claim_count).max().unwrap_or(0);
        assert!(ingested.eras.len() > 2 && largest > 256, "sets span several batches: {} sets, largest {largest}", ingested.eras.len());
        let received = ingested.eras.iter().filter(|e| e.status == EraStatus::Received).count();

        let poster = Poster::new(store.clone(), directory.clone(), "worker-a");
        assert_eq!(post_all(&poster).await?, received, "every balanced ERA is posted");
        let [posted, unmatched, pending, postings, adjudications, responsibilities] = tally(&db).await?;
        assert_eq!(pending, 0);
        assert_eq!(posted + unmatched, payments);
        assert!(unmatched >= i64::try_from(missing)?, "payments with no claim are unmatched: {unmatched} of {missing}");
        assert_eq!(postings, posted, "one posting record per posted payment");
        assert_eq!(adjudications, posted, "one ApplyAdjudication per posted payment");
        assert!(responsibilities > 0 && responsibilities <= posted, "{:?}", tally(&db).await?);
        assert!(
            directory.calls.load(Ordering::Relaxed) <= received,
            "claims are looked up a page at a time, not per payment"
        );
        // The unmatched worklist says why.
        let unmatched_filter = ClaimPaymentFilter { status: Some(PostingStatus::Unmatched), ..Default::default() };
        let worklist = store.list_claim_payments(&t, &unmatched_filter, None, 5).await?;
        assert!(worklist.iter().all(|p| p.match_note.contains("no claim has patient control number")), "{:?}", worklist.iter().map(|p| &p.match_note).collect::<Vec<_>>());
        let eras = store.list_eras(&t, &Default::default(), None, 100).await?;
        assert!(eras.iter().all(|e| e.status != EraStatus::Received), "no ERA left RECEIVED");

        // The same 835 delivered again is the same file; posting again changes nothing.
        let again = ingest(store.as_ref(), &t, &content).await?;
        assert!(again.duplicate);
        let other = Poster::new(store.clone(), directory.clone(), "worker-b");
        assert_eq!(post_all(&other).await?, 0);
        for era in &ingested.eras {
            other.post_era(&t, era.id).await?;
        }
        assert_eq!(tally(&db).await?, [posted, unmatched, 0, postings, adjudications, responsibilities]);
        Ok(())
    }

    async fn a_file_larger_than_a_stored_piece_reads_back_whole(db: Database) -> Result<()> {
        // 2.5 MB: three pieces of era_file_chunks.
        let content = medbill_x12::bench_data::generate_835(2_500_000, 5);
        let store = open_store(db.clone()).await?;
        let t = TenantId::parse("tenant-a")?;
        let ingested = ingest(store.as_ref(), &t, &content).await?;
        assert_eq!(scalar(&db, "SELECT COUNT(*) FROM era_file_chunks").await?, 3);
        let era = ingested.eras.last().expect("a set");
        assert_eq!(store.era_content(&t, era.id).await?.as_deref(), Some(content.as_slice()));
        assert_eq!(store.era_content(&TenantId::parse("tenant-b")?, era.id).await?, None, "another tenant's file is not found");
        Ok(())
    }

    async fn a_failure_in_the_middle_of_a_posting_leaves_nothing_of_it(db: Database) -> Result<()> {
        let content = file();
        let (directory, _) = claims_of(&content);
        let store = open_store(db.clone()).await?;
        let t = TenantId::parse("tenant-a")?;
        let ingested = ingest(store.as_ref(), &t, &content).await?;
        // The patient responsibility messages are written last, after the payments, their line
        // matches, posting records and ApplyAdjudication messages: fail there.
        match &db {
            Database::Sqlite(pool) => {
                sqlx::query(
                    "CREATE TRIGGER fail_pr BEFORE INSERT ON platform_outbox \
                     WHEN NEW.destination = 'collections.PostPatientResponsibility' \
                     BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
                )
                .execute(pool)
                .await?;
            }
            Database::Postgres(pool) => {
                sqlx::query(
                    "CREATE FUNCTION fail_pr() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN IF NEW.destination = 'collections.PostPatientResponsibility' THEN \
                     RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$",
                )
                .execute(pool)
                .await?;
                sqlx::query(
                    "CREATE TRIGGER fail_pr BEFORE INSERT ON platform_outbox \
                     FOR EACH ROW EXECUTE FUNCTION fail_pr()",
                )
                .execute(pool)
                .await?;
            }
        }
        let poster = Poster::new(store.clone(), Arc::new(directory), "worker-a");
        let era = ingested.eras.iter().max_by_key(|e| e.summary.claim_count).expect("a set");
        assert!(poster.post_era(&t, era.id).await.is_err(), "the injected failure stops the posting");
        assert_eq!(tally(&db).await?, [0, 0, i64::from(ingested.eras.iter().map(|e| e.summary.claim_count).sum::<u32>()), 0, 0, 0]);
        assert_eq!(store.get_era(&t, era.id).await?.map(|e| e.status), Some(EraStatus::Received));
        assert_eq!(scalar(&db, "SELECT COUNT(*) FROM denials").await?, 0, "no denial items either");
        Ok(())
    }
}
