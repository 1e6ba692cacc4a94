//! Checks generated 270s (and 276s and 278s) against the X12 5010 segment and element tables in `data/x12/`
//! (restated from pyx12's maps; pyx12 itself has no 5010 270 map, so `x12valid` cannot check it).
//!
//! What the tables cover: the 835, 837P, 837I, 999 and 277 guides. A data element's type and
//! length do not depend on the transaction, so every 270 segment those guides also use (ISA, GS,
//! ST, BHT, HL, NM1, TRN, DMG, DTP, SE, GE, IEA) is checked element by element for:
//! - the segment id and element position exist in the tables;
//! - type (AN/ID text, N0 digits, R decimal, DT date, TM time) and min/max length;
//! - elements required (R) in every context the tables list are present (except BHT06, which a
//!   270 request with BHT02 = 13 leaves out);
//! - code values, where the tables give the same code list in every context (e.g. ISA01, ISA14,
//!   ISA15, GS07); context-dependent lists (HL03, NM101...) are not checkable from them.
//!
//! Not covered by the tables: EQ (270 only). It is checked here against the 270 rules instead:
//! EQ01 repeats 1-2 character service type codes that exist in medbill-codesets' service type list.
//! HL03 and NM101 are checked against the 270 hierarchy (20 PR, 21 1P, 22 IL, 23 03).
//! The 278's own segments (UM, HCR, HSD, MSG) are checked against the 005010X217 codes listed in
//! `RULES_278`; pyx12 has 278 maps for 004010X094 only.

use std::collections::{BTreeMap, BTreeSet};

use medbill_x12::write::{self, Envelope, Separators, samples};

const SEGMENTS: &str = include_str!("../data/x12/x12_5010_segments.csv");
const ELEMENTS: &str = include_str!("../data/x12/x12_5010_elements.csv");

/// Splits one CSV line, honouring double-quoted fields.
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn rows(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header = csv_fields(lines.next().unwrap());
    lines
        .map(|l| header.iter().cloned().zip(csv_fields(l)).collect())
        .collect()
}

#[derive(Debug, Default)]
struct ElementRule {
    types: BTreeSet<String>,
    min: usize,
    max: usize,
    /// Code lists seen in contexts where the element is used (usage R or S).
    code_lists: BTreeSet<String>,
    /// Whether some used context lists no codes (so codes cannot be checked).
    any_open: bool,
    required_everywhere: bool,
}

struct Tables {
    segments: BTreeSet<String>,
    elements: BTreeMap<String, ElementRule>,
}

fn tables() -> Tables {
    let segments = rows(SEGMENTS)
        .into_iter()
        .map(|r| r["segment"].clone())
        .collect();
    let mut elements: BTreeMap<String, ElementRule> = BTreeMap::new();
    for r in rows(ELEMENTS) {
        let e = elements
            .entry(r["element"].clone())
            .or_insert_with(|| ElementRule {
                min: usize::MAX,
                required_everywhere: true,
                ..ElementRule::default()
            });
        e.types.insert(r["type"].clone());
        if let (Ok(min), Ok(max)) = (r["min_len"].parse::<usize>(), r["max_len"].parse::<usize>()) {
            e.min = e.min.min(min);
            e.max = e.max.max(max);
        }
        let usage = r["usage"].as_str();
        e.required_everywhere &= usage == "R";
        if usage != "N" {
            let codes = r["valid_codes"].trim();
            if codes.is_empty() || codes.starts_with("external:") {
                e.any_open = true;
            } else {
                e.code_lists.insert(codes.to_owned());
            }
        }
    }
    Tables { segments, elements }
}

fn type_ok(t: &str, v: &str) -> bool {
    match t {
        "AN" | "ID" => v.chars().all(|c| !c.is_control()),
        "N0" => v
            .strip_prefix('-')
            .unwrap_or(v)
            .bytes()
            .all(|b| b.is_ascii_digit()),
        "R" => {
            let d = v.strip_prefix('-').unwrap_or(v);
            d.bytes().filter(|&b| b == b'.').count() <= 1
                && d.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        }
        "DT" => match v.len() {
            8 => chrono::NaiveDate::parse_from_str(v, "%Y%m%d").is_ok(),
            6 => chrono::NaiveDate::parse_from_str(v, "%y%m%d").is_ok(),
            _ => false,
        },
        "TM" => {
            v.len() >= 4
                && v.bytes().all(|b| b.is_ascii_digit())
                && chrono::NaiveTime::parse_from_str(&v[..4], "%H%M").is_ok()
        }
        _ => true,
    }
}

fn length_of(t: &str, v: &str) -> usize {
    // R and N0 lengths count digits only (sign and decimal point excluded).
    if matches!(t, "R" | "N0") {
        v.bytes().filter(u8::is_ascii_digit).count()
    } else {
        v.chars().count()
    }
}

/// Returns every problem found in `text` (written with `sep`).
/// HL03 level codes of the 270 and the NM101 each level's name must carry.
const LEVELS_270: &[(&str, &str)] = &[("20", "PR"), ("21", "1P"), ("22", "IL"), ("23", "03")];
/// The same for the 276.
const LEVELS_276: &[(&str, &str)] = &[
    ("20", "PR"),
    ("21", "41"),
    ("19", "1P"),
    ("22", "IL"),
    ("23", "QC"),
];

/// The same for the 278 (the EV level names its servicing facility; SS names nobody here).
const LEVELS_278: &[(&str, &str)] = &[
    ("20", "X3"),
    ("21", "1P"),
    ("22", "IL"),
    ("EV", "FA"),
    ("SS", "-"),
];

/// 278-only segments, checked against the 005010X217 rules here: (segment, element, allowed).
const RULES_278: &[(&str, usize, &[&str])] = &[
    ("UM", 1, &["AR", "HS", "SC"]),
    ("UM", 2, &["1", "2", "3", "4", "I", "R", "S"]),
    ("UM", 6, &["", "03", "E", "U"]),
    ("HCR", 1, &["A1", "A2", "A3", "A4", "A6", "C", "CT", "NA"]),
    ("HSD", 1, &["DY", "FL", "HS", "MN", "VS"]),
];

/// Elements the tables' claim guides require that the 278 leaves out: SV102 and SV203 (the
/// charge is situational in a 278) and DMG03 (gender).
const OPTIONAL_IN_278: &[&str] = &["SV102", "SV203", "DMG03"];

fn check_270(text: &str, sep: Separators) -> Vec<String> {
    check(text, sep, LEVELS_270)
}

/// Returns every problem found in `text` (written with `sep`), with `levels` the allowed
/// (HL03, NM101) pairs.
fn check(text: &str, sep: Separators, levels: &[(&str, &str)]) -> Vec<String> {
    let t = tables();
    let mut problems = Vec::new();
    let mut level = String::new();
    let segs: Vec<&str> = text
        .split(sep.segment)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for (i, seg) in segs.iter().enumerate() {
        let els: Vec<&str> = seg.split(sep.element).collect();
        let id = els[0];
        let at = |msg: String| format!("segment {} ({id}): {msg}", i + 1);
        if let Some(rules) = Some(RULES_278.iter().filter(|(seg, _, _)| *seg == id))
            && levels == LEVELS_278
            && matches!(id, "UM" | "HCR" | "HSD" | "MSG")
        {
            for (_, n, allowed) in rules {
                let v = els.get(*n).copied().unwrap_or("");
                if !allowed.contains(&v) {
                    problems.push(at(format!("{id}{n:02} {v:?} is not one of {allowed:?}")));
                }
            }
            if id == "MSG" && els.get(1).is_none_or(|v| v.is_empty() || v.len() > 264) {
                problems.push(at("MSG01 must hold 1 to 264 characters".into()));
            }
            continue;
        }
        match id {
            "EQ" => {
                if els.len() != 2 {
                    problems.push(at("EQ must carry only EQ01 here".into()));
                }
                for code in els.get(1).unwrap_or(&"").split(sep.repetition) {
                    let known =
                        medbill_codesets::lookup(medbill_codesets::CodeList::ServiceType, code)
                            .is_some();
                    if code.is_empty() || code.len() > 2 || !known {
                        problems.push(at(format!(
                            "EQ01 service type {code:?} is not a known 1-2 character code"
                        )));
                    }
                }
                continue;
            }
            "HL" => {
                level = els.get(3).copied().unwrap_or("").to_owned();
                if !levels.iter().any(|(l, _)| *l == level) {
                    problems.push(at(format!(
                        "HL03 {level:?} is not a level of this transaction"
                    )));
                }
            }
            "NM1" => {
                let want = levels
                    .iter()
                    .find(|(l, _)| *l == level)
                    .map_or("?", |(_, n)| *n);
                if els.get(1) != Some(&want) {
                    problems.push(at(format!("NM101 must be {want} under HL {level}")));
                }
            }
            _ => {}
        }
        if !t.segments.contains(id) {
            problems.push(at("segment id is not in the tables".into()));
            continue;
        }
        let mut values: Vec<(String, &str)> = Vec::new();
        for (n, v) in els.iter().enumerate().skip(1) {
            let name = format!("{id}{n:02}");
            // A composite is checked component by component (HI01-01, SV101-02...).
            let composite = t.elements.contains_key(&format!("{name}-01"));
            if composite && (v.contains(sep.component) || !t.elements.contains_key(&name)) {
                for (k, c) in v.split(sep.component).enumerate() {
                    values.push((format!("{name}-{:02}", k + 1), c));
                }
            } else {
                values.push((name, v));
            }
        }
        for (name, v) in values {
            let n: usize = name[id.len()..id.len() + 2].parse().unwrap_or(0);
            let Some(rule) = t.elements.get(&name) else {
                problems.push(at(format!("{name} is not in the tables")));
                continue;
            };
            if v.is_empty() {
                continue;
            }
            if id == "ISA" && n == 11 {
                continue; // ISA11 carries the repetition separator itself.
            }
            for ty in &rule.types {
                if !type_ok(ty, v) {
                    problems.push(at(format!("{name} {v:?} is not of type {ty}")));
                }
                let len = length_of(ty, v);
                if len < rule.min || len > rule.max {
                    problems.push(at(format!(
                        "{name} length {len} is outside {}..={}",
                        rule.min, rule.max
                    )));
                }
            }
            if !rule.any_open && rule.code_lists.len() == 1 {
                let list = rule.code_lists.iter().next().unwrap();
                if !list.split(' ').any(|c| c == v) {
                    problems.push(at(format!("{name} {v:?} is not one of {list}")));
                }
            }
        }
        for (name, rule) in t.elements.range(format!("{id}01")..=format!("{id}99")) {
            let Ok(n) = name[id.len()..].parse::<usize>() else {
                continue;
            };
            // BHT06 is required by the guides in the tables, but the 270 uses it only with
            // BHT02 = 01 (cancellation, BHT06 = RT); a request (BHT02 = 13) leaves it out.
            if name == "BHT06" || (levels == LEVELS_278 && OPTIONAL_IN_278.contains(&name.as_str()))
            {
                continue;
            }
            if rule.required_everywhere && els.get(n).is_none_or(|v| v.is_empty()) {
                problems.push(at(format!("required {name} is missing")));
            }
        }
    }
    problems
}

#[test]
fn generated_270s_match_the_tables() {
    let with_dependent = samples::eligibility_inquiry();
    let mut subscriber_only = with_dependent.clone();
    subscriber_only.dependent = None;
    subscriber_only.service_types = vec!["30".into(), "98".into(), "UC".into(), "86".into()];
    for sep in [Separators::default(), Separators::unusual()] {
        for q in [&with_dependent, &subscriber_only] {
            let text =
                write::eligibility_interchange(sep, &Envelope::test_default(7, 7, 7), q).unwrap();
            let problems = check_270(&text, sep);
            assert!(problems.is_empty(), "{}\n{text}", problems.join("\n"));
        }
    }
}

#[test]
fn generated_276_matches_the_tables() {
    // pyx12 has no 005010X212 request (276) map either; the 277 tables share its data elements.
    let q = samples::claim_status_inquiry();
    let mut with_dependent = q.clone();
    with_dependent.dependent = Some(medbill_x12::model::claim_status::StatusDependent {
        name: medbill_x12::model::PersonName::new("DOE", "TIMMY"),
        birth_date: chrono::NaiveDate::from_ymd_opt(2015, 8, 1).unwrap(),
        gender: Some("M".into()),
    });
    for model in [&q, &with_dependent] {
        let sep = Separators::default();
        let text =
            write::claim_status_interchange(sep, &Envelope::test_default(7, 7, 7), model).unwrap();
        let problems = check(&text, sep, LEVELS_276);
        assert!(problems.is_empty(), "{}\n{text}", problems.join("\n"));
        // The same check flags a bad amount and a wrong level in it.
        let bad = text
            .replacen("AMT*T3*185.5~", "AMT*T3*18X~", 1)
            .replacen("*19*1~", "*18*1~", 1);
        let problems = check(&bad, sep, LEVELS_276);
        assert!(problems.iter().any(|p| p.contains("AMT02")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("HL03")), "{problems:?}");
    }
}

#[test]
fn generated_278s_match_the_tables() {
    // pyx12 has maps for the 004010X094 278 only, none for 005010X217.
    let request = samples::review_request();
    let response = samples::review_response();
    let mut inquiry = samples::review_request();
    inquiry.kind = medbill_x12::model::review::ReviewKind::Inquiry;
    inquiry.event.as_mut().unwrap().reference = Some("REV-4411".into());
    for sep in [Separators::default(), Separators::unusual()] {
        for r in [&request, &response, &inquiry] {
            let text = write::review_interchange(sep, &Envelope::test_default(7, 7, 7), r).unwrap();
            let problems = check(&text, sep, LEVELS_278);
            assert!(problems.is_empty(), "{}\n{text}", problems.join("\n"));
        }
    }
    let sep = Separators::default();
    let good = write::review_interchange(sep, &Envelope::test_default(7, 7, 7), &response).unwrap();
    for (from, to, expect) in [
        ("HCR*A2*", "HCR*A9*", "HCR01"),
        ("UM*HS*I*2*", "UM*XX*I*2*", "UM01"),
        ("HSD*FL*8~", "HSD*ZZ*8~", "HSD01"),
        ("SV1*HC:27447**UN*1~", "SV1*HC:27447**UN*X~", "SV104"),
    ] {
        assert!(good.contains(from), "{from} not in\n{good}");
        let problems = check(&good.replacen(from, to, 1), sep, LEVELS_278);
        assert!(
            problems.iter().any(|p| p.contains(expect)),
            "{expect}: {problems:?}"
        );
    }
}

#[test]
fn the_check_catches_bad_270s() {
    let sep = Separators::default();
    let good = write::eligibility_interchange(
        sep,
        &Envelope::test_default(7, 7, 7),
        &samples::eligibility_inquiry(),
    )
    .unwrap();
    for (from, to, expect) in [
        ("EQ*30^98~", "EQ*30^ZZZ~", "EQ01"),
        ("*F~", "*X~", "DMG03"),
        ("BHT*0022*13*", "BHT*0022*13**", "BHT"),
        (
            "TRN*1*TRACE-0001*1123456789~",
            "TRN*1*TRACE-0001*112345678~",
            "TRN03 length",
        ),
        ("HL*3*2*22*1~", "HL*3*2*24*1~", "HL03"),
        (
            "DTP*291*D8*20260302~",
            "DTP*291*D8*20260302*X~",
            "DTP04 is not in the tables",
        ),
    ] {
        assert!(good.contains(from), "{from} not in\n{good}");
        let bad = good.replacen(from, to, 1);
        let problems = check_270(&bad, sep);
        assert!(
            problems.iter().any(|p| p.contains(expect)),
            "{expect} not reported for {to}: {problems:?}"
        );
    }
}
