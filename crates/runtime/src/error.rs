//! The one error type service handlers return, and its mapping to `tonic::Status`.
//!
//! Client-facing variants carry precise messages (which field, which entity); `Internal`
//! carries the real cause, which is logged with detail and replaced by a bare
//! "internal error" on the wire so storage or network details never leak to callers.

use std::error::Error as StdError;

use tonic::{Code, Status};

/// Boxed error source kept by [`ServiceError::Internal`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Describes why a gRPC call failed, in terms a handler knows.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A request field is missing or malformed (INVALID_ARGUMENT).
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// Field path as the client sees it, e.g. `lines[2].charge`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The addressed entity does not exist for this tenant (NOT_FOUND).
    #[error("{what} not found")]
    NotFound {
        /// The entity, e.g. `claim 0191...`.
        what: String,
    },
    /// The entity to create already exists (ALREADY_EXISTS).
    #[error("{0}")]
    AlreadyExists(String),
    /// The system is not in a state that allows the operation (FAILED_PRECONDITION).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller is not authenticated (UNAUTHENTICATED).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller may not do this (PERMISSION_DENIED).
    #[error("{0}")]
    PermissionDenied(String),
    /// A dependency is down; retrying later may succeed (UNAVAILABLE).
    #[error("{0}")]
    Unavailable(String),
    /// The deadline passed before the work finished (DEADLINE_EXCEEDED).
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A bug or an unexpected failure; logged, never shown to the client (INTERNAL).
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl ServiceError {
    /// Builds an `InvalidArgument` naming `field`.
    pub fn invalid_argument(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Builds a `NotFound` for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    /// Wraps any error as `Internal`.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        Self::Internal(source.into())
    }

    /// Returns the gRPC code this error maps to.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::NotFound { .. } => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::Unavailable(_) => Code::Unavailable,
            Self::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Self::Internal(_) => Code::Internal,
        }
    }
}

/// Renders an error and its source chain on one line, for logs.
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Self {
        let code = err.code();
        match err {
            ServiceError::Internal(source) => {
                tracing::error!(error = %chain(source.as_ref()), "internal error");
                Status::internal("internal error")
            }
            other => Status::new(code, other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused to db.internal:5432")]
    struct DbDown;

    #[derive(Debug, thiserror::Error)]
    #[error("insert into claims failed")]
    struct Outer(#[source] DbDown);

    fn status(err: ServiceError) -> Status {
        err.into()
    }

    #[test]
    fn client_errors_keep_precise_messages_and_codes() {
        let s = status(ServiceError::invalid_argument(
            "lines[2].charge",
            "\"12.3.4\" is not a decimal amount",
        ));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(
            s.message(),
            "invalid lines[2].charge: \"12.3.4\" is not a decimal amount"
        );

        let s = status(ServiceError::not_found("claim 0191-abc"));
        assert_eq!(
            (s.code(), s.message()),
            (Code::NotFound, "claim 0191-abc not found")
        );

        let cases = [
            (
                ServiceError::AlreadyExists("claim PCN-1 exists".into()),
                Code::AlreadyExists,
            ),
            (
                ServiceError::FailedPrecondition(
                    "idempotency key reused with a different request".into(),
                ),
                Code::FailedPrecondition,
            ),
            (
                ServiceError::Unauthenticated("missing bearer token".into()),
                Code::Unauthenticated,
            ),
            (
                ServiceError::PermissionDenied("tenant may not void".into()),
                Code::PermissionDenied,
            ),
            (
                ServiceError::Unavailable("claims service unreachable".into()),
                Code::Unavailable,
            ),
            (
                ServiceError::DeadlineExceeded("clearinghouse timed out".into()),
                Code::DeadlineExceeded,
            ),
        ];
        for (err, code) in cases {
            let message = err.to_string();
            let s = status(err);
            assert_eq!(s.code(), code);
            assert_eq!(s.message(), message);
        }
    }

    #[test]
    fn internal_errors_are_bare_on_the_wire() {
        let s = status(ServiceError::internal(Outer(DbDown)));
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(s.message(), "internal error");
        assert!(!format!("{s:?}").contains("db.internal"));
    }

    #[test]
    fn internal_keeps_the_source_chain_for_logs() {
        let err = ServiceError::internal(Outer(DbDown));
        assert_eq!(
            chain(&err),
            "internal error: insert into claims failed: connection refused to db.internal:5432"
        );
        assert_eq!(err.code(), Code::Internal);
    }

    #[test]
    fn internal_accepts_plain_strings() {
        let err = ServiceError::internal("ledger out of balance by 1 cent");
        assert_eq!(status(err).message(), "internal error");
    }
}
