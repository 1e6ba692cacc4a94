//! The gRPC face of the collections service: request validation, proto <-> model mapping,
//! tenant from the caller's token, paging, and errors as precise gRPC statuses.

use std::sync::Arc;

use medbill_domain::{AccountId, JournalEntryId, Money};
use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::collections_service_server::CollectionsServiceServer;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{
    IDENTIFIER_LEN, identifier, optional_date, required_id, required_text, tenant_id, timestamp,
};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use medbill_runtime::paging::{PageSize, QueryFingerprint, decode_page_token, split_page};
use tonic::{Request, Response, Status};

use crate::aging::{self, Aging};
use crate::clock::Clock;
use crate::model::{Account, AccountFilter, AccountStatus, EntryKind, JournalEntry, NewAccount};
use crate::posting::payer_type_to_proto;
use crate::records::AgingReportFilter;
use crate::settings::CollectionsConfig;
use crate::store::CollectionsStore;

/// The collections gRPC service over a [`CollectionsStore`].
#[derive(Clone)]
pub struct CollectionsService {
    pub(crate) store: Arc<dyn CollectionsStore>,
    pub(crate) config: CollectionsConfig,
    pub(crate) clock: Clock,
}

impl std::fmt::Debug for CollectionsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectionsService").finish_non_exhaustive()
    }
}

impl CollectionsService {
    /// Builds the service over a store (see [`crate::store::open_store`]) with the default
    /// settings (no self-pay discount).
    pub fn new(store: Arc<dyn CollectionsStore>) -> Self {
        Self::with_config(store, CollectionsConfig::default())
    }

    /// Builds the service over a store with the `[collections]` settings.
    pub fn with_config(store: Arc<dyn CollectionsStore>, config: CollectionsConfig) -> Self {
        Self {
            store,
            config,
            clock: Clock::system(),
        }
    }

    /// Uses `clock` for today's date (statements, dunning, the 501(r) guard) instead of the
    /// system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Wraps the service in its generated tonic server (apply message limits with
    /// `medbill_runtime::with_grpc_limits!`).
    pub fn into_server(self) -> CollectionsServiceServer<Self> {
        CollectionsServiceServer::new(self)
    }
}

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
            Some(aging::age(&entries, self.clock.today()))
        } else {
            None
        };
        let dunning = self
            .store
            .dunning_state(&tenant, &id)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(pb::GetAccountResponse {
            account: Some(self.with_dunning(to_proto(&account, aging.as_ref()), &dunning)),
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
        request: Request<pb::ListLedgerEntriesRequest>,
    ) -> Result<Response<pb::ListLedgerEntriesResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let size = PageSize::from_i32(req.page_size)?;
        let account_id = required_id::<AccountId>("account_id", &req.account_id)?;
        let kind = match pb::EntryKind::try_from(req.kind) {
            Ok(pb::EntryKind::Unspecified) => None,
            Ok(k) => Some(kind_from_proto(k)),
            Err(_) => {
                return Err(ServiceError::invalid_argument(
                    "kind",
                    format!("unknown entry kind {}", req.kind),
                )
                .into());
            }
        };
        let fingerprint = QueryFingerprint::builder("collections.ListLedgerEntries")
            .field("tenant", tenant.as_str())
            .field("account_id", account_id.to_string())
            .optional("kind", kind.map(EntryKind::as_str))
            .finish();
        let after = decode_page_token(&req.page_token, &fingerprint)?
            .map(|cursor| {
                JournalEntryId::parse(&cursor).map_err(|_| {
                    ServiceError::invalid_argument("page_token", "malformed page token")
                })
            })
            .transpose()?;
        self.store
            .get_account(&tenant, &account_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("account {account_id}")))?;
        // An account's ledger is read whole: the running balance needs every earlier entry.
        let entries = self
            .store
            .list_journal_entries(&tenant, &account_id)
            .await
            .map_err(ServiceError::from)?;
        let mut running = Money::ZERO;
        let mut rows = Vec::new();
        for entry in &entries {
            running += entry.balance_change();
            let listed = kind.is_none_or(|k| k == entry.kind)
                && after.as_ref().is_none_or(|a| entry.id > *a);
            if listed {
                rows.push((entry, running));
                if rows.len() >= size.fetch_limit() as usize {
                    break;
                }
            }
        }
        let (page, next_page_token) =
            split_page(rows, size, &fingerprint, |(e, _)| e.id.to_string());
        Ok(Response::new(pb::ListLedgerEntriesResponse {
            entries: page
                .iter()
                .map(|(e, running)| entry_to_proto(e, Some(*running)))
                .collect(),
            next_page_token,
        }))
    }

    async fn post_patient_responsibility(
        &self,
        request: Request<pb::PostPatientResponsibilityRequest>,
    ) -> Result<Response<pb::PostPatientResponsibilityResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.post_responsibility(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn post_patient_responsibilities(
        &self,
        request: Request<pb::PostPatientResponsibilitiesRequest>,
    ) -> Result<Response<pb::PostPatientResponsibilitiesResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.post_responsibilities(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn record_payments(
        &self,
        request: Request<pb::RecordPaymentsRequest>,
    ) -> Result<Response<pb::RecordPaymentsResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.record_payments_rpc(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn bill_self_pay(
        &self,
        request: Request<pb::BillSelfPayRequest>,
    ) -> Result<Response<pb::BillSelfPayResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.bill_self_pay_encounter(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn record_payment(
        &self,
        request: Request<pb::RecordPaymentRequest>,
    ) -> Result<Response<pb::RecordPaymentResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.record_payment_rpc(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn issue_refund(
        &self,
        request: Request<pb::IssueRefundRequest>,
    ) -> Result<Response<pb::IssueRefundResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.issue_refund_rpc(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn write_off(
        &self,
        request: Request<pb::WriteOffRequest>,
    ) -> Result<Response<pb::WriteOffResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.write_off_rpc(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn generate_statements(
        &self,
        request: Request<pb::GenerateStatementsRequest>,
    ) -> Result<Response<pb::GenerateStatementsResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.generate_statements_rpc(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_statement(
        &self,
        request: Request<pb::GetStatementRequest>,
    ) -> Result<Response<pb::GetStatementResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.get_statement_rpc(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_statement_print_file(
        &self,
        request: Request<pb::GetStatementPrintFileRequest>,
    ) -> Result<Response<pb::GetStatementPrintFileResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.get_statement_print_file_rpc(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn create_payment_plan(
        &self,
        request: Request<pb::CreatePaymentPlanRequest>,
    ) -> Result<Response<pb::CreatePaymentPlanResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.create_payment_plan_rpc(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_payment_plan(
        &self,
        request: Request<pb::GetPaymentPlanRequest>,
    ) -> Result<Response<pb::GetPaymentPlanResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.get_payment_plan_rpc(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn cancel_payment_plan(
        &self,
        request: Request<pb::CancelPaymentPlanRequest>,
    ) -> Result<Response<pb::CancelPaymentPlanResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.cancel_payment_plan_rpc(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn run_dunning(
        &self,
        request: Request<pb::RunDunningRequest>,
    ) -> Result<Response<pb::RunDunningResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.run_dunning_rpc(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn set_account_holds(
        &self,
        request: Request<pb::SetAccountHoldsRequest>,
    ) -> Result<Response<pb::SetAccountHoldsResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.set_account_holds_rpc(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn place_with_agency(
        &self,
        request: Request<pb::PlaceWithAgencyRequest>,
    ) -> Result<Response<pb::PlaceWithAgencyResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.place_with_agency_rpc(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn recall_placement(
        &self,
        request: Request<pb::RecallPlacementRequest>,
    ) -> Result<Response<pb::RecallPlacementResponse>, Status> {
        let tenant = tenant_id(&request)?;
        self.recall_placement_rpc(tenant, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn aging_report(
        &self,
        request: Request<pb::AgingReportRequest>,
    ) -> Result<Response<pb::AgingReportResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let size = PageSize::from_i32(req.page_size)?;
        let as_of =
            optional_date("as_of_date", &req.as_of_date)?.unwrap_or_else(|| self.clock.today());
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
        let min_bucket = match pb::AgingBucket::try_from(req.min_bucket) {
            Ok(pb::AgingBucket::Unspecified) => 1,
            Ok(b) => u8::try_from(b as i32).unwrap_or(1),
            Err(_) => {
                return Err(ServiceError::invalid_argument(
                    "min_bucket",
                    format!("unknown aging bucket {}", req.min_bucket),
                )
                .into());
            }
        };
        let filter = AgingReportFilter { status, min_bucket };
        let fingerprint = QueryFingerprint::builder("collections.AgingReport")
            .field("tenant", tenant.as_str())
            .field("as_of_date", as_of.to_string())
            .optional("status", status.map(AccountStatus::as_str))
            .field("min_bucket", min_bucket.to_string())
            .finish();
        let after = decode_page_token(&req.page_token, &fingerprint)?
            .map(|cursor| {
                AccountId::parse(&cursor).map_err(|_| {
                    ServiceError::invalid_argument("page_token", "malformed page token")
                })
            })
            .transpose()?;
        let report = self
            .store
            .aging_report(&tenant, as_of, &filter, after.as_ref(), size.fetch_limit())
            .await
            .map_err(ServiceError::from)?;
        let (page, next_page_token) = split_page(report.rows, size, &fingerprint, |r| {
            r.account_id.to_string()
        });
        Ok(Response::new(pb::AgingReportResponse {
            totals: Some(aging_to_proto(&report.totals)),
            account_count: u32::try_from(report.account_count).unwrap_or(u32::MAX),
            rows: page
                .iter()
                .map(|r| pb::AgingReportRow {
                    account_id: r.account_id.to_string(),
                    patient_ref: r.patient_ref.clone(),
                    status: status_to_proto(r.status) as i32,
                    aging: Some(aging_to_proto(&r.aging)),
                })
                .collect(),
            next_page_token,
        }))
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

pub(crate) fn status_to_proto(s: AccountStatus) -> pb::AccountStatus {
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
        credit_balance: a.credit_balance().to_string(),
        amount_due: a.amount_due().to_string(),
        first_statement_date: date_text(a.collection.first_statement_date),
        last_statement_date: date_text(a.collection.last_statement_date),
        payment_plan_id: a
            .collection
            .payment_plan
            .map(|(id, _)| id.to_string())
            .unwrap_or_default(),
        payment_plan_status: a
            .collection
            .payment_plan
            .map(|(_, status)| status.as_str().to_owned())
            .unwrap_or_default(),
        // Read apart from the account row: GetAccount and the holds RPCs add them.
        dunning_stage: String::new(),
        financial_assistance_pending: false,
        disputed: false,
    }
}

/// A date on the wire: "YYYY-MM-DD", empty when none.
pub(crate) fn date_text(d: Option<chrono::NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn kind_from_proto(k: pb::EntryKind) -> EntryKind {
    match k {
        // Unspecified never reaches here (it means "no filter").
        pb::EntryKind::Unspecified | pb::EntryKind::Adjustment => EntryKind::Adjustment,
        pb::EntryKind::PatientResponsibility => EntryKind::PatientResponsibility,
        pb::EntryKind::Payment => EntryKind::Payment,
        pb::EntryKind::Refund => EntryKind::Refund,
        pb::EntryKind::WriteOff => EntryKind::WriteOff,
        pb::EntryKind::Reversal => EntryKind::Reversal,
        pb::EntryKind::SelfPayCharge => EntryKind::SelfPayCharge,
    }
}

fn kind_to_proto(k: EntryKind) -> pb::EntryKind {
    match k {
        EntryKind::PatientResponsibility => pb::EntryKind::PatientResponsibility,
        EntryKind::Payment => pb::EntryKind::Payment,
        EntryKind::Refund => pb::EntryKind::Refund,
        EntryKind::WriteOff => pb::EntryKind::WriteOff,
        EntryKind::Adjustment => pb::EntryKind::Adjustment,
        EntryKind::Reversal => pb::EntryKind::Reversal,
        EntryKind::SelfPayCharge => pb::EntryKind::SelfPayCharge,
    }
}

/// Maps a posted journal entry to its wire form; `running` is the patient balance after it
/// (ListLedgerEntries).
pub fn entry_to_proto(e: &JournalEntry, running: Option<Money>) -> pb::JournalEntry {
    pb::JournalEntry {
        id: e.id.to_string(),
        account_id: e.account_id.to_string(),
        kind: kind_to_proto(e.kind) as i32,
        memo: e.memo.clone(),
        posted_at: Some(timestamp(e.posted_at)),
        idempotency_key: e.idempotency_key.clone().unwrap_or_default(),
        postings: e
            .postings
            .iter()
            .map(|p| pb::Posting {
                ledger_account: p.ledger_account.as_str().to_owned(),
                amount: p.amount.to_string(),
                claim_id: p.claim.map(|c| c.to_string()).unwrap_or_default(),
            })
            .collect(),
        source_ref: e.source_ref.clone().unwrap_or_default(),
        balance_change: e.balance_change().to_string(),
        running_balance: running.map(|r| r.to_string()).unwrap_or_default(),
        payer_type: e
            .payer_type
            .map_or(pb::PayerType::Unspecified, payer_type_to_proto) as i32,
    }
}

pub(crate) fn aging_to_proto(a: &Aging) -> pb::AgingBuckets {
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
            collection: Default::default(),
        };
        let wire = to_proto(&account, None);
        assert_eq!(wire.balance, "0.00");
        assert_eq!(wire.guarantor_ref, "");
        assert_eq!(wire.status, pb::AccountStatus::Open as i32);
    }
}
