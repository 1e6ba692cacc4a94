//! The server half of the CORE HTTP transport: an axum router that authenticates, decodes and validates the
//! envelope, calls a [`CoreHandler`] with the payload and encodes its answer. payer-sim mounts it.

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use chrono::{DateTime, FixedOffset, Utc};
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::config::Credentials;
use crate::envelope::{
    CORE_RULE_VERSION, CoreRequest, CoreResponse, Envelope, EnvelopeError, ErrorCode, PayloadType,
    ProcessingMode,
};
use crate::secret::Secret;

/// Default limit on a request body (batch files included).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A validated request handed to the handler.
#[derive(Clone, Debug)]
pub struct InboundRequest {
    /// `ProcessingMode`.
    pub processing_mode: ProcessingMode,
    /// `PayloadType`.
    pub payload_type: PayloadType,
    /// `PayloadID` (a retried request repeats it).
    pub payload_id: Uuid,
    /// `TimeStamp`.
    pub timestamp: DateTime<FixedOffset>,
    /// `SenderID`, already checked against the credentials.
    pub sender_id: String,
    /// `ReceiverID`, already checked against the accepted receiver ids.
    pub receiver_id: String,
    /// The X12 payload.
    pub payload: Bytes,
}

/// The handler's successful answer.
#[derive(Clone, Debug)]
pub struct HandlerReply {
    /// What the payload is (e.g. [`PayloadType::X12_271_RESPONSE`]).
    pub payload_type: PayloadType,
    /// The X12 returned (may be empty for batch acknowledgements and empty retrievals).
    pub payload: Bytes,
}

/// A handler's refusal, answered with the matching CORE error code (or HTTP status).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Answered with `PayloadTypeNotSupported`.
    #[error("payload type not supported")]
    PayloadTypeNotSupported,
    /// Answered with `ProcessingModeNotSupported`.
    #[error("processing mode not supported")]
    ProcessingModeNotSupported,
    /// Answered with `Receiver Down` (clients retry it).
    #[error("receiver down: {0}")]
    ReceiverDown(String),
    /// Answered with HTTP 503 Service Unavailable (clients retry it).
    #[error("service unavailable")]
    Unavailable,
    /// Answered with any other CORE error code and message.
    #[error("{code}: {message}")]
    Core {
        /// The code.
        code: ErrorCode,
        /// The message (must not contain PHI).
        message: String,
    },
}

/// What a CORE receiver does with a validated request.
#[async_trait]
pub trait CoreHandler: Send + Sync + 'static {
    /// Answers one request.
    async fn handle(&self, request: InboundRequest) -> Result<HandlerReply, HandlerError>;
}

#[async_trait]
impl<H: CoreHandler + ?Sized> CoreHandler for Arc<H> {
    async fn handle(&self, request: InboundRequest) -> Result<HandlerReply, HandlerError> {
        (**self).handle(request).await
    }
}

/// Credentials a server accepts, and which `SenderID`s they may use (any when the list is empty).
#[derive(Clone, Debug)]
pub struct AcceptedCredential {
    /// The credentials.
    pub credentials: Credentials,
    /// The sender ids these credentials may send as; empty means any.
    pub sender_ids: Vec<String>,
}

/// Builder and shared state of the CORE endpoint.
pub struct CoreServer<H> {
    handler: H,
    accepted: Vec<(Secret, Vec<String>)>,
    receiver_ids: Vec<String>,
    max_body_bytes: usize,
}

impl<H: CoreHandler> CoreServer<H> {
    /// Starts a server configuration around `handler`: no authentication, any receiver id.
    pub fn new(handler: H) -> Self {
        Self {
            handler,
            accepted: Vec::new(),
            receiver_ids: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Requires every request to carry one of these credentials (HTTP 401 otherwise).
    pub fn with_credentials(
        mut self,
        accepted: impl IntoIterator<Item = AcceptedCredential>,
    ) -> Self {
        self.accepted = accepted
            .into_iter()
            .map(|a| (a.credentials.authorization_value(), a.sender_ids))
            .collect();
        self
    }

    /// Accepts only these `ReceiverID`s (`ReceiverIDNotAuthorized` otherwise).
    pub fn with_receiver_ids(mut self, ids: impl IntoIterator<Item = String>) -> Self {
        self.receiver_ids = ids.into_iter().collect();
        self
    }

    /// Sets the largest request body accepted (HTTP 413 beyond it).
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Returns an axum router serving the CORE endpoint at `path` (POST).
    pub fn router(self, path: &str) -> Router {
        let limit = self.max_body_bytes;
        Router::new()
            .route(path, post(endpoint::<H>))
            .layer(DefaultBodyLimit::max(limit))
            .with_state(Arc::new(self))
    }

    /// Checks the `Authorization` header; returns the sender ids allowed (None when rejected).
    fn authenticate(&self, headers: &HeaderMap) -> Option<&[String]> {
        if self.accepted.is_empty() {
            return Some(&[]);
        }
        let presented = headers.get(AUTHORIZATION)?.as_bytes();
        // Every credential is compared, so timing does not reveal which one nearly matched.
        let mut found = None;
        for (expected, senders) in &self.accepted {
            if expected.constant_time_eq(presented) && found.is_none() {
                found = Some(senders.as_slice());
            }
        }
        found
    }
}

async fn endpoint<H: CoreHandler>(
    State(server): State<Arc<CoreServer<H>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(allowed_senders) = server.authenticate(&headers) else {
        info!("core request rejected: missing or wrong credentials");
        return (
            StatusCode::UNAUTHORIZED,
            [(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"CORE\""),
            )],
            "authentication required",
        )
            .into_response();
    };
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let request = match CoreRequest::decode(content_type, &body).await {
        Ok(request) => request.envelope,
        Err(error) => {
            info!(field = ?error.field(), error = %error, bytes = body.len(), "core request envelope rejected");
            return envelope_error_response(&error);
        }
    };
    let refuse = |code: ErrorCode, message: String| {
        encode(
            StatusCode::OK,
            reply_envelope(&request, request.payload_type.clone(), Bytes::new()),
            code,
            message,
        )
    };
    if !allowed_senders.is_empty() && !allowed_senders.contains(&request.sender_id) {
        info!(payload_id = %request.payload_id, sender_id = %request.sender_id, "sender id not authorized for credentials");
        return refuse(
            ErrorCode::SenderIdNotAuthorized,
            "the credentials may not send as this SenderID".into(),
        );
    }
    if !server.receiver_ids.is_empty() && !server.receiver_ids.contains(&request.receiver_id) {
        info!(payload_id = %request.payload_id, receiver_id = %request.receiver_id, "receiver id not served here");
        return refuse(
            ErrorCode::ReceiverIdNotAuthorized,
            "this ReceiverID is not served at this endpoint".into(),
        );
    }
    debug!(
        payload_id = %request.payload_id,
        payload_type = %request.payload_type,
        mode = %request.processing_mode,
        bytes = request.payload.len(),
        "core request accepted"
    );
    let inbound = InboundRequest {
        processing_mode: request.processing_mode,
        payload_type: request.payload_type.clone(),
        payload_id: request.payload_id,
        timestamp: request.timestamp,
        sender_id: request.sender_id.clone(),
        receiver_id: request.receiver_id.clone(),
        payload: request.payload.clone(),
    };
    match server.handler.handle(inbound).await {
        Ok(reply) => encode(
            StatusCode::OK,
            reply_envelope(&request, reply.payload_type, reply.payload),
            ErrorCode::Success,
            String::new(),
        ),
        Err(HandlerError::Unavailable) => {
            warn!(payload_id = %request.payload_id, "core handler unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "service unavailable").into_response()
        }
        Err(error) => {
            let (code, message) = match error {
                HandlerError::PayloadTypeNotSupported => (
                    ErrorCode::PayloadTypeNotSupported,
                    format!("payload type {} is not supported", request.payload_type),
                ),
                HandlerError::ProcessingModeNotSupported => (
                    ErrorCode::ProcessingModeNotSupported,
                    format!(
                        "processing mode {} is not supported",
                        request.processing_mode
                    ),
                ),
                HandlerError::ReceiverDown(message) => (ErrorCode::ReceiverDown, message),
                HandlerError::Core { code, message } => (code, message),
                HandlerError::Unavailable => (ErrorCode::ServerBusy, String::new()),
            };
            info!(payload_id = %request.payload_id, code = %code, "core request answered with an error code");
            refuse(code, message)
        }
    }
}

/// Builds the response envelope: same id and mode, sender and receiver swapped, stamped now.
fn reply_envelope(request: &Envelope, payload_type: PayloadType, payload: Bytes) -> Envelope {
    Envelope {
        processing_mode: request.processing_mode,
        payload_type,
        payload_id: request.payload_id,
        timestamp: Utc::now().fixed_offset(),
        sender_id: request.receiver_id.clone(),
        receiver_id: request.sender_id.clone(),
        core_rule_version: CORE_RULE_VERSION.to_owned(),
        payload,
    }
}

/// Answers a malformed envelope with HTTP 400 and the CORE error code naming the field.
fn envelope_error_response(error: &EnvelopeError) -> Response {
    // The request's own fields may be the broken ones, so the reply envelope uses neutral values.
    let envelope = Envelope {
        processing_mode: ProcessingMode::RealTime,
        payload_type: PayloadType::new("CoreEnvelopeError")
            .unwrap_or(PayloadType::X12_999_RESPONSE),
        payload_id: Uuid::nil(),
        timestamp: Utc::now().fixed_offset(),
        sender_id: "UNKNOWN".into(),
        receiver_id: "UNKNOWN".into(),
        core_rule_version: CORE_RULE_VERSION.to_owned(),
        payload: Bytes::new(),
    };
    encode(
        StatusCode::BAD_REQUEST,
        envelope,
        error.error_code(),
        error.to_string(),
    )
}

fn encode(
    status: StatusCode,
    envelope: Envelope,
    error_code: ErrorCode,
    error_message: String,
) -> Response {
    let encoded = CoreResponse {
        envelope,
        error_code,
        error_message,
    }
    .encode();
    let content_type = HeaderValue::from_str(&encoded.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("multipart/form-data"));
    (status, [(CONTENT_TYPE, content_type)], encoded.body).into_response()
}
