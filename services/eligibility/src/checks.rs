//! CheckEligibility on the idempotency path (`medbill_runtime::idempotent`): validate the
//! question, ask the key first (a retry gets its first response, a reused key is refused,
//! whatever the cache holds), answer from the cache when a fresh answer exists, otherwise send
//! one 270 per distinct question in flight, read the 271 and commit the exchange (the audit row)
//! with the key; usable answers are cached. Every answer, cached or shared included, is
//! committed under the caller's key before it is given, so one key always means one request.
//!
//! A failed exchange (payer down or refusing, timeout, unusable 271) is kept as a FAILED check
//! for audit, in a transaction of its own that does not record the key: the failure is the
//! payer's, not the request's, so a retry with the same key asks the payer again. Failures are
//! never cached.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use chrono::{NaiveDate, Utc};
use medbill_connect::{Connections, PayloadType};
use medbill_domain::{CoverageId, EligibilityCheckId, Npi, TenantId};
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{date, identifier};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use medbill_x12::model::PersonName;
use tonic::{Code, Status};

use crate::cache::{AnswerCache, CacheKey, SingleFlight};
use crate::exchange::{AnswerError, Parties, Question, build_270, read_answer};
use crate::mapping::answer_to_proto;
use crate::model::{BenefitSummary, CheckStatus, Coverage, EligibilityCheck, StoredCheck};
use crate::payer::{self, ControlNumbers, now};
use crate::service::{birth_date, x12_identifier};
use crate::settings::{EligibilitySettings, Provider};
use crate::store::EligibilityStore;

/// Characters that cannot appear in X12 values we write (the default separators) or in names.
const X12_RESERVED: &[char] = &['*', '~', '^', ':', '|'];

/// Most coverages kept in memory (coverages never change once created).
const MAX_CACHED_COVERAGES: usize = 100_000;

/// Times a call starts over when the identical call it shared could not record its answer.
const MAX_ROUNDS: usize = 3;

/// Longest payer id, in characters (270 NM1*PR NM109).
const MAX_PAYER_ID_LEN: usize = 80;

/// What an identical call in flight shares with the calls waiting on it.
#[derive(Clone)]
enum Flight {
    /// The payer answered and the check is committed under the running call's key.
    Answered(Arc<EligibilityCheck>),
    /// The exchange failed (kept as a FAILED check, no key recorded): everyone gets this status.
    Failed(Status),
    /// The running call's key already held a request, so its exchange was not recorded and
    /// cannot be shared: the running call answers with what its key holds (inside), the
    /// waiting calls start over.
    KeyTaken(Box<Result<pb::CheckEligibilityResponse, Status>>),
}

/// The eligibility-check engine shared by all calls of one service.
pub struct Checks {
    connections: Connections,
    settings: EligibilitySettings,
    cache: AnswerCache,
    flight: SingleFlight<Flight>,
    coverages: RwLock<HashMap<(String, String), Arc<Coverage>>>,
    control: ControlNumbers,
}

impl std::fmt::Debug for Checks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checks")
            .field("payers", &self.connections.payer_ids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Who is asked about, before the provider and dates are added.
struct Subject {
    coverage_id: Option<CoverageId>,
    patient_ref: Option<String>,
    payer_id: String,
    payer_name: String,
    member_id: String,
    subscriber_name: PersonName,
    subscriber_birth_date: Option<NaiveDate>,
    dependent: Option<(PersonName, NaiveDate)>,
}

/// Everything one payer call needs.
#[derive(Clone)]
struct Call {
    tenant: TenantId,
    idempotent: IdempotentCall,
    question: Question,
    coverage_id: Option<CoverageId>,
    patient_ref: Option<String>,
}

impl Checks {
    /// Builds the engine over the payer connections and settings.
    pub fn new(connections: Connections, settings: EligibilitySettings) -> Self {
        let cache = AnswerCache::new(settings.cache_ttl, settings.cache_max_entries);
        Self {
            connections,
            settings,
            cache,
            flight: SingleFlight::default(),
            coverages: RwLock::new(HashMap::new()),
            control: ControlNumbers::default(),
        }
    }

    /// Returns the settings in force.
    pub fn settings(&self) -> &EligibilitySettings {
        &self.settings
    }

    /// Returns the payer connections.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    fn next_control(&self) -> u32 {
        self.control.next()
    }

    /// Answers one CheckEligibility call.
    pub async fn check(
        &self,
        store: &Arc<dyn EligibilityStore>,
        tenant: &TenantId,
        req: &pb::CheckEligibilityRequest,
    ) -> Result<pb::CheckEligibilityResponse, Status> {
        let idempotent = IdempotentCall::of(req)?;
        let subject = self.subject(store, tenant, req).await?;
        let date_of_service = match req.date_of_service.as_str() {
            "" => Utc::now().date_naive(),
            raw => date("date_of_service", raw)?,
        };
        let service_types = service_types(&req.service_type_codes)?;
        let provider = self.provider(tenant, "provider", req.provider.as_ref())?;
        let question = Question {
            payer_id: subject.payer_id,
            payer_name: subject.payer_name,
            member_id: subject.member_id,
            subscriber_name: subject.subscriber_name,
            subscriber_birth_date: subject.subscriber_birth_date,
            dependent: subject.dependent,
            provider_npi: provider.npi,
            provider_name: provider.name,
            originator: provider.originator,
            date_of_service,
            service_types,
        };
        let cache_key = CacheKey {
            tenant: tenant.as_str().to_owned(),
            payer_id: question.payer_id.clone(),
            member_id: question.member_id.to_ascii_uppercase(),
            dependent: question.dependent.as_ref().map(|(name, birth)| {
                format!(
                    "{}|{}|{}",
                    name.last,
                    name.first.as_deref().unwrap_or_default(),
                    birth
                )
            }),
            date_of_service,
            service_types: question.service_types.clone(),
        };

        let call = Call {
            tenant: tenant.clone(),
            idempotent,
            question,
            coverage_id: subject.coverage_id,
            patient_ref: subject.patient_ref,
        };
        let db = store.database();
        for _ in 0..MAX_ROUNDS {
            // The key decides before the cache answers: a cached answer is recorded under the key
            // in the same step that checks it (a retry gets its first answer, a reused key is
            // refused), and a miss asks the key before the payer is asked.
            if !req.force_refresh
                && let Some(hit) = self.cache.get(&cache_key)
            {
                return reuse(store, &call, &hit).await;
            }
            if let Some(first) = call.idempotent.replayed(db, tenant).await? {
                return Ok(first);
            }
            let (outcome, ran) = self
                .flight
                .run(&cache_key, || {
                    self.ask_payer(store, call.clone(), cache_key.clone())
                })
                .await;
            match outcome {
                Flight::Answered(check) if ran => return Ok(answer(&check, false)),
                // Another identical call made the payer call; this one shares its answer.
                Flight::Answered(check) => return reuse(store, &call, &check).await,
                Flight::Failed(status) => return Err(status),
                Flight::KeyTaken(own) if ran => return *own,
                // The call this one waited on was not recorded: start over, key first.
                Flight::KeyTaken(_) => {}
            }
        }
        Err(Status::unavailable(
            "eligibility check could not be completed because concurrent calls kept colliding; retry the call",
        ))
    }

    /// Sends the 270, reads the 271, commits the exchange under the call's key and caches a
    /// usable answer; a failed exchange is kept without the key.
    async fn ask_payer(
        &self,
        store: &Arc<dyn EligibilityStore>,
        call: Call,
        cache_key: CacheKey,
    ) -> Flight {
        match self.exchange(store, call, cache_key).await {
            Ok(flight) => flight,
            Err(status) => Flight::Failed(status),
        }
    }

    async fn exchange(
        &self,
        store: &Arc<dyn EligibilityStore>,
        call: Call,
        cache_key: CacheKey,
    ) -> Result<Flight, Status> {
        let id = EligibilityCheckId::new();
        let trace = id.as_uuid().simple().to_string();
        let q = &call.question;
        let parties: Parties = {
            let ids = self.settings.payer_ids(&q.payer_id);
            Parties {
                sender_id: ids.sender_id,
                receiver_id: ids.receiver_id,
            }
        };
        let raw_270 =
            build_270(q, &trace, &parties, self.next_control(), Utc::now()).map_err(|e| {
                ServiceError::invalid_argument(
                    "subject",
                    format!("cannot be written as an X12 270: {e}"),
                )
            })?;
        let connection = self
            .connections
            .get(&q.payer_id)
            .map_err(|e| ServiceError::FailedPrecondition(e.to_string()))?;
        let mut check = EligibilityCheck {
            id,
            coverage_id: call.coverage_id,
            patient_ref: call.patient_ref.clone(),
            payer_id: q.payer_id.clone(),
            member_id: q.member_id.clone(),
            provider_npi: q.provider_npi.clone(),
            date_of_service: q.date_of_service,
            service_type_codes: q.service_types.clone(),
            status: CheckStatus::Pending,
            summary: None,
            benefits: Vec::new(),
            rejections: Vec::new(),
            subscriber: None,
            dependent: None,
            trace_number: trace.clone(),
            error_message: None,
            raw_request: raw_270.clone().into_bytes(),
            raw_response: Vec::new(),
            created_at: now(),
            responded_at: None,
        };
        let exchanged = connection
            .exchange(PayloadType::X12_270_REQUEST, Bytes::from(raw_270))
            .await;
        let (attempts, failure) = match exchanged {
            Err(e) => {
                let attempts = e.attempts();
                (
                    attempts,
                    Some(payer::failure(
                        &format!("eligibility check {id}"),
                        &q.payer_id,
                        &e,
                    )),
                )
            }
            Ok(response) => {
                check.responded_at = Some(now());
                check.raw_response = response.payload.to_vec();
                match read_answer(&response.payload, q, &trace) {
                    Ok(answer) => {
                        check.status = answer.status;
                        check.summary = Some(answer.summary);
                        check.benefits = answer.benefits;
                        check.rejections = answer.rejections;
                        check.subscriber = answer.subscriber;
                        check.dependent = answer.dependent;
                        (response.attempts, None)
                    }
                    Err(e) => (
                        response.attempts,
                        Some(answer_failure(&id, &q.payer_id, &e)),
                    ),
                }
            }
        };
        if let Some((message, _)) = &failure {
            check.status = CheckStatus::Failed;
            check.error_message = Some(message.clone());
            check.summary = Some(BenefitSummary::unknown());
        }
        let stored = StoredCheck {
            tenant_id: call.tenant.clone(),
            idempotency_key: call.idempotent.key().clone(),
            payer_attempts: attempts,
            check,
        };
        let db = store.database();
        if let Some((_, status)) = failure {
            // Kept for audit in a transaction of its own, without the key: the call answers
            // with an error, and a retry under the same key must be able to succeed once the
            // payer answers again.
            let mut tx = db.begin().await.map_err(ServiceError::from)?;
            store
                .insert_check(&mut tx, &stored)
                .await
                .map_err(ServiceError::from)?;
            tx.commit().await.map_err(ServiceError::from)?;
            tracing::info!(
                check_id = %id,
                tenant = %call.tenant,
                payer_id = %q.payer_id,
                status = %stored.check.status,
                attempts,
                "eligibility check recorded"
            );
            return Ok(Flight::Failed(status));
        }
        let mut op = match call.idempotent.begin(db, &call.tenant).await {
            Ok(Begun::New(op)) => op,
            // The key already holds a request (a concurrent call with the same key won): this
            // exchange is not recorded, so it is neither cached nor shared.
            Ok(Begun::Replay(first)) => return Ok(Flight::KeyTaken(Box::new(Ok(first)))),
            Err(e) if e.code() == Code::AlreadyExists => {
                return Ok(Flight::KeyTaken(Box::new(Err(e.into()))));
            }
            Err(e) => return Err(e.into()),
        };
        store
            .insert_check(op.tx(), &stored)
            .await
            .map_err(ServiceError::from)?;
        let mut check = stored.check;
        check.raw_request.clear();
        check.raw_response.clear();
        op.commit(&answer(&check, false)).await?;
        tracing::info!(
            check_id = %id,
            tenant = %call.tenant,
            payer_id = %q.payer_id,
            status = %check.status,
            attempts,
            "eligibility check recorded"
        );
        let check = Arc::new(check);
        if check.is_reusable() {
            self.cache.put(cache_key, Arc::clone(&check));
        }
        Ok(Flight::Answered(check))
    }

    /// Resolves the request's subject: a stored coverage or inline subscriber data.
    async fn subject(
        &self,
        store: &Arc<dyn EligibilityStore>,
        tenant: &TenantId,
        req: &pb::CheckEligibilityRequest,
    ) -> Result<Subject, Status> {
        use pb::check_eligibility_request::Subject as S;
        match &req.subject {
            None => Err(ServiceError::invalid_argument(
                "subject",
                "coverage_id or inline subscriber data is required",
            )
            .into()),
            Some(S::CoverageId(raw)) => {
                let coverage = self.coverage(store, tenant, raw).await?;
                let f = &coverage.fields;
                if self.connections.get(&f.payer_id).is_err() {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "coverage {} names payer {:?}, for which no clearinghouse connection is configured",
                        coverage.id, f.payer_id
                    ))
                    .into());
                }
                if let Err(reason) = check_member_id(&f.member_id) {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "coverage {}: member_id {reason}; correct the coverage",
                        coverage.id
                    ))
                    .into());
                }
                Ok(Subject {
                    coverage_id: Some(coverage.id),
                    patient_ref: Some(f.patient_ref.clone()),
                    payer_id: f.payer_id.clone(),
                    payer_name: f.payer_name.clone(),
                    member_id: f.member_id.clone(),
                    subscriber_name: PersonName::new(
                        f.subscriber_last_name.clone(),
                        f.subscriber_first_name.clone(),
                    ),
                    subscriber_birth_date: Some(f.subscriber_birth_date),
                    dependent: None,
                })
            }
            Some(S::Inline(inline)) => self.inline_subject(inline),
        }
    }

    fn inline_subject(&self, s: &pb::InlineSubscriber) -> Result<Subject, Status> {
        let payer_id = x12_identifier("inline.payer_id", &s.payer_id, true, MAX_PAYER_ID_LEN)?
            .unwrap_or_default();
        if self.connections.get(&payer_id).is_err() {
            return Err(ServiceError::invalid_argument(
                "inline.payer_id",
                format!("no clearinghouse connection is configured for payer {payer_id:?}"),
            )
            .into());
        }
        identifier("inline.member_id", &s.member_id, true)?;
        check_member_id(&s.member_id)
            .map_err(|reason| ServiceError::invalid_argument("inline.member_id", reason))?;
        let patient_ref = identifier("inline.patient_ref", &s.patient_ref, false)?;
        let subscriber_name = person("inline.subscriber_name", s.subscriber_name.as_ref(), true)?
            .ok_or_else(|| {
            ServiceError::invalid_argument("inline.subscriber_name", "is required")
        })?;
        let subscriber_birth_date =
            birth_date("inline.subscriber_birth_date", &s.subscriber_birth_date)?;
        let dependent = match person("inline.dependent_name", s.dependent_name.as_ref(), false)? {
            None => None,
            Some(name) => {
                let birth = birth_date("inline.dependent_birth_date", &s.dependent_birth_date)?
                    .ok_or_else(|| {
                        ServiceError::invalid_argument(
                            "inline.dependent_birth_date",
                            "is required with dependent_name",
                        )
                    })?;
                Some((name, birth))
            }
        };
        Ok(Subject {
            coverage_id: None,
            patient_ref,
            payer_name: payer_id.clone(),
            payer_id,
            member_id: s.member_id.clone(),
            subscriber_name,
            subscriber_birth_date,
            dependent,
        })
    }

    /// Returns a coverage, from memory when it was read before (coverages are immutable).
    pub(crate) async fn coverage(
        &self,
        store: &Arc<dyn EligibilityStore>,
        tenant: &TenantId,
        raw: &str,
    ) -> Result<Arc<Coverage>, Status> {
        if raw.is_empty() {
            return Err(ServiceError::invalid_argument("coverage_id", "is required").into());
        }
        let id = CoverageId::parse(raw)
            .map_err(|e| ServiceError::invalid_argument("coverage_id", e.to_string()))?;
        let key = (tenant.as_str().to_owned(), id.to_string());
        if let Some(found) = self
            .coverages
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(Arc::clone(found));
        }
        let coverage = store
            .get_coverage(tenant, &id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("coverage {id}")))?;
        let coverage = Arc::new(coverage);
        let mut map = self.coverages.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_CACHED_COVERAGES {
            map.clear();
        }
        map.insert(key, Arc::clone(&coverage));
        Ok(coverage)
    }

    /// Returns the provider asking: the request's, else the tenant's configured one. A provider
    /// given in the request must carry its NPI; an empty provider message counts as unset.
    pub(crate) fn provider(
        &self,
        tenant: &TenantId,
        field: &str,
        given: Option<&common::ProviderRef>,
    ) -> Result<Provider, Status> {
        match given {
            Some(p) if *p != common::ProviderRef::default() => {
                if p.npi.is_empty() {
                    return Err(ServiceError::invalid_argument(
                        format!("{field}.npi"),
                        format!(
                            "is required when {field} is given; leave {field} unset to use the \
                             tenant's configured provider"
                        ),
                    )
                    .into());
                }
                let npi = Npi::parse(&p.npi).map_err(|e| {
                    ServiceError::invalid_argument(format!("{field}.npi"), e.to_string())
                })?;
                let name = if !p.organization_name.is_empty() {
                    p.organization_name.clone()
                } else if let Some(n) = p.person_name.as_ref().filter(|n| !n.last_name.is_empty()) {
                    n.last_name.clone()
                } else {
                    return Err(ServiceError::invalid_argument(
                        format!("{field}.organization_name"),
                        format!("a provider name is required with {field}.npi"),
                    )
                    .into());
                };
                if name.chars().count() > 60
                    || name.contains(X12_RESERVED)
                    || name.chars().any(char::is_control)
                    || name.trim() != name
                {
                    return Err(ServiceError::invalid_argument(
                        format!("{field}.organization_name"),
                        "must be 1 to 60 characters without X12 separators or control characters",
                    )
                    .into());
                }
                let originator = match self.settings.provider_for(tenant.as_str()) {
                    Some(cfg) => cfg.originator.clone(),
                    None => crate::settings::DEFAULT_ORIGINATOR.to_owned(),
                };
                Ok(Provider {
                    npi: npi.to_string(),
                    name,
                    originator,
                })
            }
            _ => self
                .settings
                .provider_for(tenant.as_str())
                .cloned()
                .ok_or_else(|| {
                    ServiceError::FailedPrecondition(
                        "no provider is configured for this tenant (eligibility.providers or \
                         eligibility.default_provider); pass provider.npi and a name"
                            .to_owned(),
                    )
                    .into()
                }),
        }
    }
}

/// Answers with an earlier check (the cache's, or an identical call's), committed under the
/// caller's key first.
async fn reuse(
    store: &Arc<dyn EligibilityStore>,
    call: &Call,
    check: &EligibilityCheck,
) -> Result<pb::CheckEligibilityResponse, Status> {
    // Nothing changes but the key's record: one statement, no transaction.
    Ok(call
        .idempotent
        .record(store.database(), &call.tenant, answer(check, true))
        .await?)
}

/// Builds the response for a check (raw X12 already cleared); `reused` when it was made for an
/// earlier call.
fn answer(check: &EligibilityCheck, reused: bool) -> pb::CheckEligibilityResponse {
    pb::CheckEligibilityResponse {
        check: Some(answer_to_proto(check, reused)),
    }
}

/// Maps an unusable 271 to the recorded message and the caller's status.
fn answer_failure(id: &EligibilityCheckId, payer: &str, e: &AnswerError) -> (String, Status) {
    let message = format!("payer {payer}: {e}");
    let status = Status::unavailable(format!(
        "eligibility check {id}: {message} (the exchange is kept for audit)"
    ));
    (message, status)
}

/// Checks a member id: 2 to 80 letters, digits or hyphens (payer-specific, PHI: never echoed).
fn check_member_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("is required".to_owned());
    }
    let len = id.chars().count();
    if !(2..=80).contains(&len) {
        return Err(format!("is {len} characters long; 2 to 80 are allowed"));
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("may hold only letters, digits and hyphens".to_owned());
    }
    Ok(())
}

/// Validates service type codes: empty means ["30"]; each 1-2 letters or digits; at most 99.
fn service_types(codes: &[String]) -> Result<Vec<String>, ServiceError> {
    if codes.is_empty() {
        return Ok(vec!["30".to_owned()]);
    }
    if codes.len() > 99 {
        return Err(ServiceError::invalid_argument(
            "service_type_codes",
            "at most 99 codes are allowed",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(codes.len());
    for code in codes {
        if code.is_empty() || code.len() > 2 || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ServiceError::invalid_argument(
                "service_type_codes",
                format!("{code:?} is not an X12 service type code (1 or 2 letters or digits)"),
            ));
        }
        out.push(code.to_ascii_uppercase());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Validates a person's name for the 270 (PHI: never echoed).
fn person(
    field: &str,
    name: Option<&common::PersonName>,
    required: bool,
) -> Result<Option<PersonName>, ServiceError> {
    let Some(n) = name.filter(|n| !n.last_name.is_empty() || !n.first_name.is_empty()) else {
        return if required {
            Err(ServiceError::invalid_argument(field, "is required"))
        } else {
            Ok(None)
        };
    };
    let part = |sub: &str,
                value: &str,
                max: usize,
                needed: bool|
     -> Result<Option<String>, ServiceError> {
        let f = format!("{field}.{sub}");
        if value.is_empty() {
            return if needed {
                Err(ServiceError::invalid_argument(f, "is required"))
            } else {
                Ok(None)
            };
        }
        if value.chars().count() > max {
            return Err(ServiceError::invalid_argument(
                f,
                format!("is longer than {max} characters"),
            ));
        }
        if value.trim() != value
            || value
                .chars()
                .any(|c| c.is_control() || X12_RESERVED.contains(&c))
        {
            return Err(ServiceError::invalid_argument(
                f,
                "has leading or trailing spaces, control characters or X12 separators",
            ));
        }
        Ok(Some(value.to_owned()))
    };
    Ok(Some(PersonName {
        last: part("last_name", &n.last_name, 60, true)?.unwrap_or_default(),
        first: part("first_name", &n.first_name, 35, false)?,
        middle: part("middle_name", &n.middle_name, 25, false)?,
        suffix: part("suffix", &n.suffix, 10, false)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_types_default_sort_and_refuse_junk() {
        assert_eq!(service_types(&[]).ok(), Some(vec!["30".to_owned()]));
        let given = vec!["98".to_owned(), "30".to_owned(), "98".to_owned()];
        assert_eq!(
            service_types(&given).ok(),
            Some(vec!["30".to_owned(), "98".to_owned()])
        );
        assert!(service_types(&["9*".to_owned()]).is_err());
        assert!(service_types(&["123".to_owned()]).is_err());
    }

    #[test]
    fn member_ids_are_checked_without_echo() {
        assert!(check_member_id("W123456789").is_ok());
        let err = check_member_id("W12*45").expect_err("separator");
        assert!(!err.contains("W12"), "{err}");
        assert!(check_member_id("").is_err());
        assert!(check_member_id("X").is_err());
    }
}
