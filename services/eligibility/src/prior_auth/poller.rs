//! The background task that asks payers again about pended authorizations: every
//! `eligibility.prior_auth_poll_secs`, the undecided authorizations not asked since then (every
//! tenant, least recently asked first, a bounded batch) get a 278 inquiry each. A payer that
//! cannot be reached leaves the authorization pended; the exchange is kept and it is asked again
//! on a later pass.

use std::sync::Arc;
use std::time::Duration;

use medbill_runtime::service::{BackgroundTask, Shutdown};

use super::PriorAuths;
use super::store::status_name;

/// Most authorizations asked about in one pass.
const PASS_LIMIT: u32 = 100;

/// The background task polling pended authorizations every `every`.
pub fn poll_task(auths: Arc<PriorAuths>, every: Duration) -> BackgroundTask {
    BackgroundTask::new(
        "eligibility-prior-auth-poll",
        move |shutdown: Shutdown| async move {
            loop {
                tokio::select! {
                    () = shutdown.requested() => return Ok(()),
                    () = tokio::time::sleep(every) => {}
                }
                if let Err(e) = poll_once(&auths, every).await {
                    tracing::warn!(error = %e, "prior authorization poll failed; trying again later");
                }
            }
        },
    )
}

/// One pass: asks about every undecided authorization not asked for `every`; returns how many
/// were decided.
///
/// # Errors
/// The store failed (an authorization the payer could not answer is logged and skipped).
pub async fn poll_once(auths: &PriorAuths, every: Duration) -> Result<usize, tonic::Status> {
    let now = crate::payer::now().timestamp_micros();
    let asked_before = now - i64::try_from(every.as_micros()).unwrap_or(i64::MAX);
    let due = auths
        .store()
        .undecided(asked_before, PASS_LIMIT)
        .await
        .map_err(medbill_runtime::ServiceError::from)?;
    let mut decided = 0;
    for stored in due {
        let id = stored.authorization.id.clone();
        match auths
            .refresh_now(&stored.tenant, stored.authorization)
            .await
        {
            Ok(a) => {
                if !super::rpc::is_undecided(&a) {
                    decided += 1;
                }
                tracing::info!(prior_authorization_id = %id, status = status_name(a.status()), "pended prior authorization asked again");
            }
            Err(status) => {
                tracing::warn!(prior_authorization_id = %id, code = ?status.code(), message = status.message(), "pended prior authorization could not be asked about");
            }
        }
    }
    Ok(decided)
}
