//! The CORE handler, with the fault switches applied first:
//!
//! - real time: 270 in, 271 out; 276 in, 277 out; 278 in, 278 out (a 999 when the request fails syntax checks, a
//!   CORE error when the payload is not X12);
//! - batch: 837P/837I (or mixed) submissions taken in by [`ClaimFront`], results retrieval of the
//!   oldest waiting TA1 / 999 / 277CA of the sender, and their acknowledgement.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{NaiveDate, Utc};
use medbill_connect::envelope::EnvelopeField;
use medbill_connect::{
    CoreHandler, ErrorCode, HandlerError, HandlerReply, InboundRequest, PayloadType, ProcessingMode,
};
use medbill_x12::model::eligibility::{EligibilityInquiry, EligibilityResponse};
use medbill_x12::transactions::inquiry270::read_270;
use medbill_x12::transactions::review278::read_278;
use medbill_x12::transactions::status276::read_276;
use medbill_x12::write::{
    self, EligibilityAnswer, Envelope, GroupHeader, InterchangeHeader, Separators, Usage,
    WriteError,
};
use medbill_x12::{Document, Interchange, Segment};
use tracing::{debug, info};

use crate::adjudicate;
use crate::catalog::Catalog;
use crate::claims::ClaimFront;
use crate::faults::{Fault, Faults};
use crate::prior_auth::PriorAuthDesk;
use crate::status;

/// What the garbage fault answers: an HTML error page, as a misconfigured proxy returns.
const GARBAGE: &[u8] =
    b"<html><head><title>502 Bad Gateway</title></head><body>upstream error</body></html>";

/// Answers 270s from a catalog: the [`CoreHandler`] payer-sim mounts, usable without a transport.
pub struct SimHandler {
    catalog: Arc<Catalog>,
    faults: Faults,
    requests: Arc<AtomicU64>,
    /// ISA13/GS06 of the next answer.
    control: Arc<AtomicU32>,
    /// ISA06/GS02 when the 270's receiver ids cannot be echoed.
    sender_id: String,
    /// Claims received and acknowledgement files waiting for pickup.
    claims: Arc<ClaimFront>,
    /// Prior authorization numbering and pended reviews.
    prior_auth: Arc<PriorAuthDesk>,
}

impl SimHandler {
    /// Returns a handler answering from `catalog`, applying `faults` and counting requests in
    /// `requests`; `sender_id` is the ISA06/GS02 used when the 270's receiver cannot be echoed.
    pub fn new(
        catalog: Arc<Catalog>,
        faults: Faults,
        requests: Arc<AtomicU64>,
        sender_id: String,
    ) -> Self {
        Self {
            catalog,
            faults,
            requests,
            control: Arc::new(AtomicU32::new(1)),
            sender_id,
            claims: Arc::new(ClaimFront::new()),
            prior_auth: Arc::new(PriorAuthDesk::default()),
        }
    }

    /// Returns the prior authorization desk (pended reviews).
    pub fn prior_auth(&self) -> &Arc<PriorAuthDesk> {
        &self.prior_auth
    }

    /// Uses `claims` as the claim front end's state (shared with the [`crate::PayerSimHandle`]).
    pub fn with_claims(mut self, claims: Arc<ClaimFront>) -> Self {
        self.claims = claims;
        self
    }

    fn next_control(&self) -> u32 {
        next_control(&self.control)
    }

    /// Answers one 270 payload (no transport concerns): a 271 or 999 reply, or a CORE error.
    ///
    /// `fault` is applied where it shapes the answer (AAA 42, wrong member); `today` is the date
    /// of service when the 270 has no DTP*291.
    pub fn answer(
        &self,
        payload: &[u8],
        fault: Option<&Fault>,
        today: NaiveDate,
    ) -> Result<HandlerReply, HandlerError> {
        self.respond("270", payload, fault, today)
    }

    /// Answers a real-time payload that must hold an `expected` (270 or 276) set.
    fn respond(
        &self,
        expected: &str,
        payload: &[u8],
        fault: Option<&Fault>,
        today: NaiveDate,
    ) -> Result<HandlerReply, HandlerError> {
        let doc = Document::parse(payload);
        let Some(interchange) = doc.interchanges.iter().find(|i| i.isa.is_some()) else {
            return Err(illegal_payload(
                "the payload is not an X12 interchange (no ISA segment)",
            ));
        };
        let Some(group) = interchange.groups.first() else {
            return Err(illegal_payload(
                "the X12 interchange holds no functional group",
            ));
        };
        let ids = Parties::of(interchange, &self.sender_id);
        if doc.has_errors() {
            return self.reply_999(&ids, group, &doc.problems);
        }
        let Some(set) = group.sets.first() else {
            return Err(illegal_payload(
                "the functional group holds no transaction set",
            ));
        };
        let set_id = set.set_id();
        if set_id != expected {
            return Err(illegal_payload(&format!(
                "the payload holds a {} transaction set; its payload type carries {expected}",
                set_id.chars().take(3).collect::<String>()
            )));
        }
        if set_id == "278" {
            let parsed = read_278(set);
            if parsed.has_errors() {
                return self.reply_999(&ids, group, &parsed.problems);
            }
            let now = Utc::now().naive_utc();
            let answer = self.prior_auth.answer(&self.catalog, &parsed.value, today);
            let envelope = ids.envelope(self.next_control(), now);
            let text = write::review_interchange(Separators::default(), &envelope, &answer)
                .map_err(unwritable)?;
            return Ok(HandlerReply {
                payload_type: PayloadType::X12_278_RESPONSE,
                payload: Bytes::from(text),
            });
        }
        if set_id == "276" {
            let parsed = read_276(set);
            if parsed.has_errors() {
                return self.reply_999(&ids, group, &parsed.problems);
            }
            let now = Utc::now().naive_utc();
            let answer = status::answer(&self.catalog, &self.claims, &parsed.value, now);
            let envelope = ids.envelope(self.next_control(), now);
            let text =
                write::claim_status_response_interchange(Separators::default(), &envelope, &answer)
                    .map_err(unwritable)?;
            return Ok(HandlerReply {
                payload_type: PayloadType::X12_277_RESPONSE,
                payload: Bytes::from(text),
            });
        }
        let parsed = read_270(set);
        if parsed.has_errors() {
            return self.reply_999(&ids, group, &parsed.problems);
        }
        let q = parsed.value;
        let response = match fault {
            Some(Fault::UnableToRespond) => adjudicate::unable_to_respond(&self.catalog, &q),
            Some(Fault::WrongMember) => self.wrong_member(&q, today),
            _ => adjudicate::answer(&self.catalog, &q, today),
        };
        self.reply_271(&ids, response)
    }

    /// Answers about another member of the catalog, with another trace number.
    fn wrong_member(&self, q: &EligibilityInquiry, today: NaiveDate) -> EligibilityResponse {
        let other = self
            .catalog
            .members()
            .iter()
            .find(|m| m.entry.member_id != q.member_id);
        let Some(other) = other else {
            return adjudicate::answer(&self.catalog, q, today);
        };
        let mut asked = q.clone();
        asked.payer_id = other.plan.entry.payer.clone();
        asked.member_id = other.entry.member_id.clone();
        asked.subscriber_name =
            medbill_x12::model::PersonName::new(&other.entry.last_name, &other.entry.first_name);
        asked.subscriber_birth_date = Some(other.entry.birth_date);
        asked.dependent = None;
        asked.trace.number = format!("SIM{:010}", self.next_control());
        adjudicate::answer(&self.catalog, &asked, today)
    }

    fn reply_271(
        &self,
        ids: &Parties,
        response: EligibilityResponse,
    ) -> Result<HandlerReply, HandlerError> {
        let now = Utc::now().naive_utc();
        let answer = EligibilityAnswer {
            created_date: now.date(),
            created_time: now.time(),
            response,
        };
        let envelope = ids.envelope(self.next_control(), now);
        let text =
            write::eligibility_response_interchange(Separators::default(), &envelope, &answer)
                .map_err(unwritable)?;
        Ok(HandlerReply {
            payload_type: PayloadType::X12_271_RESPONSE,
            payload: Bytes::from(text),
        })
    }

    fn reply_999(
        &self,
        ids: &Parties,
        group: &medbill_x12::Group<'_>,
        problems: &[medbill_x12::Error],
    ) -> Result<HandlerReply, HandlerError> {
        let ack = write::acknowledge_group(group, problems);
        let envelope = ids.envelope(self.next_control(), Utc::now().naive_utc());
        let text =
            write::ack_interchange(Separators::default(), &envelope, &ack).map_err(unwritable)?;
        info!(
            status = %ack.status,
            problems = problems.len(),
            "real-time request failed syntax checks; answered with a 999"
        );
        Ok(HandlerReply {
            payload_type: PayloadType::X12_999_RESPONSE,
            payload: Bytes::from(text),
        })
    }
}

#[async_trait]
impl CoreHandler for SimHandler {
    async fn handle(&self, request: InboundRequest) -> Result<HandlerReply, HandlerError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let real_time = request.payload_type == PayloadType::X12_270_REQUEST
            || request.payload_type == PayloadType::X12_276_REQUEST
            || request.payload_type == PayloadType::X12_278_REQUEST;
        let batch = request.payload_type.is_batch_submission()
            || request.payload_type.retrieved_kind().is_some()
            || request.payload_type == PayloadType::BATCH_RESULTS_ACK;
        match request.processing_mode {
            _ if !real_time && !batch => return Err(HandlerError::PayloadTypeNotSupported),
            ProcessingMode::RealTime if !real_time => {
                return Err(HandlerError::ProcessingModeNotSupported);
            }
            ProcessingMode::Batch if !batch => {
                return Err(HandlerError::ProcessingModeNotSupported);
            }
            _ => {}
        }
        let fault = self.faults.take();
        if let Some(fault) = &fault {
            debug!(payload_id = %request.payload_id, ?fault, "fault switch applied");
        }
        match fault {
            Some(Fault::Unavailable) => return Err(HandlerError::Unavailable),
            Some(Fault::ReceiverDown) => {
                return Err(HandlerError::ReceiverDown(
                    "the payer's eligibility system is offline".into(),
                ));
            }
            Some(Fault::Garbage) => {
                return Ok(HandlerReply {
                    payload_type: PayloadType::X12_271_RESPONSE,
                    payload: Bytes::from_static(GARBAGE),
                });
            }
            Some(Fault::Delay { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
            _ => {}
        }
        if batch {
            return self.batch(&request).await;
        }
        let today = Utc::now().date_naive();
        let expected = if request.payload_type == PayloadType::X12_276_REQUEST {
            "276"
        } else if request.payload_type == PayloadType::X12_278_REQUEST {
            "278"
        } else {
            "270"
        };
        self.respond(expected, &request.payload, fault.as_ref(), today)
    }
}

impl SimHandler {
    /// Answers the batch requests: submission, results retrieval, results acknowledgement.
    async fn batch(&self, request: &InboundRequest) -> Result<HandlerReply, HandlerError> {
        let sender = request.sender_id.as_str();
        if request.payload_type.is_batch_submission() {
            let summary = self
                .claims
                .intake(
                    &self.catalog,
                    sender,
                    &request.payload,
                    Utc::now().naive_utc(),
                    &self.sender_id,
                    &mut || self.next_control(),
                )
                .map_err(|e| illegal_payload(&e.to_string()))?;
            debug!(payload_id = %request.payload_id, ?summary, "batch taken in");
            // A receipt only: every acknowledgement is picked up by retrieval.
            return Ok(HandlerReply {
                payload_type: PayloadType::BATCH_SUBMISSION_RESPONSE,
                payload: Bytes::new(),
            });
        }
        if let Some(kind) = request.payload_type.retrieved_kind() {
            // Claims due for payment are paid first, their 835s queued behind waiting files;
            // a large pass is CPU work, kept off the async workers.
            let (catalog, claims, control) = (
                self.catalog.clone(),
                self.claims.clone(),
                self.control.clone(),
            );
            let (submitter, sender_id) = (sender.to_owned(), self.sender_id.clone());
            tokio::task::spawn_blocking(move || {
                claims.settle_due(
                    &catalog,
                    &submitter,
                    Utc::now().naive_utc(),
                    &sender_id,
                    &mut || next_control(&control),
                )
            })
            .await
            .map_err(|e| HandlerError::ReceiverDown(format!("payment pass failed: {e}")))?
            .map_err(unwritable)?;
            return Ok(match self.claims.next_file(sender, kind) {
                Some(file) => HandlerReply {
                    payload_type: file.payload_type,
                    payload: file.contents,
                },
                None => HandlerReply {
                    payload_type: PayloadType::NO_BATCH_RESULTS_FILE,
                    payload: Bytes::new(),
                },
            });
        }
        let file_id = std::str::from_utf8(&request.payload)
            .map(str::trim)
            .map_err(|_| illegal_payload("the acknowledged file id is not text"))?;
        let removed = self.claims.acknowledge(sender, file_id);
        debug!(payload_id = %request.payload_id, removed, "batch result acknowledged");
        Ok(HandlerReply {
            payload_type: PayloadType::BATCH_RESULTS_RESPONSE,
            payload: Bytes::new(),
        })
    }
}

/// ISA13 runs 1..=999999999 and then starts again.
fn next_control(counter: &AtomicU32) -> u32 {
    counter.fetch_add(1, Ordering::Relaxed) % 999_999_999 + 1
}

fn illegal_payload(message: &str) -> HandlerError {
    HandlerError::Core {
        code: ErrorCode::Illegal(EnvelopeField::Payload),
        message: message.to_owned(),
    }
}

fn unwritable(error: WriteError) -> HandlerError {
    // Writer errors name fields and rules, never values, so they may travel back.
    info!(%error, "answer could not be written");
    illegal_payload(&format!("the answer could not be written: {error}"))
}

/// The interchange ids of an answer: the request's sender and receiver swapped.
pub(crate) struct Parties {
    sender_qualifier: String,
    sender_id: String,
    receiver_qualifier: String,
    receiver_id: String,
    group_sender: String,
    group_receiver: String,
    usage: Usage,
}

impl Parties {
    pub(crate) fn of(interchange: &Interchange<'_>, fallback: &str) -> Self {
        let isa = interchange.isa.as_ref();
        let gs = interchange.groups.first().and_then(|g| g.gs.as_ref());
        let field = |seg: Option<&Segment<'_>>, n: usize, max: usize| -> Option<String> {
            let t = seg?.text(n);
            let t = t.trim();
            (!t.is_empty() && t.len() <= max && t.bytes().all(|b| b.is_ascii_graphic()))
                .then(|| t.to_owned())
        };
        let qualifier = |n| field(isa, n, 2).filter(|q| q.len() == 2);
        let fallback = fallback.to_owned();
        Self {
            sender_qualifier: qualifier(7).unwrap_or_else(|| "ZZ".into()),
            sender_id: field(isa, 8, 15).unwrap_or_else(|| fallback.clone()),
            receiver_qualifier: qualifier(5).unwrap_or_else(|| "ZZ".into()),
            receiver_id: field(isa, 6, 15).unwrap_or_else(|| "UNKNOWN".into()),
            group_sender: field(gs, 3, 15)
                .filter(|g| g.len() >= 2)
                .unwrap_or_else(|| fallback.clone()),
            group_receiver: field(gs, 2, 15)
                .filter(|g| g.len() >= 2)
                .unwrap_or_else(|| "UNKNOWN".into()),
            usage: if isa.is_some_and(|s| s.text(15) == "P") {
                Usage::Production
            } else {
                Usage::Test
            },
        }
    }

    pub(crate) fn envelope(&self, control: u32, now: chrono::NaiveDateTime) -> Envelope {
        let interchange = InterchangeHeader {
            sender_qualifier: self.sender_qualifier.clone(),
            sender_id: self.sender_id.clone(),
            receiver_qualifier: self.receiver_qualifier.clone(),
            receiver_id: self.receiver_id.clone(),
            date: now.date(),
            time: now.time(),
            control_number: control,
            ack_requested: false,
            usage: self.usage,
        };
        let group = GroupHeader::new(
            self.group_sender.clone(),
            self.group_receiver.clone(),
            now.date(),
            now.time(),
            control,
        );
        Envelope {
            interchange,
            group,
            set_control_number: 1,
        }
    }
}
