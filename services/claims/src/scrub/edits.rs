//! The scrub edits, one function each, appending to [`Findings`].
//!
//! Field paths use 0-based list indexes (`lines[1].modifiers[0]`); line numbers are 1-based; X12
//! locations name the loop, segment and element (composite position after a second dash) of
//! the 837P or 837I the claim is written as.

use chrono::NaiveDate;
use medbill_codesets::icd10::Icd10Answer;
use medbill_codesets::procedures::{
    HCPCS_LEVEL2_EDITION, NCCI_BYPASS_MODIFIERS, is_cpt_format, is_cpt_modifier,
    is_hcpcs_level2_code, is_hcpcs_level2_format, is_hcpcs_level2_modifier,
};
use medbill_codesets::{CodeList, describe};
use medbill_domain::Npi;
use rust_decimal::Decimal;

use super::{CoverageDates, Findings, ScrubContext, ScrubInput};
use crate::model::{ClaimLine, ClaimType, EditCode, MAX_DIAGNOSES, ScrubSeverity};

use EditCode as E;
use ScrubSeverity::{Error, Info, Warning};

/// Where a line's procedure code lands: SV1-01-2 (837P) or SV2-02-2 (837I).
fn x12_procedure(t: ClaimType) -> &'static str {
    match t {
        ClaimType::Professional => "2400 SV1-01-2",
        ClaimType::Institutional => "2400 SV2-02-2",
    }
}

/// Where modifier `m` (0-based) lands: SV1-01-3..6 or SV2-02-3..6.
fn x12_modifier(t: ClaimType, m: usize) -> String {
    match t {
        ClaimType::Professional => format!("2400 SV1-01-{}", m + 3),
        ClaimType::Institutional => format!("2400 SV2-02-{}", m + 3),
    }
}

/// Where a line's units land: SV1-04 or SV2-05.
fn x12_units(t: ClaimType) -> &'static str {
    match t {
        ClaimType::Professional => "2400 SV1-04",
        ClaimType::Institutional => "2400 SV2-05",
    }
}

/// Where diagnosis `i` (0-based) lands: HI01..HI12 of the 837P HI (ABK, ABF); on the 837I the
/// principal diagnosis is its own HI (ABK) and the others fill a second HI (ABF) from HI01.
fn x12_diagnosis(t: ClaimType, i: usize) -> String {
    match (t, i) {
        (ClaimType::Professional, _) => format!("2300 HI{:02}-2", i + 1),
        (ClaimType::Institutional, 0) => "2300 HI01-2 (ABK)".to_owned(),
        (ClaimType::Institutional, _) => format!("2300 HI{i:02}-2 (ABF)"),
    }
}

const X12_SERVICE_DATE: &str = "2400 DTP03";
const X12_PLACE_OF_SERVICE: &str = "2300 CLM05-1";

fn line_no(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

/// Fields an 837 needs that a claim could lack: payer, coverage, patient, diagnoses, lines,
/// place of service (837P) or facility type (837I), and per line the diagnosis pointers (837P)
/// or revenue code (837I).
pub fn required_fields(input: &ScrubInput<'_>, out: &mut Findings) {
    let c = input.claim;
    let mut require = |missing: bool, field: String, x12: &str, what: &str, line: u32| {
        if missing {
            out.push(
                E::RequiredField,
                Error,
                format!("{what} is required on the claim"),
                field,
                line,
                x12,
            );
        }
    };
    require(
        c.payer_id.trim().is_empty(),
        "payer_id".into(),
        "2010BB NM109",
        "the payer id",
        0,
    );
    require(
        c.coverage_id.trim().is_empty(),
        "coverage_id".into(),
        "2010BA NM109",
        "the coverage",
        0,
    );
    require(
        c.patient_ref.trim().is_empty(),
        "patient_ref".into(),
        "",
        "the patient reference",
        0,
    );
    require(
        c.diagnoses.is_empty(),
        "diagnoses".into(),
        "2300 HI01-2",
        "at least one diagnosis",
        0,
    );
    require(
        c.lines.is_empty(),
        "lines".into(),
        "2400 LX01",
        "at least one service line",
        0,
    );
    // The 837 names the patient (2010BA when the subscriber, else 2010CA): name, birth date,
    // gender and address are required there.
    let patient = c.details.patient.as_ref();
    let (name_loop, demo_loop) = if c.details.relationship() == crate::details::SELF {
        ("2010BA NM103", "2010BA")
    } else {
        ("2010CA NM103", "2010CA")
    };
    require(
        patient.is_none_or(|p| p.last_name.trim().is_empty()),
        "demographics.patient.name.last_name".into(),
        name_loop,
        "the patient's name",
        0,
    );
    if let Some(p) = patient {
        require(
            p.birth_date.is_none(),
            "demographics.patient.birth_date".into(),
            &format!("{demo_loop} DMG02"),
            "the patient's birth date",
            0,
        );
        require(
            p.gender.is_none(),
            "demographics.patient.gender".into(),
            &format!("{demo_loop} DMG03"),
            "the patient's gender",
            0,
        );
        require(
            p.address.is_none(),
            "demographics.patient.address".into(),
            &format!("{demo_loop} N301"),
            "the patient's address",
            0,
        );
    }
    match c.claim_type {
        ClaimType::Professional => {
            require(
                c.place_of_service.is_none(),
                "place_of_service".into(),
                X12_PLACE_OF_SERVICE,
                "the place of service",
                0,
            );
            for (i, line) in c.lines.iter().enumerate() {
                require(
                    line.diagnosis_pointers.is_empty(),
                    format!("lines[{i}].diagnosis_pointers"),
                    "2400 SV1-07-1",
                    "a diagnosis pointer on each professional line",
                    line_no(i),
                );
            }
        }
        ClaimType::Institutional => {
            require(
                c.facility_type_code.is_none(),
                "facility_type_code".into(),
                X12_PLACE_OF_SERVICE,
                "the facility type code",
                0,
            );
            for (i, line) in c.lines.iter().enumerate() {
                require(
                    line.revenue_code.is_none(),
                    format!("lines[{i}].revenue_code"),
                    "2400 SV2-01",
                    "a revenue code on each institutional line",
                    line_no(i),
                );
            }
        }
    }
}

/// Every NPI on the claim has 10 digits and a valid check digit (Luhn over 80840 + the NPI).
pub fn npis(input: &ScrubInput<'_>, out: &mut Findings) {
    for n in &input.npis {
        if let Err(e) = Npi::parse(&n.npi) {
            out.push(
                E::NpiCheckDigit,
                Error,
                format!("the NPI in {} is not valid: {e}", n.field),
                n.field.clone(),
                0,
                n.x12_location,
            );
        }
    }
}

/// The place of service is in the CMS place of service code set.
pub fn place_of_service(input: &ScrubInput<'_>, out: &mut Findings) {
    if let Some(pos) = &input.claim.place_of_service
        && describe(CodeList::PlaceOfService, pos).is_none()
    {
        out.push(
            E::PosInvalid,
            Error,
            format!("{pos} is not a CMS place of service code"),
            "place_of_service",
            0,
            X12_PLACE_OF_SERVICE,
        );
    }
}

/// Each diagnosis is valid and billable in the ICD-10-CM code set in force on the date of
/// service of each line pointing at it; a diagnosis no line points at (every diagnosis of an
/// 837I) is judged on the claim's last date of service.
pub fn diagnoses(input: &ScrubInput<'_>, ctx: &ScrubContext<'_>, out: &mut Findings) {
    let c = input.claim;
    // (diagnosis index, date, 1-based line or 0)
    let mut checks: Vec<(usize, NaiveDate, u32)> = Vec::new();
    for (i, line) in c.lines.iter().enumerate() {
        for &p in &line.diagnosis_pointers {
            let Some(idx) = usize::try_from(p).ok().and_then(|p| p.checked_sub(1)) else {
                continue;
            };
            if idx < c.diagnoses.len()
                && !checks
                    .iter()
                    .any(|(d, date, _)| *d == idx && *date == line.service_date)
            {
                checks.push((idx, line.service_date, line_no(i)));
            }
        }
    }
    for idx in 0..c.diagnoses.len() {
        if !checks.iter().any(|(d, _, _)| *d == idx) {
            checks.push((idx, c.service_date_to, 0));
        }
    }
    checks.sort_by_key(|(idx, _, line)| (*idx, *line));
    // One finding per diagnosis, edit and code set, however many lines share it.
    let mut seen: Vec<(usize, EditCode, Option<&str>)> = Vec::new();
    for (idx, date, line) in checks {
        let code = &c.diagnoses[idx];
        let whose = if line == 0 {
            "the claim's date of service".to_owned()
        } else {
            format!("the date of service of line {line}")
        };
        let (edit, severity, edition, message) = match ctx.code_sets.icd10.lookup(code, date) {
            Icd10Answer::Billable { .. } => continue,
            Icd10Answer::Header { edition } => (
                E::Icd10NotBillable,
                Error,
                Some(edition),
                format!(
                    "{code} is a header in ICD-10-CM {edition}, not a billable code: add the characters that complete it"
                ),
            ),
            Icd10Answer::InvalidOnDate { edition, valid_in } => (
                E::Icd10InvalidOnDos,
                Error,
                Some(edition),
                format!(
                    "{code} is not valid in ICD-10-CM {edition}, the code set in force on {whose}; it is valid in {}",
                    valid_in.join(", ")
                ),
            ),
            Icd10Answer::Unknown { edition } => (
                E::Icd10Unknown,
                Error,
                Some(edition),
                format!(
                    "{code} is not an ICD-10-CM code in {edition} or any other loaded code set"
                ),
            ),
            Icd10Answer::NoCodeSet => (
                E::Icd10CodeSetMissing,
                Warning,
                None,
                format!(
                    "{code} was not checked: no ICD-10-CM code set is loaded for {whose} (add the CMS order file covering it under claims.code_sets.icd10cm)"
                ),
            ),
        };
        if seen.contains(&(idx, edit, edition)) {
            continue;
        }
        seen.push((idx, edit, edition));
        out.push(
            edit,
            severity,
            message,
            format!("diagnoses[{idx}]"),
            line,
            x12_diagnosis(c.claim_type, idx),
        );
    }
}

/// External cause codes (chapter 20, V00-Y99) describe how an injury happened and are never
/// the first-listed diagnosis.
fn is_external_cause(code: &str) -> bool {
    matches!(code.as_bytes().first(), Some(b'V' | b'W' | b'X' | b'Y'))
}

/// Diagnosis pointers (837P SV107): 1..12, each at an existing diagnosis, none twice on a line,
/// the first (primary) at a diagnosis that may be first-listed; every diagnosis pointed at by
/// some line. The principal diagnosis may not be an external cause code on either claim type.
pub fn diagnosis_pointers(input: &ScrubInput<'_>, out: &mut Findings) {
    let c = input.claim;
    if let Some(principal) = c.diagnoses.first()
        && is_external_cause(principal)
    {
        out.push(
            E::DiagnosisPointerPrimary,
            Error,
            format!(
                "{principal} is an external cause code (V00-Y99), which cannot be the principal diagnosis: list the injury or condition first"
            ),
            "diagnoses[0]",
            0,
            x12_diagnosis(c.claim_type, 0),
        );
    }
    if c.claim_type != ClaimType::Professional {
        return;
    }
    let mut pointed = vec![false; c.diagnoses.len()];
    for (i, line) in c.lines.iter().enumerate() {
        for (p, &pointer) in line.diagnosis_pointers.iter().enumerate() {
            let field = format!("lines[{i}].diagnosis_pointers[{p}]");
            let x12 = format!("2400 SV1-07-{}", p + 1);
            let limit = u32::try_from(MAX_DIAGNOSES).unwrap_or(u32::MAX);
            let target = usize::try_from(pointer)
                .ok()
                .and_then(|ptr| ptr.checked_sub(1))
                .filter(|idx| *idx < c.diagnoses.len());
            if pointer == 0 || pointer > limit {
                out.push(
                    E::DiagnosisPointerRange,
                    Error,
                    format!("diagnosis pointer {pointer} is outside 1..{limit}"),
                    field,
                    line_no(i),
                    x12,
                );
                continue;
            }
            let Some(idx) = target else {
                out.push(
                    E::DiagnosisPointerRange,
                    Error,
                    format!(
                        "diagnosis pointer {pointer} points at no diagnosis: the claim has {}",
                        c.diagnoses.len()
                    ),
                    field,
                    line_no(i),
                    x12,
                );
                continue;
            };
            pointed[idx] = true;
            if line.diagnosis_pointers[..p].contains(&pointer) {
                out.push(
                    E::DiagnosisPointerDuplicate,
                    Error,
                    format!("diagnosis pointer {pointer} appears twice on the line"),
                    field,
                    line_no(i),
                    x12,
                );
            } else if p == 0 && idx != 0 && is_external_cause(&c.diagnoses[idx]) {
                out.push(
                    E::DiagnosisPointerPrimary,
                    Error,
                    format!(
                        "the line's first (primary) pointer is at {}, an external cause code, which cannot be the primary diagnosis of a service",
                        c.diagnoses[idx]
                    ),
                    field,
                    line_no(i),
                    x12,
                );
            }
        }
    }
    for (idx, was) in pointed.iter().enumerate() {
        if !was {
            out.push(
                E::DiagnosisNotPointed,
                Warning,
                format!(
                    "diagnosis {} is not pointed at by any line; point a line at it or remove it",
                    idx + 1
                ),
                format!("diagnoses[{idx}]"),
                0,
                x12_diagnosis(c.claim_type, idx),
            );
        }
    }
}

/// Procedure codes: a CPT-shaped code is checked against the licensed CPT file when one is
/// configured (otherwise an INFO note says it was not), a HCPCS Level II code against the
/// shipped quarter, anything else is refused.
pub fn procedure_codes(input: &ScrubInput<'_>, ctx: &ScrubContext<'_>, out: &mut Findings) {
    let t = input.claim.claim_type;
    for (i, line) in input.claim.lines.iter().enumerate() {
        let code = line.procedure_code.as_str();
        let field = format!("lines[{i}].procedure_code");
        if is_cpt_format(code) {
            match &ctx.code_sets.cpt {
                Some(cpt) if !cpt.contains(code) => out.push(
                    E::CptInvalid,
                    Error,
                    format!("{code} is not in the licensed CPT code file configured"),
                    field,
                    line_no(i),
                    x12_procedure(t),
                ),
                Some(_) => {}
                None => out.push(
                    E::CptNotChecked,
                    Info,
                    format!(
                        "CPT content not checked: no licensed CPT file configured ({code} has the CPT format)"
                    ),
                    field,
                    line_no(i),
                    x12_procedure(t),
                ),
            }
        } else if is_hcpcs_level2_format(code) {
            if !is_hcpcs_level2_code(code) {
                out.push(
                    E::HcpcsInvalid,
                    Error,
                    format!(
                        "{code} is not in the HCPCS Level II code set ({HCPCS_LEVEL2_EDITION} quarter)"
                    ),
                    field,
                    line_no(i),
                    x12_procedure(t),
                );
            }
        } else if code.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
            out.push(
                E::HcpcsInvalid,
                Error,
                format!("{code:?} is not a HCPCS Level II code (a letter A-V and four digits)"),
                field,
                line_no(i),
                x12_procedure(t),
            );
        } else {
            out.push(
                E::CptFormat,
                Error,
                format!("{code:?} is not a CPT code (four digits and a digit, F, T, U or M)"),
                field,
                line_no(i),
                x12_procedure(t),
            );
        }
    }
}

fn is_evaluation_and_management(code: &str) -> bool {
    code.len() == 5
        && code
            .parse::<u32>()
            .is_ok_and(|n| (99202..=99499).contains(&n))
}

/// Modifiers: each a HCPCS Level II modifier or a listed CPT modifier; none twice; LT and RT
/// not together (and neither with 50); 26 not with TC; 25 only on an E/M code (a warning).
pub fn modifiers(input: &ScrubInput<'_>, out: &mut Findings) {
    let t = input.claim.claim_type;
    for (i, line) in input.claim.lines.iter().enumerate() {
        for (m, modifier) in line.modifiers.iter().enumerate() {
            let field = format!("lines[{i}].modifiers[{m}]");
            let earlier = &line.modifiers[..m];
            let has = |x: &str| earlier.iter().any(|e| e == x);
            let mut not_allowed = |severity: ScrubSeverity, message: String| {
                out.push(
                    E::ModifierNotAllowed,
                    severity,
                    message,
                    field.clone(),
                    line_no(i),
                    x12_modifier(t, m),
                );
            };
            if !is_hcpcs_level2_modifier(modifier) && !is_cpt_modifier(modifier) {
                out.push(
                    E::ModifierUnknown,
                    Error,
                    format!(
                        "{modifier:?} is neither a HCPCS Level II modifier nor a known CPT modifier"
                    ),
                    field.clone(),
                    line_no(i),
                    x12_modifier(t, m),
                );
            } else if has(modifier) {
                not_allowed(
                    Error,
                    format!("modifier {modifier} appears twice on the line"),
                );
            } else if (modifier == "LT" && has("RT")) || (modifier == "RT" && has("LT")) {
                not_allowed(
                    Error,
                    "LT and RT on one line: bill a bilateral service with 50, or each side on its own line".to_owned(),
                );
            } else if (modifier == "50" && (has("LT") || has("RT")))
                || ((modifier == "LT" || modifier == "RT") && has("50"))
            {
                not_allowed(
                    Error,
                    "50 (bilateral) already covers both sides: drop LT/RT".to_owned(),
                );
            } else if (modifier == "26" && has("TC")) || (modifier == "TC" && has("26")) {
                not_allowed(
                    Error,
                    "26 (professional component) and TC (technical component) together are the global service: bill it without either".to_owned(),
                );
            } else if modifier == "25" && !is_evaluation_and_management(&line.procedure_code) {
                not_allowed(
                    Warning,
                    format!(
                        "25 marks a separately identifiable evaluation and management service, but {} is not an E/M code (99202-99499)",
                        line.procedure_code
                    ),
                );
            }
        }
    }
}

fn has_bypass_modifier(line: &ClaimLine) -> bool {
    line.modifiers
        .iter()
        .any(|m| NCCI_BYPASS_MODIFIERS.contains(&m.as_str()))
}

/// NCCI procedure-to-procedure edits between lines with the same date of service: with
/// modifier indicator 0 the column 2 code is never paid with the column 1 code; with 1 an
/// NCCI-associated modifier (59, XE, XS, XP, XU, anatomic, ...) on either line allows it.
pub fn ncci_ptp(input: &ScrubInput<'_>, ctx: &ScrubContext<'_>, out: &mut Findings) {
    use medbill_codesets::ncci::ModifierIndicator;
    let c = input.claim;
    let edits = ctx.code_sets.ptp(c.claim_type);
    if edits.is_empty() {
        return;
    }
    for (i, first) in c.lines.iter().enumerate() {
        for (j, second) in c.lines.iter().enumerate() {
            if i == j
                || first.service_date != second.service_date
                || first.procedure_code == second.procedure_code
            {
                continue;
            }
            let Some(edit) = edits.applicable(
                &first.procedure_code,
                &second.procedure_code,
                first.service_date,
            ) else {
                continue;
            };
            let (col1, col2) = (&first.procedure_code, &second.procedure_code);
            let message = match edit.modifier {
                ModifierIndicator::NotAllowed => format!(
                    "NCCI: {col2} (line {}) is not payable with {col1} (line {}) on the same date of service, and no modifier allows it (modifier indicator 0; {})",
                    j + 1,
                    i + 1,
                    edit.rationale
                ),
                ModifierIndicator::Allowed
                    if has_bypass_modifier(first) || has_bypass_modifier(second) =>
                {
                    continue;
                }
                ModifierIndicator::Allowed => format!(
                    "NCCI: {col2} (line {}) is not payable with {col1} (line {}) on the same date of service unless a modifier such as 59, XE, XS, XP or XU shows a distinct service (modifier indicator 1; {})",
                    j + 1,
                    i + 1,
                    edit.rationale
                ),
                ModifierIndicator::NotApplicable => continue,
            };
            out.push(
                E::NcciPtp,
                Error,
                message,
                format!("lines[{j}].procedure_code"),
                line_no(j),
                x12_procedure(c.claim_type),
            );
        }
    }
}

/// Medically unlikely edits: units on a line over the code's MUE; and, for date-of-service
/// MUEs (adjudication indicator 2 or 3), units of the code over all lines of one date.
pub fn mue(input: &ScrubInput<'_>, ctx: &ScrubContext<'_>, out: &mut Findings) {
    let c = input.claim;
    let limits = ctx.code_sets.mue(c.claim_type);
    if limits.is_empty() {
        return;
    }
    let mut line_over = vec![false; c.lines.len()];
    for (i, line) in c.lines.iter().enumerate() {
        let Some(limit) = limits.get(&line.procedure_code) else {
            continue;
        };
        if line.units > Decimal::from(limit.value) {
            line_over[i] = true;
            out.push(
                E::MueUnits,
                Error,
                format!(
                    "{} units of {} exceed its medically unlikely edit of {} (adjudication indicator {})",
                    line.units.normalize(),
                    line.procedure_code,
                    limit.value,
                    limit.indicator.as_str()
                ),
                format!("lines[{i}].units"),
                line_no(i),
                x12_units(c.claim_type),
            );
        }
    }
    let mut done: Vec<(&str, NaiveDate)> = Vec::new();
    for (i, line) in c.lines.iter().enumerate() {
        let key = (line.procedure_code.as_str(), line.service_date);
        let Some(limit) = limits.get(key.0).filter(|l| l.indicator.per_day()) else {
            continue;
        };
        if done.contains(&key) {
            continue;
        }
        done.push(key);
        let same: Vec<usize> = (i..c.lines.len())
            .filter(|&k| (c.lines[k].procedure_code.as_str(), c.lines[k].service_date) == key)
            .collect();
        if same.len() < 2 || same.iter().any(|&k| line_over[k]) {
            continue;
        }
        let total: Decimal = same.iter().map(|&k| c.lines[k].units).sum();
        if total > Decimal::from(limit.value) {
            let last = same.last().copied().unwrap_or(i);
            let lines = same
                .iter()
                .map(|k| (k + 1).to_string())
                .collect::<Vec<_>>()
                .join(", ");
            out.push(
                E::MueUnits,
                Error,
                format!(
                    "{} units of {} on one date of service (lines {lines}) exceed its per-day medically unlikely edit of {} (adjudication indicator {})",
                    total.normalize(),
                    key.0,
                    limit.value,
                    limit.indicator.as_str()
                ),
                format!("lines[{last}].units"),
                line_no(last),
                x12_units(c.claim_type),
            );
        }
    }
}

/// Days before the filing limit from which a warning is given.
const TIMELY_FILING_WARNING_DAYS: i64 = 30;

/// The payer's timely filing limit, counted in days from each date of service to today: past
/// it an error, within the last 30 days a warning. One finding per date of service.
pub fn timely_filing(input: &ScrubInput<'_>, ctx: &ScrubContext<'_>, out: &mut Findings) {
    let c = input.claim;
    let limit = i64::from(ctx.payer.timely_filing_days);
    let mut dates: Vec<NaiveDate> = Vec::new();
    for (i, line) in c.lines.iter().enumerate() {
        if dates.contains(&line.service_date) {
            continue;
        }
        dates.push(line.service_date);
        let age = (ctx.today - line.service_date).num_days();
        let field = format!("lines[{i}].service_date");
        if age > limit {
            out.push(
                E::TimelyFiling,
                Error,
                format!(
                    "line {} was served {age} days ago; payer {} accepts claims up to {limit} days after the date of service",
                    i + 1,
                    c.payer_id
                ),
                field,
                line_no(i),
                X12_SERVICE_DATE,
            );
        } else if limit > TIMELY_FILING_WARNING_DAYS && age > limit - TIMELY_FILING_WARNING_DAYS {
            out.push(
                E::TimelyFiling,
                Warning,
                format!(
                    "line {} was served {age} days ago; payer {} accepts claims up to {limit} days after the date of service: {} days left",
                    i + 1,
                    c.payer_id,
                    limit - age
                ),
                field,
                line_no(i),
                X12_SERVICE_DATE,
            );
        }
    }
}

/// The coverage (from the eligibility service) is in force on each line's date of service.
pub fn coverage(input: &ScrubInput<'_>, ctx: &ScrubContext<'_>, out: &mut Findings) {
    let c = input.claim;
    match ctx.coverage {
        CoverageDates::NotFound => out.push(
            E::CoverageInactive,
            Error,
            "the coverage this claim bills no longer exists in the eligibility service",
            "coverage_id",
            0,
            "2010BA NM109",
        ),
        CoverageDates::Known {
            effective,
            termination,
        } => {
            for (i, line) in c.lines.iter().enumerate() {
                let message = if line.service_date < effective {
                    format!(
                        "the date of service of line {} is before the coverage's effective date",
                        i + 1
                    )
                } else if termination.is_some_and(|t| line.service_date > t) {
                    format!(
                        "the date of service of line {} is after the coverage's termination date",
                        i + 1
                    )
                } else {
                    continue;
                };
                out.push(
                    E::CoverageInactive,
                    Error,
                    message,
                    format!("lines[{i}].service_date"),
                    line_no(i),
                    X12_SERVICE_DATE,
                );
            }
        }
    }
}

/// Procedures the payer pays only with a prior authorization carry a number (REF*G1) on the
/// line or the claim. When the coverage's approved authorizations were read from the eligibility
/// service, the number must be one of them, certify the line's procedure on its date of service,
/// and have units left for it (other claims' lines and this claim's lines with the same number
/// and procedure, in line order, use them up).
pub fn prior_authorization(input: &ScrubInput<'_>, ctx: &ScrubContext<'_>, out: &mut Findings) {
    let needed = &ctx.payer.procedures_requiring_authorization;
    if needed.is_empty() {
        return;
    }
    let mut used: Vec<(String, String, rust_decimal::Decimal)> = Vec::new();
    for (i, line) in input.claim.lines.iter().enumerate() {
        if !needed.contains(&line.procedure_code) {
            continue;
        }
        let field = format!("lines[{i}].prior_authorization");
        let mut fail = |message: String| {
            out.push(
                E::PriorAuthMissing,
                Error,
                message,
                field.clone(),
                line_no(i),
                "2400 REF02 (REF01 G1)",
            );
        };
        let Some(number) = input.authorizations.number_of(i) else {
            let hint = ctx
                .approved_authorizations
                .and_then(|all| {
                    all.iter().find(|a| {
                        a.services.iter().any(|s| {
                            s.procedure_code == line.procedure_code
                                && (s.from..=s.to).contains(&line.service_date)
                        })
                    })
                })
                .map(|a| format!(" (approved authorization {} covers it)", a.number))
                .unwrap_or_default();
            fail(format!(
                "payer {} requires a prior authorization number for {}; none is on the line or the claim{hint}",
                input.claim.payer_id, line.procedure_code
            ));
            continue;
        };
        let Some(approved) = ctx.approved_authorizations else {
            continue;
        };
        let Some(auth) = approved.iter().find(|a| a.number == number) else {
            fail(format!(
                "prior authorization {number} is not an approved authorization of the claim's coverage"
            ));
            continue;
        };
        let for_code: Vec<&super::AuthorizedService> = auth
            .services
            .iter()
            .filter(|s| s.procedure_code == line.procedure_code)
            .collect();
        if for_code.is_empty() {
            fail(format!(
                "prior authorization {number} does not certify procedure {}",
                line.procedure_code
            ));
            continue;
        }
        let Some(service) = for_code
            .iter()
            .find(|s| (s.from..=s.to).contains(&line.service_date))
        else {
            let s = for_code[0];
            fail(format!(
                "prior authorization {number} certifies {} from {} to {}; the line's date of service {} is outside it (expired or not yet valid)",
                line.procedure_code, s.from, s.to, line.service_date
            ));
            continue;
        };
        let Some(limit) = service.units else {
            continue;
        };
        let key = (number.to_owned(), line.procedure_code.clone());
        let so_far = used
            .iter()
            .find(|(n, c, _)| (n, c) == (&key.0, &key.1))
            .map_or(rust_decimal::Decimal::ZERO, |(_, _, u)| *u);
        let total = so_far + line.units;
        if total + service.used_elsewhere > limit {
            let elsewhere = if service.used_elsewhere.is_zero() {
                String::new()
            } else {
                format!(
                    " and other claims already billed {}",
                    service.used_elsewhere
                )
            };
            fail(format!(
                "prior authorization {number} certifies {limit} unit(s) of {}; this claim bills {total}{elsewhere} (exhausted)",
                line.procedure_code
            ));
        }
        match used.iter_mut().find(|(n, c, _)| (n, c) == (&key.0, &key.1)) {
            Some(entry) => entry.2 = total,
            None => used.push((key.0, key.1, total)),
        }
    }
}
