//! ICD-10-CM code sets chosen by date of service.
//!
//! Each [`Icd10Edition`] is one fiscal-year release (or mid-year update) with the range of dates
//! of service it is in force for. Two are shipped (FY2025, and the FY2026 April 1 update);
//! later ones are loaded at run time from the official CMS order file
//! ([`Icd10Edition::from_order_file`]), so an operator adds FY2027 by configuration. A lookup
//! ([`Icd10CodeSets::lookup`]) answers for the edition covering the date: billable, a header
//! (not billable), valid only in other editions (named), unknown, or that no edition covers the
//! date, which is never reported as "invalid".

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::LazyLock;

use chrono::NaiveDate;

use crate::key::pack;

/// Codes of one edition: packed code -> billable.
type Codes = HashMap<u64, bool>;

/// An embedded edition: the gzip CSV (`code,code_dotted,billable,...` after `#` lines).
struct Embedded {
    label: &'static str,
    valid_from: (i32, u32, u32),
    valid_to: (i32, u32, u32),
    codes: &'static LazyLock<(Codes, Vec<String>)>,
}

static FY2025: LazyLock<(Codes, Vec<String>)> =
    LazyLock::new(|| read_embedded(include_bytes!("../data/icd10cm_fy2025.csv.gz")));
static FY2026_APR: LazyLock<(Codes, Vec<String>)> =
    LazyLock::new(|| read_embedded(include_bytes!("../data/icd10cm_fy2026_apr.csv.gz")));

const EMBEDDED: [Embedded; 2] = [
    Embedded {
        label: "FY2025",
        valid_from: (2024, 10, 1),
        valid_to: (2025, 9, 30),
        codes: &FY2025,
    },
    Embedded {
        label: "FY2026 (April 2026 update)",
        valid_from: (2026, 4, 1),
        valid_to: (2026, 9, 30),
        codes: &FY2026_APR,
    },
];

/// Reads an embedded edition; problems are kept (the crate's tests assert there are none) rather
/// than panicking at first use in a server.
fn read_embedded(gz: &[u8]) -> (Codes, Vec<String>) {
    let mut text = String::new();
    let mut problems = Vec::new();
    if let Err(e) = flate2::read::GzDecoder::new(gz).read_to_string(&mut text) {
        problems.push(format!("cannot decompress: {e}"));
        return (Codes::new(), problems);
    }
    let mut codes = Codes::with_capacity(100_000);
    let mut header_seen = false;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !header_seen {
            header_seen = true;
            if !line.starts_with("code,code_dotted,billable,") {
                problems.push(format!("line {}: unexpected header {line:?}", i + 1));
            }
            continue;
        }
        // The first three columns never hold quotes or commas; titles after them may.
        let mut fields = line.splitn(4, ',');
        let (Some(code), Some(_dotted), Some(flag)) = (fields.next(), fields.next(), fields.next())
        else {
            problems.push(format!("line {}: fewer than three fields", i + 1));
            continue;
        };
        match (pack(code), flag) {
            (Some(k), "0" | "1") => {
                codes.insert(k, flag == "1");
            }
            _ => problems.push(format!("line {}: bad code or billable flag", i + 1)),
        }
    }
    (codes, problems)
}

/// Why an ICD-10-CM order file cannot be loaded; names the file line.
#[derive(Debug, thiserror::Error)]
pub enum Icd10LoadError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line does not follow the order-file layout.
    #[error("line {line}: {reason}")]
    Layout {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The validity range is empty or reversed.
    #[error("valid_from {from} is after valid_to {to}")]
    Range {
        /// First date of service.
        from: NaiveDate,
        /// Last date of service.
        to: NaiveDate,
    },
    /// The file holds no code.
    #[error("the order file holds no code")]
    Empty,
}

enum EditionCodes {
    Static(&'static LazyLock<(Codes, Vec<String>)>),
    Owned(Codes),
}

/// One ICD-10-CM release and the dates of service it is in force for.
pub struct Icd10Edition {
    label: String,
    valid_from: NaiveDate,
    valid_to: NaiveDate,
    codes: EditionCodes,
}

impl std::fmt::Debug for Icd10Edition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Icd10Edition")
            .field("label", &self.label)
            .field("valid_from", &self.valid_from)
            .field("valid_to", &self.valid_to)
            .finish_non_exhaustive()
    }
}

impl Icd10Edition {
    /// Reads a CMS order file (`icd10cm_order_YYYY.txt`): fixed width, order number (5),
    /// blank, code (7, left aligned), blank, billable flag (`0` header, `1` valid for HIPAA
    /// transactions), blank, short title (60), blank, long title.
    ///
    /// # Errors
    /// [`Icd10LoadError::Layout`] naming the first bad line; [`Icd10LoadError::Range`] when
    /// `valid_from` is after `valid_to`; [`Icd10LoadError::Empty`] for a file without codes.
    pub fn from_order_file(
        label: impl Into<String>,
        valid_from: NaiveDate,
        valid_to: NaiveDate,
        text: &str,
    ) -> Result<Self, Icd10LoadError> {
        if valid_from > valid_to {
            return Err(Icd10LoadError::Range {
                from: valid_from,
                to: valid_to,
            });
        }
        let mut codes = Codes::with_capacity(100_000);
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let bad = |reason: &str| Icd10LoadError::Layout {
                line: i + 1,
                reason: reason.to_owned(),
            };
            let bytes = line.as_bytes();
            if bytes.len() < 16 || !bytes.is_ascii() {
                return Err(bad(
                    "shorter than the order-file layout (order number 5, code 7, billable flag 1) or not ASCII",
                ));
            }
            if !bytes[..5].iter().all(|b| b.is_ascii_digit() || *b == b' ')
                || bytes[5] != b' '
                || bytes[13] != b' '
            {
                return Err(bad(
                    "columns do not line up: order number in 1-5, code in 7-13, billable flag in 15",
                ));
            }
            let code = line[6..13].trim_end();
            let valid_code = (3..=7).contains(&code.len())
                && code
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            let Some(key) = pack(code).filter(|_| valid_code) else {
                return Err(bad(
                    "the code (columns 7-13) is not 3 to 7 letters and digits",
                ));
            };
            let billable = match bytes[14] {
                b'0' => false,
                b'1' => true,
                _ => return Err(bad("the billable flag (column 15) is not 0 or 1")),
            };
            codes.insert(key, billable);
        }
        if codes.is_empty() {
            return Err(Icd10LoadError::Empty);
        }
        Ok(Self {
            label: label.into(),
            valid_from,
            valid_to,
            codes: EditionCodes::Owned(codes),
        })
    }

    /// Reads a CMS order file from `path` (see [`Icd10Edition::from_order_file`]).
    ///
    /// # Errors
    /// [`Icd10LoadError::Io`] naming the path, or the layout errors.
    pub fn from_order_path(
        label: impl Into<String>,
        valid_from: NaiveDate,
        valid_to: NaiveDate,
        path: &Path,
    ) -> Result<Self, Icd10LoadError> {
        // CMS files are ASCII; a stray Latin-1 byte is replaced rather than refused here and then
        // caught by the layout check.
        let bytes = std::fs::read(path).map_err(|source| Icd10LoadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_order_file(
            label,
            valid_from,
            valid_to,
            &String::from_utf8_lossy(&bytes),
        )
    }

    /// Returns the edition's name, e.g. "FY2025".
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Returns the first date of service the edition is in force for.
    pub fn valid_from(&self) -> NaiveDate {
        self.valid_from
    }

    /// Returns the last date of service the edition is in force for.
    pub fn valid_to(&self) -> NaiveDate {
        self.valid_to
    }

    /// Returns whether the edition is in force on `date`.
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.valid_from <= date && date <= self.valid_to
    }

    fn codes(&self) -> &Codes {
        match &self.codes {
            EditionCodes::Static(lazy) => &lazy.0,
            EditionCodes::Owned(codes) => codes,
        }
    }

    /// Returns the number of codes (headers included); loads an embedded edition.
    pub fn len(&self) -> usize {
        self.codes().len()
    }

    /// Returns whether the edition holds no code.
    pub fn is_empty(&self) -> bool {
        self.codes().is_empty()
    }

    /// Returns `Some(billable)` when the edition has `code` (without the dot), else `None`.
    pub fn get(&self, code: &str) -> Option<bool> {
        pack(code).and_then(|k| self.codes().get(&k).copied())
    }

    /// Returns problems found loading an embedded edition (none for the shipped files).
    pub fn load_problems(&self) -> &[String] {
        match &self.codes {
            EditionCodes::Static(lazy) => &lazy.1,
            EditionCodes::Owned(_) => &[],
        }
    }
}

/// What the code sets say about one diagnosis code on one date of service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Icd10Answer<'a> {
    /// A billable (leaf) code in the edition covering the date.
    Billable {
        /// The edition that answered.
        edition: &'a str,
    },
    /// A category or subcategory header: valid, but more characters are needed to bill it.
    Header {
        /// The edition that answered.
        edition: &'a str,
    },
    /// Not in the edition covering the date, but in these other editions.
    InvalidOnDate {
        /// The edition covering the date.
        edition: &'a str,
        /// The editions that have the code, in date order.
        valid_in: Vec<&'a str>,
    },
    /// In no loaded edition.
    Unknown {
        /// The edition covering the date.
        edition: &'a str,
    },
    /// No loaded edition covers the date: the code cannot be judged.
    NoCodeSet,
}

/// The ICD-10-CM editions known to the process, chosen by date of service.
#[derive(Debug, Default)]
pub struct Icd10CodeSets {
    /// Sorted by `valid_from`.
    editions: Vec<Icd10Edition>,
}

impl Icd10CodeSets {
    /// Returns the shipped editions (FY2025: 2024-10-01..2025-09-30; FY2026 April update:
    /// 2026-04-01..2026-09-30), each decompressed on first use and shared by every instance.
    pub fn builtin() -> Self {
        let mut sets = Self::default();
        for e in &EMBEDDED {
            let date = |(y, m, d): (i32, u32, u32)| NaiveDate::from_ymd_opt(y, m, d);
            if let (Some(valid_from), Some(valid_to)) = (date(e.valid_from), date(e.valid_to)) {
                sets.add(Icd10Edition {
                    label: e.label.to_owned(),
                    valid_from,
                    valid_to,
                    codes: EditionCodes::Static(e.codes),
                });
            }
        }
        sets
    }

    /// Adds an edition. Where editions overlap, the one starting latest answers for the dates
    /// they share (an operator's newer file wins over a shipped one).
    pub fn add(&mut self, edition: Icd10Edition) {
        let at = self
            .editions
            .partition_point(|e| e.valid_from <= edition.valid_from);
        self.editions.insert(at, edition);
    }

    /// Returns the editions in order of their first date of service.
    pub fn editions(&self) -> &[Icd10Edition] {
        &self.editions
    }

    /// Returns the edition in force on `date`, if any.
    pub fn edition_for(&self, date: NaiveDate) -> Option<&Icd10Edition> {
        self.editions.iter().rev().find(|e| e.covers(date))
    }

    /// Judges `code` (without the dot) on date of service `date`.
    pub fn lookup(&self, code: &str, date: NaiveDate) -> Icd10Answer<'_> {
        let Some(edition) = self.edition_for(date) else {
            return Icd10Answer::NoCodeSet;
        };
        match edition.get(code) {
            Some(true) => Icd10Answer::Billable {
                edition: edition.label(),
            },
            Some(false) => Icd10Answer::Header {
                edition: edition.label(),
            },
            None => {
                let valid_in: Vec<&str> = self
                    .editions
                    .iter()
                    .filter(|e| e.get(code).is_some())
                    .map(Icd10Edition::label)
                    .collect();
                if valid_in.is_empty() {
                    Icd10Answer::Unknown {
                        edition: edition.label(),
                    }
                } else {
                    Icd10Answer::InvalidOnDate {
                        edition: edition.label(),
                        valid_in,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn order_line(n: u32, code: &str, billable: bool, short: &str, long: &str) -> String {
        format!(
            "{n:05} {code:<7} {} {short:<60} {long}",
            if billable { 1 } else { 0 }
        )
    }

    #[test]
    fn shipped_editions_load_without_problems() {
        let sets = Icd10CodeSets::builtin();
        assert_eq!(sets.editions().len(), 2);
        for e in sets.editions() {
            assert!(e.load_problems().is_empty(), "{:?}", e.load_problems());
        }
        let fy25 = &sets.editions()[0];
        let fy26 = &sets.editions()[1];
        assert_eq!(fy25.label(), "FY2025");
        // Row counts per ../shared/codesets/README.md.
        assert_eq!(fy26.len(), 98_186);
        assert_eq!(
            fy26.codes().values().filter(|b| **b).count(),
            74_719,
            "billable codes in FY2026 April"
        );
        assert_eq!(fy25.codes().values().filter(|b| **b).count(), 74_260);
    }

    #[test]
    fn shipped_editions_keep_their_sources_and_legal_lines() {
        for gz in [
            &include_bytes!("../data/icd10cm_fy2025.csv.gz")[..],
            &include_bytes!("../data/icd10cm_fy2026_apr.csv.gz")[..],
        ] {
            let mut text = String::new();
            flate2::read::GzDecoder::new(gz)
                .read_to_string(&mut text)
                .unwrap();
            let mut lines = text.lines();
            assert!(lines.next().unwrap().starts_with("# SOURCES: "));
            assert!(lines.next().unwrap().starts_with("# LEGAL: "));
        }
    }

    #[test]
    fn lookup_answers_by_date_of_service() {
        let sets = Icd10CodeSets::builtin();
        let in_26 = d("2026-05-01");
        let in_25 = d("2025-02-01");
        assert_eq!(
            sets.lookup("E119", in_26),
            Icd10Answer::Billable {
                edition: "FY2026 (April 2026 update)"
            }
        );
        assert_eq!(
            sets.lookup("E11", in_25),
            Icd10Answer::Header { edition: "FY2025" }
        );
        assert_eq!(
            sets.lookup("ZZZ99", in_25),
            Icd10Answer::Unknown { edition: "FY2025" }
        );
        // The gap between the shipped editions and after them: never "invalid".
        assert_eq!(sets.lookup("E119", d("2025-12-01")), Icd10Answer::NoCodeSet);
        assert_eq!(sets.lookup("E119", d("2026-10-01")), Icd10Answer::NoCodeSet);
        // A code added in FY2026 is invalid on a FY2025 date and names the year it is valid in.
        let added = sets.editions()[1]
            .codes()
            .keys()
            .find(|k| sets.editions()[0].codes().get(k).is_none())
            .map(|k| {
                String::from_utf8(
                    k.to_be_bytes()
                        .iter()
                        .copied()
                        .filter(|b| *b != 0)
                        .collect(),
                )
                .unwrap()
            })
            .expect("FY2026 adds codes");
        assert_eq!(
            sets.lookup(&added, in_25),
            Icd10Answer::InvalidOnDate {
                edition: "FY2025",
                valid_in: vec!["FY2026 (April 2026 update)"]
            }
        );
    }

    #[test]
    fn an_order_file_adds_an_edition_that_wins_where_it_overlaps() {
        let text = [
            order_line(1, "A00", false, "Cholera", "Cholera"),
            order_line(
                2,
                "A000",
                true,
                "Cholera due to V cholerae",
                "Cholera due to ...",
            ),
            order_line(
                3,
                "Q9999",
                true,
                "Made-up new code",
                "Made-up new code for a test",
            ),
        ]
        .join("\r\n");
        let fy27 = Icd10Edition::from_order_file("FY2027", d("2026-10-01"), d("2027-09-30"), &text)
            .unwrap();
        assert_eq!(fy27.len(), 3);
        let mut sets = Icd10CodeSets::builtin();
        sets.add(fy27);
        assert_eq!(
            sets.lookup("Q9999", d("2026-10-01")),
            Icd10Answer::Billable { edition: "FY2027" }
        );
        assert_eq!(
            sets.lookup("E119", d("2026-10-01")),
            Icd10Answer::InvalidOnDate {
                edition: "FY2027",
                valid_in: vec!["FY2025", "FY2026 (April 2026 update)"]
            }
        );
        assert_eq!(
            sets.lookup("Q9999", d("2026-05-01")),
            Icd10Answer::InvalidOnDate {
                edition: "FY2026 (April 2026 update)",
                valid_in: vec!["FY2027"]
            }
        );
        // An overlapping later edition answers for the shared dates.
        let text = order_line(1, "E119", false, "x", "x");
        sets.add(
            Icd10Edition::from_order_file("override", d("2026-09-01"), d("2026-09-30"), &text)
                .unwrap(),
        );
        assert_eq!(
            sets.lookup("E119", d("2026-09-15")),
            Icd10Answer::Header {
                edition: "override"
            }
        );
    }

    #[test]
    fn order_file_errors_name_the_line() {
        let good = order_line(1, "A00", false, "Cholera", "Cholera");
        let from = d("2026-10-01");
        let to = d("2027-09-30");
        let err = |text: &str| {
            Icd10Edition::from_order_file("x", from, to, text)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&format!("{good}\n00002 A000    2 bad flag")).starts_with("line 2:"));
        assert!(err(&format!("{good}\n00002 a000    1 lower case")).contains("columns 7-13"));
        assert!(err("A00 0 Cholera").starts_with("line 1:"));
        assert!(err("").contains("no code"));
        assert!(
            Icd10Edition::from_order_file("x", to, from, &good)
                .unwrap_err()
                .to_string()
                .contains("after")
        );
        let missing = Icd10Edition::from_order_path("x", from, to, Path::new("/nonexistent/f.txt"))
            .unwrap_err()
            .to_string();
        assert!(missing.starts_with("/nonexistent/f.txt"), "{missing}");
    }
}
