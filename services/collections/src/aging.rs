//! Aging of what a patient owes, from the ledger: each `PATIENT_AR` debit (a charge) ages from
//! the day it was posted; credits (payments, adjustments, write-offs) pay the oldest charges
//! first, the way a billing office applies unallocated patient payments. What remains of each
//! charge falls into its age bucket. A credit balance owes nothing, so every bucket is zero.

use chrono::NaiveDate;
use medbill_domain::Money;

use crate::model::{JournalEntry, LedgerAccount};

/// What is owed by age, in days since the charge was posted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Aging {
    /// 0 to 30 days.
    pub days_0_30: Money,
    /// 31 to 60 days.
    pub days_31_60: Money,
    /// 61 to 90 days.
    pub days_61_90: Money,
    /// 91 to 120 days.
    pub days_91_120: Money,
    /// More than 120 days.
    pub days_over_120: Money,
}

impl Aging {
    /// Returns the sum of the buckets.
    pub fn total(&self) -> Money {
        self.days_0_30 + self.days_31_60 + self.days_61_90 + self.days_91_120 + self.days_over_120
    }

    fn add(&mut self, age_days: i64, amount: Money) {
        let bucket = match age_days {
            ..=30 => &mut self.days_0_30,
            31..=60 => &mut self.days_31_60,
            61..=90 => &mut self.days_61_90,
            91..=120 => &mut self.days_91_120,
            _ => &mut self.days_over_120,
        };
        *bucket += amount;
    }
}

/// Ages an account's ledger as of `today` (entries in any order; those posted after `today`
/// are left out, so a past date shows the ledger as it stood then). Days are UTC calendar days,
/// as in the aging report's SQL.
pub fn age(entries: &[JournalEntry], today: NaiveDate) -> Aging {
    let mut charges: Vec<(NaiveDate, Money)> = Vec::new();
    let mut credits = Money::ZERO;
    for entry in entries {
        let day = entry.posted_at.date_naive();
        if day > today {
            continue;
        }
        for posting in entry
            .postings
            .iter()
            .filter(|p| p.ledger_account == LedgerAccount::PatientAr)
        {
            if posting.amount > Money::ZERO {
                charges.push((day, posting.amount));
            } else {
                credits -= posting.amount;
            }
        }
    }
    charges.sort_by_key(|(day, _)| *day);
    let mut aging = Aging::default();
    for (day, amount) in charges {
        let applied = if credits >= amount { amount } else { credits };
        credits -= applied;
        let open = amount - applied;
        if open > Money::ZERO {
            aging.add((today - day).num_days(), open);
        }
    }
    aging
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use medbill_domain::{AccountId, JournalEntryId, TenantId};

    use super::*;
    use crate::model::{EntryKind, Posting};

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn entry(day: u32, month: u32, ar: &str) -> JournalEntry {
        let amount = m(ar);
        JournalEntry {
            id: JournalEntryId::new(),
            tenant_id: TenantId::parse("t").unwrap(),
            account_id: AccountId::new(),
            kind: EntryKind::Adjustment,
            memo: String::new(),
            source_ref: None,
            posted_at: Utc.with_ymd_and_hms(2026, month, day, 12, 0, 0).unwrap(),
            idempotency_key: None,
            payer_type: None,
            postings: vec![
                Posting::new(LedgerAccount::PatientAr, amount),
                Posting::new(LedgerAccount::Cash, Money::ZERO - amount),
            ],
        }
    }

    #[test]
    fn payments_retire_the_oldest_charges_first() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
        let ledger = [
            entry(1, 2, "100.00"),   // 149 days
            entry(15, 4, "50.00"),   // 76 days
            entry(20, 6, "30.00"),   // 10 days
            entry(25, 6, "-120.00"), // a payment
        ];
        let aging = age(&ledger, today);
        assert_eq!(aging.days_over_120, Money::ZERO, "paid first");
        assert_eq!(aging.days_61_90, m("30.00"), "20.00 of it paid");
        assert_eq!(aging.days_0_30, m("30.00"));
        assert_eq!(aging.total(), m("60.00"), "the balance: 180.00 - 120.00");
    }

    #[test]
    fn buckets_have_their_edges_and_a_credit_balance_owes_nothing() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
        let ledger = [
            entry(31, 5, "1.00"),
            entry(30, 5, "2.00"),
            entry(2, 3, "4.00"),
            entry(1, 3, "8.00"),
        ];
        let aging = age(&ledger, today);
        assert_eq!(aging.days_0_30, m("1.00"), "30 days old");
        assert_eq!(aging.days_31_60, m("2.00"), "31 days old");
        assert_eq!(aging.days_91_120, m("4.00"), "120 days old");
        assert_eq!(aging.days_over_120, m("8.00"), "121 days old");
        let credit = age(&[entry(1, 6, "10.00"), entry(2, 6, "-25.00")], today);
        assert_eq!(credit, Aging::default());
        let later = age(&[entry(1, 6, "10.00"), entry(1, 7, "-10.00")], today);
        assert_eq!(
            later.days_0_30,
            m("10.00"),
            "a payment after the date is left out"
        );
    }
}
