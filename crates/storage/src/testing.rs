//! Test helpers: a fresh database per test on SQLite (always) and PostgreSQL (when
//! `MEDBILL_TEST_PG_URL` is set), and [`conformance_tests!`](crate::conformance_tests) which
//! generates one test per backend from one async fn.
//!
//! Enabled by the `testing` feature; add to the service's `Cargo.toml`:
//!
//! ```toml
//! [dev-dependencies]
//! medbill-storage = { workspace = true, features = ["testing"] }
//! ```
//!
//! On PostgreSQL each test creates the database `medbill_test_<uuid>` next to the one named by
//! `MEDBILL_TEST_PG_URL` and drops it afterwards (`WITH (FORCE)`), also when the test panics.
//! On SQLite each test gets a temporary directory, removed afterwards.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use sqlx::migrate::Migrator;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

use crate::{Backend, Database, PoolSettings, StorageError};

/// The environment variable naming the PostgreSQL server used by tests.
pub const PG_URL_ENV: &str = "MEDBILL_TEST_PG_URL";

/// The database of one test: its URL and the connected service namespace.
#[derive(Clone, Debug)]
pub struct TestEnv {
    backend: Backend,
    url: String,
    namespace: String,
    db: Database,
    opened: Arc<Mutex<Vec<Database>>>,
}

impl TestEnv {
    /// Returns the backend under test.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Returns the database connected in the test's namespace (platform + service migrations run).
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Returns the test database URL (for [`Database::connect`] with another namespace).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns the namespace [`TestEnv::db`] is connected in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Connects a new pool to the test database in `namespace` (another service, or the same
    /// one again to simulate a process restart) and runs the platform migrations there.
    /// The pool is closed when the test ends.
    pub async fn connect(&self, namespace: &str) -> Result<Database, StorageError> {
        let db = Database::connect(&self.url, &test_pool_settings(), namespace).await?;
        db.migrate_platform().await?;
        if let Ok(mut v) = self.opened.lock() {
            v.push(db.clone());
        }
        Ok(db)
    }
}

/// Converts the test environment into the argument type of a conformance test function.
pub trait FromTestEnv {
    /// Builds the argument from the environment.
    fn from_test_env(env: &TestEnv) -> Self;
}

impl FromTestEnv for Database {
    fn from_test_env(env: &TestEnv) -> Self {
        env.db.clone()
    }
}

impl FromTestEnv for TestEnv {
    fn from_test_env(env: &TestEnv) -> Self {
        env.clone()
    }
}

/// The value a test returns when it is skipped (PostgreSQL without `MEDBILL_TEST_PG_URL`).
pub trait TestOutcome {
    /// Returns the "passed" value.
    fn skipped() -> Self;
}

impl TestOutcome for () {
    fn skipped() -> Self {}
}

impl<E> TestOutcome for Result<(), E> {
    fn skipped() -> Self {
        Ok(())
    }
}

/// Pool settings for tests: small pools, short acquire timeout.
pub fn test_pool_settings() -> PoolSettings {
    PoolSettings {
        max_connections: 5,
        acquire_timeout_ms: 30_000,
        ..PoolSettings::default()
    }
}

/// Runs one test body against a fresh database of `backend` in `namespace`, after the platform
/// migrations and (if given) the service's `(postgres, sqlite)` migrators.
///
/// Builds its own multi-threaded tokio runtime, so the generated tests are plain `#[test]`s.
/// Removes the database afterwards, also when the body panics (the panic is then resumed).
/// On PostgreSQL without `MEDBILL_TEST_PG_URL` it prints a note and returns
/// [`TestOutcome::skipped`].
pub fn run<F, Fut>(
    backend: Backend,
    test_name: &str,
    namespace: &str,
    migrators: Option<(&Migrator, &Migrator)>,
    body: F,
) -> Fut::Output
where
    F: FnOnce(TestEnv) -> Fut,
    Fut: Future,
    Fut::Output: TestOutcome,
{
    let pg_server = std::env::var(PG_URL_ENV).ok().filter(|u| !u.is_empty());
    if backend == Backend::Postgres && pg_server.is_none() {
        // Written to stderr directly (not `eprintln!`) so libtest's capture does not hide it.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "note: skipping {test_name}: {PG_URL_ENV} is not set"
        );
        return Fut::Output::skipped();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build tokio runtime for {test_name}: {e}"),
    };

    let (env, guard) = match rt.block_on(setup(backend, pg_server, namespace, migrators)) {
        Ok(pair) => pair,
        Err(e) => panic!("cannot set up {backend} test database for {test_name}: {e}"),
    };
    let opened = env.opened.clone();
    let main_db = env.db.clone();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(body(env))));
    rt.block_on(async {
        let extra: Vec<Database> = opened.lock().map(|v| v.clone()).unwrap_or_default();
        for db in extra.iter().chain(std::iter::once(&main_db)) {
            // A connection still held by a task the test left running must not hang the run.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), db.close()).await;
        }
        guard.cleanup().await;
    });
    drop(rt);
    match result {
        Ok(out) => out,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

enum Guard {
    Sqlite(tempfile::TempDir),
    Postgres { server_url: String, name: String },
}

impl Guard {
    async fn cleanup(self) {
        match self {
            Guard::Sqlite(dir) => drop(dir),
            Guard::Postgres { server_url, name } => {
                let drop_sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                match PgConnection::connect(&server_url).await {
                    Ok(mut conn) => {
                        if let Err(e) = conn.execute(AssertSqlSafe(drop_sql)).await {
                            eprintln!("warning: cannot drop test database {name}: {e}");
                        }
                        conn.close().await.ok();
                    }
                    Err(e) => eprintln!("warning: cannot drop test database {name}: {e}"),
                }
            }
        }
    }
}

async fn setup(
    backend: Backend,
    pg_server: Option<String>,
    namespace: &str,
    migrators: Option<(&Migrator, &Migrator)>,
) -> Result<(TestEnv, Guard), StorageError> {
    let (url, guard) = match (backend, pg_server) {
        (Backend::Sqlite, _) => {
            let dir = tempfile::Builder::new()
                .prefix("medbill-test-")
                .tempdir()
                .map_err(|source| StorageError::DataDir {
                    path: std::env::temp_dir().display().to_string(),
                    source,
                })?;
            let url = format!("sqlite://{}/medbill.db", dir.path().display());
            (url, Guard::Sqlite(dir))
        }
        (Backend::Postgres, Some(server_url)) => {
            let name = format!("medbill_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = PgConnection::connect(&server_url).await?;
            conn.execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .await?;
            conn.close().await.ok();
            let url = with_database(&server_url, &name);
            (url, Guard::Postgres { server_url, name })
        }
        (Backend::Postgres, None) => {
            return Err(StorageError::InvalidUrl {
                url: String::new(),
                reason: format!("{PG_URL_ENV} is not set"),
            });
        }
    };
    let connected = async {
        let db = Database::connect(&url, &test_pool_settings(), namespace).await?;
        match migrators {
            Some((pg, sqlite)) => db.migrate(pg, sqlite).await?,
            None => db.migrate_platform().await?,
        }
        Ok::<_, StorageError>(db)
    }
    .await;
    let db = match connected {
        Ok(db) => db,
        Err(e) => {
            guard.cleanup().await;
            return Err(e);
        }
    };
    let env = TestEnv {
        backend,
        url,
        namespace: namespace.to_owned(),
        db,
        opened: Arc::default(),
    };
    Ok((env, guard))
}

/// Returns `url` (a `postgres://` URL) with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Generates one test per backend from each async fn: a module named after the fn with the
/// tests `sqlite` and `postgres` (e.g. `creates_and_reads::sqlite`,
/// `creates_and_reads::postgres`; the latter prints a note and passes when
/// `MEDBILL_TEST_PG_URL` is unset).
///
/// The fn takes one argument, [`Database`] (connected and migrated in the namespace) or
/// [`TestEnv`] (also gives the URL, to connect other namespaces or reconnect), and returns
/// `()` or `Result<(), E>`. An optional header sets the namespace (default `"test"`) and the
/// service's migrators, run after the platform migrations:
///
/// ```ignore
/// medbill_storage::conformance_tests! {
///     namespace = "claims";
///     migrations = (&crate::store::PG_MIGRATOR, &crate::store::SQLITE_MIGRATOR);
///
///     async fn creates_and_reads(db: Database) -> anyhow::Result<()> {
///         let store = SqlClaimStore::new(db);
///         // ...
///         Ok(())
///     }
/// }
/// ```
///
/// The generated modules `use super::*`, so the fn sees the enclosing module's imports.
#[macro_export]
macro_rules! conformance_tests {
    (namespace = $ns:literal; migrations = $migr:tt; $($rest:tt)*) => {
        $crate::__conformance_tests_inner! { ($ns) ($migr) $($rest)* }
    };
    (namespace = $ns:literal; $($rest:tt)*) => {
        $crate::__conformance_tests_inner! { ($ns) (none) $($rest)* }
    };
    (migrations = $migr:tt; $($rest:tt)*) => {
        $crate::__conformance_tests_inner! { ("test") ($migr) $($rest)* }
    };
    ($($rest:tt)*) => {
        $crate::__conformance_tests_inner! { ("test") (none) $($rest)* }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests_inner {
    (($ns:literal) ($migr:tt)) => {};
    (
        ($ns:literal) ($migr:tt)
        $(#[$meta:meta])*
        async fn $name:ident($arg:ident : $argty:ty) $(-> $ret:ty)? $body:block
        $($rest:tt)*
    ) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($arg: $argty) $(-> $ret)? $body

            #[test]
            fn sqlite() $(-> $ret)? {
                $crate::testing::run(
                    $crate::Backend::Sqlite,
                    concat!(module_path!(), "::sqlite"),
                    $ns,
                    $crate::__conformance_migrators!($migr),
                    |env| body($crate::testing::FromTestEnv::from_test_env(&env)),
                )
            }

            #[test]
            fn postgres() $(-> $ret)? {
                $crate::testing::run(
                    $crate::Backend::Postgres,
                    concat!(module_path!(), "::postgres"),
                    $ns,
                    $crate::__conformance_migrators!($migr),
                    |env| body($crate::testing::FromTestEnv::from_test_env(&env)),
                )
            }
        }

        $crate::__conformance_tests_inner! { ($ns) ($migr) $($rest)* }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_migrators {
    (none) => {
        ::core::option::Option::None
    };
    (($pg:expr, $sqlite:expr $(,)?)) => {
        ::core::option::Option::Some(($pg, $sqlite))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
