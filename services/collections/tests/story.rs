//! A patient account's collections story (`medbill_testkit::collections_story`), through the
//! generated gRPC client on SQLite and, when `MEDBILL_TEST_PG_URL` is set, on PostgreSQL, with
//! the service's clock walked over four months.

use medbill_collections::settings::AgencySettings;
use medbill_collections::{Clock, CollectionsConfig, CollectionsService, open_store};
use medbill_domain::Rate;
use medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient;
use medbill_storage::Database;
use medbill_testkit::collections_story::{self, AGENCY, AGENCY_FEE_RATE, day};
use medbill_testkit::{Caller, TestServer};

medbill_storage::conformance_tests! {
    namespace = "collections";

    async fn a_patient_account_from_first_bill_to_agency_and_back(db: Database) -> anyhow::Result<()> {
        let clock = Clock::fixed(day(0));
        let config = CollectionsConfig {
            agencies: vec![AgencySettings { id: AGENCY.into(), fee_rate: Rate::parse(AGENCY_FEE_RATE)? }],
            ..Default::default()
        };
        let store = open_store(db).await?;
        let service = CollectionsService::with_config(store, config).with_clock(clock.clone());
        let server = TestServer::start(tonic::service::Routes::new(service.into_server())).await;
        let mut c = CollectionsServiceClient::new(server.channel(Caller::TenantA));
        collections_story::run(&mut c, &|today| {
            clock.set(today);
            Ok(())
        })
        .await
    }
}
