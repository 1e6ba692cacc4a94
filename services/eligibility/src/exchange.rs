//! The X12 side of an eligibility check: builds the 270 for a validated question and turns the
//! payer's 271 into the model's answer (summary, benefit rows, rejections, members), refusing
//! answers that do not parse or do not answer the question asked.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use medbill_codesets::{CodeList, short_description};
use medbill_domain::Money;
use medbill_x12::Document;
use medbill_x12::model::eligibility::{
    Benefit, Dependent, EligibilityInquiry, EligibilityPerson, EligibilityResponse, RejectionLevel,
    Trace,
};
use medbill_x12::model::{DateRange, PartyName, PersonName, TransactionHeader};
use medbill_x12::transactions::eligibility271::read_271;
use medbill_x12::write::{Separators, WriteError, eligibility_interchange};
use rust_decimal::Decimal;

use crate::model::{
    AaaRejection, Accumulator, Address, BenefitSummary, CheckStatus, CoverageStatus, MemberInfo,
    NetworkStatus, RejectionLevel as Level, ServiceTypeBenefit,
};

/// A validated eligibility question: who is asked about, by whom, for what.
#[derive(Clone)]
pub struct Question {
    /// Payer identifier (NM1*PR NM109).
    pub payer_id: String,
    /// Payer name (NM1*PR NM103).
    pub payer_name: String,
    /// Member id (NM1*IL NM109). PHI.
    pub member_id: String,
    /// Subscriber name. PHI.
    pub subscriber_name: PersonName,
    /// Subscriber birth date. PHI.
    pub subscriber_birth_date: Option<NaiveDate>,
    /// Dependent patient (name and birth date) when the patient is not the subscriber. PHI.
    pub dependent: Option<(PersonName, NaiveDate)>,
    /// Provider NPI (NM1*1P NM109).
    pub provider_npi: String,
    /// Provider organisation name (NM1*1P NM103).
    pub provider_name: String,
    /// TRN03 originator (10 characters).
    pub originator: String,
    /// Date of service (DTP*291).
    pub date_of_service: NaiveDate,
    /// Service type codes asked (EQ01), sorted and deduplicated.
    pub service_types: Vec<String>,
}

impl std::fmt::Debug for Question {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Question")
            .field("payer_id", &self.payer_id)
            .field("provider_npi", &self.provider_npi)
            .field("date_of_service", &self.date_of_service)
            .field("service_types", &self.service_types)
            .finish_non_exhaustive()
    }
}

pub use crate::payer::Parties;

/// Writes the 270 interchange for `question` with trace number `trace` and control number
/// `control` (ISA13, GS06 and ST02 derive from it).
pub fn build_270(
    question: &Question,
    trace: &str,
    parties: &Parties,
    control: u32,
    now: DateTime<Utc>,
) -> Result<String, WriteError> {
    let date = now.date_naive();
    let time = now.time();
    let inquiry = EligibilityInquiry {
        header: TransactionHeader {
            reference: trace.to_owned(),
            created_date: date,
            created_time: time,
        },
        payer_name: question.payer_name.clone(),
        payer_id: question.payer_id.clone(),
        provider_name: PartyName::organization(question.provider_name.clone()),
        provider_npi: question.provider_npi.clone(),
        trace: Trace {
            kind: "1".to_owned(),
            number: trace.to_owned(),
            originator: Some(question.originator.clone()),
        },
        subscriber_name: question.subscriber_name.clone(),
        member_id: question.member_id.clone(),
        subscriber_birth_date: question.subscriber_birth_date,
        subscriber_gender: None,
        dependent: question.dependent.as_ref().map(|(name, birth)| Dependent {
            name: name.clone(),
            birth_date: *birth,
            gender: None,
        }),
        service_date: Some(DateRange::day(question.date_of_service)),
        service_types: question.service_types.clone(),
    };
    let envelope = crate::payer::envelope(parties, control, now);
    eligibility_interchange(Separators::default(), &envelope, &inquiry)
}

/// Why a payer's answer cannot be used. Messages carry no PHI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// The payer answered with a 999: our 270 was refused as syntax.
    #[error("the payer refused the 270 with a 999 acknowledgment instead of a 271")]
    SyntaxRejected,
    /// The payload is not X12 or its envelope is broken.
    #[error("the payer's answer is not a well-formed X12 interchange: {0}")]
    Malformed(String),
    /// The interchange holds no 271.
    #[error("the payer's answer holds no 271 transaction set (found: {0})")]
    No271(String),
    /// The 271 echoes another trace number.
    #[error(
        "the 271 does not answer this inquiry: it echoes trace number {found:?}, we sent {sent:?}"
    )]
    TraceMismatch {
        /// Trace sent.
        sent: String,
        /// Trace echoed (empty when none).
        found: String,
    },
    /// The 271 is about another member.
    #[error("the 271 does not answer this inquiry: it is about a different member id")]
    MemberMismatch,
}

/// A usable 271, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Completed or rejected.
    pub status: CheckStatus,
    /// The front-desk summary.
    pub summary: BenefitSummary,
    /// Every EB row.
    pub benefits: Vec<crate::model::Benefit>,
    /// AAA rejections.
    pub rejections: Vec<AaaRejection>,
    /// Subscriber as returned.
    pub subscriber: Option<MemberInfo>,
    /// Dependent as returned.
    pub dependent: Option<MemberInfo>,
}

/// Reads the payer's 271 and checks that it answers `question` sent with trace `trace`.
pub fn read_answer(
    payload: &[u8],
    question: &Question,
    trace: &str,
) -> Result<Answer, AnswerError> {
    let doc = Document::parse(payload);
    if let Some(problem) = doc.problems.iter().find(|p| p.is_error()) {
        return Err(AnswerError::Malformed(problem.to_string()));
    }
    let mut found = BTreeSet::new();
    let mut set_271 = None;
    for (_, _, set) in doc.sets() {
        let id = set.set_id();
        if id == "271" && set_271.is_none() {
            set_271 = Some(set);
        }
        found.insert(id);
    }
    let Some(set) = set_271 else {
        if found.contains("999") {
            return Err(AnswerError::SyntaxRejected);
        }
        let list = found.into_iter().collect::<Vec<_>>().join(", ");
        return Err(AnswerError::No271(if list.is_empty() {
            "nothing".to_owned()
        } else {
            list
        }));
    };
    let parsed = read_271(set);
    if let Some(problem) = parsed.problems.iter().find(|p| p.is_error()) {
        return Err(AnswerError::Malformed(problem.to_string()));
    }
    let response = parsed.value;
    let echoed = response.echoed_trace().unwrap_or_default();
    if echoed != trace {
        return Err(AnswerError::TraceMismatch {
            sent: trace.to_owned(),
            found: echoed.to_owned(),
        });
    }
    if let Some(returned) = response
        .subscriber
        .as_ref()
        .and_then(|s| s.member_id.as_deref())
        && !returned.eq_ignore_ascii_case(&question.member_id)
    {
        return Err(AnswerError::MemberMismatch);
    }
    Ok(summarise(&response, question.date_of_service))
}

const ACTIVE: [&str; 5] = ["1", "2", "3", "4", "5"];
const INACTIVE: [&str; 3] = ["6", "7", "8"];

/// Summarises a 271 for the patient's in-network, individual coverage on `dos`.
pub fn summarise(r: &EligibilityResponse, dos: NaiveDate) -> Answer {
    let x12 = r.summary();
    let person = r.dependent.as_ref().or(r.subscriber.as_ref());
    let (begin, end) = person.map(plan_dates).unwrap_or((None, None));
    let in_dates = begin.is_none_or(|b| b <= dos) && end.is_none_or(|e| dos <= e);
    let coverage_status = match x12.active {
        Some(true) if in_dates => CoverageStatus::Active,
        Some(true) | Some(false) => CoverageStatus::Inactive,
        None => CoverageStatus::Unknown,
    };
    let group_number = person
        .into_iter()
        .chain(r.subscriber.as_ref())
        .flat_map(|p| &p.references)
        .find(|(q, _)| q == "6P" || q == "18")
        .map(|(_, v)| v.clone());
    let any_network = |want: bool| r.benefits.iter().any(|b| b.in_network == Some(want));
    let network_status = if any_network(true) {
        NetworkStatus::InNetwork
    } else if any_network(false) {
        NetworkStatus::OutOfNetwork
    } else {
        NetworkStatus::NotApplicable
    };
    let insurance_type_code = r
        .benefits
        .iter()
        .find(|b| ACTIVE.contains(&b.info.as_str()))
        .and_then(|b| b.insurance_type.clone());
    let summary = BenefitSummary {
        coverage_status,
        plan_name: x12.plan.clone().filter(|p| !p.is_empty()),
        group_number: group_number.filter(|g| !g.is_empty()),
        plan_begin_date: begin,
        plan_end_date: end,
        network_status: Some(network_status),
        individual_deductible: Some(accumulator(r, "C", "IND")),
        family_deductible: Some(accumulator(r, "C", "FAM")),
        individual_out_of_pocket: Some(accumulator(r, "G", "IND")),
        family_out_of_pocket: Some(accumulator(r, "G", "FAM")),
        coinsurance_rate: x12.coinsurance,
        service_types: service_types(r),
        insurance_type_code: insurance_type_code.filter(|c| !c.is_empty()),
    };
    let has_answer = r
        .benefits
        .iter()
        .any(|b| ACTIVE.contains(&b.info.as_str()) || INACTIVE.contains(&b.info.as_str()));
    let status = if !r.rejections.is_empty() && !has_answer {
        CheckStatus::Rejected
    } else {
        CheckStatus::Completed
    };
    Answer {
        status,
        summary,
        benefits: r.benefits.iter().map(benefit).collect(),
        rejections: r
            .rejections
            .iter()
            .map(|x| AaaRejection {
                level: Some(match x.level {
                    RejectionLevel::Source => Level::InformationSource,
                    RejectionLevel::Receiver => Level::InformationReceiver,
                    RejectionLevel::Subscriber | RejectionLevel::Benefit => Level::Subscriber,
                    RejectionLevel::Dependent => Level::Dependent,
                }),
                valid_request: x.valid_request,
                reason_code: x.reason.clone(),
                description: x
                    .description
                    .clone()
                    .unwrap_or_else(|| format!("unknown reject reason code {:?}", x.reason)),
                follow_up_action_code: x.follow_up.clone().filter(|f| !f.is_empty()),
            })
            .collect(),
        subscriber: r.subscriber.as_ref().map(member),
        dependent: r.dependent.as_ref().map(member),
    }
}

/// Returns the plan (or eligibility) begin and end dates of a person in a 271.
fn plan_dates(p: &EligibilityPerson) -> (Option<NaiveDate>, Option<NaiveDate>) {
    let mut begin = None;
    let mut end = None;
    for (qualifier, range) in &p.dates {
        match qualifier.as_str() {
            "346" | "356" => begin = begin.or(Some(range.from)),
            "347" | "357" => end = end.or(Some(range.from)),
            "291" | "307" => {
                begin = begin.or(Some(range.from));
                if range.to.is_some() {
                    end = end.or(range.to);
                }
            }
            _ => {}
        }
    }
    (begin, end)
}

/// Returns whether a benefit applies to in-network (or unspecified) coverage at `level`.
fn applies(b: &Benefit, level: &str) -> bool {
    b.in_network != Some(false)
        && match b.coverage_level.as_deref() {
            None => level == "IND",
            Some(l) => l == level,
        }
}

fn plan_level(b: &Benefit) -> bool {
    b.service_types.is_empty() || b.service_types.iter().any(|s| s == "30")
}

/// Builds a deductible (`C`) or out-of-pocket (`G`) accumulator from the period rows.
fn accumulator(r: &EligibilityResponse, info: &str, level: &str) -> Accumulator {
    let pick = |periods: &[&str]| -> Option<Decimal> {
        let rows = r.benefits.iter().filter(|b| {
            b.info == info
                && applies(b, level)
                && b.time_period
                    .as_deref()
                    .is_some_and(|p| periods.contains(&p))
        });
        // Explicit in-network and plan-level rows win.
        rows.min_by_key(|b| (b.in_network != Some(true), !plan_level(b)))
            .and_then(|b| b.amount)
    };
    Accumulator {
        total: pick(&["23", "22", "25", "21", "24"]).map(cents),
        remaining: pick(&["29"]).map(cents),
    }
}

/// Collects copay, coinsurance, coverage and authorization per service type.
fn service_types(r: &EligibilityResponse) -> Vec<ServiceTypeBenefit> {
    let mut by_type: BTreeMap<String, ServiceTypeBenefit> = BTreeMap::new();
    for b in &r.benefits {
        if !matches!(b.info.as_str(), "A" | "B" | "I") || !applies(b, "IND") {
            continue;
        }
        for st in &b.service_types {
            let entry = by_type
                .entry(st.clone())
                .or_insert_with(|| ServiceTypeBenefit {
                    service_type_code: st.clone(),
                    description: short_description(CodeList::ServiceType, st)
                        .unwrap_or_default()
                        .to_owned(),
                    covered: true,
                    copay: None,
                    coinsurance_rate: None,
                    authorization_required: false,
                });
            let explicit = b.in_network == Some(true);
            match b.info.as_str() {
                "B" => {
                    if let Some(a) = b.amount
                        && (entry.copay.is_none() || explicit)
                    {
                        entry.copay = Some(cents(a));
                    }
                }
                "A" => {
                    if let Some(p) = b.percent
                        && (entry.coinsurance_rate.is_none() || explicit)
                    {
                        entry.coinsurance_rate = Some(p);
                    }
                }
                _ => entry.covered = false,
            }
            if b.authorization_required.as_deref() == Some("Y") {
                entry.authorization_required = true;
            }
        }
    }
    by_type.into_values().collect()
}

fn benefit(b: &Benefit) -> crate::model::Benefit {
    let text = |v: &Option<String>| v.clone().filter(|t| !t.is_empty());
    crate::model::Benefit {
        info_code: b.info.clone(),
        info_description: text(&b.info_description),
        coverage_level: text(&b.coverage_level),
        service_type_codes: b.service_types.clone(),
        insurance_type_code: text(&b.insurance_type),
        plan_coverage_description: text(&b.plan_description),
        time_period_qualifier: text(&b.time_period),
        amount: b.amount.map(cents),
        percent: b.percent,
        quantity_qualifier: text(&b.quantity_qualifier),
        quantity: b.quantity,
        authorization_required: text(&b.authorization_required),
        in_network: b.in_network,
        messages: b.messages.clone(),
    }
}

fn member(p: &EligibilityPerson) -> MemberInfo {
    MemberInfo {
        name: p.name.clone(),
        member_id: p.member_id.clone().filter(|m| !m.is_empty()),
        birth_date: p.birth_date,
        gender_code: p.gender.clone().filter(|g| !g.is_empty()),
        address: p.address.as_ref().map(|a| Address {
            line1: a.line1.clone(),
            line2: a.line2.clone().filter(|l| !l.is_empty()),
            city: a.city.clone(),
            state: a.state.clone(),
            postal_code: a.postal_code.clone(),
            country_code: None,
        }),
    }
}

/// Rounds an X12 amount to the cent, as money is kept.
fn cents(d: Decimal) -> Money {
    Money::from_decimal(d).round_cents()
}

/// Returns the plain meaning of an AAA04 follow-up action code.
pub fn follow_up_text(code: &str) -> &'static str {
    match code {
        "C" => "Please correct and resubmit",
        "N" => "Resubmission not allowed",
        "P" => "Please resubmit original transaction",
        "R" => "Resubmission allowed",
        "S" => "Do not resubmit; inquiry initiated to a third party",
        "W" => "Please wait 30 days and resubmit",
        "X" => "Please wait 10 days and resubmit",
        "Y" => "Do not resubmit; we will hold your request and respond again shortly",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question() -> Question {
        Question {
            payer_id: "60054".into(),
            payer_name: "ACME HEALTH".into(),
            member_id: "W123456789".into(),
            subscriber_name: PersonName::new("DOE", "JANE"),
            subscriber_birth_date: NaiveDate::from_ymd_opt(1980, 1, 2),
            dependent: None,
            provider_npi: "1234567893".into(),
            provider_name: "MAIN CLINIC".into(),
            originator: "9MEDBILL01".into(),
            date_of_service: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default(),
            service_types: vec!["30".into()],
        }
    }

    const ACTIVE_271: &str = "ISA*00*          *00*          *ZZ*ACME           *ZZ*MEDBILL01      *260302*1200*^*00501*000000001*0*P*:~\
GS*HB*ACME*MEDBILL01*20260302*1200*1*X*005010X279A1~ST*271*0001*005010X279A1~BHT*0022*11*T1*20260302*1200~\
HL*1**20*1~NM1*PR*2*ACME HEALTH*****PI*60054~HL*2*1*21*1~NM1*1P*2*MAIN CLINIC*****XX*1234567893~\
HL*3*2*22*0~TRN*2*TRACE1*9MEDBILL01~NM1*IL*1*DOE*JANE****MI*W123456789~REF*6P*GRP-7~DMG*D8*19800102*F~\
DTP*346*D8*20260101~EB*1*IND*30*C1*GOLD PPO~EB*C*IND*30***23*1500~EB*C*IND*30***29*1000~\
EB*G*IND*30***23*5000~EB*G*IND*30***29*4200~EB*A*IND*30***27**.2****Y~EB*B*IND*98***27*25*****Y~\
EB*I*IND*88~SE*21*0001~GE*1*1~IEA*1*000000001~";

    #[test]
    fn an_active_271_is_summarised() {
        let a = read_answer(ACTIVE_271.as_bytes(), &question(), "TRACE1").expect("usable");
        assert_eq!(a.status, CheckStatus::Completed);
        let s = a.summary;
        let m = |t: &str| Money::parse(t).ok();
        assert_eq!(s.coverage_status, CoverageStatus::Active);
        assert_eq!(s.plan_name.as_deref(), Some("GOLD PPO"));
        assert_eq!(s.group_number.as_deref(), Some("GRP-7"));
        assert_eq!(s.plan_begin_date, NaiveDate::from_ymd_opt(2026, 1, 1));
        let ded = s.individual_deductible.unwrap_or_default();
        assert_eq!(
            (ded.total, ded.remaining, ded.met()),
            (m("1500.00"), m("1000.00"), m("500.00"))
        );
        let oop = s.individual_out_of_pocket.unwrap_or_default();
        assert_eq!((oop.total, oop.remaining), (m("5000.00"), m("4200.00")));
        assert_eq!(s.coinsurance_rate, Some(Decimal::new(2, 1)));
        assert_eq!(s.network_status, Some(NetworkStatus::InNetwork));
        let office = s
            .service_types
            .iter()
            .find(|t| t.service_type_code == "98")
            .expect("98");
        assert_eq!(office.copay, m("25.00"));
        assert!(office.covered);
        let pharmacy = s
            .service_types
            .iter()
            .find(|t| t.service_type_code == "88")
            .expect("88");
        assert!(!pharmacy.covered);
        assert_eq!(a.benefits.len(), 8);
    }

    #[test]
    fn answers_to_another_question_are_refused() {
        let err = read_answer(ACTIVE_271.as_bytes(), &question(), "OTHER").expect_err("trace");
        assert!(matches!(err, AnswerError::TraceMismatch { .. }), "{err}");
        let mut q = question();
        q.member_id = "X999".into();
        assert_eq!(
            read_answer(ACTIVE_271.as_bytes(), &q, "TRACE1"),
            Err(AnswerError::MemberMismatch)
        );
        let err = read_answer(b"HTTP/1.1 500 oops", &question(), "TRACE1").expect_err("garbage");
        assert!(
            matches!(err, AnswerError::Malformed(_) | AnswerError::No271(_)),
            "{err}"
        );
    }

    #[test]
    fn a_270_is_written_for_the_question() {
        let parties = Parties {
            sender_id: "MEDBILL01".into(),
            receiver_id: "ACMEHEALTH".into(),
        };
        let now = DateTime::<Utc>::from_timestamp(1_772_000_000, 0).unwrap_or_default();
        let x12 = build_270(&question(), "TRACE1", &parties, 42, now).expect("written");
        assert!(x12.contains("NM1*IL*1*DOE*JANE****MI*W123456789~"), "{x12}");
        assert!(x12.contains("TRN*1*TRACE1*9MEDBILL01~"));
        assert!(x12.contains("DTP*291*D8*20260302~"));
        assert!(x12.contains("EQ*30~"));
        let doc = Document::parse(x12.as_bytes());
        assert!(!doc.has_errors(), "{:?}", doc.problems);
    }
}
