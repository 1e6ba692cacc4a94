//! Helpers shared by the tests that drive payer-sim over its CORE HTTP transport.

#![allow(dead_code)]

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use chrono::NaiveDate;
use medbill_connect::{
    Connection, CoreHttpConfig, InboundFile, OutboundFile, PayerConnection, RetryPolicy,
    TransportConfig,
};
use medbill_payer_sim::PayerSimHandle;
use medbill_x12::model::claim::ProfessionalClaim;
use medbill_x12::model::{DateRange, PersonName};
use medbill_x12::write::{self, Envelope, Separators, is_valid_npi, samples};

pub fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

pub fn connection(sim: &PayerSimHandle, sender_id: &str) -> Result<Connection> {
    Ok(Connection::open(&PayerConnection {
        payer_id: "SIMPPO".into(),
        sender_id: sender_id.into(),
        receiver_id: "MEDBILLSIM".into(),
        transport: TransportConfig::CoreHttp(CoreHttpConfig::new(sim.url())),
        batch_transport: None,
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
    })?)
}

/// Returns a valid NPI starting with `prefix` (9 digits): the check digit is searched for.
pub fn npi(prefix: &str) -> String {
    (0..10)
        .map(|c| format!("{prefix}{c}"))
        .find(|n| is_valid_npi(n))
        .unwrap()
}

/// A one-line 837P claim of catalog member `member_id` for service on `dos`, billed by the
/// sample billing provider (NPI 1234567893) with rendering provider NPI 1912301953.
pub fn claim(pcn: &str, member_id: &str, dos: NaiveDate) -> ProfessionalClaim {
    let mut c = samples::professional_set().claims.remove(0);
    c.payer.id = "SIMPPO".into();
    c.payer.name = "SIMULATED PPO HEALTH".into();
    c.subscriber.member_id = member_id.into();
    c.subscriber.name = PersonName::new("TESTPATIENT", "AVERY");
    c.patient = None;
    c.claim.patient_control_number = pcn.into();
    c.claim.diagnoses = vec!["E119".into(), "I10".into()];
    c.lines.truncate(1);
    let line = &mut c.lines[0];
    line.service_date = DateRange::day(dos);
    line.diagnosis_pointers = vec![1];
    line.providers.clear();
    line.line_control_number = Some(format!("{pcn}-L1"));
    c.claim.total_charge = line.charge;
    c
}

pub fn batch(claims: Vec<ProfessionalClaim>, control: u32) -> String {
    let mut set = samples::professional_set();
    set.claims = claims;
    write::professional_interchange(
        Separators::default(),
        &Envelope::test_default(control, control, 1),
        &set,
    )
    .unwrap()
}

pub async fn submit(conn: &Connection, text: String) -> Result<()> {
    conn.submit_batch(OutboundFile {
        label: "837P".into(),
        contents: Bytes::from(text),
    })
    .await?;
    Ok(())
}

/// Picks up every waiting file, acknowledging each, and checks nothing is left afterwards.
pub async fn pick_up(conn: &Connection) -> Result<Vec<InboundFile>> {
    let mut files = Vec::new();
    while let Some(file) = conn.next_inbound().await? {
        // Until acknowledged, the same file is offered again.
        let again = conn.next_inbound().await?.context("offered once only")?;
        assert_eq!(again.file_id, file.file_id);
        conn.acknowledge(&file.file_id).await?;
        files.push(file);
        if files.len() > 50 {
            bail!("files keep coming");
        }
    }
    Ok(files)
}
