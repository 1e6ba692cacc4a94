//! Retrieval of 835s from the payer routes (`[[payers]]` connections, CORE batch retrieval or a
//! mailbox) on a schedule: [`pickup_task`].
//!
//! Each pass leases each route (so two replicas never retrieve from the same route at once),
//! takes the route's waiting files oldest first, stores each 835 as IngestEra does (raw, once by
//! content: the same file twice is one set of ERAs) for the tenant the route belongs to, wakes the
//! posting worker, and only then acknowledges the file, so a crash before the acknowledgement
//! retrieves it again and finds it stored. The pass asks the route for 835s only, so acknowledgements
//! waiting for the claims service do not hold it up; a receiver that offers one all the same has it
//! left unacknowledged, and the route's pass ends.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use medbill_connect::{Connection, InboundKind};
use medbill_domain::TenantId;
use medbill_runtime::service::{BackgroundTask, Shutdown};
use serde::Deserialize;

use crate::ingest::first_set_id;
use crate::intake::ingest_file;
use crate::model::sha256_hex;
use crate::posting::Poster;
use crate::store::{EraStore, EraStoreError};

/// Most files taken from one route in one pass (one busy route must not starve the others).
const PER_ROUTE: usize = 100;

/// The `remittance` configuration section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemittanceSettings {
    /// Retrieval of 835s from the payer routes.
    pub era_pickup: PickupSettings,
}

/// `[remittance.era_pickup]`: how often 835s are retrieved, and whose they are.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PickupSettings {
    /// Seconds between passes; 0 turns retrieval off (IngestEra still takes pushed files).
    pub poll_secs: u64,
    /// The tenant each route's (payer id's) ERAs belong to. A route with no entry is retrieved
    /// only in dev mode (no tokens), for the default tenant.
    pub tenants: BTreeMap<String, String>,
}

impl Default for PickupSettings {
    fn default() -> Self {
        Self {
            poll_secs: 60,
            tenants: BTreeMap::new(),
        }
    }
}

impl RemittanceSettings {
    /// Checks the values: every tenant named is a valid tenant id.
    pub fn check(&self) -> Result<(), String> {
        for (route, tenant) in &self.era_pickup.tenants {
            TenantId::parse(tenant).map_err(|e| {
                format!("remittance.era_pickup.tenants.{route}: {tenant:?} is not a tenant id: {e}")
            })?;
        }
        Ok(())
    }
}

/// One payer route 835s are retrieved from, and the tenant they are stored for.
#[derive(Debug, Clone)]
pub struct Route {
    /// The route's payer id (its `[[payers]]` entry).
    pub payer_id: String,
    /// Its connection.
    pub connection: Connection,
    /// Whose ERAs come through it.
    pub tenant: TenantId,
}

/// Why a pass over a route stopped.
#[derive(Debug, thiserror::Error)]
pub enum PickupError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] EraStoreError),
    /// The route failed (the next pass tries again).
    #[error("route {route}: {reason}")]
    Route {
        /// The route's payer id.
        route: String,
        /// What failed.
        reason: String,
    },
}

/// Retrieves 835s from `routes` in one pass; returns how many files were stored (new or seen
/// before). Routes leased by another replica are skipped.
pub async fn pickup_once(
    store: &Arc<dyn EraStore>,
    poster: Option<&Poster>,
    routes: &[Route],
    owner: &str,
    lease: Duration,
) -> Result<usize, PickupError> {
    let lease = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
    let mut taken = 0;
    for route in routes {
        if !store.lease_route(&route.payer_id, owner, lease).await? {
            continue;
        }
        let failed = |reason: String| PickupError::Route {
            route: route.payer_id.clone(),
            reason,
        };
        for _ in 0..PER_ROUTE {
            let Some(file) = route
                .connection
                .next_inbound_of(InboundKind::Remittance)
                .await
                .map_err(|e| failed(e.to_string()))?
            else {
                break;
            };
            if first_set_id(&file.contents).as_deref() != Some("835") {
                // An acknowledgement for the claims service, offered by a receiver that does not
                // retrieve by kind: not ours to take.
                break;
            }
            let content = Arc::new(file.contents.to_vec());
            let bytes = Arc::clone(&content);
            let sha = tokio::task::spawn_blocking(move || sha256_hex(&bytes))
                .await
                .map_err(|e| failed(e.to_string()))?;
            let mut tx = store
                .database()
                .begin()
                .await
                .map_err(EraStoreError::from)?;
            let name = format!("{}/{}", route.payer_id, file.file_id);
            let ingested =
                ingest_file(store.as_ref(), &mut tx, &route.tenant, content, &sha, &name).await?;
            tx.commit().await.map_err(EraStoreError::from)?;
            tracing::info!(
                route = %route.payer_id,
                tenant = %route.tenant,
                eras = ingested.eras.len(),
                duplicate = ingested.duplicate,
                "835 retrieved"
            );
            if let Some(poster) = poster {
                poster.wake();
            }
            route
                .connection
                .acknowledge(&file.file_id)
                .await
                .map_err(|e| failed(format!("stored but not acknowledged: {e}")))?;
            taken += 1;
        }
    }
    Ok(taken)
}

/// The background task retrieving 835s from `routes` every `interval`.
pub fn pickup_task(
    store: Arc<dyn EraStore>,
    poster: Poster,
    routes: Vec<Route>,
    owner: String,
    interval: Duration,
) -> BackgroundTask {
    BackgroundTask::new(
        "remittance 835 pickup",
        move |shutdown: Shutdown| async move {
            loop {
                tokio::select! {
                    () = shutdown.requested() => return Ok(()),
                    () = tokio::time::sleep(interval) => {}
                }
                // The lease outlives a pass by the interval, so a live replica keeps its routes.
                let lease = interval.saturating_mul(3).max(Duration::from_secs(30));
                if let Err(e) = pickup_once(&store, Some(&poster), &routes, &owner, lease).await {
                    tracing::warn!(error = %e, "835 pickup pass failed; trying again later");
                }
            }
        },
    )
}
