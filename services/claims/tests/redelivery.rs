//! Redelivery of a batch a process stored and never sent (it died in between): the background
//! pass sends it with its stored control numbers, and two replicas running the pass at once send
//! it once. SQLite and (with `MEDBILL_TEST_PG_URL`) PostgreSQL.

mod support;

use medbill_claims::submission::delivery::redeliver_once;
use medbill_storage::Database;
use medbill_storage::testing::TestEnv;
use medbill_testkit::Caller;
use support::payer::{PayerSuite, submit_all};

/// Puts every batch back as a process that died before sending would have left it: CREATED,
/// never sent, created an hour ago.
async fn as_if_never_sent(db: &Database) -> anyhow::Result<()> {
    const SQL: &str = "UPDATE submission_batches SET status = 'CREATED', sent_at = NULL, \
                       file_name = '', created_at = created_at - 3600000000";
    let changed = match db {
        Database::Sqlite(pool) => sqlx::query(SQL).execute(pool).await?.rows_affected(),
        Database::Postgres(pool) => sqlx::query(SQL).execute(pool).await?.rows_affected(),
    };
    anyhow::ensure!(changed > 0, "no batch to put back");
    Ok(())
}

medbill_storage::conformance_tests! {
    namespace = "claims";

    async fn two_replicas_redeliver_a_stored_batch_once(env: TestEnv) -> anyhow::Result<()> {
        let suite = PayerSuite::start(&env).await?;
        let mut c = suite.client(Caller::TenantA);
        suite.ready_claim(&mut c, "PCN-R1", "W100000001").await?;
        let waiting_before = suite.sim.claims().waiting("MEDBILL");
        let submitted = submit_all(&mut c, "submit-r1").await?;
        assert_eq!(submitted.batches.len(), 1);
        // What one delivery leaves at payer-sim for pickup (TA1/999/277CA files).
        let per_delivery = suite.sim.claims().waiting("MEDBILL") - waiting_before;
        assert!(per_delivery > 0);

        as_if_never_sent(env.db()).await?;
        let now = medbill_storage::time::now_micros();
        let (first, second) = tokio::join!(
            redeliver_once(suite.store.as_ref(), &suite.submitter, now),
            redeliver_once(suite.store.as_ref(), &suite.submitter, now),
        );
        assert_eq!(first? + second?, 1, "one replica takes the batch, the other skips it");
        assert_eq!(
            suite.sim.claims().waiting("MEDBILL") - waiting_before,
            2 * per_delivery,
            "payer-sim got the batch once more, not twice"
        );
        let batch_id = submitted.batches[0].id.parse()?;
        let tenant = medbill_domain::TenantId::parse("tenant-a")?;
        let batch = suite.store.get_batch(&tenant, batch_id, false).await?.expect("the batch");
        assert_eq!(batch.status, medbill_claims::submission::BatchStatus::Sent);

        // Delivered: nothing is left to redeliver.
        let again = redeliver_once(suite.store.as_ref(), &suite.submitter, now).await?;
        assert_eq!(again, 0);
        Ok(())
    }
}
