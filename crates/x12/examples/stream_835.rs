//! Streams an 835 file claim by claim and prints totals: `stream_835 FILE`.
//!
//! Used to check that memory stays bounded on a 1 GB file
//! (`/usr/bin/time -v target/release/examples/stream_835 /var/tmp/big.835`).

use std::time::Instant;

use medbill_x12::stream::{Era835Stream, StreamEvent};
use rust_decimal::Decimal;

fn main() -> std::io::Result<()> {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: stream_835 FILE");
        std::process::exit(2);
    };
    let file = std::fs::File::open(&path)?;
    let bytes = file.metadata()?.len();
    let start = Instant::now();
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
