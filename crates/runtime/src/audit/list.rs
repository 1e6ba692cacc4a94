//! `medbill.audit.v1.AuditService`: the audit trail read back, served by every process.
//!
//! In a process running several services one instance answers for all of them: it asks each
//! service's database for a page and merges the pages by event id (UUID v7, so id order is time
//! order), newest first; the page token is the last id returned, valid in every database.

use medbill_proto::medbill::audit::v1 as pb;
use medbill_proto::medbill::audit::v1::audit_service_server::{self, AuditServiceServer};
use medbill_storage::audit::{AuditQuery, AuditRecord, Order};
use tonic::{Request, Response, Status};

use super::AuditTrail;
use crate::ServiceError;
use crate::config::GrpcConfig;
use crate::paging::{PageSize, QueryFingerprint, decode_page_token, split_page};

/// The audit service over an [`AuditTrail`]'s databases.
#[derive(Clone, Debug)]
pub struct AuditApi {
    trail: AuditTrail,
}

impl AuditApi {
    /// Serves the records of `trail`.
    pub fn new(trail: AuditTrail) -> Self {
        Self { trail }
    }

    /// Wraps the service in its generated server with the configured message limits.
    pub fn into_server(self, grpc: &GrpcConfig) -> AuditServiceServer<Self> {
        crate::with_grpc_limits!(AuditServiceServer::new(self), grpc)
    }
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

fn micros(field: &str, t: Option<&prost_types::Timestamp>) -> Result<Option<i64>, ServiceError> {
    let Some(t) = t else { return Ok(None) };
    let nanos = u32::try_from(t.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .ok_or_else(|| ServiceError::invalid_argument(field, "nanos must be 0..999999999"))?;
    chrono::DateTime::from_timestamp(t.seconds, nanos)
        .map(|dt| dt.timestamp_micros())
        .map(Some)
        .ok_or_else(|| ServiceError::invalid_argument(field, "out of range"))
}

/// Reads the request's filters (the tenant is the caller's).
fn query_of(tenant: &str, r: &pb::ListAuditEventsRequest) -> Result<AuditQuery, ServiceError> {
    let since = micros("since", r.since.as_ref())?;
    let until = micros("until", r.until.as_ref())?;
    if let (Some(s), Some(u)) = (since, until)
        && u < s
    {
        return Err(ServiceError::invalid_argument(
            "until",
            "the range ends before it starts",
        ));
    }
    let resource = match (non_empty(&r.resource_type), non_empty(&r.resource_id)) {
        (None, Some(_)) => {
            return Err(ServiceError::invalid_argument(
                "resource_type",
                "required with resource_id (claim, account, era, coverage, ...)",
            ));
        }
        (Some(kind), id) => Some((kind, id)),
        (None, None) => None,
    };
    Ok(AuditQuery {
        tenant_id: Some(tenant.to_owned()),
        subject: non_empty(&r.subject),
        resource,
        patient_ref: non_empty(&r.patient_ref),
        method: non_empty(&r.method),
        since,
        until,
    })
}

fn fingerprint(q: &AuditQuery) -> QueryFingerprint {
    let (kind, id) = q
        .resource
        .clone()
        .map_or((None, None), |(k, i)| (Some(k), i));
    QueryFingerprint::builder("audit.ListAuditEvents")
        .optional("tenant", q.tenant_id.as_deref())
        .optional("subject", q.subject.as_deref())
        .optional("resource_type", kind.as_deref())
        .optional("resource_id", id.as_deref())
        .optional("patient_ref", q.patient_ref.as_deref())
        .optional("method", q.method.as_deref())
        .optional("since", q.since.map(|s| s.to_string()))
        .optional("until", q.until.map(|s| s.to_string()))
        .finish()
}

/// Converts a stored record to its message.
pub fn to_proto(r: AuditRecord) -> pb::AuditEvent {
    let time = medbill_storage::time::from_micros(r.occurred_at).map(|t| prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    });
    pb::AuditEvent {
        id: r.id,
        time,
        subject: r.subject,
        peer: r.peer.unwrap_or_default(),
        service: r.service,
        method: r.method,
        resources: r
            .resources
            .into_iter()
            .map(|(kind, id)| pb::AuditResource {
                r#type: kind,
                resource_id: id,
            })
            .collect(),
        resources_truncated: r.resources_truncated,
        code: r.code,
        trace_id: r.trace_id.unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl audit_service_server::AuditService for AuditApi {
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let tenant = crate::auth::tenant(&request)?;
        let r = request.get_ref();
        let query = query_of(tenant.as_str(), r)?;
        let size = PageSize::from_i32(r.page_size)?;
        let fp = fingerprint(&query);
        let cursor = decode_page_token(&r.page_token, &fp)?;
        let mut rows = Vec::new();
        for (_, db) in self.trail.databases() {
            let page = medbill_storage::audit::list(
                db,
                &query,
                Order::NewestFirst,
                cursor.as_deref(),
                size.fetch_limit(),
            )
            .await
            .map_err(ServiceError::from)?;
            rows.extend(page);
        }
        rows.sort_by(|a, b| b.id.cmp(&a.id));
        rows.truncate(size.fetch_limit() as usize);
        let (rows, next_page_token) = split_page(rows, size, &fp, |r| r.id.clone());
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: rows.into_iter().map(to_proto).collect(),
            next_page_token,
        }))
    }
}
