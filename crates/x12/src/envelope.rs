//! Envelope structure and checks: ISA/IEA, GS/GE, ST/SE.
//!
//! [`EnvelopeTracker`] is fed one segment at a time and says where each belongs
//! ([`Place`]). It checks ISA13 = IEA02, GS06 = GE02, ST02 = SE02, that SE01
//! counts the segments from ST to SE inclusive, that GE01 counts the sets and
//! IEA01 the groups, and that every header is closed. It keeps no segments, so
//! the tree builder and the streaming reader share it.

use crate::error::{Error, ErrorKind, Position, ProblemList};
use crate::segment::Segment;

/// Where a segment belongs in the envelope structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// An ISA: a new interchange starts.
    InterchangeStart,
    /// An IEA closing the open interchange.
    InterchangeEnd,
    /// A TA1 inside an interchange, outside any group.
    Ta1,
    /// A GS: a new functional group starts.
    GroupStart,
    /// A GE closing the open group.
    GroupEnd,
    /// An ST: a new transaction set starts.
    SetStart,
    /// A segment inside the open transaction set.
    SetBody,
    /// An SE closing the open transaction set.
    SetEnd,
    /// A segment where the structure does not allow it (reported as a problem).
    Stray,
}

#[derive(Debug, Clone)]
struct Open {
    control: String,
    children: usize,
    position: Position,
}

/// Tracks the open interchange, group and transaction set and checks their trailers.
#[derive(Debug, Clone, Default)]
pub struct EnvelopeTracker {
    isa: Option<Open>,
    gs: Option<Open>,
    st: Option<Open>,
    problems: ProblemList,
}

impl EnvelopeTracker {
    /// Creates a tracker with nothing open.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns true while an interchange (ISA without IEA yet) is open.
    pub fn in_interchange(&self) -> bool {
        self.isa.is_some()
    }

    /// Returns true while a functional group is open.
    pub fn in_group(&self) -> bool {
        self.gs.is_some()
    }

    /// Returns true while a transaction set is open.
    pub fn in_set(&self) -> bool {
        self.st.is_some()
    }

    /// Counts a segment the caller knows is no envelope segment (ISA, IEA, GS,
    /// GE, ST, SE, TA1) as part of the open set, as [`Self::push`] would;
    /// returns false, counting nothing, when no set is open.
    pub(crate) fn push_set_body(&mut self) -> bool {
        match &mut self.st {
            Some(st) => {
                st.children += 1;
                true
            }
            None => false,
        }
    }

    /// Returns the number of segments so far in the open transaction set (ST included).
    pub fn set_segment_count(&self) -> usize {
        self.st.as_ref().map_or(0, |s| s.children)
    }

    /// Returns the problems found so far.
    pub fn problems(&self) -> &[Error] {
        self.problems.as_slice()
    }

    /// Removes and returns the problems found so far.
    pub fn take_problems(&mut self) -> Vec<Error> {
        self.problems.take()
    }

    /// Places one segment and checks it against the open envelopes.
    pub fn push(&mut self, seg: &Segment<'_>) -> Place {
        match seg.id_bytes() {
            b"ISA" => {
                self.close_set();
                self.close_group();
                self.close_interchange();
                self.isa = Some(open(seg, 13));
                Place::InterchangeStart
            }
            b"IEA" => {
                self.close_set();
                self.close_group();
                match self.isa.take() {
                    Some(isa) => {
                        self.check_trailer(
                            seg,
                            &isa,
                            ("ISA13", "IEA02", "IEA01", "functional groups"),
                        );
                        Place::InterchangeEnd
                    }
                    None => self.stray(seg, "without an open ISA"),
                }
            }
            b"GS" => {
                self.close_set();
                self.close_group();
                if let Some(isa) = &mut self.isa {
                    isa.children += 1;
                }
                self.gs = Some(open(seg, 6));
                Place::GroupStart
            }
            b"GE" => {
                self.close_set();
                match self.gs.take() {
                    Some(gs) => {
                        self.check_trailer(seg, &gs, ("GS06", "GE02", "GE01", "transaction sets"));
                        Place::GroupEnd
                    }
                    None => self.stray(seg, "without an open GS"),
                }
            }
            b"ST" => {
                self.close_set();
                if let Some(gs) = &mut self.gs {
                    gs.children += 1;
                }
                let mut st = open(seg, 2);
                st.children = 1;
                self.st = Some(st);
                Place::SetStart
            }
            b"SE" => match self.st.take() {
                Some(mut st) => {
                    st.children += 1;
                    self.check_trailer(seg, &st, ("ST02", "SE02", "SE01", "segments"));
                    Place::SetEnd
                }
                None => self.stray(seg, "without an open ST"),
            },
            id => {
                if let Some(st) = &mut self.st {
                    st.children += 1;
                    Place::SetBody
                } else if id == b"TA1" && self.isa.is_some() && self.gs.is_none() {
                    Place::Ta1
                } else {
                    self.stray(seg, "outside a transaction set (ST..SE)")
                }
            }
        }
    }

    /// Reports every envelope still open at the end of the input.
    pub fn finish(&mut self) {
        if let Some(st) = self.st.take() {
            self.missing(st, "ST", "SE");
        }
        if let Some(gs) = self.gs.take() {
            self.missing(gs, "GS", "GE");
        }
        if let Some(isa) = self.isa.take() {
            self.missing(isa, "ISA", "IEA");
        }
    }

    fn close_set(&mut self) {
        if let Some(st) = self.st.take() {
            self.missing(st, "ST", "SE");
        }
    }

    fn close_group(&mut self) {
        if let Some(gs) = self.gs.take() {
            self.missing(gs, "GS", "GE");
        }
    }

    fn close_interchange(&mut self) {
        if let Some(isa) = self.isa.take() {
            self.missing(isa, "ISA", "IEA");
        }
    }

    fn missing(&mut self, open: Open, header: &'static str, trailer: &'static str) {
        self.problems.push(Error::at(
            open.position,
            ErrorKind::MissingTrailer {
                header,
                control: open.control,
                trailer,
            },
        ));
    }

    fn stray(&mut self, seg: &Segment<'_>, context: &'static str) -> Place {
        self.problems.push(Error::at(
            seg.position(),
            ErrorKind::UnexpectedSegment {
                found: seg.id().to_string(),
                context,
            },
        ));
        Place::Stray
    }

    fn check_trailer(
        &mut self,
        seg: &Segment<'_>,
        open: &Open,
        (header_el, control_el, count_el, what): (
            &'static str,
            &'static str,
            &'static str,
            &'static str,
        ),
    ) {
        let count = seg.text(1);
        let control = seg.text(2);
        if count.trim().parse::<usize>().ok() != Some(open.children) {
            self.problems.push(Error::at(
                seg.position_at(1),
                ErrorKind::CountMismatch {
                    element: count_el,
                    what,
                    stated: count.into_owned(),
                    actual: open.children,
                },
            ));
        }
        if control.trim() != open.control.trim() {
            self.problems.push(Error::at(
                seg.position_at(2),
                ErrorKind::ControlNumberMismatch {
                    header: header_el,
                    header_value: open.control.clone(),
                    trailer: control_el,
                    trailer_value: control.into_owned(),
                },
            ));
        }
    }
}

fn open(seg: &Segment<'_>, control_element: usize) -> Open {
    Open {
        control: seg.text(control_element).into_owned(),
        children: 0,
        position: seg.position(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::Tokenizer;

    fn run(input: &str) -> (Vec<Place>, Vec<Error>) {
        let mut t = EnvelopeTracker::new();
        let places = Tokenizer::new(input.as_bytes())
            .map(|s| t.push(&s))
            .collect();
        t.finish();
        (places, t.take_problems())
    }

    const ISA: &str = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*P*:~";

    #[test]
    fn good_envelope_has_no_problems() {
        let (places, problems) = run(&format!(
            "{ISA}TA1*000000001*240101*1200*A*000~GS*HP*A*B*20240101*1200*7*X*005010X221A1~ST*835*0001~BPR*I~SE*3*0001~GE*1*7~IEA*1*000000001~"
        ));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            places,
            [
                Place::InterchangeStart,
                Place::Ta1,
                Place::GroupStart,
                Place::SetStart,
                Place::SetBody,
                Place::SetEnd,
                Place::GroupEnd,
                Place::InterchangeEnd
            ]
        );
    }

    #[test]
    fn reports_each_mismatch_with_position() {
        let (_, problems) = run(&format!(
            "{ISA}GS*HP*A*B*20240101*1200*7*X*005010X221A1~ST*835*0001~BPR*I~SE*4*0002~GE*2*8~IEA*2*000000002~"
        ));
        let got: Vec<_> = problems
            .iter()
            .map(|p| (p.position.segment_index, p.position.element))
            .collect();
        assert_eq!(
            got,
            [
                (5, Some(1)),
                (5, Some(2)),
                (6, Some(1)),
                (6, Some(2)),
                (7, Some(1)),
                (7, Some(2))
            ]
        );
        assert!(matches!(
            &problems[0].kind,
            ErrorKind::CountMismatch {
                element: "SE01",
                actual: 3,
                ..
            }
        ));
        assert!(matches!(
            &problems[5].kind,
            ErrorKind::ControlNumberMismatch {
                header: "ISA13",
                ..
            }
        ));
    }

    #[test]
    fn reports_unclosed_and_stray() {
        let (places, problems) = run(&format!("{ISA}GS*HP*A*B*1*1*7~N1*PR*X~ST*835*0001~BPR*I~"));
        assert_eq!(places[2], Place::Stray);
        assert_eq!(problems.len(), 4);
        assert_eq!(problems[0].position.segment_index, 3);
        assert!(matches!(
            &problems[1].kind,
            ErrorKind::MissingTrailer { header: "ST", .. }
        ));
        assert_eq!(problems[1].position.segment_index, 4);
        assert!(matches!(
            &problems[3].kind,
            ErrorKind::MissingTrailer { header: "ISA", .. }
        ));
    }
}
