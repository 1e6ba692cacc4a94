//! Agency placement: the IRS 501(r) guard (enforced here, in the code that places accounts),
//! the placement record and the agency's placement file, and PlaceWithAgency /
//! RecallPlacement ([`rpc`]).

pub(crate) mod rpc;

use chrono::{Days, NaiveDate};
use medbill_domain::{AccountId, AgencyPlacementId, Money};

use crate::model::named_enum;

/// Days after the first post-discharge statement before an extraordinary collection action.
pub const NOTIFICATION_PERIOD_DAYS: u64 = 120;
/// Days the written notice must precede an extraordinary collection action.
pub const NOTICE_DAYS: u64 = 30;

/// What the 501(r) guard looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardInput {
    /// The tenant is bound by 501(r).
    pub applies: bool,
    /// The first post-discharge statement's date.
    pub first_statement: Option<NaiveDate>,
    /// The written final notice's date.
    pub final_notice: Option<NaiveDate>,
    /// A financial assistance application is pending.
    pub financial_assistance_pending: bool,
    /// The day of the action.
    pub today: NaiveDate,
}

/// The guard's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardResult {
    /// Whether an extraordinary collection action may start today.
    pub allowed: bool,
    /// The first date it may, when the statement and the notice are known.
    pub earliest: Option<NaiveDate>,
    /// Days since the first statement.
    pub days_since_first_statement: u32,
    /// Every unmet rule, in plain words naming the rule and its date.
    pub violations: Vec<String>,
}

/// Checks the IRS 501(r) rules for an extraordinary collection action (agency placement):
/// not before 120 days after the first post-discharge statement, not without a written notice
/// at least 30 days before, never while a financial assistance application is pending.
pub fn guard(input: &GuardInput) -> GuardResult {
    let after_statement = input
        .first_statement
        .map(|d| d + Days::new(NOTIFICATION_PERIOD_DAYS));
    let after_notice = input.final_notice.map(|d| d + Days::new(NOTICE_DAYS));
    let earliest = match (after_statement, after_notice) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    };
    let days_since_first_statement = input
        .first_statement
        .map(|d| u32::try_from((input.today - d).num_days().max(0)).unwrap_or(u32::MAX))
        .unwrap_or(0);
    let mut violations = Vec::new();
    if input.applies {
        match after_statement {
            None => violations.push(
                "IRS 501(r): no extraordinary collection action before 120 days after the first \
                 post-discharge statement, and no statement has been sent"
                    .to_owned(),
            ),
            Some(date) if input.today < date => violations.push(format!(
                "IRS 501(r): no extraordinary collection action before 120 days after the first \
                 post-discharge statement of {}: allowed from {date}",
                input
                    .first_statement
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            )),
            Some(_) => {}
        }
        match after_notice {
            None => violations.push(
                "IRS 501(r): a written notice must be sent at least 30 days before an \
                 extraordinary collection action, and no final notice has been sent"
                    .to_owned(),
            ),
            Some(date) if input.today < date => violations.push(format!(
                "IRS 501(r): the written final notice of {} must precede an extraordinary \
                 collection action by 30 days: allowed from {date}",
                input
                    .final_notice
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            )),
            Some(_) => {}
        }
        if input.financial_assistance_pending {
            violations.push(
                "IRS 501(r): no extraordinary collection action while a financial assistance \
                 application is pending"
                    .to_owned(),
            );
        }
    }
    GuardResult {
        allowed: violations.is_empty(),
        earliest,
        days_since_first_statement,
        violations,
    }
}

named_enum! {
    /// Where a placement stands.
    PlacementStatus, "placement status" {
        /// At the agency.
        Placed = "PLACED",
        /// Taken back from the agency.
        Recalled = "RECALLED",
        /// Closed by the agency.
        Closed = "CLOSED",
    }
}

/// An account placed with an agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The placement id.
    pub id: AgencyPlacementId,
    /// The account.
    pub account_id: AccountId,
    /// The agency, as configured.
    pub agency_id: String,
    /// The balance placed.
    pub amount: Money,
    /// Where it stands.
    pub status: PlacementStatus,
    /// The agency may report to credit bureaus.
    pub credit_reporting: bool,
    /// The day it was placed.
    pub placed_on: NaiveDate,
    /// The day it was recalled.
    pub recalled_on: Option<NaiveDate>,
    /// Why it was recalled.
    pub recall_reason: Option<String>,
    /// When it was recorded.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The header of the agency placement file (CSV, RFC 4180; layout in docs/collections.md).
pub const PLACEMENT_FILE_HEADER: &str = "layout,placement_id,account_id,patient_ref,guarantor_ref,\
placed_on,amount,credit_reporting,first_statement_date,final_notice_date,oldest_charge_days";

/// The placement file the agency receives: its header and the placement's row.
pub fn placement_file(
    p: &Placement,
    patient_ref: &str,
    guarantor_ref: &str,
    first_statement: Option<NaiveDate>,
    final_notice: Option<NaiveDate>,
    oldest_charge_days: u32,
) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    let date = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    format!(
        "{PLACEMENT_FILE_HEADER}\r\nmedbill.placement.v1,{},{},{},{},{},{},{},{},{},{}\r\n",
        p.id,
        p.account_id,
        field(patient_ref),
        field(guarantor_ref),
        p.placed_on,
        p.amount,
        p.credit_reporting,
        date(first_statement),
        date(final_notice),
        oldest_charge_days
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2027, 1, 1).unwrap_or_default() + Days::new(n)
    }

    #[test]
    fn the_guard_names_each_rule_and_its_date() {
        let mut input = GuardInput {
            applies: true,
            first_statement: Some(d(0)),
            final_notice: Some(d(60)),
            financial_assistance_pending: false,
            today: d(119),
        };
        let early = guard(&input);
        assert!(!early.allowed);
        assert_eq!(early.earliest, Some(d(120)));
        assert_eq!(early.violations.len(), 1);
        assert!(
            early.violations[0].contains(&format!("allowed from {}", d(120))),
            "{early:?}"
        );
        input.today = d(120);
        assert!(guard(&input).allowed);
        input.final_notice = Some(d(100));
        let late_notice = guard(&input);
        assert_eq!(late_notice.earliest, Some(d(130)));
        assert!(
            late_notice.violations[0].contains("30 days"),
            "{late_notice:?}"
        );
        input.final_notice = None;
        input.financial_assistance_pending = true;
        assert_eq!(guard(&input).violations.len(), 2);
        input.applies = false;
        assert!(guard(&input).allowed, "a for-profit tenant");
    }
}
