//! The 835 reader's fast path for the segments that make up most of a
//! remittance: CLP, NM1, SVC, DTM, REF, AMT, CAS and LQ inside the claim and
//! service loops.
//!
//! It reads a segment already split by [`crate::tokenizer::SplitRun::next`]
//! straight into the model, without the general reader's per-element
//! bookkeeping. It takes a segment only when it is well formed and in its
//! place, so that the general reader would report nothing and build the same
//! values; for anything else it changes nothing and returns false, and the
//! general reader (`SetReader::dispatch`) reads the segment with every check.

use std::borrow::Cow;

use rust_decimal::Decimal;
use wide::u8x16;

use super::Text;
use super::{
    Adjustment, AmountRef, DateRef, INLINE_ELEMENTS, Loop, Name, Procedure, Reference, Remark,
    SetReader, is_date,
};
use crate::decimal::parse_decimal;
use crate::tokenizer::{Split, packed_id};

/// Segment ids the fast path reads, packed as the split pass packs them.
const CLP: u32 = packed_id(b"CLP");
const SVC: u32 = packed_id(b"SVC");
const NM1: u32 = packed_id(b"NM1");
const LQ: u32 = packed_id(b"LQ\0");
const DTM: u32 = packed_id(b"DTM");
const REF: u32 = packed_id(b"REF");
const AMT: u32 = packed_id(b"AMT");
const CAS: u32 = packed_id(b"CAS");

/// A segment's elements as text: `ends[i]` is the end offset of element `i`
/// (the id is element 0) from the segment's start, `start` bytes into `input`.
///
/// Elements are cut from the whole input, at offsets the split pass found,
/// without bounds or UTF-8 checks: see [`Elements::get`].
struct Elements<'s, 'a> {
    input: &'a [u8],
    start: usize,
    /// All the element-end slots; the first `parts` are this segment's.
    ends: &'s [usize; INLINE_ELEMENTS],
    parts: usize,
}

impl<'a> Elements<'_, 'a> {
    /// Element `i`, `""` when the segment has fewer elements.
    #[inline(always)]
    #[allow(unsafe_code)] // a cut without a char-boundary check: see SAFETY below
    fn get(&self, i: usize) -> &'a str {
        // Where `i` is a constant (all but CAS's triplets) the fixed array
        // needs no bounds check, only the test that the segment has element `i`.
        if i >= self.parts || i == 0 {
            return "";
        }
        let (end, prev) = (self.ends[i], self.ends[i - 1]);
        let (from, to) = (self.start + prev + 1, self.start + end);
        debug_assert!(from <= to && to < self.input.len());
        debug_assert!(self.input[from..to].is_ascii());
        // SAFETY: by `read_fast`'s contract, `ends` are where the split pass
        // found delimiters in `input`, in increasing order, inside a segment
        // whose bytes it checked are all ASCII. So `from <= to < input.len()`
        // and the bytes between are ASCII, which is valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(self.input.get_unchecked(from..to)) }
    }

    /// Element `i` when it is present and not empty.
    #[inline]
    fn required(&self, i: usize) -> Option<&'a str> {
        Some(self.get(i)).filter(|t| !t.is_empty())
    }

    /// Element `i` as text, `None` when empty or absent.
    #[inline]
    fn optional(&self, i: usize) -> Option<Text<'a>> {
        self.required(i).map(Cow::Borrowed)
    }

    /// Element `i` as a decimal, when it is present and a valid one.
    #[inline]
    fn decimal(&self, i: usize) -> Option<Decimal> {
        parse_decimal(self.get(i).as_bytes())
    }

    /// Element `i` as an optional decimal: `Some(None)` when empty or absent,
    /// `None` when it is not a valid decimal.
    #[inline]
    fn optional_decimal(&self, i: usize) -> Option<Option<Decimal>> {
        optional_decimal(self.get(i))
    }

    /// Element `i` as a procedure composite split on `component`: `Some(None)`
    /// when empty or absent, `None` when the general reader would report it
    /// (no declared separator in it, or no code).
    #[allow(unsafe_code)] // parts of ASCII text, as in `get`
    fn procedure(&self, i: usize, component: u8) -> Option<Option<ProcedureParts<'a>>> {
        let b = self.get(i);
        if b.is_empty() {
            return Some(None);
        }
        // Parts end at each separator; up to seven are read (qualifier, code,
        // four modifiers, description), as the general reader does.
        let mut parts = [""; 7];
        let mut count = 0;
        let mut start = 0;
        let mut split_at = |at: usize| -> Option<bool> {
            let bytes = b.as_bytes().get(start..at)?;
            // SAFETY: `b` is all ASCII (see `get`), so any part of it is
            // valid UTF-8.
            parts[count] = unsafe { std::str::from_utf8_unchecked(bytes) };
            count += 1;
            start = at + 1;
            // What follows the description is not read.
            Some(count == parts.len())
        };
        // The separators of a composite shorter than 16 bytes, found with one
        // compare of the 16 bytes where it starts (the segment goes on past it,
        // or the byte loop below takes over).
        let from = self.start + self.ends[i - 1] + 1;
        match self.input.get(from..).and_then(<[u8]>::first_chunk::<16>) {
            Some(chunk) if b.len() < 16 => {
                let found = u8x16::from(*chunk)
                    .cmp_eq(u8x16::splat(component))
                    .move_mask();
                let mut seps = (found as u32) & ((1 << b.len()) - 1);
                while seps != 0 {
                    if split_at(seps.trailing_zeros() as usize)? {
                        break;
                    }
                    seps &= seps - 1;
                }
            }
            _ => {
                for (at, byte) in b.bytes().enumerate() {
                    if byte == component && split_at(at)? {
                        break;
                    }
                }
            }
        }
        if count == 0 {
            // No declared separator (the general reader checks for another).
            // A non-ASCII separator lands here too: `b` is all ASCII.
            return None;
        }
        if count < parts.len() {
            parts[count] = b.get(start..)?;
        }
        if parts[1].is_empty() {
            return None;
        }
        Some(Some(ProcedureParts(parts)))
    }
}

/// A procedure composite's parts: qualifier, code, four modifiers and the
/// description (`""` where absent).
struct ProcedureParts<'a>([&'a str; 7]);

impl<'a> ProcedureParts<'a> {
    /// Fills `out` (an empty procedure) in place.
    #[inline]
    fn fill(&self, out: &mut Procedure<'a>) {
        let [qualifier, code, m1, m2, m3, m4, description] = self.0;
        out.qualifier = Cow::Borrowed(qualifier);
        out.code = Cow::Borrowed(code);
        for m in [m1, m2, m3, m4] {
            if !m.is_empty() {
                out.modifiers.push(Cow::Borrowed(m));
            }
        }
        if !description.is_empty() {
            out.description = Some(Cow::Borrowed(description));
        }
    }

    fn build(&self) -> Procedure<'a> {
        let mut p = Procedure::default();
        self.fill(&mut p);
        p
    }
}

/// `Some(None)` for empty text, `Some(Some(d))` for a valid decimal, `None`
/// otherwise. Inlined: most optional amounts are absent, and the call cost
/// more than the test.
#[inline(always)]
fn optional_decimal(text: &str) -> Option<Option<Decimal>> {
    if text.is_empty() {
        Some(None)
    } else {
        parse_decimal(text.as_bytes()).map(Some)
    }
}

impl<'a> SetReader<'a> {
    /// Reads a common claim- or service-loop segment; see the module text.
    /// `seg` says where the segment is and holds its packed id (a jump on
    /// it, not a string compare per arm); `component` is the component
    /// separator, `input` the whole input, `ends` the element ends (the first
    /// `seg.parts` of them).
    ///
    /// # Safety
    ///
    /// `seg` and `ends` must be what [`crate::tokenizer::SplitRun::next`]
    /// returned and wrote for a run over `input`: element text is made of the
    /// bytes between those offsets without a bounds or UTF-8 check.
    #[inline(always)] // into the one-pass loops; out of line it costs ~9% more instructions
    #[allow(unsafe_code)]
    pub(super) unsafe fn read_fast(
        &mut self,
        seg: &Split,
        component: u8,
        input: &'a [u8],
        ends: &[usize; INLINE_ELEMENTS],
    ) -> bool {
        let id = seg.id;
        let e = Elements {
            input,
            start: seg.start,
            ends,
            parts: seg.parts,
        };
        let in_service = match self.state {
            Loop::Claim if self.in_claim => false,
            Loop::Service if self.in_claim => true,
            _ => return false,
        };
        match id {
            CLP => {
                let (Some(pcn), Some(status), Some(charge), Some(paid)) =
                    (e.required(1), e.required(2), e.decimal(3), e.decimal(4))
                else {
                    return false;
                };
                let (Some(responsibility), Some(drg_weight), Some(discharge_fraction)) = (
                    e.optional_decimal(5),
                    e.optional_decimal(12),
                    e.optional_decimal(13),
                ) else {
                    return false;
                };
                self.open_claim(|c| {
                    c.patient_control_number = Cow::Borrowed(pcn);
                    c.status_code = Cow::Borrowed(status);
                    c.charge = charge;
                    c.paid = paid;
                    c.patient_responsibility = responsibility;
                    c.filing_indicator = e.optional(6);
                    c.payer_claim_control_number = e.optional(7);
                    c.facility_type = e.optional(8);
                    c.frequency = e.optional(9);
                    c.drg_code = e.optional(11);
                    c.drg_weight = drg_weight;
                    c.discharge_fraction = discharge_fraction;
                    c.segment_index = seg.index;
                    c.segment_offset = seg.offset;
                });
                return true;
            }
            SVC => {
                let (Some(Some(procedure)), Some(charge), Some(paid)) =
                    (e.procedure(1, component), e.decimal(2), e.decimal(3))
                else {
                    return false;
                };
                let (Some(units), Some(submitted), Some(submitted_units)) = (
                    e.optional_decimal(5),
                    e.procedure(6, component),
                    e.optional_decimal(7),
                ) else {
                    return false;
                };
                return self.open_service(|s| {
                    procedure.fill(&mut s.procedure);
                    s.charge = charge;
                    s.paid = paid;
                    s.revenue_code = e.optional(4);
                    s.units = units;
                    s.submitted_procedure = submitted.map(|p| Box::new(p.build()));
                    s.submitted_units = submitted_units;
                    s.segment_index = seg.index;
                    s.segment_offset = seg.offset;
                });
            }
            _ => {}
        }
        let lines = self.lines;
        let c = &mut self.slots[self.cur & 1];
        // In a service loop the segment belongs to the line being read, else
        // to the claim.
        let mut line = match (in_service, c.services.get_mut(lines.wrapping_sub(1))) {
            (false, _) => None,
            (true, Some(s)) => Some(s),
            (true, None) => return false,
        };
        macro_rules! push_to_line_or_claim {
            ($list:ident, $value:expr) => {
                match &mut line {
                    Some(s) => s.$list.push($value),
                    None => c.$list.push($value),
                }
            };
        }
        match id {
            NM1 if !in_service => {
                let (Some(entity), Some(entity_type)) = (e.required(1), e.required(2)) else {
                    return false;
                };
                c.names.push(Name {
                    entity: Cow::Borrowed(entity),
                    entity_type: Cow::Borrowed(entity_type),
                    last: e.optional(3),
                    first: e.optional(4),
                    middle: e.optional(5),
                    suffix: e.optional(7),
                    id_qualifier: e.optional(8),
                    id: e.optional(9),
                });
            }
            LQ if in_service => {
                let (Some(qualifier), Some(code), Some(s)) = (e.required(1), e.required(2), line)
                else {
                    return false;
                };
                s.remarks.push(Remark {
                    qualifier: Cow::Borrowed(qualifier),
                    code: Cow::Borrowed(code),
                });
            }
            DTM => {
                let (Some(qualifier), Some(date)) = (e.required(1), e.required(2)) else {
                    return false;
                };
                if !is_date(date.as_bytes()) {
                    return false;
                }
                let d = DateRef {
                    qualifier: Cow::Borrowed(qualifier),
                    date: Cow::Borrowed(date),
                };
                push_to_line_or_claim!(dates, d);
            }
            REF => {
                let (Some(qualifier), Some(value)) = (e.required(1), e.required(2)) else {
                    return false;
                };
                let r = Reference {
                    qualifier: Cow::Borrowed(qualifier),
                    value: Cow::Borrowed(value),
                };
                push_to_line_or_claim!(references, r);
            }
            AMT => {
                let (Some(qualifier), Some(amount)) = (e.required(1), e.decimal(2)) else {
                    return false;
                };
                let a = AmountRef {
                    qualifier: Cow::Borrowed(qualifier),
                    amount,
                };
                push_to_line_or_claim!(amounts, a);
            }
            CAS => {
                let Some(group) = e.required(1) else {
                    return false;
                };
                let list = match &mut line {
                    Some(s) => &mut s.adjustments,
                    None => &mut c.adjustments,
                };
                // Triplets are pushed as they are read; a bad one takes the
                // segment's back out, so the general reader starts clean.
                let before = list.len();
                let mut i = 2;
                while i < seg.parts {
                    let (reason, amount, quantity) = (e.get(i), e.get(i + 1), e.get(i + 2));
                    i += 3;
                    if reason.is_empty() && amount.is_empty() && quantity.is_empty() {
                        continue;
                    }
                    let (false, Some(amount), Some(quantity)) = (
                        reason.is_empty(),
                        parse_decimal(amount.as_bytes()),
                        optional_decimal(quantity),
                    ) else {
                        list.truncate(before);
                        return false;
                    };
                    list.push(Adjustment {
                        group: Cow::Borrowed(group),
                        reason: Cow::Borrowed(reason),
                        amount,
                        quantity,
                    });
                }
                if list.len() == before {
                    return false;
                }
            }
            _ => return false,
        }
        true
    }
}
