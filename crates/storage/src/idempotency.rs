//! Idempotency keys reserved inside the caller's transaction.
//!
//! Services do not call this module directly: `medbill_runtime::idempotent` is the one path a
//! mutating RPC takes (scope = the full gRPC method name, fingerprint = the request encoded with
//! its key cleared, response = the encoded response message). This module is the storage half:
//!
//! 1. [`reserve`] `(tenant, scope, key)` with the [`Fingerprint`] of the canonical request bytes;
//! 2. on [`Reservation::New`]: perform the writes (and [`crate::outbox::enqueue`] if needed),
//!    then [`complete`] with the encoded response, then [`Tx::commit`];
//!    on [`Reservation::Replay`]: return the stored response and write nothing;
//!    on [`Reservation::Conflict`]: reject (the runtime answers ALREADY_EXISTS naming the key).
//!
//! [`begin`] bundles step 1 and the commit: it opens the transaction, reserves the key and
//! returns an [`Operation`] whose [`Operation::commit`] completes the key and commits.
//! [`lookup`] reads a key without reserving it, for handlers that do slow outside work (a payer
//! call) before they write and must not hold a transaction meanwhile.
//!
//! Because the record is written in the same transaction as the effect, a failure anywhere
//! leaves neither. Two concurrent identical requests: on PostgreSQL the second `reserve` waits on
//! the first transaction's uncommitted key row, then sees it committed and replays (or, if the
//! first rolled back, proceeds as new); on SQLite every [`Tx`] is `BEGIN IMMEDIATE`, so the
//! second transaction starts only after the first finished. Either way the effect happens once.
//! If the wait exceeds the lock / busy timeout the error is [`StorageError::is_retryable`].

use sha2::{Digest, Sha256};

use crate::{Database, StorageError, Tx, time, with_db, with_tx};

/// SHA-256 of the canonical request bytes (e.g. the protobuf encoding of the request with its
/// idempotency key cleared), identifying "the same request" for replays.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Computes the fingerprint of the canonical request bytes.
    pub fn of(canonical_request: &[u8]) -> Self {
        Self(Sha256::digest(canonical_request).into())
    }

    /// Returns the raw 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Returns the lowercase hex form stored in the database.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// The outcome of [`reserve`].
#[derive(Debug)]
#[must_use = "a reserved key must be completed, replayed or rejected"]
pub enum Reservation {
    /// First time this key is seen: proceed, then [`complete`] in the same transaction.
    New(Pending),
    /// The same request was already processed: return these response bytes, write nothing.
    Replay(Vec<u8>),
    /// The key was already used for a different request.
    Conflict,
}

/// The outcome of [`lookup`].
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// No completed request holds the key (an uncommitted one may: [`reserve`] decides).
    Absent,
    /// The same request was already processed: these are its response bytes.
    Replay(Vec<u8>),
    /// The key was already used for a different request.
    Conflict,
}

/// A reserved key awaiting its response; consumed by [`complete`].
#[derive(Debug)]
#[must_use = "pass this to idempotency::complete before committing"]
pub struct Pending {
    tenant_id: String,
    scope: String,
    key: String,
}

impl Pending {
    /// Returns the idempotency key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Reserves `(tenant_id, scope, key)` for a request with `fingerprint` in the caller's
/// transaction.
///
/// `scope` names the operation (the RPC's full method name), so the same key may be reused
/// across different RPCs without conflict.
pub async fn reserve(
    tx: &mut Tx,
    tenant_id: &str,
    scope: &str,
    key: &str,
    fingerprint: &Fingerprint,
) -> Result<Reservation, StorageError> {
    let hex = fingerprint.to_hex();
    let now = time::now_micros();
    let inserted = with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO platform_idempotency (tenant_id, scope, idem_key, request_sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, scope, idem_key) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(scope)
        .bind(key)
        .bind(&hex)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if inserted == 1 {
        tx.push_pending(scope, key);
        return Ok(Reservation::New(Pending {
            tenant_id: tenant_id.to_owned(),
            scope: scope.to_owned(),
            key: key.to_owned(),
        }));
    }

    let row: Option<KeyRow> = with_tx!(tx, |conn| {
        sqlx::query_as(SELECT_KEY)
            .bind(tenant_id)
            .bind(scope)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?
    });
    match settle(row, fingerprint) {
        Lookup::Conflict => Ok(Reservation::Conflict),
        Lookup::Replay(response) => Ok(Reservation::Replay(response)),
        // The insert found a row, and a committed record always has a response (Tx::commit
        // enforces it), so this means the row was written or purged outside this API; the
        // caller may retry.
        Lookup::Absent => Err(StorageError::IdempotencyIncomplete {
            scope: scope.to_owned(),
            key: key.to_owned(),
        }),
    }
}

/// Reads a key's record: its request fingerprint and (once completed) its response.
const SELECT_KEY: &str = "SELECT request_sha256, response FROM platform_idempotency \
     WHERE tenant_id = $1 AND scope = $2 AND idem_key = $3";

/// A key's record as [`SELECT_KEY`] reads it.
type KeyRow = (String, Option<Vec<u8>>);

/// Compares a key's record with the request now asking: another request, the same one done, or
/// nothing completed.
fn settle(row: Option<KeyRow>, fingerprint: &Fingerprint) -> Lookup {
    match row {
        Some((stored, _)) if stored != fingerprint.to_hex() => Lookup::Conflict,
        Some((_, Some(response))) => Lookup::Replay(response),
        Some((_, None)) | None => Lookup::Absent,
    }
}

/// Stores the response for a key reserved with [`reserve`] in this same transaction.
pub async fn complete(tx: &mut Tx, pending: Pending, response: &[u8]) -> Result<(), StorageError> {
    let now = time::now_micros();
    let updated = with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE platform_idempotency SET response = $1, completed_at = $2 \
             WHERE tenant_id = $3 AND scope = $4 AND idem_key = $5 AND response IS NULL",
        )
        .bind(response)
        .bind(now)
        .bind(&pending.tenant_id)
        .bind(&pending.scope)
        .bind(&pending.key)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if updated != 1 || !tx.take_pending(&pending.scope, &pending.key) {
        return Err(StorageError::Corrupt {
            what: "idempotency record",
            detail: format!(
                "key `{}` (scope `{}`) was not pending in this transaction",
                pending.key, pending.scope
            ),
        });
    }
    Ok(())
}

/// The outcome of [`begin`].
#[derive(Debug)]
#[must_use = "a new operation must be committed; a replay returned; a conflict rejected"]
pub enum Begin {
    /// First time this key is seen: write through [`Operation::tx`], then [`Operation::commit`].
    New(Operation),
    /// The same request was already processed: return these response bytes.
    Replay(Vec<u8>),
    /// The key was already used for a different request.
    Conflict,
}

/// A transaction that reserved an idempotency key; dropping it rolls everything back.
#[derive(Debug)]
pub struct Operation {
    tx: Tx,
    pending: Pending,
}

impl Operation {
    /// Returns the transaction for the operation's writes and outbox messages.
    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// Returns the idempotency key.
    pub fn key(&self) -> &str {
        self.pending.key()
    }

    /// Stores `response` for the key and commits everything written in the transaction.
    pub async fn commit(mut self, response: &[u8]) -> Result<(), StorageError> {
        complete(&mut self.tx, self.pending, response).await?;
        self.tx.commit().await
    }
}

/// Begins a transaction on `db` and reserves `(tenant_id, scope, key)` in it (see [`reserve`]).
///
/// On [`Begin::Replay`] and [`Begin::Conflict`] the transaction is already rolled back.
pub async fn begin(
    db: &Database,
    tenant_id: &str,
    scope: &str,
    key: &str,
    fingerprint: &Fingerprint,
) -> Result<Begin, StorageError> {
    let mut tx = db.begin().await?;
    match reserve(&mut tx, tenant_id, scope, key, fingerprint).await? {
        Reservation::New(pending) => Ok(Begin::New(Operation { tx, pending })),
        Reservation::Replay(response) => {
            tx.rollback().await?;
            Ok(Begin::Replay(response))
        }
        Reservation::Conflict => {
            tx.rollback().await?;
            Ok(Begin::Conflict)
        }
    }
}

/// Reads the completed record of `(tenant_id, scope, key)` without reserving it.
///
/// A handler that must call something slow before it writes (a payer) checks here first, so a
/// retry replays and a reused key is refused before any outside work; it then reserves the key
/// with [`begin`], which settles a race with a concurrent first call.
pub async fn lookup(
    db: &Database,
    tenant_id: &str,
    scope: &str,
    key: &str,
    fingerprint: &Fingerprint,
) -> Result<Lookup, StorageError> {
    let row: Option<KeyRow> = with_db!(db, |pool| {
        sqlx::query_as(SELECT_KEY)
            .bind(tenant_id)
            .bind(scope)
            .bind(key)
            .fetch_optional(pool)
            .await?
    });
    Ok(settle(row, fingerprint))
}

/// Keys read per statement by [`lookup_many`].
const LOOKUP_CHUNK: usize = 500;

/// Reads the records of many keys of one scope at once: what [`lookup`] answers for each
/// `(key, fingerprint)`, in the same order, in one statement per [`LOOKUP_CHUNK`] keys (a batch
/// call settles its replays before any outside work).
pub async fn lookup_many(
    db: &Database,
    tenant_id: &str,
    scope: &str,
    calls: &[(&str, &Fingerprint)],
) -> Result<Vec<Lookup>, StorageError> {
    let mut found: std::collections::HashMap<String, KeyRow> = std::collections::HashMap::new();
    for chunk in calls.chunks(LOOKUP_CHUNK) {
        let placeholders = crate::filters::placeholders(3, chunk.len());
        // Only numbered placeholders are formatted into the text; the keys are bound.
        let sql = format!(
            "SELECT idem_key, request_sha256, response FROM platform_idempotency \
             WHERE tenant_id = $1 AND scope = $2 AND idem_key IN ({placeholders})"
        );
        // One-shot: the text changes with the chunk's length, and a kept generic plan would be
        // the one made while the table was small (see `query_plans::Lookup::planned_each_time`).
        let rows: Vec<(String, String, Option<Vec<u8>>)> = with_db!(db, |pool| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .persistent(false)
                .bind(tenant_id)
                .bind(scope);
            for (key, _) in chunk {
                q = q.bind(*key);
            }
            q.fetch_all(pool).await?
        });
        found.extend(
            rows.into_iter()
                .map(|(key, sha, response)| (key, (sha, response))),
        );
    }
    Ok(calls
        .iter()
        .map(|(key, fingerprint)| settle(found.get(*key).cloned(), fingerprint))
        .collect())
}

/// Rows per statement in [`record_many_in`] (three bound values a row; small on SQLite, see
/// [`crate::filters::SQLITE_BINDS_PER_STATEMENT`]).
fn record_chunk(tx: &Tx) -> usize {
    match tx.backend() {
        crate::Backend::Postgres => 500,
        crate::Backend::Sqlite => crate::filters::sqlite_rows_per_statement(3),
    }
}

/// One completed request for [`record_many_in`]: its key, fingerprint and encoded response.
pub type CompletedRecord<'a> = (&'a str, &'a Fingerprint, &'a [u8]);

/// Records many completed requests of one scope in the caller's transaction, in one multi-row
/// statement per [`record_chunk`] keys, as [`reserve`] then [`complete`] would each one (a batch
/// call writing its items together). Returns whether every key was new: `false` when any key is
/// already held (by a committed request or a concurrent one that has now finished); then the
/// transaction holds some of the records and must be rolled back, and the caller takes the
/// one-key path, which tells a replay from a conflict.
pub async fn record_many_in(
    tx: &mut Tx,
    tenant_id: &str,
    scope: &str,
    records: &[CompletedRecord<'_>],
) -> Result<bool, StorageError> {
    let now = time::now_micros();
    let mut inserted = 0u64;
    for chunk in records.chunks(record_chunk(tx)) {
        // $1 tenant, $2 scope, $3 now are shared; each row binds key, fingerprint and response.
        let rows = (0..chunk.len())
            .map(|i| {
                let b = 4 + 3 * i;
                format!("($1, $2, ${b}, ${}, ${}, $3, $3)", b + 1, b + 2)
            })
            .collect::<Vec<_>>()
            .join(", ");
        // Only numbered placeholders are formatted into the text; the values are bound.
        let sql = format!(
            "INSERT INTO platform_idempotency \
             (tenant_id, scope, idem_key, request_sha256, response, created_at, completed_at) \
             VALUES {rows} ON CONFLICT (tenant_id, scope, idem_key) DO NOTHING"
        );
        let hexes: Vec<String> = chunk.iter().map(|(_, f, _)| f.to_hex()).collect();
        inserted += with_tx!(tx, |conn| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(tenant_id)
                .bind(scope)
                .bind(now);
            for ((key, _, response), hex) in chunk.iter().zip(&hexes) {
                q = q.bind(*key).bind(hex).bind(*response);
            }
            q.execute(&mut *conn).await?.rows_affected()
        });
    }
    Ok(inserted == records.len() as u64)
}

/// The outcome of [`record`].
#[derive(Debug, PartialEq, Eq)]
pub enum Recorded {
    /// The key was new: it now holds this request and response.
    New,
    /// The same request was already processed: these are its response bytes.
    Replay(Vec<u8>),
    /// The key was already used for a different request.
    Conflict,
}

/// Records a completed request whose only write is its record (an answer computed without
/// changing anything, such as an eligibility answer from the cache) in one statement, outside any
/// transaction: the key's check and its record in one step.
pub async fn record(
    db: &Database,
    tenant_id: &str,
    scope: &str,
    key: &str,
    fingerprint: &Fingerprint,
    response: &[u8],
) -> Result<Recorded, StorageError> {
    let hex = fingerprint.to_hex();
    let now = time::now_micros();
    let inserted = with_db!(db, |pool| {
        sqlx::query(
            "INSERT INTO platform_idempotency \
             (tenant_id, scope, idem_key, request_sha256, response, created_at, completed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (tenant_id, scope, idem_key) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(scope)
        .bind(key)
        .bind(&hex)
        .bind(response)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    });
    if inserted == 1 {
        return Ok(Recorded::New);
    }
    // The insert waited for any concurrent holder of the key to finish, so what is stored now
    // is committed.
    match lookup(db, tenant_id, scope, key, fingerprint).await? {
        Lookup::Replay(bytes) => Ok(Recorded::Replay(bytes)),
        Lookup::Conflict => Ok(Recorded::Conflict),
        Lookup::Absent => Err(StorageError::IdempotencyIncomplete {
            scope: scope.to_owned(),
            key: key.to_owned(),
        }),
    }
}

/// Deletes completed idempotency records created before `cutoff_micros` (unix micros);
/// returns how many were deleted. Keys older than the retention window can then be reused.
pub async fn purge_before(db: &Database, cutoff_micros: i64) -> Result<u64, StorageError> {
    let n = with_db!(db, |pool| {
        sqlx::query(
            "DELETE FROM platform_idempotency WHERE created_at < $1 AND response IS NOT NULL",
        )
        .bind(cutoff_micros)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_sha256() {
        assert_eq!(
            Fingerprint::of(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(Fingerprint::of(b"a"), Fingerprint::of(b"b"));
    }
}
