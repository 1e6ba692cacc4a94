//! Bad input: each case asserts the exact problem and its position.

use medbill_x12::inspect::validate;
use medbill_x12::{Document, Error};

fn fixture(name: &str) -> String {
    let full = format!(
        "{}/tests/fixtures/synthetic/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// (segment index, segment id, element, offset, message) of each error.
fn errors(problems: &[Error]) -> Vec<(usize, String, Option<u16>, usize, String)> {
    problems
        .iter()
        .filter(|p| p.is_error())
        .map(|p| {
            (
                p.position.segment_index,
                p.position.segment_id.clone(),
                p.position.element,
                p.position.offset,
                p.kind.to_string(),
            )
        })
        .collect()
}

fn offset_of(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("{needle} not in fixture"))
}

#[test]
fn wrong_se_count() {
    let text = fixture("newline-terminator.835").replace("SE*11*3001", "SE*12*3001");
    let at = offset_of(&text, "SE*12");
    assert_eq!(
        errors(&validate(text.as_bytes())),
        [(
            13,
            "SE".into(),
            Some(1),
            at,
            r#"SE01 says "12" segments but there are 11"#.into()
        )]
    );
}

#[test]
fn wrong_ge_and_iea_counts_and_control_numbers() {
    let text = fixture("multi-st.835")
        .replace("GE*1*102~", "GE*2*103~")
        .replace("IEA*2*000000101", "IEA*1*000000100");
    let ge = offset_of(&text, "GE*2*103");
    let iea = offset_of(&text, "IEA*1");
    let got = errors(&validate(text.as_bytes()));
    assert_eq!(
        got,
        [
            (
                48,
                "GE".into(),
                Some(1),
                ge,
                r#"GE01 says "2" transaction sets but there are 1"#.into()
            ),
            (
                48,
                "GE".into(),
                Some(2),
                ge,
                r#"GE02 control number "103" does not match GS06 "102""#.into()
            ),
            (
                49,
                "IEA".into(),
                Some(1),
                iea,
                r#"IEA01 says "1" functional groups but there are 2"#.into()
            ),
            (
                49,
                "IEA".into(),
                Some(2),
                iea,
                r#"IEA02 control number "000000100" does not match ISA13 "000000101""#.into()
            ),
        ]
    );
}

#[test]
fn st_se_control_number_mismatch() {
    let text = fixture("multi-st.835").replace("SE*13*0002", "SE*13*0009");
    let at = offset_of(&text, "SE*13*0009");
    assert_eq!(
        errors(&validate(text.as_bytes())),
        [(
            35,
            "SE".into(),
            Some(2),
            at,
            r#"SE02 control number "0009" does not match ST02 "0002""#.into()
        )]
    );
}

#[test]
fn truncated_file() {
    let full = fixture("multi-st.835");
    let cut = offset_of(&full, "CLP*PCN-B1") + 12;
    let text = &full[..cut];
    let st = offset_of(text, "ST*835*0002");
    let bpr = offset_of(text, "BPR*I*80.00");
    let clp = cut - 12;
    let got = errors(&validate(text.as_bytes()));
    let want: Vec<(usize, String, Option<u16>, usize, String)> = vec![
        (1, "ISA".into(), None, 0, r#"ISA "000000101" is not closed by IEA"#.into()),
        (2, "GS".into(), None, 107, r#"GS "101" is not closed by GE"#.into()),
        (23, "ST".into(), None, st, r#"ST "0002" is not closed by SE"#.into()),
        // The set's claims were cut off, so what is left does not balance: reported, not plugged.
        (
            24,
            "BPR".into(),
            None,
            bpr,
            "transaction does not balance: sum(CLP04) - sum(PLB) = 0 but BPR02 = 80.00 (difference 80.00)".into(),
        ),
        (29, "CLP".into(), Some(3), clp, "required element CLP03 is missing".into()),
        (29, "CLP".into(), Some(4), clp, "required element CLP04 is missing".into()),
        (29, "CLP".into(), None, clp, "segment is not terminated: the input ends inside it (truncated file?)".into()),
    ];
    assert_eq!(got, want);
}

#[test]
fn junk_bytes_between_segments() {
    let good = fixture("newline-terminator.835");
    let text = good.replacen("LX*1", "\u{1}\u{7f}JUNK\r\nLX*1", 1);
    let at = offset_of(&text, "\u{1}");
    let se = offset_of(&text, "SE*11");
    let got = errors(&validate(text.as_bytes()));
    assert_eq!(
        got,
        [
            (
                8,
                "\u{1}\u{7f}JUNK".into(),
                None,
                at,
                r#"invalid segment id "\u{1}\u{7f}JUNK" (junk bytes or wrong delimiters?)"#.into()
            ),
            (
                14,
                "SE".into(),
                Some(1),
                se,
                r#"SE01 says "11" segments but there are 12"#.into()
            ),
        ]
    );
}

#[test]
fn junk_segment_with_separator() {
    let good = fixture("multi-st.835");
    let text = good.replacen("LX*1~", "LX*1~zz*12~", 1);
    let at = offset_of(&text, "zz*12");
    let got = errors(&validate(text.as_bytes()));
    assert_eq!(
        got[0],
        (
            14,
            "zz".into(),
            None,
            at,
            r#"invalid segment id "zz" (junk bytes or wrong delimiters?)"#.into()
        )
    );
    let se = offset_of(&text, "SE*20*0001");
    assert_eq!(
        got[1],
        (
            23,
            "SE".into(),
            Some(1),
            se,
            r#"SE01 says "20" segments but there are 21"#.into()
        )
    );
    assert_eq!(got.len(), 2);
}

#[test]
fn malformed_amounts_and_dates() {
    let text = fixture("multi-st.835")
        .replace("CLP*PCN-A1*1*200.00*150.00", "CLP*PCN-A1*1*200.00*1,50.00")
        .replace("DTM*472*20240301", "DTM*472*2024-03-01")
        .replace("CAS*CO*45*20.00", "CAS*CO*45*2O.00");
    let clp = offset_of(&text, "CLP*PCN-A1");
    let got = errors(&validate(text.as_bytes()));
    let dtm = offset_of(&text, "DTM*472*2024-03-01");
    let cas = offset_of(&text, "CAS*CO*45*2O.00");
    let want: Vec<(usize, String, Option<u16>, usize, String)> = vec![
        // CLP04 could not be read, so the transaction total is off too: reported, not plugged.
        (
            4,
            "BPR".into(),
            None,
            offset_of(&text, "BPR*I*150.00"),
            "transaction does not balance: sum(CLP04) - sum(PLB) = 0 but BPR02 = 150.00 (difference 150.00)".into(),
        ),
        (14, "CLP".into(), Some(4), clp, r#"CLP04 "1,50.00" is not a decimal number"#.into()),
        (
            14,
            "CLP".into(),
            None,
            clp,
            r#"claim "PCN-A1" does not balance: CLP03 - claim and line CAS = 170.00 but CLP04 = 0 (difference -170.00)"#.into(),
        ),
        // CAS03 could not be read either, so the line does not balance.
        (
            16,
            "SVC".into(),
            None,
            offset_of(&text, "SVC*HC:99213"),
            r#"line 1 of claim "PCN-A1" does not balance: SVC02 - line CAS = 170.00 but SVC03 = 150.00 (difference -20.00)"#.into(),
        ),
        (17, "DTM".into(), Some(2), dtm, r#"DTM02 "2024-03-01" is not a date (CCYYMMDD)"#.into()),
        (18, "CAS".into(), Some(3), cas, r#"CAS03 "2O.00" is not a decimal number"#.into()),
    ];
    assert_eq!(got, want);
}

#[test]
fn imbalance_at_each_level() {
    let text = fixture("multi-st.835")
        .replace("SVC*HC:99213*200.00*150.00", "SVC*HC:99213*200.00*151.00")
        .replace("BPR*I*80.00", "BPR*I*81.00");
    let got: Vec<_> = errors(&validate(text.as_bytes()))
        .into_iter()
        .map(|e| (e.0, e.1, e.4))
        .collect();
    assert_eq!(
        got,
        [
            (
                16,
                "SVC".into(),
                r#"line 1 of claim "PCN-A1" does not balance: SVC02 - line CAS = 150.00 but SVC03 = 151.00 (difference 1.00)"#.into()
            ),
            (
                24,
                "BPR".into(),
                "transaction does not balance: sum(CLP04) - sum(PLB) = 80.00 but BPR02 = 81.00 (difference 1.00)".into()
            ),
        ]
    );
}

#[test]
fn isa_terminator_does_not_match_the_file() {
    // ISA says '~' but the segments end with newlines only: everything after the
    // ISA runs together. The reader reports it and does not panic.
    let text = fixture("newline-terminator.835")
        .replacen(":\r\n", ":~\r\n", 1)
        .replace("~\r\nGS", "~GS");
    let problems = validate(text.as_bytes());
    let got = errors(&problems);
    assert!(
        got.iter().any(|e| e.4.contains("not terminated")),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|e| e.4.contains("GS") && e.4.contains("not closed")),
        "{got:?}"
    );
}

#[test]
fn empty_and_garbage_input() {
    assert_eq!(
        errors(&validate(b"")),
        [(
            0,
            String::new(),
            None,
            0,
            "the input holds no segments".into()
        )]
    );
    assert_eq!(errors(&validate(b" \r\n\t")).len(), 1);
    let got = errors(&validate(b"\x00\x01\x02 hello"));
    assert_eq!(got.len(), 1);
    assert!(got[0].4.contains("cannot find delimiters"));
    let doc = Document::parse(b"ISA*00*short~");
    assert!(doc.has_errors());
}
