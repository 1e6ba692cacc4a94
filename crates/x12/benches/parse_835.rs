//! Parses a generated 835 of at least 50 MB (thousands of claims).
//!
//! The data comes from `medbill_x12::bench_data::generate_835` at bench start,
//! so nothing large is stored in the repository. Set `MEDBILL_BENCH_MB` to
//! change the size (default 55). Throughput is reported in bytes per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use medbill_x12::balance::balance;
use medbill_x12::bench_data::generate_835;
use medbill_x12::inspect::validate;
use medbill_x12::stream::{Era835Stream, StreamEvent};
use medbill_x12::transactions::era835::{
    ClaimPayment, Era835Visitor, Remittance, for_each_835, for_each_claim_835,
    for_each_claim_835_read, read_835, read_all_835,
};
use medbill_x12::{Document, Tokenizer};

/// Counts the claims [`for_each_claim_835`] lends out.
struct ClaimCount(usize);

impl<'a> Era835Visitor<'a> for ClaimCount {
    fn claim(&mut self, _: &Remittance<'a>, claim: &ClaimPayment<'a>) {
        self.0 += black_box(claim).services.len().min(1);
    }
}

fn parse(c: &mut Criterion) {
    let mb: usize = std::env::var("MEDBILL_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(55);
    let data = generate_835(mb * 1_000_000, 42);
    let (sets, problems) = read_all_835(&data);
    assert!(problems.is_empty(), "generated data must be valid");
    let claims: usize = sets.iter().map(|s| s.claims.len()).sum();
    eprintln!(
        "bench input: {} bytes, {} transaction sets, {claims} claims",
        data.len(),
        sets.len()
    );
    drop(sets);

    let mut g = c.benchmark_group("parse_835");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("tokenize", |b| {
        b.iter(|| black_box(Tokenizer::new(black_box(&data)).count()))
    });
    g.bench_function("typed_835", |b| {
        b.iter(|| {
            let (sets, problems) = read_all_835(black_box(&data));
            black_box((sets.len(), problems.len()))
        })
    });
    g.bench_function("typed_835_per_set", |b| {
        b.iter(|| {
            let mut claims = 0usize;
            let problems = for_each_835(black_box(&data), |r, _| claims += r.claims.len());
            black_box((claims, problems.len()))
        })
    });
    g.bench_function("typed_835_per_claim", |b| {
        b.iter(|| {
            let mut count = ClaimCount(0);
            let problems = for_each_claim_835(black_box(&data), &mut count);
            black_box((count.0, problems.len()))
        })
    });
    g.bench_function("typed_835_per_claim_read", |b| {
        // The windowed reader over `Read`, here over the in-memory bytes.
        b.iter(|| {
            let mut count = ClaimCount(0);
            let problems = for_each_claim_835_read(black_box(&data[..]), &mut count);
            black_box((count.0, problems.len()))
        })
    });
    g.bench_function("typed_835_and_balance", |b| {
        b.iter(|| {
            let (sets, _) = read_all_835(black_box(&data));
            black_box(sets.iter().filter(|r| balance(r).balanced).count())
        })
    });
    g.bench_function("tree_then_typed_835", |b| {
        b.iter(|| {
            let doc = Document::parse(black_box(&data));
            black_box(
                doc.sets()
                    .map(|(_, _, s)| read_835(s).0.claims.len())
                    .sum::<usize>(),
            )
        })
    });
    g.bench_function("stream_835", |b| {
        b.iter(|| {
            let n = Era835Stream::new(black_box(&data[..]))
                .filter(|e| matches!(e, StreamEvent::Claim { .. }))
                .count();
            black_box(n)
        })
    });
    g.bench_function("validate", |b| {
        b.iter(|| black_box(validate(black_box(&data)).len()))
    });
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
