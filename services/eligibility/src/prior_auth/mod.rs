//! Prior authorizations (X12 278): a validated request becomes the stored
//! [`pb::PriorAuthorization`] (PENDING), which is written as a 278 request, sent over the payer's
//! route and updated from the payer's 278 response. A pended authorization is asked about again
//! with a 278 inquiry quoting the payer's reference (REF*NT), by RefreshPriorAuthorization or by
//! the background [`poller`]. Every exchange is kept with its raw X12; a failed one (payer down,
//! unreadable answer) is kept as FAILED and the call answers UNAVAILABLE.
//!
//! - [`rpc`]: RequestPriorAuthorization, GetPriorAuthorization, ListPriorAuthorizations,
//!   RefreshPriorAuthorization;
//! - [`store`]: the two tables; [`poller`]: the background refresh of pended ones.

pub mod poller;
pub mod rpc;
pub mod store;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use medbill_connect::PayloadType;
use medbill_domain::{TenantId, parse_iso_date};
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as pb;
use medbill_runtime::fields::timestamp;
use medbill_x12::Document;
use medbill_x12::model::claim::Procedure;
use medbill_x12::model::eligibility::Trace;
use medbill_x12::model::review::{
    ReviewEvent, ReviewKind, ReviewLevel, ReviewProvider, ReviewService, ServicesReview,
};
use medbill_x12::model::{DateRange, PartyName, PersonName, TransactionHeader};
use medbill_x12::transactions::review278::read_278;
use medbill_x12::write::{Separators, review_interchange};
use rust_decimal::Decimal;
use tonic::Status;

use crate::checks::Checks;
use crate::exchange::follow_up_text;
use crate::model::Coverage;
use crate::payer::{self, ControlNumbers, Parties};
use crate::store::EligibilityStore;
use store::{NewExchange, PriorAuthStore};

/// The prior authorization engine shared by the RPCs and the poller.
pub struct PriorAuths {
    checks: Arc<Checks>,
    coverages: Arc<dyn EligibilityStore>,
    store: PriorAuthStore,
    control: ControlNumbers,
}

impl std::fmt::Debug for PriorAuths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PriorAuths").finish_non_exhaustive()
    }
}

/// One exchange with the payer: the exchange to keep, and the failure when there is one.
struct Exchanged {
    exchange: NewExchange,
    failure: Option<(String, Status)>,
}

impl PriorAuths {
    /// Builds the engine over the eligibility checks' connections, settings and coverage cache.
    pub fn new(
        checks: Arc<Checks>,
        coverages: Arc<dyn EligibilityStore>,
        store: PriorAuthStore,
    ) -> Self {
        Self {
            checks,
            coverages,
            store,
            control: ControlNumbers::default(),
        }
    }

    /// Returns the store.
    pub fn store(&self) -> &PriorAuthStore {
        &self.store
    }

    /// Sends `a` (a request, or an inquiry when `inquiry`) and applies the payer's answer to it.
    /// A failure leaves `a` as it was and says why.
    async fn exchange(
        &self,
        a: &mut pb::PriorAuthorization,
        coverage: &Coverage,
        inquiry: bool,
    ) -> Result<Exchanged, Status> {
        let kind = if inquiry {
            ReviewKind::Inquiry
        } else {
            ReviewKind::Request
        };
        let review = review_of(a, coverage, kind)?;
        let ids = self.checks.settings().payer_ids(&a.payer_id);
        let parties = Parties {
            sender_id: ids.sender_id,
            receiver_id: ids.receiver_id,
        };
        let now = payer::now();
        let envelope = payer::envelope(&parties, self.control.next(), now);
        let raw = review_interchange(Separators::default(), &envelope, &review).map_err(|e| {
            Status::invalid_argument(format!("the request cannot be written as an X12 278: {e}"))
        })?;
        let connection = self
            .checks
            .connections()
            .get(&a.payer_id)
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        let mut exchange = NewExchange {
            kind: if inquiry { "INQUIRY" } else { "REQUEST" },
            outcome: pb::PriorAuthorizationStatus::Failed,
            error_message: None,
            raw_request: raw.clone().into_bytes(),
            raw_response: None,
            payer_attempts: 0,
            created_at: now.timestamp_micros(),
        };
        let subject = format!("prior authorization {}", a.id);
        let answered = connection
            .exchange(PayloadType::X12_278_REQUEST, Bytes::from(raw))
            .await;
        let failure = match answered {
            Err(e) => {
                exchange.payer_attempts = e.attempts();
                Some(payer::failure(&subject, &a.payer_id, &e))
            }
            Ok(response) => {
                exchange.payer_attempts = response.attempts;
                exchange.raw_response = Some(response.payload.to_vec());
                match read_answer(&response.payload, &review) {
                    Ok(answer) => {
                        apply(a, &answer, payer::now());
                        exchange.outcome = a.status();
                        None
                    }
                    Err(message) => {
                        let message = format!("payer {}: {message}", a.payer_id);
                        let status = Status::unavailable(format!(
                            "{subject}: {message} (the exchange is kept for audit)"
                        ));
                        Some((message, status))
                    }
                }
            }
        };
        if let Some((message, _)) = &failure {
            exchange.error_message = Some(message.clone());
        }
        Ok(Exchanged { exchange, failure })
    }

    /// Asks the payer again about an undecided authorization and stores what it answers (the
    /// poller's path: no idempotency key). Returns the authorization as it now stands.
    pub async fn refresh_now(
        &self,
        tenant: &TenantId,
        mut a: pb::PriorAuthorization,
    ) -> Result<pb::PriorAuthorization, Status> {
        let coverage = self.coverage_of(tenant, &a).await?;
        let Exchanged { exchange, failure } = self.exchange(&mut a, &coverage, true).await?;
        let db = self.store.database();
        let mut tx = db
            .begin()
            .await
            .map_err(medbill_runtime::ServiceError::from)?;
        let written = match &failure {
            Some(_) => {
                self.store
                    .add_exchange(&mut tx, tenant, &a.id, &exchange)
                    .await
            }
            None => self.store.update(&mut tx, tenant, &a, &exchange).await,
        };
        written.map_err(medbill_runtime::ServiceError::from)?;
        tx.commit()
            .await
            .map_err(medbill_runtime::ServiceError::from)?;
        match failure {
            Some((_, status)) => Err(status),
            None => Ok(a),
        }
    }

    async fn coverage_of(
        &self,
        tenant: &TenantId,
        a: &pb::PriorAuthorization,
    ) -> Result<Arc<Coverage>, Status> {
        self.checks
            .coverage(&self.coverages, tenant, &a.coverage_id)
            .await
    }
}

/// Builds the 278 for an authorization: the request it stands for, or an inquiry quoting its
/// payer reference.
fn review_of(
    a: &pb::PriorAuthorization,
    coverage: &Coverage,
    kind: ReviewKind,
) -> Result<ServicesReview, Status> {
    let f = &coverage.fields;
    let date = |field: &str, raw: &str| {
        parse_iso_date(raw).map_err(|e| Status::internal(format!("stored {field}: {e}")))
    };
    let range = |r: Option<&common::ServiceDateRange>| -> Result<Option<DateRange>, Status> {
        let Some(r) = r.filter(|r| !r.from_date.is_empty()) else {
            return Ok(None);
        };
        let from = date("from_date", &r.from_date)?;
        let to = match r.to_date.as_str() {
            "" => None,
            raw => Some(date("to_date", raw)?).filter(|to| *to != from),
        };
        Ok(Some(DateRange { from, to }))
    };
    let requester = a.requesting_provider.clone().unwrap_or_default();
    let trace = a.trace_number.clone();
    let created = a
        .created_at
        .as_ref()
        .and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, 0))
        .unwrap_or_else(Utc::now);
    let event_dates = range(a.requested_dates.as_ref())?;
    let mut services = Vec::with_capacity(a.services.len());
    for s in &a.services {
        let p = s.procedure.clone().unwrap_or_default();
        services.push(ReviewService {
            traces: Vec::new(),
            request_category: "HS".into(),
            certification_type: a.certification_type.clone(),
            decision: None,
            dates: range(s.requested_dates.as_ref())?.or(event_dates),
            revenue_code: None,
            procedure: Procedure {
                qualifier: if p.qualifier.is_empty() {
                    "HC".into()
                } else {
                    p.qualifier
                },
                code: p.code,
                modifiers: p.modifiers,
            },
            units: Decimal::from_str_exact(&s.requested_units)
                .map_err(|e| Status::internal(format!("stored requested_units: {e}")))?,
            certified_units: None,
        });
    }
    let servicing = a.servicing_provider.as_ref().map(|p| ReviewProvider {
        entity: if p.organization_name.is_empty() {
            "SJ".into()
        } else {
            "FA".into()
        },
        name: provider_name(p),
        npi: p.npi.clone(),
    });
    Ok(ServicesReview {
        kind,
        header: TransactionHeader {
            reference: trace.clone(),
            created_date: created.date_naive(),
            created_time: created.time(),
        },
        payer_name: f.payer_name.clone(),
        payer_id: f.payer_id.clone(),
        requester_name: provider_name(&requester),
        requester_npi: requester.npi.clone(),
        subscriber_name: PersonName::new(
            f.subscriber_last_name.clone(),
            f.subscriber_first_name.clone(),
        ),
        member_id: f.member_id.clone(),
        subscriber_birth_date: Some(f.subscriber_birth_date),
        rejections: Vec::new(),
        event: Some(ReviewEvent {
            traces: vec![Trace {
                kind: "1".into(),
                number: trace,
                originator: Some(crate::settings::DEFAULT_ORIGINATOR.to_owned()),
            }],
            request_category: "HS".into(),
            certification_type: a.certification_type.clone(),
            service_type: a.service_type_code.clone(),
            place_of_service: medbill_runtime::fields::non_empty(&a.place_of_service),
            level_of_service: None,
            decision: None,
            reference: (kind == ReviewKind::Inquiry).then(|| a.payer_reference.clone()),
            event_dates,
            diagnoses: a.diagnoses.clone(),
            notes: medbill_runtime::fields::non_empty(&a.notes),
            provider: servicing,
            services,
        }),
    })
}

fn provider_name(p: &common::ProviderRef) -> PartyName {
    if !p.organization_name.is_empty() {
        return PartyName::organization(p.organization_name.clone());
    }
    let n = p.person_name.clone().unwrap_or_default();
    PartyName::Person(PersonName {
        last: n.last_name,
        first: medbill_runtime::fields::non_empty(&n.first_name),
        middle: medbill_runtime::fields::non_empty(&n.middle_name),
        suffix: medbill_runtime::fields::non_empty(&n.suffix),
    })
}

/// Reads the payer's answer and checks that it answers `asked`. Messages carry no PHI.
fn read_answer(payload: &[u8], asked: &ServicesReview) -> Result<ServicesReview, String> {
    let doc = Document::parse(payload);
    if let Some(problem) = doc.problems.iter().find(|p| p.is_error()) {
        return Err(format!(
            "the answer is not a well-formed X12 interchange: {problem}"
        ));
    }
    let mut found = Vec::new();
    for (_, _, set) in doc.sets() {
        let id = set.set_id();
        if id == "278" {
            let parsed = read_278(set);
            if let Some(problem) = parsed.problems.iter().find(|p| p.is_error()) {
                return Err(format!("the 278 response cannot be read: {problem}"));
            }
            let answer = parsed.value;
            if answer.kind != ReviewKind::Response {
                return Err("the payer sent a 278 that is not a response (BHT02 is not 11)".into());
            }
            if answer.event.is_some() && answer.trace_number() != asked.trace_number() {
                return Err(format!(
                    "the 278 does not answer this request: it echoes trace number {:?}",
                    answer.trace_number().unwrap_or_default()
                ));
            }
            if !answer.member_id.eq_ignore_ascii_case(&asked.member_id) {
                return Err(
                    "the 278 does not answer this request: it is about another member".into(),
                );
            }
            if answer.event.as_ref().is_some_and(|e| {
                e.services.len() != asked.event.as_ref().map_or(0, |a| a.services.len())
            }) {
                return Err("the 278 does not answer every service asked about".into());
            }
            return Ok(answer);
        }
        found.push(id.to_owned());
    }
    if found.iter().any(|f| f == "999") {
        return Err("the payer refused the 278 with a 999 acknowledgment".into());
    }
    Err(format!(
        "the answer holds no 278 (found: {})",
        if found.is_empty() {
            "nothing".to_owned()
        } else {
            found.join(", ")
        }
    ))
}

/// Maps HCR01 to the status.
fn status_of_action(action: &str) -> pb::PriorAuthorizationStatus {
    use pb::PriorAuthorizationStatus as S;
    match action {
        "A1" => S::Approved,
        "A2" => S::PartiallyApproved,
        "A3" => S::Denied,
        // CT (contact payer) is undecided as well: a person must act or ask again.
        "A4" | "CT" => S::Pended,
        "A6" => S::Modified,
        "C" => S::Cancelled,
        "NA" => S::NotRequired,
        _ => S::Failed,
    }
}

fn iso(d: chrono::NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn range_to_proto(r: Option<DateRange>) -> Option<common::ServiceDateRange> {
    r.map(|r| common::ServiceDateRange {
        from_date: iso(r.from),
        to_date: iso(r.to.unwrap_or(r.from)),
    })
}

/// Applies the payer's response to the authorization.
fn apply(a: &mut pb::PriorAuthorization, answer: &ServicesReview, now: DateTime<Utc>) {
    a.rejections = answer
        .rejections
        .iter()
        .map(|r| {
            let code = r.follow_up.clone().unwrap_or_default();
            pb::AaaRejection {
                level: match r.level {
                    ReviewLevel::Payer => pb::RejectionLevel::InformationSource,
                    ReviewLevel::Requester => pb::RejectionLevel::InformationReceiver,
                    ReviewLevel::Subscriber => pb::RejectionLevel::Subscriber,
                    ReviewLevel::Event => pb::RejectionLevel::PatientEvent,
                    ReviewLevel::Service => pb::RejectionLevel::Service,
                } as i32,
                valid_request: r.valid_request,
                reason_code: r.reason.clone(),
                description: r.description.clone().unwrap_or_default(),
                follow_up_action: follow_up_text(&code).to_owned(),
                follow_up_action_code: code,
            }
        })
        .collect();
    a.updated_at = Some(timestamp(now));
    let decision = answer.event.as_ref().and_then(|e| e.decision.as_ref());
    let Some(decision) = decision else {
        a.status = pb::PriorAuthorizationStatus::Failed as i32;
        let codes: Vec<&str> = answer
            .rejections
            .iter()
            .map(|r| r.reason.as_str())
            .collect();
        a.error_message = if codes.is_empty() {
            "the payer answered without a decision".into()
        } else {
            format!("the payer rejected the request (AAA {})", codes.join(", "))
        };
        return;
    };
    let event = answer.event.as_ref();
    let status = status_of_action(&decision.action);
    a.status = status as i32;
    a.action_code = decision.action.clone();
    a.error_message.clear();
    let certifies = matches!(decision.action.as_str(), "A1" | "A2" | "A6");
    a.authorization_number = if certifies {
        decision.authorization_number.clone().unwrap_or_default()
    } else {
        String::new()
    };
    a.decision_reason_code = decision.reason.clone().unwrap_or_default();
    a.decision_reason = event.and_then(|e| e.notes.clone()).unwrap_or_default();
    a.certified_dates = if certifies {
        range_to_proto(decision.certified)
    } else {
        None
    };
    a.payer_reference = event
        .and_then(|e| e.reference.clone())
        .unwrap_or_else(|| a.payer_reference.clone());
    a.decided_at = (status != pb::PriorAuthorizationStatus::Pended).then(|| timestamp(now));
    if let Some(e) = event {
        for (s, answered) in a.services.iter_mut().zip(&e.services) {
            let d = answered.decision.as_ref();
            s.action_code = d.map(|d| d.action.clone()).unwrap_or_default();
            s.decision_reason_code = d.and_then(|d| d.reason.clone()).unwrap_or_default();
            s.approved_units = answered
                .certified_units
                .map(|u| u.normalize().to_string())
                .unwrap_or_default();
            s.certified_dates = range_to_proto(d.and_then(|d| d.certified));
        }
    }
}
