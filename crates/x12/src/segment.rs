//! Zero-copy segments, elements, components and repetitions.
//!
//! A [`Segment`] borrows its bytes from the input. Elements are numbered from 1
//! as in X12 (`CLP01` is `element(1)`); `element(0)` is the segment id.

use std::borrow::Cow;

use crate::delimiters::Delimiters;
use crate::error::Position;

/// One segment: its bytes (without terminator and surrounding line breaks),
/// where it is, and the delimiters that split it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    raw: &'a [u8],
    offset: usize,
    index: usize,
    delimiters: Delimiters,
}

impl<'a> Segment<'a> {
    /// Creates a segment from its raw bytes (id and elements, no terminator).
    /// `offset` is the byte offset in the input, `index` the 1-based ordinal.
    pub fn new(raw: &'a [u8], offset: usize, index: usize, delimiters: Delimiters) -> Self {
        Self {
            raw,
            offset,
            index,
            delimiters,
        }
    }

    /// Returns the raw bytes: segment id and elements, without the terminator.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Returns the byte offset of the segment's first byte in the input.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Returns the 1-based ordinal of the segment in the input.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Returns the delimiters in force for this segment.
    pub fn delimiters(&self) -> Delimiters {
        self.delimiters
    }

    /// Returns the segment id bytes (everything before the first element separator).
    pub fn id_bytes(&self) -> &'a [u8] {
        // Ids are 2-3 bytes: a short scan is cheaper than memchr's setup.
        let sep = self.delimiters.element;
        match self.raw.iter().position(|&b| b == sep) {
            Some(p) => &self.raw[..p],
            None => self.raw,
        }
    }

    /// Returns the segment id (`CLP`), or `""` if it is not valid UTF-8.
    pub fn id(&self) -> &'a str {
        std::str::from_utf8(self.id_bytes()).unwrap_or("")
    }

    /// Returns true when the segment id is `id`.
    pub fn is(&self, id: &str) -> bool {
        self.id_bytes() == id.as_bytes()
    }

    /// Returns element `n` (1-based; 0 is the segment id), or `None` when the
    /// segment has fewer elements. An element that is present but empty is
    /// `Some` with empty bytes.
    pub fn element(&self, n: usize) -> Option<Element<'a>> {
        self.elements_with_id().nth(n)
    }

    /// Returns element `n` (1-based) as text, `""` when absent or empty.
    /// Invalid UTF-8 is replaced (lossy), which borrows when the text is valid.
    pub fn text(&self, n: usize) -> Cow<'a, str> {
        match self.element(n) {
            Some(e) => e.text(),
            None => Cow::Borrowed(""),
        }
    }

    /// Returns element `n` (1-based) as bytes, empty when absent.
    pub fn bytes(&self, n: usize) -> &'a [u8] {
        self.element(n).map(|e| e.as_bytes()).unwrap_or(b"")
    }

    /// Iterates over the elements after the id (element 1, 2, ...).
    pub fn elements(&self) -> impl Iterator<Item = Element<'a>> + 'a {
        self.elements_with_id().skip(1)
    }

    /// Returns the number of elements after the id, trailing empty ones included.
    pub fn element_count(&self) -> usize {
        memchr::memchr_iter(self.delimiters.element, self.raw).count()
    }

    /// Splits the segment into the id and up to `out.len() - 1` elements, writing
    /// them into `out` (`out[0]` is the id, `out[n]` element n) and returning how
    /// many slots were filled. Elements past the end of `out` are not split; the
    /// last slot then holds the rest of the segment. This is the fast path for
    /// typed readers: one pass, no allocation.
    pub fn split_into<'o>(&self, out: &'o mut [&'a [u8]]) -> usize {
        let Some(last) = out.len().checked_sub(1) else {
            return 0;
        };
        let sep = self.delimiters.element;
        let mut n = 0;
        let mut start = 0;
        for p in memchr::memchr_iter(sep, self.raw) {
            if n == last {
                break;
            }
            out[n] = &self.raw[start..p];
            n += 1;
            start = p + 1;
        }
        out[n] = &self.raw[start..];
        n + 1
    }

    /// Returns the position of this segment, for problems.
    pub fn position(&self) -> Position {
        Position {
            segment_index: self.index,
            segment_id: String::from_utf8_lossy(self.id_bytes()).into_owned(),
            element: None,
            component: None,
            offset: self.offset,
        }
    }

    /// Returns the position of element `n` (1-based) of this segment, for problems.
    pub fn position_at(&self, n: usize) -> Position {
        self.position()
            .with_element(u16::try_from(n).unwrap_or(u16::MAX))
    }

    fn elements_with_id(&self) -> impl Iterator<Item = Element<'a>> + 'a {
        let d = self.delimiters;
        self.raw
            .split(move |&b| b == d.element)
            .map(move |raw| Element { raw, delimiters: d })
    }
}

/// One element of a segment, which may hold components and repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    raw: &'a [u8],
    delimiters: Delimiters,
}

impl<'a> Element<'a> {
    /// Creates an element over `raw` bytes split with `delimiters`.
    pub fn new(raw: &'a [u8], delimiters: Delimiters) -> Self {
        Self { raw, delimiters }
    }

    /// Returns the element's bytes (components and repetitions unsplit).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// Returns the element as text; borrows when valid UTF-8, replaces invalid bytes otherwise.
    pub fn text(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.raw)
    }

    /// Returns true when the element is empty.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Returns component `n` (1-based), or `None` when there are fewer components.
    /// An element without component separators is its own component 1.
    pub fn component(&self, n: usize) -> Option<&'a [u8]> {
        self.components().nth(n.checked_sub(1)?)
    }

    /// Iterates over the components (split by the component separator).
    pub fn components(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let c = self.delimiters.component;
        self.raw.split(move |&b| b == c)
    }

    /// Iterates over the repetitions (split by the repetition separator; one
    /// repetition when the interchange has none).
    pub fn repetitions(&self) -> impl Iterator<Item = Element<'a>> + 'a {
        let d = self.delimiters;
        let raw = self.raw;
        let mut parts = match d.repetition {
            Some(r) => raw.split(move |&b| b == r).collect::<Vec<_>>(),
            None => vec![raw],
        };
        if parts.is_empty() {
            parts.push(raw);
        }
        parts
            .into_iter()
            .map(move |raw| Element { raw, delimiters: d })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(raw: &[u8]) -> Segment<'_> {
        Segment::new(raw, 10, 3, Delimiters::default())
    }

    #[test]
    fn elements_are_one_based() {
        let s = seg(b"SVC*HC:99213:25*100.00*80.00**1");
        assert_eq!(s.id(), "SVC");
        assert!(s.is("SVC"));
        assert_eq!(s.bytes(2), b"100.00");
        assert_eq!(s.text(3), "80.00");
        assert_eq!(s.element(4).map(|e| e.is_empty()), Some(true));
        assert!(s.element(6).is_none());
        assert_eq!(s.element_count(), 5);
        let e = s.element(1).unwrap();
        assert_eq!(e.component(1), Some(&b"HC"[..]));
        assert_eq!(e.component(3), Some(&b"25"[..]));
        assert_eq!(e.component(4), None);
        assert_eq!(e.component(0), None);
    }

    #[test]
    fn split_into_caps_at_buffer() {
        let s = seg(b"CAS*CO*45*10*1*PR*2*5");
        let mut buf = [&b""[..]; 4];
        assert_eq!(s.split_into(&mut buf), 4);
        assert_eq!(buf[3], b"10*1*PR*2*5");
        let mut buf = [&b""[..]; 32];
        assert_eq!(s.split_into(&mut buf), 8);
        assert_eq!(buf[7], b"5");
    }

    #[test]
    fn repetitions_split() {
        let s = seg(b"EB*1*IND*30^1^33");
        let reps: Vec<_> = s
            .element(3)
            .unwrap()
            .repetitions()
            .map(|e| e.text().into_owned())
            .collect();
        assert_eq!(reps, ["30", "1", "33"]);
    }

    #[test]
    fn position_names_segment() {
        let p = seg(b"CLP*1").position_at(3);
        assert_eq!(p.to_string(), "segment 3 (CLP03) at byte 10");
    }
}
