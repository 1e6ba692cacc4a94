//! Delivery of remittance's outbox messages to the collections service over gRPC.
//!
//! Posting an ERA must not lose what it owes collections (a patient's account, the patient
//! responsibility), even when collections is down or this process restarts. So remittance
//! writes those calls to its outbox in the same transaction as the posting
//! ([`enqueue_open_account`]), and a relay (started by the binary from remittance's
//! `OutboxDelivery`, see [`crate::start`]) delivers them with [`CollectionsDelivery`] until
//! collections accepts them. Collections deduplicates by the idempotency key, which is the
//! outbox message key, so delivery is exactly once in effect.

use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient;
use medbill_runtime::auth::attach_bearer;
use medbill_runtime::client::TracedChannel;
use medbill_runtime::config::AuthConfig;
use medbill_runtime::service::Destination;
use medbill_storage::outbox::{Deliver, DeliveryError, Enqueued, OutboxMessage};
use medbill_storage::{StorageError, Tx};
use prost::Message as _;
use tonic::Code;

/// The outbox destinations remittance delivers to.
pub const DESTINATIONS: &[Destination] = &[Destination::CollectionsOpenAccount];

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
    auth: AuthConfig,
}

impl std::fmt::Debug for CollectionsDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectionsDelivery")
            .finish_non_exhaustive()
    }
}

impl CollectionsDelivery {
    /// Builds the delivery over a channel to collections; `auth` gives each tenant's token
    /// (in dev mode, with no tokens, calls go without one and act for the default tenant).
    pub fn new(channel: TracedChannel, auth: AuthConfig) -> Self {
        Self {
            client: CollectionsServiceClient::new(channel),
            auth,
        }
    }

    fn request<T>(&self, tenant: &str, body: T) -> Result<tonic::Request<T>, DeliveryError> {
        let mut request = tonic::Request::new(body);
        if !self.auth.is_dev_mode() {
            let token = self.auth.token_for_tenant(tenant).ok_or_else(|| {
                // Permanent until configured: retrying cannot conjure a token.
                DeliveryError::Permanent(format!("no token is configured for tenant {tenant}"))
            })?;
            attach_bearer(&mut request, token)
                .map_err(|status| DeliveryError::Permanent(status.message().to_owned()))?;
        }
        Ok(request)
    }
}

impl Deliver for CollectionsDelivery {
    async fn deliver(&self, message: &OutboxMessage) -> Result<(), DeliveryError> {
        match Destination::parse(&message.destination) {
            Some(Destination::CollectionsOpenAccount) => {
                let body = pb::OpenAccountRequest::decode(message.payload.as_slice())
                    .map_err(|e| DeliveryError::Permanent(format!("undecodable payload: {e}")))?;
                let request = self.request(&message.tenant_id, body)?;
                self.client
                    .clone()
                    .open_account(request)
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
}

/// Sorts a receiver's answer into worth-retrying and not.
fn classify(status: tonic::Status) -> DeliveryError {
    let detail = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::Unavailable
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
