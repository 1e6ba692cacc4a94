//! What a claim carries only for its 837: who the patient and subscriber are, the other providers
//! it names, authorization and referral numbers, the institutional (UB-04) fields, and the snapshot
//! of the coverage taken when the claim was created.
//!
//! None of it is searched, so it is stored as one JSON document beside the claim's header
//! (`claims.details_json`). It holds PHI (names, birth dates, addresses, member ids): it is never
//! logged, and the Debug output of [`ClaimDetails`] leaves it out.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub(crate) mod wire;

/// Longest prior authorization or referral number (REF02 allows 50 characters).
pub const MAX_REFERENCE_LEN: usize = 50;
/// Most occurrence, value or condition codes an 837I carries (12 per HI segment, 2 segments).
pub const MAX_UB_CODES: usize = 24;

/// A postal address (N3/N4).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    /// N301.
    pub line1: String,
    /// N302; empty when none.
    #[serde(default)]
    pub line2: String,
    /// N401.
    pub city: String,
    /// N402: two-letter state or province code.
    pub state: String,
    /// N403: ZIP (5 or 9 digits) or postal code.
    pub postal_code: String,
    /// N404: country code; empty for the United States.
    #[serde(default)]
    pub country_code: String,
}

/// A patient or subscriber as the 837 names them.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimPerson {
    /// NM103.
    pub last_name: String,
    /// NM104.
    #[serde(default)]
    pub first_name: String,
    /// NM105.
    #[serde(default)]
    pub middle_name: String,
    /// NM107.
    #[serde(default)]
    pub suffix: String,
    /// DMG02.
    pub birth_date: Option<NaiveDate>,
    /// DMG03: F, M or U.
    pub gender: Option<String>,
    /// N3/N4.
    pub address: Option<PostalAddress>,
}

/// An occurrence code with its date (HI*BH).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OccurrenceCode {
    /// NUBC occurrence code.
    pub code: String,
    /// When it occurred.
    pub date: NaiveDate,
}

/// A value code with its amount (HI*BE); the amount is kept as the exact decimal string given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueCode {
    /// NUBC value code.
    pub code: String,
    /// Amount or quantity, an exact decimal string.
    pub amount: String,
}

/// Fields only an institutional claim carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Institutional {
    /// DTP*435.
    pub admission_date: Option<NaiveDate>,
    /// Hour of admission, "HH" or "HHMM".
    pub admission_hour: Option<String>,
    /// CL101.
    pub admission_type: Option<String>,
    /// CL102.
    pub admission_source: Option<String>,
    /// CL103: patient discharge status.
    pub discharge_status: String,
    /// Loop 2310A: the attending provider's NPI.
    pub attending_provider_npi: String,
    /// HI*BH.
    #[serde(default)]
    pub occurrence_codes: Vec<OccurrenceCode>,
    /// HI*BE.
    #[serde(default)]
    pub value_codes: Vec<ValueCode>,
    /// HI*BG.
    #[serde(default)]
    pub condition_codes: Vec<String>,
    /// HI*ABJ.
    pub admitting_diagnosis: Option<String>,
}

/// The coverage as the eligibility service described it when the claim was created: what the
/// 837's subscriber loop needs, kept so that submission never has to ask again.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageSnapshot {
    /// Subscriber member id (2010BA NM109).
    pub member_id: String,
    /// Group number (SBR03).
    pub group_number: String,
    /// Plan name (SBR04 when there is no group number).
    pub plan_name: String,
    /// Payer name (2010BB NM103).
    pub payer_name: String,
    /// Subscriber first name.
    pub subscriber_first_name: String,
    /// Subscriber last name.
    pub subscriber_last_name: String,
    /// Subscriber birth date.
    pub subscriber_birth_date: Option<NaiveDate>,
    /// Patient's relationship to the subscriber as the coverage records it ("18" self...).
    pub relationship_to_subscriber: String,
    /// Coverage order: "PRIMARY", "SECONDARY", "TERTIARY" or "" when unknown.
    pub order: String,
}

/// The claim's 837-only content.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimDetails {
    /// The patient; required before submission.
    pub patient: Option<ClaimPerson>,
    /// SBR02 / PAT01; `None` means the coverage's.
    pub relationship_to_subscriber: Option<String>,
    /// The subscriber when not the patient; `None` means the coverage's.
    pub subscriber: Option<ClaimPerson>,
    /// Referring provider NPI (on file).
    pub referring_provider_npi: Option<String>,
    /// Service facility NPI (on file).
    pub service_facility_npi: Option<String>,
    /// 2300 REF*G1.
    pub prior_authorization_number: Option<String>,
    /// 2300 REF*9F.
    pub referral_number: Option<String>,
    /// 837I fields.
    pub institutional: Option<Institutional>,
    /// The coverage when the claim was created.
    pub coverage: Option<CoverageSnapshot>,
    /// On a secondary claim: the primary payer and its adjudication (837 loops 2320/2330/2430).
    #[serde(default)]
    pub other_payer: Option<OtherPayerSnapshot>,
}

/// One CAS triplet as a secondary claim repeats it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherPayerAdjustment {
    /// CAS01: CO, PR, OA, PI or CR.
    pub group: String,
    /// CARC.
    pub reason: String,
    /// Amount.
    pub amount: Decimal,
    /// Units, when the payer sent them.
    pub quantity: Option<Decimal>,
}

/// The primary payer's adjudication of one line (loop 2430).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherPayerLine {
    /// The claim line it belongs to (LX01 of the secondary claim).
    pub line_number: u32,
    /// SVD03 procedure code as adjudicated.
    pub procedure_code: String,
    /// SVD03 modifiers.
    #[serde(default)]
    pub modifiers: Vec<String>,
    /// SVD04 revenue code (837I).
    pub revenue_code: Option<String>,
    /// SVD02.
    pub paid: Decimal,
    /// SVD05.
    pub units: Decimal,
    /// Line CAS.
    #[serde(default)]
    pub adjustments: Vec<OtherPayerAdjustment>,
}

/// The primary payer and its adjudication, copied onto a secondary claim when it was made, so
/// the secondary's 837 never depends on the primary changing later.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherPayerSnapshot {
    /// 2330B NM109 (and SVD01).
    pub payer_id: String,
    /// 2330B NM103.
    pub payer_name: String,
    /// 2320 SBR01 of the primary coverage ("P").
    pub payer_responsibility: String,
    /// 2320 SBR02: the patient's relationship to the primary's subscriber.
    pub relationship: String,
    /// 2320 SBR03.
    pub group_number: String,
    /// 2330A NM109 (PHI).
    pub member_id: String,
    /// 2330A NM103 (PHI).
    pub subscriber_last_name: String,
    /// 2330A NM104 (PHI).
    pub subscriber_first_name: String,
    /// 2320 AMT*D: what the primary paid.
    pub paid: Decimal,
    /// 2320 AMT*EAF: what the primary left to the patient (its PR adjustments).
    pub remaining_patient_liability: Option<Decimal>,
    /// 2330B DTP*573: when the primary adjudicated (the ERA's payment date, else when applied).
    pub adjudication_date: Option<NaiveDate>,
    /// 2320 CAS.
    #[serde(default)]
    pub adjustments: Vec<OtherPayerAdjustment>,
    /// 2430 per line.
    #[serde(default)]
    pub lines: Vec<OtherPayerLine>,
}

impl std::fmt::Debug for OtherPayerSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtherPayerSnapshot")
            .field("payer_id", &self.payer_id)
            .field("paid", &self.paid)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ClaimDetails {
    // Names, birth dates, addresses and member ids are PHI: Debug says only what is present.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimDetails")
            .field("patient", &self.patient.is_some())
            .field("subscriber", &self.subscriber.is_some())
            .field("referring_provider_npi", &self.referring_provider_npi)
            .field("service_facility_npi", &self.service_facility_npi)
            .field("institutional", &self.institutional)
            .field("coverage", &self.coverage.is_some())
            .field("other_payer", &self.other_payer)
            .finish_non_exhaustive()
    }
}

impl ClaimDetails {
    /// The relationship the 837 states: the claim's, else the coverage's, else "18" (self).
    pub fn relationship(&self) -> &str {
        self.relationship_to_subscriber
            .as_deref()
            .or_else(|| {
                self.coverage
                    .as_ref()
                    .map(|c| c.relationship_to_subscriber.as_str())
                    .filter(|r| !r.is_empty())
            })
            .unwrap_or(SELF)
    }

    /// Every NPI the details name, with the claim field it came from (for the on-file check).
    pub fn named_npis(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        if let Some(npi) = &self.referring_provider_npi {
            out.push(("claim.referring_provider_npi", npi.as_str()));
        }
        if let Some(npi) = &self.service_facility_npi {
            out.push(("claim.service_facility_npi", npi.as_str()));
        }
        if let Some(i) = &self.institutional {
            out.push((
                "claim.institutional.attending_provider_npi",
                i.attending_provider_npi.as_str(),
            ));
        }
        out
    }

    /// Encodes the details for the `details_json` column.
    pub fn to_json(&self) -> String {
        // Plain data of strings, dates and options: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Decodes the `details_json` column.
    pub fn from_json(raw: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(raw)
    }
}

impl std::fmt::Debug for ClaimPerson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClaimPerson(..)")
    }
}

impl std::fmt::Debug for PostalAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostalAddress(..)")
    }
}

impl std::fmt::Debug for CoverageSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoverageSnapshot")
            .field("order", &self.order)
            .finish_non_exhaustive()
    }
}

/// SBR02 / PAT01 code for "the patient is the subscriber".
pub const SELF: &str = "18";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_round_trip_through_json_and_hide_phi_in_debug() {
        let details = ClaimDetails {
            patient: Some(ClaimPerson {
                last_name: "DOE".into(),
                first_name: "JANE".into(),
                birth_date: NaiveDate::from_ymd_opt(1980, 2, 3),
                gender: Some("F".into()),
                ..ClaimPerson::default()
            }),
            prior_authorization_number: Some("AUTH1".into()),
            institutional: Some(Institutional {
                discharge_status: "01".into(),
                attending_provider_npi: "1234567893".into(),
                value_codes: vec![ValueCode {
                    code: "80".into(),
                    amount: "3".into(),
                }],
                ..Institutional::default()
            }),
            ..ClaimDetails::default()
        };
        let back = ClaimDetails::from_json(&details.to_json()).unwrap();
        assert_eq!(back, details);
        let debug = format!("{details:?}");
        assert!(!debug.contains("DOE") && !debug.contains("1980"), "{debug}");
        assert_eq!(details.relationship(), SELF);
        assert_eq!(
            details.named_npis(),
            vec![("claim.institutional.attending_provider_npi", "1234567893")]
        );
    }
}
