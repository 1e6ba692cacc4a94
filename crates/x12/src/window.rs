//! Reading a [`Read`] in windows with the in-memory readers' code.
//!
//! The one-pass readers borrow their input. To read a stream they run over a
//! window of it at a time ([`crate::tokenizer::Tokenizer::window`]); at a
//! window's end the reader's state copies what still borrows the window
//! ([`WindowReader::carry`]), the bytes of a segment cut by the window's end
//! are kept, and reading goes on in the next window. The results are those
//! of reading the whole input at once, offsets included.

use std::io::Read;

use crate::error::{Error, ErrorKind, Position};
use crate::tokenizer::{MAX_SEGMENT_LEN, Scanner, Tokenizer};

/// Bytes a windowed reader holds before it reads them (plus, at most, the
/// rest of one segment).
pub(crate) const WINDOW: usize = 1 << 20;

/// A reader that can be run window by window.
pub(crate) trait WindowReader {
    /// What the reader keeps from one segment to the next, typed for the
    /// window it borrows from.
    type State<'w>;
    /// Reads every segment `tokenizer` has.
    fn run<'w>(&mut self, state: &mut Self::State<'w>, tokenizer: &mut Tokenizer<'w>);
    /// The state with nothing borrowed from its window (what still borrows it
    /// is copied), typed for another.
    fn carry<'w, 'n>(state: Self::State<'w>) -> Self::State<'n>;
    /// Ends the input and returns every problem; `splitting` are the
    /// tokenizer's, which come first.
    fn finish<'w>(&mut self, state: Self::State<'w>, splitting: Vec<Error>) -> Vec<Error>;
}

/// Runs `with` over `reader` in windows of about `window` bytes, from `state`.
pub(crate) fn read_windows<W: WindowReader>(
    mut reader: impl Read,
    window: usize,
    with: &mut W,
    state: W::State<'static>,
) -> Vec<Error> {
    let window = window.max(1);
    let mut buf: Vec<u8> = Vec::with_capacity(window);
    let mut base = 0;
    let mut eof = false;
    let mut scanner = Scanner::new(MAX_SEGMENT_LEN);
    let mut carried = state;
    // True when the last window ended without reading anything: the segment
    // (or the delimiter check, which looks 64 KiB ahead) needs more than the
    // window holds. The buffer then doubles, so a long segment is read again
    // a few times, not once per window's worth of bytes.
    let mut stalled = false;
    loop {
        let target = if stalled {
            (buf.len() * 2).max(window)
        } else {
            window
        };
        while !eof && buf.len() < target {
            let want = target - buf.len();
            eof = read_some(&mut reader, &mut buf, want, base, &mut scanner);
        }
        let mut tokenizer = Tokenizer::window(&buf, base, eof, scanner);
        let mut state = W::carry(carried);
        with.run(&mut state, &mut tokenizer);
        let keep_from;
        (scanner, keep_from) = tokenizer.end_window();
        let Some(keep_from) = keep_from else {
            return with.finish(state, scanner.problems.take());
        };
        carried = W::carry(state);
        stalled = keep_from == 0;
        buf.drain(..keep_from);
        base += keep_from;
    }
}

/// Appends up to `chunk` bytes from `reader` to `buf` (whose first byte is
/// `base` bytes into the input); true at the end of the input. A read error
/// is a problem at the offset where it happened, and ends the input. Also
/// the refill of [`crate::stream::SegmentReader`].
pub(crate) fn read_some(
    reader: &mut impl Read,
    buf: &mut Vec<u8>,
    chunk: usize,
    base: usize,
    scanner: &mut Scanner,
) -> bool {
    let len = buf.len();
    buf.resize(len + chunk, 0);
    loop {
        match reader.read(&mut buf[len..]) {
            Ok(n) => {
                buf.truncate(len + n);
                return n == 0;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                buf.truncate(len);
                scanner.problems.push(Error::at(
                    Position {
                        offset: base + len,
                        ..Position::default()
                    },
                    ErrorKind::Io(e.to_string()),
                ));
                return true;
            }
        }
    }
}
