//! GetInsuranceAging: unpaid insurance balances by payer and age (see [`crate::aging`]).

use chrono::Utc;
use medbill_domain::format_iso_date;
use medbill_proto::claims::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{optional_date, tenant_id, text};
use tonic::{Request, Response, Status};

use crate::aging::{BUCKETS, PayerAging};
use crate::service::ClaimsService;

/// Longest payer identifier accepted in a filter.
const MAX_PAYER_ID_LEN: usize = 80;

fn to_proto(payer: &PayerAging) -> pb::PayerAging {
    let total = payer.total();
    pb::PayerAging {
        payer_id: payer.payer_id.clone(),
        buckets: payer
            .buckets
            .iter()
            .zip(BUCKETS)
            .map(|(b, (min, max))| pb::AgingBucket {
                min_days: min,
                max_days: max.unwrap_or(0),
                balance: b.balance.to_string(),
                claim_count: u32::try_from(b.claims).unwrap_or(u32::MAX),
            })
            .collect(),
        total_balance: total.balance.to_string(),
        claim_count: u32::try_from(total.claims).unwrap_or(u32::MAX),
    }
}

/// Handles GetInsuranceAging.
pub(crate) async fn get_insurance_aging(
    svc: &ClaimsService,
    request: Request<pb::GetInsuranceAgingRequest>,
) -> Result<Response<pb::GetInsuranceAgingResponse>, Status> {
    let tenant = tenant_id(&request)?;
    let req = request.into_inner();
    let as_of =
        optional_date("as_of_date", &req.as_of_date)?.unwrap_or_else(|| Utc::now().date_naive());
    let payer_id = text("payer_id", &req.payer_id, MAX_PAYER_ID_LEN, false)?;
    let payers = svc
        .store
        .insurance_aging(&tenant, as_of, payer_id.as_deref())
        .await
        .map_err(ServiceError::from)?;
    let mut total = PayerAging {
        payer_id: String::new(),
        buckets: Default::default(),
    };
    for p in &payers {
        for (sum, b) in total.buckets.iter_mut().zip(&p.buckets) {
            sum.balance += b.balance;
            sum.claims += b.claims;
        }
    }
    Ok(Response::new(pb::GetInsuranceAgingResponse {
        as_of_date: format_iso_date(as_of),
        payers: payers.iter().map(to_proto).collect(),
        total: Some(to_proto(&total)),
    }))
}
