//! The storage error type shared by this crate and the service stores built on it.

use crate::Backend;

/// Errors raised by connecting, migrating and the platform tables (idempotency, outbox).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database URL's scheme is neither `postgres://`/`postgresql://` nor `sqlite:`.
    #[error(
        "unsupported database URL scheme `{scheme}` (expected `postgres://`, `postgresql://` or `sqlite:`)"
    )]
    UnknownScheme {
        /// The scheme found in the URL (text before the first `:`), possibly empty.
        scheme: String,
    },
    /// The database URL could not be parsed; `url` is redacted (no password).
    #[error("invalid database URL `{url}`: {reason}")]
    InvalidUrl {
        /// The offending URL with any password removed.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The service namespace (PostgreSQL schema / SQLite file suffix) is not a plain identifier.
    #[error(
        "invalid storage namespace `{0}`: expected 1..=48 chars of lowercase ASCII letters, digits or `_`, starting with a letter"
    )]
    InvalidNamespace(String),
    /// Opening the connection pool failed.
    #[error("cannot connect to {backend} database `{url}`: {source}")]
    Connect {
        /// The backend that was being connected.
        backend: Backend,
        /// The URL with any password removed.
        url: String,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },
    /// Preparing the SQLite data directory failed.
    #[error("cannot create SQLite data directory `{path}`: {source}")]
    DataDir {
        /// The directory that could not be created.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Running migrations failed.
    #[error("{what} migrations failed: {source}")]
    Migrate {
        /// Which migration set failed ("platform" or "service").
        what: &'static str,
        /// The migrator error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A transaction was committed although an idempotency key it claimed was never completed.
    #[error(
        "idempotency key `{key}` (scope `{scope}`) was reserved but not completed before commit; transaction rolled back"
    )]
    IdempotencyNotCompleted {
        /// The RPC / operation scope of the key.
        scope: String,
        /// The idempotency key.
        key: String,
    },
    /// A committed idempotency record has no stored response (written outside this crate's API).
    #[error("idempotency key `{key}` (scope `{scope}`) is recorded without a response")]
    IdempotencyIncomplete {
        /// The RPC / operation scope of the key.
        scope: String,
        /// The idempotency key.
        key: String,
    },
    /// A value cannot be stored in its column (an amount with a fraction of a cent, or one
    /// beyond the BIGINT range): a request the handler should have refused; the client's error.
    #[error("{field}: {reason}")]
    Unstorable {
        /// The field as the client names it.
        field: String,
        /// Why it cannot be stored.
        reason: String,
    },
    /// A stored value does not have the shape this crate wrote (corruption or manual edits).
    #[error("corrupt {what} in storage: {detail}")]
    Corrupt {
        /// Which value is corrupt.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

impl StorageError {
    /// Reports a stored value that does not have the shape this code writes.
    pub fn corrupt(what: &'static str, detail: impl Into<String>) -> Self {
        StorageError::Corrupt {
            what,
            detail: detail.into(),
        }
    }

    /// Returns true when retrying the whole operation (a new transaction) may succeed:
    /// lock timeouts, serialization failures, deadlocks, a busy SQLite database, pool timeouts.
    pub fn is_retryable(&self) -> bool {
        match self {
            StorageError::Database(e) | StorageError::Connect { source: e, .. } => is_retryable(e),
            _ => false,
        }
    }

    /// Returns true when the error is a unique-constraint violation (on either backend).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StorageError::Database(e) if is_unique_violation(e))
    }
}

/// Returns true when the driver error is transient: retrying the transaction may succeed.
///
/// PostgreSQL: serialization failure (40001), deadlock (40P01), lock not available (55P03),
/// too many connections (53300); SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6) including their
/// extended codes; any backend: pool timeouts and I/O errors.
pub fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else { return false };
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // Extended result codes keep the primary code in the low byte.
                code.parse::<i64>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
            } else {
                matches!(code.as_ref(), "40001" | "40P01" | "55P03" | "53300")
            }
        }
        _ => false,
    }
}

/// Returns true when the driver error is a unique-constraint violation (on either backend).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Returns the name of the violated constraint when the backend reports one (PostgreSQL does;
/// SQLite reports none, so stores should also match on [`is_unique_violation`]).
pub fn violated_constraint(e: &sqlx::Error) -> Option<&str> {
    match e {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}
