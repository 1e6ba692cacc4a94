//! ReconcileDeposit and ListDepositReconciliations (see [`crate::deposits`]).

use medbill_domain::{Money, format_iso_date};
use medbill_proto::remittance::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{date, identifier, money, tenant_id, text, timestamp};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use medbill_runtime::paging::{PageSize, QueryFingerprint, decode_page_token, split_page};
use tonic::{Request, Response, Status};

use super::{NewDeposit, Reconciliation, ReconciliationFilter, ReconciliationStatus};
use crate::service::{MAX_PAYER_ID_LEN, MAX_REASON_LEN, RemittanceService};

/// Longest trace number (TRN02 is at most 50 characters).
const MAX_TRACE_LEN: usize = 50;
/// Longest bank account label.
const MAX_ACCOUNT_REF_LEN: usize = 80;

/// Maps an outcome to its wire form (VARIANCE is AMOUNT_MISMATCH, UNMATCHED_DEPOSIT is
/// UNMATCHED on the wire).
pub fn status_to_proto(s: ReconciliationStatus) -> pb::ReconciliationStatus {
    match s {
        ReconciliationStatus::Matched => pb::ReconciliationStatus::Matched,
        ReconciliationStatus::Variance => pb::ReconciliationStatus::AmountMismatch,
        ReconciliationStatus::UnmatchedDeposit => pb::ReconciliationStatus::Unmatched,
        ReconciliationStatus::UnmatchedEra => pb::ReconciliationStatus::UnmatchedEra,
    }
}

/// Reads an outcome filter; UNSPECIFIED is none.
pub fn status_from_proto(
    field: &str,
    raw: i32,
) -> Result<Option<ReconciliationStatus>, ServiceError> {
    Ok(match pb::ReconciliationStatus::try_from(raw) {
        Ok(pb::ReconciliationStatus::Unspecified) => None,
        Ok(pb::ReconciliationStatus::Matched) => Some(ReconciliationStatus::Matched),
        Ok(pb::ReconciliationStatus::AmountMismatch) => Some(ReconciliationStatus::Variance),
        Ok(pb::ReconciliationStatus::Unmatched) => Some(ReconciliationStatus::UnmatchedDeposit),
        Ok(pb::ReconciliationStatus::UnmatchedEra) => Some(ReconciliationStatus::UnmatchedEra),
        Err(_) => {
            return Err(ServiceError::invalid_argument(
                field,
                format!("{raw} is not a reconciliation status"),
            ));
        }
    })
}

fn to_proto(r: &Reconciliation) -> pb::DepositReconciliation {
    let d = &r.deposit;
    let o = &r.outcome;
    pb::DepositReconciliation {
        id: r.id.clone(),
        deposit: Some(pb::Deposit {
            trace_number: d.trace_number.clone(),
            amount: d.amount.to_string(),
            deposit_date: format_iso_date(d.deposit_date),
            payment_method: d.payment_method.clone(),
            payer_id: d.payer_id.clone(),
            bank_account_ref: d.bank_account_ref.clone(),
            description: d.description.clone(),
        }),
        status: status_to_proto(o.status).into(),
        era_ids: o.era_ids.iter().map(ToString::to_string).collect(),
        era_total: o.era_total.to_string(),
        difference: o.difference.to_string(),
        message: o.message.clone(),
        created_at: Some(timestamp(r.created_at)),
        deposit_total: o.deposit_total.to_string(),
        deposit_ids: r.deposit_ids.clone(),
        claim_payments_total: o.claim_payments_total.to_string(),
        provider_adjustments_total: o.provider_adjustments_total.to_string(),
        updated_at: Some(timestamp(r.updated_at)),
    }
}

fn validate(deposit: Option<&pb::Deposit>) -> Result<NewDeposit, ServiceError> {
    let d = deposit.ok_or_else(|| ServiceError::invalid_argument("deposit", "is required"))?;
    let trace_number =
        text("deposit.trace_number", &d.trace_number, MAX_TRACE_LEN, true)?.unwrap_or_default();
    let amount = money("deposit.amount", &d.amount)?;
    if amount <= Money::default() {
        return Err(ServiceError::invalid_argument(
            "deposit.amount",
            "must be above zero (a deposit adds money to the account)",
        ));
    }
    let payment_method =
        text("deposit.payment_method", &d.payment_method, 3, false)?.unwrap_or_default();
    if !payment_method.is_empty() && !payment_method.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(ServiceError::invalid_argument(
            "deposit.payment_method",
            "is a BPR04 code such as ACH or CHK",
        ));
    }
    Ok(NewDeposit {
        trace_number,
        amount,
        deposit_date: date("deposit.deposit_date", &d.deposit_date)?,
        payment_method,
        payer_id: text("deposit.payer_id", &d.payer_id, MAX_PAYER_ID_LEN, false)?
            .unwrap_or_default(),
        bank_account_ref: identifier("deposit.bank_account_ref", &d.bank_account_ref, false)?
            .map(|r| {
                if r.chars().count() > MAX_ACCOUNT_REF_LEN {
                    Err(ServiceError::invalid_argument(
                        "deposit.bank_account_ref",
                        format!("is longer than {MAX_ACCOUNT_REF_LEN} characters"),
                    ))
                } else {
                    Ok(r)
                }
            })
            .transpose()?
            .unwrap_or_default(),
        description: text("deposit.description", &d.description, MAX_REASON_LEN, false)?
            .unwrap_or_default(),
    })
}

/// Handles ReconcileDeposit.
pub(crate) async fn reconcile_deposit(
    svc: &RemittanceService,
    request: Request<pb::ReconcileDepositRequest>,
) -> Result<Response<pb::ReconcileDepositResponse>, Status> {
    let tenant = tenant_id(&request)?;
    let req = request.into_inner();
    let call = IdempotentCall::of(&req)?;
    let deposit = validate(req.deposit.as_ref())?;
    let store = svc.store();
    let mut op = match call.begin(store.database(), &tenant).await? {
        Begun::Replay(first) => return Ok(Response::new(first)),
        Begun::New(op) => op,
    };
    let reconciliation = store
        .add_deposit(op.tx(), &tenant, &deposit)
        .await
        .map_err(ServiceError::from)?;
    let response = pb::ReconcileDepositResponse {
        reconciliation: Some(to_proto(&reconciliation)),
    };
    op.commit(&response).await?;
    tracing::info!(
        deposit_id = %reconciliation.id,
        tenant = %tenant,
        status = reconciliation.outcome.status.as_str(),
        eras = reconciliation.outcome.era_ids.len(),
        "deposit reconciled"
    );
    Ok(Response::new(response))
}

/// Handles ListDepositReconciliations.
pub(crate) async fn list_deposit_reconciliations(
    svc: &RemittanceService,
    request: Request<pb::ListDepositReconciliationsRequest>,
) -> Result<Response<pb::ListDepositReconciliationsResponse>, Status> {
    let tenant = tenant_id(&request)?;
    let req = request.into_inner();
    let size = PageSize::from_i32(req.page_size)?;
    let status = status_from_proto("status", req.status)?;
    if status == Some(ReconciliationStatus::UnmatchedEra) {
        return Err(ServiceError::invalid_argument(
            "status",
            "UNMATCHED_ERA belongs to ERAs, not deposits: list them with ListEras \
             reconciliation_status",
        )
        .into());
    }
    let filter = ReconciliationFilter {
        status,
        trace_number: text("trace_number", &req.trace_number, MAX_TRACE_LEN, false)?,
        payer_id: text("payer_id", &req.payer_id, MAX_PAYER_ID_LEN, false)?,
    };
    let fingerprint = QueryFingerprint::builder("remittance.ListDepositReconciliations")
        .field("tenant", tenant.as_str())
        .optional("status", filter.status.map(ReconciliationStatus::as_str))
        .optional("trace", filter.trace_number.as_deref())
        .optional("payer", filter.payer_id.as_deref())
        .finish();
    let after = decode_page_token(&req.page_token, &fingerprint)?;
    let rows = svc
        .store()
        .list_reconciliations(&tenant, &filter, after.as_deref(), size.fetch_limit())
        .await
        .map_err(ServiceError::from)?;
    let (page, next_page_token) = split_page(rows, size, &fingerprint, |r| r.id.clone());
    Ok(Response::new(pb::ListDepositReconciliationsResponse {
        reconciliations: page.iter().map(to_proto).collect(),
        next_page_token,
    }))
}
