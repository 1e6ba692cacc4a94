//! The batch path of PostPatientResponsibility and RecordPayment: many items in one call and
//! one transaction, each item exactly the single RPC's request, applied once by its own key
//! under the single RPC's scope (the kit's `medbill_runtime::batch`), so a redelivered batch,
//! or an item sent singly before, applies nothing twice.
//!
//! A bad item fails alone, and nothing of it stays: every item is checked before anything is
//! written (an item the single RPC would refuse for its request answers that error), and what
//! only the database can tell (an unknown account, a reversal above what the claim holds) is
//! undone with the item alone. The accounts the items name are locked first, in one sorted
//! order, so two batches (or a batch and single calls) touching the same accounts wait for
//! each other instead of deadlocking on PostgreSQL.

use std::collections::BTreeSet;

use medbill_domain::{AccountId, IdempotencyKey, TenantId};
use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::post_patient_responsibility_result::Outcome as PrOutcome;
use medbill_proto::collections::v1::record_payment_result::Outcome as PaymentOutcome;
use medbill_runtime::ServiceError;
use medbill_runtime::batch::{BatchCall, BatchWork, MAX_BATCH_ITEMS, item_error};
use medbill_runtime::idempotent::IdempotentRequest;
use medbill_storage::Tx;
use tonic::Status;

use crate::posting::{Payment, Responsibility, responsibility};
use crate::service::CollectionsService;

impl CollectionsService {
    /// PostPatientResponsibilities: see the module docs.
    pub(crate) async fn post_responsibilities(
        &self,
        tenant: TenantId,
        req: pb::PostPatientResponsibilitiesRequest,
    ) -> Result<pb::PostPatientResponsibilitiesResponse, Status> {
        self.run_batch(
            &tenant,
            &req.items,
            responsibility,
            |r| pb::PostPatientResponsibilityResult {
                outcome: Some(match r {
                    Ok(response) => PrOutcome::Response(response),
                    Err(status) => PrOutcome::Error(item_error(&status)),
                }),
            },
            |results| pb::PostPatientResponsibilitiesResponse { results },
        )
        .await
    }

    /// RecordPayments: see the module docs.
    pub(crate) async fn record_payments_rpc(
        &self,
        tenant: TenantId,
        req: pb::RecordPaymentsRequest,
    ) -> Result<pb::RecordPaymentsResponse, Status> {
        self.run_batch(
            &tenant,
            &req.items,
            |item| self.payment(item),
            |r| pb::RecordPaymentResult {
                outcome: Some(match r {
                    Ok(response) => PaymentOutcome::Response(response),
                    Err(status) => PaymentOutcome::Error(item_error(&status)),
                }),
            },
            |results| pb::RecordPaymentsResponse { results },
        )
        .await
    }

    /// Checks the items, writes them through the kit's batch path and answers one `result` per
    /// item, in order, gathered into the batch's `response`.
    async fn run_batch<R, T, Item, Resp>(
        &self,
        tenant: &TenantId,
        items: &[R],
        check: impl Fn(&R) -> Result<T, ServiceError>,
        result: impl Fn(Result<T::Response, Status>) -> Item,
        response: impl FnOnce(Vec<Item>) -> Resp,
    ) -> Result<Resp, Status>
    where
        R: IdempotentRequest<Response = T::Response>,
        T: PostingItem,
        Resp: prost::Message + medbill_proto::audit::AuditSchema,
    {
        let (batch, work) = self.checked(tenant, items, check).await?;
        let answer = batch
            .apply(self.store.database(), tenant, &work, |results| {
                response(results.into_iter().map(result).collect())
            })
            .await?;
        Ok(answer)
    }

    /// Reads the batch (replays answered with one read) and checks each item still to write;
    /// an item its check refuses answers that error and is never written.
    async fn checked<'s, R, T>(
        &'s self,
        tenant: &'s TenantId,
        items: &[R],
        check: impl Fn(&R) -> Result<T, ServiceError>,
    ) -> Result<(BatchCall<R>, Posting<'s, T>), Status>
    where
        R: IdempotentRequest,
        T: PostingItem,
    {
        let mut batch = BatchCall::of(items, "items", MAX_BATCH_ITEMS)?;
        batch.settle_replays(self.store.database(), tenant).await?;
        let mut work = Posting {
            service: self,
            tenant,
            items: (0..items.len()).map(|_| None).collect(),
        };
        for i in batch.pending() {
            let checked = IdempotencyKey::parse(items[i].idempotency_key())
                .map_err(|e| ServiceError::invalid_argument("idempotency_key", e.to_string()))
                .and_then(|key| Ok((key, check(&items[i])?)));
            match checked {
                Ok(item) => work.items[i] = Some(item),
                Err(e) => batch.fail(i, e),
            }
        }
        Ok((batch, work))
    }
}

/// The checked items of one batch, by position, and how to write them.
struct Posting<'s, T> {
    service: &'s CollectionsService,
    tenant: &'s TenantId,
    items: Vec<Option<(IdempotencyKey, T)>>,
}

impl<T: PostingItem> BatchWork<T::Response> for Posting<'_, T> {
    type Error = Status;

    /// Locks the accounts the items name, in id order (an unknown one is left for its item
    /// to report).
    async fn prepare(&self, tx: &mut Tx) -> Result<(), ServiceError> {
        let sorted: BTreeSet<AccountId> = self
            .items
            .iter()
            .flatten()
            .filter_map(|(_, item)| item.account_id())
            .collect();
        for id in sorted {
            match self.service.store.lock_account(tx, self.tenant, &id).await {
                Ok(_) | Err(crate::store::StoreError::AccountNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn apply(&self, tx: &mut Tx, index: usize) -> Result<T::Response, Status> {
        let Some((key, item)) = &self.items[index] else {
            return Err(ServiceError::internal("batch item written without its check").into());
        };
        // A copy: a batch whose item failed is written again, each item in a savepoint.
        item.clone().apply(self.service, tx, self.tenant, key).await
    }
}

/// A checked item of a batch and the single RPC's writes that apply it.
trait PostingItem: Clone + Send + Sync {
    type Response: prost::Message + Default + Send;

    /// The account the item names, when it names one (locked before the items are written).
    fn account_id(&self) -> Option<AccountId>;

    fn apply(
        self,
        service: &CollectionsService,
        tx: &mut Tx,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> impl std::future::Future<Output = Result<Self::Response, Status>> + Send;
}

impl PostingItem for Responsibility {
    type Response = pb::PostPatientResponsibilityResponse;

    fn account_id(&self) -> Option<AccountId> {
        Responsibility::account_id(self)
    }

    async fn apply(
        self,
        service: &CollectionsService,
        tx: &mut Tx,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> Result<Self::Response, Status> {
        service.apply_responsibility(tx, tenant, key, self).await
    }
}

impl PostingItem for Payment {
    type Response = pb::RecordPaymentResponse;

    fn account_id(&self) -> Option<AccountId> {
        Some(self.account_id)
    }

    async fn apply(
        self,
        service: &CollectionsService,
        tx: &mut Tx,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> Result<Self::Response, Status> {
        service.apply_payment(tx, tenant, key, self).await
    }
}
