//! Delivery of remittance's outbox messages to the claims and collections services over gRPC.
//!
//! Posting an ERA must not lose what it owes claims (the adjudication) and collections (a
//! patient's account, the patient responsibility), even when they are down or this process
//! restarts. So remittance writes those calls to its outbox in the same transaction as the
//! posting ([`enqueue_adjudication`], [`enqueue_patient_responsibility`],
//! [`enqueue_open_account`]), and a relay (started by the binary from remittance's
//! `OutboxDelivery`, see [`crate::start`]) delivers them with [`Deliveries`] until the receiver
//! accepts them. Receivers deduplicate by the idempotency key, which is the outbox message key,
//! so delivery is exactly once in effect.

use std::future::Future;

use medbill_proto::claims::v1 as claims_pb;
use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient;
use medbill_proto::common::v1 as common;
use medbill_runtime::auth::attach_bearer;
use medbill_runtime::client::TracedChannel;
use medbill_runtime::credentials::{OutgoingTokenError, OutgoingTokens};
use medbill_runtime::service::Destination;
use medbill_storage::outbox::{Deliver, DeliveryError, Enqueued, OutboxMessage};
use medbill_storage::{StorageError, Tx};
use prost::Message;
use tonic::Code;

/// The outbox destinations remittance delivers to.
pub const DESTINATIONS: &[Destination] = &[
    Destination::CollectionsOpenAccount,
    Destination::ClaimsApplyAdjudication,
    Destination::CollectionsPostPatientResponsibility,
];

/// Writes, in the caller's transaction, the ApplyAdjudication call for one posted claim payment;
/// `request.idempotency_key` is the message key claims deduplicates by.
pub async fn enqueue_adjudication(
    tx: &mut Tx,
    tenant: &str,
    request: &claims_pb::ApplyAdjudicationRequest,
) -> Result<Enqueued, StorageError> {
    Destination::ClaimsApplyAdjudication
        .enqueue(
            tx,
            tenant,
            &request.idempotency_key,
            &request.encode_to_vec(),
        )
        .await
}

/// Writes, in the caller's transaction, many already encoded calls to `destination` as
/// `(idempotency key, encoded request)` pairs, with multi-row INSERTs (posting a large ERA
/// enqueues two messages per claim payment); a key already enqueued is skipped.
pub async fn enqueue_many(
    tx: &mut Tx,
    tenant: &str,
    destination: Destination,
    messages: &[(String, Vec<u8>)],
) -> Result<u64, StorageError> {
    medbill_storage::outbox::enqueue_many(tx, tenant, destination.as_str(), messages).await
}

/// Writes, in the caller's transaction, the PostPatientResponsibility call for one posted claim
/// payment; `request.idempotency_key` is the message key collections deduplicates by.
pub async fn enqueue_patient_responsibility(
    tx: &mut Tx,
    tenant: &str,
    request: &pb::PostPatientResponsibilityRequest,
) -> Result<Enqueued, StorageError> {
    Destination::CollectionsPostPatientResponsibility
        .enqueue(
            tx,
            tenant,
            &request.idempotency_key,
            &request.encode_to_vec(),
        )
        .await
}

/// Writes, in the caller's transaction, a request that collections open an account for
/// `patient_ref`; `key` is the idempotency key collections deduplicates by.
pub async fn enqueue_open_account(
    tx: &mut Tx,
    tenant: &str,
    key: &str,
    patient_ref: &str,
) -> Result<Enqueued, StorageError> {
    let request = pb::OpenAccountRequest {
        idempotency_key: key.to_owned(),
        patient_ref: patient_ref.to_owned(),
        guarantor_ref: String::new(),
    };
    Destination::CollectionsOpenAccount
        .enqueue(tx, tenant, key, &request.encode_to_vec())
        .await
}

/// Delivers remittance's outbox messages to the collections service, calling as the
/// message's tenant.
#[derive(Clone)]
pub struct CollectionsDelivery {
    client: CollectionsServiceClient<TracedChannel>,
    tokens: OutgoingTokens,
}

impl std::fmt::Debug for CollectionsDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectionsDelivery")
            .finish_non_exhaustive()
    }
}

impl CollectionsDelivery {
    /// Builds the delivery over a channel to collections; `tokens` gives each tenant's token
    /// (in dev mode, with no tokens, calls go without one and act for the default tenant).
    pub fn new(channel: TracedChannel, tokens: impl Into<OutgoingTokens>) -> Self {
        Self {
            client: CollectionsServiceClient::new(channel),
            tokens: tokens.into(),
        }
    }
}

/// Builds a call as `tenant` (its token attached unless in dev mode).
async fn request<T>(
    tokens: &OutgoingTokens,
    tenant: &str,
    body: T,
) -> Result<tonic::Request<T>, DeliveryError> {
    let mut request = tonic::Request::new(body);
    match tokens.for_tenant(tenant).await {
        Ok(Some(token)) => attach_bearer(&mut request, &token)
            .map_err(|status| DeliveryError::Permanent(status.message().to_owned()))?,
        Ok(None) => {}
        // Permanent until configured: retrying cannot conjure a token.
        Err(e @ OutgoingTokenError::NotConfigured { .. }) => {
            return Err(DeliveryError::Permanent(e.to_string()));
        }
        // The identity provider may answer on a later attempt.
        Err(e @ OutgoingTokenError::Provider(_)) => {
            return Err(DeliveryError::Retryable(e.to_string()));
        }
    }
    Ok(request)
}

fn decode<M: prost::Message + Default>(message: &OutboxMessage) -> Result<M, DeliveryError> {
    M::decode(message.payload.as_slice())
        .map_err(|e| DeliveryError::Permanent(format!("undecodable payload: {e}")))
}

/// Delivers remittance's outbox messages to the claims service (ApplyAdjudication), calling as
/// the message's tenant.
#[derive(Clone)]
pub struct ClaimsDelivery {
    client: ClaimsServiceClient<TracedChannel>,
    tokens: OutgoingTokens,
}

impl std::fmt::Debug for ClaimsDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimsDelivery").finish_non_exhaustive()
    }
}

impl ClaimsDelivery {
    /// Builds the delivery over a channel to claims; `tokens` gives each tenant's token.
    pub fn new(channel: TracedChannel, tokens: impl Into<OutgoingTokens>) -> Self {
        Self {
            client: ClaimsServiceClient::new(channel),
            tokens: tokens.into(),
        }
    }
}

/// Messages sent per batch call (ApplyAdjudications, PostPatientResponsibilities: the kit's cap).
pub const MESSAGES_PER_CALL: usize = medbill_runtime::batch::MAX_BATCH_ITEMS;

/// Decodes each message's request for a batch call; one that does not decode fails alone.
fn decoded<Req: Message + Default>(
    messages: &[&OutboxMessage],
) -> (Vec<Req>, Vec<Option<Result<(), DeliveryError>>>) {
    let mut items = Vec::with_capacity(messages.len());
    let mut failed = Vec::with_capacity(messages.len());
    for message in messages {
        match decode::<Req>(message) {
            Ok(item) => {
                items.push(item);
                failed.push(None);
            }
            Err(e) => failed.push(Some(Err(e))),
        }
    }
    (items, failed)
}

/// Matches a batch call's answer (one result per item sent, in order) back to the messages.
fn matched(
    failed: Vec<Option<Result<(), DeliveryError>>>,
    mut results: impl Iterator<Item = Result<(), tonic::Status>>,
    error: fn(tonic::Status) -> DeliveryError,
) -> Vec<Result<(), DeliveryError>> {
    failed
        .into_iter()
        .map(|decode_failure| match decode_failure {
            Some(failed) => failed,
            None => match results.next() {
                Some(result) => result.map_err(error),
                None => Err(DeliveryError::Retryable(
                    "the batch call answered no result for the message".to_owned(),
                )),
            },
        })
        .collect()
}

/// An item's failure as the receiver reported it.
fn item_status(e: common::ItemError) -> tonic::Status {
    tonic::Status::new(Code::from(e.code), e.message)
}

/// Delivers a pass through a batch RPC: the messages to `destination` in calls of up to
/// [`MESSAGES_PER_CALL`], one tenant per call (the tenant is the caller's), every call at once;
/// any other message alone through `single`. Outcomes in message order.
async fn in_calls<'m, D, F, Fut>(
    single: &D,
    messages: &'m [OutboxMessage],
    destination: Destination,
    call: F,
) -> Vec<Result<(), DeliveryError>>
where
    D: Deliver,
    F: Fn(&'m str, Vec<&'m OutboxMessage>) -> Fut,
    Fut: Future<Output = Vec<Result<(), DeliveryError>>>,
{
    let mut calls: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut alone = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        if Destination::parse(&message.destination) != Some(destination) {
            alone.push(i);
            continue;
        }
        match calls.iter_mut().find(|(tenant, indices)| {
            *tenant == message.tenant_id && indices.len() < MESSAGES_PER_CALL
        }) {
            Some((_, indices)) => indices.push(i),
            None => calls.push((message.tenant_id.as_str(), vec![i])),
        }
    }
    let batched =
        futures::future::join_all(calls.iter().map(|(tenant, indices)| {
            call(tenant, indices.iter().map(|&i| &messages[i]).collect())
        }));
    let singles = futures::future::join_all(alone.iter().map(|&i| single.deliver(&messages[i])));
    let (batched, singles) = futures::future::join(batched, singles).await;
    let mut outcomes: Vec<Option<Result<(), DeliveryError>>> = vec![None; messages.len()];
    for ((_, indices), results) in calls.iter().zip(batched) {
        for (&i, result) in indices.iter().zip(results) {
            outcomes[i] = Some(result);
        }
    }
    for (&i, result) in alone.iter().zip(singles) {
        outcomes[i] = Some(result);
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(DeliveryError::Retryable("not delivered".into()))))
        .collect()
}

impl ClaimsDelivery {
    /// Sends one tenant's adjudications in one ApplyAdjudications call and returns each one's
    /// outcome, in order. A claims service without the batch RPC (an older version during an
    /// upgrade) gets them one by one.
    async fn deliver_adjudications(
        &self,
        tenant: &str,
        messages: Vec<&OutboxMessage>,
    ) -> Vec<Result<(), DeliveryError>> {
        let (items, failed) = decoded::<claims_pb::ApplyAdjudicationRequest>(&messages);
        let answer = match request(
            &self.tokens,
            tenant,
            claims_pb::ApplyAdjudicationsRequest { items },
        )
        .await
        {
            Ok(call) => self.client.clone().apply_adjudications(call).await,
            Err(e) => return vec![Err(e); messages.len()],
        };
        let results = match answer {
            Ok(response) => response.into_inner().results,
            Err(status) if status.code() == Code::Unimplemented => {
                return futures::future::join_all(messages.iter().map(|m| self.deliver(m))).await;
            }
            Err(status) => return vec![Err(adjudication_error(status)); messages.len()],
        };
        use claims_pb::apply_adjudication_result::Outcome;
        let results = results.into_iter().map(|r| match r.outcome {
            Some(Outcome::Applied(_)) => Ok(()),
            Some(Outcome::Error(e)) => Err(item_status(e)),
            None => Err(tonic::Status::internal("no outcome")),
        });
        matched(failed, results, adjudication_error)
    }
}

/// Sorts claims' answer to an adjudication: as [`classify`], but FAILED_PRECONDITION is retried,
/// since the claim may wait for an earlier message of its own (a reversal delivered after the
/// correction that follows it).
fn adjudication_error(status: tonic::Status) -> DeliveryError {
    match status.code() {
        Code::FailedPrecondition => {
            DeliveryError::Retryable(format!("{:?}: {}", status.code(), status.message()))
        }
        _ => classify(status),
    }
}

impl Deliver for ClaimsDelivery {
    async fn deliver(&self, message: &OutboxMessage) -> Result<(), DeliveryError> {
        match Destination::parse(&message.destination) {
            Some(Destination::ClaimsApplyAdjudication) => {
                let body: claims_pb::ApplyAdjudicationRequest = decode(message)?;
                let request = request(&self.tokens, &message.tenant_id, body).await?;
                self.client
                    .clone()
                    .apply_adjudication(request)
                    .await
                    .map(drop)
                    .map_err(adjudication_error)
            }
            _ => Err(DeliveryError::Permanent(format!(
                "claims delivery does not take outbox destination {}",
                message.destination
            ))),
        }
    }

    /// Adjudications go in ApplyAdjudications calls (see [`in_calls`]); anything else alone.
    async fn deliver_batch(&self, messages: &[OutboxMessage]) -> Vec<Result<(), DeliveryError>> {
        in_calls(
            self,
            messages,
            Destination::ClaimsApplyAdjudication,
            |tenant, part| self.deliver_adjudications(tenant, part),
        )
        .await
    }
}

/// Every delivery remittance makes: each message goes to its receiver.
#[derive(Clone, Debug)]
pub struct Deliveries {
    /// To claims.
    pub claims: ClaimsDelivery,
    /// To collections.
    pub collections: CollectionsDelivery,
}

impl Deliveries {
    fn to_claims(message: &OutboxMessage) -> bool {
        Destination::parse(&message.destination).map(Destination::receiver)
            == Some(medbill_runtime::ServiceKind::Claims)
    }
}

impl Deliver for Deliveries {
    async fn deliver(&self, message: &OutboxMessage) -> Result<(), DeliveryError> {
        if Self::to_claims(message) {
            self.claims.deliver(message).await
        } else {
            self.collections.deliver(message).await
        }
    }

    /// Each receiver's share of the pass goes through its own batch path, both at once.
    async fn deliver_batch(&self, messages: &[OutboxMessage]) -> Vec<Result<(), DeliveryError>> {
        let (claims, collections): (Vec<OutboxMessage>, Vec<OutboxMessage>) =
            messages.iter().cloned().partition(Self::to_claims);
        let (claims, collections) = futures::future::join(
            self.claims.deliver_batch(&claims),
            self.collections.deliver_batch(&collections),
        )
        .await;
        let (mut claims, mut collections) = (claims.into_iter(), collections.into_iter());
        messages
            .iter()
            .map(|m| {
                let next = if Self::to_claims(m) {
                    claims.next()
                } else {
                    collections.next()
                };
                next.unwrap_or_else(|| Err(DeliveryError::Retryable("not delivered".into())))
            })
            .collect()
    }
}

impl Deliver for CollectionsDelivery {
    async fn deliver(&self, message: &OutboxMessage) -> Result<(), DeliveryError> {
        match Destination::parse(&message.destination) {
            Some(Destination::CollectionsOpenAccount) => {
                let body: pb::OpenAccountRequest = decode(message)?;
                let request = request(&self.tokens, &message.tenant_id, body).await?;
                self.client
                    .clone()
                    .open_account(request)
                    .await
                    .map(drop)
                    .map_err(classify)
            }
            Some(Destination::CollectionsPostPatientResponsibility) => {
                let body: pb::PostPatientResponsibilityRequest = decode(message)?;
                let request = request(&self.tokens, &message.tenant_id, body).await?;
                self.client
                    .clone()
                    .post_patient_responsibility(request)
                    .await
                    .map(drop)
                    .map_err(classify)
            }
            _ => Err(DeliveryError::Permanent(format!(
                "remittance does not deliver to outbox destination {}",
                message.destination
            ))),
        }
    }

    /// Patient responsibility goes in PostPatientResponsibilities calls (see [`in_calls`]);
    /// anything else (opening an account) alone.
    async fn deliver_batch(&self, messages: &[OutboxMessage]) -> Vec<Result<(), DeliveryError>> {
        in_calls(
            self,
            messages,
            Destination::CollectionsPostPatientResponsibility,
            |tenant, part| self.deliver_responsibilities(tenant, part),
        )
        .await
    }
}

impl CollectionsDelivery {
    /// Sends one tenant's patient responsibilities in one PostPatientResponsibilities call and
    /// returns each one's outcome, in order; a collections service without the batch RPC gets
    /// them one by one.
    async fn deliver_responsibilities(
        &self,
        tenant: &str,
        messages: Vec<&OutboxMessage>,
    ) -> Vec<Result<(), DeliveryError>> {
        let (items, failed) = decoded::<pb::PostPatientResponsibilityRequest>(&messages);
        let answer = match request(
            &self.tokens,
            tenant,
            pb::PostPatientResponsibilitiesRequest { items },
        )
        .await
        {
            Ok(call) => {
                self.client
                    .clone()
                    .post_patient_responsibilities(call)
                    .await
            }
            Err(e) => return vec![Err(e); messages.len()],
        };
        let results = match answer {
            Ok(response) => response.into_inner().results,
            Err(status) if status.code() == Code::Unimplemented => {
                return futures::future::join_all(messages.iter().map(|m| self.deliver(m))).await;
            }
            Err(status) => return vec![Err(classify(status)); messages.len()],
        };
        use pb::post_patient_responsibility_result::Outcome;
        let results = results.into_iter().map(|r| match r.outcome {
            Some(Outcome::Response(_)) => Ok(()),
            Some(Outcome::Error(e)) => Err(item_status(e)),
            None => Err(tonic::Status::internal("no outcome")),
        });
        matched(failed, results, classify)
    }
}

/// Sorts a receiver's answer into worth-retrying and not. UNIMPLEMENTED is retried: a receiver
/// of an older version (during an upgrade) must not make a posting's message dead.
fn classify(status: tonic::Status) -> DeliveryError {
    let detail = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::Unimplemented
        | Code::Unavailable
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Cancelled
        | Code::Unknown => DeliveryError::Retryable(detail),
        _ => DeliveryError::Permanent(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_statuses_are_retried_and_request_errors_are_not() {
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
            Code::Unimplemented,
        ] {
            assert!(matches!(
                classify(tonic::Status::new(code, "x")),
                DeliveryError::Retryable(_)
            ));
        }
        for code in [
            Code::InvalidArgument,
            Code::FailedPrecondition,
            Code::Unauthenticated,
        ] {
            assert!(matches!(
                classify(tonic::Status::new(code, "x")),
                DeliveryError::Permanent(_)
            ));
        }
    }
}
