//! Write-then-read round trips of the 837 loops beyond the core claim: 837P notes (NTE),
//! attachments (PWK), accident (CLM11, DTP*439), ambulance (CR1, 2310E/F) and line providers
//! (2420A..F); 837I occurrence, occurrence span and value codes, DRG and operating physicians.
//! Each test checks the parsed values and the segments written, and the writer's refusals.

use std::str::FromStr;

use chrono::NaiveDate;
use medbill_x12::Document;
use medbill_x12::model::claim::{
    Accident, Attachment, ClaimProvider, InstitutionalClaimSet, LineProvider, LineProviderRole,
    Note, Occurrence, ProfessionalClaimSet, RelatedCause,
};
use medbill_x12::model::{Address, PartyName, PersonName};
use medbill_x12::transactions::claim837;
use medbill_x12::write::{self, Envelope, Separators, samples};
use rust_decimal::Decimal;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Writes `set` with `sep`.
fn p_text(set: &ProfessionalClaimSet, sep: Separators) -> String {
    write::professional_interchange(sep, &Envelope::test_default(7, 7, 1), set).unwrap()
}

/// Reads the 837P in `text`, asserting there are no problems.
fn p_read(text: &str) -> ProfessionalClaimSet {
    let doc = Document::parse(text.as_bytes());
    assert!(doc.problems.is_empty(), "{:?}", doc.problems);
    let (_, _, ts) = doc.sets().next().unwrap();
    let back = claim837::read_837p(ts);
    assert!(back.problems.is_empty(), "{:?}", back.problems);
    back.value
}

/// Writes `set` with `sep`, reads it back without problems and returns the text and the set read.
fn p_round_trip(set: &ProfessionalClaimSet, sep: Separators) -> (String, ProfessionalClaimSet) {
    let text = p_text(set, sep);
    let back = p_read(&text);
    (text, back)
}

fn i_round_trip(set: &InstitutionalClaimSet, sep: Separators) -> (String, InstitutionalClaimSet) {
    let text =
        write::institutional_interchange(sep, &Envelope::test_default(7, 7, 1), set).unwrap();
    let doc = Document::parse(text.as_bytes());
    assert!(doc.problems.is_empty(), "{:?}", doc.problems);
    let (_, _, ts) = doc.sets().next().unwrap();
    let back = claim837::read_837i(ts);
    assert!(back.problems.is_empty(), "{:?}", back.problems);
    (text, back.value)
}

/// The writer's error for `set`, as text.
fn p_error(set: &ProfessionalClaimSet) -> String {
    write::professional_interchange(Separators::default(), &Envelope::test_default(7, 7, 1), set)
        .unwrap_err()
        .to_string()
}

fn i_error(set: &InstitutionalClaimSet) -> String {
    write::institutional_interchange(Separators::default(), &Envelope::test_default(7, 7, 1), set)
        .unwrap_err()
        .to_string()
}

#[test]
fn notes_and_attachments() {
    let set = samples::professional_set();
    for sep in [Separators::default(), Separators::unusual()] {
        let (text, back) = p_round_trip(&set, sep);
        assert_eq!(back, set);
        let c = &back.claims[0];
        assert_eq!(
            c.note,
            Some(Note {
                code: "ADD".into(),
                text: "WALK-IN VISIT AFTER HOURS".into()
            })
        );
        let pwk: Vec<(&str, &str, Option<&str>)> = c
            .attachments
            .iter()
            .map(|a| {
                (
                    a.report_type.as_str(),
                    a.transmission.as_str(),
                    a.control_number.as_deref(),
                )
            })
            .collect();
        assert_eq!(pwk, [("09", "FX", Some("PWK-0001-A")), ("OZ", "AA", None)]);
        let line_note = c.lines[0].note.as_ref().unwrap();
        assert_eq!(
            (line_note.code.as_str(), line_note.text.as_str()),
            ("DCP", "RECHECK A1C IN 3 MONTHS")
        );
        assert_eq!(
            c.lines[2].attachments,
            [Attachment {
                report_type: "RX".into(),
                transmission: "EL".into(),
                control_number: Some("PWK-0001-L3".into()),
            }]
        );
        assert!(c.lines[1].attachments.is_empty() && c.lines[1].note.is_none());
        if sep == Separators::default() {
            // PWK follows CLM and precedes AMT; NTE follows the REFs; the line NTE follows REF*6R.
            assert!(text.contains(
                "~PWK*09*FX***AC*PWK-0001-A~PWK*OZ*AA~AMT*F5*20~NTE*ADD*WALK-IN VISIT AFTER HOURS~HI*"
            ));
            assert!(text.contains("~REF*6R*L1-0001~NTE*DCP*RECHECK A1C IN 3 MONTHS~"));
            assert!(text.contains("~SV1*HC:J1100*12*UN*10***1~PWK*RX*EL***AC*PWK-0001-L3~DTP*472"));
        }
    }
}

#[test]
fn accident_causes_state_and_date() {
    let mut set = samples::professional_set();
    let (text, back) = p_round_trip(&set, Separators::default());
    let a = back.claims[3].accident.as_ref().unwrap();
    assert_eq!(a.causes, [RelatedCause::AutoAccident]);
    assert_eq!(a.state.as_deref(), Some("IL"));
    assert_eq!(a.date, Some(day(2026, 2, 18)));
    assert!(
        text.contains("CLM*PCN-2026-0004*1037.5***41:B:1*Y*A*Y*Y**AA:::IL~DTP*439*D8*20260218~")
    );
    assert!(back.claims[0].accident.is_none());

    // Employment and another accident together: no state, a date because of OA.
    set.claims[3].accident = Some(Accident {
        causes: vec![RelatedCause::Employment, RelatedCause::OtherAccident],
        state: None,
        date: Some(day(2026, 2, 17)),
    });
    let (text, back) = p_round_trip(&set, Separators::unusual());
    assert!(
        text.contains("|41>B>1|Y|A|Y|Y||EM>OA\nDTP|439|D8|20260217\n"),
        "{text}"
    );
    assert_eq!(back.claims[3].accident, set.claims[3].accident);

    // Employment alone needs no date.
    set.claims[3].accident = Some(Accident {
        causes: vec![RelatedCause::Employment],
        state: None,
        date: None,
    });
    let (text, back) = p_round_trip(&set, Separators::default());
    assert!(!text.contains("DTP*439"));
    assert_eq!(back.claims[3].accident, set.claims[3].accident);
}

#[test]
fn accident_rules_are_enforced() {
    let base = samples::professional_set();
    let with = |a: Accident| {
        let mut s = base.clone();
        s.claims[3].accident = Some(a);
        p_error(&s)
    };
    let e = with(Accident {
        causes: vec![RelatedCause::AutoAccident],
        state: None,
        date: Some(day(2026, 2, 18)),
    });
    assert!(e.contains("accident.state"), "{e}");
    let e = with(Accident {
        causes: vec![RelatedCause::OtherAccident],
        state: Some("IL".into()),
        date: Some(day(2026, 2, 18)),
    });
    assert!(e.contains("accident.state"), "{e}");
    let e = with(Accident {
        causes: vec![RelatedCause::OtherAccident],
        state: None,
        date: None,
    });
    assert!(e.contains("accident.date"), "{e}");
    let e = with(Accident {
        causes: Vec::new(),
        state: None,
        date: None,
    });
    assert!(e.contains("accident.causes"), "{e}");
    let e = with(Accident {
        causes: vec![RelatedCause::Employment, RelatedCause::Employment],
        state: None,
        date: None,
    });
    assert!(e.contains("accident.causes"), "{e}");
}

#[test]
fn ambulance_transport_and_locations() {
    let set = samples::professional_set();
    let (text, back) = p_round_trip(&set, Separators::default());
    let c = &back.claims[3];
    let t = c.ambulance_transport.as_ref().unwrap();
    assert_eq!(t.patient_weight_lb, Some(dec("182")));
    assert_eq!(t.reason, "A");
    assert_eq!(t.distance_miles, dec("12.5"));
    assert_eq!(t.round_trip_purpose, None);
    assert_eq!(
        t.stretcher_purpose.as_deref(),
        Some("PATIENT UNABLE TO SIT UPRIGHT")
    );
    let pickup = c.ambulance_pickup.as_ref().unwrap();
    assert_eq!(pickup.name, None);
    assert_eq!(
        pickup.address,
        Address {
            line1: "ROUTE 4 AND MAIN ST".into(),
            line2: None,
            city: "SPRINGFIELD".into(),
            state: "IL".into(),
            postal_code: "62703".into(),
        }
    );
    let dropoff = c.ambulance_dropoff.as_ref().unwrap();
    assert_eq!(dropoff.name.as_deref(), Some("GENERAL HOSPITAL"));
    assert_eq!(dropoff.address.postal_code, "627015000");
    assert!(back.claims[0].ambulance_transport.is_none());
    // CR1 after the PWK (no REF or NTE on this claim), before HI; 2310E then 2310F after HI.
    assert!(text.contains(
        "~PWK*AM*BM***AC*RUN-20260218-07~CR1*LB*182**A*DH*12.5****PATIENT UNABLE TO SIT UPRIGHT~HI*"
    ));
    assert!(text.contains(
        "~NM1*PW*2~N3*ROUTE 4 AND MAIN ST~N4*SPRINGFIELD*IL*62703~NM1*45*2*GENERAL HOSPITAL~N3*"
    ));

    // Without weight: CR101 and CR102 are left out together; a round trip purpose is kept.
    let mut set2 = set.clone();
    let t2 = set2.claims[3].ambulance_transport.as_mut().unwrap();
    t2.patient_weight_lb = None;
    t2.round_trip_purpose = Some("DIALYSIS AND RETURN".into());
    t2.stretcher_purpose = None;
    let (text, back) = p_round_trip(&set2, Separators::default());
    assert!(
        text.contains("~CR1****A*DH*12.5***DIALYSIS AND RETURN~"),
        "{text}"
    );
    assert_eq!(back, set2);

    // A pick-up location has no name in the TR3; the reason code is checked.
    let mut bad = set.clone();
    bad.claims[3].ambulance_pickup.as_mut().unwrap().name = Some("SCENE".into());
    assert!(p_error(&bad).contains("ambulance_pickup.name"));
    let mut bad = set.clone();
    bad.claims[3].ambulance_transport.as_mut().unwrap().reason = "Z".into();
    assert!(p_error(&bad).contains("ambulance_transport.reason"));
}

#[test]
fn line_providers() {
    let set = samples::professional_set();
    let (text, back) = p_round_trip(&set, Separators::unusual());
    let l0 = &back.claims[0].lines[0].providers;
    let roles: Vec<LineProviderRole> = l0.iter().map(|p| p.role).collect();
    assert_eq!(
        roles,
        [
            LineProviderRole::Rendering,
            LineProviderRole::Supervising,
            LineProviderRole::Referring
        ]
    );
    assert_eq!(
        l0[0].name,
        PartyName::Person(PersonName::new("NURSE", "NORA"))
    );
    assert_eq!(
        (l0[0].npi.as_deref(), l0[0].taxonomy.as_deref()),
        (Some("1333444556"), Some("363LF0000X"))
    );
    assert_eq!(l0[1].npi.as_deref(), Some("1912301953"));
    assert_eq!(
        l0[2].name,
        PartyName::Person(PersonName::new("REFERRER", "RITA"))
    );
    let l1 = &back.claims[0].lines[1].providers;
    assert_eq!(
        l1.iter().map(|p| p.role).collect::<Vec<_>>(),
        [
            LineProviderRole::PurchasedService,
            LineProviderRole::ServiceFacility,
            LineProviderRole::Ordering
        ]
    );
    assert_eq!(l1[0].name, PartyName::organization(""));
    assert_eq!(l1[0].npi.as_deref(), Some("1444555662"));
    assert_eq!(l1[1].name, PartyName::organization("PRAIRIE REFERENCE LAB"));
    assert_eq!(l1[1].address.as_ref().unwrap().postal_code, "627030009");
    assert_eq!(l1[2].address.as_ref().unwrap().line1, "300 PINE ST");
    // The claim-level rendering and referring providers are not disturbed by the line loops.
    assert_eq!(
        back.claims[0].rendering_provider.as_ref().unwrap().npi,
        "1912301953"
    );
    assert!(back.claims[0].lines[2].providers.is_empty());
    assert_eq!(back, set);
    // 2420A..F come after 2410 (LIN/CTP would sit there) and REF*6R; 2420B has no name.
    assert!(text.contains("\nREF|6R|L2-0001\nNM1|QB|2||||||XX|1444555662\nNM1|77|2|PRAIRIE"));
    assert!(
        text.contains("\nNM1|82|1|NURSE|NORA||||XX|1333444556\nPRV|PE|PXC|363LF0000X\nNM1|DQ|")
    );

    // A line facility without NPI still round-trips.
    let mut no_npi = set.clone();
    no_npi.claims[0].lines[1].providers[1].npi = None;
    let (text, back) = p_round_trip(&no_npi, Separators::default());
    assert!(text.contains("~NM1*77*2*PRAIRIE REFERENCE LAB~N3*9 LAB WAY~"));
    assert_eq!(back, no_npi);
}

#[test]
fn line_provider_rules_are_enforced() {
    let base = samples::professional_set();
    let with = |f: &dyn Fn(&mut Vec<LineProvider>)| {
        let mut s = base.clone();
        f(&mut s.claims[0].lines[0].providers);
        p_error(&s)
    };
    // Out of loop order, or a role twice.
    assert!(with(&|p| p.swap(0, 1)).contains("loop order"));
    assert!(with(&|p| p.push(p[2].clone())).contains("loop order"));
    // Only the rendering provider has a PRV.
    assert!(with(&|p| p[1].taxonomy = Some("207Q00000X".into())).contains("PRV"));
    // Supervising providers are people.
    assert!(with(&|p| p[1].name = PartyName::organization("GROUP")).contains("person"));
    // Purchased service: no name.
    let mut s = base.clone();
    s.claims[0].lines[1].providers[0].name = PartyName::organization("LAB CO");
    assert!(p_error(&s).contains("2420B"));
    // Service facility: an address with ZIP+4.
    let mut s = base.clone();
    s.claims[0].lines[1].providers[1].address = None;
    assert!(p_error(&s).contains("2420C"));
    let mut s = base.clone();
    s.claims[0].lines[1].providers[1]
        .address
        .as_mut()
        .unwrap()
        .postal_code = "62703".into();
    assert!(p_error(&s).contains("ZIP+4"));
    // A bad NPI.
    assert!(with(&|p| p[2].npi = Some("1234567890".into())).contains("NPI"));
}

#[test]
fn note_and_attachment_rules_are_enforced() {
    let base = samples::professional_set();
    let mut s = base.clone();
    s.claims[0].attachments[1].control_number = Some("CTRL1".into());
    assert!(p_error(&s).contains("AA"));
    let mut s = base.clone();
    s.claims[0].attachments[0].control_number = None;
    assert!(p_error(&s).contains("attachments.control_number"));
    let mut s = base.clone();
    s.claims[0].attachments[0].report_type = "ZZ".into();
    assert!(p_error(&s).contains("attachments.report_type"));
    let mut s = base.clone();
    s.claims[0].attachments = vec![s.claims[0].attachments[1].clone(); 11];
    assert!(p_error(&s).contains("at most 10"));
    let mut s = base.clone();
    s.claims[0].lines[0].note.as_mut().unwrap().code = "TPO".into();
    assert!(p_error(&s).contains("note.code"));
    let mut s = base.clone();
    s.claims[0].note.as_mut().unwrap().text = "X".repeat(81);
    assert!(p_error(&s).contains("note.text"));
}

#[test]
fn institutional_codes_drg_and_physicians() {
    let set = samples::institutional_set();
    let (text, back) = i_round_trip(&set, Separators::default());
    assert_eq!(back, set);
    let out = &back.claims[0];
    assert_eq!(
        out.occurrences,
        [Occurrence {
            code: "11".into(),
            date: day(2026, 2, 9)
        }]
    );
    assert_eq!(out.value_codes, [("A1".to_string(), dec("15.31"))]);
    assert!(out.drg.is_none() && out.operating_physician.is_none());
    let inp = &back.claims[1];
    assert_eq!(inp.drg.as_deref(), Some("193"));
    let spans: Vec<(&str, NaiveDate, NaiveDate)> = inp
        .occurrence_spans
        .iter()
        .map(|s| (s.code.as_str(), s.from, s.to))
        .collect();
    assert_eq!(spans, [("74", day(2026, 1, 6), day(2026, 1, 7))]);
    let occ: Vec<(&str, NaiveDate)> = inp
        .occurrences
        .iter()
        .map(|o| (o.code.as_str(), o.date))
        .collect();
    assert_eq!(occ, [("11", day(2026, 1, 3)), ("42", day(2026, 1, 8))]);
    assert_eq!(inp.value_codes, [("80".to_string(), dec("3"))]);
    assert_eq!(
        inp.operating_physician,
        Some(ClaimProvider {
            name: PartyName::Person(PersonName::new("CUTTER", "SAM")),
            npi: "1777888995".into(),
            taxonomy: None,
        })
    );
    assert_eq!(
        inp.other_operating_physician.as_ref().unwrap().npi,
        "1888999004"
    );
    // TR3 order: ABK, ABJ, DR, BBR, BBQ, BI, BH, BE; then 2310A, 2310B, 2310C.
    assert!(text.contains(
        "~HI*ABK:J189:::::::Y~HI*ABJ:R0602~HI*DR:193~HI*BBR:0BH17EZ:D8:20260105~\
         HI*BBQ:5A1955Z:D8:20260106~HI*BI:74:RD8:20260106-20260107~\
         HI*BH:11:D8:20260103*BH:42:D8:20260108~HI*BE:80:::3~NM1*71*"
    ));
    assert!(text.contains(
        "~NM1*72*1*CUTTER*SAM****XX*1777888995~NM1*ZZ*1*STITCH*ADA****XX*1888999004~LX*1~"
    ));
}

#[test]
fn institutional_codes_fill_a_second_hi() {
    let mut set = samples::institutional_set();
    let c = &mut set.claims[1];
    c.occurrences = (1..=13)
        .map(|i| Occurrence {
            code: format!("{i:02}"),
            date: day(2026, 1, i),
        })
        .collect();
    c.value_codes = (1..=24).map(|i| (format!("{i:02}"), dec("1.5"))).collect();
    let (text, back) = i_round_trip(&set, Separators::unusual());
    assert_eq!(back, set);
    // The second claim's HI segments (the first claim has one BH and one BE of its own).
    let second = &text[text.find("CLM|HOSP-0002").unwrap()..];
    let his: Vec<&str> = second
        .lines()
        .filter(|l| l.starts_with("HI|BH") || l.starts_with("HI|BE"))
        .collect();
    assert_eq!(his.len(), 4, "{his:?}");
    assert_eq!(his[1], "HI|BH>13>D8>20260113");
    // 25 value codes do not fit the two HI segments the TR3 allows.
    set.claims[1].value_codes.push(("99".into(), Decimal::ONE));
    assert!(i_error(&set).contains("value_codes"));
}

#[test]
fn operating_physician_rules_are_enforced() {
    let mut set = samples::institutional_set();
    set.claims[1].operating_physician.as_mut().unwrap().taxonomy = Some("207X00000X".into());
    assert!(i_error(&set).contains("operating_physician"));
    let mut set = samples::institutional_set();
    set.claims[1]
        .other_operating_physician
        .as_mut()
        .unwrap()
        .name = PartyName::organization("SURGERY GROUP");
    assert!(i_error(&set).contains("person"));
    let mut set = samples::institutional_set();
    set.claims[1].occurrence_spans[0].to = day(2026, 1, 1);
    assert!(i_error(&set).contains("occurrence_spans"));
}

#[test]
fn reader_keeps_other_payer_loops_apart() {
    // 2330D (NM1*82) and 2330G (NM1*85) of the COB claim name the other payer's providers:
    // they must not replace the claim's rendering provider or the next claim's billing provider.
    let set = samples::professional_set();
    let text = p_text(&set, Separators::default());
    let marker = "DTP*573*D8*20260301~LX*1~";
    assert!(text.contains(marker));
    let text = text.replacen(
        marker,
        "DTP*573*D8*20260301~NM1*82*1~REF*G2*OTHERREND~NM1*85*2~REF*G2*OTHERBILL~LX*1~",
        1,
    );
    // SE01 counts the four added segments.
    let se = text.find("~SE*").unwrap() + 4;
    let end = se + text[se..].find('*').unwrap();
    let n: u32 = text[se..end].parse().unwrap();
    let text = format!("{}{}{}", &text[..se], n + 4, &text[end..]);
    assert_eq!(p_read(&text), set);
}

#[test]
fn reader_skips_dme_pwk_and_tpo_line_notes() {
    let set = samples::professional_set();
    let text = p_text(&set, Separators::default());
    // A DME certificate PWK and a repricer note on line 2 are other segments of 2400.
    let marker = "SV1*HC:83036*35.5*UN*1***1~";
    let text = text
        .replacen(marker, &format!("{marker}PWK*CT*AD~"), 1)
        .replacen("REF*6R*L2-0001~", "REF*6R*L2-0001~NTE*TPO*REPRICED~", 1);
    let doc = Document::parse(text.as_bytes());
    let (_, _, ts) = doc.sets().next().unwrap();
    let back = claim837::read_837p(ts).value;
    assert!(back.claims[0].lines[1].attachments.is_empty());
    assert!(back.claims[0].lines[1].note.is_none());
    assert_eq!(back.claims[0].lines[1].providers.len(), 3);
}

#[test]
fn json_without_the_new_fields_still_reads() {
    // Claims stored before these loops existed have none of their keys.
    let set = samples::professional_set();
    let mut v = serde_json::to_value(&set.claims[1]).unwrap();
    let claim = v.as_object_mut().unwrap();
    for k in [
        "accident",
        "attachments",
        "note",
        "ambulance_transport",
        "ambulance_pickup",
        "ambulance_dropoff",
    ] {
        assert!(claim.remove(k).is_some(), "{k}");
    }
    for line in claim["lines"].as_array_mut().unwrap() {
        let line = line.as_object_mut().unwrap();
        for k in ["attachments", "note", "providers"] {
            assert!(line.remove(k).is_some(), "{k}");
        }
    }
    // The replacement claim uses none of the new loops, so nothing is lost.
    let back: medbill_x12::model::claim::ProfessionalClaim = serde_json::from_value(v).unwrap();
    assert_eq!(back, set.claims[1]);

    let set = samples::institutional_set();
    let mut v = serde_json::to_value(&set.claims[0]).unwrap();
    let claim = v.as_object_mut().unwrap();
    for k in [
        "drg",
        "occurrence_spans",
        "occurrences",
        "operating_physician",
        "other_operating_physician",
    ] {
        assert!(claim.remove(k).is_some(), "{k}");
    }
    let back: medbill_x12::model::claim::InstitutionalClaim = serde_json::from_value(v).unwrap();
    let mut expected = set.claims[0].clone();
    expected.occurrences.clear();
    assert_eq!(back, expected);
}

#[test]
fn line_prior_authorization_is_written_before_the_line_control_number() {
    let set = samples::professional_set();
    let text = write::professional_interchange(
        Separators::default(),
        &write::Envelope::test_default(1, 1, 1),
        &set,
    )
    .unwrap();
    assert!(text.contains("REF*G1*AUTHL2~REF*6R*L2-0001~"), "{text}");
}
