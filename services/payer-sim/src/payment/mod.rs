//! Adjudication and payment of accepted claims: 835s and deposit records kept for pickup.
//!
//! A claim the front end accepts waits `adjudication_lag_secs`; then, the next time its
//! submitter asks for result files, every due claim of that submitter is adjudicated
//! ([`engine`]) and paid: one 835 interchange per payer, one transaction set (one payment) per
//! payee (billing NPI), queued behind the files already waiting. Each set balances (the writer
//! refuses one that does not) and pays by EFT (`BPR*I...ACH`, TRN02 `SIMEFT` + 9 digits) or check
//! (`BPR*C...CHK`, TRN02 the check number) as the payer's `payment_method` says; a set that moves
//! no money is a notice (`BPR*H...NON`). PLB adjustments:
//!
//! - `L6` interest (negative: paid to the provider) on a claim paid more than the payer's
//!   `prompt_pay_days` after it was received, at its `interest_rate`;
//! - `FB` forward balance: when reversals take back more than a payment pays, the set pays zero
//!   and the rest is recouped (positive `FB`) from the next payments to that payee.
//!
//! A corrected claim (frequency 7, REF*F8 = the paid claim's REF*1K) reverses the paid claim
//! (CLP02 22, every amount negated, its accumulators taken back) and is adjudicated anew in the
//! same set; a void (frequency 8) only reverses. A replaced claim not paid yet is dropped.
//!
//! Every set that moves money leaves a [`Deposit`]: what the payee's bank shows.
//! Nothing changes unless every file is written: an error leaves the claims waiting.

pub mod engine;
pub mod remit;

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use medbill_domain::Money;
use medbill_x12::transactions::era835::ClaimPayment;
use medbill_x12::write::{
    self, GroupHeader, InterchangeHeader, RemittanceAdvice, Separators, Usage, WriteError,
    X12Writer,
};
use serde::Serialize;
use tracing::{info, warn};

use crate::catalog::{Catalog, Member, Met, PaymentMethod};
use crate::claims::{ClaimRecord, ResultFile};
use engine::PaidServices;
use remit::{Payee, SetPayment};

/// The CORE payload type of an 835 file.
pub const ERA_PAYLOAD_TYPE: &str = "X12_835_Response_005010X221A1";

/// One deposit as the payee's bank shows it (a line of the deposit file, JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Deposit {
    /// The day the money arrives (BPR16), `YYYY-MM-DD`.
    pub deposit_date: NaiveDate,
    /// The amount (BPR02), a decimal string.
    pub amount: Money,
    /// `ACH` or `CHK` (BPR04).
    pub method: String,
    /// The EFT trace or check number (TRN02).
    pub trace_number: String,
    /// The payer id (N1*PR N104).
    pub payer_id: String,
    /// The payee's NPI (N1*PE N104).
    pub payee_npi: String,
    /// Who the 835 was queued for (the CORE `SenderID` of the claims).
    pub submitter: String,
}

/// How a claim was finally adjudicated: what a 276 is answered with (277 STC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// STC01-1: `F1` paid, `F4` adjudicated with nothing to pay (the patient owes it), `F2`
    /// denied, `F3` revised (reversed by a corrected claim).
    pub category: &'static str,
    /// STC01-2: `65` paid, else `107` processed according to contract provisions.
    pub status: &'static str,
    /// What was paid (CLP04).
    pub paid: Money,
    /// The payment day.
    pub date: NaiveDate,
}

struct Pending {
    due: NaiveDateTime,
    /// Shared with the front end's record of the claim (not a copy).
    record: Arc<ClaimRecord>,
}

/// A service paid on a claim still standing: payer, member, code, modifiers, date.
type ServiceKey = (String, String, String, String, NaiveDate);

/// A claim paid (or charged to the patient) and not reversed.
#[derive(Clone)]
struct Standing {
    payment: ClaimPayment<'static>,
    payer: String,
    member: String,
    deductible: Money,
    out_of_pocket: Money,
    services: Vec<ServiceKey>,
}

#[derive(Default)]
struct Ledger {
    pending: Vec<Pending>,
    /// By payer claim number (REF*1K / CLP07).
    standing: HashMap<String, Standing>,
    services: HashMap<ServiceKey, String>,
    /// Recoupment still owed, by (submitter, payer, payee NPI).
    forward: HashMap<(String, String, String), Money>,
    payments: u64,
    deposits: Vec<Deposit>,
    /// By payer claim number.
    outcomes: HashMap<String, Outcome>,
}

/// Adjudication and payment state (in memory for the life of the process).
pub struct Payments {
    lag: TimeDelta,
    deposit_file: Option<PathBuf>,
    ledger: Mutex<Ledger>,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments")
            .field("lag", &self.lag)
            .finish_non_exhaustive()
    }
}

impl Default for Payments {
    fn default() -> Self {
        Self::new(std::time::Duration::ZERO, None)
    }
}

fn service_key(payer: &str, member: &str, code: &str, mods: &[String], d: NaiveDate) -> ServiceKey {
    (
        payer.to_owned(),
        member.to_owned(),
        code.to_owned(),
        mods.join(":"),
        d,
    )
}

/// Member accumulators moved during a pass, by (payer, member): (deductible, out of pocket).
type MetOverlay = HashMap<(String, String), (Money, Money)>;

/// What one pass changes, applied only once every file is written.
#[derive(Default)]
struct Pass {
    met: MetOverlay,
    reversed: HashSet<String>,
    standing: HashMap<String, Standing>,
    /// The services of `standing`, for duplicate detection without a scan.
    services: HashSet<ServiceKey>,
    outcomes: Vec<(String, Outcome)>,
    forward: HashMap<(String, String, String), Money>,
}

struct Duplicates<'a> {
    ledger: &'a Ledger,
    pass: &'a Pass,
    payer: &'a str,
}

impl PaidServices for Duplicates<'_> {
    fn already_paid(&self, member: &str, code: &str, mods: &[String], date: NaiveDate) -> bool {
        let key = service_key(self.payer, member, code, mods, date);
        let old = self
            .ledger
            .services
            .get(&key)
            .is_some_and(|n| !self.pass.reversed.contains(n));
        old || self.pass.services.contains(&key)
    }
}

/// The claims of one set being built.
struct SetDraft {
    payer: String,
    payee: Payee,
    claims: Vec<ClaimPayment<'static>>,
    adjustments: Vec<(&'static str, String, Money)>,
}

impl Payments {
    /// Returns the state of a payer paying `lag` after acceptance, appending deposits to
    /// `deposit_file` (JSON lines) when set.
    pub fn new(lag: std::time::Duration, deposit_file: Option<PathBuf>) -> Self {
        Self {
            lag: TimeDelta::from_std(lag).unwrap_or(TimeDelta::MAX),
            deposit_file,
            ledger: Mutex::new(Ledger::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues the accepted claims among `records` for adjudication `lag` after `now`.
    pub fn enqueue(&self, records: &[Arc<ClaimRecord>], now: NaiveDateTime) {
        let due = now
            .checked_add_signed(self.lag)
            .unwrap_or(NaiveDateTime::MAX);
        let mut ledger = self.lock();
        ledger
            .pending
            .extend(records.iter().filter(|r| r.is_accepted()).map(|r| Pending {
                due,
                record: r.clone(),
            }));
    }

    /// Returns how many accepted claims wait for adjudication.
    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    /// Returns how the claim with payer claim number `number` was adjudicated, once it was.
    pub fn outcome(&self, number: &str) -> Option<Outcome> {
        self.lock().outcomes.get(number).copied()
    }

    /// Returns every deposit made so far, oldest first.
    pub fn deposits(&self) -> Vec<Deposit> {
        self.lock().deposits.clone()
    }

    /// Adjudicates and pays the claims of `submitter` due at `now`; returns the 835 files to queue
    /// for it (none when nothing is due). `sender_id` is ISA06; `control` numbers the files.
    pub fn settle(
        &self,
        catalog: &Catalog,
        submitter: &str,
        now: NaiveDateTime,
        sender_id: &str,
        control: &mut dyn FnMut() -> u32,
    ) -> Result<Vec<ResultFile>, WriteError> {
        let mut ledger = self.lock();
        if !ledger
            .pending
            .iter()
            .any(|p| p.record.submitter == submitter && p.due <= now)
        {
            return Ok(Vec::new());
        }
        let (due, mut rest): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut ledger.pending)
            .into_iter()
            .partition(|p| p.record.submitter == submitter && p.due <= now);
        let result = self.pay(
            &ledger, catalog, submitter, &due, &mut rest, now, sender_id, control,
        );
        match result {
            Ok((files, pass, deposits, sets)) => {
                ledger.pending = rest;
                commit(&mut ledger, catalog, pass, sets);
                self.record_deposits(&deposits);
                ledger.deposits.extend(deposits);
                info!(
                    claims = due.len(),
                    files = files.len(),
                    "claims adjudicated and paid"
                );
                Ok(files)
            }
            Err(e) => {
                // Nothing moved: the claims wait for the next pass.
                let mut pending = due;
                pending.extend(rest);
                pending.sort_by_key(|p| p.due);
                ledger.pending = pending;
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn pay(
        &self,
        ledger: &Ledger,
        catalog: &Catalog,
        submitter: &str,
        due: &[Pending],
        rest: &mut Vec<Pending>,
        now: NaiveDateTime,
        sender_id: &str,
        control: &mut dyn FnMut() -> u32,
    ) -> Result<(Vec<ResultFile>, Pass, Vec<Deposit>, u64), WriteError> {
        let today = now.date();
        let mut pass = Pass::default();
        let mut drafts: Vec<SetDraft> = Vec::new();
        let mut dropped: HashSet<String> = HashSet::new();
        for p in due {
            let rec = &p.record;
            let claim = &rec.claim;
            let Some(number) = rec.payer_claim_number.clone() else {
                continue;
            };
            if dropped.contains(&number) {
                continue;
            }
            let Some(payer) = catalog.payer(&claim.payer_id) else {
                continue;
            };
            let member = payer.member(&claim.member_id).map(|m| &**m);
            let payee = Payee {
                name: party_name(&claim.billing_name),
                npi: claim.billing_npi.clone(),
            };
            let at = match drafts
                .iter()
                .position(|d| d.payer == claim.payer_id && d.payee == payee)
            {
                Some(i) => i,
                None => {
                    drafts.push(SetDraft {
                        payer: claim.payer_id.clone(),
                        payee,
                        claims: Vec::new(),
                        adjustments: Vec::new(),
                    });
                    drafts.len() - 1
                }
            };
            if let Some(replaced) = claim
                .replaces
                .as_deref()
                .filter(|_| rec.claim.frequency.code() != "1")
            {
                let earlier = pass.standing.remove(replaced).or_else(|| {
                    (!pass.reversed.contains(replaced))
                        .then(|| ledger.standing.get(replaced).cloned())
                        .flatten()
                });
                match earlier {
                    Some(s) => {
                        drafts[at].claims.push(remit::reversal(&s.payment));
                        let moved = pass
                            .met
                            .entry((s.payer.clone(), s.member.clone()))
                            .or_default();
                        moved.0 -= s.deductible;
                        moved.1 -= s.out_of_pocket;
                        pass.reversed.insert(replaced.to_owned());
                        pass.outcomes.push((
                            replaced.to_owned(),
                            Outcome {
                                category: "F3",
                                status: "107",
                                paid: Money::ZERO,
                                date: today,
                            },
                        ));
                    }
                    None => {
                        // Not paid yet: the replacement takes its place.
                        rest.retain(|q| q.record.payer_claim_number.as_deref() != Some(replaced));
                        dropped.insert(replaced.to_owned());
                    }
                }
            }
            if claim.frequency.code() == "8" {
                continue;
            }
            let met = |m: &Member| -> Met {
                let mut met = catalog.met(m);
                let key = (m.plan.entry.payer.clone(), m.entry.member_id.clone());
                if let Some((d, o)) = pass.met.get(&key) {
                    met.deductible += *d;
                    met.family_deductible += *d;
                    met.oop += *o;
                    met.family_oop += *o;
                }
                met
            };
            let duplicates = Duplicates {
                ledger,
                pass: &pass,
                payer: &claim.payer_id,
            };
            let decision = engine::adjudicate(catalog, claim, rec.received, &met, &duplicates);
            let payment = remit::claim_payment(claim, member, &number, rec.received, &decision);
            let late = (today - rec.received).num_days() - i64::from(payer.entry.prompt_pay_days);
            let interest = engine::interest(decision.paid(), payer.entry.interest_rate, late);
            if interest.is_positive() {
                drafts[at].adjustments.push((
                    "L6",
                    claim.patient_control_number.clone(),
                    -interest,
                ));
            }
            let (category, status) = match (decision.status(), decision.paid().is_positive()) {
                ("4", _) => ("F2", "107"),
                (_, true) => ("F1", "65"),
                (_, false) => ("F4", "107"),
            };
            pass.outcomes.push((
                number.clone(),
                Outcome {
                    category,
                    status,
                    paid: decision.paid(),
                    date: today,
                },
            ));
            if decision.status() == "1" {
                let moved = pass
                    .met
                    .entry((claim.payer_id.clone(), claim.member_id.clone()))
                    .or_default();
                moved.0 += decision.deductible;
                moved.1 += decision.out_of_pocket;
                let services = claim
                    .lines
                    .iter()
                    .zip(&decision.lines)
                    .filter(|(_, d)| d.priced)
                    .map(|(l, _)| {
                        let date = l.service_date.map_or(claim.service_date.from, |d| d.from);
                        service_key(
                            &claim.payer_id,
                            &claim.member_id,
                            &l.procedure.code,
                            &l.procedure.modifiers,
                            date,
                        )
                    })
                    .collect::<Vec<ServiceKey>>();
                pass.services.extend(services.iter().cloned());
                pass.standing.insert(
                    number.clone(),
                    Standing {
                        payment: payment.clone(),
                        payer: claim.payer_id.clone(),
                        member: claim.member_id.clone(),
                        deductible: decision.deductible,
                        out_of_pocket: decision.out_of_pocket,
                        services,
                    },
                );
            }
            drafts[at].claims.push(payment);
        }

        let mut files = Vec::new();
        let mut deposits = Vec::new();
        let mut sets = 0u64;
        let mut payers: Vec<String> = Vec::new();
        for d in &drafts {
            if !payers.contains(&d.payer) {
                payers.push(d.payer.clone());
            }
        }
        for payer_id in payers {
            let Some(payer) = catalog.payer(&payer_id) else {
                continue;
            };
            let mut advices: Vec<RemittanceAdvice<'static>> = Vec::new();
            for d in drafts
                .iter_mut()
                .filter(|d| d.payer == payer_id && !d.claims.is_empty())
            {
                sets += 1;
                let n = ledger.payments + sets;
                let trace = match payer.entry.payment_method {
                    PaymentMethod::Eft => format!("SIMEFT{n:09}"),
                    PaymentMethod::Check => format!("{}", 100_000 + n),
                };
                let paid: Money = d.claims.iter().map(|c| Money::from_decimal(c.paid)).sum();
                let plb: Money = d.adjustments.iter().map(|a| a.2).sum();
                let mut total = paid - plb;
                let key = (submitter.to_owned(), payer_id.clone(), d.payee.npi.clone());
                let mut owed = pass
                    .forward
                    .get(&key)
                    .or_else(|| ledger.forward.get(&key))
                    .copied()
                    .unwrap_or_default();
                if total.is_negative() {
                    d.adjustments.push(("FB", trace.clone(), total));
                    owed += -total;
                    total = Money::ZERO;
                } else if owed.is_positive() && total.is_positive() {
                    let take = if owed < total { owed } else { total };
                    d.adjustments.push(("FB", trace.clone(), take));
                    owed -= take;
                    total -= take;
                }
                pass.forward.insert(key, owed);
                let advice = remit::advice(SetPayment {
                    payer,
                    payee: &d.payee,
                    claims: std::mem::take(&mut d.claims),
                    adjustments: std::mem::take(&mut d.adjustments),
                    total,
                    trace: trace.clone(),
                    date: today,
                });
                if total.is_positive() {
                    deposits.push(Deposit {
                        deposit_date: today,
                        amount: total,
                        method: advice.remittance.payment.method.to_string(),
                        trace_number: trace,
                        payer_id: payer_id.clone(),
                        payee_npi: d.payee.npi.clone(),
                        submitter: submitter.to_owned(),
                    });
                }
                advices.push(advice);
            }
            if advices.is_empty() {
                continue;
            }
            let text = interchange(&payer_id, sender_id, submitter, now, control(), &advices)?;
            files.push(crate::claims::file(
                medbill_connect::PayloadType::new(ERA_PAYLOAD_TYPE)
                    .unwrap_or(medbill_connect::PayloadType::BATCH_RESULTS_RESPONSE),
                text,
            ));
        }
        Ok((files, pass, deposits, sets))
    }

    fn record_deposits(&self, deposits: &[Deposit]) {
        let Some(path) = &self.deposit_file else {
            return;
        };
        if deposits.is_empty() {
            return;
        }
        let mut lines = String::new();
        for d in deposits {
            if let Ok(json) = serde_json::to_string(d) {
                lines.push_str(&json);
                lines.push('\n');
            }
        }
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(lines.as_bytes()));
        if let Err(error) = written {
            warn!(path = %path.display(), %error, "deposit records could not be appended");
        }
    }
}

fn commit(ledger: &mut Ledger, catalog: &Catalog, pass: Pass, sets: u64) {
    for number in &pass.reversed {
        if let Some(s) = ledger.standing.remove(number) {
            for key in s.services {
                ledger.services.remove(&key);
            }
        }
    }
    for (number, s) in pass.standing {
        for key in &s.services {
            ledger.services.insert(key.clone(), number.clone());
        }
        ledger.standing.insert(number, s);
    }
    for ((payer, member), (deductible, oop)) in pass.met {
        if let Some(m) = catalog.payer(&payer).and_then(|p| p.member(&member)) {
            catalog.add_met(m, deductible, oop);
        }
    }
    ledger.forward.extend(pass.forward);
    ledger.outcomes.extend(pass.outcomes);
    ledger.payments += sets;
}

fn party_name(name: &medbill_x12::model::PartyName) -> String {
    match name {
        medbill_x12::model::PartyName::Organization { name } => name.clone(),
        medbill_x12::model::PartyName::Person(p) => {
            format!("{} {}", p.first.as_deref().unwrap_or_default(), p.last)
                .trim()
                .to_owned()
        }
    }
}

/// ISA/GS ids: the payer-sim's id to the submitter (when it fits ISA08), GS02 the payer id.
fn interchange(
    payer_id: &str,
    sender_id: &str,
    submitter: &str,
    now: NaiveDateTime,
    control: u32,
    advices: &[RemittanceAdvice<'static>],
) -> Result<String, WriteError> {
    let fits = |s: &str, min: usize| {
        (min..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
    };
    let receiver = if fits(submitter, 2) {
        submitter
    } else {
        "UNKNOWN"
    };
    let header = InterchangeHeader {
        sender_qualifier: "ZZ".into(),
        sender_id: sender_id.to_owned(),
        receiver_qualifier: "ZZ".into(),
        receiver_id: receiver.to_owned(),
        date: now.date(),
        time: now.time(),
        control_number: control,
        ack_requested: false,
        usage: Usage::Production,
    };
    let group_sender = if fits(payer_id, 2) {
        payer_id
    } else {
        sender_id
    };
    let group = GroupHeader::new(group_sender, receiver, now.date(), now.time(), control);
    let mut w = X12Writer::new(Separators::default())?;
    w.begin_interchange(&header)?;
    w.begin_group("HP", &group, "005010X221A1")?;
    for (i, advice) in advices.iter().enumerate() {
        write::write_835(&mut w, advice, u32::try_from(i + 1).unwrap_or(u32::MAX))?;
    }
    w.end_group()?;
    w.end_interchange()?;
    w.finish()
}
