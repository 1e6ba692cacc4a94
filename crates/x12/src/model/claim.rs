//! Claim models for 837P (005010X222A1) and 837I (005010X223A2).
//!
//! Each claim carries its own billing provider, subscriber, patient and payer. The writer groups
//! consecutive claims that share a billing provider under one HL 20, and consecutive claims that
//! share subscriber, patient and payer under one HL 22 (and HL 23); the reader repeats them on
//! every claim, so the flat list survives a round trip.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Address, DateRange, PartyName, PersonName, TransactionHeader};

/// The submitter (loop 1000A) and its EDI contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitter {
    /// NM103 (and NM104 for a person).
    pub name: PartyName,
    /// NM109 with qualifier 46: the submitter's ETIN at the receiver.
    pub id: String,
    /// PER02 contact name.
    pub contact_name: String,
    /// PER04 telephone number, digits only.
    pub phone: String,
}

/// The receiver (loop 1000B): the clearinghouse or payer the file goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receiver {
    /// NM103.
    pub name: String,
    /// NM109 with qualifier 46.
    pub id: String,
}

/// The header of one 837 transaction set: BHT, submitter, receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimSetHeader {
    /// BHT03/04/05.
    pub transaction: TransactionHeader,
    /// Loop 1000A.
    pub submitter: Submitter,
    /// Loop 1000B.
    pub receiver: Receiver,
}

/// The billing provider's tax identifier (REF*EI or REF*SY).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum TaxId {
    /// Employer identification number, 9 digits (REF*EI).
    Ein(String),
    /// Social security number, 9 digits (REF*SY), for individual providers.
    Ssn(String),
}

/// The billing provider (loop 2010AA) with its taxonomy (PRV*BI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingProvider {
    /// NM1*85 name; 837I requires an organisation.
    pub name: PartyName,
    /// NM109 with qualifier XX: a 10-digit NPI with a valid check digit.
    pub npi: String,
    /// REF*EI / REF*SY.
    pub tax_id: TaxId,
    /// N3/N4: a street address (no PO box) per the TR3.
    pub address: Address,
    /// PRV03 with PRV01 = BI and PRV02 = PXC (NUCC taxonomy code).
    pub taxonomy: Option<String>,
}

/// The payer (loop 2010BB).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payer {
    /// NM103.
    pub name: String,
    /// NM109 with qualifier PI: the payer id.
    pub id: String,
    /// N3/N4.
    pub address: Option<Address>,
}

/// The subscriber (SBR in loop 2000B and loop 2010BA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscriber {
    /// SBR01: payer responsibility sequence (P primary, S secondary, T tertiary, A..H, U).
    pub payer_responsibility: String,
    /// SBR03: group or policy number.
    pub group_number: Option<String>,
    /// SBR04: group name.
    pub group_name: Option<String>,
    /// SBR09: claim filing indicator (CI commercial, MB Medicare B, MA Medicare A, MC Medicaid, BL BCBS...).
    pub claim_filing_indicator: String,
    /// NM103..NM105.
    pub name: PersonName,
    /// NM109 with qualifier MI.
    pub member_id: String,
    /// N3/N4 (required by the TR3 when the subscriber is the patient).
    pub address: Option<Address>,
    /// DMG02 (required when the subscriber is the patient).
    pub birth_date: Option<NaiveDate>,
    /// DMG03: F, M or U.
    pub gender: Option<String>,
}

/// The patient when it is not the subscriber (HL 23, PAT and loop 2010CA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    /// PAT01: relationship to the subscriber (01 spouse, 19 child, 20 employee, 21 unknown...).
    pub relationship: String,
    /// NM1*QC name.
    pub name: PersonName,
    /// N3/N4.
    pub address: Address,
    /// DMG02.
    pub birth_date: NaiveDate,
    /// DMG03: F, M or U.
    pub gender: String,
}

/// CLM05-3: the claim frequency type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimFrequency {
    /// 1: original claim.
    Original,
    /// 7: replacement of a prior claim (needs REF*F8).
    Replacement,
    /// 8: void or cancel of a prior claim (needs REF*F8).
    Void,
}

impl ClaimFrequency {
    /// Returns the X12 code (1, 7 or 8).
    pub fn code(self) -> &'static str {
        match self {
            Self::Original => "1",
            Self::Replacement => "7",
            Self::Void => "8",
        }
    }

    /// Parses the X12 code (1, 7 or 8).
    pub fn from_code(code: &str) -> Option<Self> {
        [Self::Original, Self::Replacement, Self::Void]
            .into_iter()
            .find(|f| f.code() == code)
    }
}

/// A provider named on a claim (rendering 2310B, attending 2310A, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimProvider {
    /// NM103..NM105.
    pub name: PartyName,
    /// NM109 with qualifier XX.
    pub npi: String,
    /// PRV03 taxonomy code.
    pub taxonomy: Option<String>,
}

/// Values common to 837P and 837I claims (loop 2300).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimCommon {
    /// CLM01: our patient control number, at most 20 characters; the 835 CLP01 echoes it.
    pub patient_control_number: String,
    /// CLM02: total charge; must equal the sum of the line charges.
    pub total_charge: Decimal,
    /// CLM05-3.
    pub frequency: ClaimFrequency,
    /// REF*F8: the payer's claim control number of the claim a 7 or 8 replaces or voids.
    pub payer_claim_number: Option<String>,
    /// CLM07 (837P CLM07 too): assignment or plan participation (A assigned, B lab only, C not assigned).
    pub assignment: String,
    /// CLM08: benefits assignment certification (Y, N or W).
    pub benefits_assigned: String,
    /// CLM09: release of information (Y or I).
    pub release_of_information: String,
    /// REF*G1: prior authorisation number.
    pub prior_authorization: Option<String>,
    /// REF*EA: medical record number.
    pub medical_record_number: Option<String>,
    /// HI: ICD-10-CM codes without the dot; the first is the principal (ABK), the rest ABF. 1 to 12.
    pub diagnoses: Vec<String>,
    /// Loop 2320/2330: other payers' adjudication, for secondary (COB) claims.
    pub other_payers: Vec<OtherPayer>,
}

/// A claim adjustment (CAS): group code, reason code, amount and optional quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjustment {
    /// CAS01: CO, PR, OA, PI or CR.
    pub group: String,
    /// CARC reason code.
    pub reason: String,
    /// Adjustment amount (may be negative).
    pub amount: Decimal,
    /// Adjustment quantity.
    pub quantity: Option<Decimal>,
}

/// Another payer's adjudication of the claim (loops 2320, 2330A, 2330B).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherPayer {
    /// SBR01 of the other coverage (P, S, T...).
    pub payer_responsibility: String,
    /// SBR02: the other subscriber's relationship to the patient (18 self, 01 spouse...).
    pub relationship: String,
    /// SBR03.
    pub group_number: Option<String>,
    /// SBR09.
    pub claim_filing_indicator: String,
    /// Claim-level CAS adjustments by this payer.
    pub adjustments: Vec<Adjustment>,
    /// AMT*D: what this payer paid on the claim.
    pub paid_amount: Option<Decimal>,
    /// AMT*EAF: remaining patient liability.
    pub remaining_patient_liability: Option<Decimal>,
    /// OI03: benefits assignment certification (Y, N or W).
    pub benefits_assigned: String,
    /// OI06: release of information (Y or I).
    pub release_of_information: String,
    /// Loop 2330A NM1*IL name.
    pub subscriber_name: PersonName,
    /// Loop 2330A NM109 (MI).
    pub subscriber_id: String,
    /// Loop 2330B NM1*PR name.
    pub payer_name: String,
    /// Loop 2330B NM109 (PI); SVD01 on lines refers to it.
    pub payer_id: String,
    /// Loop 2330B DTP*573: the date this payer adjudicated the claim.
    pub adjudication_date: Option<NaiveDate>,
}

/// A procedure code with its qualifier and modifiers (SV101, SV202, SVD03).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Procedure {
    /// Composite -1: HC (CPT/HCPCS), ER, IV, WK...
    pub qualifier: String,
    /// Composite -2: the code.
    pub code: String,
    /// Composite -3..-6: up to four 2-character modifiers.
    pub modifiers: Vec<String>,
}

impl Procedure {
    /// Returns an HC (CPT/HCPCS) procedure without modifiers.
    pub fn hc(code: impl Into<String>) -> Self {
        Self {
            qualifier: "HC".into(),
            code: code.into(),
            modifiers: Vec::new(),
        }
    }
}

/// A line's adjudication by another payer (loop 2430: SVD, CAS, DTP*573).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineAdjudication {
    /// SVD01: the other payer's id (matches [`OtherPayer::payer_id`]).
    pub payer_id: String,
    /// SVD02: amount paid for the line.
    pub paid_amount: Decimal,
    /// SVD03: the procedure as adjudicated.
    pub procedure: Procedure,
    /// SVD04 (837I only): revenue code.
    pub revenue_code: Option<String>,
    /// SVD05: paid units.
    pub units: Decimal,
    /// Line-level CAS adjustments.
    pub adjustments: Vec<Adjustment>,
    /// DTP*573: adjudication or payment date.
    pub adjudication_date: NaiveDate,
}

/// A drug identified by NDC on a service line (loop 2410).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drug {
    /// LIN03 with LIN02 = N4: the 11-digit NDC in 5-4-2 format without dashes.
    pub ndc: String,
    /// CTP04: national drug unit count.
    pub quantity: Decimal,
    /// CTP05-1: unit of measure (F2 international unit, GR gram, ME milligram, ML millilitre, UN unit).
    pub unit: String,
}

/// A professional service line (loop 2400: LX, SV1, PWK, DTP*472, REF*G1, REF*6R, NTE, loops 2410, 2420A..F
/// and 2430).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfessionalLine {
    /// SV101.
    pub procedure: Procedure,
    /// SV102: line charge.
    pub charge: Decimal,
    /// SV103: UN (units) or MJ (minutes).
    pub unit_basis: String,
    /// SV104.
    pub units: Decimal,
    /// SV105: only when different from the claim's place of service.
    pub place_of_service: Option<String>,
    /// SV107: 1-based pointers into the claim's diagnoses, 1 to 4.
    pub diagnosis_pointers: Vec<u8>,
    /// DTP*472.
    pub service_date: DateRange,
    /// REF*6R: our line item control number; the 835 REF*6R echoes it.
    pub line_control_number: Option<String>,
    /// REF*G1 in 2400: the prior authorization number for this line when it differs from the
    /// claim's (2300 REF*G1).
    #[serde(default)]
    pub prior_authorization: Option<String>,
    /// Loop 2410 (LIN*N4, CTP): the drug given, for drug codes (J-codes) where payers want the NDC.
    pub drug: Option<Drug>,
    /// PWK in 2400: line supplemental information (attachments), at most 10.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// NTE in 2400: line note (NTE01 ADD or DCP).
    #[serde(default)]
    pub note: Option<Note>,
    /// Loops 2420A..2420F: providers that differ from the claim's for this line, at most one per
    /// role and in loop order (rendering, purchased service, facility, supervising, ordering,
    /// referring).
    #[serde(default)]
    pub providers: Vec<LineProvider>,
    /// Loop 2430.
    pub adjudications: Vec<LineAdjudication>,
}

/// A free-text note (NTE): the claim note in 2300 or the line note in 2400.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// NTE01 note reference code: ADD additional information, CER certification narrative,
    /// DCP goals and plans, DGN diagnosis description, TPO third party organisation notes
    /// (a line note takes ADD or DCP only).
    pub code: String,
    /// NTE02, 1 to 80 characters.
    pub text: String,
}

/// Supplemental information for the payer (PWK): an attachment sent separately or kept on file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// PWK01 attachment report type code (e.g. 09 progress report, OB operative note, AM ambulance certification).
    pub report_type: String,
    /// PWK02 transmission code: AA available on request at provider site, BM by mail, EL
    /// electronically only, EM e-mail, FT file transfer, FX fax.
    pub transmission: String,
    /// PWK06 with PWK05 = AC: the attachment control number that links the paperwork to the
    /// claim; required for every transmission code but AA, and not sent with AA.
    #[serde(default)]
    pub control_number: Option<String>,
}

/// CLM11 related-causes code: the condition is related to an accident or to employment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelatedCause {
    /// AA: auto accident.
    AutoAccident,
    /// EM: employment.
    Employment,
    /// OA: other accident.
    OtherAccident,
}

impl RelatedCause {
    /// Returns the X12 code (AA, EM or OA).
    pub fn code(self) -> &'static str {
        match self {
            Self::AutoAccident => "AA",
            Self::Employment => "EM",
            Self::OtherAccident => "OA",
        }
    }

    /// Parses the X12 code (AA, EM or OA).
    pub fn from_code(code: &str) -> Option<Self> {
        [Self::AutoAccident, Self::Employment, Self::OtherAccident]
            .into_iter()
            .find(|c| c.code() == code)
    }
}

/// Accident or employment relation of an 837P claim (CLM11 and DTP*439).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accident {
    /// CLM11-1 and CLM11-2: one or two different causes.
    pub causes: Vec<RelatedCause>,
    /// CLM11-4: the US state or Canadian province of an auto accident; required with AA and not
    /// sent without it (accidents outside the US and Canada, CLM11-5, are not modelled).
    #[serde(default)]
    pub state: Option<String>,
    /// DTP*439: the accident date; required with AA or OA.
    #[serde(default)]
    pub date: Option<NaiveDate>,
}

/// Ambulance transport information (CR1 in 2300).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmbulanceTransport {
    /// CR102 with CR101 = LB: the patient's weight in pounds, when it justifies the level of service.
    #[serde(default)]
    pub patient_weight_lb: Option<Decimal>,
    /// CR104 transport reason: A nearest facility, B preferred physician, C nearness of family,
    /// D specialist or specialised equipment, E rehabilitation facility.
    pub reason: String,
    /// CR106 with CR105 = DH: the transport distance in miles.
    pub distance_miles: Decimal,
    /// CR109: why a round trip was needed.
    #[serde(default)]
    pub round_trip_purpose: Option<String>,
    /// CR110: why a stretcher was needed.
    #[serde(default)]
    pub stretcher_purpose: Option<String>,
}

/// An ambulance pick-up (2310E, NM1*PW) or drop-off (2310F, NM1*45) location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmbulanceLocation {
    /// NM103: the drop-off facility's name; the TR3 has no name for a pick-up location.
    #[serde(default)]
    pub name: Option<String>,
    /// N3/N4.
    pub address: Address,
}

/// The role of a line-level provider: which 2420 loop it is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineProviderRole {
    /// 2420A NM1*82 (with PRV*PE): rendering provider.
    Rendering,
    /// 2420B NM1*QB: purchased service provider.
    PurchasedService,
    /// 2420C NM1*77 (with N3/N4): service facility location.
    ServiceFacility,
    /// 2420D NM1*DQ: supervising provider.
    Supervising,
    /// 2420E NM1*DK: ordering provider.
    Ordering,
    /// 2420F NM1*DN: referring provider.
    Referring,
}

impl LineProviderRole {
    /// Returns the NM101 entity identifier code.
    pub fn entity_code(self) -> &'static str {
        match self {
            Self::Rendering => "82",
            Self::PurchasedService => "QB",
            Self::ServiceFacility => "77",
            Self::Supervising => "DQ",
            Self::Ordering => "DK",
            Self::Referring => "DN",
        }
    }

    /// Parses the NM101 entity identifier code of a 2420 loop.
    pub fn from_entity_code(code: &str) -> Option<Self> {
        [
            Self::Rendering,
            Self::PurchasedService,
            Self::ServiceFacility,
            Self::Supervising,
            Self::Ordering,
            Self::Referring,
        ]
        .into_iter()
        .find(|r| r.entity_code() == code)
    }
}

/// A provider named on one professional line (loops 2420A..2420F), shaped like
/// [`ClaimProvider`] with the role and the address some loops carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineProvider {
    /// Which loop.
    pub role: LineProviderRole,
    /// NM102..NM107. A service facility is an organisation; supervising, ordering and referring
    /// providers are people. A purchased service provider has no name in the TR3: only its kind
    /// (NM102) is sent, so its name text must be empty.
    pub name: PartyName,
    /// NM109 with qualifier XX.
    #[serde(default)]
    pub npi: Option<String>,
    /// PRV03 (PRV*PE): rendering provider only.
    #[serde(default)]
    pub taxonomy: Option<String>,
    /// N3/N4: required for a service facility, optional for an ordering provider, not sent otherwise.
    #[serde(default)]
    pub address: Option<Address>,
}

/// A professional claim (837P 005010X222A1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfessionalClaim {
    /// Loop 2010AA.
    pub billing_provider: BillingProvider,
    /// Loop 2000B/2010BA.
    pub subscriber: Subscriber,
    /// Loop 2000C/2010CA; `None` when the subscriber is the patient (SBR02 = 18).
    pub patient: Option<Patient>,
    /// Loop 2010BB.
    pub payer: Payer,
    /// CLM and the values common with 837I.
    pub claim: ClaimCommon,
    /// CLM05-1: place of service code (11 office, 02/10 telehealth...).
    pub place_of_service: String,
    /// CLM06: provider signature on file (Y or N).
    pub provider_signature: bool,
    /// AMT*F5: what the patient already paid toward this claim.
    pub patient_paid: Option<Decimal>,
    /// Loop 2310A (NM1*DN) when a referral is part of the claim.
    pub referring_provider: Option<ClaimProvider>,
    /// Loop 2310B when the rendering provider differs from the billing provider.
    pub rendering_provider: Option<ClaimProvider>,
    /// Loop 2310C when the service was performed away from the billing provider's address.
    pub service_facility: Option<ServiceFacility>,
    /// CLM11 and DTP*439 when the condition is related to an accident or to employment.
    #[serde(default)]
    pub accident: Option<Accident>,
    /// PWK in 2300: claim supplemental information (attachments), at most 10.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// NTE in 2300: the claim note.
    #[serde(default)]
    pub note: Option<Note>,
    /// CR1 in 2300: ambulance transport information.
    #[serde(default)]
    pub ambulance_transport: Option<AmbulanceTransport>,
    /// Loop 2310E: where the ambulance picked the patient up.
    #[serde(default)]
    pub ambulance_pickup: Option<AmbulanceLocation>,
    /// Loop 2310F: where the ambulance took the patient.
    #[serde(default)]
    pub ambulance_dropoff: Option<AmbulanceLocation>,
    /// Loop 2400, 1 to 50 lines.
    pub lines: Vec<ProfessionalLine>,
}

/// Where the service was performed (837P loop 2310C, NM1*77 with N3/N4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceFacility {
    /// NM103: facility name.
    pub name: String,
    /// NM109 with qualifier XX, when the facility has its own NPI.
    pub npi: Option<String>,
    /// N3/N4.
    pub address: Address,
}

/// An ICD-10-PCS procedure on an inpatient claim (HI*BBR principal, HI*BBQ others).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcdProcedure {
    /// ICD-10-PCS code, 7 characters.
    pub code: String,
    /// Date the procedure was performed.
    pub date: NaiveDate,
}

/// An occurrence code with its date (HI*BH).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrence {
    /// NUBC occurrence code (e.g. 11 onset of symptoms, 01 auto accident).
    pub code: String,
    /// The date it occurred (D8).
    pub date: NaiveDate,
}

/// An occurrence span code with its dates (HI*BI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OccurrenceSpan {
    /// NUBC occurrence span code (e.g. 70 qualifying stay dates, 74 non-covered level of care).
    pub code: String,
    /// First day of the span (RD8 start).
    pub from: NaiveDate,
    /// Last day of the span (RD8 end).
    pub to: NaiveDate,
}

/// One 837P transaction set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfessionalClaimSet {
    /// BHT, 1000A, 1000B.
    pub header: ClaimSetHeader,
    /// The claims, in file order.
    pub claims: Vec<ProfessionalClaim>,
}

/// An institutional service line (loop 2400: LX, SV2, DTP*472, REF*6R, loop 2430).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstitutionalLine {
    /// SV201: 4-digit revenue code.
    pub revenue_code: String,
    /// SV202: HCPCS/CPT procedure (required for outpatient services).
    pub procedure: Option<Procedure>,
    /// SV203: line charge.
    pub charge: Decimal,
    /// SV204: UN (units) or DA (days).
    pub unit_basis: String,
    /// SV205.
    pub units: Decimal,
    /// DTP*472 (required for outpatient lines).
    pub service_date: Option<DateRange>,
    /// REF*6R.
    pub line_control_number: Option<String>,
    /// Loop 2410 (LIN*N4, CTP): the drug given, for drug codes (J-codes) where payers want the NDC.
    pub drug: Option<Drug>,
    /// Loop 2430.
    pub adjudications: Vec<LineAdjudication>,
}

/// An institutional claim (837I 005010X223A2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstitutionalClaim {
    /// Loop 2010AA (an organisation).
    pub billing_provider: BillingProvider,
    /// Loop 2000B/2010BA.
    pub subscriber: Subscriber,
    /// Loop 2000C/2010CA; `None` when the subscriber is the patient.
    pub patient: Option<Patient>,
    /// Loop 2010BB.
    pub payer: Payer,
    /// CLM and the values common with 837P.
    pub claim: ClaimCommon,
    /// CLM05-1: facility type code, the first two digits of the type of bill (e.g. 13, 11).
    pub facility_type: String,
    /// DTP*434 RD8 start: first day the statement covers.
    pub statement_from: NaiveDate,
    /// DTP*434 RD8 end: last day the statement covers.
    pub statement_to: NaiveDate,
    /// DTP*435: admission date (inpatient).
    pub admission_date: Option<NaiveDate>,
    /// CL101: priority (type) of admission.
    pub admission_type: Option<String>,
    /// CL102: point of origin (admission source).
    pub admission_source: Option<String>,
    /// CL103: patient status (discharge status).
    pub patient_status: String,
    /// HI-09 present-on-admission indicators (Y, N, U, W, 1), one per diagnosis in the same
    /// order as [`ClaimCommon::diagnoses`]; empty when not reported (outpatient claims).
    pub present_on_admission: Vec<String>,
    /// HI*ABJ: admitting diagnosis (inpatient), ICD-10-CM without the dot.
    pub admitting_diagnosis: Option<String>,
    /// HI*APR: patient's reason for visit (unscheduled outpatient visits), up to 3 codes.
    pub reasons_for_visit: Vec<String>,
    /// ICD-10-PCS procedures (inpatient): the first is the principal procedure.
    pub procedures: Vec<IcdProcedure>,
    /// HI*DR: the diagnosis related group the provider assigned (inpatient).
    #[serde(default)]
    pub drg: Option<String>,
    /// HI*BI: occurrence span codes with their date ranges, at most 24.
    #[serde(default)]
    pub occurrence_spans: Vec<OccurrenceSpan>,
    /// HI*BH: occurrence codes with their dates, at most 24.
    #[serde(default)]
    pub occurrences: Vec<Occurrence>,
    /// HI*BG: condition codes, at most 24.
    pub condition_codes: Vec<String>,
    /// HI*BE: value codes with amounts, at most 24.
    pub value_codes: Vec<(String, Decimal)>,
    /// Loop 2310A NM1*71: attending provider.
    pub attending_provider: Option<ClaimProvider>,
    /// Loop 2310B NM1*72: operating physician (the loop has no PRV, so no taxonomy).
    #[serde(default)]
    pub operating_physician: Option<ClaimProvider>,
    /// Loop 2310C NM1*ZZ: other operating physician (no taxonomy either).
    #[serde(default)]
    pub other_operating_physician: Option<ClaimProvider>,
    /// Loop 2400, 1 to 999 lines.
    pub lines: Vec<InstitutionalLine>,
}

/// One 837I transaction set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstitutionalClaimSet {
    /// BHT, 1000A, 1000B.
    pub header: ClaimSetHeader,
    /// The claims, in file order.
    pub claims: Vec<InstitutionalClaim>,
}
