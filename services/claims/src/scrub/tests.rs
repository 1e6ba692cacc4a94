//! The edits on claims built in memory: a clean claim passes, and each edit fires with its
//! field, line and X12 location.

use std::collections::HashSet;

use chrono::{NaiveDate, Utc};
use medbill_codesets::ncci::{MueLimits, PtpEdits};
use medbill_codesets::procedures::CptCodes;
use medbill_domain::{ClaimId, Money, Npi, PatientControlNumber};
use rust_decimal::Decimal;

use super::*;
use crate::model::{Claim, ClaimLine, ClaimStatus, ClaimType, FrequencyCode};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn line(code: &str, day: &str, pointers: Vec<u32>) -> ClaimLine {
    ClaimLine {
        line_number: 0,
        line_control_number: "L".into(),
        procedure_code: code.into(),
        modifiers: vec![],
        revenue_code: None,
        charge: Money::parse("100.00").unwrap(),
        units: Decimal::ONE,
        service_date: d(day),
        diagnosis_pointers: pointers,
        prior_authorization_number: None,
        referral_number: None,
    }
}

/// A clean professional claim: E119 and I10 on 2026-05-04 (FY2026 April), HCPCS G0439 and G0444.
fn claim() -> Claim {
    let now = Utc::now();
    Claim {
        id: ClaimId::new(),
        patient_control_number: PatientControlNumber::parse("PCN-1").unwrap(),
        claim_type: ClaimType::Professional,
        status: ClaimStatus::Draft,
        frequency_code: FrequencyCode::Original,
        payer_claim_control_number: None,
        coverage_id: "cov".into(),
        payer_id: "60054".into(),
        patient_ref: "pat".into(),
        billing_provider_npi: Npi::parse("1234567893").unwrap(),
        rendering_provider_npi: None,
        place_of_service: Some("11".into()),
        facility_type_code: None,
        diagnoses: vec!["E119".into(), "I10".into()],
        lines: vec![
            line("G0439", "2026-05-04", vec![1, 2]),
            line("G0444", "2026-05-04", vec![2]),
        ],
        total_charge: Money::parse("200.00").unwrap(),
        service_date_from: d("2026-05-04"),
        service_date_to: d("2026-05-04"),
        encounter_ref: None,
        details: crate::details::ClaimDetails {
            patient: Some(crate::details::ClaimPerson {
                last_name: "TESTPATIENT".into(),
                first_name: "AVERY".into(),
                birth_date: Some(d("1985-03-14")),
                gender: Some("F".into()),
                address: Some(crate::details::PostalAddress {
                    line1: "12 ELM ST".into(),
                    city: "SPRINGFIELD".into(),
                    state: "IL".into(),
                    postal_code: "62702".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
        submission_batch_id: None,
        original_claim_id: None,
        superseded_by_claim_id: None,
        coordination: Default::default(),
        adjudication: None,
        created_at: now,
        updated_at: now,
        scrub_findings: vec![],
    }
}

struct Setup {
    sets: CodeSets,
    payer: PayerRules,
    today: NaiveDate,
    coverage: CoverageDates,
    approved: Option<Vec<ApprovedAuthorization>>,
}

impl Setup {
    fn new() -> Self {
        Self {
            sets: CodeSets::builtin(),
            payer: PayerRules::default(),
            today: d("2026-06-01"),
            coverage: CoverageDates::Known {
                effective: d("2024-01-01"),
                termination: None,
            },
            approved: None,
        }
    }

    fn run(&self, input: &ScrubInput<'_>) -> Vec<ScrubFinding> {
        scrub(
            input,
            &ScrubContext {
                code_sets: &self.sets,
                payer: &self.payer,
                today: self.today,
                coverage: self.coverage,
                approved_authorizations: self.approved.as_deref(),
            },
        )
    }

    fn of(&self, c: &Claim) -> Vec<ScrubFinding> {
        self.run(&ScrubInput::from_claim(c))
    }
}

/// The findings of `edit` as (severity, field, line, x12).
fn fired(findings: &[ScrubFinding], edit: EditCode) -> Vec<(ScrubSeverity, &str, u32, &str)> {
    findings
        .iter()
        .filter(|f| f.edit_code == edit)
        .map(|f| {
            (
                f.severity,
                f.field.as_str(),
                f.line_number,
                f.x12_location.as_str(),
            )
        })
        .collect()
}

use ScrubSeverity::{Error, Info, Warning};

#[test]
fn a_clean_claim_has_no_finding() {
    let s = Setup::new();
    assert_eq!(s.of(&claim()), vec![]);
}

#[test]
fn required_fields_name_what_is_missing() {
    let s = Setup::new();
    let mut c = claim();
    c.payer_id = String::new();
    c.place_of_service = None;
    c.lines[1].diagnosis_pointers.clear();
    let f = s.of(&c);
    assert_eq!(
        fired(&f, EditCode::RequiredField),
        vec![
            (Error, "payer_id", 0, "2010BB NM109"),
            (Error, "place_of_service", 0, "2300 CLM05-1"),
            (Error, "lines[1].diagnosis_pointers", 2, "2400 SV1-07-1"),
        ]
    );
    let mut i = claim();
    i.claim_type = ClaimType::Institutional;
    i.place_of_service = None;
    i.lines[0].diagnosis_pointers.clear();
    i.lines[1].diagnosis_pointers.clear();
    i.lines[0].revenue_code = Some("0510".into());
    let f = s.of(&i);
    assert_eq!(
        fired(&f, EditCode::RequiredField),
        vec![
            (Error, "facility_type_code", 0, "2300 CLM05-1"),
            (Error, "lines[1].revenue_code", 2, "2400 SV2-01"),
        ]
    );
    // The 837 names the patient: a claim without demographics, or with some missing, is held.
    let mut bare = claim();
    bare.details.patient = None;
    assert_eq!(
        fired(&s.of(&bare), EditCode::RequiredField),
        vec![(
            Error,
            "demographics.patient.name.last_name",
            0,
            "2010BA NM103"
        )]
    );
    let mut partial = claim();
    if let Some(p) = partial.details.patient.as_mut() {
        p.birth_date = None;
        p.address = None;
    }
    partial.details.relationship_to_subscriber = Some("19".into());
    assert_eq!(
        fired(&s.of(&partial), EditCode::RequiredField),
        vec![
            (Error, "demographics.patient.birth_date", 0, "2010CA DMG02"),
            (Error, "demographics.patient.address", 0, "2010CA N301"),
        ]
    );
}

#[test]
fn icd10_validity_follows_the_date_of_service() {
    let s = Setup::new();
    // A header code on the FY2026 date.
    let mut c = claim();
    c.diagnoses[1] = "E11".into();
    let f = s.of(&c);
    assert_eq!(
        fired(&f, EditCode::Icd10NotBillable),
        vec![(Error, "diagnoses[1]", 1, "2300 HI02-2")]
    );
    // Unknown everywhere.
    let mut c = claim();
    c.diagnoses[0] = "Q9999".into();
    assert_eq!(
        fired(&s.of(&c), EditCode::Icd10Unknown),
        vec![(Error, "diagnoses[0]", 1, "2300 HI01-2")]
    );
    // B8801 was added in FY2026: on a FY2025 date it is invalid, naming the year it is valid in.
    let mut c = claim();
    c.diagnoses[0] = "B8801".into();
    for l in &mut c.lines {
        l.service_date = d("2025-05-05");
    }
    c.service_date_from = d("2025-05-05");
    c.service_date_to = d("2025-05-05");
    let f = s.of(&c);
    assert_eq!(
        fired(&f, EditCode::Icd10InvalidOnDos),
        vec![(Error, "diagnoses[0]", 1, "2300 HI01-2")]
    );
    assert!(
        f[0].message
            .ends_with("it is valid in FY2026 (April 2026 update)"),
        "{}",
        f[0].message
    );
    // S301XXA was deleted in FY2026: on a FY2026 date it is invalid, naming FY2025.
    let mut c = claim();
    c.diagnoses[1] = "S301XXA".into();
    let f = s.of(&c);
    assert_eq!(
        fired(&f, EditCode::Icd10InvalidOnDos),
        vec![(Error, "diagnoses[1]", 1, "2300 HI02-2")]
    );
    assert!(
        f[0].message.ends_with("it is valid in FY2025"),
        "{}",
        f[0].message
    );
    // A date no shipped edition covers: a warning, never "invalid".
    let mut c = claim();
    for l in &mut c.lines {
        l.service_date = d("2025-12-01");
    }
    c.service_date_from = d("2025-12-01");
    c.service_date_to = d("2025-12-01");
    let f = s.of(&c);
    assert_eq!(
        fired(&f, EditCode::Icd10CodeSetMissing),
        vec![
            (Warning, "diagnoses[0]", 1, "2300 HI01-2"),
            (Warning, "diagnoses[1]", 1, "2300 HI02-2"),
        ]
    );
    assert_eq!(super::error_count(&f), 0, "{f:?}");
}

#[test]
fn an_icd10_code_added_in_a_later_year_names_that_year() {
    // Independent of which codes CMS added: a made-up edition adds one.
    let mut s = Setup::new();
    let text = format!("{:05} {:<7} 1 {:<60} {}", 1, "Q9999", "made up", "made up");
    s.sets.icd10.add(
        medbill_codesets::icd10::Icd10Edition::from_order_file(
            "FY2027",
            d("2026-10-01"),
            d("2027-09-30"),
            &text,
        )
        .unwrap(),
    );
    let mut c = claim();
    c.diagnoses[0] = "Q9999".into();
    let f = s.of(&c);
    let found: Vec<_> = f
        .iter()
        .filter(|x| x.edit_code == EditCode::Icd10InvalidOnDos)
        .collect();
    assert_eq!(found.len(), 1, "{f:?}");
    assert_eq!(
        found[0].message,
        "Q9999 is not valid in ICD-10-CM FY2026 (April 2026 update), the code set in force on the date of service of line 1; it is valid in FY2027"
    );
    assert_eq!(
        (
            found[0].field.as_str(),
            found[0].line_number,
            found[0].x12_location.as_str()
        ),
        ("diagnoses[0]", 1, "2300 HI01-2")
    );
}

#[test]
fn procedure_codes_hcpcs_and_cpt() {
    let mut s = Setup::new();
    let mut c = claim();
    c.lines[0].procedure_code = "A9998".into(); // HCPCS shape, not in the January 2026 file
    c.lines[1].procedure_code = "99213".into();
    let f = s.of(&c);
    assert_eq!(
        fired(&f, EditCode::HcpcsInvalid),
        vec![(Error, "lines[0].procedure_code", 1, "2400 SV1-01-2")]
    );
    let info = fired(&f, EditCode::CptNotChecked);
    assert_eq!(
        info,
        vec![(Info, "lines[1].procedure_code", 2, "2400 SV1-01-2")]
    );
    assert!(f.iter().any(|x| {
        x.message
            .starts_with("CPT content not checked: no licensed CPT file configured")
    }));
    // Errors come first.
    assert_eq!(f.first().map(|x| x.severity), Some(Error));
    assert_eq!(f.last().map(|x| x.severity), Some(Info));

    let mut c = claim();
    c.lines[0].procedure_code = "9921A".into();
    assert_eq!(
        fired(&s.of(&c), EditCode::CptFormat),
        vec![(Error, "lines[0].procedure_code", 1, "2400 SV1-01-2")]
    );

    s.sets.cpt = Some(CptCodes::from_csv("code,description\n10001,made up\n").unwrap());
    let mut c = claim();
    c.lines[0].procedure_code = "10001".into();
    c.lines[1].procedure_code = "10002".into();
    let f = s.of(&c);
    assert_eq!(
        fired(&f, EditCode::CptInvalid),
        vec![(Error, "lines[1].procedure_code", 2, "2400 SV1-01-2")]
    );
    assert!(fired(&f, EditCode::CptNotChecked).is_empty());
}

#[test]
fn npis_fail_on_their_check_digit() {
    let s = Setup::new();
    let c = claim();
    let mut input = ScrubInput::from_claim(&c);
    input.npis.push(NpiField {
        field: "referring_provider_npi".into(),
        x12_location: "2310A NM109",
        npi: "1234567890".into(),
    });
    assert_eq!(
        fired(&s.run(&input), EditCode::NpiCheckDigit),
        vec![(Error, "referring_provider_npi", 0, "2310A NM109")]
    );
}

#[test]
fn diagnosis_pointers() {
    let s = Setup::new();
    let mut c = claim();
    c.lines[0].diagnosis_pointers = vec![1, 3, 13, 1];
    let f = s.of(&c);
    assert_eq!(
        fired(&f, EditCode::DiagnosisPointerRange),
        vec![
            (Error, "lines[0].diagnosis_pointers[1]", 1, "2400 SV1-07-2"),
            (Error, "lines[0].diagnosis_pointers[2]", 1, "2400 SV1-07-3"),
        ]
    );
    assert_eq!(
        fired(&f, EditCode::DiagnosisPointerDuplicate),
        vec![(Error, "lines[0].diagnosis_pointers[3]", 1, "2400 SV1-07-4")]
    );
    // An external cause code cannot be primary: not as the principal diagnosis, not as a
    // line's first pointer.
    let mut c = claim();
    c.diagnoses = vec!["S52501A".into(), "W010XXA".into()];
    c.lines[1].diagnosis_pointers = vec![2, 1];
    let f = s.of(&c);
    assert_eq!(
        fired(&f, EditCode::DiagnosisPointerPrimary),
        vec![(Error, "lines[1].diagnosis_pointers[0]", 2, "2400 SV1-07-1")]
    );
    c.diagnoses.swap(0, 1);
    let f = s.of(&c);
    assert!(fired(&f, EditCode::DiagnosisPointerPrimary).contains(&(
        Error,
        "diagnoses[0]",
        0,
        "2300 HI01-2"
    )));
    // A diagnosis no line points at.
    let mut c = claim();
    c.diagnoses.push("I10".into());
    assert_eq!(
        fired(&s.of(&c), EditCode::DiagnosisNotPointed),
        vec![(Warning, "diagnoses[2]", 0, "2300 HI03-2")]
    );
}

#[test]
fn modifiers_known_and_allowed() {
    let s = Setup::new();
    let mut c = claim();
    c.lines[0].modifiers = vec!["LT".into(), "RT".into(), "ZQ".into(), "LT".into()];
    c.lines[1].modifiers = vec!["25".into(), "26".into(), "TC".into()];
    let f = s.of(&c);
    assert_eq!(
        fired(&f, EditCode::ModifierUnknown),
        vec![(Error, "lines[0].modifiers[2]", 1, "2400 SV1-01-5")]
    );
    assert_eq!(
        fired(&f, EditCode::ModifierNotAllowed),
        vec![
            (Error, "lines[0].modifiers[1]", 1, "2400 SV1-01-4"),
            (Error, "lines[0].modifiers[3]", 1, "2400 SV1-01-6"),
            (Error, "lines[1].modifiers[2]", 2, "2400 SV1-01-5"),
            (Warning, "lines[1].modifiers[0]", 2, "2400 SV1-01-3"),
        ]
    );
    let mut c = claim();
    c.lines[0].modifiers = vec!["59".into(), "XU".into(), "GT".into()];
    assert!(s.of(&c).is_empty(), "{:?}", s.of(&c));
}

#[test]
fn place_of_service_must_be_a_cms_code() {
    let s = Setup::new();
    let mut c = claim();
    c.place_of_service = Some("30".into());
    assert_eq!(
        fired(&s.of(&c), EditCode::PosInvalid),
        vec![(Error, "place_of_service", 0, "2300 CLM05-1")]
    );
}

const PTP: &str = "Column 1\tColumn 2\t*\tEffective\tDeletion\tModifier\tRationale\n\
    G0439\tG0444\t\t20200101\t*\t1\tMisuse of column two code with column one code\n\
    G0439\tG0442\t\t20200101\t20260630\t0\tMutually exclusive procedures\n";
const MUE: &str = "HCPCS/CPT Code\tMUE Value\tMAI\tRationale\n\
    G0444\t1\t2 Date of Service Edit: Policy\tNature of Service\n\
    J1100\t2\t1 Line Edit\tClinical\n";

fn with_ncci() -> Setup {
    let mut s = Setup::new();
    let mut ptp = PtpEdits::default();
    ptp.load_text(PTP).unwrap();
    let mut mue = MueLimits::default();
    mue.load_text(MUE).unwrap();
    s.sets.ptp_professional = ptp;
    s.sets.mue_professional = mue;
    s
}

#[test]
fn ncci_pairs_on_one_date_with_and_without_bypass() {
    let s = with_ncci();
    // G0439 + G0444, indicator 1, no modifier: an error on the column 2 line.
    let f = s.of(&claim());
    assert_eq!(
        fired(&f, EditCode::NcciPtp),
        vec![(Error, "lines[1].procedure_code", 2, "2400 SV1-01-2")]
    );
    assert!(
        f[0].message.contains("modifier indicator 1"),
        "{}",
        f[0].message
    );
    // XS on either line bypasses indicator 1.
    let mut c = claim();
    c.lines[1].modifiers = vec!["XS".into()];
    assert!(fired(&s.of(&c), EditCode::NcciPtp).is_empty());
    // Different dates: no edit.
    let mut c = claim();
    c.lines[1].service_date = d("2026-05-05");
    c.service_date_to = d("2026-05-05");
    assert!(fired(&s.of(&c), EditCode::NcciPtp).is_empty());
    // Indicator 0: 59 does not help; after the deletion date the edit is gone.
    let mut c = claim();
    c.lines[1].procedure_code = "G0442".into();
    c.lines[1].modifiers = vec!["59".into()];
    let f = s.of(&c);
    assert_eq!(
        fired(&f, EditCode::NcciPtp),
        vec![(Error, "lines[1].procedure_code", 2, "2400 SV1-01-2")]
    );
    assert!(f[0].message.contains("modifier indicator 0"));
    for l in &mut c.lines {
        l.service_date = d("2026-07-01");
    }
    c.service_date_from = d("2026-07-01");
    c.service_date_to = d("2026-07-01");
    assert!(fired(&s.of(&c), EditCode::NcciPtp).is_empty());
}

#[test]
fn mue_limits_per_line_and_per_day() {
    let s = with_ncci();
    let mut c = claim();
    c.lines = vec![
        line("J1100", "2026-05-04", vec![1]),
        line("G0444", "2026-05-04", vec![2]),
        line("G0444", "2026-05-04", vec![2]),
    ];
    c.lines[0].units = Decimal::from(3);
    let f = s.of(&c);
    assert_eq!(
        fired(&f, EditCode::MueUnits),
        vec![
            (Error, "lines[0].units", 1, "2400 SV1-04"),
            (Error, "lines[2].units", 3, "2400 SV1-04"),
        ]
    );
    assert!(f.iter().any(|x| {
        x.message
            .contains("2 units of G0444 on one date of service (lines 2, 3)")
    }));
    c.lines[0].units = Decimal::from(2);
    c.lines[2].service_date = d("2026-05-05");
    c.service_date_to = d("2026-05-05");
    assert!(fired(&s.of(&c), EditCode::MueUnits).is_empty());
}

#[test]
fn timely_filing_counts_days_from_the_date_of_service() {
    let mut s = Setup::new();
    s.payer.timely_filing_days = 90;
    s.today = d("2026-08-03"); // 91 days after 2026-05-04
    let f = s.of(&claim());
    assert_eq!(
        fired(&f, EditCode::TimelyFiling),
        vec![(Error, "lines[0].service_date", 1, "2400 DTP03")]
    );
    assert!(f[0].message.contains("91 days ago") && f[0].message.contains("90 days"));
    s.today = d("2026-08-02"); // day 90: still in time, with a warning
    assert_eq!(
        fired(&s.of(&claim()), EditCode::TimelyFiling),
        vec![(Warning, "lines[0].service_date", 1, "2400 DTP03")]
    );
    s.today = d("2026-06-01");
    assert!(fired(&s.of(&claim()), EditCode::TimelyFiling).is_empty());
}

#[test]
fn coverage_must_be_in_force_on_each_date() {
    let mut s = Setup::new();
    s.coverage = CoverageDates::Known {
        effective: d("2026-05-05"),
        termination: None,
    };
    let mut c = claim();
    c.lines[1].service_date = d("2026-05-05");
    c.service_date_to = d("2026-05-05");
    assert_eq!(
        fired(&s.of(&c), EditCode::CoverageInactive),
        vec![(Error, "lines[0].service_date", 1, "2400 DTP03")]
    );
    s.coverage = CoverageDates::Known {
        effective: d("2026-01-01"),
        termination: Some(d("2026-05-04")),
    };
    assert_eq!(
        fired(&s.of(&c), EditCode::CoverageInactive),
        vec![(Error, "lines[1].service_date", 2, "2400 DTP03")]
    );
    s.coverage = CoverageDates::NotFound;
    assert_eq!(
        fired(&s.of(&c), EditCode::CoverageInactive),
        vec![(Error, "coverage_id", 0, "2010BA NM109")]
    );
}

#[test]
fn prior_authorization_for_listed_procedures() {
    let mut s = Setup::new();
    s.payer.procedures_requiring_authorization = HashSet::from(["G0444".to_owned()]);
    let c = claim();
    let mut input = ScrubInput::from_claim(&c);
    assert_eq!(
        fired(&s.run(&input), EditCode::PriorAuthMissing),
        vec![(
            Error,
            "lines[1].prior_authorization",
            2,
            "2400 REF02 (REF01 G1)"
        )]
    );
    input.authorizations.lines = vec![None, Some("AUTH-1".into())];
    assert!(fired(&s.run(&input), EditCode::PriorAuthMissing).is_empty());
    input.authorizations = Authorizations {
        claim: Some("AUTH-2".into()),
        lines: vec![],
    };
    assert!(fired(&s.run(&input), EditCode::PriorAuthMissing).is_empty());
}

#[test]
fn prior_authorization_numbers_are_checked_against_the_approved_ones() {
    let mut s = Setup::new();
    s.payer.procedures_requiring_authorization = HashSet::from(["G0444".to_owned()]);
    let c = claim();
    let line = &c.lines[1];
    let on_file = |units: &str, from: &str, to: &str| ApprovedAuthorization {
        number: "SIMAUTH1".into(),
        services: vec![AuthorizedService {
            procedure_code: line.procedure_code.clone(),
            units: Some(rust_decimal::Decimal::from_str_exact(units).unwrap()),
            from: d(from),
            to: d(to),
            used_elsewhere: Decimal::ZERO,
        }],
    };
    let dos = line.service_date;
    let around = |days: i64| (dos + chrono::Duration::days(days)).to_string();
    let messages = |s: &Setup, input: &ScrubInput<'_>| -> Vec<String> {
        s.run(input)
            .into_iter()
            .filter(|f| f.edit_code == EditCode::PriorAuthMissing)
            .map(|f| f.message)
            .collect()
    };
    let mut input = ScrubInput::from_claim(&c);
    // Missing, with an approved one on file: the message names it.
    s.approved = Some(vec![on_file("1", &around(-5), &around(5))]);
    let m = messages(&s, &input);
    assert_eq!(m.len(), 1);
    assert!(
        m[0].contains("approved authorization SIMAUTH1 covers it"),
        "{m:?}"
    );
    // The approved number, covering procedure, date and units: no finding.
    input.authorizations.lines = vec![None, Some("SIMAUTH1".into())];
    assert!(messages(&s, &input).is_empty());
    // A number the payer never approved.
    input.authorizations.lines = vec![None, Some("NOPE".into())];
    assert!(messages(&s, &input)[0].contains("not an approved authorization"));
    // Expired: the date of service is after the certified period.
    input.authorizations.lines = vec![None, Some("SIMAUTH1".into())];
    s.approved = Some(vec![on_file("1", &around(-30), &around(-1))]);
    assert!(
        messages(&s, &input)[0].contains("expired"),
        "{:?}",
        messages(&s, &input)
    );
    // Exhausted: fewer units approved than billed.
    s.approved = Some(vec![on_file("0.5", &around(-5), &around(5))]);
    assert!(
        messages(&s, &input)[0].contains("exhausted"),
        "{:?}",
        messages(&s, &input)
    );
    // Units other claims billed count too.
    let mut shared = on_file("1.5", &around(-5), &around(5));
    shared.services[0].used_elsewhere = Decimal::ONE;
    s.approved = Some(vec![shared]);
    let m = messages(&s, &input);
    assert!(m[0].contains("other claims already billed 1"), "{m:?}");
    // Another procedure only.
    let mut other = on_file("1", &around(-5), &around(5));
    other.services[0].procedure_code = "99999".into();
    s.approved = Some(vec![other]);
    assert!(messages(&s, &input)[0].contains("does not certify procedure"));
}
