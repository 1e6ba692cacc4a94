//! Public code lists (CARC, RARC, adjustment groups, claim status, service types, place of
//! service, ...) as data, so every tool can say "CO-45: Charge exceeds fee schedule..." rather
//! than "45".
//!
//! The lists are CSV files in `data/` embedded at compile time and parsed once on first use.
//! Each file names its public source and licence in its `# SOURCES:` and `# LEGAL:` lines, which
//! [`sources`] and [`legal`] return.

#![forbid(unsafe_code)]

mod csv;
pub mod icd10;
mod key;
pub mod ncci;
pub mod procedures;

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

/// A code list shipped with medbill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeList {
    /// Claim adjustment reason codes (CAS02/05/..., X12 code source 139).
    Carc,
    /// Remittance advice remark codes (LQ*HE, MIA/MOA; X12 code source 411).
    Rarc,
    /// Claim adjustment group codes (CAS01: CO, OA, PI, PR, and pre-5010 CR).
    AdjustmentGroup,
    /// 835 claim status codes (CLP02).
    ClaimStatus,
    /// 277/277CA claim status category codes (STC01-1, X12 code source 507).
    ClaimStatusCategory,
    /// 277/277CA health care claim status codes (STC01-2, X12 code source 508; a partial list).
    ClaimStatusCode,
    /// 271 eligibility or benefit information codes (EB01).
    EligibilityBenefit,
    /// 270/271 service type codes (EQ01, EB03).
    ServiceType,
    /// CMS place of service codes (837P CLM05-1, SV105).
    PlaceOfService,
    /// 271 AAA reject reason codes (AAA03).
    AaaReject,
    /// 835 PLB provider adjustment reason codes (PLB03-1, PLB05-1, ...).
    ProviderAdjustmentReason,
}

impl CodeList {
    /// Every list, in declaration order.
    pub const ALL: [CodeList; 11] = [
        CodeList::Carc,
        CodeList::Rarc,
        CodeList::AdjustmentGroup,
        CodeList::ClaimStatus,
        CodeList::ClaimStatusCategory,
        CodeList::ClaimStatusCode,
        CodeList::EligibilityBenefit,
        CodeList::ServiceType,
        CodeList::PlaceOfService,
        CodeList::AaaReject,
        CodeList::ProviderAdjustmentReason,
    ];

    /// Returns a short human name of the list.
    pub const fn name(self) -> &'static str {
        match self {
            CodeList::Carc => "claim adjustment reason code",
            CodeList::Rarc => "remittance advice remark code",
            CodeList::AdjustmentGroup => "claim adjustment group code",
            CodeList::ClaimStatus => "claim status code",
            CodeList::ClaimStatusCategory => "claim status category code",
            CodeList::ClaimStatusCode => "health care claim status code",
            CodeList::EligibilityBenefit => "eligibility or benefit information code",
            CodeList::ServiceType => "service type code",
            CodeList::PlaceOfService => "place of service code",
            CodeList::AaaReject => "AAA reject reason code",
            CodeList::ProviderAdjustmentReason => "provider adjustment reason code",
        }
    }

    /// Returns the data file's name under `crates/codesets/data/`.
    pub const fn file_name(self) -> &'static str {
        match self {
            CodeList::Carc => "carc.csv",
            CodeList::Rarc => "rarc.csv",
            CodeList::AdjustmentGroup => "claim_adjustment_group_codes.csv",
            CodeList::ClaimStatus => "claim_status.csv",
            CodeList::ClaimStatusCategory => "claim_status_category.csv",
            CodeList::ClaimStatusCode => "claim_status_code.csv",
            CodeList::EligibilityBenefit => "eligibility_benefit.csv",
            CodeList::ServiceType => "service_type.csv",
            CodeList::PlaceOfService => "pos.csv",
            CodeList::AaaReject => "aaa_reject_reason.csv",
            CodeList::ProviderAdjustmentReason => "provider_adjustment_reason.csv",
        }
    }

    /// Returns the embedded file text, comments included.
    pub const fn raw(self) -> &'static str {
        match self {
            CodeList::Carc => include_str!("../data/carc.csv"),
            CodeList::Rarc => include_str!("../data/rarc.csv"),
            CodeList::AdjustmentGroup => include_str!("../data/claim_adjustment_group_codes.csv"),
            CodeList::ClaimStatus => include_str!("../data/claim_status.csv"),
            CodeList::ClaimStatusCategory => include_str!("../data/claim_status_category.csv"),
            CodeList::ClaimStatusCode => include_str!("../data/claim_status_code.csv"),
            CodeList::EligibilityBenefit => include_str!("../data/eligibility_benefit.csv"),
            CodeList::ServiceType => include_str!("../data/service_type.csv"),
            CodeList::PlaceOfService => include_str!("../data/pos.csv"),
            CodeList::AaaReject => include_str!("../data/aaa_reject_reason.csv"),
            CodeList::ProviderAdjustmentReason => {
                include_str!("../data/provider_adjustment_reason.csv")
            }
        }
    }
}

impl fmt::Display for CodeList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One row of a code list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    code: String,
    description: String,
    extra: Vec<(String, String)>,
}

impl Entry {
    /// Returns the code, e.g. `45`.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Returns the full description (the file's second column).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Returns the description without the X12 "Usage:" and "Note:" guidance that follows it.
    pub fn short_description(&self) -> &str {
        shorten(&self.description)
    }

    /// Returns the value of a further column by header name (e.g. RARC `alert`).
    pub fn column(&self, name: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn shorten(description: &str) -> &str {
    [" Usage:", " Note:"]
        .iter()
        .filter_map(|marker| description.find(marker))
        .min()
        .and_then(|cut| description.get(..cut))
        .unwrap_or(description)
        .trim_end()
}

/// A loaded list: rows in file order, an index by code, the header comments and any problems.
#[derive(Debug, Default)]
struct Table {
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    sources: String,
    legal: String,
    problems: Vec<String>,
}

impl Table {
    fn load(list: CodeList) -> Table {
        Table::from_text(list.raw())
    }

    fn from_text(text: &str) -> Table {
        let parsed = csv::parse(text);
        let mut table = Table {
            problems: parsed.problems,
            ..Table::default()
        };
        for comment in &parsed.comments {
            if let Some(s) = comment.strip_prefix("# SOURCES:") {
                table.sources = s.trim().to_owned();
            } else if let Some(s) = comment.strip_prefix("# LEGAL:") {
                table.legal = s.trim().to_owned();
            }
        }
        let mut records = parsed.records.into_iter();
        let Some(header) = records.next() else {
            table.problems.push("no header row".to_owned());
            return table;
        };
        if header.fields.len() < 2 || header.fields.first().map(String::as_str) != Some("code") {
            table.problems.push(format!(
                "line {}: header must start with code,<description>; found {:?}",
                header.line, header.fields
            ));
            return table;
        }
        let extra_names: Vec<String> = header.fields.iter().skip(2).cloned().collect();
        for record in records {
            if record.fields.len() != header.fields.len() {
                table.problems.push(format!(
                    "line {}: {} fields, header has {}",
                    record.line,
                    record.fields.len(),
                    header.fields.len()
                ));
                continue;
            }
            let mut fields = record.fields.into_iter();
            let code = fields.next().unwrap_or_default().trim().to_owned();
            let description = fields.next().unwrap_or_default().trim().to_owned();
            if code.is_empty() {
                table
                    .problems
                    .push(format!("line {}: empty code", record.line));
                continue;
            }
            if table.index.contains_key(&code) {
                table
                    .problems
                    .push(format!("line {}: duplicate code {code}", record.line));
                continue;
            }
            let extra = extra_names.iter().cloned().zip(fields).collect();
            table.index.insert(code.clone(), table.entries.len());
            table.entries.push(Entry {
                code,
                description,
                extra,
            });
        }
        table
    }

    fn get(&self, code: &str) -> Option<&Entry> {
        self.index
            .get(code.trim())
            .and_then(|&i| self.entries.get(i))
    }
}

static CARC: LazyLock<Table> = LazyLock::new(|| Table::load(CodeList::Carc));
static RARC: LazyLock<Table> = LazyLock::new(|| Table::load(CodeList::Rarc));
static GROUP: LazyLock<Table> = LazyLock::new(|| Table::load(CodeList::AdjustmentGroup));
static CLAIM_STATUS: LazyLock<Table> = LazyLock::new(|| Table::load(CodeList::ClaimStatus));
static CATEGORY: LazyLock<Table> = LazyLock::new(|| Table::load(CodeList::ClaimStatusCategory));
static STATUS_CODE: LazyLock<Table> = LazyLock::new(|| Table::load(CodeList::ClaimStatusCode));
static BENEFIT: LazyLock<Table> = LazyLock::new(|| Table::load(CodeList::EligibilityBenefit));
static SERVICE_TYPE: LazyLock<Table> = LazyLock::new(|| Table::load(CodeList::ServiceType));
static POS: LazyLock<Table> = LazyLock::new(|| Table::load(CodeList::PlaceOfService));
static AAA: LazyLock<Table> = LazyLock::new(|| Table::load(CodeList::AaaReject));
static PLB: LazyLock<Table> = LazyLock::new(|| Table::load(CodeList::ProviderAdjustmentReason));

fn table(list: CodeList) -> &'static Table {
    match list {
        CodeList::Carc => &CARC,
        CodeList::Rarc => &RARC,
        CodeList::AdjustmentGroup => &GROUP,
        CodeList::ClaimStatus => &CLAIM_STATUS,
        CodeList::ClaimStatusCategory => &CATEGORY,
        CodeList::ClaimStatusCode => &STATUS_CODE,
        CodeList::EligibilityBenefit => &BENEFIT,
        CodeList::ServiceType => &SERVICE_TYPE,
        CodeList::PlaceOfService => &POS,
        CodeList::AaaReject => &AAA,
        CodeList::ProviderAdjustmentReason => &PLB,
    }
}

/// Returns the full description of a code, or `None` when the list does not have it.
///
/// Codes match exactly after trimming surrounding whitespace (`"11"` is a place of service,
/// `"n130"` is not a RARC).
pub fn describe(list: CodeList, code: &str) -> Option<&'static str> {
    table(list).get(code).map(Entry::description)
}

/// Returns the description without trailing X12 "Usage:"/"Note:" guidance, for one-line displays.
pub fn short_description(list: CodeList, code: &str) -> Option<&'static str> {
    table(list).get(code).map(Entry::short_description)
}

/// Returns the whole row for a code.
pub fn lookup(list: CodeList, code: &str) -> Option<&'static Entry> {
    table(list).get(code)
}

/// Returns every row of a list, in file order.
pub fn entries(list: CodeList) -> &'static [Entry] {
    &table(list).entries
}

/// Returns the `# SOURCES:` line of a list (without the prefix).
pub fn sources(list: CodeList) -> &'static str {
    &table(list).sources
}

/// Returns the `# LEGAL:` line of a list (without the prefix).
pub fn legal(list: CodeList) -> &'static str {
    &table(list).legal
}

/// Returns problems found while loading a list (empty for the shipped files; tests assert it).
pub fn load_problems(list: CodeList) -> &'static [String] {
    &table(list).problems
}

/// Describes a CAS adjustment as `GROUP-REASON: description`, e.g.
/// `CO-45: Charge exceeds fee schedule/maximum allowable or contracted/legislated fee arrangement.`
///
/// The X12 usage notes are left out; an unknown reason gives the bare codes (`CO-999`).
pub fn adjustment(group: &str, reason: &str) -> String {
    let (group, reason) = (group.trim(), reason.trim());
    match short_description(CodeList::Carc, reason) {
        Some(text) => format!("{group}-{reason}: {text}"),
        None => format!("{group}-{reason}"),
    }
}

/// Describes a remark code as `CODE: description`, or the bare code when unknown.
pub fn remark(code: &str) -> String {
    let code = code.trim();
    match short_description(CodeList::Rarc, code) {
        Some(text) => format!("{code}: {text}"),
        None => code.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts data rows straight from the file text (none of the shipped files has a line break
    /// inside a quoted field, which this test also checks).
    fn rows_in_file(list: CodeList) -> usize {
        let lines = list
            .raw()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
        lines.count() - 1
    }

    #[test]
    fn every_file_loads_completely() {
        for list in CodeList::ALL {
            assert!(
                load_problems(list).is_empty(),
                "{list}: {:?}",
                load_problems(list)
            );
            assert_eq!(
                entries(list).len(),
                rows_in_file(list),
                "{}",
                list.file_name()
            );
            assert!(
                sources(list).len() > 40,
                "{} has a SOURCES line",
                list.file_name()
            );
            assert!(
                !legal(list).is_empty(),
                "{} has a LEGAL line",
                list.file_name()
            );
            assert!(
                entries(list).iter().all(|e| !e.description().is_empty()),
                "{} has empty descriptions",
                list.file_name()
            );
        }
    }

    #[test]
    fn row_counts() {
        let counts: Vec<(CodeList, usize)> = CodeList::ALL
            .iter()
            .map(|&l| (l, entries(l).len()))
            .collect();
        assert_eq!(
            counts,
            vec![
                (CodeList::Carc, 291),
                (CodeList::Rarc, 1083),
                (CodeList::AdjustmentGroup, 5),
                (CodeList::ClaimStatus, 10),
                (CodeList::ClaimStatusCategory, 46),
                (CodeList::ClaimStatusCode, 50),
                (CodeList::EligibilityBenefit, 35),
                (CodeList::ServiceType, 187),
                (CodeList::PlaceOfService, 52),
                (CodeList::AaaReject, 45),
                (CodeList::ProviderAdjustmentReason, 41),
            ]
        );
    }

    #[test]
    fn provider_adjustment_reasons() {
        let plb = CodeList::ProviderAdjustmentReason;
        assert_eq!(describe(plb, "L6"), Some("Interest Owed"));
        assert_eq!(describe(plb, "WO"), Some("Overpayment Recovery"));
        assert_eq!(describe(plb, "FB"), Some("Forwarding Balance"));
        assert_eq!(describe(plb, "72"), Some("Authorized Return"));
        assert_eq!(describe(plb, "ZZ"), None);
    }

    #[test]
    fn carc_and_adjustments() {
        assert_eq!(describe(CodeList::Carc, "1"), Some("Deductible Amount"));
        assert_eq!(describe(CodeList::Carc, "2"), Some("Coinsurance Amount"));
        assert_eq!(describe(CodeList::Carc, "3"), Some("Co-payment Amount"));
        let full = describe(CodeList::Carc, "45").unwrap_or_default();
        assert!(
            full.starts_with("Charge exceeds fee schedule/maximum allowable"),
            "{full}"
        );
        assert!(
            full.contains("Usage:"),
            "the full text keeps the usage note"
        );
        assert_eq!(
            adjustment("CO", "45"),
            "CO-45: Charge exceeds fee schedule/maximum allowable or contracted/legislated fee arrangement."
        );
        assert_eq!(adjustment("PR", "1"), "PR-1: Deductible Amount");
        assert_eq!(adjustment(" PR ", " 3 "), "PR-3: Co-payment Amount");
        assert_eq!(adjustment("CO", "99999"), "CO-99999");
        assert_eq!(describe(CodeList::Carc, "99999"), None);
        // a description with commas inside quotes keeps them
        let four = describe(CodeList::Carc, "4").unwrap_or_default();
        assert!(
            four.contains("loop 2110 Service Payment Information REF), if present."),
            "{four}"
        );
    }

    #[test]
    fn rarc() {
        assert_eq!(
            describe(CodeList::Rarc, "N130"),
            Some(
                "Consult plan benefit documents/guidelines for information about restrictions for this service."
            )
        );
        assert!(
            describe(CodeList::Rarc, "M15")
                .is_some_and(|d| d.starts_with("Separately billed services/tests"))
        );
        assert_eq!(
            lookup(CodeList::Rarc, "N884").and_then(|e| e.column("alert")),
            Some("1")
        );
        assert_eq!(
            lookup(CodeList::Rarc, "M15").and_then(|e| e.column("alert")),
            Some("0")
        );
        assert!(remark("N130").starts_with("N130: Consult plan"));
        assert_eq!(remark("ZZ9"), "ZZ9");
        assert_eq!(describe(CodeList::Rarc, "n130"), None);
    }

    #[test]
    fn groups_pos_and_claim_status() {
        assert_eq!(
            describe(CodeList::AdjustmentGroup, "CO"),
            Some("Contractual Obligations")
        );
        assert_eq!(
            describe(CodeList::AdjustmentGroup, "PR"),
            Some("Patient Responsibility")
        );
        assert_eq!(
            lookup(CodeList::AdjustmentGroup, "CR").and_then(|e| e.column("allowed_in_5010_835")),
            Some("0")
        );
        assert_eq!(describe(CodeList::PlaceOfService, "11"), Some("Office"));
        assert_eq!(
            describe(CodeList::PlaceOfService, "23"),
            Some("Emergency Room - Hospital")
        );
        assert_eq!(
            describe(CodeList::ClaimStatus, "22"),
            Some("Reversal of Previous Payment")
        );
        assert_eq!(describe(CodeList::ClaimStatus, "4"), Some("Denied"));
        assert_eq!(
            describe(CodeList::ClaimStatus, "19"),
            Some("Processed as Primary, Forwarded to Additional Payer(s)")
        );
        assert_eq!(describe(CodeList::ClaimStatus, "5"), None);
    }

    #[test]
    fn eligibility_lists() {
        assert_eq!(
            describe(CodeList::EligibilityBenefit, "1"),
            Some("Active Coverage")
        );
        assert_eq!(
            describe(CodeList::EligibilityBenefit, "G"),
            Some("Out of Pocket (Stop Loss)")
        );
        assert_eq!(
            describe(CodeList::ServiceType, "30"),
            Some("Health Benefit Plan Coverage")
        );
        assert_eq!(
            describe(CodeList::ServiceType, "98"),
            Some("Professional (Physician) Visit - Office")
        );
        assert_eq!(describe(CodeList::ServiceType, "UC"), Some("Urgent Care"));
        assert_eq!(
            describe(CodeList::ServiceType, "CM"),
            Some("Mammogram, High Risk Patient")
        );
        for code in [
            "1", "30", "33", "35", "47", "48", "50", "86", "88", "98", "A4", "AL", "MH", "UC",
        ] {
            assert!(
                describe(CodeList::ServiceType, code).is_some(),
                "service type {code}"
            );
        }
        assert_eq!(
            describe(CodeList::AaaReject, "72"),
            Some("Invalid/Missing Subscriber/Insured ID")
        );
        assert_eq!(
            describe(CodeList::AaaReject, "75"),
            Some("Subscriber/Insured Not Found")
        );
        assert_eq!(
            describe(CodeList::AaaReject, "42"),
            Some("Unable to Respond at Current Time")
        );
        for code in [15, 41, 42, 43, 45, 47, 48, 49, 50, 51, 52, 56, 57, 58]
            .into_iter()
            .chain(60..=80)
        {
            assert!(
                describe(CodeList::AaaReject, &code.to_string()).is_some(),
                "AAA {code}"
            );
        }
        assert!(
            describe(CodeList::ClaimStatusCategory, "A2")
                .is_some_and(|d| d.contains("accepted into the adjudication"))
        );
        for code in [
            "A0", "A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "E0", "E1", "E2", "E3", "E4",
            "F0", "F1", "F2", "F3", "F4", "P0", "P1", "P2", "P3", "P4", "P5",
        ] {
            assert!(
                describe(CodeList::ClaimStatusCategory, code).is_some(),
                "category {code}"
            );
        }
    }

    #[test]
    fn a_bad_record_is_reported_with_its_line_and_skipped() {
        let text = "# SOURCES: s\r\n# LEGAL: l\r\ncode,description,alert\r\n\
                    A1,\"one, with comma\",0\r\n\
                    A2,too few\r\n\
                    A3,\"two\r\nlines\",1\r\n\
                    A4,\"bad\"quote,1\r\n\
                    ,empty code,0\r\n\
                    A1,duplicate,0\r\n\
                    A5,\"say \"\"hi\"\"\",1\r\n";
        let table = Table::from_text(text);
        assert_eq!(
            table.problems,
            vec![
                "line 8: field 2 is badly quoted (quotes inside a field must be doubled and the whole field quoted)",
                "line 5: 2 fields, header has 3",
                "line 9: empty code",
                "line 10: duplicate code A1",
            ]
        );
        assert_eq!((table.sources.as_str(), table.legal.as_str()), ("s", "l"));
        let codes: Vec<&str> = table.entries.iter().map(Entry::code).collect();
        assert_eq!(codes, vec!["A1", "A3", "A4", "A5"]);
        assert_eq!(
            table.get("A1").map(Entry::description),
            Some("one, with comma")
        );
        assert_eq!(
            table.get("A3").map(Entry::description),
            Some("two\r\nlines")
        );
        assert_eq!(table.get("A5").map(Entry::description), Some("say \"hi\""));
        assert_eq!(table.get("A5").and_then(|e| e.column("alert")), Some("1"));
    }

    #[test]
    fn a_file_without_a_proper_header_is_reported() {
        assert_eq!(
            Table::from_text("# only a comment\n").problems,
            vec!["no header row"]
        );
        let table = Table::from_text("\n\nname,description\n1,x\n");
        assert_eq!(table.problems.len(), 1, "{:?}", table.problems);
        assert!(table.problems[0].starts_with("line 3: header must start with code"));
        assert!(table.entries.is_empty());
    }

    #[test]
    fn shortening() {
        assert_eq!(shorten("Plain."), "Plain.");
        assert_eq!(shorten("Text. Usage: more. Note: even more"), "Text.");
        assert_eq!(shorten("Text. Note: x Usage: y"), "Text.");
    }
}
