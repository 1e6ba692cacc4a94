//! Answers one 270 inquiry from the catalog: the 271 model, before it is written.
//!
//! Checks run in the order a payer's front end runs them, and the first failure is the answer:
//! payer known (else AAA 79 in 2100A), provider NPI valid (else AAA 43 in 2100B), member id
//! present and in the payer's format (else AAA 72), member on file (else AAA 75), name matches
//! (else AAA 73), birth date matches when given (else AAA 71), no dependent loop (catalog members
//! are all asked as subscribers, with their own member ids; a dependent is AAA 67 in 2100D).

use chrono::NaiveDate;
use medbill_domain::Money;
use medbill_x12::model::eligibility::{
    Benefit, EligibilityInquiry, EligibilityPerson, EligibilityResponse, Rejection, RejectionLevel,
    Trace,
};
use medbill_x12::model::{DateRange, PartyName, PersonName};
use medbill_x12::write::is_valid_npi;

use crate::catalog::{Catalog, Member, Met};

/// The service type asked when EQ01 is missing: health benefit plan coverage.
pub const PLAN_COVERAGE: &str = "30";

/// Builds the 271 answer to `q`; `today` is the date of service when the 270 gives none.
pub fn answer(catalog: &Catalog, q: &EligibilityInquiry, today: NaiveDate) -> EligibilityResponse {
    let mut r = skeleton(catalog, q);
    let member = match identify(
        catalog,
        &q.payer_id,
        &q.provider_npi,
        &q.member_id,
        &q.subscriber_name,
        q.subscriber_birth_date,
    ) {
        Identified::Member(member) => member,
        Identified::Rejected(who, reason) => {
            let level = match who {
                Who::Payer => RejectionLevel::Source,
                Who::Provider => RejectionLevel::Receiver,
                Who::Subscriber => {
                    r.subscriber = Some(echo_subscriber(q));
                    RejectionLevel::Subscriber
                }
            };
            reject(&mut r, level, reason, "C");
            return r;
        }
    };
    r.subscriber = Some(echo_subscriber(q));
    if let Some(dep) = &q.dependent {
        r.dependent = Some(EligibilityPerson {
            name: dep.name.clone(),
            birth_date: Some(dep.birth_date),
            gender: dep.gender.clone(),
            ..EligibilityPerson::default()
        });
        reject(&mut r, RejectionLevel::Dependent, "67", "C");
        return r;
    }
    let date_of_service = q.service_date.map_or(today, |d| d.from);
    r.subscriber = Some(subscriber_on_file(q, member));
    r.benefits = benefits(
        member,
        catalog.met(member),
        &asked_service_types(q),
        date_of_service,
    );
    r
}

/// Who a request was refused about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The payer asked is not in the catalog.
    Payer,
    /// The provider's NPI fails its check digit.
    Provider,
    /// The member is not on file, or the name or birth date differ.
    Subscriber,
}

/// The member a request is about, or why it is refused (with the AAA03 reason).
#[derive(Debug)]
pub enum Identified<'a> {
    /// Found and matching.
    Member(&'a Member),
    /// Refused: AAA 79 (payer), 43 (provider), 72, 75, 73 or 71 (subscriber).
    Rejected(Who, &'static str),
}

/// Finds the member a 270 or 278 asks about, checking payer, provider NPI, member id format,
/// name and birth date in that order (the first failure decides).
pub fn identify<'a>(
    catalog: &'a Catalog,
    payer_id: &str,
    provider_npi: &str,
    member_id: &str,
    name: &PersonName,
    birth_date: Option<NaiveDate>,
) -> Identified<'a> {
    let Some(payer) = catalog.payer(payer_id) else {
        return Identified::Rejected(Who::Payer, "79");
    };
    if !is_valid_npi(provider_npi) {
        return Identified::Rejected(Who::Provider, "43");
    }
    if member_id.is_empty() || !payer.accepts_member_id(member_id) {
        return Identified::Rejected(Who::Subscriber, "72");
    }
    let Some(member) = payer.member(member_id) else {
        return Identified::Rejected(Who::Subscriber, "75");
    };
    if !name_matches(name, member) {
        return Identified::Rejected(Who::Subscriber, "73");
    }
    if birth_date.is_some_and(|d| d != member.entry.birth_date) {
        return Identified::Rejected(Who::Subscriber, "71");
    }
    Identified::Member(member)
}

/// Returns EQ01's service types without repeats, or 30 when none was asked.
pub fn asked_service_types(q: &EligibilityInquiry) -> Vec<String> {
    let mut asked: Vec<String> = Vec::with_capacity(q.service_types.len().max(1));
    for st in &q.service_types {
        if !asked.contains(st) {
            asked.push(st.clone());
        }
    }
    if asked.is_empty() {
        asked.push(PLAN_COVERAGE.to_owned());
    }
    asked
}

/// The parts of every answer: BHT03 echo, payer and provider.
fn skeleton(catalog: &Catalog, q: &EligibilityInquiry) -> EligibilityResponse {
    let payer_name = catalog
        .payer(&q.payer_id)
        .map(|p| p.entry.name.clone())
        .or_else(|| non_empty(&q.payer_name))
        .unwrap_or_else(|| "UNKNOWN PAYER".to_owned());
    let provider_name = match &q.provider_name {
        PartyName::Organization { name } => name.clone(),
        PartyName::Person(p) => p.last.clone(),
    };
    EligibilityResponse {
        reference: Some(non_empty(&q.header.reference).unwrap_or_else(|| "0".to_owned())),
        payer_name: Some(payer_name),
        payer_id: Some(non_empty(&q.payer_id).unwrap_or_else(|| "UNKNOWN".to_owned())),
        provider_name: Some(non_empty(&provider_name).unwrap_or_else(|| "UNKNOWN".to_owned())),
        provider_id: Some(non_empty(&q.provider_npi).unwrap_or_else(|| "UNKNOWN".to_owned())),
        ..EligibilityResponse::default()
    }
}

/// Returns the answer to a 270 the payer cannot answer now: AAA 42 in 2100A, nothing else.
pub fn unable_to_respond(catalog: &Catalog, q: &EligibilityInquiry) -> EligibilityResponse {
    let mut r = skeleton(catalog, q);
    r.provider_name = None;
    r.provider_id = None;
    r.rejections.push(Rejection {
        level: RejectionLevel::Source,
        valid_request: true,
        reason: "42".into(),
        follow_up: Some("R".into()),
        description: None,
    });
    r
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn reject(r: &mut EligibilityResponse, level: RejectionLevel, reason: &str, follow_up: &str) {
    r.rejections.push(Rejection {
        level,
        valid_request: false,
        reason: reason.to_owned(),
        follow_up: Some(follow_up.to_owned()),
        description: None,
    });
}

/// The 270's trace echoed as TRN*2 (the 271 reader's `echoed_trace`).
fn echoed_traces(q: &EligibilityInquiry) -> Vec<Trace> {
    if q.trace.number.is_empty() || q.trace.number.len() > 50 {
        return Vec::new();
    }
    vec![Trace {
        kind: "2".into(),
        number: q.trace.number.clone(),
        originator: q.trace.originator.clone().filter(|o| o.len() == 10),
    }]
}

/// The subscriber as the 270 named them (answers that reject the subscriber echo the question).
fn echo_subscriber(q: &EligibilityInquiry) -> EligibilityPerson {
    let name = &q.subscriber_name;
    EligibilityPerson {
        name: PersonName {
            last: name.last.clone(),
            first: name.first.clone().filter(|s| !s.is_empty()),
            middle: name.middle.clone().filter(|s| !s.is_empty()),
            suffix: name.suffix.clone().filter(|s| !s.is_empty()),
        },
        member_id: non_empty(&q.member_id),
        birth_date: q.subscriber_birth_date,
        gender: q
            .subscriber_gender
            .clone()
            .filter(|g| matches!(g.as_str(), "F" | "M" | "U")),
        traces: echoed_traces(q),
        ..EligibilityPerson::default()
    }
}

/// The subscriber as the payer has them on file.
fn subscriber_on_file(q: &EligibilityInquiry, member: &Member) -> EligibilityPerson {
    let m = &member.entry;
    let mut dates = vec![("346".to_owned(), DateRange::day(m.active_from))];
    if let Some(to) = member.last_covered_day() {
        dates.push(("347".to_owned(), DateRange::day(to)));
    }
    EligibilityPerson {
        name: PersonName::new(m.last_name.clone(), m.first_name.clone()),
        member_id: Some(m.member_id.clone()),
        address: None,
        birth_date: Some(m.birth_date),
        gender: m.gender.clone(),
        traces: echoed_traces(q),
        references: member
            .plan
            .entry
            .group_number
            .iter()
            .map(|g| ("6P".to_owned(), g.clone()))
            .collect(),
        dates,
    }
}

fn name_matches(asked: &PersonName, member: &Member) -> bool {
    let m = &member.entry;
    let same = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b);
    !asked.last.trim().is_empty()
        && same(&asked.last, &m.last_name)
        && asked
            .first
            .as_deref()
            .is_none_or(|f| same(f, &m.first_name))
}

fn eb(info: &str, level: Option<&str>, service_types: Vec<String>) -> Benefit {
    Benefit {
        info: info.to_owned(),
        coverage_level: level.map(str::to_owned),
        service_types,
        ..Benefit::default()
    }
}

fn remaining(total: Money, met: Money) -> Money {
    if met >= total {
        Money::ZERO
    } else {
        total - met
    }
}

/// The EB loops of a member found on file.
fn benefits(
    member: &Member,
    met: Met,
    asked: &[String],
    date_of_service: NaiveDate,
) -> Vec<Benefit> {
    let plan = &member.plan.entry;
    let mut status_types = vec![PLAN_COVERAGE.to_owned()];
    status_types.extend(asked.iter().filter(|s| *s != PLAN_COVERAGE).cloned());
    let active = member.active_on(date_of_service);
    let mut status = eb(if active { "1" } else { "6" }, Some("IND"), status_types);
    status.insurance_type = plan.insurance_type.clone();
    status.plan_description = Some(plan.name.clone());
    if !active {
        return vec![status];
    }
    let m = &member.entry;
    let tier = member.tier();
    let in_network = Some(m.network == crate::catalog::Network::In);
    let plan_level = || vec![PLAN_COVERAGE.to_owned()];
    let mut out = Vec::with_capacity(12);
    out.push(status);
    let mut accumulator = |info: &str, level: &str, total: Money, met: Money| {
        for (period, value) in [("23", total), ("29", remaining(total, met))] {
            let mut b = eb(info, Some(level), plan_level());
            b.time_period = Some(period.to_owned());
            b.amount = Some(value.as_decimal());
            b.in_network = in_network;
            out.push(b);
        }
    };
    accumulator("C", "IND", tier.deductible_individual, met.deductible);
    if let Some(family) = tier.deductible_family {
        accumulator("C", "FAM", family, met.family_deductible);
    }
    accumulator("G", "IND", tier.oop_max_individual, met.oop);
    if let Some(family) = tier.oop_max_family {
        accumulator("G", "FAM", family, met.family_oop);
    }
    let mut coinsurance = eb("A", Some("IND"), plan_level());
    coinsurance.percent = Some(tier.coinsurance.as_decimal());
    coinsurance.in_network = in_network;
    out.push(coinsurance);
    let asks_plan = asked.iter().any(|s| s == PLAN_COVERAGE);
    for (service_type, copay) in &tier.copays {
        if asks_plan || asked.contains(service_type) {
            let mut b = eb("B", Some("IND"), vec![service_type.clone()]);
            b.time_period = Some("27".to_owned());
            b.amount = Some(copay.as_decimal());
            b.in_network = in_network;
            out.push(b);
        }
    }
    let excluded: Vec<String> = plan
        .not_covered
        .iter()
        .filter(|s| asks_plan || asked.contains(s))
        .cloned()
        .collect();
    if !excluded.is_empty() {
        out.push(eb("I", None, excluded));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use chrono::NaiveTime;
    use medbill_x12::model::TransactionHeader;
    use medbill_x12::model::eligibility::Dependent;
    use rust_decimal::Decimal;

    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn inquiry(member_id: &str, last: &str, first: &str) -> EligibilityInquiry {
        EligibilityInquiry {
            header: TransactionHeader {
                reference: "REF1".into(),
                created_date: d(2026, 3, 2),
                created_time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            },
            payer_name: "WHATEVER".into(),
            payer_id: "SIMPPO".into(),
            provider_name: PartyName::organization("SUNRISE FAMILY MEDICINE"),
            provider_npi: "1234567893".into(),
            trace: Trace {
                kind: "1".into(),
                number: "T1".into(),
                originator: Some("1123456789".into()),
            },
            subscriber_name: PersonName::new(last, first),
            member_id: member_id.into(),
            subscriber_birth_date: None,
            subscriber_gender: None,
            dependent: None,
            service_date: Some(DateRange::day(d(2026, 3, 2))),
            service_types: vec!["30".into()],
        }
    }

    fn reasons(r: &EligibilityResponse) -> Vec<(RejectionLevel, &str)> {
        r.rejections
            .iter()
            .map(|x| (x.level, x.reason.as_str()))
            .collect()
    }

    fn find<'a>(r: &'a EligibilityResponse, info: &str, level: &str, period: &str) -> &'a Benefit {
        r.benefits
            .iter()
            .find(|b| {
                b.info == info
                    && b.coverage_level.as_deref() == Some(level)
                    && b.time_period.as_deref() == Some(period)
            })
            .unwrap_or_else(|| panic!("no EB*{info}*{level} period {period}"))
    }

    #[test]
    fn active_member_amounts() {
        let c = Catalog::default_catalog().unwrap();
        let r = answer(
            &c,
            &inquiry("SPX100000001", "testpatient", "Avery"),
            d(2030, 1, 1),
        );
        assert!(r.rejections.is_empty());
        assert_eq!(r.benefits[0].info, "1");
        assert_eq!(
            r.benefits[0].plan_description.as_deref(),
            Some("SIM PPO GOLD")
        );
        assert_eq!(find(&r, "C", "IND", "23").amount, Some(dec("1500")));
        assert_eq!(find(&r, "C", "IND", "29").amount, Some(dec("1250")));
        assert_eq!(find(&r, "C", "FAM", "29").amount, Some(dec("2750")));
        assert_eq!(find(&r, "G", "IND", "29").amount, Some(dec("4600")));
        assert_eq!(find(&r, "B", "IND", "27").in_network, Some(true));
        let s = r.summary();
        assert_eq!(s.coinsurance, Some(dec("0.2")));
        assert_eq!(s.copays.get("98"), Some(&dec("25")));
        assert_eq!(s.copays.len(), 4);
    }

    #[test]
    fn asked_types_limit_copays_and_join_the_status() {
        let c = Catalog::default_catalog().unwrap();
        let mut q = inquiry("HMO0000001", "PLACEHOLDER", "QUINN");
        q.payer_id = "SIMHMO".into();
        q.service_types = vec!["98".into(), "98".into(), "UC".into()];
        let r = answer(&c, &q, d(2030, 1, 1));
        assert_eq!(r.benefits[0].service_types, ["30", "98", "UC"]);
        let copays: Vec<&str> = r
            .benefits
            .iter()
            .filter(|b| b.info == "B")
            .flat_map(|b| b.service_types.iter().map(String::as_str))
            .collect();
        assert_eq!(copays, ["98", "UC"]);
        assert!(r.benefits.iter().all(|b| b.info != "I"));
    }

    #[test]
    fn remaining_never_goes_below_zero() {
        let c = Catalog::default_catalog().unwrap();
        let r = answer(
            &c,
            &inquiry("SPX100000002", "SAMPLEMAN", "JORDAN"),
            d(2030, 1, 1),
        );
        assert_eq!(find(&r, "C", "IND", "29").amount, Some(Decimal::ZERO));
        assert_eq!(find(&r, "G", "IND", "29").amount, Some(Decimal::ZERO));
    }

    #[test]
    fn rejections_in_order() {
        let c = Catalog::default_catalog().unwrap();
        let today = d(2030, 1, 1);
        let mut unknown_payer = inquiry("SPX100000001", "TESTPATIENT", "AVERY");
        unknown_payer.payer_id = "NOPE".into();
        let mut bad_npi = inquiry("SPX100000001", "TESTPATIENT", "AVERY");
        bad_npi.provider_npi = "1234567890".into();
        let mut wrong_birth = inquiry("SPX100000001", "TESTPATIENT", "AVERY");
        wrong_birth.subscriber_birth_date = Some(d(1985, 3, 15));
        let mut dependent = inquiry("SPX100000001", "TESTPATIENT", "AVERY");
        dependent.dependent = Some(Dependent {
            name: PersonName::new("TESTPATIENT", "KID"),
            birth_date: d(2015, 1, 1),
            gender: None,
        });
        let cases = [
            (unknown_payer, RejectionLevel::Source, "79"),
            (bad_npi, RejectionLevel::Receiver, "43"),
            (
                inquiry("", "TESTPATIENT", "AVERY"),
                RejectionLevel::Subscriber,
                "72",
            ),
            (
                inquiry("SPX1", "TESTPATIENT", "AVERY"),
                RejectionLevel::Subscriber,
                "72",
            ),
            (
                inquiry("SPX999999999", "TESTPATIENT", "AVERY"),
                RejectionLevel::Subscriber,
                "75",
            ),
            (
                inquiry("SPX100000001", "OTHER", "AVERY"),
                RejectionLevel::Subscriber,
                "73",
            ),
            (
                inquiry("SPX100000001", "TESTPATIENT", "BOB"),
                RejectionLevel::Subscriber,
                "73",
            ),
            (wrong_birth, RejectionLevel::Subscriber, "71"),
            (dependent, RejectionLevel::Dependent, "67"),
        ];
        for (q, level, code) in cases {
            let r = answer(&c, &q, today);
            assert_eq!(reasons(&r), [(level, code)], "{code}");
            assert!(r.benefits.is_empty(), "{code}");
        }
    }

    #[test]
    fn inactive_outside_the_coverage_dates() {
        let c = Catalog::default_catalog().unwrap();
        let mut q = inquiry("HMO0000003", "SYNTHETIC", "DREW");
        q.payer_id = "SIMHMO".into();
        q.service_date = Some(DateRange::day(d(2026, 6, 30)));
        assert_eq!(answer(&c, &q, d(2030, 1, 1)).benefits[0].info, "1");
        q.service_date = Some(DateRange::day(d(2026, 7, 1)));
        let r = answer(&c, &q, d(2030, 1, 1));
        assert_eq!(r.benefits.len(), 1);
        assert_eq!(r.benefits[0].info, "6");
        assert_eq!(r.summary().active, Some(false));
        // Without DTP*291 the date of service is today.
        q.service_date = None;
        assert_eq!(answer(&c, &q, d(2026, 1, 5)).benefits[0].info, "1");
    }

    #[test]
    fn out_of_network_member_gets_the_out_of_network_tier() {
        let c = Catalog::default_catalog().unwrap();
        let r = answer(
            &c,
            &inquiry("SPX100000003", "EXAMPLAR", "RILEY"),
            d(2030, 1, 1),
        );
        let deductible = find(&r, "C", "IND", "29");
        assert_eq!(deductible.amount, Some(dec("2400")));
        assert_eq!(deductible.in_network, Some(false));
        assert!(r.benefits.iter().all(|b| b.info != "B"));
    }

    #[test]
    fn a_retroactive_termination_shows_inactive_from_its_day_and_moved_accumulators_show() {
        let c = Catalog::default_catalog().unwrap();
        let mut q = inquiry("SPX100000008", "RETROACTIVE", "LEE");
        q.service_date = Some(DateRange::day(d(2026, 9, 30)));
        let r = answer(&c, &q, d(2030, 1, 1));
        assert_eq!(r.benefits[0].info, "1");
        let end = r
            .subscriber
            .as_ref()
            .unwrap()
            .dates
            .iter()
            .find(|x| x.0 == "347");
        assert_eq!(end.map(|x| x.1.from), Some(d(2026, 9, 30)));
        q.service_date = Some(DateRange::day(d(2026, 10, 1)));
        assert_eq!(answer(&c, &q, d(2030, 1, 1)).benefits[0].info, "6");

        // Deductible 1500 with 300 met; adjudication moves it and the 271 follows.
        q.service_date = Some(DateRange::day(d(2026, 3, 2)));
        let member = c
            .payer("SIMPPO")
            .unwrap()
            .member("SPX100000008")
            .unwrap()
            .clone();
        c.add_met(
            &member,
            Money::parse("200").unwrap(),
            Money::parse("260").unwrap(),
        );
        let r = answer(&c, &q, d(2030, 1, 1));
        assert_eq!(find(&r, "C", "IND", "29").amount, Some(dec("1000")));
        assert_eq!(find(&r, "C", "FAM", "29").amount, Some(dec("2500")));
        assert_eq!(find(&r, "G", "IND", "29").amount, Some(dec("4440")));
    }
}
