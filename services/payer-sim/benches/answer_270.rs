//! Prints what payer-sim costs: CPU per 270 answered (parse, look up, write the 271), and
//! throughput and latency through the real CORE HTTP transport on loopback.
//!
//! `cargo bench -p medbill-payer-sim` (figures only; nothing is asserted).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{NaiveDate, NaiveTime};
use medbill_connect::{
    Connection, CoreHttpConfig, PayerConnection, PayloadType, RetryPolicy, TransportConfig,
};
use medbill_payer_sim::{Catalog, Faults, PayerSimConfig, SimHandler};
use medbill_x12::model::eligibility::{EligibilityInquiry, Trace};
use medbill_x12::model::{DateRange, PartyName, PersonName, TransactionHeader};
use medbill_x12::write::{self, Envelope, GroupHeader, InterchangeHeader, Separators};

fn x12_270(member_id: &str, last: &str, first: &str) -> anyhow::Result<Bytes> {
    let date = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default();
    let q = EligibilityInquiry {
        header: TransactionHeader {
            reference: "BENCH0001".into(),
            created_date: date,
            created_time: NaiveTime::from_hms_opt(9, 30, 0).unwrap_or_default(),
        },
        payer_name: "SIMULATED PPO HEALTH".into(),
        payer_id: "SIMPPO".into(),
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
        service_date: Some(DateRange::day(date)),
        service_types: vec!["30".into(), "98".into()],
    };
    let interchange = InterchangeHeader {
        sender_id: "MEDBILL01".into(),
        receiver_id: "SIMPPO".into(),
        ..InterchangeHeader::test_default(1)
    };
    let group = GroupHeader::new("MEDBILL01", "SIMPPO", interchange.date, interchange.time, 1);
    let envelope = Envelope {
        interchange,
        group,
        set_control_number: 1,
    };
    Ok(Bytes::from(write::eligibility_interchange(
        Separators::default(),
        &envelope,
        &q,
    )?))
}

fn main() -> anyhow::Result<()> {
    cpu()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(transport())
}

fn cpu() -> anyhow::Result<()> {
    let handler = SimHandler::new(
        Arc::new(Catalog::default_catalog()?),
        Faults::default(),
        Arc::new(AtomicU64::new(0)),
        "MEDBILLSIM".into(),
    );
    let today = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default();
    for (label, payload) in [
        (
            "active member",
            x12_270("SPX100000001", "TESTPATIENT", "AVERY")?,
        ),
        (
            "not found (AAA 75)",
            x12_270("SPX999999999", "TESTPATIENT", "AVERY")?,
        ),
    ] {
        let n = 20_000u32;
        for _ in 0..1_000 {
            let _ = handler.answer(&payload, None, today);
        }
        let start = Instant::now();
        let mut bytes = 0usize;
        for _ in 0..n {
            bytes += handler
                .answer(&payload, None, today)
                .map(|r| r.payload.len())
                .unwrap_or(0);
        }
        let per = start.elapsed() / n;
        println!(
            "cpu  {label:<20} {:>7.1} us per 270 answered ({} bytes of 271)",
            per.as_secs_f64() * 1e6,
            bytes / n as usize
        );
    }
    Ok(())
}

async fn transport() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = medbill_payer_sim::start(PayerSimConfig::default(), listener).await?;
    let mut http = CoreHttpConfig::new(sim.url());
    http.max_idle_per_host = 256;
    let conn = Connection::open(&PayerConnection {
        payer_id: "SIMPPO".into(),
        sender_id: "MEDBILL01".into(),
        receiver_id: "MEDBILLSIM".into(),
        transport: TransportConfig::CoreHttp(http),
        batch_transport: None,
        retry: RetryPolicy::no_retry(),
    })?;
    let payload = x12_270("SPX100000001", "TESTPATIENT", "AVERY")?;
    for concurrency in [1usize, 16, 64] {
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let conn = conn.clone();
            let payload = payload.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if conn
                        .exchange(PayloadType::X12_270_REQUEST, payload.clone())
                        .await
                        .is_ok()
                    {
                        latencies.push(t.elapsed());
                    }
                }
                latencies
            }));
        }
        let started = Instant::now();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await?);
        }
        let elapsed = started.elapsed();
        all.sort();
        let pct = |p: f64| {
            let i = ((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1));
            all.get(i).copied().unwrap_or_default()
        };
        println!(
            "http concurrency {concurrency:>3}: {:>7.0} 270/271 per s, p50 {:>6.2} ms, p99 {:>6.2} ms ({} exchanges)",
            all.len() as f64 / elapsed.as_secs_f64(),
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            all.len()
        );
    }
    sim.shutdown().await?;
    Ok(())
}
