//! Write-then-read round trips for every writer, with default and unusual separators, plus the
//! envelope facts (ISA width, counts, control numbers, HL numbering) checked on the text.

use medbill_x12::Document;
use medbill_x12::model::claim_status::{ClaimStatus, StatusKind};
use medbill_x12::transactions::{ack999, claim_status277, claim837, inquiry270, status276, ta1};
use medbill_x12::write::{self, Envelope, InterchangeHeader, Separators, samples};

fn newline_separators() -> Separators {
    Separators {
        newline: true,
        ..Separators::default()
    }
}

fn all_separators() -> [Separators; 3] {
    [
        Separators::default(),
        Separators::unusual(),
        newline_separators(),
    ]
}

/// Parses `text`, asserts the envelope checks found nothing and returns the document.
fn parse(text: &str) -> Document<'_> {
    let doc = Document::parse(text.as_bytes());
    assert!(
        doc.problems.is_empty(),
        "envelope problems: {:?}",
        doc.problems
    );
    doc
}

fn segments(text: &str, sep: Separators) -> Vec<Vec<String>> {
    text.split(sep.segment)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.split(sep.element).map(str::to_owned).collect())
        .collect()
}

#[test]
fn professional_round_trip() {
    let set = samples::professional_set();
    for sep in all_separators() {
        let text = write::professional_interchange(sep, &Envelope::test_default(905, 77, 12), &set)
            .unwrap();
        let doc = parse(&text);
        let (_, group, ts) = doc.sets().next().unwrap();
        assert_eq!(group.gs.unwrap().text(8), "005010X222A1");
        assert_eq!(ts.control_number(), "0012");
        let back = claim837::read_837p(ts);
        assert!(back.problems.is_empty(), "{:?}", back.problems);
        assert_eq!(back.value, set);
        // read_837 tells the kind from ST03.
        assert!(matches!(
            claim837::read_837(ts).value,
            claim837::ClaimSet::Professional(_)
        ));
    }
}

#[test]
fn institutional_round_trip() {
    let set = samples::institutional_set();
    for sep in all_separators() {
        let text = write::institutional_interchange(sep, &Envelope::test_default(906, 78, 1), &set)
            .unwrap();
        let doc = parse(&text);
        let (_, group, ts) = doc.sets().next().unwrap();
        assert_eq!(group.gs.unwrap().text(8), "005010X223A2");
        let back = claim837::read_837i(ts);
        assert!(back.problems.is_empty(), "{:?}", back.problems);
        assert_eq!(back.value, set);
        assert!(matches!(
            claim837::read_837(ts).value,
            claim837::ClaimSet::Institutional(_)
        ));
    }
}

#[test]
fn eligibility_round_trip() {
    let q = samples::eligibility_inquiry();
    let mut no_dependent = q.clone();
    no_dependent.dependent = None;
    no_dependent.service_types = vec!["30".into()];
    for sep in all_separators() {
        for model in [&q, &no_dependent] {
            let text = write::eligibility_interchange(sep, &Envelope::test_default(1, 1, 1), model)
                .unwrap();
            let doc = parse(&text);
            let (_, _, ts) = doc.sets().next().unwrap();
            let back = inquiry270::read_270(ts);
            assert!(back.problems.is_empty(), "{:?}", back.problems);
            assert_eq!(&back.value, model);
        }
    }
    // EQ01 uses the repetition separator.
    let text =
        write::eligibility_interchange(Separators::unusual(), &Envelope::test_default(1, 1, 1), &q)
            .unwrap();
    assert!(text.contains("\nEQ|30!98\n"), "{text}");
}

#[test]
fn claim_status_round_trip() {
    let q = samples::claim_status_inquiry();
    for sep in all_separators() {
        let text =
            write::claim_status_interchange(sep, &Envelope::test_default(2, 2, 2), &q).unwrap();
        let doc = parse(&text);
        let (_, _, ts) = doc.sets().next().unwrap();
        let back = status276::read_276(ts);
        assert!(back.problems.is_empty(), "{:?}", back.problems);
        assert_eq!(back.value, q);
    }
}

#[test]
fn claim_acknowledgment_277ca_round_trip() {
    let a = samples::claim_acknowledgment();
    for sep in all_separators() {
        let text =
            write::claim_acknowledgment_interchange(sep, &Envelope::test_default(4, 4, 4), &a)
                .unwrap();
        let doc = parse(&text);
        let (_, group, ts) = doc.sets().next().unwrap();
        assert_eq!(group.gs.unwrap().text(8), "005010X214");
        let back = claim_status277::read_277(ts);
        assert!(back.problems.is_empty(), "{:?}", back.problems);
        let r = back.value;
        assert_eq!(r.kind, StatusKind::ClaimAcknowledgment);
        assert_eq!(r.reference.as_deref(), Some("ACK0001"));
        assert_eq!(r.payer_id.as_deref(), Some("ACME01"));
        assert_eq!(r.receiver_trace.as_deref(), Some("BATCH0001"));
        // 2200B, then 2200C with the provider's total and no date.
        assert_eq!(r.batch_statuses.len(), 2);
        assert_eq!(r.batch_statuses[0], a.receiver_status);
        assert_eq!(r.batch_statuses[1].effective_date, None);
        assert_eq!(r.batch_statuses[1].charge, a.receiver_status.charge);
        let provider = &a.providers[0];
        let expected: Vec<ClaimStatus> = provider
            .claims
            .iter()
            .map(|c| ClaimStatus {
                trace_number: Some(c.patient_control_number.clone()),
                patient_control_number: Some(c.patient_control_number.clone()),
                payer_claim_number: c.payer_claim_number.clone(),
                bill_type: c.bill_type.clone(),
                provider_id: Some(provider.npi.clone()),
                member_id: Some(c.member_id.clone()),
                statuses: vec![c.status.clone()],
                service_date: Some(c.service_date),
                lines: c.lines.clone(),
            })
            .collect();
        assert_eq!(r.claims, expected);
    }
    let text = write::claim_acknowledgment_interchange(
        Separators::default(),
        &Envelope::test_default(4, 4, 4),
        &a,
    )
    .unwrap();
    // One claim accepted and one rejected, with their charges, in 2200B.
    assert!(
        text.contains("~QTY*90*1~QTY*AA*1~AMT*YU*185.5~AMT*YY*200~"),
        "{text}"
    );
    assert!(text.contains("~HL*4*3*PT~NM1*QC*1*DOE*JANE****MI*XJ123456789~TRN*2*PCN-2026-0001~STC*A2:20*20260303*WQ*185.5~REF*1K*SIM0000000001~"), "{text}");
    assert!(
        text.contains("~STC*A7:562:82*20260303*U*200********RENDERING NPI FAILS ITS CHECK DIGIT~"),
        "{text}"
    );
}

#[test]
fn claim_status_response_277_round_trip() {
    let a = samples::claim_status_answer();
    for sep in all_separators() {
        let text =
            write::claim_status_response_interchange(sep, &Envelope::test_default(5, 5, 5), &a)
                .unwrap();
        let doc = parse(&text);
        let (_, _, ts) = doc.sets().next().unwrap();
        let back = claim_status277::read_277(ts);
        assert!(back.problems.is_empty(), "{:?}", back.problems);
        let r = back.value;
        assert_eq!(r.kind, StatusKind::StatusResponse);
        assert_eq!(r.payer_name.as_deref(), Some("ACME HEALTH PLAN"));
        let expected: Vec<ClaimStatus> = a
            .claims
            .iter()
            .map(|c| ClaimStatus {
                trace_number: Some(c.trace_number.clone()),
                patient_control_number: c.patient_control_number.clone(),
                payer_claim_number: c.payer_claim_number.clone(),
                bill_type: c.bill_type.clone(),
                provider_id: Some(a.provider_npi.clone()),
                member_id: Some(a.member_id.clone()),
                statuses: c.statuses.clone(),
                service_date: c.service_date,
                lines: c.lines.clone(),
            })
            .collect();
        assert_eq!(r.claims, expected);
        assert_eq!(claim_status277::first_category(&r.claims[0]), Some("P1"));
    }
}

#[test]
fn status_writers_refuse_missing_required_values() {
    let mut a = samples::claim_acknowledgment();
    a.providers[0].claims[0].status.charge = None;
    let err = write::claim_acknowledgment_interchange(
        Separators::default(),
        &Envelope::test_default(4, 4, 4),
        &a,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("provider 1 claim 1: status: STC04"),
        "{err}"
    );
    let mut q = samples::claim_status_answer();
    q.claims[1].statuses.clear();
    let err = write::claim_status_response_interchange(
        Separators::default(),
        &Envelope::test_default(5, 5, 5),
        &q,
    )
    .unwrap_err();
    assert!(err.to_string().contains("claim 2: statuses"), "{err}");
}

#[test]
fn functional_ack_round_trip() {
    let a = samples::functional_ack();
    for sep in all_separators() {
        let text = write::ack_interchange(sep, &Envelope::test_default(3, 3, 3), &a).unwrap();
        let doc = parse(&text);
        let (_, group, ts) = doc.sets().next().unwrap();
        assert_eq!(group.gs.unwrap().text(1), "FA");
        let back = ack999::read_999(ts);
        assert!(back.problems.is_empty(), "{:?}", back.problems);
        assert_eq!(back.value, a);
    }
    let text = write::ack_interchange(Separators::default(), &Envelope::test_default(3, 3, 3), &a)
        .unwrap();
    assert!(text.contains("~IK4*5:3*1325*7*9~"), "{text}");
}

#[test]
fn ta1_round_trip() {
    let a = samples::interchange_ack();
    for sep in all_separators() {
        let text = write::ta1_interchange(sep, &InterchangeHeader::test_default(44), &a).unwrap();
        let doc = parse(&text);
        let ic = &doc.interchanges[0];
        assert!(ic.groups.is_empty());
        assert_eq!(ic.iea.unwrap().text(1), "0");
        let back = ta1::read_ta1s(ic);
        assert!(back.problems.is_empty(), "{:?}", back.problems);
        assert_eq!(back.value, vec![a.clone()]);
    }
}

#[test]
fn envelope_is_fixed_width_and_counted() {
    let set = samples::professional_set();
    let sep = Separators::default();
    let text =
        write::professional_interchange(sep, &Envelope::test_default(905, 77, 12), &set).unwrap();
    let isa_end = text.find('~').unwrap();
    assert_eq!(
        isa_end + 1,
        106,
        "ISA with its terminator is 106 characters"
    );
    assert!(text.starts_with(
        "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260102*1200*^*00501*000000905*0*T*:~"
    ));
    let segs = segments(&text, sep);
    let st = segs.iter().position(|s| s[0] == "ST").unwrap();
    let se = segs.iter().position(|s| s[0] == "SE").unwrap();
    assert_eq!(segs[se][1], (se - st + 1).to_string());
    assert_eq!(segs[se][2], "0012");
    let ge = segs.iter().find(|s| s[0] == "GE").unwrap();
    assert_eq!(ge[1..], ["1".to_string(), "77".to_string()]);
    let iea = segs.iter().find(|s| s[0] == "IEA").unwrap();
    assert_eq!(iea[1..], ["1".to_string(), "000000905".to_string()]);
}

#[test]
fn hl_numbering_follows_the_hierarchy() {
    let set = samples::professional_set();
    let sep = Separators::default();
    let text =
        write::professional_interchange(sep, &Envelope::test_default(1, 1, 1), &set).unwrap();
    let hls: Vec<String> = segments(&text, sep)
        .into_iter()
        .filter(|s| s[0] == "HL")
        .map(|s| s[1..].join("*"))
        .collect();
    // Claim 1: self subscriber; claim 2: child patient (new HL 22 with an HL 23);
    // claim 3: secondary coverage of the same subscriber (new HL 22, SBR01 = S); claim 4: primary
    // coverage again (new HL 22).
    assert_eq!(
        hls,
        [
            "1**20*1", "2*1*22*0", "3*1*22*1", "4*3*23*0", "5*1*22*0", "6*1*22*0"
        ]
    );
}

#[test]
fn two_sets_in_one_group_are_counted() {
    let set = samples::professional_set();
    let mut w = write::X12Writer::new(Separators::default()).unwrap();
    let env = Envelope::test_default(10, 20, 1);
    w.begin_interchange(&env.interchange).unwrap();
    w.begin_group("HC", &env.group, "005010X222A1").unwrap();
    write::write_837p(&mut w, &set, 1).unwrap();
    write::write_837p(&mut w, &set, 2).unwrap();
    w.end_group().unwrap();
    w.end_interchange().unwrap();
    let text = w.finish().unwrap();
    let doc = parse(&text);
    assert_eq!(doc.sets().count(), 2);
    assert!(text.contains("~GE*2*20~"));
}

#[test]
fn acknowledgments_for_received_files() {
    use medbill_x12::write::{acknowledge_group, acknowledge_interchange};
    // A clean 837P interchange: accepted by 999 and TA1.
    let set = samples::professional_set();
    let text = write::professional_interchange(
        Separators::default(),
        &Envelope::test_default(55, 66, 1),
        &set,
    )
    .unwrap();
    let doc = parse(&text);
    let ic = &doc.interchanges[0];
    let ack = acknowledge_group(&ic.groups[0], &doc.problems);
    assert_eq!(
        (
            ack.functional_id.as_str(),
            ack.group_control_number.as_str()
        ),
        ("HC", "66")
    );
    assert_eq!(
        (
            ack.status.as_str(),
            ack.included,
            ack.received,
            ack.accepted
        ),
        ("A", 1, 1, 1)
    );
    assert_eq!(ack.sets[0].control_number, "0001");
    let ta1 = acknowledge_interchange(ic, &doc.problems).unwrap();
    assert_eq!(
        (
            ta1.control_number,
            ta1.status.as_str(),
            ta1.note_code.as_str()
        ),
        (55, "A", "000")
    );

    // Break SE01, GE02 and IEA02, and blank CLM02 with a reader problem: all are acknowledged.
    let broken = text
        .replacen("~SE*", "~SE*9", 1)
        .replace("GE*1*66~", "GE*1*67~")
        .replace("IEA*1*000000055~", "IEA*1*000000056~");
    let doc = Document::parse(broken.as_bytes());
    let ic = &doc.interchanges[0];
    let mut problems = doc.problems.clone();
    let (_, _, ts) = doc.sets().next().unwrap();
    let mut bad_claim = ts.clone();
    let clm = bad_claim.segments.iter().position(|s| s.is("CLM")).unwrap();
    let fake = broken.replacen("CLM*PCN-2026-0001*197.5*", "CLM*PCN-2026-0001*X*", 1);
    assert_ne!(fake, broken);
    let fake_doc = Document::parse(fake.as_bytes());
    let (_, _, fake_ts) = fake_doc.sets().next().unwrap();
    bad_claim.segments[clm] = fake_ts.segments[clm];
    problems.extend(medbill_x12::transactions::claim837::read_837p(&bad_claim).problems);
    let ack = acknowledge_group(&ic.groups[0], &problems);
    assert_eq!(ack.status, "R");
    assert_eq!(ack.codes, ["4"]);
    let s = &ack.sets[0];
    assert_eq!(s.status, "R");
    assert_eq!(s.codes, ["4", "5"]);
    assert_eq!(s.errors.len(), 1);
    assert_eq!(
        (s.errors[0].segment_id.as_str(), s.errors[0].code.as_deref()),
        ("CLM", Some("8"))
    );
    assert_eq!(s.errors[0].elements[0].position.element, 2);
    assert_eq!(s.errors[0].elements[0].code, "6");
    // IK302 counts from ST = 1.
    let st = ts.st().unwrap().index();
    assert_eq!(
        s.errors[0].position as usize,
        ts.segments[clm].index() - st + 1
    );
    let ta1 = acknowledge_interchange(ic, &problems).unwrap();
    assert_eq!((ta1.status.as_str(), ta1.note_code.as_str()), ("R", "001"));
    // The 999 built from them is itself writable and reads back equal.
    let text = write::ack_interchange(
        Separators::default(),
        &Envelope::test_default(1, 1, 1),
        &ack,
    )
    .unwrap();
    let doc = parse(&text);
    let (_, _, ts) = doc.sets().next().unwrap();
    assert_eq!(medbill_x12::transactions::ack999::read_999(ts).value, ack);
}
