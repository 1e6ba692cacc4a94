//! The CAQH CORE Connectivity Rule vC2.2.0 envelope (HTTP MIME multipart/form-data form).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, FixedOffset, NaiveDateTime, SecondsFormat, Utc};
use sha1::Digest as _;
use uuid::Uuid;

use crate::multipart::{self, MultipartError};

/// The `CORERuleVersion` this crate speaks.
pub const CORE_RULE_VERSION: &str = "2.2.0";

/// Longest `SenderID` / `ReceiverID` accepted (CORE: up to 50 characters).
const MAX_PARTY_ID_LEN: usize = 50;

/// The envelope fields, with their CORE spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EnvelopeField {
    /// `ProcessingMode`.
    ProcessingMode,
    /// `PayloadType`.
    PayloadType,
    /// `PayloadID`.
    PayloadId,
    /// `TimeStamp`.
    TimeStamp,
    /// `SenderID`.
    SenderId,
    /// `ReceiverID`.
    ReceiverId,
    /// `CORERuleVersion`.
    CoreRuleVersion,
    /// `Payload`.
    Payload,
    /// `PayloadLength` (batch only).
    PayloadLength,
    /// `CheckSum` (batch only; SHA-1 of the payload, hex).
    CheckSum,
    /// `ErrorCode` (responses only).
    ErrorCode,
    /// `ErrorMessage` (responses only).
    ErrorMessage,
}

impl EnvelopeField {
    /// Returns the field name as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProcessingMode => "ProcessingMode",
            Self::PayloadType => "PayloadType",
            Self::PayloadId => "PayloadID",
            Self::TimeStamp => "TimeStamp",
            Self::SenderId => "SenderID",
            Self::ReceiverId => "ReceiverID",
            Self::CoreRuleVersion => "CORERuleVersion",
            Self::Payload => "Payload",
            Self::PayloadLength => "PayloadLength",
            Self::CheckSum => "CheckSum",
            Self::ErrorCode => "ErrorCode",
            Self::ErrorMessage => "ErrorMessage",
        }
    }

    const ALL: [Self; 12] = [
        Self::ProcessingMode,
        Self::PayloadType,
        Self::PayloadId,
        Self::TimeStamp,
        Self::SenderId,
        Self::ReceiverId,
        Self::CoreRuleVersion,
        Self::Payload,
        Self::PayloadLength,
        Self::CheckSum,
        Self::ErrorCode,
        Self::ErrorMessage,
    ];

    fn from_wire(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl fmt::Display for EnvelopeField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `ProcessingMode`: real time (one request, one response) or batch (files).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcessingMode {
    /// `RealTime`.
    RealTime,
    /// `Batch`.
    Batch,
}

impl ProcessingMode {
    /// Returns the wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RealTime => "RealTime",
            Self::Batch => "Batch",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "RealTime" => Some(Self::RealTime),
            "Batch" => Some(Self::Batch),
            _ => None,
        }
    }
}

impl fmt::Display for ProcessingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `PayloadType`: what the payload is (`X12_270_Request_005010X279A1`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PayloadType(Cow<'static, str>);

impl PayloadType {
    /// A 270 eligibility inquiry.
    pub const X12_270_REQUEST: Self = Self(Cow::Borrowed("X12_270_Request_005010X279A1"));
    /// A 271 eligibility response.
    pub const X12_271_RESPONSE: Self = Self(Cow::Borrowed("X12_271_Response_005010X279A1"));
    /// A 276 claim status request.
    pub const X12_276_REQUEST: Self = Self(Cow::Borrowed("X12_276_Request_005010X212"));
    /// A 277 claim status response.
    pub const X12_277_RESPONSE: Self = Self(Cow::Borrowed("X12_277_Response_005010X212"));
    /// A 278 health care services review request (prior authorization), or an inquiry about a
    /// pended one; the CORE Phase IV name of the 005010X217 request.
    pub const X12_278_REQUEST: Self = Self(Cow::Borrowed("X12_278_Request_005010X217E1_2"));
    /// A 278 health care services review response.
    pub const X12_278_RESPONSE: Self = Self(Cow::Borrowed("X12_278_Response_005010X217E1_2"));
    /// A 999 acknowledgement returned in real time when the request does not pass syntax checks.
    pub const X12_999_RESPONSE: Self = Self(Cow::Borrowed("X12_999_Response_005010X231A1"));
    /// A TA1 interchange acknowledgement returned in real time.
    pub const X12_TA1_RESPONSE: Self = Self(Cow::Borrowed("X12_TA1_Response_00501X231A1"));
    /// A 277CA claim acknowledgement returned for pickup after an 837 batch. The CORE v2.2.0
    /// table names no 277CA type; this follows its `X12_<set>_Response_<version>` pattern.
    pub const X12_277CA_RESPONSE: Self = Self(Cow::Borrowed("X12_277CA_Response_005010X214"));
    /// An 837P professional claim batch (CORE batch submission of one transaction type).
    pub const X12_837P_REQUEST: Self = Self(Cow::Borrowed("X12_837_Request_005010X222A1"));
    /// An 837I institutional claim batch.
    pub const X12_837I_REQUEST: Self = Self(Cow::Borrowed("X12_837_Request_005010X223A2"));
    /// A batch of any other or mixed content (CORE `BatchSubmissionMixed`).
    pub const BATCH_SUBMISSION: Self =
        Self(Cow::Borrowed("X12_005010_Request_BatchSubmissionMixed"));
    /// The receiver's answer to a batch submission (a receipt; results come by retrieval).
    pub const BATCH_SUBMISSION_RESPONSE: Self =
        Self(Cow::Borrowed("X12_005010_Response_BatchSubmissionMixed"));
    /// A request for the next waiting batch result file (TA1, 999, 277CA, 835).
    pub const BATCH_RESULTS_RETRIEVAL: Self =
        Self(Cow::Borrowed("X12_005010_Request_BatchResultsMixed"));
    /// A request for the next waiting acknowledgement (TA1, 999, 277CA) only; a medbill name,
    /// like the mixed type, for [`InboundKind::Acknowledgements`](crate::InboundKind).
    pub const BATCH_RESULTS_RETRIEVAL_ACKNOWLEDGEMENTS: Self = Self(Cow::Borrowed(
        "X12_005010_Request_BatchResultsAcknowledgements",
    ));
    /// A request for the next waiting 835 only; a medbill name, for
    /// [`InboundKind::Remittance`](crate::InboundKind).
    pub const BATCH_RESULTS_RETRIEVAL_835: Self =
        Self(Cow::Borrowed("X12_005010_Request_BatchResults835"));
    /// A batch result file returned by a retrieval, when the receiver does not name its type.
    pub const BATCH_RESULTS_RESPONSE: Self =
        Self(Cow::Borrowed("X12_005010_Response_BatchResultsMixed"));
    /// The answer to a retrieval when no result file waits (empty payload).
    pub const NO_BATCH_RESULTS_FILE: Self = Self(Cow::Borrowed("X12_NoBatchResultsFile"));
    /// The confirmation that a retrieved result file was stored, so the receiver stops offering it;
    /// the payload is the file id (SHA-1 of the file, hex). CORE's own confirmation is a 999
    /// submission (`X12_999_Request_005010X231A1`); medbill names the file instead, which also
    /// covers TA1 files that have no functional group to acknowledge.
    pub const BATCH_RESULTS_ACK: Self = Self(Cow::Borrowed(
        "X12_005010_Request_Batch_Results_Acknowledgement",
    ));

    /// Builds a payload type; it must be 1 to 100 characters of letters, digits and `_`.
    pub fn new(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        if value.is_empty() || value.len() > 100 {
            return Err("must be 1 to 100 characters".into());
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err("may hold only letters, digits and '_'".into());
        }
        Ok(Self(Cow::Owned(value)))
    }

    /// Returns the wire spelling.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the submission type of a batch file: the 837P or 837I type when its GS08 says so,
    /// [`Self::BATCH_SUBMISSION`] otherwise.
    pub fn for_batch(contents: &[u8]) -> Self {
        // The guide id appears in GS08 and ST03 of every set of that guide.
        let gs08 = |version: &[u8]| memchr::memmem::find(contents, version).is_some();
        if gs08(b"005010X222A1") {
            Self::X12_837P_REQUEST
        } else if gs08(b"005010X223A2") {
            Self::X12_837I_REQUEST
        } else {
            Self::BATCH_SUBMISSION
        }
    }

    /// The retrieval request type that asks for files of `kind`.
    pub fn retrieval(kind: crate::InboundKind) -> Self {
        match kind {
            crate::InboundKind::Any => Self::BATCH_RESULTS_RETRIEVAL,
            crate::InboundKind::Acknowledgements => Self::BATCH_RESULTS_RETRIEVAL_ACKNOWLEDGEMENTS,
            crate::InboundKind::Remittance => Self::BATCH_RESULTS_RETRIEVAL_835,
        }
    }

    /// The kind of file a retrieval request of this type asks for, when it is one.
    pub fn retrieved_kind(&self) -> Option<crate::InboundKind> {
        [
            crate::InboundKind::Any,
            crate::InboundKind::Acknowledgements,
            crate::InboundKind::Remittance,
        ]
        .into_iter()
        .find(|kind| Self::retrieval(*kind) == *self)
    }

    /// Tells whether this is a batch submission type medbill sends (an 837 or the mixed type).
    pub fn is_batch_submission(&self) -> bool {
        *self == Self::BATCH_SUBMISSION
            || *self == Self::X12_837P_REQUEST
            || *self == Self::X12_837I_REQUEST
    }

    /// Returns the response type that answers this real-time request type, when it is a known one.
    pub fn response_type(&self) -> Option<Self> {
        if *self == Self::X12_270_REQUEST {
            Some(Self::X12_271_RESPONSE)
        } else if *self == Self::X12_276_REQUEST {
            Some(Self::X12_277_RESPONSE)
        } else if *self == Self::X12_278_REQUEST {
            Some(Self::X12_278_RESPONSE)
        } else {
            None
        }
    }
}

impl fmt::Display for PayloadType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `ErrorCode` of a CORE response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `Success`.
    Success,
    /// `<Field>Required`: a mandatory field is missing or empty.
    Required(EnvelopeField),
    /// `<Field>Illegal`: a field's value is not allowed.
    Illegal(EnvelopeField),
    /// `VersionMismatch`: the `CORERuleVersion` is not one the receiver speaks.
    VersionMismatch,
    /// `PayloadTypeNotSupported`.
    PayloadTypeNotSupported,
    /// `ProcessingModeNotSupported`.
    ProcessingModeNotSupported,
    /// `SenderIDNotAuthorized`: the credentials do not allow this `SenderID`.
    SenderIdNotAuthorized,
    /// `ReceiverIDNotAuthorized`: the sender may not send to this `ReceiverID`.
    ReceiverIdNotAuthorized,
    /// `Receiver Down`: the payer behind the clearinghouse cannot answer now (retryable).
    ReceiverDown,
    /// `Server Busy`: the receiver is overloaded (retryable).
    ServerBusy,
    /// Any other code, kept verbatim.
    Other(String),
}

impl ErrorCode {
    /// Parses the wire spelling.
    pub fn parse(value: &str) -> Self {
        match value {
            "Success" => Self::Success,
            "VersionMismatch" => Self::VersionMismatch,
            "PayloadTypeNotSupported" => Self::PayloadTypeNotSupported,
            "ProcessingModeNotSupported" => Self::ProcessingModeNotSupported,
            "SenderIDNotAuthorized" => Self::SenderIdNotAuthorized,
            "ReceiverIDNotAuthorized" => Self::ReceiverIdNotAuthorized,
            "Receiver Down" | "ReceiverDown" => Self::ReceiverDown,
            "Server Busy" | "ServerBusy" => Self::ServerBusy,
            other => {
                if let Some(field) = other
                    .strip_suffix("Required")
                    .and_then(EnvelopeField::from_wire)
                {
                    Self::Required(field)
                } else if let Some(field) = other
                    .strip_suffix("Illegal")
                    .and_then(EnvelopeField::from_wire)
                {
                    Self::Illegal(field)
                } else {
                    Self::Other(other.to_owned())
                }
            }
        }
    }

    /// Returns true when the same request may succeed later (the receiver is down or busy).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::ReceiverDown | Self::ServerBusy)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Success => f.write_str("Success"),
            Self::Required(field) => write!(f, "{field}Required"),
            Self::Illegal(field) => write!(f, "{field}Illegal"),
            Self::VersionMismatch => f.write_str("VersionMismatch"),
            Self::PayloadTypeNotSupported => f.write_str("PayloadTypeNotSupported"),
            Self::ProcessingModeNotSupported => f.write_str("ProcessingModeNotSupported"),
            Self::SenderIdNotAuthorized => f.write_str("SenderIDNotAuthorized"),
            Self::ReceiverIdNotAuthorized => f.write_str("ReceiverIDNotAuthorized"),
            Self::ReceiverDown => f.write_str("Receiver Down"),
            Self::ServerBusy => f.write_str("Server Busy"),
            Self::Other(code) => f.write_str(code),
        }
    }
}

/// Why an envelope was refused; names the field, never its payload.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The body is not a readable multipart form.
    #[error("malformed multipart body: {0}")]
    Multipart(#[from] MultipartError),
    /// A mandatory field is absent or empty.
    #[error("envelope field {0} is required")]
    Required(EnvelopeField),
    /// A field has a value that is not allowed.
    #[error("envelope field {field} is illegal: {reason}")]
    Illegal {
        /// The field.
        field: EnvelopeField,
        /// What is wrong with it.
        reason: String,
    },
    /// The `CORERuleVersion` is not `2.2.0`.
    #[error("CORERuleVersion {0:?} is not supported (expected 2.2.0)")]
    VersionMismatch(String),
}

impl EnvelopeError {
    /// Returns the CORE error code a receiver answers this with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::Multipart(_) => ErrorCode::Required(EnvelopeField::PayloadType),
            Self::Required(field) => ErrorCode::Required(*field),
            Self::Illegal { field, .. } => ErrorCode::Illegal(*field),
            Self::VersionMismatch(_) => ErrorCode::VersionMismatch,
        }
    }

    /// Returns the field at fault, when there is one.
    pub fn field(&self) -> Option<EnvelopeField> {
        match self {
            Self::Required(field) | Self::Illegal { field, .. } => Some(*field),
            Self::VersionMismatch(_) => Some(EnvelopeField::CoreRuleVersion),
            Self::Multipart(_) => None,
        }
    }
}

/// The fields shared by CORE requests and responses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// `ProcessingMode`.
    pub processing_mode: ProcessingMode,
    /// `PayloadType`.
    pub payload_type: PayloadType,
    /// `PayloadID`: a UUID naming this message (a retry reuses it so the receiver can deduplicate).
    pub payload_id: Uuid,
    /// `TimeStamp`.
    pub timestamp: DateTime<FixedOffset>,
    /// `SenderID`.
    pub sender_id: String,
    /// `ReceiverID`.
    pub receiver_id: String,
    /// `CORERuleVersion`.
    pub core_rule_version: String,
    /// `Payload`: the X12 (may be empty in error responses and batch retrievals).
    pub payload: Bytes,
}

impl Envelope {
    /// Builds an envelope stamped now with a fresh payload id.
    pub fn new(
        processing_mode: ProcessingMode,
        payload_type: PayloadType,
        sender_id: impl Into<String>,
        receiver_id: impl Into<String>,
        payload: Bytes,
    ) -> Self {
        Self {
            processing_mode,
            payload_type,
            payload_id: Uuid::new_v4(),
            timestamp: Utc::now().fixed_offset(),
            sender_id: sender_id.into(),
            receiver_id: receiver_id.into(),
            core_rule_version: CORE_RULE_VERSION.to_owned(),
            payload,
        }
    }

    fn push_fields<'a>(
        &'a self,
        strings: &'a EnvelopeStrings,
        fields: &mut Vec<(&'static str, &'a [u8])>,
    ) {
        fields.push(("PayloadType", self.payload_type.as_str().as_bytes()));
        fields.push(("ProcessingMode", self.processing_mode.as_str().as_bytes()));
        fields.push(("PayloadID", strings.payload_id.as_bytes()));
        fields.push(("TimeStamp", strings.timestamp.as_bytes()));
        fields.push(("SenderID", self.sender_id.as_bytes()));
        fields.push(("ReceiverID", self.receiver_id.as_bytes()));
        fields.push(("CORERuleVersion", self.core_rule_version.as_bytes()));
        if let Some((length, checksum)) = &strings.batch {
            fields.push(("PayloadLength", length.as_bytes()));
            fields.push(("CheckSum", checksum.as_bytes()));
        }
    }
}

/// Text forms of envelope fields, computed once per encoding.
struct EnvelopeStrings {
    payload_id: String,
    timestamp: String,
    batch: Option<(String, String)>,
}

impl EnvelopeStrings {
    fn of(envelope: &Envelope) -> Self {
        Self {
            payload_id: envelope.payload_id.hyphenated().to_string(),
            timestamp: envelope
                .timestamp
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            batch: (envelope.processing_mode == ProcessingMode::Batch).then(|| {
                (
                    envelope.payload.len().to_string(),
                    checksum(&envelope.payload),
                )
            }),
        }
    }
}

/// Returns the CORE `CheckSum` of a payload: SHA-1, lowercase hex.
pub fn checksum(payload: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(payload))
}

/// A CORE request: the envelope alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreRequest {
    /// The envelope fields.
    pub envelope: Envelope,
}

/// A CORE response: the envelope plus `ErrorCode` and `ErrorMessage`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreResponse {
    /// The envelope fields (the `PayloadID` echoes the request's).
    pub envelope: Envelope,
    /// `ErrorCode`.
    pub error_code: ErrorCode,
    /// `ErrorMessage`: human text from the receiver (never carries the payload).
    pub error_message: String,
}

/// A message body with the content type that goes with it.
#[derive(Clone, Debug)]
pub struct EncodedBody {
    /// The `Content-Type` header value (multipart with its boundary).
    pub content_type: String,
    /// The body bytes.
    pub body: Bytes,
}

impl CoreRequest {
    /// Encodes the request as a multipart/form-data body.
    pub fn encode(&self) -> EncodedBody {
        let strings = EnvelopeStrings::of(&self.envelope);
        let mut fields = Vec::with_capacity(10);
        self.envelope.push_fields(&strings, &mut fields);
        fields.push(("Payload", &self.envelope.payload));
        encode_fields(&fields)
    }

    /// Decodes and validates a request body: every mandatory field present and well formed.
    pub async fn decode(content_type: &str, body: &Bytes) -> Result<Self, EnvelopeError> {
        let form = Form::parse(content_type, body).await?;
        Ok(Self {
            envelope: form.envelope(true)?,
        })
    }
}

impl CoreResponse {
    /// Encodes the response as a multipart/form-data body.
    pub fn encode(&self) -> EncodedBody {
        let strings = EnvelopeStrings::of(&self.envelope);
        let code = self.error_code.to_string();
        let mut fields = Vec::with_capacity(12);
        self.envelope.push_fields(&strings, &mut fields);
        fields.push(("ErrorCode", code.as_bytes()));
        fields.push(("ErrorMessage", self.error_message.as_bytes()));
        fields.push(("Payload", &self.envelope.payload));
        encode_fields(&fields)
    }

    /// Decodes and validates a response body.
    pub async fn decode(content_type: &str, body: &Bytes) -> Result<Self, EnvelopeError> {
        let form = Form::parse(content_type, body).await?;
        let error_code = form
            .text(EnvelopeField::ErrorCode)?
            .filter(|s| !s.is_empty())
            .map(ErrorCode::parse)
            .ok_or(EnvelopeError::Required(EnvelopeField::ErrorCode))?;
        let error_message = form
            .text(EnvelopeField::ErrorMessage)?
            .unwrap_or_default()
            .to_owned();
        // Error responses may legitimately carry an empty payload.
        let envelope = form.envelope(false)?;
        Ok(Self {
            envelope,
            error_code,
            error_message,
        })
    }
}

fn encode_fields(fields: &[(&str, &[u8])]) -> EncodedBody {
    let boundary = multipart::boundary_for(fields.iter().map(|(_, c)| *c));
    EncodedBody {
        content_type: multipart::content_type(&boundary),
        body: multipart::encode(&boundary, fields),
    }
}

/// Checks a `SenderID` / `ReceiverID`: 1 to 50 printable ASCII characters.
pub(crate) fn check_party_id(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_PARTY_ID_LEN {
        return Err(format!("must be 1 to {MAX_PARTY_ID_LEN} characters"));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err("must be printable ASCII".into());
    }
    Ok(())
}

/// The parsed form fields by name.
struct Form {
    fields: HashMap<EnvelopeField, Bytes>,
}

impl Form {
    async fn parse(content_type: &str, body: &Bytes) -> Result<Self, EnvelopeError> {
        let boundary = multipart::boundary_from_content_type(content_type)?;
        let parts = multipart::parse(body, &boundary).await?;
        let mut fields = HashMap::with_capacity(parts.len());
        for part in parts {
            // Unknown fields are ignored: later rule versions add some.
            if let Some(field) = EnvelopeField::from_wire(&part.name)
                && fields.insert(field, part.content).is_some()
            {
                return Err(EnvelopeError::Illegal {
                    field,
                    reason: "given more than once".into(),
                });
            }
        }
        Ok(Self { fields })
    }

    fn text(&self, field: EnvelopeField) -> Result<Option<&str>, EnvelopeError> {
        match self.fields.get(&field) {
            None => Ok(None),
            Some(bytes) => std::str::from_utf8(bytes)
                .map(|s| Some(s.trim()))
                .map_err(|_| EnvelopeError::Illegal {
                    field,
                    reason: "not UTF-8 text".into(),
                }),
        }
    }

    fn required(&self, field: EnvelopeField) -> Result<&str, EnvelopeError> {
        self.text(field)?
            .filter(|s| !s.is_empty())
            .ok_or(EnvelopeError::Required(field))
    }

    fn envelope(&self, payload_required: bool) -> Result<Envelope, EnvelopeError> {
        use EnvelopeField as F;
        let illegal = |field, reason: String| EnvelopeError::Illegal { field, reason };

        let version = self.required(F::CoreRuleVersion)?;
        if version != CORE_RULE_VERSION {
            return Err(EnvelopeError::VersionMismatch(
                version.chars().take(20).collect(),
            ));
        }
        let mode_text = self.required(F::ProcessingMode)?;
        let processing_mode = ProcessingMode::parse(mode_text)
            .ok_or_else(|| illegal(F::ProcessingMode, "must be RealTime or Batch".into()))?;
        let payload_type = PayloadType::new(self.required(F::PayloadType)?)
            .map_err(|reason| illegal(F::PayloadType, reason))?;
        let payload_id = Uuid::parse_str(self.required(F::PayloadId)?)
            .map_err(|_| illegal(F::PayloadId, "not a UUID".into()))?;
        let timestamp = parse_timestamp(self.required(F::TimeStamp)?)
            .ok_or_else(|| illegal(F::TimeStamp, "not an xs:dateTime".into()))?;
        let sender_id = self.required(F::SenderId)?;
        check_party_id(sender_id).map_err(|r| illegal(F::SenderId, r))?;
        let receiver_id = self.required(F::ReceiverId)?;
        check_party_id(receiver_id).map_err(|r| illegal(F::ReceiverId, r))?;
        let payload = self.fields.get(&F::Payload).cloned().unwrap_or_default();
        if payload_required && payload.is_empty() && processing_mode == ProcessingMode::RealTime {
            return Err(EnvelopeError::Required(F::Payload));
        }
        if processing_mode == ProcessingMode::Batch && payload_required {
            // Batch submissions carry their length and checksum so a damaged upload is caught.
            let length = self.required(F::PayloadLength)?;
            let length: usize = length
                .parse()
                .map_err(|_| illegal(F::PayloadLength, "not a non-negative integer".into()))?;
            if length != payload.len() {
                return Err(illegal(
                    F::PayloadLength,
                    format!("says {length} bytes but the payload has {}", payload.len()),
                ));
            }
            let sum = self.required(F::CheckSum)?;
            if !sum.eq_ignore_ascii_case(&checksum(&payload)) {
                return Err(illegal(
                    F::CheckSum,
                    "does not match the payload's SHA-1".into(),
                ));
            }
        }
        Ok(Envelope {
            processing_mode,
            payload_type,
            payload_id,
            timestamp,
            sender_id: sender_id.to_owned(),
            receiver_id: receiver_id.to_owned(),
            core_rule_version: version.to_owned(),
            payload,
        })
    }
}

/// Parses an xs:dateTime: RFC 3339, or without offset (taken as UTC).
fn parse_timestamp(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok().or_else(|| {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|naive| naive.and_utc().fixed_offset())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(mode: ProcessingMode) -> CoreRequest {
        CoreRequest {
            envelope: Envelope::new(
                mode,
                PayloadType::X12_270_REQUEST,
                "MEDBILL01",
                "ACME",
                Bytes::from_static(b"ISA*00*...~IEA*1*000000001~"),
            ),
        }
    }

    #[tokio::test]
    async fn request_round_trips() {
        for mode in [ProcessingMode::RealTime, ProcessingMode::Batch] {
            let original = request(mode);
            let encoded = original.encode();
            let decoded = CoreRequest::decode(&encoded.content_type, &encoded.body)
                .await
                .unwrap();
            // The wire keeps whole seconds.
            assert_eq!(
                decoded.envelope.timestamp.timestamp(),
                original.envelope.timestamp.timestamp()
            );
            let mut expected = original.envelope.clone();
            expected.timestamp = decoded.envelope.timestamp;
            assert_eq!(decoded.envelope, expected);
        }
    }

    #[tokio::test]
    async fn response_round_trips_with_error_code() {
        let mut envelope = request(ProcessingMode::RealTime).envelope;
        envelope.payload = Bytes::new();
        let response = CoreResponse {
            envelope,
            error_code: ErrorCode::ReceiverDown,
            error_message: "payer offline".into(),
        };
        let encoded = response.encode();
        let decoded = CoreResponse::decode(&encoded.content_type, &encoded.body)
            .await
            .unwrap();
        assert_eq!(decoded.error_code, ErrorCode::ReceiverDown);
        assert_eq!(decoded.error_message, "payer offline");
        assert!(decoded.envelope.payload.is_empty());
    }

    fn body_without(field: &str) -> EncodedBody {
        let fields: Vec<(&str, &[u8])> = vec![
            ("PayloadType", b"X12_270_Request_005010X279A1"),
            ("ProcessingMode", b"RealTime"),
            ("PayloadID", b"f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
            ("TimeStamp", b"2026-11-27T10:20:34Z"),
            ("SenderID", b"MEDBILL01"),
            ("ReceiverID", b"ACME"),
            ("CORERuleVersion", b"2.2.0"),
            ("Payload", b"ISA~"),
        ];
        let kept: Vec<_> = fields.into_iter().filter(|(n, _)| *n != field).collect();
        encode_fields(&kept)
    }

    #[tokio::test]
    async fn each_missing_field_is_named() {
        for (name, field) in [
            ("PayloadType", EnvelopeField::PayloadType),
            ("ProcessingMode", EnvelopeField::ProcessingMode),
            ("PayloadID", EnvelopeField::PayloadId),
            ("TimeStamp", EnvelopeField::TimeStamp),
            ("SenderID", EnvelopeField::SenderId),
            ("ReceiverID", EnvelopeField::ReceiverId),
            ("CORERuleVersion", EnvelopeField::CoreRuleVersion),
            ("Payload", EnvelopeField::Payload),
        ] {
            let body = body_without(name);
            let err = CoreRequest::decode(&body.content_type, &body.body)
                .await
                .unwrap_err();
            assert_eq!(err, EnvelopeError::Required(field), "missing {name}");
            assert_eq!(err.error_code().to_string(), format!("{name}Required"));
        }
    }

    #[tokio::test]
    async fn illegal_values_are_named() {
        let cases: [(&str, &[u8], EnvelopeField); 4] = [
            ("PayloadID", b"not-a-uuid", EnvelopeField::PayloadId),
            ("TimeStamp", b"yesterday", EnvelopeField::TimeStamp),
            ("ProcessingMode", b"Realtime", EnvelopeField::ProcessingMode),
            ("PayloadType", b"X12 270", EnvelopeField::PayloadType),
        ];
        for (name, value, field) in cases {
            let mut fields: Vec<(&str, &[u8])> = vec![
                ("PayloadType", b"X12_270_Request_005010X279A1"),
                ("ProcessingMode", b"RealTime"),
                ("PayloadID", b"f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
                ("TimeStamp", b"2026-11-27T10:20:34"),
                ("SenderID", b"MEDBILL01"),
                ("ReceiverID", b"ACME"),
                ("CORERuleVersion", b"2.2.0"),
                ("Payload", b"ISA~"),
            ];
            for f in &mut fields {
                if f.0 == name {
                    f.1 = value;
                }
            }
            let body = encode_fields(&fields);
            let err = CoreRequest::decode(&body.content_type, &body.body)
                .await
                .unwrap_err();
            assert_eq!(err.field(), Some(field), "{name}: {err}");
            assert_eq!(err.error_code(), ErrorCode::Illegal(field));
        }
    }

    #[tokio::test]
    async fn version_mismatch_is_reported() {
        let mut req = request(ProcessingMode::RealTime);
        req.envelope.core_rule_version = "2.1.0".into();
        let body = req.encode();
        let err = CoreRequest::decode(&body.content_type, &body.body)
            .await
            .unwrap_err();
        assert_eq!(err, EnvelopeError::VersionMismatch("2.1.0".into()));
        assert_eq!(err.error_code().to_string(), "VersionMismatch");
    }

    #[tokio::test]
    async fn batch_checksum_mismatch_is_illegal() {
        let req = request(ProcessingMode::Batch);
        let body = req.encode();
        // Flip one payload byte after encoding: the checksum no longer matches.
        let text = String::from_utf8(body.body.to_vec()).unwrap();
        let tampered = text.replace("ISA*00*...", "ISA*01*...");
        let err = CoreRequest::decode(&body.content_type, &Bytes::from(tampered))
            .await
            .unwrap_err();
        assert_eq!(err.field(), Some(EnvelopeField::CheckSum));
    }

    #[test]
    fn error_codes_parse_both_ways() {
        for code in [
            "Success",
            "PayloadIDRequired",
            "SenderIDIllegal",
            "VersionMismatch",
            "PayloadTypeNotSupported",
            "SenderIDNotAuthorized",
            "Receiver Down",
            "SomethingNew",
        ] {
            assert_eq!(ErrorCode::parse(code).to_string(), code);
        }
        assert_eq!(
            ErrorCode::parse("PayloadIDRequired"),
            ErrorCode::Required(EnvelopeField::PayloadId)
        );
        assert!(ErrorCode::parse("ReceiverDown").is_retryable());
        assert!(!ErrorCode::parse("PayloadTypeNotSupported").is_retryable());
    }

    #[test]
    fn batch_type_follows_the_guide_in_gs08() {
        let p = b"ISA*00~GS*HC*A*B*20260101*1200*1*X*005010X222A1~ST*837*0001*005010X222A1~";
        let i = b"ISA*00~GS*HC*A*B*20260101*1200*1*X*005010X223A2~ST*837*0001*005010X223A2~";
        assert_eq!(PayloadType::for_batch(p), PayloadType::X12_837P_REQUEST);
        assert_eq!(
            PayloadType::for_batch(p).as_str(),
            "X12_837_Request_005010X222A1"
        );
        assert_eq!(PayloadType::for_batch(i), PayloadType::X12_837I_REQUEST);
        assert_eq!(
            PayloadType::for_batch(b"ISA*00~GS*HS~"),
            PayloadType::BATCH_SUBMISSION
        );
        assert!(PayloadType::X12_837I_REQUEST.is_batch_submission());
        assert!(!PayloadType::BATCH_RESULTS_RETRIEVAL.is_batch_submission());
    }

    #[test]
    fn checksum_is_sha1_hex() {
        assert_eq!(checksum(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }
}
