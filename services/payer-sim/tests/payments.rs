//! payer-sim adjudicates and pays the claims it accepted, over the real transport: 837 batches
//! submitted with medbill-connect's CORE HTTP client, the 835s picked up behind the 999 and
//! 277CA and read (and balanced) with the x12 crate's own reader, the 271 answered afterwards
//! showing the accumulators moved, deposits as the bank would show them.

use std::str::FromStr;

use anyhow::{Context, Result};
use bytes::Bytes;
use chrono::{NaiveDate, TimeDelta, Utc};
use medbill_connect::{Connection, InboundFile, PayloadType};
use medbill_payer_sim::{Catalog, ClaimFront, PayerSimConfig, PayerSimHandle, Payments};
use medbill_x12::Document;
use medbill_x12::balance::balance;
use medbill_x12::model::DateRange;
use medbill_x12::model::claim::{ClaimFrequency, Procedure, ProfessionalClaim};
use medbill_x12::transactions::eligibility271::read_271;
use medbill_x12::transactions::era835::{ClaimPayment, Relife, Remittance, read_all_835};
use medbill_x12::write::{self, Envelope, Separators, samples};
use rust_decimal::Decimal;
use tokio::net::TcpListener;

mod common;

use common::{batch, claim, connection, pick_up, submit};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// A date of service well inside timely filing and after every catalog coverage start.
fn recent() -> NaiveDate {
    today() - TimeDelta::days(10)
}

async fn start(config: PayerSimConfig) -> Result<PayerSimHandle> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    Ok(medbill_payer_sim::start(config, listener).await?)
}

/// One service line: code, modifiers, units, charge.
type Line<'a> = (&'a str, &'a [&'a str], u32, &'a str);

/// A claim of `member` billed to `payer`, with one line per entry, all on `dos`.
fn bill(
    pcn: &str,
    payer: &str,
    member: &str,
    dos: NaiveDate,
    lines: &[Line<'_>],
) -> ProfessionalClaim {
    let mut c = claim(pcn, member, dos);
    c.payer.id = payer.into();
    let template = c.lines[0].clone();
    c.lines = lines
        .iter()
        .enumerate()
        .map(|(i, (code, mods, units, charge))| {
            let mut l = template.clone();
            l.procedure = Procedure {
                modifiers: mods.iter().map(|m| (*m).to_owned()).collect(),
                ..Procedure::hc(*code)
            };
            l.units = Decimal::from(*units);
            l.charge = dec(charge);
            l.service_date = DateRange::day(dos);
            l.line_control_number = Some(format!("{pcn}-L{}", i + 1));
            l
        })
        .collect();
    c.claim.total_charge = c.lines.iter().map(|l| l.charge).sum();
    c
}

/// The 835 sets of `files`, each checked readable and balanced by the crate's own balancer.
fn eras(files: &[InboundFile]) -> Vec<Remittance<'static>> {
    let mut out = Vec::new();
    for f in files {
        let (sets, problems) = read_all_835(&f.contents);
        assert!(problems.is_empty(), "{problems:?}");
        for r in sets {
            let report = balance(&r);
            assert!(report.balanced, "{:?}", report.problems);
            out.push(r.relife());
        }
    }
    out
}

fn clp<'r>(eras: &'r [Remittance<'static>], pcn: &str, status: &str) -> &'r ClaimPayment<'static> {
    eras.iter()
        .flat_map(|r| &r.claims)
        .find(|c| c.patient_control_number == pcn && c.status_code == status)
        .unwrap_or_else(|| panic!("no CLP {pcn} with status {status}"))
}

/// The CAS of a claim's first line: (group, reason, amount).
fn line_cas(c: &ClaimPayment<'_>) -> Vec<(String, String, Decimal)> {
    c.services[0]
        .adjustments
        .iter()
        .map(|a| (a.group.to_string(), a.reason.to_string(), a.amount))
        .collect()
}

fn line_remarks(c: &ClaimPayment<'_>) -> Vec<String> {
    c.services[0]
        .remarks
        .iter()
        .map(|r| r.code.to_string())
        .collect()
}

fn cas(group: &str, reason: &str, amount: &str) -> (String, String, Decimal) {
    (group.into(), reason.into(), dec(amount))
}

/// The individual deductible and out-of-pocket remaining (EB*C / EB*G, period 29) of a 271.
async fn remaining(conn: &Connection, member: &str) -> Result<(Decimal, Decimal)> {
    let mut q = samples::eligibility_inquiry();
    q.payer_id = "SIMPPO".into();
    q.member_id = member.into();
    q.subscriber_name = medbill_x12::model::PersonName::new("TESTPATIENT", "AVERY");
    q.subscriber_birth_date = None;
    q.dependent = None;
    q.service_date = Some(DateRange::day(recent()));
    let catalog = Catalog::default_catalog()?;
    let entry = &catalog
        .payer("SIMPPO")
        .and_then(|p| p.member(member))
        .context("member")?
        .entry;
    q.subscriber_name =
        medbill_x12::model::PersonName::new(entry.last_name.clone(), entry.first_name.clone());
    let text = write::eligibility_interchange(
        Separators::default(),
        &Envelope::test_default(31, 31, 1),
        &q,
    )?;
    let answer = conn
        .exchange(PayloadType::X12_270_REQUEST, Bytes::from(text))
        .await?;
    let doc = Document::parse(&answer.payload);
    let (_, _, set) = doc.sets().next().context("a 271")?;
    let r = read_271(set).value;
    let find = |info: &str| {
        r.benefits
            .iter()
            .find(|b| {
                b.info == info
                    && b.coverage_level.as_deref() == Some("IND")
                    && b.time_period.as_deref() == Some("29")
            })
            .and_then(|b| b.amount)
            .context("remaining amount")
    };
    Ok((find("C")?, find("G")?))
}

#[tokio::test]
async fn a_paid_claim_comes_back_as_a_balanced_835_and_the_next_271_shows_the_accumulators_moved()
-> Result<()> {
    let sim = start(PayerSimConfig::default()).await?;
    let conn = connection(&sim, "MEDBILL01")?;
    // SPX100000001: PPO-GOLD, deductible 1500 (250 met), out-of-pocket 5000 (400 met), 20%.
    assert_eq!(
        remaining(&conn, "SPX100000001").await?,
        (dec("1250"), dec("4600"))
    );
    let c = bill(
        "PCN-P1",
        "SIMPPO",
        "SPX100000001",
        recent(),
        &[("99214", &[], 10, "2000")],
    );
    submit(&conn, batch(vec![c], 21)).await?;
    let files = pick_up(&conn).await?;
    assert_eq!(files.len(), 3, "999, 277CA, then the 835");
    assert_eq!(
        read_all_835(&files[2].contents).0.len(),
        1,
        "the 835 comes last"
    );
    let eras = eras(&files);
    assert_eq!(eras.len(), 1);
    let era = &eras[0];
    assert_eq!(era.payment.method, "ACH");
    assert_eq!(era.payment.handling, "I");
    assert_eq!(era.payment.amount, dec("200"));
    let trace = era.trace.as_ref().context("TRN")?;
    assert_eq!(trace.originator.as_deref(), Some("1512345678"));
    assert_eq!(era.payer.id.as_deref(), Some("SIMPPO"));
    assert_eq!(era.payee.npi(), Some("1234567893"));
    let d405 = era
        .dates
        .iter()
        .find(|d| d.qualifier == "405")
        .context("DTM*405")?;
    assert_eq!(d405.date, today().format("%Y%m%d").to_string());

    let p = clp(&eras, "PCN-P1", "1");
    assert_eq!((p.charge, p.paid), (dec("2000"), dec("200")));
    assert_eq!(p.patient_responsibility, Some(dec("1300")));
    assert_eq!(
        p.payer_claim_control_number.as_deref(),
        Some("SIM0000000001")
    );
    assert_eq!(p.filing_indicator.as_deref(), Some("12"));
    let svc = &p.services[0];
    assert_eq!(svc.line_control_number(), Some("PCN-P1-L1"));
    assert_eq!(svc.allowed(), Some(dec("1500")));
    assert_eq!(
        line_cas(p),
        vec![
            cas("CO", "45", "500"),
            cas("PR", "1", "1250"),
            cas("PR", "2", "50")
        ]
    );

    let deposits = sim.deposits();
    assert_eq!(deposits.len(), 1);
    assert_eq!(deposits[0].amount.as_decimal(), dec("200"));
    assert_eq!(deposits[0].method, "ACH");
    assert_eq!(deposits[0].trace_number, trace.number);
    assert_eq!(deposits[0].payer_id, "SIMPPO");

    // The deductible is met now and the out-of-pocket met rose by the patient's 1300.
    assert_eq!(
        remaining(&conn, "SPX100000001").await?,
        (dec("0"), dec("3300"))
    );
    assert!(conn.next_inbound().await?.is_none(), "paid once");
    assert_eq!(sim.claims().payments().pending(), 0);
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn each_denial_rule_gets_its_adjustment_and_remark() -> Result<()> {
    let sim = start(PayerSimConfig::default()).await?;
    let conn = connection(&sim, "MEDBILL01")?;
    let day = recent();
    let mut authorized = bill(
        "PCN-PA-OK",
        "SIMPPO",
        "SPX100000001",
        day,
        &[("70450", &[], 1, "900")],
    );
    authorized.claim.prior_authorization = Some("AUTH0001".into());
    let claims = vec![
        bill(
            "PCN-NC",
            "SIMPPO",
            "SPX100000001",
            day,
            &[("S0800", &[], 1, "80")],
        ),
        bill(
            "PCN-PA",
            "SIMPPO",
            "SPX100000001",
            day,
            &[("70450", &[], 1, "900")],
        ),
        authorized,
        bill(
            "PCN-MOD",
            "SIMPPO",
            "SPX100000001",
            day,
            &[("97110", &["25"], 1, "60")],
        ),
        bill(
            "PCN-MOD-OK",
            "SIMPPO",
            "SPX100000001",
            day,
            &[("97110", &["GP"], 1, "60")],
        ),
        bill(
            "PCN-TERM",
            "SIMPPO",
            "SPX100000008",
            day,
            &[("99214", &[], 1, "200")],
        ),
        bill(
            "PCN-LATE",
            "SIMPPO",
            "SPX100000004",
            NaiveDate::from_ymd_opt(2025, 1, 10).context("date")?,
            &[("99214", &[], 1, "200")],
        ),
        bill(
            "PCN-DUP-A",
            "SIMPPO",
            "SPX100000005",
            day,
            &[("85025", &[], 1, "30")],
        ),
        bill(
            "PCN-DUP-B",
            "SIMPPO",
            "SPX100000005",
            day,
            &[("85025", &[], 1, "30")],
        ),
    ];
    submit(&conn, batch(claims, 22)).await?;
    let files = pick_up(&conn).await?;
    let eras = eras(&files);
    assert_eq!(eras.len(), 1, "one payee, one payment");
    assert_eq!(
        eras[0].claims.len(),
        9,
        "every claim accepted is adjudicated"
    );

    let expect =
        |pcn: &str, status: &str, group: &str, reason: &str, charge: &str, remark: &str| {
            let c = clp(&eras, pcn, status);
            assert_eq!(line_cas(c), vec![cas(group, reason, charge)], "{pcn}");
            assert_eq!(line_remarks(c), vec![remark.to_owned()], "{pcn}");
            assert_eq!(c.paid, Decimal::ZERO, "{pcn}");
            assert_eq!(
                c.services[0].allowed(),
                None,
                "{pcn}: denied lines state no allowed amount"
            );
        };
    // Not covered by the plan: the patient's (PR-204), so the claim is processed, not denied.
    expect("PCN-NC", "1", "PR", "204", "80", "N130");
    assert_eq!(
        clp(&eras, "PCN-NC", "1").patient_responsibility,
        Some(dec("80"))
    );
    expect("PCN-PA", "4", "CO", "197", "900", "M62");
    expect("PCN-MOD", "4", "CO", "4", "60", "N823");
    expect("PCN-TERM", "4", "CO", "27", "200", "N30");
    expect("PCN-DUP-B", "4", "OA", "18", "30", "N111");
    let late = clp(&eras, "PCN-LATE", "4");
    assert_eq!(line_cas(late), vec![cas("CO", "29", "200")]);

    // The same services pass when the claim is right.
    let ok = clp(&eras, "PCN-PA-OK", "1");
    assert_eq!(ok.services[0].allowed(), Some(dec("400")));
    assert_eq!(
        clp(&eras, "PCN-MOD-OK", "1").services[0].allowed(),
        Some(dec("40"))
    );
    assert_eq!(
        clp(&eras, "PCN-DUP-A", "1").services[0].allowed(),
        Some(dec("12"))
    );
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_corrected_claim_reverses_the_paid_one_and_the_next_payment_recoups_the_difference()
-> Result<()> {
    let sim = start(PayerSimConfig::default()).await?;
    let conn = connection(&sim, "MEDBILL01")?;
    // SPX100000006: HSA, deductible met, out-of-pocket 7000 (4200 met), 30%.
    let day = recent();
    let original = bill(
        "PCN-C1",
        "SIMPPO",
        "SPX100000006",
        day,
        &[("99214", &[], 2, "400")],
    );
    submit(&conn, batch(vec![original], 41)).await?;
    let first = eras(&pick_up(&conn).await?);
    let paid = clp(&first, "PCN-C1", "1");
    assert_eq!(
        (paid.paid, paid.patient_responsibility),
        (dec("210"), Some(dec("90")))
    );
    let number = paid.payer_claim_control_number.clone().context("CLP07")?;

    let mut corrected = bill(
        "PCN-C1",
        "SIMPPO",
        "SPX100000006",
        day,
        &[("99214", &[], 1, "200")],
    );
    corrected.claim.frequency = ClaimFrequency::Replacement;
    corrected.claim.payer_claim_number = Some(number.to_string());
    submit(&conn, batch(vec![corrected], 42)).await?;
    let second = eras(&pick_up(&conn).await?);
    assert_eq!(second.len(), 1);
    let reversal = clp(&second, "PCN-C1", "22");
    assert_eq!(
        (
            reversal.charge,
            reversal.paid,
            reversal.patient_responsibility
        ),
        (dec("-400"), dec("-210"), Some(dec("-90")))
    );
    assert_eq!(reversal.payer_claim_control_number, Some(number.clone()));
    assert_eq!(
        line_cas(reversal),
        vec![cas("CO", "45", "-100"), cas("PR", "2", "-90")]
    );
    let correction = clp(&second, "PCN-C1", "1");
    assert_eq!(correction.frequency.as_deref(), Some("7"));
    assert_ne!(correction.payer_claim_control_number, Some(number));
    assert_eq!(
        (correction.paid, correction.patient_responsibility),
        (dec("105"), Some(dec("45")))
    );
    // The reversal takes back more than the correction pays: nothing is paid, 105 carried.
    let era = &second[0];
    assert_eq!(
        (era.payment.handling.as_ref(), era.payment.method.as_ref()),
        ("H", "NON")
    );
    assert_eq!(era.payment.amount, Decimal::ZERO);
    let fb: Vec<(String, Decimal)> = era
        .provider_adjustments
        .iter()
        .map(|p| (p.reason.to_string(), p.amount))
        .collect();
    assert_eq!(fb, vec![("FB".to_owned(), dec("-105"))]);

    // Another day: the same code on the same day would be a duplicate of the correction.
    let next = bill(
        "PCN-C2",
        "SIMPPO",
        "SPX100000006",
        day - TimeDelta::days(1),
        &[("99214", &[], 5, "1000")],
    );
    submit(&conn, batch(vec![next], 43)).await?;
    let third = eras(&pick_up(&conn).await?);
    assert_eq!(clp(&third, "PCN-C2", "1").paid, dec("525"));
    let recouped: Vec<(String, Decimal)> = third[0]
        .provider_adjustments
        .iter()
        .map(|p| (p.reason.to_string(), p.amount))
        .collect();
    assert_eq!(recouped, vec![("FB".to_owned(), dec("105"))]);
    assert_eq!(third[0].payment.amount, dec("420"));

    let amounts: Vec<Decimal> = sim
        .deposits()
        .iter()
        .map(|d| d.amount.as_decimal())
        .collect();
    assert_eq!(
        amounts,
        vec![dec("210"), dec("420")],
        "a notice deposits nothing"
    );
    // Out of pocket: 4200 + 90 - 90 + 45 + 225 met of 7000.
    assert_eq!(remaining(&conn, "SPX100000006").await?.1, dec("2530"));
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_check_payer_pays_after_the_adjudication_lag_and_records_the_deposit() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let deposit_file = dir.path().join("deposits.jsonl");
    let sim = start(PayerSimConfig {
        adjudication_lag_secs: 1,
        deposit_file: Some(deposit_file.clone()),
        ..PayerSimConfig::default()
    })
    .await?;
    let conn = connection(&sim, "MEDBILL01")?;
    // HMO0000001: HMO-SILVER, office visit copay 20 (99213 is service type 98 at SIMHMO).
    let c = bill(
        "PCN-H1",
        "SIMHMO",
        "HMO0000001",
        recent(),
        &[("99213", &[], 1, "150")],
    );
    submit(&conn, batch(vec![c], 51)).await?;
    assert_eq!(
        pick_up(&conn).await?.len(),
        2,
        "only the 999 and 277CA before the lag"
    );
    assert_eq!(sim.claims().payments().pending(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let files = pick_up(&conn).await?;
    assert_eq!(files.len(), 1);
    let eras = eras(&files);
    let era = &eras[0];
    assert_eq!(
        (era.payment.handling.as_ref(), era.payment.method.as_ref()),
        ("C", "CHK")
    );
    assert_eq!(era.payment.amount, dec("70"));
    assert_eq!(
        line_cas(clp(&eras, "PCN-H1", "1")),
        vec![cas("CO", "45", "60"), cas("PR", "3", "20")]
    );
    let check = era.trace.as_ref().context("TRN")?.number.to_string();
    assert!(check.bytes().all(|b| b.is_ascii_digit()), "{check}");
    assert_eq!(era.payer.id.as_deref(), Some("SIMHMO"));

    let text = std::fs::read_to_string(&deposit_file)?;
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["amount"], "70.00");
    assert_eq!(lines[0]["method"], "CHK");
    assert_eq!(lines[0]["trace_number"], check.as_str());
    assert_eq!(lines[0]["payer_id"], "SIMHMO");
    assert_eq!(lines[0]["payee_npi"], "1234567893");
    assert_eq!(
        lines[0]["deposit_date"],
        today().format("%Y-%m-%d").to_string()
    );
    sim.shutdown().await?;
    Ok(())
}

#[test]
fn a_claim_paid_after_the_prompt_pay_days_earns_interest() -> Result<()> {
    let catalog = Catalog::default_catalog()?;
    let front = ClaimFront::with_payments(Payments::new(std::time::Duration::ZERO, None));
    let received = NaiveDate::from_ymd_opt(2026, 3, 2)
        .and_then(|d| d.and_hms_opt(10, 0, 0))
        .context("date")?;
    let mut control = 0u32;
    let mut next = || {
        control += 1;
        control
    };
    let c = bill(
        "PCN-I1",
        "SIMPPO",
        "SPX100000001",
        received.date(),
        &[("99214", &[], 10, "2000")],
    );
    front.intake(
        &catalog,
        "MEDBILL01",
        batch(vec![c], 61).as_bytes(),
        received,
        "MEDBILLSIM",
        &mut next,
    )?;
    // Paid 60 days after receipt: 30 days past SIMPPO's prompt-pay 30, at 12% a year.
    let paid_on = received + TimeDelta::days(60);
    assert_eq!(
        front.settle_due(&catalog, "MEDBILL01", paid_on, "MEDBILLSIM", &mut next)?,
        1
    );
    let mut files = Vec::new();
    while let Some(f) = front.next_file("MEDBILL01", medbill_connect::InboundKind::Any) {
        front.acknowledge("MEDBILL01", &f.file_id);
        files.push(f);
    }
    let era_file = files.last().context("the 835")?;
    assert_eq!(
        era_file.payload_type.as_str(),
        medbill_payer_sim::payment::ERA_PAYLOAD_TYPE
    );
    let (sets, problems) = read_all_835(&era_file.contents);
    assert!(problems.is_empty());
    let era = &sets[0];
    assert!(balance(era).balanced);
    let plb: Vec<(String, Option<String>, Decimal)> = era
        .provider_adjustments
        .iter()
        .map(|p| {
            (
                p.reason.to_string(),
                p.reference.as_deref().map(str::to_owned),
                p.amount,
            )
        })
        .collect();
    assert_eq!(
        plb,
        vec![("L6".to_owned(), Some("PCN-I1".to_owned()), dec("-1.97"))]
    );
    assert_eq!(era.payment.amount, dec("201.97"));
    // Nothing is paid twice.
    assert_eq!(
        front.settle_due(&catalog, "MEDBILL01", paid_on, "MEDBILLSIM", &mut next)?,
        0
    );
    Ok(())
}

/// The transaction set id of the first set of a file.
fn first_set(f: &InboundFile) -> String {
    Document::parse(&f.contents)
        .sets()
        .next()
        .map(|(_, _, s)| s.set_id().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn acknowledgements_are_offered_before_an_835_left_waiting() -> Result<()> {
    let sim = start(PayerSimConfig::default()).await?;
    let conn = connection(&sim, "MEDBILL01")?;
    let a = bill(
        "PCN-Q1",
        "SIMPPO",
        "SPX100000001",
        recent(),
        &[("99213", &[], 1, "130")],
    );
    submit(&conn, batch(vec![a], 71)).await?;
    for expected in ["999", "277"] {
        let f = conn.next_inbound().await?.context("a file")?;
        assert_eq!(first_set(&f), expected);
        conn.acknowledge(&f.file_id).await?;
    }
    // The 835 waits (a client taking only acknowledgements leaves it); the next batch's
    // acknowledgements come before it all the same.
    let era = conn.next_inbound().await?.context("the 835")?;
    assert_eq!(first_set(&era), "835");
    let b = bill(
        "PCN-Q2",
        "SIMPPO",
        "SPX100000001",
        recent(),
        &[("85025", &[], 1, "30")],
    );
    submit(&conn, batch(vec![b], 72)).await?;
    let order: Vec<String> = pick_up(&conn).await?.iter().map(first_set).collect();
    assert_eq!(order, vec!["999", "277", "835", "835"]);
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn retrieval_by_kind_offers_the_835_past_waiting_acknowledgements_and_back() -> Result<()> {
    use medbill_connect::InboundKind;

    let sim = start(PayerSimConfig::default()).await?;
    let conn = connection(&sim, "MEDBILL01")?;
    let a = bill(
        "PCN-K1",
        "SIMPPO",
        "SPX100000001",
        recent(),
        &[("99213", &[], 1, "130")],
    );
    submit(&conn, batch(vec![a], 73)).await?;
    // The 999 and 277CA wait, untaken; remittance's retrieval is offered the 835 all the same.
    let era = conn
        .next_inbound_of(InboundKind::Remittance)
        .await?
        .context("the 835")?;
    assert_eq!(first_set(&era), "835");
    conn.acknowledge(&era.file_id).await?;
    assert!(
        conn.next_inbound_of(InboundKind::Remittance)
            .await?
            .is_none()
    );
    let mut acknowledgements = Vec::new();
    while let Some(f) = conn.next_inbound_of(InboundKind::Acknowledgements).await? {
        acknowledgements.push(first_set(&f));
        conn.acknowledge(&f.file_id).await?;
    }
    assert_eq!(acknowledgements, vec!["999", "277"]);
    assert!(conn.next_inbound().await?.is_none());
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_276_after_payment_is_answered_finalized_with_the_amount_paid() -> Result<()> {
    use medbill_x12::model::claim_status::StatusClaimQuery;
    use medbill_x12::transactions::claim_status277::read_277;

    let sim = start(PayerSimConfig::default()).await?;
    let conn = connection(&sim, "MEDBILL01")?;
    let day = recent();
    let claims = vec![
        bill(
            "PCN-S1",
            "SIMPPO",
            "SPX100000001",
            day,
            &[("99214", &[], 10, "2000")],
        ),
        bill(
            "PCN-S2",
            "SIMPPO",
            "SPX100000001",
            day,
            &[("70450", &[], 1, "900")],
        ),
    ];
    submit(&conn, batch(claims, 81)).await?;
    let eras = eras(&pick_up(&conn).await?);
    let number = |pcn: &str, status: &str| {
        clp(&eras, pcn, status)
            .payer_claim_control_number
            .as_deref()
            .map(str::to_owned)
    };
    let mut q = samples::claim_status_inquiry();
    q.payer_id = "SIMPPO".into();
    q.member_id = "SPX100000001".into();
    q.claims = [
        ("T-PAID", "PCN-S1", number("PCN-S1", "1")),
        ("T-DENIED", "PCN-S2", number("PCN-S2", "4")),
    ]
    .into_iter()
    .map(|(trace, pcn, n)| StatusClaimQuery {
        trace_number: trace.into(),
        payer_claim_number: n,
        bill_type: None,
        patient_control_number: Some(pcn.into()),
        total_charge: None,
        service_date: Some(DateRange::day(day)),
    })
    .collect();
    let text = write::claim_status_interchange(
        Separators::default(),
        &Envelope::test_default(9, 9, 1),
        &q,
    )?;
    let answer = conn
        .exchange(PayloadType::X12_276_REQUEST, Bytes::from(text))
        .await?;
    let doc = Document::parse(&answer.payload);
    let (_, _, set) = doc.sets().next().context("a 277")?;
    let r = read_277(set);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let stc = |i: usize| {
        let s = &r.value.claims[i].statuses[0];
        (
            format!("{}:{}", s.codes[0].category, s.codes[0].status),
            s.paid,
        )
    };
    assert_eq!(stc(0), ("F1:65".to_owned(), Some(dec("200"))));
    assert_eq!(stc(1), ("F2:107".to_owned(), Some(Decimal::ZERO)));
    sim.shutdown().await?;
    Ok(())
}
