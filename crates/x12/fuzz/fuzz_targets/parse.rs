//! Fuzzes every X12 reader over arbitrary bytes: none may panic, and they must agree.
//!
//! Run (new inputs go to the git-ignored `corpus`; the fixtures are read-only seeds):
//! `cd crates/x12/fuzz && cargo +nightly fuzz run parse corpus ../tests/fixtures/synthetic ../tests/fixtures/lfh-x12 -- -max_total_time=300`

#![no_main]

use libfuzzer_sys::fuzz_target;
use medbill_x12::stream::{Era835Stream, StreamEvent};
use medbill_x12::transactions::era835::read_all_835;
use medbill_x12::{Document, Tokenizer};

fuzz_target!(|data: &[u8]| {
    let doc = Document::parse(data);
    assert_eq!(doc.segment_count(), Tokenizer::new(data).count());
    let problems = medbill_x12::inspect::validate(data);
    let report = medbill_x12::inspect::inspect(data);
    assert_eq!(report.problems.len(), problems.len());
    let (sets, _) = read_all_835(data);
    let claims: usize = sets.iter().map(|s| s.claims.len()).sum();
    let streamed = Era835Stream::new(data).filter(|e| matches!(e, StreamEvent::Claim { .. })).count();
    assert_eq!(claims, streamed);
});
