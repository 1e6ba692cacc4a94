//! Per-tenant and per-subject rate limits and concurrency limits per service.
//!
//! One tenant (or one runaway client of it) must not be able to take a service away from the
//! others. [`LimitLayer`] sits inside the auth layer, so every call it sees has a known tenant and
//! subject, and checks, per gRPC service:
//!
//! - a token bucket per tenant and one per subject (calls per second with a burst);
//! - how many calls the tenant has running at once, and how many the service has in all.
//!
//! A call over any limit is answered at once with RESOURCE_EXHAUSTED naming the limit, and the
//! `grpc-retry-pushback-ms` trailer gRPC clients use as a retry hint; nothing waits in a queue.
//! A concurrency slot is held until the handler has answered (for a server stream, until its
//! first message), so long-lived watch streams do not pin slots.
//!
//! Buckets and counters live in memory per process: with N replicas a tenant can reach N times
//! the configured rate, which is the usual trade for not putting a shared store in every call's
//! path. Keys exist only for authenticated identities, so the tables cannot be grown by strangers;
//! idle full buckets are dropped once the table passes [`TABLE_SWEEP_AT`] entries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tonic::Status;
use tonic::metadata::MetadataValue;
use tower::{Layer, Service};

use crate::auth::{Subject, Tenant, is_exempt};
use crate::metrics::METER_NAME;
use crate::propagation::split_path;

/// Entries a bucket or semaphore table may hold before idle ones are swept.
pub const TABLE_SWEEP_AT: usize = 4096;

/// Retry hint sent with a refused call when a concurrency limit (not a rate) refused it.
const CONCURRENCY_RETRY_HINT: Duration = Duration::from_millis(100);

/// The `[limits]` settings; `0` turns a limit off.
///
/// ```toml
/// [limits]
/// tenant_calls_per_sec = 20000       # per tenant, per service
/// tenant_burst = 40000
/// subject_calls_per_sec = 10000      # per user or client of a tenant, per service
/// subject_burst = 20000
/// tenant_max_concurrent_calls = 512  # calls of one tenant running at once, per service
/// max_concurrent_calls = 2048        # calls running at once, per service
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Sustained calls per second one tenant may make to one service.
    pub tenant_calls_per_sec: u32,
    /// Calls a tenant may make at once above its rate after a quiet spell.
    pub tenant_burst: u32,
    /// Sustained calls per second one subject (user or client) may make to one service.
    pub subject_calls_per_sec: u32,
    /// Calls a subject may make at once above its rate after a quiet spell.
    pub subject_burst: u32,
    /// Calls of one tenant one service runs at once.
    pub tenant_max_concurrent_calls: u32,
    /// Calls one service runs at once, all tenants together.
    pub max_concurrent_calls: u32,
}

impl Default for LimitsConfig {
    /// Generous enough that the benchmarks of a 2-core machine never meet them, tight enough
    /// that a client in a loop is shed before it starves the other tenants.
    fn default() -> Self {
        Self {
            tenant_calls_per_sec: 20_000,
            tenant_burst: 40_000,
            subject_calls_per_sec: 10_000,
            subject_burst: 20_000,
            tenant_max_concurrent_calls: 512,
            max_concurrent_calls: 2_048,
        }
    }
}

impl LimitsConfig {
    /// No limits at all (tests of other things, and the load drivers' own servers).
    pub fn unlimited() -> Self {
        Self {
            tenant_calls_per_sec: 0,
            tenant_burst: 0,
            subject_calls_per_sec: 0,
            subject_burst: 0,
            tenant_max_concurrent_calls: 0,
            max_concurrent_calls: 0,
        }
    }

    /// The settings as `(name, value)` pairs, as `/metrics` reports them.
    pub fn as_pairs(&self) -> [(&'static str, u32); 6] {
        [
            ("tenant_calls_per_sec", self.tenant_calls_per_sec),
            ("tenant_burst", self.tenant_burst),
            ("subject_calls_per_sec", self.subject_calls_per_sec),
            ("subject_burst", self.subject_burst),
            (
                "tenant_max_concurrent_calls",
                self.tenant_max_concurrent_calls,
            ),
            ("max_concurrent_calls", self.max_concurrent_calls),
        ]
    }
}

/// Which limit refused a call (the `limit` label of `medbill_rpc_limited_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// The tenant's call rate.
    TenantRate,
    /// The subject's call rate.
    SubjectRate,
    /// The tenant's calls running at once.
    TenantConcurrency,
    /// The service's calls running at once.
    ServiceConcurrency,
}

impl Limit {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TenantRate => "tenant_rate",
            Self::SubjectRate => "subject_rate",
            Self::TenantConcurrency => "tenant_concurrency",
            Self::ServiceConcurrency => "service_concurrency",
        }
    }
}

/// A refused call: which limit, what it is, and when to try again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The limit that refused the call.
    pub limit: Limit,
    /// The message for the caller.
    pub message: String,
    /// How long the caller should wait before retrying.
    pub retry_after: Duration,
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Self {
        let millis = refusal.retry_after.as_millis().max(1);
        let mut status =
            Status::resource_exhausted(format!("{}; retry after {millis} ms", refusal.message));
        status.metadata_mut().insert(
            "grpc-retry-pushback-ms",
            MetadataValue::from(u64::try_from(millis).unwrap_or(u64::MAX)),
        );
        status
    }
}

/// A token bucket: `burst` tokens, refilled at `rate` per second.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            updated: now,
        }
    }

    fn refill(&mut self, rate: u32, burst: u32, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(burst));
        self.updated = now;
    }

    /// Takes one token, or returns how long until one is there.
    fn take(&mut self, rate: u32, burst: u32, now: Instant) -> Result<(), Duration> {
        self.refill(rate, burst, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // Whole milliseconds, rounded up: a hint that is too early only earns another refusal.
            let wait_ms = ((1.0 - self.tokens) * 1_000.0 / f64::from(rate)).ceil();
            Err(Duration::from_millis(wait_ms as u64))
        }
    }
}

/// Token buckets keyed by (service, identity).
#[derive(Debug, Default)]
struct Buckets {
    table: Mutex<HashMap<(String, String), Bucket>>,
}

impl Buckets {
    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), Bucket>> {
        // A panic while holding the lock leaves only counters behind; they are still usable.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(
        &self,
        service: &str,
        who: &str,
        rate: u32,
        burst: u32,
        now: Instant,
    ) -> Result<(), Duration> {
        if rate == 0 {
            return Ok(());
        }
        let burst = burst.max(1);
        let mut table = self.lock();
        if table.len() >= TABLE_SWEEP_AT {
            table.retain(|_, bucket| {
                bucket.refill(rate, burst, now);
                bucket.tokens < f64::from(burst)
            });
        }
        table
            .entry((service.to_owned(), who.to_owned()))
            .or_insert_with(|| Bucket::full(burst, now))
            .take(rate, burst, now)
    }
}

/// Semaphores keyed by (service, identity).
#[derive(Debug, Default)]
struct Slots {
    table: Mutex<HashMap<(String, String), Arc<Semaphore>>>,
}

impl Slots {
    fn acquire(
        &self,
        service: &str,
        who: &str,
        max: u32,
    ) -> Result<Option<OwnedSemaphorePermit>, ()> {
        if max == 0 {
            return Ok(None);
        }
        let semaphore = {
            let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
            if table.len() >= TABLE_SWEEP_AT {
                // A semaphore nobody holds a permit of has no state worth keeping.
                table.retain(|_, s| Arc::strong_count(s) > 1);
            }
            Arc::clone(
                table
                    .entry((service.to_owned(), who.to_owned()))
                    .or_insert_with(|| Arc::new(Semaphore::new(max as usize))),
            )
        };
        semaphore.try_acquire_owned().map(Some).map_err(|_| ())
    }
}

/// The limiter of one server: configuration, buckets and slots.
#[derive(Debug)]
pub struct Limiter {
    config: LimitsConfig,
    rates: Buckets,
    tenant_slots: Slots,
    service_slots: Slots,
}

/// The concurrency slots a running call holds; dropping it frees them.
#[derive(Debug)]
pub struct Admitted {
    _tenant: Option<OwnedSemaphorePermit>,
    _service: Option<OwnedSemaphorePermit>,
}

impl Limiter {
    /// Builds a limiter with `config`.
    pub fn new(config: LimitsConfig) -> Self {
        Self {
            config,
            rates: Buckets::default(),
            tenant_slots: Slots::default(),
            service_slots: Slots::default(),
        }
    }

    /// Admits a call of `tenant`/`subject` to `service` at `now`, or says which limit refuses it.
    pub fn admit(
        &self,
        service: &str,
        tenant: &Tenant,
        subject: Option<&Subject>,
        now: Instant,
    ) -> Result<Admitted, Refusal> {
        let c = &self.config;
        self.rates
            .take(
                service,
                tenant.as_str(),
                c.tenant_calls_per_sec,
                c.tenant_burst,
                now,
            )
            .map_err(|retry_after| Refusal {
                limit: Limit::TenantRate,
                message: format!(
                    "tenant {tenant} is over its limit of {} calls per second to {service}",
                    c.tenant_calls_per_sec
                ),
                retry_after,
            })?;
        if let Some(subject) = subject {
            // Subjects are per tenant: the same client id at two tenants is two callers.
            let who = format!("{tenant}\u{0}{subject}");
            self.rates
                .take(service, &who, c.subject_calls_per_sec, c.subject_burst, now)
                .map_err(|retry_after| Refusal {
                    limit: Limit::SubjectRate,
                    message: format!(
                        "caller {subject} of tenant {tenant} is over its limit of {} calls per \
                         second to {service}",
                        c.subject_calls_per_sec
                    ),
                    retry_after,
                })?;
        }
        let tenant_slot = self
            .tenant_slots
            .acquire(service, tenant.as_str(), c.tenant_max_concurrent_calls)
            .map_err(|()| Refusal {
                limit: Limit::TenantConcurrency,
                message: format!(
                    "tenant {tenant} already has {} calls running in {service}",
                    c.tenant_max_concurrent_calls
                ),
                retry_after: CONCURRENCY_RETRY_HINT,
            })?;
        let service_slot = self
            .service_slots
            .acquire(service, "", c.max_concurrent_calls)
            .map_err(|()| Refusal {
                limit: Limit::ServiceConcurrency,
                message: format!(
                    "{service} already runs {} calls, its limit",
                    c.max_concurrent_calls
                ),
                retry_after: CONCURRENCY_RETRY_HINT,
            })?;
        Ok(Admitted {
            _tenant: tenant_slot,
            _service: service_slot,
        })
    }
}

/// Tower layer applying a [`Limiter`] to every call that is not exempt from auth.
#[derive(Clone, Debug)]
pub struct LimitLayer {
    limiter: Arc<Limiter>,
    refused: Counter<u64>,
}

impl LimitLayer {
    /// Builds the layer and reports the configured limits as the `medbill_limit` gauge.
    pub fn new(config: LimitsConfig) -> Self {
        let meter = opentelemetry::global::meter(METER_NAME);
        let pairs = config.as_pairs();
        // The callback lives as long as the meter provider; one per server is a handful of values.
        let _gauge = meter
            .u64_observable_gauge("medbill.limit")
            .with_description("Configured per-service call limits (0 = off), by limit.")
            .with_callback(move |observer| {
                for (name, value) in pairs {
                    observer.observe(u64::from(value), &[KeyValue::new("limit", name)]);
                }
            })
            .build();
        Self {
            limiter: Arc::new(Limiter::new(config)),
            refused: meter
                .u64_counter("medbill.rpc.limited")
                .with_description("Calls refused with RESOURCE_EXHAUSTED by a limit, by service, tenant and limit.")
                .with_unit("{call}")
                .build(),
        }
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = LimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LimitService {
            inner,
            layer: self.clone(),
        }
    }
}

/// Service produced by [`LimitLayer`].
#[derive(Clone, Debug)]
pub struct LimitService<S> {
    inner: S,
    layer: LimitLayer,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for LimitService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let path = req.uri().path();
        let tenant = req.extensions().get::<Tenant>();
        let (true, Some(tenant)) = (!is_exempt(path), tenant) else {
            return Box::pin(self.inner.call(req));
        };
        let service = split_path(path).0.to_owned();
        let subject = req.extensions().get::<Subject>();
        match self
            .layer
            .limiter
            .admit(&service, tenant, subject, Instant::now())
        {
            Ok(admitted) => {
                let call = self.inner.call(req);
                Box::pin(async move {
                    let response = call.await;
                    drop(admitted);
                    response
                })
            }
            Err(refusal) => {
                self.layer.refused.add(
                    1,
                    &[
                        KeyValue::new("rpc.service", service),
                        KeyValue::new("tenant", tenant.as_str().to_owned()),
                        KeyValue::new("limit", refusal.limit.as_str()),
                    ],
                );
                tracing::warn!(
                    path,
                    tenant = tenant.as_str(),
                    limit = refusal.limit.as_str(),
                    "call refused: over a limit"
                );
                let response = Status::from(refusal).into_http::<ResBody>();
                Box::pin(futures::future::ready(Ok(response)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVC: &str = "medbill.claims.v1.ClaimsService";

    fn limits(rate: u32, burst: u32) -> LimitsConfig {
        LimitsConfig {
            tenant_calls_per_sec: rate,
            tenant_burst: burst,
            ..LimitsConfig::unlimited()
        }
    }

    #[test]
    fn a_tenant_gets_its_burst_then_is_refused_with_a_hint_and_recovers_at_its_rate() {
        let limiter = Limiter::new(limits(10, 3));
        let a = Tenant::new("clinic-a");
        let start = Instant::now();
        for _ in 0..3 {
            limiter.admit(SVC, &a, None, start).unwrap();
        }
        let refused = limiter.admit(SVC, &a, None, start).unwrap_err();
        assert_eq!(refused.limit, Limit::TenantRate);
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        assert!(refused.message.contains("clinic-a"), "{}", refused.message);
        assert!(refused.message.contains("10 calls per second"));

        // Another tenant and another service are not affected.
        limiter
            .admit(SVC, &Tenant::new("clinic-b"), None, start)
            .unwrap();
        limiter
            .admit("medbill.eligibility.v1.EligibilityService", &a, None, start)
            .unwrap();

        // A tenth of a second later one call's worth has been refilled, and only one.
        let later = start + Duration::from_millis(100);
        limiter.admit(SVC, &a, None, later).unwrap();
        assert!(limiter.admit(SVC, &a, None, later).is_err());
        // After a quiet second the burst is back, not more.
        let quiet = later + Duration::from_secs(5);
        for _ in 0..3 {
            limiter.admit(SVC, &a, None, quiet).unwrap();
        }
        assert!(limiter.admit(SVC, &a, None, quiet).is_err());
    }

    #[test]
    fn subjects_are_limited_within_their_tenant() {
        let limiter = Limiter::new(LimitsConfig {
            subject_calls_per_sec: 1,
            subject_burst: 2,
            ..LimitsConfig::unlimited()
        });
        let a = Tenant::new("clinic-a");
        let clerk = Subject::new("clerk");
        let now = Instant::now();
        limiter.admit(SVC, &a, Some(&clerk), now).unwrap();
        limiter.admit(SVC, &a, Some(&clerk), now).unwrap();
        let refused = limiter.admit(SVC, &a, Some(&clerk), now).unwrap_err();
        assert_eq!(refused.limit, Limit::SubjectRate);
        assert!(refused.message.contains("clerk"));
        // Another subject of the same tenant, and the same subject name at another tenant, pass.
        limiter
            .admit(SVC, &a, Some(&Subject::new("biller")), now)
            .unwrap();
        limiter
            .admit(SVC, &Tenant::new("clinic-b"), Some(&clerk), now)
            .unwrap();
    }

    #[test]
    fn concurrency_slots_are_held_while_admitted_and_freed_on_drop() {
        let limiter = Limiter::new(LimitsConfig {
            tenant_max_concurrent_calls: 2,
            max_concurrent_calls: 3,
            ..LimitsConfig::unlimited()
        });
        let (a, b) = (Tenant::new("clinic-a"), Tenant::new("clinic-b"));
        let now = Instant::now();
        let first = limiter.admit(SVC, &a, None, now).unwrap();
        let _second = limiter.admit(SVC, &a, None, now).unwrap();
        let refused = limiter.admit(SVC, &a, None, now).unwrap_err();
        assert_eq!(refused.limit, Limit::TenantConcurrency);
        assert_eq!(refused.retry_after, CONCURRENCY_RETRY_HINT);

        // The service has one slot left: b takes it, then the service is full for everyone.
        let _third = limiter.admit(SVC, &b, None, now).unwrap();
        let full = limiter.admit(SVC, &b, None, now).unwrap_err();
        assert_eq!(full.limit, Limit::ServiceConcurrency);

        drop(first);
        limiter.admit(SVC, &a, None, now).unwrap();
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let limiter = Limiter::new(LimitsConfig::unlimited());
        let a = Tenant::new("clinic-a");
        let now = Instant::now();
        let held: Vec<_> = (0..10_000)
            .map(|_| {
                limiter
                    .admit(SVC, &a, Some(&Subject::new("s")), now)
                    .unwrap()
            })
            .collect();
        assert_eq!(held.len(), 10_000);
    }

    #[test]
    fn idle_buckets_are_swept_when_the_table_is_large() {
        let limiter = Limiter::new(limits(1_000, 1));
        let start = Instant::now();
        for i in 0..TABLE_SWEEP_AT {
            limiter
                .admit(SVC, &Tenant::new(format!("t{i}")), None, start)
                .unwrap();
        }
        assert_eq!(limiter.rates.lock().len(), TABLE_SWEEP_AT);
        // A second later every bucket is full again and can be forgotten.
        limiter
            .admit(
                SVC,
                &Tenant::new("new"),
                None,
                start + Duration::from_secs(1),
            )
            .unwrap();
        assert_eq!(limiter.rates.lock().len(), 1);
    }

    #[test]
    fn refusals_become_resource_exhausted_with_a_pushback_trailer() {
        let status = Status::from(Refusal {
            limit: Limit::TenantRate,
            message: "tenant x is over its limit".into(),
            retry_after: Duration::from_millis(250),
        });
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "tenant x is over its limit; retry after 250 ms"
        );
        assert_eq!(
            status.metadata().get("grpc-retry-pushback-ms").unwrap(),
            "250"
        );
    }
}
