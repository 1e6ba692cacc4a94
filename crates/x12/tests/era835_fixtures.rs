//! One test per public 835 fixture: parsed values, problems and balance results.

use std::str::FromStr;

use medbill_x12::balance::{Level, balance};
use medbill_x12::transactions::era835::{Remittance, read_835};
use medbill_x12::{Document, Error, ErrorKind};
use rust_decimal::Decimal;

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Reads the single 835 set of `input`; returns it with envelope and 835 problems.
fn read_one(input: &[u8]) -> (Remittance<'_>, Vec<Error>) {
    let doc = Document::parse(input);
    let sets: Vec<_> = doc.sets().collect();
    assert_eq!(sets.len(), 1);
    let (r, mut problems) = read_835(sets[0].2);
    problems.extend(doc.problems.iter().cloned());
    (r, problems)
}

fn messages(problems: &[Error]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

#[test]
fn medicare_part_a() {
    let input = fixture("lfh-x12/medicare-part-a.835");
    let (r, problems) = read_one(&input);
    assert!(problems.is_empty(), "{:?}", messages(&problems));
    assert_eq!(r.control_number, "1234");
    assert_eq!(r.payment.handling, "C");
    assert_eq!(r.payment.amount, d("150000.00"));
    assert_eq!(
        (r.payment.credit_debit.as_ref(), r.payment.method.as_ref()),
        ("C", "ACH")
    );
    assert_eq!(r.payment.format.as_deref(), Some("CTX"));
    assert_eq!(r.payment.date.as_deref(), Some("20020913"));
    let trn = r.trace.as_ref().unwrap();
    assert_eq!(
        (trn.number.as_ref(), trn.originator.as_deref()),
        ("12345", Some("1512345678"))
    );
    assert_eq!(r.payer.name, "INSURANCE COMPANY OF TIMBUCKTU");
    assert_eq!(r.payer.address_lines, ["1 MAIN STREET"]);
    assert_eq!(r.payer.postal_code.as_deref(), Some("89111"));
    assert_eq!(r.payer.references[0].qualifier, "2U");
    assert_eq!(r.payee.npi(), Some("6543210903"));
    assert_eq!(r.header_numbers.len(), 2);
    let ts3 = r.header_numbers[0].summary.as_ref().unwrap();
    assert_eq!(
        (ts3.provider_id.as_ref(), ts3.facility_code.as_ref()),
        ("6543210903", "11")
    );
    assert_eq!(
        (ts3.claim_count, ts3.total_charge),
        (d("1"), d("211366.97"))
    );
    // TS306..: TS309 is the 4th of them.
    assert_eq!(ts3.amounts[3], Some(d("138018.40")));
    let ts2 = r.header_numbers[0].supplemental.as_ref().unwrap();
    assert_eq!(ts2[0], Some(d("2178.45")));
    assert_eq!(ts2[2], None);
    assert_eq!(r.claims.len(), 2);
    let c = &r.claims[0];
    assert_eq!(c.header_number.as_deref(), Some("110212"));
    assert_eq!(
        (c.patient_control_number.as_ref(), c.status_code.as_ref()),
        ("666123", "1")
    );
    assert_eq!(
        (c.charge, c.paid, c.patient_responsibility),
        (d("211366.97"), d("138018.40"), None)
    );
    assert_eq!(c.filing_indicator.as_deref(), Some("MA"));
    assert_eq!(
        c.payer_claim_control_number.as_deref(),
        Some("1999999444444")
    );
    assert_eq!(
        (c.facility_type.as_deref(), c.frequency.as_deref()),
        (Some("11"), Some("1"))
    );
    assert_eq!(c.adjustments.len(), 1);
    assert_eq!(
        (
            c.adjustments[0].group.as_ref(),
            c.adjustments[0].reason.as_ref()
        ),
        ("CO", "45")
    );
    assert_eq!(c.adjustments[0].amount, d("73348.57"));
    let mia = c.inpatient.as_ref().unwrap();
    assert_eq!(mia.covered_days_or_visits, Some(d("0")));
    assert_eq!(mia.claim_drg_amount, Some(d("138018.40")));
    assert_eq!(
        c.dates
            .iter()
            .map(|x| x.qualifier.as_ref())
            .collect::<Vec<_>>(),
        ["232", "233"]
    );
    assert_eq!(c.quantities[0].quantity, d("8.00"));
    assert!(c.services.is_empty());
    let c2 = &r.claims[1];
    assert_eq!(c2.header_number.as_deref(), Some("130212"));
    assert_eq!(c2.remark_codes(), ["MA02"]);
    assert_eq!(r.provider_adjustments.len(), 1);
    let plb = &r.provider_adjustments[0];
    assert_eq!(
        (plb.provider_id.as_ref(), plb.fiscal_period_date.as_ref()),
        ("6543210903", "20021231")
    );
    assert_eq!(
        (plb.reason.as_ref(), plb.reference.as_deref()),
        ("CV", Some("CP"))
    );
    assert_eq!(plb.amount, d("-1.27"));
    assert_eq!(r.segment_count, 28);
    // 138018.40 + 11980.33 - (-1.27) = 150000.00
    assert_eq!(r.claims_paid_total, d("149998.73"));
    let b = balance(&r);
    assert!(b.balanced, "{:?}", b.problems);
}

#[test]
fn managed_care_claim_and_line_cas() {
    let input = fixture("lfh-x12/managed-care.835");
    let (r, problems) = read_one(&input);
    // The sample's BPR16 is 20002316 (month 23).
    assert_eq!(problems.len(), 1, "{:?}", messages(&problems));
    assert!(
        matches!(&problems[0].kind, ErrorKind::InvalidDate { element: "BPR16", value } if value == "20002316")
    );
    assert_eq!(
        (
            problems[0].position.segment_index,
            problems[0].position.element
        ),
        (4, Some(16))
    );
    assert_eq!(r.payment.amount, d("945.00"));
    assert_eq!(r.claims.len(), 2);
    let c = &r.claims[1];
    assert_eq!(c.patient_control_number, "8765432112");
    assert_eq!(c.patient_responsibility, Some(d("600.00")));
    assert_eq!(c.adjustments[0].reason, "A2");
    let s = &c.services[0];
    assert_eq!(
        (s.procedure.qualifier.as_ref(), s.procedure.code.as_ref()),
        ("HC", "93555")
    );
    assert_eq!((s.charge, s.paid), (d("1200.00"), d("550.00")));
    assert_eq!(s.service_date(), Some("20020310"));
    assert_eq!(s.dates[1].qualifier, "151");
    let adj: Vec<_> = s
        .adjustments
        .iter()
        .map(|a| (a.group.as_ref(), a.reason.as_ref(), a.amount))
        .collect();
    assert_eq!(adj, [("PR", "1", d("600.00")), ("CO", "45", d("50.00"))]);
    assert!(balance(&r).balanced);
}

#[test]
fn cob_negative_cas_and_mismatched_component_separator() {
    let input = fixture("lfh-x12/cob-contractural-adjustment.835");
    let (r, problems) = read_one(&input);
    // ISA16 is ':' but SVC01 is HC>55669: read, with a warning.
    assert_eq!(problems.len(), 1, "{:?}", messages(&problems));
    assert!(!problems[0].is_error());
    assert!(matches!(
        problems[0].kind,
        ErrorKind::ComponentSeparatorMismatch {
            found: '>',
            declared: ':',
            ..
        }
    ));
    assert_eq!(
        (
            problems[0].position.segment_index,
            problems[0].position.element
        ),
        (21, Some(1))
    );
    let c = &r.claims[0];
    assert_eq!(c.status_code, "2");
    assert_eq!((c.charge, c.paid), (d("541.00"), d("34.00")));
    let s = &c.services[0];
    assert_eq!(
        (s.procedure.qualifier.as_ref(), s.procedure.code.as_ref()),
        ("HC", "55669")
    );
    assert_eq!(s.units, Some(d("1.00")));
    let adj: Vec<_> = s
        .adjustments
        .iter()
        .map(|a| (a.group.as_ref(), a.reason.as_ref(), a.amount))
        .collect();
    assert_eq!(adj, [("OA", "23", d("516.00")), ("OA", "94", d("-9.00"))]);
    assert_eq!(s.allowed(), Some(d("550.00")));
    assert_eq!(s.references[0].qualifier, "1B");
    assert_eq!(r.payee.id_qualifier.as_deref(), Some("FI"));
    assert_eq!(r.payee.npi(), None);
    assert!(balance(&r).balanced);
}

#[test]
fn secondary_payment_with_modifiers() {
    let input = fixture("lfh-x12/secondary-payment.835");
    let (r, problems) = read_one(&input);
    assert_eq!(problems.len(), 2, "{:?}", messages(&problems));
    assert!(problems.iter().all(|p| !p.is_error()));
    assert_eq!(r.payment.method, "CHK");
    assert_eq!(r.header_numbers.len(), 2);
    assert_eq!(r.claims.len(), 2);
    assert_eq!(r.claims[0].amount("AU"), Some(d("912.00")));
    assert_eq!(r.claims[0].names.len(), 2);
    assert_eq!(r.claims[0].names[1].entity, "82");
    let c = &r.claims[1];
    assert_eq!(c.header_number.as_deref(), Some("2"));
    let s = &c.services[1];
    assert_eq!(
        (s.procedure.code.as_ref(), s.procedure.modifiers.len()),
        ("66543", 1)
    );
    assert_eq!(s.procedure.modifiers[0], "26");
    assert_eq!(s.revenue_code.as_deref(), Some("220"));
    // CAS*PR*1*150.00**2*70.00: two triplets, the first without quantity.
    let adj: Vec<_> = s
        .adjustments
        .iter()
        .map(|a| (a.reason.as_ref(), a.amount, a.quantity))
        .collect();
    assert_eq!(
        adj,
        [
            ("1", d("150.00"), None),
            ("2", d("70.00"), None),
            ("42", d("85.00"), None)
        ]
    );
    assert!(balance(&r).balanced);
}

#[test]
fn tertiary_payment_malformed_svc_is_reported() {
    let input = fixture("lfh-x12/tertiary-payment.835");
    let (r, problems) = read_one(&input);
    // SVC*HC*24599.00*1766.50*187.50**1: no procedure code, amounts shifted,
    // and SVC06 = "1" is not a procedure composite.
    assert_eq!(
        messages(&problems),
        [
            "error at segment 20 (SVC01-2) at byte 614: required element SVC01-2 (procedure code) is missing",
            "error at segment 20 (SVC06-2) at byte 614: required element SVC06-2 (procedure code) is missing",
        ]
    );
    assert!(matches!(
        problems[0].kind,
        ErrorKind::MissingElement("SVC01-2 (procedure code)")
    ));
    let c = &r.claims[0];
    assert_eq!(c.status_code, "3");
    let b = balance(&r);
    assert!(!b.balanced);
    assert_eq!(b.problems.len(), 1);
    let p = &b.problems[0];
    assert_eq!(
        (p.level, p.claim.as_deref(), p.line),
        (Level::Line, Some("0001000054"), Some(1))
    );
    assert_eq!(
        (p.expected, p.actual, p.difference),
        (d("23020.00"), d("1766.50"), d("-21253.50"))
    );
    assert_eq!(p.segment_index, 20);
}

#[test]
fn emedny_corrected_insured_and_remarks() {
    let input = fixture("edi-835-parser/emedny_sample.txt");
    let (r, problems) = read_one(&input);
    assert!(problems.is_empty(), "{:?}", messages(&problems));
    assert_eq!(r.payment.amount, d("45.75"));
    assert_eq!(r.payer.address_lines.len(), 2);
    assert_eq!(r.payer.contacts[0].function, "BL");
    assert_eq!(r.payer.contacts[0].numbers.len(), 2);
    assert_eq!(r.claims.len(), 3);
    let c = &r.claims[2];
    assert_eq!(
        c.names
            .iter()
            .map(|n| n.entity.as_ref())
            .collect::<Vec<_>>(),
        ["QC", "74"]
    );
    assert_eq!(c.services.len(), 4);
    let s = &c.services[2];
    assert_eq!(
        (s.procedure.code.as_ref(), s.procedure.modifiers[0].as_ref()),
        ("V2700", "RB")
    );
    assert_eq!(s.remarks.len(), 1);
    assert_eq!(
        (s.remarks[0].qualifier.as_ref(), s.remarks[0].code.as_ref()),
        ("HE", "N206")
    );
    assert_eq!(c.services[1].service_date(), Some("20130917"));
    assert_eq!(r.claims.iter().map(|c| c.paid).sum::<Decimal>(), d("45.75"));
    assert!(balance(&r).balanced);
}

#[test]
fn united_healthcare_multi_triplet_cas() {
    let input = fixture("edi-835-parser/united_healthcare_legacy_sample.txt");
    let (r, problems) = read_one(&input);
    // ISA16 is '>' and SVC01 uses it: no warning.
    assert!(problems.is_empty(), "{:?}", messages(&problems));
    assert_eq!(r.payer.id_qualifier.as_deref(), Some("XV"));
    assert_eq!(r.payer.contacts.len(), 2);
    assert_eq!(r.payee.npi(), Some("1922164458"));
    assert_eq!(
        r.trace.as_ref().unwrap().supplemental.as_deref(),
        Some("000088888")
    );
    let c = &r.claims[1];
    assert_eq!(c.patient_control_number, "001-18604-358");
    assert_eq!(c.services[2].units, Some(d("178")));
    let adj: Vec<_> = c.services[2]
        .adjustments
        .iter()
        .map(|a| (a.group.as_ref(), a.reason.as_ref(), a.amount, a.quantity))
        .collect();
    assert_eq!(
        adj,
        [
            ("PR", "2", d("5.13"), None),
            ("PR", "1", d("110"), None),
            ("CO", "45", d("184.32"), None)
        ]
    );
    assert_eq!(c.services[2].line_control_number(), Some("123456789014"));
    assert!(balance(&r).balanced);
}

#[test]
fn blue_cross_bare_st_with_svc06() {
    let input = fixture("edi-835-parser/blue_cross_nc_sample.txt");
    let (r, problems) = read_one(&input);
    let errors: Vec<_> = problems
        .iter()
        .filter(|p| p.is_error())
        .map(|p| {
            (
                p.position.segment_index,
                p.position.element,
                p.kind.to_string(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (28, Some(2), "required element SVC02 is missing".to_string()),
            (28, Some(3), "required element SVC03 is missing".to_string()),
            (
                32,
                Some(1),
                r#"SE01 says "33" segments but there are 32"#.to_string()
            ),
        ]
    );
    assert_eq!(r.payment.handling, "I");
    assert_eq!(r.payment.date.as_deref(), Some("20110108"));
    let c = &r.claims[0];
    assert_eq!(
        (c.charge, c.paid, c.patient_responsibility),
        (d("2100"), d("1922.86"), Some(d("142.54")))
    );
    let s = &c.services[0];
    let sub = s.submitted_procedure.as_ref().unwrap();
    assert_eq!((sub.qualifier.as_ref(), sub.code.as_ref()), ("HC", "59410"));
    assert_eq!(s.allowed(), Some(d("1175.4")));
    assert_eq!(s.line_control_number(), Some("0001"));
    assert_eq!(c.services[2].line_control_number(), Some("0003"));
    assert!(balance(&r).balanced);
}
