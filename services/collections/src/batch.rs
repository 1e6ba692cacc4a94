//! The batch path of PostPatientResponsibility and RecordPayment: many items in one call and
//! one transaction, each item exactly the single RPC's request, applied once by its own key
//! under the single RPC's scope (`medbill_runtime::idempotent::BatchCall`), so a redelivered
//! batch, or an item sent singly before, applies nothing twice.
//!
//! A bad item fails alone, and nothing of it stays: every item is checked before anything is
//! written (an item the single RPC would refuse for its request answers that error), and what
//! only the database can tell (an unknown account, a reversal above what the claim holds, a
//! key used for another request) is undone with the item's savepoint. The accounts the items
//! name are locked first, in one sorted order, so two batches (or a batch and single calls)
//! touching the same accounts wait for each other instead of deadlocking on PostgreSQL.

use std::collections::BTreeSet;

use medbill_domain::{AccountId, TenantId};
use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::post_patient_responsibility_result::Outcome as PrOutcome;
use medbill_proto::collections::v1::record_payment_result::Outcome as PaymentOutcome;
use medbill_runtime::ServiceError;
use medbill_runtime::batch::item_error;
use medbill_runtime::idempotent::{BatchCall, IdempotentCall, Opened};
use medbill_storage::Tx;
use tonic::Status;

use crate::posting::{Payment, Responsibility, err, responsibility};
use crate::service::CollectionsService;

/// An item checked before anything is written: its call and request, or its error.
type Checked<T> = Result<(IdempotentCall, T), Status>;

/// Checks each item (its key and its request) before anything is written.
fn check_items<R, T>(
    items: &[R],
    check: impl Fn(&R) -> Result<T, ServiceError>,
) -> Result<Vec<Checked<T>>, Status>
where
    R: medbill_runtime::idempotent::IdempotentRequest,
{
    BatchCall::check_len("items", items.len())?;
    Ok(items
        .iter()
        .map(|item| Ok((BatchCall::item(item)?, check(item)?)))
        .map(|r: Result<_, ServiceError>| r.map_err(Status::from))
        .collect())
}

impl CollectionsService {
    /// Locks `accounts` in id order (an unknown one is left for its item to report).
    async fn lock_in_order(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        accounts: impl IntoIterator<Item = AccountId>,
    ) -> Result<(), Status> {
        let sorted: BTreeSet<AccountId> = accounts.into_iter().collect();
        for id in sorted {
            match self.store.lock_account(tx, tenant, &id).await {
                Ok(_) | Err(crate::store::StoreError::AccountNotFound(_)) => {}
                Err(e) => return Err(err(e)),
            }
        }
        Ok(())
    }

    /// PostPatientResponsibilities: see the module docs.
    pub(crate) async fn post_responsibilities(
        &self,
        tenant: TenantId,
        req: pb::PostPatientResponsibilitiesRequest,
    ) -> Result<pb::PostPatientResponsibilitiesResponse, Status> {
        let checked = check_items(&req.items, responsibility)?;
        let mut batch = BatchCall::begin(self.store.database()).await?;
        let named = checked.iter().flatten().filter_map(|(_, r)| r.account_id());
        self.lock_in_order(batch.tx(), &tenant, named.collect::<Vec<_>>())
            .await?;
        let mut results = Vec::with_capacity(checked.len());
        for item in checked {
            let result = match item {
                Err(status) => Err(status),
                Ok((call, r)) => self.apply_item(&mut batch, &tenant, &call, r).await?,
            };
            results.push(pb::PostPatientResponsibilityResult {
                outcome: Some(match result {
                    Ok(response) => PrOutcome::Response(response),
                    Err(status) => PrOutcome::Error(item_error(&status)),
                }),
            });
        }
        let response = pb::PostPatientResponsibilitiesResponse { results };
        batch.commit(&response).await?;
        Ok(response)
    }

    /// RecordPayments: see the module docs.
    pub(crate) async fn record_payments_rpc(
        &self,
        tenant: TenantId,
        req: pb::RecordPaymentsRequest,
    ) -> Result<pb::RecordPaymentsResponse, Status> {
        let checked = check_items(&req.items, |item| self.payment(item))?;
        let mut batch = BatchCall::begin(self.store.database()).await?;
        let named = checked.iter().flatten().map(|(_, p)| p.account_id);
        self.lock_in_order(batch.tx(), &tenant, named.collect::<Vec<_>>())
            .await?;
        let mut results = Vec::with_capacity(checked.len());
        for item in checked {
            let result = match item {
                Err(status) => Err(status),
                Ok((call, p)) => self.apply_item(&mut batch, &tenant, &call, p).await?,
            };
            results.push(pb::RecordPaymentResult {
                outcome: Some(match result {
                    Ok(response) => PaymentOutcome::Response(response),
                    Err(status) => PaymentOutcome::Error(item_error(&status)),
                }),
            });
        }
        let response = pb::RecordPaymentsResponse { results };
        batch.commit(&response).await?;
        Ok(response)
    }

    /// Applies one checked item in its savepoint: its first answer when its key was applied
    /// before, else the single RPC's writes, kept or undone alone. The outer error is the
    /// batch's (its transaction failed); the inner one the item's.
    async fn apply_item<I: BatchItem>(
        &self,
        batch: &mut BatchCall,
        tenant: &TenantId,
        call: &IdempotentCall,
        item: I,
    ) -> Result<Result<I::Response, Status>, Status> {
        Ok(match batch.open::<I::Response>(tenant, call).await? {
            Err(status) => Err(status),
            Ok(Opened::Replay(first)) => Ok(first),
            Ok(Opened::New(opened)) => {
                let result = item.apply(self, batch.tx(), tenant, call).await;
                batch.finish(opened, result).await?
            }
        })
    }
}

/// A checked item of a batch and the single RPC that applies it.
trait BatchItem: Send {
    type Response: prost::Message + Default + medbill_proto::audit::AuditSchema + Send;

    async fn apply(
        self,
        service: &CollectionsService,
        tx: &mut Tx,
        tenant: &TenantId,
        call: &IdempotentCall,
    ) -> Result<Self::Response, Status>;
}

impl BatchItem for Responsibility {
    type Response = pb::PostPatientResponsibilityResponse;

    async fn apply(
        self,
        service: &CollectionsService,
        tx: &mut Tx,
        tenant: &TenantId,
        call: &IdempotentCall,
    ) -> Result<Self::Response, Status> {
        service
            .apply_responsibility(tx, tenant, call.key(), self)
            .await
    }
}

impl BatchItem for Payment {
    type Response = pb::RecordPaymentResponse;

    async fn apply(
        self,
        service: &CollectionsService,
        tx: &mut Tx,
        tenant: &TenantId,
        call: &IdempotentCall,
    ) -> Result<Self::Response, Status> {
        service.apply_payment(tx, tenant, call.key(), self).await
    }
}
