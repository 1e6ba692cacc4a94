//! The claims remittance matches payments to, asked over gRPC (the remittance service never
//! reads claims' tables): [`ClaimDirectory`] and its implementation over the claims service's
//! generated client, [`GrpcClaimDirectory`], calling as the payment's tenant.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::NaiveDate;
use medbill_domain::{Money, TenantId, parse_iso_date};
use medbill_proto::claims::v1 as pb;
use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_runtime::auth::attach_bearer;
use medbill_runtime::client::TracedChannel;
use medbill_runtime::credentials::{OutgoingTokenError, OutgoingTokens};
use thiserror::Error;

/// Patient control numbers per GetClaimsByPatientControlNumbers call (the claims service takes
/// up to 1,000).
const LOOKUP_NUMBERS: usize = 1_000;

/// What matching needs to know of one claim line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimLineView {
    /// 1-based line number.
    pub line_number: u32,
    /// Our REF*6R.
    pub line_control_number: String,
    /// CPT/HCPCS code.
    pub procedure_code: String,
    /// Modifiers as billed.
    pub modifiers: Vec<String>,
    /// Date of service.
    pub service_date: Option<NaiveDate>,
    /// Line charge.
    pub charge: Option<Money>,
}

/// What matching and posting need to know of one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimView {
    /// Claim id.
    pub id: String,
    /// CLM01.
    pub patient_control_number: String,
    /// The payer billed.
    pub payer_id: String,
    /// The EHR's patient reference (the patient's account in collections).
    pub patient_ref: String,
    /// Total charge (CLM02).
    pub total_charge: Option<Money>,
    /// First date of service.
    pub service_date_from: Option<NaiveDate>,
    /// The claim's lines.
    pub lines: Vec<ClaimLineView>,
}

/// Why the claims service could not be asked.
#[derive(Debug, Error)]
pub enum DirectoryError {
    /// The call failed; worth retrying later.
    #[error("the claims service did not answer: {0}")]
    Unavailable(String),
    /// The call cannot succeed as made (no token for the tenant, a refused request).
    #[error("the claims service refused the call: {0}")]
    Refused(String),
}

/// Finds claims for matching.
#[async_trait]
pub trait ClaimDirectory: Send + Sync {
    /// Returns the tenant's claims with this patient control number (CLM01), any payer.
    async fn by_patient_control_number(
        &self,
        tenant: &TenantId,
        patient_control_number: &str,
    ) -> Result<Vec<ClaimView>, DirectoryError>;

    /// Returns the tenant's claims for each of `patient_control_numbers` (a number with none
    /// maps to nothing), asked together: posting looks up a page of payments at once. The
    /// default asks one number at a time.
    async fn by_patient_control_numbers(
        &self,
        tenant: &TenantId,
        patient_control_numbers: &[String],
    ) -> Result<HashMap<String, Vec<ClaimView>>, DirectoryError> {
        let mut out = HashMap::new();
        for pcn in patient_control_numbers {
            let found = self.by_patient_control_number(tenant, pcn).await?;
            out.insert(pcn.clone(), found);
        }
        Ok(out)
    }

    /// Returns one claim of the tenant, or `None` when it has none with this id.
    async fn by_id(&self, tenant: &TenantId, id: &str)
    -> Result<Option<ClaimView>, DirectoryError>;
}

/// [`ClaimDirectory`] over the claims service's gRPC API.
#[derive(Clone)]
pub struct GrpcClaimDirectory {
    client: ClaimsServiceClient<TracedChannel>,
    tokens: OutgoingTokens,
}

impl std::fmt::Debug for GrpcClaimDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcClaimDirectory").finish_non_exhaustive()
    }
}

impl GrpcClaimDirectory {
    /// Builds the directory over a channel to claims; `tokens` gives each tenant's token (none
    /// in dev mode).
    pub fn new(channel: TracedChannel, tokens: impl Into<OutgoingTokens>) -> Self {
        Self {
            client: ClaimsServiceClient::new(channel),
            tokens: tokens.into(),
        }
    }

    async fn request<T>(
        &self,
        tenant: &TenantId,
        body: T,
    ) -> Result<tonic::Request<T>, DirectoryError> {
        let mut request = tonic::Request::new(body);
        match self.tokens.for_tenant(tenant.as_str()).await {
            Ok(Some(token)) => attach_bearer(&mut request, &token)
                .map_err(|status| DirectoryError::Refused(status.message().to_owned()))?,
            Ok(None) => {}
            Err(e @ OutgoingTokenError::NotConfigured { .. }) => {
                return Err(DirectoryError::Refused(e.to_string()));
            }
            Err(e @ OutgoingTokenError::Provider(_)) => {
                return Err(DirectoryError::Unavailable(e.to_string()));
            }
        }
        Ok(request)
    }
}

fn failed(status: tonic::Status) -> DirectoryError {
    use tonic::Code;
    let detail = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::InvalidArgument | Code::PermissionDenied | Code::Unauthenticated => {
            DirectoryError::Refused(detail)
        }
        _ => DirectoryError::Unavailable(detail),
    }
}

/// Maps the wire claim to what matching needs; unreadable amounts or dates are left out
/// (they then confirm nothing).
pub fn view(c: &pb::Claim) -> ClaimView {
    let date = |s: &str| parse_iso_date(s).ok();
    ClaimView {
        id: c.id.clone(),
        patient_control_number: c.patient_control_number.clone(),
        payer_id: c.payer_id.clone(),
        patient_ref: c.patient_ref.clone(),
        total_charge: Money::parse(&c.total_charge).ok(),
        service_date_from: date(&c.service_date_from),
        lines: c
            .lines
            .iter()
            .map(|l| ClaimLineView {
                line_number: l.line_number,
                line_control_number: l.line_control_number.clone(),
                procedure_code: l.procedure_code.clone(),
                modifiers: l.modifiers.clone(),
                service_date: date(&l.service_date),
                charge: Money::parse(&l.charge).ok(),
            })
            .collect(),
    }
}

#[async_trait]
impl ClaimDirectory for GrpcClaimDirectory {
    async fn by_patient_control_number(
        &self,
        tenant: &TenantId,
        patient_control_number: &str,
    ) -> Result<Vec<ClaimView>, DirectoryError> {
        let mut out = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = self
                .request(
                    tenant,
                    pb::ListClaimsRequest {
                        page_size: 100,
                        page_token: page_token.clone(),
                        patient_control_number: patient_control_number.to_owned(),
                        ..Default::default()
                    },
                )
                .await?;
            let page = self
                .client
                .clone()
                .list_claims(request)
                .await
                .map_err(failed)?
                .into_inner();
            out.extend(page.claims.iter().map(view));
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            page_token = page.next_page_token;
        }
    }

    async fn by_patient_control_numbers(
        &self,
        tenant: &TenantId,
        patient_control_numbers: &[String],
    ) -> Result<HashMap<String, Vec<ClaimView>>, DirectoryError> {
        let mut out: HashMap<String, Vec<ClaimView>> = HashMap::new();
        for chunk in patient_control_numbers.chunks(LOOKUP_NUMBERS) {
            let request = self
                .request(
                    tenant,
                    pb::GetClaimsByPatientControlNumbersRequest {
                        patient_control_numbers: chunk.to_vec(),
                    },
                )
                .await?;
            let found = self
                .client
                .clone()
                .get_claims_by_patient_control_numbers(request)
                .await
                .map_err(failed)?
                .into_inner();
            for claim in &found.claims {
                out.entry(claim.patient_control_number.clone())
                    .or_default()
                    .push(view(claim));
            }
        }
        Ok(out)
    }

    async fn by_id(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<ClaimView>, DirectoryError> {
        let request = self
            .request(tenant, pb::GetClaimRequest { id: id.to_owned() })
            .await?;
        match self.client.clone().get_claim(request).await {
            Ok(response) => Ok(response.into_inner().claim.as_ref().map(view)),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(failed(status)),
        }
    }
}
