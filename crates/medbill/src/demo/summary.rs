//! The day's summary for a billing manager. Every figure is read back from the services' own
//! RPCs after the run (claims, denials, ledgers, aging), never from the driver's own counts,
//! so the summary is what the suite reports.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use anyhow::Context;
use medbill_proto::claims::v1 as claims;
use medbill_proto::collections::v1 as coll;
use medbill_proto::common::v1 as common;
use medbill_proto::remittance::v1 as remit;
use rust_decimal::Decimal;

use super::cycle::{self, Clients, Record, StageTiming, decimal};
use super::hospital::Hospital;

/// The summary of one run (also written as JSON with `--json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// The hospital's seed.
    pub seed: u64,
    /// Encounters of the day.
    pub encounters: usize,
    /// The day of service.
    pub day: String,
    /// Encounters by scenario.
    pub scenarios: BTreeMap<String, u64>,
    /// Eligibility answers by the coverage status of the 271.
    pub eligibility: BTreeMap<String, u64>,
    /// Prior authorizations by status.
    pub prior_authorizations: BTreeMap<String, u64>,
    /// The claims.
    pub claims: ClaimFigures,
    /// The denial worklist of the run.
    pub denials: DenialFigures,
    /// Dollars through the cycle.
    pub dollars: Dollars,
    /// Patient A/R aging, as the collections service reports it for the whole tenant.
    pub patient_aging: Aging,
    /// Mean days from the date of service to the payer's payment date, over paid claims.
    pub mean_days_to_payment: String,
    /// What the patients with an amount due did after their statement.
    pub patient_choices: BTreeMap<String, u64>,
    /// Each stage's time.
    pub stages: Vec<StageTiming>,
}

/// Claim figures.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ClaimFigures {
    /// Claims created.
    pub created: u64,
    /// Claims CreateClaim refused, by gRPC code.
    pub refused_at_intake: BTreeMap<String, u64>,
    /// Claims by status.
    pub by_status: BTreeMap<String, u64>,
    /// Error findings of the claims the scrub held, by edit code.
    pub held_by_edit: BTreeMap<String, u64>,
    /// Claims that reached the payer.
    pub submitted: u64,
    /// Of those, accepted on their first submission (not rejected by the 999 / 277CA).
    pub accepted_first_pass: u64,
    /// accepted_first_pass / submitted, in percent with one decimal.
    pub first_pass_acceptance_rate: String,
    /// Secondary (COB) claims the suite made after a primary's payment left a balance.
    pub secondary_claims: u64,
}

/// The denial worklist items the run's ERAs made.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DenialFigures {
    /// Work items.
    pub total: u32,
    /// Counts and amounts by CARC, with its text.
    pub by_reason: Vec<DenialLine>,
}

/// One reason of the denial worklist.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DenialLine {
    /// Group and CARC, as the worklist keys it.
    pub reason: String,
    /// The CARC's text.
    pub description: String,
    /// Items.
    pub count: u32,
    /// Amount denied.
    pub amount: String,
}

/// Dollar figures (decimal strings).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Dollars {
    /// Total charges of the claims created (CLM02).
    pub charged: String,
    /// Allowed by the payers (AMT*B6 of the paid lines).
    pub allowed: String,
    /// Paid by insurance (CLP04).
    pub paid_by_insurance: String,
    /// What the payers said the patients owe (CLP05).
    pub patient_responsibility: String,
    /// Self-pay encounters billed to patients, after the self-pay discount.
    pub self_pay_billed: String,
    /// Collected from patients.
    pub collected: String,
    /// Written off (financial assistance and other write-offs).
    pub written_off: String,
    /// Still owed by the run's patients (their account balances).
    pub owed_by_patients: String,
}

/// Aging buckets (decimal strings).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Aging {
    /// Accounts with a balance.
    pub accounts: u32,
    /// 0-30 days.
    pub days_0_30: String,
    /// 31-60 days.
    pub days_31_60: String,
    /// 61-90 days.
    pub days_61_90: String,
    /// 91-120 days.
    pub days_91_120: String,
    /// Over 120 days.
    pub days_over_120: String,
    /// All.
    pub total: String,
}

/// Reads the run's figures back from the services.
///
/// # Errors
/// A read RPC fails.
pub async fn collect(
    hospital: &Hospital,
    record: &Record,
    clients: &Clients,
) -> anyhow::Result<Summary> {
    let claims = cycle::claims_by_control_number(clients, &record.control_numbers).await?;
    let mut figures = ClaimFigures {
        created: claims.len() as u64,
        refused_at_intake: record.refused_at_intake.clone(),
        ..ClaimFigures::default()
    };
    let (mut charged, mut allowed, mut paid, mut pr) =
        (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    let (mut paid_claims, mut days_to_payment) = (0i64, 0i64);
    for claim in &claims {
        let status = claim.status();
        *figures.by_status.entry(status_name(status)).or_insert(0) += 1;
        charged += decimal(&claim.total_charge)?;
        if status == claims::ClaimStatus::Held {
            for f in claim
                .scrub_findings
                .iter()
                .filter(|f| f.severity() == claims::ScrubSeverity::Error)
            {
                *figures.held_by_edit.entry(f.edit_code.clone()).or_insert(0) += 1;
            }
        }
        if !matches!(
            status,
            claims::ClaimStatus::Draft | claims::ClaimStatus::Held | claims::ClaimStatus::Ready
        ) {
            figures.submitted += 1;
            if status != claims::ClaimStatus::Rejected {
                figures.accepted_first_pass += 1;
            }
        }
        if let Some(a) = &claim.adjudication {
            paid += decimal(&a.paid)?;
            pr += decimal(&a.patient_responsibility)?;
            for line in &a.lines {
                allowed += decimal(&line.allowed)?;
            }
            if decimal(&a.paid)? > Decimal::ZERO {
                let from = chrono::NaiveDate::parse_from_str(&claim.service_date_from, "%Y-%m-%d");
                let to = chrono::NaiveDate::parse_from_str(&a.payment_date, "%Y-%m-%d");
                if let (Ok(from), Ok(to)) = (from, to) {
                    paid_claims += 1;
                    days_to_payment += (to - from).num_days();
                }
            }
        }
    }
    figures.first_pass_acceptance_rate = percent(figures.accepted_first_pass, figures.submitted);
    figures.secondary_claims = secondary_claims(hospital, clients, &record.control_numbers).await?;

    let denials = denials(clients, record).await?;
    let patients: Vec<String> = record.accounts.keys().cloned().collect();
    let accounts = cycle::accounts_of(clients, &patients).await?;
    let mut owed = Decimal::ZERO;
    let mut by_kind: BTreeMap<i32, Decimal> = BTreeMap::new();
    let mut collections = clients.collections.clone();
    for account in accounts.values() {
        owed += decimal(&account.balance)?;
        let mut page_token = String::new();
        loop {
            let page = collections
                .list_ledger_entries(coll::ListLedgerEntriesRequest {
                    account_id: account.id.clone(),
                    page_size: 500,
                    page_token,
                    ..Default::default()
                })
                .await
                .context("ListLedgerEntries")?
                .into_inner();
            for entry in &page.entries {
                *by_kind.entry(entry.kind).or_default() += decimal(&entry.balance_change)?.abs();
            }
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
    }
    let kind = |k: coll::EntryKind| money(by_kind.get(&(k as i32)).copied().unwrap_or_default());
    let aging = collections
        .aging_report(coll::AgingReportRequest {
            as_of_date: record.today.format("%Y-%m-%d").to_string(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .context("AgingReport")?
        .into_inner();
    let totals = aging.totals.unwrap_or_default();
    let mut scenarios = BTreeMap::new();
    for e in &hospital.encounters {
        *scenarios.entry(format!("{:?}", e.scenario)).or_insert(0) += 1;
    }
    Ok(Summary {
        seed: hospital.seed,
        encounters: hospital.encounters.len(),
        day: hospital.day.format("%Y-%m-%d").to_string(),
        scenarios,
        eligibility: record.eligibility.clone(),
        prior_authorizations: record.prior_authorizations.clone(),
        claims: figures,
        denials,
        dollars: Dollars {
            charged: money(charged),
            allowed: money(allowed),
            paid_by_insurance: money(paid),
            patient_responsibility: money(pr),
            self_pay_billed: kind(coll::EntryKind::SelfPayCharge),
            collected: kind(coll::EntryKind::Payment),
            written_off: kind(coll::EntryKind::WriteOff),
            owed_by_patients: money(owed),
        },
        patient_aging: Aging {
            accounts: aging.account_count,
            days_0_30: totals.days_0_30,
            days_31_60: totals.days_31_60,
            days_61_90: totals.days_61_90,
            days_91_120: totals.days_91_120,
            days_over_120: totals.days_over_120,
            total: totals.total,
        },
        mean_days_to_payment: if paid_claims == 0 {
            "-".to_owned()
        } else {
            money(Decimal::from(days_to_payment) / Decimal::from(paid_claims))
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned()
        },
        patient_choices: record.patient_choices.clone(),
        stages: record.stages.clone(),
    })
}

/// Claims of the run's patients with a secondary plan that the suite made itself (COB).
async fn secondary_claims(
    hospital: &Hospital,
    clients: &Clients,
    ours: &[String],
) -> anyhow::Result<u64> {
    let ours: BTreeSet<&String> = ours.iter().collect();
    let patients: BTreeSet<&String> = hospital
        .encounters
        .iter()
        .filter(|e| e.patient.secondary.is_some())
        .map(|e| &e.patient.patient_ref)
        .collect();
    let mut client = clients.claims.clone();
    let mut n = 0;
    for patient_ref in patients {
        let listed = client
            .list_claims(claims::ListClaimsRequest {
                patient_ref: patient_ref.clone(),
                page_size: 100,
                ..Default::default()
            })
            .await
            .context("ListClaims")?
            .into_inner()
            .claims;
        n += listed
            .iter()
            .filter(|c| !ours.contains(&c.patient_control_number))
            .count() as u64;
    }
    Ok(n)
}

/// The denial worklist items made since the run started, counted by reason.
async fn denials(clients: &Clients, record: &Record) -> anyhow::Result<DenialFigures> {
    let answer = clients
        .remittance
        .clone()
        .list_denials(remit::ListDenialsRequest {
            page_size: 1,
            created: Some(common::TimeRange {
                start_time: record.started_at,
                end_time: None,
            }),
            ..Default::default()
        })
        .await
        .context("ListDenials")?
        .into_inner();
    Ok(DenialFigures {
        total: answer.total_count,
        by_reason: answer
            .counts_by_reason
            .into_iter()
            .map(|c| DenialLine {
                reason: c.key,
                description: c.description,
                count: c.count,
                amount: c.denied_amount,
            })
            .collect(),
    })
}

pub fn status_name(s: claims::ClaimStatus) -> String {
    s.as_str_name()
        .trim_start_matches("CLAIM_STATUS_")
        .to_owned()
}

fn money(d: Decimal) -> String {
    d.round_dp(2).to_string()
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_owned();
    }
    let p = Decimal::from(part) * Decimal::from(100) / Decimal::from(whole);
    format!("{}%", p.round_dp(1))
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.dollars;
        let c = &self.claims;
        writeln!(
            f,
            "\nA day at the hospital: {} encounters on {} (seed {})",
            self.encounters, self.day, self.seed
        )?;
        writeln!(f, "\nClaims")?;
        writeln!(
            f,
            "  created {:>8}   refused at intake {:>5}",
            c.created,
            c.refused_at_intake.values().sum::<u64>()
        )?;
        for (status, n) in &c.by_status {
            writeln!(f, "  {status:<16} {n:>8}")?;
        }
        writeln!(
            f,
            "  first-pass acceptance {} ({} of {} sent to the payer)",
            c.first_pass_acceptance_rate, c.accepted_first_pass, c.submitted
        )?;
        for (edit, n) in &c.held_by_edit {
            writeln!(f, "  held by the scrub for {edit}: {n}")?;
        }
        if c.secondary_claims > 0 {
            writeln!(
                f,
                "  secondary (COB) claims made after the primary paid: {}",
                c.secondary_claims
            )?;
        }
        writeln!(f, "\nDenials ({} on the worklist)", self.denials.total)?;
        for line in &self.denials.by_reason {
            writeln!(
                f,
                "  {:<8} {:>5}  {:>12}  {}",
                line.reason, line.count, line.amount, line.description
            )?;
        }
        writeln!(f, "\nDollars")?;
        for (label, value) in [
            ("charged", &d.charged),
            ("allowed by payers", &d.allowed),
            ("paid by insurance", &d.paid_by_insurance),
            ("patients' share (CLP05)", &d.patient_responsibility),
            ("self-pay billed", &d.self_pay_billed),
            ("collected from patients", &d.collected),
            ("written off", &d.written_off),
            ("still owed by patients", &d.owed_by_patients),
        ] {
            writeln!(f, "  {label:<26} {value:>14}")?;
        }
        writeln!(
            f,
            "  mean days from service to payment: {}",
            self.mean_days_to_payment
        )?;
        let a = &self.patient_aging;
        writeln!(f, "\nPatient A/R aging ({} accounts)", a.accounts)?;
        writeln!(
            f,
            "  0-30 {}   31-60 {}   61-90 {}   91-120 {}   120+ {}   total {}",
            a.days_0_30, a.days_31_60, a.days_61_90, a.days_91_120, a.days_over_120, a.total
        )?;
        writeln!(f, "\nAfter the statement")?;
        for (choice, n) in &self.patient_choices {
            writeln!(f, "  {choice:<22} {n:>6}")?;
        }
        writeln!(f, "\nStages")?;
        for s in &self.stages {
            writeln!(
                f,
                "  {:<24} {:>8} items {:>8.2} s",
                s.stage, s.items, s.seconds
            )?;
        }
        Ok(())
    }
}
