//! The 278 (services review) writer and reader: request, inquiry and response round trips with
//! every separator set, the segments as a payer expects them, AAA at each level, and the
//! writer's refusals.
//!
//! No licensed public 005010X217 sample was found (the fixtures in `/work/shared/samples/x12`
//! and the public repositories they come from hold none), so the reader is tested on our own
//! writer's output and on hand-written responses below.

use medbill_x12::Document;
use medbill_x12::model::review::{ReviewKind, ReviewLevel, ReviewRejection, ServicesReview};
use medbill_x12::transactions::review278::read_278;
use medbill_x12::write::{self, Envelope, Separators, WriteError, samples};
use rust_decimal::Decimal;

fn all_separators() -> [Separators; 3] {
    [
        Separators::default(),
        Separators::unusual(),
        Separators {
            newline: true,
            ..Separators::default()
        },
    ]
}

fn write(r: &ServicesReview, sep: Separators) -> String {
    write::review_interchange(sep, &Envelope::test_default(7, 7, 7), r).expect("writes")
}

fn read(text: &str) -> ServicesReview {
    let doc = Document::parse(text.as_bytes());
    assert!(doc.problems.is_empty(), "envelope: {:?}", doc.problems);
    let (_, _, set) = doc.sets().next().expect("a set");
    let parsed = read_278(set);
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    parsed.value
}

#[test]
fn request_response_and_inquiry_round_trip() {
    let request = samples::review_request();
    let response = samples::review_response();
    let mut inquiry = samples::review_request();
    inquiry.kind = ReviewKind::Inquiry;
    if let Some(ev) = inquiry.event.as_mut() {
        ev.reference = Some("REV-4411".into());
    }
    let mut rejected = samples::review_response();
    rejected.event = None;
    rejected.rejections = vec![ReviewRejection {
        level: ReviewLevel::Subscriber,
        service: None,
        valid_request: false,
        reason: "75".into(),
        follow_up: Some("C".into()),
        description: Some("Subscriber/Insured Not Found".into()),
    }];
    let mut service_aaa = samples::review_response();
    service_aaa.rejections = vec![ReviewRejection {
        level: ReviewLevel::Service,
        service: Some(1),
        valid_request: true,
        reason: "33".into(),
        follow_up: Some("C".into()),
        description: None,
    }];
    for sep in all_separators() {
        for model in [&request, &response, &inquiry, &rejected, &service_aaa] {
            let text = write(model, sep);
            let mut back = read(&text);
            // The reader adds the code list's meaning; compare the codes.
            for (a, b) in back.rejections.iter_mut().zip(&model.rejections) {
                assert!(a.description.is_some() || a.reason == "33", "{a:?}");
                a.description.clone_from(&b.description);
            }
            assert_eq!(&back, model, "{text}");
        }
    }
}

#[test]
fn request_segments_follow_the_guide() {
    let text = write(&samples::review_request(), Separators::default());
    for expected in [
        "GS*HI*SENDERAPP*RECEIVERAPP*",
        "ST*278*0007*005010X217~",
        "BHT*0007*13*AUTH0001*",
        "HL*1**20*1~NM1*X3*2*ACME HEALTH PLAN*****PI*ACME01~",
        "HL*2*1*21*1~NM1*1P*2*SUNRISE FAMILY MEDICINE*****XX*1234567893~",
        "HL*3*2*22*1~NM1*IL*1*DOE*JANE****MI*XJ123456789~DMG*D8*19800415~",
        "HL*4*3*EV*1~TRN*1*AUTH-TRACE-1*1123456789~UM*HS*I*2*22:B**E~",
        "DTP*AAH*RD8*20260302-20260430~HI*ABK:M1711*ABF:E119~",
        "NM1*FA*2*SUNRISE SURGERY CENTER*****XX*1245319599~",
        "HL*5*4*SS*0~UM*HS*I~DTP*472*RD8*20260302-20260430~SV1*HC:27447**UN*1~",
        "HL*6*4*SS*0~UM*HS*I~DTP*472*RD8*20260302-20260430~SV2*0420*HC:97110**UN*12~",
    ] {
        assert!(text.contains(expected), "{expected} missing in {text}");
    }
    let response = write(&samples::review_response(), Separators::default());
    for expected in [
        "BHT*0007*11*AUTH0001*",
        "TRN*2*AUTH-TRACE-1*1123456789~UM*HS*I*2*22:B**E~HCR*A2*CERT778899~REF*NT*REV-4411~",
        "DTP*007*D8*20260302~DTP*036*D8*20260430~",
        "HCR*A2*CERT778899*ZZ~DTP*472*RD8*20260302-20260430~DTP*007*D8*20260302~DTP*036*D8*20260430~SV2*0420*HC:97110**UN*12~HSD*FL*8~",
    ] {
        assert!(
            response.contains(expected),
            "{expected} missing in {response}"
        );
    }
    let mut inquiry = samples::review_request();
    inquiry.kind = ReviewKind::Inquiry;
    inquiry.event.as_mut().unwrap().reference = Some("REV-4411".into());
    let text = write(&inquiry, Separators::default());
    assert!(text.contains("ST*278*0007*005010X215~"), "{text}");
    assert!(text.contains("*X*005010X215~"), "{text}");
}

#[test]
fn reads_a_hand_written_response() {
    // A pended event with an RD8 certification period on a service, AAA at the requester and
    // the service, and units in the HSD.
    let text = "ISA*00*          *00*          *ZZ*PAYER          *ZZ*CLINIC         *261206*1200*^*00501*000000001*0*T*:~\
GS*HI*PAYER*CLINIC*20261206*1200*1*X*005010X217~\
ST*278*0001*005010X217~\
BHT*0007*11*REF1*20261206*1200~\
HL*1**20*1~NM1*X3*2*PAYER*****PI*P1~\
HL*2*1*21*1~NM1*1P*1*SMITH*ANN****XX*1234567893~AAA*Y**51*R~\
HL*3*2*22*1~NM1*IL*1*DOE*JO****MI*M1~\
HL*4*3*EV*1~TRN*2*T1*1123456789~TRN*1*PAYERTRN~UM*HS*I*73~HCR*A4~REF*NT*PEND-1~\
HL*5*4*SS*0~AAA*N**33*C~UM*HS*I~HCR*A1*AUTH9*~DTP*007*RD8*20261201-20261231~SV1*HC:70553:26**UN*2~HSD*FL*2~\
SE*23*0001~GE*1*1~IEA*1*000000001~";
    let r = read(text);
    assert_eq!(r.kind, ReviewKind::Response);
    assert_eq!(r.trace_number(), Some("T1"));
    assert_eq!(
        r.requester_name,
        medbill_x12::model::PartyName::Person(medbill_x12::model::PersonName::new("SMITH", "ANN"))
    );
    assert_eq!(r.rejections.len(), 2);
    assert_eq!(r.rejections[0].level, ReviewLevel::Requester);
    assert_eq!(r.rejections[0].reason, "51");
    assert!(r.rejections[0].valid_request);
    assert_eq!(r.rejections[1].level, ReviewLevel::Service);
    assert_eq!(r.rejections[1].service, Some(0));
    let ev = r.event.expect("event");
    assert_eq!(ev.decision.as_ref().map(|d| d.action.as_str()), Some("A4"));
    assert_eq!(ev.reference.as_deref(), Some("PEND-1"));
    let s = &ev.services[0];
    let d = s.decision.as_ref().expect("service decision");
    assert_eq!(d.authorization_number.as_deref(), Some("AUTH9"));
    let c = d.certified.expect("dates");
    assert_eq!(c.from.to_string(), "2026-12-01");
    assert_eq!(c.to.map(|t| t.to_string()).as_deref(), Some("2026-12-31"));
    assert_eq!(s.procedure.code, "70553");
    assert_eq!(s.procedure.modifiers, vec!["26".to_owned()]);
    assert_eq!(s.units, Decimal::from(2));
    assert_eq!(s.certified_units, Some(Decimal::from(2)));
}

#[test]
fn bad_values_are_reported_with_their_segment() {
    let text = "ISA*00*          *00*          *ZZ*PAYER          *ZZ*CLINIC         *261206*1200*^*00501*000000001*0*T*:~\
GS*HI*PAYER*CLINIC*20261206*1200*1*X*005010X217~\
ST*278*0001*005010X217~BHT*0007*11*REF1*20261206*1200~\
HL*1**20*1~NM1*X3*2*PAYER*****PI*P1~HL*2*1*21*1~NM1*1P*2*C*****XX*1234567893~\
HL*3*2*22*1~NM1*IL*1*DOE*JO****MI*M1~HL*4*3*EV*1~UM*HS*I*73~\
HL*5*4*SS*0~UM*HS*I~HCR*A2*X~SV1*HC:70553**UN*TWO~HSD*FL*1~\
SE*14*0001~GE*1*1~IEA*1*000000001~";
    let doc = Document::parse(text.as_bytes());
    let (_, _, set) = doc.sets().next().unwrap();
    let parsed = read_278(set);
    let problem = parsed.problems.first().expect("a problem").to_string();
    assert!(problem.contains("SV104"), "{problem}");
    assert!(problem.contains("SV1"), "{problem}");
}

#[test]
fn writer_refuses_what_a_payer_would_reject() {
    let refused = |r: &ServicesReview| -> String {
        match write::review_interchange(Separators::default(), &Envelope::test_default(1, 1, 1), r)
        {
            Err(e @ WriteError::Invalid { .. }) => e.to_string(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    let mut r = samples::review_request();
    r.requester_npi = "1234567890".into();
    assert!(refused(&r).contains("requester_npi"));

    let mut r = samples::review_request();
    r.event.as_mut().unwrap().services.clear();
    assert!(refused(&r).contains("event.services"));

    let mut r = samples::review_request();
    r.event.as_mut().unwrap().diagnoses = vec!["J44.9".into()];
    assert!(refused(&r).contains("event.diagnoses"));

    let mut r = samples::review_request();
    r.event.as_mut().unwrap().services[0].units = Decimal::ZERO;
    assert!(refused(&r).contains("services.units"));

    let mut r = samples::review_response();
    r.event
        .as_mut()
        .unwrap()
        .decision
        .as_mut()
        .unwrap()
        .authorization_number = None;
    assert!(refused(&r).contains("HCR02"));

    let mut r = samples::review_request();
    r.event.as_mut().unwrap().decision = samples::review_response().event.unwrap().decision;
    assert!(refused(&r).contains("only a response carries HCR"));

    let mut r = samples::review_request();
    r.kind = ReviewKind::Inquiry;
    assert!(refused(&r).contains("REF*NT"));
}
