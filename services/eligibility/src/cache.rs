//! The in-memory side of eligibility checks: a time-limited answer cache in front of the
//! database (the database row is the audit record, the cache is what makes a warm check cheap)
//! and single flight, so concurrent identical checks share one payer call.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use tokio::sync::OnceCell;

use crate::model::EligibilityCheck;

const SHARDS: usize = 16;

/// What makes two checks "the same question": tenant, payer, member (and dependent), date of
/// service and the service types asked. Holds PHI; never logged (its `Debug` is redacted).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// Tenant id.
    pub tenant: String,
    /// Payer id.
    pub payer_id: String,
    /// Member id, upper-cased.
    pub member_id: String,
    /// Dependent name and birth date when the patient is a dependent.
    pub dependent: Option<String>,
    /// Date of service.
    pub date_of_service: NaiveDate,
    /// Service type codes, sorted and deduplicated.
    pub service_types: Vec<String>,
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheKey")
            .field("tenant", &self.tenant)
            .field("payer_id", &self.payer_id)
            .field("date_of_service", &self.date_of_service)
            .finish_non_exhaustive()
    }
}

impl CacheKey {
    fn shard(&self) -> usize {
        let mut h = DefaultHasher::new();
        self.hash(&mut h);
        // The modulo keeps the value below SHARDS, so the cast cannot truncate meaningfully.
        (h.finish() % SHARDS as u64) as usize
    }
}

struct Entry {
    expires: Instant,
    check: Arc<EligibilityCheck>,
}

/// A sharded map of answers with a time to live and a size bound.
pub struct AnswerCache {
    shards: Vec<RwLock<HashMap<CacheKey, Entry>>>,
    ttl: Duration,
    max_per_shard: usize,
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl AnswerCache {
    /// Creates an empty cache keeping answers for `ttl`, at most about `max_entries` of them.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            ttl,
            max_per_shard: max_entries.div_ceil(SHARDS).max(1),
        }
    }

    /// Returns the fresh answer for `key`, if any.
    pub fn get(&self, key: &CacheKey) -> Option<Arc<EligibilityCheck>> {
        let shard = self.shards.get(key.shard())?;
        let map = shard.read().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|e| e.expires > Instant::now())
            .map(|e| Arc::clone(&e.check))
    }

    /// Stores an answer for `key` (a zero TTL stores nothing).
    pub fn put(&self, key: CacheKey, check: Arc<EligibilityCheck>) {
        if self.ttl.is_zero() {
            return;
        }
        let Some(shard) = self.shards.get(key.shard()) else {
            return;
        };
        let now = Instant::now();
        let mut map = shard.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max_per_shard {
            map.retain(|_, e| e.expires > now);
            // Still full of fresh answers: drop the ones closest to expiry.
            while map.len() >= self.max_per_shard {
                let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                map.remove(&oldest);
            }
        }
        map.insert(
            key,
            Entry {
                expires: now + self.ttl,
                check,
            },
        );
    }

    /// Returns the number of entries held (fresh or not).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// Reports whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Concurrent identical checks share one payer call: the first caller runs it, the others wait
/// for its outcome (`T`, cloned to each). When the running caller is cancelled, a waiting one
/// takes over.
pub struct SingleFlight<T> {
    in_flight: Mutex<HashMap<CacheKey, Arc<OnceCell<T>>>>,
}

impl<T> Default for SingleFlight<T> {
    fn default() -> Self {
        Self {
            in_flight: Mutex::default(),
        }
    }
}

impl<T> std::fmt::Debug for SingleFlight<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleFlight").finish_non_exhaustive()
    }
}

impl<T: Clone> SingleFlight<T> {
    /// Runs `call` unless an identical one is running, and returns the shared outcome with
    /// `true` when this caller's `call` was the one that ran.
    pub async fn run<F, Fut>(&self, key: &CacheKey, call: F) -> (T, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let cell = {
            let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(map.entry(key.clone()).or_default())
        };
        let mut ran = false;
        let outcome = cell
            .get_or_init(|| {
                ran = true;
                call()
            })
            .await
            .clone();
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            map.remove(key);
        }
        (outcome, ran)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CheckStatus;
    use medbill_domain::EligibilityCheckId;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(member: &str) -> CacheKey {
        CacheKey {
            tenant: "t".into(),
            payer_id: "p".into(),
            member_id: member.into(),
            dependent: None,
            date_of_service: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
            service_types: vec!["30".into()],
        }
    }

    fn check(id: &str) -> Arc<EligibilityCheck> {
        Arc::new(EligibilityCheck {
            id: EligibilityCheckId::parse(id).unwrap_or_else(|_| EligibilityCheckId::new()),
            coverage_id: None,
            patient_ref: None,
            payer_id: "p".into(),
            member_id: "m".into(),
            provider_npi: "1234567893".into(),
            date_of_service: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
            service_type_codes: vec!["30".into()],
            status: CheckStatus::Completed,
            summary: None,
            benefits: Vec::new(),
            rejections: Vec::new(),
            subscriber: None,
            dependent: None,
            trace_number: id.into(),
            error_message: None,
            raw_request: Vec::new(),
            raw_response: Vec::new(),
            created_at: chrono::Utc::now(),
            responded_at: None,
        })
    }

    #[test]
    fn answers_expire_and_keys_differ() {
        let cache = AnswerCache::new(Duration::from_secs(60), 100);
        cache.put(key("A"), check("1"));
        assert_eq!(
            cache.get(&key("A")).map(|c| c.trace_number.clone()),
            Some("1".into())
        );
        assert!(cache.get(&key("B")).is_none());
        let expired = AnswerCache::new(Duration::from_nanos(1), 100);
        expired.put(key("A"), check("1"));
        std::thread::sleep(Duration::from_millis(2));
        assert!(expired.get(&key("A")).is_none());
        let off = AnswerCache::new(Duration::ZERO, 100);
        off.put(key("A"), check("1"));
        assert!(off.is_empty());
    }

    #[test]
    fn the_size_bound_holds() {
        let cache = AnswerCache::new(Duration::from_secs(60), 32);
        for i in 0..500 {
            cache.put(key(&i.to_string()), check("x"));
        }
        assert!(cache.len() <= 32, "{}", cache.len());
    }

    #[tokio::test]
    async fn concurrent_identical_calls_run_once() {
        let flight = Arc::new(SingleFlight::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let flight = Arc::clone(&flight);
            let calls = Arc::clone(&calls);
            tasks.push(tokio::spawn(async move {
                flight
                    .run(&key("A"), || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, String>(check("shared"))
                    })
                    .await
            }));
        }
        let mut leaders = 0;
        for t in tasks {
            let (outcome, ran) = t.await.expect("task");
            assert_eq!(outcome.expect("ok").trace_number, "shared");
            leaders += usize::from(ran);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(leaders, 1);
        // Once finished, the next call runs again (failures and answers are not kept here).
        let (again, ran) = flight
            .run(&key("A"), || async {
                Err::<Arc<EligibilityCheck>, _>("down".to_owned())
            })
            .await;
        assert!(ran);
        assert!(again.is_err());
    }
}
