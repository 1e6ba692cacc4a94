//! The gRPC face of the remittance service: ERA ingestion (unary and client streaming), GetEra and
//! ListEras, with the tenant from the caller's token, idempotency, paging and precise statuses.
//!
//! A file is stored once and yields one ERA per 835 transaction set; the response lists them all
//! (`eras`, in set order) and `era` is the first. A set that does not balance is UNBALANCED and a set
//! whose 835 content is unusable is REJECTED (naming the X12 segment and byte offset), each without
//! holding back the other sets, which are answered normally. When no ERA of the file is usable (a
//! file that does not parse as an 835, or every set rejected) the file is still stored (raw bytes kept
//! for audit and re-processing) and the call answers INVALID_ARGUMENT naming the X12 segment and
//! position and the id of the stored ERA; a retry of the same file answers the same.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use medbill_codesets::{CodeList, short_description};
use medbill_domain::{EraId, TenantId, format_iso_date};
use medbill_proto::common::v1 as common;
use medbill_proto::remittance::v1 as pb;
use medbill_proto::remittance::v1::ingest_era_stream_request::Part;
use medbill_proto::remittance::v1::remittance_service_server::RemittanceServiceServer;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{
    identifier, optional_date, optional_instant, required_text, tenant_id, text, timestamp,
};
use medbill_runtime::idempotent::{Begun, IdempotentCall, IdempotentRequest};
use medbill_runtime::paging::{PageSize, QueryFingerprint, decode_page_token, split_page};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use crate::intake::ingest_file;
use crate::model::{
    Adjustment, BalanceLevel, BalanceProblem, ClaimPayment, ClaimPaymentFilter, ClaimPaymentId,
    Era, EraFileId, EraFilter, EraStatus, LineMatch, PostingStatus, ProcedureCode,
    ProviderAdjustment, sha256_hex,
};
use crate::posting::{Poster, Worklist, write};
use crate::store::{EraStore, EraStoreError};
use crate::upload::{Spool, Upload};

/// Longest operator note or reason.
pub(crate) const MAX_REASON_LEN: usize = 500;

/// Largest 835 accepted by default, in bytes (either RPC).
pub const DEFAULT_MAX_ERA_BYTES: usize = 64 * 1024 * 1024;
/// Longest payer identifier (the 835's N1*PR / TRN03 is at most 80 characters).
pub(crate) const MAX_PAYER_ID_LEN: usize = 80;
/// Longest file name accepted.
const MAX_FILE_NAME_LEN: usize = 255;

/// The remittance gRPC service over an [`EraStore`].
#[derive(Clone)]
pub struct RemittanceService {
    store: Arc<dyn EraStore>,
    max_era_bytes: usize,
    poster: Option<Poster>,
}

impl std::fmt::Debug for RemittanceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemittanceService")
            .field("max_era_bytes", &self.max_era_bytes)
            .finish_non_exhaustive()
    }
}

impl RemittanceService {
    /// Builds the service over a store (see [`crate::store::open_store`]), accepting 835 files up to
    /// [`DEFAULT_MAX_ERA_BYTES`].
    pub fn new(store: Arc<dyn EraStore>) -> Self {
        Self {
            store,
            max_era_bytes: DEFAULT_MAX_ERA_BYTES,
            poster: None,
        }
    }

    /// Posts through `poster`: it is woken after each ingest and release, and matches by hand
    /// (MatchClaimPayment answers UNAVAILABLE without one).
    pub fn with_poster(mut self, poster: Poster) -> Self {
        self.poster = Some(poster);
        self
    }

    /// The store the RPCs read and write.
    pub(crate) fn store(&self) -> &dyn EraStore {
        self.store.as_ref()
    }

    fn wake_poster(&self) {
        if let Some(p) = &self.poster {
            p.wake();
        }
    }

    /// Sets the largest 835 accepted, in bytes. A unary IngestEra is also bounded by the server's
    /// message-size limit; IngestEraStream only by this.
    pub fn with_max_era_bytes(mut self, max: usize) -> Self {
        self.max_era_bytes = max;
        self
    }

    /// Wraps the service in its generated tonic server (apply message limits with
    /// `medbill_runtime::with_grpc_limits!`).
    pub fn into_server(self) -> RemittanceServiceServer<Self> {
        RemittanceServiceServer::new(self)
    }

    /// Parses, balances and stores one file; the shared body of both ingest RPCs.
    ///
    /// Both RPCs are one operation for idempotency: the scope is IngestEra's and the request is
    /// the IngestEra message with its key cleared and the content's SHA-256 (hex) in place of the
    /// content, so a unary retry of a streamed upload under the same key is recognised as the
    /// same request. `key_field` names the key in errors.
    async fn ingest(
        &self,
        tenant: &TenantId,
        key: &str,
        key_field: &str,
        content: Upload,
        sha256: Option<String>,
        file_name: String,
    ) -> Result<pb::IngestEraResponse, Status> {
        if content.is_empty() {
            return Err(ServiceError::invalid_argument(
                "content",
                "is required (the raw 835 bytes)",
            )
            .into());
        }
        self.check_size(usize::try_from(content.len()).unwrap_or(usize::MAX))?;
        let sha256 = match (sha256, &content) {
            (Some(known), _) => known,
            // Hashing a large file is CPU work: keep it off the async workers.
            (None, Upload::Memory(bytes)) => {
                let bytes = Arc::clone(bytes);
                tokio::task::spawn_blocking(move || sha256_hex(&bytes))
                    .await
                    .map_err(|e| Status::from(ServiceError::internal(e)))?
            }
            (None, Upload::Spooled { .. }) => {
                return Err(
                    ServiceError::internal("a spooled upload arrived without its hash").into(),
                );
            }
        };
        // The request stands for itself by its content's hash, not its bytes: a copy of a large
        // file only to fingerprint it would double the memory an ingest takes.
        let canonical = pb::IngestEraRequest {
            idempotency_key: String::new(),
            content: sha256.as_bytes().to_vec(),
            file_name,
        };
        let call = IdempotentCall::from_parts(
            pb::IngestEraRequest::METHOD,
            key,
            &canonical.encode_to_vec(),
        )
        .map_err(|e| rename(e, key_field))?;
        let file_name = canonical.file_name;
        let db = self.store.database();
        if let Some(first) = call.replayed(db, tenant).await? {
            return answer(first, true);
        }
        let mut op = match call.begin(db, tenant).await? {
            Begun::Replay(first) => return answer(first, true),
            Begun::New(op) => op,
        };
        let ingested = ingest_file(
            self.store.as_ref(),
            op.tx(),
            tenant,
            content,
            &sha256,
            &file_name,
        )
        .await
        .map_err(ServiceError::from)?;
        let eras: Vec<pb::Era> = ingested.eras.iter().map(to_proto).collect();
        let response = pb::IngestEraResponse {
            era: eras.first().cloned(),
            duplicate: ingested.duplicate,
            eras,
        };
        // A file with no usable ERA is kept (REJECTED) and its key answers the same error on every
        // retry: the stored response holds the ERAs, the error is made from them.
        op.commit(&response).await?;
        self.wake_poster();
        if !ingested.duplicate {
            for era in &ingested.eras {
                tracing::info!(
                    era_id = %era.id,
                    file_id = %era.file_id,
                    set_position = era.set_position,
                    tenant = %tenant,
                    status = %era.status,
                    claims = era.summary.claim_count,
                    "ERA received"
                );
            }
        }
        answer(response, false)
    }

    fn check_size(&self, len: usize) -> Result<(), Status> {
        if len > self.max_era_bytes {
            return Err(ServiceError::invalid_argument(
                "content",
                format!(
                    "is larger than the {} byte limit for one ERA",
                    self.max_era_bytes
                ),
            )
            .into());
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl pb::remittance_service_server::RemittanceService for RemittanceService {
    async fn ingest_era(
        &self,
        request: Request<pb::IngestEraRequest>,
    ) -> Result<Response<pb::IngestEraResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let file_name = file_name("file_name", &req.file_name)?;
        let response = self
            .ingest(
                &tenant,
                &req.idempotency_key,
                "idempotency_key",
                Upload::in_memory(req.content),
                None,
                file_name,
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn ingest_era_stream(
        &self,
        request: Request<Streaming<pb::IngestEraStreamRequest>>,
    ) -> Result<Response<pb::IngestEraStreamResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let mut stream = request.into_inner();
        let header = match stream.message().await? {
            Some(pb::IngestEraStreamRequest {
                part: Some(Part::Header(h)),
            }) => h,
            Some(_) => {
                return Err(ServiceError::invalid_argument(
                    "header",
                    "the first message must carry the header, not a chunk",
                )
                .into());
            }
            None => {
                return Err(ServiceError::invalid_argument(
                    "header",
                    "is required: the stream ended before any message",
                )
                .into());
            }
        };
        if header.idempotency_key.is_empty() {
            return Err(
                ServiceError::invalid_argument("header.idempotency_key", "is required").into(),
            );
        }
        let file_name = file_name("header.file_name", &header.file_name)?;
        if header.total_size > 0 {
            let declared = usize::try_from(header.total_size).unwrap_or(usize::MAX);
            self.check_size(declared).map_err(|_| {
                ServiceError::invalid_argument(
                    "header.total_size",
                    format!(
                        "{} is larger than the {} byte limit for one ERA",
                        header.total_size, self.max_era_bytes
                    ),
                )
            })?;
        }
        // Spooled to a temporary file as it arrives (see `crate::upload`) and hashed on the way,
        // so the content is never read again for its hash.
        let mut content = Spool::new().map_err(spool_failed)?;
        let mut hasher = Sha256::new();
        let mut n = 0usize;
        while let Some(message) = stream.message().await? {
            n += 1;
            match message.part {
                Some(Part::Chunk(chunk)) => {
                    if content.len() + chunk.len() as u64 > self.max_era_bytes as u64 {
                        return Err(ServiceError::invalid_argument(
                            "chunk",
                            format!(
                                "the content is larger than the {} byte limit for one ERA",
                                self.max_era_bytes
                            ),
                        )
                        .into());
                    }
                    hasher.update(&chunk);
                    content.push(&chunk).await.map_err(spool_failed)?;
                }
                Some(Part::Header(_)) => {
                    return Err(ServiceError::invalid_argument(
                        "header",
                        format!("appears again in message {}; send it only first", n + 1),
                    )
                    .into());
                }
                None => {
                    return Err(ServiceError::invalid_argument(
                        "part",
                        format!("message {} carries neither a header nor a chunk", n + 1),
                    )
                    .into());
                }
            }
        }
        let received = content.len();
        if header.total_size > 0 && header.total_size != received {
            return Err(ServiceError::invalid_argument(
                "header.total_size",
                format!(
                    "declares {} bytes but {received} were received",
                    header.total_size
                ),
            )
            .into());
        }
        let actual = format!("{:x}", hasher.finalize());
        if !header.content_sha256.is_empty() && !header.content_sha256.eq_ignore_ascii_case(&actual)
        {
            return Err(ServiceError::invalid_argument(
                "header.content_sha256",
                format!("does not match the received content (its SHA-256 is {actual})"),
            )
            .into());
        }
        let sha256 = Some(actual);
        let response = self
            .ingest(
                &tenant,
                &header.idempotency_key,
                "header.idempotency_key",
                content.finish().await.map_err(spool_failed)?,
                sha256,
                file_name,
            )
            .await?;
        Ok(Response::new(pb::IngestEraStreamResponse {
            era: response.era,
            duplicate: response.duplicate,
            bytes_received: received,
            eras: response.eras,
        }))
    }

    async fn get_era(
        &self,
        request: Request<pb::GetEraRequest>,
    ) -> Result<Response<pb::GetEraResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        if req.id.is_empty() {
            return Err(ServiceError::invalid_argument("id", "is required").into());
        }
        let id = EraId::parse(&req.id)
            .map_err(|e| ServiceError::invalid_argument("id", e.to_string()))?;
        let era = self
            .store
            .get_era(&tenant, id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("ERA {id}")))?;
        let mut out = to_proto(&era);
        out.review_reason = self
            .store
            .review_reason(&tenant, id)
            .await
            .map_err(ServiceError::from)?;
        if req.include_claim_payments {
            let filter = ClaimPaymentFilter {
                era_id: Some(id),
                ..Default::default()
            };
            let mut after = None;
            loop {
                let page = self
                    .store
                    .list_claim_payments(&tenant, &filter, after, 1_000)
                    .await
                    .map_err(ServiceError::from)?;
                let Some(last) = page.last() else { break };
                after = Some(last.id);
                out.claim_payments.extend(page.iter().map(payment_to_proto));
                if page.len() < 1_000 {
                    break;
                }
            }
        }
        if req.include_content {
            out.content = self
                .store
                .era_content(&tenant, id)
                .await
                .map_err(ServiceError::from)?
                .ok_or_else(|| ServiceError::not_found(format!("ERA {id}")))?;
        }
        Ok(Response::new(pb::GetEraResponse { era: Some(out) }))
    }

    async fn list_eras(
        &self,
        request: Request<pb::ListErasRequest>,
    ) -> Result<Response<pb::ListErasResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let size = PageSize::from_i32(req.page_size)?;
        let status = match pb::EraStatus::try_from(req.status) {
            Ok(pb::EraStatus::Unspecified) => None,
            Ok(pb::EraStatus::Received) => Some(EraStatus::Received),
            Ok(pb::EraStatus::Posted) => Some(EraStatus::Posted),
            Ok(pb::EraStatus::Unbalanced) => Some(EraStatus::Unbalanced),
            Ok(pb::EraStatus::Rejected) => Some(EraStatus::Rejected),
            Err(_) => {
                return Err(ServiceError::invalid_argument(
                    "status",
                    format!("{} is not an ERA status", req.status),
                )
                .into());
            }
        };
        let (received_from, received_to) = match &req.received {
            Some(range) => (
                optional_instant("received.start_time", range.start_time.as_ref())?,
                optional_instant("received.end_time", range.end_time.as_ref())?,
            ),
            None => (None, None),
        };
        let file_id = if req.file_id.is_empty() {
            None
        } else {
            Some(
                EraFileId::parse(&req.file_id)
                    .map_err(|e| ServiceError::invalid_argument("file_id", e))?,
            )
        };
        let filter = EraFilter {
            status,
            payer_id: text("payer_id", &req.payer_id, MAX_PAYER_ID_LEN, false)?,
            trace_number: identifier("trace_number", &req.trace_number, false)?,
            received_from,
            received_to,
            file_id,
            reconciliation: crate::deposits::rpc::status_from_proto(
                "reconciliation_status",
                req.reconciliation_status,
            )?,
        };
        let fingerprint = QueryFingerprint::builder("remittance.ListEras")
            .field("tenant", tenant.as_str())
            .optional("status", filter.status.map(EraStatus::as_str))
            .optional("payer_id", filter.payer_id.as_deref())
            .optional("trace_number", filter.trace_number.as_deref())
            .optional(
                "from",
                received_from.map(|t| t.timestamp_micros().to_string()),
            )
            .optional("to", received_to.map(|t| t.timestamp_micros().to_string()))
            .optional("file_id", file_id.map(|f| f.to_string()))
            .optional(
                "reconciliation",
                filter
                    .reconciliation
                    .map(crate::deposits::ReconciliationStatus::as_str),
            )
            .finish();
        let after = decode_page_token(&req.page_token, &fingerprint)?
            .map(|cursor| {
                EraId::parse(&cursor).map_err(|_| {
                    ServiceError::invalid_argument("page_token", "malformed page token")
                })
            })
            .transpose()?;
        let rows = self
            .store
            .list_eras(&tenant, &filter, after, size.fetch_limit())
            .await
            .map_err(ServiceError::from)?;
        let (page, next_page_token) = split_page(rows, size, &fingerprint, |e| e.id.to_string());
        Ok(Response::new(pb::ListErasResponse {
            eras: page.iter().map(to_proto).collect(),
            next_page_token,
        }))
    }

    async fn list_claim_payments(
        &self,
        request: Request<pb::ListClaimPaymentsRequest>,
    ) -> Result<Response<pb::ListClaimPaymentsResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let size = PageSize::from_i32(req.page_size)?;
        let status = match pb::PostingStatus::try_from(req.posting_status) {
            Ok(pb::PostingStatus::Unspecified) => None,
            Ok(pb::PostingStatus::Pending) => Some(PostingStatus::Pending),
            Ok(pb::PostingStatus::Posted) => Some(PostingStatus::Posted),
            Ok(pb::PostingStatus::Unmatched) => Some(PostingStatus::Unmatched),
            Ok(pb::PostingStatus::Held) => Some(PostingStatus::Held),
            Err(_) => {
                return Err(ServiceError::invalid_argument(
                    "posting_status",
                    format!("{} is not a posting status", req.posting_status),
                )
                .into());
            }
        };
        let era_id = if req.era_id.is_empty() {
            None
        } else {
            Some(
                EraId::parse(&req.era_id)
                    .map_err(|e| ServiceError::invalid_argument("era_id", e.to_string()))?,
            )
        };
        let paid_from = optional_date("payment_date_from", &req.payment_date_from)?;
        let paid_to = optional_date("payment_date_to", &req.payment_date_to)?;
        if let (Some(from), Some(to)) = (paid_from, paid_to)
            && from > to
        {
            return Err(ServiceError::invalid_argument(
                "payment_date_to",
                format!("{to} is before payment_date_from {from}"),
            )
            .into());
        }
        let filter = ClaimPaymentFilter {
            era_id,
            claim_id: identifier("claim_id", &req.claim_id, false)?,
            patient_control_number: identifier(
                "patient_control_number",
                &req.patient_control_number,
                false,
            )?,
            payer_id: text("payer_id", &req.payer_id, MAX_PAYER_ID_LEN, false)?,
            paid_from,
            paid_to,
            status,
        };
        let fingerprint = QueryFingerprint::builder("remittance.ListClaimPayments")
            .field("tenant", tenant.as_str())
            .optional("era_id", filter.era_id.map(|e| e.to_string()))
            .optional("claim_id", filter.claim_id.as_deref())
            .optional("pcn", filter.patient_control_number.as_deref())
            .optional("payer_id", filter.payer_id.as_deref())
            .optional("from", paid_from.map(format_iso_date))
            .optional("to", paid_to.map(format_iso_date))
            .optional("status", filter.status.map(PostingStatus::as_str))
            .finish();
        let after = decode_page_token(&req.page_token, &fingerprint)?
            .map(|cursor| {
                ClaimPaymentId::parse(&cursor).map_err(|_| {
                    ServiceError::invalid_argument("page_token", "malformed page token")
                })
            })
            .transpose()?;
        let rows = self
            .store
            .list_claim_payments(&tenant, &filter, after, size.fetch_limit())
            .await
            .map_err(ServiceError::from)?;
        let (page, next_page_token) = split_page(rows, size, &fingerprint, |p| p.id.to_string());
        Ok(Response::new(pb::ListClaimPaymentsResponse {
            claim_payments: page.iter().map(payment_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn match_claim_payment(
        &self,
        request: Request<pb::MatchClaimPaymentRequest>,
    ) -> Result<Response<pb::MatchClaimPaymentResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let call = IdempotentCall::of(&req)?;
        if req.claim_payment_id.is_empty() {
            return Err(ServiceError::invalid_argument("claim_payment_id", "is required").into());
        }
        let id = ClaimPaymentId::parse(&req.claim_payment_id)
            .map_err(|e| ServiceError::invalid_argument("claim_payment_id", e))?;
        let claim_id = identifier("claim_id", &req.claim_id, true)?.unwrap_or_default();
        let note = required_text("note", &req.note, MAX_REASON_LEN)?;
        let Some(poster) = &self.poster else {
            return Err(
                ServiceError::Unavailable("posting is not running in this process".into()).into(),
            );
        };
        let db = self.store.database();
        // The claim is looked up over gRPC before any transaction is open.
        if let Some(first) = call.replayed(db, &tenant).await? {
            return Ok(Response::new(first));
        }
        let payment = self
            .store
            .get_claim_payment(&tenant, id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("claim payment {id}")))?;
        if payment.status != PostingStatus::Unmatched {
            return Err(ServiceError::FailedPrecondition(format!(
                "claim payment {id} is {}; only an UNMATCHED payment is matched by hand",
                payment.status.as_str()
            ))
            .into());
        }
        let claim = poster
            .directory()
            .by_id(&tenant, &claim_id)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?
            .ok_or_else(|| ServiceError::not_found(format!("claim {claim_id}")))?;
        let (outcome, messages) = poster
            .post_matched(&tenant, &payment, &claim, &note)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        let received_on = self
            .store
            .get_era(&tenant, payment.era_id)
            .await
            .map_err(ServiceError::from)?
            .map_or_else(
                || chrono::Utc::now().date_naive(),
                |e| e.received_at.date_naive(),
            );
        let mut worklist = Worklist::new(received_on);
        worklist.add(&payment, &outcome.claim_id);
        let mut op = match call.begin(db, &tenant).await? {
            Begun::Replay(first) => return Ok(Response::new(first)),
            Begun::New(op) => op,
        };
        write(
            self.store.as_ref(),
            op.tx(),
            &tenant,
            payment.era_id,
            PostingStatus::Unmatched,
            std::slice::from_ref(&outcome),
            std::slice::from_ref(&messages),
            &worklist,
        )
        .await
        .map_err(|e| match e {
            crate::posting::PostingError::Store(e) => ServiceError::from(e),
            other => ServiceError::Unavailable(other.to_string()),
        })?;
        let mut posted = payment;
        posted.status = PostingStatus::Posted;
        posted.claim_id = outcome.claim_id.clone();
        posted.match_note = outcome.match_note.clone();
        posted.reverses = outcome.reverses;
        posted.posted_at = Some(chrono::Utc::now());
        for (line, (_, how, claim_line, control)) in
            posted.payment.lines.iter_mut().zip(&outcome.lines)
        {
            line.matched_by = *how;
            line.claim_line_number = *claim_line;
            line.claim_line_control_number = control.clone();
        }
        let response = pb::MatchClaimPaymentResponse {
            claim_payment: Some(payment_to_proto(&posted)),
        };
        op.commit(&response).await?;
        tracing::info!(claim_payment_id = %id, tenant = %tenant, "claim payment matched by hand and posted");
        Ok(Response::new(response))
    }

    async fn post_unbalanced_era(
        &self,
        request: Request<pb::PostUnbalancedEraRequest>,
    ) -> Result<Response<pb::PostUnbalancedEraResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let call = IdempotentCall::of(&req)?;
        if req.era_id.is_empty() {
            return Err(ServiceError::invalid_argument("era_id", "is required").into());
        }
        let id = EraId::parse(&req.era_id)
            .map_err(|e| ServiceError::invalid_argument("era_id", e.to_string()))?;
        let reason = required_text("reason", &req.reason, MAX_REASON_LEN)?;
        let mut op = match call.begin(self.store.database(), &tenant).await? {
            Begun::Replay(first) => return Ok(Response::new(first)),
            Begun::New(op) => op,
        };
        if self
            .store
            .get_era(&tenant, id)
            .await
            .map_err(ServiceError::from)?
            .is_none()
        {
            return Err(ServiceError::not_found(format!("ERA {id}")).into());
        }
        self.store
            .release_unbalanced(op.tx(), &tenant, id, &reason)
            .await
            .map_err(ServiceError::from)?;
        let mut era = self
            .store
            .get_era(&tenant, id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("ERA {id}")))?;
        // Read outside the transaction: answer what it wrote.
        era.status = EraStatus::Received;
        let mut out = to_proto(&era);
        out.review_reason = reason;
        let response = pb::PostUnbalancedEraResponse { era: Some(out) };
        op.commit(&response).await?;
        self.wake_poster();
        tracing::info!(era_id = %id, tenant = %tenant, "unbalanced ERA released for posting by an operator");
        Ok(Response::new(response))
    }

    async fn list_denials(
        &self,
        request: Request<pb::ListDenialsRequest>,
    ) -> Result<Response<pb::ListDenialsResponse>, Status> {
        crate::denials::rpc::list_denials(self, request).await
    }

    async fn update_denial(
        &self,
        request: Request<pb::UpdateDenialRequest>,
    ) -> Result<Response<pb::UpdateDenialResponse>, Status> {
        crate::denials::rpc::update_denial(self, request).await
    }

    async fn reconcile_deposit(
        &self,
        request: Request<pb::ReconcileDepositRequest>,
    ) -> Result<Response<pb::ReconcileDepositResponse>, Status> {
        crate::deposits::rpc::reconcile_deposit(self, request).await
    }

    async fn list_deposit_reconciliations(
        &self,
        request: Request<pb::ListDepositReconciliationsRequest>,
    ) -> Result<Response<pb::ListDepositReconciliationsResponse>, Status> {
        crate::deposits::rpc::list_deposit_reconciliations(self, request).await
    }
}

/// Answers an ingest from its (first) response: a file with no usable ERA (every ERA REJECTED) is
/// the client's error, naming the first problem and the stored ERA, on the first call and on every
/// retry. A replay changed nothing, so it reports `duplicate` as the contract defines it.
fn answer(
    mut response: pb::IngestEraResponse,
    replayed: bool,
) -> Result<pb::IngestEraResponse, Status> {
    // A response recorded before files were split into sets holds `era` alone.
    if response.eras.is_empty()
        && let Some(era) = &response.era
    {
        response.eras.push(era.clone());
    }
    let rejected = |e: &pb::Era| e.status == pb::EraStatus::Rejected as i32;
    if response.eras.iter().all(rejected)
        && let Some(era) = response.eras.first()
    {
        let more = match response.eras.len() {
            1 => String::new(),
            n => format!(" (and {} more 835 sets, all rejected)", n - 1),
        };
        return Err(ServiceError::invalid_argument(
            "content",
            format!(
                "not a usable 835: {}; the file is kept as ERA {} with status REJECTED{more}",
                era.error_message, era.id
            ),
        )
        .into());
    }
    response.duplicate |= replayed;
    Ok(response)
}

/// The answer when a streamed upload cannot be spooled (UNAVAILABLE: the temporary directory is
/// full or missing; the client may retry).
fn spool_failed(e: std::io::Error) -> Status {
    ServiceError::from(EraStoreError::Spool(e.to_string())).into()
}

/// Renames the field of an INVALID_ARGUMENT (a header field of the streaming RPC).
fn rename(err: ServiceError, field: &str) -> ServiceError {
    match err {
        ServiceError::InvalidArgument { reason, .. } => {
            ServiceError::invalid_argument(field, reason)
        }
        other => other,
    }
}

fn file_name(field: &str, raw: &str) -> Result<String, ServiceError> {
    let len = raw.chars().count();
    if len > MAX_FILE_NAME_LEN {
        return Err(ServiceError::invalid_argument(
            field,
            format!("is {len} characters long; at most {MAX_FILE_NAME_LEN} are allowed"),
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(ServiceError::invalid_argument(
            field,
            "contains control characters",
        ));
    }
    Ok(raw.to_owned())
}

fn problem_to_proto(p: &BalanceProblem) -> common::BalanceProblem {
    common::BalanceProblem {
        level: match p.level {
            BalanceLevel::Line => common::BalanceLevel::Line,
            BalanceLevel::Claim => common::BalanceLevel::Claim,
            BalanceLevel::Transaction => common::BalanceLevel::Transaction,
        }
        .into(),
        patient_control_number: p.claim_ref.clone(),
        line_control_number: p.line_control_number.clone(),
        line_number: p.line_number.unwrap_or(0),
        expected: p.expected.to_string(),
        actual: p.actual.to_string(),
        difference: p.difference.to_string(),
        message: p.message.clone(),
    }
}

fn plb_to_proto(a: &ProviderAdjustment) -> pb::ProviderAdjustment {
    pb::ProviderAdjustment {
        provider_id: a.provider_id.clone(),
        fiscal_period_date: a
            .fiscal_period_date
            .map(format_iso_date)
            .unwrap_or_default(),
        reason: a.reason.clone(),
        reference: a.reference.clone(),
        amount: a.amount.to_string(),
        description: short_description(CodeList::ProviderAdjustmentReason, &a.reason)
            .unwrap_or_default()
            .to_owned(),
        booked_at: a.booked_at.map(timestamp),
    }
}

/// Maps a stored ERA to its wire form, without claim payments and content.
pub fn to_proto(e: &Era) -> pb::Era {
    let s = &e.summary;
    pb::Era {
        id: e.id.to_string(),
        received_at: Some(timestamp(e.received_at)),
        content_sha256: e.content_sha256.clone(),
        status: match e.status {
            EraStatus::Received => pb::EraStatus::Received,
            EraStatus::Posted => pb::EraStatus::Posted,
            EraStatus::Unbalanced => pb::EraStatus::Unbalanced,
            EraStatus::Rejected => pb::EraStatus::Rejected,
        }
        .into(),
        payer_name: s.payer_name.clone().unwrap_or_default(),
        payer_id: s.payer_id.clone().unwrap_or_default(),
        payee_npi: s.payee_npi.clone().unwrap_or_default(),
        payment_amount: s.payment_amount.map(|m| m.to_string()).unwrap_or_default(),
        payment_method: s.payment_method.clone().unwrap_or_default(),
        credit_debit: s.credit_debit.clone().unwrap_or_default(),
        payment_date: s.payment_date.map(format_iso_date).unwrap_or_default(),
        trace_number: s.trace_number.clone().unwrap_or_default(),
        claim_count: s.claim_count,
        balance_problems: e.balance_problems.iter().map(problem_to_proto).collect(),
        handling_code: s.handling_code.clone().unwrap_or_default(),
        payee_name: s.payee_name.clone().unwrap_or_default(),
        file_name: e.file_name.clone(),
        size_bytes: e.byte_size,
        error_message: e.rejection_reason.clone(),
        provider_adjustments: e.provider_adjustments.iter().map(plb_to_proto).collect(),
        claim_payments: Vec::new(),
        content: Vec::new(),
        deposit_id: e.deposit_id.clone(),
        file_id: e.file_id.to_string(),
        set_position: e.set_position,
        set_control_number: e.set_control_number.clone(),
        payer_id_source: s.payer_id_source.clone().unwrap_or_default(),
        review_reason: String::new(),
        reconciliation_status: era_reconciliation(e).into(),
    }
}

/// An ERA's reconciliation outcome: its deposits' group's, else UNMATCHED_ERA when it moves
/// money, else none.
fn era_reconciliation(e: &Era) -> pb::ReconciliationStatus {
    use crate::deposits::{EraAmounts, ReconciliationStatus};
    let s = &e.summary;
    match e.reconciliation {
        Some(status) => crate::deposits::rpc::status_to_proto(status),
        None if e.status != EraStatus::Rejected
            && !EraAmounts::moved(
                s.payment_amount,
                s.credit_debit.as_deref(),
                s.payment_method.as_deref(),
            )
            .is_zero() =>
        {
            crate::deposits::rpc::status_to_proto(ReconciliationStatus::UnmatchedEra)
        }
        None => pb::ReconciliationStatus::Unspecified,
    }
}

pub(crate) fn group_to_proto(group: &str) -> common::AdjustmentGroup {
    match group {
        "CO" => common::AdjustmentGroup::Co,
        "PR" => common::AdjustmentGroup::Pr,
        "OA" => common::AdjustmentGroup::Oa,
        "PI" => common::AdjustmentGroup::Pi,
        "CR" => common::AdjustmentGroup::Cr,
        _ => common::AdjustmentGroup::Unspecified,
    }
}

pub(crate) fn adjustment_to_proto(a: &Adjustment) -> common::CasAdjustment {
    common::CasAdjustment {
        group: group_to_proto(&a.group).into(),
        reason: a.reason.clone(),
        amount: a.amount.to_string(),
        quantity: a.quantity.map(|q| q.to_string()).unwrap_or_default(),
        reason_description: short_description(CodeList::Carc, &a.reason)
            .unwrap_or_default()
            .to_owned(),
    }
}

pub(crate) fn remark_to_proto(code: &str) -> common::RemarkCode {
    common::RemarkCode {
        code: code.to_owned(),
        description: short_description(CodeList::Rarc, code)
            .unwrap_or_default()
            .to_owned(),
    }
}

pub(crate) fn procedure_to_proto(p: &ProcedureCode) -> common::Procedure {
    common::Procedure {
        qualifier: p.qualifier.clone(),
        code: p.code.clone(),
        modifiers: p.modifiers.clone(),
        ..Default::default()
    }
}

/// Maps a stored claim payment to its wire form; amounts exactly as the 835 said.
pub fn payment_to_proto(c: &ClaimPayment) -> pb::ClaimPayment {
    let p = &c.payment;
    pb::ClaimPayment {
        id: c.id.to_string(),
        era_id: c.era_id.to_string(),
        patient_control_number: p.patient_control_number.clone(),
        claim_id: c.claim_id.clone(),
        status_code: p.status_code.clone(),
        status_description: short_description(CodeList::ClaimStatus, &p.status_code)
            .unwrap_or_default()
            .to_owned(),
        charge: p.charge.to_string(),
        paid: p.paid.to_string(),
        patient_responsibility: p
            .patient_responsibility
            .map(|m| m.to_string())
            .unwrap_or_default(),
        claim_filing_indicator: p.filing_indicator.clone(),
        payer_claim_control_number: p.payer_claim_control_number.clone(),
        facility_type_code: p.facility_type_code.clone(),
        frequency_code: p.frequency_code.clone(),
        adjustments: p.adjustments.iter().map(adjustment_to_proto).collect(),
        remarks: p.remarks.iter().map(|r| remark_to_proto(r)).collect(),
        lines: p
            .lines
            .iter()
            .map(|l| pb::LinePayment {
                line_number: l.line_number,
                procedure: Some(procedure_to_proto(&l.procedure)),
                submitted_procedure: l.submitted_procedure.as_ref().map(procedure_to_proto),
                charge: l.charge.to_string(),
                paid: l.paid.to_string(),
                revenue_code: l.revenue_code.clone(),
                units: l.units.map(|u| u.to_string()).unwrap_or_default(),
                service_date: l.service_date.map(format_iso_date).unwrap_or_default(),
                line_control_number: l.line_control_number.clone(),
                allowed: l.allowed.map(|a| a.to_string()).unwrap_or_default(),
                adjustments: l.adjustments.iter().map(adjustment_to_proto).collect(),
                remarks: l.remarks.iter().map(|r| remark_to_proto(r)).collect(),
                matched_by: match l.matched_by {
                    LineMatch::Pending => pb::LineMatch::Pending,
                    LineMatch::ControlNumber => pb::LineMatch::ControlNumber,
                    LineMatch::Procedure => pb::LineMatch::Procedure,
                    LineMatch::Unmatched => pb::LineMatch::Unmatched,
                }
                .into(),
                claim_line_number: l.claim_line_number.unwrap_or(0),
                claim_line_control_number: l.claim_line_control_number.clone(),
            })
            .collect(),
        statement_period: match (p.statement_from, p.statement_to) {
            (None, None) => None,
            (from, to) => Some(common::ServiceDateRange {
                from_date: from.map(format_iso_date).unwrap_or_default(),
                to_date: to.map(format_iso_date).unwrap_or_default(),
            }),
        },
        reversal: p.is_reversal(),
        posting_status: match c.status {
            PostingStatus::Pending => pb::PostingStatus::Pending,
            PostingStatus::Posted => pb::PostingStatus::Posted,
            PostingStatus::Unmatched => pb::PostingStatus::Unmatched,
            PostingStatus::Held => pb::PostingStatus::Held,
        }
        .into(),
        payer_id: c.payer_id.clone(),
        payment_date: c.payment_date.map(format_iso_date).unwrap_or_default(),
        match_note: c.match_note.clone(),
        reverses_claim_payment_id: c.reverses.map(|r| r.to_string()).unwrap_or_default(),
        posted_at: c.posted_at.map(timestamp),
        position: c.position,
    }
}
