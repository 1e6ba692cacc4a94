//! Claims settings: the `[claims]` section as configured.
//!
//! ```toml
//! [claims.submission]
//! submitter_name = "GENERAL HOSPITAL BILLING"   # 837 loop 1000A NM103
//! contact_name = "EDI DESK"                     # 1000A PER02
//! contact_phone = "2175550100"                  # 1000A PER04, digits only; required to submit
//! usage = "production"                          # ISA15: "production" (P) or "test" (T)
//! redeliver_after_secs = 300                    # a batch still CREATED this long is delivered again
//! ```
//!
//! Payer routes are the `[[payers]]` connections shared with eligibility (medbill-connect's
//! `PayerConnection`): their `sender_id` / `receiver_id` become ISA06 / ISA08 of the 837.

use medbill_runtime::LoadedConfig;
use medbill_runtime::config::ConfigError;
use serde::{Deserialize, Serialize};

/// Top-level configuration key of the claims section.
pub const SECTION: &str = "claims";

/// The `[claims]` section.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimsConfig {
    /// How 837 batches are written and delivered.
    pub submission: SubmissionConfig,
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
}

impl Default for SubmissionConfig {
    fn default() -> Self {
        Self {
            submitter_name: "MEDBILL".to_owned(),
            contact_name: "BILLING OFFICE".to_owned(),
            contact_phone: String::new(),
            usage: "production".to_owned(),
            redeliver_after_secs: 300,
        }
    }
}

impl ClaimsConfig {
    /// Reads the `[claims]` section and checks its values; errors name the key.
    pub fn load(config: &LoadedConfig) -> Result<Self, ConfigError> {
        let claims: Self = config.section(SECTION)?;
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            key: format!("claims.submission.{key}"),
            reason: reason.to_owned(),
        };
        let s = &claims.submission;
        if !matches!(s.usage.as_str(), "production" | "test") {
            return Err(invalid("usage", "must be \"production\" or \"test\""));
        }
        let phone_ok =
            s.contact_phone.len() >= 10 && s.contact_phone.bytes().all(|b| b.is_ascii_digit());
        if !s.contact_phone.is_empty() && !phone_ok {
            return Err(invalid(
                "contact_phone",
                "must be at least 10 digits, nothing else",
            ));
        }
        if s.submitter_name.trim().is_empty() {
            return Err(invalid("submitter_name", "must not be empty"));
        }
        if s.redeliver_after_secs == 0 {
            return Err(invalid("redeliver_after_secs", "must be at least 1"));
        }
        Ok(claims)
    }
}

/// Checks the `[claims]` section (the binary's `check` step).
pub fn check(config: &LoadedConfig) -> Result<(), ConfigError> {
    ClaimsConfig::load(config).map(drop)
}
