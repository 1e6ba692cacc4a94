//! The four X12 delimiters, read from an ISA or guessed from a bare segment.

use crate::error::ErrorKind;

/// The separator characters of one interchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delimiters {
    /// Element separator (ISA character 4; usually `*`).
    pub element: u8,
    /// Component (sub-element) separator (ISA16; usually `:`).
    pub component: u8,
    /// Repetition separator (ISA11 in 5010; usually `^`). `None` when ISA11 is a
    /// code such as `U` (4010 style), so repetitions are not split.
    pub repetition: Option<u8>,
    /// Segment terminator (the character after ISA16; usually `~`, may be `\n`).
    pub segment: u8,
}

impl Default for Delimiters {
    /// Returns the common 5010 set: `*` `:` `^` `~`.
    fn default() -> Self {
        Self {
            element: b'*',
            component: b':',
            repetition: Some(b'^'),
            segment: b'~',
        }
    }
}

/// Delimiters read from an ISA, and how long the ISA was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsaDelimiters {
    /// The delimiters.
    pub delimiters: Delimiters,
    /// Length of the ISA segment body (without its terminator); 105 for a well-formed ISA.
    pub isa_len: usize,
}

/// Longest ISA accepted when reading it by its separators: well past the fixed
/// 106 so unpadded or over-padded ISAs still work, short enough that a junk
/// line is not scanned far.
const MAX_ISA_SCAN: usize = 512;

impl Delimiters {
    /// Reads the delimiters from an ISA segment at the start of `input`.
    ///
    /// The element separator is the 4th character; ISA16 (after the 16th element
    /// separator) is the component separator; the character after it is the
    /// segment terminator (`\r\n` after ISA16 means a newline terminator). ISA11
    /// is the repetition separator when it is one punctuation character. The ISA
    /// is read by its separators, so an ISA that is not padded to 106 characters
    /// is still read (the caller may warn with [`IsaDelimiters::isa_len`]).
    pub fn from_isa(input: &[u8]) -> Result<IsaDelimiters, ErrorKind> {
        if input.len() < 4 || &input[..3] != b"ISA" {
            return Err(ErrorKind::InvalidIsa("does not start with ISA".into()));
        }
        let element = input[3];
        if !is_separator_candidate(element) {
            return Err(ErrorKind::InvalidIsa(format!(
                "element separator {} is a letter, digit or line break",
                printable(element)
            )));
        }
        let scan = &input[..input.len().min(MAX_ISA_SCAN)];
        let mut seps = 0usize;
        let mut isa11 = None;
        let mut isa16_start = None;
        let mut elem_start = 4usize;
        for (i, &b) in scan.iter().enumerate().skip(4) {
            if b == element {
                seps += 1;
                if seps == 11 {
                    isa11 = Some(&scan[elem_start..i]);
                }
                elem_start = i + 1;
                if seps == 15 {
                    isa16_start = Some(i + 1);
                    break;
                }
            }
        }
        let Some(p) = isa16_start else {
            return Err(ErrorKind::InvalidIsa(format!(
                "found {} of the 16 elements within the first {} bytes",
                seps + 1,
                scan.len()
            )));
        };
        let Some(&component) = input.get(p) else {
            return Err(ErrorKind::InvalidIsa("input ends before ISA16".into()));
        };
        let Some(&after) = input.get(p + 1) else {
            return Err(ErrorKind::InvalidIsa(
                "input ends before the segment terminator".into(),
            ));
        };
        let segment = if after == b'\r' { b'\n' } else { after };
        if !is_separator_candidate(component) {
            return Err(ErrorKind::InvalidIsa(format!(
                "component separator (ISA16) {} is a letter, digit or line break",
                printable(component)
            )));
        }
        if segment.is_ascii_alphanumeric() {
            return Err(ErrorKind::InvalidIsa(format!(
                "segment terminator {} after ISA16 is a letter or digit (ISA16 longer than one character?)",
                printable(segment)
            )));
        }
        if component == element || segment == element || segment == component {
            return Err(ErrorKind::InvalidIsa(format!(
                "delimiters are not distinct: element {}, component {}, segment {}",
                printable(element),
                printable(component),
                printable(segment)
            )));
        }
        let repetition = match isa11 {
            Some([r])
                if is_separator_candidate(*r)
                    && *r != element
                    && *r != component
                    && *r != segment =>
            {
                Some(*r)
            }
            _ => None,
        };
        Ok(IsaDelimiters {
            delimiters: Delimiters {
                element,
                component,
                repetition,
                segment,
            },
            isa_len: p + 1,
        })
    }

    /// Guesses delimiters from a bare segment (no ISA) at the start of `input`,
    /// such as `ST*835*1234~`: the element separator follows the 2-3 character
    /// segment id; the segment terminator is the first character after that which
    /// is not a letter, digit, space or element separator. The component
    /// separator is the character after `HC` in the first `<sep>HC?` found in the
    /// first 64 KiB (procedure composites), else `:`. The repetition separator is
    /// `^` unless already used. Returns the delimiters and whether the component
    /// separator was seen in the data.
    pub fn guess_from_segment(input: &[u8]) -> Option<(Delimiters, bool)> {
        let id_len = input
            .iter()
            .take(4)
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if !(2..=3).contains(&id_len) {
            return None;
        }
        let element = *input.get(id_len)?;
        if !is_separator_candidate(element) {
            return None;
        }
        let rest = input.get(id_len + 1..)?;
        let segment = *rest
            .iter()
            .take(MAX_ISA_SCAN)
            .find(|&&b| !(b.is_ascii_alphanumeric() || b == b' ' || b == element))?;
        let segment = if segment == b'\r' { b'\n' } else { segment };
        let window = &input[..input.len().min(64 * 1024)];
        let mut component = None;
        let needle = [element, b'H', b'C'];
        for pos in memchr::memmem::find_iter(window, &needle) {
            if let Some(&c) = window.get(pos + 3)
                && is_separator_candidate(c)
                && c != element
                && c != segment
            {
                component = Some(c);
                break;
            }
        }
        let seen = component.is_some();
        let component = component.unwrap_or(if segment == b':' { b'>' } else { b':' });
        let repetition = [b'^', b'|', b'{']
            .into_iter()
            .find(|r| *r != element && *r != component && *r != segment);
        Some((
            Delimiters {
                element,
                component,
                repetition,
                segment,
            },
            seen,
        ))
    }

    /// Returns true when `b` is one of the four delimiters.
    pub fn is_delimiter(&self, b: u8) -> bool {
        b == self.element || b == self.component || b == self.segment || Some(b) == self.repetition
    }
}

/// Separators must be printable punctuation (or other non-alphanumeric bytes) and
/// never a line break: line breaks are tolerated between segments, so they
/// cannot also split elements.
fn is_separator_candidate(b: u8) -> bool {
    !b.is_ascii_alphanumeric() && b != b'\r' && b != b'\n' && b != b' '
}

/// Renders a delimiter for messages (`'~'`, `newline`, `0x1c`).
pub fn printable(b: u8) -> String {
    match b {
        b'\n' => "newline".into(),
        b'\r' => "carriage return".into(),
        b'\t' => "tab".into(),
        0x21..=0x7e => format!("'{}'", b as char),
        _ => format!("0x{b:02x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISA: &[u8] = b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*P*:~GS";

    #[test]
    fn reads_standard_isa() {
        let d = Delimiters::from_isa(ISA).unwrap();
        assert_eq!(d.delimiters, Delimiters::default());
        assert_eq!(d.isa_len, 105);
    }

    #[test]
    fn reads_unusual_delimiters_and_newline_terminator() {
        let isa = b"ISA~00~          ~01~SECRET    ~ZZ~SUBMITTERS.ID  ~ZZ~RECEIVERS.ID   ~030101~1253~U~00501~000000905~1~T~^_\nGS";
        let d = Delimiters::from_isa(isa).unwrap().delimiters;
        assert_eq!(
            (d.element, d.component, d.repetition, d.segment),
            (b'~', b'^', None, b'_')
        );
        let isa = b"ISA|00|          |00|          |ZZ|A              |ZZ|B              |240101|1200|{|00501|000000001|0|P|>\r\nGS";
        let d = Delimiters::from_isa(isa).unwrap().delimiters;
        assert_eq!(
            (d.element, d.component, d.repetition, d.segment),
            (b'|', b'>', Some(b'{'), b'\n')
        );
    }

    #[test]
    fn rejects_truncated_isa() {
        assert!(matches!(
            Delimiters::from_isa(b"ISA*00*  *00"),
            Err(ErrorKind::InvalidIsa(_))
        ));
        assert!(matches!(
            Delimiters::from_isa(b"ISAX00"),
            Err(ErrorKind::InvalidIsa(_))
        ));
    }

    #[test]
    fn guesses_from_bare_st() {
        let (d, seen) =
            Delimiters::guess_from_segment(b"ST*835*1234~BPR*I~SVC*HC:59430*1~").unwrap();
        assert_eq!(d, Delimiters::default());
        assert!(seen);
        let (d, seen) =
            Delimiters::guess_from_segment(b"ST|835|0001|005010X221A1\nBPR|I\n").unwrap();
        assert_eq!((d.element, d.segment, d.component), (b'|', b'\n', b':'));
        assert!(!seen);
    }
}
