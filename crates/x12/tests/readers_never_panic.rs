//! Property tests: the typed readers never panic on mutated input, and whatever the writers
//! accept reads back equal.

use std::str::FromStr;

use medbill_x12::Document;
use medbill_x12::inspect::inspect;
use medbill_x12::transactions::{
    ack999, claim_status277, claim837, eligibility271, inquiry270, status276, ta1,
};
use medbill_x12::write::{self, Envelope, Separators, samples};
use proptest::prelude::*;
use rust_decimal::Decimal;

const FIXTURES: &[&str] = &[
    "lfh-x12/subscriber-health-benefit-check.271",
    "lfh-x12/subscriber-health-benefit-check-error.271",
    "lfh-x12/claim-level-status.277",
    "lfh-x12/claim-level-status.276",
    "lfh-x12/subscriber-health-benefit-check.270",
    "lfh-x12/demo.cob.example3.B.837",
    "lfh-x12/institutional-claim.837i",
    "imsweb-x12-parser/x12_277CA_rejected.txt",
    "imsweb-x12-parser/x12_999_accepted_ta1.txt",
    "imsweb-x12-parser/x12_999_rejected.txt",
];

fn corpus() -> Vec<Vec<u8>> {
    FIXTURES
        .iter()
        .map(|f| {
            std::fs::read(format!("{}/tests/fixtures/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap()
        })
        .collect()
}

/// Runs every typed reader on every set and interchange, whatever its type.
fn read_everything(bytes: &[u8]) {
    let doc = Document::parse(bytes);
    for (ic, _, set) in doc.sets() {
        let _ = eligibility271::read_271_all(set);
        let _ = claim_status277::read_277(set);
        let _ = ack999::read_999(set);
        let _ = claim837::read_837p(set);
        let _ = claim837::read_837i(set);
        let _ = inquiry270::read_270(set);
        let _ = status276::read_276(set);
        let _ = ta1::read_ta1s(ic);
    }
    let _ = inspect(bytes);
}

#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Delete(usize, usize),
    Insert(usize, u8),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![
        Just(b'*'),
        Just(b':'),
        Just(b'^'),
        Just(b'~'),
        Just(b'\n'),
        Just(b'-'),
        Just(b'.'),
        Just(b'9'),
        Just(b'A'),
        any::<u8>()
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len().max(1);
        match *e {
            Edit::Set(i, b) => {
                if let Some(x) = bytes.get_mut(i % len) {
                    *x = b;
                }
            }
            Edit::Delete(i, n) => {
                let start = (i % len).min(bytes.len());
                let end = (start + n).min(bytes.len());
                bytes.drain(start..end);
            }
            Edit::Insert(i, b) => bytes.insert((i % len).min(bytes.len()), b),
            Edit::Truncate(i) => bytes.truncate(i % len),
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn readers_survive_mutated_fixtures(which in 0usize..FIXTURES.len(), edits in prop::collection::vec(edit(), 1..12)) {
        let corpus = corpus();
        read_everything(&apply(corpus[which].clone(), &edits));
    }

    #[test]
    fn readers_survive_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        read_everything(&bytes);
        let mut with_isa = corpus()[0][..106].to_vec();
        with_isa.extend_from_slice(&bytes);
        read_everything(&with_isa);
    }

    /// Plain values are always accepted and read back equal.
    #[test]
    fn plain_claims_are_accepted(
        pcn in "[A-Z0-9][A-Z0-9 .-]{0,18}[A-Z0-9]",
        last in "[A-Z][A-Z '-]{0,10}[A-Z]",
        charge in (0i64..10_000_000, 0u32..3),
        units in (1i64..1000, 0u32..3),
        sep_pick in 0usize..3,
    ) {
        prop_assert!(round_trip(pcn, last, charge, units, sep_pick)?);
    }

    /// Whatever the 837P writer accepts must read back equal; what it refuses is an error, not a panic.
    #[test]
    fn accepted_claims_round_trip(
        pcn in "[ -~]{0,24}",
        last in "[ -~]{0,12}",
        charge in (0i64..10_000_000, 0u32..4),
        units in (1i64..1000, 0u32..3),
        sep_pick in 0usize..3,
    ) {
        round_trip(pcn, last, charge, units, sep_pick)?;
    }
}

/// Writes a one-claim 837P with these values; when the writer accepts it, checks that it reads
/// back equal. Returns whether the writer accepted it.
fn round_trip(
    pcn: String,
    last: String,
    charge: (i64, u32),
    units: (i64, u32),
    sep_pick: usize,
) -> Result<bool, TestCaseError> {
    let mut set = samples::professional_set();
    set.claims.truncate(1);
    let c = &mut set.claims[0];
    c.claim.patient_control_number = pcn;
    c.subscriber.name.last = last;
    let charge = Decimal::new(charge.0, charge.1);
    c.lines.truncate(1);
    c.lines[0].charge = charge;
    c.lines[0].units = Decimal::new(units.0, units.1);
    c.claim.total_charge = charge;
    let sep = [
        Separators::default(),
        Separators::unusual(),
        Separators {
            newline: true,
            ..Separators::default()
        },
    ][sep_pick];
    let env = Envelope::test_default(1, 1, 1);
    let Ok(text) = write::professional_interchange(sep, &env, &set) else {
        return Ok(false);
    };
    let doc = Document::parse(text.as_bytes());
    prop_assert!(doc.problems.is_empty(), "{:?}", doc.problems);
    let (_, _, ts) = doc.sets().next().unwrap();
    let back = claim837::read_837p(ts);
    prop_assert!(back.problems.is_empty(), "{:?}", back.problems);
    prop_assert_eq!(back.value, set);
    Ok(true)
}

#[test]
fn amounts_with_more_than_two_places_are_refused() {
    let mut set = samples::professional_set();
    set.claims[0].lines[1].charge = Decimal::from_str("35.505").unwrap();
    set.claims[0].claim.total_charge = Decimal::from_str("185.505").unwrap();
    let env = Envelope::test_default(1, 1, 1);
    assert!(write::professional_interchange(Separators::default(), &env, &set).is_err());
}
