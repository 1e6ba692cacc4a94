//! Insurance A/R aging: what payers still owe, by age.
//!
//! - **What is unpaid**: claims SUBMITTED or ACCEPTED, at their total charge. A claim the payer has
//!   adjudicated (PAID, PARTIALLY_PAID, DENIED) is finished from the payer's side: what is left is
//!   the patient's share, a write-off or an appeal, none of which the payer owes now, so a partial
//!   payment's remainder is left out. Claims not yet sent (DRAFT, HELD, READY) are work in
//!   progress, not receivables; REJECTED claims were never accepted by the payer; VOID is void.
//! - **Age**: days from the claim's first date of service to the as-of date (the date the payer's
//!   timely-filing and prompt-pay clocks use, and known for every claim, sent or not). Claims whose
//!   service starts after the as-of date are left out.
//! - **Buckets**: 0-30, 31-60, 61-90, 91-120 and over 120 days.
//!
//! The statuses are today's: the report ages today's open claims to the as-of date, it does not
//! rebuild the books of a past day.

pub(crate) mod rpc;

use chrono::{Days, NaiveDate};
use medbill_domain::Money;

/// The buckets as (min days, max days); `None` for the open-ended last one.
pub const BUCKETS: [(u32, Option<u32>); 5] = [
    (0, Some(30)),
    (31, Some(60)),
    (61, Some(90)),
    (91, Some(120)),
    (121, None),
];

/// One bucket's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BucketTotal {
    /// Unpaid balance.
    pub balance: Money,
    /// Claims in the bucket.
    pub claims: u64,
}

/// One payer's aged balances, the buckets in [`BUCKETS`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayerAging {
    /// Payer identifier.
    pub payer_id: String,
    /// Figures per bucket.
    pub buckets: [BucketTotal; 5],
}

impl PayerAging {
    /// Returns the sum over the buckets.
    pub fn total(&self) -> BucketTotal {
        self.buckets
            .iter()
            .fold(BucketTotal::default(), |acc, b| BucketTotal {
                balance: acc.balance + b.balance,
                claims: acc.claims + b.claims,
            })
    }
}

/// The earliest service date of each bucket but the last, youngest first: a claim whose first date
/// of service is on or after `bounds[i]` (and before `bounds[i-1]`'s bucket) is in bucket `i`.
/// `None` when the as-of date is too early for the calendar.
pub fn bucket_bounds(as_of: NaiveDate) -> Option<[NaiveDate; 4]> {
    let back = |days: u64| as_of.checked_sub_days(Days::new(days));
    Some([back(30)?, back(60)?, back(90)?, back(120)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_the_last_day_of_each_bucket() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let b = bucket_bounds(d("2026-06-30")).unwrap();
        // 30 days old (2026-05-31) is still 0-30; 31 days old (2026-05-30) is 31-60.
        assert_eq!(
            b,
            [
                d("2026-05-31"),
                d("2026-05-01"),
                d("2026-04-01"),
                d("2026-03-02")
            ]
        );
    }
}
