//! The one way a mutating RPC is made idempotent.
//!
//! Every mutating request carries an `idempotency_key` ([`IdempotentRequest`], implemented for
//! each such request from the descriptors). One rule each, here and nowhere else:
//!
//! - **scope**: the RPC's full gRPC method name (`medbill.claims.v1.ClaimsService/CreateClaim`),
//!   so one key may be used once per RPC;
//! - **fingerprint**: SHA-256 of the request encoded with its key cleared;
//! - **replay**: the same key with the same request returns the first call's response message,
//!   stored with the effect in one transaction, and writes nothing;
//! - **conflict**: the same key with a different request is ALREADY_EXISTS naming the key.
//!
//! ```ignore
//! let call = IdempotentCall::of(&req)?;                  // validates the key
//! let mut op = match call.begin(&self.db, &tenant).await? {
//!     Begun::Replay(response) => return Ok(Response::new(response)),
//!     Begun::New(op) => op,
//! };
//! let claim = self.store.insert_claim(op.tx(), &tenant, &new).await?;  // writes, outbox
//! let response = pb::CreateClaimResponse { claim: Some(to_proto(&claim)) };
//! op.commit(&response).await?;                            // key + writes, atomically
//! Ok(Response::new(response))
//! ```
//!
//! The call's audit record (see [`crate::audit`]) is written with the change: `commit` and
//! `complete` add it to the transaction, so the record exists exactly when the change does.
//!
//! A handler that must do slow outside work first (a payer call) asks [`IdempotentCall::replayed`]
//! before it, so a retry never repeats the work and a reused key is refused at once; it then
//! begins as above, which settles a race with a concurrent first call.

use std::marker::PhantomData;
use std::sync::Arc;

use medbill_domain::{IdempotencyKey, TenantId};
pub use medbill_proto::IdempotentRequest;
use medbill_proto::audit::AuditSchema;
use medbill_storage::Database;
use medbill_storage::idempotency::{self, Begin, Fingerprint, Lookup, Recorded};
use prost::Message;

use crate::ServiceError;
use crate::audit::AuditContext;
use crate::fields::{idempotency_key, key_reused};

/// One mutating call: its scope, its validated key and the fingerprint of its request.
#[derive(Debug, Clone)]
pub struct IdempotentCall {
    scope: &'static str,
    key: IdempotencyKey,
    fingerprint: Fingerprint,
    /// The audit context of the call being served, taken when the call is read (in the
    /// handler's task; the write may run in a group commit's).
    audit: Option<Arc<AuditContext>>,
}

impl IdempotentCall {
    /// Reads the call from its request: the scope from the RPC, the key (required; an
    /// INVALID_ARGUMENT naming `idempotency_key` otherwise) and the request's fingerprint.
    pub fn of<R: IdempotentRequest>(request: &R) -> Result<Self, ServiceError> {
        Ok(Self {
            scope: R::METHOD,
            key: idempotency_key(request.idempotency_key())?,
            fingerprint: Fingerprint::of(&request.canonical_bytes()),
            audit: crate::audit::current(),
        })
    }

    /// Builds the call of an RPC whose request is not one message (a client stream): `scope` is
    /// its full method name and `canonical` the bytes that stand for the whole request by the
    /// same rule (its header encoded with the key cleared, then what the stream carried).
    pub fn from_parts(
        scope: &'static str,
        key: &str,
        canonical: &[u8],
    ) -> Result<Self, ServiceError> {
        Ok(Self {
            scope,
            key: idempotency_key(key)?,
            fingerprint: Fingerprint::of(canonical),
            audit: crate::audit::current(),
        })
    }

    /// Returns the validated key.
    pub fn key(&self) -> &IdempotencyKey {
        &self.key
    }

    /// Returns the scope (the full gRPC method name).
    pub fn scope(&self) -> &'static str {
        self.scope
    }

    /// Returns the fingerprint of the request.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// Returns the first call's response when this call repeats it, `None` when the key is new
    /// (or its first call has not committed), ALREADY_EXISTS when the key was used for a
    /// different request. Reads only; reserves nothing.
    pub async fn replayed<Resp: Message + Default>(
        &self,
        db: &Database,
        tenant: &TenantId,
    ) -> Result<Option<Resp>, ServiceError> {
        match idempotency::lookup(
            db,
            tenant.as_str(),
            self.scope,
            self.key.as_str(),
            &self.fingerprint,
        )
        .await?
        {
            Lookup::Absent => Ok(None),
            Lookup::Replay(bytes) => decode(self.scope, &bytes).map(Some),
            Lookup::Conflict => Err(key_reused(self.key.as_str())),
        }
    }

    /// Opens the call's transaction and reserves its key: [`Begun::New`] to do the work,
    /// [`Begun::Replay`] with the first call's response, or ALREADY_EXISTS for a reused key.
    pub async fn begin<Resp: Message + Default + AuditSchema>(
        &self,
        db: &Database,
        tenant: &TenantId,
    ) -> Result<Begun<Resp>, ServiceError> {
        match idempotency::begin(
            db,
            tenant.as_str(),
            self.scope,
            self.key.as_str(),
            &self.fingerprint,
        )
        .await?
        {
            Begin::New(inner) => Ok(Begun::New(Operation {
                inner,
                audit: self.audit.clone(),
                response: PhantomData,
            })),
            Begin::Replay(bytes) => decode(self.scope, &bytes).map(Begun::Replay),
            Begin::Conflict => Err(key_reused(self.key.as_str())),
        }
    }
}

impl IdempotentCall {
    /// Reserves the call's key in a transaction the caller owns (a group commit, see
    /// [`crate::group_commit`]): [`Reserved::New`] to do the work and complete it in the same
    /// transaction, [`Reserved::Replay`] with the first call's response, or ALREADY_EXISTS for a
    /// reused key. The same rules as [`IdempotentCall::begin`].
    pub async fn reserve<Resp: Message + Default + AuditSchema>(
        &self,
        tx: &mut medbill_storage::Tx,
        tenant: &TenantId,
    ) -> Result<Reserved<Resp>, ServiceError> {
        match idempotency::reserve(
            tx,
            tenant.as_str(),
            self.scope,
            self.key.as_str(),
            &self.fingerprint,
        )
        .await?
        {
            idempotency::Reservation::New(pending) => Ok(Reserved::New(Pending {
                inner: pending,
                audit: self.audit.clone(),
                response: PhantomData,
            })),
            idempotency::Reservation::Replay(bytes) => {
                decode(self.scope, &bytes).map(Reserved::Replay)
            }
            idempotency::Reservation::Conflict => Err(key_reused(self.key.as_str())),
        }
    }
}

/// The outcome of [`IdempotentCall::reserve`].
#[derive(Debug)]
#[must_use = "a new call must be completed; a replay returned"]
pub enum Reserved<Resp> {
    /// First time this key is seen: write in the same transaction, then [`Pending::complete`].
    New(Pending<Resp>),
    /// The same request was already processed: this is its response.
    Replay(Resp),
}

/// A key reserved in the caller's transaction, waiting for its response.
#[derive(Debug)]
pub struct Pending<Resp> {
    inner: idempotency::Pending,
    audit: Option<Arc<AuditContext>>,
    response: PhantomData<fn(Resp)>,
}

impl<Resp: Message + AuditSchema> Pending<Resp> {
    /// Stores `response` as the key's replay, and the call's audit record, in `tx` (the
    /// transaction that reserved it); they commit with the transaction's other writes.
    pub async fn complete(
        self,
        tx: &mut medbill_storage::Tx,
        response: &Resp,
    ) -> Result<(), ServiceError> {
        let encoded = response.encode_to_vec();
        if let Some(audit) = &self.audit {
            audit.record_in::<Resp>(tx, &encoded).await?;
        }
        idempotency::complete(tx, self.inner, &encoded).await?;
        if let Some(audit) = &self.audit {
            audit.mark_written();
        }
        Ok(())
    }
}

impl IdempotentCall {
    /// Answers a call that changes nothing but its own record (an answer from a cache): records
    /// the key with `response` in one statement and returns it, or the first call's response when
    /// this call repeats it, or ALREADY_EXISTS for a reused key. Cheaper than `begin` + `commit`
    /// (one round trip, no transaction), so a read-mostly path keeps its speed.
    pub async fn record<Resp: Message + Default>(
        &self,
        db: &Database,
        tenant: &TenantId,
        response: Resp,
    ) -> Result<Resp, ServiceError> {
        match idempotency::record(
            db,
            tenant.as_str(),
            self.scope,
            self.key.as_str(),
            &self.fingerprint,
            &response.encode_to_vec(),
        )
        .await?
        {
            Recorded::New => Ok(response),
            Recorded::Replay(bytes) => decode(self.scope, &bytes),
            Recorded::Conflict => Err(key_reused(self.key.as_str())),
        }
    }
}

/// The outcome of [`IdempotentCall::begin`].
#[derive(Debug)]
#[must_use = "a new call must be committed; a replay returned"]
pub enum Begun<Resp> {
    /// First time this key is seen: write through [`Operation::tx`], then commit the response.
    New(Operation<Resp>),
    /// The same request was already processed: this is its response; nothing was written.
    Replay(Resp),
}

/// A call's open transaction holding its reserved key; dropping it rolls everything back.
#[derive(Debug)]
pub struct Operation<Resp> {
    inner: idempotency::Operation,
    audit: Option<Arc<AuditContext>>,
    response: PhantomData<fn(Resp)>,
}

impl<Resp: Message + AuditSchema> Operation<Resp> {
    /// Returns the transaction for the call's writes and outbox messages.
    pub fn tx(&mut self) -> &mut medbill_storage::Tx {
        self.inner.tx()
    }

    /// Stores `response` as the key's replay and the call's audit record, and commits
    /// everything written, atomically.
    pub async fn commit(mut self, response: &Resp) -> Result<(), ServiceError> {
        let encoded = response.encode_to_vec();
        if let Some(audit) = &self.audit {
            audit.record_in::<Resp>(self.inner.tx(), &encoded).await?;
        }
        self.inner.commit(&encoded).await?;
        if let Some(audit) = &self.audit {
            audit.mark_written();
        }
        Ok(())
    }
}

fn decode<Resp: Message + Default>(scope: &str, bytes: &[u8]) -> Result<Resp, ServiceError> {
    Resp::decode(bytes).map_err(|e| {
        ServiceError::internal(format!("stored response of {scope} does not decode: {e}"))
    })
}
