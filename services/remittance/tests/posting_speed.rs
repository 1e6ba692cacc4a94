//! Throughput of storing and posting claim payments (store time only: the claims service is an
//! in-memory directory that confirms every payment), on SQLite and (when `MEDBILL_TEST_PG_URL` is
//! set) PostgreSQL. A measurement, run only when `MEDBILL_POSTING_MB` (the file size in MB) is
//! set: `MEDBILL_POSTING_MB=10 cargo test -p medbill-remittance --test posting_speed -- --nocapture`
//! (add `--release` for figures worth quoting).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use medbill_domain::TenantId;
use medbill_remittance::directory::{ClaimDirectory, ClaimView, DirectoryError};
use medbill_remittance::ingest::parse_file;
use medbill_remittance::model::{ClaimPaymentFilter, EraStatus, PostingStatus, sha256_hex};
use medbill_remittance::posting::Poster;
use medbill_remittance::{EraStore, ingest_file, open_store};
use medbill_storage::Database;
use medbill_storage::outbox;

/// Claims as the payer adjudicated them: one per CLP01, billed to the ERA's payer.
struct Known(HashMap<String, ClaimView>);

#[async_trait]
impl ClaimDirectory for Known {
    async fn by_patient_control_number(
        &self,
        _: &TenantId,
        pcn: &str,
    ) -> Result<Vec<ClaimView>, DirectoryError> {
        Ok(self.0.get(pcn).cloned().into_iter().collect())
    }

    async fn by_id(&self, _: &TenantId, id: &str) -> Result<Option<ClaimView>, DirectoryError> {
        Ok(self.0.values().find(|c| c.id == id).cloned())
    }
}

medbill_storage::conformance_tests! {
    async fn stores_and_posts_claim_payments(db: Database) -> anyhow::Result<()> {
        let Some(mb) = std::env::var("MEDBILL_POSTING_MB").ok().and_then(|v| v.parse::<usize>().ok()) else {
            eprintln!("note: skipping the posting measurement: MEDBILL_POSTING_MB is not set");
            return Ok(());
        };
        let content = medbill_x12::bench_data::generate_835(mb * 1024 * 1024, 7);
        let mut claims = HashMap::new();
        for era in parse_file(&content).map_err(anyhow::Error::msg)? {
            let payer = era.summary.payer_id.clone().unwrap_or_default();
            for p in &era.claim_payments {
                claims.entry(p.patient_control_number.clone()).or_insert_with(|| ClaimView {
                    id: format!("claim-{}", p.patient_control_number),
                    patient_control_number: p.patient_control_number.clone(),
                    payer_id: payer.clone(),
                    patient_ref: "patient".into(),
                    total_charge: Some(p.charge.abs()),
                    service_date_from: None,
                    lines: Vec::new(),
                });
            }
        }
        let store: Arc<dyn EraStore> = open_store(db.clone()).await?;
        let tenant = TenantId::parse("tenant-a")?;
        let sha = sha256_hex(&content);
        let started = Instant::now();
        let mut tx = db.begin().await?;
        let ingested = ingest_file(store.as_ref(), &mut tx, &tenant, Arc::new(content), &sha, "bench.835").await?;
        tx.commit().await?;
        let stored_in = started.elapsed();
        let payments: u32 = ingested.eras.iter().map(|e| e.summary.claim_count).sum();
        let poster = Poster::new(store.clone(), Arc::new(Known(claims)), "bench");
        let started = Instant::now();
        let mut posted_eras = 0;
        loop {
            let n = poster.run_once().await?;
            if n == 0 {
                break;
            }
            posted_eras += n;
        }
        let posted_in = started.elapsed();
        let received = ingested.eras.iter().filter(|e| e.status == EraStatus::Received).count();
        assert_eq!(posted_eras, received, "every balanced ERA is posted");
        let pending = store
            .list_claim_payments(&tenant, &ClaimPaymentFilter { status: Some(PostingStatus::Pending), ..Default::default() }, None, 10)
            .await?;
        assert!(pending.is_empty(), "nothing left pending");
        let counts = outbox::counts(&db).await?;
        println!(
            "{:?}: {payments} claim payments in {} ERAs; stored in {:.2} s ({:.0}/s); matched and posted in {:.2} s ({:.0}/s); {} outbox messages",
            db.backend(),
            ingested.eras.len(),
            stored_in.as_secs_f64(),
            f64::from(payments) / stored_in.as_secs_f64(),
            posted_in.as_secs_f64(),
            f64::from(payments) / posted_in.as_secs_f64(),
            counts.pending,
        );
        Ok(())
    }
}
