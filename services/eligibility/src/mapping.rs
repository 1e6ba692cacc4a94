//! The wire form of the eligibility model: model <-> protobuf messages, in one place.
//!
//! The service answers with these messages. The store also keeps a check's parsed answer and a
//! whole estimate in their protobuf encoding (the `detail` columns, as the migrations say), so
//! rows written by earlier versions stay readable; [`encode_check_detail`] and friends are that
//! codec. Decoding is lenient where earlier versions were (decimal strings of any scale).

use chrono::{DateTime, NaiveDate, Utc};
use medbill_domain::{
    CoverageId, Decimal, EligibilityCheckId, Money, format_iso_date, parse_iso_date,
};
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as pb;
use medbill_runtime::fields::timestamp;
use medbill_x12::model::PersonName;
use prost::Message;

use crate::exchange::follow_up_text;
use crate::model::{
    AaaRejection, Accumulator, Address, AllowedSource, Benefit, BenefitSummary, Breakdown,
    CheckStatus, CostEstimate, CoverageStatus, EligibilityCheck, EstimateLine, MemberInfo,
    NetworkStatus, Procedure, ProviderRef, RejectionLevel, ServiceTypeBenefit,
};

/// Reports a stored message that does not map to the model (what, and why; no values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {detail}")]
pub struct DecodeError {
    /// Which value.
    pub what: &'static str,
    /// What is wrong with it.
    pub detail: String,
}

fn bad(what: &'static str, detail: impl Into<String>) -> DecodeError {
    DecodeError {
        what,
        detail: detail.into(),
    }
}

// ---- small values ----

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn money(m: Money) -> String {
    m.round_cents().to_string()
}

fn opt_money(m: Option<Money>) -> String {
    m.map(money).unwrap_or_default()
}

fn decimal_text(d: Decimal) -> String {
    d.normalize().to_string()
}

fn opt_decimal(d: Option<Decimal>) -> String {
    d.map(decimal_text).unwrap_or_default()
}

fn parse_decimal(what: &'static str, s: &str) -> Result<Option<Decimal>, DecodeError> {
    if s.is_empty() {
        return Ok(None);
    }
    Decimal::from_str_exact(s)
        .map(Some)
        .map_err(|e| bad(what, e.to_string()))
}

fn parse_money(what: &'static str, s: &str) -> Result<Option<Money>, DecodeError> {
    parse_decimal(what, s).map(|d| d.map(Money::from_decimal))
}

fn required_money(what: &'static str, s: &str) -> Result<Money, DecodeError> {
    parse_money(what, s)?.ok_or_else(|| bad(what, "is missing"))
}

fn opt_date(what: &'static str, s: &str) -> Result<Option<NaiveDate>, DecodeError> {
    if s.is_empty() {
        return Ok(None);
    }
    parse_iso_date(s)
        .map(Some)
        .map_err(|e| bad(what, e.to_string()))
}

fn required_date(what: &'static str, s: &str) -> Result<NaiveDate, DecodeError> {
    opt_date(what, s)?.ok_or_else(|| bad(what, "is missing"))
}

fn instant(
    what: &'static str,
    t: Option<&prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, DecodeError> {
    t.map(|t| {
        u32::try_from(t.nanos)
            .ok()
            .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos))
            .ok_or_else(|| bad(what, "is out of range"))
    })
    .transpose()
}

fn opt_id<I: std::str::FromStr>(what: &'static str, s: &str) -> Result<Option<I>, DecodeError>
where
    I::Err: std::fmt::Display,
{
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|e: I::Err| bad(what, e.to_string()))
}

fn person_to_proto(n: &PersonName) -> common::PersonName {
    common::PersonName {
        last_name: n.last.clone(),
        first_name: n.first.clone().unwrap_or_default(),
        middle_name: n.middle.clone().unwrap_or_default(),
        suffix: n.suffix.clone().unwrap_or_default(),
    }
}

fn person_from_proto(n: &common::PersonName) -> PersonName {
    PersonName {
        last: n.last_name.clone(),
        first: opt(&n.first_name),
        middle: opt(&n.middle_name),
        suffix: opt(&n.suffix),
    }
}

fn address_to_proto(a: &Address) -> common::Address {
    common::Address {
        line1: a.line1.clone(),
        line2: a.line2.clone().unwrap_or_default(),
        city: a.city.clone(),
        state: a.state.clone(),
        postal_code: a.postal_code.clone(),
        country_code: a.country_code.clone().unwrap_or_default(),
    }
}

/// Maps a wire address to the model (empty optional parts become absent).
pub fn address_from_proto(a: &common::Address) -> Address {
    Address {
        line1: a.line1.clone(),
        line2: opt(&a.line2),
        city: a.city.clone(),
        state: a.state.clone(),
        postal_code: a.postal_code.clone(),
        country_code: opt(&a.country_code),
    }
}

// ---- enums ----

/// Returns the wire value of a check status.
pub fn status_to_proto(s: CheckStatus) -> pb::EligibilityCheckStatus {
    match s {
        CheckStatus::Pending => pb::EligibilityCheckStatus::Pending,
        CheckStatus::Completed => pb::EligibilityCheckStatus::Completed,
        CheckStatus::Rejected => pb::EligibilityCheckStatus::Rejected,
        CheckStatus::Failed => pb::EligibilityCheckStatus::Failed,
    }
}

/// Returns the model status of a wire value; `None` for UNSPECIFIED and unknown values.
pub fn status_from_proto(value: i32) -> Option<CheckStatus> {
    match pb::EligibilityCheckStatus::try_from(value).ok()? {
        pb::EligibilityCheckStatus::Unspecified => None,
        pb::EligibilityCheckStatus::Pending => Some(CheckStatus::Pending),
        pb::EligibilityCheckStatus::Completed => Some(CheckStatus::Completed),
        pb::EligibilityCheckStatus::Rejected => Some(CheckStatus::Rejected),
        pb::EligibilityCheckStatus::Failed => Some(CheckStatus::Failed),
    }
}

fn coverage_status_to_proto(s: CoverageStatus) -> pb::CoverageStatus {
    match s {
        CoverageStatus::Active => pb::CoverageStatus::Active,
        CoverageStatus::Inactive => pb::CoverageStatus::Inactive,
        CoverageStatus::Unknown => pb::CoverageStatus::Unknown,
    }
}

fn coverage_status_from_proto(value: i32) -> CoverageStatus {
    match pb::CoverageStatus::try_from(value) {
        Ok(pb::CoverageStatus::Active) => CoverageStatus::Active,
        Ok(pb::CoverageStatus::Inactive) => CoverageStatus::Inactive,
        _ => CoverageStatus::Unknown,
    }
}

fn network_to_proto(s: Option<NetworkStatus>) -> pb::NetworkStatus {
    match s {
        None => pb::NetworkStatus::Unspecified,
        Some(NetworkStatus::InNetwork) => pb::NetworkStatus::InNetwork,
        Some(NetworkStatus::OutOfNetwork) => pb::NetworkStatus::OutOfNetwork,
        Some(NetworkStatus::NotApplicable) => pb::NetworkStatus::NotApplicable,
    }
}

fn network_from_proto(value: i32) -> Option<NetworkStatus> {
    match pb::NetworkStatus::try_from(value).ok()? {
        pb::NetworkStatus::Unspecified => None,
        pb::NetworkStatus::InNetwork => Some(NetworkStatus::InNetwork),
        pb::NetworkStatus::OutOfNetwork => Some(NetworkStatus::OutOfNetwork),
        pb::NetworkStatus::NotApplicable => Some(NetworkStatus::NotApplicable),
    }
}

fn level_to_proto(l: Option<RejectionLevel>) -> pb::RejectionLevel {
    match l {
        None => pb::RejectionLevel::Unspecified,
        Some(RejectionLevel::InformationSource) => pb::RejectionLevel::InformationSource,
        Some(RejectionLevel::InformationReceiver) => pb::RejectionLevel::InformationReceiver,
        Some(RejectionLevel::Subscriber) => pb::RejectionLevel::Subscriber,
        Some(RejectionLevel::Dependent) => pb::RejectionLevel::Dependent,
    }
}

fn level_from_proto(value: i32) -> Option<RejectionLevel> {
    match pb::RejectionLevel::try_from(value).ok()? {
        // The 278 levels never reach a 271 check.
        pb::RejectionLevel::Unspecified
        | pb::RejectionLevel::PatientEvent
        | pb::RejectionLevel::Service => None,
        pb::RejectionLevel::InformationSource => Some(RejectionLevel::InformationSource),
        pb::RejectionLevel::InformationReceiver => Some(RejectionLevel::InformationReceiver),
        pb::RejectionLevel::Subscriber => Some(RejectionLevel::Subscriber),
        pb::RejectionLevel::Dependent => Some(RejectionLevel::Dependent),
    }
}

// ---- eligibility checks ----

fn accumulator_to_proto(a: &Accumulator) -> pb::Accumulator {
    pb::Accumulator {
        total: opt_money(a.total),
        remaining: opt_money(a.remaining),
        met: opt_money(a.met()),
    }
}

fn accumulator_from_proto(a: &pb::Accumulator) -> Result<Accumulator, DecodeError> {
    Ok(Accumulator {
        total: parse_money("accumulator total", &a.total)?,
        remaining: parse_money("accumulator remaining", &a.remaining)?,
    })
}

fn summary_to_proto(s: &BenefitSummary) -> pb::BenefitSummary {
    let acc = |a: &Option<Accumulator>| a.as_ref().map(accumulator_to_proto);
    pb::BenefitSummary {
        coverage_status: coverage_status_to_proto(s.coverage_status) as i32,
        plan_name: s.plan_name.clone().unwrap_or_default(),
        group_number: s.group_number.clone().unwrap_or_default(),
        plan_begin_date: s.plan_begin_date.map(format_iso_date).unwrap_or_default(),
        plan_end_date: s.plan_end_date.map(format_iso_date).unwrap_or_default(),
        network_status: network_to_proto(s.network_status) as i32,
        individual_deductible: acc(&s.individual_deductible),
        family_deductible: acc(&s.family_deductible),
        individual_out_of_pocket: acc(&s.individual_out_of_pocket),
        family_out_of_pocket: acc(&s.family_out_of_pocket),
        coinsurance_rate: opt_decimal(s.coinsurance_rate),
        service_types: s
            .service_types
            .iter()
            .map(|t| pb::ServiceTypeBenefit {
                service_type_code: t.service_type_code.clone(),
                description: t.description.clone(),
                covered: t.covered,
                copay: opt_money(t.copay),
                coinsurance_rate: opt_decimal(t.coinsurance_rate),
                authorization_required: t.authorization_required,
            })
            .collect(),
        insurance_type_code: s.insurance_type_code.clone().unwrap_or_default(),
    }
}

fn summary_from_proto(s: &pb::BenefitSummary) -> Result<BenefitSummary, DecodeError> {
    let acc = |a: &Option<pb::Accumulator>| a.as_ref().map(accumulator_from_proto).transpose();
    Ok(BenefitSummary {
        coverage_status: coverage_status_from_proto(s.coverage_status),
        plan_name: opt(&s.plan_name),
        group_number: opt(&s.group_number),
        plan_begin_date: opt_date("plan begin date", &s.plan_begin_date)?,
        plan_end_date: opt_date("plan end date", &s.plan_end_date)?,
        network_status: network_from_proto(s.network_status),
        individual_deductible: acc(&s.individual_deductible)?,
        family_deductible: acc(&s.family_deductible)?,
        individual_out_of_pocket: acc(&s.individual_out_of_pocket)?,
        family_out_of_pocket: acc(&s.family_out_of_pocket)?,
        coinsurance_rate: parse_decimal("coinsurance rate", &s.coinsurance_rate)?,
        service_types: s
            .service_types
            .iter()
            .map(|t| {
                Ok(ServiceTypeBenefit {
                    service_type_code: t.service_type_code.clone(),
                    description: t.description.clone(),
                    covered: t.covered,
                    copay: parse_money("service type copay", &t.copay)?,
                    coinsurance_rate: parse_decimal(
                        "service type coinsurance rate",
                        &t.coinsurance_rate,
                    )?,
                    authorization_required: t.authorization_required,
                })
            })
            .collect::<Result<_, DecodeError>>()?,
        insurance_type_code: opt(&s.insurance_type_code),
    })
}

fn benefit_to_proto(b: &Benefit) -> pb::Benefit {
    pb::Benefit {
        info_code: b.info_code.clone(),
        info_description: b.info_description.clone().unwrap_or_default(),
        coverage_level: b.coverage_level.clone().unwrap_or_default(),
        service_type_codes: b.service_type_codes.clone(),
        insurance_type_code: b.insurance_type_code.clone().unwrap_or_default(),
        plan_coverage_description: b.plan_coverage_description.clone().unwrap_or_default(),
        time_period_qualifier: b.time_period_qualifier.clone().unwrap_or_default(),
        amount: opt_money(b.amount),
        percent: opt_decimal(b.percent),
        quantity_qualifier: b.quantity_qualifier.clone().unwrap_or_default(),
        quantity: opt_decimal(b.quantity),
        authorization_required: b.authorization_required.clone().unwrap_or_default(),
        in_network: match b.in_network {
            Some(true) => "Y".to_owned(),
            Some(false) => "N".to_owned(),
            None => String::new(),
        },
        messages: b.messages.clone(),
    }
}

fn benefit_from_proto(b: &pb::Benefit) -> Result<Benefit, DecodeError> {
    Ok(Benefit {
        info_code: b.info_code.clone(),
        info_description: opt(&b.info_description),
        coverage_level: opt(&b.coverage_level),
        service_type_codes: b.service_type_codes.clone(),
        insurance_type_code: opt(&b.insurance_type_code),
        plan_coverage_description: opt(&b.plan_coverage_description),
        time_period_qualifier: opt(&b.time_period_qualifier),
        amount: parse_money("benefit amount", &b.amount)?,
        percent: parse_decimal("benefit percent", &b.percent)?,
        quantity_qualifier: opt(&b.quantity_qualifier),
        quantity: parse_decimal("benefit quantity", &b.quantity)?,
        authorization_required: opt(&b.authorization_required),
        in_network: match b.in_network.as_str() {
            "Y" => Some(true),
            "N" => Some(false),
            _ => None,
        },
        messages: b.messages.clone(),
    })
}

fn rejection_to_proto(r: &AaaRejection) -> pb::AaaRejection {
    let code = r.follow_up_action_code.clone().unwrap_or_default();
    pb::AaaRejection {
        level: level_to_proto(r.level) as i32,
        valid_request: r.valid_request,
        reason_code: r.reason_code.clone(),
        description: r.description.clone(),
        follow_up_action: follow_up_text(&code).to_owned(),
        follow_up_action_code: code,
    }
}

fn rejection_from_proto(r: &pb::AaaRejection) -> AaaRejection {
    AaaRejection {
        level: level_from_proto(r.level),
        valid_request: r.valid_request,
        reason_code: r.reason_code.clone(),
        description: r.description.clone(),
        follow_up_action_code: opt(&r.follow_up_action_code),
    }
}

fn member_to_proto(m: &MemberInfo) -> pb::MemberInfo {
    pb::MemberInfo {
        name: Some(person_to_proto(&m.name)),
        member_id: m.member_id.clone().unwrap_or_default(),
        birth_date: m.birth_date.map(format_iso_date).unwrap_or_default(),
        gender_code: m.gender_code.clone().unwrap_or_default(),
        address: m.address.as_ref().map(address_to_proto),
    }
}

fn member_from_proto(m: &pb::MemberInfo) -> Result<MemberInfo, DecodeError> {
    Ok(MemberInfo {
        name: m.name.as_ref().map(person_from_proto).unwrap_or_default(),
        member_id: opt(&m.member_id),
        birth_date: opt_date("member birth date", &m.birth_date)?,
        gender_code: opt(&m.gender_code),
        address: m.address.as_ref().map(address_from_proto),
    })
}

/// Maps a check to its wire message (the raw X12 as the model holds it).
pub fn check_to_proto(c: &EligibilityCheck) -> pb::EligibilityCheck {
    pb::EligibilityCheck {
        id: c.id.to_string(),
        coverage_id: c.coverage_id.map(|id| id.to_string()).unwrap_or_default(),
        patient_ref: c.patient_ref.clone().unwrap_or_default(),
        payer_id: c.payer_id.clone(),
        member_id: c.member_id.clone(),
        provider_npi: c.provider_npi.clone(),
        date_of_service: format_iso_date(c.date_of_service),
        service_type_codes: c.service_type_codes.clone(),
        status: status_to_proto(c.status) as i32,
        summary: c.summary.as_ref().map(summary_to_proto),
        benefits: c.benefits.iter().map(benefit_to_proto).collect(),
        rejections: c.rejections.iter().map(rejection_to_proto).collect(),
        subscriber: c.subscriber.as_ref().map(member_to_proto),
        dependent: c.dependent.as_ref().map(member_to_proto),
        trace_number: c.trace_number.clone(),
        from_cache: false,
        cached_from_check_id: String::new(),
        error_message: c.error_message.clone().unwrap_or_default(),
        raw_request: c.raw_request.clone(),
        raw_response: c.raw_response.clone(),
        created_at: Some(timestamp(c.created_at)),
        responded_at: c.responded_at.map(timestamp),
    }
}

/// Maps a CheckEligibility answer to its wire message: an answer `reused` from a check made for
/// an earlier call (the cache, or an identical call in flight) says so (`from_cache`,
/// `cached_from_check_id`).
pub fn answer_to_proto(check: &EligibilityCheck, reused: bool) -> pb::EligibilityCheck {
    let mut p = check_to_proto(check);
    if reused {
        p.from_cache = true;
        p.cached_from_check_id = p.id.clone();
    }
    p
}

/// Maps a wire check (as stored) back to the model.
pub fn check_from_proto(p: &pb::EligibilityCheck) -> Result<EligibilityCheck, DecodeError> {
    Ok(EligibilityCheck {
        id: p
            .id
            .parse()
            .map_err(|e: medbill_domain::IdError| bad("check id", e.to_string()))?,
        coverage_id: opt_id::<CoverageId>("coverage id", &p.coverage_id)?,
        patient_ref: opt(&p.patient_ref),
        payer_id: p.payer_id.clone(),
        member_id: p.member_id.clone(),
        provider_npi: p.provider_npi.clone(),
        date_of_service: required_date("date of service", &p.date_of_service)?,
        service_type_codes: p.service_type_codes.clone(),
        status: status_from_proto(p.status)
            .ok_or_else(|| bad("check status", format!("unknown value {}", p.status)))?,
        summary: p.summary.as_ref().map(summary_from_proto).transpose()?,
        benefits: p
            .benefits
            .iter()
            .map(benefit_from_proto)
            .collect::<Result<_, _>>()?,
        rejections: p.rejections.iter().map(rejection_from_proto).collect(),
        subscriber: p.subscriber.as_ref().map(member_from_proto).transpose()?,
        dependent: p.dependent.as_ref().map(member_from_proto).transpose()?,
        trace_number: p.trace_number.clone(),
        error_message: opt(&p.error_message),
        raw_request: p.raw_request.clone(),
        raw_response: p.raw_response.clone(),
        created_at: instant("check created_at", p.created_at.as_ref())?
            .ok_or_else(|| bad("check created_at", "is missing"))?,
        responded_at: instant("check responded_at", p.responded_at.as_ref())?,
    })
}

/// Encodes a check's answer for the `detail` column (without the raw X12, kept in its own
/// columns).
pub fn encode_check_detail(c: &EligibilityCheck) -> Vec<u8> {
    let mut p = check_to_proto(c);
    p.raw_request.clear();
    p.raw_response.clear();
    p.encode_to_vec()
}

/// Decodes a `detail` column written by [`encode_check_detail`] (or an earlier version).
pub fn decode_check_detail(bytes: &[u8]) -> Result<EligibilityCheck, DecodeError> {
    let p = pb::EligibilityCheck::decode(bytes).map_err(|e| bad("check detail", e.to_string()))?;
    check_from_proto(&p)
}

// ---- cost estimates ----

fn breakdown_to_proto(b: &Breakdown) -> pb::ResponsibilityBreakdown {
    pb::ResponsibilityBreakdown {
        deductible: money(b.deductible),
        coinsurance: money(b.coinsurance),
        copay: money(b.copay),
        out_of_pocket_cap_reduction: money(b.out_of_pocket_cap_reduction),
        patient_responsibility: money(b.patient_responsibility),
        plan_pays: money(b.plan_pays),
    }
}

fn breakdown_from_proto(b: &pb::ResponsibilityBreakdown) -> Result<Breakdown, DecodeError> {
    let part = |what, s: &str| parse_money(what, s).map(Option::unwrap_or_default);
    Ok(Breakdown {
        deductible: part("deductible", &b.deductible)?,
        coinsurance: part("coinsurance", &b.coinsurance)?,
        copay: part("copay", &b.copay)?,
        out_of_pocket_cap_reduction: part("cap reduction", &b.out_of_pocket_cap_reduction)?,
        patient_responsibility: part("patient responsibility", &b.patient_responsibility)?,
        plan_pays: part("plan pays", &b.plan_pays)?,
    })
}

fn source_to_proto(s: AllowedSource) -> pb::AllowedAmountSource {
    match s {
        AllowedSource::FeeSchedule => pb::AllowedAmountSource::FeeSchedule,
        AllowedSource::Charge => pb::AllowedAmountSource::Charge,
    }
}

fn line_to_proto(l: &EstimateLine) -> pb::CostEstimateLine {
    pb::CostEstimateLine {
        line_number: l.line_number,
        procedure: Some(common::Procedure {
            qualifier: l.procedure.qualifier.clone(),
            code: l.procedure.code.clone(),
            modifiers: l.procedure.modifiers.clone(),
            description: String::new(),
        }),
        service_type_code: l.service_type_code.clone(),
        units: decimal_text(l.units),
        charge: money(l.charge),
        allowed_amount: money(l.allowed_amount),
        allowed_amount_source: source_to_proto(l.allowed_amount_source) as i32,
        breakdown: Some(breakdown_to_proto(&l.breakdown)),
    }
}

fn line_from_proto(l: &pb::CostEstimateLine) -> Result<EstimateLine, DecodeError> {
    let p = l.procedure.clone().unwrap_or_default();
    Ok(EstimateLine {
        line_number: l.line_number,
        procedure: Procedure {
            qualifier: p.qualifier,
            code: p.code,
            modifiers: p.modifiers,
        },
        service_type_code: l.service_type_code.clone(),
        units: parse_decimal("units", &l.units)?.unwrap_or(Decimal::ONE),
        charge: required_money("line charge", &l.charge)?,
        allowed_amount: required_money("allowed amount", &l.allowed_amount)?,
        allowed_amount_source: match pb::AllowedAmountSource::try_from(l.allowed_amount_source) {
            Ok(pb::AllowedAmountSource::FeeSchedule) => AllowedSource::FeeSchedule,
            _ => AllowedSource::Charge,
        },
        breakdown: breakdown_from_proto(&l.breakdown.clone().unwrap_or_default())?,
    })
}

/// Maps a caller's provider to the model (unchecked; see the estimate validation).
pub fn provider_from_proto(p: &common::ProviderRef) -> ProviderRef {
    ProviderRef {
        npi: p.npi.clone(),
        organization_name: opt(&p.organization_name),
        person_name: p.person_name.as_ref().map(person_from_proto),
        tax_id: opt(&p.tax_id),
        taxonomy_code: opt(&p.taxonomy_code),
        address: p.address.as_ref().map(address_from_proto),
    }
}

fn provider_to_proto(p: &ProviderRef) -> common::ProviderRef {
    common::ProviderRef {
        npi: p.npi.clone(),
        organization_name: p.organization_name.clone().unwrap_or_default(),
        person_name: p.person_name.as_ref().map(person_to_proto),
        tax_id: p.tax_id.clone().unwrap_or_default(),
        taxonomy_code: p.taxonomy_code.clone().unwrap_or_default(),
        address: p.address.as_ref().map(address_to_proto),
    }
}

/// Maps an estimate to its wire message.
pub fn estimate_to_proto(e: &CostEstimate) -> pb::CostEstimate {
    pb::CostEstimate {
        id: e.id.to_string(),
        eligibility_check_id: e
            .eligibility_check_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        coverage_id: e.coverage_id.map(|id| id.to_string()).unwrap_or_default(),
        patient_ref: e.patient_ref.clone(),
        date_of_service: format_iso_date(e.date_of_service),
        self_pay: e.self_pay,
        good_faith_estimate: e.good_faith_estimate,
        lines: e.lines.iter().map(line_to_proto).collect(),
        total_charge: money(e.total_charge),
        total_allowed: money(e.total_allowed),
        total: Some(breakdown_to_proto(&e.total)),
        deductible_remaining_after: opt_money(e.deductible_remaining_after),
        out_of_pocket_remaining_after: opt_money(e.out_of_pocket_remaining_after),
        disclaimer: e.disclaimer.clone(),
        valid_until: format_iso_date(e.valid_until),
        provider: e.provider.as_ref().map(provider_to_proto),
        created_at: Some(timestamp(e.created_at)),
    }
}

/// Maps a wire estimate (as stored) back to the model.
pub fn estimate_from_proto(p: &pb::CostEstimate) -> Result<CostEstimate, DecodeError> {
    Ok(CostEstimate {
        id: p
            .id
            .parse()
            .map_err(|e: medbill_domain::IdError| bad("estimate id", e.to_string()))?,
        eligibility_check_id: opt_id::<EligibilityCheckId>(
            "eligibility check id",
            &p.eligibility_check_id,
        )?,
        coverage_id: opt_id::<CoverageId>("coverage id", &p.coverage_id)?,
        patient_ref: p.patient_ref.clone(),
        date_of_service: required_date("date of service", &p.date_of_service)?,
        self_pay: p.self_pay,
        good_faith_estimate: p.good_faith_estimate,
        lines: p
            .lines
            .iter()
            .map(line_from_proto)
            .collect::<Result<_, _>>()?,
        total_charge: required_money("total charge", &p.total_charge)?,
        total_allowed: required_money("total allowed", &p.total_allowed)?,
        total: breakdown_from_proto(&p.total.clone().unwrap_or_default())?,
        deductible_remaining_after: parse_money(
            "deductible remaining after",
            &p.deductible_remaining_after,
        )?,
        out_of_pocket_remaining_after: parse_money(
            "out-of-pocket remaining after",
            &p.out_of_pocket_remaining_after,
        )?,
        disclaimer: p.disclaimer.clone(),
        valid_until: required_date("valid until", &p.valid_until)?,
        provider: p.provider.as_ref().map(provider_from_proto),
        created_at: instant("estimate created_at", p.created_at.as_ref())?
            .ok_or_else(|| bad("estimate created_at", "is missing"))?,
    })
}

/// Encodes an estimate for the `detail` column.
pub fn encode_estimate(e: &CostEstimate) -> Vec<u8> {
    estimate_to_proto(e).encode_to_vec()
}

/// Decodes a `detail` column written by [`encode_estimate`] (or an earlier version).
pub fn decode_estimate(bytes: &[u8]) -> Result<CostEstimate, DecodeError> {
    let p = pb::CostEstimate::decode(bytes).map_err(|e| bad("estimate detail", e.to_string()))?;
    estimate_from_proto(&p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_check() -> EligibilityCheck {
        let m = |s: &str| Money::parse(s).ok();
        EligibilityCheck {
            id: EligibilityCheckId::new(),
            coverage_id: Some(CoverageId::new()),
            patient_ref: Some("pat-1".into()),
            payer_id: "60054".into(),
            member_id: "W123".into(),
            provider_npi: "1234567893".into(),
            date_of_service: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default(),
            service_type_codes: vec!["30".into()],
            status: CheckStatus::Completed,
            summary: Some(BenefitSummary {
                coverage_status: CoverageStatus::Active,
                plan_name: Some("GOLD".into()),
                network_status: Some(NetworkStatus::InNetwork),
                individual_deductible: Some(Accumulator {
                    total: m("1500.00"),
                    remaining: m("1250.50"),
                }),
                coinsurance_rate: Some(Decimal::new(2, 1)),
                service_types: vec![ServiceTypeBenefit {
                    service_type_code: "98".into(),
                    description: "Office".into(),
                    covered: true,
                    copay: m("25.00"),
                    coinsurance_rate: None,
                    authorization_required: true,
                }],
                ..BenefitSummary::unknown()
            }),
            benefits: vec![Benefit {
                info_code: "B".into(),
                amount: m("25.00"),
                percent: Some(Decimal::new(20, 2)),
                in_network: Some(true),
                messages: vec!["hello".into()],
                ..Benefit::default()
            }],
            rejections: vec![AaaRejection {
                level: Some(RejectionLevel::Subscriber),
                valid_request: true,
                reason_code: "75".into(),
                description: "Subscriber/Insured Not Found".into(),
                follow_up_action_code: Some("C".into()),
            }],
            subscriber: Some(MemberInfo {
                name: PersonName::new("DOE", "JANE"),
                member_id: Some("W123".into()),
                birth_date: NaiveDate::from_ymd_opt(1980, 1, 2),
                gender_code: Some("F".into()),
                address: None,
            }),
            dependent: None,
            trace_number: "T1".into(),
            error_message: None,
            raw_request: b"ISA*270".to_vec(),
            raw_response: b"ISA*271".to_vec(),
            created_at: DateTime::from_timestamp(1_772_000_000, 123_456_000).unwrap_or_default(),
            responded_at: DateTime::from_timestamp(1_772_000_001, 0),
        }
    }

    #[test]
    fn a_check_round_trips_through_its_wire_form() {
        let c = sample_check();
        let wire = check_to_proto(&c);
        assert_eq!(
            wire.summary.clone().unwrap_or_default().coinsurance_rate,
            "0.2"
        );
        assert_eq!(
            wire.benefits[0].percent, "0.2",
            "rates print without trailing zeros"
        );
        let ded = wire
            .summary
            .clone()
            .unwrap_or_default()
            .individual_deductible
            .unwrap_or_default();
        assert_eq!(
            (ded.total.as_str(), ded.met.as_str()),
            ("1500.00", "249.50")
        );
        assert_eq!(
            wire.rejections[0].follow_up_action,
            "Please correct and resubmit"
        );
        // Decimals compare by value, so 0.20 read back as 0.2 is the same rate.
        assert_eq!(check_from_proto(&wire), Ok(c.clone()));
        let mut without_raw = c.clone();
        without_raw.raw_request.clear();
        without_raw.raw_response.clear();
        assert_eq!(
            decode_check_detail(&encode_check_detail(&c)),
            Ok(without_raw)
        );
    }

    #[test]
    fn a_reused_answer_names_the_check_it_reuses() {
        let check = sample_check();
        let fresh = answer_to_proto(&check, false);
        assert!(!fresh.from_cache && fresh.cached_from_check_id.is_empty());
        let reused = answer_to_proto(&check, true);
        assert!(reused.from_cache);
        assert_eq!(reused.cached_from_check_id, reused.id);
    }

    #[test]
    fn stored_garbage_is_reported_without_values() {
        let err = decode_check_detail(b"\xff\xff\xff").expect_err("not a message");
        assert_eq!(err.what, "check detail");
        let mut wire = check_to_proto(&sample_check());
        wire.date_of_service = "2026-02-30".into();
        assert_eq!(
            check_from_proto(&wire).map_err(|e| e.what),
            Err("date of service")
        );
    }
}
