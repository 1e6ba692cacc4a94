//! Batch calls: many requests of one mutating RPC in one call, each applied once by its own key.
//!
//! A batch RPC (ApplyAdjudications) carries up to a cap of items, each exactly the request of the
//! single RPC (ApplyAdjudicationRequest) with its own `idempotency_key`. Every item follows the
//! rules of [`crate::idempotent`] under the **single RPC's scope**, so a key used by the single
//! call and by a batch is one key: either call replays the other's first answer, and a different
//! request under it is ALREADY_EXISTS. The answer holds one result per item, in order: the
//! single RPC's response, or the status that call would have answered for that item.
//!
//! ```ignore
//! let mut batch = BatchCall::of(&req.items, "items", MAX_BATCH_ITEMS)?;   // INVALID_ARGUMENT over the cap
//! batch.settle_replays(db, &tenant).await?;     // one read: replays and reused keys answered
//! for i in batch.pending() { /* outside work; batch.fail(i, err) for an item that cannot go */ }
//! let results = batch.apply(db, &tenant, &work, respond).await?;   // one transaction
//! ```
//!
//! [`BatchCall::apply`] writes every pending item in one transaction. It first runs them one
//! after the other without savepoints (the usual case: every item succeeds); if any fails it rolls
//! back and runs them again each in its own savepoint, so a bad item is undone alone and leaves
//! nothing half-written, while the others commit. The call's audit record is written in that
//! transaction with the whole answer.

use std::future::Future;
use std::sync::Arc;

use medbill_domain::TenantId;
use medbill_proto::IdempotentRequest;
use medbill_proto::audit::AuditSchema;
use medbill_proto::common::v1 as common;
use medbill_storage::idempotency::{self, Lookup, Reservation};
use medbill_storage::{Database, Tx};
use prost::Message;
use tonic::Status;

use crate::ServiceError;
use crate::audit::AuditContext;
use crate::fields::key_reused;
use crate::idempotent::IdempotentCall;

/// Most items one batch call may carry; more is INVALID_ARGUMENT naming the items field.
pub const MAX_BATCH_ITEMS: usize = 1_000;

/// The write of one batch item inside the batch's transaction (implemented by the service).
pub trait BatchWork<Resp>: Sync {
    /// An item's failure: the status the single RPC would have answered.
    type Error: Into<Status> + Send;

    /// Runs first in each transaction the batch writes in, before any item: e.g. locking the
    /// rows the items touch in one order, so concurrent batches wait instead of deadlocking.
    fn prepare<'a>(
        &'a self,
        _tx: &'a mut Tx,
    ) -> impl Future<Output = Result<(), ServiceError>> + Send + 'a {
        async { Ok(()) }
    }

    /// Writes item `index` in `tx` (its key is already reserved there) and returns the single
    /// RPC's response for it. An error undoes the item alone.
    fn apply<'a>(
        &'a self,
        tx: &'a mut Tx,
        index: usize,
    ) -> impl Future<Output = Result<Resp, Self::Error>> + Send + 'a;

    /// Writes the items `indices` all at once (multi-row statements across the items, where the
    /// one-by-one path runs each item's statements) and returns their responses in the same
    /// order; `Ok(None)` means the work has no such path and the items are written one by one.
    /// Any error, an item's or the store's, makes the kit roll back and write the items one by
    /// one, each in its savepoint, so every item still gets the single RPC's answer: this path
    /// need not say which item failed.
    fn apply_many<'a>(
        &'a self,
        _tx: &'a mut Tx,
        _indices: &'a [usize],
    ) -> impl Future<Output = Result<Option<Vec<Resp>>, ServiceError>> + Send + 'a {
        async { Ok(None) }
    }

    /// Forgets what the items written so far left behind: their transaction was rolled back and
    /// they are about to be written again, each in its savepoint.
    fn restart(&self) {}
}

/// One item: still to write, or answered.
#[derive(Debug)]
enum Item<Resp> {
    Pending(IdempotentCall),
    Answered(Result<Resp, Status>),
}

/// A batch call's items (see the module docs).
#[derive(Debug)]
pub struct BatchCall<Req: IdempotentRequest> {
    items: Vec<Item<Req::Response>>,
    audit: Option<Arc<AuditContext>>,
}

impl<Req: IdempotentRequest> BatchCall<Req> {
    /// Reads the items: 1 to `max` of them (INVALID_ARGUMENT naming `field` otherwise); an item
    /// without a valid key is answered with the single RPC's error at once.
    pub fn of(items: &[Req], field: &str, max: usize) -> Result<Self, ServiceError> {
        if items.is_empty() || items.len() > max {
            return Err(ServiceError::invalid_argument(
                field,
                format!("must hold 1 to {max} items, got {}", items.len()),
            ));
        }
        Ok(Self {
            items: items
                .iter()
                .map(|item| match IdempotentCall::of(item) {
                    Ok(call) => Item::Pending(call),
                    Err(e) => Item::Answered(Err(e.into())),
                })
                .collect(),
            audit: crate::audit::current(),
        })
    }

    /// Answers, with one read, every item whose key was already used: the first call's response
    /// for the same request, ALREADY_EXISTS for a different one. Call it before outside work.
    pub async fn settle_replays(
        &mut self,
        db: &Database,
        tenant: &TenantId,
    ) -> Result<(), ServiceError> {
        let pending = self.pending_calls();
        let keys: Vec<(&str, &idempotency::Fingerprint)> = pending
            .iter()
            .map(|(_, call)| (call.key().as_str(), call.fingerprint()))
            .collect();
        let found = idempotency::lookup_many(db, tenant.as_str(), Req::METHOD, &keys).await?;
        let settled: Vec<(usize, Result<Req::Response, Status>)> = pending
            .iter()
            .zip(found)
            .filter_map(|((i, call), lookup)| match lookup {
                Lookup::Absent => None,
                Lookup::Replay(bytes) => Some((*i, decode(&bytes).map_err(Status::from))),
                Lookup::Conflict => Some((*i, Err(key_reused(call.key().as_str()).into()))),
            })
            .collect();
        for (i, answer) in settled {
            self.items[i] = Item::Answered(answer);
        }
        Ok(())
    }

    /// Returns the indices of the items still to write, in order.
    pub fn pending(&self) -> Vec<usize> {
        self.pending_calls().into_iter().map(|(i, _)| i).collect()
    }

    /// The items still to write with their calls, in order.
    fn pending_calls(&self) -> Vec<(usize, &IdempotentCall)> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item {
                Item::Pending(call) => Some((i, call)),
                Item::Answered(_) => None,
            })
            .collect()
    }

    /// Answers item `index` with `error` (it failed before its write: a bad field, an unknown
    /// claim); nothing of it is written.
    pub fn fail(&mut self, index: usize, error: impl Into<Status>) {
        self.items[index] = Item::Answered(Err(error.into()));
    }

    /// Writes every pending item in one transaction through `work` (see the module docs), builds
    /// the batch's response from every item's result with `respond`, records it with the call's
    /// audit record, commits and returns it.
    ///
    /// # Errors
    /// A storage failure of the transaction itself (begin, a savepoint, the commit): nothing of
    /// any pending item was written, and each may be retried by its key.
    pub async fn apply<W, BatchResp>(
        mut self,
        db: &Database,
        tenant: &TenantId,
        work: &W,
        respond: impl FnOnce(Vec<Result<Req::Response, Status>>) -> BatchResp,
    ) -> Result<BatchResp, ServiceError>
    where
        W: BatchWork<Req::Response>,
        BatchResp: Message + AuditSchema,
    {
        if self.pending().is_empty() {
            return Ok(respond(self.answers()));
        }
        let (mut tx, written) = match self.write_all(db, tenant, work, false).await? {
            (tx, Some(written)) => (tx, written),
            (tx, None) => {
                // An item failed: its writes may be in the transaction (and on PostgreSQL the
                // transaction is aborted), so run them all again, each in a savepoint.
                tx.rollback().await?;
                work.restart();
                match self.write_all(db, tenant, work, true).await? {
                    (tx, Some(written)) => (tx, written),
                    (_, None) => {
                        return Err(ServiceError::internal("a guarded batch item escaped"));
                    }
                }
            }
        };
        for (i, answer) in written {
            self.items[i] = Item::Answered(answer);
        }
        let response = respond(self.answers());
        if let Some(audit) = &self.audit {
            audit
                .record_in::<BatchResp>(&mut tx, &response.encode_to_vec())
                .await?;
        }
        tx.commit().await?;
        if let Some(audit) = &self.audit {
            audit.mark_written();
        }
        Ok(response)
    }

    /// Runs every pending item in a new transaction. Unguarded, the first failing item stops the
    /// run (`None`: roll back and run guarded); guarded, each item runs in its own savepoint and
    /// a failure is that item's answer.
    #[allow(clippy::type_complexity)]
    async fn write_all<W: BatchWork<Req::Response>>(
        &self,
        db: &Database,
        tenant: &TenantId,
        work: &W,
        guarded: bool,
    ) -> Result<(Tx, Option<Vec<(usize, Result<Req::Response, Status>)>>), ServiceError> {
        let mut tx = db.begin().await?;
        work.prepare(&mut tx).await?;
        if !guarded {
            match self.write_together(&mut tx, tenant, work).await {
                Ok(Some(written)) => return Ok((tx, Some(written))),
                // The work writes items one by one.
                Ok(None) => {}
                // Written again one by one, each in its savepoint.
                Err(e) => {
                    let status = Status::from(e);
                    tracing::debug!(code = ?status.code(), "batch items written one by one");
                    return Ok((tx, None));
                }
            }
        }
        let mut written = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            let Item::Pending(call) = item else { continue };
            let savepoint = if guarded {
                Some(tx.savepoint().await?)
            } else {
                None
            };
            let answer = write_one(&mut tx, tenant, call, work, i).await;
            match (savepoint, &answer) {
                (Some(sp), Ok(_)) => tx.release(sp).await?,
                (Some(sp), Err(_)) => tx.rollback_to(sp).await?,
                (None, Ok(_)) => {}
                (None, Err(_)) => return Ok((tx, None)),
            }
            written.push((i, answer));
        }
        Ok((tx, Some(written)))
    }

    /// The fast path of an unguarded run: every pending item through [`BatchWork::apply_many`],
    /// then every key recorded with its response in multi-row statements. `Ok(None)` when the
    /// work has no such path; an error when anything failed (an item, the store, a key already
    /// held), and the caller rolls back.
    #[allow(clippy::type_complexity)]
    async fn write_together<W: BatchWork<Req::Response>>(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        work: &W,
    ) -> Result<Option<Vec<(usize, Result<Req::Response, Status>)>>, ServiceError> {
        let pending = self.pending_calls();
        let indices: Vec<usize> = pending.iter().map(|(i, _)| *i).collect();
        let Some(responses) = work.apply_many(tx, &indices).await? else {
            return Ok(None);
        };
        if responses.len() != pending.len() {
            return Err(ServiceError::internal(
                "a batch's items written together gave the wrong number of answers",
            ));
        }
        let encoded: Vec<Vec<u8>> = responses.iter().map(Message::encode_to_vec).collect();
        let records: Vec<idempotency::CompletedRecord<'_>> = pending
            .iter()
            .zip(&encoded)
            .map(|((_, call), bytes)| (call.key().as_str(), call.fingerprint(), bytes.as_slice()))
            .collect();
        if !idempotency::record_many_in(tx, tenant.as_str(), Req::METHOD, &records).await? {
            return Err(ServiceError::Coded {
                code: tonic::Code::Aborted,
                message: "a batch item's key was taken meanwhile".to_owned(),
            });
        }
        Ok(Some(
            indices
                .into_iter()
                .zip(responses.into_iter().map(Ok))
                .collect(),
        ))
    }

    fn answers(&mut self) -> Vec<Result<Req::Response, Status>> {
        std::mem::take(&mut self.items)
            .into_iter()
            .map(|item| match item {
                Item::Answered(answer) => answer,
                Item::Pending(_) => {
                    Err(ServiceError::internal("a batch item was not written").into())
                }
            })
            .collect()
    }
}

/// Reserves one item's key in `tx`, writes it and stores its response under the key.
async fn write_one<Resp, W>(
    tx: &mut Tx,
    tenant: &TenantId,
    call: &IdempotentCall,
    work: &W,
    index: usize,
) -> Result<Resp, Status>
where
    Resp: Message + Default,
    W: BatchWork<Resp>,
{
    let reserved = idempotency::reserve(
        tx,
        tenant.as_str(),
        call.scope(),
        call.key().as_str(),
        call.fingerprint(),
    )
    .await
    .map_err(ServiceError::from)?;
    let pending = match reserved {
        Reservation::New(pending) => pending,
        // Completed by another call since the replays were read (or earlier in this batch).
        Reservation::Replay(bytes) => return Ok(decode(&bytes)?),
        Reservation::Conflict => return Err(key_reused(call.key().as_str()).into()),
    };
    let response = work.apply(tx, index).await.map_err(Into::into)?;
    idempotency::complete(tx, pending, &response.encode_to_vec())
        .await
        .map_err(ServiceError::from)?;
    Ok(response)
}

fn decode<Resp: Message + Default>(bytes: &[u8]) -> Result<Resp, ServiceError> {
    Resp::decode(bytes).map_err(|e| {
        ServiceError::internal(format!("stored batch item response does not decode: {e}"))
    })
}

/// The wire form of one item's failure: the status the single RPC would have answered.
pub fn item_error(status: &Status) -> common::ItemError {
    common::ItemError {
        code: status.code() as i32,
        message: status.message().to_owned(),
    }
}
