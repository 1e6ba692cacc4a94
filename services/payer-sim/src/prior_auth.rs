//! 278 requests in, 278 responses out, decided by the catalog's `[prior_authorization]` rules:
//! each service is certified (A1), certified partially (A2), not certified (A3), pended (A4) or
//! needs no authorization (NA); the patient event carries the overall decision. A pended review
//! gets a reference (REF*NT); an inquiry quoting it gets the rule's `then` decision.
//! AAA answers unknown payers (79), bad or unknown provider NPIs (43, 51) and members the
//! eligibility checks would refuse (72, 75, 73, 71).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{Days, NaiveDate};
use medbill_x12::model::DateRange;
use medbill_x12::model::eligibility::Trace;
use medbill_x12::model::review::{
    ReviewDecision, ReviewEvent, ReviewKind, ReviewLevel, ReviewRejection, ServicesReview,
};
use rust_decimal::Decimal;

use crate::adjudicate::{Identified, identify};
use crate::catalog::{AuthOutcome, AuthRule, Catalog, Member};

/// Most pended reviews remembered (the oldest are forgotten first).
const MAX_PENDED: usize = 100_000;

/// The prior authorization desk: numbers certifications and keeps pended reviews' decisions.
#[derive(Debug, Default)]
pub struct PriorAuthDesk {
    next: AtomicU64,
    pended: Mutex<Pended>,
}

#[derive(Debug, Default)]
struct Pended {
    decided: HashMap<String, ServicesReview>,
    order: std::collections::VecDeque<String>,
}

impl PriorAuthDesk {
    /// Answers a 278 request or inquiry; `today` dates a request that gives no dates.
    pub fn answer(
        &self,
        catalog: &Catalog,
        request: &ServicesReview,
        today: NaiveDate,
    ) -> ServicesReview {
        let mut r = request.clone();
        r.kind = ReviewKind::Response;
        r.rejections.clear();
        let member = match identify(
            catalog,
            &request.payer_id,
            &request.requester_npi,
            &request.member_id,
            &request.subscriber_name,
            request.subscriber_birth_date,
        ) {
            Identified::Member(m) => m,
            Identified::Rejected(level, reason) => {
                let level = match level {
                    crate::adjudicate::Who::Payer => ReviewLevel::Payer,
                    crate::adjudicate::Who::Provider => ReviewLevel::Requester,
                    crate::adjudicate::Who::Subscriber => ReviewLevel::Subscriber,
                };
                return rejected(r, level, reason);
            }
        };
        let not_on_file = &catalog.prior_auth().providers_not_on_file;
        if not_on_file.contains(&request.requester_npi) {
            return rejected(r, ReviewLevel::Requester, "51");
        }
        let Some(event) = r.event.as_mut() else {
            return rejected(r, ReviewLevel::Subscriber, "15");
        };
        event.traces = echoed(&event.traces);
        event.notes = None;
        if event
            .provider
            .as_ref()
            .is_some_and(|p| not_on_file.contains(&p.npi))
        {
            r.rejections.push(rejection(ReviewLevel::Event, "51"));
            return r;
        }
        if request.kind == ReviewKind::Inquiry {
            return self.inquiry(r);
        }
        self.decide(catalog, member, r, today)
    }

    fn decide(
        &self,
        catalog: &Catalog,
        member: &Member,
        mut r: ServicesReview,
        today: NaiveDate,
    ) -> ServicesReview {
        let days = catalog.prior_auth().certified_days;
        let number = format!(
            "SIMAUTH{:09}",
            self.next.fetch_add(1, Ordering::Relaxed) + 1
        );
        let Some(event) = r.event.as_mut() else {
            return r;
        };
        let start = event
            .event_dates
            .or_else(|| event.services.iter().find_map(|s| s.dates))
            .map_or(today, |d| d.from);
        if !member.active_on(start) {
            event.decision = Some(ReviewDecision {
                action: "A3".into(),
                ..ReviewDecision::default()
            });
            event.notes = Some("coverage is not active on the requested dates".into());
            return r;
        }
        let plan = member.plan.entry.id.clone();
        let mut reasons: Vec<String> = Vec::new();
        let mut later: Vec<Option<&AuthRule>> = Vec::new();
        for s in &mut event.services {
            let rule = catalog.auth_rule(&plan, &s.procedure.code, &event.service_type);
            let requested = s
                .dates
                .or(event.event_dates)
                .unwrap_or(DateRange::day(start));
            let (decision, units) = match rule {
                None => (
                    ReviewDecision {
                        action: "NA".into(),
                        ..ReviewDecision::default()
                    },
                    None,
                ),
                Some(rule) => apply(rule, rule.outcome, s.units, requested, days, &number),
            };
            if let Some(reason) = rule
                .filter(|r| matches!(r.outcome, AuthOutcome::Partial | AuthOutcome::Deny))
                .and_then(|r| r.reason.clone())
                && !reasons.contains(&reason)
            {
                reasons.push(reason);
            }
            later.push(rule.filter(|r| r.outcome == AuthOutcome::Pend));
            s.decision = Some(decision);
            s.certified_units = units;
        }
        summarise(event, &number, &reasons);
        if event.decision.as_ref().is_some_and(|d| d.action == "A4") {
            let reference = format!("SIMREF{:09}", self.next.fetch_add(1, Ordering::Relaxed) + 1);
            event.reference = Some(reference.clone());
            let mut decided = r.clone();
            if let Some(ev) = decided.event.as_mut() {
                let mut reasons = Vec::new();
                for (s, rule) in ev.services.iter_mut().zip(&later) {
                    let (Some(rule), Some(then)) = (rule, rule.and_then(|r| r.then)) else {
                        continue;
                    };
                    let requested = s.dates.or(ev.event_dates).unwrap_or(DateRange::day(start));
                    let (decision, units) = apply(rule, then, s.units, requested, days, &number);
                    if then != AuthOutcome::Approve
                        && let Some(reason) = &rule.reason
                    {
                        reasons.push(reason.clone());
                    }
                    s.decision = Some(decision);
                    s.certified_units = units;
                }
                summarise(ev, &number, &reasons);
            }
            self.remember(reference, decided);
        }
        r
    }

    fn inquiry(&self, mut r: ServicesReview) -> ServicesReview {
        let reference = r
            .event
            .as_ref()
            .and_then(|e| e.reference.clone())
            .unwrap_or_default();
        let found = self
            .pended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .decided
            .get(&reference)
            .cloned();
        let Some(mut decided) = found else {
            // AAA 33 (input errors): the reference names no review of this payer.
            r.rejections.push(rejection(ReviewLevel::Event, "33"));
            return r;
        };
        decided.header = r.header;
        if let (Some(ev), Some(asked)) = (decided.event.as_mut(), r.event.as_ref()) {
            ev.traces.clone_from(&asked.traces);
        }
        decided
    }

    fn remember(&self, reference: String, decided: ServicesReview) {
        let mut pended = self.pended.lock().unwrap_or_else(|e| e.into_inner());
        if pended.order.len() >= MAX_PENDED
            && let Some(oldest) = pended.order.pop_front()
        {
            pended.decided.remove(&oldest);
        }
        pended.order.push_back(reference.clone());
        pended.decided.insert(reference, decided);
    }

    /// Returns the number of pended reviews waiting for an inquiry.
    pub fn pended_count(&self) -> usize {
        self.pended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .decided
            .len()
    }
}

/// Applies `outcome` of `rule` to a service asking `units` over `requested`.
fn apply(
    rule: &AuthRule,
    outcome: AuthOutcome,
    units: Decimal,
    requested: DateRange,
    days: u32,
    number: &str,
) -> (ReviewDecision, Option<Decimal>) {
    let certified = DateRange {
        from: requested.from,
        to: Some(requested.to.unwrap_or_else(|| {
            requested
                .from
                .checked_add_days(Days::new(u64::from(days - 1)))
                .unwrap_or(requested.from)
        })),
    };
    let granted = |action: &str, units: Decimal, reason: Option<String>| {
        (
            ReviewDecision {
                action: action.into(),
                authorization_number: Some(number.to_owned()),
                reason,
                certified: Some(certified),
            },
            Some(units),
        )
    };
    match outcome {
        AuthOutcome::Approve => granted("A1", units, None),
        AuthOutcome::Partial => {
            let most = Decimal::from(rule.max_units.unwrap_or_default());
            if units <= most {
                granted("A1", units, None)
            } else {
                granted("A2", most, rule.reason_code.clone())
            }
        }
        AuthOutcome::Deny => (
            ReviewDecision {
                action: "A3".into(),
                reason: rule.reason_code.clone(),
                ..ReviewDecision::default()
            },
            None,
        ),
        AuthOutcome::Pend => (
            ReviewDecision {
                action: "A4".into(),
                ..ReviewDecision::default()
            },
            None,
        ),
    }
}

/// Sets the event's decision from its services': pended if any is, else certified in total,
/// partially, not at all, or not required.
fn summarise(event: &mut ReviewEvent, number: &str, reasons: &[String]) {
    let actions: Vec<&str> = event
        .services
        .iter()
        .filter_map(|s| s.decision.as_ref().map(|d| d.action.as_str()))
        .filter(|a| *a != "NA")
        .collect();
    let action = if actions.contains(&"A4") {
        "A4"
    } else if actions.is_empty() {
        "NA"
    } else if actions.iter().all(|a| *a == "A1") {
        "A1"
    } else if actions.iter().any(|a| matches!(*a, "A1" | "A2")) {
        "A2"
    } else {
        "A3"
    };
    let granted: Vec<DateRange> = event
        .services
        .iter()
        .filter_map(|s| s.decision.as_ref())
        .filter(|d| matches!(d.action.as_str(), "A1" | "A2"))
        .filter_map(|d| d.certified)
        .collect();
    let certified = granted.iter().map(|d| d.from).min().map(|from| DateRange {
        from,
        to: granted.iter().filter_map(|d| d.to).max(),
    });
    let certifies = matches!(action, "A1" | "A2");
    let reason = event
        .services
        .iter()
        .filter_map(|s| s.decision.as_ref())
        .find_map(|d| d.reason.clone());
    event.decision = Some(ReviewDecision {
        action: action.into(),
        authorization_number: certifies.then(|| number.to_owned()),
        reason: if action == "A1" { None } else { reason },
        certified: if certifies { certified } else { None },
    });
    if !reasons.is_empty() {
        let text: String = reasons.join("; ").chars().take(264).collect();
        event.notes = Some(text);
    }
}

fn rejected(mut r: ServicesReview, level: ReviewLevel, reason: &str) -> ServicesReview {
    r.event = None;
    r.rejections.push(rejection(level, reason));
    r
}

fn rejection(level: ReviewLevel, reason: &str) -> ReviewRejection {
    ReviewRejection {
        level,
        service: None,
        valid_request: false,
        reason: reason.into(),
        follow_up: Some("C".into()),
        description: None,
    }
}

/// Returns the request's TRN*1 traces echoed as TRN*2.
fn echoed(traces: &[Trace]) -> Vec<Trace> {
    traces
        .iter()
        .filter(|t| t.kind == "1")
        .map(|t| Trace {
            kind: "2".into(),
            ..t.clone()
        })
        .collect()
}
