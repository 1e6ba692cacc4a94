//! Claims settings: the `[claims]` section ([`ClaimsConfig`]) as configured (code set files and
//! per-payer scrub rules), checked at load without opening anything; the files are read once
//! at start by [`ClaimsConfig::scrub_rules`].
//!
//! ```toml
//! [claims.code_sets]
//! cpt_file = "/etc/medbill/cpt-2026.csv"              # licensed CPT list: code,description
//! [[claims.code_sets.icd10cm]]                         # more ICD-10-CM editions (CMS order files)
//! label = "FY2027"
//! path = "/etc/medbill/icd10cm_order_2027.txt"
//! valid_from = "2026-10-01"
//! valid_to = "2027-09-30"
//! [claims.code_sets.ncci]                              # CMS quarterly NCCI files (tab text)
//! ptp_practitioner = ["/etc/medbill/ncci/ccipra-v322r0-f1.txt", "/etc/medbill/ncci/ccipra-v322r0-f2.txt"]
//! mue_practitioner = ["/etc/medbill/ncci/mue-practitioner-2026q3.txt"]
//! [[claims.payers]]
//! payer_id = "60054"
//! timely_filing_days = 120
//! procedures_requiring_authorization = ["J3490", "E0601"]
//! follow_up_days = 30                       # unpaid this long after submission: 276 to the payer
//! [claims.submission]
//! submitter_name = "GENERAL HOSPITAL BILLING"   # 837 loop 1000A NM103
//! contact_name = "EDI DESK"                     # 1000A PER02
//! contact_phone = "2175550100"                  # 1000A PER04, digits only; required to submit
//! usage = "production"                          # ISA15: "production" (P) or "test" (T)
//! redeliver_after_secs = 300                    # a batch still CREATED this long is delivered again
//! acknowledgement_poll_secs = 60                # how often 999 / 277CA files are picked up
//! ```
//!
//! Payer routes are the `[[payers]]` connections shared with eligibility (medbill-connect's
//! `PayerConnection`): their `sender_id` / `receiver_id` become ISA06 / ISA08 of the 837.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use chrono::NaiveDate;
use medbill_codesets::icd10::{Icd10CodeSets, Icd10Edition};
use medbill_codesets::ncci::{MueLimits, PtpEdits};
use medbill_codesets::procedures::{
    CptCodes, hcpcs_level2_stats, is_cpt_format, is_hcpcs_level2_format,
};
use medbill_runtime::LoadedConfig;
use medbill_runtime::config::ConfigError;
use serde::{Deserialize, Serialize};

use crate::scrub::{CodeSets, PayerRules, ScrubRules};

/// Top-level configuration key of the claims section.
pub const SECTION: &str = "claims";

/// Timely filing limit of a payer without its own rule, in days after the date of service.
pub const DEFAULT_TIMELY_FILING_DAYS: u32 = 365;

/// Holds the `[claims]` section as configured.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimsConfig {
    /// Code set files beyond the shipped ones.
    pub code_sets: CodeSetsConfig,
    /// Scrub rules per payer.
    pub payers: Vec<PayerRulesConfig>,
    /// How 837 batches are written and delivered.
    pub submission: SubmissionConfig,
    /// Seconds between two passes of the 276/277 follow-up of unpaid claims (default 3600).
    pub follow_up_check_secs: u64,
}

impl Default for ClaimsConfig {
    fn default() -> Self {
        Self {
            code_sets: CodeSetsConfig::default(),
            payers: Vec::new(),
            submission: SubmissionConfig::default(),
            follow_up_check_secs: 3600,
        }
    }
}

/// The `[claims.submission]` table.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubmissionConfig {
    /// Submitter name (1000A NM103).
    pub submitter_name: String,
    /// Submitter EDI contact name (1000A PER02).
    pub contact_name: String,
    /// Submitter EDI contact telephone, digits only (1000A PER04). Empty means not configured:
    /// SubmitClaims then refuses with FAILED_PRECONDITION rather than send a made-up number.
    pub contact_phone: String,
    /// ISA15: "production" or "test".
    pub usage: String,
    /// Seconds after which a batch still CREATED (a crash between storing and sending) is
    /// delivered by the background task.
    pub redeliver_after_secs: u64,
    /// Seconds between two pickups of acknowledgements (TA1, 999, 277CA) from every payer route.
    pub acknowledgement_poll_secs: u64,
}

impl Default for SubmissionConfig {
    fn default() -> Self {
        Self {
            submitter_name: "MEDBILL".to_owned(),
            contact_name: "BILLING OFFICE".to_owned(),
            contact_phone: String::new(),
            usage: "production".to_owned(),
            redeliver_after_secs: 300,
            acknowledgement_poll_secs: 60,
        }
    }
}

impl SubmissionConfig {
    fn check(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("claims.submission.{k}");
        if !matches!(self.usage.as_str(), "production" | "test") {
            return Err(invalid(key("usage"), "must be \"production\" or \"test\""));
        }
        let phone_ok = self.contact_phone.len() >= 10
            && self.contact_phone.bytes().all(|b| b.is_ascii_digit());
        if !self.contact_phone.is_empty() && !phone_ok {
            return Err(invalid(
                key("contact_phone"),
                "must be at least 10 digits, nothing else",
            ));
        }
        if self.submitter_name.trim().is_empty() {
            return Err(invalid(key("submitter_name"), "must not be empty"));
        }
        if self.redeliver_after_secs == 0 {
            return Err(invalid(key("redeliver_after_secs"), "must be at least 1"));
        }
        if self.acknowledgement_poll_secs == 0 {
            return Err(invalid(
                key("acknowledgement_poll_secs"),
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// `[claims.code_sets]`: files the operator provides.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CodeSetsConfig {
    /// A licensed CPT code list (CSV `code,description`); without it CPT codes are checked for
    /// format only and get an INFO finding.
    pub cpt_file: Option<PathBuf>,
    /// ICD-10-CM editions from CMS order files, each with the dates of service it covers.
    pub icd10cm: Vec<Icd10FileConfig>,
    /// NCCI PTP and MUE files.
    pub ncci: NcciConfig,
}

/// One `[[claims.code_sets.icd10cm]]` edition.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Icd10FileConfig {
    /// Name used in findings, e.g. "FY2027".
    pub label: String,
    /// The CMS order file (`icd10cm_order_YYYY.txt`).
    pub path: PathBuf,
    /// First date of service it covers.
    pub valid_from: NaiveDate,
    /// Last date of service it covers.
    pub valid_to: NaiveDate,
}

/// `[claims.code_sets.ncci]`: CMS quarterly files, each list read in order.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NcciConfig {
    /// Practitioner PTP files (professional claims).
    pub ptp_practitioner: Vec<PathBuf>,
    /// Hospital outpatient PTP files (institutional claims).
    pub ptp_hospital: Vec<PathBuf>,
    /// Practitioner services MUE files (professional claims).
    pub mue_practitioner: Vec<PathBuf>,
    /// Outpatient hospital services MUE files (institutional claims).
    pub mue_hospital: Vec<PathBuf>,
}

/// One `[[claims.payers]]` rule set.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PayerRulesConfig {
    /// The payer id claims name.
    pub payer_id: String,
    /// Days after the date of service the payer accepts a claim.
    #[serde(default = "default_timely_filing_days")]
    pub timely_filing_days: u32,
    /// CPT/HCPCS codes the payer pays only with a prior authorization number.
    #[serde(default)]
    pub procedures_requiring_authorization: Vec<String>,
    /// Days a submitted claim waits unpaid before a 276 asks the payer about it, and between
    /// two answered follow-ups.
    #[serde(default = "default_follow_up_days")]
    pub follow_up_days: u32,
}

fn default_timely_filing_days() -> u32 {
    DEFAULT_TIMELY_FILING_DAYS
}

fn default_follow_up_days() -> u32 {
    crate::follow_up::DEFAULT_FOLLOW_UP_DAYS
}

fn invalid(key: String, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl ClaimsConfig {
    /// Reads the `[claims]` section and checks what can be checked without opening a file:
    /// payer ids unique and not empty, filing limits at least 1 day, procedure codes shaped
    /// like CPT or HCPCS, edition ranges in order. Errors name the key.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key.
    pub fn load(config: &LoadedConfig) -> Result<Self, ConfigError> {
        let claims: Self = config.section(SECTION)?;
        claims.check()?;
        Ok(claims)
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.submission.check()?;
        if self.follow_up_check_secs == 0 {
            return Err(invalid(
                "claims.follow_up_check_secs".to_owned(),
                "must be at least 1",
            ));
        }
        for (i, e) in self.code_sets.icd10cm.iter().enumerate() {
            if e.label.trim().is_empty() {
                return Err(invalid(
                    format!("claims.code_sets.icd10cm[{i}].label"),
                    "must not be empty",
                ));
            }
            if e.valid_from > e.valid_to {
                return Err(invalid(
                    format!("claims.code_sets.icd10cm[{i}].valid_from"),
                    format!("{} is after valid_to {}", e.valid_from, e.valid_to),
                ));
            }
        }
        let mut ids = BTreeSet::new();
        for (i, p) in self.payers.iter().enumerate() {
            if p.payer_id.trim().is_empty() {
                return Err(invalid(
                    format!("claims.payers[{i}].payer_id"),
                    "must not be empty",
                ));
            }
            if !ids.insert(p.payer_id.as_str()) {
                return Err(invalid(
                    format!("claims.payers[{i}].payer_id"),
                    format!("payer {} has rules twice", p.payer_id),
                ));
            }
            if p.follow_up_days == 0 {
                return Err(invalid(
                    format!("claims.payers[{i}].follow_up_days"),
                    "must be at least 1",
                ));
            }
            if p.timely_filing_days == 0 {
                return Err(invalid(
                    format!("claims.payers[{i}].timely_filing_days"),
                    "must be at least 1",
                ));
            }
            for (j, code) in p.procedures_requiring_authorization.iter().enumerate() {
                if !is_cpt_format(code) && !is_hcpcs_level2_format(code) {
                    return Err(invalid(
                        format!("claims.payers[{i}].procedures_requiring_authorization[{j}]"),
                        format!("{code:?} is not a CPT or HCPCS Level II code"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The follow-up interval of each payer with rules (others get the default).
    pub fn follow_up_days(&self) -> std::collections::HashMap<String, u32> {
        self.payers
            .iter()
            .map(|p| (p.payer_id.clone(), p.follow_up_days))
            .collect()
    }

    /// Reads the configured code set files (once, at start) and builds the scrub rules: the
    /// shipped code sets, the files added, and each payer's rules.
    ///
    /// # Errors
    /// The key and the file (and line) that cannot be used.
    pub fn scrub_rules(&self) -> Result<ScrubRules, ConfigError> {
        self.check()?;
        let sets = &self.code_sets;
        let mut icd10 = Icd10CodeSets::builtin();
        for (i, e) in sets.icd10cm.iter().enumerate() {
            let edition =
                Icd10Edition::from_order_path(e.label.clone(), e.valid_from, e.valid_to, &e.path)
                    .map_err(|err| {
                    invalid(
                        format!("claims.code_sets.icd10cm[{i}].path"),
                        format!("{}: {err}", e.path.display()),
                    )
                })?;
            icd10.add(edition);
        }
        // Decompress the shipped editions and HCPCS now rather than in the first scrub.
        for edition in icd10.editions() {
            edition.len();
        }
        hcpcs_level2_stats();
        let cpt = sets
            .cpt_file
            .as_ref()
            .map(|path| {
                CptCodes::from_path(path).map_err(|err| {
                    invalid(
                        "claims.code_sets.cpt_file".to_owned(),
                        format!("{}: {err}", path.display()),
                    )
                })
            })
            .transpose()?;
        let ptp = |key: &str, paths: &[PathBuf]| -> Result<PtpEdits, ConfigError> {
            let mut edits = PtpEdits::default();
            for (i, path) in paths.iter().enumerate() {
                edits.load_path(path).map_err(|err| {
                    invalid(
                        format!("claims.code_sets.ncci.{key}[{i}]"),
                        format!("{}: {err}", path.display()),
                    )
                })?;
            }
            Ok(edits)
        };
        let mue = |key: &str, paths: &[PathBuf]| -> Result<MueLimits, ConfigError> {
            let mut limits = MueLimits::default();
            for (i, path) in paths.iter().enumerate() {
                limits.load_path(path).map_err(|err| {
                    invalid(
                        format!("claims.code_sets.ncci.{key}[{i}]"),
                        format!("{}: {err}", path.display()),
                    )
                })?;
            }
            Ok(limits)
        };
        let code_sets = CodeSets {
            icd10,
            cpt,
            ptp_professional: ptp("ptp_practitioner", &sets.ncci.ptp_practitioner)?,
            ptp_institutional: ptp("ptp_hospital", &sets.ncci.ptp_hospital)?,
            mue_professional: mue("mue_practitioner", &sets.ncci.mue_practitioner)?,
            mue_institutional: mue("mue_hospital", &sets.ncci.mue_hospital)?,
        };
        let payers: HashMap<String, PayerRules> = self
            .payers
            .iter()
            .map(|p| {
                (
                    p.payer_id.clone(),
                    PayerRules {
                        timely_filing_days: p.timely_filing_days,
                        procedures_requiring_authorization: p
                            .procedures_requiring_authorization
                            .iter()
                            .cloned()
                            .collect::<HashSet<_>>(),
                    },
                )
            })
            .collect();
        Ok(ScrubRules::new(code_sets, payers))
    }
}

/// Reads and checks the `[claims]` section without opening its files (the binary's `check`).
pub fn check(config: &LoadedConfig) -> Result<(), ConfigError> {
    ClaimsConfig::load(config).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<ClaimsConfig, String> {
        let value: toml::Value = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        let section = value
            .get("claims")
            .cloned()
            .unwrap_or(toml::Value::Table(Default::default()));
        section
            .try_into::<ClaimsConfig>()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn payer_rules_default_to_365_days_and_are_checked() {
        let c = parse("[[claims.payers]]\npayer_id = \"60054\"\n").unwrap();
        assert_eq!(c.payers[0].timely_filing_days, 365);
        c.check().unwrap();
        let twice =
            parse("[[claims.payers]]\npayer_id = \"A\"\n[[claims.payers]]\npayer_id = \"A\"\n")
                .unwrap();
        assert!(
            twice
                .check()
                .unwrap_err()
                .to_string()
                .contains("claims.payers[1].payer_id")
        );
        let zero = parse("[[claims.payers]]\npayer_id = \"A\"\ntimely_filing_days = 0\n").unwrap();
        assert!(
            zero.check()
                .unwrap_err()
                .to_string()
                .contains("timely_filing_days")
        );
        let code = parse("[[claims.payers]]\npayer_id = \"A\"\nprocedures_requiring_authorization = [\"J3490\", \"xx\"]\n").unwrap();
        assert!(
            code.check()
                .unwrap_err()
                .to_string()
                .contains("claims.payers[0].procedures_requiring_authorization[1]")
        );
        assert!(parse("[claims]\nunknown = 1\n").is_err());
    }

    #[test]
    fn files_that_cannot_be_read_name_their_key() {
        let c = parse(
            "[[claims.code_sets.icd10cm]]\nlabel = \"FY2027\"\npath = \"/nonexistent/order.txt\"\nvalid_from = \"2026-10-01\"\nvalid_to = \"2027-09-30\"\n",
        )
        .unwrap();
        let err = c.scrub_rules().unwrap_err().to_string();
        assert!(err.contains("claims.code_sets.icd10cm[0].path"), "{err}");
        let c =
            parse("[claims.code_sets.ncci]\nmue_hospital = [\"/nonexistent/mue.txt\"]\n").unwrap();
        let err = c.scrub_rules().unwrap_err().to_string();
        assert!(
            err.contains("claims.code_sets.ncci.mue_hospital[0]"),
            "{err}"
        );
        let reversed = parse(
            "[[claims.code_sets.icd10cm]]\nlabel = \"x\"\npath = \"p\"\nvalid_from = \"2027-10-01\"\nvalid_to = \"2027-09-30\"\n",
        )
        .unwrap();
        assert!(
            reversed
                .check()
                .unwrap_err()
                .to_string()
                .contains("valid_from")
        );
    }
}
