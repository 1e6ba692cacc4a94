//! Persistence of claims: the [`ClaimStore`] trait and its one implementation, [`SqlClaimStore`], whose
//! queries are written once and run on PostgreSQL and SQLite (see `medbill_storage`'s store pattern).
//!
//! Writes run in the caller's transaction (the RPC's, which also holds its idempotency key):
//! a create writes the claim header, its diagnoses, lines and the first status-history entry; a
//! status change ([`ClaimStore::transition`]) checks the life cycle, updates the status only if
//! it is still the one read, and appends the history entry. One file per aggregate:
//!
//! - `claims.rs`: claims, their diagnoses and lines (create, get, list);
//! - `history.rs`: the status history and status changes;
//! - `providers.rs`: the tenant's providers and service facilities;
//! - `batches.rs`: submission batches, their control numbers and delivery outcomes;
//! - `scrub.rs`: the findings of each claim's latest scrub;
//! - `acknowledgements.rs`: TA1 / 999 / 277CA files and the changes they cause;
//! - `follow_up.rs`: [`FollowUpStore`], after submission: `adjudications.rs` (adjudications
//!   applied from ERAs), `links.rs` (corrected and voided claims, primary -> secondary claims),
//!   `follow_ups.rs` (276/277 follow-ups of unpaid claims), `events.rs` (history reads for
//!   ListClaimEvents and WatchClaims), `aging.rs` (insurance A/R aging).

mod acknowledgements;
mod adjudications;
mod aging;
mod batches;
mod claims;
mod events;
mod follow_up;
mod follow_ups;
mod history;
mod links;
mod providers;
mod scrub;

pub use follow_up::{AdjudicationInForce, FollowUpStore, NewAdjudication, WatchedChange};
pub use history::ClaimMove;

use std::sync::Arc;

use async_trait::async_trait;
use medbill_domain::{ClaimId, TenantId};
use medbill_runtime::ErrorCode;
use medbill_storage::{Database, StorageError, Tx};
use sqlx::migrate::Migrator;
use thiserror::Error;
use tonic::Code;

use crate::acknowledgements::NewAcknowledgement;
use crate::lifecycle::IllegalTransition;
use crate::model::{
    Claim, ClaimFilter, ClaimStatus, ClaimValidationError, NewClaim, ScrubFinding, StatusChange,
    StatusChangeSource, StatusMove,
};
use crate::providers::{NewProvider, Provider, ProviderKind};
use crate::submission::{BatchStatus, NewBatch, SubmissionBatch};

/// The PostgreSQL migrations of the claims service.
pub static PG_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");
/// The SQLite migrations of the claims service.
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// The storage namespace (PostgreSQL schema, SQLite file suffix) of the claims service.
pub const NAMESPACE: &str = "claims";

/// Most patient control numbers one GetClaimsByPatientControlNumbers call looks up.
pub const MAX_LOOKUP_NUMBERS: usize = 1_000;

/// Errors of the claims store; each names what is wrong precisely and declares its gRPC code.
#[derive(Debug, Error)]
pub enum ClaimStoreError {
    /// Another claim of the tenant already uses this CLM01.
    #[error("a claim with patient control number {0} already exists; CLM01 must be unique")]
    DuplicatePatientControlNumber(String),
    /// The claim breaks a validation rule.
    #[error("invalid claim.{}: {}", .0.field, .0.message)]
    Invalid(#[from] ClaimValidationError),
    /// The claim does not exist for the tenant.
    #[error("claim {0} not found")]
    NotFound(ClaimId),
    /// The life cycle does not allow the status change.
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    /// The claim's status changed between reading and updating it (a concurrent change).
    #[error("claim {claim_id} changed status concurrently (it was {expected}); retry the call")]
    ChangedConcurrently {
        /// The claim.
        claim_id: ClaimId,
        /// The status it had when read.
        expected: &'static str,
    },
    /// A provider with this NPI is already on file.
    #[error("provider {0} already exists; update it with UpdateProvider")]
    DuplicateProvider(String),
    /// No provider with this NPI is on file for the tenant.
    #[error("provider {0} not found")]
    ProviderNotFound(String),
    /// The claim was corrected or voided already (it has a successor).
    #[error("claim {0} was already corrected or voided; correct or void its successor instead")]
    AlreadySuperseded(ClaimId),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for ClaimStoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(StorageError::Database(e))
    }
}

impl ErrorCode for ClaimStoreError {
    fn error_code(&self) -> Code {
        match self {
            Self::DuplicatePatientControlNumber(_) | Self::DuplicateProvider(_) => {
                Code::AlreadyExists
            }
            Self::ProviderNotFound(_) => Code::NotFound,
            Self::Invalid(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::IllegalTransition(_) => Code::FailedPrecondition,
            Self::ChangedConcurrently { .. } => Code::Aborted,
            Self::AlreadySuperseded(_) => Code::FailedPrecondition,
            Self::Storage(e) => e.error_code(),
        }
    }

    fn client_message(&self) -> String {
        match self {
            Self::Storage(e) => e.client_message(),
            other => other.to_string(),
        }
    }
}

/// A status change asked of [`ClaimStore::transition`].
#[derive(Debug, Clone, Copy)]
pub struct NewStatus<'a> {
    /// The status to move to.
    pub to: ClaimStatus,
    /// What causes the change.
    pub source: StatusChangeSource,
    /// Id of the causing record (batch, acknowledgement, ERA), or "".
    pub source_id: &'a str,
    /// Plain-language reason (no PHI).
    pub reason: &'a str,
}

/// Rows of `per_row` bound values each that one multi-row statement carries: the SQLite bound
/// (`medbill_storage::filters::SQLITE_BINDS_PER_STATEMENT`) on both databases.
fn rows_per_statement(per_row: usize) -> usize {
    medbill_storage::filters::sqlite_rows_per_statement(per_row)
}

/// The `VALUES` rows of a multi-row INSERT whose rows all start with the tenant (`$1`) and then
/// carry `per_row` values each, numbered on from `$2`.
fn tenant_rows(rows: usize, per_row: usize) -> String {
    (0..rows)
        .map(|i| {
            let cells = medbill_storage::filters::placeholders(2 + per_row * i, per_row);
            format!("($1, {cells})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn corrupt(what: &'static str, detail: impl Into<String>) -> ClaimStoreError {
    StorageError::corrupt(what, detail).into()
}

/// Stores claims; every method is scoped to one tenant. Writes take the caller's transaction.
#[async_trait]
pub trait ClaimStore: FollowUpStore + Send + Sync {
    /// Returns the database the store writes to (the RPC opens its transaction there).
    fn database(&self) -> &Database;

    /// Creates a claim in status DRAFT in `tx` and returns it as it will be stored.
    async fn create_claim(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim: &NewClaim,
    ) -> Result<Claim, ClaimStoreError>;

    /// Creates claims in status DRAFT in `tx` and returns them as they will be stored, in
    /// order: a few multi-row statements for them all (CreateClaims), where
    /// [`ClaimStore::create_claim`] is the one-claim case. Any failure leaves the caller to roll
    /// back; a duplicate patient control number among many is not said to be whose.
    async fn create_claims(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claims: &[&NewClaim],
    ) -> Result<Vec<Claim>, ClaimStoreError>;

    /// Moves a claim to `change.to` in `tx` if the life cycle allows it from its current status
    /// (FAILED_PRECONDITION naming both otherwise), and appends the history entry.
    async fn transition(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim_id: ClaimId,
        change: NewStatus<'_>,
    ) -> Result<StatusMove, ClaimStoreError>;

    /// Replaces the claim's scrub findings (the latest scrub's, errors first) in `tx`; `at` is
    /// when it was scrubbed, in unix micros.
    async fn replace_scrub_findings(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim_id: ClaimId,
        findings: &[ScrubFinding],
        at: i64,
    ) -> Result<(), ClaimStoreError> {
        self.replace_scrub_findings_many(tx, tenant, &[(claim_id, findings)], at)
            .await
    }

    /// Replaces the scrub findings of every claim of `scrubs` (distinct) in `tx`, a few
    /// multi-row statements for them all.
    async fn replace_scrub_findings_many(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        scrubs: &[(ClaimId, &[ScrubFinding])],
        at: i64,
    ) -> Result<(), ClaimStoreError>;

    /// Moves each claim of `moves` (distinct) from the status it was read in to its own new one
    /// in `tx`: one conditional update per (from, to) pair and the history from one bump of the
    /// tenant's counter. Fails as [`ClaimStore::transition`] would for the first claim no longer
    /// in its status, after which the caller must roll `tx` back. Returns when they moved (unix
    /// micros).
    async fn move_claims(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        moves: &[ClaimMove<'_>],
    ) -> Result<i64, ClaimStoreError>;

    /// Returns (number, procedure code, units) of every line of the tenant's other claims (not
    /// `except`, not VOID, REJECTED or DENIED) that carries one of `numbers` as its own prior
    /// authorization number: the units those claims already billed under it.
    async fn authorization_units_used(
        &self,
        tenant: &TenantId,
        numbers: &[String],
        except: ClaimId,
    ) -> Result<Vec<(String, String, rust_decimal::Decimal)>, ClaimStoreError>;

    /// Returns the claim with this id, or `None` when the tenant has none.
    async fn get_claim(
        &self,
        tenant: &TenantId,
        id: ClaimId,
    ) -> Result<Option<Claim>, ClaimStoreError>;

    /// Returns up to `limit` claims matching `filter` with ids greater than `after`, in id order.
    async fn list_claims(
        &self,
        tenant: &TenantId,
        filter: &ClaimFilter,
        after: Option<ClaimId>,
        limit: u32,
    ) -> Result<Vec<Claim>, ClaimStoreError>;

    /// Returns every claim whose patient control number (CLM01) is one of `numbers` (at most
    /// [`MAX_LOOKUP_NUMBERS`]), in id order.
    async fn claims_by_patient_control_numbers(
        &self,
        tenant: &TenantId,
        numbers: &[String],
    ) -> Result<Vec<Claim>, ClaimStoreError>;

    /// Returns every claim of the tenant whose id is one of `ids` (at most
    /// [`MAX_LOOKUP_NUMBERS`]), in id order; an id with no claim is absent.
    async fn claims_by_ids(
        &self,
        tenant: &TenantId,
        ids: &[ClaimId],
    ) -> Result<Vec<Claim>, ClaimStoreError>;

    /// Returns a claim's status history, oldest first (empty when the tenant has no such claim).
    async fn status_history(
        &self,
        tenant: &TenantId,
        id: ClaimId,
    ) -> Result<Vec<StatusChange>, ClaimStoreError>;

    /// Returns up to `limit` status changes of the tenant with a sequence greater than
    /// `after_sequence`, in sequence order (what WatchClaims replays).
    async fn status_changes_after(
        &self,
        tenant: &TenantId,
        after_sequence: u64,
        limit: u32,
    ) -> Result<Vec<StatusChange>, ClaimStoreError>;

    /// Registers a provider in `tx`; [`ClaimStoreError::DuplicateProvider`] when its NPI is on file.
    async fn create_provider(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        provider: &NewProvider,
    ) -> Result<Provider, ClaimStoreError>;

    /// Replaces a provider's content in `tx`; [`ClaimStoreError::ProviderNotFound`] when its NPI is
    /// not on file.
    async fn update_provider(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        provider: &NewProvider,
    ) -> Result<Provider, ClaimStoreError>;

    /// Returns the provider with this NPI, or `None`.
    async fn get_provider(
        &self,
        tenant: &TenantId,
        npi: &str,
    ) -> Result<Option<Provider>, ClaimStoreError>;

    /// Returns the providers on file among `npis`, in NPI order (absent ones are left out).
    async fn providers(
        &self,
        tenant: &TenantId,
        npis: &[&str],
    ) -> Result<Vec<Provider>, ClaimStoreError>;

    /// Returns up to `limit` providers (of `kind` when given) with NPIs after `after`, in NPI order.
    async fn list_providers(
        &self,
        tenant: &TenantId,
        kind: Option<ProviderKind>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Provider>, ClaimStoreError>;

    /// Hands out the next interchange control number of a payer route in `tx` (the route's
    /// counter, shared by the tenants sending through it); it is not handed out again until the
    /// counter wraps to 1 after 999999999.
    async fn next_control_number(&self, tx: &mut Tx, route: &str) -> Result<u32, ClaimStoreError>;

    /// Stores a batch (CREATED, with its raw 837) and moves its claims READY -> SUBMITTED, in `tx`.
    async fn create_batch(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        batch: &NewBatch<'_>,
    ) -> Result<SubmissionBatch, ClaimStoreError>;

    /// Records a batch delivered (CREATED -> SENT) in `tx`.
    async fn batch_sent(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        batch_id: uuid::Uuid,
        file_name: &str,
    ) -> Result<(), ClaimStoreError>;

    /// Records a failed delivery (CREATED -> FAILED) and puts its claims back to READY, in `tx`.
    async fn batch_failed(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        batch_id: uuid::Uuid,
        error: &str,
    ) -> Result<(), ClaimStoreError>;

    /// Returns a batch, with its raw 837 when `include_content`.
    async fn get_batch(
        &self,
        tenant: &TenantId,
        batch_id: uuid::Uuid,
        include_content: bool,
    ) -> Result<Option<SubmissionBatch>, ClaimStoreError>;

    /// Returns (tenant, batch id) of batches of any tenant still CREATED and created before
    /// `before` (unix micros), oldest first: deliveries a crash interrupted.
    async fn undelivered_batches(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<(String, uuid::Uuid)>, ClaimStoreError>;

    /// Takes the redelivery of a batch still CREATED until `until` (unix micros) when no other
    /// process holds it at `now`; false when another does or the batch was delivered meanwhile.
    async fn lease_redelivery(
        &self,
        tenant: &str,
        batch_id: uuid::Uuid,
        now: i64,
        until: i64,
    ) -> Result<bool, ClaimStoreError>;

    /// The stored result (protobuf AcknowledgementResult) of the tenant's acknowledgement with
    /// this content hash, if one was ingested before.
    async fn acknowledgement_result(
        &self,
        tenant: &TenantId,
        sha256: &str,
    ) -> Result<Option<Vec<u8>>, ClaimStoreError>;

    /// Stores an acknowledgement in `tx`; false when the same content is already stored.
    async fn store_acknowledgement(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        ack: &NewAcknowledgement<'_>,
    ) -> Result<bool, ClaimStoreError>;

    /// The batch with this interchange control number, preferring `route` when given.
    async fn batch_with_control_number(
        &self,
        tenant: &TenantId,
        control: u32,
        route: Option<&str>,
    ) -> Result<Option<uuid::Uuid>, ClaimStoreError>;

    /// Sets a batch's status (from a 999 or TA1) in `tx`.
    async fn set_batch_status(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        batch_id: uuid::Uuid,
        status: BatchStatus,
    ) -> Result<(), ClaimStoreError>;

    /// Records the payer's claim control number on each claim in `tx` (a few statements for
    /// a whole 277CA).
    async fn set_payer_claim_control_numbers(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        numbers: &[(ClaimId, &str)],
    ) -> Result<(), ClaimStoreError>;

    /// The tenant whose batch went through `route` with interchange control number `control`.
    async fn batch_owner_by_control(
        &self,
        route: &str,
        control: u32,
    ) -> Result<Option<String>, ClaimStoreError>;

    /// The tenant of the batch with this id.
    async fn batch_owner(&self, batch_id: uuid::Uuid) -> Result<Option<String>, ClaimStoreError>;

    /// Keeps a picked-up file that could not be read or attributed to a tenant, with the reason;
    /// false when this route's file was kept before.
    async fn keep_unassigned_file(
        &self,
        route: &str,
        file_id: &str,
        content: &[u8],
        reason: &str,
    ) -> Result<bool, ClaimStoreError>;
}

/// Runs the claims migrations on `db` and returns the store over it.
pub async fn open_store(db: Database) -> Result<Arc<dyn ClaimStore>, StorageError> {
    db.migrate(&PG_MIGRATOR, &SQLITE_MIGRATOR).await?;
    Ok(Arc::new(SqlClaimStore::new(db)))
}

/// The [`ClaimStore`] over PostgreSQL or SQLite.
#[derive(Debug, Clone)]
pub struct SqlClaimStore {
    db: Database,
}

impl SqlClaimStore {
    /// Wraps a migrated database.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl ClaimStore for SqlClaimStore {
    fn database(&self) -> &Database {
        &self.db
    }

    async fn create_claim(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim: &NewClaim,
    ) -> Result<Claim, ClaimStoreError> {
        self.insert_claims(tx, tenant, &[claim])
            .await?
            .pop()
            .ok_or_else(|| corrupt("created claim", "none returned"))
    }

    async fn create_claims(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claims: &[&NewClaim],
    ) -> Result<Vec<Claim>, ClaimStoreError> {
        self.insert_claims(tx, tenant, claims).await
    }

    async fn transition(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim_id: ClaimId,
        change: NewStatus<'_>,
    ) -> Result<StatusMove, ClaimStoreError> {
        history::transition(tx, tenant, claim_id, change).await
    }

    async fn move_claims(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        moves: &[ClaimMove<'_>],
    ) -> Result<i64, ClaimStoreError> {
        history::move_claims(tx, tenant, moves).await
    }

    async fn replace_scrub_findings_many(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        scrubs: &[(ClaimId, &[ScrubFinding])],
        at: i64,
    ) -> Result<(), ClaimStoreError> {
        scrub::replace(tx, tenant, scrubs, at).await
    }

    async fn authorization_units_used(
        &self,
        tenant: &TenantId,
        numbers: &[String],
        except: ClaimId,
    ) -> Result<Vec<(String, String, rust_decimal::Decimal)>, ClaimStoreError> {
        self.units_under_authorizations(tenant, numbers, except)
            .await
    }

    async fn get_claim(
        &self,
        tenant: &TenantId,
        id: ClaimId,
    ) -> Result<Option<Claim>, ClaimStoreError> {
        let mut claim = self.get(tenant, id).await?;
        scrub::attach(&self.db, tenant, claim.as_mut_slice()).await?;
        Ok(claim)
    }

    async fn list_claims(
        &self,
        tenant: &TenantId,
        filter: &ClaimFilter,
        after: Option<ClaimId>,
        limit: u32,
    ) -> Result<Vec<Claim>, ClaimStoreError> {
        let mut claims = self.list(tenant, filter, after, limit).await?;
        scrub::attach(&self.db, tenant, &mut claims).await?;
        Ok(claims)
    }

    async fn claims_by_patient_control_numbers(
        &self,
        tenant: &TenantId,
        numbers: &[String],
    ) -> Result<Vec<Claim>, ClaimStoreError> {
        let mut claims = self.by_patient_control_numbers(tenant, numbers).await?;
        scrub::attach(&self.db, tenant, &mut claims).await?;
        Ok(claims)
    }

    async fn claims_by_ids(
        &self,
        tenant: &TenantId,
        ids: &[ClaimId],
    ) -> Result<Vec<Claim>, ClaimStoreError> {
        let mut claims = self.by_ids(tenant, ids).await?;
        scrub::attach(&self.db, tenant, &mut claims).await?;
        Ok(claims)
    }

    async fn status_history(
        &self,
        tenant: &TenantId,
        id: ClaimId,
    ) -> Result<Vec<StatusChange>, ClaimStoreError> {
        self.history(tenant, id).await
    }

    async fn status_changes_after(
        &self,
        tenant: &TenantId,
        after_sequence: u64,
        limit: u32,
    ) -> Result<Vec<StatusChange>, ClaimStoreError> {
        self.changes_after(tenant, after_sequence, limit).await
    }

    async fn create_provider(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        provider: &NewProvider,
    ) -> Result<Provider, ClaimStoreError> {
        self.insert_provider(tx, tenant, provider).await
    }

    async fn update_provider(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        provider: &NewProvider,
    ) -> Result<Provider, ClaimStoreError> {
        self.replace_provider(tx, tenant, provider).await
    }

    async fn get_provider(
        &self,
        tenant: &TenantId,
        npi: &str,
    ) -> Result<Option<Provider>, ClaimStoreError> {
        self.provider(tenant, npi).await
    }

    async fn providers(
        &self,
        tenant: &TenantId,
        npis: &[&str],
    ) -> Result<Vec<Provider>, ClaimStoreError> {
        self.providers_by_npi(tenant, npis).await
    }

    async fn list_providers(
        &self,
        tenant: &TenantId,
        kind: Option<ProviderKind>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Provider>, ClaimStoreError> {
        self.list_providers_page(tenant, kind, after, limit).await
    }

    async fn next_control_number(&self, tx: &mut Tx, route: &str) -> Result<u32, ClaimStoreError> {
        self.allocate_control_number(tx, route).await
    }

    async fn create_batch(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        batch: &NewBatch<'_>,
    ) -> Result<SubmissionBatch, ClaimStoreError> {
        self.insert_batch(tx, tenant, batch).await
    }

    async fn batch_sent(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        batch_id: uuid::Uuid,
        file_name: &str,
    ) -> Result<(), ClaimStoreError> {
        self.mark_sent(tx, tenant, batch_id, file_name).await
    }

    async fn batch_failed(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        batch_id: uuid::Uuid,
        error: &str,
    ) -> Result<(), ClaimStoreError> {
        self.mark_failed(tx, tenant, batch_id, error).await
    }

    async fn get_batch(
        &self,
        tenant: &TenantId,
        batch_id: uuid::Uuid,
        include_content: bool,
    ) -> Result<Option<SubmissionBatch>, ClaimStoreError> {
        let Some(mut batch) = self.batch(tenant, batch_id, include_content).await? else {
            return Ok(None);
        };
        batch.acknowledgement_ids = self.batch_acknowledgements(tenant, batch_id).await?;
        Ok(Some(batch))
    }

    async fn undelivered_batches(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<(String, uuid::Uuid)>, ClaimStoreError> {
        self.undelivered(before, limit).await
    }

    async fn lease_redelivery(
        &self,
        tenant: &str,
        batch_id: uuid::Uuid,
        now: i64,
        until: i64,
    ) -> Result<bool, ClaimStoreError> {
        self.lease_undelivered(tenant, batch_id, now, until).await
    }

    async fn acknowledgement_result(
        &self,
        tenant: &TenantId,
        sha256: &str,
    ) -> Result<Option<Vec<u8>>, ClaimStoreError> {
        self.acknowledgement_by_hash(tenant, sha256).await
    }

    async fn store_acknowledgement(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        ack: &NewAcknowledgement<'_>,
    ) -> Result<bool, ClaimStoreError> {
        self.insert_acknowledgement(tx, tenant, ack).await
    }

    async fn batch_with_control_number(
        &self,
        tenant: &TenantId,
        control: u32,
        route: Option<&str>,
    ) -> Result<Option<uuid::Uuid>, ClaimStoreError> {
        self.batch_by_control(tenant, control, route).await
    }

    async fn set_batch_status(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        batch_id: uuid::Uuid,
        status: BatchStatus,
    ) -> Result<(), ClaimStoreError> {
        self.update_batch_status(tx, tenant, batch_id, status).await
    }

    async fn set_payer_claim_control_numbers(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        numbers: &[(ClaimId, &str)],
    ) -> Result<(), ClaimStoreError> {
        self.set_payer_claim_numbers(tx, tenant, numbers).await
    }

    async fn batch_owner_by_control(
        &self,
        route: &str,
        control: u32,
    ) -> Result<Option<String>, ClaimStoreError> {
        self.owner_by_control(route, control).await
    }

    async fn batch_owner(&self, batch_id: uuid::Uuid) -> Result<Option<String>, ClaimStoreError> {
        self.owner_by_batch_id(batch_id).await
    }

    async fn keep_unassigned_file(
        &self,
        route: &str,
        file_id: &str,
        content: &[u8],
        reason: &str,
    ) -> Result<bool, ClaimStoreError> {
        self.keep_unassigned(route, file_id, content, reason).await
    }
}
