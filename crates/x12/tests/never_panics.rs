//! Property tests: random and mutated inputs never panic, and the readers agree.

use medbill_x12::inspect::{inspect, validate, validate_read_windowed};
use medbill_x12::stream::{Era835Stream, SegmentReader, StreamEvent};
use medbill_x12::transactions::era835::{
    ClaimPayment, Era835Visitor, Remittance, for_each_835, for_each_claim_835,
    for_each_claim_835_read_windowed, read_835, read_all_835,
};
use medbill_x12::{Document, Tokenizer};
use proptest::prelude::*;

fn fixtures() -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    [
        "synthetic/multi-st.835",
        "synthetic/reversal-plb-interest.835",
        "synthetic/newline-terminator.835",
        "synthetic/unusual-delimiters.835",
        "lfh-x12/medicare-part-a.835",
        "lfh-x12/secondary-payment.835",
        "edi-835-parser/blue_cross_nc_sample.txt",
        "imsweb-x12-parser/x12_999_accepted_ta1.txt",
        "imsweb-x12-parser/x12_valid_different_separators.txt",
    ]
    .iter()
    .map(|f| std::fs::read(format!("{dir}/{f}")).unwrap())
    .collect()
}

/// Runs every reader over `input` and checks they agree with each other.
fn check(input: &[u8]) {
    let doc = Document::parse(input);
    let tokens = Tokenizer::new(input).count();
    assert_eq!(doc.segment_count(), tokens);
    for p in &doc.problems {
        assert!(p.position.offset <= input.len());
        let _ = p.to_string();
    }
    let problems = validate(input);
    // Read in windows (ending anywhere), the same problems in the same order.
    let window = 16 + input.len() % 509;
    assert_eq!(
        validate_read_windowed(input, window),
        problems,
        "window {window}"
    );
    let report = inspect(input);
    // validate streams 835 sets; inspect reads the tree: same problems, same order.
    assert_eq!(report.problems, problems);
    let _ = serde_json::to_string(&report).unwrap();
    assert_eq!(one_pass_835(input), tree_835(&doc));
    let (sets, _) = read_all_835(input);
    let claims: usize = sets.iter().map(|s| s.claims.len()).sum();
    let streamed = Era835Stream::new(input)
        .filter(|e| matches!(e, StreamEvent::Claim { .. }))
        .count();
    assert_eq!(streamed, claims);
    // The visitor reuses its claim buffers: what it lends must equal what the
    // whole-set reader keeps, claim for claim.
    struct Visited(Vec<String>);
    impl<'a> Era835Visitor<'a> for Visited {
        fn claim(&mut self, _: &Remittance<'a>, claim: &ClaimPayment<'a>) {
            self.0.push(format!("{claim:?}"));
        }
        fn set(&mut self, remittance: Remittance<'a>, problems: Vec<medbill_x12::Error>) {
            self.0.push(format!("{remittance:?}\n{problems:?}"));
        }
    }
    let mut visited = Visited(Vec::new());
    let visited_problems = for_each_claim_835(input, &mut visited);
    let held: Vec<String> = sets
        .iter()
        .flat_map(|s| s.claims.iter().map(|c| format!("{c:?}")))
        .collect();
    let claims_only: Vec<&String> = visited
        .0
        .iter()
        .filter(|v| !v.starts_with("Remittance"))
        .collect();
    assert_eq!(claims_only, held.iter().collect::<Vec<_>>());
    // Read in windows (ending anywhere, down to one byte), the same claims,
    // sets and problems.
    let window = 16 + input.len() % 509;
    let mut windowed = Visited(Vec::new());
    let windowed_problems = for_each_claim_835_read_windowed(input, window, &mut windowed);
    assert_eq!(windowed.0, visited.0, "window {window}");
    assert_eq!(windowed_problems, visited_problems, "window {window}");
    let mut reader = SegmentReader::new(input);
    let mut n = 0;
    while reader.next_segment().is_some() {
        n += 1;
    }
    assert_eq!(n, tokens);
}

/// Each 835 set with its reader problems, from the one-pass reader (whose
/// fast path takes the ordinary claim and service segments).
fn one_pass_835(input: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for_each_835(input, |r, p| out.push(format!("{r:?}\n{p:?}")));
    out
}

/// The same from the tree, where every segment goes through the general
/// reader: the fast path must build exactly this, problems included.
fn tree_835(doc: &Document<'_>) -> Vec<String> {
    doc.sets()
        .filter(|(_, _, set)| set.segments.first().is_some_and(|st| st.bytes(1) == b"835"))
        .map(|(_, _, set)| {
            let (r, p) = read_835(set);
            format!("{r:?}\n{p:?}")
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Replace(usize, u8),
    Duplicate(usize, usize),
}

fn apply(mut data: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let len = data.len().max(1);
    match m {
        Mutation::Truncate(at) => data.truncate(at % len),
        Mutation::Delete(at, n) => {
            let at = at % len;
            let end = (at + n).min(data.len());
            if at < end {
                data.drain(at..end);
            }
        }
        Mutation::Insert(at, bytes) => {
            let at = (at % len).min(data.len());
            data.splice(at..at, bytes.iter().copied());
        }
        Mutation::Replace(at, b) => {
            let at = at % len;
            if let Some(x) = data.get_mut(at) {
                *x = *b;
            }
        }
        Mutation::Duplicate(at, n) => {
            let at = at % len;
            let end = (at + n).min(data.len());
            let copy = data[at.min(end)..end].to_vec();
            data.splice(end..end, copy);
        }
    }
    data
}

/// Bytes that matter to X12 readers, so random input reaches deep code paths.
fn x12_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => prop::sample::select(b"*~:^>|\n\r 0123456789.-".to_vec()),
        3 => prop::sample::select(b"ISAGSTEBPRNCLVQMOHXYZD".to_vec()),
        1 => any::<u8>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..200).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), prop::collection::vec(x12_byte(), 1..40))
            .prop_map(|(a, b)| Mutation::Insert(a, b)),
        (any::<usize>(), x12_byte()).prop_map(|(a, b)| Mutation::Replace(a, b)),
        (any::<usize>(), 1usize..300).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..600)) {
        check(&input);
    }

    #[test]
    fn random_x12_alphabet_never_panics(body in prop::collection::vec(x12_byte(), 0..800), isa in any::<bool>()) {
        let mut input = Vec::new();
        if isa {
            input.extend_from_slice(b"ISA*00*          *00*          *ZZ*S              *ZZ*R              *240101*1200*^*00501*000000001*0*P*:~");
        }
        input.extend(body);
        check(&input);
    }

    #[test]
    fn mutated_fixtures_never_panic(which in 0usize..9, mutations in prop::collection::vec(mutation(), 1..5)) {
        let all = fixtures();
        let mut data = all[which % all.len()].clone();
        for m in &mutations {
            data = apply(data, m);
        }
        check(&data);
    }

    #[test]
    fn mutated_generated_835_never_panics(seed in any::<u64>(), mutations in prop::collection::vec(mutation(), 1..4)) {
        // Generated remittances are almost all ordinary claim and service
        // segments: the one-pass reader's fast path, here given broken ones.
        let mut data = medbill_x12::bench_data::generate_835(6_000, seed);
        for m in &mutations {
            data = apply(data, m);
        }
        check(&data);
    }

    #[test]
    fn appended_fixtures_with_mutation_never_panic(a in 0usize..9, b in 0usize..9, m in mutation()) {
        let all = fixtures();
        let mut data = all[a].clone();
        data.extend_from_slice(&all[b]);
        check(&apply(data, &m));
    }
}

#[test]
fn every_truncation_of_a_fixture_is_safe() {
    for data in fixtures() {
        for cut in 0..data.len() {
            check(&data[..cut]);
        }
    }
}
