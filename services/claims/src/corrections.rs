//! CorrectClaim (frequency 7) and VoidClaim (frequency 8): the replacement or void claim is a new
//! claim linked to its original both ways (`original_claim_id`, `superseded_by_claim_id`).
//!
//! - CorrectClaim takes a SUBMITTED, ACCEPTED, REJECTED or adjudicated claim, validates the
//!   replacement as CreateClaim does (same function, same coverage check), requires the payer's
//!   claim control number (given, or on record from the 277CA / 835) for REF*F8, and creates the
//!   replacement in DRAFT. The original keeps its status: the payer has not acted on the
//!   replacement yet.
//! - VoidClaim on a claim never accepted by the payer (DRAFT, HELD, READY, REJECTED) marks it VOID;
//!   on a claim the payer has (SUBMITTED, ACCEPTED, adjudicated) it creates the void claim, a copy
//!   with frequency 8 and REF*F8, in READY to be sent, and marks the original VOID.
//!
//! CLM01 is unique per tenant, so a replacement or void claim with no patient control number of its
//! own gets one derived from the original's: its first 16 characters, "-R" (replacement) or "-V"
//! (void) and the first free number from 1 to 99.

use medbill_domain::{ClaimId, PatientControlNumber, TenantId};
use medbill_proto::claims::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{required_id, tenant_id};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use medbill_storage::Tx;
use tonic::{Request, Response, Status};

use crate::details::wire::coverage_snapshot;
use crate::model::{Claim, ClaimStatus, FrequencyCode, NewClaim, NewClaimLine, StatusChangeSource};
use crate::service::{ClaimsService, to_proto, validate_input};
use crate::store::NewStatus;

/// Longest audit reason kept.
const MAX_REASON_LEN: usize = 200;
/// Longest payer claim control number (REF*F8 allows 50).
const MAX_PCCN_LEN: usize = 50;
/// Characters of the original's CLM01 kept in a derived one (plus "-R99" makes 20).
const DERIVED_BASE_LEN: usize = 16;

fn optional_text(field: &str, value: &str, max: usize) -> Result<Option<String>, ServiceError> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(ServiceError::invalid_argument(
            field,
            format!("must be at most {max} printable characters"),
        ));
    }
    Ok(Some(value.to_owned()))
}

async fn load(svc: &ClaimsService, tenant: &TenantId, id: ClaimId) -> Result<Claim, ServiceError> {
    svc.store
        .get_claim(tenant, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("claim {id}")))
}

fn not_superseded(claim: &Claim) -> Result<(), ServiceError> {
    match claim.superseded_by_claim_id {
        Some(by) => Err(ServiceError::FailedPrecondition(format!(
            "claim {} was already corrected or voided by claim {by}; correct or void that one instead",
            claim.id
        ))),
        None => Ok(()),
    }
}

/// The payer claim control number for REF*F8: the one given, else the one on record.
fn payer_claim_control_number(
    claim: &Claim,
    given: Option<String>,
    action: &str,
) -> Result<String, ServiceError> {
    given
        .or_else(|| claim.payer_claim_control_number.clone())
        .ok_or_else(|| {
            ServiceError::FailedPrecondition(format!(
                "payer_claim_control_number: claim {} has none on record (the payer assigns it in \
                 the 277CA or the 835); give it to {action}",
                claim.id
            ))
        })
}

/// Finds a free CLM01 derived from `original` with `marker` ("R" or "V"), reading in `tx`.
async fn derived_pcn(
    svc: &ClaimsService,
    tx: &mut Tx,
    tenant: &TenantId,
    original: &PatientControlNumber,
    marker: char,
) -> Result<PatientControlNumber, ServiceError> {
    let base: String = original.as_str().chars().take(DERIVED_BASE_LEN).collect();
    for n in 1..=99 {
        let candidate = format!("{base}-{marker}{n}");
        if !svc
            .store
            .patient_control_number_taken(tx, tenant, &candidate)
            .await?
        {
            return PatientControlNumber::parse(&candidate).map_err(ServiceError::internal);
        }
    }
    Err(ServiceError::FailedPrecondition(format!(
        "every derived patient control number {base}-{marker}1..99 is taken; give one"
    )))
}

/// Handles CorrectClaim.
pub(crate) async fn correct_claim(
    svc: &ClaimsService,
    request: Request<pb::CorrectClaimRequest>,
) -> Result<Response<pb::CorrectClaimResponse>, Status> {
    let tenant = tenant_id(&request)?;
    Ok(correct(svc, tenant, request).await?)
}

async fn correct(
    svc: &ClaimsService,
    tenant: TenantId,
    request: Request<pb::CorrectClaimRequest>,
) -> Result<Response<pb::CorrectClaimResponse>, ServiceError> {
    // The request itself is kept: the coverage check forwards its token.
    let req = request.get_ref();
    let call = IdempotentCall::of(req)?;
    let original_id = required_id::<ClaimId>("claim_id", &req.claim_id)?;
    let input = req
        .replacement
        .as_ref()
        .ok_or_else(|| ServiceError::invalid_argument("replacement", "is required"))?;
    let given_pccn = optional_text(
        "payer_claim_control_number",
        &req.payer_claim_control_number,
        MAX_PCCN_LEN,
    )?;
    let reason = optional_text("reason", &req.reason, MAX_REASON_LEN)?;
    let db = svc.store.database();
    if let Some(first) = call.replayed(db, &tenant).await? {
        return Ok(Response::new(first));
    }
    let original = load(svc, &tenant, original_id).await?;
    match original.status {
        ClaimStatus::Submitted
        | ClaimStatus::Accepted
        | ClaimStatus::Rejected
        | ClaimStatus::Paid
        | ClaimStatus::PartiallyPaid
        | ClaimStatus::Denied => {}
        other => {
            return Err(ServiceError::FailedPrecondition(format!(
                "claim {} is {}: only a submitted, accepted, rejected or adjudicated claim can be \
                 corrected",
                original.id,
                other.as_str()
            )));
        }
    }
    not_superseded(&original)?;
    let pccn = payer_claim_control_number(&original, given_pccn, "correct a claim")?;

    // CreateClaim's validation, with its field names under `replacement.`; an empty CLM01 is
    // validated as the original's and derived below.
    let derive = input.patient_control_number.is_empty();
    let mut checked = input.clone();
    if derive {
        checked.patient_control_number = original.patient_control_number.to_string();
    }
    let mut new = validate_input(&checked).map_err(under_replacement)?;
    if new.claim_type != original.claim_type {
        return Err(ServiceError::invalid_argument(
            "replacement.claim_type",
            format!(
                "must be the original's, {}: a replacement is the same kind of claim",
                original.claim_type.as_str()
            ),
        ));
    }
    if new.payer_id != original.payer_id {
        return Err(ServiceError::invalid_argument(
            "replacement.payer_id",
            "must be the original's payer: REF*F8 refers to that payer's claim",
        ));
    }
    new.frequency_code = FrequencyCode::Replacement;
    new.payer_claim_control_number = Some(pccn);
    new.validate().map_err(|e| {
        ServiceError::invalid_argument(format!("replacement.{}", e.field), e.message)
    })?;
    svc.check_providers_on_file(&tenant, &new)
        .await
        .map_err(|status| ServiceError::Coded {
            code: status.code(),
            message: status.message().replacen("claim.", "replacement.", 1),
        })?;
    let coverage = svc
        .coverage
        .check_claim(&request, &tenant, &new)
        .await
        .map_err(|e| {
            // CreateClaim answers the coverage check's status as it is; so does a correction.
            let status = Status::from(e);
            ServiceError::Coded {
                code: status.code(),
                message: status.message().to_owned(),
            }
        })?;
    new.details.coverage = Some(coverage_snapshot(&coverage));

    let mut op = match call.begin(db, &tenant).await? {
        Begun::Replay(first) => return Ok(Response::new(first)),
        Begun::New(op) => op,
    };
    if derive {
        new.patient_control_number =
            derived_pcn(svc, op.tx(), &tenant, &original.patient_control_number, 'R').await?;
    }
    let mut replacement = svc.store.create_claim(op.tx(), &tenant, &new).await?;
    let why = format!(
        "replacement (frequency 7) of claim {}{}",
        original.id,
        reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    svc.store
        .describe_creation(
            op.tx(),
            &tenant,
            replacement.id,
            StatusChangeSource::Correction,
            &original.id.to_string(),
            &why,
        )
        .await?;
    let linked_at = svc
        .store
        .link_claims(op.tx(), &tenant, original.id, replacement.id)
        .await?;
    replacement.original_claim_id = Some(original.id);
    let mut original = original;
    original.superseded_by_claim_id = Some(replacement.id);
    original.updated_at = linked_at;
    let response = pb::CorrectClaimResponse {
        original: Some(to_proto(&original)),
        replacement: Some(to_proto(&replacement)),
    };
    op.commit(&response).await?;
    svc.watch.notify();
    tracing::info!(claim_id = %original.id, replacement_id = %replacement.id, tenant = %tenant, "claim corrected");
    Ok(Response::new(response))
}

/// Renames CreateClaim's `claim.` field paths to CorrectClaim's `replacement.`.
fn under_replacement(e: ServiceError) -> ServiceError {
    match e {
        ServiceError::InvalidArgument { field, reason } => ServiceError::InvalidArgument {
            field: match field.strip_prefix("claim.") {
                Some(rest) => format!("replacement.{rest}"),
                None => field,
            },
            reason,
        },
        other => other,
    }
}

/// The content of `claim` as a new claim (a void claim repeats what it voids).
fn copy_of(claim: &Claim) -> NewClaim {
    NewClaim {
        patient_control_number: claim.patient_control_number.clone(),
        claim_type: claim.claim_type,
        frequency_code: claim.frequency_code,
        payer_claim_control_number: claim.payer_claim_control_number.clone(),
        coverage_id: claim.coverage_id.clone(),
        payer_id: claim.payer_id.clone(),
        patient_ref: claim.patient_ref.clone(),
        billing_provider_npi: claim.billing_provider_npi.clone(),
        rendering_provider_npi: claim.rendering_provider_npi.clone(),
        place_of_service: claim.place_of_service.clone(),
        facility_type_code: claim.facility_type_code.clone(),
        diagnoses: claim.diagnoses.clone(),
        lines: claim
            .lines
            .iter()
            .map(|l| NewClaimLine {
                // The void repeats the original's line control numbers, so an 835 line ties to both.
                line_control_number: Some(l.line_control_number.clone()),
                procedure_code: l.procedure_code.clone(),
                modifiers: l.modifiers.clone(),
                revenue_code: l.revenue_code.clone(),
                charge: l.charge,
                units: l.units,
                service_date: l.service_date,
                diagnosis_pointers: l.diagnosis_pointers.clone(),
                prior_authorization_number: l.prior_authorization_number.clone(),
                referral_number: l.referral_number.clone(),
            })
            .collect(),
        total_charge: Some(claim.total_charge),
        service_date_from: Some(claim.service_date_from),
        service_date_to: Some(claim.service_date_to),
        encounter_ref: claim.encounter_ref.clone(),
        details: claim.details.clone(),
    }
}

/// Handles VoidClaim.
pub(crate) async fn void_claim(
    svc: &ClaimsService,
    request: Request<pb::VoidClaimRequest>,
) -> Result<Response<pb::VoidClaimResponse>, Status> {
    let tenant = tenant_id(&request)?;
    Ok(void(svc, tenant, request).await?)
}

async fn void(
    svc: &ClaimsService,
    tenant: TenantId,
    request: Request<pb::VoidClaimRequest>,
) -> Result<Response<pb::VoidClaimResponse>, ServiceError> {
    let req = request.into_inner();
    let call = IdempotentCall::of(&req)?;
    let claim_id = required_id::<ClaimId>("claim_id", &req.claim_id)?;
    let given_pccn = optional_text(
        "payer_claim_control_number",
        &req.payer_claim_control_number,
        MAX_PCCN_LEN,
    )?;
    let reason = optional_text("reason", &req.reason, MAX_REASON_LEN)?;
    let suffix = reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    let db = svc.store.database();
    if let Some(first) = call.replayed(db, &tenant).await? {
        return Ok(Response::new(first));
    }
    let mut claim = load(svc, &tenant, claim_id).await?;
    let sent = matches!(
        claim.status,
        ClaimStatus::Submitted
            | ClaimStatus::Accepted
            | ClaimStatus::Paid
            | ClaimStatus::PartiallyPaid
            | ClaimStatus::Denied
    );
    let mut op = match call.begin(db, &tenant).await? {
        Begun::Replay(first) => return Ok(Response::new(first)),
        Begun::New(op) => op,
    };
    let response = if !sent {
        // Never accepted by the payer: nothing to send, the claim is simply void.
        let why = format!("voided before the payer accepted it{suffix}");
        let change = svc
            .store
            .transition(
                op.tx(),
                &tenant,
                claim.id,
                NewStatus {
                    to: ClaimStatus::Void,
                    source: StatusChangeSource::Void,
                    source_id: "",
                    reason: &why,
                },
            )
            .await?;
        claim.status = change.to;
        claim.updated_at = change.at;
        pb::VoidClaimResponse {
            claim: Some(to_proto(&claim)),
            void_claim: None,
        }
    } else {
        not_superseded(&claim)?;
        let pccn = payer_claim_control_number(&claim, given_pccn, "void a submitted claim")?;
        let mut new = copy_of(&claim);
        new.frequency_code = FrequencyCode::Void;
        new.payer_claim_control_number = Some(pccn);
        new.patient_control_number =
            derived_pcn(svc, op.tx(), &tenant, &claim.patient_control_number, 'V').await?;
        let mut void = svc.store.create_claim(op.tx(), &tenant, &new).await?;
        let original = claim.id.to_string();
        svc.store
            .describe_creation(
                op.tx(),
                &tenant,
                void.id,
                StatusChangeSource::Void,
                &original,
                &format!("void (frequency 8) of claim {original}{suffix}"),
            )
            .await?;
        let ready = svc
            .store
            .transition(
                op.tx(),
                &tenant,
                void.id,
                NewStatus {
                    to: ClaimStatus::Ready,
                    source: StatusChangeSource::Void,
                    source_id: &original,
                    reason: "void claim ready to send: it repeats the submitted original",
                },
            )
            .await?;
        let why = format!(
            "void claim {} created to send to the payer{suffix}",
            void.id
        );
        let change = svc
            .store
            .transition(
                op.tx(),
                &tenant,
                claim.id,
                NewStatus {
                    to: ClaimStatus::Void,
                    source: StatusChangeSource::Void,
                    source_id: &void.id.to_string(),
                    reason: &why,
                },
            )
            .await?;
        let linked_at = svc
            .store
            .link_claims(op.tx(), &tenant, claim.id, void.id)
            .await?;
        void.status = ready.to;
        void.updated_at = ready.at;
        void.original_claim_id = Some(claim.id);
        claim.status = change.to;
        claim.updated_at = linked_at;
        claim.superseded_by_claim_id = Some(void.id);
        pb::VoidClaimResponse {
            claim: Some(to_proto(&claim)),
            void_claim: Some(to_proto(&void)),
        }
    };
    op.commit(&response).await?;
    svc.watch.notify();
    tracing::info!(claim_id = %claim.id, tenant = %tenant, sent, "claim voided");
    Ok(Response::new(response))
}
