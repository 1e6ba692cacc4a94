//! payer-sim over the real transport: medbill-connect's CORE HTTP client against the server on port 0.

use std::str::FromStr;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use chrono::{NaiveDate, NaiveTime};
use medbill_connect::{
    ConnectError, Connection, CoreHttpConfig, CredentialsConfig, ErrorCode, ErrorKind,
    PayerConnection, PayloadType, RealTimeResponse, RetryPolicy, SecretSource, TransportConfig,
};
use medbill_payer_sim::{AcceptedCredentialConfig, Fault, PayerSimConfig, PayerSimHandle};
use medbill_x12::Document;
use medbill_x12::model::eligibility::{
    EligibilityInquiry, EligibilityResponse, RejectionLevel, Trace,
};
use medbill_x12::model::{DateRange, PartyName, PersonName, TransactionHeader};
use medbill_x12::transactions::eligibility271::read_271;
use medbill_x12::write::{self, Envelope, GroupHeader, InterchangeHeader, Separators};
use rust_decimal::Decimal;
use tokio::net::TcpListener;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

async fn start(config: PayerSimConfig) -> Result<PayerSimHandle> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    Ok(medbill_payer_sim::start(config, listener).await?)
}

fn connection_with(
    sim: &PayerSimHandle,
    request_timeout_ms: u64,
    retry: RetryPolicy,
    credentials: Option<CredentialsConfig>,
) -> Result<Connection> {
    let mut http = CoreHttpConfig::new(sim.url());
    http.request_timeout_ms = request_timeout_ms;
    http.credentials = credentials;
    Ok(Connection::open(&PayerConnection {
        payer_id: "SIMPPO".into(),
        sender_id: "MEDBILL01".into(),
        receiver_id: "MEDBILLSIM".into(),
        transport: TransportConfig::CoreHttp(http),
        batch_transport: None,
        retry,
    })?)
}

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff_ms: 5,
        max_backoff_ms: 20,
        multiplier: 2,
        jitter: false,
    }
}

fn connection(sim: &PayerSimHandle) -> Result<Connection> {
    connection_with(sim, 5_000, fast_retry(3), None)
}

fn inquiry(payer: &str, member_id: &str, last: &str, first: &str) -> EligibilityInquiry {
    EligibilityInquiry {
        header: TransactionHeader {
            reference: "ELIG0001".into(),
            created_date: d(2026, 3, 2),
            created_time: NaiveTime::from_hms_opt(9, 30, 0).unwrap(),
        },
        payer_name: "SIMULATED PAYER".into(),
        payer_id: payer.into(),
        provider_name: PartyName::organization("SUNRISE FAMILY MEDICINE"),
        provider_npi: "1234567893".into(),
        trace: Trace {
            kind: "1".into(),
            number: "TRACE-0001".into(),
            originator: Some("1123456789".into()),
        },
        subscriber_name: PersonName::new(last, first),
        member_id: member_id.into(),
        subscriber_birth_date: None,
        subscriber_gender: None,
        dependent: None,
        service_date: Some(DateRange::day(d(2026, 3, 2))),
        service_types: vec!["30".into(), "98".into()],
    }
}

fn x12_270(q: &EligibilityInquiry) -> Result<Bytes> {
    let interchange = InterchangeHeader {
        sender_id: "MEDBILL01".into(),
        receiver_id: "SIMPPO".into(),
        ..InterchangeHeader::test_default(17)
    };
    let group = GroupHeader::new(
        "MEDBILL01",
        "SIMPPO",
        interchange.date,
        interchange.time,
        17,
    );
    let envelope = Envelope {
        interchange,
        group,
        set_control_number: 1,
    };
    Ok(Bytes::from(write::eligibility_interchange(
        Separators::default(),
        &envelope,
        q,
    )?))
}

async fn ask(conn: &Connection, q: &EligibilityInquiry) -> Result<RealTimeResponse, ConnectError> {
    let payload = x12_270(q).expect("the test 270 is valid");
    conn.exchange(PayloadType::X12_270_REQUEST, payload).await
}

/// Reads a 271 answer with the x12 crate's reader; fails on any problem.
fn read(answer: &RealTimeResponse) -> Result<EligibilityResponse> {
    if answer.payload_type != PayloadType::X12_271_RESPONSE {
        bail!("expected a 271, got {}", answer.payload_type);
    }
    let doc = Document::parse(&answer.payload);
    if !doc.problems.is_empty() {
        bail!("271 envelope problems: {:?}", doc.problems);
    }
    let (interchange, _, set) = doc.sets().next().context("no transaction set")?;
    // The answer comes from the 270's receiver, back to its sender.
    let isa = interchange.isa.as_ref().context("no ISA")?;
    assert_eq!(isa.text(6).trim(), "SIMPPO");
    assert_eq!(isa.text(8).trim(), "MEDBILL01");
    let parsed = read_271(set);
    if !parsed.problems.is_empty() {
        bail!("271 problems: {:?}", parsed.problems);
    }
    Ok(parsed.value)
}

fn only_rejection(r: &EligibilityResponse) -> (RejectionLevel, String, Option<String>) {
    assert_eq!(r.rejections.len(), 1, "{:?}", r.rejections);
    let x = &r.rejections[0];
    (x.level, x.reason.clone(), x.follow_up.clone())
}

#[tokio::test]
async fn active_member_answer_reads_with_the_right_amounts() -> Result<()> {
    let sim = start(PayerSimConfig::default()).await?;
    let conn = connection(&sim)?;
    let answer = ask(
        &conn,
        &inquiry("SIMPPO", "SPX100000001", "TESTPATIENT", "AVERY"),
    )
    .await?;
    assert_eq!(answer.attempts, 1);
    let r = read(&answer)?;
    assert!(r.rejections.is_empty(), "{:?}", r.rejections);
    assert_eq!(r.reference.as_deref(), Some("ELIG0001"));
    assert_eq!(r.payer_name.as_deref(), Some("SIMULATED PPO HEALTH"));
    assert_eq!(r.echoed_trace(), Some("TRACE-0001"));
    let sub = r.subscriber.as_ref().context("no subscriber")?;
    assert_eq!(sub.member_id.as_deref(), Some("SPX100000001"));
    assert_eq!(sub.name.last, "TESTPATIENT");
    assert_eq!(sub.birth_date, Some(d(1985, 3, 14)));
    assert!(sub.references.contains(&("6P".into(), "GRP1001".into())));
    // Status for 30 and the asked 98 in one EB*1.
    let status = &r.benefits[0];
    assert_eq!(status.info, "1");
    assert_eq!(status.service_types, ["30", "98"]);
    assert_eq!(status.plan_description.as_deref(), Some("SIM PPO GOLD"));
    assert_eq!(status.insurance_type.as_deref(), Some("PR"));
    let amount = |info: &str, level: &str, period: &str| {
        r.benefits
            .iter()
            .find(|b| {
                b.info == info
                    && b.coverage_level.as_deref() == Some(level)
                    && b.time_period.as_deref() == Some(period)
            })
            .and_then(|b| b.amount)
    };
    assert_eq!(amount("C", "IND", "23"), Some(dec("1500")));
    assert_eq!(amount("C", "IND", "29"), Some(dec("1250")));
    assert_eq!(amount("C", "FAM", "23"), Some(dec("3000")));
    assert_eq!(amount("C", "FAM", "29"), Some(dec("2750")));
    assert_eq!(amount("G", "IND", "23"), Some(dec("5000")));
    assert_eq!(amount("G", "IND", "29"), Some(dec("4600")));
    assert_eq!(amount("G", "FAM", "29"), Some(dec("9600")));
    assert!(
        r.benefits
            .iter()
            .filter(|b| b.info != "1")
            .all(|b| b.in_network == Some(true))
    );
    let s = r.summary();
    assert_eq!(s.active, Some(true));
    assert_eq!(s.plan.as_deref(), Some("SIM PPO GOLD"));
    assert_eq!(s.deductible_remaining, Some(dec("1250.00")));
    assert_eq!(s.oop_remaining, Some(dec("4600.00")));
    assert_eq!(s.coinsurance, Some(dec("0.2")));
    assert_eq!(s.copays.get("98"), Some(&dec("25")));
    assert_eq!(s.copays.get("UC"), Some(&dec("50")));
    assert_eq!(sim.requests_received(), 1);
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn inactive_and_out_of_network_members() -> Result<()> {
    let sim = start(PayerSimConfig::default()).await?;
    let conn = connection(&sim)?;
    let r = read(
        &ask(
            &conn,
            &inquiry("SIMPPO", "SPX100000004", "DEMOPERSON", "MORGAN"),
        )
        .await?,
    )?;
    assert!(r.rejections.is_empty());
    assert_eq!(r.benefits.len(), 1);
    assert_eq!(r.benefits[0].info, "6");
    assert_eq!(r.benefits[0].service_types, ["30", "98"]);
    assert_eq!(r.summary().active, Some(false));
    let plan_end = &r.subscriber.as_ref().context("no subscriber")?.dates;
    assert!(plan_end.contains(&("347".into(), DateRange::day(d(2025, 12, 31)))));

    let r = read(
        &ask(
            &conn,
            &inquiry("SIMPPO", "SPX100000003", "EXAMPLAR", "RILEY"),
        )
        .await?,
    )?;
    let deductible = r
        .benefits
        .iter()
        .find(|b| b.info == "C" && b.time_period.as_deref() == Some("29"))
        .context("no remaining deductible")?;
    assert_eq!(deductible.in_network, Some(false));
    assert_eq!(deductible.amount, Some(dec("2400")));
    assert_eq!(r.summary().active, Some(true));
    Ok(())
}

#[tokio::test]
async fn subscriber_rejections_72_73_75() -> Result<()> {
    let sim = start(PayerSimConfig::default()).await?;
    let conn = connection(&sim)?;
    let cases = [
        (
            inquiry("SIMPPO", "SPX999999999", "TESTPATIENT", "AVERY"),
            "75",
        ),
        (inquiry("SIMPPO", "SPX12", "TESTPATIENT", "AVERY"), "72"),
        (
            inquiry("SIMHMO", "SPX100000001", "TESTPATIENT", "AVERY"),
            "72",
        ),
        (
            inquiry("SIMPPO", "SPX100000001", "WRONGNAME", "AVERY"),
            "73",
        ),
    ];
    for (q, code) in cases {
        let r = read(&ask(&conn, &q).await?)?;
        let (level, reason, follow_up) = only_rejection(&r);
        assert_eq!((level, reason.as_str()), (RejectionLevel::Subscriber, code));
        assert_eq!(follow_up.as_deref(), Some("C"));
        assert!(r.rejections[0].description.is_some());
        assert!(r.benefits.is_empty());
        // The rejected subscriber is echoed as asked, with the trace.
        let sub = r.subscriber.as_ref().context("no subscriber")?;
        assert_eq!(sub.member_id.as_deref(), Some(q.member_id.as_str()));
        assert_eq!(r.echoed_trace(), Some("TRACE-0001"));
        assert_eq!(r.summary().active, None);
    }
    Ok(())
}

#[tokio::test]
async fn fault_unable_to_respond_answers_aaa_42() -> Result<()> {
    let sim = start(PayerSimConfig {
        fault: Some(Fault::UnableToRespond),
        ..PayerSimConfig::default()
    })
    .await?;
    let conn = connection(&sim)?;
    let q = inquiry("SIMPPO", "SPX100000001", "TESTPATIENT", "AVERY");
    let r = read(&ask(&conn, &q).await?)?;
    assert_eq!(
        only_rejection(&r),
        (RejectionLevel::Source, "42".into(), Some("R".into()))
    );
    assert!(r.rejections[0].valid_request);
    assert!(r.subscriber.is_none());
    // Switched off at run time: the next answer is the real one.
    sim.faults().clear();
    let r = read(&ask(&conn, &q).await?)?;
    assert!(r.rejections.is_empty());
    assert_eq!(r.summary().active, Some(true));
    Ok(())
}

#[tokio::test]
async fn fault_unavailable_is_http_503_and_retried() -> Result<()> {
    let sim = start(PayerSimConfig::default()).await?;
    let conn = connection(&sim)?;
    let q = inquiry("SIMPPO", "SPX100000001", "TESTPATIENT", "AVERY");
    sim.faults().set(Fault::Unavailable);
    let err = ask(&conn, &q).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(err.attempts(), 3);
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(sim.requests_received(), 3);
    // Down for one request only: the retry gets the answer.
    sim.faults().set_for(Fault::Unavailable, 1);
    let answer = ask(&conn, &q).await?;
    assert_eq!(answer.attempts, 2);
    assert_eq!(read(&answer)?.summary().active, Some(true));
    assert_eq!(sim.faults().current(), None);
    Ok(())
}

#[tokio::test]
async fn fault_receiver_down_is_a_core_error() -> Result<()> {
    let sim = start(PayerSimConfig::default()).await?;
    let conn = connection_with(&sim, 5_000, fast_retry(2), None)?;
    sim.faults().set(Fault::ReceiverDown);
    let q = inquiry("SIMPPO", "SPX100000001", "TESTPATIENT", "AVERY");
    let err = ask(&conn, &q).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.core_error_code(), Some(&ErrorCode::ReceiverDown));
    assert_eq!(err.attempts(), 2);
    Ok(())
}

#[tokio::test]
async fn fault_delay_makes_the_client_time_out() -> Result<()> {
    let sim = start(PayerSimConfig::default()).await?;
    let conn = connection_with(&sim, 200, RetryPolicy::no_retry(), None)?;
    let q = inquiry("SIMPPO", "SPX100000001", "TESTPATIENT", "AVERY");
    sim.faults().set(Fault::Delay { ms: 1_000 });
    let err = ask(&conn, &q).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // A delay shorter than the client's patience still answers.
    sim.faults().set(Fault::Delay { ms: 20 });
    let patient = connection(&sim)?;
    assert_eq!(
        read(&ask(&patient, &q).await?)?.summary().active,
        Some(true)
    );
    Ok(())
}

#[tokio::test]
async fn fault_garbage_answers_something_that_is_not_x12() -> Result<()> {
    let sim = start(PayerSimConfig::default()).await?;
    let conn = connection(&sim)?;
    sim.faults().set(Fault::Garbage);
    let q = inquiry("SIMPPO", "SPX100000001", "TESTPATIENT", "AVERY");
    let answer = ask(&conn, &q).await?;
    assert_eq!(answer.payload_type, PayloadType::X12_271_RESPONSE);
    let doc = Document::parse(&answer.payload);
    assert!(doc.interchanges.iter().all(|i| i.isa.is_none()));
    assert!(read(&answer).is_err());
    Ok(())
}

#[tokio::test]
async fn fault_wrong_member_does_not_answer_the_question() -> Result<()> {
    let sim = start(PayerSimConfig::default()).await?;
    let conn = connection(&sim)?;
    sim.faults().set(Fault::WrongMember);
    let q = inquiry("SIMPPO", "SPX100000001", "TESTPATIENT", "AVERY");
    let r = read(&ask(&conn, &q).await?)?;
    let sub = r.subscriber.as_ref().context("no subscriber")?;
    assert_ne!(sub.member_id.as_deref(), Some("SPX100000001"));
    assert!(sub.member_id.is_some());
    assert_ne!(r.echoed_trace(), Some("TRACE-0001"));
    assert!(r.echoed_trace().is_some());
    assert_eq!(r.summary().active, Some(true));
    Ok(())
}

#[tokio::test]
async fn garbage_270_gets_a_clear_error() -> Result<()> {
    let sim = start(PayerSimConfig::default()).await?;
    let conn = connection(&sim)?;
    // Not X12 at all: CORE PayloadIllegal naming the problem, not retried.
    let err = conn
        .exchange(
            PayloadType::X12_270_REQUEST,
            Bytes::from_static(b"hello, is this the payer?"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    assert_eq!(err.attempts(), 1);
    assert!(matches!(
        err.core_error_code(),
        Some(ErrorCode::Illegal(f)) if f.as_str() == "Payload"
    ));
    assert!(err.to_string().contains("not an X12 interchange"), "{err}");

    // X12 whose set is broken (SE01 miscounted): a 999 rejecting the set.
    let good = x12_270(&inquiry("SIMPPO", "SPX100000001", "TESTPATIENT", "AVERY"))?;
    let text = std::str::from_utf8(&good)?;
    let se = text.find("SE*").context("no SE")?;
    let count_end = se + 3 + text[se + 3..].find('*').context("no SE02")?;
    let broken = format!("{}SE*99{}", &text[..se], &text[count_end..]);
    let answer = conn
        .exchange(PayloadType::X12_270_REQUEST, Bytes::from(broken))
        .await?;
    assert_eq!(answer.payload_type, PayloadType::X12_999_RESPONSE);
    let doc = Document::parse(&answer.payload);
    let (_, _, set) = doc.sets().next().context("no 999 set")?;
    assert_eq!(set.set_id(), "999");
    let ack = medbill_x12::transactions::ack999::read_999(set).value;
    assert_eq!(ack.status, "R");
    assert_eq!(ack.sets[0].status, "R");
    assert_eq!(ack.sets[0].codes, ["4"]);

    // Another transaction set than a 270: PayloadIllegal naming it.
    let not_270 = text.replace("ST*270*", "ST*276*");
    let err = conn
        .exchange(PayloadType::X12_270_REQUEST, Bytes::from(not_270))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("276"), "{err}");
    Ok(())
}

#[tokio::test]
async fn catalog_from_a_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("catalog.toml");
    std::fs::write(
        &path,
        r#"
        [[payers]]
        id = "TINY"
        name = "TINY MUTUAL"

        [[plans]]
        id = "BASIC"
        payer = "TINY"
        name = "TINY BASIC"
        [plans.in_network]
        deductible_individual = "800.00"
        oop_max_individual = "2000.00"
        coinsurance = "0.25"
        copays = { "98" = "30.00" }

        [[members]]
        member_id = "T-1"
        plan = "BASIC"
        first_name = "ROBIN"
        last_name = "FILEBASED"
        birth_date = "2000-01-01"
        active_from = "2026-01-01"
        deductible_met = "800.00"
        oop_met = "950.50"
        "#,
    )?;
    let sim = start(PayerSimConfig {
        catalog: Some(path.clone()),
        ..PayerSimConfig::default()
    })
    .await?;
    let conn = connection(&sim)?;
    let mut q = inquiry("TINY", "T-1", "FileBased", "Robin");
    q.subscriber_birth_date = Some(d(2000, 1, 1));
    let answer = ask(&conn, &q).await?;
    let doc = Document::parse(&answer.payload);
    let (_, _, set) = doc.sets().next().context("no set")?;
    let r = read_271(set).value;
    let s = r.summary();
    assert_eq!(s.active, Some(true));
    assert_eq!(s.plan.as_deref(), Some("TINY BASIC"));
    assert_eq!(s.deductible_remaining, Some(Decimal::ZERO));
    assert_eq!(s.oop_remaining, Some(dec("1049.50")));
    assert_eq!(s.coinsurance, Some(dec("0.25")));
    assert_eq!(s.copays.get("98"), Some(&dec("30")));
    // The default catalog is not loaded alongside.
    let r = read_271(
        Document::parse(
            &ask(
                &conn,
                &inquiry("SIMPPO", "SPX100000001", "TESTPATIENT", "AVERY"),
            )
            .await?
            .payload,
        )
        .sets()
        .next()
        .context("no set")?
        .2,
    )
    .value;
    assert_eq!(only_rejection(&r).1, "79");
    sim.shutdown().await?;

    // A broken catalog stops the start with a precise error.
    std::fs::write(&path, "[[members]]\nmember_id = 3\n")?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let err = medbill_payer_sim::start(
        PayerSimConfig {
            catalog: Some(path),
            ..PayerSimConfig::default()
        },
        listener,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("member_id"), "{err}");
    Ok(())
}

#[tokio::test]
async fn credentials_are_required_when_configured() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let secret = dir.path().join("password");
    std::fs::write(&secret, "s3cret\n")?;
    let basic = |file: &std::path::Path| CredentialsConfig::Basic {
        username: "medbill".into(),
        password: SecretSource::File(file.to_owned()),
    };
    let sim = start(PayerSimConfig {
        credentials: vec![AcceptedCredentialConfig {
            credentials: basic(&secret),
            sender_ids: vec!["MEDBILL01".into()],
        }],
        ..PayerSimConfig::default()
    })
    .await?;
    let q = inquiry("SIMPPO", "SPX100000001", "TESTPATIENT", "AVERY");
    let good = connection_with(&sim, 5_000, fast_retry(1), Some(basic(&secret)))?;
    assert_eq!(read(&ask(&good, &q).await?)?.summary().active, Some(true));
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "guess")?;
    let bad = connection_with(&sim, 5_000, fast_retry(1), Some(basic(&wrong)))?;
    let err = ask(&bad, &q).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    let anonymous = connection(&sim)?;
    assert_eq!(
        ask(&anonymous, &q).await.unwrap_err().kind(),
        ErrorKind::Unauthorized
    );
    Ok(())
}

#[tokio::test]
async fn shutdown_stops_the_server() -> Result<()> {
    let sim = start(PayerSimConfig::default()).await?;
    let addr = sim.local_addr();
    assert!(sim.url().starts_with("http://127.0.0.1:"));
    assert!(sim.url().ends_with("/core"));
    sim.shutdown().await?;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    Ok(())
}

#[tokio::test]
async fn https_when_tls_is_configured() -> Result<()> {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let sim = start(PayerSimConfig {
        tls: Some(medbill_payer_sim::TlsFiles {
            cert_file: fixtures.join("server.pem"),
            key_file: fixtures.join("server.key"),
        }),
        ..PayerSimConfig::default()
    })
    .await?;
    assert!(sim.url().starts_with("https://"));
    let mut http = CoreHttpConfig::new(format!(
        "https://localhost:{}/core",
        sim.local_addr().port()
    ));
    http.ca_file = Some(fixtures.join("ca.pem"));
    let conn = Connection::open(&PayerConnection {
        payer_id: "SIMPPO".into(),
        sender_id: "MEDBILL01".into(),
        receiver_id: "MEDBILLSIM".into(),
        transport: TransportConfig::CoreHttp(http),
        batch_transport: None,
        retry: fast_retry(1),
    })?;
    let q = inquiry("SIMPPO", "SPX100000002", "SAMPLEMAN", "JORDAN");
    let s = read(&ask(&conn, &q).await?)?.summary();
    assert_eq!(s.active, Some(true));
    assert_eq!(s.oop_remaining, Some(Decimal::ZERO));
    sim.shutdown().await?;
    Ok(())
}
