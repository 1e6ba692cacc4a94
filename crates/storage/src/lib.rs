//! Storage plumbing shared by the medbill services: connect by URL scheme into a per-service
//! namespace, migrations, one transaction type over PostgreSQL and SQLite, idempotency keys and
//! a transactional outbox with its relay.
//!
//! # Connecting
//!
//! ```ignore
//! let db = Database::connect(&config.database_url, &config.pool, "claims").await?;
//! db.migrate(&PG_MIGRATOR, &SQLITE_MIGRATOR).await?; // platform tables first, then the service's
//! info!(database = %db.redacted_url(), "connected");
//! ```
//!
//! - `postgres://…` / `postgresql://…`: the service's tables live in the schema named after the
//!   service (created if missing; `search_path` is set on every pooled connection), so SQL uses
//!   unqualified table names.
//! - `sqlite:…`: one file per service next to the configured one: `sqlite://data/medbill.db` ->
//!   `data/medbill-claims.db`; a directory (`sqlite://data/`) -> `data/claims.db`;
//!   `sqlite::memory:` -> a private in-memory database per `connect`. WAL, foreign keys on,
//!   busy timeout; every [`Tx`] is `BEGIN IMMEDIATE` (one writer at a time, no mid-transaction
//!   SQLITE_BUSY).
//!
//! # Migrations
//!
//! Each service keeps `migrations/postgres/*.sql` and `migrations/sqlite/*.sql` and embeds them:
//!
//! ```ignore
//! pub static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
//! pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
//! ```
//!
//! (`sqlx::migrate!` and `#[derive(sqlx::FromRow)]` expand to `::sqlx` paths, so the service
//! depends on `sqlx.workspace = true` itself.)
//!
//! [`Database::migrate`] first runs this crate's platform migrations (tables `platform_idempotency`
//! and `platform_outbox`, recorded in `_medbill_platform_migrations`), then the service's
//! (recorded in the usual `_sqlx_migrations`). Service migrations must not create tables named
//! `platform_*`. Write the two dialects so the *same* queries work on both: the DDL differs only
//! where the type names do (`BYTEA` vs `BLOB`, `BOOLEAN` vs `INTEGER`).
//!
//! # The pattern for a dual-backend store (no duplicated query code)
//!
//! A store is ONE struct holding a [`Database`]; each method's body is written once, with
//! portable SQL, inside [`with_tx!`] (writes, in the caller's [`Tx`]) or [`with_db!`] (reads from
//! the pool). The macro expands the body once per backend with `conn` / `pool` bound to the
//! concrete sqlx connection (`&mut PgConnection` / `&mut SqliteConnection`, `&PgPool` /
//! `&SqlitePool`), so sqlx's ordinary generic API (`query`, `query_as`, `query_scalar`,
//! `#[derive(sqlx::FromRow)]`) type-checks against both drivers.
//!
//! ```ignore
//! use medbill_storage::{Database, Tx, with_db, with_tx};
//!
//! #[derive(sqlx::FromRow)]
//! struct ClaimRow { id: String, tenant_id: String, total_charge_cents: i64, created_at: i64 }
//!
//! pub struct SqlClaimStore { db: Database }
//!
//! impl SqlClaimStore {
//!     pub async fn insert(&self, tx: &mut Tx, c: &ClaimRow) -> Result<(), StoreError> {
//!         with_tx!(tx, |conn| {
//!             sqlx::query("INSERT INTO claims (id, tenant_id, total_charge_cents, created_at) \
//!                          VALUES ($1, $2, $3, $4)")
//!                 .bind(&c.id).bind(&c.tenant_id).bind(c.total_charge_cents).bind(c.created_at)
//!                 .execute(&mut *conn)     // reborrow: `conn` is used again below
//!                 .await?;
//!             Ok(())
//!         })
//!     }
//!
//!     pub async fn get(&self, tenant: &str, id: &str) -> Result<Option<ClaimRow>, StoreError> {
//!         with_db!(self.db, |pool| {
//!             Ok(sqlx::query_as("SELECT id, tenant_id, total_charge_cents, created_at \
//!                                FROM claims WHERE tenant_id = $1 AND id = $2")
//!                 .bind(tenant).bind(id)
//!                 .fetch_optional(pool)
//!                 .await?)
//!         })
//!     }
//! }
//! ```
//!
//! Both arms of the macro must produce the same type: return plain values (`rows_affected()`,
//! mapped rows, `()`), not driver types such as `PgQueryResult`. Give `query_as` / `query_scalar`
//! their row type through the binding (`let row: Option<ClaimRow> = with_db!(…)`) or a turbofish
//! on the row type only (`sqlx::query_as::<_, ClaimRow>`).
//!
//! Portable SQL rules (both hold on PostgreSQL 13+ and the bundled SQLite 3.4x):
//! - placeholders are `$1, $2, …` (sqlx's SQLite driver binds `$N` by number; a number may
//!   repeat); the SQL is a `&'static str` (sqlx 0.9 requires [`sqlx::SqlSafeStr`]); build
//!   optional filters with `($2 IS NULL OR status = $2)` rather than string concatenation;
//! - types: ids, codes and dates `TEXT` (`String`, dates as `YYYY-MM-DD`), money `BIGINT` cents
//!   (`i64`), timestamps `BIGINT` unix micros (`i64`, see [`time`]), raw bytes `BYTEA`/`BLOB`
//!   (`Vec<u8>`), flags `BOOLEAN`/`INTEGER` (`bool`), `Option<_>` for NULL. No floats, no
//!   `SERIAL`/`AUTOINCREMENT` (ids are UUID v7 text), no JSON operators;
//! - aggregates: PostgreSQL's `SUM(bigint)` is `NUMERIC`, so write
//!   `CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT)`; `COUNT(*)` is `i64` on both;
//! - `INSERT … ON CONFLICT (…) DO NOTHING/UPDATE`, `RETURNING`, `LIMIT $n`, keyset pagination
//!   `WHERE id > $n ORDER BY id` all work on both;
//! - every table has `tenant_id TEXT NOT NULL` and every query filters on it;
//! - no `SELECT … FOR UPDATE` (SQLite lacks it): change state with one conditional statement
//!   (`UPDATE claims SET status = $1 WHERE tenant_id = $2 AND id = $3 AND status = $4
//!   RETURNING …`) and treat 0 rows as "not found / state changed"; on SQLite every `Tx` already
//!   holds the write lock, on PostgreSQL the `UPDATE` row lock serialises writers;
//! - inside a transaction read through `with_tx!` (the same connection), never `with_db!`: a
//!   second connection while holding the SQLite write lock can starve the pool;
//! - after a failed statement PostgreSQL aborts the whole transaction, so a store never
//!   "tries and recovers" inside a `Tx`: use `ON CONFLICT` for insert-if-absent, and return the
//!   error (dropping the `Tx`) otherwise;
//! - map constraint violations with [`error::is_unique_violation`] (SQLite reports no
//!   constraint name; PostgreSQL's is in [`error::violated_constraint`]).
//!
//! A mutating RPC runs in one transaction with its idempotency record and outbox messages
//! (store methods take `&mut Tx`, so they compose). Handlers reach this through
//! `medbill_runtime::idempotent`, which fixes the scope (the full gRPC method name), the
//! fingerprint (the request encoded with its key cleared) and the replay (the stored response
//! message); `docs/architecture.md` shows a handler end to end. Underneath:
//!
//! ```ignore
//! match idempotency::begin(&db, tenant, "medbill.claims.v1.ClaimsService/CreateClaim", key, &fp).await? {
//!     Begin::Replay(bytes) => return decode_response(&bytes),        // nothing written
//!     Begin::Conflict => return Err(key_reused(key)),              // ALREADY_EXISTS
//!     Begin::New(mut op) => {
//!         store.insert_claim(op.tx(), &claim).await?;             // any number of writes
//!         outbox::enqueue(op.tx(), tenant, destination, &message_key, &payload).await?;
//!         op.commit(&encode_response(&claim)).await?;            // key + writes + outbox, atomically
//!     }
//! }
//! ```
//!
//! An early return (`?`) drops the operation and rolls everything back: no row, no idempotency
//! record, no outbox message. The lower-level [`idempotency::reserve`] / [`idempotency::complete`]
//! do the same inside a [`Tx`] the caller opened with [`Database::begin`]; [`Tx::commit`] refuses
//! (and rolls back) when a reserved key was not completed. On a [`StorageError::is_retryable`]
//! error (lock timeout, SQLITE_BUSY after the busy timeout) the whole operation may be retried.
//!
//! The receiver of an outbox message is an ordinary idempotent RPC whose idempotency key is the
//! message's `message_key`: delivery is at-least-once, the effect exactly once.
//!
//! A store method that needs backend-specific SQL (rare) matches on [`Tx::conn`] /
//! [`Database`] directly; [`outbox::Relay`] does so for `FOR UPDATE SKIP LOCKED`.
//!
//! # Tests
//!
//! With the `testing` feature, `conformance_tests!` turns each `async fn(db: Database)` into a
//! SQLite and a PostgreSQL test on a fresh database (see the `testing` module).

#![forbid(unsafe_code)]

pub mod audit;
mod database;
pub mod error;
pub mod filters;
pub mod idempotency;
pub mod outbox;
#[cfg(feature = "testing")]
pub mod query_plans;
pub mod rows;
pub mod stats;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod url;

pub use database::{
    Backend, Database, DeferredItem, DeferredWrite, PLATFORM_MIGRATIONS_TABLE, PoolSettings,
    Savepoint, Tx, TxConn, WriteDeferred,
};
pub use error::StorageError;
pub use sqlx;

/// Runs `body` with `conn` bound to the concrete connection of a [`Tx`]: the body is expanded
/// once per backend, so it is written once and type-checked against both drivers.
///
/// `tx` is a `&mut Tx` (or a `Tx` place); inside, pass `&mut *conn` to each query. The value
/// of the body is the value of the macro; `?` and `return` act on the enclosing function.
#[macro_export]
macro_rules! with_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match ($tx).conn() {
            $crate::TxConn::Postgres($conn) => $body,
            $crate::TxConn::Sqlite($conn) => $body,
        }
    };
}

/// Runs `body` with `pool` bound to the concrete pool (`&PgPool` / `&SqlitePool`) of a
/// [`Database`] (given by value place or by reference); the body is expanded once per backend.
#[macro_export]
macro_rules! with_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match ::core::convert::AsRef::<$crate::Database>::as_ref(&$db) {
            $crate::Database::Postgres($pool) => $body,
            $crate::Database::Sqlite($pool) => $body,
        }
    };
}
