//! Transactional outbox and relay.
//!
//! A call to another service that must not be lost is written with [`enqueue`] in the same
//! [`Tx`] as the change that causes it. A [`Relay`] (one per service process) polls for due
//! messages, hands each to a [`Deliver`] implementation (normally a gRPC client call whose
//! idempotency key is the message's `message_key`), and records the outcome:
//!
//! - `Ok(())`: marked DELIVERED;
//! - [`DeliveryError::Retryable`]: retried with exponential backoff (`attempts`,
//!   `next_attempt_at`, `last_error`), DEAD after [`RelayConfig::max_attempts`];
//! - [`DeliveryError::Permanent`]: DEAD at once (kept for operators, never retried).
//!
//! Delivery is at-least-once (a crash between the receiver's commit and our DELIVERED update
//! re-sends the message); the receiver deduplicates by `message_key` with
//! [`crate::idempotency::reserve`], so the effect is exactly once.
//!
//! Claiming is a lease: a claimed message's `next_attempt_at` moves `lease` into the future and
//! gets a fresh `lease_token`, in one short statement (`FOR UPDATE SKIP LOCKED` on PostgreSQL,
//! so replicas never claim the same message; SQLite has a single writer). No transaction stays
//! open while delivering. Messages carry no ordering guarantee.
//!
//! # Leases after a crash
//!
//! Each lease records the relay's *owner* (a name that stays the same when the relay's process
//! is restarted; see [`RelayConfig::owner`]) and the process that took it. A relay that dies
//! mid-delivery leaves its messages leased. When a relay with the same owner starts again it
//! cannot have work in flight from before its start, so it first releases its owner's leases
//! taken by an earlier process, and those messages are delivered at once. Leases of other owners
//! (other replicas, possibly alive) are left to expire, so two replicas never deliver one
//! message at the same time; a relay that is not restarted (a replica gone for good, or one
//! whose host name changed) delays its messages until their lease expires.

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::{Database, StorageError, Tx, time, with_tx};

const STATUS_PENDING: &str = "PENDING";
const STATUS_DELIVERED: &str = "DELIVERED";
const STATUS_DEAD: &str = "DEAD";

/// Result of [`enqueue`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// The message was added; its id (UUID v7).
    New(String),
    /// A message with this `(tenant, destination, message_key)` already exists; nothing added.
    Duplicate,
}

/// Adds a message to the outbox inside the caller's transaction.
///
/// `destination` names the receiver (e.g. `"claims.ApplyAdjudication"`), `message_key` is
/// the idempotency key the receiver deduplicates by, `payload` the encoded request.
pub async fn enqueue(
    tx: &mut Tx,
    tenant_id: &str,
    destination: &str,
    message_key: &str,
    payload: &[u8],
) -> Result<Enqueued, StorageError> {
    let id = uuid::Uuid::now_v7().to_string();
    let now = time::now_micros();
    let inserted = with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO platform_outbox \
             (id, tenant_id, destination, message_key, payload, status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'PENDING', 0, $6, $6) \
             ON CONFLICT (tenant_id, destination, message_key) DO NOTHING",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(destination)
        .bind(message_key)
        .bind(payload)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(if inserted == 1 {
        Enqueued::New(id)
    } else {
        Enqueued::Duplicate
    })
}

/// Rows per multi-row INSERT of [`enqueue_many`]: 7 binds each, well under both backends' bind
/// limits.
const ENQUEUE_ROWS: usize = 500;

/// Adds many messages to `destination` inside the caller's transaction, with multi-row INSERTs:
/// the same as calling [`enqueue`] for each `(message_key, payload)`, at a fraction of the round
/// trips (posting a large remittance enqueues one message per claim payment). A key already
/// enqueued is skipped; returns how many messages were added.
pub async fn enqueue_many(
    tx: &mut Tx,
    tenant_id: &str,
    destination: &str,
    messages: &[(String, Vec<u8>)],
) -> Result<u64, StorageError> {
    let now = time::now_micros();
    let mut added = 0;
    for part in messages.chunks(ENQUEUE_ROWS) {
        let ids: Vec<String> = part
            .iter()
            .map(|_| uuid::Uuid::now_v7().to_string())
            .collect();
        added += with_tx!(tx, |conn| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO platform_outbox \
                 (id, tenant_id, destination, message_key, payload, status, attempts, \
                 next_attempt_at, created_at) ",
            );
            q.push_values(part.iter().zip(&ids), |mut b, ((key, payload), id)| {
                b.push_bind(id.as_str())
                    .push_bind(tenant_id)
                    .push_bind(destination)
                    .push_bind(key.as_str())
                    .push_bind(payload.as_slice())
                    .push("'PENDING'")
                    .push("0")
                    .push_bind(now)
                    .push_bind(now);
            });
            q.push(" ON CONFLICT (tenant_id, destination, message_key) DO NOTHING");
            q.build().execute(&mut *conn).await?.rows_affected()
        });
    }
    Ok(added)
}

/// A message handed to [`Deliver::deliver`].
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxMessage {
    /// The outbox id (UUID v7).
    pub id: String,
    /// The tenant the message belongs to.
    pub tenant_id: String,
    /// The receiver, as given to [`enqueue`].
    pub destination: String,
    /// The idempotency key the receiver deduplicates by.
    pub message_key: String,
    /// The encoded request.
    pub payload: Vec<u8>,
    /// Delivery attempts including this one (1 on the first try).
    pub attempts: i64,
    /// When the message was enqueued (unix micros).
    pub created_at: i64,
}

/// Why a delivery failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The receiver is unavailable or overloaded; try again later.
    #[error("retryable delivery failure: {0}")]
    Retryable(String),
    /// The receiver rejected the message for good (e.g. INVALID_ARGUMENT); do not retry.
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
}

/// Single deliveries in flight at once in [`Deliver::deliver_batch`]'s default: a receiver
/// without a batch call sees no more concurrent calls than a pass of the former default size.
pub const DELIVERIES_AT_ONCE: usize = 16;

/// Delivers outbox messages to their receivers (implemented by each service).
///
/// The receiver resolves the tenant from the caller's credentials, so an implementation calls
/// it with credentials for `message.tenant_id`, and with `message.message_key` as the request's
/// idempotency key. Map UNAVAILABLE / DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED / ABORTED to
/// [`DeliveryError::Retryable`] and request errors (INVALID_ARGUMENT, FAILED_PRECONDITION, …) to
/// [`DeliveryError::Permanent`].
pub trait Deliver: Send + Sync + 'static {
    /// Delivers one message; the receiver must deduplicate by `message.message_key`.
    fn deliver(
        &self,
        message: &OutboxMessage,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;

    /// Delivers the messages of one relay pass and returns one outcome per message, in order;
    /// each outcome is recorded alone (a failed message is retried or dead-lettered by itself).
    ///
    /// The default delivers each message with [`Deliver::deliver`], [`DELIVERIES_AT_ONCE`] at a
    /// time. A receiver with a batch RPC overrides it to send many messages per call.
    fn deliver_batch(
        &self,
        messages: &[OutboxMessage],
    ) -> impl Future<Output = Vec<Result<(), DeliveryError>>> + Send {
        use futures::StreamExt as _;
        futures::stream::iter(messages.iter().map(|message| self.deliver(message)))
            .buffered(DELIVERIES_AT_ONCE)
            .collect::<Vec<_>>()
    }
}

impl<D: Deliver> Deliver for Arc<D> {
    fn deliver(
        &self,
        message: &OutboxMessage,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send {
        D::deliver(self, message)
    }

    fn deliver_batch(
        &self,
        messages: &[OutboxMessage],
    ) -> impl Future<Output = Vec<Result<(), DeliveryError>>> + Send {
        D::deliver_batch(self, messages)
    }
}

/// Relay settings (deserialisable from the service configuration).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// How often the relay looks for due messages when not notified, in milliseconds.
    pub poll_interval_ms: u64,
    /// Maximum messages claimed per pass; they are delivered together ([`Deliver::deliver_batch`]).
    pub batch_size: u32,
    /// Attempts after which a retryable failure becomes DEAD.
    pub max_attempts: u32,
    /// Delay before the second attempt, in milliseconds; doubles per attempt.
    pub backoff_initial_ms: u64,
    /// Upper bound of the retry delay, in milliseconds.
    pub backoff_max_ms: u64,
    /// A delivery still running after this many milliseconds counts as a retryable failure.
    pub delivery_timeout_ms: u64,
    /// How long a claimed message stays invisible to other relays while being delivered, in
    /// milliseconds. Must exceed `delivery_timeout_ms` (it is raised to twice that if not), so
    /// only a crashed relay's messages are re-claimed.
    pub lease_ms: u64,
    /// The relay's owner name, recorded with each lease. A relay restarted under the same name
    /// takes back the leases its previous process held at once instead of waiting `lease_ms`.
    ///
    /// It must stay the same across restarts of one replica and differ between replicas that
    /// share a database. Unset, it is the host name: a container or pod keeps it when it is
    /// restarted after a crash (a Kubernetes StatefulSet pod keeps it even when rescheduled;
    /// a Deployment's replacement pod gets a new name, so its predecessor's leases expire as
    /// before), and replicas run on different hosts. The service namespace is not needed in the
    /// name because each service's outbox is its own table. Set it when two replicas of one
    /// service run on the same host (e.g. `replica-1`, `replica-2`); when no host name can be
    /// found the relay uses a name of its own process, and a crashed relay's leases then expire
    /// as usual.
    pub owner: Option<String>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1_000,
            // A pass must fit in one delivery timeout. Remittance's receivers take batch calls
            // (ApplyAdjudications, PostPatientResponsibilities: 500 items in one transaction
            // each); a receiver without one gets DELIVERIES_AT_ONCE messages at a time, so lower
            // it where such a receiver is slow.
            batch_size: 500,
            max_attempts: 20,
            backoff_initial_ms: 500,
            backoff_max_ms: 300_000,
            delivery_timeout_ms: 30_000,
            lease_ms: 120_000,
            owner: None,
        }
    }
}

impl RelayConfig {
    /// Returns the delay before the next attempt after `attempts` failed attempts.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 32)).unwrap_or(32);
        let ms = self
            .backoff_initial_ms
            .saturating_mul(1u64.checked_shl(exp).unwrap_or(u64::MAX))
            .min(self.backoff_max_ms);
        Duration::from_millis(ms)
    }
}

/// What one relay pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayPass {
    /// Messages claimed.
    pub claimed: usize,
    /// Messages delivered.
    pub delivered: usize,
    /// Messages scheduled for another attempt.
    pub retried: usize,
    /// Messages moved to DEAD.
    pub dead: usize,
}

/// Wakes a relay for prompt delivery (call after committing a transaction that enqueued).
#[derive(Clone, Debug, Default)]
pub struct RelayNotifier(Arc<Notify>);

impl RelayNotifier {
    /// Asks the relay to run a pass now instead of at the next poll.
    pub fn notify(&self) {
        self.0.notify_one();
    }
}

/// Identifies this process in the leases it takes, so a relay never releases leases taken by
/// a relay of the same process (which may still be delivering them).
static PROCESS_ID: LazyLock<String> = LazyLock::new(|| uuid::Uuid::new_v4().to_string());

/// Returns the default relay owner: the host name, or (when none can be read) a name of this
/// process only.
pub fn default_owner() -> String {
    static OWNER: LazyLock<String> = LazyLock::new(|| {
        host_name().unwrap_or_else(|| {
            warn!(
                "no host name found: outbox leases of a crashed relay will wait for expiry; set outbox.owner"
            );
            format!("process-{}", *PROCESS_ID)
        })
    });
    OWNER.clone()
}

/// Reads the host name without a system call binding: the kernel's on Linux, else the
/// variables shells and container runtimes set.
fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .chain(
            ["HOSTNAME", "COMPUTERNAME"]
                .iter()
                .filter_map(|v| std::env::var(v).ok()),
        )
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
}

/// Polls the outbox of one [`Database`] and delivers due messages.
pub struct Relay<D> {
    db: Database,
    deliver: Arc<D>,
    config: RelayConfig,
    notifier: RelayNotifier,
    owner: String,
    process: String,
    destinations: Destinations,
}

/// Which destinations' messages a relay claims.
///
/// A service that delivers to several receivers runs one relay per destination (and one for
/// anything else), so a slow receiver never holds up the passes of a fast one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Destinations {
    /// Every message.
    #[default]
    All,
    /// Only messages to this destination.
    Only(String),
    /// Every message except those to these destinations.
    Except(Vec<String>),
}

impl Destinations {
    /// The claim statement's extra condition, its placeholders numbered from `first`.
    fn condition(&self, first: usize) -> String {
        match self {
            Self::All => String::new(),
            Self::Only(_) => format!(" AND destination = ${first}"),
            Self::Except(list) if list.is_empty() => String::new(),
            Self::Except(list) => format!(
                " AND destination NOT IN ({})",
                crate::filters::placeholders(first, list.len())
            ),
        }
    }

    /// The values bound to [`Destinations::condition`]'s placeholders, in order.
    fn values(&self) -> &[String] {
        match self {
            Self::All => &[],
            Self::Only(one) => std::slice::from_ref(one),
            Self::Except(list) => list,
        }
    }
}

impl<D: Deliver> Relay<D> {
    /// Creates a relay over `db`'s outbox delivering through `deliver`, owned by
    /// `config.owner` or else [`default_owner`].
    pub fn new(db: Database, deliver: D, config: RelayConfig) -> Self {
        let owner = config
            .owner
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map_or_else(default_owner, str::to_owned);
        Self {
            db,
            deliver: Arc::new(deliver),
            config,
            notifier: RelayNotifier::default(),
            owner,
            process: PROCESS_ID.clone(),
            destinations: Destinations::All,
        }
    }

    /// Makes this relay claim only the messages `destinations` selects.
    pub fn for_destinations(mut self, destinations: Destinations) -> Self {
        self.destinations = destinations;
        self
    }

    /// Sets the owner name recorded with this relay's leases (see [`RelayConfig::owner`]).
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }

    /// Returns the owner name recorded with this relay's leases.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Makes this relay act as if it ran in a new process, so one test can play a restart.
    #[cfg(any(test, feature = "testing"))]
    pub fn as_if_restarted(mut self) -> Self {
        self.process = uuid::Uuid::new_v4().to_string();
        self
    }

    /// Returns a handle that wakes this relay.
    pub fn notifier(&self) -> RelayNotifier {
        self.notifier.clone()
    }

    /// Makes the messages leased under this relay's owner by an earlier process due at once, and
    /// returns how many.
    ///
    /// [`Relay::spawn`] calls it before its first pass. Leases of this process and of other
    /// owners are left alone. Call it before [`Relay::run_once`] when driving passes by hand.
    pub async fn release_own_leases(&self) -> Result<u64, StorageError> {
        let released = crate::with_db!(&self.db, |pool| {
            sqlx::query(
                "UPDATE platform_outbox \
                 SET next_attempt_at = $1, lease_token = NULL, lease_owner = NULL, lease_process = NULL \
                 WHERE status = 'PENDING' AND next_attempt_at > $1 \
                   AND lease_owner = $2 AND lease_process <> $3",
            )
            .bind(time::now_micros())
            .bind(&self.owner)
            .bind(&self.process)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if released > 0 {
            info!(owner = %self.owner, released, "outbox leases of a previous run released");
        }
        Ok(released)
    }

    /// Claims up to `batch_size` due messages and delivers them concurrently.
    pub async fn run_once(&self) -> Result<RelayPass, StorageError> {
        let now = time::now_micros();
        let timeout = Duration::from_millis(self.config.delivery_timeout_ms.max(1));
        let lease = Duration::from_millis(self.config.lease_ms).max(timeout.saturating_mul(2));
        let lease_until = now.saturating_add(micros(lease));
        let token = uuid::Uuid::new_v4().to_string();
        let limit = i64::from(self.config.batch_size.max(1));
        // Only numbered placeholders are formatted into the text; the destinations are bound.
        let condition = self.destinations.condition(7);
        let lock = match &self.db {
            Database::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            // SQLite has a single writer: nobody else can claim meanwhile.
            Database::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE platform_outbox \
             SET attempts = attempts + 1, next_attempt_at = $2, lease_token = $3, \
                 lease_owner = $5, lease_process = $6 \
             WHERE id IN (SELECT id FROM platform_outbox \
                          WHERE status = 'PENDING' AND next_attempt_at <= $1{condition} \
                          ORDER BY next_attempt_at, id LIMIT $4{lock}) \
             RETURNING id, tenant_id, destination, message_key, payload, attempts, created_at"
        );
        let messages: Vec<OutboxMessage> = crate::with_db!(&self.db, |pool| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(now)
                .bind(lease_until)
                .bind(&token)
                .bind(limit)
                .bind(&self.owner)
                .bind(&self.process);
            for destination in self.destinations.values() {
                q = q.bind(destination);
            }
            q.fetch_all(pool).await?
        });
        if messages.is_empty() {
            return Ok(RelayPass::default());
        }
        // The pass is delivered at once (concurrently, or in batch calls), so it lasts at most
        // one delivery timeout (plus bookkeeping) and stays well inside the lease.
        let outcomes =
            match tokio::time::timeout(timeout, self.deliver.deliver_batch(&messages)).await {
                Ok(outcomes) if outcomes.len() == messages.len() => outcomes,
                Ok(outcomes) => {
                    let reason = format!(
                        "the delivery answered {} outcomes for {} messages",
                        outcomes.len(),
                        messages.len()
                    );
                    vec![Err(DeliveryError::Retryable(reason)); messages.len()]
                }
                Err(_) => {
                    let reason = format!("delivery timed out after {} ms", timeout.as_millis());
                    vec![Err(DeliveryError::Retryable(reason)); messages.len()]
                }
            };
        let mut pass = RelayPass {
            claimed: messages.len(),
            ..RelayPass::default()
        };
        let mut delivered = Vec::new();
        for (message, outcome) in messages.iter().zip(outcomes) {
            match outcome {
                Ok(()) => delivered.push(message.id.as_str()),
                Err(error) => match self.record_failure(message, &token, error).await? {
                    Outcome::Retried => pass.retried += 1,
                    Outcome::Dead => pass.dead += 1,
                },
            }
        }
        self.finish_delivered(&delivered, &token).await?;
        pass.delivered = delivered.len();
        debug!(delivered = pass.delivered, "outbox messages delivered");
        Ok(pass)
    }

    /// Records a failed delivery: another attempt after the backoff, or DEAD.
    async fn record_failure(
        &self,
        message: &OutboxMessage,
        token: &str,
        error: DeliveryError,
    ) -> Result<Outcome, StorageError> {
        match error {
            DeliveryError::Retryable(reason)
                if message.attempts < i64::from(self.config.max_attempts) =>
            {
                let next = time::now_micros()
                    .saturating_add(micros(self.config.backoff(message.attempts)));
                self.finish(message, token, STATUS_PENDING, Some(&reason), next)
                    .await?;
                info!(message_id = %message.id, destination = %message.destination,
                    attempts = message.attempts, error = %reason,
                    "outbox delivery failed, will retry");
                Ok(Outcome::Retried)
            }
            DeliveryError::Retryable(reason) | DeliveryError::Permanent(reason) => {
                self.finish(
                    message,
                    token,
                    STATUS_DEAD,
                    Some(&reason),
                    time::now_micros(),
                )
                .await?;
                warn!(message_id = %message.id, destination = %message.destination,
                    attempts = message.attempts, error = %reason,
                    "outbox message dead-lettered");
                Ok(Outcome::Dead)
            }
        }
    }

    /// Marks the messages `ids` DELIVERED, in one statement per [`ENQUEUE_ROWS`] ids, guarded by
    /// the lease token as [`Relay::finish`] is.
    async fn finish_delivered(&self, ids: &[&str], token: &str) -> Result<(), StorageError> {
        let now = time::now_micros();
        for chunk in ids.chunks(ENQUEUE_ROWS) {
            let placeholders = crate::filters::placeholders(3, chunk.len());
            // Only numbered placeholders are formatted into the text; the ids are bound.
            let sql = format!(
                "UPDATE platform_outbox \
                 SET status = 'DELIVERED', next_attempt_at = $1, delivered_at = $1, \
                     lease_token = NULL, lease_owner = NULL, lease_process = NULL \
                 WHERE lease_token = $2 AND id IN ({placeholders})"
            );
            crate::with_db!(&self.db, |pool| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .persistent(false)
                    .bind(now)
                    .bind(token);
                for id in chunk {
                    q = q.bind(*id);
                }
                q.execute(pool).await?;
            });
        }
        Ok(())
    }

    /// Records a delivery outcome, guarded by the lease token: if our lease expired and another
    /// relay re-claimed the message, its outcome wins and this update changes nothing.
    async fn finish(
        &self,
        message: &OutboxMessage,
        token: &str,
        status: &str,
        error: Option<&str>,
        at: i64,
    ) -> Result<(), StorageError> {
        let delivered_at = (status == STATUS_DELIVERED).then_some(at);
        crate::with_db!(&self.db, |pool| {
            sqlx::query(
                "UPDATE platform_outbox \
                 SET status = $1, next_attempt_at = $2, last_error = COALESCE($3, last_error), \
                     delivered_at = $4, lease_token = NULL, lease_owner = NULL, lease_process = NULL \
                 WHERE id = $5 AND lease_token = $6",
            )
            .bind(status)
            .bind(at)
            .bind(error)
            .bind(delivered_at)
            .bind(&message.id)
            .bind(token)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Starts the relay loop on the current tokio runtime.
    ///
    /// The loop first releases the leases an earlier process of this owner left behind
    /// ([`Relay::release_own_leases`]); until that succeeds it claims nothing. Then it runs a
    /// pass, and waits for the poll interval or a notification (a full batch is followed by
    /// another pass at once). Database errors are logged and retried at the next poll. Stop it
    /// with [`RelayHandle::shutdown`]; dropping the handle aborts the task.
    pub fn spawn(self) -> RelayHandle {
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let notifier = self.notifier.clone();
        let poll = Duration::from_millis(self.config.poll_interval_ms.max(1));
        let batch = usize::try_from(self.config.batch_size.max(1)).unwrap_or(usize::MAX);
        let join = tokio::spawn(async move {
            debug!(owner = %self.owner, "outbox relay started");
            let mut released = false;
            loop {
                if *stop_rx.borrow() {
                    break;
                }
                if !released {
                    match self.release_own_leases().await {
                        Ok(_) => released = true,
                        Err(e) => warn!(error = %e, "outbox lease release failed"),
                    }
                }
                let full_batch = if released {
                    match self.run_once().await {
                        Ok(pass) => pass.claimed >= batch,
                        Err(e) => {
                            warn!(error = %e, "outbox relay pass failed");
                            false
                        }
                    }
                } else {
                    false
                };
                if full_batch {
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = self.notifier.0.notified() => {}
                    _ = stop_rx.changed() => {}
                }
            }
            debug!("outbox relay stopped");
        });
        RelayHandle {
            stop: stop_tx,
            join: Some(join),
            notifier,
        }
    }
}

enum Outcome {
    Retried,
    Dead,
}

/// A running relay (see [`Relay::spawn`]).
#[derive(Debug)]
pub struct RelayHandle {
    stop: watch::Sender<bool>,
    join: Option<JoinHandle<()>>,
    notifier: RelayNotifier,
}

impl RelayHandle {
    /// Returns a handle that wakes the relay.
    pub fn notifier(&self) -> RelayNotifier {
        self.notifier.clone()
    }

    /// Stops the relay after the delivery in progress (if any) is recorded, and waits for it.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(join) = self.join.take()
            && let Err(e) = join.await
        {
            warn!(error = %e, "outbox relay task ended abnormally");
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        // Without a graceful shutdown, behave like a crash: claimed messages are re-delivered
        // when this owner's relay starts again, or else after their lease expires.
        if let Some(join) = self.join.take() {
            join.abort();
        }
    }
}

/// Counts of outbox messages by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Messages waiting for (re)delivery.
    pub pending: i64,
    /// Messages delivered.
    pub delivered: i64,
    /// Messages given up on.
    pub dead: i64,
}

/// Returns how many outbox messages are pending, delivered and dead (all tenants).
pub async fn counts(db: &Database) -> Result<OutboxCounts, StorageError> {
    let rows: Vec<(String, i64)> = crate::with_db!(db, |pool| {
        sqlx::query_as("SELECT status, COUNT(*) FROM platform_outbox GROUP BY status")
            .fetch_all(pool)
            .await?
    });
    let mut c = OutboxCounts::default();
    for (status, n) in rows {
        match status.as_str() {
            STATUS_PENDING => c.pending = n,
            STATUS_DELIVERED => c.delivered = n,
            STATUS_DEAD => c.dead = n,
            other => {
                return Err(StorageError::Corrupt {
                    what: "outbox status",
                    detail: format!("unknown status `{other}`"),
                });
            }
        }
    }
    Ok(c)
}

/// The stored state of one outbox message (for operators and tests).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxState {
    /// PENDING, DELIVERED or DEAD.
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// When the next attempt is due (unix micros).
    pub next_attempt_at: i64,
    /// The last delivery error, if any.
    pub last_error: Option<String>,
    /// When it was delivered (unix micros).
    pub delivered_at: Option<i64>,
}

/// Returns the state of the message with `id`, if it exists.
pub async fn state(db: &Database, id: &str) -> Result<Option<OutboxState>, StorageError> {
    let s = crate::with_db!(db, |pool| {
        sqlx::query_as(
            "SELECT status, attempts, next_attempt_at, last_error, delivered_at \
             FROM platform_outbox WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
    });
    Ok(s)
}

/// Puts a DEAD message of `tenant_id` back in the queue (attempts reset, due now), e.g. after
/// an operator fixed the cause; returns false when no such dead message exists.
pub async fn requeue_dead(db: &Database, tenant_id: &str, id: &str) -> Result<bool, StorageError> {
    let n = crate::with_db!(db, |pool| {
        sqlx::query(
            "UPDATE platform_outbox SET status = 'PENDING', attempts = 0, next_attempt_at = $1 \
             WHERE tenant_id = $2 AND id = $3 AND status = 'DEAD'",
        )
        .bind(time::now_micros())
        .bind(tenant_id)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// Deletes delivered messages delivered before `cutoff_micros`; returns how many.
pub async fn purge_delivered(db: &Database, cutoff_micros: i64) -> Result<u64, StorageError> {
    let n = crate::with_db!(db, |pool| {
        sqlx::query("DELETE FROM platform_outbox WHERE status = 'DELIVERED' AND delivered_at < $1")
            .bind(cutoff_micros)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let c = RelayConfig {
            backoff_initial_ms: 100,
            backoff_max_ms: 1_000,
            ..RelayConfig::default()
        };
        assert_eq!(c.backoff(1), Duration::from_millis(100));
        assert_eq!(c.backoff(2), Duration::from_millis(200));
        assert_eq!(c.backoff(4), Duration::from_millis(800));
        assert_eq!(c.backoff(5), Duration::from_millis(1_000));
        assert_eq!(c.backoff(500), Duration::from_millis(1_000));
        assert_eq!(c.backoff(0), Duration::from_millis(100));
    }
}
