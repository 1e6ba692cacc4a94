//! Errors of the connectivity layer. None carries the payload (PHI): only ids, sizes, codes and statuses.

use std::path::PathBuf;

use crate::envelope::{EnvelopeError, ErrorCode, PayloadType};

/// A configuration that cannot be used; raised at start-up, not per request.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting is invalid.
    #[error("payer {payer_id}: {field}: {reason}")]
    Invalid {
        /// The payer whose configuration is wrong.
        payer_id: String,
        /// The setting.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A secret reference points at nothing.
    #[error("secret not found: {source_name}")]
    SecretMissing {
        /// The environment variable or file (never the value).
        source_name: String,
    },
    /// A secret file cannot be read.
    #[error("secret file {}: {reason}", path.display())]
    SecretUnreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A CA certificate file cannot be used.
    #[error("CA file {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Two connections name the same payer.
    #[error("payer {0} is configured twice")]
    DuplicatePayer(String),
    /// A mailbox directory cannot be prepared.
    #[error("mailbox {}: {reason}", path.display())]
    Mailbox {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
}

/// The broad class of a [`ConnectError`], for mapping to a gRPC status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The payer could not be reached or answered "down" (even after retries): gRPC `UNAVAILABLE`.
    Unavailable,
    /// The payer did not answer in time (even after retries): gRPC `DEADLINE_EXCEEDED`.
    Timeout,
    /// The payer refused our credentials or sender id, or its TLS certificate is not trusted: gRPC
    /// `FAILED_PRECONDITION` (an operator must fix the configuration).
    Unauthorized,
    /// The payer refused the request as such (envelope, payload type, status 4xx): not retryable.
    Rejected,
    /// The payer's answer is broken: malformed envelope, mismatched ids, HTTP 5xx other than gateway errors.
    Protocol,
    /// Our side is misused or misconfigured (unknown payer, unsupported operation, local I/O).
    Local,
}

/// Why an exchange with a payer failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No connection is configured for this payer.
    #[error("no connection is configured for payer {0}")]
    UnknownPayer(String),
    /// The transport cannot do this (a mailbox has no real time).
    #[error("payer {payer_id}: {operation} is not supported by the {transport} transport")]
    Unsupported {
        /// The payer.
        payer_id: String,
        /// What was asked.
        operation: &'static str,
        /// The transport kind.
        transport: &'static str,
    },
    /// A TCP or TLS connection could not be established (retryable).
    #[error("payer {payer_id}: cannot connect: {reason}")]
    Connect {
        /// The payer.
        payer_id: String,
        /// The underlying error.
        reason: String,
    },
    /// The TLS handshake failed for a reason retrying cannot fix (untrusted or mismatched certificate).
    #[error("payer {payer_id}: TLS handshake failed: {reason}")]
    Tls {
        /// The payer.
        payer_id: String,
        /// The rustls error.
        reason: String,
    },
    /// An attempt did not complete within the request timeout (retryable).
    #[error("payer {payer_id}: no response within {timeout_ms} ms")]
    Timeout {
        /// The payer.
        payer_id: String,
        /// The per-attempt limit.
        timeout_ms: u64,
    },
    /// The connection failed mid-exchange (reset, closed early) (retryable).
    #[error("payer {payer_id}: transport failed: {reason}")]
    Transport {
        /// The payer.
        payer_id: String,
        /// The underlying error.
        reason: String,
    },
    /// The payer answered with an HTTP status other than 200 (429/502/503/504 are retryable).
    #[error("payer {payer_id}: HTTP {status}: {excerpt}")]
    HttpStatus {
        /// The payer.
        payer_id: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body (withheld when it looks like X12).
        excerpt: String,
    },
    /// The payer refused our credentials (HTTP 401/403).
    #[error("payer {payer_id}: credentials rejected (HTTP {status})")]
    AuthRejected {
        /// The payer.
        payer_id: String,
        /// 401 or 403.
        status: u16,
    },
    /// The payer refused the request with a CORE error code (not retryable).
    #[error("payer {payer_id}: request {payload_id} refused with {code}: {message}")]
    Refused {
        /// The payer.
        payer_id: String,
        /// Our request's payload id.
        payload_id: uuid::Uuid,
        /// The CORE error code.
        code: ErrorCode,
        /// The payer's `ErrorMessage`.
        message: String,
    },
    /// The payer reported it cannot answer now (CORE `Receiver Down` / `Server Busy`) (retryable).
    #[error("payer {payer_id}: receiver unavailable ({code}): {message}")]
    ReceiverDown {
        /// The payer.
        payer_id: String,
        /// The CORE error code.
        code: ErrorCode,
        /// The payer's `ErrorMessage`.
        message: String,
    },
    /// The payer's response envelope is malformed; names the field.
    #[error("payer {payer_id}: malformed response envelope: {source}")]
    MalformedResponse {
        /// The payer.
        payer_id: String,
        /// What is wrong.
        #[source]
        source: EnvelopeError,
    },
    /// The response does not answer our request (other payload id, unexpected payload type).
    #[error("payer {payer_id}: response does not match request {payload_id}: {reason}")]
    Mismatch {
        /// The payer.
        payer_id: String,
        /// Our request's payload id.
        payload_id: uuid::Uuid,
        /// What differs.
        reason: String,
    },
    /// Retryable failures went on until the attempts ran out.
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        last: Box<ConnectError>,
    },
    /// A mailbox file operation failed.
    #[error("mailbox {}: {operation}: {source}", path.display())]
    Mailbox {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        operation: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file name given to the mailbox is not a plain file name.
    #[error("mailbox: {0:?} is not a plain file name")]
    BadFileName(String),
}

impl ConnectError {
    /// Returns true when the same request may succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. }
            | Self::Timeout { .. }
            | Self::Transport { .. }
            | Self::ReceiverDown { .. } => true,
            Self::HttpStatus { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// Returns the broad class of the failure (looking through [`ConnectError::Exhausted`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Exhausted { last, .. } => last.kind(),
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Connect { .. } | Self::Transport { .. } | Self::ReceiverDown { .. } => {
                ErrorKind::Unavailable
            }
            Self::HttpStatus {
                status: 429 | 502 | 503 | 504,
                ..
            } => ErrorKind::Unavailable,
            Self::HttpStatus { status, .. } if *status >= 500 => ErrorKind::Protocol,
            Self::HttpStatus { .. } => ErrorKind::Rejected,
            Self::AuthRejected { .. } | Self::Tls { .. } => ErrorKind::Unauthorized,
            Self::Refused { code, .. } => match code {
                ErrorCode::SenderIdNotAuthorized | ErrorCode::ReceiverIdNotAuthorized => {
                    ErrorKind::Unauthorized
                }
                _ => ErrorKind::Rejected,
            },
            Self::MalformedResponse { .. } | Self::Mismatch { .. } => ErrorKind::Protocol,
            Self::UnknownPayer(_)
            | Self::Unsupported { .. }
            | Self::Mailbox { .. }
            | Self::BadFileName(_) => ErrorKind::Local,
        }
    }

    /// Returns the number of attempts made (1 unless retries ran out).
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Exhausted { attempts, .. } => *attempts,
            _ => 1,
        }
    }

    /// Returns the CORE error code when the payer answered with one.
    pub fn core_error_code(&self) -> Option<&ErrorCode> {
        match self {
            Self::Exhausted { last, .. } => last.core_error_code(),
            Self::Refused { code, .. } | Self::ReceiverDown { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Describes an unexpected payload type for [`ConnectError::Mismatch`].
pub(crate) fn payload_type_mismatch(expected: &PayloadType, actual: &PayloadType) -> String {
    format!("expected payload type {expected}, got {actual}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_statuses_are_exactly_the_gateway_ones() {
        let status = |status| ConnectError::HttpStatus {
            payer_id: "P".into(),
            status,
            excerpt: String::new(),
        };
        for s in [429, 502, 503, 504] {
            assert!(status(s).is_retryable(), "{s}");
            assert_eq!(status(s).kind(), ErrorKind::Unavailable);
        }
        for s in [400, 404, 409, 413, 500, 501] {
            assert!(!status(s).is_retryable(), "{s}");
        }
    }

    #[test]
    fn exhausted_reports_the_last_kind_and_attempts() {
        let err = ConnectError::Exhausted {
            attempts: 3,
            last: Box::new(ConnectError::Timeout {
                payer_id: "ACME".into(),
                timeout_ms: 200,
            }),
        };
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(err.attempts(), 3);
        assert_eq!(
            err.to_string(),
            "gave up after 3 attempts: payer ACME: no response within 200 ms"
        );
    }
}
