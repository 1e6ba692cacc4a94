//! Handing a stored batch to its payer connection, and recording the outcome.
//!
//! [`Submitter`] holds what submission needs besides the store: the payer connections, each
//! route's envelope identity, and the submitter's contact. [`redeliver_task`] is the background
//! task that delivers batches a crash left CREATED.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use medbill_connect::{Connections, OutboundFile, PayerConnection};
use medbill_domain::TenantId;
use medbill_runtime::service::{BackgroundTask, Shutdown};
use medbill_storage::time;
use medbill_x12::write::Usage;
use uuid::Uuid;

use super::SubmissionBatch;
use super::writer::{RouteIdentity, SubmitterContact};
use crate::model::ClaimType;
use crate::settings::SubmissionConfig;
use crate::store::{ClaimStore, ClaimStoreError};

/// What submission needs besides the store.
#[derive(Clone)]
pub struct Submitter {
    connections: Connections,
    routes: HashMap<String, RouteIdentity>,
    contact: SubmitterContact,
    contact_configured: bool,
}

impl std::fmt::Debug for Submitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitter")
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Submitter {
    /// Builds the submitter from the `[[payers]]` connections (already opened) and their configs.
    pub fn new(
        connections: Connections,
        payers: &[PayerConnection],
        config: &SubmissionConfig,
    ) -> Self {
        let usage = if config.usage == "test" {
            Usage::Test
        } else {
            Usage::Production
        };
        let routes = payers
            .iter()
            .map(|p| {
                (
                    p.payer_id.clone(),
                    RouteIdentity {
                        sender_id: p.sender_id.clone(),
                        receiver_id: p.receiver_id.clone(),
                        receiver_name: p.receiver_id.clone(),
                        usage,
                    },
                )
            })
            .collect();
        Self {
            connections,
            routes,
            contact: SubmitterContact {
                name: config.submitter_name.clone(),
                contact_name: config.contact_name.clone(),
                phone: config.contact_phone.clone(),
            },
            contact_configured: !config.contact_phone.is_empty(),
        }
    }

    /// A submitter with no payer connections: every claim is skipped with "no payer route".
    pub fn none() -> Self {
        Self::new(Connections::default(), &[], &SubmissionConfig::default())
    }

    /// The envelope identity of the route that reaches `payer_id`, if one is configured.
    pub fn route(&self, payer_id: &str) -> Option<&RouteIdentity> {
        self.routes.get(payer_id)
    }

    /// The route whose receiver id is `sender_id` (an acknowledgement's ISA06), if exactly one is.
    pub fn route_of_sender(&self, sender_id: &str) -> Option<&str> {
        let mut matching = self
            .routes
            .iter()
            .filter(|(_, r)| r.receiver_id == sender_id)
            .map(|(route, _)| route.as_str());
        let first = matching.next()?;
        matching.next().is_none().then_some(first)
    }

    /// The submitter's contact, or `None` while `claims.submission.contact_phone` is not set.
    pub fn contact(&self) -> Option<&SubmitterContact> {
        self.contact_configured.then_some(&self.contact)
    }

    /// The submitter's name (1000A NM103, and the information receiver of a 276).
    pub fn submitter_name(&self) -> &str {
        &self.contact.name
    }

    /// The payer connections (also used to pick up acknowledgements).
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// Delivers a stored batch and records the outcome: SENT with the transport's file name, or
    /// FAILED with the reason and its claims back to READY. Returns the reason of a failure.
    pub async fn deliver(
        &self,
        store: &dyn ClaimStore,
        tenant: &TenantId,
        batch: &SubmissionBatch,
        content: Vec<u8>,
    ) -> Result<Option<String>, ClaimStoreError> {
        let label = match batch.claim_type {
            ClaimType::Professional => "837P",
            ClaimType::Institutional => "837I",
        };
        let outcome = match self.connections.get(&batch.route) {
            Ok(connection) => connection
                .submit_batch(OutboundFile {
                    label: label.to_owned(),
                    contents: Bytes::from(content),
                })
                .await
                .map(|receipt| receipt.submission_id)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let mut tx = store.database().begin().await?;
        let failure = match outcome {
            Ok(file_name) => {
                store
                    .batch_sent(&mut tx, tenant, batch.id, &file_name)
                    .await?;
                tracing::info!(batch_id = %batch.id, route = %batch.route, claims = batch.claim_ids.len(), "837 batch delivered");
                None
            }
            Err(reason) => {
                store
                    .batch_failed(&mut tx, tenant, batch.id, &reason)
                    .await?;
                tracing::warn!(batch_id = %batch.id, route = %batch.route, error = %reason, "837 batch delivery failed; claims back to READY");
                Some(reason)
            }
        };
        tx.commit().await?;
        Ok(failure)
    }
}

/// How many undelivered batches one pass of the redelivery task takes.
const REDELIVER_PAGE: u32 = 50;

/// The background task that delivers batches still CREATED `after` their creation: a process
/// that stored a batch and died before sending it leaves it so. The same control numbers go out;
/// a receiver that already got the file reports a duplicate interchange, never a second claim.
pub fn redeliver_task(
    store: Arc<dyn ClaimStore>,
    submitter: Submitter,
    after: Duration,
) -> BackgroundTask {
    BackgroundTask::new("claims-redelivery", move |shutdown: Shutdown| async move {
        let tick = after.min(Duration::from_secs(60));
        loop {
            tokio::select! {
                () = shutdown.requested() => return Ok(()),
                () = tokio::time::sleep(tick) => {}
            }
            let before = time::now_micros() - i64::try_from(after.as_micros()).unwrap_or(i64::MAX);
            if let Err(e) = redeliver_once(store.as_ref(), &submitter, before).await {
                tracing::warn!(error = %e, "redelivery pass failed; trying again later");
            }
        }
    })
}

/// How long one replica holds a batch's redelivery: longer than a delivery with its retries.
const REDELIVERY_LEASE: Duration = Duration::from_secs(300);

/// Delivers every batch still CREATED before `before` (unix micros) that no other replica is
/// redelivering; returns how many it delivered.
pub async fn redeliver_once(
    store: &dyn ClaimStore,
    submitter: &Submitter,
    before: i64,
) -> Result<usize, ClaimStoreError> {
    let pending = store.undelivered_batches(before, REDELIVER_PAGE).await?;
    let mut delivered = 0;
    for (tenant, id) in &pending {
        let now = time::now_micros();
        let until = now + i64::try_from(REDELIVERY_LEASE.as_micros()).unwrap_or(i64::MAX);
        let Ok(tenant) = TenantId::parse(tenant) else {
            continue;
        };
        if !store
            .lease_redelivery(tenant.as_str(), *id, now, until)
            .await?
        {
            continue;
        }
        delivered += 1;
        if let Some(batch) = store.get_batch(&tenant, *id, true).await? {
            let content = batch.content.clone().unwrap_or_default();
            submitter.deliver(store, &tenant, &batch, content).await?;
        }
    }
    Ok(delivered)
}

/// A batch id for logs and BHT03.
pub fn new_batch_id() -> Uuid {
    Uuid::now_v7()
}
