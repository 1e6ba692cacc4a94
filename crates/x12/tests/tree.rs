//! Lossless tree and envelope checks over the copied public fixtures.

use medbill_x12::{Document, ErrorKind};

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn count_segments(doc: &Document<'_>) -> usize {
    doc.segment_count()
}

#[test]
fn two_isa_envelopes_in_one_file() {
    let input = fixture("imsweb-x12-parser/x12_multiple_isa.txt");
    let doc = Document::parse(&input);
    // The upstream sample states SE01 = 25 for sets of 34 segments (both copies).
    let got: Vec<_> = doc
        .problems
        .iter()
        .map(|p| {
            (
                p.position.segment_index,
                p.position.offset,
                p.kind.to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                36,
                1176,
                r#"SE01 says "25" segments but there are 34"#.to_string()
            ),
            (
                74,
                2392,
                r#"SE01 says "25" segments but there are 34"#.to_string()
            ),
        ]
    );
    assert_eq!(doc.interchanges.len(), 2);
    for i in &doc.interchanges {
        assert!(i.isa.is_some() && i.iea.is_some());
        assert_eq!(i.groups.len(), 1);
        assert_eq!(i.groups[0].sets[0].set_id(), "837");
    }
    assert_eq!(count_segments(&doc), 76);
}

#[test]
fn ta1_between_isa_and_gs_is_kept() {
    let input = fixture("imsweb-x12-parser/x12_999_accepted_ta1.txt");
    let doc = Document::parse(&input);
    assert!(doc.problems.is_empty(), "{:?}", doc.problems);
    let i = &doc.interchanges[0];
    assert_eq!(i.ta1.len(), 1);
    assert_eq!(i.ta1[0].text(1), "101");
    assert_eq!(i.ta1[0].text(4), "A");
    let set = &i.groups[0].sets[0];
    assert_eq!(set.set_id(), "999");
    assert_eq!(set.segments.len(), 8);
    assert_eq!(count_segments(&doc), 13);
}

#[test]
fn tilde_element_separator_and_underscore_terminator() {
    let input = fixture("imsweb-x12-parser/x12_valid_different_separators.txt");
    let doc = Document::parse(&input);
    assert_eq!(doc.problems.len(), 1, "{:?}", doc.problems);
    assert!(matches!(
        doc.problems[0].kind,
        ErrorKind::CountMismatch {
            element: "SE01",
            actual: 34,
            ..
        }
    ));
    assert_eq!(doc.problems[0].position.segment_index, 36);
    let (_, group, set) = doc.sets().next().unwrap();
    assert_eq!(group.gs.unwrap().text(8), "005010X222A1");
    assert_eq!(set.control_number(), "987654");
    let sv1 = set.body().iter().find(|s| s.is("SV1")).unwrap();
    let proc = sv1.element(1).unwrap();
    assert_eq!(proc.component(2), Some(&b"99211"[..]));
    assert_eq!(proc.component(3), Some(&b"25"[..]));
    assert_eq!(set.segments.len(), 34);
}

#[test]
fn bare_st_without_envelope_warns_and_checks_count() {
    let input = fixture("edi-835-parser/blue_cross_nc_sample.txt");
    let doc = Document::parse(&input);
    assert_eq!(doc.problems.len(), 2, "{:?}", doc.problems);
    assert!(!doc.problems[0].is_error());
    assert!(matches!(
        doc.problems[0].kind,
        ErrorKind::DelimitersAssumed { component: ':', .. }
    ));
    // The upstream sample says SE*33 but holds 32 segments.
    assert!(matches!(
        doc.problems[1].kind,
        ErrorKind::CountMismatch {
            element: "SE01",
            actual: 32,
            ..
        }
    ));
    assert_eq!(
        (
            doc.problems[1].position.segment_index,
            doc.problems[1].position.offset
        ),
        (32, 692)
    );
    assert_eq!(doc.interchanges.len(), 1);
    assert!(doc.interchanges[0].isa.is_none());
    let set = &doc.interchanges[0].groups[0].sets[0];
    assert!(set.closed);
    assert_eq!(set.segments.len(), 32);
}

#[test]
fn every_fixture_reads_with_only_its_known_defects() {
    // Envelope defects present in the upstream samples themselves: (file, segment index, message).
    let known: &[(&str, usize, &str)] = &[
        (
            "blue_cross_nc_sample.txt",
            32,
            r#"SE01 says "33" segments but there are 32"#,
        ),
        (
            "x12_999_accepted.txt",
            10,
            r#"IEA02 control number "000000001" does not match ISA13 "000000286""#,
        ),
        (
            "x12_many_claims.txt",
            11488,
            r#"SE01 says "25" segments but there are 11486"#,
        ),
        (
            "x12_multiple_isa.txt",
            36,
            r#"SE01 says "25" segments but there are 34"#,
        ),
        (
            "x12_multiple_isa.txt",
            74,
            r#"SE01 says "25" segments but there are 34"#,
        ),
        (
            "x12_valid_different_separators.txt",
            36,
            r#"SE01 says "25" segments but there are 34"#,
        ),
        (
            "subscriber-health-benefit-check-error.271",
            10,
            r#"SE02 control number "4323" does not match ST02 "4321""#,
        ),
    ];
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for sub in ["lfh-x12", "imsweb-x12-parser", "edi-835-parser"] {
        for entry in std::fs::read_dir(format!("{dir}/{sub}")).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == "LICENSE-NOTICE") {
                continue;
            }
            let input = std::fs::read(&path).unwrap();
            let doc = Document::parse(&input);
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let errors: Vec<_> = doc
                .problems
                .iter()
                .filter(|p| p.is_error())
                .map(|p| (p.position.segment_index, p.kind.to_string()))
                .collect();
            let want: Vec<_> = known
                .iter()
                .filter(|k| k.0 == name)
                .map(|k| (k.1, k.2.to_string()))
                .collect();
            assert_eq!(errors, want, "{name}");
            assert!(doc.sets().count() >= 1, "{}", path.display());
            seen += 1;
        }
    }
    assert_eq!(seen, 25);
}
