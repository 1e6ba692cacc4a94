//! Background work with one start and one shutdown path ([`BackgroundTask`],
//! [`BackgroundTasks`], [`Shutdown`]); the replica rule is on [`BackgroundTask`].

use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The error a background task ends with.
pub type TaskError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Tells a running task that shutdown was asked for.
///
/// Cheap to clone. A task checks [`Shutdown::is_requested`] between units of work, or selects on
/// [`Shutdown::requested`] while it waits, finishes (or abandons, leaving its lease to expire)
/// the unit in hand, and returns.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Reports whether shutdown was asked for (or the runner is gone).
    pub fn is_requested(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Completes once shutdown is asked for (or the runner is gone).
    pub async fn requested(&self) {
        let mut rx = self.0.clone();
        // An error means the sender was dropped: the runner is gone, which also means stop.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Fires the [`Shutdown`] signals made with it; dropping it fires them too.
///
/// The binary holds one to end long-lived calls (server streams) when the server starts to
/// shut down, before the drain waits for them (see `StartContext::stopping`).
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    /// Makes a trigger and the signal it fires.
    pub fn new() -> (Self, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (Self(tx), Shutdown(rx))
    }

    /// Fires the signal (again is harmless).
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// Returns another signal fired by this trigger.
    pub fn signal(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

type TaskFn = Box<dyn FnOnce(Shutdown) -> BoxFuture<'static, Result<(), TaskError>> + Send>;

/// A named unit of background work, not yet started: an outbox relay, a poller (ERA and
/// acknowledgement retrieval), a scheduler (dunning), a companion server.
///
/// A service returns its tasks in [`super::ServiceParts`]; the binary runs every task of the
/// process in one [`BackgroundTasks`] and stops them after the gRPC server has drained.
///
/// # Every task must be safe with several replicas
///
/// In production every service runs as several replicas, and each replica runs the same tasks.
/// A task must therefore never assume it is alone: it takes each unit of work through a lease
/// (a row claimed with an expiry and a token, as the outbox relay does) or through
/// `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so that two replicas never do the same
/// job. SQLite has a single writer and runs one replica. Work that is not in the database
/// (a listener that only answers requests, such as payer-sim) is safe by construction.
///
/// ```
/// use medbill_runtime::service::BackgroundTask;
/// let task = BackgroundTask::new("claims ack poller", |shutdown| async move {
///     while !shutdown.is_requested() {
///         // claim due work with a lease or SKIP LOCKED, do it, record it...
///         tokio::select! {
///             () = shutdown.requested() => break,
///             () = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
///         }
///     }
///     Ok(())
/// });
/// assert_eq!(task.name(), "claims ack poller");
/// ```
pub struct BackgroundTask {
    name: String,
    run: TaskFn,
}

impl fmt::Debug for BackgroundTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackgroundTask")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl BackgroundTask {
    /// Describes a task: `run` receives the [`Shutdown`] signal and returns when it fires (or
    /// earlier, when its work is done). A name says what and whose, e.g.
    /// `"remittance outbox relay"`; it appears in logs and shutdown errors.
    pub fn new<F, Fut>(name: impl Into<String>, run: F) -> Self
    where
        F: FnOnce(Shutdown) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), TaskError>> + Send + 'static,
    {
        Self {
            name: name.into(),
            run: Box::new(move |shutdown| Box::pin(run(shutdown))),
        }
    }

    /// Returns the task's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Reports tasks that failed, panicked, or did not stop in time.
#[derive(Debug, thiserror::Error)]
#[error("background tasks failed: {}", .failures.join("; "))]
pub struct TaskFailures {
    /// One line per task: its name and what went wrong.
    pub failures: Vec<String>,
}

/// Runs background tasks and stops them together.
///
/// Dropping it without [`BackgroundTasks::shutdown`] signals every task to stop but does not
/// wait for them.
#[derive(Debug)]
pub struct BackgroundTasks {
    stop: watch::Sender<bool>,
    running: Vec<(String, JoinHandle<Result<(), TaskError>>)>,
}

impl Default for BackgroundTasks {
    fn default() -> Self {
        Self::new()
    }
}

impl BackgroundTasks {
    /// Creates an empty set.
    pub fn new() -> Self {
        let (stop, _) = watch::channel(false);
        Self {
            stop,
            running: Vec::new(),
        }
    }

    /// Starts `task` on the current tokio runtime. A task that fails is logged at once, and
    /// reported again by [`BackgroundTasks::shutdown`].
    pub fn spawn(&mut self, task: BackgroundTask) {
        let BackgroundTask { name, run } = task;
        let shutdown = Shutdown(self.stop.subscribe());
        let task_name = name.clone();
        let join = tokio::spawn(async move {
            tracing::debug!(task = %task_name, "background task started");
            let result = run(shutdown).await;
            match &result {
                Ok(()) => tracing::debug!(task = %task_name, "background task stopped"),
                Err(error) => {
                    tracing::error!(task = %task_name, error = %error, "background task failed");
                }
            }
            result
        });
        self.running.push((name, join));
    }

    /// Returns the names of the tasks started, in start order.
    pub fn names(&self) -> Vec<&str> {
        self.running.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// Reports whether no task was started.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Signals every task to stop and waits up to `grace` for all of them (together); tasks
    /// still running then are aborted. Returns the tasks that failed, panicked or were aborted.
    pub async fn shutdown(self, grace: Duration) -> Result<(), TaskFailures> {
        self.stop.send_replace(true);
        let deadline = tokio::time::Instant::now() + grace;
        let mut failures = Vec::new();
        for (name, mut join) in self.running {
            match tokio::time::timeout_at(deadline, &mut join).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => failures.push(format!("{name}: {error}")),
                Ok(Err(error)) => failures.push(format!("{name}: ended abnormally: {error}")),
                Err(_) => {
                    join.abort();
                    tracing::warn!(task = %name, grace_ms = grace.as_millis() as u64,
                        "background task did not stop in time; aborted");
                    failures.push(format!(
                        "{name}: did not stop within {} ms",
                        grace.as_millis()
                    ));
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(TaskFailures { failures })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn tasks_run_until_shutdown_and_stop_together() {
        let passes = Arc::new(AtomicUsize::new(0));
        let mut tasks = BackgroundTasks::new();
        for name in ["a", "b"] {
            let passes = passes.clone();
            tasks.spawn(BackgroundTask::new(name, move |shutdown| async move {
                while !shutdown.is_requested() {
                    passes.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        () = shutdown.requested() => {}
                        () = tokio::time::sleep(Duration::from_millis(5)) => {}
                    }
                }
                Ok(())
            }));
        }
        assert_eq!(tasks.names(), ["a", "b"]);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(passes.load(Ordering::Relaxed) >= 2);
        tasks
            .shutdown(Duration::from_secs(5))
            .await
            .expect("both stop cleanly");
    }

    #[tokio::test]
    async fn failures_and_stragglers_are_reported_by_name() {
        let mut tasks = BackgroundTasks::new();
        tasks.spawn(BackgroundTask::new("fails", |_| async {
            Err::<(), TaskError>("disk on fire".into())
        }));
        tasks.spawn(BackgroundTask::new("ignores shutdown", |_| async {
            std::future::pending::<()>().await;
            Ok(())
        }));
        tasks.spawn(BackgroundTask::new("well behaved", |shutdown| async move {
            shutdown.requested().await;
            Ok(())
        }));
        let err = tasks
            .shutdown(Duration::from_millis(100))
            .await
            .expect_err("two tasks misbehave");
        assert_eq!(err.failures.len(), 2, "{err}");
        assert!(err.failures[0].starts_with("fails: disk on fire"), "{err}");
        assert!(
            err.failures[1].starts_with("ignores shutdown: did not stop within 100 ms"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn dropping_the_set_signals_its_tasks() {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let mut tasks = BackgroundTasks::new();
        tasks.spawn(BackgroundTask::new("waits", move |shutdown| async move {
            shutdown.requested().await;
            let _ = done_tx.send(());
            Ok(())
        }));
        drop(tasks);
        tokio::time::timeout(Duration::from_secs(5), done_rx)
            .await
            .expect("the task saw the signal")
            .expect("the task reported");
    }
}
