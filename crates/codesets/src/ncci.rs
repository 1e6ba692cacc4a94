//! NCCI procedure-to-procedure (PTP) edits and medically unlikely edits (MUE), read from the
//! CMS quarterly files in their published text layout.
//!
//! CMS publishes them as tab-separated text (and xlsx) with a few header lines (copyright,
//! column titles) before the rows; the same columns saved as CSV are accepted too. Lines before
//! the first row are skipped; after it, a line that is not a row is an error naming it. The
//! files carry CPT codes, which are AMA-licensed: none is shipped, an operator points the
//! configuration at the files (docs/code-sets.md).
//!
//! - PTP: column 1 code, column 2 code, `*` when the edit existed before 1996, effective date
//!   (YYYYMMDD), deletion date (YYYYMMDD, or `*` when none), modifier indicator (0 never
//!   bypassed, 1 bypassed by an NCCI-associated modifier, 9 not applicable), rationale. An edit
//!   applies to dates of service from its effective date through its deletion date.
//! - MUE: code, MUE value (most units), MUE adjudication indicator (`1 Line Edit`,
//!   `2 Date of Service Edit: Policy`, `3 Date of Service Edit: Clinical`), rationale.

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDate;

use crate::key::pack;

/// Why an NCCI file cannot be loaded; names the file line.
#[derive(Debug, thiserror::Error)]
pub enum NcciLoadError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line after the first row is not a row of the layout.
    #[error("line {line}: {reason}")]
    Layout {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file holds no row.
    #[error("the file holds no edit row")]
    Empty,
}

/// How a PTP edit may be bypassed (CMS "modifier indicator").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModifierIndicator {
    /// 0: no modifier allows the pair on the same date of service.
    NotAllowed,
    /// 1: an NCCI-associated modifier (59, XE, XS, XP, XU, ...) allows the pair.
    Allowed,
    /// 9: the edit does not apply (it was deleted on its effective date).
    NotApplicable,
}

impl ModifierIndicator {
    /// Returns the indicator's digit as CMS publishes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ModifierIndicator::NotAllowed => "0",
            ModifierIndicator::Allowed => "1",
            ModifierIndicator::NotApplicable => "9",
        }
    }
}

/// One PTP edit row for a (column 1, column 2) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtpEdit {
    /// First date of service the edit applies to.
    pub effective: NaiveDate,
    /// Last date of service the edit applies to; `None` while in force.
    pub deletion: Option<NaiveDate>,
    /// How the edit may be bypassed.
    pub modifier: ModifierIndicator,
    /// CMS's rationale text (e.g. "Misuse of column two code with column one code").
    pub rationale: String,
}

impl PtpEdit {
    /// Returns whether the edit applies on `date`.
    pub fn applies_on(&self, date: NaiveDate) -> bool {
        self.effective <= date
            && self.deletion.is_none_or(|d| date <= d)
            && self.modifier != ModifierIndicator::NotApplicable
    }
}

/// The PTP edits of one or more files (practitioner or hospital), by code pair.
#[derive(Debug, Default)]
pub struct PtpEdits {
    pairs: HashMap<(u64, u64), Vec<PtpEdit>>,
    rows: usize,
}

/// Splits a row into fields: tabs when the line has one, else commas (a CSV export), with
/// surrounding double quotes dropped. `max` keeps a free-text last column whole.
fn fields(line: &str, max: usize) -> Vec<&str> {
    let sep = if line.contains('\t') { '\t' } else { ',' };
    line.splitn(max, sep)
        .map(|f| f.trim().trim_matches('"').trim())
        .collect()
}

/// Packs a CPT or HCPCS code: five characters, the middle three digits (`99213`, `0001F`, `G0439`).
fn procedure_code(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    (b.len() == 5
        && b.iter().all(u8::is_ascii_alphanumeric)
        && b[1..4].iter().all(u8::is_ascii_digit))
    .then(|| pack(s))
    .flatten()
}

fn yyyymmdd(s: &str) -> Option<NaiveDate> {
    (s.len() == 8)
        .then(|| NaiveDate::parse_from_str(s, "%Y%m%d").ok())
        .flatten()
}

/// Reads rows with `row`, skipping header lines before the first row; after it, every non-blank
/// line must parse.
fn read_rows<T>(
    text: &str,
    mut row: impl FnMut(&str) -> Result<T, String>,
    mut keep: impl FnMut(T),
) -> Result<usize, NcciLoadError> {
    let mut count = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        // A line whose first field is not a procedure code is a header line (copyright, column
        // titles) while no row has been read yet; any other line must be a row.
        let first = fields(line, 2).first().copied().unwrap_or_default();
        if count == 0 && procedure_code(first).is_none() {
            continue;
        }
        match row(line) {
            Ok(value) => {
                keep(value);
                count += 1;
            }
            Err(reason) => {
                return Err(NcciLoadError::Layout {
                    line: i + 1,
                    reason,
                });
            }
        }
    }
    if count == 0 {
        return Err(NcciLoadError::Empty);
    }
    Ok(count)
}

fn read_path(path: &Path) -> Result<String, NcciLoadError> {
    let bytes = std::fs::read(path).map_err(|source| NcciLoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

impl PtpEdits {
    /// Adds the rows of a PTP file's text; returns how many were read.
    ///
    /// # Errors
    /// [`NcciLoadError::Layout`] naming the first bad line after the header,
    /// [`NcciLoadError::Empty`] when no row is found.
    pub fn load_text(&mut self, text: &str) -> Result<usize, NcciLoadError> {
        let mut rows = Vec::new();
        let n = read_rows(text, parse_ptp_row, |r| rows.push(r))?;
        for (pair, edit) in rows {
            self.pairs.entry(pair).or_default().push(edit);
        }
        self.rows += n;
        Ok(n)
    }

    /// Adds the rows of the PTP file at `path`.
    ///
    /// # Errors
    /// [`NcciLoadError::Io`] naming the path, or the errors of [`PtpEdits::load_text`].
    pub fn load_path(&mut self, path: &Path) -> Result<usize, NcciLoadError> {
        self.load_text(&read_path(path)?)
    }

    /// Returns the edit for `column1` with `column2` that applies on `date`, if any.
    pub fn applicable(&self, column1: &str, column2: &str, date: NaiveDate) -> Option<&PtpEdit> {
        let key = (pack(column1)?, pack(column2)?);
        self.pairs.get(&key)?.iter().find(|e| e.applies_on(date))
    }

    /// Returns the number of rows loaded.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Returns whether no row is loaded.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }
}

fn parse_ptp_row(line: &str) -> Result<((u64, u64), PtpEdit), String> {
    let f = fields(line, 7);
    if f.len() < 6 {
        return Err(format!(
            "{} fields; a PTP row has column 1, column 2, prior-1996 flag, effective date, deletion date, modifier indicator, rationale",
            f.len()
        ));
    }
    let col1 = procedure_code(f[0])
        .ok_or_else(|| format!("column 1 {:?} is not a procedure code", f[0]))?;
    let col2 = procedure_code(f[1])
        .ok_or_else(|| format!("column 2 {:?} is not a procedure code", f[1]))?;
    if !matches!(f[2], "" | "*") {
        return Err(format!(
            "the prior-1996 flag {:?} is not '*' or empty",
            f[2]
        ));
    }
    let effective =
        yyyymmdd(f[3]).ok_or_else(|| format!("effective date {:?} is not YYYYMMDD", f[3]))?;
    let deletion = match f[4] {
        "" | "*" => None,
        d => {
            Some(yyyymmdd(d).ok_or_else(|| format!("deletion date {d:?} is not YYYYMMDD or '*'"))?)
        }
    };
    let modifier = match f[5] {
        "0" => ModifierIndicator::NotAllowed,
        "1" => ModifierIndicator::Allowed,
        "9" => ModifierIndicator::NotApplicable,
        other => return Err(format!("modifier indicator {other:?} is not 0, 1 or 9")),
    };
    Ok((
        (col1, col2),
        PtpEdit {
            effective,
            deletion,
            modifier,
            rationale: f.get(6).map_or_else(String::new, |r| (*r).to_owned()),
        },
    ))
}

/// How an MUE is counted (CMS "MUE adjudication indicator").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MueIndicator {
    /// 1: units on one claim line.
    Line,
    /// 2: units on one date of service, an absolute policy limit.
    DatePolicy,
    /// 3: units on one date of service, a clinical limit.
    DateClinical,
}

impl MueIndicator {
    /// Returns whether the limit counts all lines of the date of service (2 and 3).
    pub fn per_day(self) -> bool {
        !matches!(self, MueIndicator::Line)
    }

    /// Returns the indicator's digit.
    pub fn as_str(self) -> &'static str {
        match self {
            MueIndicator::Line => "1",
            MueIndicator::DatePolicy => "2",
            MueIndicator::DateClinical => "3",
        }
    }
}

/// The MUE of one code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MueLimit {
    /// Most units of service.
    pub value: u32,
    /// Per line or per date of service.
    pub indicator: MueIndicator,
}

/// The MUEs of one or more files (practitioner, outpatient hospital or DME), by code.
#[derive(Debug, Default)]
pub struct MueLimits {
    limits: HashMap<u64, MueLimit>,
}

impl MueLimits {
    /// Adds the rows of an MUE file's text (a later row for the same code replaces the
    /// earlier); returns how many were read.
    ///
    /// # Errors
    /// [`NcciLoadError::Layout`] naming the first bad line after the header,
    /// [`NcciLoadError::Empty`] when no row is found.
    pub fn load_text(&mut self, text: &str) -> Result<usize, NcciLoadError> {
        let mut rows = Vec::new();
        let n = read_rows(text, parse_mue_row, |r| rows.push(r))?;
        self.limits.extend(rows);
        Ok(n)
    }

    /// Adds the rows of the MUE file at `path`.
    ///
    /// # Errors
    /// [`NcciLoadError::Io`] naming the path, or the errors of [`MueLimits::load_text`].
    pub fn load_path(&mut self, path: &Path) -> Result<usize, NcciLoadError> {
        self.load_text(&read_path(path)?)
    }

    /// Returns the MUE of `code`, if the files have one.
    pub fn get(&self, code: &str) -> Option<MueLimit> {
        pack(code).and_then(|k| self.limits.get(&k).copied())
    }

    /// Returns the number of codes with an MUE.
    pub fn len(&self) -> usize {
        self.limits.len()
    }

    /// Returns whether no MUE is loaded.
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }
}

fn parse_mue_row(line: &str) -> Result<(u64, MueLimit), String> {
    let f = fields(line, 4);
    if f.len() < 3 {
        return Err(format!(
            "{} fields; an MUE row has code, MUE value, MUE adjudication indicator, rationale",
            f.len()
        ));
    }
    let code =
        procedure_code(f[0]).ok_or_else(|| format!("code {:?} is not a procedure code", f[0]))?;
    let value: u32 = f[1]
        .parse()
        .map_err(|_| format!("MUE value {:?} is not a whole number", f[1]))?;
    let indicator = match f[2].as_bytes().first() {
        Some(b'1') => MueIndicator::Line,
        Some(b'2') => MueIndicator::DatePolicy,
        Some(b'3') => MueIndicator::DateClinical,
        _ => {
            return Err(format!(
                "MUE adjudication indicator {:?} does not start with 1, 2 or 3",
                f[2]
            ));
        }
    };
    Ok((code, MueLimit { value, indicator }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The made-up fixtures in `tests/fixtures` (HCPCS Level II codes and invented codes; no
    /// CPT pair from the licensed files).
    const PTP: &str = include_str!("../tests/fixtures/ncci_ptp_practitioner_sample.txt");
    const MUE: &str = include_str!("../tests/fixtures/ncci_mue_practitioner_sample.txt");

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn ptp_rows_apply_between_effective_and_deletion_dates() {
        let mut ptp = PtpEdits::default();
        assert_eq!(ptp.load_text(PTP).unwrap(), 5);
        // In force, no deletion date, modifier 1.
        let e = ptp.applicable("G0439", "G0444", d("2026-05-01")).unwrap();
        assert_eq!(e.modifier, ModifierIndicator::Allowed);
        assert_eq!(
            e.rationale,
            "Misuse of column two code with column one code"
        );
        // Order matters: (column 2, column 1) is another pair.
        assert!(ptp.applicable("G0444", "G0439", d("2026-05-01")).is_none());
        // Before the effective date.
        assert!(ptp.applicable("G0439", "G0444", d("2019-12-31")).is_none());
        // Modifier 0, deleted 2026-06-30: applies through the deletion date, not after.
        let never = ptp.applicable("J0001", "J0002", d("2026-06-30")).unwrap();
        assert_eq!(never.modifier, ModifierIndicator::NotAllowed);
        assert!(ptp.applicable("J0001", "J0002", d("2026-07-01")).is_none());
        // Modifier 9 never applies.
        assert!(ptp.applicable("A0001", "A0002", d("2026-05-01")).is_none());
        // Two periods for one pair: the one covering the date answers.
        let first = ptp.applicable("E0001", "E0002", d("2021-06-01")).unwrap();
        assert_eq!(first.modifier, ModifierIndicator::NotAllowed);
        let second = ptp.applicable("E0001", "E0002", d("2026-06-01")).unwrap();
        assert_eq!(second.modifier, ModifierIndicator::Allowed);
        assert!(ptp.applicable("E0001", "E0002", d("2023-06-01")).is_none());
    }

    #[test]
    fn csv_exports_are_read_like_the_tab_layout() {
        let mut ptp = PtpEdits::default();
        let text = "Column 1,Column 2,\"*=in existence prior to 1996\",Effective Date,Deletion Date,Modifier,PTP Edit Rationale\n\
                    G0001,G0002,*,20200101,*,1,\"Mutually exclusive procedures, same session\"\n";
        assert_eq!(ptp.load_text(text).unwrap(), 1);
        let e = ptp.applicable("G0001", "G0002", d("2026-01-01")).unwrap();
        assert_eq!(e.rationale, "Mutually exclusive procedures, same session");
    }

    #[test]
    fn bad_rows_after_the_header_name_their_line() {
        let mut ptp = PtpEdits::default();
        let text =
            "title\nG0001\tG0002\t\t20200101\t*\t1\tx\nG0001\tG0003\t\t2020-01-01\t*\t1\tx\n";
        let err = ptp.load_text(text).unwrap_err().to_string();
        assert_eq!(err, "line 3: effective date \"2020-01-01\" is not YYYYMMDD");
        let err = ptp
            .load_text("G0001\tG0002\t\t20200101\t*\t2\tx\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("modifier indicator \"2\""), "{err}");
        assert!(matches!(
            ptp.load_text("only a title\n"),
            Err(NcciLoadError::Empty)
        ));
        let err = ptp
            .load_path(Path::new("/nonexistent/ptp.txt"))
            .unwrap_err();
        assert!(err.to_string().starts_with("/nonexistent/ptp.txt"));
    }

    #[test]
    fn mue_rows_carry_value_and_indicator() {
        let mut mue = MueLimits::default();
        assert_eq!(mue.load_text(MUE).unwrap(), 3);
        assert_eq!(
            mue.get("J0001"),
            Some(MueLimit {
                value: 2,
                indicator: MueIndicator::Line
            })
        );
        let day = mue.get("G0444").unwrap();
        assert_eq!((day.value, day.indicator), (1, MueIndicator::DatePolicy));
        assert!(day.indicator.per_day());
        assert_eq!(
            mue.get("E0001").unwrap().indicator,
            MueIndicator::DateClinical
        );
        assert_eq!(mue.get("A0021"), None);
        let err = mue.load_text("G0001\tmany\t1 Line Edit\tx\n").unwrap_err();
        assert!(err.to_string().contains("not a whole number"));
        let err = mue
            .load_text("G0001\t3\t1 Line Edit\tok\nG0002\t3\t7 odd\tx\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: MUE adjudication indicator \"7 odd\" does not start with 1, 2 or 3"
        );
    }
}
