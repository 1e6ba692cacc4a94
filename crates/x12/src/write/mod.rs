//! Writers: an envelope-aware segment writer ([`X12Writer`]) and typed writers for 837P, 837I,
//! 270, 271, 276, 277, 277CA, 278, 835, 999 and TA1, plus [`acknowledge_group`] /
//! [`acknowledge_interchange`] to build the 999 and TA1 for a received file.
//!
//! The writer owns every count and trailer: SE01, GE01 and IEA01 are counted, SE02, GE02 and IEA02
//! repeat the caller's control numbers, the ISA is padded to its fixed width of 106 characters and
//! HL numbers are generated per transaction set. Typed writers validate their models first and
//! return a [`WriteError`] instead of writing X12 that a payer would reject (CLM01 over 20
//! characters, a missing or invalid NPI, line charges not summing to CLM02, frequency 7/8 without
//! REF*F8, ...). Values containing a separator, a control character or surrounding spaces are
//! refused too.
//!
//! One set in its own interchange:
//!
//! ```
//! use medbill_x12::write::{self, samples, Envelope, GroupHeader, InterchangeHeader, Separators};
//! # fn main() -> Result<(), medbill_x12::write::WriteError> {
//! let interchange = InterchangeHeader::test_default(905); // ISA13 = 000000905
//! let group = GroupHeader::new("SUBMITTER", "CLEARINGHOUSE", interchange.date, interchange.time, 12);
//! let envelope = Envelope { interchange, group, set_control_number: 1 };
//! let claims = samples::professional_set(); // a ProfessionalClaimSet
//! let text = write::professional_interchange(Separators::default(), &envelope, &claims)?;
//! assert!(text.starts_with("ISA*00*"));
//! assert!(text.ends_with("IEA*1*000000905~"));
//! # Ok(()) }
//! ```
//!
//! Several sets or groups in one interchange, with the low-level writer:
//!
//! ```
//! use medbill_x12::write::{self, samples, GroupHeader, InterchangeHeader, Separators, X12Writer};
//! # fn main() -> Result<(), medbill_x12::write::WriteError> {
//! let mut w = X12Writer::new(Separators { newline: true, ..Separators::default() })?;
//! let isa = InterchangeHeader::test_default(1);
//! w.begin_interchange(&isa)?;
//! w.begin_group("HS", &GroupHeader::new("SENDER", "RECEIVER", isa.date, isa.time, 1), "005010X279A1")?;
//! write::write_270(&mut w, &samples::eligibility_inquiry(), 1)?;
//! write::write_270(&mut w, &samples::eligibility_inquiry(), 2)?;
//! w.end_group()?; // GE*2*1
//! w.end_interchange()?;
//! let text = w.finish()?;
//! assert!(text.contains("GE*2*1~"));
//! # Ok(()) }
//! ```

mod ack999;
mod acknowledge;
mod claim837;
mod claim837_check;
mod claim837_cob;
mod claim837i;
mod claim837p;
mod claim837p_loops;
mod claim_status277;
mod eligibility270;
mod eligibility271;
mod envelope;
mod error;
mod format;
mod remittance835;
pub mod review278;
pub mod samples;
mod segment;
mod status276;
mod ta1;
mod validate;

pub use ack999::write_999;
pub use acknowledge::{acknowledge_group, acknowledge_interchange};
pub use claim_status277::{write_277, write_277ca};
pub use claim837i::write_837i;
pub use claim837p::write_837p;
pub use eligibility270::write_270;
pub use eligibility271::{EligibilityAnswer, eligibility_response_interchange, write_271};
pub use envelope::{GroupHeader, InterchangeHeader, Separators, Usage};
pub use error::WriteError;
pub use remittance835::{EftAccounts, RemittanceAdvice, write_835};
pub use review278::write_278;
pub use segment::{Element, X12Writer};
pub use status276::write_276;
pub use ta1::write_ta1;
pub use validate::{is_icd10_format, is_valid_npi};

/// Everything needed to wrap one transaction set in an interchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// ISA values.
    pub interchange: InterchangeHeader,
    /// GS values.
    pub group: GroupHeader,
    /// ST02 / SE02.
    pub set_control_number: u32,
}

impl Envelope {
    /// Returns a test-usage envelope ([`InterchangeHeader::test_default`])
    /// with a group from `SENDERAPP` to `RECEIVERAPP` at the same date and
    /// time, and the given ISA13, GS06 and ST02 control numbers.
    pub fn test_default(interchange: u32, group: u32, set: u32) -> Self {
        let interchange = InterchangeHeader::test_default(interchange);
        let group = GroupHeader::new(
            "SENDERAPP",
            "RECEIVERAPP",
            interchange.date,
            interchange.time,
            group,
        );
        Self {
            interchange,
            group,
            set_control_number: set,
        }
    }
}

/// Writes `model` as one transaction set in its own interchange and group.
///
/// `functional_id` is GS01 and `version` GS08; `body` is one of the `write_*` functions.
pub fn write_interchange<M>(
    separators: Separators,
    envelope: &Envelope,
    functional_id: &str,
    version: &str,
    model: &M,
    body: fn(&mut X12Writer, &M, u32) -> Result<(), WriteError>,
) -> Result<String, WriteError> {
    let mut w = X12Writer::new(separators)?;
    w.begin_interchange(&envelope.interchange)?;
    w.begin_group(functional_id, &envelope.group, version)?;
    body(&mut w, model, envelope.set_control_number)?;
    w.end_group()?;
    w.end_interchange()?;
    w.finish()
}

/// Writes an 837P interchange holding one transaction set.
pub fn professional_interchange(
    separators: Separators,
    envelope: &Envelope,
    set: &crate::model::claim::ProfessionalClaimSet,
) -> Result<String, WriteError> {
    write_interchange(
        separators,
        envelope,
        "HC",
        claim837p::VERSION,
        set,
        write_837p,
    )
}

/// Writes an 837I interchange holding one transaction set.
pub fn institutional_interchange(
    separators: Separators,
    envelope: &Envelope,
    set: &crate::model::claim::InstitutionalClaimSet,
) -> Result<String, WriteError> {
    write_interchange(
        separators,
        envelope,
        "HC",
        claim837i::VERSION,
        set,
        write_837i,
    )
}

/// Writes a 270 interchange holding one inquiry.
pub fn eligibility_interchange(
    separators: Separators,
    envelope: &Envelope,
    inquiry: &crate::model::eligibility::EligibilityInquiry,
) -> Result<String, WriteError> {
    write_interchange(
        separators,
        envelope,
        "HS",
        eligibility270::VERSION,
        inquiry,
        write_270,
    )
}

/// Writes a 278 interchange (GS01 HI) holding one request, inquiry or response.
pub fn review_interchange(
    separators: Separators,
    envelope: &Envelope,
    review: &crate::model::review::ServicesReview,
) -> Result<String, WriteError> {
    write_interchange(
        separators,
        envelope,
        "HI",
        review278::version_of(review.kind),
        review,
        write_278,
    )
}

/// Writes a 276 interchange holding one inquiry.
pub fn claim_status_interchange(
    separators: Separators,
    envelope: &Envelope,
    inquiry: &crate::model::claim_status::ClaimStatusInquiry,
) -> Result<String, WriteError> {
    write_interchange(
        separators,
        envelope,
        "HR",
        status276::VERSION,
        inquiry,
        write_276,
    )
}

/// Writes a 277CA interchange (GS01 HN) holding one claim acknowledgment.
pub fn claim_acknowledgment_interchange(
    separators: Separators,
    envelope: &Envelope,
    ack: &crate::model::claim_status::ClaimAcknowledgment,
) -> Result<String, WriteError> {
    write_interchange(
        separators,
        envelope,
        "HN",
        claim_status277::ACK_VERSION,
        ack,
        write_277ca,
    )
}

/// Writes a 277 interchange (GS01 HN) holding one claim status response.
pub fn claim_status_response_interchange(
    separators: Separators,
    envelope: &Envelope,
    answer: &crate::model::claim_status::ClaimStatusAnswer,
) -> Result<String, WriteError> {
    write_interchange(
        separators,
        envelope,
        "HN",
        claim_status277::STATUS_VERSION,
        answer,
        write_277,
    )
}

/// Writes an 835 interchange (GS01 HP) holding one remittance advice; refuses one that does not
/// balance.
pub fn remittance_interchange(
    separators: Separators,
    envelope: &Envelope,
    advice: &RemittanceAdvice<'_>,
) -> Result<String, WriteError> {
    let mut w = X12Writer::new(separators)?;
    w.begin_interchange(&envelope.interchange)?;
    w.begin_group("HP", &envelope.group, remittance835::VERSION)?;
    write_835(&mut w, advice, envelope.set_control_number)?;
    w.end_group()?;
    w.end_interchange()?;
    w.finish()
}

/// Writes a 999 interchange holding one acknowledgment.
pub fn ack_interchange(
    separators: Separators,
    envelope: &Envelope,
    ack: &crate::model::ack::FunctionalAck,
) -> Result<String, WriteError> {
    write_interchange(separators, envelope, "FA", ack999::VERSION, ack, write_999)
}

/// Writes an interchange holding only a TA1 (no functional group, IEA01 = 0).
pub fn ta1_interchange(
    separators: Separators,
    interchange: &InterchangeHeader,
    ack: &crate::model::ack::InterchangeAck,
) -> Result<String, WriteError> {
    let mut w = X12Writer::new(separators)?;
    w.begin_interchange(interchange)?;
    write_ta1(&mut w, ack)?;
    w.end_interchange()?;
    w.finish()
}
