//! Retrieval of 835s from a payer route (a mailbox here), on SQLite and (when
//! `MEDBILL_TEST_PG_URL` is set) PostgreSQL: an 835 is stored for the route's tenant and
//! acknowledged, the same file again is the same ERAs, a route leased by another replica is left
//! alone, and an acknowledgement for the claims service is not taken.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use medbill_connect::config::{MailboxConfig, RetryPolicy, TransportConfig};
use medbill_connect::{Connection, Mailbox, MailboxSide, PayerConnection};
use medbill_domain::TenantId;
use medbill_remittance::model::EraFilter;
use medbill_remittance::pickup::{Route, pickup_once};
use medbill_remittance::{EraStore, open_store};
use medbill_storage::Database;

const BALANCED: &[u8] = include_bytes!("fixtures/medicare-part-a.835");
const LEASE: Duration = Duration::from_secs(60);

fn route(dir: &std::path::Path, tenant: &str) -> anyhow::Result<Route> {
    let connection = Connection::open(&PayerConnection {
        payer_id: "ACME".into(),
        sender_id: "MEDBILL01".into(),
        receiver_id: "ACMEHEALTH".into(),
        transport: TransportConfig::Mailbox(MailboxConfig {
            dir: dir.to_owned(),
        }),
        batch_transport: None,
        retry: RetryPolicy::default(),
    })?;
    Ok(Route {
        payer_id: "ACME".into(),
        connection,
        tenant: TenantId::parse(tenant)?,
    })
}

async fn eras(store: &Arc<dyn EraStore>, tenant: &str) -> anyhow::Result<usize> {
    Ok(store
        .list_eras(&TenantId::parse(tenant)?, &EraFilter::default(), None, 100)
        .await?
        .len())
}

medbill_storage::conformance_tests! {
    async fn an_835_in_the_route_is_stored_once_for_its_tenant(db: Database) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let payer = Mailbox::open(dir.path(), MailboxSide::Partner)?;
        let store = open_store(db).await?;
        let routes = vec![route(dir.path(), "tenant-a")?];

        payer.put("era", Bytes::from_static(BALANCED)).await?;
        assert_eq!(pickup_once(&store, None, &routes, "replica-1", LEASE).await?, 1);
        assert_eq!(eras(&store, "tenant-a").await?, 1);
        assert_eq!(eras(&store, "tenant-b").await?, 0);
        assert!(routes[0].connection.next_inbound().await?.is_none(), "acknowledged");

        // The payer sends the same file again: one set of ERAs still.
        payer.put("era-again", Bytes::from_static(BALANCED)).await?;
        // Another replica holds no lease on the route while replica-1's runs.
        assert_eq!(pickup_once(&store, None, &routes, "replica-2", LEASE).await?, 0);
        assert!(routes[0].connection.next_inbound().await?.is_some(), "left for the lease holder");
        assert_eq!(pickup_once(&store, None, &routes, "replica-1", LEASE).await?, 1);
        assert_eq!(eras(&store, "tenant-a").await?, 1, "the same file twice is one set of ERAs");

        // A 999 waiting on the route is the claims service's: not taken, not acknowledged.
        let ack = String::from_utf8_lossy(BALANCED).replace("ST*835*", "ST*999*").into_bytes();
        payer.put("ack", Bytes::from(ack)).await?;
        assert_eq!(pickup_once(&store, None, &routes, "replica-1", LEASE).await?, 0);
        assert!(routes[0].connection.next_inbound().await?.is_some());
        assert_eq!(eras(&store, "tenant-a").await?, 1);
        Ok(())
    }
}
