//! IngestAcknowledgement: a TA1, 999 or 277CA pushed by a client.

use medbill_proto::claims::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::tenant_id;
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use tonic::{Request, Response, Status};

use super::{
    Incoming, IngestError, Source, apply, apply_in, earlier_result, kind_from_proto, read,
    sha256_hex,
};
use crate::service::ClaimsService;

/// Longest file name kept for audit.
const MAX_FILE_NAME_LEN: usize = 255;

impl ClaimsService {
    pub(crate) async fn ingest_acknowledgement_rpc(
        &self,
        request: Request<pb::IngestAcknowledgementRequest>,
    ) -> Result<Response<pb::IngestAcknowledgementResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let call = IdempotentCall::of(&req)?;
        if req.content.is_empty() {
            return Err(ServiceError::invalid_argument("content", "is required").into());
        }
        let expected = kind_from_proto(req.kind).map_err(|raw| {
            ServiceError::invalid_argument("kind", format!("{raw} is not an acknowledgement kind"))
        })?;
        let file_name =
            medbill_runtime::fields::text("file_name", &req.file_name, MAX_FILE_NAME_LEN, false)?
                .unwrap_or_default();
        let store = self.store().as_ref();
        let db = store.database();
        if let Some(first) = call.replayed(db, &tenant).await? {
            return Ok(Response::new(first));
        }
        let ack = read::read(&req.content, expected)
            .map_err(|reason| ServiceError::invalid_argument("content", reason))?;
        let sha = sha256_hex(&req.content);
        if let Some(first) = earlier_result(store, &tenant, &sha)
            .await
            .map_err(ServiceError::from)?
        {
            // The same file under a new key: the first answer, marked duplicate; nothing changes.
            let response = pb::IngestAcknowledgementResponse {
                result: Some(first),
            };
            let response = call.record(db, &tenant, response).await?;
            return Ok(Response::new(response));
        }
        let plan = apply::plan(store, &tenant, &ack, None)
            .await
            .map_err(ServiceError::from)?;
        let mut op = match call.begin(db, &tenant).await? {
            Begun::Replay(first) => return Ok(Response::new(first)),
            Begun::New(op) => op,
        };
        let file = Incoming {
            ack: &ack,
            raw: &req.content,
            sha256: &sha,
            file_name: &file_name,
            source: Source::Client,
        };
        let result = apply_in(store, op.tx(), &tenant, file, plan)
            .await
            .map_err(|e| match e {
                IngestError::Store(e) => ServiceError::from(e),
                IngestError::Concurrent => ServiceError::Coded {
                    code: tonic::Code::Aborted,
                    message: e.to_string(),
                },
                IngestError::Unreadable(reason) => {
                    ServiceError::invalid_argument("content", reason)
                }
            })?;
        let response = pb::IngestAcknowledgementResponse {
            result: Some(result),
        };
        op.commit(&response).await?;
        tracing::info!(
            kind = ack.kind.as_str(),
            claims_updated = response.result.as_ref().map_or(0, |r| r.claims_updated),
            "acknowledgement ingested"
        );
        Ok(Response::new(response))
    }
}
