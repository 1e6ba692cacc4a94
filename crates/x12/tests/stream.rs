//! Streaming reader: same results as the in-memory reader, bounded buffer.

use std::io::Read;

use medbill_x12::stream::{Era835Stream, SegmentReader, StreamEvent};
use medbill_x12::transactions::era835::{
    ClaimPayment, Era835Visitor, Relife, Remittance, for_each_claim_835, for_each_claim_835_read,
    for_each_claim_835_read_windowed, read_835, read_all_835,
};
use medbill_x12::{Document, ErrorKind, MAX_PROBLEMS, MAX_SEGMENT_LEN};
use rust_decimal::Decimal;

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A reader that hands out at most `step` bytes per read, cycling 1..=step,
/// so segments and ISAs straddle buffer refills.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
    n: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.n = self.n % self.step + 1;
        let k = self.n.min(buf.len()).min(self.data.len());
        buf[..k].copy_from_slice(&self.data[..k]);
        self.data = &self.data[k..];
        Ok(k)
    }
}

/// The fixtures at `paths`, one after another, each ended by a line break.
fn joined(paths: &[&str]) -> Vec<u8> {
    let mut input = Vec::new();
    for f in paths {
        input.extend(fixture(f));
        input.push(b'\n');
    }
    input
}

fn all_835_input() -> Vec<u8> {
    joined(&[
        "synthetic/multi-st.835",
        "synthetic/reversal-plb-interest.835",
        "lfh-x12/medicare-part-a.835",
        "synthetic/unusual-delimiters.835",
        "edi-835-parser/united_healthcare_legacy_sample.txt",
        "synthetic/newline-terminator.835",
        "lfh-x12/managed-care.835",
    ])
}

#[test]
fn segment_reader_matches_tokenizer_across_refills() {
    let input = all_835_input();
    let want: Vec<_> = medbill_x12::Tokenizer::new(&input)
        .map(|s| (s.index(), s.offset(), s.raw().to_vec()))
        .collect();
    for step in [1, 7, 4096] {
        let mut r = SegmentReader::new(Trickle {
            data: &input,
            step,
            n: 0,
        });
        let mut got = Vec::new();
        while let Some(s) = r.next_segment() {
            got.push((s.index(), s.offset(), s.raw().to_vec()));
        }
        assert_eq!(got.len(), want.len(), "step {step}");
        assert!(got == want, "step {step}");
        assert!(r.take_problems().is_empty());
    }
}

#[test]
fn stream_yields_the_same_claims_as_the_tree() {
    let input = all_835_input();
    let doc = Document::parse(&input);
    let mut want_claims = Vec::new();
    let mut want_sets = Vec::new();
    for (_, _, set) in doc.sets() {
        let (r, problems) = read_835(set);
        want_sets.push((
            r.control_number.to_string(),
            r.payment.amount,
            r.claims.len(),
            problems.len(),
        ));
        want_claims.extend(r.claims);
    }
    let mut stream = Era835Stream::new(Trickle {
        data: &input,
        step: 13,
        n: 0,
    });
    let mut claims = Vec::new();
    let mut sets = Vec::new();
    let mut headers = 0;
    for event in stream.by_ref() {
        match event {
            StreamEvent::Header(h) => {
                headers += 1;
                assert!(h.claims.is_empty());
            }
            StreamEvent::Claim { claim, imbalances } => {
                assert!(imbalances.is_empty(), "{imbalances:?}");
                claims.push(*claim);
            }
            StreamEvent::SetEnd {
                remittance,
                imbalance,
                problems,
            } => {
                assert!(imbalance.is_none());
                sets.push((
                    remittance.control_number.to_string(),
                    remittance.payment.amount,
                    remittance.claim_count,
                    problems.len(),
                ));
            }
            StreamEvent::OtherSet { .. } => panic!("only 835s here"),
        }
    }
    assert_eq!(headers, want_sets.len());
    assert_eq!(sets, want_sets);
    assert_eq!(claims.len(), want_claims.len());
    // Streamed text is owned, read text borrowed: compare what they hold.
    for (got, want) in claims.iter().zip(&want_claims) {
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
    }
    // Only the managed-care BPR16 date problem, from the reader; the envelope is clean.
    assert!(stream.take_problems().is_empty());
    assert_eq!(sets.iter().map(|s| s.3).sum::<usize>(), 1);
}

#[test]
fn stream_reports_imbalances_per_claim_and_set() {
    let text = String::from_utf8(fixture("synthetic/multi-st.835"))
        .unwrap()
        .replace("CLP*PCN-B1*1*100.00*80.00", "CLP*PCN-B1*1*100.00*79.00");
    let events: Vec<_> = Era835Stream::new(text.as_bytes()).collect();
    let claim_problems: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Claim { claim, imbalances } if !imbalances.is_empty() => Some((
                claim.patient_control_number.to_string(),
                imbalances[0].difference,
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        claim_problems,
        [("PCN-B1".to_string(), Decimal::new(-100, 2))]
    );
    let set_problems: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::SetEnd {
                imbalance: Some(p), ..
            } => Some((p.expected, p.actual)),
            _ => None,
        })
        .collect();
    assert_eq!(
        set_problems,
        [(Decimal::new(7900, 2), Decimal::new(8000, 2))]
    );
}

#[test]
fn hundred_megabyte_segment_is_an_error_not_a_buffer() {
    let head = b"ISA*00*          *00*          *ZZ*S              *ZZ*R              *240101*1200*^*00501*000000001*0*P*:~GS*HP*S*R*20240101*1200*1*X*005010X221A1~ST*835*0001~N1*PR*";
    let tail = b"~SE*3*0001~GE*1*1~IEA*1*000000001~";
    let body = std::io::repeat(b'x').take(100_000_000);
    let input = (&head[..]).chain(body).chain(&tail[..]);
    let mut r = SegmentReader::new(input);
    let mut ids = Vec::new();
    let mut max_buffered = 0;
    while let Some(s) = r.next_segment() {
        ids.push(s.id().to_string());
        max_buffered = max_buffered.max(r.buffered());
    }
    max_buffered = max_buffered.max(r.buffered());
    assert_eq!(ids, ["ISA", "GS", "ST", "SE", "GE", "IEA"]);
    let problems = r.take_problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].kind,
        ErrorKind::SegmentTooLong {
            limit: MAX_SEGMENT_LEN
        }
    );
    assert_eq!(
        (
            problems[0].position.segment_index,
            problems[0].position.offset
        ),
        (4, head.len() - 6)
    );
    assert!(
        max_buffered < MAX_SEGMENT_LEN + 2 * medbill_x12::stream::CHUNK_SIZE,
        "{max_buffered}"
    );
    // The windowed reader skips it the same way (its buffer is bounded the
    // same way too: the skipped bytes are dropped as they are read).
    let input = (&head[..])
        .chain(std::io::repeat(b'x').take(100_000_000))
        .chain(&tail[..]);
    let mut sets = Record::default();
    let windowed = for_each_claim_835_read(input, &mut sets);
    // Its problems add the envelope's: SE01 counts the segment skipped.
    assert_eq!(windowed[..1], problems[..]);
    assert!(
        matches!(&windowed[1].kind, ErrorKind::CountMismatch { element, .. } if *element == "SE01"),
        "{windowed:?}"
    );
    assert_eq!(sets.0.len(), 1);
    assert!(sets.0[0].starts_with("set "), "{:?}", sets.0);
}

#[test]
fn other_transaction_types_are_skipped() {
    let input = fixture("imsweb-x12-parser/x12_999_accepted_ta1.txt");
    let events: Vec<_> = Era835Stream::new(&input[..]).collect();
    assert_eq!(
        events,
        [StreamEvent::OtherSet {
            set_id: "999".into(),
            control_number: "0001".into(),
            segment_index: 4
        }]
    );
}

/// Yields `head`, then `block` `n` times, then `tail`, without holding the whole input.
struct Repeat {
    parts: Vec<Vec<u8>>,
    n: usize,
    state: usize,
    pos: usize,
    done_blocks: usize,
}

impl Read for Repeat {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let part = match self.state {
                0 => &self.parts[0],
                1 if self.done_blocks < self.n => &self.parts[1],
                1 => {
                    self.state = 2;
                    continue;
                }
                2 => &self.parts[2],
                _ => return Ok(0),
            };
            if self.pos == part.len() {
                self.pos = 0;
                match self.state {
                    1 => self.done_blocks += 1,
                    s => self.state = s + 1,
                }
                continue;
            }
            let k = (part.len() - self.pos).min(buf.len());
            buf[..k].copy_from_slice(&part[self.pos..self.pos + k]);
            self.pos += k;
            return Ok(k);
        }
    }
}

#[test]
fn one_huge_set_streams_claim_by_claim() {
    // Small enough for a debug test run; the 1 GB RSS figure comes from examples/stream_835.
    let n = 5_000usize;
    let head = b"ISA*00*          *00*          *ZZ*S              *ZZ*R              *240101*1200*^*00501*000000001*0*P*:~\nGS*HP*S*R*20240101*1200*1*X*005010X221A1~\nST*835*0001~\nBPR*I*400000.00*C*CHK************20240101~\nN1*PR*PAYER~\nN1*PE*CLINIC*XX*1234567893~\nLX*1~\n".to_vec();
    let block =
        b"CLP*PCN*1*100.00*80.00*20.00*12*X~\nSVC*HC:99213*100.00*80.00**1~\nCAS*PR*2*20.00~\n"
            .to_vec();
    let segments = 2 + 4 + 3 * n;
    let tail = format!("SE*{segments}*0001~\nGE*1*1~\nIEA*1*000000001~\n").into_bytes();
    let input = Repeat {
        parts: vec![head, block, tail],
        n,
        state: 0,
        pos: 0,
        done_blocks: 0,
    };
    let mut stream = Era835Stream::new(input);
    let mut claims = 0usize;
    let mut max_buffered = 0usize;
    let mut end = None;
    while let Some(event) = stream.next() {
        max_buffered = max_buffered.max(stream.buffered());
        match event {
            StreamEvent::Claim { imbalances, .. } => {
                assert!(imbalances.is_empty());
                claims += 1;
            }
            StreamEvent::SetEnd {
                remittance,
                imbalance,
                problems,
            } => end = Some((remittance, imbalance, problems)),
            _ => {}
        }
    }
    assert_eq!(claims, n);
    let (r, imbalance, problems) = end.unwrap();
    // Claims were handed out, not kept: the set's model holds none of them.
    assert!(r.claims.is_empty());
    assert_eq!(r.claim_count, n);
    assert_eq!(r.claims_paid_total, Decimal::new(40_000_000, 2));
    assert!(imbalance.is_none(), "{imbalance:?}");
    assert!(problems.is_empty(), "{problems:?}");
    assert!(stream.take_problems().is_empty());
    assert!(
        max_buffered <= 2 * medbill_x12::stream::CHUNK_SIZE,
        "{max_buffered}"
    );
}

#[test]
fn junk_segments_leave_a_bounded_problem_list() {
    // 20,000 junk segments inside one 835 set: each is a problem for the
    // splitter (bad id), the envelope (counted in SE01) and the 835 reader
    // (misplaced). Only the first MAX_PROBLEMS of each list are kept.
    const ISA: &str = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*P*:~";
    let junk = "zz*1*2~\n".repeat(20_000);
    let input = format!(
        "{ISA}\nGS*HP*A*B*20240101*1200*9*X*005010X221A1~\nST*835*0001~\n{junk}SE*20002*0001~\nGE*1*9~\nIEA*1*000000001~\n"
    );
    let mut stream = Era835Stream::new(input.as_bytes());
    let mut reader_problems = Vec::new();
    for event in stream.by_ref() {
        if let StreamEvent::SetEnd { problems, .. } = event {
            reader_problems.extend(problems);
        }
    }
    let splitting_and_envelope = stream.take_problems();
    for list in [&reader_problems, &splitting_and_envelope] {
        assert!(list.len() <= 2 * (MAX_PROBLEMS + 1), "{}", list.len());
        let omitted: usize = list
            .iter()
            .filter_map(|p| match p.kind {
                ErrorKind::ProblemsOmitted { count, .. } => Some(count),
                _ => None,
            })
            .sum();
        assert!(omitted > 0, "the omission is reported");
        assert!(
            list.len() + omitted >= 20_000,
            "every junk segment is listed or counted: {} + {omitted}",
            list.len()
        );
    }
}

/// Collects what [`for_each_claim_835`] lends out: each claim's debug text,
/// which names every field.
#[derive(Default)]
struct Collect {
    claims: Vec<String>,
    /// (payer name at claim time) for each claim, to check the header lent with it.
    payers: Vec<String>,
    sets: Vec<(usize, Decimal, usize, usize)>,
}

impl<'a> Era835Visitor<'a> for Collect {
    fn claim(&mut self, header: &Remittance<'a>, claim: &ClaimPayment<'a>) {
        self.claims.push(format!("{claim:?}"));
        self.payers.push(header.payer.name.to_string());
    }

    fn set(&mut self, remittance: Remittance<'a>, problems: Vec<medbill_x12::Error>) {
        assert!(remittance.claims.is_empty(), "claims went to the visitor");
        self.sets.push((
            remittance.claim_count,
            remittance.claims_paid_total,
            remittance.provider_adjustments.len(),
            problems.len(),
        ));
    }
}

fn check_visitor_matches_whole_sets(input: &[u8]) -> usize {
    let (sets, _) = read_all_835(input);
    let mut got = Collect::default();
    for_each_claim_835(input, &mut got);
    let want: Vec<_> = sets
        .iter()
        .flat_map(|r| r.claims.iter().map(|c| format!("{c:?}")))
        .collect();
    assert_eq!(got.claims.len(), want.len());
    for (i, (g, w)) in got.claims.iter().zip(&want).enumerate() {
        assert_eq!(
            g, w,
            "claim {i}: a reused buffer must not carry anything over"
        );
    }
    let want_payers: Vec<_> = sets
        .iter()
        .flat_map(|r| r.claims.iter().map(|_| r.payer.name.to_string()))
        .collect();
    assert_eq!(got.payers, want_payers);
    let want_sets: Vec<_> = sets
        .iter()
        .map(|r| {
            (
                r.claims.len(),
                r.claims_paid_total,
                r.provider_adjustments.len(),
            )
        })
        .collect();
    let got_sets: Vec<_> = got.sets.iter().map(|s| (s.0, s.1, s.2)).collect();
    assert_eq!(got_sets, want_sets);
    want.len()
}

#[test]
fn claim_visitor_lends_the_same_claims_as_the_whole_set_reader() {
    // The fixtures mix inpatient (MIA) and outpatient (MOA) claims, reversals,
    // and claims with and without service lines, so a buffer reused from a
    // richer claim would show in the comparison.
    assert!(check_visitor_matches_whole_sets(&all_835_input()) > 10);
    let generated = medbill_x12::bench_data::generate_835(400_000, 7);
    assert!(check_visitor_matches_whole_sets(&generated) > 500);
}

/// The one-pass reader reads ordinary claim and service segments through a
/// fast path; the tree reader sends every segment through the general one.
/// Both must build the same remittances, positions and problems included.
fn check_one_pass_matches_tree(input: &[u8]) -> usize {
    let (sets, problems) = read_all_835(input);
    let doc = Document::parse(input);
    let mut tree_problems = doc.problems.clone();
    let tree: Vec<_> = doc
        .sets()
        .filter(|(_, _, set)| set.segments[0].bytes(1) == b"835")
        .map(|(_, _, set)| {
            let (r, p) = read_835(set);
            tree_problems.extend(p);
            r
        })
        .collect();
    assert_eq!(sets.len(), tree.len());
    for (i, (one_pass, from_tree)) in sets.iter().zip(&tree).enumerate() {
        assert_eq!(one_pass, from_tree, "set {i}");
    }
    tree_problems.sort_by_key(|p| {
        (
            p.position.segment_index,
            p.position.element.is_none(),
            p.position.element,
        )
    });
    assert_eq!(problems, tree_problems);
    sets.iter().map(|s| s.claims.len()).sum()
}

#[test]
fn one_pass_reader_builds_what_the_tree_reader_builds() {
    assert!(check_one_pass_matches_tree(&all_835_input()) > 10);
    let generated = medbill_x12::bench_data::generate_835(400_000, 11);
    assert!(check_one_pass_matches_tree(&generated) > 500);
    // A claim-loop segment the fast path must leave to the general reader
    // (a bad amount, a missing element, a misplaced LQ) reads the same too.
    let mut broken = generated.clone();
    for (from, to) in [
        (&b"CAS*CO*45*"[..], &b"CAS*CO*45*X"[..]),
        (b"DTM*472*2024", b"DTM*472*2O24"),
        (b"AMT*B6*", b"AMT**"),
        (b"~\nSVC*HC:", b"~\nLQ*HE*M1~\nSVC*HC>"),
        // Procedure composites: seven parts, eight, empty ones, and one past
        // the 16 bytes the fast path compares at once.
        (
            b"~\nSVC*HC:",
            b"~\nSVC*HC:1:2:3:4:5:6*1*1~\nSVC*HC:1:2:3:4:5:6:7*1*1~\nSVC*HC:1::3::5:*1*1~\nSVC*HC:99213:25::AB:CD:OFFICE VISIT:X*1*1~\nSVC*HC:",
        ),
    ] {
        let at = broken
            .windows(from.len())
            .position(|w| w == from)
            .expect("pattern in generated data");
        broken.splice(at..at + from.len(), to.iter().copied());
    }
    let (_, problems) = read_all_835(&broken);
    assert!(problems.len() >= 4, "{problems:?}");
    check_one_pass_matches_tree(&broken);
    // Multi-byte UTF-8 text in the elements the fast path cuts without a
    // char-boundary check: names, references, CAS reasons and procedure
    // parts read the same as through the general reader.
    let mut accented = String::from_utf8(generated).expect("generated data is ASCII");
    for (from, to) in [
        ("NM1*QC*1*", "NM1*QC*1*ŁÓDŹ-MÜLLER*"),
        ("REF*6R*", "REF*6R*€ü"),
        ("CAS*CO*45*", "CAS*CO*4é*"),
        ("~\nSVC*HC:", "~\nSVC*HC:é€:"),
    ] {
        assert!(accented.contains(from), "{from}");
        accented = accented.replacen(from, to, 3);
    }
    let claims = check_one_pass_matches_tree(accented.as_bytes());
    let mut names = CountNames(0);
    for_each_claim_835(accented.as_bytes(), &mut names);
    assert!(
        claims > 500 && names.0 == 3,
        "{claims} claims, {} names",
        names.0
    );
    // A Latin-1 byte (not UTF-8) in one name: the split pass leaves that
    // segment to the general reader (which makes its text with a replacement
    // character), and both readers agree.
    let mut latin1 = accented.into_bytes();
    let at = latin1
        .windows(9)
        .position(|w| w == b"NM1*QC*1*")
        .expect("a patient name");
    latin1.insert(at + 9, 0xC9);
    assert!(std::str::from_utf8(&latin1).is_err());
    assert!(check_one_pass_matches_tree(&latin1) > 500);
}

/// Counts the lent claims' names with the accented last name above.
struct CountNames(usize);

impl<'a> Era835Visitor<'a> for CountNames {
    fn claim(&mut self, _: &Remittance<'a>, claim: &ClaimPayment<'a>) {
        self.0 += claim
            .names
            .iter()
            .filter(|n| n.last.as_deref() == Some("ŁÓDŹ-MÜLLER"))
            .count();
    }
}

/// Everything a claim visitor is given, in order, as text (`Debug` shows a
/// text's content, not whether it is borrowed or owned).
#[derive(Default)]
struct Record(Vec<String>);

impl<'a> Era835Visitor<'a> for Record {
    fn claim(&mut self, header: &Remittance<'a>, claim: &ClaimPayment<'a>) {
        self.0
            .push(format!("claim {claim:?}\nwith header {header:?}"));
    }

    fn set(&mut self, remittance: Remittance<'a>, problems: Vec<medbill_x12::Error>) {
        self.0.push(format!("set {remittance:?}\n{problems:?}"));
    }
}

/// Reads `input` in memory and through windows of `window` bytes fed by
/// reads of at most `step` bytes, and checks both lend the same claims and
/// sets and return the same problems. Returns how many things were lent.
fn check_windows_read_as_memory(input: &[u8], window: usize, step: usize) -> usize {
    let mut want = Record::default();
    let want_problems = for_each_claim_835(input, &mut want);
    let mut got = Record::default();
    let reader = Trickle {
        data: input,
        step,
        n: 0,
    };
    let got_problems = for_each_claim_835_read_windowed(reader, window, &mut got);
    assert_eq!(got.0.len(), want.0.len(), "window {window}, step {step}");
    for (i, (g, w)) in got.0.iter().zip(&want.0).enumerate() {
        assert_eq!(g, w, "window {window}, step {step}: item {i}");
    }
    assert_eq!(got_problems, want_problems, "window {window}, step {step}");
    want.0.len()
}

#[test]
fn windowed_reader_lends_what_the_in_memory_reader_lends() {
    // Window ends fall inside ISAs, headers, claims, lines and composites;
    // the state carried across them must leave nothing out or over.
    let fixtures = all_835_input();
    for (window, step) in [
        (1, 1),
        (7, 3),
        (64, 64),
        (100, 7),
        (1000, 333),
        (4096, 4096),
    ] {
        assert!(check_windows_read_as_memory(&fixtures, window, step) > 10);
    }
    let generated = medbill_x12::bench_data::generate_835(300_000, 5);
    for (window, step) in [(97, 50), (5000, 1 << 20), (1 << 20, 1 << 20)] {
        assert!(check_windows_read_as_memory(&generated, window, step) > 500);
    }
    // Problems (bad amounts, missing elements, a misplaced LQ, junk, a
    // segment id that is not one) keep their positions across window ends.
    let mut broken = String::from_utf8(generated).expect("ASCII");
    for (from, to) in [
        ("CAS*CO*45*", "CAS*CO*45*X"),
        ("AMT*B6*", "AMT**"),
        ("~\nSVC*HC:", "~\nLQ*HE*M1~\n1BAD*X~\nSVC*HC>"),
        ("~\nCLP*", "~\n\u{e9}\u{e9}*1~\nCLP*"),
    ] {
        broken = broken.replacen(from, to, 5);
    }
    let broken = broken.into_bytes();
    let (_, problems) = read_all_835(&broken);
    assert!(problems.len() >= 15, "{problems:?}");
    for (window, step) in [(13, 5), (700, 1000), (65_536, 10_000)] {
        check_windows_read_as_memory(&broken, window, step);
    }
}

#[test]
fn windowed_reader_over_a_file_holds_one_window() {
    // The public entry reads a `File` in 1 MiB windows; a 3 MB input spans
    // several, and what it lends matches the in-memory reader's.
    let input = medbill_x12::bench_data::generate_835(3_000_000, 9);
    let path = std::env::temp_dir().join(format!("medbill-windowed-{}.835", std::process::id()));
    std::fs::write(&path, &input).expect("temp file");
    let mut want = Record::default();
    let want_problems = for_each_claim_835(&input, &mut want);
    let mut got = Record::default();
    let file = std::fs::File::open(&path).expect("temp file");
    let got_problems = for_each_claim_835_read(file, &mut got);
    std::fs::remove_file(&path).ok();
    assert!(want_problems.is_empty(), "{want_problems:?}");
    assert_eq!(got_problems, want_problems);
    assert!(want.0.len() > 5000);
    assert!(got.0 == want.0, "the windowed reader lent something else");
    // A claim kept past the visit owns its text.
    struct Keep(Vec<ClaimPayment<'static>>);
    impl<'a> Era835Visitor<'a> for Keep {
        fn claim(&mut self, _: &Remittance<'a>, claim: &ClaimPayment<'a>) {
            if self.0.len() < 3 {
                self.0.push(claim.clone().relife());
            }
        }
    }
    let mut kept = Keep(Vec::new());
    for_each_claim_835_read(&input[..], &mut kept);
    let (sets, _) = read_all_835(&input);
    let first: Vec<ClaimPayment<'static>> = sets[0].claims[..3]
        .iter()
        .map(|c| c.clone().relife())
        .collect();
    assert_eq!(kept.0, first);
    assert!(first[0].patient_control_number.len() > 3);
}

#[test]
fn windowed_reader_reports_a_read_error_where_it_happened() {
    // Half a file, then an I/O error: the claims read so far are lent, and
    // the error is a problem at the offset the input stopped.
    struct Failing<'a>(&'a [u8]);
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("disk on fire"));
            }
            let k = self.0.len().min(buf.len());
            buf[..k].copy_from_slice(&self.0[..k]);
            self.0 = &self.0[k..];
            Ok(k)
        }
    }
    let input = medbill_x12::bench_data::generate_835(200_000, 3);
    let half = &input[..input.len() / 2];
    let mut got = Record::default();
    let problems = for_each_claim_835_read_windowed(Failing(half), 4096, &mut got);
    let io = problems
        .iter()
        .find(|p| matches!(&p.kind, ErrorKind::Io(m) if m.contains("disk on fire")))
        .expect("the read error is reported");
    assert_eq!(io.position.offset, half.len());
    assert!(got.0.len() > 100);
}

#[test]
fn windowed_validate_finds_what_validate_finds() {
    use medbill_x12::inspect::{validate, validate_read, validate_read_windowed};
    // Every kind of set the validator reads: 835s (read claim by claim) and
    // 837, 271, 270, 276, 277, 277CA and 999 sets (held until their SE, and
    // copied out of a window that ends inside them).
    let mut input = all_835_input();
    input.extend(joined(&[
        "lfh-x12/demo.example1.837",
        "lfh-x12/institutional-claim.837i",
        "lfh-x12/subscriber-health-benefit-check.271",
        "lfh-x12/subscriber-health-benefit-check-error.271",
        "lfh-x12/subscriber-health-benefit-check.270",
        "lfh-x12/claim-level-status.276",
        "lfh-x12/claim-level-status.277",
        "imsweb-x12-parser/x12_277CA_rejected.txt",
        "imsweb-x12-parser/x12_999_rejected.txt",
        "imsweb-x12-parser/x12_many_claims.txt",
        "imsweb-x12-parser/x12_multiple_isa.txt",
    ]));
    let want = validate(&input);
    assert!(want.len() >= 3, "{want:?}");
    for window in [1, 9, 100, 1000, 8192] {
        let reader = Trickle {
            data: &input,
            step: 777,
            n: 0,
        };
        assert_eq!(
            validate_read_windowed(reader, window),
            want,
            "window {window}"
        );
    }
    assert_eq!(validate_read(&input[..]), want);
    // Broken: junk, bad amounts in 835 and 837 claims (the 837 problems come
    // from sets held, and copied at window ends), a truncated end.
    let mut broken = String::from_utf8_lossy(&input).into_owned();
    broken = broken
        .replacen("CLP*", "CLP*X*", 2)
        .replacen("~N1*", "~1BAD*Q~N1*", 3)
        .replace("CLM*26463774*100.00*", "CLM*26463774*1X0*")
        .replace("CLM*A37YH667*500*", "CLM*A37YH667*5O0*");
    broken.truncate(broken.len() - 40);
    let want = validate(broken.as_bytes());
    assert!(
        want.iter()
            .filter(|p| p.position.segment_id == "CLM")
            .count()
            >= 2,
        "{want:?}"
    );
    for window in [3, 500] {
        assert_eq!(
            validate_read_windowed(broken.as_bytes(), window),
            want,
            "window {window}"
        );
    }
}
