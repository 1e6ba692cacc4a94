//! The claim front end: 837 batches in; TA1, 999 and 277CA files kept for pickup; the claims it
//! accepted kept for 276 answers and later adjudication.
//!
//! For each received interchange:
//!
//! - an envelope that cannot be processed (IEA missing, IEA02 not ISA13, IEA01 count wrong) gets
//!   a TA1 with TA104 `R` and the TA105 note code, and nothing else; a readable one gets a TA1
//!   `A` only when ISA14 asks for it;
//! - each functional group gets one 999 ([`medbill_x12::write::acknowledge_group`]): `A`, `P`
//!   (some sets rejected, each with IK3/IK4 naming segment, position, loop and element) or `R`;
//! - each transaction set the 999 accepts gets one 277CA with one STC per claim, decided by
//!   [`crate::claim_rules`]; accepted claims get a REF*1K payer claim control number
//!   `SIM` + 10 digits from a counter (deterministic: the n-th claim accepted since start-up
//!   gets n).
//!
//! Files wait per submitter (the CORE `SenderID`) until the submitter acknowledges them.
//! Everything is held in memory for the life of the process: a restart forgets accepted claims
//! and waiting files.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{NaiveDate, NaiveDateTime};
use medbill_connect::{InboundKind, PayloadType};
use medbill_x12::model::TransactionHeader;
use medbill_x12::model::claim_status::{
    AcknowledgedClaim, AcknowledgedProvider, ClaimAcknowledgment, LineStatus, StatusInfo,
};
use medbill_x12::transactions::claim837::{loop_at, read_837};
use medbill_x12::write::{self, Separators, WriteError};
use medbill_x12::{Document, Error as X12Error};
use rust_decimal::Decimal;
use tracing::info;

use crate::catalog::Catalog;
use crate::claim_rules::{self, AcceptedLookup, ReceivedClaim, Rejection};
use crate::handler::Parties;
use crate::payment::Payments;

/// A claim payer-sim received, with the status its 277CA gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRecord {
    /// The submitter (CORE `SenderID`) it came from.
    pub submitter: String,
    /// The claim as received.
    pub claim: ReceivedClaim,
    /// The 277CA claim-level STC.
    pub status: StatusInfo,
    /// REF*1K, for accepted claims.
    pub payer_claim_number: Option<String>,
    /// The line a line-level edit rejected (0-based), answered in a 2220D loop.
    pub rejected_line: Option<usize>,
    /// The day it was received.
    pub received: NaiveDate,
}

impl ClaimRecord {
    /// Tells whether the 277CA accepted the claim.
    pub fn is_accepted(&self) -> bool {
        self.payer_claim_number.is_some()
    }
}

/// A file waiting for pickup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultFile {
    /// SHA-1 of the contents, hex: what the submitter acknowledges.
    pub file_id: String,
    /// What it is: [`PayloadType::X12_TA1_RESPONSE`], [`PayloadType::X12_999_RESPONSE`] or
    /// [`PayloadType::X12_277CA_RESPONSE`].
    pub payload_type: PayloadType,
    /// The X12 interchange.
    pub contents: Bytes,
}

#[derive(Default)]
struct State {
    /// Every claim received and answered, in arrival order.
    claims: Vec<Arc<ClaimRecord>>,
    /// Claims accepted so far, for REF*1K numbering.
    accepted_count: u64,
    /// (submitter, CLM01, total charge) of every accepted claim in `claims`: duplicate
    /// detection looks one up instead of scanning every claim ever received.
    accepted_keys: HashSet<(String, String, Decimal)>,
    /// Files waiting, by submitter, oldest first.
    pickup: HashMap<String, VecDeque<ResultFile>>,
}

/// Claims accepted before this interchange (by key) and those decided earlier in it.
struct Duplicates<'a>(
    &'a HashSet<(String, String, Decimal)>,
    &'a [Arc<ClaimRecord>],
);

impl AcceptedLookup for Duplicates<'_> {
    fn is_duplicate(&self, submitter: &str, pcn: &str, total: Decimal) -> bool {
        let key = (submitter.to_owned(), pcn.to_owned(), total);
        self.0.contains(&key)
            || self.1.iter().any(|r| {
                r.is_accepted()
                    && r.submitter == submitter
                    && r.claim.patient_control_number == pcn
                    && r.claim.total_charge == total
            })
    }
}

/// What an intake produced, for the caller's log line and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntakeSummary {
    /// TA1 note code when a TA1 was written.
    pub ta1: Option<String>,
    /// AK901 of each 999 written, in group order.
    pub groups: Vec<String>,
    /// Claims accepted.
    pub accepted: usize,
    /// Claims rejected.
    pub rejected: usize,
}

/// Why an 837 could not be taken in at all (answered with a CORE error, no file kept).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The payload has no ISA: no TA1 can name it.
    #[error("the payload is not an X12 interchange (no ISA segment)")]
    NotX12,
    /// An acknowledgement could not be written (a value breaks its guide).
    #[error("an acknowledgement could not be written: {0}")]
    Unwritable(#[from] WriteError),
}

/// The claim front end's state: received claims and files for pickup, and the payment of the
/// accepted claims ([`Payments`]).
#[derive(Default)]
pub struct ClaimFront {
    state: Mutex<State>,
    payments: Payments,
}

impl std::fmt::Debug for ClaimFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimFront").finish_non_exhaustive()
    }
}

impl ClaimFront {
    /// Returns an empty front end paying accepted claims at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns an empty front end paying accepted claims as `payments` says (lag, deposit file).
    pub fn with_payments(payments: Payments) -> Self {
        Self {
            state: Mutex::default(),
            payments,
        }
    }

    /// Returns the payment state: claims waiting, deposits made.
    pub fn payments(&self) -> &Payments {
        &self.payments
    }

    /// Adjudicates and pays `submitter`'s claims due at `now`, queueing the 835s behind the files
    /// already waiting; returns how many 835 files were queued.
    pub fn settle_due(
        &self,
        catalog: &Catalog,
        submitter: &str,
        now: NaiveDateTime,
        sender_id: &str,
        control: &mut dyn FnMut() -> u32,
    ) -> Result<usize, WriteError> {
        let files = self
            .payments
            .settle(catalog, submitter, now, sender_id, control)?;
        let n = files.len();
        if n > 0 {
            self.queue(submitter, files);
        }
        Ok(n)
    }

    /// Takes in one 837 payload from `submitter`: writes the TA1 / 999 / 277CA files and queues
    /// them for pickup, records the claims. `control` gives ISA13/GS06 of each file written;
    /// `fallback_sender` is ISA06/GS02 when the 837's receiver ids cannot be echoed.
    pub fn intake(
        &self,
        catalog: &Catalog,
        submitter: &str,
        payload: &[u8],
        now: NaiveDateTime,
        fallback_sender: &str,
        control: &mut dyn FnMut() -> u32,
    ) -> Result<IntakeSummary, IntakeError> {
        let doc = Document::parse(payload);
        let Some(interchange) = doc.interchanges.iter().find(|i| i.isa.is_some()) else {
            return Err(IntakeError::NotX12);
        };
        let ids = Parties::of(interchange, fallback_sender);
        let mut files: Vec<ResultFile> = Vec::new();
        let mut summary = IntakeSummary::default();
        let ta1 = write::acknowledge_interchange(interchange, &doc.problems);
        if let Some(ta1) = ta1 {
            let asked = interchange
                .isa
                .as_ref()
                .is_some_and(|isa| isa.text(14).trim() == "1");
            if ta1.status != "A" || asked {
                let header = ids.envelope(control(), now).interchange;
                let text = write::ta1_interchange(Separators::default(), &header, &ta1)?;
                summary.ta1 = Some(ta1.note_code.clone());
                files.push(file(PayloadType::X12_TA1_RESPONSE, text));
            }
            if ta1.status != "A" {
                info!(note = %ta1.note_code, "837 interchange rejected with a TA1");
                self.queue(submitter, files);
                return Ok(summary);
            }
        }

        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut new_claims: Vec<Arc<ClaimRecord>> = Vec::new();
        for group in &interchange.groups {
            // Read each set once: its problems go into the 999, its claims into the 277CA.
            let mut problems: Vec<X12Error> = doc.problems.clone();
            let mut read = Vec::with_capacity(group.sets.len());
            for set in &group.sets {
                if set.set_id() == "837" {
                    let parsed = read_837(set);
                    problems.extend(parsed.problems.iter().filter(|p| p.is_error()).cloned());
                    read.push(Some(parsed.value));
                } else {
                    read.push(None);
                }
            }
            let mut ack = write::acknowledge_group(group, &problems);
            // IK303: the 837 loop of each segment in error.
            for (set, set_ack) in group.sets.iter().zip(ack.sets.iter_mut()) {
                for error in set_ack.errors.iter_mut().filter(|e| e.loop_id.is_none()) {
                    error.loop_id = usize::try_from(error.position)
                        .ok()
                        .and_then(|at| loop_at(set, at))
                        .map(str::to_owned);
                }
            }
            let env = ids.envelope(control(), now);
            files.push(file(
                PayloadType::X12_999_RESPONSE,
                write::ack_interchange(Separators::default(), &env, &ack)?,
            ));
            summary.groups.push(ack.status.clone());
            for ((set, set_ack), value) in group.sets.iter().zip(&ack.sets).zip(read) {
                let Some(value) = value else { continue };
                if !set_ack.is_accepted() {
                    continue;
                }
                let header = match &value {
                    medbill_x12::transactions::claim837::ClaimSet::Professional(p) => &p.header,
                    medbill_x12::transactions::claim837::ClaimSet::Institutional(i) => &i.header,
                };
                let mut records = Vec::new();
                for claim in ReceivedClaim::all_of(&value) {
                    let known = Duplicates(&state.accepted_keys, &new_claims);
                    let decided = claim_rules::check(catalog, &claim, submitter, &known);
                    let record = decide(&mut state, submitter, claim, decided, now.date());
                    if record.is_accepted() {
                        summary.accepted += 1;
                    } else {
                        summary.rejected += 1;
                    }
                    new_claims.push(Arc::new(record.clone()));
                    records.push(record);
                }
                let ack277 = acknowledgment(
                    catalog,
                    header,
                    set.control_number(),
                    &records,
                    now,
                    control,
                );
                let env = ids.envelope(control(), now);
                files.push(file(
                    PayloadType::X12_277CA_RESPONSE,
                    write::claim_acknowledgment_interchange(Separators::default(), &env, &ack277)?,
                ));
            }
        }
        // Claims are recorded only once every file is written: an error leaves nothing behind.
        for r in new_claims.iter().filter(|r| r.is_accepted()) {
            state.accepted_keys.insert((
                r.submitter.clone(),
                r.claim.patient_control_number.clone(),
                r.claim.total_charge,
            ));
        }
        // Queued for payment once their acknowledgements are queued, so the 835 never comes first.
        let accepted: Vec<Arc<ClaimRecord>> = new_claims
            .iter()
            .filter(|r| r.is_accepted())
            .cloned()
            .collect();
        state.claims.extend(new_claims);
        drop(state);
        self.queue(submitter, files);
        self.payments.enqueue(&accepted, now);
        info!(
            groups = summary.groups.len(),
            accepted = summary.accepted,
            rejected = summary.rejected,
            "837 interchange acknowledged"
        );
        Ok(summary)
    }

    fn queue(&self, submitter: &str, files: Vec<ResultFile>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .pickup
            .entry(submitter.to_owned())
            .or_default()
            .extend(files);
    }

    /// Returns the file of `kind` to offer `submitter` next, without removing it: the oldest of
    /// that kind. Asked for any file, the oldest acknowledgement (TA1, 999, 277CA) comes before
    /// any 835, so a client that asks for any file and takes only acknowledgements is never
    /// blocked by an 835 it leaves for another.
    pub fn next_file(&self, submitter: &str, kind: InboundKind) -> Option<ResultFile> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let queue = state.pickup.get(submitter)?;
        let is_era = |f: &&ResultFile| f.payload_type.as_str() == crate::payment::ERA_PAYLOAD_TYPE;
        match kind {
            InboundKind::Any => queue.iter().find(|f| !is_era(f)).or_else(|| queue.front()),
            InboundKind::Acknowledgements => queue.iter().find(|f| !is_era(f)),
            InboundKind::Remittance => queue.iter().find(is_era),
        }
        .cloned()
    }

    /// Removes the file `file_id` of `submitter`; returns whether it was waiting.
    pub fn acknowledge(&self, submitter: &str, file_id: &str) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(queue) = state.pickup.get_mut(submitter) else {
            return false;
        };
        let before = queue.len();
        queue.retain(|f| f.file_id != file_id);
        before != queue.len()
    }

    /// Returns how many files wait for `submitter`.
    pub fn waiting(&self, submitter: &str) -> usize {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.pickup.get(submitter).map_or(0, VecDeque::len)
    }

    /// Returns the claims accepted so far (A2), oldest first.
    pub fn accepted_claims(&self) -> Vec<ClaimRecord> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .claims
            .iter()
            .filter(|r| r.is_accepted())
            .map(|r| ClaimRecord::clone(r))
            .collect()
    }

    /// Returns the claim with payer claim control number `number` (REF*1K).
    pub fn claim_by_payer_number(&self, number: &str) -> Option<ClaimRecord> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .claims
            .iter()
            .find(|r| r.payer_claim_number.as_deref() == Some(number))
            .map(|r| ClaimRecord::clone(r))
    }

    /// Returns the latest claim received for `payer_id` with this member id and CLM01.
    pub fn claim_by_patient_control_number(
        &self,
        payer_id: &str,
        member_id: &str,
        pcn: &str,
    ) -> Option<ClaimRecord> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .claims
            .iter()
            .rev()
            .find(|r| {
                r.claim.payer_id == payer_id
                    && r.claim.member_id == member_id
                    && r.claim.patient_control_number == pcn
            })
            .map(|r| ClaimRecord::clone(r))
    }
}

pub(crate) fn file(payload_type: PayloadType, text: String) -> ResultFile {
    let contents = Bytes::from(text);
    ResultFile {
        file_id: medbill_connect::envelope::checksum(&contents),
        payload_type,
        contents,
    }
}

/// Builds the record of one decided claim (numbering accepted ones).
fn decide(
    state: &mut State,
    submitter: &str,
    claim: ReceivedClaim,
    decided: Result<(), Box<Rejection>>,
    today: NaiveDate,
) -> ClaimRecord {
    let rejected_line = decided.as_ref().err().and_then(|r| r.line);
    let (status, payer_claim_number) = match decided {
        Ok(()) => {
            state.accepted_count += 1;
            (
                StatusInfo {
                    codes: vec![claim_rules::code("A2", "20", None)],
                    effective_date: Some(today),
                    action: Some("WQ".into()),
                    charge: Some(claim.total_charge),
                    paid: None,
                    message: None,
                },
                Some(format!("SIM{:010}", state.accepted_count)),
            )
        }
        Err(rejection) => (rejected_status(&rejection, claim.total_charge, today), None),
    };
    ClaimRecord {
        submitter: submitter.to_owned(),
        claim,
        status,
        payer_claim_number,
        rejected_line,
        received: today,
    }
}

fn rejected_status(r: &Rejection, charge: Decimal, today: NaiveDate) -> StatusInfo {
    StatusInfo {
        codes: vec![r.code.clone()],
        effective_date: Some(today),
        action: Some("U".into()),
        charge: Some(charge),
        paid: None,
        message: Some(r.reason.to_owned()),
    }
}

/// Builds the 277CA of one accepted 837 set from its decided claims.
fn acknowledgment(
    catalog: &Catalog,
    header: &medbill_x12::model::claim::ClaimSetHeader,
    set_control: String,
    records: &[ClaimRecord],
    now: NaiveDateTime,
    control: &mut dyn FnMut() -> u32,
) -> ClaimAcknowledgment {
    let today = now.date();
    let total: Decimal = records.iter().map(|r| r.claim.total_charge).sum();
    let payer = records.first().map(|r| r.claim.payer_id.clone());
    let trace = control();
    let mut providers: Vec<AcknowledgedProvider> = Vec::new();
    for r in records {
        let claim = &r.claim;
        let lines = match r.rejected_line {
            Some(i) => claim
                .lines
                .get(i)
                .map(|l| LineStatus {
                    procedure: l.procedure.clone(),
                    charge: Some(l.charge),
                    paid: None,
                    revenue_code: l.revenue_code.clone(),
                    units: Some(l.units),
                    statuses: vec![StatusInfo {
                        charge: Some(l.charge),
                        message: None,
                        ..r.status.clone()
                    }],
                    line_control_number: l.line_control_number.clone(),
                    service_date: l.service_date,
                })
                .into_iter()
                .collect(),
            None => Vec::new(),
        };
        let acknowledged = AcknowledgedClaim {
            patient_name: claim.patient_name.clone(),
            member_id: claim.member_id.clone(),
            patient_control_number: claim.patient_control_number.clone(),
            status: r.status.clone(),
            payer_claim_number: r.payer_claim_number.clone(),
            bill_type: claim.bill_type.clone(),
            service_date: claim.service_date,
            lines,
        };
        match providers.last_mut() {
            Some(p) if p.npi == claim.billing_npi => p.claims.push(acknowledged),
            _ => providers.push(AcknowledgedProvider {
                name: claim.billing_name.clone(),
                npi: claim.billing_npi.clone(),
                trace: format!("{}-{}", trace, providers.len() + 1),
                claims: vec![acknowledged],
            }),
        }
    }
    let payer_id = payer.unwrap_or_else(|| "UNKNOWN".into());
    // A claim for a payer not served here is answered in the name of the id it gave.
    let payer_name = catalog
        .payer(&payer_id)
        .map_or_else(|| payer_id.clone(), |p| p.entry.name.clone());
    ClaimAcknowledgment {
        header: TransactionHeader {
            reference: format!("277CA{trace:09}"),
            created_date: today,
            created_time: now.time(),
        },
        payer_name,
        payer_id,
        source_trace: format!("{trace:09}"),
        received: today,
        processed: today,
        receiver_name: header.submitter.name.clone(),
        receiver_id: header.submitter.id.clone(),
        receiver_trace: if header.transaction.reference.is_empty() {
            set_control
        } else {
            header.transaction.reference.clone()
        },
        receiver_status: StatusInfo {
            codes: vec![claim_rules::code("A1", "19", Some("PR"))],
            effective_date: Some(today),
            action: Some("WQ".into()),
            charge: Some(total),
            paid: None,
            message: None,
        },
        providers,
    }
}
