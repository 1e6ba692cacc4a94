//! Outbox destinations (one registry) and the delivery a service hands the binary.
//!
//! A call to another service that must not be lost is written to the sender's outbox in the
//! same transaction as the change that causes it ([`Destination::enqueue`]) and delivered by a
//! relay ([`medbill_storage::outbox::Relay`]). The sender declares what it delivers with an
//! [`OutboxDelivery`] in its [`super::ServiceParts`]; the binary starts one relay for every
//! service that has one. The receiver declares the destinations it receives
//! ([`super::ServiceParts::receives`]) and deduplicates by the message key (the request's
//! idempotency key).
//!
//! Adding a destination: add a variant to [`Destination`] with its receiver, RPC and stored
//! name; enqueue it from the sender's store; match it in the sender's [`Deliver`]
//! implementation; list it in the sender's [`OutboxDelivery`] and in the receiver's
//! `receives`.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use medbill_storage::outbox::{
    self, Deliver, DeliveryError, Destinations, Enqueued, OutboxMessage, Relay, RelayConfig,
};
use medbill_storage::{Database, StorageError, Tx};

use super::background::BackgroundTask;
use crate::config::ServiceKind;

/// Where an outbox message goes: the receiving service and the RPC that takes it.
///
/// The registry of every destination in the suite. [`Destination::as_str`] is what the outbox
/// table stores, so a variant's stored name never changes once released (messages in flight
/// carry it).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    /// `CollectionsService/OpenAccount`: remittance asks collections to open the account of a
    /// patient an ERA leaves a balance for.
    CollectionsOpenAccount,
    /// `ClaimsService/ApplyAdjudication`: remittance applies a posted ERA claim payment to its
    /// claim (one message key per claim payment).
    ClaimsApplyAdjudication,
    /// `CollectionsService/PostPatientResponsibility`: remittance moves a posted claim payment's
    /// patient responsibility (group PR) to the patient's account.
    CollectionsPostPatientResponsibility,
}

impl Destination {
    /// Every destination.
    pub const ALL: &'static [Destination] = &[
        Destination::CollectionsOpenAccount,
        Destination::ClaimsApplyAdjudication,
        Destination::CollectionsPostPatientResponsibility,
    ];

    /// Returns the service that receives it.
    pub const fn receiver(self) -> ServiceKind {
        match self {
            Destination::CollectionsOpenAccount
            | Destination::CollectionsPostPatientResponsibility => ServiceKind::Collections,
            Destination::ClaimsApplyAdjudication => ServiceKind::Claims,
        }
    }

    /// Returns the receiver's RPC (method name) that takes the message's payload.
    pub const fn rpc(self) -> &'static str {
        match self {
            Destination::CollectionsOpenAccount => "OpenAccount",
            Destination::ClaimsApplyAdjudication => "ApplyAdjudication",
            Destination::CollectionsPostPatientResponsibility => "PostPatientResponsibility",
        }
    }

    /// Returns the name stored in the outbox: `<receiver>.<Rpc>`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Destination::CollectionsOpenAccount => "collections.OpenAccount",
            Destination::ClaimsApplyAdjudication => "claims.ApplyAdjudication",
            Destination::CollectionsPostPatientResponsibility => {
                "collections.PostPatientResponsibility"
            }
        }
    }

    /// Returns the destination stored as `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|d| d.as_str() == name)
    }

    /// Writes a message for this destination in the caller's transaction (see
    /// [`medbill_storage::outbox::enqueue`]): `message_key` is the idempotency key the receiver
    /// deduplicates by, `payload` the encoded request.
    pub async fn enqueue(
        self,
        tx: &mut Tx,
        tenant_id: &str,
        message_key: &str,
        payload: &[u8],
    ) -> Result<Enqueued, StorageError> {
        outbox::enqueue(tx, tenant_id, self.as_str(), message_key, payload).await
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// [`Deliver`] without its generic future, so deliveries of different types fit one list.
trait ErasedDeliver: Send + Sync + 'static {
    fn deliver_boxed<'a>(
        &'a self,
        message: &'a OutboxMessage,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;

    fn deliver_batch_boxed<'a>(
        &'a self,
        messages: &'a [OutboxMessage],
    ) -> BoxFuture<'a, Vec<Result<(), DeliveryError>>>;
}

impl<D: Deliver> ErasedDeliver for D {
    fn deliver_boxed<'a>(
        &'a self,
        message: &'a OutboxMessage,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(Deliver::deliver(self, message))
    }

    fn deliver_batch_boxed<'a>(
        &'a self,
        messages: &'a [OutboxMessage],
    ) -> BoxFuture<'a, Vec<Result<(), DeliveryError>>> {
        Box::pin(Deliver::deliver_batch(self, messages))
    }
}

/// What a service delivers from its outbox: the database whose outbox it drains, the
/// destinations it delivers to, and the [`Deliver`] implementation that calls the receivers.
pub struct OutboxDelivery {
    db: Database,
    destinations: Vec<Destination>,
    deliver: Arc<dyn ErasedDeliver>,
}

impl fmt::Debug for OutboxDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxDelivery")
            .field("destinations", &self.destinations)
            .finish_non_exhaustive()
    }
}

impl OutboxDelivery {
    /// Declares that the outbox of `db` holds messages for `destinations`, delivered by
    /// `deliver`. A message for any other destination is dead-lettered (it cannot be
    /// delivered by this service).
    pub fn new<D: Deliver>(db: Database, destinations: &[Destination], deliver: D) -> Self {
        Self {
            db,
            destinations: destinations.to_vec(),
            deliver: Arc::new(deliver),
        }
    }

    /// Returns the destinations delivered.
    pub fn destinations(&self) -> &[Destination] {
        &self.destinations
    }

    /// Returns the relays as a background task named `"<service> outbox relay"`: one relay per
    /// declared destination, so a slow receiver never holds up the passes of a fast one, and
    /// one for any other destination (which it dead-letters).
    ///
    /// Each relay leases the messages it claims (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so any
    /// number of replicas may run them. On shutdown each records the delivery in hand first.
    pub fn into_task(self, service: ServiceKind, config: &RelayConfig) -> BackgroundTask {
        let config = config.clone();
        let names: Vec<String> = self
            .destinations
            .iter()
            .map(|d| d.as_str().to_owned())
            .collect();
        let deliver = Arc::new(Checked {
            destinations: self.destinations,
            inner: self.deliver,
        });
        let db = self.db;
        BackgroundTask::new(
            format!("{service} outbox relay"),
            move |shutdown| async move {
                let scopes = names
                    .iter()
                    .cloned()
                    .map(Destinations::Only)
                    .chain([Destinations::Except(names.clone())]);
                let relays: Vec<_> = scopes
                    .map(|scope| {
                        Relay::new(db.clone(), Arc::clone(&deliver), config.clone())
                            .for_destinations(scope)
                            .spawn()
                    })
                    .collect();
                shutdown.requested().await;
                futures::future::join_all(relays.into_iter().map(|r| r.shutdown())).await;
                Ok(())
            },
        )
    }
}

/// Delivers only the declared destinations.
struct Checked {
    destinations: Vec<Destination>,
    inner: Arc<dyn ErasedDeliver>,
}

impl Checked {
    fn declares(&self, message: &OutboxMessage) -> bool {
        Destination::parse(&message.destination).is_some_and(|d| self.destinations.contains(&d))
    }

    fn undeclared(message: &OutboxMessage) -> DeliveryError {
        DeliveryError::Permanent(format!(
            "outbox destination {} is not delivered by this service",
            message.destination
        ))
    }
}

impl Deliver for Checked {
    async fn deliver(&self, message: &OutboxMessage) -> Result<(), DeliveryError> {
        if self.declares(message) {
            self.inner.deliver_boxed(message).await
        } else {
            Err(Self::undeclared(message))
        }
    }

    async fn deliver_batch(&self, messages: &[OutboxMessage]) -> Vec<Result<(), DeliveryError>> {
        let (declared, undeclared): (Vec<_>, Vec<_>) =
            messages.iter().partition(|m| self.declares(m));
        if undeclared.is_empty() {
            return self.inner.deliver_batch_boxed(messages).await;
        }
        let declared: Vec<OutboxMessage> = declared.into_iter().cloned().collect();
        let mut outcomes = self.inner.deliver_batch_boxed(&declared).await.into_iter();
        messages
            .iter()
            .map(|m| {
                if self.declares(m) {
                    outcomes.next().unwrap_or_else(|| {
                        Err(DeliveryError::Retryable(
                            "no outcome for the message".into(),
                        ))
                    })
                } else {
                    Err(Self::undeclared(m))
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_round_trips_and_names_receivers() {
        for &d in Destination::ALL {
            assert_eq!(Destination::parse(d.as_str()), Some(d));
            assert_eq!(
                d.as_str(),
                format!("{}.{}", d.receiver(), d.rpc()),
                "stored name is <receiver>.<Rpc>"
            );
        }
        assert_eq!(Destination::parse("collections.OpenAcount"), None);
    }

    struct Always;

    impl Deliver for Always {
        async fn deliver(&self, _: &OutboxMessage) -> Result<(), DeliveryError> {
            Ok(())
        }
    }

    fn message(destination: &str) -> OutboxMessage {
        OutboxMessage {
            id: "m1".into(),
            tenant_id: "t".into(),
            destination: destination.into(),
            message_key: "k".into(),
            payload: Vec::new(),
            attempts: 1,
            created_at: 0,
        }
    }

    #[tokio::test]
    async fn only_declared_destinations_are_delivered() {
        let checked = Checked {
            destinations: vec![Destination::CollectionsOpenAccount],
            inner: Arc::new(Always),
        };
        assert_eq!(
            checked.deliver(&message("collections.OpenAccount")).await,
            Ok(())
        );
        let err = checked
            .deliver(&message("claims.ApplyAdjudication"))
            .await
            .expect_err("not declared");
        assert!(
            matches!(&err, DeliveryError::Permanent(m) if m.contains("claims.ApplyAdjudication")),
            "{err:?}"
        );
        let none = Checked {
            destinations: Vec::new(),
            inner: Arc::new(Always),
        };
        assert!(
            none.deliver(&message("collections.OpenAccount"))
                .await
                .is_err()
        );
    }
}
