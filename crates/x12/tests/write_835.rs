//! The 835 writer: what it writes reads back the same with the crate's 835 reader and balances by
//! the crate's balancer, with any separators; what does not balance or breaks the guide is refused
//! naming the field.

use std::str::FromStr;

use medbill_x12::Document;
use medbill_x12::balance::balance;
use medbill_x12::transactions::era835::{Relife, Remittance, read_835, read_all_835};
use medbill_x12::write::{self, Envelope, Separators, WriteError, samples};
use rust_decimal::Decimal;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Zeroes what only the reader knows: positions in the input and its running totals.
fn without_positions(mut r: Remittance<'_>) -> Remittance<'_> {
    r.payment.segment_index = 0;
    r.payment.segment_offset = 0;
    r.claim_count = 0;
    r.claims_paid_total = Decimal::ZERO;
    r.segment_count = 0;
    for c in &mut r.claims {
        c.segment_index = 0;
        c.segment_offset = 0;
        for s in &mut c.services {
            s.segment_index = 0;
            s.segment_offset = 0;
        }
    }
    for p in &mut r.provider_adjustments {
        p.segment_index = 0;
    }
    r
}

#[test]
fn sample_round_trips_and_balances() {
    let advice = samples::remittance();
    for sep in [
        Separators::default(),
        Separators::unusual(),
        Separators {
            newline: true,
            ..Separators::default()
        },
    ] {
        let text =
            write::remittance_interchange(sep, &Envelope::test_default(7, 8, 1), &advice).unwrap();
        let doc = Document::parse(text.as_bytes());
        assert!(doc.problems.is_empty(), "{:?}", doc.problems);
        let (_, group, set) = doc.sets().next().unwrap();
        assert_eq!(group.gs.unwrap().text(1), "HP");
        assert_eq!(group.gs.unwrap().text(8), "005010X221A1");
        let (back, problems) = read_835(set);
        assert!(problems.is_empty(), "{problems:?}");
        let report = balance(&back);
        assert!(report.balanced, "{:?}", report.problems);
        assert_eq!(back.claim_count, 4);
        assert_eq!(back.claims_paid_total, dec("158"));
        let expected: Remittance<'_> = advice.remittance.clone().relife();
        assert_eq!(without_positions(back), expected);
    }
}

#[test]
fn bank_accounts_and_segments_are_where_the_guide_puts_them() {
    let text = write::remittance_interchange(
        Separators::default(),
        &Envelope::test_default(7, 8, 1),
        &samples::remittance(),
    )
    .unwrap();
    let segs: Vec<&str> = text.split('~').collect();
    assert!(segs.contains(
        &"BPR*I*130.5*C*ACH*CCP*01*011000015*DA*900001*1512345678**01*071000013*DA*123456*20260320"
    ));
    assert!(segs.contains(&"TRN*1*EFT0000000001*1512345678"));
    assert!(segs.contains(&"N1*PR*SIMULATED PPO HEALTH*XV*SIMPPO"));
    assert!(segs.contains(&"SVC*HC:99213:25*200*104**1"));
    assert!(segs.contains(&"SVC*HC:85027*100*50**1*HC:85025"));
    assert!(segs.contains(&"CAS*PR*1*20**2*26"));
    assert!(segs.contains(&"PLB*1234567893*20261231*L6:PCN0001*-2.5*WO:SIM0000000003*30"));
    // Several sets in one file are each read and balanced.
    let (all, problems) = read_all_835(text.as_bytes());
    assert!(problems.is_empty());
    assert_eq!(all.len(), 1);
    let se = segs.iter().find(|s| s.starts_with("SE*")).unwrap();
    let st = segs.iter().position(|s| s.starts_with("ST*")).unwrap();
    let se_at = segs.iter().position(|s| s.starts_with("SE*")).unwrap();
    assert_eq!(*se, format!("SE*{}*0001", se_at - st + 1));
}

fn refused(advice: &write::RemittanceAdvice<'_>) -> WriteError {
    write::remittance_interchange(
        Separators::default(),
        &Envelope::test_default(1, 1, 1),
        advice,
    )
    .unwrap_err()
}

fn field_of(e: &WriteError) -> (&str, &str) {
    match e {
        WriteError::Invalid { context, field, .. } => (context.as_str(), field),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn unbalanced_remittances_are_refused_naming_the_level() {
    let mut line = samples::remittance();
    line.remittance.claims[0].services[1].paid = dec("51");
    assert_eq!(field_of(&refused(&line)), ("claim 1 line 2", "SVC03"));

    let mut claim = samples::remittance();
    claim.remittance.claims[1].paid = dec("1");
    assert_eq!(field_of(&refused(&claim)), ("claim 2", "CLP04"));

    let mut total = samples::remittance();
    total.remittance.payment.amount = dec("130.49");
    let e = refused(&total);
    assert_eq!(field_of(&e), ("payment", "BPR02"));
    assert!(e.to_string().contains("-0.01"), "{e}");

    let mut plb = samples::remittance();
    plb.remittance.provider_adjustments.pop();
    assert_eq!(field_of(&refused(&plb)), ("payment", "BPR02"));
}

#[test]
fn guide_rules_are_checked() {
    let mut ach = samples::remittance();
    ach.accounts = None;
    assert_eq!(field_of(&refused(&ach)), ("payment", "accounts"));

    let mut check = samples::remittance();
    check.accounts = None;
    check.remittance.payment.method = "CHK".into();
    check.remittance.payment.format = None;
    let text = write::remittance_interchange(
        Separators::default(),
        &Envelope::test_default(1, 1, 1),
        &check,
    )
    .unwrap();
    assert!(
        text.contains("BPR*I*130.5*C*CHK******1512345678******20260320~"),
        "{text}"
    );

    let mut status = samples::remittance();
    status.remittance.claims[2].status_code = "9".into();
    assert_eq!(field_of(&refused(&status)), ("claim 3", "CLP02"));

    let mut group = samples::remittance();
    group.remittance.claims[0].services[0].adjustments[0].group = "XX".into();
    assert_eq!(field_of(&refused(&group)), ("claim 1", "CAS"));

    let mut cents = samples::remittance();
    cents.remittance.claims[0].services[0].amounts[0].amount = dec("150.001");
    assert!(matches!(
        refused(&cents),
        WriteError::Invalid { field: "AMT02", .. }
    ));

    let mut sep = samples::remittance();
    sep.remittance.claims[0].patient_control_number = "PCN*1".into();
    assert!(matches!(refused(&sep), WriteError::SeparatorInValue { .. }));
}
