//! Procedure codes and modifiers: HCPCS Level II (shipped, public domain), CPT (format only,
//! unless a customer-licensed file is loaded) and the procedure modifiers medbill knows.

use std::collections::HashSet;
use std::path::Path;
use std::sync::LazyLock;

use crate::csv;
use crate::key::pack;

/// The HCPCS Level II file (codes and Level II modifiers), January 2026 quarter.
const HCPCS_LEVEL2_CSV: &str = include_str!("../data/hcpcs_level2_2026jan.csv");

/// The quarter the shipped HCPCS Level II file belongs to.
pub const HCPCS_LEVEL2_EDITION: &str = "January 2026";

struct Level2 {
    codes: HashSet<u64>,
    modifiers: HashSet<u64>,
    problems: Vec<String>,
}

static LEVEL2: LazyLock<Level2> = LazyLock::new(|| {
    let parsed = csv::parse(HCPCS_LEVEL2_CSV);
    let mut out = Level2 {
        codes: HashSet::with_capacity(9_000),
        modifiers: HashSet::with_capacity(400),
        problems: parsed.problems,
    };
    for record in parsed.records.iter().skip(1) {
        let (Some(code), Some(kind)) = (record.fields.first(), record.fields.get(1)) else {
            out.problems
                .push(format!("line {}: fewer than two fields", record.line));
            continue;
        };
        match (kind.as_str(), pack(code)) {
            ("code", Some(k)) if is_hcpcs_level2_format(code) => {
                out.codes.insert(k);
            }
            ("modifier", Some(k)) if code.len() == 2 => {
                out.modifiers.insert(k);
            }
            _ => out
                .problems
                .push(format!("line {}: {code:?} is not a {kind}", record.line)),
        }
    }
    out
});

/// Returns whether `code` has the HCPCS Level II shape: a letter A-V and four digits.
pub fn is_hcpcs_level2_format(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 5 && (b'A'..=b'V').contains(&b[0]) && b[1..].iter().all(u8::is_ascii_digit)
}

/// Returns whether `code` has the CPT shape `^[0-9]{4}[0-9FTUM]$` (Category I, II (F),
/// III (T), PLA (U) and Category I vaccine/multianalyte codes with M).
pub fn is_cpt_format(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 5
        && b[..4].iter().all(u8::is_ascii_digit)
        && (b[4].is_ascii_digit() || matches!(b[4], b'F' | b'T' | b'U' | b'M'))
}

/// Returns whether the shipped HCPCS Level II file has `code`.
pub fn is_hcpcs_level2_code(code: &str) -> bool {
    pack(code).is_some_and(|k| LEVEL2.codes.contains(&k))
}

/// Returns whether the shipped HCPCS Level II file has `modifier` as a Level II modifier.
pub fn is_hcpcs_level2_modifier(modifier: &str) -> bool {
    pack(modifier).is_some_and(|k| LEVEL2.modifiers.contains(&k))
}

/// Returns the numbers of HCPCS Level II codes and modifiers shipped, and the problems found
/// reading the file (none; the tests assert it).
pub fn hcpcs_level2_stats() -> (usize, usize, &'static [String]) {
    (LEVEL2.codes.len(), LEVEL2.modifiers.len(), &LEVEL2.problems)
}

/// CPT (Level I) modifiers medbill accepts without a licensed CPT file: the two-digit modifiers
/// that CMS names in its NCCI policy manual, MUE and payment rules (only the numbers, which
/// are facts; their AMA descriptors are not shipped). A modifier outside this list and the
/// HCPCS Level II file is reported as unknown.
pub const CPT_MODIFIERS: &[&str] = &[
    "22", "23", "24", "25", "26", "27", "32", "33", "47", "50", "51", "52", "53", "54", "55", "56",
    "57", "58", "59", "62", "63", "66", "73", "74", "76", "77", "78", "79", "80", "81", "82", "90",
    "91", "92", "93", "95", "96", "97", "99",
];

/// Returns whether `modifier` is a listed CPT modifier ([`CPT_MODIFIERS`]).
pub fn is_cpt_modifier(modifier: &str) -> bool {
    CPT_MODIFIERS.contains(&modifier)
}

/// Modifiers that may bypass an NCCI procedure-to-procedure edit whose modifier indicator is 1
/// (CMS NCCI policy manual, chapter I: the NCCI-associated modifiers: anatomic, global surgery,
/// 25, 27, 59, the X{EPSU} subset and 91).
pub const NCCI_BYPASS_MODIFIERS: &[&str] = &[
    "E1", "E2", "E3", "E4", "FA", "F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "LC", "LD",
    "LM", "RC", "RI", "LT", "RT", "TA", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "24",
    "25", "27", "57", "58", "59", "78", "79", "91", "XE", "XS", "XP", "XU",
];

/// Why a CPT file cannot be loaded; names the line.
#[derive(Debug, thiserror::Error)]
pub enum CptLoadError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A row is not `code,description` with a CPT-shaped code.
    #[error("line {line}: {reason}")]
    Layout {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file holds no code.
    #[error("the CPT file holds no code")]
    Empty,
}

/// A tenant's or operator's licensed CPT code list (CSV `code,description`; a header row whose
/// first field is `code` and `#` lines are skipped). Only the codes are kept.
#[derive(Debug, Default)]
pub struct CptCodes {
    codes: HashSet<u64>,
}

impl CptCodes {
    /// Reads the CSV text.
    ///
    /// # Errors
    /// [`CptLoadError::Layout`] for a bad row or quoting, [`CptLoadError::Empty`] without codes.
    pub fn from_csv(text: &str) -> Result<Self, CptLoadError> {
        let parsed = csv::parse(text);
        if let Some(problem) = parsed.problems.first() {
            return Err(CptLoadError::Layout {
                line: 0,
                reason: problem.clone(),
            });
        }
        let mut codes = HashSet::new();
        for record in &parsed.records {
            let code = record.fields.first().map_or("", |c| c.trim());
            if code.eq_ignore_ascii_case("code") && codes.is_empty() {
                continue;
            }
            match pack(code) {
                Some(k) if is_cpt_format(code) => {
                    codes.insert(k);
                }
                _ => {
                    return Err(CptLoadError::Layout {
                        line: record.line,
                        reason: format!(
                            "{code:?} is not a CPT code (4 digits and a digit, F, T, U or M)"
                        ),
                    });
                }
            }
        }
        if codes.is_empty() {
            return Err(CptLoadError::Empty);
        }
        Ok(Self { codes })
    }

    /// Reads the CSV file at `path`.
    ///
    /// # Errors
    /// [`CptLoadError::Io`] naming the path, or the errors of [`CptCodes::from_csv`].
    pub fn from_path(path: &Path) -> Result<Self, CptLoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| CptLoadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_csv(&text)
    }

    /// Returns whether the file has `code`.
    pub fn contains(&self, code: &str) -> bool {
        pack(code).is_some_and(|k| self.codes.contains(&k))
    }

    /// Returns the number of codes.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Returns whether the file holds no code.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_hcpcs_file_loads_whole() {
        let (codes, modifiers, problems) = hcpcs_level2_stats();
        assert!(problems.is_empty(), "{problems:?}");
        // Counts per ../shared/codesets/README.md.
        assert_eq!((codes, modifiers), (8_623, 383));
        assert!(is_hcpcs_level2_code("G0439"));
        assert!(is_hcpcs_level2_code("J3490"));
        assert!(!is_hcpcs_level2_code("G9999X"));
        assert!(!is_hcpcs_level2_code("A9998"));
        for m in ["LT", "RT", "XE", "XS", "XP", "XU", "TC", "GT"] {
            assert!(is_hcpcs_level2_modifier(m), "{m}");
        }
        assert!(
            !is_hcpcs_level2_modifier("25"),
            "CPT modifiers are not in the file"
        );
        let mut lines = HCPCS_LEVEL2_CSV.lines();
        assert!(lines.next().unwrap().starts_with("# SOURCES: "));
        assert!(lines.next().unwrap().starts_with("# LEGAL: "));
    }

    #[test]
    fn formats() {
        for good in ["99213", "0001F", "0042T", "0001U", "0001M"] {
            assert!(is_cpt_format(good), "{good}");
        }
        for bad in ["9921", "992134", "0001X", "G0439", "9921A"] {
            assert!(!is_cpt_format(bad), "{bad}");
        }
        assert!(is_hcpcs_level2_format("G0439"));
        assert!(
            !is_hcpcs_level2_format("W0439"),
            "W is not a HCPCS Level II letter"
        );
        assert!(!is_hcpcs_level2_format("g0439"));
        assert!(is_cpt_modifier("59") && !is_cpt_modifier("LT") && !is_cpt_modifier("21"));
    }

    #[test]
    fn a_cpt_file_loads_and_names_a_bad_line() {
        let codes = CptCodes::from_csv(
            "# licensed copy\ncode,description\n10001,\"Made up, one\"\n1000F,Made up two\n",
        )
        .unwrap();
        assert_eq!(codes.len(), 2);
        assert!(codes.contains("10001") && codes.contains("1000F") && !codes.contains("10002"));
        let err = CptCodes::from_csv("code,description\n10001,ok\nG0439,not cpt\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: \"G0439\" is not a CPT code (4 digits and a digit, F, T, U or M)"
        );
        assert!(matches!(
            CptCodes::from_csv("code,description\n"),
            Err(CptLoadError::Empty)
        ));
    }
}
