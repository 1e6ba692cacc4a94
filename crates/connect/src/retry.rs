//! Retries with exponential backoff, for retryable failures only.

use std::future::Future;
use std::time::Duration;

use tracing::warn;
use uuid::Uuid;

use crate::config::RetryPolicy;
use crate::error::ConnectError;

/// Runs `op` (given the 1-based attempt number) until it succeeds, fails for good, or attempts run out.
///
/// Returns the value and the number of attempts used. Retryable failures that exhaust the policy come back
/// as [`ConnectError::Exhausted`] when more than one attempt was made.
pub(crate) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    payer_id: &str,
    payload_id: Uuid,
    mut op: F,
) -> Result<(T, u32), ConnectError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, ConnectError>>,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        match op(attempt).await {
            Ok(value) => return Ok((value, attempt)),
            Err(error) if error.is_retryable() && attempt < max_attempts => {
                let wait = jittered(policy.backoff(attempt), policy.jitter);
                warn!(
                    payer_id,
                    %payload_id,
                    attempt,
                    backoff_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    error = %error,
                    "payer exchange failed, retrying"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(error) if error.is_retryable() && attempt > 1 => {
                warn!(payer_id, %payload_id, attempts = attempt, error = %error, "payer exchange failed, giving up");
                return Err(ConnectError::Exhausted {
                    attempts: attempt,
                    last: Box::new(error),
                });
            }
            Err(error) => return Err(error),
        }
    }
}

/// Spreads a wait over [wait/2, wait] so clients that failed together do not retry together.
fn jittered(wait: Duration, jitter: bool) -> Duration {
    if !jitter {
        return wait;
    }
    let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    let half = millis / 2;
    // A v4 UUID is 122 random bits from the OS generator: enough randomness without another dependency.
    let random = Uuid::new_v4().as_u64_pair().0;
    Duration::from_millis(half + random % (millis - half + 1))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn fast_policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff_ms: 1,
            max_backoff_ms: 2,
            multiplier: 2,
            jitter: true,
        }
    }

    fn unavailable() -> ConnectError {
        ConnectError::HttpStatus {
            payer_id: "P".into(),
            status: 503,
            excerpt: String::new(),
        }
    }

    #[tokio::test]
    async fn retries_retryable_errors_until_success() {
        let calls = AtomicU32::new(0);
        let (value, attempts) = with_retries(&fast_policy(5), "P", Uuid::nil(), |_| async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(unavailable())
            } else {
                Ok(42)
            }
        })
        .await
        .unwrap();
        assert_eq!((value, attempts), (42, 3));
    }

    #[tokio::test]
    async fn does_not_retry_a_permanent_error() {
        let calls = AtomicU32::new(0);
        let err = with_retries(&fast_policy(5), "P", Uuid::nil(), |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(ConnectError::HttpStatus {
                payer_id: "P".into(),
                status: 400,
                excerpt: String::new(),
            })
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(matches!(err, ConnectError::HttpStatus { status: 400, .. }));
    }

    #[tokio::test]
    async fn stops_after_max_attempts() {
        let calls = AtomicU32::new(0);
        let err = with_retries(&fast_policy(3), "P", Uuid::nil(), |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(unavailable())
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(err.attempts(), 3);
    }

    #[test]
    fn jitter_stays_within_half_and_full_wait() {
        for _ in 0..200 {
            let wait = jittered(Duration::from_millis(100), true);
            assert!(wait >= Duration::from_millis(50) && wait <= Duration::from_millis(100));
        }
        assert_eq!(
            jittered(Duration::from_millis(100), false),
            Duration::from_millis(100)
        );
    }
}
