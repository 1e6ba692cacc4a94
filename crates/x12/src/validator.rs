//! What [`crate::inspect::validate`] and [`crate::inspect::validate_read`]
//! keep while they read: every problem of an input (envelope, typed readers,
//! balancing) found without building its tree or its JSON.

use crate::delimiters::Delimiters;
use crate::envelope::{EnvelopeTracker, Place};
use crate::error::Error;
use crate::inspect::{check_set, imbalance_error, sort_problems};
use crate::segment::Segment;
use crate::tokenizer::Tokenizer;
use crate::transactions::era835::{Era835Check, FastReader, FastStep, Relife};
use crate::tree::{Group, TransactionSet};
use crate::window::WindowReader;

/// The set being read.
enum Open<'a> {
    /// An 835, read and balanced claim by claim as it goes, never held
    /// (boxed: its claim buffers are large).
    Era835(Box<Era835Check<'a>>),
    /// Another type, held until its SE and then checked whole.
    Held(TransactionSet<'a>),
    /// A held set a window ended inside: its segments copied out of the
    /// window (see [`crate::window`]).
    Copied(CopiedSet),
}

/// The state of a validation between two segments.
pub(crate) struct Validator<'a> {
    tracker: EnvelopeTracker,
    problems: Vec<Error>,
    set: Option<Open<'a>>,
    /// The segment vector of the last held set, reused for the next one.
    spare: Vec<Segment<'a>>,
    fast: FastReader,
}

impl<'a> Validator<'a> {
    pub(crate) fn new() -> Self {
        Self {
            tracker: EnvelopeTracker::new(),
            problems: Vec::new(),
            set: None,
            spare: Vec::new(),
            fast: FastReader::new(),
        }
    }

    /// Reads every segment `tokenizer` has.
    pub(crate) fn run(&mut self, tokenizer: &mut Tokenizer<'a>) {
        loop {
            // Inside an 835 set, ordinary body segments take the one-pass reader.
            let next = match &mut self.set {
                Some(Open::Era835(check)) => {
                    check.read_run(&mut self.fast, tokenizer, &mut self.tracker)
                }
                _ => FastStep::Checked,
            };
            let seg = match next {
                FastStep::Route(seg) => seg,
                FastStep::Checked => match tokenizer.next() {
                    Some(seg) => seg,
                    None => return,
                },
            };
            self.route(seg);
        }
    }

    fn route(&mut self, seg: Segment<'a>) {
        let place = self.tracker.push(&seg);
        match place {
            Place::SetStart => {
                self.flush();
                self.set = Some(if seg.bytes(1) == b"835" {
                    let mut check = Box::new(Era835Check::new());
                    check.push(&seg);
                    Open::Era835(check)
                } else {
                    let mut segments = std::mem::take(&mut self.spare);
                    segments.push(seg);
                    Open::Held(TransactionSet {
                        segments,
                        closed: false,
                    })
                });
            }
            Place::SetBody | Place::SetEnd => {
                let end = place == Place::SetEnd;
                match &mut self.set {
                    Some(Open::Era835(check)) => check.push(&seg),
                    Some(Open::Held(s)) => {
                        s.segments.push(seg);
                        s.closed = end;
                    }
                    Some(Open::Copied(s)) => {
                        s.push(&seg);
                        s.closed = end;
                    }
                    None => {}
                }
                if end {
                    self.flush();
                }
            }
            Place::GroupStart
            | Place::GroupEnd
            | Place::InterchangeStart
            | Place::InterchangeEnd => self.flush(),
            Place::Ta1 | Place::Stray => {}
        }
    }

    /// Checks the set being read, if any, and adds its problems.
    fn flush(&mut self) {
        // `check_set` does not look at the set's group; none is kept.
        let group = Group::default();
        match self.set.take() {
            Some(Open::Era835(check)) => {
                let (reader, imbalances) = check.finish();
                self.problems.extend(reader);
                self.problems
                    .extend(imbalances.into_iter().map(imbalance_error));
            }
            Some(Open::Held(s)) => {
                self.problems.extend(check_set(&s, &group));
                self.spare = s.segments;
                self.spare.clear();
            }
            Some(Open::Copied(s)) => self.problems.extend(check_set(&s.set(), &group)),
            None => {}
        }
    }

    /// Ends the input and returns every problem in input order; `splitting`
    /// are the tokenizer's.
    pub(crate) fn finish(mut self, splitting: Vec<Error>) -> Vec<Error> {
        self.flush();
        self.tracker.finish();
        // Splitting and envelope problems first, as in `inspect`, so that
        // problems on the same segment and element come out in the same
        // order from both.
        let mut all = splitting;
        all.extend(self.tracker.take_problems());
        all.extend(self.problems);
        sort_problems(&mut all);
        all
    }

    /// The same state with nothing borrowed from the input: the open 835's
    /// header and claim buffers, or the held set's segments, are copied.
    fn relife<'b>(self) -> Validator<'b> {
        Validator {
            tracker: self.tracker,
            problems: self.problems,
            set: self.set.map(|open| match open {
                Open::Era835(check) => Open::Era835(Box::new((*check).relife())),
                Open::Held(s) => Open::Copied(CopiedSet::from(&s)),
                Open::Copied(s) => Open::Copied(s),
            }),
            spare: Vec::new(),
            fast: self.fast,
        }
    }
}

/// A held set's segments copied out of their window: their bytes end to
/// end, and where each one was.
struct CopiedSet {
    bytes: Vec<u8>,
    segments: Vec<CopiedSegment>,
    closed: bool,
}

struct CopiedSegment {
    /// Where its bytes are in [`CopiedSet::bytes`].
    start: usize,
    len: usize,
    /// Where it was in the input.
    offset: usize,
    index: usize,
    delimiters: Delimiters,
}

impl CopiedSet {
    fn from(set: &TransactionSet<'_>) -> Self {
        let mut copy = Self {
            bytes: Vec::new(),
            segments: Vec::with_capacity(set.segments.len()),
            closed: set.closed,
        };
        for seg in &set.segments {
            copy.push(seg);
        }
        copy
    }

    fn push(&mut self, seg: &Segment<'_>) {
        self.segments.push(CopiedSegment {
            start: self.bytes.len(),
            len: seg.raw().len(),
            offset: seg.offset(),
            index: seg.index(),
            delimiters: seg.delimiters(),
        });
        self.bytes.extend_from_slice(seg.raw());
    }

    /// The set, its segments borrowing the copy.
    fn set(&self) -> TransactionSet<'_> {
        TransactionSet {
            segments: self
                .segments
                .iter()
                .map(|s| {
                    Segment::new(
                        &self.bytes[s.start..s.start + s.len],
                        s.offset,
                        s.index,
                        s.delimiters,
                    )
                })
                .collect(),
            closed: self.closed,
        }
    }
}

/// Validation as a [`WindowReader`]: see [`crate::inspect::validate_read`].
pub(crate) struct Validating;

impl WindowReader for Validating {
    type State<'w> = Validator<'w>;

    fn run<'w>(&mut self, state: &mut Validator<'w>, tokenizer: &mut Tokenizer<'w>) {
        state.run(tokenizer);
    }

    fn carry<'w, 'n>(state: Validator<'w>) -> Validator<'n> {
        state.relife()
    }

    fn finish<'w>(&mut self, state: Validator<'w>, splitting: Vec<Error>) -> Vec<Error> {
        state.finish(splitting)
    }
}
