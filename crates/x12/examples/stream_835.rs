//! Streams an 835 file claim by claim and prints totals:
//! `stream_835 FILE [events|claims]`. `events` (the default) reads through
//! `Era835Stream`, which hands out owned claims and events; `claims` through
//! `for_each_claim_835_read`, which lends claims from a window of the file.
//!
//! Used to check that memory stays bounded on a 1 GB file
//! (`/usr/bin/time -v target/release/examples/stream_835 /var/tmp/big.835`).

use std::time::Instant;

use medbill_x12::stream::{Era835Stream, StreamEvent};
use medbill_x12::transactions::era835::{
    ClaimPayment, Era835Visitor, Remittance, for_each_claim_835_read,
};
use rust_decimal::Decimal;

/// Totals over the claims and sets lent by `for_each_claim_835_read`.
#[derive(Default)]
struct Totals {
    sets: usize,
    claims: usize,
    lines: usize,
    paid: Decimal,
    reader_problems: usize,
}

impl<'a> Era835Visitor<'a> for Totals {
    fn claim(&mut self, _: &Remittance<'a>, claim: &ClaimPayment<'a>) {
        self.claims += 1;
        self.lines += claim.services.len();
        self.paid += claim.paid;
    }

    fn set(&mut self, _: Remittance<'a>, problems: Vec<medbill_x12::Error>) {
        self.sets += 1;
        self.reader_problems += problems.len();
    }
}

fn main() -> std::io::Result<()> {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: stream_835 FILE");
        std::process::exit(2);
    };
    let file = std::fs::File::open(&path)?;
    let bytes = file.metadata()?.len();
    let start = Instant::now();
    if std::env::args().nth(2).as_deref() == Some("claims") {
        let mut t = Totals::default();
        let problems = for_each_claim_835_read(file, &mut t);
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{path}: {bytes} bytes, {} sets, {} claims, {} lines, paid {}, {} reader problems, \
             {} other problems, {secs:.2} s, {:.0} MB/s",
            t.sets,
            t.claims,
            t.lines,
            t.paid,
            t.reader_problems,
            problems.len(),
            bytes as f64 / 1e6 / secs
        );
        return Ok(());
    }
    let mut stream = Era835Stream::new(file);
    let (mut sets, mut claims, mut lines, mut imbalances, mut reader_problems) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    let mut paid = Decimal::ZERO;
    let mut max_buffered = 0usize;
    while let Some(event) = stream.next() {
        match event {
            StreamEvent::Claim {
                claim,
                imbalances: found,
            } => {
                claims += 1;
                lines += claim.services.len();
                paid += claim.paid;
                imbalances += found.len();
            }
            StreamEvent::SetEnd {
                imbalance,
                problems,
                ..
            } => {
                sets += 1;
                imbalances += usize::from(imbalance.is_some());
                reader_problems += problems.len();
            }
            StreamEvent::Header(_) | StreamEvent::OtherSet { .. } => {}
        }
        max_buffered = max_buffered.max(stream.buffered());
    }
    let envelope_problems = stream.take_problems().len();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{path}: {bytes} bytes, {sets} sets, {claims} claims, {lines} lines, paid {paid}, \
         {imbalances} imbalances, {reader_problems} reader problems, {envelope_problems} envelope problems, \
         max buffer {max_buffered} bytes, {secs:.2} s, {:.0} MB/s",
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}
