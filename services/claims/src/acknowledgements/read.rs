//! Reading an acknowledgement file: which kind it is and what it says, with problems named by
//! segment and position.

use medbill_x12::Document;
use medbill_x12::model::ack::{FunctionalAck, InterchangeAck};
use medbill_x12::model::claim_status::ClaimStatusResponse;
use medbill_x12::transactions::ack999::read_999;
use medbill_x12::transactions::claim_status277::read_277;
use medbill_x12::transactions::ta1::read_ta1s;

/// Which acknowledgement a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    /// TA1 interchange acknowledgement.
    Ta1,
    /// 999 implementation acknowledgement.
    Implementation999,
    /// 277CA claim acknowledgement.
    Claim277Ca,
}

impl AckKind {
    /// The stored kind: "TA1", "999" or "277CA".
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ta1 => "TA1",
            Self::Implementation999 => "999",
            Self::Claim277Ca => "277CA",
        }
    }
}

/// What an acknowledgement file says.
#[derive(Debug, Clone)]
pub enum AckBody {
    /// The TA1s of the file.
    Ta1(Vec<InterchangeAck>),
    /// One 999 per transaction set.
    Implementation(Vec<FunctionalAck>),
    /// One 277CA per transaction set.
    ClaimAck(Vec<ClaimStatusResponse>),
}

/// A read acknowledgement file.
#[derive(Debug, Clone)]
pub struct ReadAck {
    /// Its kind.
    pub kind: AckKind,
    /// ISA13 of the file itself.
    pub interchange_control_number: String,
    /// ISA06 of the file: the payer or clearinghouse that sent it (our route's receiver id).
    pub sender_id: String,
    /// What it says.
    pub body: AckBody,
}

/// Reads `content` as a TA1, 999 or 277CA (`expected` when the caller said which). An error
/// names the first problem's segment and position in plain words.
pub fn read(content: &[u8], expected: Option<AckKind>) -> Result<ReadAck, String> {
    let doc = Document::parse(content);
    if let Some(problem) = doc.problems.iter().find(|p| p.is_error()) {
        return Err(format!("not a readable X12 file: {problem}"));
    }
    let Some(interchange) = doc.interchanges.first() else {
        return Err("not an X12 file: no ISA segment".to_owned());
    };
    let Some(isa) = interchange.isa.as_ref() else {
        return Err("not an X12 interchange: no ISA segment at byte 0".to_owned());
    };
    let interchange_control_number = isa.text(13).trim().to_owned();
    let sender_id = isa.text(6).trim().to_owned();
    let functional = interchange
        .groups
        .first()
        .and_then(|g| g.gs.as_ref())
        .map(|gs| gs.text(1).into_owned());
    let kind = match (functional.as_deref(), interchange.ta1.is_empty()) {
        (None, false) => AckKind::Ta1,
        (Some("FA"), _) => AckKind::Implementation999,
        (Some("HN"), _) => AckKind::Claim277Ca,
        (Some(other), _) => {
            return Err(format!(
                "GS01 is {other:?}: an acknowledgement is a TA1, a 999 (FA) or a 277CA (HN)"
            ));
        }
        (None, true) => {
            return Err("the interchange holds no TA1 and no functional group".to_owned());
        }
    };
    if let Some(expected) = expected
        && expected != kind
    {
        return Err(format!(
            "the file is a {}, not the {} the request named",
            kind.as_str(),
            expected.as_str()
        ));
    }
    let first_error = |problems: &[medbill_x12::Error]| {
        problems
            .iter()
            .find(|p| p.is_error())
            .map(|p| format!("{} unreadable: {p}", kind.as_str()))
    };
    let body = match kind {
        AckKind::Ta1 => {
            let parsed = read_ta1s(interchange);
            if let Some(e) = first_error(&parsed.problems) {
                return Err(e);
            }
            AckBody::Ta1(parsed.value)
        }
        AckKind::Implementation999 => {
            let mut acks = Vec::new();
            for (_, _, set) in doc.sets() {
                let parsed = read_999(set);
                if let Some(e) = first_error(&parsed.problems) {
                    return Err(e);
                }
                acks.push(parsed.value);
            }
            AckBody::Implementation(acks)
        }
        AckKind::Claim277Ca => {
            let mut acks = Vec::new();
            for (_, _, set) in doc.sets() {
                let parsed = read_277(set);
                if let Some(e) = first_error(&parsed.problems) {
                    return Err(e);
                }
                acks.push(parsed.value);
            }
            AckBody::ClaimAck(acks)
        }
    };
    Ok(ReadAck {
        kind,
        interchange_control_number,
        sender_id,
        body,
    })
}
