//! Splits input into segments, reading delimiters from each ISA.
//!
//! The private `Scanner` is the one place that finds segment boundaries; the slice
//! [`Tokenizer`] and the streaming reader ([`crate::stream`]) both drive it.
//! Tolerated between segments: CR/LF, blank lines, spaces and tabs
//! (indentation), and a UTF-8 byte order mark at the start. Each `ISA` re-reads
//! the delimiters, so interchanges with different delimiters can be appended.
//! Input without an ISA (a bare `ST..SE`) is read with delimiters guessed from
//! its first segment, and a warning says so.

use wide::u8x16;

use crate::delimiters::{Delimiters, printable};
use crate::error::{Error, ErrorKind, Position, ProblemList};
use crate::segment::Segment;

/// Longest segment accepted, in bytes (1 MiB). Real segments are under a few
/// hundred bytes; the limit keeps memory bounded when a file has a wrong or
/// missing terminator (a 100 MB "segment" becomes an error, not a 100 MB buffer).
pub const MAX_SEGMENT_LEN: usize = 1 << 20;

/// Bytes needed after a segment start to read an ISA or guess delimiters without
/// waiting for more input.
pub(crate) const DETECT_WINDOW: usize = 64 * 1024;

/// Longest segment [`SplitRun::next`] reads; longer ones (rare) take
/// the checked path, which enforces [`MAX_SEGMENT_LEN`].
pub(crate) const FAST_SEGMENT_LEN: usize = 4096;

/// What the scanner found at the current position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// A segment occupies `buf[start..end]`; scanning continues at `next`.
    Segment {
        start: usize,
        end: usize,
        next: usize,
    },
    /// More input is needed; bytes before `keep_from` are no longer needed.
    NeedMore { keep_from: usize },
    /// The input is exhausted.
    Done,
}

/// Segment-boundary state machine shared by the slice and streaming readers.
#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    pub(crate) delimiters: Option<Delimiters>,
    /// Number of segments produced so far (the next one gets `index + 1`).
    pub(crate) index: usize,
    pub(crate) max_segment_len: usize,
    pub(crate) problems: ProblemList,
    skipping: bool,
    started: bool,
    gave_up: bool,
}

impl Scanner {
    pub(crate) fn new(max_segment_len: usize) -> Self {
        Self {
            delimiters: None,
            index: 0,
            max_segment_len,
            problems: ProblemList::default(),
            skipping: false,
            started: false,
            gave_up: false,
        }
    }

    /// Finds the next segment in `buf` from `pos`. `base` is the absolute offset
    /// of `buf[0]`; `eof` says whether `buf` holds the rest of the input.
    pub(crate) fn scan(&mut self, buf: &[u8], mut pos: usize, base: usize, eof: bool) -> Scan {
        loop {
            if self.gave_up {
                return Scan::Done;
            }
            if self.skipping {
                let seg_term = self.delimiters.map(|d| d.segment).unwrap_or(b'~');
                match memchr::memchr(seg_term, &buf[pos.min(buf.len())..]) {
                    Some(p) => {
                        self.skipping = false;
                        pos += p + 1;
                    }
                    None if eof => return Scan::Done,
                    None => {
                        return Scan::NeedMore {
                            keep_from: buf.len(),
                        };
                    }
                }
            }
            if !self.started && buf.len() >= pos + 3 && buf[pos..].starts_with(b"\xEF\xBB\xBF") {
                pos += 3;
            }
            while pos < buf.len() && matches!(buf[pos], b'\r' | b'\n' | b' ' | b'\t' | 0) {
                pos += 1;
            }
            if pos >= buf.len() {
                return if eof {
                    self.finish(base + pos)
                } else {
                    Scan::NeedMore { keep_from: pos }
                };
            }
            self.started = true;
            let rest = &buf[pos..];
            let isa_here =
                rest.len() >= 4 && &rest[..3] == b"ISA" && !rest[3].is_ascii_alphanumeric();
            if isa_here || self.delimiters.is_none() {
                if !eof && rest.len() < DETECT_WINDOW {
                    // An ISA fits in far less, but guessing delimiters (a bare
                    // ST, or an ISA that does not parse) looks further; ask for
                    // the window, so that a stream reads as the whole input.
                    let enough = isa_here && rest.len() > 600 && Delimiters::from_isa(rest).is_ok();
                    if !enough {
                        return Scan::NeedMore { keep_from: pos };
                    }
                }
                if !self.detect(rest, base + pos, isa_here) {
                    return Scan::Done;
                }
            }
            let Some(d) = self.delimiters else {
                return Scan::Done;
            };
            let limit = self.max_segment_len;
            let window = &rest[..rest.len().min(limit + 1)];
            let (end, next) = match find_terminator(window, d.segment) {
                Some(p) if p <= limit => (pos + p, pos + p + 1),
                _ if window.len() > limit => {
                    self.index += 1;
                    self.problems.push(Error::at(
                        Position {
                            segment_index: self.index,
                            offset: base + pos,
                            ..Position::default()
                        },
                        ErrorKind::SegmentTooLong { limit },
                    ));
                    self.skipping = true;
                    pos += window.len();
                    continue;
                }
                _ if !eof => return Scan::NeedMore { keep_from: pos },
                _ => {
                    let id_end = memchr::memchr(d.element, rest).unwrap_or(rest.len()).min(3);
                    self.problems.push(Error::at(
                        Position {
                            segment_index: self.index + 1,
                            segment_id: String::from_utf8_lossy(&rest[..id_end]).into_owned(),
                            offset: base + pos,
                            ..Position::default()
                        },
                        ErrorKind::NotTerminated,
                    ));
                    (buf.len(), buf.len())
                }
            };
            let mut end = end;
            while end > pos && matches!(buf[end - 1], b'\r' | b'\n')
                || (d.segment == b'\n' && end > pos && matches!(buf[end - 1], b' ' | b'\t'))
            {
                end -= 1;
            }
            if end == pos {
                pos = next;
                continue;
            }
            self.index += 1;
            self.check_id(&buf[pos..end], d, base + pos);
            return Scan::Segment {
                start: pos,
                end,
                next,
            };
        }
    }

    fn finish(&mut self, offset: usize) -> Scan {
        if !self.started {
            self.started = true;
            self.problems.push(Error::at(
                Position {
                    offset,
                    ..Position::default()
                },
                ErrorKind::Empty,
            ));
        }
        Scan::Done
    }

    /// Reads delimiters at a segment start; returns false when reading must stop.
    fn detect(&mut self, rest: &[u8], offset: usize, isa_here: bool) -> bool {
        let position = Position {
            segment_index: self.index + 1,
            segment_id: if isa_here {
                "ISA".into()
            } else {
                String::new()
            },
            element: None,
            component: None,
            offset,
        };
        if isa_here {
            match Delimiters::from_isa(rest) {
                Ok(found) => {
                    if found.isa_len != 105 {
                        self.problems.push(Error::warn_at(
                            position,
                            ErrorKind::IsaNotFixedWidth(found.isa_len + 1),
                        ));
                    }
                    self.delimiters = Some(found.delimiters);
                    return true;
                }
                Err(kind) => {
                    self.problems.push(Error::at(position.clone(), kind));
                    if self.delimiters.is_some() {
                        // Keep the previous interchange's delimiters and go on.
                        return true;
                    }
                }
            }
        }
        match Delimiters::guess_from_segment(rest) {
            Some((d, seen)) => {
                self.problems.push(Error::warn_at(
                    position,
                    ErrorKind::DelimitersAssumed {
                        element: d.element as char,
                        segment: printable(d.segment),
                        component: d.component as char,
                        component_how: if seen {
                            "seen in a procedure composite"
                        } else {
                            "assumed"
                        },
                        repetition: d.repetition.map(printable).unwrap_or_else(|| "none".into()),
                    },
                ));
                self.delimiters = Some(d);
                true
            }
            None => {
                self.problems
                    .push(Error::at(position, ErrorKind::NoDelimiters));
                self.gave_up = true;
                false
            }
        }
    }

    fn check_id(&mut self, raw: &[u8], d: Delimiters, offset: usize) {
        let id = match raw.iter().take(4).position(|&b| b == d.element) {
            Some(p) => &raw[..p],
            None => raw,
        };
        if !is_segment_id(id) {
            let shown = String::from_utf8_lossy(&id[..id.len().min(16)]).into_owned();
            self.problems.push(Error::at(
                Position {
                    segment_index: self.index,
                    segment_id: shown.clone(),
                    offset,
                    ..Position::default()
                },
                ErrorKind::InvalidSegmentId(shown),
            ));
        }
    }
}

/// True for a well-formed segment id: 2-3 bytes, an uppercase letter then
/// uppercase letters or digits.
fn is_segment_id(id: &[u8]) -> bool {
    packed_segment_id(id, id.len()).is_some()
}

/// A segment read by [`SplitRun::next`].
///
/// Where it is, not the [`Segment`] itself: the readers' fast path needs only
/// this, and [`SplitRun::segment`] makes the segment for the other paths.
#[derive(Clone, Copy)]
pub(crate) struct Split {
    /// Byte offset of the segment in the input the run reads.
    pub(crate) start: usize,
    /// Byte offset of the segment in the whole input (`start` but for a
    /// window of a stream).
    pub(crate) offset: usize,
    /// Length of the segment, terminator excluded.
    pub(crate) len: usize,
    /// 1-based index of the segment in the input.
    pub(crate) index: usize,
    /// How many element ends were written (the id and each element).
    pub(crate) parts: usize,
    /// The segment id, as [`packed_id`] packs it.
    pub(crate) id: u32,
}

/// A segment id as one number, its bytes little-endian and zero-padded:
/// what the fast paths compare and dispatch on.
pub(crate) const fn packed_id(id: &[u8; 3]) -> u32 {
    u32::from_le_bytes([id[0], id[1], id[2], 0])
}

const ISA: u32 = packed_id(b"ISA");

/// What each byte may be in a segment id: [`LETTER`], [`DIGIT`] or neither (0).
const ID_BYTES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            b'A'..=b'Z' => LETTER,
            b'0'..=b'9' => DIGIT,
            _ => 0,
        };
        b += 1;
    }
    table
};
const LETTER: u8 = 1;
const DIGIT: u8 = 2;

/// The first `len` bytes of `raw` as a packed id, when they make a valid one
/// (two or three capital letters and digits, a letter first), checked with a
/// table and no branch per byte.
#[inline(always)]
fn packed_segment_id(raw: &[u8], len: usize) -> Option<u32> {
    let class = |b: u8| ID_BYTES[usize::from(b)];
    let (a, b, c, rest) = match (len, raw) {
        (2, &[a, b, ..]) => (a, b, 0, class(b)),
        // Non-zero when both are a letter or a digit.
        (3, &[a, b, c, ..]) => (a, b, c, class(b).min(class(c))),
        _ => return None,
    };
    (class(a) == LETTER && rest != 0).then_some(u32::from_le_bytes([a, b, c, 0]))
}

/// Finds the first `byte` in `hay`. Segments are short (about 25 bytes), so
/// the first 64 bytes are searched 16 at a time inline, as the split pass
/// does; memchr's vector search costs more to set up than that.
#[inline]
fn find_terminator(hay: &[u8], byte: u8) -> Option<usize> {
    let pattern = u8x16::splat(byte);
    let mut at = 0;
    while at < 64 {
        let Some(chunk) = hay.get(at..).and_then(<[u8]>::first_chunk::<16>) else {
            break;
        };
        let found = u8x16::from(*chunk).cmp_eq(pattern).move_mask();
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize);
        }
        at += 16;
    }
    memchr::memchr(byte, &hay[at..]).map(|p| at + p)
}

/// Iterates over the segments of an in-memory input.
///
/// Problems met while splitting (bad ISA, junk segment ids, a missing final
/// terminator, over-long segments) are collected; read them with
/// [`Tokenizer::problems`] or [`Tokenizer::take_problems`].
#[derive(Debug, Clone)]
pub struct Tokenizer<'a> {
    input: &'a [u8],
    pos: usize,
    scanner: Scanner,
    /// Offset of `input[0]` in the whole input: not 0 when `input` is one
    /// window of a stream (see [`Tokenizer::window`]).
    base: usize,
    /// Whether `input` holds the end of the input.
    eof: bool,
    /// Where the next window must start, once this one ends inside a
    /// segment (or where more input is needed to read on).
    keep_from: Option<usize>,
}

impl<'a> Tokenizer<'a> {
    /// Creates a tokenizer over `input` with the default [`MAX_SEGMENT_LEN`].
    pub fn new(input: &'a [u8]) -> Self {
        Self::with_max_segment_len(input, MAX_SEGMENT_LEN)
    }

    /// Creates a tokenizer with a custom segment length limit.
    pub fn with_max_segment_len(input: &'a [u8], max_segment_len: usize) -> Self {
        Self::window(input, 0, true, Scanner::new(max_segment_len))
    }

    /// A tokenizer over one window of a longer input that starts `base` bytes
    /// in, going on from `scanner`'s state (the previous window's); `eof` says
    /// whether the window holds the end of the input. Offsets in segments and
    /// problems count from the start of the whole input.
    pub(crate) fn window(input: &'a [u8], base: usize, eof: bool, scanner: Scanner) -> Self {
        Self {
            input,
            pos: 0,
            scanner,
            base,
            eof,
            keep_from: None,
        }
    }

    /// Ends a window: the scanner state to go on with, and where in this
    /// window the next one must start (`None` when the input has ended).
    pub(crate) fn end_window(self) -> (Scanner, Option<usize>) {
        (self.scanner, self.keep_from)
    }

    /// Returns the delimiters in force (those of the latest ISA), if known yet.
    pub fn delimiters(&self) -> Option<Delimiters> {
        self.scanner.delimiters
    }

    /// Returns the problems found so far.
    pub fn problems(&self) -> &[Error] {
        self.scanner.problems.as_slice()
    }

    /// Removes and returns the problems found so far.
    pub fn take_problems(&mut self) -> Vec<Error> {
        self.scanner.problems.take()
    }

    /// Starts a run of [`SplitRun::next`] reads: the fast path of the typed
    /// readers, which splits a segment into elements in the pass that finds
    /// it. `None` when the checked path must read next (before the first
    /// ISA, while skipping junk, after giving up). The state checked here
    /// cannot change during the run, since only the checked path changes it;
    /// [`Tokenizer::end_split_run`] hands the position back.
    #[inline(always)]
    pub(crate) fn split_run(&mut self) -> Option<SplitRun<'a>> {
        let s = &self.scanner;
        if s.skipping || s.gave_up || !s.started {
            return None;
        }
        let d = s.delimiters?;
        // Made once per run rather than once per segment.
        Some(SplitRun {
            input: self.input,
            base: self.base,
            pos: self.pos,
            index: s.index,
            delimiters: d,
            element: u8x16::splat(d.element),
            terminator: u8x16::splat(d.segment),
            split_len: FAST_SEGMENT_LEN.min(s.max_segment_len.saturating_add(1)),
        })
    }

    /// Ends a run: the tokenizer goes on after the last segment it read.
    #[inline(always)]
    pub(crate) fn end_split_run(&mut self, run: SplitRun<'a>) {
        self.pos = run.pos;
        self.scanner.index = run.index;
    }
}

/// Reads segments split into elements, with the tokenizer's position and
/// segment count held here (in registers, in the readers' loops) until
/// [`Tokenizer::end_split_run`].
pub(crate) struct SplitRun<'a> {
    input: &'a [u8],
    /// Offset of `input[0]` in the whole input (see [`Tokenizer::window`]).
    base: usize,
    pos: usize,
    index: usize,
    delimiters: Delimiters,
    /// The element separator and the segment terminator in all 16 lanes.
    element: u8x16,
    terminator: u8x16,
    /// Longest segment read (the smaller of [`FAST_SEGMENT_LEN`] and the
    /// limit the checked path enforces).
    split_len: usize,
}

impl<'a> SplitRun<'a> {
    /// Reads the next segment and splits it into elements in the same pass,
    /// writing each element's end offset (the id's first) into `ends`.
    ///
    /// It takes only a segment with an id of two or three bytes, no line
    /// break before the terminator, at most `ends.len()` parts, under
    /// [`FAST_SEGMENT_LEN`] bytes. For anything else it returns `None`
    /// without moving, and [`Iterator::next`] reads the segment with every
    /// check and problem.
    ///
    /// The id's bytes are not checked here: a reader matching it against the
    /// ids it knows needs no check, and any other segment goes through
    /// [`SplitRun::ordinary`] first.
    ///
    /// Every byte of a segment it returns is ASCII (a segment with any other
    /// byte goes the checked way, which reads it as UTF-8), and every offset
    /// written is that of a delimiter byte (an element separator, the
    /// terminator last): the 835 fast path makes text of the bytes between
    /// these offsets without a UTF-8 check.
    #[inline(always)]
    pub(crate) fn next(&mut self, ends: &mut [usize]) -> Option<Split> {
        let d = self.delimiters;
        let input = self.input;
        let mut start = self.pos;
        // Line breaks or padding between segments: one compare tells there
        // is none, as in most files.
        if input.get(start).is_some_and(|&b| b <= b' ') {
            while start < input.len() && matches!(input[start], b'\r' | b'\n' | b' ' | b'\t' | 0) {
                start += 1;
            }
        }
        let limit = input.len().min(start + self.split_len);
        // Sixteen bytes at a time: one compare gives the separators, one the
        // terminators (a bit per byte), then one step per separator.
        let (sep, term) = (self.element, self.terminator);
        let bytes = &input[start..limit];
        let mut n = 0;
        let mut at = 0;
        let len = loop {
            let Some(chunk) = bytes.get(at..).and_then(<[u8]>::first_chunk::<16>) else {
                // The last few bytes of the input, one at a time.
                let rest = bytes.get(at..)?;
                let i = rest.iter().position(|&b| b == d.segment)?;
                if !rest[..i].is_ascii() {
                    return None;
                }
                for (j, &b) in rest[..i].iter().enumerate() {
                    if b == d.element {
                        *ends.get_mut(n)? = at + j;
                        n += 1;
                    }
                }
                break at + i;
            };
            let chunk = u8x16::from(*chunk);
            let ends_here = chunk.cmp_eq(term).move_mask() as u32;
            let mut seps = chunk.cmp_eq(sep).move_mask() as u32;
            // Bytes of 0x80 and up: their high bits.
            let mut not_ascii = chunk.move_mask() as u32;
            if ends_here != 0 {
                // Keep the separators (and bytes) before the (first) terminator.
                seps &= ends_here - 1;
                not_ascii &= ends_here - 1;
            }
            if not_ascii != 0 {
                return None;
            }
            while seps != 0 {
                *ends.get_mut(n)? = at + seps.trailing_zeros() as usize;
                n += 1;
                seps &= seps - 1;
            }
            if ends_here != 0 {
                break at + ends_here.trailing_zeros() as usize;
            }
            at += 16;
        };
        let at = start + len;
        let raw = &input[start..at];
        let last = *raw.last()?;
        // One compare for the usual last byte, a letter or digit.
        if last <= b' '
            && (matches!(last, b'\r' | b'\n')
                || (d.segment == b'\n' && matches!(last, b' ' | b'\t')))
        {
            return None;
        }
        *ends.get_mut(n)? = raw.len();
        // The id from one 4-byte load: the first segment bytes, cut to the
        // id's length (a segment near the input's end goes the checked way).
        let word = u32::from_le_bytes(*input.get(start..)?.first_chunk::<4>()?);
        let id = match ends[0] {
            2 => word & 0xFFFF,
            // A zero third byte would read as a two-byte id.
            3 if word & 0xFF_0000 != 0 => word & 0xFF_FFFF,
            _ => return None,
        };
        // A line break after the terminator (files written to be read by
        // people) is stepped over here, where the byte is at hand, rather
        // than by the loop at the top of the next call.
        self.pos = at + 1 + usize::from(input.get(at + 1) == Some(&b'\n'));
        self.index += 1;
        Some(Split {
            start,
            offset: self.base + start,
            len: raw.len(),
            index: self.index,
            parts: n + 1,
            id,
        })
    }

    /// True when `split` is an ordinary segment: a valid id other than ISA.
    /// Otherwise it is unread, and the checked path reads (and reports) it.
    pub(crate) fn ordinary(&mut self, split: &Split) -> bool {
        let raw = &self.input[split.start..split.start + split.len];
        let id_len = if split.id >> 16 == 0 { 2 } else { 3 };
        if packed_segment_id(raw, id_len).is_some_and(|id| id != ISA) {
            return true;
        }
        self.pos = split.start;
        self.index -= 1;
        false
    }

    /// The segment `split` read.
    pub(crate) fn segment(&self, split: &Split) -> Segment<'a> {
        Segment::new(
            &self.input[split.start..split.start + split.len],
            split.offset,
            split.index,
            self.delimiters,
        )
    }

    /// The input the run reads.
    pub(crate) fn input(&self) -> &'a [u8] {
        self.input
    }

    /// The delimiters of the run.
    pub(crate) fn delimiters(&self) -> Delimiters {
        self.delimiters
    }
}

impl<'a> Iterator for Tokenizer<'a> {
    type Item = Segment<'a>;

    fn next(&mut self) -> Option<Segment<'a>> {
        match self.scanner.scan(self.input, self.pos, self.base, self.eof) {
            Scan::Segment { start, end, next } => {
                self.pos = next;
                let d = self.scanner.delimiters?;
                Some(Segment::new(
                    &self.input[start..end],
                    self.base + start,
                    self.scanner.index,
                    d,
                ))
            }
            Scan::NeedMore { keep_from } => {
                self.keep_from = Some(keep_from);
                self.pos = self.input.len();
                None
            }
            Scan::Done => {
                self.pos = self.input.len();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(input: &[u8]) -> (Vec<String>, Vec<Error>) {
        let mut t = Tokenizer::new(input);
        let ids = t
            .by_ref()
            .map(|s| String::from_utf8_lossy(s.raw()).into_owned())
            .collect();
        (ids, t.take_problems())
    }

    const ISA: &str = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*P*:~";

    #[test]
    fn tolerates_crlf_blank_lines_and_indentation() {
        let input = format!("{ISA}\r\n\r\n   GS*HP*A~\r\n\tST*835*0001~\n\nSE*2*0001~\n");
        let (ids, problems) = ids(input.as_bytes());
        assert_eq!(ids.len(), 4);
        assert_eq!(ids[1], "GS*HP*A");
        assert_eq!(ids[3], "SE*2*0001");
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn newline_terminator_with_crlf() {
        let isa = ISA.replace(":~", ":\r\n");
        let input = format!("{isa}GS*HP*A  \r\nST*835*0001\r\n");
        let (ids, problems) = ids(input.as_bytes());
        assert_eq!(ids, [isa.trim_end(), "GS*HP*A", "ST*835*0001"]);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn redetects_delimiters_at_each_isa() {
        let isa2 = ISA.replace('*', "|").replace(":~", ">\n");
        let input = format!("{ISA}IEA*0*000000001~\n{isa2}GS|HP|X>Y\nIEA|0|000000001\n");
        let mut t = Tokenizer::new(input.as_bytes());
        let segs: Vec<_> = t.by_ref().collect();
        assert_eq!(segs.len(), 5);
        assert_eq!(segs[3].text(2), "X>Y");
        assert_eq!(segs[3].element(2).unwrap().component(2), Some(&b"Y"[..]));
        assert_eq!(segs[4].index(), 5);
    }

    #[test]
    fn unterminated_last_segment_is_reported() {
        let input = format!("{ISA}GS*HP*A~ST*835");
        let (ids, problems) = ids(input.as_bytes());
        assert_eq!(ids.last().map(String::as_str), Some("ST*835"));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].kind, ErrorKind::NotTerminated);
        assert_eq!(problems[0].position.segment_index, 3);
        assert_eq!(problems[0].position.offset, 106 + 8);
    }

    #[test]
    fn bare_st_warns_about_assumed_delimiters() {
        let (ids, problems) = ids(b"ST*835*1234~BPR*I~SE*3*1234~");
        assert_eq!(ids.len(), 3);
        assert_eq!(problems.len(), 1);
        assert!(!problems[0].is_error());
    }

    #[test]
    fn junk_segment_id_is_reported_and_kept() {
        let input = format!("{ISA}\u{1}\u{2}zz*1~GS*HP~");
        let (ids, problems) = ids(input.as_bytes());
        assert_eq!(ids.len(), 3);
        assert!(matches!(problems[0].kind, ErrorKind::InvalidSegmentId(_)));
        assert_eq!(problems[0].position.segment_index, 2);
    }

    #[test]
    fn overlong_segment_is_skipped() {
        let input = format!("{ISA}GS*{}~ST*835*1~", "x".repeat(200));
        let mut t = Tokenizer::with_max_segment_len(input.as_bytes(), 150);
        let segs: Vec<_> = t.by_ref().map(|s| s.id().to_string()).collect();
        assert_eq!(segs, ["ISA", "ST"]);
        let p = t.take_problems();
        assert_eq!(p[0].kind, ErrorKind::SegmentTooLong { limit: 150 });
        assert_eq!(p[0].position.segment_index, 2);
    }

    #[test]
    fn split_pass_matches_the_checked_path() {
        // Segments of every length around the 16-byte steps, elements of
        // every length, CR/LF between segments, a newline terminator, and
        // segments the split pass must leave to the checked path.
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        let isa = "ISA*00*          *00*          *ZZ*A              *ZZ*B              *240101*1200*^*00501*000000001*0*P*:~";
        for len in 0..40 {
            let mut t = String::from(isa);
            t.push_str("\r\nST*835*0001~");
            for k in 0..6 {
                t.push_str("REF*");
                t.push_str(&"A*".repeat((len + k) % 7));
                t.push_str(&"x".repeat(len));
                t.push_str("~\n");
            }
            t.push_str("DTM*472*20240101\r~SE*8*0001~");
            inputs.push(t.into_bytes());
        }
        inputs.push(
            isa.replace('~', "\n")
                .into_bytes()
                .into_iter()
                .chain(*b"ST*835*1\nN1*PR*X\nSE*3*1\n")
                .collect(),
        );
        inputs.push(format!("{isa}ST*835*1~{}~SE*3*1~", "CAS*CO*45*1".repeat(4)).into_bytes());
        inputs.push(format!("{isa}ST*835*1~1BAD*1~SE*3*1~REF*X").into_bytes());
        for input in &inputs {
            let checked: Vec<_> = Tokenizer::new(input).collect();
            let mut split = Tokenizer::new(input);
            let mut got = Vec::new();
            let mut ends = [0usize; 32];
            loop {
                if let Some((seg, Split { parts: n, id, .. })) =
                    split.split_run().and_then(|mut run| {
                        let read = run
                            .next(&mut ends)
                            .filter(|s| run.ordinary(s))
                            .map(|s| (run.segment(&s), s));
                        split.end_split_run(run);
                        read
                    })
                {
                    assert_eq!(id.to_le_bytes()[..seg.id().len()], *seg.id().as_bytes());
                    let mut parts = [&b""[..]; 32];
                    let count = seg.split_into(&mut parts);
                    assert_eq!(n, count.min(32), "{seg:?}");
                    let mut start = 0;
                    for (i, &end) in ends[..n].iter().enumerate() {
                        assert_eq!(&seg.raw()[start..end], parts[i], "{seg:?} element {i}");
                        start = end + 1;
                    }
                    got.push(seg);
                } else if let Some(seg) = split.next() {
                    got.push(seg);
                } else {
                    break;
                }
            }
            assert_eq!(got, checked);
            let mut all = Tokenizer::new(input);
            all.by_ref().for_each(drop);
            assert_eq!(split.problems(), all.problems());
        }
    }

    #[test]
    fn split_pass_takes_only_ascii_segments() {
        // The fast path makes text of a segment's bytes without a UTF-8
        // check; a non-ASCII delimiter (here 0xC3, a UTF-8 lead byte) must
        // leave every segment to the checked path.
        let isa = "ISA*00*          *00*          *ZZ*A              *ZZ*B              *240101*1200*^*00501*000000001*0*P*:~";
        let ascii = format!("{isa}ST*835*1~REF*6R*1~SE*3*1~").into_bytes();
        let mut input = ascii.clone();
        for b in &mut input {
            if *b == b'*' {
                *b = 0xC3;
            }
        }
        let mut t = Tokenizer::new(&input);
        assert_eq!(t.next().map(|s| s.id().to_string()), Some("ISA".into()));
        assert_eq!(t.delimiters().map(|d| d.element), Some(0xC3));
        assert!(
            t.split_run()
                .and_then(|mut run| run.next(&mut [0; 32]))
                .is_none()
        );
        // The same input with ASCII delimiters does take the split pass,
        // but not a segment with a byte that is not ASCII (here in UTF-8 and
        // in Latin-1), whose text the checked path makes.
        let mut t = Tokenizer::new(&ascii);
        t.next();
        let mut ends = [0usize; 32];
        let mut run = t.split_run().expect("a run");
        assert!(
            run.next(&mut ends)
                .is_some_and(|s| s.id == packed_id(b"ST\0"))
        );
        // True when the split pass takes the segment after the ISA.
        let mut splits_second = |text: &[u8]| {
            let mut t = Tokenizer::new(text);
            t.next();
            t.split_run()
                .and_then(|mut run| run.next(&mut ends))
                .is_some()
        };
        for name in ["REF*6R*\u{e9}~", "REF*6R*x\u{e9}0123456789abcdef~"] {
            let mut text = format!("{isa}{name}").into_bytes();
            assert!(!splits_second(&text));
            let at = text.iter().position(|&b| b == 0xC3).expect("the e-acute");
            text.splice(at..at + 2, [0xE9]);
            assert!(!splits_second(&text));
        }
    }

    #[test]
    fn terminator_search_matches_memchr() {
        let text = b"ISA*00~GS*HP*A~ST*835*0001~ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz-~x~";
        for start in 0..text.len() {
            for end in start..=text.len() {
                let hay = &text[start..end];
                assert_eq!(
                    find_terminator(hay, b'~'),
                    memchr::memchr(b'~', hay),
                    "{start}..{end}"
                );
            }
        }
        let long = [b'a'; 200];
        assert_eq!(find_terminator(&long, b'~'), None);
        let mut late = long;
        late[150] = b'~';
        assert_eq!(find_terminator(&late, b'~'), Some(150));
    }

    #[test]
    fn garbage_without_delimiters_stops() {
        let (ids, problems) = ids(b"hello world");
        assert!(ids.is_empty());
        assert_eq!(problems[0].kind, ErrorKind::NoDelimiters);
    }
}
