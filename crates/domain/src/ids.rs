//! Identifiers: tenants, typed UUID v7 entity ids, idempotency keys and patient control numbers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Longest input echoed back in an error message.
const MAX_ECHO: usize = 40;

fn echo(input: &str) -> String {
    if input.chars().count() > MAX_ECHO {
        let cut: String = input.chars().take(MAX_ECHO).collect();
        format!("{cut}...")
    } else {
        input.to_owned()
    }
}

/// Implements `Display`, `FromStr`, `AsRef<str>` and string serde for a validated string newtype.
macro_rules! string_newtype_impls {
    ($name:ident, $err:ty) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = $err;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Explains why a string is not a valid tenant id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantIdError {
    /// The id is empty.
    #[error("tenant id is blank")]
    Blank,
    /// The id is longer than 63 characters.
    #[error("tenant id is {len} characters long; at most 63 are allowed")]
    TooLong {
        /// Characters found.
        len: usize,
    },
    /// The first character is not a lowercase letter or digit.
    #[error("tenant id {input:?} must start with a lowercase letter or digit")]
    BadStart {
        /// The rejected id.
        input: String,
    },
    /// A character outside `[a-z0-9_-]`.
    #[error(
        "tenant id {input:?} has {ch:?} at position {position}; only a-z, 0-9, '_' and '-' are allowed"
    )]
    InvalidCharacter {
        /// The rejected id.
        input: String,
        /// The offending character.
        ch: char,
        /// Zero-based position.
        position: usize,
    },
}

/// The billing organisation that owns a row: a slug matching `[a-z0-9][a-z0-9_-]{0,62}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(String);

impl TenantId {
    /// Longest tenant id accepted.
    pub const MAX_LEN: usize = 63;

    /// Validates a tenant slug such as `acme-clinic` or `t_01`.
    pub fn parse(s: &str) -> Result<TenantId, TenantIdError> {
        let Some(first) = s.chars().next() else {
            return Err(TenantIdError::Blank);
        };
        let len = s.chars().count();
        if len > Self::MAX_LEN {
            return Err(TenantIdError::TooLong { len });
        }
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(TenantIdError::BadStart { input: echo(s) });
        }
        if let Some((position, ch)) = s.chars().enumerate().find(|(_, c)| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        }) {
            return Err(TenantIdError::InvalidCharacter {
                input: echo(s),
                ch,
                position,
            });
        }
        Ok(TenantId(s.to_owned()))
    }

    /// Returns the slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_impls!(TenantId, TenantIdError);

/// Explains why a string is not a valid entity id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The text is not a hyphenated UUID.
    #[error("{kind} id {input:?} is not a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")]
    NotAUuid {
        /// Which entity the id names.
        kind: &'static str,
        /// The rejected text.
        input: String,
    },
    /// The UUID is not version 7 (medbill ids are time-ordered UUID v7).
    #[error("{kind} id {input} is a version {version} UUID; medbill ids are UUID v7")]
    WrongVersion {
        /// Which entity the id names.
        kind: &'static str,
        /// The rejected id.
        input: String,
        /// The version found.
        version: usize,
    },
}

/// Defines a typed UUID v7 id so that, for example, a `ClaimId` cannot be passed as an `EraId`.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// Names the entity in error messages.
            pub const KIND: &'static str = $kind;

            /// Generates a fresh time-ordered id (UUID v7).
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses a hyphenated UUID v7 (either case).
            pub fn parse(s: &str) -> Result<Self, IdError> {
                // Only the canonical 36-character form: braces, URNs and the simple form are
                // refused so one id has one spelling in logs, URLs and databases.
                if s.len() != 36 {
                    return Err(IdError::NotAUuid { kind: $kind, input: echo(s) });
                }
                let uuid = Uuid::try_parse(s)
                    .map_err(|_| IdError::NotAUuid { kind: $kind, input: echo(s) })?;
                Self::try_from_uuid(uuid)
            }

            /// Wraps an existing UUID after checking it is version 7.
            pub fn try_from_uuid(uuid: Uuid) -> Result<Self, IdError> {
                if uuid.get_version_num() != 7 {
                    return Err(IdError::WrongVersion {
                        kind: $kind,
                        input: uuid.to_string(),
                        version: uuid.get_version_num(),
                    });
                }
                Ok(Self(uuid))
            }

            /// Returns the UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            /// Prints the lowercase hyphenated form.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<Uuid> for $name {
            type Error = IdError;

            fn try_from(uuid: Uuid) -> Result<Self, Self::Error> {
                Self::try_from_uuid(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

uuid_id!(
    /// Identifies a patient's insurance coverage (eligibility service).
    CoverageId,
    "coverage"
);
uuid_id!(
    /// Identifies one eligibility check (a 270 sent and its 271).
    EligibilityCheckId,
    "eligibility check"
);
uuid_id!(
    /// Identifies a patient cost estimate.
    EstimateId,
    "estimate"
);
uuid_id!(
    /// Identifies a prior authorization request (X12 278).
    PriorAuthorizationId,
    "prior authorization"
);
uuid_id!(
    /// Identifies a claim (claims service).
    ClaimId,
    "claim"
);
uuid_id!(
    /// Identifies one service line of a claim.
    ClaimLineId,
    "claim line"
);
uuid_id!(
    /// Identifies a submission batch (one 837 interchange sent).
    SubmissionBatchId,
    "submission batch"
);
uuid_id!(
    /// Identifies an acknowledgement received (999 or 277CA).
    AcknowledgementId,
    "acknowledgement"
);
uuid_id!(
    /// Identifies an electronic remittance advice (one 835; remittance service).
    EraId,
    "ERA"
);
uuid_id!(
    /// Identifies a bank deposit reconciled against ERAs.
    DepositId,
    "deposit"
);
uuid_id!(
    /// Identifies a patient account (collections service).
    AccountId,
    "account"
);
uuid_id!(
    /// Identifies a double-entry journal entry on the ledger.
    JournalEntryId,
    "journal entry"
);
uuid_id!(
    /// Identifies a patient statement.
    StatementId,
    "statement"
);
uuid_id!(
    /// Identifies a payment plan.
    PaymentPlanId,
    "payment plan"
);
uuid_id!(
    /// Identifies a refund.
    RefundId,
    "refund"
);
uuid_id!(
    /// Identifies a placement with a collection agency.
    AgencyPlacementId,
    "agency placement"
);
uuid_id!(
    /// Identifies a message in a transactional outbox.
    OutboxMessageId,
    "outbox message"
);

/// Explains why a string is not a valid idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    /// The key is empty or only spaces.
    #[error("idempotency key is blank")]
    Blank,
    /// The key is longer than 128 characters.
    #[error("idempotency key is {len} characters long; at most 128 are allowed")]
    TooLong {
        /// Characters found.
        len: usize,
    },
    /// A character outside printable ASCII.
    #[error(
        "idempotency key has {ch:?} at position {position}; only printable ASCII (space to '~') is allowed"
    )]
    InvalidCharacter {
        /// The offending character.
        ch: char,
        /// Zero-based position.
        position: usize,
    },
}

/// A client-chosen key that makes a mutating request safe to retry: 1..=128 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Longest key accepted.
    pub const MAX_LEN: usize = 128;

    /// Validates a key: not blank, at most 128 characters, each in `' '..='~'`.
    pub fn parse(s: &str) -> Result<IdempotencyKey, IdempotencyKeyError> {
        if s.trim_matches(' ').is_empty() {
            return Err(IdempotencyKeyError::Blank);
        }
        let len = s.chars().count();
        if len > Self::MAX_LEN {
            return Err(IdempotencyKeyError::TooLong { len });
        }
        if let Some((position, ch)) = s
            .chars()
            .enumerate()
            .find(|(_, c)| !(' '..='~').contains(c))
        {
            return Err(IdempotencyKeyError::InvalidCharacter { ch, position });
        }
        Ok(IdempotencyKey(s.to_owned()))
    }

    /// Returns the key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_impls!(IdempotencyKey, IdempotencyKeyError);

/// Explains why a string is not a valid patient control number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatientControlNumberError {
    /// The number is empty.
    #[error("patient control number is blank")]
    Blank,
    /// Longer than the 20 characters CLM01 allows.
    #[error("patient control number is {len} characters long; CLM01 allows at most 20")]
    TooLong {
        /// Characters found.
        len: usize,
    },
    /// A character that could clash with X12 delimiters or is not in the safe set.
    #[error(
        "patient control number has {ch:?} at position {position}; only A-Z, a-z, 0-9, '-', '.' and '_' are allowed"
    )]
    InvalidCharacter {
        /// The offending character.
        ch: char,
        /// Zero-based position.
        position: usize,
    },
}

/// Our claim's patient control number (837 CLM01, echoed in 835 CLP01): 1..=20 characters.
///
/// Only letters, digits, `-`, `.` and `_` are accepted, so the value can never collide with any
/// X12 delimiter a trading partner picks and survives every payer's round trip. This type is for
/// numbers medbill issues; CLP01 values read from a payer's 835 should be matched as plain strings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PatientControlNumber(String);

impl PatientControlNumber {
    /// Longest number accepted (X12 CLM01 maximum length).
    pub const MAX_LEN: usize = 20;

    /// Validates a patient control number.
    pub fn parse(s: &str) -> Result<PatientControlNumber, PatientControlNumberError> {
        if s.is_empty() {
            return Err(PatientControlNumberError::Blank);
        }
        let len = s.chars().count();
        if len > Self::MAX_LEN {
            return Err(PatientControlNumberError::TooLong { len });
        }
        if let Some((position, ch)) = s
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
        {
            return Err(PatientControlNumberError::InvalidCharacter { ch, position });
        }
        Ok(PatientControlNumber(s.to_owned()))
    }

    /// Returns the number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_impls!(PatientControlNumber, PatientControlNumberError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids() {
        assert_eq!(
            TenantId::parse("acme-clinic").map(|t| t.to_string()),
            Ok("acme-clinic".into())
        );
        assert!(TenantId::parse("0").is_ok());
        assert!(TenantId::parse(&"a".repeat(63)).is_ok());
        assert_eq!(
            TenantId::parse(&"a".repeat(64)),
            Err(TenantIdError::TooLong { len: 64 })
        );
        assert_eq!(TenantId::parse(""), Err(TenantIdError::Blank));
        assert_eq!(
            TenantId::parse("-x"),
            Err(TenantIdError::BadStart { input: "-x".into() })
        );
        assert_eq!(
            TenantId::parse("_x"),
            Err(TenantIdError::BadStart { input: "_x".into() })
        );
        assert_eq!(
            TenantId::parse("Acme"),
            Err(TenantIdError::BadStart {
                input: "Acme".into()
            })
        );
        assert_eq!(
            TenantId::parse("acme clinic"),
            Err(TenantIdError::InvalidCharacter {
                input: "acme clinic".into(),
                ch: ' ',
                position: 4
            })
        );
        let json = serde_json::to_string(&TenantId::parse("t1").unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_default();
        assert_eq!(json, "\"t1\"");
        assert!(serde_json::from_str::<TenantId>("\"T1\"").is_err());
    }

    #[test]
    fn uuid_ids_round_trip_and_order() {
        let a = ClaimId::new();
        let b = ClaimId::new();
        assert!(a < b, "v7 ids sort in creation order");
        let text = a.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(ClaimId::parse(&text), Ok(a));
        assert_eq!(ClaimId::parse(&text.to_uppercase()), Ok(a));
        let json = serde_json::to_string(&a).unwrap_or_default();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<ClaimId>(&json).ok(), Some(a));
        assert_eq!(a.as_uuid().get_version_num(), 7);
    }

    #[test]
    fn uuid_ids_reject_bad_input() {
        assert_eq!(
            EraId::parse("not-a-uuid"),
            Err(IdError::NotAUuid {
                kind: "ERA",
                input: "not-a-uuid".into()
            })
        );
        let v4 = "0b9f9b86-3a8e-4f1c-9e3f-4c1a2b3c4d5e";
        assert_eq!(
            AccountId::parse(v4),
            Err(IdError::WrongVersion {
                kind: "account",
                input: v4.into(),
                version: 4
            })
        );
        let simple = CoverageId::new().as_uuid().simple().to_string();
        assert!(matches!(
            CoverageId::parse(&simple),
            Err(IdError::NotAUuid { .. })
        ));
        assert_eq!(
            JournalEntryId::parse("").map_err(|e| e.to_string()),
            Err("journal entry id \"\" is not a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".into())
        );
    }

    #[test]
    fn idempotency_keys() {
        assert!(IdempotencyKey::parse("req-2026-11-27/01 #a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(128)).is_ok());
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(129)),
            Err(IdempotencyKeyError::TooLong { len: 129 })
        );
        assert_eq!(IdempotencyKey::parse(""), Err(IdempotencyKeyError::Blank));
        assert_eq!(
            IdempotencyKey::parse("   "),
            Err(IdempotencyKeyError::Blank)
        );
        assert_eq!(
            IdempotencyKey::parse("a\nb"),
            Err(IdempotencyKeyError::InvalidCharacter {
                ch: '\n',
                position: 1
            })
        );
        assert_eq!(
            IdempotencyKey::parse("clé"),
            Err(IdempotencyKeyError::InvalidCharacter {
                ch: 'é',
                position: 2
            })
        );
    }

    #[test]
    fn patient_control_numbers() {
        assert!(PatientControlNumber::parse("PCN-2026.000123_A").is_ok());
        assert!(PatientControlNumber::parse(&"9".repeat(20)).is_ok());
        assert_eq!(
            PatientControlNumber::parse(&"9".repeat(21)),
            Err(PatientControlNumberError::TooLong { len: 21 })
        );
        assert_eq!(
            PatientControlNumber::parse(""),
            Err(PatientControlNumberError::Blank)
        );
        for (bad, pos) in [
            ("A*B", 1),
            ("AB~", 2),
            ("A:B", 1),
            ("A^B", 1),
            ("A B", 1),
            ("A|B", 1),
        ] {
            assert!(
                matches!(
                    PatientControlNumber::parse(bad),
                    Err(PatientControlNumberError::InvalidCharacter { position, .. }) if position == pos
                ),
                "{bad}"
            );
        }
    }
}
