//! The gRPC face of the collections service: request validation, proto <-> model mapping,
//! tenant from the caller's token, paging, and errors as precise gRPC statuses.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use medbill_domain::{AccountId, IdempotencyKey, TenantId};
use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::collections_service_server::CollectionsServiceServer;
use medbill_runtime::ServiceError;
use medbill_runtime::paging::{PageSize, QueryFingerprint, decode_page_token, split_page};
use tonic::{Request, Response, Status};

use crate::model::{Account, AccountFilter, AccountStatus, MAX_TEXT_LEN, NewAccount};
use crate::store::{CollectionsStore, StoreError};

/// The collections gRPC service over a [`CollectionsStore`].
#[derive(Clone)]
pub struct CollectionsService {
    store: Arc<dyn CollectionsStore>,
}

impl std::fmt::Debug for CollectionsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectionsService").finish_non_exhaustive()
    }
}

impl CollectionsService {
    /// Builds the service over a store (see [`crate::store::open_store`]).
    pub fn new(store: Arc<dyn CollectionsStore>) -> Self {
        Self { store }
    }

    /// Wraps the service in its generated tonic server (apply message limits with
    /// `medbill_runtime::with_grpc_limits!`).
    pub fn into_server(self) -> CollectionsServiceServer<Self> {
        CollectionsServiceServer::new(self)
    }
}

fn unimplemented(rpc: &str, what: &str) -> Status {
    Status::unimplemented(format!("{rpc} arrives with {what}"))
}

/// What the ledger-posting RPCs wait for.
const POSTING_ISSUE: &str = "the patient-ledger posting issue (remittance to collections)";
/// What statements, plans, dunning and agencies wait for.
const COLLECTION_ISSUE: &str = "the patient billing and collections issue";

#[tonic::async_trait]
impl pb::collections_service_server::CollectionsService for CollectionsService {
    async fn open_account(
        &self,
        request: Request<pb::OpenAccountRequest>,
    ) -> Result<Response<pb::OpenAccountResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let req = request.into_inner();
        let key = idempotency_key(&req.idempotency_key)?;
        let new = NewAccount {
            patient_ref: required("patient_ref", &req.patient_ref)?,
            guarantor_ref: optional("guarantor_ref", &req.guarantor_ref)?,
        };
        let account = self
            .store
            .open_account(&tenant, &key, &new)
            .await
            .map_err(store_error)?;
        tracing::info!(account_id = %account.id, tenant = %tenant, "account opened");
        Ok(Response::new(pb::OpenAccountResponse {
            account: Some(to_proto(&account)),
        }))
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let req = request.into_inner();
        if req.include_aging {
            return Err(unimplemented(
                "GetAccount with include_aging",
                COLLECTION_ISSUE,
            ));
        }
        let id = parse_account_id("id", &req.id)?;
        let account = self
            .store
            .get_account(&tenant, &id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::not_found(format!("account {id}")))?;
        Ok(Response::new(pb::GetAccountResponse {
            account: Some(to_proto(&account)),
        }))
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let req = request.into_inner();
        let size = PageSize::from_i32(req.page_size)?;
        let status = match pb::AccountStatus::try_from(req.status) {
            Ok(pb::AccountStatus::Unspecified) => None,
            Ok(s) => Some(status_from_proto(s)),
            Err(_) => {
                return Err(ServiceError::invalid_argument(
                    "status",
                    format!("unknown account status {}", req.status),
                )
                .into());
            }
        };
        let filter = AccountFilter {
            status,
            patient_ref: (!req.patient_ref.is_empty()).then(|| req.patient_ref.clone()),
        };
        let fingerprint = QueryFingerprint::builder("collections.ListAccounts")
            .field("tenant", tenant.as_str())
            .optional("status", filter.status.map(AccountStatus::as_str))
            .optional("patient_ref", filter.patient_ref.as_deref())
            .finish();
        let after = decode_page_token(&req.page_token, &fingerprint)?
            .map(|cursor| {
                AccountId::parse(&cursor).map_err(|_| {
                    ServiceError::invalid_argument("page_token", "malformed page token")
                })
            })
            .transpose()?;
        let rows = self
            .store
            .list_accounts(&tenant, &filter, after.as_ref(), size.fetch_limit())
            .await
            .map_err(store_error)?;
        let (page, next_page_token) = split_page(rows, size, &fingerprint, |a| a.id.to_string());
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: page.iter().map(to_proto).collect(),
            next_page_token,
        }))
    }

    async fn list_ledger_entries(
        &self,
        _request: Request<pb::ListLedgerEntriesRequest>,
    ) -> Result<Response<pb::ListLedgerEntriesResponse>, Status> {
        Err(unimplemented("ListLedgerEntries", POSTING_ISSUE))
    }

    async fn post_patient_responsibility(
        &self,
        _request: Request<pb::PostPatientResponsibilityRequest>,
    ) -> Result<Response<pb::PostPatientResponsibilityResponse>, Status> {
        Err(unimplemented("PostPatientResponsibility", POSTING_ISSUE))
    }

    async fn record_payment(
        &self,
        _request: Request<pb::RecordPaymentRequest>,
    ) -> Result<Response<pb::RecordPaymentResponse>, Status> {
        Err(unimplemented("RecordPayment", POSTING_ISSUE))
    }

    async fn issue_refund(
        &self,
        _request: Request<pb::IssueRefundRequest>,
    ) -> Result<Response<pb::IssueRefundResponse>, Status> {
        Err(unimplemented("IssueRefund", POSTING_ISSUE))
    }

    async fn write_off(
        &self,
        _request: Request<pb::WriteOffRequest>,
    ) -> Result<Response<pb::WriteOffResponse>, Status> {
        Err(unimplemented("WriteOff", POSTING_ISSUE))
    }

    async fn generate_statements(
        &self,
        _request: Request<pb::GenerateStatementsRequest>,
    ) -> Result<Response<pb::GenerateStatementsResponse>, Status> {
        Err(unimplemented("GenerateStatements", COLLECTION_ISSUE))
    }

    async fn create_payment_plan(
        &self,
        _request: Request<pb::CreatePaymentPlanRequest>,
    ) -> Result<Response<pb::CreatePaymentPlanResponse>, Status> {
        Err(unimplemented("CreatePaymentPlan", COLLECTION_ISSUE))
    }

    async fn run_dunning(
        &self,
        _request: Request<pb::RunDunningRequest>,
    ) -> Result<Response<pb::RunDunningResponse>, Status> {
        Err(unimplemented("RunDunning", COLLECTION_ISSUE))
    }

    async fn place_with_agency(
        &self,
        _request: Request<pb::PlaceWithAgencyRequest>,
    ) -> Result<Response<pb::PlaceWithAgencyResponse>, Status> {
        Err(unimplemented("PlaceWithAgency", COLLECTION_ISSUE))
    }

    async fn aging_report(
        &self,
        _request: Request<pb::AgingReportRequest>,
    ) -> Result<Response<pb::AgingReportResponse>, Status> {
        Err(unimplemented("AgingReport", COLLECTION_ISSUE))
    }
}

/// Returns the caller's tenant as resolved by the auth layer.
fn tenant_of<T>(request: &Request<T>) -> Result<TenantId, Status> {
    let tenant = medbill_runtime::tenant(request)?;
    // Tenant ids come from configuration; one that is not a valid id is a deployment error.
    TenantId::parse(tenant.as_str()).map_err(|e| ServiceError::internal(e).into())
}

/// Maps store failures to statuses: key reuse and unknown accounts are the caller's errors,
/// a busy database is retryable, anything else is internal (logged, not shown).
fn store_error(err: StoreError) -> Status {
    match err {
        StoreError::IdempotencyKeyReused { key } => ServiceError::AlreadyExists(format!(
            "idempotency key {key:?} was already used with a different request; \
             use a new key for a new request"
        ))
        .into(),
        StoreError::AccountNotFound(id) => ServiceError::not_found(format!("account {id}")).into(),
        StoreError::Ledger(e) => ServiceError::FailedPrecondition(e.to_string()).into(),
        e if e.is_retryable() => {
            tracing::warn!(error = %e, "database busy");
            ServiceError::Unavailable("the database is busy; retry the call".to_owned()).into()
        }
        e => ServiceError::internal(e).into(),
    }
}

fn idempotency_key(raw: &str) -> Result<IdempotencyKey, ServiceError> {
    if raw.is_empty() {
        return Err(ServiceError::invalid_argument(
            "idempotency_key",
            "is required",
        ));
    }
    IdempotencyKey::parse(raw)
        .map_err(|e| ServiceError::invalid_argument("idempotency_key", e.to_string()))
}

fn parse_account_id(field: &str, raw: &str) -> Result<AccountId, ServiceError> {
    if raw.is_empty() {
        return Err(ServiceError::invalid_argument(field, "is required"));
    }
    AccountId::parse(raw).map_err(|e| ServiceError::invalid_argument(field, e.to_string()))
}

/// Checks an EHR reference: at most [`MAX_TEXT_LEN`] characters, no control characters, no
/// surrounding whitespace. The value is not echoed back.
fn check_ref(field: &str, value: &str) -> Result<(), ServiceError> {
    let len = value.chars().count();
    if len > MAX_TEXT_LEN {
        return Err(ServiceError::invalid_argument(
            field,
            format!("is {len} characters long; at most {MAX_TEXT_LEN} are allowed"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ServiceError::invalid_argument(
            field,
            "contains control characters",
        ));
    }
    if value.trim() != value {
        return Err(ServiceError::invalid_argument(
            field,
            "has leading or trailing whitespace",
        ));
    }
    Ok(())
}

fn required(field: &str, value: &str) -> Result<String, ServiceError> {
    if value.trim().is_empty() {
        return Err(ServiceError::invalid_argument(field, "is required"));
    }
    check_ref(field, value)?;
    Ok(value.to_owned())
}

fn optional(field: &str, value: &str) -> Result<Option<String>, ServiceError> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.trim().is_empty() {
        return Err(ServiceError::invalid_argument(
            field,
            "is blank; leave it empty or give a value",
        ));
    }
    check_ref(field, value)?;
    Ok(Some(value.to_owned()))
}

fn status_from_proto(s: pb::AccountStatus) -> AccountStatus {
    match s {
        // Unspecified never reaches here (it means "no filter"); OPEN is the safe reading.
        pb::AccountStatus::Unspecified | pb::AccountStatus::Open => AccountStatus::Open,
        pb::AccountStatus::PaymentPlan => AccountStatus::PaymentPlan,
        pb::AccountStatus::InCollections => AccountStatus::InCollections,
        pb::AccountStatus::Closed => AccountStatus::Closed,
    }
}

fn status_to_proto(s: AccountStatus) -> pb::AccountStatus {
    match s {
        AccountStatus::Open => pb::AccountStatus::Open,
        AccountStatus::PaymentPlan => pb::AccountStatus::PaymentPlan,
        AccountStatus::InCollections => pb::AccountStatus::InCollections,
        AccountStatus::Closed => pb::AccountStatus::Closed,
    }
}

fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        // Always below 1e9, so it fits.
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Maps a stored account to its wire form (balance as a decimal string with cents).
pub fn to_proto(a: &Account) -> pb::Account {
    pb::Account {
        id: a.id.to_string(),
        patient_ref: a.patient_ref.clone(),
        guarantor_ref: a.guarantor_ref.clone().unwrap_or_default(),
        status: status_to_proto(a.status) as i32,
        balance: a.balance.to_string(),
        created_at: Some(timestamp(a.created_at)),
        updated_at: Some(timestamp(a.updated_at)),
        // Aging, statements and plans arrive with the collections issue.
        aging: None,
        first_statement_date: String::new(),
        last_statement_date: String::new(),
        payment_plan_id: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_checked() {
        assert_eq!(required("patient_ref", "p-1").ok().as_deref(), Some("p-1"));
        for bad in ["", "  ", " p", "p\n1", &"x".repeat(MAX_TEXT_LEN + 1)] {
            assert!(required("patient_ref", bad).is_err(), "{bad:?}");
        }
        assert_eq!(optional("guarantor_ref", "").ok(), Some(None));
        assert!(optional("guarantor_ref", " ").is_err());
    }

    #[test]
    fn statuses_map_both_ways() {
        for s in AccountStatus::ALL {
            assert_eq!(status_from_proto(status_to_proto(*s)), *s);
        }
    }

    #[test]
    fn a_zero_balance_is_sent_with_cents() {
        let account = Account {
            id: AccountId::new(),
            tenant_id: TenantId::parse("t").unwrap_or_else(|e| panic!("{e}")),
            patient_ref: "p".into(),
            guarantor_ref: None,
            status: AccountStatus::Open,
            balance: medbill_domain::Money::ZERO,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let wire = to_proto(&account);
        assert_eq!(wire.balance, "0.00");
        assert_eq!(wire.guarantor_ref, "");
        assert_eq!(wire.status, pb::AccountStatus::Open as i32);
    }
}
