//! Payment plans: the installment schedule (made here, pure), payments applied to it, the
//! plan's standing as of a date (missed installments past the grace period make it DELINQUENT,
//! then DEFAULTED), and the RPCs ([`rpc`]: CreatePaymentPlan, GetPaymentPlan,
//! CancelPaymentPlan).
//!
//! The schedule and the ledger never disagree: a plan covers the whole balance owed when it is
//! made, each payment to the account is applied to the installments in the transaction that
//! posts it, and when the balance falls below what the plan still expects (a write-off, an
//! insurer's reversal) the schedule is cut back from its last installment.

pub(crate) mod rpc;

use chrono::{DateTime, Days, Months, NaiveDate, Utc};
use medbill_domain::{AccountId, Money, PaymentPlanId};

use crate::model::named_enum;

named_enum! {
    /// Where a payment plan stands.
    PlanStatus, "payment plan status" {
        /// Installments are being paid on time.
        Active = "ACTIVE",
        /// An installment is past due beyond the grace period.
        Delinquent = "DELINQUENT",
        /// Paid in full.
        Completed = "COMPLETED",
        /// Too many installments missed; dunning resumes.
        Defaulted = "DEFAULTED",
        /// Cancelled.
        Cancelled = "CANCELLED",
    }
}

/// An account's live plan (ACTIVE or DELINQUENT) and its status, `None` when it has none: what
/// the account's row shows after a payment or credit settled the plan.
pub type LivePlan = Option<(PaymentPlanId, PlanStatus)>;

impl PlanStatus {
    /// Returns whether the plan still governs the account (it keeps it out of dunning).
    pub fn is_live(self) -> bool {
        matches!(self, PlanStatus::Active | PlanStatus::Delinquent)
    }
}

named_enum! {
    /// How often installments fall due.
    Frequency, "installment frequency" {
        /// Every 7 days.
        Weekly = "WEEKLY",
        /// Every 14 days.
        Biweekly = "BIWEEKLY",
        /// Every month on the first due date's day (or the month's last day).
        Monthly = "MONTHLY",
    }
}

/// One installment and what was paid toward it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installment {
    /// 1-based position.
    pub sequence: u32,
    /// When it is due.
    pub due_date: NaiveDate,
    /// What is due.
    pub amount: Money,
    /// What was paid toward it.
    pub paid: Money,
}

impl Installment {
    /// Returns what is still owed on it.
    pub fn open(&self) -> Money {
        self.amount - self.paid
    }
}

/// A payment plan with its schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The plan id.
    pub id: PaymentPlanId,
    /// The account.
    pub account_id: AccountId,
    /// Its status as stored.
    pub status: PlanStatus,
    /// What the plan covered when made.
    pub total: Money,
    /// The regular installment.
    pub installment_amount: Money,
    /// How often installments fall due.
    pub frequency: Frequency,
    /// The schedule, in order.
    pub installments: Vec<Installment>,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Plan {
    /// Returns what the plan still expects.
    pub fn remaining(&self) -> Money {
        self.installments.iter().map(Installment::open).sum()
    }

    /// Returns the installments not paid in full whose grace period ended before `as_of`.
    pub fn missed(&self, as_of: NaiveDate, grace_days: u32) -> u32 {
        let missed = self
            .installments
            .iter()
            .filter(|i| {
                i.open().is_positive() && i.due_date + Days::new(u64::from(grace_days)) < as_of
            })
            .count();
        u32::try_from(missed).unwrap_or(u32::MAX)
    }

    /// Returns the first installment not paid in full.
    pub fn next_due(&self) -> Option<&Installment> {
        self.installments.iter().find(|i| i.open().is_positive())
    }

    /// Returns what is due by `date`: every installment due then or before, not yet paid.
    pub fn due_by(&self, date: NaiveDate) -> Money {
        self.installments
            .iter()
            .filter(|i| i.due_date <= date)
            .map(Installment::open)
            .sum()
    }
}

/// Why a schedule cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Fewer than two installments.
    #[error("installment_count must be at least 2, got {0}")]
    TooFewInstallments(u32),
    /// More installments than allowed.
    #[error("the plan would take {count} installments, more than the {max} allowed")]
    TooManyInstallments {
        /// Installments the terms give.
        count: u64,
        /// The configured maximum.
        max: u32,
    },
    /// An installment below the configured minimum.
    #[error("installment {installment} is below the minimum installment {minimum}")]
    BelowMinimum {
        /// The installment the terms give.
        installment: Money,
        /// The configured minimum.
        minimum: Money,
    },
    /// A date past the calendar's end.
    #[error("the schedule runs past the calendar")]
    OutOfRange,
}

/// How a plan is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terms {
    /// This many installments.
    Count(u32),
    /// Installments of this amount (the last takes the remainder).
    Amount(Money),
}

/// Makes the schedule paying `total` (whole cents, positive) on `terms` from `first_due`:
/// equal installments in whole cents, the last absorbing the remainder.
pub fn schedule(
    total: Money,
    terms: Terms,
    frequency: Frequency,
    first_due: NaiveDate,
    minimum: Money,
    max_installments: u32,
) -> Result<(Money, Vec<Installment>), ScheduleError> {
    let total_cents = total
        .to_minor_units()
        .map_err(|_| ScheduleError::OutOfRange)?;
    let (count, installment_cents) = match terms {
        Terms::Count(n) if n < 2 => return Err(ScheduleError::TooFewInstallments(n)),
        Terms::Count(n) => (u64::from(n), total_cents / i64::from(n)),
        Terms::Amount(a) => {
            let cents = a
                .to_minor_units()
                .map_err(|_| ScheduleError::OutOfRange)?
                .max(1);
            let count = (total_cents + cents - 1) / cents;
            (
                u64::try_from(count).unwrap_or(u64::MAX),
                cents.min(total_cents),
            )
        }
    };
    if count > u64::from(max_installments) {
        return Err(ScheduleError::TooManyInstallments {
            count,
            max: max_installments,
        });
    }
    let installment = Money::from_minor_units(installment_cents);
    // A plan paid off in one short installment is still a plan; only a regular installment
    // below the minimum is refused (the last takes whatever remains).
    if installment < minimum && total >= minimum {
        return Err(ScheduleError::BelowMinimum {
            installment,
            minimum,
        });
    }
    let mut installments = Vec::new();
    let mut left = total_cents;
    for i in 0..count {
        let n = u32::try_from(i).map_err(|_| ScheduleError::OutOfRange)?;
        let due_date = match frequency {
            Frequency::Weekly => first_due.checked_add_days(Days::new(7 * i)),
            Frequency::Biweekly => first_due.checked_add_days(Days::new(14 * i)),
            Frequency::Monthly => first_due.checked_add_months(Months::new(n)),
        }
        .ok_or(ScheduleError::OutOfRange)?;
        let cents = if i + 1 == count {
            left
        } else {
            installment_cents.min(left)
        };
        left -= cents;
        installments.push(Installment {
            sequence: n + 1,
            due_date,
            amount: Money::from_minor_units(cents),
            paid: Money::ZERO,
        });
    }
    Ok((installment, installments))
}

/// Applies a payment of `amount` to the installments in order; returns the installments it
/// paid toward (their state after) and what was left over (beyond the plan).
pub fn apply_payment(installments: &mut [Installment], amount: Money) -> (Vec<Installment>, Money) {
    let mut left = amount;
    let mut touched = Vec::new();
    for i in installments.iter_mut() {
        if !left.is_positive() {
            break;
        }
        let open = i.open();
        if !open.is_positive() {
            continue;
        }
        let part = if open < left { open } else { left };
        i.paid += part;
        left -= part;
        touched.push(*i);
    }
    (touched, left)
}

/// Cuts the schedule back from its last installment until it expects no more than `owed`;
/// returns whether anything changed.
pub fn cut_to(installments: &mut [Installment], owed: Money) -> bool {
    let expected: Money = installments.iter().map(Installment::open).sum();
    let mut excess = expected
        - if owed.is_positive() {
            owed
        } else {
            Money::ZERO
        };
    let mut changed = false;
    for i in installments.iter_mut().rev() {
        if !excess.is_positive() {
            break;
        }
        let open = i.open();
        let cut = if open < excess { open } else { excess };
        if cut.is_positive() {
            i.amount -= cut;
            excess -= cut;
            changed = true;
        }
    }
    changed
}

/// The plan's status as of `as_of`: COMPLETED when nothing is left, DEFAULTED once
/// `default_after` installments are missed, DELINQUENT with fewer, else ACTIVE. A plan no
/// longer live keeps its status.
pub fn standing(plan: &Plan, as_of: NaiveDate, grace_days: u32, default_after: u32) -> PlanStatus {
    if !plan.status.is_live() {
        return plan.status;
    }
    if !plan.remaining().is_positive() {
        return PlanStatus::Completed;
    }
    match plan.missed(as_of, grace_days) {
        0 => PlanStatus::Active,
        n if n >= default_after => PlanStatus::Defaulted,
        _ => PlanStatus::Delinquent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn d(y: i32, mo: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, mo, day).unwrap_or_default()
    }

    #[test]
    fn schedules_split_in_cents_and_the_last_takes_the_remainder() {
        let (each, s) = schedule(
            m("100.00"),
            Terms::Count(3),
            Frequency::Monthly,
            d(2027, 1, 31),
            m("25.00"),
            60,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(each, m("33.33"));
        let amounts: Vec<Money> = s.iter().map(|i| i.amount).collect();
        assert_eq!(amounts, vec![m("33.33"), m("33.33"), m("33.34")]);
        assert_eq!(s[1].due_date, d(2027, 2, 28), "the month's last day");
        let (_, s) = schedule(
            m("100.00"),
            Terms::Amount(m("40.00")),
            Frequency::Biweekly,
            d(2027, 1, 1),
            m("25.00"),
            60,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.iter().map(|i| i.amount).collect::<Vec<_>>(),
            vec![m("40.00"), m("40.00"), m("20.00")]
        );
        assert_eq!(s[2].due_date, d(2027, 1, 29));
        assert!(matches!(
            schedule(
                m("100.00"),
                Terms::Count(10),
                Frequency::Weekly,
                d(2027, 1, 1),
                m("25.00"),
                60
            ),
            Err(ScheduleError::BelowMinimum { .. })
        ));
        assert!(matches!(
            schedule(
                m("100.00"),
                Terms::Count(1),
                Frequency::Weekly,
                d(2027, 1, 1),
                m("25.00"),
                60
            ),
            Err(ScheduleError::TooFewInstallments(1))
        ));
        assert!(matches!(
            schedule(
                m("1000.00"),
                Terms::Amount(m("10.00")),
                Frequency::Weekly,
                d(2027, 1, 1),
                m("5.00"),
                60
            ),
            Err(ScheduleError::TooManyInstallments {
                count: 100,
                max: 60
            })
        ));
    }

    #[test]
    fn payments_fill_installments_in_order_and_misses_count_after_grace() {
        let (each, installments) = schedule(
            m("90.00"),
            Terms::Count(3),
            Frequency::Monthly,
            d(2027, 1, 1),
            m("25.00"),
            60,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut plan = Plan {
            id: PaymentPlanId::new(),
            account_id: AccountId::new(),
            status: PlanStatus::Active,
            total: m("90.00"),
            installment_amount: each,
            frequency: Frequency::Monthly,
            installments,
            cancel_reason: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let (touched, left) = apply_payment(&mut plan.installments, m("40.00"));
        assert_eq!(touched.len(), 2);
        assert_eq!(left, Money::ZERO);
        assert_eq!(plan.installments[1].paid, m("10.00"));
        assert_eq!(
            standing(&plan, d(2027, 2, 10), 10, 2),
            PlanStatus::Active,
            "within grace"
        );
        assert_eq!(
            standing(&plan, d(2027, 2, 12), 10, 2),
            PlanStatus::Delinquent
        );
        assert_eq!(
            standing(&plan, d(2027, 3, 12), 10, 2),
            PlanStatus::Defaulted
        );
        assert!(cut_to(&mut plan.installments, m("30.00")));
        assert_eq!(plan.remaining(), m("30.00"), "the ledger owes 30.00 now");
        let (_, left) = apply_payment(&mut plan.installments, m("35.00"));
        assert_eq!(left, m("5.00"), "beyond the plan");
        assert_eq!(standing(&plan, d(2027, 9, 1), 10, 2), PlanStatus::Completed);
    }
}
