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
    /// An error that declared its own code through [`ErrorCode`] (a store error, say).
    #[error("{message}")]
    Coded {
        /// The gRPC code the error declared.
        code: Code,
        /// The message for the client.
        message: String,
    },
}

/// An error that declares the gRPC code it answers with, the way a store error does: the one
/// rule from library errors to statuses, in place of a mapper per service.
///
/// `?` turns any `ErrorCode` into a [`ServiceError`]: INTERNAL keeps the error as the logged
/// source (the client sees a bare "internal error"); UNAVAILABLE is logged and answered with
/// [`ErrorCode::client_message`]; any other code answers with that message.
pub trait ErrorCode: StdError + Send + Sync + 'static {
    /// Returns the gRPC code the error answers with.
    fn error_code(&self) -> Code;

    /// Returns the message the client sees (not used for INTERNAL); the error's `Display` unless
    /// it holds detail a client must not see.
    fn client_message(&self) -> String {
        self.to_string()
    }
}

impl<E: ErrorCode> From<E> for ServiceError {
    fn from(err: E) -> Self {
        match err.error_code() {
            Code::Internal => ServiceError::Internal(Box::new(err)),
            Code::Unavailable => {
                tracing::warn!(error = %chain(&err), "dependency unavailable");
                ServiceError::Unavailable(err.client_message())
            }
            code => ServiceError::Coded {
                code,
                message: err.client_message(),
            },
        }
    }
}

/// The storage layer's own errors: a busy database may be retried, a value that cannot be
/// stored is the client's, everything else is ours.
impl ErrorCode for medbill_storage::StorageError {
    fn error_code(&self) -> Code {
        match self {
            _ if self.is_retryable() => Code::Unavailable,
            medbill_storage::StorageError::Unstorable { .. } => Code::InvalidArgument,
            _ => Code::Internal,
        }
    }

    fn client_message(&self) -> String {
        match self {
            medbill_storage::StorageError::Unstorable { field, reason } => {
                format!("invalid {field}: {reason}")
            }
            _ => "the database is busy; retry the call".to_owned(),
        }
    }
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
            Self::Coded { code, .. } => *code,
        }
    }
}

/// The longest run of non-blank characters echoed back in a message (a code, an id, a value).
const MAX_ECHOED_RUN: usize = 40;
/// The longest client message; gRPC metadata (where the message travels) is limited to 16 KiB.
const MAX_MESSAGE: usize = 400;

/// Caps what a message echoes of the client's input: each run of non-blank characters longer
/// than [`MAX_ECHOED_RUN`] keeps its start and says how long it was, and the whole message stops
/// at [`MAX_MESSAGE`] characters. The field name, which comes first, always survives.
pub fn cap_echo(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE + 16));
    for (i, word) in message.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let len = word.chars().count();
        // A field label ("invalid claim.lines[0].charge:" or "claim.coverage_id: ...") opens the
        // message and is the server's own path, never the client's input: it is kept whole.
        let field_label = i < 2 && word.ends_with(':');
        if len > MAX_ECHOED_RUN && !field_label {
            out.extend(word.chars().take(24));
            out.push_str(&format!("…({len} characters)"));
        } else {
            out.push_str(word);
        }
        if out.chars().count() > MAX_MESSAGE {
            break;
        }
    }
    if out.chars().count() > MAX_MESSAGE {
        out = out.chars().take(MAX_MESSAGE).collect();
        out.push('…');
    }
    out
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
            other => Status::new(code, cap_echo(&other.to_string())),
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
    fn echoed_values_are_capped_and_the_field_kept() {
        let huge = "A".repeat(10_000);
        let s = status(ServiceError::invalid_argument(
            "claim.diagnoses[0]",
            format!("\"{huge}\" is not an ICD-10-CM code"),
        ));
        assert!(s.message().starts_with("invalid claim.diagnoses[0]: "));
        assert!(
            s.message().contains("(10002 characters)"),
            "{}",
            s.message()
        );
        assert!(s.message().ends_with("is not an ICD-10-CM code"));
        assert!(s.message().len() < 120, "{}", s.message().len());

        let many_words = "AB ".repeat(500_000);
        let s = status(ServiceError::invalid_argument("note", many_words));
        assert!(s.message().starts_with("invalid note: AB"));
        assert!(s.message().chars().count() <= MAX_MESSAGE + 1);

        // A long field path is the server's own and survives whole; a long value after it does not.
        let path = "claim.institutional.attending_provider_npi";
        let s = status(ServiceError::invalid_argument(
            path,
            format!("{huge} is required"),
        ));
        assert!(
            s.message().starts_with(&format!("invalid {path}: AAAA")),
            "{}",
            s.message()
        );
        let s = status(ServiceError::FailedPrecondition(format!(
            "{path}: provider {huge} is not on file"
        )));
        assert!(
            s.message().starts_with(&format!("{path}: provider AAAA")),
            "{}",
            s.message()
        );
        assert!(s.message().len() < 160, "{}", s.message().len());

        let short = status(ServiceError::invalid_argument("code", "\"Z99\" is unknown"));
        assert_eq!(short.message(), "invalid code: \"Z99\" is unknown");
    }

    #[derive(Debug, thiserror::Error)]
    enum ExampleStoreError {
        #[error("account {0} not found")]
        AccountNotFound(String),
        #[error("ledger is out of balance")]
        Broken,
        #[error(transparent)]
        Storage(#[from] medbill_storage::StorageError),
    }

    impl ErrorCode for ExampleStoreError {
        fn error_code(&self) -> Code {
            match self {
                Self::AccountNotFound(_) => Code::NotFound,
                Self::Broken => Code::Internal,
                Self::Storage(e) => e.error_code(),
            }
        }
        fn client_message(&self) -> String {
            match self {
                Self::Storage(e) => e.client_message(),
                other => other.to_string(),
            }
        }
    }

    #[test]
    fn store_errors_answer_with_the_code_they_declare() {
        let s = status(ExampleStoreError::AccountNotFound("a-1".into()).into());
        assert_eq!(
            (s.code(), s.message()),
            (Code::NotFound, "account a-1 not found")
        );
        let s = status(ExampleStoreError::Broken.into());
        assert_eq!((s.code(), s.message()), (Code::Internal, "internal error"));
        let unstorable = medbill_storage::StorageError::Unstorable {
            field: "lines[0].charge".into(),
            reason: "has a fraction of a cent".into(),
        };
        let s = status(ExampleStoreError::Storage(unstorable).into());
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(
            s.message(),
            "invalid lines[0].charge: has a fraction of a cent"
        );
        let busy = medbill_storage::StorageError::Database(sqlx_pool_timeout());
        let s = status(ExampleStoreError::Storage(busy).into());
        assert_eq!(
            (s.code(), s.message()),
            (Code::Unavailable, "the database is busy; retry the call")
        );
        let corrupt = medbill_storage::StorageError::corrupt("claims.status", "\"X\"");
        let s = status(ExampleStoreError::Storage(corrupt).into());
        assert_eq!((s.code(), s.message()), (Code::Internal, "internal error"));
    }

    fn sqlx_pool_timeout() -> medbill_storage::sqlx::Error {
        medbill_storage::sqlx::Error::PoolTimedOut
    }

    #[test]
    fn internal_accepts_plain_strings() {
        let err = ServiceError::internal("ledger out of balance by 1 cent");
        assert_eq!(status(err).message(), "internal error");
    }
}
