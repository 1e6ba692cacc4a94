//! The batch path of PostPatientResponsibility and RecordPayment: many items in one call and
//! one transaction, each item exactly the single RPC's request, applied once by its own key
//! under the single RPC's scope (the kit's `medbill_runtime::batch`), so a redelivered batch,
//! or an item sent singly before, applies nothing twice.
//!
//! The items are written together: the single RPC's rules worked out over the whole batch in
//! memory, in item order, from one read of the accounts and their claims, then multi-row
//! statements for what they write (`post_responsibilities_in`, `record_payments_in`, of which
//! the single RPC is the one-item case), every account locked at once in id order.
//!
//! A bad item fails alone, and nothing of it stays: every item is checked before anything is
//! written (an item the single RPC would refuse for its request answers that error), and what
//! only the database can tell (an unknown account, a reversal above what the claim holds) fails
//! the write together; the kit rolls it back and writes the items one by one, each in its
//! savepoint, the accounts they name locked first in id order, so two batches (or a batch and
//! single calls) touching the same accounts wait for each other instead of deadlocking on
//! PostgreSQL.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

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
            one_by_one: AtomicBool::new(false),
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
    /// Set once the items are written one by one (an item failed written together).
    one_by_one: AtomicBool,
}

impl<T: PostingItem> Posting<'_, T> {
    /// The checked items at `indices`, in order.
    fn items_at(&self, indices: &[usize]) -> Result<Vec<(&IdempotencyKey, &T)>, ServiceError> {
        indices
            .iter()
            .map(|i| match &self.items[*i] {
                Some((key, item)) => Ok((key, item)),
                None => Err(ServiceError::internal(
                    "batch item written without its check",
                )),
            })
            .collect()
    }
}

impl<T: PostingItem> BatchWork<T::Response> for Posting<'_, T> {
    type Error = Status;

    /// Written one by one, locks the accounts the items name first, in id order (an unknown
    /// one is left for its item to report). Written together, the items lock every account
    /// they touch at once, in id order, themselves.
    async fn prepare(&self, tx: &mut Tx) -> Result<(), ServiceError> {
        if !self.one_by_one.load(Ordering::Relaxed) {
            return Ok(());
        }
        let named: Vec<AccountId> = self
            .items
            .iter()
            .flatten()
            .filter_map(|(_, item)| item.account_id())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        self.service
            .store
            .lock_accounts(tx, self.tenant, &named)
            .await?;
        Ok(())
    }

    async fn apply(&self, tx: &mut Tx, index: usize) -> Result<T::Response, Status> {
        let items = self.items_at(&[index])?;
        T::post(self.service, tx, self.tenant, &items)
            .await?
            .pop()
            .ok_or_else(|| ServiceError::internal("a batch item without its answer").into())
    }

    /// Every item at once: the single RPC's rules over the whole batch, in memory, and
    /// multi-row statements for what they write.
    async fn apply_many(
        &self,
        tx: &mut Tx,
        indices: &[usize],
    ) -> Result<Option<Vec<T::Response>>, ServiceError> {
        let items = self.items_at(indices)?;
        match T::post(self.service, tx, self.tenant, &items).await {
            Ok(responses) => Ok(Some(responses)),
            Err(status) => Err(ServiceError::Coded {
                code: status.code(),
                message: status.message().to_owned(),
            }),
        }
    }

    fn restart(&self) {
        self.one_by_one.store(true, Ordering::Relaxed);
    }
}

/// A checked item of a batch and the single RPC's writes that apply it.
trait PostingItem: Send + Sync + Sized {
    type Response: prost::Message + Default + Send;

    /// The account the item names, when it names one (locked before the items are written
    /// one by one).
    fn account_id(&self) -> Option<AccountId>;

    /// Writes `items` in `tx`, in order, as the single RPC writes one (see its `*_in`).
    fn post(
        service: &CollectionsService,
        tx: &mut Tx,
        tenant: &TenantId,
        items: &[(&IdempotencyKey, &Self)],
    ) -> impl std::future::Future<Output = Result<Vec<Self::Response>, Status>> + Send;
}

impl PostingItem for Responsibility {
    type Response = pb::PostPatientResponsibilityResponse;

    fn account_id(&self) -> Option<AccountId> {
        Responsibility::account_id(self)
    }

    async fn post(
        service: &CollectionsService,
        tx: &mut Tx,
        tenant: &TenantId,
        items: &[(&IdempotencyKey, &Self)],
    ) -> Result<Vec<Self::Response>, Status> {
        service.post_responsibilities_in(tx, tenant, items).await
    }
}

impl PostingItem for Payment {
    type Response = pb::RecordPaymentResponse;

    fn account_id(&self) -> Option<AccountId> {
        Some(self.account_id)
    }

    async fn post(
        service: &CollectionsService,
        tx: &mut Tx,
        tenant: &TenantId,
        items: &[(&IdempotencyKey, &Self)],
    ) -> Result<Vec<Self::Response>, Status> {
        service.record_payments_in(tx, tenant, items).await
    }
}

#[cfg(test)]
mod tests {
    use medbill_domain::{ClaimId, TenantId};
    use medbill_proto::collections::v1 as pb;
    use medbill_runtime::batch::BatchWork;
    use medbill_storage::Database;

    use crate::posting::responsibility;
    use crate::{CollectionsService, open_store};

    fn item(
        key: &str,
        patient: &str,
        claim: &ClaimId,
        amount: &str,
    ) -> pb::PostPatientResponsibilityRequest {
        pb::PostPatientResponsibilityRequest {
            idempotency_key: key.into(),
            patient_ref: patient.into(),
            claim_id: claim.to_string(),
            amount: amount.into(),
            ..Default::default()
        }
    }

    medbill_storage::conformance_tests! {
        namespace = "collections";

        async fn items_that_all_go_are_written_together(db: Database) -> anyhow::Result<()> {
            let service = CollectionsService::new(open_store(db).await?);
            let tenant = TenantId::parse("clinic-a")?;
            let claim = ClaimId::new();
            let items = vec![
                item("k-1", "pat-1", &claim, "10.00"),
                item("k-2", "pat-2", &claim, "20.00"),
                item("k-3", "pat-1", &claim, "-4.00"),
            ];
            let (batch, work) = service.checked(&tenant, &items, responsibility).await?;
            let mut tx = service.store.database().begin().await?;
            let written = work.apply_many(&mut tx, &batch.pending()).await?;
            let balances = written.map(|w| {
                w.into_iter()
                    .map(|r| r.account.unwrap_or_default().balance)
                    .collect::<Vec<_>>()
            });
            assert_eq!(balances, Some(vec!["10.00".into(), "20.00".into(), "6.00".into()]));
            tx.rollback().await?;

            // An item that cannot go (more reversed than its claim holds, counting the items
            // before it) fails the whole write; the kit then writes the items one by one.
            let over = vec![
                item("k-1", "pat-1", &claim, "10.00"),
                item("k-2", "pat-1", &claim, "-6.00"),
                item("k-3", "pat-1", &claim, "-6.00"),
            ];
            let (batch, work) = service.checked(&tenant, &over, responsibility).await?;
            let mut tx = service.store.database().begin().await?;
            let refused = work.apply_many(&mut tx, &batch.pending()).await.err();
            assert_eq!(refused.map(|e| tonic::Status::from(e).code()), Some(tonic::Code::FailedPrecondition));
            tx.rollback().await?;
            Ok(())
        }
    }
}
