//! The one-pass loop behind the visiting readers ([`super::for_each_835`],
//! [`super::for_each_claim_835`]) and its windowed form over a `Read`
//! ([`super::for_each_claim_835_read`], through [`crate::window`]).
//!
//! [`Driver`] holds what the loop keeps between segments (envelope tracker,
//! the open set's builder), apart from the input, so that the windowed reader
//! can carry it from one buffer window to the next: at a window's end it
//! copies what still borrows the window ([`Driver::relife`]: the open set's
//! header and claim buffers), reads on, and goes on in the next window with
//! the same code and the same results as over the whole input.

use super::{
    Delivery, Era835Builder, Era835Visitor, FastReader, FastStep, MAX_CLAIMS_HINT, Relife,
};
use crate::envelope::{EnvelopeTracker, Place};
use crate::error::Error;
use crate::segment::Segment;
use crate::tokenizer::Tokenizer;
use crate::window::WindowReader;

/// What the loop keeps from one segment to the next.
pub(super) struct Driver<'a> {
    tracker: EnvelopeTracker,
    builder: Option<Era835Builder<'a>>,
    fast: FastReader,
    delivery: Delivery,
    /// The claims vector of a set is reserved at the previous set's claim
    /// count: sets of one file are alike, and growing a vector of ~1 KB
    /// claims by doubling copied more bytes than the input holds.
    claims_hint: usize,
}

impl<'a> Driver<'a> {
    pub(super) fn new(delivery: Delivery) -> Self {
        Self {
            tracker: EnvelopeTracker::new(),
            builder: None,
            fast: FastReader::new(),
            delivery,
            claims_hint: 0,
        }
    }

    /// Reads every segment `tokenizer` has: body segments of an 835 set in
    /// the fast reader's runs, the rest one at a time.
    #[inline(always)] // into drive_835, so the in-memory loop keeps its state in locals
    pub(super) fn run(
        &mut self,
        tokenizer: &mut Tokenizer<'a>,
        visitor: &mut dyn Era835Visitor<'a>,
    ) {
        loop {
            if let Some(b) = &mut self.builder {
                match self.fast.read_run(b, tokenizer, &mut self.tracker, visitor) {
                    FastStep::Route(seg) => {
                        self.route(&seg, visitor);
                        continue;
                    }
                    FastStep::Checked => {}
                }
            }
            let Some(seg) = tokenizer.next() else { break };
            self.route(&seg, visitor);
        }
    }

    /// Ends the input: closes the open set and the envelope checks, and
    /// returns the tokenizer's problems (`splitting`), then the envelope's.
    pub(super) fn finish(
        mut self,
        visitor: &mut dyn Era835Visitor<'a>,
        splitting: Vec<Error>,
    ) -> Vec<Error> {
        self.end_set(visitor);
        self.tracker.finish();
        let mut problems = splitting;
        problems.extend(self.tracker.take_problems());
        problems
    }

    /// The same state with every text it holds owned, so that it no longer
    /// borrows the input window (and can be typed for the next one).
    fn relife<'b>(self) -> Driver<'b> {
        Driver {
            tracker: self.tracker,
            builder: self.builder.map(Relife::relife),
            fast: self.fast,
            delivery: self.delivery,
            claims_hint: self.claims_hint,
        }
    }

    fn route(&mut self, seg: &Segment<'a>, visitor: &mut dyn Era835Visitor<'a>) {
        match self.tracker.push(seg) {
            Place::SetStart => {
                self.end_set(visitor);
                if seg.bytes(1) == b"835" {
                    let mut b = Era835Builder::with_delivery(self.delivery);
                    if self.delivery == Delivery::Hold {
                        b.reader.r.claims.reserve(self.claims_hint);
                    }
                    push(&mut b, seg, visitor);
                    self.builder = Some(b);
                }
            }
            Place::SetBody => {
                if let Some(b) = &mut self.builder {
                    push(b, seg, visitor);
                }
            }
            Place::SetEnd => {
                if let Some(b) = &mut self.builder {
                    push(b, seg, visitor);
                }
                self.end_set(visitor);
            }
            Place::GroupStart
            | Place::GroupEnd
            | Place::InterchangeStart
            | Place::InterchangeEnd => self.end_set(visitor),
            Place::Ta1 | Place::Stray => {}
        }
    }

    fn end_set(&mut self, visitor: &mut dyn Era835Visitor<'a>) {
        if let Some(b) = self.builder.take() {
            let (r, p) = b.finish_visiting(visitor);
            self.claims_hint = r.claims.len().min(MAX_CLAIMS_HINT);
            visitor.set(r, p);
        }
    }
}

fn push<'a>(b: &mut Era835Builder<'a>, seg: &Segment<'a>, visitor: &mut dyn Era835Visitor<'a>) {
    b.push(seg);
    b.deliver_ready(visitor);
}

/// Reads `input` whole; see [`super::for_each_claim_835`]. Compiled once in
/// this crate rather than in each caller's: the tokenizer, envelope tracker
/// and builder inline into it (one indirect call per claim or set instead of
/// cross-crate calls per segment).
pub(super) fn drive_835<'a>(
    input: &'a [u8],
    delivery: Delivery,
    visitor: &mut dyn Era835Visitor<'a>,
) -> Vec<Error> {
    let mut tokenizer = Tokenizer::new(input);
    let mut driver = Driver::new(delivery);
    driver.run(&mut tokenizer, visitor);
    driver.finish(visitor, tokenizer.take_problems())
}

/// The claim visitor as a [`WindowReader`]; see
/// [`super::for_each_claim_835_read`].
pub(super) struct Visiting<'v, V>(pub(super) &'v mut V);

impl<V: for<'w> Era835Visitor<'w>> WindowReader for Visiting<'_, V> {
    type State<'w> = Driver<'w>;

    fn run<'w>(&mut self, state: &mut Driver<'w>, tokenizer: &mut Tokenizer<'w>) {
        state.run(tokenizer, self.0);
    }

    fn carry<'w, 'n>(state: Driver<'w>) -> Driver<'n> {
        state.relife()
    }

    fn finish<'w>(&mut self, state: Driver<'w>, splitting: Vec<Error>) -> Vec<Error> {
        state.finish(self.0, splitting)
    }
}
