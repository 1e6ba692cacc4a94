//! The envelope-aware segment writer.

use std::fmt::Write as _;

use super::WriteError;
use super::envelope::{GroupHeader, InterchangeHeader, Separators, Usage};

/// One element of a segment being written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    /// A simple element; empty means "not used".
    Simple(String),
    /// A composite: components joined by the component separator.
    Composite(Vec<String>),
    /// A repeating element: values joined by the repetition separator.
    Repeated(Vec<String>),
}

impl Element {
    /// Returns a composite element from its components.
    pub fn composite<S: AsRef<str>>(parts: &[S]) -> Self {
        Self::Composite(parts.iter().map(|p| p.as_ref().to_owned()).collect())
    }

    fn is_empty(&self) -> bool {
        match self {
            Self::Simple(s) => s.is_empty(),
            Self::Composite(v) | Self::Repeated(v) => v.iter().all(String::is_empty),
        }
    }
}

impl From<&str> for Element {
    fn from(s: &str) -> Self {
        Self::Simple(s.to_owned())
    }
}

impl From<String> for Element {
    fn from(s: String) -> Self {
        Self::Simple(s)
    }
}

impl From<&String> for Element {
    fn from(s: &String) -> Self {
        Self::Simple(s.clone())
    }
}

impl From<Option<&str>> for Element {
    fn from(s: Option<&str>) -> Self {
        Self::Simple(s.unwrap_or_default().to_owned())
    }
}

impl From<&Option<String>> for Element {
    fn from(s: &Option<String>) -> Self {
        Self::Simple(s.clone().unwrap_or_default())
    }
}

impl From<Option<String>> for Element {
    fn from(s: Option<String>) -> Self {
        Self::Simple(s.unwrap_or_default())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Outside,
    Interchange,
    Group,
    Set,
}

/// Writes segments into a string, keeping envelope counts and control numbers.
///
/// Call order: `begin_interchange`, (`begin_group`, (`begin_set`, segments, `end_set`)*,
/// `end_group`)*, `end_interchange`, then `finish`. Several interchanges may follow each other.
#[derive(Debug)]
pub struct X12Writer {
    sep: Separators,
    out: String,
    state: State,
    isa_control: u32,
    group_count: u32,
    gs_control: u32,
    set_count: u32,
    st_control: String,
    segment_count: u32,
    next_hl: u32,
}

impl X12Writer {
    /// Returns a writer using `separators`, after checking them.
    pub fn new(separators: Separators) -> Result<Self, WriteError> {
        separators.validate()?;
        Ok(Self {
            sep: separators,
            out: String::new(),
            state: State::Outside,
            isa_control: 0,
            group_count: 0,
            gs_control: 0,
            set_count: 0,
            st_control: String::new(),
            segment_count: 0,
            next_hl: 1,
        })
    }

    /// Returns the separators in use.
    pub fn separators(&self) -> Separators {
        self.sep
    }

    fn terminate(&mut self) {
        self.out.push(self.sep.segment);
        if self.sep.newline && self.sep.segment != '\n' {
            self.out.push('\n');
        }
    }

    fn check_value(&self, segment: &str, position: usize, value: &str) -> Result<(), WriteError> {
        let s = self.sep;
        let bad = value.chars().any(|c| {
            c == s.element
                || c == s.component
                || c == s.repetition
                || c == s.segment
                || c.is_control()
        });
        if bad {
            return Err(WriteError::SeparatorInValue {
                segment: segment.to_owned(),
                position,
            });
        }
        if value.trim_matches(' ') != value {
            return Err(WriteError::UntrimmedValue {
                segment: segment.to_owned(),
                position,
            });
        }
        Ok(())
    }

    /// Starts an interchange: writes the fixed-width ISA (106 characters with its terminator).
    pub fn begin_interchange(&mut self, h: &InterchangeHeader) -> Result<(), WriteError> {
        if self.state != State::Outside {
            return Err(WriteError::EnvelopeOrder("ISA inside an open interchange"));
        }
        fixed("ISA05", &h.sender_qualifier, 2)?;
        fixed("ISA07", &h.receiver_qualifier, 2)?;
        max_len("ISA06", &h.sender_id, 15)?;
        max_len("ISA08", &h.receiver_id, 15)?;
        control("ISA13", h.control_number)?;
        for (pos, v) in [
            (5, &h.sender_qualifier),
            (6, &h.sender_id),
            (7, &h.receiver_qualifier),
            (8, &h.receiver_id),
        ] {
            self.check_value("ISA", pos, v)?;
        }
        let s = self.sep;
        let e = s.element;
        let usage = match h.usage {
            Usage::Production => 'P',
            Usage::Test => 'T',
        };
        let _ = write!(
            self.out,
            "ISA{e}00{e}{:10}{e}00{e}{:10}{e}{}{e}{:<15}{e}{}{e}{:<15}{e}{}{e}{}{e}{}{e}00501{e}{:09}{e}{}{e}{}{e}{}",
            "",
            "",
            h.sender_qualifier,
            h.sender_id,
            h.receiver_qualifier,
            h.receiver_id,
            h.date.format("%y%m%d"),
            h.time.format("%H%M"),
            s.repetition,
            h.control_number,
            if h.ack_requested { '1' } else { '0' },
            usage,
            s.component,
        );
        self.terminate();
        self.state = State::Interchange;
        self.isa_control = h.control_number;
        self.group_count = 0;
        Ok(())
    }

    /// Starts a functional group with GS01 `functional_id` and GS08 `version`.
    pub fn begin_group(
        &mut self,
        functional_id: &str,
        h: &GroupHeader,
        version: &str,
    ) -> Result<(), WriteError> {
        if self.state != State::Interchange {
            return Err(WriteError::EnvelopeOrder(
                "GS outside an interchange or inside a group",
            ));
        }
        for (field, v) in [("GS02", &h.sender_code), ("GS03", &h.receiver_code)] {
            if v.len() < 2 || v.len() > 15 {
                return Err(WriteError::Envelope {
                    field,
                    reason: "must be 2 to 15 characters".into(),
                });
            }
        }
        control("GS06", h.control_number)?;
        self.state = State::Group;
        self.segment(
            "GS",
            &[
                functional_id.into(),
                (&h.sender_code).into(),
                (&h.receiver_code).into(),
                h.date.format("%Y%m%d").to_string().into(),
                h.time.format("%H%M").to_string().into(),
                h.control_number.to_string().into(),
                "X".into(),
                version.into(),
            ],
        )?;
        self.gs_control = h.control_number;
        self.set_count = 0;
        self.group_count += 1;
        Ok(())
    }

    /// Starts a transaction set: ST*`set_id`*`control` (at least 4 digits)*`version`; resets HL numbering.
    pub fn begin_set(
        &mut self,
        set_id: &str,
        control_number: u32,
        version: &str,
    ) -> Result<(), WriteError> {
        if self.state != State::Group {
            return Err(WriteError::EnvelopeOrder(
                "ST outside a functional group or inside a set",
            ));
        }
        control("ST02", control_number)?;
        self.st_control = format!("{control_number:04}");
        self.state = State::Set;
        self.segment_count = 0;
        self.next_hl = 1;
        let st_control = self.st_control.clone();
        self.segment("ST", &[set_id.into(), st_control.into(), version.into()])?;
        self.set_count += 1;
        Ok(())
    }

    /// Writes one segment; trailing empty elements and components are left out.
    pub fn segment(&mut self, id: &str, elements: &[Element]) -> Result<(), WriteError> {
        if self.state == State::Outside {
            return Err(WriteError::EnvelopeOrder("segment outside an interchange"));
        }
        let used = elements
            .iter()
            .rposition(|e| !e.is_empty())
            .map_or(0, |i| i + 1);
        let s = self.sep;
        let mut buf = String::with_capacity(16 + used * 8);
        buf.push_str(id);
        for (i, el) in elements.iter().take(used).enumerate() {
            buf.push(s.element);
            match el {
                Element::Simple(v) => {
                    self.check_value(id, i + 1, v)?;
                    buf.push_str(v);
                }
                Element::Composite(parts) | Element::Repeated(parts) => {
                    let joiner = if matches!(el, Element::Composite(_)) {
                        s.component
                    } else {
                        s.repetition
                    };
                    let n = parts
                        .iter()
                        .rposition(|p| !p.is_empty())
                        .map_or(0, |i| i + 1);
                    for (j, p) in parts.iter().take(n).enumerate() {
                        self.check_value(id, i + 1, p)?;
                        if j > 0 {
                            buf.push(joiner);
                        }
                        buf.push_str(p);
                    }
                }
            }
        }
        self.out.push_str(&buf);
        self.terminate();
        if self.state == State::Set {
            self.segment_count += 1;
        }
        Ok(())
    }

    /// Returns the next HL id of the current set (1, 2, 3...).
    pub fn next_hl_id(&mut self) -> u32 {
        let id = self.next_hl;
        self.next_hl += 1;
        id
    }

    /// Writes HL*id*parent*level*child and returns the id it generated.
    pub fn hl(
        &mut self,
        parent: Option<u32>,
        level: &str,
        has_children: Option<bool>,
    ) -> Result<u32, WriteError> {
        let id = self.next_hl_id();
        let child = has_children.map(|c| if c { "1" } else { "0" });
        self.segment(
            "HL",
            &[
                id.to_string().into(),
                parent.map(|p| p.to_string()).into(),
                level.into(),
                child.into(),
            ],
        )?;
        Ok(id)
    }

    /// Ends the set with SE (segment count including ST and SE, and ST02).
    pub fn end_set(&mut self) -> Result<(), WriteError> {
        if self.state != State::Set {
            return Err(WriteError::EnvelopeOrder("SE without ST"));
        }
        let count = self.segment_count + 1;
        let st_control = self.st_control.clone();
        self.segment("SE", &[count.to_string().into(), st_control.into()])?;
        self.state = State::Group;
        Ok(())
    }

    /// Ends the group with GE (set count and GS06).
    pub fn end_group(&mut self) -> Result<(), WriteError> {
        if self.state != State::Group {
            return Err(WriteError::EnvelopeOrder("GE without GS, or inside a set"));
        }
        let (n, c) = (self.set_count, self.gs_control);
        self.segment("GE", &[n.to_string().into(), c.to_string().into()])?;
        self.state = State::Interchange;
        Ok(())
    }

    /// Ends the interchange with IEA (group count and ISA13).
    pub fn end_interchange(&mut self) -> Result<(), WriteError> {
        if self.state != State::Interchange {
            return Err(WriteError::EnvelopeOrder(
                "IEA without ISA, or inside a group",
            ));
        }
        let (n, c) = (self.group_count, self.isa_control);
        self.segment("IEA", &[n.to_string().into(), format!("{c:09}").into()])?;
        self.state = State::Outside;
        Ok(())
    }

    /// Returns the text written, failing when an envelope is still open.
    pub fn finish(self) -> Result<String, WriteError> {
        if self.state != State::Outside {
            return Err(WriteError::EnvelopeOrder("finish with an open envelope"));
        }
        Ok(self.out)
    }
}

fn fixed(field: &'static str, v: &str, len: usize) -> Result<(), WriteError> {
    if v.len() != len || !v.is_ascii() {
        return Err(WriteError::Envelope {
            field,
            reason: format!("must be {len} ASCII characters"),
        });
    }
    Ok(())
}

fn max_len(field: &'static str, v: &str, len: usize) -> Result<(), WriteError> {
    if v.is_empty() || v.len() > len || !v.is_ascii() {
        return Err(WriteError::Envelope {
            field,
            reason: format!("must be 1 to {len} ASCII characters"),
        });
    }
    Ok(())
}

fn control(field: &'static str, n: u32) -> Result<(), WriteError> {
    if n == 0 || n > 999_999_999 {
        return Err(WriteError::Envelope {
            field,
            reason: "must be 1 to 999999999".into(),
        });
    }
    Ok(())
}

/// Writes a segment from a list of values convertible into [`Element`].
#[macro_export]
#[doc(hidden)]
macro_rules! seg {
    ($w:expr, $id:expr $(, $e:expr)* $(,)?) => {
        $w.segment($id, &[$($crate::write::Element::from($e)),*])
    };
}
