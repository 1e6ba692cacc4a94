//! Prints what paying claims costs payer-sim: accepted claims adjudicated from the catalog and
//! written as balanced 835s (the writer balances every set first), per second, and the size of
//! the 835 written; the 835 is read back and balanced to show it is whole.
//!
//! `cargo bench -p medbill-payer-sim --bench pay_claims` (figures only; nothing is asserted).
//! The mix: 2-line professional claims of six SIMPPO members over 300 days and five codes, so
//! some lines are duplicates of earlier ones (OA-18) as a real stream has.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeDelta};
use medbill_payer_sim::{Catalog, ClaimFront, Payments};
use medbill_x12::balance::balance;
use medbill_x12::model::claim::Procedure;
use medbill_x12::model::{DateRange, PersonName};
use medbill_x12::transactions::era835::read_all_835;
use medbill_x12::write::{self, Envelope, Separators, samples};
use rust_decimal::Decimal;

const MEMBERS: &[&str] = &[
    "SPX100000001",
    "SPX100000002",
    "SPX100000003",
    "SPX100000005",
    "SPX100000006",
    "SPX100000007",
];
const CODES: &[(&str, &str)] = &[
    ("99213", "130"),
    ("99214", "210"),
    ("85025", "30"),
    ("97110", "60"),
    ("36415", "20"),
];

fn batch(first: usize, n: usize, control: u32) -> anyhow::Result<String> {
    let mut set = samples::professional_set();
    let template = set.claims.remove(0);
    let start = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap_or_default();
    set.claims = (first..first + n)
        .map(|i| {
            let mut c = template.clone();
            c.payer.id = "SIMPPO".into();
            c.subscriber.member_id = MEMBERS[i % MEMBERS.len()].into();
            c.subscriber.name = PersonName::new("BENCH", "PATIENT");
            c.patient = None;
            c.claim.patient_control_number = format!("B{i:09}");
            c.claim.diagnoses = vec!["I10".into()];
            let day = start + TimeDelta::days((i / MEMBERS.len() % 300) as i64);
            let line = c.lines[0].clone();
            c.lines = (0..2)
                .map(|k| {
                    let (code, charge) = CODES[(i + k) % CODES.len()];
                    let mut l = line.clone();
                    l.procedure = Procedure::hc(code);
                    if code == "97110" {
                        l.procedure.modifiers = vec!["GP".into()];
                    }
                    l.charge = charge.parse().unwrap_or(Decimal::ONE);
                    l.units = Decimal::ONE;
                    l.service_date = DateRange::day(day);
                    l.diagnosis_pointers = vec![1];
                    l.providers.clear();
                    l.line_control_number = Some(format!("B{i:09}-{k}"));
                    l
                })
                .collect();
            c.claim.total_charge = c.lines.iter().map(|l| l.charge).sum();
            c
        })
        .collect();
    Ok(write::professional_interchange(
        Separators::default(),
        &Envelope::test_default(control, control, 1),
        &set,
    )?)
}

fn main() -> anyhow::Result<()> {
    let catalog = Catalog::default_catalog()?;
    let now = NaiveDate::from_ymd_opt(2026, 12, 1)
        .and_then(|d| d.and_hms_opt(10, 0, 0))
        .unwrap_or_default();
    for claims in [1_000usize, 20_000] {
        let front = ClaimFront::with_payments(Payments::new(Duration::ZERO, None));
        let mut control = 0u32;
        let mut next = || {
            control += 1;
            control
        };
        for (b, first) in (0..claims).step_by(5_000).enumerate() {
            let text = batch(first, 5_000.min(claims - first), 10 + b as u32)?;
            front.intake(
                &catalog,
                "BENCH",
                text.as_bytes(),
                now,
                "MEDBILLSIM",
                &mut next,
            )?;
        }
        let accepted = front.accepted_claims().len();
        let started = Instant::now();
        front.settle_due(&catalog, "BENCH", now, "MEDBILLSIM", &mut next)?;
        let elapsed = started.elapsed();
        let mut bytes = 0usize;
        let mut paid_claims = 0usize;
        let mut balanced = true;
        while let Some(f) = front.next_file("BENCH", medbill_connect::InboundKind::Any) {
            let (sets, _) = read_all_835(&f.contents);
            for s in &sets {
                paid_claims += s.claims.len();
                balanced &= balance(s).balanced;
            }
            if !sets.is_empty() {
                bytes += f.contents.len();
            }
            front.acknowledge("BENCH", &f.file_id);
        }
        println!(
            "pay {accepted:>6} accepted claims: {:>8.1} ms, {:>8.0} claims/s adjudicated and written, \
             835 {} bytes, {paid_claims} CLPs, balanced {balanced}",
            elapsed.as_secs_f64() * 1e3,
            accepted as f64 / elapsed.as_secs_f64(),
            bytes
        );
    }
    Ok(())
}
