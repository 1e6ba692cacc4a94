//! ListDenials and UpdateDenial: the denial worklist (see [`crate::denials`]).

use chrono::Utc;
use medbill_codesets::{CodeList, short_description};
use medbill_domain::{EraId, format_iso_date};
use medbill_proto::remittance::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{identifier, optional_instant, required_text, tenant_id, text};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use medbill_runtime::paging::{PageSize, QueryFingerprint, decode_page_token, split_page};
use tonic::{Request, Response, Status};

use super::{
    Denial, DenialAction, DenialCategory, DenialCount, DenialFilter, DenialStatus, reason_rule,
};
use crate::service::{
    MAX_PAYER_ID_LEN, MAX_REASON_LEN, RemittanceService, adjustment_to_proto, group_to_proto,
    procedure_to_proto, remark_to_proto,
};

fn status_from_proto(field: &str, raw: i32) -> Result<Option<DenialStatus>, ServiceError> {
    Ok(match pb::DenialStatus::try_from(raw) {
        Ok(pb::DenialStatus::Unspecified) => None,
        Ok(pb::DenialStatus::Open) => Some(DenialStatus::Open),
        Ok(pb::DenialStatus::InProgress) => Some(DenialStatus::InProgress),
        Ok(pb::DenialStatus::Resubmitted) => Some(DenialStatus::Resubmitted),
        Ok(pb::DenialStatus::Appealed) => Some(DenialStatus::Appealed),
        Ok(pb::DenialStatus::WrittenOff) => Some(DenialStatus::WrittenOff),
        Ok(pb::DenialStatus::Resolved) => Some(DenialStatus::Resolved),
        Err(_) => {
            return Err(ServiceError::invalid_argument(
                field,
                format!("{raw} is not a denial status"),
            ));
        }
    })
}

fn status_to_proto(s: DenialStatus) -> pb::DenialStatus {
    match s {
        DenialStatus::Open => pb::DenialStatus::Open,
        DenialStatus::InProgress => pb::DenialStatus::InProgress,
        DenialStatus::Resubmitted => pb::DenialStatus::Resubmitted,
        DenialStatus::Appealed => pb::DenialStatus::Appealed,
        DenialStatus::WrittenOff => pb::DenialStatus::WrittenOff,
        DenialStatus::Resolved => pb::DenialStatus::Resolved,
    }
}

fn category_to_proto(c: DenialCategory) -> pb::DenialCategory {
    match c {
        DenialCategory::Coding => pb::DenialCategory::Coding,
        DenialCategory::Eligibility => pb::DenialCategory::Eligibility,
        DenialCategory::Authorization => pb::DenialCategory::Authorization,
        DenialCategory::TimelyFiling => pb::DenialCategory::TimelyFiling,
        DenialCategory::Duplicate => pb::DenialCategory::Duplicate,
        DenialCategory::MedicalNecessity => pb::DenialCategory::MedicalNecessity,
        DenialCategory::MissingInformation => pb::DenialCategory::MissingInformation,
        DenialCategory::Other => pb::DenialCategory::Other,
    }
}

fn category_from_proto(raw: i32) -> Result<Option<DenialCategory>, ServiceError> {
    Ok(match pb::DenialCategory::try_from(raw) {
        Ok(pb::DenialCategory::Unspecified) => None,
        Ok(pb::DenialCategory::Coding) => Some(DenialCategory::Coding),
        Ok(pb::DenialCategory::Eligibility) => Some(DenialCategory::Eligibility),
        Ok(pb::DenialCategory::Authorization) => Some(DenialCategory::Authorization),
        Ok(pb::DenialCategory::TimelyFiling) => Some(DenialCategory::TimelyFiling),
        Ok(pb::DenialCategory::Duplicate) => Some(DenialCategory::Duplicate),
        Ok(pb::DenialCategory::MedicalNecessity) => Some(DenialCategory::MedicalNecessity),
        Ok(pb::DenialCategory::MissingInformation) => Some(DenialCategory::MissingInformation),
        Ok(pb::DenialCategory::Other) => Some(DenialCategory::Other),
        Err(_) => {
            return Err(ServiceError::invalid_argument(
                "category",
                format!("{raw} is not a denial category"),
            ));
        }
    })
}

fn action_to_proto(a: DenialAction) -> pb::DenialAction {
    match a {
        DenialAction::CorrectAndResubmit => pb::DenialAction::CorrectAndResubmit,
        DenialAction::Appeal => pb::DenialAction::Appeal,
        DenialAction::BillPatient => pb::DenialAction::BillPatient,
        DenialAction::WriteOff => pb::DenialAction::WriteOff,
    }
}

/// The suggested action in words: the action, then why (the reason table's note).
fn suggestion(d: &Denial) -> String {
    let action = d.item.action.describe();
    match reason_rule(&d.item.reason) {
        Some(rule) if d.item.action != DenialAction::BillPatient => {
            format!("{action}: {}", rule.why)
        }
        Some(rule) => format!(
            "{action}: the payer assigned it to the patient ({})",
            rule.why
        ),
        None if d.item.reason.is_empty() => {
            format!("{action}: the payer gave no denial reason code")
        }
        None => format!(
            "{action}: CARC {} is not in the reason table",
            d.item.reason
        ),
    }
}

/// Maps a stored worklist item to its wire form; `today` gives its age.
pub fn denial_to_proto(d: &Denial, today: chrono::NaiveDate) -> pb::DenialWorkItem {
    let i = &d.item;
    pb::DenialWorkItem {
        id: d.id.clone(),
        era_id: i.era_id.to_string(),
        claim_payment_id: i.claim_payment_id.to_string(),
        claim_id: i.claim_id.clone(),
        patient_control_number: i.patient_control_number.clone(),
        payer_claim_control_number: i.payer_claim_control_number.clone(),
        payer_id: i.payer_id.clone(),
        line_control_number: i.line_control_number.clone(),
        procedure: i.procedure.as_ref().map(procedure_to_proto),
        denied_amount: i.denied.to_string(),
        adjustments: i.adjustments.iter().map(adjustment_to_proto).collect(),
        remarks: i.remarks.iter().map(|r| remark_to_proto(r)).collect(),
        category: category_to_proto(i.category).into(),
        status: status_to_proto(d.status).into(),
        suggested_action: suggestion(d),
        appeal_deadline: String::new(),
        service_date: i.service_date.map(format_iso_date).unwrap_or_default(),
        created_at: Some(medbill_runtime::fields::timestamp(d.created_at)),
        updated_at: Some(medbill_runtime::fields::timestamp(d.updated_at)),
        action: action_to_proto(i.action).into(),
        age_days: u32::try_from((today - d.age_from).num_days().max(0)).unwrap_or(u32::MAX),
        note: d.note.clone(),
        line_number: i.line_number,
        group: group_to_proto(&i.group).into(),
        reason_code: i.reason.clone(),
        reason_description: short_description(CodeList::Carc, &i.reason)
            .unwrap_or_default()
            .to_owned(),
        claim_status_code: i.claim_status_code.clone(),
        payment_date: i.payment_date.map(format_iso_date).unwrap_or_default(),
    }
}

fn count_to_proto(c: &DenialCount, description: String) -> pb::DenialCount {
    pb::DenialCount {
        key: c.key.clone(),
        description,
        count: u32::try_from(c.count).unwrap_or(u32::MAX),
        denied_amount: c.denied.to_string(),
    }
}

/// Handles ListDenials.
pub(crate) async fn list_denials(
    svc: &RemittanceService,
    request: Request<pb::ListDenialsRequest>,
) -> Result<Response<pb::ListDenialsResponse>, Status> {
    let tenant = tenant_id(&request)?;
    let req = request.into_inner();
    let size = PageSize::from_i32(req.page_size)?;
    let today = Utc::now().date_naive();
    let (created_from, created_to) = match &req.created {
        Some(range) => (
            optional_instant("created.start_time", range.start_time.as_ref())?,
            optional_instant("created.end_time", range.end_time.as_ref())?,
        ),
        None => (None, None),
    };
    if req.max_age_days > 0 && req.min_age_days > req.max_age_days {
        return Err(ServiceError::invalid_argument(
            "max_age_days",
            format!(
                "{} is below min_age_days {}",
                req.max_age_days, req.min_age_days
            ),
        )
        .into());
    }
    let days_ago = |days: u32, field: &str| {
        today
            .checked_sub_days(chrono::Days::new(u64::from(days)))
            .ok_or_else(|| ServiceError::invalid_argument(field, "is too large"))
    };
    let reason = text("reason_code", &req.reason_code, 3, false)?;
    if let Some(r) = &reason
        && !r.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(ServiceError::invalid_argument(
            "reason_code",
            "is a CARC: letters and digits only",
        )
        .into());
    }
    let filter = DenialFilter {
        status: status_from_proto("status", req.status)?,
        payer_id: text("payer_id", &req.payer_id, MAX_PAYER_ID_LEN, false)?,
        category: category_from_proto(req.category)?,
        reason,
        claim_id: identifier("claim_id", &req.claim_id, false)?,
        era_id: if req.era_id.is_empty() {
            None
        } else {
            Some(
                EraId::parse(&req.era_id)
                    .map_err(|e| ServiceError::invalid_argument("era_id", e.to_string()))?,
            )
        },
        created_from,
        created_to,
        age_from_on_or_before: (req.min_age_days > 0)
            .then(|| days_ago(req.min_age_days, "min_age_days"))
            .transpose()?,
        age_from_on_or_after: (req.max_age_days > 0)
            .then(|| days_ago(req.max_age_days, "max_age_days"))
            .transpose()?,
    };
    // The token binds the query as asked (ages in days), so a next page asked on another day
    // keeps its filter.
    let fingerprint = QueryFingerprint::builder("remittance.ListDenials")
        .field("tenant", tenant.as_str())
        .optional("status", filter.status.map(DenialStatus::as_str))
        .optional("payer_id", filter.payer_id.as_deref())
        .optional("category", filter.category.map(DenialCategory::as_str))
        .optional("reason", filter.reason.as_deref())
        .optional("claim_id", filter.claim_id.as_deref())
        .optional("era_id", filter.era_id.map(|e| e.to_string()))
        .optional(
            "from",
            created_from.map(|t| t.timestamp_micros().to_string()),
        )
        .optional("to", created_to.map(|t| t.timestamp_micros().to_string()))
        .field("min_age", req.min_age_days.to_string())
        .field("max_age", req.max_age_days.to_string())
        .finish();
    let after = decode_page_token(&req.page_token, &fingerprint)?;
    let store = svc.store();
    let rows = store
        .list_denials(&tenant, &filter, after.as_deref(), size.fetch_limit())
        .await
        .map_err(ServiceError::from)?;
    let (by_reason, by_payer, total) = store
        .count_denials(&tenant, &filter)
        .await
        .map_err(ServiceError::from)?;
    let (page, next_page_token) = split_page(rows, size, &fingerprint, |d| d.id.clone());
    Ok(Response::new(pb::ListDenialsResponse {
        denials: page.iter().map(|d| denial_to_proto(d, today)).collect(),
        next_page_token,
        counts_by_reason: by_reason
            .iter()
            .map(|c| {
                let carc = c.key.split_once('-').map_or("", |(_, r)| r);
                let text = short_description(CodeList::Carc, carc).unwrap_or_default();
                count_to_proto(c, text.to_owned())
            })
            .collect(),
        counts_by_payer: by_payer
            .iter()
            .map(|c| count_to_proto(c, String::new()))
            .collect(),
        total_count: u32::try_from(total).unwrap_or(u32::MAX),
    }))
}

/// Handles UpdateDenial.
pub(crate) async fn update_denial(
    svc: &RemittanceService,
    request: Request<pb::UpdateDenialRequest>,
) -> Result<Response<pb::UpdateDenialResponse>, Status> {
    let tenant = tenant_id(&request)?;
    let req = request.into_inner();
    let call = IdempotentCall::of(&req)?;
    let id = identifier("denial_id", &req.denial_id, true)?.unwrap_or_default();
    let status = status_from_proto("status", req.status)?
        .ok_or_else(|| ServiceError::invalid_argument("status", "is required"))?;
    let note = required_text("note", &req.note, MAX_REASON_LEN)?;
    let store = svc.store();
    let mut op = match call.begin(store.database(), &tenant).await? {
        Begun::Replay(first) => return Ok(Response::new(first)),
        Begun::New(op) => op,
    };
    let mut denial = store
        .get_denial(&tenant, &id)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::not_found(format!("denial {id}")))?;
    if !store
        .update_denial(op.tx(), &tenant, &id, status, &note)
        .await
        .map_err(ServiceError::from)?
    {
        return Err(ServiceError::not_found(format!("denial {id}")).into());
    }
    // Read before the change: answer what it wrote.
    denial.status = status;
    denial.note = note;
    denial.updated_at = Utc::now();
    let response = pb::UpdateDenialResponse {
        denial: Some(denial_to_proto(&denial, Utc::now().date_naive())),
    };
    op.commit(&response).await?;
    tracing::info!(denial_id = %id, tenant = %tenant, status = status.as_str(), "denial status changed");
    Ok(Response::new(response))
}
