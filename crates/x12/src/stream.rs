//! Streaming readers over any [`std::io::Read`], in bounded memory.
//!
//! [`SegmentReader`] yields one segment at a time from a buffer that holds at
//! most one partial segment plus one read chunk: memory is bounded by
//! [`crate::MAX_SEGMENT_LEN`] (1 MiB) plus [`CHUNK_SIZE`], whatever the input
//! size. A longer "segment" (a missing terminator, a 100 MB line) is reported
//! as [`crate::ErrorKind::SegmentTooLong`] and skipped without being buffered.
//!
//! [`Era835Stream`] reads 835s on top of it and yields [`StreamEvent`]s: each
//! claim payment as soon as it is complete (with its line and claim balance
//! problems), and each set's header and end (with the transaction balance).
//! Memory is bounded by one claim, not by the transaction set or the file.
//! Text in the yielded values is owned (`Cow::Owned`), since the buffer it was
//! read from is reused.
//!
//! When lending each claim to a visitor is enough,
//! [`crate::transactions::era835::for_each_claim_835_read`] reads a `Read`
//! about five times faster: it runs the in-memory reader over windows of the
//! input and copies only what is open at a window's end.

use std::collections::VecDeque;
use std::io::Read;

use crate::balance::{BalanceProblem, balance_claim, balance_transaction};
use crate::envelope::{EnvelopeTracker, Place};
use crate::error::Error;
use crate::segment::Segment;
use crate::tokenizer::{MAX_SEGMENT_LEN, Scan, Scanner};
use crate::transactions::era835::{ClaimPayment, Era835Builder, Remittance};
use crate::window::read_some;

/// Bytes read from the underlying reader at a time (256 KiB).
pub const CHUNK_SIZE: usize = 256 * 1024;

/// Yields the segments of a [`Read`] one at a time, in bounded memory.
#[derive(Debug)]
pub struct SegmentReader<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    base: usize,
    eof: bool,
    scanner: Scanner,
}

impl<R: Read> SegmentReader<R> {
    /// Creates a reader with the default segment length limit ([`MAX_SEGMENT_LEN`]).
    pub fn new(reader: R) -> Self {
        Self::with_max_segment_len(reader, MAX_SEGMENT_LEN)
    }

    /// Creates a reader with a custom segment length limit.
    pub fn with_max_segment_len(reader: R, max_segment_len: usize) -> Self {
        Self {
            reader,
            buf: Vec::with_capacity(CHUNK_SIZE),
            pos: 0,
            base: 0,
            eof: false,
            scanner: Scanner::new(max_segment_len),
        }
    }

    /// Returns the next segment, borrowing the reader's buffer until the next call.
    pub fn next_segment(&mut self) -> Option<Segment<'_>> {
        let (start, end) = loop {
            match self.scanner.scan(&self.buf, self.pos, self.base, self.eof) {
                Scan::Segment { start, end, next } => {
                    self.pos = next;
                    break (start, end);
                }
                Scan::NeedMore { keep_from } => {
                    if self.eof {
                        return None;
                    }
                    let keep_from = keep_from.min(self.buf.len());
                    self.buf.drain(..keep_from);
                    self.base += keep_from;
                    self.pos = 0;
                    self.fill();
                }
                Scan::Done => return None,
            }
        };
        let d = self.scanner.delimiters?;
        Some(Segment::new(
            &self.buf[start..end],
            self.base + start,
            self.scanner.index,
            d,
        ))
    }

    /// Returns the number of bytes held in the buffer (for memory checks).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Removes and returns the problems found so far (splitting, I/O).
    pub fn take_problems(&mut self) -> Vec<Error> {
        self.scanner.problems.take()
    }

    fn fill(&mut self) {
        self.eof = read_some(
            &mut self.reader,
            &mut self.buf,
            CHUNK_SIZE,
            self.base,
            &mut self.scanner,
        );
    }
}

/// What the 835 stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The header of an 835 set (BPR, TRN, payer, payee; no claims yet),
    /// yielded before its first claim.
    Header(Box<Remittance<'static>>),
    /// One claim payment and its line and claim imbalances.
    Claim {
        /// The claim.
        claim: Box<ClaimPayment<'static>>,
        /// Line- and claim-level imbalances (empty when it balances).
        imbalances: Vec<BalanceProblem>,
    },
    /// The end of an 835 set.
    SetEnd {
        /// Header, PLB adjustments, claim count, sum of CLP04 and segment count (`claims` is empty).
        remittance: Box<Remittance<'static>>,
        /// The transaction-level imbalance, if any.
        imbalance: Option<BalanceProblem>,
        /// Problems the 835 reader found in this set.
        problems: Vec<Error>,
    },
    /// A transaction set of another type, envelope-checked and skipped.
    OtherSet {
        /// ST01.
        set_id: String,
        /// ST02.
        control_number: String,
        /// 1-based index of its ST segment.
        segment_index: usize,
    },
}

/// Reads 835 transaction sets from any [`Read`], yielding claims one at a time.
#[derive(Debug)]
pub struct Era835Stream<R> {
    segments: SegmentReader<R>,
    tracker: EnvelopeTracker,
    builder: Option<Era835Builder<'static>>,
    header_sent: bool,
    queue: VecDeque<StreamEvent>,
    done: bool,
    segments_read: usize,
}

impl<R: Read> Era835Stream<R> {
    /// Creates a stream over `reader`.
    pub fn new(reader: R) -> Self {
        Self::from_segments(SegmentReader::new(reader))
    }

    /// Creates a stream over a configured [`SegmentReader`].
    pub fn from_segments(segments: SegmentReader<R>) -> Self {
        Self {
            segments,
            tracker: EnvelopeTracker::new(),
            builder: None,
            header_sent: false,
            queue: VecDeque::new(),
            done: false,
            segments_read: 0,
        }
    }

    /// Removes and returns the splitting and envelope problems found so far
    /// (the 835 reader's own problems come with each [`StreamEvent::SetEnd`]).
    pub fn take_problems(&mut self) -> Vec<Error> {
        let mut p = self.segments.take_problems();
        p.extend(self.tracker.take_problems());
        p
    }

    /// Returns the number of segments read so far.
    pub fn segments_read(&self) -> usize {
        self.segments_read
    }

    /// Returns the number of bytes held in the segment buffer.
    pub fn buffered(&self) -> usize {
        self.segments.buffered()
    }

    fn step(&mut self) {
        let Some(seg) = self.segments.next_segment() else {
            self.done = true;
            self.tracker.finish();
            Self::end_set(&mut self.builder, &mut self.header_sent, &mut self.queue);
            return;
        };
        self.segments_read += 1;
        let place = self.tracker.push(&seg);
        match place {
            Place::SetStart => {
                Self::end_set(&mut self.builder, &mut self.header_sent, &mut self.queue);
                if seg.bytes(1) == b"835" {
                    let mut b = Era835Builder::streaming();
                    b.push_owned(&seg);
                    self.builder = Some(b);
                } else {
                    self.queue.push_back(StreamEvent::OtherSet {
                        set_id: seg.text(1).into_owned(),
                        control_number: seg.text(2).into_owned(),
                        segment_index: seg.index(),
                    });
                }
            }
            Place::SetBody | Place::SetEnd => {
                if let Some(b) = &mut self.builder {
                    if !self.header_sent && matches!(seg.id_bytes(), b"LX" | b"CLP" | b"PLB") {
                        self.header_sent = true;
                        self.queue
                            .push_back(StreamEvent::Header(Box::new(b.header().clone())));
                    }
                    b.push_owned(&seg);
                    while let Some(claim) = b.pop_claim() {
                        self.queue.push_back(claim_event(claim));
                    }
                }
                if place == Place::SetEnd {
                    Self::end_set(&mut self.builder, &mut self.header_sent, &mut self.queue);
                }
            }
            Place::GroupStart
            | Place::GroupEnd
            | Place::InterchangeStart
            | Place::InterchangeEnd => {
                Self::end_set(&mut self.builder, &mut self.header_sent, &mut self.queue);
            }
            Place::Ta1 | Place::Stray => {}
        }
    }

    fn end_set(
        builder: &mut Option<Era835Builder<'static>>,
        header_sent: &mut bool,
        queue: &mut VecDeque<StreamEvent>,
    ) {
        let Some(mut b) = builder.take() else { return };
        b.flush_claim();
        if !*header_sent {
            queue.push_back(StreamEvent::Header(Box::new(b.header().clone())));
        }
        *header_sent = false;
        while let Some(claim) = b.pop_claim() {
            queue.push_back(claim_event(claim));
        }
        let (r, problems) = b.finish();
        let imbalance = balance_transaction(&r, r.claims_paid_total);
        queue.push_back(StreamEvent::SetEnd {
            remittance: Box::new(r),
            imbalance,
            problems,
        });
    }
}

fn claim_event(claim: ClaimPayment<'static>) -> StreamEvent {
    let mut imbalances = Vec::new();
    balance_claim(&claim, &mut imbalances);
    StreamEvent::Claim {
        claim: Box::new(claim),
        imbalances,
    }
}

impl<R: Read> Iterator for Era835Stream<R> {
    type Item = StreamEvent;

    fn next(&mut self) -> Option<StreamEvent> {
        while self.queue.is_empty() && !self.done {
            self.step();
        }
        self.queue.pop_front()
    }
}
