//! The tenant's providers and service facilities: who bills, renders, refers and attends, and where
//! services are performed. A claim names them by NPI; the 837 writer takes their names, addresses,
//! tax ids and taxonomies from here.
//!
//! - this file: the [`Provider`] model and its rules;
//! - `rpc.rs`: CreateProvider, UpdateProvider, GetProvider, ListProviders and the proto mapping.
//!
//! A tax id is kept whole (the 837 needs it) but never logged and never answered: responses mask
//! it to its last four digits.

pub(crate) mod rpc;

use chrono::{DateTime, Utc};
use medbill_domain::{Npi, code_enum};

use crate::details::PostalAddress;

code_enum!(
    /// What kind of party a provider record describes.
    ProviderKind, "provider kind", {
        /// A person (NM102 = 1).
        Individual => "INDIVIDUAL",
        /// An organisation (NM102 = 2).
        Organization => "ORGANIZATION",
        /// A service facility location.
        ServiceFacility => "SERVICE_FACILITY",
    }
);

/// A provider's taxpayer identification number.
#[derive(Clone, PartialEq, Eq)]
pub enum TaxId {
    /// Employer identification number, 9 digits (REF*EI).
    Ein(String),
    /// Social security number of a sole practitioner, 9 digits (REF*SY).
    Ssn(String),
}

impl TaxId {
    /// The stored type code: "EIN" or "SSN".
    pub fn type_code(&self) -> &'static str {
        match self {
            Self::Ein(_) => "EIN",
            Self::Ssn(_) => "SSN",
        }
    }

    /// The nine digits.
    pub fn digits(&self) -> &str {
        match self {
            Self::Ein(d) | Self::Ssn(d) => d,
        }
    }

    /// The digits masked to the last four ("*****6789"), for answers.
    pub fn masked(&self) -> String {
        let d = self.digits();
        let keep = d.len().saturating_sub(4);
        format!("{}{}", "*".repeat(keep), &d[keep..])
    }

    /// Builds a tax id from its stored type code and digits.
    pub fn from_parts(type_code: &str, digits: String) -> Option<Self> {
        match type_code {
            "EIN" => Some(Self::Ein(digits)),
            "SSN" => Some(Self::Ssn(digits)),
            _ => None,
        }
    }
}

impl std::fmt::Debug for TaxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.type_code(), self.masked())
    }
}

/// A provider's name: an organisation's, or a person's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderName {
    /// NM103: the organisation name, or the person's last name.
    pub last_or_organization: String,
    /// NM104, persons only.
    pub first: String,
    /// NM105, persons only.
    pub middle: String,
    /// NM107, persons only.
    pub suffix: String,
}

/// A provider or service facility of the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// The key within the tenant.
    pub npi: Npi,
    /// Individual, organisation or service facility.
    pub kind: ProviderKind,
    /// Name.
    pub name: ProviderName,
    /// Tax id, when on file.
    pub tax_id: Option<TaxId>,
    /// NUCC taxonomy code.
    pub taxonomy_code: Option<String>,
    /// Street address.
    pub address: Option<PostalAddress>,
    /// Pay-to address when different.
    pub pay_to_address: Option<PostalAddress>,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
}

/// A provider's content as a request gives it (create, or the full replacement of an update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProvider {
    /// The key within the tenant.
    pub npi: Npi,
    /// Individual, organisation or service facility.
    pub kind: ProviderKind,
    /// Name.
    pub name: ProviderName,
    /// Tax id; on update `None` with `keep_tax_id` keeps the one on file.
    pub tax_id: Option<TaxId>,
    /// On update: keep the tax id on file (the request named a type without digits).
    pub keep_tax_id: bool,
    /// NUCC taxonomy code.
    pub taxonomy_code: Option<String>,
    /// Street address.
    pub address: Option<PostalAddress>,
    /// Pay-to address when different.
    pub pay_to_address: Option<PostalAddress>,
}

/// Whether `code` has the NUCC taxonomy format (3 digits, 6 digits or capitals, "X"). The content is
/// NUCC-licensed, so only the format is checked.
pub fn is_taxonomy_format(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 10
        && b[..3].iter().all(u8::is_ascii_digit)
        && b[3..9]
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        && b[9] == b'X'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tax_ids_are_masked_in_answers_and_debug() {
        let t = TaxId::Ein("123456789".into());
        assert_eq!(t.masked(), "*****6789");
        assert_eq!(format!("{t:?}"), "EIN(*****6789)");
        assert_eq!(
            TaxId::from_parts("SSN", "987654321".into()),
            Some(TaxId::Ssn("987654321".into()))
        );
        assert_eq!(TaxId::from_parts("ITIN", "1".into()), None);
    }

    #[test]
    fn taxonomy_format() {
        assert!(is_taxonomy_format("207Q00000X"));
        assert!(is_taxonomy_format("282N00000X"));
        assert!(!is_taxonomy_format("207Q00000"));
        assert!(!is_taxonomy_format("20AQ00000X"));
        assert!(!is_taxonomy_format("207q00000X"));
    }
}
