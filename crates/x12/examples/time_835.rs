//! Times the in-memory typed 835 reader on a file: `time_835 FILE [ROUNDS] [all|each|both|claims|read|validate|tokenize|split|tree|stream]`.
//!
//! Prints wall and on-CPU time: the CPU figure is the one to quote on a shared machine.

use std::time::Instant;

/// A timed operation: returns a count so the work cannot be optimised away.
type Runner = fn(&[u8]) -> usize;

/// Returns this process's on-CPU time in seconds (Linux `/proc/self/schedstat`),
/// so figures stay meaningful when other builds share the machine.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |ns| ns / 1e9)
}

/// Counts the claims a visitor is lent and sums what they paid (so that the
/// claims are looked at, as a caller would).
#[derive(Default)]
struct ClaimCount {
    claims: usize,
    paid: rust_decimal::Decimal,
}

impl<'a> medbill_x12::transactions::era835::Era835Visitor<'a> for ClaimCount {
    fn claim(
        &mut self,
        _: &medbill_x12::transactions::era835::Remittance<'a>,
        c: &medbill_x12::transactions::era835::ClaimPayment<'a>,
    ) {
        self.claims += 1;
        self.paid += c.paid;
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: time_835 FILE [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let mode = args.next().unwrap_or_else(|| "both".into());
    let data = std::fs::read(&path)?;
    for _ in 0..if mode == "all" || mode == "both" {
        rounds
    } else {
        0
    } {
        let start = Instant::now();
        let cpu = cpu_secs();
        let (sets, problems) = medbill_x12::transactions::era835::read_all_835(&data);
        let claims: usize = sets.iter().map(|s| s.claims.len()).sum();
        let parsed = start.elapsed().as_secs_f64();
        drop(sets);
        let total = start.elapsed().as_secs_f64();
        let cpu = cpu_secs() - cpu;
        println!(
            "read_all_835: {} bytes, {claims} claims, {} problems: parse {:.0} ms ({:.0} MB/s), with drop {:.0} ms, cpu with drop {:.0} ms",
            data.len(),
            problems.len(),
            parsed * 1e3,
            data.len() as f64 / 1e6 / parsed,
            total * 1e3,
            cpu * 1e3
        );
    }
    for _ in 0..if mode == "each" || mode == "both" {
        rounds
    } else {
        0
    } {
        let start = Instant::now();
        let cpu = cpu_secs();
        let mut claims = 0usize;
        let mut paid = rust_decimal::Decimal::ZERO;
        let problems = medbill_x12::transactions::era835::for_each_835(&data, |r, _| {
            claims += r.claims.len();
            paid += r.payment.amount;
        });
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_secs() - cpu;
        println!(
            "for_each_835: {claims} claims, paid {paid}, {} problems: wall {:.0} ms ({:.0} MB/s), cpu {:.0} ms ({:.0} MB/s)",
            problems.len(),
            secs * 1e3,
            data.len() as f64 / 1e6 / secs,
            cpu * 1e3,
            data.len() as f64 / 1e6 / cpu
        );
    }
    let other: Option<(&str, Runner)> = match mode.as_str() {
        "claims" => Some(("for_each_claim_835", |d| {
            let mut count = ClaimCount::default();
            medbill_x12::transactions::era835::for_each_claim_835(d, &mut count);
            count.claims
        })),
        // The same claims through the windowed reader over `Read` (here the
        // in-memory bytes, so the figure is the windowing's cost, not I/O).
        "read" => Some(("for_each_claim_835_read", |mut d| {
            let mut count = ClaimCount::default();
            medbill_x12::transactions::era835::for_each_claim_835_read(&mut d, &mut count);
            count.claims
        })),
        "validate" => Some(("validate", |d| medbill_x12::inspect::validate(d).len())),
        "tokenize" => Some(("tokenize", |d| medbill_x12::Tokenizer::new(d).count())),
        // The yardstick of the speed target: a zero-copy split into
        // segments and elements on the ISA's delimiters, nothing checked or
        // built. Our figures are best read as a share of this one, taken on
        // the same machine at the same time.
        "split" => Some(("zero-copy split", |d| {
            let Ok(isa) = medbill_x12::Delimiters::from_isa(d) else {
                return 0;
            };
            let (element, terminator) = (isa.delimiters.element, isa.delimiters.segment);
            let mut start = 0;
            let mut parts = 0;
            for end in memchr::memchr_iter(terminator, d) {
                parts += memchr::memchr_iter(element, &d[start..end]).count() + 1;
                start = end + 1;
            }
            parts
        })),
        "tree" => Some(("tree", |d| medbill_x12::Document::parse(d).segment_count())),
        "stream" => Some(("stream_835", |d| {
            medbill_x12::stream::Era835Stream::new(d).count()
        })),
        _ => None,
    };
    if let Some((name, run)) = other {
        for _ in 0..rounds {
            let start = Instant::now();
            let cpu = cpu_secs();
            let n = run(&data);
            let secs = start.elapsed().as_secs_f64();
            let cpu = cpu_secs() - cpu;
            println!(
                "{name}: result {n}: wall {:.0} ms ({:.0} MB/s), cpu {:.0} ms ({:.0} MB/s)",
                secs * 1e3,
                data.len() as f64 / 1e6 / secs,
                cpu * 1e3,
                data.len() as f64 / 1e6 / cpu
            );
        }
    }
    Ok(())
}
