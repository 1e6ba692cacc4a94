//! The claim front-end edits: what decides a claim's 277CA status, from the catalog alone.
//!
//! Each received claim is checked in this order and the first failing edit answers it:
//!
//! | edit | 277CA STC01 | why this code |
//! |---|---|---|
//! | payer id not in the catalog | `A3:116:PR` | 116 "claim submitted to the incorrect payer" |
//! | billing NPI fails its check digit | `A7:562:85` | 562 "entity's NPI", entity 85 billing provider |
//! | rendering (837P 2310B/2420A) or attending (837I) NPI fails | `A7:562:82` / `A7:562:71` | entity 82 rendering, 71 attending; a 2420A line gets its own 2220D STC |
//! | a diagnosis not in ICD-10-CM format, or in `[claims] invalid_diagnoses` | `A7:254` (principal) / `A7:255` | 254 "principal diagnosis code", 255 "diagnosis code" |
//! | member id not on file for the payer | `A3:33:IL` | 33 "subscriber and subscriber id not found" |
//! | member not covered on a date of service | `A3:109:IL` | 109 "entity not eligible for benefits for submitted dates of service" |
//! | an original claim (frequency 1) with the CLM01 and total charge of one already accepted from the same submitter | `A3:78` | 78 "duplicate of an existing claim/line, awaiting processing" |
//! | anything else | `A2:20` with REF*1K | 20 "accepted for processing" |
//!
//! Category meanings are in `crates/codesets/data/claim_status_category.csv` (code source 507).
//! The status codes are X12 code source 508 (health care claim status codes), in
//! `crates/codesets/data/claim_status_code.csv`; [`status_text`] reads them there.

use chrono::NaiveDate;
use medbill_x12::model::claim::{ClaimCommon, ClaimFrequency, LineProviderRole, Procedure};
use medbill_x12::model::claim_status::StatusCode;
use medbill_x12::model::{DateRange, PartyName, PersonName};
use medbill_x12::transactions::claim837::ClaimSet;
use medbill_x12::write::{is_icd10_format, is_valid_npi};
use rust_decimal::Decimal;

use crate::catalog::Catalog;

/// Which 837 guide a claim came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimKind {
    /// 837P (005010X222A1).
    Professional,
    /// 837I (005010X223A2).
    Institutional,
}

/// One service line as the front end keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedLine {
    /// SV101 / SV202 (837I lines without a procedure carry `NU:<revenue code>`).
    pub procedure: Procedure,
    /// SV203 revenue code (837I).
    pub revenue_code: Option<String>,
    /// SV102 / SV203.
    pub charge: Decimal,
    /// SV104 / SV205.
    pub units: Decimal,
    /// REF*6R.
    pub line_control_number: Option<String>,
    /// DTP*472.
    pub service_date: Option<DateRange>,
    /// 2420A rendering provider NPI of the line (837P).
    pub rendering_npi: Option<String>,
}

/// One claim of a received 837, flattened to what the edits and the 277CA need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedClaim {
    /// 837P or 837I.
    pub kind: ClaimKind,
    /// 2010BB NM109.
    pub payer_id: String,
    /// 2010AA NM1*85.
    pub billing_name: PartyName,
    /// 2010AA NM109.
    pub billing_npi: String,
    /// 2310B rendering (837P) or 2310A attending (837I) NPI, with its entity code.
    pub claim_provider: Option<(String, &'static str)>,
    /// 2010BA NM109.
    pub member_id: String,
    /// The patient: 2010CA, or the subscriber when they are the patient.
    pub patient_name: PersonName,
    /// CLM01.
    pub patient_control_number: String,
    /// CLM02.
    pub total_charge: Decimal,
    /// CLM05-3.
    pub frequency: ClaimFrequency,
    /// REF*F8 of a replacement or void.
    pub replaces: Option<String>,
    /// REF*G1: the prior authorization number.
    pub prior_authorization: Option<String>,
    /// HI codes, principal first.
    pub diagnoses: Vec<String>,
    /// The claim's service dates: the statement period (837I) or first to last line date.
    pub service_date: DateRange,
    /// Type of bill (837I CLM05-1 + CLM05-3).
    pub bill_type: Option<String>,
    /// Service lines.
    pub lines: Vec<ReceivedLine>,
}

impl ReceivedClaim {
    /// Flattens the claims of a read 837 set.
    pub fn all_of(set: &ClaimSet) -> Vec<Self> {
        match set {
            ClaimSet::Professional(p) => p
                .claims
                .iter()
                .map(|c| {
                    let lines: Vec<ReceivedLine> = c
                        .lines
                        .iter()
                        .map(|l| ReceivedLine {
                            procedure: l.procedure.clone(),
                            revenue_code: None,
                            charge: l.charge,
                            units: l.units,
                            line_control_number: l.line_control_number.clone(),
                            service_date: Some(l.service_date),
                            rendering_npi: l
                                .providers
                                .iter()
                                .find(|p| p.role == LineProviderRole::Rendering)
                                .and_then(|p| p.npi.clone()),
                        })
                        .collect();
                    let service_date = span(lines.iter().filter_map(|l| l.service_date));
                    Self {
                        kind: ClaimKind::Professional,
                        payer_id: c.payer.id.clone(),
                        billing_name: c.billing_provider.name.clone(),
                        billing_npi: c.billing_provider.npi.clone(),
                        claim_provider: c
                            .rendering_provider
                            .as_ref()
                            .map(|r| (r.npi.clone(), "82")),
                        member_id: c.subscriber.member_id.clone(),
                        patient_name: c
                            .patient
                            .as_ref()
                            .map_or_else(|| c.subscriber.name.clone(), |p| p.name.clone()),
                        bill_type: None,
                        service_date,
                        lines,
                        ..Self::common(&c.claim)
                    }
                })
                .collect(),
            ClaimSet::Institutional(s) => s
                .claims
                .iter()
                .map(|c| Self {
                    kind: ClaimKind::Institutional,
                    payer_id: c.payer.id.clone(),
                    billing_name: c.billing_provider.name.clone(),
                    billing_npi: c.billing_provider.npi.clone(),
                    claim_provider: c.attending_provider.as_ref().map(|a| (a.npi.clone(), "71")),
                    member_id: c.subscriber.member_id.clone(),
                    patient_name: c
                        .patient
                        .as_ref()
                        .map_or_else(|| c.subscriber.name.clone(), |p| p.name.clone()),
                    bill_type: Some(format!("{}{}", c.facility_type, c.claim.frequency.code())),
                    service_date: DateRange {
                        from: c.statement_from,
                        to: Some(c.statement_to),
                    },
                    lines: c
                        .lines
                        .iter()
                        .map(|l| ReceivedLine {
                            procedure: l.procedure.clone().unwrap_or_else(|| Procedure {
                                qualifier: "NU".into(),
                                code: l.revenue_code.clone(),
                                modifiers: Vec::new(),
                            }),
                            revenue_code: Some(l.revenue_code.clone()),
                            charge: l.charge,
                            units: l.units,
                            line_control_number: l.line_control_number.clone(),
                            service_date: l.service_date,
                            rendering_npi: None,
                        })
                        .collect(),
                    ..Self::common(&c.claim)
                })
                .collect(),
        }
    }

    /// The values both claim types share, with placeholders the callers overwrite.
    fn common(c: &ClaimCommon) -> Self {
        Self {
            kind: ClaimKind::Professional,
            payer_id: String::new(),
            billing_name: PartyName::organization(String::new()),
            billing_npi: String::new(),
            claim_provider: None,
            member_id: String::new(),
            patient_name: PersonName::default(),
            patient_control_number: c.patient_control_number.clone(),
            total_charge: c.total_charge,
            frequency: c.frequency,
            replaces: c.payer_claim_number.clone(),
            prior_authorization: c.prior_authorization.clone(),
            diagnoses: c.diagnoses.clone(),
            service_date: DateRange::day(NaiveDate::MIN),
            bill_type: None,
            lines: Vec::new(),
        }
    }

    /// Returns every date of service of the claim (each line's range ends, or the claim's).
    fn service_days(&self) -> Vec<NaiveDate> {
        let mut days: Vec<NaiveDate> = self
            .lines
            .iter()
            .filter_map(|l| l.service_date)
            .flat_map(|d| [Some(d.from), d.to])
            .flatten()
            .collect();
        days.push(self.service_date.from);
        days.extend(self.service_date.to);
        days
    }
}

/// Returns the range from the earliest to the latest date (a single day when they are equal).
fn span(dates: impl Iterator<Item = DateRange>) -> DateRange {
    let mut from: Option<NaiveDate> = None;
    let mut to: Option<NaiveDate> = None;
    for d in dates {
        let last = d.to.unwrap_or(d.from);
        from = Some(from.map_or(d.from, |f| f.min(d.from)));
        to = Some(to.map_or(last, |t| t.max(last)));
    }
    let from = from.unwrap_or(NaiveDate::MIN);
    DateRange {
        from,
        to: to.filter(|t| *t != from),
    }
}

/// Why a claim was rejected: the STC01 composite, a plain-words reason (STC12) and, for a
/// line-level edit, the 0-based line it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// STC01: category, status and entity.
    pub code: StatusCode,
    /// STC12 free text; names the field, never its value.
    pub reason: &'static str,
    /// The line the edit failed on (a 2220D STC is written for it).
    pub line: Option<usize>,
}

/// What duplicate detection needs to know about claims already accepted.
pub trait AcceptedLookup {
    /// Tells whether an original claim with this submitter, CLM01 and total was accepted before.
    fn is_duplicate(&self, submitter: &str, pcn: &str, total: Decimal) -> bool;
}

/// Returns a status code with its category description.
pub fn code(category: &str, status: &str, entity: Option<&str>) -> StatusCode {
    StatusCode {
        category: category.to_owned(),
        category_description: medbill_codesets::short_description(
            medbill_codesets::CodeList::ClaimStatusCategory,
            category,
        )
        .map(str::to_owned),
        status: status.to_owned(),
        entity: entity.map(str::to_owned),
    }
}

/// Runs the edits on one claim; `Ok` means it is accepted.
pub fn check(
    catalog: &Catalog,
    claim: &ReceivedClaim,
    submitter: &str,
    accepted: &dyn AcceptedLookup,
) -> Result<(), Box<Rejection>> {
    let reject = |category: &str, status: &str, entity: Option<&str>, reason, line| {
        Box::new(Rejection {
            code: code(category, status, entity),
            reason,
            line,
        })
    };
    let Some(payer) = catalog.payer(&claim.payer_id) else {
        return Err(reject(
            "A3",
            "116",
            Some("PR"),
            "PAYER ID 2010BB NM109 IS NOT SERVED HERE",
            None,
        ));
    };
    if !is_valid_npi(&claim.billing_npi) {
        return Err(reject(
            "A7",
            "562",
            Some("85"),
            "BILLING PROVIDER NPI 2010AA NM109 FAILS ITS CHECK DIGIT",
            None,
        ));
    }
    if let Some((npi, entity)) = &claim.claim_provider
        && !is_valid_npi(npi)
    {
        let reason = if *entity == "71" {
            "ATTENDING PROVIDER NPI 2310A NM109 FAILS ITS CHECK DIGIT"
        } else {
            "RENDERING PROVIDER NPI 2310B NM109 FAILS ITS CHECK DIGIT"
        };
        return Err(reject("A7", "562", Some(entity), reason, None));
    }
    if let Some(i) = claim
        .lines
        .iter()
        .position(|l| l.rendering_npi.as_deref().is_some_and(|n| !is_valid_npi(n)))
    {
        return Err(reject(
            "A7",
            "562",
            Some("82"),
            "LINE RENDERING PROVIDER NPI 2420A NM109 FAILS ITS CHECK DIGIT",
            Some(i),
        ));
    }
    let invalid = &catalog.claim_rules().invalid_diagnoses;
    if let Some(i) = claim
        .diagnoses
        .iter()
        .position(|d| !is_icd10_format(d) || invalid.iter().any(|x| x == d))
    {
        return Err(if i == 0 {
            reject(
                "A7",
                "254",
                None,
                "PRINCIPAL DIAGNOSIS HI01-2 IS NOT A VALID ICD-10-CM CODE",
                None,
            )
        } else {
            reject(
                "A7",
                "255",
                None,
                "A DIAGNOSIS IN HI IS NOT A VALID ICD-10-CM CODE",
                None,
            )
        });
    }
    let Some(member) = payer.member(&claim.member_id) else {
        return Err(reject(
            "A3",
            "33",
            Some("IL"),
            "SUBSCRIBER ID 2010BA NM109 IS NOT ON FILE",
            None,
        ));
    };
    if !claim
        .service_days()
        .into_iter()
        .all(|d| member.enrolled_on(d))
    {
        return Err(reject(
            "A3",
            "109",
            Some("IL"),
            "SUBSCRIBER NOT COVERED ON THE DATES OF SERVICE",
            None,
        ));
    }
    if claim.frequency == ClaimFrequency::Original
        && accepted.is_duplicate(submitter, &claim.patient_control_number, claim.total_charge)
    {
        return Err(reject(
            "A3",
            "78",
            None,
            "DUPLICATE OF A CLAIM ALREADY ACCEPTED",
            None,
        ));
    }
    Ok(())
}

/// Returns the meaning of a claim status code (code source 508), from medbill's code sets.
pub fn status_text(status: &str) -> Option<&'static str> {
    medbill_codesets::describe(medbill_codesets::CodeList::ClaimStatusCode, status)
}
