//! Submission: READY claims written into 837P / 837I interchanges, stored, delivered to the payer
//! route, and followed until the payer acknowledges them.
//!
//! - this file: the [`SubmissionBatch`] model;
//! - `writer.rs`: claims and their providers into the x12 crate's 837 models, and the interchange;
//! - `rpc.rs`: SubmitClaims and GetSubmissionBatch;
//! - `delivery.rs`: handing a stored batch to its payer connection, and the background task that
//!   retries batches left CREATED (a crash between storing and sending).
//!
//! The order of events is the one that loses nothing and sends nothing twice for one key: the
//! batch (with its raw 837 and durable control numbers) and the claims' move to SUBMITTED commit
//! in one transaction with the idempotency record; delivery follows. A delivery failure marks the
//! batch FAILED and puts its claims back to READY for the next batch.

pub mod delivery;
pub(crate) mod rpc;
pub mod writer;

use chrono::{DateTime, Utc};
use medbill_domain::{ClaimId, Money, code_enum};
use uuid::Uuid;

use crate::model::ClaimType;

/// Most claims in one batch (one ST/SE): the 837 implementation guides recommend at most 5,000.
pub const MAX_CLAIMS_PER_BATCH: usize = 5_000;

code_enum!(
    /// Where a submission batch is.
    BatchStatus, "submission batch status", {
        /// Built and stored; not yet delivered.
        Created => "CREATED",
        /// Delivered; waiting for the 999.
        Sent => "SENT",
        /// 999 accepted every set.
        Accepted => "ACCEPTED",
        /// 999 accepted some sets.
        PartiallyAccepted => "PARTIALLY_ACCEPTED",
        /// 999 or TA1 rejected the file.
        Rejected => "REJECTED",
        /// Delivery failed; the claims went back to READY.
        Failed => "FAILED",
    }
);

/// One 837 interchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionBatch {
    /// UUID v7.
    pub id: Uuid,
    /// The payer connection it goes through.
    pub route: String,
    /// Where it is.
    pub status: BatchStatus,
    /// 837P or 837I.
    pub claim_type: ClaimType,
    /// The payer addressed.
    pub payer_id: String,
    /// ISA13.
    pub interchange_control_number: u32,
    /// GS06.
    pub group_control_number: u32,
    /// ST02.
    pub set_control_number: String,
    /// The claims, in the order written.
    pub claim_ids: Vec<ClaimId>,
    /// Sum of the claims' charges.
    pub total_charge: Money,
    /// The 837 as sent, when asked for.
    pub content: Option<Vec<u8>>,
    /// The transport's name for the delivered file.
    pub file_name: String,
    /// Why delivery failed.
    pub error_message: String,
    /// When built.
    pub created_at: DateTime<Utc>,
    /// When delivered.
    pub sent_at: Option<DateTime<Utc>>,
    /// Acknowledgements received for it.
    pub acknowledgement_ids: Vec<Uuid>,
}

/// A batch to store: everything but what the store assigns.
#[derive(Debug, Clone)]
pub struct NewBatch<'a> {
    /// The id, chosen before writing so the 837's BHT03 can carry it.
    pub id: Uuid,
    /// The payer connection.
    pub route: &'a str,
    /// 837P or 837I.
    pub claim_type: ClaimType,
    /// The payer addressed.
    pub payer_id: &'a str,
    /// ISA13 = GS06, from the route's counter.
    pub control_number: u32,
    /// ST02.
    pub set_control_number: &'a str,
    /// The claims in the order written.
    pub claim_ids: &'a [ClaimId],
    /// Sum of their charges.
    pub total_charge: Money,
    /// The raw 837.
    pub content: &'a [u8],
}
