//! The transport-neutral API: real-time exchanges and batch files.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::envelope::PayloadType;
use crate::error::ConnectError;

/// One real-time X12 request (270, 276).
#[derive(Clone, Debug)]
pub struct RealTimeRequest {
    /// What the payload is, e.g. [`PayloadType::X12_270_REQUEST`].
    pub payload_type: PayloadType,
    /// The X12 interchange.
    pub payload: Bytes,
}

/// The answer to a real-time request.
#[derive(Clone, Debug)]
pub struct RealTimeResponse {
    /// The payload id of the exchange (ours; the payer echoes it); log this, not the payload.
    pub payload_id: Uuid,
    /// What the payload is, e.g. [`PayloadType::X12_271_RESPONSE`] (or a 999 when the request failed syntax).
    pub payload_type: PayloadType,
    /// The X12 interchange returned.
    pub payload: Bytes,
    /// Attempts it took (1 when the first one succeeded).
    pub attempts: u32,
}

/// Sends one X12 payload and waits for the answer (270 -> 271, 276 -> 277).
#[async_trait]
pub trait RealTimeTransport: Send + Sync {
    /// Exchanges one request for its response, retrying retryable failures per the payer's policy.
    async fn exchange(&self, request: RealTimeRequest) -> Result<RealTimeResponse, ConnectError>;
}

/// A batch file to send (an 837 interchange, for instance).
#[derive(Clone, Debug)]
pub struct OutboundFile {
    /// A short label that goes into the file name (letters, digits, `-`, `_`), e.g. `837P`.
    pub label: String,
    /// The file contents.
    pub contents: Bytes,
}

/// Proof that a batch file was handed over.
#[derive(Clone, Debug)]
pub struct SubmissionReceipt {
    /// The id of the submission: the file name in a mailbox, the payload id over HTTP.
    pub submission_id: String,
    /// The payload id given to the file.
    pub payload_id: Uuid,
    /// Bytes sent.
    pub size: u64,
    /// The receiver's immediate answer, when the transport has one (HTTP batch submission response).
    pub reply: Option<Bytes>,
}

/// A batch file received (999, 277CA, 835), waiting to be acknowledged.
#[derive(Clone, Debug)]
pub struct InboundFile {
    /// The stable id of the file: the same after a restart, so consumers can deduplicate by it.
    pub file_id: String,
    /// The file contents.
    pub contents: Bytes,
    /// SHA-1 of the contents (hex), for deduplication and audit.
    pub checksum: String,
    /// When the file arrived (file modification time in a mailbox).
    pub received_at: DateTime<Utc>,
}

/// Which inbound files a retrieval asks for. One payer route carries both kinds back: medbill's
/// claims service takes the acknowledgements and remittance the 835s, so each asks for its own and
/// neither waits behind files left for the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InboundKind {
    /// Any waiting file.
    Any,
    /// Acknowledgements of submitted batches: TA1, 999, 277CA.
    Acknowledgements,
    /// Remittance advice: 835.
    Remittance,
}

impl InboundKind {
    /// Tells a file's kind from its start: remittance when its first functional group is a
    /// payment/advice group (GS01 `HP`), acknowledgements otherwise (a TA1 has no group).
    pub fn of(contents: &[u8]) -> Self {
        if first_group_id(contents) == Some(b"HP".as_slice()) {
            Self::Remittance
        } else {
            Self::Acknowledgements
        }
    }

    /// Tells whether a retrieval of this kind takes `contents`.
    pub fn takes(self, contents: &[u8]) -> bool {
        self == Self::Any || Self::of(contents) == self
    }
}

/// Bytes of a file's start that hold its ISA and the segment after it (TA1s, then GS): enough to
/// tell its kind without reading a large 835 whole.
pub(crate) const KIND_PREFIX: usize = 1024;

/// GS01 of the first functional group, looked for in the segments after the ISA (TA1s may come
/// first); `None` for a file without a group or one that is not X12.
fn first_group_id(contents: &[u8]) -> Option<&[u8]> {
    // The ISA is 106 bytes with the element separator at 3 and the segment terminator at 105.
    if !contents.starts_with(b"ISA") {
        return None;
    }
    let separator = *contents.get(3)?;
    let terminator = *contents.get(105)?;
    contents
        .get(106..)?
        .split(|b| *b == terminator)
        .map(|segment| segment.trim_ascii_start())
        .take_while(|segment| !segment.starts_with(b"IEA"))
        .find(|segment| segment.starts_with(b"GS") && segment.get(2) == Some(&separator))
        .and_then(|gs| gs.get(3..)?.split(|b| *b == separator).next())
}

/// Sends and receives batch files.
///
/// Delivery of inbound files is at least once: [`BatchTransport::next_inbound`] returns the oldest file of
/// the kind asked for not yet acknowledged, the same one again until [`BatchTransport::acknowledge`] is
/// called (also across restarts), so a consumer stores the file first and acknowledges it second,
/// deduplicating by `file_id`.
#[async_trait]
pub trait BatchTransport: Send + Sync {
    /// Hands a file to the trading partner; when this returns Ok the file is durably handed over.
    async fn submit(&self, file: OutboundFile) -> Result<SubmissionReceipt, ConnectError>;

    /// Returns the oldest inbound file of `kind` not yet acknowledged, or None when there is none.
    async fn next_inbound(&self, kind: InboundKind) -> Result<Option<InboundFile>, ConnectError>;

    /// Marks a file processed so it is never returned again; acknowledging twice is harmless.
    async fn acknowledge(&self, file_id: &str) -> Result<(), ConnectError>;
}
