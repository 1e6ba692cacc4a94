//! What every exchange with a payer shares, the 270/271 of eligibility checks and the 278 of prior
//! authorizations alike: the envelope identities and control numbers, the time recorded, and what
//! a transport failure means for the caller.

use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use medbill_connect::{ConnectError, ErrorKind};
use medbill_x12::write::{Envelope, GroupHeader, InterchangeHeader, Usage};
use tonic::Status;

/// Envelope identities of one exchange.
#[derive(Debug, Clone)]
pub struct Parties {
    /// ISA06 / GS02: who we are to the payer.
    pub sender_id: String,
    /// ISA08 / GS03: the payer (or its clearinghouse).
    pub receiver_id: String,
}

/// ISA13/GS06 control numbers of the interchanges one engine sends.
#[derive(Debug)]
pub struct ControlNumbers(AtomicU32);

impl Default for ControlNumbers {
    fn default() -> Self {
        // Control numbers only need to differ between nearby interchanges; start from the clock
        // so a restart does not reuse the last ones.
        let seed = u32::try_from(Utc::now().timestamp().rem_euclid(900_000_000)).unwrap_or(1);
        Self(AtomicU32::new(seed))
    }
}

impl ControlNumbers {
    /// Returns the next control number (1 to 999,999,999).
    pub fn next(&self) -> u32 {
        self.0.fetch_add(1, Ordering::Relaxed) % 999_999_999 + 1
    }
}

/// Returns the envelope of one interchange to the payer with control number `control` (ISA13,
/// GS06 and ST02 derive from it).
pub fn envelope(parties: &Parties, control: u32, now: DateTime<Utc>) -> Envelope {
    let date = now.date_naive();
    let time = now.time();
    Envelope {
        interchange: InterchangeHeader {
            sender_qualifier: "ZZ".to_owned(),
            sender_id: fit(&parties.sender_id, 15),
            receiver_qualifier: "ZZ".to_owned(),
            receiver_id: fit(&parties.receiver_id, 15),
            date,
            time,
            control_number: control,
            ack_requested: false,
            usage: Usage::Production,
        },
        group: GroupHeader::new(
            fit(&parties.sender_id, 15),
            fit(&parties.receiver_id, 15),
            date,
            time,
            control,
        ),
        // ST02 is 4 to 9 digits and never zero.
        set_control_number: control % 9_999 + 1,
    }
}

fn fit(id: &str, max: usize) -> String {
    let trimmed: String = id.chars().take(max).collect();
    if trimmed.chars().count() < 2 {
        format!("{trimmed:<2}").replace(' ', "X")
    } else {
        trimmed
    }
}

/// Maps a transport failure to the recorded message and the caller's status; `subject` names
/// what was being done ("eligibility check <id>").
pub fn failure(subject: &str, payer: &str, e: &ConnectError) -> (String, Status) {
    let attempts = e.attempts();
    let message = match e.kind() {
        ErrorKind::Timeout => {
            format!("payer {payer} did not answer in time ({attempts} attempt(s)): {e}")
        }
        ErrorKind::Unavailable => {
            format!("payer {payer} could not be reached ({attempts} attempt(s)): {e}")
        }
        ErrorKind::Unauthorized => {
            format!("payer {payer} refused our connection credentials or identity: {e}")
        }
        ErrorKind::Rejected => format!("payer {payer} refused the request: {e}"),
        ErrorKind::Protocol => format!("payer {payer} answered with a broken response: {e}"),
        ErrorKind::Local => format!("payer {payer} cannot be reached from here: {e}"),
    };
    let text = format!("{subject}: {message}");
    let status = match e.kind() {
        ErrorKind::Timeout => Status::deadline_exceeded(text),
        ErrorKind::Unavailable | ErrorKind::Protocol => Status::unavailable(text),
        ErrorKind::Unauthorized | ErrorKind::Rejected | ErrorKind::Local => {
            Status::failed_precondition(text)
        }
    };
    (message, status)
}

/// Returns the current time at the microsecond precision the database keeps.
pub fn now() -> DateTime<Utc> {
    let micros = medbill_storage::time::now_micros();
    medbill_storage::time::from_micros(micros).unwrap_or_else(Utc::now)
}
