//! Conformance tests of medbill-storage, each run on SQLite and (with `MEDBILL_TEST_PG_URL`)
//! PostgreSQL. `items` is a small example service store written in THE dual-backend pattern.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use medbill_storage::idempotency::{self, Begin, Fingerprint, Lookup, Reservation};
use medbill_storage::outbox::{
    self, Deliver, DeliveryError, Destinations, Enqueued, OutboxMessage, Relay, RelayConfig,
};
use medbill_storage::testing::TestEnv;
use medbill_storage::{Backend, Database, PoolSettings, StorageError, Tx, with_db, with_tx};
use sqlx::migrate::Migrator;

static PG_MIGRATOR: Migrator = sqlx::migrate!("tests/migrations/postgres");
static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("tests/migrations/sqlite");

// ---------------------------------------------------------------------------------------------
// The example store: one struct, every query written once, run on both backends.

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
struct Item {
    id: String,
    tenant_id: String,
    name: String,
    amount_cents: i64,
    active: bool,
    note: Option<String>,
    raw: Option<Vec<u8>>,
    service_date: String,
    created_at: i64,
}

#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error("item name `{0}` already exists")]
    DuplicateName(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Storage(StorageError::Database(e))
    }
}

struct ItemStore {
    db: Database,
}

impl ItemStore {
    fn new(db: Database) -> Self {
        Self { db }
    }

    async fn insert(&self, tx: &mut Tx, item: &Item) -> Result<(), StoreError> {
        match insert_row(tx, item).await {
            Ok(()) => Ok(()),
            Err(e) if medbill_storage::error::is_unique_violation(&e) => {
                Err(StoreError::DuplicateName(item.name.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn get(&self, tenant: &str, id: &str) -> Result<Option<Item>, StoreError> {
        Ok(with_db!(self.db, |pool| {
            sqlx::query_as(
                "SELECT id, tenant_id, name, amount_cents, active, note, raw, service_date, created_at \
                 FROM items WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Keyset page ordered by id, with an optional filter (the `$N IS NULL OR` idiom).
    async fn list(
        &self,
        tenant: &str,
        active: Option<bool>,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Item>, StoreError> {
        Ok(with_db!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT id, tenant_id, name, amount_cents, active, note, raw, service_date, created_at \
                 FROM items \
                 WHERE tenant_id = $1 AND ($2 IS NULL OR active = $2) AND ($3 IS NULL OR id > $3) \
                 ORDER BY id LIMIT $4",
            )
            .bind(tenant)
            .bind(active)
            .bind(after_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    async fn total_cents(&self, tenant: &str) -> Result<i64, StoreError> {
        Ok(with_db!(self.db, |pool| {
            sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM items WHERE tenant_id = $1",
            )
            .bind(tenant)
            .fetch_one(pool)
            .await?
        }))
    }

    async fn count_named(&self, tenant: &str, name: &str) -> Result<i64, StoreError> {
        Ok(with_db!(self.db, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM items WHERE tenant_id = $1 AND name = $2")
                .bind(tenant)
                .bind(name)
                .fetch_one(pool)
                .await?
        }))
    }
}

fn item(tenant: &str, name: &str, cents: i64) -> Item {
    Item {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant.to_owned(),
        name: name.to_owned(),
        amount_cents: cents,
        active: cents % 2 == 0,
        note: (cents > 100).then(|| format!("note {name}")),
        raw: Some(vec![0, 159, 146, 150, 255]),
        service_date: "2026-03-01".to_owned(),
        created_at: medbill_storage::time::now_micros(),
    }
}

/// Inserts one item row in `tx`.
async fn insert_row(tx: &mut Tx, item: &Item) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO items (id, tenant_id, name, amount_cents, active, note, raw, service_date, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&item.id)
        .bind(&item.tenant_id)
        .bind(&item.name)
        .bind(item.amount_cents)
        .bind(item.active)
        .bind(&item.note)
        .bind(&item.raw)
        .bind(&item.service_date)
        .bind(item.created_at)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// Writes items deferred with [`Tx::defer`] at the commit, in the order deferred.
fn write_deferred_items(
    tx: &mut Tx,
    items: Vec<medbill_storage::DeferredItem>,
) -> medbill_storage::DeferredWrite<'_> {
    Box::pin(async move {
        for item in items {
            let item = item
                .downcast::<Item>()
                .map_err(|_| StorageError::corrupt("deferred item", "not an item"))?;
            insert_row(tx, &item).await?;
        }
        Ok(())
    })
}

/// The handler of an idempotent "create item" RPC in THE pattern: reserve, write, outbox,
/// complete, commit in one transaction. Returns the response bytes and whether it was new.
async fn create_item_rpc(
    db: &Database,
    store: &ItemStore,
    tenant: &str,
    key: &str,
    name: &str,
    cents: i64,
    hold: Duration,
) -> Result<(Vec<u8>, bool), StoreError> {
    let request = format!("{name}|{cents}");
    let mut tx = db.begin().await?;
    match idempotency::reserve(
        &mut tx,
        tenant,
        "test.CreateItem",
        key,
        &Fingerprint::of(request.as_bytes()),
    )
    .await?
    {
        Reservation::Replay(bytes) => Ok((bytes, false)),
        Reservation::Conflict => Err(StoreError::DuplicateName(format!("key {key} reused"))),
        Reservation::New(pending) => {
            let it = item(tenant, name, cents);
            store.insert(&mut tx, &it).await?;
            outbox::enqueue(&mut tx, tenant, "peer.ItemCreated", key, it.id.as_bytes()).await?;
            // Keeps the transaction open so concurrent requests overlap with it.
            tokio::time::sleep(hold).await;
            let response = it.id.into_bytes();
            idempotency::complete(&mut tx, pending, &response).await?;
            tx.commit().await?;
            Ok((response, true))
        }
    }
}

async fn wait_for<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    // A generous bound so a broken relay fails the test instead of hanging it.
    for _ in 0..1_000 {
        if check().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("timed out waiting for {what}")
}

// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_scheme_is_named() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt
        .block_on(Database::connect(
            "mysql://u:secret@h/db",
            &PoolSettings::default(),
            "claims",
        ))
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StorageError::UnknownScheme { ref scheme } if scheme == "mysql"));
    assert!(msg.contains("`mysql`") && !msg.contains("secret"), "{msg}");
    let err = rt
        .block_on(Database::connect(
            "sqlite://x.db",
            &PoolSettings::default(),
            "Bad-Name",
        ))
        .unwrap_err();
    assert!(matches!(err, StorageError::InvalidNamespace(_)), "{err}");
}

#[test]
fn sqlite_file_per_service_in_data_dir() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nested/medbill.db", dir.path().display());
    rt.block_on(async {
        let claims = Database::connect(&url, &PoolSettings::default(), "claims")
            .await
            .unwrap();
        let elig = Database::connect(&url, &PoolSettings::default(), "eligibility")
            .await
            .unwrap();
        claims.migrate_platform().await.unwrap();
        elig.migrate_platform().await.unwrap();
        assert_eq!(claims.backend(), Backend::Sqlite);
        assert!(
            claims.redacted_url().ends_with("/nested/medbill-claims.db"),
            "{}",
            claims.redacted_url()
        );
        claims.close().await;
        elig.close().await;
    });
    assert!(dir.path().join("nested/medbill-claims.db").is_file());
    assert!(dir.path().join("nested/medbill-eligibility.db").is_file());
}

#[test]
fn sqlite_in_memory_is_private_per_service_and_serialises_writers() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let settings = PoolSettings::default();
        let a = Database::connect("sqlite::memory:", &settings, "items")
            .await
            .unwrap();
        let b = Database::connect("sqlite::memory:", &settings, "other")
            .await
            .unwrap();
        a.migrate(&PG_MIGRATOR, &SQLITE_MIGRATOR).await.unwrap();
        b.migrate_platform().await.unwrap();
        let store = Arc::new(ItemStore::new(a.clone()));
        let mut tasks = Vec::new();
        for i in 0..6 {
            let (db, store) = (a.clone(), store.clone());
            tasks.push(tokio::spawn(async move {
                let key = format!("k{}", i % 2);
                create_item_rpc(&db, &store, "t1", &key, &key, 1, Duration::from_millis(20)).await
            }));
        }
        let mut news = 0;
        for t in tasks {
            let (_, new) = t.await.unwrap().unwrap();
            news += usize::from(new);
        }
        assert_eq!(news, 2);
        assert_eq!(store.count_named("t1", "k0").await.unwrap(), 1);
        assert_eq!(outbox::counts(&a).await.unwrap().pending, 2);
        assert_eq!(outbox::counts(&b).await.unwrap().pending, 0);
    });
}

medbill_storage::conformance_tests! {
    namespace = "items";
    migrations = (&PG_MIGRATOR, &SQLITE_MIGRATOR);

    async fn connects_and_migrates(env: TestEnv) -> anyhow::Result<()> {
        let db = env.db();
        assert_eq!(db.backend(), env.backend());
        db.ping().await?;
        // Running the migrations again (a restart, a second replica) is a no-op.
        db.migrate(&PG_MIGRATOR, &SQLITE_MIGRATOR).await?;
        let platform: i64 = with_db!(db, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM _medbill_platform_migrations")
                .fetch_one(pool)
                .await?
        });
        let service: i64 = with_db!(db, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
                .fetch_one(pool)
                .await?
        });
        let platform_files = std::fs::read_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/sqlite"
        ))?
        .count();
        assert_eq!((platform, service), (i64::try_from(platform_files)?, 1));
        let url = db.redacted_url();
        match db {
            Database::Postgres(pool) => {
                let schema: String = sqlx::query_scalar("SELECT current_schema()")
                    .fetch_one(pool)
                    .await?;
                assert_eq!(schema, "items");
                assert!(
                    url.starts_with("postgres://") && url.ends_with("(schema items)"),
                    "{url}"
                );
            }
            Database::Sqlite(pool) => {
                let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                    .fetch_one(pool)
                    .await?;
                let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
                    .fetch_one(pool)
                    .await?;
                assert_eq!((mode.as_str(), fk), ("wal", 1));
                assert!(url.ends_with("/medbill-items.db"), "{url}");
            }
        }
        // Another service's namespace in the same database has its own platform tables and
        // none of this service's tables.
        let other = env.connect("other").await?;
        let counts = outbox::counts(&other).await?;
        assert_eq!(counts, outbox::OutboxCounts::default());
        let missing = with_db!(other, |pool| {
            sqlx::query("SELECT COUNT(*) FROM items")
                .fetch_one(pool)
                .await
                .is_err()
        });
        assert!(missing, "items must not be visible from another namespace");
        Ok(())
    }

    async fn example_store_round_trips(db: Database) -> anyhow::Result<()> {
        let store = ItemStore::new(db.clone());
        let mut written = Vec::new();
        let mut tx = db.begin().await?;
        for (i, cents) in [150_i64, 2, 99_999_999_999, 7].into_iter().enumerate() {
            let it = item("t1", &format!("item-{i}"), cents);
            store.insert(&mut tx, &it).await?;
            written.push(it);
        }
        store
            .insert(&mut tx, &item("t2", "other-tenant", 5))
            .await?;
        tx.commit().await?;

        for it in &written {
            assert_eq!(store.get("t1", &it.id).await?.as_ref(), Some(it));
            assert_eq!(store.get("t2", &it.id).await?, None, "tenant scoping");
        }
        assert_eq!(store.total_cents("t1").await?, 150 + 2 + 99_999_999_999 + 7);
        assert_eq!(store.total_cents("nobody").await?, 0);

        let page1 = store.list("t1", None, None, 3).await?;
        let page2 = store.list("t1", None, Some(&page1[2].id), 3).await?;
        let ids: Vec<_> = page1.iter().chain(&page2).map(|i| i.id.clone()).collect();
        let expected: Vec<_> = written.iter().map(|i| i.id.clone()).collect();
        assert_eq!(ids, expected, "keyset pagination in id order");
        let active = store.list("t1", Some(true), None, 10).await?;
        assert_eq!(
            active.iter().map(|i| i.amount_cents).collect::<Vec<_>>(),
            vec![150, 2]
        );

        let mut tx = db.begin().await?;
        let err = store
            .insert(&mut tx, &item("t1", "item-0", 1))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateName(ref n) if n == "item-0"),
            "{err}"
        );
        Ok(())
    }

    async fn idempotency_new_replay_conflict(db: Database) -> anyhow::Result<()> {
        let store = ItemStore::new(db.clone());
        let (first, new) =
            create_item_rpc(&db, &store, "t1", "key-1", "a", 100, Duration::ZERO).await?;
        assert!(new);
        let (again, new) =
            create_item_rpc(&db, &store, "t1", "key-1", "a", 100, Duration::ZERO).await?;
        assert!(!new);
        assert_eq!(again, first, "replay returns the first response");
        assert_eq!(store.count_named("t1", "a").await?, 1);
        assert_eq!(outbox::counts(&db).await?.pending, 1);

        let mut tx = db.begin().await?;
        let c = idempotency::reserve(
            &mut tx,
            "t1",
            "test.CreateItem",
            "key-1",
            &Fingerprint::of(b"b|100"),
        )
        .await?;
        assert!(matches!(c, Reservation::Conflict), "{c:?}");
        // The same key under another tenant or another RPC is independent.
        let c = idempotency::reserve(
            &mut tx,
            "t2",
            "test.CreateItem",
            "key-1",
            &Fingerprint::of(b"b|100"),
        )
        .await?;
        let Reservation::New(p1) = c else {
            bail!("expected New for another tenant, got {c:?}")
        };
        let c = idempotency::reserve(
            &mut tx,
            "t1",
            "test.OtherRpc",
            "key-1",
            &Fingerprint::of(b"b|100"),
        )
        .await?;
        let Reservation::New(p2) = c else {
            bail!("expected New for another scope, got {c:?}")
        };
        idempotency::complete(&mut tx, p1, b"r1").await?;
        idempotency::complete(&mut tx, p2, b"r2").await?;
        tx.commit().await?;

        // Purging old records frees keys for reuse.
        let purged =
            idempotency::purge_before(&db, medbill_storage::time::now_micros() + 1).await?;
        assert_eq!(purged, 3);
        let (_, new) =
            create_item_rpc(&db, &store, "t1", "key-1", "b", 100, Duration::ZERO).await?;
        assert!(new);
        Ok(())
    }

    async fn idempotency_concurrent_requests_write_once(db: Database) -> anyhow::Result<()> {
        let store = Arc::new(ItemStore::new(db.clone()));
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (db, store) = (db.clone(), store.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    match create_item_rpc(
                        &db,
                        &store,
                        "t1",
                        "same-key",
                        "x",
                        42,
                        Duration::from_millis(150),
                    )
                    .await
                    {
                        Err(StoreError::Storage(e)) if e.is_retryable() => continue,
                        other => return other,
                    }
                }
            }));
        }
        let mut news = 0;
        let mut responses = Vec::new();
        for t in tasks {
            let (bytes, new) = t.await?.context("concurrent request failed")?;
            news += usize::from(new);
            responses.push(bytes);
        }
        assert_eq!(news, 1, "exactly one request performs the write");
        assert!(
            responses.windows(2).all(|w| w[0] == w[1]),
            "all replay the winner's response"
        );
        assert_eq!(store.count_named("t1", "x").await?, 1);
        assert_eq!(outbox::counts(&db).await?.pending, 1);
        Ok(())
    }

    async fn lock_waits_end_in_retryable_errors(env: TestEnv) -> anyhow::Result<()> {
        let settings = PoolSettings {
            sqlite_busy_timeout_ms: 50,
            ..PoolSettings::default()
        };
        let db = Database::connect(env.url(), &settings, env.namespace()).await?;
        let fp = Fingerprint::of(b"r");
        let mut a = db.begin().await?;
        let Reservation::New(_pending) = idempotency::reserve(&mut a, "t1", "s", "k", &fp).await? else {
            bail!("expected New");
        };
        // A second writer waits for the first; when the wait exceeds the lock timeout the error
        // says "retry", never a half-applied request.
        let err = match db.backend() {
            Backend::Sqlite => db.begin().await.unwrap_err(),
            Backend::Postgres => {
                let mut b = db.begin().await?;
                with_tx!(b, |conn| {
                    sqlx::query("SET LOCAL lock_timeout = '50ms'")
                        .execute(&mut *conn)
                        .await
                        .map(|_| ())
                })?;
                idempotency::reserve(&mut b, "t1", "s", "k", &fp)
                    .await
                    .unwrap_err()
            }
        };
        assert!(err.is_retryable(), "{err}");
        drop(a);
        db.close().await;
        Ok(())
    }

    async fn failure_mid_transaction_leaves_nothing(db: Database) -> anyhow::Result<()> {
        let store = ItemStore::new(db.clone());
        let fp = Fingerprint::of(b"req");
        {
            let mut tx = db.begin().await?;
            let Reservation::New(_pending) = idempotency::reserve(&mut tx, "t1", "s", "k", &fp).await?
            else {
                bail!("expected New");
            };
            store.insert(&mut tx, &item("t1", "dup", 1)).await?;
            outbox::enqueue(&mut tx, "t1", "peer", "k", b"payload").await?;
            // The second write fails: the handler returns early and the Tx is dropped.
            let err = store.insert(&mut tx, &item("t1", "dup", 2)).await;
            assert!(matches!(err, Err(StoreError::DuplicateName(_))), "{err:?}");
        }
        {
            // Committing without completing the reserved key is refused and rolls back.
            let mut tx = db.begin().await?;
            let Reservation::New(_pending) = idempotency::reserve(&mut tx, "t1", "s", "k", &fp).await?
            else {
                bail!("expected New");
            };
            store.insert(&mut tx, &item("t1", "dup", 1)).await?;
            outbox::enqueue(&mut tx, "t1", "peer", "k", b"payload").await?;
            let err = tx.commit().await.unwrap_err();
            assert!(
                matches!(err, StorageError::IdempotencyNotCompleted { .. }),
                "{err}"
            );
        }
        assert_eq!(store.count_named("t1", "dup").await?, 0);
        assert_eq!(outbox::counts(&db).await?, outbox::OutboxCounts::default());
        let mut tx = db.begin().await?;
        let c = idempotency::reserve(&mut tx, "t1", "s", "k", &fp).await?;
        assert!(
            matches!(c, Reservation::New(_)),
            "no idempotency record survived: {c:?}"
        );
        Ok(())
    }

    async fn deferred_writes_happen_at_the_commit_and_follow_savepoints(db: Database) -> anyhow::Result<()> {
        let store = ItemStore::new(db.clone());
        let mut tx = db.begin().await?;
        tx.defer("items", write_deferred_items, item("t1", "first", 1));
        tx.defer("items", write_deferred_items, item("t1", "second", 2));
        // Deferred, not written: the transaction itself does not see them yet.
        let seen: i64 = with_tx!(&mut tx, |conn| {
            sqlx::query_scalar("SELECT COUNT(*) FROM items").fetch_one(&mut *conn).await?
        });
        assert_eq!(seen, 0);
        let savepoint = tx.savepoint().await?;
        tx.defer("items", write_deferred_items, item("t1", "dropped", 3));
        tx.rollback_to(savepoint).await?;
        // An item deferred so far can still be amended.
        for pending in tx.deferred_mut::<Item>("items") {
            if pending.name == "second" {
                pending.amount_cents = 20;
            }
        }
        tx.commit().await?;
        let listed = store.list("t1", None, None, 10).await?;
        let names: Vec<(&str, i64)> = listed.iter().map(|i| (i.name.as_str(), i.amount_cents)).collect();
        assert_eq!(names, [("first", 1), ("second", 20)]);

        // A deferred write that fails fails the commit, and the transaction's other writes go too.
        let mut tx = db.begin().await?;
        store.insert(&mut tx, &item("t1", "direct", 4)).await?;
        tx.defer("items", write_deferred_items, item("t1", "first", 5));
        let err = tx.commit().await.unwrap_err();
        assert!(matches!(err, StorageError::Database(_)), "{err}");
        assert_eq!(store.count_named("t1", "direct").await?, 0);
        assert_eq!(store.count_named("t1", "first").await?, 1);
        Ok(())
    }

    async fn outbox_survives_receiver_down_and_sender_restart(env: TestEnv) -> anyhow::Result<()> {
        // Sender: this namespace. Receiver: the "receiver" service with its own namespace,
        // deduplicating by message_key with the idempotency API.
        let receiver_db = env.connect("receiver").await?;
        receiver_db.migrate(&PG_MIGRATOR, &SQLITE_MIGRATOR).await?;
        let receiver = Arc::new(Receiver::new(receiver_db.clone()));
        receiver.set_mode(Mode::Down);

        let sender = env.db().clone();
        let store = ItemStore::new(sender.clone());
        let mut tx = sender.begin().await?;
        let it = item("t1", "claim-77", 12_345);
        store.insert(&mut tx, &it).await?;
        let Enqueued::New(msg_id) =
            outbox::enqueue(&mut tx, "t1", "receiver.Apply", "remit-77", b"pay 123.45").await?
        else {
            bail!("expected a new message");
        };
        tx.commit().await?;

        let config = RelayConfig {
            poll_interval_ms: 10,
            backoff_initial_ms: 5,
            backoff_max_ms: 40,
            max_attempts: 1_000,
            ..RelayConfig::default()
        };
        let relay = Relay::new(sender.clone(), receiver.clone(), config.clone()).spawn();
        relay.notifier().notify();
        wait_for("three failed attempts", || async {
            Ok(outbox::state(&sender, &msg_id)
                .await?
                .context("message")?
                .attempts
                >= 3)
        })
        .await?;
        // Simulated sender crash: the relay task is aborted and its pool is closed.
        drop(relay);
        sender.close().await;
        let state = outbox::state(&env.connect(env.namespace()).await?, &msg_id)
            .await?
            .context("message")?;
        assert_eq!(state.status, "PENDING");
        assert!(
            state
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("receiver down")),
            "{state:?}"
        );
        assert_eq!(receiver.applied(), 0);

        // Receiver comes back but the first acknowledgement is lost: the relay must retry and
        // the receiver must replay instead of applying twice.
        receiver.set_mode(Mode::UpLoseFirstAck);
        let restarted = env.connect(env.namespace()).await?;
        // The crash may have come between a claim and its outcome: the restarted relay (same
        // owner, new process) takes such a lease back at once instead of waiting two minutes.
        let relay = Relay::new(restarted.clone(), receiver.clone(), config)
            .as_if_restarted()
            .spawn();
        wait_for("delivery", || async {
            Ok(outbox::state(&restarted, &msg_id)
                .await?
                .context("message")?
                .status
                == "DELIVERED")
        })
        .await?;
        relay.shutdown().await;

        assert_eq!(receiver.applied(), 1, "applied exactly once");
        assert!(
            receiver.replayed() >= 1,
            "the lost ack was followed by a replay"
        );
        let rstore = ItemStore::new(receiver_db);
        assert_eq!(rstore.count_named("t1", "remit-77").await?, 1);
        let counts = outbox::counts(&restarted).await?;
        assert_eq!((counts.pending, counts.delivered, counts.dead), (0, 1, 0));
        Ok(())
    }

    async fn relay_crash_mid_delivery_redelivers_after_lease(env: TestEnv) -> anyhow::Result<()> {
        let receiver_db = env.connect("receiver").await?;
        receiver_db.migrate(&PG_MIGRATOR, &SQLITE_MIGRATOR).await?;
        let receiver = Arc::new(Receiver::new(receiver_db));
        receiver.set_mode(Mode::Hang);
        let sender = env.db().clone();
        let mut tx = sender.begin().await?;
        let Enqueued::New(id) =
            outbox::enqueue(&mut tx, "t1", "receiver.Apply", "m-1", b"x").await?
        else {
            bail!("new")
        };
        tx.commit().await?;

        // Relay A claims the message (lease 300 ms) and "crashes" while the delivery hangs.
        let crashing = RelayConfig {
            poll_interval_ms: 10,
            delivery_timeout_ms: 150,
            lease_ms: 300,
            ..RelayConfig::default()
        };
        let config = RelayConfig {
            delivery_timeout_ms: 5_000,
            ..crashing.clone()
        };
        let relay = Relay::new(sender.clone(), receiver.clone(), crashing).spawn();
        wait_for("a hanging delivery", || async { Ok(receiver.calls() >= 1) }).await?;
        drop(relay); // crash while the message is leased
        receiver.set_mode(Mode::Up);
        let relay = Relay::new(
            env.connect(env.namespace()).await?,
            receiver.clone(),
            config,
        )
        .spawn();
        wait_for("redelivery after the lease", || async {
            Ok(outbox::counts(&sender).await?.delivered == 1)
        })
        .await?;
        relay.shutdown().await;
        assert_eq!(receiver.applied(), 1);
        let state = outbox::state(&sender, &id).await?.context("message")?;
        assert_eq!(
            (state.status.as_str(), state.attempts),
            ("DELIVERED", 2),
            "{state:?}"
        );
        Ok(())
    }

    async fn restarted_relay_takes_back_its_leases_at_once(env: TestEnv) -> anyhow::Result<()> {
        let receiver_db = env.connect("receiver").await?;
        receiver_db.migrate(&PG_MIGRATOR, &SQLITE_MIGRATOR).await?;
        let receiver = Arc::new(Receiver::new(receiver_db));
        receiver.set_mode(Mode::Hang);
        let sender = env.db().clone();
        let mut tx = sender.begin().await?;
        let Enqueued::New(id) =
            outbox::enqueue(&mut tx, "t1", "receiver.Apply", "m-1", b"x").await?
        else {
            bail!("new")
        };
        tx.commit().await?;

        // Relay "relay-a" claims the message under a 10-minute lease and crashes mid-delivery.
        let config = RelayConfig {
            poll_interval_ms: 10,
            delivery_timeout_ms: 60_000,
            lease_ms: 600_000,
            ..RelayConfig::default()
        };
        let crashed = Relay::new(sender.clone(), receiver.clone(), config.clone())
            .with_owner("relay-a")
            .spawn();
        wait_for("a hanging delivery", || async { Ok(receiver.calls() >= 1) }).await?;
        drop(crashed);
        let leased = outbox::state(&sender, &id).await?.context("message")?;
        assert_eq!((leased.status.as_str(), leased.attempts), ("PENDING", 1));
        let now = medbill_storage::time::now_micros();
        assert!(
            leased.next_attempt_at > now + 500_000_000,
            "leased for ten minutes: {leased:?}"
        );
        receiver.set_mode(Mode::Up);

        // Another owner (another replica, maybe alive) neither releases nor claims the lease.
        let other = Relay::new(
            env.connect(env.namespace()).await?,
            receiver.clone(),
            config.clone(),
        )
        .with_owner("relay-b")
        .as_if_restarted();
        assert_eq!(other.release_own_leases().await?, 0);
        assert_eq!(other.run_once().await?.claimed, 0);
        // Nor does a second relay of the crashed relay's own process.
        let same_process = Relay::new(sender.clone(), receiver.clone(), config.clone())
            .with_owner("relay-a");
        assert_eq!(same_process.release_own_leases().await?, 0);
        assert_eq!(same_process.run_once().await?.claimed, 0);
        assert_eq!(
            outbox::state(&sender, &id).await?.context("message")?,
            leased,
            "the lease is untouched"
        );
        assert_eq!(receiver.applied(), 0);

        // "relay-a" restarted (a new process, a new pool) delivers it at once.
        let started = std::time::Instant::now();
        let restarted_db = env.connect(env.namespace()).await?;
        let restarted = Relay::new(restarted_db.clone(), receiver.clone(), config)
            .with_owner("relay-a")
            .as_if_restarted()
            .spawn();
        wait_for("redelivery by the restarted owner", || async {
            Ok(outbox::counts(&restarted_db).await?.delivered == 1)
        })
        .await?;
        restarted.shutdown().await;
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "delivered long before the lease expired: {:?}",
            started.elapsed()
        );
        assert_eq!(receiver.applied(), 1);
        let state = outbox::state(&sender, &id).await?.context("message")?;
        assert_eq!(
            (state.status.as_str(), state.attempts),
            ("DELIVERED", 2),
            "{state:?}"
        );
        Ok(())
    }

    async fn releasing_own_leases_leaves_other_messages_alone(db: Database) -> anyhow::Result<()> {
        let config = RelayConfig {
            delivery_timeout_ms: 60_000,
            lease_ms: 600_000,
            backoff_initial_ms: 3_600_000,
            backoff_max_ms: 3_600_000,
            ..RelayConfig::default()
        };
        let hanging = Arc::new(Receiver::new(db.clone()));
        hanging.set_mode(Mode::Hang);
        let enqueue = |key: &'static str| {
            let db = db.clone();
            async move {
                let mut tx = db.begin().await?;
                let Enqueued::New(id) = outbox::enqueue(&mut tx, "t1", "d", key, b"x").await?
                else {
                    bail!("new")
                };
                tx.commit().await?;
                Ok::<_, anyhow::Error>(id)
            }
        };

        // relay-a fails one message retryably: it waits an hour, which is a backoff, not a lease.
        let backing_off = enqueue("retry-later").await?;
        let relay_a = Relay::new(db.clone(), Scripted, config.clone()).with_owner("relay-a");
        assert_eq!(relay_a.run_once().await?.retried, 1);
        // relay-a and relay-b each claim one message and stop mid-delivery.
        let leased_by_a = enqueue("leased-a").await?;
        let relay_a = Relay::new(db.clone(), hanging.clone(), config.clone()).with_owner("relay-a");
        let pass = tokio::time::timeout(Duration::from_millis(300), relay_a.run_once()).await;
        ensure!(pass.is_err(), "the delivery hangs");
        let leased_by_b = enqueue("leased-b").await?;
        let relay_b = Relay::new(db.clone(), hanging.clone(), config.clone()).with_owner("relay-b");
        let pass = tokio::time::timeout(Duration::from_millis(300), relay_b.run_once()).await;
        ensure!(pass.is_err(), "the delivery hangs");
        assert_eq!(hanging.calls(), 2);

        let ids = [leased_by_a, backing_off, leased_by_b];
        let before = states_of(&db, &ids).await?;
        let now = medbill_storage::time::now_micros();
        ensure!(before.iter().all(|s| s.next_attempt_at > now), "{before:?}");
        let restarted = Relay::new(db.clone(), Scripted, config)
            .with_owner("relay-a")
            .as_if_restarted();
        assert_eq!(restarted.release_own_leases().await?, 1);
        let after = states_of(&db, &ids).await?;
        // Only relay-a's lease became due; attempts are kept.
        assert!(
            after[0].next_attempt_at <= medbill_storage::time::now_micros(),
            "{:?}",
            after[0]
        );
        assert_eq!(
            (after[0].status.as_str(), after[0].attempts),
            ("PENDING", 1)
        );
        assert_eq!(after[1], before[1], "the backoff is kept");
        assert_eq!(after[2], before[2], "relay-b's lease is kept");
        assert_eq!(restarted.release_own_leases().await?, 0, "released once");
        Ok(())
    }

    async fn relay_times_out_hanging_deliveries(db: Database) -> anyhow::Result<()> {
        let receiver = Arc::new(Receiver::new(db.clone()));
        receiver.set_mode(Mode::Hang);
        let mut tx = db.begin().await?;
        let Enqueued::New(id) = outbox::enqueue(&mut tx, "t1", "d", "m", b"x").await? else {
            bail!("new")
        };
        tx.commit().await?;
        let relay = Relay::new(
            db.clone(),
            receiver,
            RelayConfig {
                delivery_timeout_ms: 50,
                ..RelayConfig::default()
            },
        );
        let p = relay.run_once().await?;
        assert_eq!((p.claimed, p.retried), (1, 1));
        let state = outbox::state(&db, &id).await?.context("message")?;
        assert_eq!(state.status, "PENDING");
        assert_eq!(
            state.last_error.as_deref(),
            Some("delivery timed out after 50 ms")
        );
        Ok(())
    }

    async fn relay_retries_then_dead_letters(db: Database) -> anyhow::Result<()> {
        let receiver = Scripted;
        let mut tx = db.begin().await?;
        let Enqueued::New(retry_id) = outbox::enqueue(&mut tx, "t1", "d", "retry", b"1").await?
        else {
            bail!("new")
        };
        let Enqueued::New(perm_id) = outbox::enqueue(&mut tx, "t1", "d", "perm", b"2").await?
        else {
            bail!("new")
        };
        assert_eq!(
            outbox::enqueue(&mut tx, "t1", "d", "perm", b"2").await?,
            Enqueued::Duplicate
        );
        tx.commit().await?;

        let relay = Relay::new(
            db.clone(),
            receiver,
            RelayConfig {
                max_attempts: 3,
                backoff_initial_ms: 0,
                backoff_max_ms: 0,
                ..RelayConfig::default()
            },
        );
        let p = relay.run_once().await?;
        assert_eq!((p.claimed, p.delivered, p.retried, p.dead), (2, 0, 1, 1));
        let perm = outbox::state(&db, &perm_id).await?.context("perm")?;
        assert_eq!((perm.status.as_str(), perm.attempts), ("DEAD", 1));
        assert_eq!(perm.last_error.as_deref(), Some("bad request"));
        let p = relay.run_once().await?;
        assert_eq!((p.claimed, p.retried, p.dead), (1, 1, 0));
        let p = relay.run_once().await?;
        assert_eq!((p.claimed, p.retried, p.dead), (1, 0, 1));
        let retry = outbox::state(&db, &retry_id).await?.context("retry")?;
        assert_eq!((retry.status.as_str(), retry.attempts), ("DEAD", 3));
        assert_eq!(retry.last_error.as_deref(), Some("busy"));
        assert_eq!(
            relay.run_once().await?.claimed,
            0,
            "dead messages are not retried"
        );

        // Exponential backoff: a retried message is not due again before its delay.
        let mut tx = db.begin().await?;
        let Enqueued::New(slow_id) =
            outbox::enqueue(&mut tx, "t1", "d", "retry-slow", b"3").await?
        else {
            bail!("new")
        };
        tx.commit().await?;
        let relay = Relay::new(
            db.clone(),
            Scripted,
            RelayConfig {
                backoff_initial_ms: 3_600_000,
                backoff_max_ms: 3_600_000,
                ..RelayConfig::default()
            },
        );
        assert_eq!(relay.run_once().await?.retried, 1);
        assert_eq!(relay.run_once().await?.claimed, 0);
        let slow = outbox::state(&db, &slow_id).await?.context("slow")?;
        assert!(slow.next_attempt_at > medbill_storage::time::now_micros() + 3_000_000_000);
        Ok(())
    }

    async fn concurrent_relays_deliver_each_message_once(env: TestEnv) -> anyhow::Result<()> {
        let db = env.db().clone();
        let mut tx = db.begin().await?;
        for i in 0..60 {
            outbox::enqueue(&mut tx, "t1", "d", &format!("m-{i}"), b"p").await?;
        }
        tx.commit().await?;
        let counter = Arc::new(Counting::default());
        let config = RelayConfig {
            batch_size: 5,
            ..RelayConfig::default()
        };
        let a = Relay::new(db.clone(), counter.clone(), config.clone());
        let b = Relay::new(env.connect(env.namespace()).await?, counter.clone(), config);
        let drain = |r: Relay<Arc<Counting>>| async move {
            loop {
                if r.run_once().await?.claimed == 0 {
                    return Ok::<_, StorageError>(());
                }
            }
        };
        let (ra, rb) = tokio::join!(tokio::spawn(drain(a)), tokio::spawn(drain(b)));
        ra??;
        rb??;
        let seen = counter
            .seen
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .clone();
        assert_eq!(seen.len(), 60);
        ensure!(
            seen.values().all(|&n| n == 1),
            "a message was delivered twice: {seen:?}"
        );
        assert_eq!(outbox::counts(&db).await?.delivered, 60);
        Ok(())
    }

    async fn relays_split_by_destination_claim_only_their_own(db: Database) -> anyhow::Result<()> {
        let mut tx = db.begin().await?;
        for (destination, key) in [("slow", "s-1"), ("fast", "f-1"), ("other", "o-1"), ("fast", "f-2")] {
            outbox::enqueue(&mut tx, "t1", destination, key, b"p").await?;
        }
        tx.commit().await?;
        let receiver = Arc::new(Batching::default());
        let relay = |scope| Relay::new(db.clone(), receiver.clone(), RelayConfig::default()).for_destinations(scope);
        let fast = relay(Destinations::Only("fast".into()));
        assert_eq!(fast.run_once().await?.delivered, 2);
        assert_eq!(fast.run_once().await?.claimed, 0, "the others are not fast's");
        let rest = relay(Destinations::Except(vec!["fast".into(), "slow".into()]));
        assert_eq!(rest.run_once().await?.delivered, 1);
        assert_eq!(receiver.calls(), vec![2, 1]);
        let slow = relay(Destinations::Only("slow".into()));
        assert_eq!(slow.run_once().await?.delivered, 1);
        assert_eq!(outbox::counts(&db).await?.delivered, 4);
        Ok(())
    }

    async fn relay_delivers_a_pass_in_one_batch_and_retries_only_the_failed(db: Database) -> anyhow::Result<()> {
        let mut tx = db.begin().await?;
        let mut ids = HashMap::new();
        for key in ["m-1", "m-2", "flaky", "m-3", "broken", "m-4"] {
            let Enqueued::New(id) = outbox::enqueue(&mut tx, "t1", "d", key, b"p").await? else {
                bail!("new")
            };
            ids.insert(key, id);
        }
        tx.commit().await?;
        let receiver = Arc::new(Batching::default());
        let relay = Relay::new(
            db.clone(),
            receiver.clone(),
            RelayConfig {
                batch_size: 50,
                backoff_initial_ms: 0,
                backoff_max_ms: 0,
                ..RelayConfig::default()
            },
        );
        let p = relay.run_once().await?;
        assert_eq!((p.claimed, p.delivered, p.retried, p.dead), (6, 4, 1, 1));
        assert_eq!(receiver.calls(), vec![6], "the whole pass in one batch call");
        let flaky = outbox::state(&db, &ids["flaky"]).await?.context("flaky")?;
        assert_eq!((flaky.status.as_str(), flaky.attempts), ("PENDING", 1));
        assert_eq!(flaky.last_error.as_deref(), Some("busy once"));
        let broken = outbox::state(&db, &ids["broken"]).await?.context("broken")?;
        assert_eq!(broken.status, "DEAD");
        let delivered = outbox::state(&db, &ids["m-3"]).await?.context("m-3")?;
        assert_eq!(delivered.status, "DELIVERED");
        assert!(delivered.delivered_at.is_some());

        // Only the failed message comes back, and it is delivered on its own next pass.
        let p = relay.run_once().await?;
        assert_eq!((p.claimed, p.delivered), (1, 1));
        assert_eq!(receiver.calls(), vec![6, 1]);
        assert_eq!(relay.run_once().await?.claimed, 0);
        let seen = receiver.seen();
        for key in ["m-1", "m-2", "m-3", "m-4", "flaky"] {
            assert_eq!(seen.get(key), Some(&1), "{key} applied once: {seen:?}");
        }
        assert_eq!(
            outbox::counts(&db).await?,
            outbox::OutboxCounts {
                pending: 0,
                delivered: 5,
                dead: 1
            }
        );
        Ok(())
    }
}

async fn states_of(db: &Database, ids: &[String]) -> anyhow::Result<Vec<outbox::OutboxState>> {
    let mut states = Vec::with_capacity(ids.len());
    for id in ids {
        states.push(outbox::state(db, id).await?.context("message")?);
    }
    Ok(states)
}

#[test]
fn relay_owner_defaults_to_a_stable_name_and_can_be_configured() {
    let default = outbox::default_owner();
    assert!(!default.is_empty());
    assert_eq!(outbox::default_owner(), default, "the same name every time");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = Database::connect("sqlite::memory:", &PoolSettings::default(), "items")
            .await
            .unwrap();
        let relay = Relay::new(db.clone(), Scripted, RelayConfig::default());
        assert_eq!(relay.owner(), default);
        let config = RelayConfig {
            owner: Some(" replica-2 ".into()),
            ..RelayConfig::default()
        };
        assert_eq!(
            Relay::new(db.clone(), Scripted, config).owner(),
            "replica-2"
        );
        let blank = RelayConfig {
            owner: Some("  ".into()),
            ..RelayConfig::default()
        };
        assert_eq!(Relay::new(db, Scripted, blank).owner(), default);
    });
}

// ---------------------------------------------------------------------------------------------
// Receivers used by the outbox tests.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Down,
    Up,
    UpLoseFirstAck,
    Hang,
}

/// A receiving service: applies each message once (an `items` row named after the key),
/// deduplicating by `message_key` through the idempotency API.
struct Receiver {
    db: Database,
    mode: Mutex<Mode>,
    calls: AtomicUsize,
    applied: AtomicUsize,
    replayed: AtomicUsize,
    acks_lost: AtomicUsize,
}

impl Receiver {
    fn new(db: Database) -> Self {
        Self {
            db,
            mode: Mutex::new(Mode::Down),
            calls: AtomicUsize::new(0),
            applied: AtomicUsize::new(0),
            replayed: AtomicUsize::new(0),
            acks_lost: AtomicUsize::new(0),
        }
    }
    fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn applied(&self) -> usize {
        self.applied.load(Ordering::SeqCst)
    }
    fn replayed(&self) -> usize {
        self.replayed.load(Ordering::SeqCst)
    }

    /// The receiving RPC handler, written with `idempotency::begin`: the message key is the
    /// request's idempotency key.
    async fn apply(&self, m: &OutboxMessage) -> Result<(), StoreError> {
        let store = ItemStore::new(self.db.clone());
        let fp = Fingerprint::of(&m.payload);
        match idempotency::begin(
            &self.db,
            &m.tenant_id,
            "receiver.Apply",
            &m.message_key,
            &fp,
        )
        .await?
        {
            Begin::Replay(_) => {
                self.replayed.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Begin::Conflict => Err(StoreError::DuplicateName(m.message_key.clone())),
            Begin::New(mut op) => {
                store
                    .insert(op.tx(), &item(&m.tenant_id, &m.message_key, 1))
                    .await?;
                op.commit(b"ok").await?;
                self.applied.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }
    }
}

impl Deliver for Receiver {
    async fn deliver(&self, m: &OutboxMessage) -> Result<(), DeliveryError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mode = *self.mode.lock().unwrap();
        match mode {
            Mode::Down => Err(DeliveryError::Retryable("receiver down".into())),
            Mode::Hang => std::future::pending().await,
            Mode::Up | Mode::UpLoseFirstAck => {
                self.apply(m)
                    .await
                    .map_err(|e| DeliveryError::Retryable(e.to_string()))?;
                if mode == Mode::UpLoseFirstAck
                    && self.acks_lost.fetch_add(1, Ordering::SeqCst) == 0
                {
                    return Err(DeliveryError::Retryable(
                        "connection reset before response".into(),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// Fails "retry*" keys retryably and others permanently.
#[derive(Default)]
struct Scripted;

impl Deliver for Scripted {
    async fn deliver(&self, m: &OutboxMessage) -> Result<(), DeliveryError> {
        if m.message_key.starts_with("retry") {
            Err(DeliveryError::Retryable("busy".into()))
        } else {
            Err(DeliveryError::Permanent("bad request".into()))
        }
    }
}

/// A receiver with a batch call: records each call's size and applies every message once by
/// key; "flaky" fails retryably the first time, "broken" always fails permanently.
#[derive(Default)]
struct Batching {
    calls: Mutex<Vec<usize>>,
    applied: Mutex<HashMap<String, usize>>,
}

impl Batching {
    fn calls(&self) -> Vec<usize> {
        self.calls.lock().unwrap().clone()
    }
    fn seen(&self) -> HashMap<String, usize> {
        self.applied.lock().unwrap().clone()
    }
}

impl Deliver for Batching {
    async fn deliver(&self, _: &OutboxMessage) -> Result<(), DeliveryError> {
        Err(DeliveryError::Permanent("only batches are taken".into()))
    }

    async fn deliver_batch(&self, messages: &[OutboxMessage]) -> Vec<Result<(), DeliveryError>> {
        self.calls.lock().unwrap().push(messages.len());
        let mut applied = self.applied.lock().unwrap();
        messages
            .iter()
            .map(|m| match m.message_key.as_str() {
                "broken" => Err(DeliveryError::Permanent("bad request".into())),
                "flaky" if m.attempts == 1 => Err(DeliveryError::Retryable("busy once".into())),
                key => {
                    *applied.entry(key.to_owned()).or_default() += 1;
                    Ok(())
                }
            })
            .collect()
    }
}

/// Counts deliveries per message id.
#[derive(Default)]
struct Counting {
    seen: Mutex<HashMap<String, usize>>,
}

impl Deliver for Counting {
    async fn deliver(&self, m: &OutboxMessage) -> Result<(), DeliveryError> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        *self.seen.lock().unwrap().entry(m.id.clone()).or_default() += 1;
        Ok(())
    }
}

/// The macro without a header: namespace "test", platform migrations only, `()` return type.
mod header_defaults {
    use super::*;

    medbill_storage::conformance_tests! {
        async fn uses_default_namespace_and_platform_tables(env: TestEnv) {
            assert_eq!(env.namespace(), "test");
            let counts = outbox::counts(env.db()).await.unwrap();
            assert_eq!(counts, outbox::OutboxCounts::default());
            let no_items = with_db!(env.db(), |pool| {
                sqlx::query("SELECT COUNT(*) FROM items").fetch_one(pool).await.is_err()
            });
            assert!(no_items, "service migrations were not requested");
        }
    }
}

/// `lookup`: reads a completed key without reserving it (what a handler asks before slow work).
mod lookups {
    use super::*;

    medbill_storage::conformance_tests! {
        async fn lookup_many_answers_each_key_in_order(db: Database) -> anyhow::Result<()> {
            let done = Fingerprint::of(b"a");
            let other = Fingerprint::of(b"b");
            let Begin::New(op) = idempotency::begin(&db, "t1", "s", "k1", &done).await? else {
                bail!("new");
            };
            op.commit(b"first answer").await?;
            let Begin::New(op) = idempotency::begin(&db, "t1", "s", "k2", &done).await? else {
                bail!("new");
            };
            op.commit(b"second answer").await?;
            let found = idempotency::lookup_many(
                &db,
                "t1",
                "s",
                &[("k2", &done), ("absent", &done), ("k1", &other), ("k1", &done)],
            )
            .await?;
            ensure!(
                found
                    == vec![
                        Lookup::Replay(b"second answer".to_vec()),
                        Lookup::Absent,
                        Lookup::Conflict,
                        Lookup::Replay(b"first answer".to_vec()),
                    ],
                "{found:?}"
            );
            // Another tenant's or scope's keys are not this one's.
            let elsewhere = idempotency::lookup_many(&db, "t2", "s", &[("k1", &done)]).await?;
            ensure!(elsewhere == vec![Lookup::Absent]);
            let elsewhere = idempotency::lookup_many(&db, "t1", "s2", &[("k1", &done)]).await?;
            ensure!(elsewhere == vec![Lookup::Absent]);
            Ok(())
        }

        async fn record_many_in_writes_completed_keys_or_reports_a_taken_one(db: Database) -> anyhow::Result<()> {
            let a = Fingerprint::of(b"a");
            let b = Fingerprint::of(b"b");
            // 1,200 keys: more than one statement's worth.
            let keys: Vec<String> = (0..1200).map(|i| format!("k{i}")).collect();
            let records: Vec<idempotency::CompletedRecord<'_>> = keys
                .iter()
                .map(|k| (k.as_str(), &a, k.as_bytes()))
                .collect();
            let mut tx = db.begin().await?;
            ensure!(idempotency::record_many_in(&mut tx, "t1", "s", &records).await?);
            tx.commit().await?;
            let found = idempotency::lookup_many(
                &db,
                "t1",
                "s",
                &[("k0", &a), ("k1199", &a), ("k5", &b)],
            )
            .await?;
            ensure!(
                found
                    == vec![
                        Lookup::Replay(b"k0".to_vec()),
                        Lookup::Replay(b"k1199".to_vec()),
                        Lookup::Conflict,
                    ],
                "{found:?}"
            );
            // One key already held: reported, and the caller rolls back what the call wrote.
            let mut tx = db.begin().await?;
            let taken = [("new-1", &a, b"x".as_slice()), ("k7", &b, b"y".as_slice())];
            ensure!(!idempotency::record_many_in(&mut tx, "t1", "s", &taken).await?);
            tx.rollback().await?;
            let found = idempotency::lookup_many(&db, "t1", "s", &[("new-1", &a), ("k7", &a)]).await?;
            ensure!(
                found == vec![Lookup::Absent, Lookup::Replay(b"k7".to_vec())],
                "{found:?}"
            );
            // The same key twice in one call is taken too.
            let mut tx = db.begin().await?;
            let twice = [("dup", &a, b"x".as_slice()), ("dup", &a, b"x".as_slice())];
            ensure!(!idempotency::record_many_in(&mut tx, "t1", "s", &twice).await?);
            tx.rollback().await?;
            Ok(())
        }

        async fn lookup_sees_only_completed_keys(db: Database) -> anyhow::Result<()> {
            let request = Fingerprint::of(b"check eligibility p-1");
            let other = Fingerprint::of(b"check eligibility p-2");
            ensure!(idempotency::lookup(&db, "t1", "s", "k1", &request).await? == Lookup::Absent);

            let Begin::New(op) = idempotency::begin(&db, "t1", "s", "k1", &request).await? else {
                bail!("first call must be new");
            };
            // Reserved but not committed: another reader does not see it yet.
            let seen = idempotency::lookup(&db, "t1", "s", "k1", &request).await?;
            ensure!(seen == Lookup::Absent, "{seen:?}");
            op.commit(b"response-1").await?;

            let seen = idempotency::lookup(&db, "t1", "s", "k1", &request).await?;
            ensure!(seen == Lookup::Replay(b"response-1".to_vec()), "{seen:?}");
            let seen = idempotency::lookup(&db, "t1", "s", "k1", &other).await?;
            ensure!(seen == Lookup::Conflict, "{seen:?}");
            // Scope and tenant separate keys.
            ensure!(idempotency::lookup(&db, "t1", "s2", "k1", &other).await? == Lookup::Absent);
            ensure!(idempotency::lookup(&db, "t2", "s", "k1", &other).await? == Lookup::Absent);
            Ok(())
        }
    }
}
