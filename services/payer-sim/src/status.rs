//! 276 claim status inquiries answered with a 277 (005010X212) from the claims the front end
//! received ([`crate::claims::ClaimFront`]).
//!
//! A claim is found by its REF*1K payer claim control number, else by payer, member id and REF*EJ
//! patient control number. The answer, per claim asked about:
//!
//! - adjudicated (paid in an 835): `F1:65` paid (STC05 the amount), `F4:107` nothing to pay (the
//!   patient owes it all), `F2:107` denied, `F3:107` reversed by a corrected claim; STC02 the
//!   payment day;
//! - accepted and not adjudicated: `P1:20` (category P1 "pending / in process: the claim is in the
//!   adjudication system", status 20 "accepted for processing"), with REF*1K;
//! - rejected by the 277CA: the 277CA's STC again (A3/A7 with its status and entity code);
//! - never received: `A4:35` (category A4 "not found", status 35 "claim/encounter not found").

use chrono::NaiveDateTime;
use medbill_x12::model::TransactionHeader;
use medbill_x12::model::claim_status::{
    AnsweredClaim, ClaimStatusAnswer, ClaimStatusInquiry, StatusInfo,
};

use crate::catalog::Catalog;
use crate::claim_rules;
use crate::claims::ClaimFront;

/// Builds the 277 answering `q`.
pub fn answer(
    catalog: &Catalog,
    claims: &ClaimFront,
    q: &ClaimStatusInquiry,
    now: NaiveDateTime,
) -> ClaimStatusAnswer {
    let today = now.date();
    let answered = q
        .claims
        .iter()
        .map(|asked| {
            let found = asked
                .payer_claim_number
                .as_deref()
                .and_then(|n| claims.claim_by_payer_number(n))
                .filter(|r| r.claim.payer_id == q.payer_id)
                .or_else(|| {
                    asked.patient_control_number.as_deref().and_then(|pcn| {
                        claims.claim_by_patient_control_number(&q.payer_id, &q.member_id, pcn)
                    })
                });
            match found {
                Some(r) => {
                    let outcome = r
                        .payer_claim_number
                        .as_deref()
                        .and_then(|n| claims.payments().outcome(n));
                    let status = if let Some(o) = outcome {
                        StatusInfo {
                            codes: vec![claim_rules::code(o.category, o.status, None)],
                            effective_date: Some(o.date),
                            action: None,
                            charge: Some(r.claim.total_charge),
                            paid: Some(o.paid.as_decimal()),
                            message: None,
                        }
                    } else if r.is_accepted() {
                        StatusInfo {
                            codes: vec![claim_rules::code("P1", "20", None)],
                            effective_date: Some(today),
                            action: None,
                            charge: Some(r.claim.total_charge),
                            paid: None,
                            message: None,
                        }
                    } else {
                        StatusInfo {
                            action: None,
                            ..r.status.clone()
                        }
                    };
                    AnsweredClaim {
                        trace_number: asked.trace_number.clone(),
                        statuses: vec![status],
                        payer_claim_number: r.payer_claim_number.clone(),
                        bill_type: r.claim.bill_type.clone(),
                        patient_control_number: Some(r.claim.patient_control_number.clone()),
                        service_date: Some(r.claim.service_date),
                        lines: Vec::new(),
                    }
                }
                None => AnsweredClaim {
                    trace_number: asked.trace_number.clone(),
                    statuses: vec![StatusInfo {
                        codes: vec![claim_rules::code("A4", "35", None)],
                        effective_date: Some(today),
                        action: None,
                        charge: Some(asked.total_charge.unwrap_or_default()),
                        paid: None,
                        message: None,
                    }],
                    payer_claim_number: None,
                    bill_type: asked.bill_type.clone(),
                    patient_control_number: asked.patient_control_number.clone(),
                    service_date: asked.service_date,
                    lines: Vec::new(),
                },
            }
        })
        .collect();
    ClaimStatusAnswer {
        header: TransactionHeader {
            reference: q.header.reference.clone(),
            created_date: today,
            created_time: now.time(),
        },
        payer_name: catalog
            .payer(&q.payer_id)
            .map_or_else(|| q.payer_name.clone(), |p| p.entry.name.clone()),
        payer_id: q.payer_id.clone(),
        receiver_name: q.receiver_name.clone(),
        receiver_id: q.receiver_id.clone(),
        provider_name: q.provider_name.clone(),
        provider_npi: q.provider_npi.clone(),
        subscriber_name: q.subscriber_name.clone(),
        member_id: q.member_id.clone(),
        dependent: q.dependent.as_ref().map(|d| d.name.clone()),
        claims: answered,
    }
}
