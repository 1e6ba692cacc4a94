//! payer-sim's claim front end over the real transport: 837 batches submitted with
//! medbill-connect's CORE HTTP client, TA1 / 999 / 277CA files picked up and acknowledged, and
//! 276 inquiries answered with 277s.

use anyhow::{Context, Result};
use bytes::Bytes;
use medbill_connect::{Connection, InboundFile, OutboundFile, PayloadType};
use medbill_payer_sim::{PayerSimConfig, PayerSimHandle};
use medbill_x12::Document;
use medbill_x12::model::DateRange;
use medbill_x12::model::ack::{FunctionalAck, InterchangeAck};
use medbill_x12::model::claim::{LineProviderRole, ProfessionalClaim, ProfessionalClaimSet};
use medbill_x12::model::claim_status::{
    ClaimStatus, ClaimStatusInquiry, ClaimStatusResponse, StatusClaimQuery, StatusKind,
};
use medbill_x12::transactions::{ack999, claim_status277, ta1};
use medbill_x12::write::{
    self, Envelope, GroupHeader, InterchangeHeader, Separators, X12Writer, samples,
};
use tokio::net::TcpListener;

mod common;

use common::{batch, claim, connection, d, npi, pick_up, submit};

/// The front end alone: accepted claims are paid only an hour later, so no 835 is picked up.
async fn start() -> Result<PayerSimHandle> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    Ok(medbill_payer_sim::start(
        PayerSimConfig {
            adjudication_lag_secs: 3600,
            ..PayerSimConfig::default()
        },
        listener,
    )
    .await?)
}

#[derive(Default, Debug)]
struct Results {
    ta1: Vec<InterchangeAck>,
    acks: Vec<FunctionalAck>,
    statuses: Vec<ClaimStatusResponse>,
}

fn read(files: &[InboundFile]) -> Results {
    let mut r = Results::default();
    for f in files {
        let doc = Document::parse(&f.contents);
        assert!(doc.problems.is_empty(), "{:?}", doc.problems);
        for i in &doc.interchanges {
            r.ta1.extend(ta1::read_ta1s(i).value);
        }
        for (_, _, set) in doc.sets() {
            match set.set_id().as_str() {
                "999" => {
                    let p = ack999::read_999(set);
                    assert!(p.problems.is_empty(), "{:?}", p.problems);
                    r.acks.push(p.value);
                }
                "277" => {
                    let p = claim_status277::read_277(set);
                    assert!(p.problems.is_empty(), "{:?}", p.problems);
                    r.statuses.push(p.value);
                }
                other => panic!("unexpected set {other}"),
            }
        }
    }
    r
}

/// Submits one batch and returns what came back for pickup.
async fn round(conn: &Connection, claims: Vec<ProfessionalClaim>, control: u32) -> Result<Results> {
    submit(conn, batch(claims, control)).await?;
    Ok(read(&pick_up(conn).await?))
}

/// Returns the single claim status of the single 277CA.
fn only_claim(r: &Results) -> &ClaimStatus {
    assert_eq!(r.statuses.len(), 1, "{r:?}");
    assert_eq!(r.statuses[0].claims.len(), 1);
    &r.statuses[0].claims[0]
}

fn stc01(c: &ClaimStatus) -> String {
    let code = &c.statuses[0].codes[0];
    match &code.entity {
        Some(e) => format!("{}:{}:{e}", code.category, code.status),
        None => format!("{}:{}", code.category, code.status),
    }
}

#[tokio::test]
async fn accepted_claim_gets_999_and_277ca_with_payer_claim_number_then_nothing_is_left()
-> Result<()> {
    let sim = start().await?;
    let conn = connection(&sim, "MEDBILL01")?;
    submit(
        &conn,
        batch(vec![claim("PCN-A1", "SPX100000001", d(2026, 2, 20))], 11),
    )
    .await?;
    let files = pick_up(&conn).await?;
    assert_eq!(files.len(), 2, "one 999 and one 277CA");
    let r = read(&files);
    assert_eq!(r.acks.len(), 1);
    assert_eq!(r.acks[0].status, "A");
    assert_eq!(r.acks[0].group_control_number, "11");
    let ack = &r.statuses[0];
    assert_eq!(ack.kind, StatusKind::ClaimAcknowledgment);
    assert_eq!(ack.payer_name.as_deref(), Some("SIMULATED PPO HEALTH"));
    assert_eq!(ack.receiver_trace.as_deref(), Some("BATCH0001"));
    let c = only_claim(&r);
    assert_eq!(stc01(c), "A2:20");
    assert_eq!(c.statuses[0].action.as_deref(), Some("WQ"));
    assert_eq!(
        c.statuses[0].charge,
        Some(claim("PCN-A1", "X", d(2026, 2, 20)).claim.total_charge)
    );
    assert_eq!(c.patient_control_number.as_deref(), Some("PCN-A1"));
    assert_eq!(c.payer_claim_number.as_deref(), Some("SIM0000000001"));
    assert_eq!(c.member_id.as_deref(), Some("SPX100000001"));

    // Nothing is offered twice once acknowledged.
    assert!(conn.next_inbound().await?.is_none());
    assert_eq!(sim.claims().waiting("MEDBILL01"), 0);

    // The claim is kept for 276 answers and adjudication.
    let accepted = sim.accepted_claims();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].claim.patient_control_number, "PCN-A1");
    let found = sim
        .claim_by_payer_number("SIM0000000001")
        .context("by REF*1K")?;
    assert_eq!(found.submitter, "MEDBILL01");

    // Another submitter's pickup is its own: it sees nothing of MEDBILL01's.
    let other = connection(&sim, "OTHERSUB")?;
    assert!(other.next_inbound().await?.is_none());
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn each_rejection_rule_gets_its_277ca_status() -> Result<()> {
    let sim = start().await?;
    let conn = connection(&sim, "MEDBILL01")?;
    let dos = d(2026, 2, 20);

    // Member id not on file for the payer.
    let r = round(&conn, vec![claim("PCN-R1", "SPX999999999", dos)], 21).await?;
    let c = only_claim(&r);
    assert_eq!(stc01(c), "A3:33:IL");
    assert_eq!(c.statuses[0].action.as_deref(), Some("U"));
    assert!(c.payer_claim_number.is_none());
    assert!(
        c.statuses[0]
            .message
            .as_deref()
            .unwrap()
            .contains("2010BA NM109")
    );

    // Member terminated 2025-12-31, service in 2026.
    let r = round(&conn, vec![claim("PCN-R2", "SPX100000004", dos)], 22).await?;
    assert_eq!(stc01(only_claim(&r)), "A3:109:IL");
    // The same member in 2025 is covered.
    let r = round(
        &conn,
        vec![claim("PCN-R2B", "SPX100000004", d(2025, 6, 1))],
        23,
    )
    .await?;
    assert_eq!(stc01(only_claim(&r)), "A2:20");

    // Principal and secondary diagnosis on the catalog's invalid list.
    let mut c1 = claim("PCN-R3", "SPX100000001", dos);
    c1.claim.diagnoses = vec!["J44".into(), "I10".into()];
    let r = round(&conn, vec![c1], 24).await?;
    assert_eq!(stc01(only_claim(&r)), "A7:254");
    let mut c2 = claim("PCN-R4", "SPX100000001", dos);
    c2.claim.diagnoses = vec!["E119".into(), "E11".into()];
    let r = round(&conn, vec![c2], 25).await?;
    assert_eq!(stc01(only_claim(&r)), "A7:255");

    // Unknown payer.
    let mut c3 = claim("PCN-R5", "SPX100000001", dos);
    c3.payer.id = "NOSUCHPAYER".into();
    let r = round(&conn, vec![c3], 26).await?;
    assert_eq!(stc01(only_claim(&r)), "A3:116:PR");

    // Billing NPI failing its check digit (the file is altered after writing, as another
    // vendor's software might send it).
    let text = batch(vec![claim("PCN-R6", "SPX100000001", dos)], 27)
        .replace("*XX*1234567893~", "*XX*1234567890~");
    submit(&conn, text).await?;
    let r = read(&pick_up(&conn).await?);
    assert_eq!(r.acks[0].status, "A");
    assert_eq!(stc01(only_claim(&r)), "A7:562:85");

    // Claim-level rendering NPI failing its check digit.
    let text = batch(vec![claim("PCN-R7", "SPX100000001", dos)], 28)
        .replace("*XX*1912301953~", "*XX*1912301950~");
    submit(&conn, text).await?;
    assert_eq!(
        stc01(only_claim(&read(&pick_up(&conn).await?))),
        "A7:562:82"
    );

    // A line rendering NPI failing: the claim is rejected and the line gets a 2220D status.
    let good = npi("149775854");
    let bad = format!("{}{}", &good[..9], (good.as_bytes()[9] - b'0' + 1) % 10);
    let mut c4 = claim("PCN-R8", "SPX100000001", dos);
    let mut second = c4.lines[0].clone();
    second.line_control_number = Some("PCN-R8-L2".into());
    second.providers = samples::professional_set().claims[0]
        .lines
        .iter()
        .flat_map(|l| l.providers.clone())
        .filter(|p| p.role == LineProviderRole::Rendering)
        .take(1)
        .map(|mut p| {
            p.npi = Some(good.clone());
            p
        })
        .collect();
    assert_eq!(
        second.providers.len(),
        1,
        "the sample has a line rendering provider"
    );
    c4.claim.total_charge += second.charge;
    c4.lines.push(second);
    let text = batch(vec![c4], 29).replace(&format!("*XX*{good}~"), &format!("*XX*{bad}~"));
    submit(&conn, text).await?;
    let r = read(&pick_up(&conn).await?);
    let c = only_claim(&r);
    assert_eq!(stc01(c), "A7:562:82");
    assert_eq!(c.lines.len(), 1, "only the failing line is reported");
    assert_eq!(c.lines[0].line_control_number.as_deref(), Some("PCN-R8-L2"));
    assert_eq!(c.lines[0].statuses[0].codes[0].status, "562");

    assert_eq!(sim.accepted_claims().len(), 1, "only PCN-R2B was accepted");
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_claim_accepted_before_is_a_duplicate_and_its_batch_counts_both() -> Result<()> {
    let sim = start().await?;
    let conn = connection(&sim, "MEDBILL01")?;
    let dos = d(2026, 2, 20);
    let first = round(&conn, vec![claim("PCN-D1", "SPX100000002", dos)], 31).await?;
    assert_eq!(stc01(only_claim(&first)), "A2:20");

    // Same CLM01 and total again, beside a new claim: one rejected as duplicate, one accepted.
    let r = round(
        &conn,
        vec![
            claim("PCN-D1", "SPX100000002", dos),
            claim("PCN-D2", "SPX100000002", dos),
        ],
        32,
    )
    .await?;
    let claims = &r.statuses[0].claims;
    assert_eq!(stc01(&claims[0]), "A3:78");
    assert_eq!(stc01(&claims[1]), "A2:20");
    assert_eq!(
        claims[1].payer_claim_number.as_deref(),
        Some("SIM0000000002")
    );

    // A different total is not a duplicate; another submitter's claim is not either.
    let mut changed = claim("PCN-D1", "SPX100000002", dos);
    changed.lines[0].charge += rust_decimal::Decimal::ONE;
    changed.claim.total_charge += rust_decimal::Decimal::ONE;
    let r = round(&conn, vec![changed], 33).await?;
    assert_eq!(stc01(only_claim(&r)), "A2:20");
    let other = connection(&sim, "OTHERSUB")?;
    let r = round(&other, vec![claim("PCN-D1", "SPX100000002", dos)], 34).await?;
    assert_eq!(stc01(only_claim(&r)), "A2:20");
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn an_unreadable_envelope_gets_only_a_rejecting_ta1() -> Result<()> {
    let sim = start().await?;
    let conn = connection(&sim, "MEDBILL01")?;
    // IEA02 does not repeat ISA13: note code 001.
    let text = batch(vec![claim("PCN-T1", "SPX100000001", d(2026, 2, 20))], 41)
        .replace("IEA*1*000000041~", "IEA*1*000000042~");
    submit(&conn, text).await?;
    let files = pick_up(&conn).await?;
    assert_eq!(files.len(), 1);
    let r = read(&files);
    assert_eq!(r.ta1.len(), 1);
    assert_eq!(r.ta1[0].status, "R");
    assert_eq!(r.ta1[0].note_code, "001");
    assert_eq!(r.ta1[0].control_number, 41);
    assert!(r.acks.is_empty() && r.statuses.is_empty());
    assert!(sim.accepted_claims().is_empty());

    // ISA14 = 1 asks for a TA1 on a good interchange too: TA104 A, then the 999 and 277CA.
    let text = batch(vec![claim("PCN-T2", "SPX100000001", d(2026, 2, 20))], 42);
    let asked = text.replacen("*00501*000000042*0*", "*00501*000000042*1*", 1);
    assert_ne!(asked, text);
    submit(&conn, asked).await?;
    let r = read(&pick_up(&conn).await?);
    assert_eq!(r.ta1.len(), 1);
    assert_eq!(
        (r.ta1[0].status.as_str(), r.ta1[0].note_code.as_str()),
        ("A", "000")
    );
    assert_eq!(r.acks.len(), 1);
    assert_eq!(r.statuses.len(), 1);

    // Not X12 at all: refused at once with a CORE error, nothing kept.
    let err = conn
        .submit_batch(OutboundFile {
            label: "837P".into(),
            contents: Bytes::from_static(b"this is not x12"),
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("PayloadIllegal"), "{err}");
    assert!(conn.next_inbound().await?.is_none());
    sim.shutdown().await?;
    Ok(())
}

/// Writes two 837P sets in one group; the second has a service date that is not a date.
fn two_sets_one_broken(control: u32) -> String {
    let mut w = X12Writer::new(Separators::default()).unwrap();
    let isa = InterchangeHeader::test_default(control);
    w.begin_interchange(&isa).unwrap();
    w.begin_group(
        "HC",
        &GroupHeader::new("SENDERAPP", "RECEIVERAPP", isa.date, isa.time, control),
        "005010X222A1",
    )
    .unwrap();
    let set = |c: ProfessionalClaim| ProfessionalClaimSet {
        claims: vec![c],
        ..samples::professional_set()
    };
    write::write_837p(
        &mut w,
        &set(claim("PCN-P1", "SPX100000001", d(2026, 2, 20))),
        1,
    )
    .unwrap();
    write::write_837p(
        &mut w,
        &set(claim("PCN-P2", "SPX100000001", d(2026, 2, 21))),
        2,
    )
    .unwrap();
    w.end_group().unwrap();
    w.end_interchange().unwrap();
    let text = w.finish().unwrap();
    text.replace("DTP*472*D8*20260221~", "DTP*472*D8*20261399~")
}

#[tokio::test]
async fn a_group_with_a_broken_set_is_partially_accepted_with_ik3_ik4() -> Result<()> {
    let sim = start().await?;
    let conn = connection(&sim, "MEDBILL01")?;
    submit(&conn, two_sets_one_broken(51)).await?;
    let r = read(&pick_up(&conn).await?);
    assert_eq!(r.acks.len(), 1);
    let ack = &r.acks[0];
    assert_eq!(ack.status, "P", "{ack:?}");
    assert_eq!((ack.received, ack.accepted), (2, 1));
    assert_eq!(ack.sets[0].status, "A");
    let rejected = &ack.sets[1];
    assert_eq!(rejected.status, "R");
    assert_eq!(rejected.control_number, "0002");
    let ik3 = &rejected.errors[0];
    assert_eq!(ik3.segment_id, "DTP");
    assert!(ik3.position > 0);
    assert_eq!(ik3.loop_id.as_deref(), Some("2400"), "{ik3:?}");
    assert_eq!(ik3.elements[0].position.element, 3);
    assert_eq!(ik3.elements[0].code, "8", "IK4 code 8: invalid date");
    // Only the accepted set gets a 277CA.
    assert_eq!(r.statuses.len(), 1);
    assert_eq!(
        only_claim(&r).patient_control_number.as_deref(),
        Some("PCN-P1")
    );
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn claim_status_inquiry_is_answered_from_the_claims_received() -> Result<()> {
    let sim = start().await?;
    let conn = connection(&sim, "MEDBILL01")?;
    let dos = d(2026, 2, 20);
    round(&conn, vec![claim("PCN-S1", "SPX100000001", dos)], 61).await?;
    round(&conn, vec![claim("PCN-S2", "SPX100000004", dos)], 62).await?;

    let mut q: ClaimStatusInquiry = samples::claim_status_inquiry();
    q.payer_id = "SIMPPO".into();
    q.member_id = "SPX100000001".into();
    let query = |trace: &str, pcn: &str, number: Option<&str>| StatusClaimQuery {
        trace_number: trace.into(),
        payer_claim_number: number.map(str::to_owned),
        bill_type: None,
        patient_control_number: Some(pcn.into()),
        total_charge: Some(rust_decimal::Decimal::new(10000, 2)),
        service_date: Some(DateRange::day(dos)),
    };
    q.claims = vec![
        query("T-ACCEPTED", "PCN-S1", Some("SIM0000000001")),
        query("T-UNKNOWN", "PCN-NEVER", None),
    ];
    let asked = |q: &ClaimStatusInquiry| {
        write::claim_status_interchange(Separators::default(), &Envelope::test_default(7, 7, 1), q)
            .unwrap()
    };
    let answer = conn
        .exchange(PayloadType::X12_276_REQUEST, Bytes::from(asked(&q)))
        .await?;
    assert_eq!(answer.payload_type, PayloadType::X12_277_RESPONSE);
    let doc = Document::parse(&answer.payload);
    let (_, _, set) = doc.sets().next().context("a 277")?;
    let r = claim_status277::read_277(set);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let r = r.value;
    assert_eq!(r.kind, StatusKind::StatusResponse);
    assert_eq!(r.claims.len(), 2);
    assert_eq!(r.claims[0].trace_number.as_deref(), Some("T-ACCEPTED"));
    assert_eq!(stc01(&r.claims[0]), "P1:20");
    assert_eq!(
        r.claims[0].payer_claim_number.as_deref(),
        Some("SIM0000000001")
    );
    assert_eq!(r.claims[1].trace_number.as_deref(), Some("T-UNKNOWN"));
    assert_eq!(stc01(&r.claims[1]), "A4:35");

    // The rejected claim (member terminated) answers with its rejection.
    q.member_id = "SPX100000004".into();
    q.claims = vec![query("T-REJECTED", "PCN-S2", None)];
    let answer = conn
        .exchange(PayloadType::X12_276_REQUEST, Bytes::from(asked(&q)))
        .await?;
    let doc = Document::parse(&answer.payload);
    let (_, _, set) = doc.sets().next().context("a 277")?;
    let r = claim_status277::read_277(set).value;
    assert_eq!(stc01(&r.claims[0]), "A3:109:IL");
    assert!(r.claims[0].payer_claim_number.is_none());
    sim.shutdown().await?;
    Ok(())
}
