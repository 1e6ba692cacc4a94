//! [`FollowUpStore`]: what the claims store does after submission (adjudications, corrections and
//! voids, secondary claims, 276/277 follow-ups, the history read back, aging), a supertrait of
//! [`super::ClaimStore`].

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use medbill_domain::{ClaimId, TenantId};
use medbill_storage::Tx;
use uuid::Uuid;

pub use super::adjudications::{AdjudicationInForce, NewAdjudication};
pub use super::events::WatchedChange;
use super::{ClaimStoreError, SqlClaimStore, adjudications, follow_ups, links};
use crate::adjudication::AppliedAdjudication;
use crate::aging::PayerAging;
use crate::follow_up::FollowUp;
use crate::model::{StatusChange, StatusChangeSource};

/// Adjudications, the correction chain, history reads and aging; every method is scoped to one
/// tenant and writes take the caller's transaction.
#[async_trait]
pub trait FollowUpStore: Send + Sync {
    /// Returns the adjudication in force on a claim, read in `tx` (NOT_FOUND when no such claim).
    async fn adjudication_in_force(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim_id: ClaimId,
    ) -> Result<Option<AppliedAdjudication>, ClaimStoreError>;

    /// Stores an adjudication of a claim in `tx` and returns it as stored.
    async fn record_adjudication(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim_id: ClaimId,
        new: NewAdjudication<'_>,
    ) -> Result<AppliedAdjudication, ClaimStoreError>;

    /// Marks adjudication `reversed` as undone by the reversal `reversal` in `tx`.
    async fn mark_adjudication_reversed(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        reversed: Uuid,
        reversal: Uuid,
    ) -> Result<(), ClaimStoreError>;

    /// Sets the claim's adjudication in force (`None` after a reversal) and, when given, the
    /// payer's claim control number, in `tx`.
    async fn set_adjudication_in_force(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim_id: ClaimId,
        adjudication: Option<Uuid>,
        payer_claim_control_number: Option<&str>,
    ) -> Result<(), ClaimStoreError>;

    /// Stores adjudications of distinct claims and puts each in force, with its payer claim
    /// control number and note when given, in `tx`: what record_adjudication,
    /// set_adjudication_in_force and note_no_secondary do for each, in a few multi-row statements
    /// for all (ApplyAdjudications). Returns them as stored, in order.
    async fn record_adjudications_in_force(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        items: &[AdjudicationInForce<'_>],
    ) -> Result<Vec<AppliedAdjudication>, ClaimStoreError>;

    /// Returns every adjudication applied to a claim, oldest first.
    async fn adjudications(
        &self,
        tenant: &TenantId,
        claim_id: ClaimId,
    ) -> Result<Vec<AppliedAdjudication>, ClaimStoreError>;

    /// Links an original to the replacement or void claim that supersedes it, both ways, in `tx`,
    /// and returns the original's new `updated_at`; FAILED_PRECONDITION when it was superseded
    /// already.
    async fn link_claims(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        original: ClaimId,
        successor: ClaimId,
    ) -> Result<DateTime<Utc>, ClaimStoreError>;

    /// Rewrites the source and reason of a claim's creating history entry in `tx`.
    async fn describe_creation(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim_id: ClaimId,
        source: StatusChangeSource,
        source_id: &str,
        reason: &str,
    ) -> Result<(), ClaimStoreError>;

    /// Links a primary claim to its secondary claim both ways and clears the primary's note,
    /// in `tx`; ABORTED when the primary got a secondary concurrently.
    async fn link_secondary(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        primary: ClaimId,
        secondary: ClaimId,
    ) -> Result<(), ClaimStoreError>;

    /// Records on a claim why no secondary claim was made from its adjudication, in `tx`.
    async fn note_no_secondary(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim_id: ClaimId,
        note: &str,
    ) -> Result<(), ClaimStoreError>;

    /// Stores a follow-up with its raw 276 and 277 in `tx`; an answered one starts the claim's
    /// next follow-up interval and releases its lease.
    async fn record_follow_up(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        follow_up: &FollowUp,
        raw_request: &[u8],
        raw_response: &[u8],
    ) -> Result<(), ClaimStoreError>;

    /// Returns up to `limit` follow-ups of a claim with ids after `after`, oldest first.
    async fn follow_ups(
        &self,
        tenant: &TenantId,
        claim_id: ClaimId,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<FollowUp>, ClaimStoreError>;

    /// Returns (tenant, claim id) of up to `limit` claims of any tenant with `payer_id` due a
    /// follow-up: SUBMITTED or ACCEPTED, not adjudicated, submitted at or before `due_before`
    /// and not answered after it, and not leased at `now` (unix micros).
    async fn follow_ups_due(
        &self,
        payer_id: &str,
        due_before: i64,
        now: i64,
        limit: u32,
    ) -> Result<Vec<(String, ClaimId)>, ClaimStoreError>;

    /// Takes a claim's follow-up lease until `until` when nobody holds it at `now`, in `tx`;
    /// reports whether it was taken.
    async fn lease_follow_up(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim_id: ClaimId,
        now: i64,
        until: i64,
    ) -> Result<bool, ClaimStoreError>;

    /// Reports whether the tenant has a claim with this CLM01, read in `tx`.
    async fn patient_control_number_taken(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        pcn: &str,
    ) -> Result<bool, ClaimStoreError>;

    /// Returns up to `limit` entries of a claim's history after sequence `after`, in order.
    async fn claim_events(
        &self,
        tenant: &TenantId,
        claim_id: ClaimId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StatusChange>, ClaimStoreError>;

    /// Returns up to `limit` of the tenant's status changes after sequence `after`, in order,
    /// each with its claim's payer.
    async fn watched_changes(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<WatchedChange>, ClaimStoreError>;

    /// Returns the tenant's last committed status-change sequence (0 when none).
    async fn last_sequence(&self, tenant: &TenantId) -> Result<u64, ClaimStoreError>;

    /// Returns the unpaid insurance balances by payer and age bucket as of `as_of`.
    async fn insurance_aging(
        &self,
        tenant: &TenantId,
        as_of: NaiveDate,
        payer_id: Option<&str>,
    ) -> Result<Vec<PayerAging>, ClaimStoreError>;
}

#[async_trait]
impl FollowUpStore for SqlClaimStore {
    async fn adjudication_in_force(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim_id: ClaimId,
    ) -> Result<Option<AppliedAdjudication>, ClaimStoreError> {
        adjudications::in_force(tx, tenant, claim_id).await
    }

    async fn record_adjudication(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim_id: ClaimId,
        new: NewAdjudication<'_>,
    ) -> Result<AppliedAdjudication, ClaimStoreError> {
        adjudications::insert(tx, tenant, claim_id, new).await
    }

    async fn mark_adjudication_reversed(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        reversed: Uuid,
        reversal: Uuid,
    ) -> Result<(), ClaimStoreError> {
        adjudications::mark_reversed(tx, tenant, reversed, reversal).await
    }

    async fn set_adjudication_in_force(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim_id: ClaimId,
        adjudication: Option<Uuid>,
        payer_claim_control_number: Option<&str>,
    ) -> Result<(), ClaimStoreError> {
        adjudications::set_in_force(
            tx,
            tenant,
            claim_id,
            adjudication,
            payer_claim_control_number,
        )
        .await
    }

    async fn record_adjudications_in_force(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        items: &[AdjudicationInForce<'_>],
    ) -> Result<Vec<AppliedAdjudication>, ClaimStoreError> {
        let new: Vec<(ClaimId, NewAdjudication<'_>)> =
            items.iter().map(|i| (i.claim_id, i.new)).collect();
        let stored = adjudications::insert_many(tx, tenant, &new).await?;
        let in_force: Vec<(ClaimId, Option<Uuid>, Option<&str>)> = items
            .iter()
            .zip(&stored)
            .map(|(i, s)| {
                let number = i.new.adjudication.payer_claim_control_number.as_deref();
                (i.claim_id, Some(s.id), number)
            })
            .collect();
        adjudications::set_in_force_many(tx, tenant, &in_force).await?;
        let mut notes: Vec<(&str, Vec<ClaimId>)> = Vec::new();
        for item in items {
            let Some(note) = item.secondary_note else {
                continue;
            };
            match notes.iter_mut().find(|(n, _)| *n == note) {
                Some((_, ids)) => ids.push(item.claim_id),
                None => notes.push((note, vec![item.claim_id])),
            }
        }
        for (note, ids) in notes {
            links::note_no_secondary_many(tx, tenant, &ids, note).await?;
        }
        Ok(stored)
    }

    async fn adjudications(
        &self,
        tenant: &TenantId,
        claim_id: ClaimId,
    ) -> Result<Vec<AppliedAdjudication>, ClaimStoreError> {
        self.adjudication_history(tenant, claim_id).await
    }

    async fn link_claims(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        original: ClaimId,
        successor: ClaimId,
    ) -> Result<DateTime<Utc>, ClaimStoreError> {
        links::link(tx, tenant, original, successor).await
    }

    async fn describe_creation(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim_id: ClaimId,
        source: StatusChangeSource,
        source_id: &str,
        reason: &str,
    ) -> Result<(), ClaimStoreError> {
        links::describe_creation(tx, tenant, claim_id, source, source_id, reason).await
    }

    async fn link_secondary(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        primary: ClaimId,
        secondary: ClaimId,
    ) -> Result<(), ClaimStoreError> {
        links::link_secondary(tx, tenant, primary, secondary).await
    }

    async fn note_no_secondary(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim_id: ClaimId,
        note: &str,
    ) -> Result<(), ClaimStoreError> {
        links::note_no_secondary(tx, tenant, claim_id, note).await
    }

    async fn record_follow_up(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        follow_up: &FollowUp,
        raw_request: &[u8],
        raw_response: &[u8],
    ) -> Result<(), ClaimStoreError> {
        follow_ups::insert(tx, tenant, follow_up, raw_request, raw_response).await
    }

    async fn follow_ups(
        &self,
        tenant: &TenantId,
        claim_id: ClaimId,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<FollowUp>, ClaimStoreError> {
        follow_ups::list(&self.db, tenant, claim_id, after, limit).await
    }

    async fn follow_ups_due(
        &self,
        payer_id: &str,
        due_before: i64,
        now: i64,
        limit: u32,
    ) -> Result<Vec<(String, ClaimId)>, ClaimStoreError> {
        follow_ups::due(&self.db, payer_id, due_before, now, limit).await
    }

    async fn lease_follow_up(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claim_id: ClaimId,
        now: i64,
        until: i64,
    ) -> Result<bool, ClaimStoreError> {
        follow_ups::lease(tx, tenant, claim_id, now, until).await
    }

    async fn patient_control_number_taken(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        pcn: &str,
    ) -> Result<bool, ClaimStoreError> {
        links::patient_control_number_taken(tx, tenant, pcn).await
    }

    async fn claim_events(
        &self,
        tenant: &TenantId,
        claim_id: ClaimId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StatusChange>, ClaimStoreError> {
        SqlClaimStore::claim_events(self, tenant, claim_id, after, limit).await
    }

    async fn watched_changes(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<WatchedChange>, ClaimStoreError> {
        SqlClaimStore::watched_changes(self, tenant, after, limit).await
    }

    async fn last_sequence(&self, tenant: &TenantId) -> Result<u64, ClaimStoreError> {
        SqlClaimStore::last_sequence(self, tenant).await
    }

    async fn insurance_aging(
        &self,
        tenant: &TenantId,
        as_of: NaiveDate,
        payer_id: Option<&str>,
    ) -> Result<Vec<PayerAging>, ClaimStoreError> {
        self.aging(tenant, as_of, payer_id).await
    }
}
