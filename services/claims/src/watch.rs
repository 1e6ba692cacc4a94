//! WatchClaims: a tenant's status changes, replayed from the history after a sequence number and
//! then followed live, without gaps or duplicates.
//!
//! One reader per stream follows the history **by sequence**: it remembers the last sequence it
//! passed and reads the next page after it, so replay and live are the same loop and the switch
//! between them can neither skip nor repeat a change; a client that reconnects with the last
//! sequence it saw resumes at the next one. The reader reads again when a change is committed in
//! this process ([`WatchHub::notify`], called after the commit) and at least every
//! [`POLL_INTERVAL`], which picks up changes committed by other replicas or by RPCs that do not
//! notify.
//!
//! **Why the sequence can be trusted on PostgreSQL**: a sequence is taken with an upsert on the
//! tenant's `claim_event_sequences` row, which stays locked until the writing transaction ends
//! (the history rows are written last, just before the commit, so the lock spans the commit only). A
//! second transaction of the tenant waits at its own upsert until the first commits (or rolls back,
//! taking its number back), so sequences become visible gap-free and in order: whoever can see
//! sequence n can see every sequence before it. The reader still refuses to run ahead of a hole:
//! when the next page skips a number it stops before the hole and reads again shortly, and only a
//! hole that lasts [`GAP_PATIENCE`] (which the allocation above rules out; it would take a row
//! deleted by hand) is logged and passed. SQLite has a single writer, so the same holds trivially.
//!
//! The stream ends cleanly (status OK) when the server starts to shut down (the hub's stopping
//! signal), when the client goes away, or with the error when the database fails.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use medbill_domain::{ClaimId, TenantId};
use medbill_runtime::service::{Shutdown, ShutdownTrigger};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use crate::model::{ClaimStatus, StatusChange};
use crate::store::{ClaimStore, ClaimStoreError, WatchedChange};

/// Longest wait between two reads of the history when nothing is notified.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long a reader waits for a missing sequence before passing it.
pub const GAP_PATIENCE: Duration = Duration::from_secs(5);
/// Changes read per query.
const PAGE: u32 = 500;
/// Changes buffered per stream before the reader waits for the client.
const BUFFER: usize = 64;

/// Wakes the WatchClaims readers of this process and ends them at shutdown. Cheap to clone.
#[derive(Clone, Debug)]
pub struct WatchHub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    committed: watch::Sender<u64>,
    stopping: Shutdown,
    /// Keeps the default stopping signal from firing when no signal was given.
    _never: Option<ShutdownTrigger>,
}

impl WatchHub {
    /// Makes a hub whose streams end when `stopping` fires (never, when `None`).
    pub fn new(stopping: Option<Shutdown>) -> Self {
        let (never, stopping) = match stopping {
            Some(s) => (None, s),
            None => {
                let (trigger, signal) = ShutdownTrigger::new();
                (Some(trigger), signal)
            }
        };
        Self {
            inner: Arc::new(Inner {
                committed: watch::Sender::new(0),
                stopping,
                _never: never,
            }),
        }
    }

    /// Tells the readers that status changes were committed (call after the commit).
    pub fn notify(&self) {
        self.inner.committed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Which changes a stream sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchFilter {
    /// Only these claims; empty for all.
    pub claim_ids: HashSet<ClaimId>,
    /// Only changes into these statuses; empty for all.
    pub statuses: Vec<ClaimStatus>,
    /// Only claims to this payer.
    pub payer_id: Option<String>,
}

impl WatchFilter {
    fn matches(&self, w: &WatchedChange) -> bool {
        (self.claim_ids.is_empty() || self.claim_ids.contains(&w.change.claim_id))
            && (self.statuses.is_empty() || self.statuses.contains(&w.change.to))
            && self.payer_id.as_ref().is_none_or(|p| *p == w.payer_id)
    }
}

/// Starts a reader of the tenant's changes after `after` (or, when `None`, after the last change
/// committed before this returns: live only) and returns its stream.
///
/// # Errors
/// The database error when the last committed sequence cannot be read.
pub async fn follow(
    store: Arc<dyn ClaimStore>,
    hub: &WatchHub,
    tenant: TenantId,
    filter: WatchFilter,
    after: Option<u64>,
) -> Result<ReceiverStream<Result<StatusChange, ClaimStoreError>>, ClaimStoreError> {
    let (tx, rx) = mpsc::channel(BUFFER);
    // Subscribed before the first read, so a commit between that read and the wait still wakes it.
    let wake = hub.inner.committed.subscribe();
    let stopping = hub.inner.stopping.clone();
    // Read before answering, so a change committed after the call returns is never missed.
    let after = match after {
        Some(a) => a,
        None => store.last_sequence(&tenant).await?,
    };
    tokio::spawn(async move {
        let reader = Reader {
            store,
            tenant,
            filter,
            tx,
            stopping,
        };
        reader.run(after, wake).await;
    });
    Ok(ReceiverStream::new(rx))
}

struct Reader {
    store: Arc<dyn ClaimStore>,
    tenant: TenantId,
    filter: WatchFilter,
    tx: mpsc::Sender<Result<StatusChange, ClaimStoreError>>,
    stopping: Shutdown,
}

/// Why a reader stops.
enum Stop {
    /// Shutdown, or the client left.
    Done,
    /// The database failed; the error was sent.
    Failed,
}

impl Reader {
    async fn run(self, mut last: u64, mut wake: watch::Receiver<u64>) {
        let mut gap_since: Option<Instant> = None;
        loop {
            if self.stopping.is_requested() {
                return;
            }
            match self.read_available(&mut last, &mut gap_since).await {
                Ok(()) => {}
                Err(Stop::Done | Stop::Failed) => return,
            }
            // A hole waits briefly for the transaction that holds it; otherwise the poll interval.
            let pause = if gap_since.is_some() {
                Duration::from_millis(20)
            } else {
                POLL_INTERVAL
            };
            tokio::select! {
                () = self.stopping.requested() => return,
                () = self.tx.closed() => return,
                changed = wake.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Sends every committed change after `last` that the filter matches, page by page, stopping
    /// before a hole in the sequence.
    async fn read_available(
        &self,
        last: &mut u64,
        gap_since: &mut Option<Instant>,
    ) -> Result<(), Stop> {
        loop {
            let page = match self.store.watched_changes(&self.tenant, *last, PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    let _ = self.tx.send(Err(e)).await;
                    return Err(Stop::Failed);
                }
            };
            let full = page.len() == PAGE as usize;
            for w in page {
                let expected = last.saturating_add(1);
                if w.change.sequence != expected {
                    let since = *gap_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < GAP_PATIENCE {
                        return Ok(());
                    }
                    tracing::warn!(
                        tenant = %self.tenant,
                        expected,
                        found = w.change.sequence,
                        "claim status sequence has a lasting hole; passing it"
                    );
                }
                *gap_since = None;
                *last = w.change.sequence;
                if self.filter.matches(&w) {
                    tokio::select! {
                        () = self.stopping.requested() => return Err(Stop::Done),
                        sent = self.tx.send(Ok(w.change)) => if sent.is_err() { return Err(Stop::Done) },
                    }
                }
            }
            if !full {
                return Ok(());
            }
        }
    }
}
