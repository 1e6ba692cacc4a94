//! The collections service's domain model: patient accounts on a double-entry ledger.
//!
//! Every change to what a patient owes is a [`JournalEntry`] of two or more [`Posting`]s that sum
//! to zero (debits positive, credits negative). An account's balance is never stored; it is the
//! sum of the account's postings on [`LedgerAccount::PatientAr`], so it cannot drift from the
//! ledger.

use chrono::{DateTime, NaiveDate, Utc};
use medbill_domain::{AccountId, ClaimId, JournalEntryId, Money, PaymentPlanId, TenantId};

/// Reports a stored or supplied enum name that is not one of the known values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownValue {
    /// What kind of value was expected.
    pub what: &'static str,
    /// The value found.
    pub value: String,
}

/// Declares a fieldless enum stored by its upper-case name, with `as_str`, `Display` and `FromStr`.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// Returns the name stored in the database and used on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::model::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::model::UnknownValue { what: $what, value: other.to_owned() }),
                }
            }
        }
    };
}

pub(crate) use named_enum;

named_enum! {
    /// Where a patient account stands in the collection cycle.
    AccountStatus, "account status" {
        /// Open for charges and payments; normal statement cycle.
        Open = "OPEN",
        /// The balance is being paid down under a payment plan.
        PaymentPlan = "PAYMENT_PLAN",
        /// Placed with a collection agency.
        InCollections = "IN_COLLECTIONS",
        /// Closed; no further activity expected.
        Closed = "CLOSED",
    }
}

named_enum! {
    /// A general-ledger account that postings debit or credit.
    LedgerAccount, "ledger account" {
        /// What the patient owes the provider (debit balance = patient owes).
        PatientAr = "PATIENT_AR",
        /// What payers owe the provider for the patient's claims.
        InsuranceAr = "INSURANCE_AR",
        /// Money received.
        Cash = "CASH",
        /// Contractual adjustments (CAS group CO) the provider writes off.
        ContractualWriteoff = "CONTRACTUAL_WRITEOFF",
        /// Balances written off as uncollectible.
        BadDebt = "BAD_DEBT",
        /// Balances forgiven under the financial-assistance policy.
        CharityCare = "CHARITY_CARE",
        /// Small leftover balances not worth billing.
        SmallBalanceWriteoff = "SMALL_BALANCE_WRITEOFF",
        /// Balances written off for administrative reasons (e.g. the provider's own error).
        AdministrativeWriteoff = "ADMINISTRATIVE_WRITEOFF",
        /// Overpayments owed back to the patient.
        RefundsPayable = "REFUNDS_PAYABLE",
        /// Discounts granted for paying promptly or in full.
        PromptPayDiscount = "PROMPT_PAY_DISCOUNT",
        /// The self-pay discount taken off a self-pay encounter's charges.
        SelfPayDiscount = "SELF_PAY_DISCOUNT",
        /// Gross charges of self-pay encounters billed to patients.
        PatientServiceRevenue = "PATIENT_SERVICE_REVENUE",
        /// What collection agencies keep of what they collect.
        CollectionAgencyFees = "COLLECTION_AGENCY_FEES",
    }
}

named_enum! {
    /// The business event a journal entry records.
    EntryKind, "journal entry kind" {
        /// Patient responsibility moved onto the account (after adjudication, CAS group PR).
        PatientResponsibility = "PATIENT_RESPONSIBILITY",
        /// A payment from the patient or guarantor.
        Payment = "PAYMENT",
        /// Money returned to the patient.
        Refund = "REFUND",
        /// A balance written off (contractual, small balance, bad debt).
        WriteOff = "WRITE_OFF",
        /// A manual correction.
        Adjustment = "ADJUSTMENT",
        /// Reverses an earlier entry (for example after an 835 claim reversal).
        Reversal = "REVERSAL",
        /// A self-pay encounter's charges, net of the self-pay discount.
        SelfPayCharge = "SELF_PAY_CHARGE",
    }
}

named_enum! {
    /// Who paid: the patient or a third party paying on the patient's behalf.
    PayerType, "payer type" {
        /// The patient.
        Patient = "PATIENT",
        /// The guarantor.
        Guarantor = "GUARANTOR",
        /// An automobile insurer.
        AutoInsurer = "AUTO_INSURER",
        /// A liability insurer.
        LiabilityInsurer = "LIABILITY_INSURER",
        /// A workers' compensation carrier.
        WorkersCompensation = "WORKERS_COMPENSATION",
        /// An attorney (settlement proceeds).
        Attorney = "ATTORNEY",
        /// A charity fund or foundation.
        CharityFund = "CHARITY_FUND",
        /// A collection agency remitting what it collected.
        CollectionAgency = "COLLECTION_AGENCY",
    }
}

named_enum! {
    /// How money was paid in or is paid out.
    PaymentMethod, "payment method" {
        /// Cash.
        Cash = "CASH",
        /// Paper check.
        Check = "CHECK",
        /// Credit or debit card.
        Card = "CARD",
        /// ACH bank transfer.
        Ach = "ACH",
        /// Anything else, described in the reference.
        Other = "OTHER",
    }
}

named_enum! {
    /// Why a balance is written off; each kind has its own ledger account.
    WriteOffKind, "write-off kind" {
        /// Uncollectable.
        BadDebt = "BAD_DEBT",
        /// Financial assistance or charity care.
        CharityCare = "CHARITY_CARE",
        /// A balance too small to bill.
        SmallBalance = "SMALL_BALANCE",
        /// An administrative decision.
        Administrative = "ADMINISTRATIVE",
        /// A discount for paying promptly or in full.
        PromptPayDiscount = "PROMPT_PAY_DISCOUNT",
    }
}

impl WriteOffKind {
    /// Returns the ledger account the written-off amount is debited to.
    pub fn ledger_account(self) -> LedgerAccount {
        match self {
            WriteOffKind::BadDebt => LedgerAccount::BadDebt,
            WriteOffKind::CharityCare => LedgerAccount::CharityCare,
            WriteOffKind::SmallBalance => LedgerAccount::SmallBalanceWriteoff,
            WriteOffKind::Administrative => LedgerAccount::AdministrativeWriteoff,
            WriteOffKind::PromptPayDiscount => LedgerAccount::PromptPayDiscount,
        }
    }
}

/// A patient account as stored, with its balance derived from the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account id (UUID v7).
    pub id: AccountId,
    /// The billing organisation that owns the account.
    pub tenant_id: TenantId,
    /// The EHR's opaque patient id.
    pub patient_ref: String,
    /// The EHR's opaque id of the person responsible for the bill, when not the patient.
    pub guarantor_ref: Option<String>,
    /// Where the account stands in the collection cycle.
    pub status: AccountStatus,
    /// What the patient owes: the sum of the account's `PATIENT_AR` postings (negative = credit).
    pub balance: Money,
    /// When the account was opened.
    pub created_at: DateTime<Utc>,
    /// When the account last changed.
    pub updated_at: DateTime<Utc>,
    /// Where the account stands with statements, plans and dunning.
    pub collection: CollectionState,
}

/// An account's place in the collection cycle, kept on its row by the RPCs that move it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectionState {
    /// Date of the first statement (starts the IRS 501(r) 120-day clock).
    pub first_statement_date: Option<NaiveDate>,
    /// Date of the latest statement.
    pub last_statement_date: Option<NaiveDate>,
    /// The live payment plan (ACTIVE or DELINQUENT), when there is one.
    pub payment_plan: Option<(PaymentPlanId, crate::plans::PlanStatus)>,
}

impl Account {
    /// Returns what is owed back to the patient: the opposite of a negative balance, else zero.
    pub fn credit_balance(&self) -> Money {
        if self.balance.is_negative() {
            -self.balance
        } else {
            Money::ZERO
        }
    }

    /// Returns what the patient owes now: a positive balance, else zero.
    pub fn amount_due(&self) -> Money {
        if self.balance.is_positive() {
            self.balance
        } else {
            Money::ZERO
        }
    }
}

/// The fields of a new account supplied by the caller, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// The EHR's opaque patient id.
    pub patient_ref: String,
    /// The EHR's opaque guarantor id, when not the patient.
    pub guarantor_ref: Option<String>,
}

/// Narrows an account listing; an absent field matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFilter {
    /// Only accounts in this status.
    pub status: Option<AccountStatus>,
    /// Only accounts of this patient.
    pub patient_ref: Option<String>,
}

/// One leg of a journal entry: an amount debited (positive) or credited (negative) to a ledger account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posting {
    /// The ledger account debited or credited.
    pub ledger_account: LedgerAccount,
    /// Debit positive, credit negative; whole cents, never zero.
    pub amount: Money,
    /// The claim the amount belongs to (payment allocation); `None` when unallocated.
    pub claim: Option<ClaimId>,
}

impl Posting {
    /// Builds a posting not tied to a claim.
    pub fn new(ledger_account: LedgerAccount, amount: Money) -> Self {
        Self {
            ledger_account,
            amount,
            claim: None,
        }
    }

    /// Builds a posting tied to `claim` (when there is one).
    pub fn on_claim(ledger_account: LedgerAccount, amount: Money, claim: Option<ClaimId>) -> Self {
        Self {
            ledger_account,
            amount,
            claim,
        }
    }
}

/// A journal entry to post, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJournalEntry {
    /// The patient account the entry belongs to.
    pub account_id: AccountId,
    /// The business event.
    pub kind: EntryKind,
    /// A human note (no PHI).
    pub memo: String,
    /// Id of the record that caused the entry (claim, ERA, payment, ...), when there is one.
    pub source_ref: Option<String>,
    /// Who paid, on payments.
    pub payer_type: Option<PayerType>,
    /// Two or more postings summing to zero.
    pub postings: Vec<Posting>,
}

/// Explains why a journal entry cannot be posted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// Double entry needs at least a debit and a credit.
    #[error("a journal entry needs at least 2 postings, got {count}")]
    TooFewPostings {
        /// Postings supplied.
        count: usize,
    },
    /// A posting of zero moves nothing and is almost certainly a mistake.
    #[error("posting {line} has a zero amount")]
    ZeroPosting {
        /// 1-based position of the posting.
        line: usize,
    },
    /// The ledger is kept in whole cents.
    #[error("posting {line} amount {amount} is not a whole number of cents")]
    FractionalCents {
        /// 1-based position of the posting.
        line: usize,
        /// The amount as given.
        amount: Money,
    },
    /// An amount too large for the ledger's 64-bit cents.
    #[error("posting {line} amount {amount} is too large")]
    Overflow {
        /// 1-based position of the posting.
        line: usize,
        /// The amount as given.
        amount: Money,
    },
    /// Debits and credits differ.
    #[error("journal entry is unbalanced: postings sum to {sum}, not 0.00")]
    Unbalanced {
        /// The sum of the postings.
        sum: Money,
    },
}

impl NewJournalEntry {
    /// Checks the double-entry invariant and returns each posting's amount in cents.
    ///
    /// An entry is postable when it has at least two postings, each a non-zero whole number of
    /// cents, summing to exactly zero.
    pub fn balanced_cents(&self) -> Result<Vec<i64>, LedgerError> {
        if self.postings.len() < 2 {
            return Err(LedgerError::TooFewPostings {
                count: self.postings.len(),
            });
        }
        let mut cents = Vec::with_capacity(self.postings.len());
        let mut sum: i128 = 0;
        for (i, posting) in self.postings.iter().enumerate() {
            let line = i + 1;
            let amount = posting.amount;
            if !amount.is_whole_cents() {
                return Err(LedgerError::FractionalCents { line, amount });
            }
            let c = amount
                .to_minor_units()
                .map_err(|_| LedgerError::Overflow { line, amount })?;
            if c == 0 {
                return Err(LedgerError::ZeroPosting { line });
            }
            sum += i128::from(c);
            cents.push(c);
        }
        if sum != 0 {
            let total: Money = self.postings.iter().map(|p| p.amount).sum();
            return Err(LedgerError::Unbalanced { sum: total });
        }
        Ok(cents)
    }
}

/// A posted journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// The entry id (UUID v7).
    pub id: JournalEntryId,
    /// The billing organisation that owns the entry.
    pub tenant_id: TenantId,
    /// The patient account the entry belongs to.
    pub account_id: AccountId,
    /// The business event.
    pub kind: EntryKind,
    /// A human note (no PHI).
    pub memo: String,
    /// Id of the record that caused the entry, when there is one.
    pub source_ref: Option<String>,
    /// When the entry was posted.
    pub posted_at: DateTime<Utc>,
    /// The caller's idempotency key, when the entry was posted on request.
    pub idempotency_key: Option<String>,
    /// Who paid, on payments.
    pub payer_type: Option<PayerType>,
    /// The postings, in the order given.
    pub postings: Vec<Posting>,
}

impl JournalEntry {
    /// Returns the entry's net change of the patient balance (its `PATIENT_AR` postings).
    pub fn balance_change(&self) -> Money {
        self.postings
            .iter()
            .filter(|p| p.ledger_account == LedgerAccount::PatientAr)
            .map(|p| p.amount)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(amounts: &[(LedgerAccount, &str)]) -> NewJournalEntry {
        NewJournalEntry {
            account_id: AccountId::new(),
            kind: EntryKind::Payment,
            memo: String::new(),
            source_ref: None,
            payer_type: None,
            postings: amounts
                .iter()
                .map(|(ledger_account, a)| Posting::new(*ledger_account, Money::parse(a).unwrap()))
                .collect(),
        }
    }

    #[test]
    fn enum_names_round_trip() {
        for s in AccountStatus::ALL {
            assert_eq!(s.as_str().parse::<AccountStatus>(), Ok(*s));
        }
        for l in LedgerAccount::ALL {
            assert_eq!(l.as_str().parse::<LedgerAccount>(), Ok(*l));
        }
        for k in EntryKind::ALL {
            assert_eq!(k.as_str().parse::<EntryKind>(), Ok(*k));
        }
        assert_eq!(
            "open".parse::<AccountStatus>().unwrap_err().what,
            "account status"
        );
    }

    #[test]
    fn a_balanced_entry_yields_its_cents() {
        let e = entry(&[
            (LedgerAccount::Cash, "25.10"),
            (LedgerAccount::PatientAr, "-20.00"),
            (LedgerAccount::PatientAr, "-5.1"),
        ]);
        assert_eq!(e.balanced_cents(), Ok(vec![2510, -2000, -510]));
    }

    #[test]
    fn an_unbalanced_entry_reports_its_sum() {
        let e = entry(&[
            (LedgerAccount::Cash, "25.00"),
            (LedgerAccount::PatientAr, "-24.99"),
        ]);
        assert_eq!(
            e.balanced_cents(),
            Err(LedgerError::Unbalanced {
                sum: Money::parse("0.01").unwrap()
            })
        );
    }

    #[test]
    fn degenerate_entries_are_rejected() {
        assert_eq!(
            entry(&[(LedgerAccount::Cash, "0.00")]).balanced_cents(),
            Err(LedgerError::TooFewPostings { count: 1 })
        );
        assert_eq!(
            entry(&[
                (LedgerAccount::Cash, "0.00"),
                (LedgerAccount::PatientAr, "0")
            ])
            .balanced_cents(),
            Err(LedgerError::ZeroPosting { line: 1 })
        );
        let mut e = entry(&[
            (LedgerAccount::Cash, "1.00"),
            (LedgerAccount::PatientAr, "-1.00"),
        ]);
        e.postings[1].amount = Money::from_decimal(rust_decimal::Decimal::new(-1005, 3));
        assert!(matches!(
            e.balanced_cents(),
            Err(LedgerError::FractionalCents { line: 2, .. })
        ));
    }
}
