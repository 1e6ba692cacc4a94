//! Dunning: the cadence of stages an unpaid account moves through by days since its first
//! statement, the holds that stop it (a plan in good standing, a pending financial assistance
//! application, a dispute), small balances written off, and RunDunning / SetAccountHolds
//! ([`rpc`]).

pub(crate) mod rpc;

use chrono::NaiveDate;

use crate::settings::DunningStage;

/// An account's dunning state as stored (an account never dunned has the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DunningState {
    /// 0 before the first stage, else the 1-based position of the stage reached.
    pub stage: u32,
    /// When that stage was reached.
    pub stage_date: Option<NaiveDate>,
    /// When the written final notice was sent (501(r): at least 30 days before an
    /// extraordinary collection action).
    pub final_notice_date: Option<NaiveDate>,
    /// The as-of date of the last run that evaluated the account.
    pub last_run_date: Option<NaiveDate>,
    /// A financial assistance application is pending.
    pub financial_assistance_pending: bool,
    /// The patient disputes the bill.
    pub disputed: bool,
}

/// What the cadence asks for an account, before holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The account has had no statement: send the first (it starts the clock).
    FirstStatement,
    /// Move to the stage at this 0-based position.
    Advance(usize),
    /// Nothing due now.
    Wait {
        /// Why, in plain words.
        reason: String,
    },
}

/// Decides the next step: one stage at a time (no stage is skipped, so the final notice always
/// precedes agency eligibility), when its `after_days` since the first statement have passed.
pub fn next_step(
    stages: &[DunningStage],
    state: &DunningState,
    first_statement: Option<NaiveDate>,
    as_of: NaiveDate,
) -> Step {
    let Some(first) = first_statement else {
        return Step::FirstStatement;
    };
    let days = (as_of - first).num_days();
    let reached = usize::try_from(state.stage).unwrap_or(usize::MAX);
    match stages.get(reached) {
        None => Step::Wait {
            reason: format!("the last stage is reached, {days} days since the first statement"),
        },
        Some(next) if days >= i64::from(next.after_days) => Step::Advance(reached),
        Some(next) => Step::Wait {
            reason: format!(
                "{days} days since the first statement; \"{}\" is due at {} days",
                next.name, next.after_days
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::DunningSettings;

    #[test]
    fn stages_advance_one_at_a_time_by_days_since_the_first_statement() {
        let stages = DunningSettings::default().stages;
        let d =
            |n: u64| NaiveDate::from_ymd_opt(2027, 1, 1).unwrap_or_default() + chrono::Days::new(n);
        let mut state = DunningState::default();
        assert_eq!(next_step(&stages, &state, None, d(0)), Step::FirstStatement);
        assert_eq!(
            next_step(&stages, &state, Some(d(0)), d(0)),
            Step::Advance(0)
        );
        state.stage = 1;
        assert!(matches!(
            next_step(&stages, &state, Some(d(0)), d(29)),
            Step::Wait { .. }
        ));
        assert_eq!(
            next_step(&stages, &state, Some(d(0)), d(200)),
            Step::Advance(1),
            "one at a time"
        );
        state.stage = 4;
        assert!(matches!(
            next_step(&stages, &state, Some(d(0)), d(200)),
            Step::Wait { .. }
        ));
    }
}
