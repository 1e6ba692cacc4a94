//! The synthetic 835 fixtures: cases the public samples lack.

use std::str::FromStr;

use medbill_x12::balance::balance;
use medbill_x12::inspect::inspect;
use medbill_x12::transactions::era835::read_835;
use medbill_x12::{Delimiters, Document};
use rust_decimal::Decimal;

fn fixture(name: &str) -> Vec<u8> {
    let full = format!(
        "{}/tests/fixtures/synthetic/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

#[test]
fn several_sets_and_groups_in_one_interchange() {
    let input = fixture("multi-st.835");
    let doc = Document::parse(&input);
    assert!(doc.problems.is_empty(), "{:?}", doc.problems);
    assert_eq!(doc.interchanges[0].groups.len(), 2);
    let sets: Vec<_> = doc.sets().map(|(_, _, s)| read_835(s)).collect();
    assert_eq!(sets.len(), 3);
    for (r, problems) in &sets {
        assert!(problems.is_empty(), "{problems:?}");
        assert!(balance(r).balanced);
    }
    let summary: Vec<_> = sets
        .iter()
        .map(|(r, _)| {
            (
                r.control_number.to_string(),
                r.payer.name.to_string(),
                r.payment.amount,
                r.claims.len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("0001".into(), "ACME HEALTH PLAN".into(), d("150.00"), 1),
            ("0002".into(), "SECOND PAYER".into(), d("80.00"), 1),
            ("0003".into(), "ACME HEALTH PLAN".into(), d("0"), 1),
        ]
    );
    let denied = &sets[2].0;
    assert_eq!(
        (
            denied.payment.handling.as_ref(),
            denied.payment.method.as_ref()
        ),
        ("H", "NON")
    );
    assert_eq!(denied.claims[0].status_code, "4");
    assert_eq!(denied.claims[0].adjustments[0].reason, "197");
    let b = &sets[1].0.claims[0].services[0];
    assert_eq!(b.procedure.modifiers.as_slice(), ["GP"]);
    assert_eq!(b.units, Some(d("2")));
    let report = inspect(&input);
    assert_eq!(
        (
            report.summary.groups,
            report.summary.transactions,
            report.summary.errors
        ),
        (2, 3, 0)
    );
}

#[test]
fn reversal_then_corrected_payment_with_plb() {
    let input = fixture("reversal-plb-interest.835");
    let doc = Document::parse(&input);
    assert!(doc.problems.is_empty(), "{:?}", doc.problems);
    let (_, _, set) = doc.sets().next().unwrap();
    let (r, problems) = read_835(set);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(r.claims.len(), 3);

    let rev = &r.claims[0];
    assert!(rev.is_reversal());
    assert_eq!(
        (rev.charge, rev.paid, rev.patient_responsibility),
        (d("-300.00"), d("-200.00"), Some(d("-50.00")))
    );
    assert_eq!(
        rev.adjustments.iter().map(|a| a.amount).collect::<Vec<_>>(),
        [d("-50.00"), d("-50.00")]
    );

    let corrected = &r.claims[1];
    assert_eq!(corrected.patient_control_number, rev.patient_control_number);
    assert!(!corrected.is_reversal());
    assert_eq!(corrected.paid, d("260.00"));
    assert_eq!(corrected.amount("I"), Some(d("2.50")));
    assert_eq!(corrected.names[1].entity, "TT");
    assert_eq!(corrected.names[1].id.as_deref(), Some("XOVER9"));
    assert_eq!(corrected.remark_codes(), ["MA01", "MA18"]);
    let svc = &corrected.services[0];
    assert_eq!(
        (svc.procedure.code.as_ref(), svc.procedure.modifiers.len()),
        ("99214", 1)
    );
    let restated = svc.submitted_procedure.as_ref().unwrap();
    assert_eq!(
        (restated.code.as_ref(), restated.modifiers.to_vec()),
        ("99215", vec!["25".into(), "59".into()])
    );
    let adj: Vec<_> = svc
        .adjustments
        .iter()
        .map(|a| (a.group.as_ref(), a.reason.as_ref(), a.amount, a.quantity))
        .collect();
    assert_eq!(
        adj,
        [
            ("CO", "45", d("10.00"), None),
            ("PR", "1", d("20.00"), Some(d("1"))),
            ("PR", "2", d("10.00"), None)
        ]
    );
    assert_eq!(
        svc.remarks
            .iter()
            .map(|x| x.code.as_ref())
            .collect::<Vec<_>>(),
        ["N130", "M15"]
    );

    let inpatient = &r.claims[2];
    assert_eq!(inpatient.adjustments.len(), 7);
    assert_eq!(inpatient.adjustments[3].amount, d("-10.00"));
    assert_eq!(inpatient.adjustments[5].reason, "253");
    assert_eq!(inpatient.adjustments[6].group, "OA");
    assert_eq!(
        inpatient.inpatient.as_ref().unwrap().covered_days_or_visits,
        Some(d("3"))
    );
    assert_eq!(inpatient.remark_codes(), ["MA01"]);

    let plb: Vec<_> = r
        .provider_adjustments
        .iter()
        .map(|p| (p.reason.as_ref(), p.reference.as_deref(), p.amount))
        .collect();
    assert_eq!(
        plb,
        [
            ("WO", Some("PAYERCLM-OLD1"), d("15.00")),
            ("L6", Some("INTEREST"), d("-2.50")),
            ("FB", Some("FWD001"), d("-5.00")),
        ]
    );
    // -200 + 260 + 100 - (15 - 2.50 - 5) = 152.50
    assert_eq!(r.payment.amount, d("152.50"));
    let b = balance(&r);
    assert!(b.balanced, "{:?}", b.problems);
}

#[test]
fn newline_terminator_with_crlf_blank_line_and_indentation() {
    let input = fixture("newline-terminator.835");
    let doc = Document::parse(&input);
    assert!(doc.problems.is_empty(), "{:?}", doc.problems);
    assert_eq!(doc.interchanges[0].isa.unwrap().delimiters().segment, b'\n');
    let (_, _, set) = doc.sets().next().unwrap();
    assert_eq!(set.segments.len(), 11);
    let (r, problems) = read_835(set);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(r.header_numbers[0].number, "1");
    assert_eq!(r.claims[0].services[0].procedure.code, "90471");
    assert!(balance(&r).balanced);
}

#[test]
fn control_characters_as_delimiters() {
    let input = fixture("unusual-delimiters.835");
    let doc = Document::parse(&input);
    assert!(doc.problems.is_empty(), "{:?}", doc.problems);
    assert_eq!(
        doc.interchanges[0].isa.unwrap().delimiters(),
        Delimiters {
            element: 0x1d,
            component: 0x1f,
            repetition: Some(0x1e),
            segment: 0x1c
        }
    );
    let (_, _, set) = doc.sets().next().unwrap();
    let (r, problems) = read_835(set);
    assert!(problems.is_empty(), "{problems:?}");
    let p = &r.claims[0].services[0].procedure;
    assert_eq!(
        (p.code.as_ref(), p.modifiers.to_vec()),
        ("99212", vec!["95".into(), "GT".into()])
    );
    assert!(balance(&r).balanced);
}

#[test]
fn appended_interchanges_with_different_delimiters() {
    let mut input = fixture("multi-st.835");
    input.extend(fixture("unusual-delimiters.835"));
    input.extend(fixture("newline-terminator.835"));
    let report = inspect(&input);
    assert_eq!(report.problems.len(), 0, "{:?}", report.problems);
    assert_eq!(
        (report.summary.interchanges, report.summary.transactions),
        (3, 5)
    );
    let controls: Vec<_> = report
        .interchanges
        .iter()
        .map(|i| i.control_number.clone().unwrap())
        .collect();
    assert_eq!(controls, ["000000101", "000000401", "000000301"]);
    let json = serde_json::to_value(&report).unwrap();
    let tx = &json["interchanges"][1]["groups"][0]["transactions"][0];
    assert_eq!(tx["payment"]["amount"], "90.00");
    assert_eq!(
        tx["claims"][0]["services"][0]["procedure"]["modifiers"][1],
        "GT"
    );
    assert_eq!(tx["balance"]["balanced"], true);
}
