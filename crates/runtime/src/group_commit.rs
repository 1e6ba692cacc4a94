//! Group commit: many calls' writes in one transaction, so a burst of small mutating calls pays
//! for one commit (one fsync, one hand-over of SQLite's write lock, one hold of a per-tenant
//! counter row) instead of one each.
//!
//! A handler hands its write (the part between `begin` and `commit` of the usual path, with its
//! key reserved through [`IdempotentCall::reserve`](crate::idempotent::IdempotentCall::reserve))
//! to [`GroupCommit::run`] and gets its result once the transaction that carried it committed.
//! A worker takes the units waiting (up to a limit) into one transaction, each inside its own
//! savepoint: a unit that fails is rolled back alone and answers its own error; the others
//! commit. If the commit itself fails, every unit of that transaction answers the error and
//! nothing of theirs was written, so each may be retried. A unit's answer is never sent before
//! its writes are durable.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use std::sync::Arc;

use medbill_storage::{Backend, Database, Tx};
use tokio::sync::{Mutex, mpsc, oneshot};
use tonic::Status;

use crate::ServiceError;

/// Most units carried by one transaction.
pub const MAX_UNITS: usize = 256;

/// Transactions in flight at once on PostgreSQL.
pub const POSTGRES_WORKERS: usize = 4;

type Answer = Result<Box<dyn Any + Send>, Status>;

/// The future of one unit of work, borrowing the shared transaction.
pub type UnitFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T, ServiceError>> + Send + 't>>;

type Work = Box<dyn for<'t> FnOnce(&'t mut Tx) -> UnitFuture<'t, Box<dyn Any + Send>> + Send>;

struct Unit {
    work: Work,
    answer: oneshot::Sender<Answer>,
}

/// Runs units of work in shared transactions on one database (see the module docs). Cheap to
/// clone; the worker stops when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct GroupCommit {
    units: mpsc::UnboundedSender<Unit>,
}

impl GroupCommit {
    /// Starts the workers on the current tokio runtime: one on SQLite (one writer at a time
    /// anyway), [`POSTGRES_WORKERS`] on PostgreSQL, where one transaction's round trips can
    /// overlap another's.
    pub fn start(db: Database) -> Self {
        let (units, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        let workers = match db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => POSTGRES_WORKERS,
        };
        for _ in 0..workers {
            tokio::spawn(worker(db.clone(), Arc::clone(&rx)));
        }
        Self { units }
    }

    /// Runs `work` in the next shared transaction and returns its result once that transaction
    /// committed (or the unit's own error, or the commit's).
    ///
    /// # Errors
    /// The unit's error; the commit's error; INTERNAL if the worker is gone.
    pub async fn run<T, F>(&self, work: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> UnitFuture<'t, T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let work: Work = Box::new(move |tx| {
            Box::pin(async move { work(tx).await.map(|t| Box::new(t) as Box<dyn Any + Send>) })
        });
        self.units.send(Unit { work, answer }).map_err(|_| {
            Status::from(ServiceError::internal(
                "the group commit worker has stopped",
            ))
        })?;
        let boxed = answered.await.map_err(|_| {
            Status::from(ServiceError::internal(
                "a group commit transaction was abandoned",
            ))
        })??;
        boxed
            .downcast::<T>()
            .map(|t| *t)
            .map_err(|_| Status::from(ServiceError::internal("group commit answered another type")))
    }
}

async fn worker(db: Database, rx: Arc<Mutex<mpsc::UnboundedReceiver<Unit>>>) {
    loop {
        // One worker at a time takes what is waiting; the others run their transactions.
        let units = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut units = vec![first];
            while units.len() < MAX_UNITS {
                match rx.try_recv() {
                    Ok(unit) => units.push(unit),
                    Err(_) => break,
                }
            }
            units
        };
        // Its own task: a unit that panics drops its batch's answers (each caller sees an
        // abandoned transaction), not the worker.
        let db = db.clone();
        let _ = tokio::spawn(async move { commit_group(&db, units).await }).await;
    }
}

/// Runs `units` in one transaction, each in a savepoint, commits, then answers each.
async fn commit_group(db: &Database, units: Vec<Unit>) {
    let mut tx = match db.begin().await {
        Ok(tx) => tx,
        Err(e) => {
            let err = Status::from(ServiceError::from(e));
            for unit in units {
                let _ = unit.answer.send(Err(err.clone()));
            }
            return;
        }
    };
    let mut answers: Vec<(oneshot::Sender<Answer>, Answer)> = Vec::with_capacity(units.len());
    let alone = units.len() == 1;
    // Set when the transaction can no longer be used: every unit then answers this error.
    let mut broken: Option<Status> = None;
    for unit in units {
        if let Some(err) = &broken {
            answers.push((unit.answer, Err(err.clone())));
            continue;
        }
        // One unit alone needs no savepoint: its error rolls the whole transaction back.
        let savepoint = if alone {
            None
        } else {
            match tx.savepoint().await {
                Ok(sp) => Some(sp),
                Err(e) => {
                    let err = Status::from(ServiceError::from(e));
                    answers.push((unit.answer, Err(err.clone())));
                    broken = Some(err);
                    continue;
                }
            }
        };
        let result = (unit.work)(&mut tx).await.map_err(Status::from);
        let kept = match (savepoint, result.is_ok()) {
            (None, _) => Ok(()),
            (Some(sp), true) => tx.release(sp).await,
            (Some(sp), false) => tx.rollback_to(sp).await,
        };
        if let Err(e) = kept {
            let err = Status::from(ServiceError::from(e));
            answers.push((unit.answer, Err(err.clone())));
            broken = Some(err);
            continue;
        }
        answers.push((unit.answer, result));
    }
    let outcome = match broken {
        Some(err) => Err(err),
        // Nothing to keep (and alone, a failed unit may have aborted the transaction).
        None if answers.iter().all(|(_, a)| a.is_err()) => Ok(()),
        None => tx
            .commit()
            .await
            .map_err(|e| Status::from(ServiceError::from(e))),
    };
    for (answer, result) in answers {
        let result = match &outcome {
            // The transaction did not commit: a unit that succeeded wrote nothing after all.
            Err(err) if result.is_ok() => Err(err.clone()),
            _ => result,
        };
        let _ = answer.send(result);
    }
}
