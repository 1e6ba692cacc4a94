//! Problems found while reading X12: where they are and what is wrong.
//!
//! The reader does not stop at the first problem when it can go on: it collects
//! every [`Error`] in a list (see [`crate::tree::Document::problems`]). Each one
//! names the segment (1-based ordinal in the input and id), the element and
//! component (1-based, as X12 numbers them: ISA01 is element 1), the byte offset
//! of the segment in the input, and what is wrong.

use std::fmt;

use serde::Serialize;

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The input was read, but something was assumed (for example delimiters
    /// without an ISA); worth telling a person, not a reason to refuse the file.
    Warning,
    /// The input breaks an X12 rule or does not balance; do not post it as is.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// Where a problem is in the input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Position {
    /// 1-based ordinal of the segment in the input (0 when the problem is not tied to a segment).
    pub segment_index: usize,
    /// Segment id (`CLP`, `SE`, ...), empty when unknown.
    pub segment_id: String,
    /// 1-based element position (`CLP03` is 3), if the problem is in one element.
    pub element: Option<u16>,
    /// 1-based component position inside the element, if the problem is in one component.
    pub component: Option<u16>,
    /// Byte offset of the start of the segment in the input.
    pub offset: usize,
}

impl Position {
    /// Returns a position pointing at the element `element` (1-based) of this position's segment.
    pub fn with_element(mut self, element: u16) -> Self {
        self.element = Some(element);
        self
    }

    /// Returns a position pointing at the component `component` (1-based) of this position's element.
    pub fn with_component(mut self, component: u16) -> Self {
        self.component = Some(component);
        self
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segment_index == 0 {
            return write!(f, "byte {}", self.offset);
        }
        write!(f, "segment {} ({}", self.segment_index, self.segment_id)?;
        if let Some(e) = self.element {
            write!(f, "{e:02}")?;
            if let Some(c) = self.component {
                write!(f, "-{c}")?;
            }
        }
        write!(f, ") at byte {}", self.offset)
    }
}

/// What is wrong. Messages never echo names or member ids (PHI); they may echo
/// codes, amounts and control numbers, which is what a person needs to fix a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input is empty or only whitespace.
    #[error("the input holds no segments")]
    Empty,
    /// The first segment is not ISA, and no delimiters could be found in it.
    #[error(
        "cannot find delimiters: the input starts with neither an ISA nor a segment id followed by a separator"
    )]
    NoDelimiters,
    /// The ISA segment is malformed, so its delimiters cannot be trusted.
    #[error("malformed ISA: {0}")]
    InvalidIsa(String),
    /// Delimiters were assumed rather than read from an ISA.
    #[error(
        "no ISA envelope: delimiters taken from the first segment (element '{element}', segment terminator {segment}), component '{component}' {component_how}, repetition {repetition}"
    )]
    DelimitersAssumed {
        /// Element separator found.
        element: char,
        /// Segment terminator found, printed readably.
        segment: String,
        /// Component separator used.
        component: char,
        /// Whether the component separator was seen in the data or assumed.
        component_how: &'static str,
        /// Repetition separator used, printed readably.
        repetition: String,
    },
    /// The ISA is not the fixed 106 characters wide; it was read by its separators instead.
    #[error("ISA is {0} characters long, not the fixed 106; read by its separators")]
    IsaNotFixedWidth(usize),
    /// The input ends inside a segment (no terminator): the file is probably truncated.
    #[error("segment is not terminated: the input ends inside it (truncated file?)")]
    NotTerminated,
    /// A segment is longer than the reader's limit.
    #[error("segment is longer than the limit of {limit} bytes; skipped")]
    SegmentTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// A segment id is not 2 or 3 upper-case letters or digits (junk bytes?).
    #[error("invalid segment id {0:?} (junk bytes or wrong delimiters?)")]
    InvalidSegmentId(String),
    /// A header and its trailer carry different control numbers.
    #[error("{trailer} control number {trailer_value:?} does not match {header} {header_value:?}")]
    ControlNumberMismatch {
        /// Header element, e.g. `ISA13`.
        header: &'static str,
        /// Value in the header.
        header_value: String,
        /// Trailer element, e.g. `IEA02`.
        trailer: &'static str,
        /// Value in the trailer.
        trailer_value: String,
    },
    /// A trailer's count is not the number actually present.
    #[error("{element} says {stated:?} {what} but there are {actual}")]
    CountMismatch {
        /// Trailer element, e.g. `SE01`.
        element: &'static str,
        /// What is counted, e.g. `segments`.
        what: &'static str,
        /// Value in the trailer.
        stated: String,
        /// Number counted.
        actual: usize,
    },
    /// A header was never closed by its trailer.
    #[error("{header} {control:?} is not closed by {trailer}")]
    MissingTrailer {
        /// Header segment id (`ISA`, `GS`, `ST`).
        header: &'static str,
        /// The header's control number.
        control: String,
        /// Expected trailer segment id.
        trailer: &'static str,
    },
    /// A segment appears where the envelope structure does not allow it.
    #[error("unexpected {found} {context}")]
    UnexpectedSegment {
        /// Segment id found.
        found: String,
        /// Why it is unexpected, e.g. `outside a transaction set`.
        context: &'static str,
    },
    /// A required element is missing or empty.
    #[error("required element {0} is missing")]
    MissingElement(&'static str),
    /// A required segment is missing.
    #[error("required segment {0} is missing")]
    MissingSegment(&'static str),
    /// An element that must be a decimal amount is not one.
    #[error("{element} {value:?} is not a decimal number")]
    InvalidDecimal {
        /// Element name, e.g. `CLP03`.
        element: &'static str,
        /// The text found.
        value: String,
    },
    /// An element that must be a date (CCYYMMDD) is not one.
    #[error("{element} {value:?} is not a date (CCYYMMDD)")]
    InvalidDate {
        /// Element name, e.g. `BPR16`.
        element: &'static str,
        /// The text found.
        value: String,
    },
    /// An element holds a code that is not allowed there.
    #[error("{element} {value:?} is not a valid code: {expected}")]
    InvalidCode {
        /// Element name, e.g. `BPR03`.
        element: &'static str,
        /// The text found.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },
    /// A composite uses another component separator than the ISA declares.
    #[error(
        "{element} uses '{found}' as component separator but ISA16 declares '{declared}'; read with '{found}'"
    )]
    ComponentSeparatorMismatch {
        /// Element name, e.g. `SVC01`.
        element: &'static str,
        /// Separator found in the element.
        found: char,
        /// Separator declared in ISA16.
        declared: char,
    },
    /// A transaction set is of another type than the reader asked for.
    #[error("transaction set is a {found}, not a {expected}")]
    WrongTransactionType {
        /// Type asked for.
        expected: &'static str,
        /// ST01 found.
        found: String,
    },
    /// An 835 does not balance at line, claim or transaction level.
    #[error("{0}")]
    Imbalance(Box<crate::balance::BalanceProblem>),
    /// Reading the underlying input failed.
    #[error("read failed: {0}")]
    Io(String),
    /// A reader stopped listing problems after [`MAX_PROBLEMS`] of them, so
    /// that junk input cannot fill memory with problems; these were counted.
    #[error(
        "{count} more problems from here on are not listed ({errors} of them errors); the first {MAX_PROBLEMS} are"
    )]
    ProblemsOmitted {
        /// Problems counted but not listed.
        count: usize,
        /// How many of them are errors rather than warnings.
        errors: usize,
    },
}

/// Most problems one reader lists before it only counts them (see
/// [`ErrorKind::ProblemsOmitted`]). A real file with that many is broken
/// throughout; listing millions would only exhaust memory.
pub const MAX_PROBLEMS: usize = 1000;

/// The problems a reader collects: the first [`MAX_PROBLEMS`] are kept, later
/// ones are counted, and [`ProblemList::take`] ends the list with one
/// [`ErrorKind::ProblemsOmitted`] that says how many were left out and where
/// the first of them was.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProblemList {
    kept: Vec<Error>,
    /// Boxed: only a list past [`MAX_PROBLEMS`] needs it.
    omitted: Option<Box<Omitted>>,
}

/// What a full [`ProblemList`] counted instead of keeping.
#[derive(Debug, Clone)]
struct Omitted {
    count: usize,
    errors: usize,
    first: Position,
}

impl ProblemList {
    /// Adds a problem, or counts it when the list is full.
    pub(crate) fn push(&mut self, problem: Error) {
        if self.kept.len() < MAX_PROBLEMS {
            self.kept.push(problem);
            return;
        }
        let is_error = usize::from(problem.is_error());
        let omitted = self.omitted.get_or_insert_with(|| {
            Box::new(Omitted {
                count: 0,
                errors: 0,
                first: problem.position,
            })
        });
        omitted.count += 1;
        omitted.errors += is_error;
    }

    /// Returns the problems kept so far.
    pub(crate) fn as_slice(&self) -> &[Error] {
        &self.kept
    }

    /// Removes and returns the problems, with the omission summary last when
    /// any were left out, and starts a new list.
    pub(crate) fn take(&mut self) -> Vec<Error> {
        let mut out = std::mem::take(&mut self.kept);
        if let Some(omitted) = self.omitted.take() {
            let kind = ErrorKind::ProblemsOmitted {
                count: omitted.count,
                errors: omitted.errors,
            };
            out.push(if omitted.errors > 0 {
                Error::at(omitted.first, kind)
            } else {
                Error::warn_at(omitted.first, kind)
            });
        }
        out
    }
}

/// One problem: severity, position and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{severity} at {position}: {kind}")]
pub struct Error {
    /// How serious the problem is.
    pub severity: Severity,
    /// Where it is.
    pub position: Position,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl Error {
    /// Creates an error-severity problem.
    pub fn at(position: Position, kind: ErrorKind) -> Self {
        Self {
            severity: Severity::Error,
            position,
            kind,
        }
    }

    /// Creates a warning-severity problem.
    pub fn warn_at(position: Position, kind: ErrorKind) -> Self {
        Self {
            severity: Severity::Warning,
            position,
            kind,
        }
    }

    /// Returns true when the problem is an error rather than a warning.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Error", 7)?;
        s.serialize_field("severity", &self.severity)?;
        s.serialize_field("segment_index", &self.position.segment_index)?;
        s.serialize_field("segment_id", &self.position.segment_id)?;
        s.serialize_field("element", &self.position.element)?;
        s.serialize_field("component", &self.position.component)?;
        s.serialize_field("offset", &self.position.offset)?;
        s.serialize_field("message", &self.kind.to_string())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(index: usize, error: bool) -> Error {
        let position = Position {
            segment_index: index,
            segment_id: "ZZ".into(),
            ..Position::default()
        };
        let kind = ErrorKind::InvalidSegmentId("zz".into());
        if error {
            Error::at(position, kind)
        } else {
            Error::warn_at(position, kind)
        }
    }

    #[test]
    fn list_keeps_the_first_problems_and_counts_the_rest() {
        let mut list = ProblemList::default();
        for i in 1..=MAX_PROBLEMS + 5 {
            // Two of the five omitted ones are errors.
            list.push(problem(i, i <= MAX_PROBLEMS || i % 2 == 0));
        }
        assert_eq!(list.as_slice().len(), MAX_PROBLEMS);
        let taken = list.take();
        assert_eq!(taken.len(), MAX_PROBLEMS + 1);
        let last = &taken[MAX_PROBLEMS];
        assert_eq!(
            last.kind,
            ErrorKind::ProblemsOmitted {
                count: 5,
                errors: 2
            }
        );
        assert!(last.is_error());
        assert_eq!(last.position.segment_index, MAX_PROBLEMS + 1);
        assert!(last.to_string().contains("5 more problems"), "{last}");
        // Taking starts a new list.
        list.push(problem(1, false));
        assert_eq!(list.take().len(), 1);
    }

    #[test]
    fn omitted_warnings_only_are_a_warning() {
        let mut list = ProblemList::default();
        for i in 0..=MAX_PROBLEMS {
            list.push(problem(i, false));
        }
        let taken = list.take();
        assert!(!taken[MAX_PROBLEMS].is_error());
    }
}
