//! Errors a writer returns instead of writing invalid X12.

/// Why a writer refused to write.
///
/// Messages name the field and rule but never echo values that may be PHI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The separators are not usable (duplicated, alphanumeric or a space).
    #[error("invalid separators: {0}")]
    InvalidSeparators(String),
    /// A value contains one of the separator characters.
    #[error("{segment}{position:02}: value contains a separator character")]
    SeparatorInValue {
        /// Segment id.
        segment: String,
        /// 1-based element position.
        position: usize,
    },
    /// A value starts or ends with a space, which readers may not keep.
    #[error("{segment}{position:02}: value has leading or trailing spaces")]
    UntrimmedValue {
        /// Segment id.
        segment: String,
        /// 1-based element position.
        position: usize,
    },
    /// A segment was written out of envelope order (e.g. ST without GS).
    #[error("envelope order: {0}")]
    EnvelopeOrder(&'static str),
    /// An envelope value does not fit its fixed format.
    #[error("envelope field {field}: {reason}")]
    Envelope {
        /// ISA/GS/ST element name.
        field: &'static str,
        /// The rule broken.
        reason: String,
    },
    /// A model value breaks a rule of its implementation guide.
    #[error("{context}: {field}: {reason}")]
    Invalid {
        /// Where: "claim 3", "claim 3 line 2", "inquiry"...
        context: String,
        /// The model field.
        field: &'static str,
        /// The rule broken.
        reason: String,
    },
}
