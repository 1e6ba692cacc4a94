//! Connecting by URL scheme, per-service namespaces, migrations and transactions.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Connection, Executor, PgPool, SqlitePool, Transaction};

use crate::StorageError;
use crate::url::{backend_of, redact, sqlite_service_path, validate_namespace};

/// Name of the table that records the platform (idempotency, outbox) migrations in every
/// namespace, kept apart from the service's own `_sqlx_migrations`.
pub const PLATFORM_MIGRATIONS_TABLE: &str = "_medbill_platform_migrations";

/// Prefix of the PostgreSQL `application_name`; the namespace follows it.
const APP_NAME_PREFIX: &str = "medbill-";

static PLATFORM_PG: LazyLock<Migrator> = LazyLock::new(|| {
    let mut m = sqlx::migrate!("migrations/postgres");
    m.dangerous_set_table_name(PLATFORM_MIGRATIONS_TABLE);
    m
});

static PLATFORM_SQLITE: LazyLock<Migrator> = LazyLock::new(|| {
    let mut m = sqlx::migrate!("migrations/sqlite");
    m.dangerous_set_table_name(PLATFORM_MIGRATIONS_TABLE);
    m
});

/// Which database engine a [`Database`] or [`Tx`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// PostgreSQL: one schema per service.
    Postgres,
    /// SQLite: one file per service.
    Sqlite,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        })
    }
}

/// Connection-pool settings (deserialisable from the service configuration).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolSettings {
    /// Maximum pooled connections on PostgreSQL.
    pub max_connections: u32,
    /// Connections kept open even when idle (SQLite in-memory databases always keep one).
    pub min_connections: u32,
    /// How long a caller waits for a free connection before failing, in milliseconds.
    pub acquire_timeout_ms: u64,
    /// Idle connections are closed after this many seconds; 0 keeps them forever.
    pub idle_timeout_secs: u64,
    /// Connections are recycled after this many seconds; 0 keeps them forever.
    pub max_lifetime_secs: u64,
    /// Maximum pooled connections on SQLite. Writers are serialised by the database anyway
    /// (every [`Tx`] is `BEGIN IMMEDIATE`), so more connections only add concurrent readers.
    pub sqlite_max_connections: u32,
    /// How long SQLite waits for the write lock before reporting SQLITE_BUSY, in milliseconds.
    pub sqlite_busy_timeout_ms: u64,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout_ms: 10_000,
            idle_timeout_secs: 600,
            max_lifetime_secs: 1_800,
            sqlite_max_connections: 4,
            sqlite_busy_timeout_ms: 10_000,
        }
    }
}

impl PoolSettings {
    fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout_secs > 0).then(|| Duration::from_secs(self.idle_timeout_secs))
    }

    fn max_lifetime(&self) -> Option<Duration> {
        (self.max_lifetime_secs > 0).then(|| Duration::from_secs(self.max_lifetime_secs))
    }

    fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms.max(1))
    }
}

/// A service's database: a pool on PostgreSQL (the service's own schema) or SQLite (the
/// service's own file). Cheap to clone (the pools are reference counted).
#[derive(Clone, Debug)]
pub enum Database {
    /// PostgreSQL pool whose connections have `search_path` set to the service schema.
    Postgres(PgPool),
    /// SQLite pool on the service's own file (WAL, foreign keys on).
    Sqlite(SqlitePool),
}

impl AsRef<Database> for Database {
    fn as_ref(&self) -> &Database {
        self
    }
}

impl Database {
    /// Connects to `url`, choosing the backend by scheme, in the namespace `namespace`
    /// (the service name, e.g. `"claims"`).
    ///
    /// - `postgres://` / `postgresql://`: creates schema `namespace` if missing and sets
    ///   `search_path` to it on every pooled connection, so unqualified table names (and the
    ///   migrations tables) live in the service's schema.
    /// - `sqlite:`: opens a separate file per service, derived from the URL's path by
    ///   [`crate::url::sqlite_service_path`] (`sqlite://data/medbill.db` ->
    ///   `data/medbill-claims.db`; `sqlite://data/` -> `data/claims.db`; `sqlite::memory:` -> a
    ///   private in-memory database per call). The parent directory is created if missing.
    ///   WAL journal, `create_if_missing`, foreign keys on, busy timeout from the settings,
    ///   temporary tables and savepoint journals in memory.
    pub async fn connect(
        url: &str,
        settings: &PoolSettings,
        namespace: &str,
    ) -> Result<Self, StorageError> {
        validate_namespace(namespace)?;
        match backend_of(url)? {
            Backend::Postgres => connect_postgres(url, settings, namespace).await,
            Backend::Sqlite => connect_sqlite(url, settings, namespace).await,
        }
    }

    /// Returns the backend of this database.
    pub fn backend(&self) -> Backend {
        match self {
            Database::Postgres(_) => Backend::Postgres,
            Database::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Returns a description of the database for startup logs, never containing a password:
    /// `postgres://user@host:port/db (schema claims)` or `sqlite://data/medbill-claims.db`.
    pub fn redacted_url(&self) -> String {
        match self {
            Database::Postgres(pool) => {
                let o = pool.connect_options();
                let schema = o
                    .get_application_name()
                    .and_then(|a| a.strip_prefix(APP_NAME_PREFIX))
                    .unwrap_or("public");
                format!(
                    "postgres://{}@{}:{}/{} (schema {schema})",
                    o.get_username(),
                    o.get_host(),
                    o.get_port(),
                    o.get_database().unwrap_or("")
                )
            }
            Database::Sqlite(pool) => {
                let o = pool.connect_options();
                format!("sqlite://{}", o.get_filename().display())
            }
        }
    }

    /// Runs the platform migrations (idempotency keys, outbox; recorded in
    /// [`PLATFORM_MIGRATIONS_TABLE`]) and then the service's own migrator for this backend
    /// (recorded in `_sqlx_migrations`). Safe to call at every start and from several replicas.
    pub async fn migrate(
        &self,
        postgres: &Migrator,
        sqlite: &Migrator,
    ) -> Result<(), StorageError> {
        self.migrate_platform().await?;
        let result = match self {
            Database::Postgres(pool) => postgres.run(pool).await,
            Database::Sqlite(pool) => sqlite.run(pool).await,
        };
        result.map_err(|source| StorageError::Migrate {
            what: "service",
            source,
        })
    }

    /// Runs only the platform migrations (idempotency keys, outbox).
    pub async fn migrate_platform(&self) -> Result<(), StorageError> {
        let result = match self {
            Database::Postgres(pool) => PLATFORM_PG.run(pool).await,
            Database::Sqlite(pool) => PLATFORM_SQLITE.run(pool).await,
        };
        result.map_err(|source| StorageError::Migrate {
            what: "platform",
            source,
        })
    }

    /// Begins a read-write transaction.
    ///
    /// On SQLite this is `BEGIN IMMEDIATE`: the write lock is taken up front (waiting up to the
    /// busy timeout), so a transaction that reads before it writes cannot fail half-way with
    /// SQLITE_BUSY. On PostgreSQL it is a plain `BEGIN` (READ COMMITTED).
    pub async fn begin(&self) -> Result<Tx, StorageError> {
        let inner = match self {
            Database::Postgres(pool) => TxInner::Postgres(pool.begin().await?),
            Database::Sqlite(pool) => TxInner::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        };
        Ok(Tx {
            inner,
            pending_idempotency: Vec::new(),
            deferred: Vec::new(),
        })
    }

    /// Checks that a connection can be acquired and answers `SELECT 1` (for readiness probes).
    pub async fn ping(&self) -> Result<(), StorageError> {
        let one: i64 = crate::with_db!(self, |pool| {
            sqlx::query_scalar("SELECT CAST(1 AS BIGINT)")
                .fetch_one(pool)
                .await?
        });
        if one == 1 {
            Ok(())
        } else {
            Err(StorageError::Corrupt {
                what: "ping result",
                detail: format!("SELECT 1 returned {one}"),
            })
        }
    }

    /// Closes the pool, waiting for checked-out connections to be returned.
    pub async fn close(&self) {
        match self {
            Database::Postgres(pool) => pool.close().await,
            Database::Sqlite(pool) => pool.close().await,
        }
    }
}

async fn connect_postgres(
    url: &str,
    settings: &PoolSettings,
    namespace: &str,
) -> Result<Database, StorageError> {
    let redacted = redact(url);
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StorageError::InvalidUrl {
            url: redacted.clone(),
            reason: e.to_string(),
        })?
        .application_name(&format!("{APP_NAME_PREFIX}{namespace}"));
    let connect_err = |source| StorageError::Connect {
        backend: Backend::Postgres,
        url: redacted.clone(),
        source,
    };

    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(connect_err)?;
    // A schema made beforehand for the service's own role (one role per service, each owning
    // its schema: deploy/k8s) is used as it is: `CREATE SCHEMA IF NOT EXISTS` would need the
    // CREATE privilege on the database, which such a role does not have.
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(namespace)
            .fetch_one(&mut conn)
            .await
            .map_err(connect_err)?;
    if !exists {
        // The namespace is validated as a plain identifier, so quoting it is enough.
        let create = format!("CREATE SCHEMA IF NOT EXISTS \"{namespace}\"");
        match conn.execute(AssertSqlSafe(create)).await {
            Ok(_) => {}
            // Two services racing on `CREATE SCHEMA IF NOT EXISTS` can both pass the existence
            // check; the loser sees a unique violation on pg_namespace, and the schema exists.
            Err(e) if crate::error::is_unique_violation(&e) => {}
            Err(e) => return Err(connect_err(e)),
        }
    }
    conn.close().await.ok();

    let set_path: std::sync::Arc<str> = format!("SET search_path TO \"{namespace}\"").into();
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections.max(1))
        .min_connections(settings.min_connections)
        .acquire_timeout(settings.acquire_timeout())
        .idle_timeout(settings.idle_timeout())
        .max_lifetime(settings.max_lifetime())
        .after_connect(move |conn, _meta| {
            let set_path = set_path.clone();
            Box::pin(async move {
                conn.execute(AssertSqlSafe(set_path)).await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(connect_err)?;
    Ok(Database::Postgres(pool))
}

async fn connect_sqlite(
    url: &str,
    settings: &PoolSettings,
    namespace: &str,
) -> Result<Database, StorageError> {
    let redacted = redact(url);
    let parsed = SqliteConnectOptions::from_str(url).map_err(|e| StorageError::InvalidUrl {
        url: redacted.clone(),
        reason: e.to_string(),
    })?;
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let options = if in_memory {
        // `sqlite::memory:` parses to a fresh shared-cache name per call, i.e. per service.
        parsed
    } else {
        let path = sqlite_service_path(parsed.get_filename(), namespace);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StorageError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        parsed.filename(path).journal_mode(SqliteJournalMode::Wal)
    };
    let options = options
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(Duration::from_millis(settings.sqlite_busy_timeout_ms))
        // Savepoints (a group commit marks one per call) journal the pages they change; in memory
        // that is a copy, on disk a write per page.
        .pragma("temp_store", "memory");

    let mut pool = SqlitePoolOptions::new()
        .max_connections(settings.sqlite_max_connections.max(1))
        .acquire_timeout(settings.acquire_timeout());
    pool = if in_memory {
        // The in-memory database lives only while a connection is open: keep one forever.
        pool.min_connections(settings.min_connections.max(1))
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        pool.min_connections(settings.min_connections)
            .idle_timeout(settings.idle_timeout())
            .max_lifetime(settings.max_lifetime())
    };
    let pool = pool
        .connect_with(options)
        .await
        .map_err(|source| StorageError::Connect {
            backend: Backend::Sqlite,
            url: redacted,
            source,
        })?;
    Ok(Database::Sqlite(pool))
}

enum TxInner {
    Postgres(Transaction<'static, sqlx::Postgres>),
    Sqlite(Transaction<'static, sqlx::Sqlite>),
}

/// A read-write transaction on either backend.
///
/// Store functions take `&mut Tx` so a service can combine several writes, the idempotency
/// record ([`crate::idempotency`]) and outbox messages ([`crate::outbox`]) in one atomic unit.
/// Dropping a `Tx` without [`Tx::commit`] rolls it back.
pub struct Tx {
    inner: TxInner,
    /// (scope, key) of idempotency keys reserved in this transaction and not yet completed.
    pending_idempotency: Vec<(String, String)>,
    /// Writes held back to just before the commit ([`Tx::defer`]), in the order deferred.
    deferred: Vec<Deferred>,
}

impl fmt::Debug for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tx")
            .field("backend", &self.backend())
            .field("pending_idempotency", &self.pending_idempotency.len())
            .field("deferred", &self.deferred.len())
            .finish()
    }
}

/// The future of a [`WriteDeferred`] function, borrowing the transaction.
pub type DeferredWrite<'t> = Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send + 't>>;

/// An item held back with [`Tx::defer`].
pub type DeferredItem = Box<dyn Any + Send>;

/// Writes every item deferred under one kind, in the order deferred, just before the commit.
pub type WriteDeferred = for<'t> fn(&'t mut Tx, Vec<DeferredItem>) -> DeferredWrite<'t>;

/// One item of [`Tx::defer`].
struct Deferred {
    kind: &'static str,
    write: WriteDeferred,
    item: DeferredItem,
}

/// A savepoint marked with [`Tx::savepoint`]: what to restore when rolling back to it.
#[derive(Debug)]
#[must_use = "a savepoint is released or rolled back to"]
pub struct Savepoint {
    pending: Vec<(String, String)>,
    deferred: usize,
}

/// The connection of a [`Tx`], typed per backend; obtained with [`Tx::conn`] and normally
/// used through [`crate::with_tx!`].
#[derive(Debug)]
pub enum TxConn<'a> {
    /// A PostgreSQL connection inside the transaction.
    Postgres(&'a mut PgConnection),
    /// A SQLite connection inside the transaction.
    Sqlite(&'a mut SqliteConnection),
}

impl Tx {
    /// Returns the backend of this transaction.
    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Postgres(_) => Backend::Postgres,
            TxInner::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Returns the transaction's connection, typed per backend.
    pub fn conn(&mut self) -> TxConn<'_> {
        match &mut self.inner {
            TxInner::Postgres(t) => TxConn::Postgres(t),
            TxInner::Sqlite(t) => TxConn::Sqlite(t),
        }
    }

    /// Commits the transaction.
    ///
    /// Fails with [`StorageError::IdempotencyNotCompleted`] (and rolls back) when an
    /// idempotency key reserved in this transaction was not completed with its response: a
    /// committed key without a response could never be replayed.
    pub async fn commit(mut self) -> Result<(), StorageError> {
        if let Some((scope, key)) = self.pending_idempotency.first().cloned() {
            self.rollback().await?;
            return Err(StorageError::IdempotencyNotCompleted { scope, key });
        }
        if let Err(e) = self.write_deferred().await {
            self.rollback().await?;
            return Err(e);
        }
        match self.inner {
            TxInner::Postgres(t) => t.commit().await?,
            TxInner::Sqlite(t) => t.commit().await?,
        }
        Ok(())
    }

    /// Rolls the transaction back.
    pub async fn rollback(self) -> Result<(), StorageError> {
        match self.inner {
            TxInner::Postgres(t) => t.rollback().await?,
            TxInner::Sqlite(t) => t.rollback().await?,
        }
        Ok(())
    }

    /// Marks a savepoint, so one unit of work among several in this transaction (a group
    /// commit) can be undone alone with [`Tx::rollback_to`], or kept with [`Tx::release`].
    /// Savepoints are not nested: release or roll back one before marking the next.
    pub async fn savepoint(&mut self) -> Result<Savepoint, StorageError> {
        self.execute_raw("SAVEPOINT medbill_unit").await?;
        Ok(Savepoint {
            pending: self.pending_idempotency.clone(),
            deferred: self.deferred.len(),
        })
    }

    /// Holds `item` back to be written by `write`, with every other item of `kind`, just before
    /// the transaction commits (an item deferred after a savepoint is dropped when rolling back
    /// to it). For rows whose writing takes a lock the next writer waits on (a per-tenant
    /// counter): written last, the lock is held for the commit only, not for the rest of the
    /// transaction. A failing `write` fails the commit, and nothing is written.
    pub fn defer<T: Any + Send>(&mut self, kind: &'static str, write: WriteDeferred, item: T) {
        self.deferred.push(Deferred {
            kind,
            write,
            item: Box::new(item),
        });
    }

    /// The items of `kind` deferred so far that are `T`, to amend before they are written.
    pub fn deferred_mut<T: Any>(&mut self, kind: &'static str) -> impl Iterator<Item = &mut T> {
        self.deferred
            .iter_mut()
            .filter(move |d| d.kind == kind)
            .filter_map(|d| d.item.downcast_mut::<T>())
    }

    /// Writes the deferred items, each kind's together, kinds in the order first deferred.
    async fn write_deferred(&mut self) -> Result<(), StorageError> {
        let mut kinds: Vec<(&'static str, WriteDeferred, Vec<DeferredItem>)> = Vec::new();
        for d in std::mem::take(&mut self.deferred) {
            match kinds.iter_mut().find(|(kind, _, _)| *kind == d.kind) {
                Some((_, _, items)) => items.push(d.item),
                None => kinds.push((d.kind, d.write, vec![d.item])),
            }
        }
        for (_, write, items) in kinds {
            write(self, items).await?;
        }
        Ok(())
    }

    /// Undoes everything written since `savepoint` (the idempotency keys reserved since then
    /// too); the transaction stays usable.
    pub async fn rollback_to(&mut self, savepoint: Savepoint) -> Result<(), StorageError> {
        self.execute_raw("ROLLBACK TO SAVEPOINT medbill_unit")
            .await?;
        self.execute_raw("RELEASE SAVEPOINT medbill_unit").await?;
        self.pending_idempotency = savepoint.pending;
        self.deferred.truncate(savepoint.deferred);
        Ok(())
    }

    /// Keeps what was written since `savepoint`.
    pub async fn release(&mut self, savepoint: Savepoint) -> Result<(), StorageError> {
        drop(savepoint);
        self.execute_raw("RELEASE SAVEPOINT medbill_unit").await
    }

    /// Runs one fixed statement (savepoint control) in the transaction.
    async fn execute_raw(&mut self, sql: &'static str) -> Result<(), StorageError> {
        match &mut self.inner {
            TxInner::Postgres(t) => {
                sqlx::query(sql).execute(&mut **t).await?;
            }
            TxInner::Sqlite(t) => {
                sqlx::query(sql).execute(&mut **t).await?;
            }
        }
        Ok(())
    }

    pub(crate) fn push_pending(&mut self, scope: &str, key: &str) {
        self.pending_idempotency
            .push((scope.to_owned(), key.to_owned()));
    }

    pub(crate) fn take_pending(&mut self, scope: &str, key: &str) -> bool {
        match self
            .pending_idempotency
            .iter()
            .position(|(s, k)| s == scope && k == key)
        {
            Some(i) => {
                self.pending_idempotency.swap_remove(i);
                true
            }
            None => false,
        }
    }
}
