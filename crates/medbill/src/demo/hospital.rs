//! The synthetic hospital: a seeded, deterministic generator of patients, their coverages on
//! payer-sim's catalog plans (primary, secondary, none), and a day of encounters with realistic
//! codes and a realistic share of problems.
//!
//! Every person is made up: names come from short lists of invented surnames, member ids from
//! the encounter's index. The same seed and size always give the same hospital, so a demo's
//! figures can be checked by hand and compared between runs.

use medbill_payer_sim::DEFAULT_CATALOG_TOML;

/// The billing organisation every claim names (valid NPI check digit).
pub const BILLING_NPI: &str = "1234567893";
/// The physician who renders the professional services and attends the emergency visits.
pub const PHYSICIAN_NPI: &str = "1666666668";

/// A plan of payer-sim's built-in catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Plan {
    /// SIMPPO "PPO-GOLD": copays for office visits, deductible and coinsurance otherwise.
    PpoGold,
    /// SIMPPO "PPO-HSA": high deductible, no copays.
    PpoHsa,
    /// SIMHMO "HMO-SILVER": copays, small deductible.
    HmoSilver,
}

impl Plan {
    /// The catalog's plan id.
    pub fn id(self) -> &'static str {
        match self {
            Self::PpoGold => "PPO-GOLD",
            Self::PpoHsa => "PPO-HSA",
            Self::HmoSilver => "HMO-SILVER",
        }
    }

    /// The payer id (2010BB NM109).
    pub fn payer_id(self) -> &'static str {
        match self {
            Self::PpoGold | Self::PpoHsa => "SIMPPO",
            Self::HmoSilver => "SIMHMO",
        }
    }

    /// The payer's name.
    pub fn payer_name(self) -> &'static str {
        match self {
            Self::PpoGold | Self::PpoHsa => "SIMULATED PPO HEALTH",
            Self::HmoSilver => "SIMULATED HMO CARE",
        }
    }

    /// The group number the plan's members carry.
    pub fn group_number(self) -> &'static str {
        match self {
            Self::PpoGold => "GRP1001",
            Self::PpoHsa => "GRP2002",
            Self::HmoSilver => "HMOGRP30",
        }
    }
}

/// How a member's coverage stands at the payer, whatever the hospital has on file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Standing {
    /// Active all year.
    Active,
    /// Ended before the date of service; the hospital's record still shows it open.
    EndedBeforeVisit,
    /// Terminated retroactively from before the date of service (the payer's front end still
    /// accepts the claim; adjudication denies it).
    RetroTerminated,
}

/// One insurance a patient holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Insurance {
    /// The catalog plan.
    pub plan: Plan,
    /// Member id at the payer (the catalog's format for the payer).
    pub member_id: String,
    /// How it stands at the payer.
    pub standing: Standing,
}

/// A synthetic patient who is their own subscriber.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Patient {
    /// The EHR's patient reference (unique per run).
    pub patient_ref: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// "YYYY-MM-DD".
    pub birth_date: String,
    /// "F" or "M".
    pub gender: &'static str,
    /// Primary insurance; `None` for a self-pay patient.
    pub primary: Option<Insurance>,
    /// Secondary insurance (coordination of benefits).
    pub secondary: Option<Insurance>,
}

/// What happened at the visit, and what goes wrong with its bill (if anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Scenario {
    /// Office visit on PPO-GOLD (copay).
    OfficeVisit,
    /// Office visit on the high-deductible PPO-HSA plan.
    DeductibleVisit,
    /// Office visit on HMO-SILVER (copay).
    HmoVisit,
    /// Emergency department visit, billed on an institutional claim (837I).
    EmergencyVisit,
    /// Knee replacement: needs the payer's prior authorization, asked for first.
    KneeReplacement,
    /// Office visit of a patient with a secondary plan (a COB claim follows the primary's payment).
    SecondaryCoverage,
    /// No insurance: billed to the patient directly, less the self-pay discount.
    SelfPay,
    /// Problem: the coverage ended before the visit (the 271 says inactive).
    NotCoveredOnDate,
    /// Problem: the payer terminated the coverage retroactively (denied CO-27).
    RetroTerminated,
    /// Problem: a header ICD-10-CM code that is not billable as the principal diagnosis.
    BadDiagnosis,
    /// Problem: the same visit billed twice (the second is a duplicate, OA-18).
    Duplicate,
    /// Problem: a CT scan the plan authorizes only in advance, billed without one (CO-197).
    MissingAuthorization,
    /// Problem: billed more than a year after the date of service (timely filing).
    TimelyFilingMiss,
    /// Problem: a therapy code with a modifier the payer does not accept (CO-4).
    InvalidModifier,
    /// Problem: a service the plan does not cover (PR-204: the patient owes it).
    NotCoveredService,
}

impl Scenario {
    /// Share of encounters per 100, in a fixed order (the generator's draw walks it).
    const MIX: [(Scenario, u32); 15] = [
        (Scenario::OfficeVisit, 28),
        (Scenario::DeductibleVisit, 14),
        (Scenario::HmoVisit, 12),
        (Scenario::EmergencyVisit, 8),
        (Scenario::KneeReplacement, 3),
        (Scenario::SecondaryCoverage, 5),
        (Scenario::SelfPay, 8),
        (Scenario::NotCoveredOnDate, 3),
        (Scenario::RetroTerminated, 2),
        (Scenario::BadDiagnosis, 3),
        (Scenario::Duplicate, 3),
        (Scenario::MissingAuthorization, 3),
        (Scenario::TimelyFilingMiss, 2),
        (Scenario::InvalidModifier, 2),
        (Scenario::NotCoveredService, 4),
    ];

    /// The first encounters of every day, one of each scenario (a duplicate right after the
    /// visit it repeats), so even a small day shows every step and every problem; the rest
    /// are drawn by [`Scenario::MIX`].
    const SHOWCASE: [Scenario; 15] = [
        Scenario::OfficeVisit,
        Scenario::Duplicate,
        Scenario::DeductibleVisit,
        Scenario::HmoVisit,
        Scenario::EmergencyVisit,
        Scenario::KneeReplacement,
        Scenario::SecondaryCoverage,
        Scenario::SelfPay,
        Scenario::NotCoveredOnDate,
        Scenario::RetroTerminated,
        Scenario::BadDiagnosis,
        Scenario::MissingAuthorization,
        Scenario::TimelyFilingMiss,
        Scenario::InvalidModifier,
        Scenario::NotCoveredService,
    ];

    /// Whether the scenario is one of the deliberate problems.
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            Self::NotCoveredOnDate
                | Self::RetroTerminated
                | Self::BadDiagnosis
                | Self::Duplicate
                | Self::MissingAuthorization
                | Self::TimelyFilingMiss
                | Self::InvalidModifier
                | Self::NotCoveredService
        )
    }
}

/// One billed service line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Service {
    /// HCPCS Level II or CPT-format procedure code.
    pub procedure: &'static str,
    /// Modifiers, in order.
    pub modifiers: Vec<&'static str>,
    /// UB-04 revenue code (institutional claims only).
    pub revenue_code: &'static str,
    /// Charge, decimal string.
    pub charge: &'static str,
    /// Units.
    pub units: u32,
}

/// One encounter of the day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Encounter {
    /// Position in the day (0-based).
    pub index: usize,
    /// What happened.
    pub scenario: Scenario,
    /// The patient seen.
    pub patient: Patient,
    /// Patient control number (CLM01) of its claim; unique per run, at most 20 characters.
    pub patient_control_number: String,
    /// "YYYY-MM-DD".
    pub service_date: String,
    /// ICD-10-CM codes without the dot, principal first.
    pub diagnoses: Vec<&'static str>,
    /// Services billed.
    pub services: Vec<Service>,
    /// An institutional (837I) claim rather than a professional one.
    pub institutional: bool,
    /// Place of service (professional claims).
    pub place_of_service: &'static str,
    /// A prior authorization is asked for before the claim.
    pub needs_prior_authorization: bool,
}

impl Encounter {
    /// Whether the patient has insurance (a claim goes to a payer).
    pub fn insured(&self) -> bool {
        self.patient.primary.is_some()
    }

    /// The EHR's encounter reference.
    pub fn encounter_ref(&self) -> String {
        format!("enc-{}", self.patient_control_number)
    }
}

/// A generated hospital day.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hospital {
    /// The seed it was made from.
    pub seed: u64,
    /// The day of service of the encounters.
    pub day: chrono::NaiveDate,
    /// The encounters, in order. A duplicate bill is a second encounter with the same patient
    /// and services as the one before it.
    pub encounters: Vec<Encounter>,
}

/// What a patient with an amount due does after the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatientChoice {
    /// Pays the amount due by card.
    PaysInFull,
    /// Asks for a six-month payment plan (one of under 100.00 pays instead).
    PaymentPlan,
    /// Is granted financial assistance: the balance is written off as charity care.
    FinancialAssistance,
    /// Has not paid yet.
    NotYet,
}

impl PatientChoice {
    /// The name the summary counts it under.
    pub fn name(self) -> &'static str {
        match self {
            Self::PaysInFull => "paid in full",
            Self::PaymentPlan => "payment plan",
            Self::FinancialAssistance => "financial assistance",
            Self::NotYet => "not paid yet",
        }
    }
}

/// SplitMix64: a tiny, fixed pseudo-random sequence, so a seed means the same hospital in
/// every build (library generators may change their streams between versions).
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[usize::try_from(self.below(items.len() as u64)).unwrap_or(0)]
    }
}

const FIRST_NAMES: [&str; 12] = [
    "AVERY", "JORDAN", "RILEY", "MORGAN", "CASEY", "TAYLOR", "QUINN", "SKYLER", "DREW", "ALEX",
    "ROWAN", "SAGE",
];
const LAST_NAMES: [&str; 12] = [
    "TESTPATIENT",
    "SAMPLEMAN",
    "EXAMPLAR",
    "DEMOPERSON",
    "FICTIONAL",
    "MOCKINGTON",
    "PLACEHOLDER",
    "NOTREAL",
    "SYNTHETIC",
    "INVENTED",
    "MADEUPSON",
    "PRETENDER",
];
/// Diagnoses of an ordinary office visit (valid ICD-10-CM in FY2025 and FY2026).
const VISIT_DIAGNOSES: [&str; 5] = ["E119", "I10", "J069", "R109", "M5450"];

impl Hospital {
    /// Generates `encounters` encounters on `day` from `seed`; `run` (at most 6 characters)
    /// makes patient references and control numbers unique to one run against a shared suite.
    pub fn generate(seed: u64, encounters: usize, day: chrono::NaiveDate, run: &str) -> Self {
        let mut draw = Draw(seed);
        let total: u32 = Scenario::MIX.iter().map(|(_, w)| w).sum();
        let mut out: Vec<Encounter> = Vec::with_capacity(encounters);
        while out.len() < encounters {
            let index = out.len();
            let mut roll = u32::try_from(draw.below(u64::from(total))).unwrap_or(0);
            let mut scenario = Scenario::OfficeVisit;
            for (s, w) in Scenario::MIX {
                if roll < w {
                    scenario = s;
                    break;
                }
                roll -= w;
            }
            if let Some(showcase) = Scenario::SHOWCASE.get(index) {
                scenario = *showcase;
            }
            // A duplicate is the previous encounter billed again.
            if scenario == Scenario::Duplicate {
                match out.last() {
                    Some(prev) if prev.scenario == Scenario::OfficeVisit => {
                        let mut again = prev.clone();
                        again.index = index;
                        again.scenario = Scenario::Duplicate;
                        again.patient_control_number = control_number(run, index);
                        out.push(again);
                        continue;
                    }
                    // Only an office visit is billed twice; otherwise this one is ordinary.
                    _ => scenario = Scenario::OfficeVisit,
                }
            }
            out.push(encounter(&mut draw, index, scenario, day, run));
        }
        Self {
            seed,
            day,
            encounters: out,
        }
    }

    /// What the patient of `patient_ref` does after the statement (out of 100: 45 pay, 15 take
    /// a plan, 5 are granted financial assistance, 35 have not paid yet), the same for a seed
    /// whatever the run.
    pub fn patient_choice(&self, patient_ref: &str) -> PatientChoice {
        let index = patient_ref
            .rsplit('-')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        let mut draw = Draw(self.seed ^ index.wrapping_mul(0x2545_F491_4F6C_DD1D));
        match draw.below(100) {
            0..45 => PatientChoice::PaysInFull,
            45..60 => PatientChoice::PaymentPlan,
            60..65 => PatientChoice::FinancialAssistance,
            _ => PatientChoice::NotYet,
        }
    }

    /// The payer-sim catalog this hospital's patients are members of: the built-in catalog's
    /// payers, plans and members plus one member per insured patient. In it SIMHMO's timely
    /// filing limit is the hospital's contracted 365 days (the built-in 90 would make every
    /// HMO claim of a past demo day late).
    ///
    /// # Errors
    /// The built-in catalog cannot be read (it always can).
    pub fn payer_catalog(&self) -> anyhow::Result<String> {
        let mut catalog: toml::Table = DEFAULT_CATALOG_TOML.parse()?;
        if let Some(toml::Value::Array(payers)) = catalog.get_mut("payers") {
            for payer in payers.iter_mut().filter_map(toml::Value::as_table_mut) {
                if payer.get("id").and_then(toml::Value::as_str) == Some("SIMHMO") {
                    payer.insert("timely_filing_days".into(), toml::Value::Integer(365));
                }
            }
        }
        let members = catalog
            .entry("members")
            .or_insert_with(|| toml::Value::Array(Vec::new()));
        let toml::Value::Array(members) = members else {
            anyhow::bail!("the built-in catalog's members are not a list");
        };
        let mut seen = std::collections::HashSet::new();
        for e in &self.encounters {
            let p = &e.patient;
            for insurance in [&p.primary, &p.secondary].into_iter().flatten() {
                if seen.insert(insurance.member_id.clone()) {
                    members.push(toml::Value::Table(member_entry(p, insurance, self.day)));
                }
            }
        }
        Ok(toml::to_string(&catalog)?)
    }
}

fn member_entry(patient: &Patient, insurance: &Insurance, day: chrono::NaiveDate) -> toml::Table {
    let mut t = toml::Table::new();
    let mut set = |k: &str, v: String| {
        t.insert(k.to_owned(), toml::Value::String(v));
    };
    set("member_id", insurance.member_id.clone());
    set("plan", insurance.plan.id().to_owned());
    set("first_name", patient.first_name.clone());
    set("last_name", patient.last_name.clone());
    set("birth_date", patient.birth_date.clone());
    set("gender", patient.gender.to_owned());
    let year_start = format!("{}-01-01", chrono::Datelike::year(&day));
    match insurance.standing {
        Standing::Active => {
            // A year back, so the timely-filing encounter (over a year before the day) was covered.
            set(
                "active_from",
                format!("{}-01-01", chrono::Datelike::year(&day) - 2),
            );
        }
        Standing::EndedBeforeVisit => {
            set("active_from", year_start);
            set("active_to", days_before(day, 30));
        }
        Standing::RetroTerminated => {
            set("active_from", year_start);
            set("retro_terminated_from", days_before(day, 14));
        }
    }
    t
}

fn days_before(day: chrono::NaiveDate, days: u64) -> String {
    (day - chrono::Days::new(days))
        .format("%Y-%m-%d")
        .to_string()
}

/// CLM01 of the encounter: "D", the run, the index (at most 20 characters).
fn control_number(run: &str, index: usize) -> String {
    format!("D{run}{index:07}")
}

fn encounter(
    draw: &mut Draw,
    index: usize,
    scenario: Scenario,
    day: chrono::NaiveDate,
    run: &str,
) -> Encounter {
    let plan = match scenario {
        Scenario::DeductibleVisit => Some(Plan::PpoHsa),
        Scenario::HmoVisit => Some(Plan::HmoSilver),
        Scenario::SelfPay => None,
        _ => Some(Plan::PpoGold),
    };
    let standing = match scenario {
        Scenario::NotCoveredOnDate => Standing::EndedBeforeVisit,
        Scenario::RetroTerminated => Standing::RetroTerminated,
        _ => Standing::Active,
    };
    let member = |plan: Plan| match plan.payer_id() {
        "SIMHMO" => format!("HMO{:07}", 1_000_000 + index),
        _ => format!("SPX{:09}", 200_000_000 + index),
    };
    let year = 1940 + i32::try_from(draw.below(80)).unwrap_or(0);
    let month = 1 + draw.below(12);
    let dom = 1 + draw.below(28);
    let patient = Patient {
        patient_ref: format!("demo-{run}-{index:07}"),
        first_name: draw.pick(&FIRST_NAMES).to_owned(),
        last_name: draw.pick(&LAST_NAMES).to_owned(),
        birth_date: format!("{year:04}-{month:02}-{dom:02}"),
        gender: if draw.below(2) == 0 { "F" } else { "M" },
        primary: plan.map(|plan| Insurance {
            plan,
            member_id: member(plan),
            standing,
        }),
        secondary: (scenario == Scenario::SecondaryCoverage).then(|| Insurance {
            plan: Plan::HmoSilver,
            member_id: member(Plan::HmoSilver),
            standing: Standing::Active,
        }),
    };
    let line = |procedure, charge| Service {
        procedure,
        modifiers: Vec::new(),
        revenue_code: "",
        charge,
        units: 1,
    };
    let visit_dx = draw.pick(&VISIT_DIAGNOSES);
    let office = || vec![line("99213", "150.00"), line("85025", "35.00")];
    let (diagnoses, services, place) = match scenario {
        Scenario::OfficeVisit
        | Scenario::HmoVisit
        | Scenario::SecondaryCoverage
        | Scenario::SelfPay
        | Scenario::NotCoveredOnDate
        | Scenario::RetroTerminated
        | Scenario::TimelyFilingMiss
        | Scenario::Duplicate => (vec![visit_dx], office(), "11"),
        Scenario::DeductibleVisit => (
            vec![visit_dx],
            vec![line("99214", "210.00"), line("85025", "35.00")],
            "11",
        ),
        Scenario::EmergencyVisit => (
            vec!["R0789"],
            vec![
                Service {
                    revenue_code: "0450",
                    ..line("99284", "900.00")
                },
                Service {
                    revenue_code: "0300",
                    ..line("85025", "45.00")
                },
            ],
            "",
        ),
        Scenario::KneeReplacement => (vec!["M1711"], vec![line("27447", "32000.00")], "22"),
        Scenario::BadDiagnosis => (vec!["E11"], office(), "11"),
        Scenario::MissingAuthorization => (vec!["R519"], vec![line("70450", "1200.00")], "22"),
        Scenario::InvalidModifier => (
            vec!["M5450"],
            vec![Service {
                modifiers: vec!["GO"],
                units: 2,
                ..line("97110", "90.00")
            }],
            "11",
        ),
        Scenario::NotCoveredService => (vec!["H5213"], vec![line("S0800", "2100.00")], "11"),
    };
    let service_date = match scenario {
        // Over a year before the day, inside the earlier ICD-10-CM year the suite ships.
        Scenario::TimelyFilingMiss => days_before(day, 400),
        _ => day.format("%Y-%m-%d").to_string(),
    };
    Encounter {
        index,
        scenario,
        patient,
        patient_control_number: control_number(run, index),
        service_date,
        diagnoses,
        services,
        institutional: scenario == Scenario::EmergencyVisit,
        place_of_service: place,
        needs_prior_authorization: scenario == Scenario::KneeReplacement,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2026, 9, 15).expect("a date")
    }

    #[test]
    fn a_seed_always_gives_the_same_hospital_and_another_seed_another() {
        let a = Hospital::generate(7, 300, day(), "r1");
        let b = Hospital::generate(7, 300, day(), "r1");
        let c = Hospital::generate(8, 300, day(), "r1");
        assert_eq!(a.encounters, b.encounters);
        assert_ne!(a.encounters, c.encounters);
        assert_eq!(a.encounters.len(), 300);
    }

    #[test]
    fn the_mix_holds_every_scenario_and_mostly_ordinary_visits() {
        let h = Hospital::generate(11, 2_000, day(), "r1");
        let mut counts = std::collections::BTreeMap::new();
        for e in &h.encounters {
            *counts.entry(e.scenario).or_insert(0u32) += 1;
        }
        for (s, _) in Scenario::MIX {
            assert!(counts.contains_key(&s), "{s:?} missing from {counts:?}");
        }
        let small = Hospital::generate(11, Scenario::SHOWCASE.len(), day(), "r1");
        let shown: Vec<Scenario> = small.encounters.iter().map(|e| e.scenario).collect();
        assert_eq!(
            shown,
            Scenario::SHOWCASE,
            "a small day shows every scenario once"
        );
        let problems: u32 = counts
            .iter()
            .filter(|(s, _)| s.is_problem())
            .map(|(_, n)| n)
            .sum();
        // 22 in 100 by the mix (a duplicate needs an office visit before it, so fewer).
        assert!(
            (250..=500).contains(&problems),
            "{problems} problems in 2,000"
        );
    }

    #[test]
    fn a_duplicate_repeats_the_visit_before_it_under_its_own_control_number() {
        let h = Hospital::generate(3, 2_000, day(), "r1");
        let dup = h
            .encounters
            .iter()
            .find(|e| e.scenario == Scenario::Duplicate)
            .expect("a duplicate");
        let prev = &h.encounters[dup.index - 1];
        assert_eq!(prev.scenario, Scenario::OfficeVisit);
        assert_eq!(dup.patient, prev.patient);
        assert_eq!(dup.services, prev.services);
        assert_ne!(dup.patient_control_number, prev.patient_control_number);
        assert!(dup.patient_control_number.len() <= 20);
    }

    #[test]
    fn the_catalog_lists_every_insured_patient_once_and_stays_loadable() {
        let h = Hospital::generate(5, 200, day(), "r1");
        let text = h.payer_catalog().expect("a catalog");
        let parsed: toml::Table = text.parse().expect("TOML");
        let members = parsed["members"].as_array().expect("members");
        let insured = h
            .encounters
            .iter()
            .filter(|e| e.scenario != Scenario::Duplicate)
            .map(|e| {
                usize::from(e.patient.primary.is_some())
                    + usize::from(e.patient.secondary.is_some())
            })
            .sum::<usize>();
        let built_in: toml::Table = DEFAULT_CATALOG_TOML.parse().expect("TOML");
        let built_in = built_in["members"].as_array().expect("members").len();
        assert_eq!(members.len(), built_in + insured);
        medbill_payer_sim::catalog::Catalog::from_toml(&text, "demo catalog")
            .expect("payer-sim loads it");
    }
}
