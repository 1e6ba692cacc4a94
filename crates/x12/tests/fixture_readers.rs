//! One test per public sample file (and the synthetic 837 corrections) read by the typed
//! readers for 271, 277, 277CA, 999, TA1, 837P, 837I, 270 and 276, asserting parsed values.

use std::str::FromStr;

use chrono::NaiveDate;
use medbill_x12::model::claim::{ClaimFrequency, TaxId};
use medbill_x12::model::claim_status::StatusKind;
use medbill_x12::model::eligibility::RejectionLevel;
use medbill_x12::model::{DateRange, PartyName};
use medbill_x12::transactions::{
    ack999, claim_status277, claim837, eligibility271, inquiry270, status276, ta1,
};
use medbill_x12::{Document, TransactionSet};
use rust_decimal::Decimal;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Asserts the envelope has no errors and returns the document's sets.
fn sets<'a>(doc: &'a Document<'a>) -> Vec<&'a TransactionSet<'a>> {
    assert!(!doc.has_errors(), "{:?}", doc.problems);
    doc.sets().map(|(_, _, s)| s).collect()
}

/// Asserts the envelope problems are exactly `expected` (substrings, in order) and returns the sets.
/// Some public samples carry wrong counts or control numbers; the reader reports them and goes on.
fn sets_with<'a>(doc: &'a Document<'a>, expected: &[&str]) -> Vec<&'a TransactionSet<'a>> {
    let found: Vec<String> = doc.problems.iter().map(ToString::to_string).collect();
    assert_eq!(found.len(), expected.len(), "{found:?}");
    for (f, e) in found.iter().zip(expected) {
        assert!(f.contains(e), "{f} does not contain {e}");
    }
    doc.sets().map(|(_, _, s)| s).collect()
}

#[test]
fn eligibility_271_benefits_and_summary() {
    let bytes = fixture("lfh-x12/subscriber-health-benefit-check.271");
    let doc = Document::parse(&bytes);
    let set = sets(&doc)[0];
    let r = eligibility271::read_271(set);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let r = r.value;
    assert_eq!(r.payer_name.as_deref(), Some("ABC COMPANY"));
    assert_eq!(r.payer_id.as_deref(), Some("841610001"));
    assert_eq!(r.provider_id.as_deref(), Some("2000035"));
    let s = r.subscriber.as_ref().unwrap();
    assert_eq!(s.name.last, "SMITH");
    assert_eq!(s.member_id.as_deref(), Some("123456789"));
    assert_eq!(s.birth_date, Some(day(1963, 5, 19)));
    assert_eq!(s.address.as_ref().unwrap().postal_code, "64108");
    assert_eq!(s.traces[0].number, "93175-012547");
    assert_eq!(r.echoed_trace(), Some("93175-012547"));
    assert_eq!(
        s.dates,
        vec![("346".to_string(), DateRange::day(day(2006, 1, 1)))]
    );
    assert_eq!(r.benefits.len(), 5);
    let services = ["1", "33", "35", "47", "86", "88", "98", "AL", "MH", "UC"];
    assert_eq!(r.benefits[2].service_types, services);
    assert_eq!(
        r.benefits[1].related_entities,
        vec![("P3".into(), "JONES".into(), Some("0202034".into()))]
    );
    let copay_in = &r.benefits[3];
    assert_eq!(
        (copay_in.info.as_str(), copay_in.amount, copay_in.in_network),
        ("B", Some(dec("10.00")), Some(true))
    );
    assert_eq!(copay_in.time_period.as_deref(), Some("27"));
    assert_eq!(copay_in.insurance_type.as_deref(), Some("HM"));
    assert_eq!(
        (r.benefits[4].amount, r.benefits[4].in_network),
        (Some(dec("30.00")), Some(false))
    );
    assert!(r.rejections.is_empty());

    let sum = r.summary();
    assert_eq!(sum.active, Some(true));
    assert_eq!(sum.plan.as_deref(), Some("GOLD 123 PLAN"));
    assert_eq!(sum.copays.len(), 10);
    assert!(
        sum.copays.values().all(|v| *v == dec("10.00")),
        "{:?}",
        sum.copays
    );
    assert_eq!(sum.deductible_remaining, None);
    assert_eq!(sum.coinsurance, None);
}

#[test]
fn eligibility_271_rejection() {
    let bytes = fixture("lfh-x12/subscriber-health-benefit-check-error.271");
    let doc = Document::parse(&bytes);
    let sets = sets_with(
        &doc,
        &["SE02 control number \"4323\" does not match ST02 \"4321\""],
    );
    let r = eligibility271::read_271(sets[0]).value;
    assert!(r.subscriber.is_none());
    assert!(r.benefits.is_empty());
    assert_eq!(r.rejections.len(), 1);
    let rej = &r.rejections[0];
    assert_eq!(rej.level, RejectionLevel::Receiver);
    assert!(rej.valid_request);
    assert_eq!(rej.reason, "50");
    assert_eq!(rej.follow_up.as_deref(), Some("N"));
    assert_eq!(r.summary().active, None);
}

#[test]
fn eligibility_summary_prefers_in_network_individual_plan_figures() {
    // A synthetic 271 body exercising deductible, out-of-pocket and coinsurance selection.
    let text = "ISA*00*          *00*          *ZZ*PAYER          *ZZ*CLINIC         *260302*0930*^*00501*000000001*0*T*:~\
GS*HB*PAYER*CLINIC*20260302*0930*1*X*005010X279A1~ST*271*0001*005010X279A1~BHT*0022*11*R1*20260302*0930~\
HL*1**20*1~NM1*PR*2*ACME*****PI*ACME01~HL*2*1*21*1~NM1*1P*2*CLINIC*****XX*1234567893~HL*3*2*22*0~\
NM1*IL*1*DOE*JANE****MI*XJ1~EB*1*IND*30**PPO GOLD~\
EB*C*IND*30***23*1500*****Y~EB*C*IND*30***29*600*****Y~EB*C*FAM*30***29*2000*****Y~EB*C*IND*30***29*900*****N~\
EB*G*IND*30***29*3100.50~EB*A*IND*30*****.2****Y~EB*A*IND*30*****.4****N~EB*B*IND*98^UC***27*25*****Y~EB*B*IND*86***27*150~\
SE*19*0001~GE*1*1~IEA*1*000000001~";
    let doc = Document::parse(text.as_bytes());
    let s = eligibility271::read_271(sets(&doc)[0]).value.summary();
    assert_eq!(s.active, Some(true));
    assert_eq!(s.plan.as_deref(), Some("PPO GOLD"));
    assert_eq!(s.deductible_remaining, Some(dec("600")));
    assert_eq!(s.oop_remaining, Some(dec("3100.50")));
    assert_eq!(s.coinsurance, Some(dec("0.2")));
    let copays: Vec<(&str, Decimal)> = s.copays.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        copays,
        [("86", dec("150")), ("98", dec("25")), ("UC", dec("25"))]
    );
}

#[test]
fn claim_status_277() {
    let bytes = fixture("lfh-x12/claim-level-status.277");
    let doc = Document::parse(&bytes);
    let r = claim_status277::read_277(sets(&doc)[0]);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let r = r.value;
    assert_eq!(r.kind, StatusKind::StatusResponse);
    assert_eq!(r.payer_id.as_deref(), Some("12345"));
    assert_eq!(r.claims.len(), 3);
    let c = &r.claims[0];
    assert_eq!(c.trace_number.as_deref(), Some("ABCXYZ1"));
    assert_eq!(c.patient_control_number.as_deref(), Some("SM123456"));
    assert_eq!(c.payer_claim_number.as_deref(), Some("05347006051"));
    assert_eq!(c.bill_type.as_deref(), Some("111"));
    assert_eq!(c.provider_id.as_deref(), Some("1666666661"));
    assert_eq!(c.member_id.as_deref(), Some("123456789A"));
    assert_eq!(
        c.service_date,
        Some(DateRange {
            from: day(2005, 8, 31),
            to: Some(day(2005, 9, 6))
        })
    );
    let stc = &c.statuses[0];
    assert_eq!(
        (stc.codes[0].category.as_str(), stc.codes[0].status.as_str()),
        ("P3", "317")
    );
    assert_eq!(stc.effective_date, Some(day(2005, 9, 13)));
    assert_eq!(stc.charge, Some(dec("8513.88")));
    assert_eq!(r.claims[1].statuses[0].paid, Some(dec("7599.00")));
    let dep = &r.claims[2];
    assert_eq!(dep.member_id.as_deref(), Some("345678901"));
    assert_eq!(dep.statuses[0].codes[0].entity.as_deref(), Some("QC"));
    assert_eq!(dep.lines.len(), 1);
    let line = &dep.lines[0];
    assert_eq!(line.procedure.code, "99203");
    assert_eq!(
        (line.charge, line.paid, line.units),
        (Some(dec("150.00")), Some(dec("0.00")), Some(dec("1.00")))
    );
    assert_eq!(line.statuses[0].codes[0].category, "F2");
    assert_eq!(line.service_date, Some(DateRange::day(day(2005, 5, 1))));
}

#[test]
fn claim_acknowledgment_277ca_accepted() {
    let bytes = fixture("imsweb-x12-parser/x12_277CA_accepted.txt");
    let doc = Document::parse(&bytes);
    let r = claim_status277::read_277(sets(&doc)[0]).value;
    assert_eq!(r.kind, StatusKind::ClaimAcknowledgment);
    assert_eq!(r.receiver_trace.as_deref(), Some("000000674"));
    assert_eq!(r.batch_statuses.len(), 1);
    assert_eq!(r.batch_statuses[0].codes[0].category, "A1");
    assert_eq!(r.batch_statuses[0].charge, Some(dec("125.0")));
    assert_eq!(r.claims.len(), 1);
    let c = &r.claims[0];
    assert_eq!(c.patient_control_number.as_deref(), Some("5781"));
    assert_eq!(c.payer_claim_number.as_deref(), Some("1107000000014420"));
    assert_eq!(c.provider_id.as_deref(), Some("1234567890"));
    assert_eq!(c.member_id.as_deref(), Some("LL99999X"));
    assert!(c.statuses[0].codes[0].is_accepted());
    assert_eq!(claim_status277::first_category(c), Some("A2"));
    assert_eq!(c.statuses[0].action.as_deref(), Some("WQ"));
}

#[test]
fn claim_acknowledgment_277ca_rejected() {
    let bytes = fixture("imsweb-x12-parser/x12_277CA_rejected.txt");
    let doc = Document::parse(&bytes);
    let r = claim_status277::read_277(sets(&doc)[0]).value;
    assert_eq!(r.claims.len(), 1);
    let c = &r.claims[0];
    let code = &c.statuses[0].codes[0];
    assert!(code.is_rejected());
    assert_eq!(
        (
            code.category.as_str(),
            code.status.as_str(),
            code.entity.as_deref()
        ),
        ("A7", "562", Some("85"))
    );
    assert_eq!(c.statuses[0].charge, Some(dec("199.14")));
    assert_eq!(c.patient_control_number.as_deref(), Some("3920394930203"));
    assert_eq!(c.bill_type.as_deref(), Some("731"));
    assert_eq!(c.service_date, Some(DateRange::day(day(2009, 3, 11))));
}

#[test]
fn ack_999_accepted() {
    let bytes = fixture("imsweb-x12-parser/x12_999_accepted.txt");
    let doc = Document::parse(&bytes);
    // This sample's IEA02 (000000001) does not match its ISA13 (000000286): the envelope check says so.
    assert!(
        doc.problems.iter().any(|p| p.to_string().contains("IEA02")),
        "{:?}",
        doc.problems
    );
    let (_, _, set) = doc.sets().next().unwrap();
    let a = ack999::read_999(set);
    assert!(a.problems.is_empty(), "{:?}", a.problems);
    let a = a.value;
    assert_eq!(
        (a.functional_id.as_str(), a.group_control_number.as_str()),
        ("HC", "17456")
    );
    assert_eq!(a.version.as_deref(), Some("005010X223A2"));
    assert_eq!(a.sets.len(), 1);
    assert!(a.sets[0].is_accepted());
    assert_eq!(a.sets[0].control_number, "0001");
    assert_eq!(
        (a.status.as_str(), a.included, a.received, a.accepted),
        ("A", 1, 1, 1)
    );
}

#[test]
fn ack_999_rejected() {
    let bytes = fixture("imsweb-x12-parser/x12_999_rejected.txt");
    let doc = Document::parse(&bytes);
    let a = ack999::read_999(sets(&doc)[0]).value;
    let s = &a.sets[0];
    assert_eq!(
        (
            s.set_id.as_str(),
            s.control_number.as_str(),
            s.version.as_deref()
        ),
        ("837", "0028", None)
    );
    assert!(!s.is_accepted());
    assert_eq!(s.codes, ["5"]);
    assert_eq!(s.errors.len(), 1);
    let e = &s.errors[0];
    assert_eq!(
        (
            e.segment_id.as_str(),
            e.position,
            e.loop_id.as_deref(),
            e.code.as_deref()
        ),
        ("NM", 17, None, Some("1"))
    );
    assert_eq!(
        (a.status.as_str(), a.included, a.received, a.accepted),
        ("R", 1, 1, 0)
    );
}

#[test]
fn ta1_then_999() {
    let bytes = fixture("imsweb-x12-parser/x12_999_accepted_ta1.txt");
    let doc = Document::parse(&bytes);
    let sets = sets(&doc);
    let t = ta1::read_ta1s(&doc.interchanges[0]);
    assert!(t.problems.is_empty(), "{:?}", t.problems);
    assert_eq!(t.value.len(), 1);
    let t = &t.value[0];
    assert_eq!(
        (
            t.control_number,
            t.date,
            t.status.as_str(),
            t.note_code.as_str()
        ),
        (101, day(2024, 10, 18), "A", "000")
    );
    assert_eq!(t.time.format("%H%M").to_string(), "0307");
    let a = ack999::read_999(sets[0]).value;
    let s = &a.sets[0];
    assert_eq!(s.errors.len(), 2);
    assert_eq!(
        s.errors
            .iter()
            .map(|e| (e.segment_id.as_str(), e.position, e.code.as_deref()))
            .collect::<Vec<_>>(),
        [("CLM", 289, Some("6")), ("CLM", 381, Some("6"))]
    );
    assert_eq!(s.errors[0].loop_id.as_deref(), Some("2010"));
    assert_eq!(
        (s.status.as_str(), a.status.as_str(), a.accepted),
        ("R", "R", 0)
    );
}

#[test]
fn professional_837_demo() {
    let bytes = fixture("lfh-x12/demo.example1.837");
    let doc = Document::parse(&bytes);
    let p = claim837::read_837p(sets(&doc)[0]);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let set = p.value;
    assert_eq!(set.header.transaction.reference, "244579");
    assert_eq!(set.header.submitter.id, "TGJ23");
    assert_eq!(set.header.submitter.phone, "3055552222");
    assert_eq!(set.header.receiver.id, "66783JJT");
    assert_eq!(set.claims.len(), 1);
    let c = &set.claims[0];
    assert_eq!(c.billing_provider.npi, "1912301953");
    assert_eq!(c.billing_provider.tax_id, TaxId::Ein("587654321".into()));
    assert_eq!(c.billing_provider.address.postal_code, "331110000");
    assert_eq!(c.billing_provider.taxonomy.as_deref(), Some("203BF0100Y"));
    assert_eq!(c.subscriber.member_id, "JS00111223333");
    assert_eq!(c.subscriber.group_number.as_deref(), Some("2222-SJ"));
    assert_eq!(c.subscriber.claim_filing_indicator, "CI");
    let pt = c.patient.as_ref().unwrap();
    assert_eq!(
        (pt.relationship.as_str(), pt.birth_date, pt.gender.as_str()),
        ("19", day(1973, 5, 1), "M")
    );
    assert_eq!(c.payer.id, "999996666");
    assert_eq!(c.claim.patient_control_number, "26463774");
    assert_eq!(c.claim.total_charge, dec("100.00"));
    assert_eq!(c.claim.frequency, ClaimFrequency::Original);
    assert_eq!(c.place_of_service, "11");
    assert_eq!(c.claim.diagnoses, ["0340", "V7389"]);
    assert_eq!(c.lines.len(), 4);
    assert_eq!(
        c.lines.iter().map(|l| l.charge).sum::<Decimal>(),
        c.claim.total_charge
    );
    assert_eq!(
        c.lines
            .iter()
            .map(|l| l.diagnosis_pointers[0])
            .collect::<Vec<_>>(),
        [1, 1, 2, 2]
    );
    assert_eq!(c.lines[2].procedure.code, "99214");
    assert_eq!(c.lines[3].service_date, DateRange::day(day(2006, 10, 10)));
}

#[test]
fn professional_837_cob_secondary() {
    let bytes = fixture("lfh-x12/demo.cob.example3.B.837");
    let doc = Document::parse(&bytes);
    let p = claim837::read_837p(sets(&doc)[0]);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let c = &p.value.claims[0];
    assert_eq!(c.subscriber.payer_responsibility, "S");
    assert_eq!(c.claim.total_charge, dec("79.04"));
    let r = c.rendering_provider.as_ref().unwrap();
    assert_eq!(
        (r.npi.as_str(), r.taxonomy.as_deref()),
        ("1999996666", Some("204C00000X"))
    );
    assert_eq!(c.claim.other_payers.len(), 1);
    let o = &c.claim.other_payers[0];
    assert_eq!(
        (
            o.payer_responsibility.as_str(),
            o.relationship.as_str(),
            o.claim_filing_indicator.as_str()
        ),
        ("P", "01", "12")
    );
    let adj: Vec<(&str, &str, Decimal)> = o
        .adjustments
        .iter()
        .map(|a| (a.group.as_str(), a.reason.as_str(), a.amount))
        .collect();
    assert_eq!(adj, [("PR", "1", dec("21.89")), ("PR", "2", dec("15.00"))]);
    assert_eq!(
        (o.paid_amount, o.remaining_patient_liability),
        (Some(dec("39.15")), Some(dec("36.89")))
    );
    assert_eq!(
        (
            o.benefits_assigned.as_str(),
            o.release_of_information.as_str()
        ),
        ("Y", "Y")
    );
    assert_eq!(
        (o.subscriber_id.as_str(), o.payer_id.as_str()),
        ("JS00111223333", "999996666")
    );
    assert_eq!(c.lines.len(), 3);
    let paid: Decimal = c
        .lines
        .iter()
        .flat_map(|l| &l.adjudications)
        .map(|a| a.paid_amount)
        .sum();
    assert_eq!(paid, dec("76.04"));
    let first = &c.lines[0].adjudications[0];
    assert_eq!(first.adjustments[0].group, "CO");
    assert_eq!(first.adjustments[0].amount, dec("3.00"));
    assert_eq!(first.adjudication_date, day(2005, 10, 15));
    assert_eq!(c.lines[0].diagnosis_pointers, [1, 2, 3, 4]);
}

#[test]
fn institutional_837() {
    let bytes = fixture("lfh-x12/institutional-claim.837i");
    let doc = Document::parse(&bytes);
    let p = claim837::read_837i(sets(&doc)[0]);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let c = &p.value.claims[0];
    assert_eq!(c.billing_provider.npi, "9876540809");
    assert_eq!(c.claim.patient_control_number, "756048Q");
    assert_eq!(c.claim.total_charge, dec("89.93"));
    assert_eq!(c.facility_type, "14");
    // The sample writes DTP*434 as D8 (the TR3 wants RD8): a one-day statement.
    assert_eq!(
        (c.statement_from, c.statement_to),
        (day(1996, 9, 11), day(1996, 9, 11))
    );
    assert!(c.present_on_admission.is_empty());
    assert_eq!(
        (c.admission_type.as_deref(), c.patient_status.as_str()),
        (Some("3"), "01")
    );
    assert_eq!(c.claim.diagnoses, ["3669", "4019", "79431"]);
    assert_eq!(c.value_codes, [("A2".to_string(), dec("15.31"))]);
    assert_eq!(c.condition_codes, ["09"]);
    let occ: Vec<(&str, NaiveDate)> = c
        .occurrences
        .iter()
        .map(|o| (o.code.as_str(), o.date))
        .collect();
    assert_eq!(
        occ,
        [
            ("A1", day(1926, 11, 11)),
            ("A2", day(1991, 11, 1)),
            ("B1", day(1926, 11, 11)),
            ("B2", day(1987, 1, 1))
        ]
    );
    assert!(c.occurrence_spans.is_empty() && c.drg.is_none());
    let att = c.attending_provider.as_ref().unwrap();
    assert_eq!(
        att.name,
        PartyName::Person(medbill_x12::model::PersonName {
            last: "JONES".into(),
            first: Some("JOHN".into()),
            middle: Some("J".into()),
            suffix: None
        })
    );
    assert_eq!(c.claim.other_payers[0].payer_id, "1135");
    assert_eq!(
        c.claim.other_payers[0].group_number.as_deref(),
        Some("351630")
    );
    assert_eq!(c.lines.len(), 2);
    assert_eq!(
        (c.lines[1].revenue_code.as_str(), c.lines[1].units),
        ("0730", dec("3.00"))
    );
    assert_eq!(
        c.lines.iter().map(|l| l.charge).sum::<Decimal>(),
        c.claim.total_charge
    );
}

#[test]
fn institutional_837_two_claims() {
    let bytes = fixture("lfh-x12/two-claims-single-provider.837i");
    let doc = Document::parse(&bytes);
    let set = claim837::read_837i(sets(&doc)[0]).value;
    assert_eq!(set.claims.len(), 2);
    assert_eq!(
        set.claims[0].billing_provider,
        set.claims[1].billing_provider
    );
    assert_eq!(set.claims[0].subscriber.member_id, "030005074");
    assert_eq!(set.claims[1].subscriber.member_id, "123405074");
    assert_eq!(set.claims[1].claim.total_charge, dec("50.00"));
    assert_eq!(
        (set.claims[1].statement_from, set.claims[1].statement_to),
        (day(2005, 4, 1), day(2005, 4, 1))
    );
    assert_eq!(
        set.claims[1]
            .attending_provider
            .as_ref()
            .unwrap()
            .taxonomy
            .as_deref(),
        Some("363LP0200N")
    );
}

#[test]
fn many_claims_and_multiple_interchanges() {
    let bytes = fixture("imsweb-x12-parser/x12_many_claims.txt");
    let doc = Document::parse(&bytes);
    let sets0 = sets_with(&doc, &["SE01 says \"25\" segments but there are 11486"]);
    let set = claim837::read_837p(sets0[0]).value;
    // Counted independently with awk over the file: 820 CLM, 410 HL*20, 820 SV1 of 12.25.
    assert_eq!(set.claims.len(), 820);
    assert_eq!(
        set.claims
            .iter()
            .map(|c| c.claim.total_charge)
            .sum::<Decimal>(),
        dec("410000")
    );
    let line_total: Decimal = set
        .claims
        .iter()
        .flat_map(|c| &c.lines)
        .map(|l| l.charge)
        .sum();
    assert_eq!(line_total, dec("10045.00"));

    let bytes = fixture("imsweb-x12-parser/x12_multiple_isa.txt");
    let doc = Document::parse(&bytes);
    assert_eq!(doc.interchanges.len(), 2);
    let claims: usize = doc
        .sets()
        .map(|(_, _, s)| s)
        .collect::<Vec<_>>()
        .iter()
        .map(|s| claim837::read_837p(s).value.claims.len())
        .sum();
    assert_eq!(claims, 4);
}

#[test]
fn different_separators_837() {
    let bytes = fixture("imsweb-x12-parser/x12_valid_different_separators.txt");
    let doc = Document::parse(&bytes);
    let sets = sets_with(&doc, &["SE01 says \"25\" segments but there are 34"]);
    let set = claim837::read_837p(sets[0]).value;
    assert_eq!(set.claims.len(), 2);
    assert_eq!(set.claims[1].claim.patient_control_number, "A37YH667");
    assert_eq!(set.claims[1].lines[0].procedure.modifiers, ["25"]);
    assert_eq!(set.claims[1].lines[0].diagnosis_pointers, [1, 2, 3]);
    // HI*BK*8901*BF*87200*BF^5559: only the last element is a well-formed composite.
    assert_eq!(set.claims[0].claim.diagnoses, ["5559"]);
}

#[test]
fn corrected_and_void_claims() {
    for (file, freq, number) in [
        (
            "synthetic-837/demo.example1.freq7.837",
            ClaimFrequency::Replacement,
            "PAYERCLM0007",
        ),
        (
            "synthetic-837/demo.example1.freq8.837",
            ClaimFrequency::Void,
            "PAYERCLM0008",
        ),
    ] {
        let bytes = fixture(file);
        let doc = Document::parse(&bytes);
        let c = &claim837::read_837p(sets(&doc)[0]).value.claims[0];
        assert_eq!(c.claim.frequency, freq);
        assert_eq!(c.claim.payer_claim_number.as_deref(), Some(number));
        assert_eq!(c.claim.total_charge, dec("100.00"));
    }
    let bytes = fixture("synthetic-837/institutional-claim.freq8.837i");
    let doc = Document::parse(&bytes);
    let c = &claim837::read_837i(sets(&doc)[0]).value.claims[0];
    assert_eq!(c.claim.frequency, ClaimFrequency::Void);
    assert_eq!(c.claim.payer_claim_number.as_deref(), Some("HOSPCLM0008"));
}

#[test]
fn eligibility_270() {
    let bytes = fixture("lfh-x12/subscriber-health-benefit-check.270");
    let doc = Document::parse(&bytes);
    let q = inquiry270::read_270(sets(&doc)[0]);
    assert!(q.problems.is_empty(), "{:?}", q.problems);
    let q = q.value;
    assert_eq!(
        (q.payer_name.as_str(), q.payer_id.as_str()),
        ("ABC COMPANY", "842610001")
    );
    assert_eq!(
        q.provider_name,
        PartyName::organization("BONE AND JOINT CLINIC")
    );
    assert_eq!(q.provider_npi, "2000035");
    assert_eq!(
        (q.trace.number.as_str(), q.trace.originator.as_deref()),
        ("93175-012547", Some("9877281234"))
    );
    assert_eq!(q.member_id, "11122333301");
    assert_eq!(q.subscriber_birth_date, Some(day(1943, 5, 19)));
    assert_eq!(q.service_date, Some(DateRange::day(day(2006, 5, 1))));
    assert_eq!(q.service_types, ["30"]);
    assert!(q.dependent.is_none());
}

#[test]
fn claim_status_276() {
    let bytes = fixture("lfh-x12/claim-level-status.276");
    let doc = Document::parse(&bytes);
    let q = status276::read_276(sets(&doc)[0]);
    assert!(q.problems.is_empty(), "{:?}", q.problems);
    let q = q.value;
    assert_eq!(q.payer_id, "12345");
    assert_eq!(q.receiver_id, "X67E");
    assert_eq!(q.provider_npi, "1666666661");
    assert_eq!(q.member_id, "123456789A");
    assert_eq!(
        (q.subscriber_birth_date, q.subscriber_gender.as_deref()),
        (Some(day(1930, 12, 10)), Some("M"))
    );
    assert_eq!(q.claims.len(), 1);
    let c = &q.claims[0];
    assert_eq!(c.trace_number, "ABCXYZ1");
    assert_eq!(
        (c.bill_type.as_deref(), c.patient_control_number.as_deref()),
        (Some("111"), Some("SM123456"))
    );
    assert_eq!(c.total_charge, Some(dec("8513.88")));
    assert_eq!(
        c.service_date,
        Some(DateRange {
            from: day(2005, 8, 31),
            to: Some(day(2005, 9, 6))
        })
    );
}

#[test]
fn malformed_birth_dates_are_not_echoed() {
    let bytes = fixture("lfh-x12/subscriber-health-benefit-check.270");
    let text = String::from_utf8(bytes)
        .unwrap()
        .replace("DMG*D8*19430519", "DMG*D8*19431399");
    let doc = Document::parse(text.as_bytes());
    let q = inquiry270::read_270(sets(&doc)[0]);
    assert_eq!(q.problems.len(), 1);
    let msg = q.problems[0].to_string();
    assert!(msg.contains("DMG02") && !msg.contains("19431399"), "{msg}");
    assert_eq!(q.value.subscriber_birth_date, None);
}
