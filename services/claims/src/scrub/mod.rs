//! Claim scrubbing: the edits a claim must pass before it is sent, as a pure function of the
//! claim ([`ScrubInput`]) and what is known about it ([`ScrubContext`]: code sets, the payer's
//! rules, today's date, and the answers of the checks that need I/O, which the RPC asks first).
//!
//! Every finding names its edit code (stable, see [`EditCode`]), severity, a plain message with
//! no PHI, the claim field (0-based list indexes, as the proto says), the 1-based line number and
//! the 837 location it lands in. [`scrub`] returns errors first, then warnings, then notes.
//!
//! - [`edits`]: the edits, one function each.
//! - `rpc`: ScrubClaim, the gRPC face.

pub mod edits;
pub(crate) mod rpc;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use medbill_codesets::icd10::Icd10CodeSets;
use medbill_codesets::ncci::{MueLimits, PtpEdits};
use medbill_codesets::procedures::CptCodes;

use crate::model::{Claim, ClaimType, EditCode, ScrubFinding, ScrubSeverity};
use crate::settings::DEFAULT_TIMELY_FILING_DAYS;

/// The code sets the edits read; loaded once at start and shared.
#[derive(Debug, Default)]
pub struct CodeSets {
    /// ICD-10-CM editions by date of service.
    pub icd10: Icd10CodeSets,
    /// The licensed CPT list, when one is configured.
    pub cpt: Option<CptCodes>,
    /// NCCI PTP edits for professional claims (practitioner files).
    pub ptp_professional: PtpEdits,
    /// NCCI PTP edits for institutional claims (hospital outpatient files).
    pub ptp_institutional: PtpEdits,
    /// MUEs for professional claims.
    pub mue_professional: MueLimits,
    /// MUEs for institutional claims.
    pub mue_institutional: MueLimits,
}

impl CodeSets {
    /// Returns the shipped code sets only (ICD-10-CM FY2025 and FY2026 April, HCPCS Level II;
    /// no CPT file, no NCCI files).
    pub fn builtin() -> Self {
        Self {
            icd10: Icd10CodeSets::builtin(),
            ..Self::default()
        }
    }

    fn ptp(&self, claim_type: ClaimType) -> &PtpEdits {
        match claim_type {
            ClaimType::Professional => &self.ptp_professional,
            ClaimType::Institutional => &self.ptp_institutional,
        }
    }

    fn mue(&self, claim_type: ClaimType) -> &MueLimits {
        match claim_type {
            ClaimType::Professional => &self.mue_professional,
            ClaimType::Institutional => &self.mue_institutional,
        }
    }
}

/// One payer's scrub rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayerRules {
    /// Days after the date of service the payer accepts a claim.
    pub timely_filing_days: u32,
    /// Procedure codes the payer pays only with a prior authorization number.
    pub procedures_requiring_authorization: HashSet<String>,
}

impl Default for PayerRules {
    fn default() -> Self {
        Self {
            timely_filing_days: DEFAULT_TIMELY_FILING_DAYS,
            procedures_requiring_authorization: HashSet::new(),
        }
    }
}

/// Everything configured for scrubbing: code sets and payer rules, shared by every call.
#[derive(Debug, Default)]
pub struct ScrubRules {
    code_sets: CodeSets,
    payers: HashMap<String, PayerRules>,
    default_payer: PayerRules,
}

impl ScrubRules {
    /// Builds the rules from loaded code sets and per-payer rules.
    pub fn new(code_sets: CodeSets, payers: HashMap<String, PayerRules>) -> Self {
        Self {
            code_sets,
            payers,
            default_payer: PayerRules::default(),
        }
    }

    /// Returns the shipped code sets with default payer rules (365 days, no authorizations).
    pub fn builtin() -> Arc<Self> {
        Arc::new(Self::new(CodeSets::builtin(), HashMap::new()))
    }

    /// Returns the code sets.
    pub fn code_sets(&self) -> &CodeSets {
        &self.code_sets
    }

    /// Returns the rules of `payer_id`, or the defaults.
    pub fn payer(&self, payer_id: &str) -> &PayerRules {
        self.payers.get(payer_id).unwrap_or(&self.default_payer)
    }
}

/// What the eligibility service says about the claim's coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoverageDates {
    /// The coverage exists and is in force from `effective` through `termination` (open-ended
    /// when `None`).
    Known {
        /// First day in force.
        effective: NaiveDate,
        /// Last day in force.
        termination: Option<NaiveDate>,
    },
    /// The coverage no longer exists for the tenant.
    NotFound,
}

/// Prior authorization numbers on the claim (REF*G1), claim level and per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authorizations {
    /// The claim's number (loop 2300), if any.
    pub claim: Option<String>,
    /// Each line's number (loop 2400), by line index; missing entries mean none.
    pub lines: Vec<Option<String>>,
}

impl Authorizations {
    /// Returns the number that applies to a line: its own, else the claim's.
    pub fn number_of(&self, index: usize) -> Option<&str> {
        fn present(n: &Option<String>) -> Option<&str> {
            n.as_deref().filter(|s| !s.trim().is_empty())
        }
        self.lines
            .get(index)
            .and_then(present)
            .or_else(|| present(&self.claim))
    }
}

/// An NPI on the claim with where it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpiField {
    /// Claim field path, e.g. `billing_provider_npi`.
    pub field: String,
    /// 837 location, e.g. `2010AA NM109`.
    pub x12_location: &'static str,
    /// The NPI as stored.
    pub npi: String,
}

/// The claim as the edits see it.
#[derive(Debug, Clone)]
pub struct ScrubInput<'a> {
    /// The claim.
    pub claim: &'a Claim,
    /// Every NPI on the claim.
    pub npis: Vec<NpiField>,
    /// Prior authorization numbers.
    pub authorizations: Authorizations,
}

impl<'a> ScrubInput<'a> {
    /// Builds the input from a stored claim.
    pub fn from_claim(claim: &'a Claim) -> Self {
        let mut npis = vec![NpiField {
            field: "billing_provider_npi".to_owned(),
            x12_location: "2010AA NM109",
            npi: claim.billing_provider_npi.to_string(),
        }];
        if let Some(rendering) = &claim.rendering_provider_npi {
            npis.push(NpiField {
                field: "rendering_provider_npi".to_owned(),
                x12_location: match claim.claim_type {
                    ClaimType::Professional => "2310B NM109",
                    ClaimType::Institutional => "2310D NM109",
                },
                npi: rendering.to_string(),
            });
        }
        let d = &claim.details;
        let others = [
            (
                "referring_provider_npi",
                "2310A NM109",
                "2310F NM109",
                d.referring_provider_npi.as_deref(),
            ),
            (
                "service_facility_npi",
                "2310C NM109",
                "2310E NM109",
                d.service_facility_npi.as_deref(),
            ),
            (
                "institutional.attending_provider_npi",
                "2310A NM109",
                "2310A NM109",
                d.institutional
                    .as_ref()
                    .map(|i| i.attending_provider_npi.as_str()),
            ),
        ];
        for (field, professional, institutional, npi) in others {
            if let Some(npi) = npi {
                npis.push(NpiField {
                    field: field.to_owned(),
                    x12_location: match claim.claim_type {
                        ClaimType::Professional => professional,
                        ClaimType::Institutional => institutional,
                    },
                    npi: npi.to_owned(),
                });
            }
        }
        Self {
            claim,
            npis,
            authorizations: Authorizations {
                claim: d.prior_authorization_number.clone(),
                lines: claim
                    .lines
                    .iter()
                    .map(|l| l.prior_authorization_number.clone())
                    .collect(),
            },
        }
    }
}

/// What the edits know besides the claim.
#[derive(Debug, Clone, Copy)]
pub struct ScrubContext<'a> {
    /// The code sets.
    pub code_sets: &'a CodeSets,
    /// The claim payer's rules.
    pub payer: &'a PayerRules,
    /// Today, for timely filing.
    pub today: NaiveDate,
    /// The coverage's dates from the eligibility service.
    pub coverage: CoverageDates,
    /// The coverage's approved prior authorizations from the eligibility service; `None` when
    /// they were not read (no line needs one, or the claim is scrubbed without asking), in which
    /// case only the presence of a number is checked.
    pub approved_authorizations: Option<&'a [ApprovedAuthorization]>,
}

/// An approved prior authorization as the scrub uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovedAuthorization {
    /// The number quoted on the claim (REF*G1).
    pub number: String,
    /// The services it certifies.
    pub services: Vec<AuthorizedService>,
}

/// One certified service of an [`ApprovedAuthorization`].
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizedService {
    /// Procedure code.
    pub procedure_code: String,
    /// Units approved (`None` when the payer gave no count).
    pub units: Option<rust_decimal::Decimal>,
    /// First certified day.
    pub from: NaiveDate,
    /// Last certified day.
    pub to: NaiveDate,
    /// Units of this procedure other claims already billed under the number (line-level
    /// numbers only).
    pub used_elsewhere: rust_decimal::Decimal,
}

impl ApprovedAuthorization {
    /// Adds the units other claims billed: (number, procedure code, units) rows.
    pub fn add_used_elsewhere(all: &mut [Self], used: &[(String, String, rust_decimal::Decimal)]) {
        for (number, code, units) in used {
            let services = all
                .iter_mut()
                .filter(|a| &a.number == number)
                .flat_map(|a| a.services.iter_mut())
                .filter(|s| &s.procedure_code == code);
            for s in services {
                s.used_elsewhere += *units;
            }
        }
    }

    /// Reads an authorization answered by the eligibility service; services the payer did not
    /// certify, or whose dates do not read, are left out.
    pub fn from_proto(a: &medbill_proto::eligibility::v1::PriorAuthorization) -> Self {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        let overall = a.certified_dates.as_ref();
        let services = a
            .services
            .iter()
            .filter(|s| matches!(s.action_code.as_str(), "A1" | "A2" | "A6"))
            .filter_map(|s| {
                let dates = s.certified_dates.as_ref().or(overall)?;
                Some(AuthorizedService {
                    procedure_code: s.procedure.as_ref()?.code.clone(),
                    units: rust_decimal::Decimal::from_str_exact(&s.approved_units).ok(),
                    from: day(&dates.from_date)?,
                    to: day(&dates.to_date).or(day(&dates.from_date))?,
                    used_elsewhere: rust_decimal::Decimal::ZERO,
                })
            })
            .collect();
        Self {
            number: a.authorization_number.clone(),
            services,
        }
    }
}

/// Collects findings.
#[derive(Debug, Default)]
pub struct Findings(Vec<ScrubFinding>);

impl Findings {
    /// Adds a finding.
    pub fn push(
        &mut self,
        edit_code: EditCode,
        severity: ScrubSeverity,
        message: impl Into<String>,
        field: impl Into<String>,
        line_number: u32,
        x12_location: impl Into<String>,
    ) {
        self.0.push(ScrubFinding {
            edit_code,
            severity,
            message: message.into(),
            field: field.into(),
            line_number,
            x12_location: x12_location.into(),
        });
    }
}

/// Runs every edit and returns the findings: errors first, then warnings, then notes; within a
/// severity in the order the edits ran (claim-wide edits, then line by line).
pub fn scrub(input: &ScrubInput<'_>, ctx: &ScrubContext<'_>) -> Vec<ScrubFinding> {
    let mut out = Findings::default();
    edits::required_fields(input, &mut out);
    edits::npis(input, &mut out);
    edits::place_of_service(input, &mut out);
    edits::diagnoses(input, ctx, &mut out);
    edits::diagnosis_pointers(input, &mut out);
    edits::procedure_codes(input, ctx, &mut out);
    edits::modifiers(input, &mut out);
    edits::ncci_ptp(input, ctx, &mut out);
    edits::mue(input, ctx, &mut out);
    edits::timely_filing(input, ctx, &mut out);
    edits::coverage(input, ctx, &mut out);
    edits::prior_authorization(input, ctx, &mut out);
    let mut findings = out.0;
    // A stable sort keeps the edit order within a severity.
    findings.sort_by_key(|f| std::cmp::Reverse(severity_rank(f.severity)));
    findings
}

fn severity_rank(s: ScrubSeverity) -> u8 {
    match s {
        ScrubSeverity::Info => 0,
        ScrubSeverity::Warning => 1,
        ScrubSeverity::Error => 2,
    }
}

/// Returns how many findings are errors.
pub fn error_count(findings: &[ScrubFinding]) -> usize {
    findings
        .iter()
        .filter(|f| f.severity == ScrubSeverity::Error)
        .count()
}
