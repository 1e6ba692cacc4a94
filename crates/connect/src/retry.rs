//! Retries with jittered exponential backoff, for retryable failures only.
//!
//! The loop and the wait schedule are `backon`'s; this module maps [`RetryPolicy`] onto them and
//! keeps the attempt count for logs and [`ConnectError::Exhausted`].

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
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
    let attempts = AtomicU32::new(0);
    let result = (|| op(attempts.fetch_add(1, Ordering::Relaxed) + 1))
        .retry(schedule(policy))
        .sleep(tokio::time::sleep)
        .when(ConnectError::is_retryable)
        .notify(|error, wait| {
            warn!(
                payer_id,
                %payload_id,
                attempt = attempts.load(Ordering::Relaxed),
                backoff_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                error = %error,
                "payer exchange failed, retrying"
            );
        })
        .await;
    let attempts = attempts.into_inner();
    match result {
        Ok(value) => Ok((value, attempts)),
        Err(error) if error.is_retryable() && attempts > 1 => {
            warn!(payer_id, %payload_id, attempts, error = %error, "payer exchange failed, giving up");
            Err(ConnectError::Exhausted {
                attempts,
                last: Box::new(error),
            })
        }
        Err(error) => Err(error),
    }
}

/// Returns the backoff schedule of `policy`: `max_attempts - 1` waits growing from
/// `initial_backoff_ms` by `multiplier` up to `max_backoff_ms` ([`RetryPolicy::backoff`]).
///
/// With `jitter`, each wait is drawn from [wait/2, wait] so clients that failed together do not
/// retry together: `backon` adds up to 100% to a delay, so it is given half delays.
fn schedule(policy: &RetryPolicy) -> ExponentialBuilder {
    let max = Duration::from_millis(policy.max_backoff_ms);
    let first = Duration::from_millis(policy.initial_backoff_ms).min(max);
    let retries = usize::try_from(policy.max_attempts.saturating_sub(1)).unwrap_or(usize::MAX);
    // Small integer factors are exact in f32.
    #[allow(clippy::cast_precision_loss)]
    let factor = policy.multiplier.max(1) as f32;
    let builder = ExponentialBuilder::new()
        .with_factor(factor)
        .with_max_times(retries);
    if policy.jitter {
        builder
            .with_min_delay(first / 2)
            .with_max_delay(max / 2)
            .with_jitter()
    } else {
        builder.with_min_delay(first).with_max_delay(max)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use backon::BackoffBuilder;

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

    fn millis(waits: impl Iterator<Item = Duration>) -> Vec<u64> {
        // backon scales delays in f32 seconds: round away sub-millisecond noise.
        waits
            .map(|w| (w.as_secs_f64() * 1e3).round() as u64)
            .collect()
    }

    #[test]
    fn schedule_without_jitter_is_the_policy_backoff() {
        let policy = RetryPolicy {
            max_attempts: 6,
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
            multiplier: 3,
            jitter: false,
        };
        let expected: Vec<u64> = (1..=5)
            .map(|attempt| policy.backoff(attempt).as_millis() as u64)
            .collect();
        assert_eq!(expected, vec![100, 300, 900, 1_000, 1_000]);
        assert_eq!(millis(schedule(&policy).build()), expected);
        // One attempt: no waits at all.
        let once = RetryPolicy {
            max_attempts: 1,
            ..policy
        };
        assert_eq!(schedule(&once).build().count(), 0);
        // A first wait above the cap is capped, as `backoff` does.
        let capped = RetryPolicy {
            max_attempts: 2,
            initial_backoff_ms: 5_000,
            max_backoff_ms: 1_000,
            multiplier: 2,
            jitter: false,
        };
        assert_eq!(millis(schedule(&capped).build()), vec![1_000]);
    }

    #[test]
    fn jitter_stays_within_half_and_full_wait() {
        let policy = RetryPolicy {
            max_attempts: 5,
            initial_backoff_ms: 100,
            max_backoff_ms: 400,
            multiplier: 2,
            jitter: true,
        };
        let mut distinct = std::collections::HashSet::new();
        for _ in 0..200 {
            let waits: Vec<Duration> = schedule(&policy).build().collect();
            assert_eq!(waits.len(), 4);
            for (attempt, wait) in (1..).zip(&waits) {
                let full = policy.backoff(attempt);
                // backon computes in f32 seconds: allow for its rounding.
                let slack = Duration::from_micros(1);
                assert!(
                    *wait + slack >= full / 2 && *wait <= full + slack,
                    "attempt {attempt}: {wait:?} outside [{:?}, {full:?}]",
                    full / 2
                );
            }
            distinct.insert(waits[0]);
        }
        assert!(distinct.len() > 10, "waits are randomised");
    }

    #[tokio::test(start_paused = true)]
    async fn waits_between_attempts_follow_the_schedule() {
        let policy = RetryPolicy {
            max_attempts: 4,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 3_000,
            multiplier: 2,
            jitter: false,
        };
        let started = tokio::time::Instant::now();
        let seen = std::sync::Mutex::new(Vec::new());
        let err = with_retries(&policy, "P", Uuid::nil(), |attempt| {
            seen.lock()
                .unwrap()
                .push((attempt, started.elapsed().as_millis()));
            async { Err::<(), _>(unavailable()) }
        })
        .await
        .unwrap_err();
        assert_eq!(err.attempts(), 4);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![(1, 0), (2, 1_000), (3, 3_000), (4, 6_000)]
        );
    }
}
