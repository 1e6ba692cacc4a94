//! The gRPC face of the collections service: request validation, proto <-> model mapping,
//! tenant from the caller's token, paging, and errors as precise gRPC statuses.

use std::sync::Arc;

use medbill_domain::AccountId;
use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::collections_service_server::CollectionsServiceServer;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{
    IDENTIFIER_LEN, identifier, required_id, required_text, tenant_id, timestamp, unimplemented,
};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use medbill_runtime::paging::{PageSize, QueryFingerprint, decode_page_token, split_page};
use tonic::{Request, Response, Status};

use crate::aging::{self, Aging};
use crate::model::{Account, AccountFilter, AccountStatus, NewAccount};
use crate::store::CollectionsStore;

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

/// What the ledger-posting RPCs need that is not built yet.
const POSTING_ISSUE: &str = "posting to the patient ledger (payments, refunds, write-offs, patient responsibility from remittance)";
/// What statements, plans, dunning and agencies need that is not built yet.
const COLLECTION_ISSUE: &str =
    "patient billing (statements, payment plans, dunning, agency placement, aging reports)";

#[tonic::async_trait]
impl pb::collections_service_server::CollectionsService for CollectionsService {
    async fn open_account(
        &self,
        request: Request<pb::OpenAccountRequest>,
    ) -> Result<Response<pb::OpenAccountResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let call = IdempotentCall::of(&req)?;
        let new = NewAccount {
            patient_ref: required_text("patient_ref", &req.patient_ref, IDENTIFIER_LEN)?,
            guarantor_ref: identifier("guarantor_ref", &req.guarantor_ref, false)?,
        };
        let mut op = match call.begin(self.store.database(), &tenant).await? {
            Begun::Replay(first) => return Ok(Response::new(first)),
            Begun::New(op) => op,
        };
        let account = self
            .store
            .open_account(op.tx(), &tenant, &new)
            .await
            .map_err(ServiceError::from)?;
        let response = pb::OpenAccountResponse {
            account: Some(to_proto(&account, None)),
        };
        op.commit(&response).await?;
        tracing::info!(account_id = %account.id, tenant = %tenant, "account opened");
        Ok(Response::new(response))
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let id = required_id::<AccountId>("id", &req.id)?;
        let account = self
            .store
            .get_account(&tenant, &id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("account {id}")))?;
        let aging = if req.include_aging {
            let entries = self
                .store
                .list_journal_entries(&tenant, &id)
                .await
                .map_err(ServiceError::from)?;
            Some(aging::age(&entries, chrono::Utc::now().date_naive()))
        } else {
            None
        };
        Ok(Response::new(pb::GetAccountResponse {
            account: Some(to_proto(&account, aging.as_ref())),
        }))
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let tenant = tenant_id(&request)?;
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
            patient_ref: identifier("patient_ref", &req.patient_ref, false)?,
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
            .map_err(ServiceError::from)?;
        let (page, next_page_token) = split_page(rows, size, &fingerprint, |a| a.id.to_string());
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: page.iter().map(|a| to_proto(a, None)).collect(),
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

/// Maps a stored account to its wire form (balance as a decimal string with cents).
pub fn to_proto(a: &Account, aging: Option<&Aging>) -> pb::Account {
    pb::Account {
        id: a.id.to_string(),
        patient_ref: a.patient_ref.clone(),
        guarantor_ref: a.guarantor_ref.clone().unwrap_or_default(),
        status: status_to_proto(a.status) as i32,
        balance: a.balance.to_string(),
        created_at: Some(timestamp(a.created_at)),
        updated_at: Some(timestamp(a.updated_at)),
        aging: aging.map(aging_to_proto),
        // Statements and plans are not built yet.
        first_statement_date: String::new(),
        last_statement_date: String::new(),
        payment_plan_id: String::new(),
    }
}

fn aging_to_proto(a: &Aging) -> pb::AgingBuckets {
    pb::AgingBuckets {
        days_0_30: a.days_0_30.to_string(),
        days_31_60: a.days_31_60.to_string(),
        days_61_90: a.days_61_90.to_string(),
        days_91_120: a.days_91_120.to_string(),
        days_over_120: a.days_over_120.to_string(),
        total: a.total().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use medbill_domain::TenantId;

    #[test]
    fn references_are_checked() {
        assert_eq!(
            required_text("patient_ref", "p-1", IDENTIFIER_LEN)
                .ok()
                .as_deref(),
            Some("p-1")
        );
        for bad in ["", "  ", " p", "p\n1", &"x".repeat(IDENTIFIER_LEN + 1)] {
            assert!(
                required_text("patient_ref", bad, IDENTIFIER_LEN).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(identifier("guarantor_ref", "", false).ok(), Some(None));
        assert!(identifier("guarantor_ref", " ", false).is_err());
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
        let wire = to_proto(&account, None);
        assert_eq!(wire.balance, "0.00");
        assert_eq!(wire.guarantor_ref, "");
        assert_eq!(wire.status, pb::AccountStatus::Open as i32);
    }
}
