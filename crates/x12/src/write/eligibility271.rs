//! The 271 (005010X279A1) writer: what a payer (payer-sim) answers to a 270.
//!
//! It writes the model the 271 reader returns ([`EligibilityResponse`]), so a written 271 reads
//! back equal through [`crate::transactions::eligibility271::read_271`] (the reader's code-list
//! descriptions aside, which it derives from the codes). Rejections are written in the loop their
//! [`RejectionLevel`] names, so they read back in loop order: source, receiver, subscriber,
//! dependent, benefit.

use chrono::{NaiveDate, NaiveTime};

use super::claim837::{n3n4, nm1, write_dtp};
use super::format::{amount, d8, decimal, invalid, person_elements};
use super::{Element, Envelope, Separators, WriteError, X12Writer, validate as v};
use crate::model::PartyName;
use crate::model::eligibility::{
    Benefit, EligibilityPerson, EligibilityResponse, Rejection, RejectionLevel,
};
use crate::seg;

/// GS08 / ST03 of the 271.
pub const VERSION: &str = "005010X279A1";

/// A 271 to write: the response and the BHT04/BHT05 creation date and time.
///
/// BHT03 is the response's `reference`, the 270's BHT03 echoed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibilityAnswer {
    /// BHT04.
    pub created_date: NaiveDate,
    /// BHT05, written as HHMM.
    pub created_time: NaiveTime,
    /// Everything else.
    pub response: EligibilityResponse,
}

/// Writes one 271 transaction set (ST..SE) with ST02 `control` into the writer's open group.
///
/// HL 20 (payer, NM1*PR with PI), HL 21 (provider, NM1*1P with XX when the id is an NPI, else
/// SV) when a provider or a subscriber is present, HL 22 (subscriber) and HL 23 (dependent). The
/// benefits (EB loops with their DTP, benefit-level AAA, MSG and LS/NM1/LE) go to the dependent
/// when there is one, else to the subscriber.
pub fn write_271(w: &mut X12Writer, a: &EligibilityAnswer, control: u32) -> Result<(), WriteError> {
    let r = &a.response;
    check(r)?;
    w.begin_set("271", control, VERSION)?;
    seg!(
        w,
        "BHT",
        "0022",
        "11",
        r.reference.as_deref(),
        d8(a.created_date),
        a.created_time.format("%H%M").to_string()
    )?;
    let has_receiver =
        r.provider_name.is_some() || r.provider_id.is_some() || r.subscriber.is_some();
    let source = w.hl(None, "20", Some(has_receiver))?;
    nm1(
        w,
        "PR",
        &PartyName::organization(r.payer_name.clone().unwrap_or_default()),
        "PI",
        r.payer_id.as_deref().unwrap_or_default(),
    )?;
    write_rejections(w, r, RejectionLevel::Source)?;
    if !has_receiver {
        return w.end_set();
    }
    let receiver = w.hl(Some(source), "21", Some(r.subscriber.is_some()))?;
    let provider_id = r.provider_id.as_deref().unwrap_or_default();
    let qualifier = if v::is_valid_npi(provider_id) {
        "XX"
    } else {
        "SV"
    };
    nm1(
        w,
        "1P",
        &PartyName::organization(r.provider_name.clone().unwrap_or_default()),
        qualifier,
        provider_id,
    )?;
    write_rejections(w, r, RejectionLevel::Receiver)?;
    let Some(subscriber) = &r.subscriber else {
        return w.end_set();
    };
    let sub_hl = w.hl(Some(receiver), "22", Some(r.dependent.is_some()))?;
    write_person(w, "IL", subscriber, r, RejectionLevel::Subscriber)?;
    match &r.dependent {
        None => write_benefits(w, r)?,
        Some(dependent) => {
            w.hl(Some(sub_hl), "23", Some(false))?;
            write_person(w, "03", dependent, r, RejectionLevel::Dependent)?;
            write_benefits(w, r)?;
        }
    }
    w.end_set()
}

/// Writes a 271 interchange holding one response (GS01 `HB`).
pub fn eligibility_response_interchange(
    separators: Separators,
    envelope: &Envelope,
    answer: &EligibilityAnswer,
) -> Result<String, WriteError> {
    super::write_interchange(separators, envelope, "HB", VERSION, answer, write_271)
}

/// Writes loop 2000C/D (TRN) and 2100C/D (NM1, REF, N3/N4, AAA, DMG, DTP) of one person.
fn write_person(
    w: &mut X12Writer,
    entity: &str,
    p: &EligibilityPerson,
    r: &EligibilityResponse,
    level: RejectionLevel,
) -> Result<(), WriteError> {
    for t in &p.traces {
        seg!(w, "TRN", &t.kind, &t.number, &t.originator)?;
    }
    let [a, b, c, d, e] = person_elements(&p.name);
    let qualifier = if p.member_id.is_some() { "MI" } else { "" };
    w.segment(
        "NM1",
        &[
            Element::from(entity),
            a,
            b,
            c,
            d,
            e,
            (&p.name.suffix).into(),
            qualifier.into(),
            (&p.member_id).into(),
        ],
    )?;
    for (qualifier, value) in &p.references {
        seg!(w, "REF", qualifier, value)?;
    }
    if let Some(address) = &p.address {
        n3n4(w, address)?;
    }
    write_rejections(w, r, level)?;
    if p.birth_date.is_some() || p.gender.is_some() {
        let format = p.birth_date.map(|_| "D8");
        seg!(w, "DMG", format, p.birth_date.map(d8), &p.gender)?;
    }
    for (qualifier, range) in &p.dates {
        write_dtp(w, qualifier, range)?;
    }
    Ok(())
}

/// Writes the EB loops; benefit-level rejections go into the last one (after its dates).
fn write_benefits(w: &mut X12Writer, r: &EligibilityResponse) -> Result<(), WriteError> {
    let last = r.benefits.len().saturating_sub(1);
    for (i, b) in r.benefits.iter().enumerate() {
        write_eb(w, b)?;
        for (qualifier, range) in &b.dates {
            write_dtp(w, qualifier, range)?;
        }
        if i == last {
            write_rejections(w, r, RejectionLevel::Benefit)?;
        }
        for m in &b.messages {
            seg!(w, "MSG", m)?;
        }
        if !b.related_entities.is_empty() {
            seg!(w, "LS", "2120")?;
            for (entity, name, id) in &b.related_entities {
                let qualifier = match id.as_deref() {
                    None => "",
                    Some(id) if v::is_valid_npi(id) => "XX",
                    Some(_) => "PI",
                };
                seg!(w, "NM1", entity, "2", name, "", "", "", "", qualifier, id)?;
            }
            seg!(w, "LE", "2120")?;
        }
    }
    Ok(())
}

fn write_eb(w: &mut X12Writer, b: &Benefit) -> Result<(), WriteError> {
    let ctx = "benefit";
    let procedure = match &b.procedure {
        // EB13 is a composite (HC:99213); the reader returns it joined by the component separator.
        Some(p) => Element::Composite(
            p.split(w.separators().component)
                .map(str::to_owned)
                .collect(),
        ),
        None => Element::from(""),
    };
    let in_network = match b.in_network {
        Some(true) => "Y",
        Some(false) => "N",
        None => "",
    };
    w.segment(
        "EB",
        &[
            (&b.info).into(),
            (&b.coverage_level).into(),
            Element::Repeated(b.service_types.clone()),
            (&b.insurance_type).into(),
            (&b.plan_description).into(),
            (&b.time_period).into(),
            b.amount
                .map(|x| amount(ctx, "amount", x))
                .transpose()?
                .into(),
            b.percent.map(decimal).into(),
            (&b.quantity_qualifier).into(),
            b.quantity.map(decimal).into(),
            (&b.authorization_required).into(),
            in_network.into(),
            procedure,
        ],
    )
}

fn write_rejections(
    w: &mut X12Writer,
    r: &EligibilityResponse,
    level: RejectionLevel,
) -> Result<(), WriteError> {
    for x in r.rejections.iter().filter(|x| x.level == level) {
        seg!(
            w,
            "AAA",
            if x.valid_request { "Y" } else { "N" },
            "",
            &x.reason,
            &x.follow_up
        )?;
    }
    Ok(())
}

fn check(r: &EligibilityResponse) -> Result<(), WriteError> {
    let ctx = "response";
    v::required(ctx, "reference", r.reference.as_deref().unwrap_or(""), 50)?;
    v::required(ctx, "payer_name", r.payer_name.as_deref().unwrap_or(""), 60)?;
    v::required(ctx, "payer_id", r.payer_id.as_deref().unwrap_or(""), 80)?;
    if r.subscriber.is_some() || r.provider_name.is_some() || r.provider_id.is_some() {
        v::required(
            ctx,
            "provider_name",
            r.provider_name.as_deref().unwrap_or(""),
            60,
        )?;
        v::required(
            ctx,
            "provider_id",
            r.provider_id.as_deref().unwrap_or(""),
            80,
        )?;
    }
    if r.dependent.is_some() && r.subscriber.is_none() {
        return Err(invalid(ctx, "dependent", "needs a subscriber"));
    }
    if !r.benefits.is_empty() && r.subscriber.is_none() {
        return Err(invalid(ctx, "benefits", "need a subscriber"));
    }
    if let Some(s) = &r.subscriber {
        check_person(ctx, "subscriber", s)?;
    }
    if let Some(d) = &r.dependent {
        check_person(ctx, "dependent", d)?;
    }
    for b in &r.benefits {
        check_benefit(b)?;
    }
    for x in &r.rejections {
        check_rejection(r, x)?;
    }
    Ok(())
}

fn check_person(ctx: &str, field: &'static str, p: &EligibilityPerson) -> Result<(), WriteError> {
    // NM103 may be empty: a payer echoes a 270 that named nobody when it rejects it (AAA 73).
    let n = &p.name;
    let lengths = [
        (n.last.as_str(), 60),
        (n.first.as_deref().unwrap_or(""), 35),
        (n.middle.as_deref().unwrap_or(""), 25),
        (n.suffix.as_deref().unwrap_or(""), 10),
    ];
    if lengths.iter().any(|(s, max)| s.chars().count() > *max) {
        return Err(invalid(ctx, field, "name part is too long"));
    }
    if [&n.first, &n.middle, &n.suffix, &p.member_id]
        .iter()
        .any(|o| o.as_deref().is_some_and(str::is_empty))
    {
        return Err(invalid(
            ctx,
            field,
            "optional parts must be None, not empty",
        ));
    }
    v::optional(ctx, field, &p.member_id, 80)?;
    if let Some(g) = &p.gender {
        v::gender(ctx, field, g)?;
    }
    for t in &p.traces {
        v::code(ctx, field, &t.kind, &["1", "2"])?;
        v::required(ctx, field, &t.number, 50)?;
        if let Some(o) = &t.originator
            && o.len() != 10
        {
            return Err(invalid(
                ctx,
                field,
                "trace originator must be 10 characters",
            ));
        }
    }
    for (qualifier, value) in &p.references {
        v::required(ctx, field, qualifier, 3)?;
        v::required(ctx, field, value, 50)?;
    }
    for (qualifier, _) in &p.dates {
        v::required(ctx, field, qualifier, 3)?;
    }
    if let Some(a) = &p.address {
        v::address(ctx, a)?;
    }
    Ok(())
}

fn check_benefit(b: &Benefit) -> Result<(), WriteError> {
    let ctx = "benefit";
    v::required(ctx, "info", &b.info, 2)?;
    if b.service_types.len() > 99 || b.service_types.iter().any(|s| s.is_empty() || s.len() > 2) {
        return Err(invalid(
            ctx,
            "service_types",
            "must hold up to 99 codes of 1 or 2 characters",
        ));
    }
    for (field, value, max) in [
        ("coverage_level", &b.coverage_level, 3),
        ("insurance_type", &b.insurance_type, 3),
        ("plan_description", &b.plan_description, 50),
        ("time_period", &b.time_period, 2),
        ("quantity_qualifier", &b.quantity_qualifier, 2),
        ("procedure", &b.procedure, 48),
    ] {
        v::optional(ctx, field, value, max)?;
    }
    if let Some(a) = &b.authorization_required {
        v::code(ctx, "authorization_required", a, &["Y", "N", "U"])?;
    }
    if let Some(p) = b.percent
        && (p.is_sign_negative() || p > rust_decimal::Decimal::ONE)
    {
        return Err(invalid(
            ctx,
            "percent",
            "must be a fraction from 0 to 1 (0.2 = 20%)",
        ));
    }
    for (qualifier, _) in &b.dates {
        v::required(ctx, "dates", qualifier, 3)?;
    }
    for m in &b.messages {
        v::required(ctx, "messages", m, 264)?;
    }
    for (entity, name, id) in &b.related_entities {
        v::required(ctx, "related_entities", entity, 3)?;
        v::required(ctx, "related_entities", name, 60)?;
        v::optional(ctx, "related_entities", id, 80)?;
    }
    Ok(())
}

fn check_rejection(r: &EligibilityResponse, x: &Rejection) -> Result<(), WriteError> {
    let ctx = "rejection";
    if x.reason.len() != 2 || !x.reason.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid(ctx, "reason", "must be a 2-character AAA03 code"));
    }
    if let Some(f) = &x.follow_up
        && (f.len() != 1 || !f.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(invalid(ctx, "follow_up", "must be a 1-letter AAA04 code"));
    }
    let placed = match x.level {
        RejectionLevel::Source => true,
        RejectionLevel::Receiver => {
            r.subscriber.is_some() || r.provider_name.is_some() || r.provider_id.is_some()
        }
        RejectionLevel::Subscriber => r.subscriber.is_some(),
        RejectionLevel::Dependent => r.dependent.is_some(),
        RejectionLevel::Benefit => !r.benefits.is_empty(),
    };
    if !placed {
        return Err(invalid(
            ctx,
            "level",
            "names a loop the response does not have",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveTime};
    use medbill_codesets::{CodeList, short_description};
    use rust_decimal::Decimal;

    use super::*;
    use crate::Document;
    use crate::model::eligibility::Trace;
    use crate::model::{Address, DateRange, PersonName};
    use crate::transactions::eligibility271::read_271;
    use crate::write::{GroupHeader, InterchangeHeader};

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn envelope() -> Envelope {
        let interchange = InterchangeHeader::test_default(42);
        let group = GroupHeader::new("PAYER", "PROVIDER", interchange.date, interchange.time, 7);
        Envelope {
            interchange,
            group,
            set_control_number: 1,
        }
    }

    fn eb(info: &str, level: &str, types: &[&str], period: Option<&str>) -> Benefit {
        Benefit {
            info: info.into(),
            info_description: short_description(CodeList::EligibilityBenefit, info)
                .map(str::to_owned),
            coverage_level: Some(level.into()),
            service_types: types.iter().map(|s| (*s).to_owned()).collect(),
            time_period: period.map(str::to_owned),
            in_network: Some(true),
            ..Benefit::default()
        }
    }

    fn rejection(level: RejectionLevel, reason: &str, follow_up: &str) -> Rejection {
        Rejection {
            level,
            valid_request: false,
            reason: reason.into(),
            follow_up: Some(follow_up.into()),
            description: short_description(CodeList::AaaReject, reason).map(str::to_owned),
        }
    }

    /// An active subscriber with every kind of benefit the reader models.
    fn active() -> EligibilityAnswer {
        let mut active = eb("1", "IND", &["30", "98"], None);
        active.insurance_type = Some("PR".into());
        active.plan_description = Some("SIM PPO GOLD".into());
        active.in_network = None;
        active
            .dates
            .push(("346".into(), DateRange::day(date(2026, 1, 1))));
        let mut deductible = eb("C", "IND", &["30"], Some("29"));
        deductible.amount = Some(dec("1250.5"));
        let mut coinsurance = eb("A", "IND", &["30"], None);
        coinsurance.percent = Some(dec("0.2"));
        coinsurance.in_network = Some(false);
        let mut copay = eb("B", "IND", &["98", "UC"], Some("27"));
        copay.amount = Some(dec("25"));
        copay.messages.push("COPAY APPLIES PER VISIT".into());
        copay.procedure = Some("HC:99213".into());
        copay.quantity_qualifier = Some("VS".into());
        copay.quantity = Some(dec("20"));
        copay.authorization_required = Some("N".into());
        copay.related_entities.push((
            "P3".into(),
            "SUNRISE FAMILY MEDICINE".into(),
            Some("1234567893".into()),
        ));
        copay.dates.push((
            "292".into(),
            DateRange {
                from: date(2026, 1, 1),
                to: Some(date(2026, 12, 31)),
            },
        ));
        EligibilityAnswer {
            created_date: date(2026, 3, 2),
            created_time: NaiveTime::from_hms_opt(10, 20, 0).unwrap(),
            response: EligibilityResponse {
                reference: Some("ELIG0001".into()),
                payer_name: Some("SIMULATED PPO HEALTH".into()),
                payer_id: Some("SIMPPO".into()),
                provider_name: Some("SUNRISE FAMILY MEDICINE".into()),
                provider_id: Some("1234567893".into()),
                subscriber: Some(EligibilityPerson {
                    name: PersonName::new("TESTPATIENT", "AVERY"),
                    member_id: Some("SPX100000001".into()),
                    address: Some(Address {
                        line1: "1 MAIN ST".into(),
                        line2: Some("APT 2".into()),
                        city: "SPRINGFIELD".into(),
                        state: "IL".into(),
                        postal_code: "62701".into(),
                    }),
                    birth_date: Some(date(1985, 3, 14)),
                    gender: Some("F".into()),
                    traces: vec![Trace {
                        kind: "2".into(),
                        number: "TRACE-0001".into(),
                        originator: Some("1123456789".into()),
                    }],
                    references: vec![("6P".into(), "GRP1001".into())],
                    dates: vec![("291".into(), DateRange::day(date(2026, 3, 2)))],
                }),
                dependent: None,
                benefits: vec![active, deductible, coinsurance, copay],
                rejections: vec![rejection(RejectionLevel::Benefit, "53", "C")],
            },
        }
    }

    fn round_trip(answer: &EligibilityAnswer, sep: Separators) -> EligibilityResponse {
        let text = eligibility_response_interchange(sep, &envelope(), answer).unwrap();
        let doc = Document::parse(text.as_bytes());
        assert!(doc.problems.is_empty(), "{:?}\n{text}", doc.problems);
        let (_, group, set) = doc.sets().next().unwrap();
        assert_eq!(group.gs.as_ref().unwrap().text(1), "HB");
        assert_eq!(group.gs.as_ref().unwrap().text(8), VERSION);
        let back = read_271(set);
        assert!(back.problems.is_empty(), "{:?}", back.problems);
        back.value
    }

    fn separators() -> [Separators; 3] {
        [
            Separators::default(),
            Separators::unusual(),
            Separators {
                newline: true,
                ..Separators::default()
            },
        ]
    }

    #[test]
    fn active_subscriber_reads_back_equal() {
        let answer = active();
        for sep in separators() {
            assert_eq!(round_trip(&answer, sep), answer.response);
        }
        let summary = round_trip(&answer, Separators::default()).summary();
        assert_eq!(summary.active, Some(true));
        assert_eq!(summary.plan.as_deref(), Some("SIM PPO GOLD"));
        assert_eq!(summary.deductible_remaining, Some(dec("1250.50")));
        assert_eq!(summary.copays.get("UC"), Some(&dec("25")));
    }

    #[test]
    fn rejected_and_dependent_answers_read_back_equal() {
        // Subscriber not found: no benefits, AAA in 2100C.
        let mut not_found = active();
        not_found.response.benefits.clear();
        not_found.response.rejections = vec![rejection(RejectionLevel::Subscriber, "75", "C")];
        // Payer unable to respond: only the source loop.
        let mut down = active();
        down.response.provider_name = None;
        down.response.provider_id = None;
        down.response.subscriber = None;
        down.response.benefits.clear();
        let mut r42 = rejection(RejectionLevel::Source, "42", "R");
        r42.valid_request = true;
        down.response.rejections = vec![r42];
        // A dependent with its own benefits and rejections at every person level.
        let mut dependent = active();
        dependent.response.dependent = Some(EligibilityPerson {
            name: PersonName::new("TESTPATIENT", "TIMMY"),
            birth_date: Some(date(2015, 8, 1)),
            ..EligibilityPerson::default()
        });
        dependent.response.rejections = vec![
            rejection(RejectionLevel::Receiver, "43", "C"),
            rejection(RejectionLevel::Subscriber, "72", "C"),
            rejection(RejectionLevel::Dependent, "67", "C"),
            rejection(RejectionLevel::Benefit, "53", "C"),
        ];
        for answer in [not_found, down, dependent] {
            for sep in separators() {
                assert_eq!(round_trip(&answer, sep), answer.response);
            }
        }
    }

    #[test]
    fn segments_follow_the_guide() {
        let mut answer = active();
        answer.response.benefits.truncate(2);
        answer.response.subscriber.as_mut().unwrap().address = None;
        answer.response.rejections.clear();
        let text =
            eligibility_response_interchange(Separators::default(), &envelope(), &answer).unwrap();
        let body: Vec<&str> = text.split('~').filter(|s| !s.is_empty()).collect();
        let from_st: Vec<&str> = body[2..body.len() - 2].to_vec();
        assert_eq!(
            from_st,
            [
                "ST*271*0001*005010X279A1",
                "BHT*0022*11*ELIG0001*20260302*1020",
                "HL*1**20*1",
                "NM1*PR*2*SIMULATED PPO HEALTH*****PI*SIMPPO",
                "HL*2*1*21*1",
                "NM1*1P*2*SUNRISE FAMILY MEDICINE*****XX*1234567893",
                "HL*3*2*22*0",
                "TRN*2*TRACE-0001*1123456789",
                "NM1*IL*1*TESTPATIENT*AVERY****MI*SPX100000001",
                "REF*6P*GRP1001",
                "DMG*D8*19850314*F",
                "DTP*291*D8*20260302",
                "EB*1*IND*30^98*PR*SIM PPO GOLD",
                "DTP*346*D8*20260101",
                "EB*C*IND*30***29*1250.5*****Y",
                "SE*16*0001",
            ]
        );
    }

    #[test]
    fn invalid_models_are_refused() {
        let mut no_reference = active();
        no_reference.response.reference = None;
        let mut bad_percent = active();
        bad_percent.response.benefits[2].percent = Some(dec("20"));
        let mut cents = active();
        cents.response.benefits[1].amount = Some(dec("1.005"));
        let mut orphan = active();
        orphan.response.rejections = vec![rejection(RejectionLevel::Dependent, "67", "C")];
        let mut no_subscriber = active();
        no_subscriber.response.subscriber = None;
        for (answer, field) in [
            (no_reference, "reference"),
            (bad_percent, "percent"),
            (cents, "amount"),
            (orphan, "level"),
            (no_subscriber, "benefits"),
        ] {
            let err = eligibility_response_interchange(Separators::default(), &envelope(), &answer)
                .unwrap_err();
            assert!(
                matches!(&err, WriteError::Invalid { field: f, .. } if *f == field),
                "{field}: {err}"
            );
        }
    }
}
