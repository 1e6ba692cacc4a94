//! The lossless segment tree: interchanges, groups, transaction sets, segments.
//!
//! Every segment of the input lands somewhere in a [`Document`]: in a
//! transaction set (ST..SE inclusive), as an ISA/IEA/GS/GE/TA1 of its envelope,
//! or in an `other` list at the level where it appeared out of place. Unknown
//! segment ids inside a set are kept like any other. Content without an ISA (a
//! bare `ST..SE`, or a `GS` without ISA) gets an [`Interchange`] whose `isa` is
//! `None` (and a [`Group`] whose `gs` is `None`), so traversal is uniform.

use crate::envelope::{EnvelopeTracker, Place};
use crate::error::Error;
use crate::segment::Segment;
use crate::tokenizer::Tokenizer;

/// A parsed input: its interchanges and every problem found.
#[derive(Debug, Clone, Default)]
pub struct Document<'a> {
    /// Interchanges in input order.
    pub interchanges: Vec<Interchange<'a>>,
    /// Segments outside any interchange (after an IEA, before an ISA), kept in order.
    pub other: Vec<Segment<'a>>,
    /// Problems from splitting and envelope checks, ordered by position.
    pub problems: Vec<Error>,
}

/// One ISA..IEA interchange (or content found without an ISA).
#[derive(Debug, Clone, Default)]
pub struct Interchange<'a> {
    /// The ISA, `None` for content without one.
    pub isa: Option<Segment<'a>>,
    /// TA1 acknowledgements between the ISA and the first GS (or anywhere outside groups).
    pub ta1: Vec<Segment<'a>>,
    /// Functional groups in order.
    pub groups: Vec<Group<'a>>,
    /// Segments inside the interchange but outside any group, other than TA1.
    pub other: Vec<Segment<'a>>,
    /// The IEA, `None` if missing.
    pub iea: Option<Segment<'a>>,
}

/// One GS..GE functional group (or sets found without a GS).
#[derive(Debug, Clone, Default)]
pub struct Group<'a> {
    /// The GS, `None` for sets without one.
    pub gs: Option<Segment<'a>>,
    /// Transaction sets in order.
    pub sets: Vec<TransactionSet<'a>>,
    /// Segments inside the group but outside any set.
    pub other: Vec<Segment<'a>>,
    /// The GE, `None` if missing.
    pub ge: Option<Segment<'a>>,
}

/// One ST..SE transaction set.
#[derive(Debug, Clone)]
pub struct TransactionSet<'a> {
    /// The segments from ST to SE inclusive (to the last one read when SE is missing).
    pub segments: Vec<Segment<'a>>,
    /// Whether the set was closed by an SE.
    pub closed: bool,
}

impl<'a> Document<'a> {
    /// Reads `input` into a tree, collecting every problem instead of stopping at the first.
    pub fn parse(input: &'a [u8]) -> Self {
        let mut tokenizer = Tokenizer::new(input);
        let mut tracker = EnvelopeTracker::new();
        let mut doc = Document::default();
        for seg in tokenizer.by_ref() {
            let in_isa = tracker.in_interchange();
            let in_gs = tracker.in_group();
            match tracker.push(&seg) {
                Place::InterchangeStart => doc.interchanges.push(Interchange {
                    isa: Some(seg),
                    ..Interchange::default()
                }),
                Place::InterchangeEnd => doc.open_interchange(true).iea = Some(seg),
                Place::Ta1 => doc.open_interchange(true).ta1.push(seg),
                Place::GroupStart => doc.open_interchange(in_isa).groups.push(Group {
                    gs: Some(seg),
                    ..Group::default()
                }),
                Place::GroupEnd => doc.open_group(in_isa, true).ge = Some(seg),
                Place::SetStart => doc.open_group(in_isa, in_gs).sets.push(TransactionSet {
                    segments: vec![seg],
                    closed: false,
                }),
                Place::SetBody | Place::SetEnd => {
                    let closed = !tracker.in_set();
                    if let Some(set) = doc.open_group(in_isa, in_gs).sets.last_mut() {
                        set.segments.push(seg);
                        set.closed = closed;
                    }
                }
                Place::Stray => {
                    if in_gs {
                        doc.open_group(in_isa, true).other.push(seg);
                    } else if in_isa {
                        doc.open_interchange(true).other.push(seg);
                    } else {
                        doc.other.push(seg);
                    }
                }
            }
        }
        tracker.finish();
        let mut problems = tokenizer.take_problems();
        problems.extend(tracker.take_problems());
        problems.sort_by_key(|p| (p.position.segment_index, p.position.element));
        doc.problems = problems;
        doc
    }

    /// Returns true when any problem is an error (not only warnings).
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(Error::is_error)
    }

    /// Iterates over every transaction set with its interchange and group.
    pub fn sets(
        &self,
    ) -> impl Iterator<Item = (&Interchange<'a>, &Group<'a>, &TransactionSet<'a>)> {
        self.interchanges.iter().flat_map(|i| {
            i.groups
                .iter()
                .flat_map(move |g| g.sets.iter().map(move |s| (i, g, s)))
        })
    }

    /// Returns the number of segments held in the tree (equals the number read).
    pub fn segment_count(&self) -> usize {
        self.other.len()
            + self
                .interchanges
                .iter()
                .map(|i| {
                    usize::from(i.isa.is_some())
                        + usize::from(i.iea.is_some())
                        + i.ta1.len()
                        + i.other.len()
                        + i.groups
                            .iter()
                            .map(|g| {
                                usize::from(g.gs.is_some())
                                    + usize::from(g.ge.is_some())
                                    + g.other.len()
                                    + g.sets.iter().map(|s| s.segments.len()).sum::<usize>()
                            })
                            .sum::<usize>()
                })
                .sum::<usize>()
    }

    /// Returns the interchange receiving the current segment: the last one when it
    /// is still open (`open`), else a new one without an ISA.
    fn open_interchange(&mut self, open: bool) -> &mut Interchange<'a> {
        let reuse = match self.interchanges.last() {
            Some(_) if open => true,
            // Consecutive content without an ISA shares one implicit interchange.
            Some(last) => last.isa.is_none() && last.iea.is_none(),
            None => false,
        };
        if !reuse {
            self.interchanges.push(Interchange::default());
        }
        let last = self.interchanges.len() - 1;
        &mut self.interchanges[last]
    }

    fn open_group(&mut self, in_isa: bool, open: bool) -> &mut Group<'a> {
        let interchange = self.open_interchange(in_isa);
        let reuse = match interchange.groups.last() {
            Some(_) if open => true,
            Some(last) => last.gs.is_none() && last.ge.is_none(),
            None => false,
        };
        if !reuse {
            interchange.groups.push(Group::default());
        }
        let last = interchange.groups.len() - 1;
        &mut interchange.groups[last]
    }
}

impl<'a> TransactionSet<'a> {
    /// Returns the ST segment.
    pub fn st(&self) -> Option<&Segment<'a>> {
        self.segments.first()
    }

    /// Returns the SE segment, if the set was closed.
    pub fn se(&self) -> Option<&Segment<'a>> {
        if self.closed {
            self.segments.last()
        } else {
            None
        }
    }

    /// Returns ST01, the transaction set identifier (`835`, `837`, ...).
    pub fn set_id(&self) -> String {
        self.st()
            .map(|s| s.text(1).into_owned())
            .unwrap_or_default()
    }

    /// Returns ST02, the transaction set control number.
    pub fn control_number(&self) -> String {
        self.st()
            .map(|s| s.text(2).into_owned())
            .unwrap_or_default()
    }

    /// Returns the segments between ST and SE (both excluded).
    pub fn body(&self) -> &[Segment<'a>] {
        let end = if self.closed {
            self.segments.len().saturating_sub(1)
        } else {
            self.segments.len()
        };
        self.segments.get(1..end).unwrap_or(&[])
    }
}
