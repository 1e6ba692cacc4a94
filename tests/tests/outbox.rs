//! The transactional outbox across two real services: a call remittance owes collections,
//! written while collections is down, is delivered exactly once after collections comes back,
//! also when the sender restarts in between. SQLite always; PostgreSQL too when
//! `MEDBILL_TEST_PG_URL` is set.

use std::time::{Duration, Instant};

mod common;

use medbill::serve::Target;
use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient;
use medbill_remittance::delivery::{CollectionsDelivery, enqueue_open_account};
use medbill_runtime::client;
use medbill_runtime::config::ClientConfig;
use medbill_storage::Database;
use medbill_storage::outbox::{self, Enqueued, Relay, RelayConfig};
use medbill_storage::testing::TestEnv;
use medbill_testkit::{Caller, TENANT_A, channel_to, two_tenant_auth};

/// Relay timing short enough for a test; the mechanism is the production one.
fn relay_config() -> RelayConfig {
    RelayConfig {
        poll_interval_ms: 20,
        backoff_initial_ms: 20,
        backoff_max_ms: 100,
        ..RelayConfig::default()
    }
}

fn delivery_to(url: &str) -> anyhow::Result<CollectionsDelivery> {
    let config = ClientConfig {
        connect_timeout_ms: 500,
        request_timeout_ms: 2_000,
        ..ClientConfig::default()
    };
    Ok(CollectionsDelivery::new(
        client::connect(url, &config)?,
        two_tenant_auth(),
    ))
}

/// Opens remittance's namespace the way the service does at start (migrations included).
async fn remittance_db(env: &TestEnv) -> anyhow::Result<Database> {
    let db = env.connect("remittance").await?;
    medbill_remittance::open_store(db.clone()).await?;
    Ok(db)
}

medbill_storage::conformance_tests! {
    async fn a_message_written_while_the_receiver_is_down_is_delivered_once_after_it_returns(env: TestEnv) -> anyhow::Result<()> {
        // Reserve collections' address; nothing listens there yet: the receiver is down.
        let reserved = std::net::TcpListener::bind("127.0.0.1:0")?;
        let collections_addr = reserved.local_addr()?;
        drop(reserved);
        let url = format!("http://{collections_addr}");

        // The sender writes the call in its own transaction.
        let db = remittance_db(&env).await?;
        let mut tx = db.begin().await?;
        let id = match enqueue_open_account(&mut tx, TENANT_A, "era-42-patient-9", "ehr-patient-9").await? {
            Enqueued::New(id) => id,
            Enqueued::Duplicate => anyhow::bail!("first enqueue reported a duplicate"),
        };
        tx.commit().await?;

        // First sender process: collections is down, so the attempt fails and is rescheduled.
        let relay = Relay::new(db.clone(), delivery_to(&url)?, relay_config());
        let pass = relay.run_once().await?;
        assert_eq!((pass.claimed, pass.delivered, pass.retried), (1, 0, 1));
        let state = outbox::state(&db, &id).await?.expect("the message exists");
        assert_eq!(state.status, "PENDING");
        assert!(state.last_error.is_some(), "the failure is recorded");

        // The sender "crashes": its relay and pool go away with the message still pending.
        drop(relay);
        db.close().await;

        // Collections comes back on its address (the binary's own start, its own database).
        let listener = tokio::net::TcpListener::bind(collections_addr).await?;
        let collections = common::start_on(&env, Target::Collections, listener).await?;

        // The restarted sender delivers it.
        let db = remittance_db(&env).await?;
        let relay = Relay::new(db.clone(), delivery_to(&url)?, relay_config()).spawn();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = outbox::state(&db, &id).await?.expect("the message exists");
            if state.status == "DELIVERED" {
                break;
            }
            assert!(Instant::now() < deadline, "not delivered in time: {state:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        relay.shutdown().await;

        // Writing the same call again (a retried posting) adds nothing.
        let mut tx = db.begin().await?;
        let again = enqueue_open_account(&mut tx, TENANT_A, "era-42-patient-9", "ehr-patient-9").await?;
        tx.commit().await?;
        assert_eq!(again, Enqueued::Duplicate);
        let counts = outbox::counts(&db).await?;
        assert_eq!((counts.pending, counts.delivered, counts.dead), (0, 1, 0));

        // Exactly one account exists for the patient, in the message's tenant.
        let mut accounts = CollectionsServiceClient::new(channel_to(&collections.handle.url(), Caller::TenantA));
        let listed = accounts
            .list_accounts(pb::ListAccountsRequest { patient_ref: "ehr-patient-9".into(), ..Default::default() })
            .await?
            .into_inner()
            .accounts;
        assert_eq!(listed.len(), 1, "{listed:?}");
        let mut other_tenant = CollectionsServiceClient::new(channel_to(&collections.handle.url(), Caller::TenantB));
        let hidden = other_tenant
            .list_accounts(pb::ListAccountsRequest::default())
            .await?
            .into_inner()
            .accounts;
        assert!(hidden.is_empty());

        collections.shutdown().await?;
        Ok(())
    }
}
