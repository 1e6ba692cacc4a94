//! payer-sim answers 278 requests and inquiries over the real CORE HTTP transport, one outcome
//! per rule of the built-in catalog (see the README's prior authorization table).

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use chrono::{NaiveDate, NaiveTime};
use medbill_connect::{
    Connection, CoreHttpConfig, PayerConnection, PayloadType, RetryPolicy, TransportConfig,
};
use medbill_payer_sim::{PayerSimConfig, PayerSimHandle};
use medbill_x12::Document;
use medbill_x12::model::claim::Procedure;
use medbill_x12::model::eligibility::Trace;
use medbill_x12::model::review::{
    ReviewEvent, ReviewKind, ReviewLevel, ReviewProvider, ReviewService, ServicesReview,
};
use medbill_x12::model::{DateRange, PartyName, PersonName, TransactionHeader};
use medbill_x12::transactions::review278::read_278;
use medbill_x12::write::{self, Envelope, Separators};
use rust_decimal::Decimal;
use tokio::net::TcpListener;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

async fn start() -> Result<(PayerSimHandle, Connection)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let sim = medbill_payer_sim::start(PayerSimConfig::default(), listener).await?;
    let conn = Connection::open(&PayerConnection {
        payer_id: "SIMPPO".into(),
        sender_id: "MEDBILL01".into(),
        receiver_id: "MEDBILLSIM".into(),
        transport: TransportConfig::CoreHttp(CoreHttpConfig::new(sim.url())),
        batch_transport: None,
        retry: RetryPolicy {
            max_attempts: 1,
            initial_backoff_ms: 5,
            max_backoff_ms: 5,
            multiplier: 1,
            jitter: false,
        },
    })?;
    Ok((sim, conn))
}

/// A request for member SPX100000001 (PPO-GOLD) asking `services` as (code, units).
fn request(services: &[(&str, i64)]) -> ServicesReview {
    let dates = DateRange {
        from: d(2026, 12, 10),
        to: Some(d(2026, 12, 31)),
    };
    ServicesReview {
        kind: ReviewKind::Request,
        header: TransactionHeader {
            reference: "PA0001".into(),
            created_date: d(2026, 12, 6),
            created_time: NaiveTime::from_hms_opt(9, 30, 0).unwrap(),
        },
        payer_name: "SIMULATED PPO HEALTH".into(),
        payer_id: "SIMPPO".into(),
        requester_name: PartyName::organization("SUNRISE FAMILY MEDICINE"),
        requester_npi: "1234567893".into(),
        subscriber_name: PersonName::new("TESTPATIENT", "AVERY"),
        member_id: "SPX100000001".into(),
        subscriber_birth_date: Some(d(1985, 3, 14)),
        rejections: Vec::new(),
        event: Some(ReviewEvent {
            traces: vec![Trace {
                kind: "1".into(),
                number: "PA-TRACE-1".into(),
                originator: Some("1123456789".into()),
            }],
            request_category: "HS".into(),
            certification_type: "I".into(),
            service_type: "2".into(),
            place_of_service: Some("22".into()),
            level_of_service: None,
            decision: None,
            reference: None,
            event_dates: Some(dates),
            diagnoses: vec!["M1711".into()],
            notes: None,
            provider: None,
            services: services
                .iter()
                .map(|(code, units)| ReviewService {
                    traces: Vec::new(),
                    request_category: "HS".into(),
                    certification_type: "I".into(),
                    decision: None,
                    dates: Some(dates),
                    revenue_code: None,
                    procedure: Procedure::hc(*code),
                    units: Decimal::from(*units),
                    certified_units: None,
                })
                .collect(),
        }),
    }
}

async fn ask(conn: &Connection, r: &ServicesReview) -> Result<ServicesReview> {
    let text =
        write::review_interchange(Separators::default(), &Envelope::test_default(21, 21, 1), r)?;
    let answer = conn
        .exchange(PayloadType::X12_278_REQUEST, Bytes::from(text))
        .await?;
    if answer.payload_type != PayloadType::X12_278_RESPONSE {
        bail!("expected a 278 response, got {}", answer.payload_type);
    }
    let doc = Document::parse(&answer.payload);
    if !doc.problems.is_empty() {
        bail!("envelope problems: {:?}", doc.problems);
    }
    let (_, _, set) = doc.sets().next().context("no set")?;
    let parsed = read_278(set);
    if !parsed.problems.is_empty() {
        bail!("278 problems: {:?}", parsed.problems);
    }
    let response = parsed.value;
    assert_eq!(response.kind, ReviewKind::Response);
    assert_eq!(response.trace_number(), r.trace_number());
    Ok(response)
}

fn actions(r: &ServicesReview) -> (String, Vec<String>) {
    let ev = r.event.as_ref().expect("event");
    (
        ev.decision
            .as_ref()
            .map(|d| d.action.clone())
            .unwrap_or_default(),
        ev.services
            .iter()
            .map(|s| {
                s.decision
                    .as_ref()
                    .map(|d| d.action.clone())
                    .unwrap_or_default()
            })
            .collect(),
    )
}

#[tokio::test]
async fn each_rule_of_the_catalog_decides_its_outcome() -> Result<()> {
    let (sim, conn) = start().await?;

    let approved = ask(&conn, &request(&[("27447", 1)])).await?;
    assert_eq!(actions(&approved), ("A1".into(), vec!["A1".into()]));
    let ev = approved.event.as_ref().unwrap();
    let decision = ev.decision.as_ref().unwrap();
    let number = decision.authorization_number.clone().expect("a number");
    assert!(number.starts_with("SIMAUTH"), "{number}");
    assert_eq!(
        decision.certified,
        Some(DateRange {
            from: d(2026, 12, 10),
            to: Some(d(2026, 12, 31))
        })
    );
    assert_eq!(ev.services[0].certified_units, Some(Decimal::ONE));

    // 12 therapy units asked, 6 certified; the surgery in the same request is certified.
    let partial = ask(&conn, &request(&[("27447", 1), ("97110", 12)])).await?;
    assert_eq!(
        actions(&partial),
        ("A2".into(), vec!["A1".into(), "A2".into()])
    );
    let ev = partial.event.as_ref().unwrap();
    assert_eq!(ev.services[1].certified_units, Some(Decimal::from(6)));
    assert!(
        ev.notes
            .as_deref()
            .unwrap_or_default()
            .contains("6 therapy units")
    );
    let other = ev.decision.as_ref().unwrap().authorization_number.clone();
    assert_ne!(other, Some(number), "every request gets its own number");

    let denied = ask(&conn, &request(&[("64483", 1)])).await?;
    assert_eq!(actions(&denied), ("A3".into(), vec!["A3".into()]));
    let ev = denied.event.as_ref().unwrap();
    assert!(ev.decision.as_ref().unwrap().authorization_number.is_none());
    assert!(
        ev.notes
            .as_deref()
            .unwrap_or_default()
            .contains("conservative treatment")
    );

    let not_required = ask(&conn, &request(&[("99213", 1)])).await?;
    assert_eq!(actions(&not_required), ("NA".into(), vec!["NA".into()]));

    // Pended, then an inquiry quoting REF*NT gets the decision.
    let pended = ask(&conn, &request(&[("70553", 1)])).await?;
    assert_eq!(actions(&pended), ("A4".into(), vec!["A4".into()]));
    let reference = pended
        .event
        .as_ref()
        .unwrap()
        .reference
        .clone()
        .expect("REF*NT");
    let mut inquiry = request(&[("70553", 1)]);
    inquiry.kind = ReviewKind::Inquiry;
    inquiry.event.as_mut().unwrap().reference = Some(reference.clone());
    let decided = ask(&conn, &inquiry).await?;
    assert_eq!(actions(&decided), ("A1".into(), vec!["A1".into()]));
    assert!(
        decided
            .event
            .as_ref()
            .unwrap()
            .decision
            .as_ref()
            .unwrap()
            .authorization_number
            .is_some()
    );

    let pended = ask(&conn, &request(&[("95810", 1)])).await?;
    let mut inquiry = request(&[("95810", 1)]);
    inquiry.kind = ReviewKind::Inquiry;
    inquiry.event.as_mut().unwrap().reference = pended.event.unwrap().reference;
    let decided = ask(&conn, &inquiry).await?;
    assert_eq!(actions(&decided), ("A3".into(), vec!["A3".into()]));

    // An inquiry with a reference the payer never gave: AAA at the event.
    inquiry.event.as_mut().unwrap().reference = Some("NOSUCHREF".into());
    let unknown = ask(&conn, &inquiry).await?;
    assert_eq!(unknown.rejections[0].level, ReviewLevel::Event);
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn unknown_members_and_providers_get_aaa() -> Result<()> {
    let (sim, conn) = start().await?;
    let aaa = |r: &ServicesReview| -> (ReviewLevel, String) {
        assert_eq!(r.rejections.len(), 1, "{:?}", r.rejections);
        (r.rejections[0].level, r.rejections[0].reason.clone())
    };
    let mut r = request(&[("27447", 1)]);
    r.member_id = "SPX999999999".into();
    // A rejected subscriber has no event, so there is no trace to compare.
    let answer = ask_rejected(&conn, &r).await?;
    assert_eq!(aaa(&answer), (ReviewLevel::Subscriber, "75".into()));
    assert!(answer.event.is_none());

    let mut r = request(&[("27447", 1)]);
    r.requester_npi = "1987654328".into();
    let answer = ask_rejected(&conn, &r).await?;
    assert_eq!(aaa(&answer), (ReviewLevel::Requester, "51".into()));

    let mut r = request(&[("27447", 1)]);
    r.event.as_mut().unwrap().provider = Some(ReviewProvider {
        entity: "FA".into(),
        name: PartyName::organization("UNKNOWN SURGERY CENTER"),
        npi: "1987654328".into(),
    });
    let answer = ask(&conn, &r).await?;
    assert_eq!(aaa(&answer), (ReviewLevel::Event, "51".into()));

    let mut r = request(&[("27447", 1)]);
    r.payer_id = "NOSUCHPAYER".into();
    let answer = ask_rejected(&conn, &r).await?;
    assert_eq!(aaa(&answer), (ReviewLevel::Payer, "79".into()));
    sim.shutdown().await?;
    Ok(())
}

/// Asks and returns a response rejected above the event (no trace to compare).
async fn ask_rejected(conn: &Connection, r: &ServicesReview) -> Result<ServicesReview> {
    let text =
        write::review_interchange(Separators::default(), &Envelope::test_default(22, 22, 1), r)?;
    let answer = conn
        .exchange(PayloadType::X12_278_REQUEST, Bytes::from(text))
        .await?;
    let doc = Document::parse(&answer.payload);
    let (_, _, set) = doc.sets().next().context("no set")?;
    read_278(set)
        .into_result()
        .map_err(|p| anyhow::anyhow!("{p:?}"))
}
