//! The plan catalog: payers, plans and members that drive the answers (TOML; see the crate README).
//!
//! A catalog is parsed and checked once, at start-up, into lookup tables; answering a 270 reads
//! them without I/O or locking.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use medbill_domain::dates::{iso, iso_option};
use medbill_domain::{Money, Rate};
use serde::{Deserialize, Serialize};

/// The catalog shipped for the demo (synthetic people only), documented in the README.
pub const DEFAULT_CATALOG_TOML: &str = include_str!("default_catalog.toml");

/// Why a catalog could not be loaded. Messages name entries by position, never by member data.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("cannot read plan catalog {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not valid TOML or does not have the catalog's shape.
    #[error("plan catalog {origin} is not valid: {message}")]
    Parse {
        /// The file, or `built-in default`.
        origin: String,
        /// The TOML error (line, column, field).
        message: String,
    },
    /// An entry breaks a rule (unknown plan, duplicate member id, bad format...).
    #[error("plan catalog {origin}: {at}: {reason}")]
    Invalid {
        /// The file, or `built-in default`.
        origin: String,
        /// The entry, e.g. `members[3].plan`.
        at: String,
        /// The rule broken.
        reason: String,
    },
}

/// The catalog file as written: `[[payers]]`, `[[plans]]` and `[[members]]` tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// Payers answered for.
    #[serde(default)]
    pub payers: Vec<PayerEntry>,
    /// Benefit plans.
    #[serde(default)]
    pub plans: Vec<PlanEntry>,
    /// Covered people.
    #[serde(default)]
    pub members: Vec<MemberEntry>,
    /// The claim front end's rules (277CA): `[claims]`.
    #[serde(default)]
    pub claims: ClaimRules,
    /// Prior authorization (278) rules: `[prior_authorization]`.
    #[serde(default)]
    pub prior_authorization: PriorAuthRules,
}

/// How the payer answers 278 requests (`[prior_authorization]` in the catalog).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorAuthRules {
    /// Requesting or servicing provider NPIs the payer has no record of (AAA 51).
    #[serde(default)]
    pub providers_not_on_file: Vec<String>,
    /// Days a certification runs from the first requested day when the request gives no end.
    #[serde(default = "default_certified_days")]
    pub certified_days: u32,
    /// The rules, the first match deciding; a service no rule matches needs no authorization
    /// (HCR*NA).
    #[serde(default)]
    pub rules: Vec<AuthRule>,
}

impl Default for PriorAuthRules {
    fn default() -> Self {
        Self {
            providers_not_on_file: Vec::new(),
            certified_days: default_certified_days(),
            rules: Vec::new(),
        }
    }
}

fn default_certified_days() -> u32 {
    90
}

/// What the payer decides about a requested service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthOutcome {
    /// Certified in total (HCR*A1), every unit asked.
    Approve,
    /// Certified partially (HCR*A2): at most `max_units`.
    Partial,
    /// Not certified (HCR*A3) with the rule's reason.
    Deny,
    /// Pended (HCR*A4); an inquiry quoting the REF*NT gets `then`.
    Pend,
}

/// One authorization rule: a procedure code (or a UM03 service type) of a plan and the outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthRule {
    /// The plan id the rule applies to.
    pub plan: String,
    /// Procedure code (SV101-2 / SV202-2) it matches.
    #[serde(default)]
    pub procedure: Option<String>,
    /// Service type (UM03) it matches when no procedure rule matched.
    #[serde(default)]
    pub service_type: Option<String>,
    /// The decision.
    pub outcome: AuthOutcome,
    /// Units certified at most (`partial`).
    #[serde(default)]
    pub max_units: Option<u32>,
    /// HCR03 reason code (`partial`, `deny`).
    #[serde(default)]
    pub reason_code: Option<String>,
    /// The reason in plain words, answered as MSG.
    #[serde(default)]
    pub reason: Option<String>,
    /// The decision an inquiry gets about a pended service (`pend`): approve, partial or deny.
    #[serde(default)]
    pub then: Option<AuthOutcome>,
}

/// Rules of the claim front end beyond the member and NPI checks (`[claims]` in the catalog).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRules {
    /// ICD-10-CM codes (without the dot) rejected as invalid even though well formed, e.g.
    /// retired or header codes: a claim naming one gets STC A7:254 (principal) or A7:255.
    #[serde(default)]
    pub invalid_diagnoses: Vec<String>,
}

/// A payer: the id a 270 asks in 2100A NM109 (qualifier PI).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayerEntry {
    /// Payer id (2100A NM109).
    pub id: String,
    /// Payer name (2100A NM103 of the answer).
    pub name: String,
    /// The member id rule: `#` a digit, `@` a letter A-Z, `?` a letter or digit, anything else
    /// itself; a member id that does not match is answered AAA 72. Absent: any id.
    #[serde(default)]
    pub member_id_format: Option<String>,
    /// The payer's federal tax id (9 digits): TRN03 is `1` followed by it. Absent: `000000000`.
    #[serde(default)]
    pub tax_id: Option<String>,
    /// How the payer pays (BPR04): `eft` (ACH, the default) or `check`.
    #[serde(default)]
    pub payment_method: PaymentMethod,
    /// Days after the first date of service within which a claim must be received; later
    /// claims are denied CO-29. Default 365.
    #[serde(default = "default_timely_filing_days")]
    pub timely_filing_days: u32,
    /// Days from receipt within which a clean claim must be paid; a claim paid later earns
    /// interest at `interest_rate` (PLB L6). Default 30.
    #[serde(default = "default_prompt_pay_days")]
    pub prompt_pay_days: u32,
    /// Yearly interest on late payments, a fraction (`"0.12"` = 12% a year). Default 0: none.
    #[serde(default)]
    pub interest_rate: Rate,
    /// The allowed amount of a procedure not in `procedures`, as a fraction of its charge.
    /// Default 1 (the charge is allowed).
    #[serde(default = "default_unlisted_rate")]
    pub unlisted_rate: Rate,
    /// The fee schedule: allowed amount per unit of each procedure code, and its rules.
    #[serde(default)]
    pub procedures: Vec<ProcedureEntry>,
}

fn default_timely_filing_days() -> u32 {
    365
}

fn default_prompt_pay_days() -> u32 {
    30
}

fn default_unlisted_rate() -> Rate {
    Rate::ONE
}

/// How a payer pays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// Electronic funds transfer (BPR04 `ACH`, TRN02 the EFT trace number).
    #[default]
    Eft,
    /// Paper check (BPR04 `CHK`, TRN02 the check number).
    Check,
}

/// One procedure of a payer's fee schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcedureEntry {
    /// CPT/HCPCS code (SV101-2 / SV202-2).
    pub code: String,
    /// Allowed amount per unit; the line is allowed `min(charge, allowed x units)`.
    pub allowed: Money,
    /// The service type it is billed under (`"98"` office visit...): the member's copay for that
    /// type applies (PR-3) instead of deductible and coinsurance.
    #[serde(default)]
    pub service_type: Option<String>,
    /// The modifiers the payer accepts with this code; a line with another one is denied CO-4
    /// (RARC N823). Absent: any modifier.
    #[serde(default)]
    pub modifiers: Option<Vec<String>>,
}

/// A benefit plan of one payer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanEntry {
    /// Plan id, referenced by members.
    pub id: String,
    /// The payer offering it.
    pub payer: String,
    /// Plan name (EB05 of the EB*1 / EB*6).
    pub name: String,
    /// EB04 insurance type (PR PPO, HM HMO, HN HMO Medicare risk, C1 commercial...).
    #[serde(default)]
    pub insurance_type: Option<String>,
    /// Group number, answered as REF*6P.
    #[serde(default)]
    pub group_number: Option<String>,
    /// Cost sharing when the provider is in the plan's network (EB12 = Y).
    pub in_network: NetworkTier,
    /// Cost sharing out of network (EB12 = N); required by members with `network = "out"`.
    #[serde(default)]
    pub out_of_network: Option<NetworkTier>,
    /// Service type codes the plan does not cover (answered EB*I).
    #[serde(default)]
    pub not_covered: Vec<String>,
    /// Procedure codes the plan does not cover: a line billing one is denied PR-204 (RARC N130),
    /// the patient's to pay.
    #[serde(default)]
    pub not_covered_procedures: Vec<String>,
    /// Procedure codes that need prior authorization: a line billing one on a claim without
    /// REF*G1 is denied CO-197 (RARC M62).
    #[serde(default)]
    pub prior_authorization: Vec<String>,
}

/// The cost sharing of one network tier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkTier {
    /// Calendar-year deductible, individual.
    pub deductible_individual: Money,
    /// Calendar-year deductible, family (FAM EBs are answered only when set).
    #[serde(default)]
    pub deductible_family: Option<Money>,
    /// Out-of-pocket maximum, individual.
    pub oop_max_individual: Money,
    /// Out-of-pocket maximum, family.
    #[serde(default)]
    pub oop_max_family: Option<Money>,
    /// Coinsurance, a fraction (`"0.2"` = 20%, EB08).
    pub coinsurance: Rate,
    /// Copays by service type code (`"98" = "25.00"`), answered EB*B with EB06 27 (visit).
    #[serde(default)]
    pub copays: BTreeMap<String, Money>,
}

/// Whether the asking provider is in the member's plan network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// In network: the in-network tier, EB12 = Y.
    #[default]
    In,
    /// Out of network: the out-of-network tier, EB12 = N.
    Out,
}

/// A covered person, asked about as the subscriber (each has their own member id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberEntry {
    /// Member id (2100C NM109, qualifier MI), unique per payer.
    pub member_id: String,
    /// The plan id.
    pub plan: String,
    /// First name (matched case-insensitively; a mismatch is AAA 73).
    pub first_name: String,
    /// Last name (matched case-insensitively; a mismatch is AAA 73).
    pub last_name: String,
    /// Birth date, `YYYY-MM-DD` (a 270 giving another one is AAA 71).
    #[serde(with = "iso")]
    pub birth_date: NaiveDate,
    /// F, M or U.
    #[serde(default)]
    pub gender: Option<String>,
    /// First covered day, `YYYY-MM-DD`.
    #[serde(with = "iso")]
    pub active_from: NaiveDate,
    /// Last covered day, `YYYY-MM-DD`; absent means still covered.
    #[serde(default, with = "iso_option")]
    pub active_to: Option<NaiveDate>,
    /// Individual deductible met so far this year.
    #[serde(default)]
    pub deductible_met: Money,
    /// Individual out-of-pocket met so far this year.
    #[serde(default)]
    pub oop_met: Money,
    /// Family deductible met (defaults to `deductible_met`).
    #[serde(default)]
    pub family_deductible_met: Option<Money>,
    /// Family out-of-pocket met (defaults to `oop_met`).
    #[serde(default)]
    pub family_oop_met: Option<Money>,
    /// Whether the asking provider is in network for this member.
    #[serde(default)]
    pub network: Network,
    /// Coverage terminated retroactively from this day: the 271 answers inactive from it and
    /// adjudication denies its lines CO-27 (RARC N30), while the claim front end, working from the
    /// enrollment roster (`active_from` / `active_to`), still accepts the claim.
    #[serde(default, with = "iso_option")]
    pub retro_terminated_from: Option<NaiveDate>,
}

/// A checked plan.
#[derive(Debug)]
pub struct Plan {
    /// The plan as written.
    pub entry: PlanEntry,
}

/// A checked member with its plan.
#[derive(Debug)]
pub struct Member {
    /// The member as written.
    pub entry: MemberEntry,
    /// The member's plan.
    pub plan: Arc<Plan>,
}

impl Member {
    /// Returns the tier that applies to this member (validated to exist at load time).
    pub fn tier(&self) -> &NetworkTier {
        match self.entry.network {
            Network::In => &self.plan.entry.in_network,
            Network::Out => self
                .plan
                .entry
                .out_of_network
                .as_ref()
                .unwrap_or(&self.plan.entry.in_network),
        }
    }

    /// Tells whether coverage is active on `date` (the 271 and adjudication): enrolled and not
    /// terminated retroactively.
    pub fn active_on(&self, date: NaiveDate) -> bool {
        self.enrolled_on(date) && self.entry.retro_terminated_from.is_none_or(|t| date < t)
    }

    /// Tells whether the enrollment roster shows the member covered on `date` (the claim front
    /// end's check, blind to a retroactive termination).
    pub fn enrolled_on(&self, date: NaiveDate) -> bool {
        self.entry.active_from <= date && self.entry.active_to.is_none_or(|to| date <= to)
    }

    /// Returns the last day of coverage: `active_to`, or the day before a retroactive termination.
    pub fn last_covered_day(&self) -> Option<NaiveDate> {
        let retro = self.entry.retro_terminated_from.and_then(|t| t.pred_opt());
        match (self.entry.active_to, retro) {
            (Some(a), Some(r)) => Some(a.min(r)),
            (a, r) => a.or(r),
        }
    }
}

/// A checked payer with its members.
#[derive(Debug)]
pub struct Payer {
    /// The payer as written.
    pub entry: PayerEntry,
    format: Option<Vec<u8>>,
    members: HashMap<String, Arc<Member>>,
}

impl Payer {
    /// Tells whether `member_id` follows the payer's member id format.
    pub fn accepts_member_id(&self, member_id: &str) -> bool {
        match &self.format {
            None => !member_id.is_empty(),
            Some(format) => {
                member_id.len() == format.len()
                    && format.iter().zip(member_id.bytes()).all(|(f, c)| match f {
                        b'#' => c.is_ascii_digit(),
                        b'@' => c.is_ascii_uppercase(),
                        b'?' => c.is_ascii_uppercase() || c.is_ascii_digit(),
                        literal => *literal == c,
                    })
            }
        }
    }

    /// Returns the member with `member_id`.
    pub fn member(&self, member_id: &str) -> Option<&Arc<Member>> {
        self.members.get(member_id)
    }

    /// Returns the fee schedule entry of procedure `code`.
    pub fn procedure(&self, code: &str) -> Option<&ProcedureEntry> {
        self.entry.procedures.iter().find(|p| p.code == code)
    }

    /// TRN03 / BPR10: `1` followed by the payer's tax id.
    pub fn company_id(&self) -> String {
        format!("1{}", self.entry.tax_id.as_deref().unwrap_or("000000000"))
    }
}

/// A checked catalog, indexed for lookups.
#[derive(Debug)]
pub struct Catalog {
    payers: HashMap<String, Payer>,
    claim_rules: ClaimRules,
    prior_auth: PriorAuthRules,
    /// Members in file order (the wrong-member fault picks from them).
    members: Vec<Arc<Member>>,
    /// What adjudicated claims added to each member's deductible and out-of-pocket met.
    moved: Mutex<HashMap<(String, String), Met>>,
}

/// A member's accumulators for the year: deductible and out-of-pocket met, individual and family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Met {
    /// Individual deductible met.
    pub deductible: Money,
    /// Individual out-of-pocket met.
    pub oop: Money,
    /// Family deductible met.
    pub family_deductible: Money,
    /// Family out-of-pocket met.
    pub family_oop: Money,
}

impl Catalog {
    /// Returns the ids of the payers in the catalog, sorted.
    pub fn payer_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.payers.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    /// Returns the built-in demo catalog.
    pub fn default_catalog() -> Result<Self, CatalogError> {
        Self::from_toml(DEFAULT_CATALOG_TOML, "built-in default")
    }

    /// Reads and checks a catalog file.
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and checks catalog TOML; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, CatalogError> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| CatalogError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        Self::from_file(file, origin)
    }

    /// Checks a catalog and builds its lookup tables.
    pub fn from_file(file: CatalogFile, origin: &str) -> Result<Self, CatalogError> {
        let bad = |at: String, reason: &str| CatalogError::Invalid {
            origin: origin.to_owned(),
            at,
            reason: reason.to_owned(),
        };
        let mut payers: HashMap<String, Payer> = HashMap::new();
        for (i, p) in file.payers.iter().enumerate() {
            text_value(&p.id, 80).map_err(|r| bad(format!("payers[{i}].id"), r))?;
            text_value(&p.name, 60).map_err(|r| bad(format!("payers[{i}].name"), r))?;
            let format = match &p.member_id_format {
                Some(f) => {
                    text_value(f, 80)
                        .map_err(|r| bad(format!("payers[{i}].member_id_format"), r))?;
                    Some(f.as_bytes().to_vec())
                }
                None => None,
            };
            if let Some(t) = &p.tax_id
                && (t.len() != 9 || !t.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(bad(format!("payers[{i}].tax_id"), "must be 9 digits"));
            }
            for (j, proc_) in p.procedures.iter().enumerate() {
                let at = |field: &str| format!("payers[{i}].procedures[{j}].{field}");
                text_value(&proc_.code, 48).map_err(|r| bad(at("code"), r))?;
                amount(proc_.allowed).map_err(|r| bad(at("allowed"), r))?;
                if let Some(st) = &proc_.service_type {
                    service_type(st).map_err(|r| bad(at("service_type"), r))?;
                }
                for m in proc_.modifiers.iter().flatten() {
                    text_value(m, 2).map_err(|r| bad(at("modifiers"), r))?;
                }
            }
            let payer = Payer {
                entry: p.clone(),
                format,
                members: HashMap::new(),
            };
            if payers.insert(p.id.clone(), payer).is_some() {
                return Err(bad(format!("payers[{i}].id"), "is used twice"));
            }
        }
        let mut plans: HashMap<String, Arc<Plan>> = HashMap::new();
        for (i, p) in file.plans.iter().enumerate() {
            let at = |field: &str| format!("plans[{i}].{field}");
            text_value(&p.id, 50).map_err(|r| bad(at("id"), r))?;
            text_value(&p.name, 50).map_err(|r| bad(at("name"), r))?;
            if !payers.contains_key(&p.payer) {
                return Err(bad(at("payer"), "names no payer of the catalog"));
            }
            for (field, v, max) in [
                ("insurance_type", &p.insurance_type, 3),
                ("group_number", &p.group_number, 50),
            ] {
                if let Some(v) = v {
                    text_value(v, max).map_err(|r| bad(at(field), r))?;
                }
            }
            check_tier(&p.in_network).map_err(|(f, r)| bad(at(&format!("in_network.{f}")), r))?;
            if let Some(t) = &p.out_of_network {
                check_tier(t).map_err(|(f, r)| bad(at(&format!("out_of_network.{f}")), r))?;
            }
            for st in &p.not_covered {
                service_type(st).map_err(|r| bad(at("not_covered"), r))?;
            }
            for code in p
                .not_covered_procedures
                .iter()
                .chain(&p.prior_authorization)
            {
                text_value(code, 48).map_err(|r| bad(at("not_covered_procedures"), r))?;
            }
            let plan = Arc::new(Plan { entry: p.clone() });
            if plans.insert(p.id.clone(), plan).is_some() {
                return Err(bad(at("id"), "is used twice"));
            }
        }
        let mut members = Vec::with_capacity(file.members.len());
        for (i, m) in file.members.iter().enumerate() {
            let at = |field: &str| format!("members[{i}].{field}");
            let plan = plans
                .get(&m.plan)
                .ok_or_else(|| bad(at("plan"), "names no plan of the catalog"))?
                .clone();
            text_value(&m.member_id, 80).map_err(|r| bad(at("member_id"), r))?;
            text_value(&m.first_name, 35).map_err(|r| bad(at("first_name"), r))?;
            text_value(&m.last_name, 60).map_err(|r| bad(at("last_name"), r))?;
            if let Some(g) = &m.gender
                && !matches!(g.as_str(), "F" | "M" | "U")
            {
                return Err(bad(at("gender"), "must be F, M or U"));
            }
            if m.active_to.is_some_and(|to| to < m.active_from) {
                return Err(bad(at("active_to"), "is before active_from"));
            }
            for (field, v) in [
                ("deductible_met", Some(m.deductible_met)),
                ("oop_met", Some(m.oop_met)),
                ("family_deductible_met", m.family_deductible_met),
                ("family_oop_met", m.family_oop_met),
            ] {
                if let Some(v) = v {
                    amount(v).map_err(|r| bad(at(field), r))?;
                }
            }
            if m.network == Network::Out && plan.entry.out_of_network.is_none() {
                return Err(bad(
                    at("network"),
                    "is out but the plan has no out_of_network tier",
                ));
            }
            let Some(payer) = payers.get_mut(&plan.entry.payer) else {
                return Err(bad(at("plan"), "belongs to no payer of the catalog"));
            };
            if !payer.accepts_member_id(&m.member_id) {
                return Err(bad(
                    at("member_id"),
                    "does not follow the payer's member_id_format",
                ));
            }
            let member = Arc::new(Member {
                entry: m.clone(),
                plan,
            });
            if payer
                .members
                .insert(m.member_id.clone(), member.clone())
                .is_some()
            {
                return Err(bad(at("member_id"), "is used twice for the same payer"));
            }
            members.push(member);
        }
        for (i, code) in file.claims.invalid_diagnoses.iter().enumerate() {
            text_value(code, 8).map_err(|r| bad(format!("claims.invalid_diagnoses[{i}]"), r))?;
        }
        check_prior_auth(&file.prior_authorization, &plans)
            .map_err(|(at, reason)| bad(format!("prior_authorization.{at}"), reason))?;
        Ok(Self {
            payers,
            claim_rules: file.claims.clone(),
            prior_auth: file.prior_authorization.clone(),
            members,
            moved: Mutex::new(HashMap::new()),
        })
    }

    /// Returns the payer with `id`.
    pub fn payer(&self, id: &str) -> Option<&Payer> {
        self.payers.get(id)
    }

    /// Returns every member in file order.
    pub fn members(&self) -> &[Arc<Member>] {
        &self.members
    }

    /// Returns what `member` has met so far: the catalog's figures plus what adjudicated claims
    /// added (the 271 answers these, and adjudication starts from them).
    pub fn met(&self, member: &Member) -> Met {
        let m = &member.entry;
        let base = Met {
            deductible: m.deductible_met,
            oop: m.oop_met,
            family_deductible: m.family_deductible_met.unwrap_or(m.deductible_met),
            family_oop: m.family_oop_met.unwrap_or(m.oop_met),
        };
        let moved = self.moved.lock().unwrap_or_else(|p| p.into_inner());
        let key = (member.plan.entry.payer.clone(), m.member_id.clone());
        let add = moved.get(&key).copied().unwrap_or_default();
        Met {
            deductible: base.deductible + add.deductible,
            oop: base.oop + add.oop,
            family_deductible: base.family_deductible + add.family_deductible,
            family_oop: base.family_oop + add.family_oop,
        }
    }

    /// Moves `member`'s accumulators by `deductible` and `oop` (negative to take back a reversed
    /// claim's share), individual and family alike.
    pub fn add_met(&self, member: &Member, deductible: Money, oop: Money) {
        let mut moved = self.moved.lock().unwrap_or_else(|p| p.into_inner());
        let key = (
            member.plan.entry.payer.clone(),
            member.entry.member_id.clone(),
        );
        let m = moved.entry(key).or_default();
        m.deductible += deductible;
        m.oop += oop;
        m.family_deductible += deductible;
        m.family_oop += oop;
    }

    /// Returns the claim front end's rules.
    pub fn claim_rules(&self) -> &ClaimRules {
        &self.claim_rules
    }

    /// Returns the prior authorization rules.
    pub fn prior_auth(&self) -> &PriorAuthRules {
        &self.prior_auth
    }

    /// Returns the first rule of `plan` for `procedure`, else for `service_type`.
    pub fn auth_rule(&self, plan: &str, procedure: &str, service_type: &str) -> Option<&AuthRule> {
        let rules = self.prior_auth.rules.iter().filter(|r| r.plan == plan);
        rules
            .clone()
            .find(|r| r.procedure.as_deref() == Some(procedure))
            .or_else(|| {
                rules
                    .filter(|r| r.procedure.is_none())
                    .find(|r| r.service_type.as_deref() == Some(service_type))
            })
    }

    /// Returns the number of payers.
    pub fn payer_count(&self) -> usize {
        self.payers.len()
    }
}

fn check_prior_auth(
    rules: &PriorAuthRules,
    plans: &HashMap<String, Arc<Plan>>,
) -> Result<(), (String, &'static str)> {
    for (i, npi) in rules.providers_not_on_file.iter().enumerate() {
        text_value(npi, 10).map_err(|r| (format!("providers_not_on_file[{i}]"), r))?;
    }
    if rules.certified_days == 0 {
        return Err(("certified_days".into(), "must be at least 1"));
    }
    for (i, r) in rules.rules.iter().enumerate() {
        let at = |field: &str| format!("rules[{i}].{field}");
        if !plans.contains_key(&r.plan) {
            return Err((at("plan"), "names no plan of the catalog"));
        }
        match (&r.procedure, &r.service_type) {
            (Some(p), None) => text_value(p, 48).map_err(|e| (at("procedure"), e))?,
            (None, Some(st)) => service_type(st).map_err(|e| (at("service_type"), e))?,
            _ => return Err((at("procedure"), "give either procedure or service_type")),
        }
        let partial = r.outcome == AuthOutcome::Partial || r.then == Some(AuthOutcome::Partial);
        if partial != r.max_units.is_some() {
            return Err((
                at("max_units"),
                "is given with a partial outcome and only then",
            ));
        }
        match (r.outcome, r.then) {
            (AuthOutcome::Pend, None | Some(AuthOutcome::Pend)) => {
                return Err((at("then"), "a pend rule names approve, partial or deny"));
            }
            (AuthOutcome::Pend, _) | (_, None) => {}
            (_, Some(_)) => return Err((at("then"), "is only for outcome = \"pend\"")),
        }
        if let Some(code) = &r.reason_code {
            text_value(code, 2).map_err(|e| (at("reason_code"), e))?;
        }
        if let Some(reason) = &r.reason {
            text_value(reason, 264).map_err(|e| (at("reason"), e))?;
        }
    }
    Ok(())
}

/// Checks a text value the 271 writer will carry: present, not too long, no X12 separator.
fn text_value(v: &str, max: usize) -> Result<(), &'static str> {
    if v.trim().is_empty() {
        return Err("must not be empty");
    }
    if v.trim() != v {
        return Err("must not start or end with spaces");
    }
    if v.chars().count() > max {
        return Err("is too long");
    }
    if v.chars()
        .any(|c| c.is_control() || matches!(c, '*' | ':' | '^' | '~' | '|' | '>' | '!'))
    {
        return Err("must not contain control characters or X12 separators (* : ^ ~ | > !)");
    }
    Ok(())
}

fn service_type(code: &str) -> Result<(), &'static str> {
    if code.is_empty() || code.len() > 2 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("service type codes are 1 or 2 letters or digits");
    }
    Ok(())
}

fn amount(v: Money) -> Result<(), &'static str> {
    if v.is_negative() {
        return Err("must not be negative");
    }
    if !v.is_whole_cents() {
        return Err("must be whole cents");
    }
    Ok(())
}

fn check_tier(t: &NetworkTier) -> Result<(), (&'static str, &'static str)> {
    for (field, v) in [
        ("deductible_individual", Some(t.deductible_individual)),
        ("deductible_family", t.deductible_family),
        ("oop_max_individual", Some(t.oop_max_individual)),
        ("oop_max_family", t.oop_max_family),
    ] {
        if let Some(v) = v {
            amount(v).map_err(|r| (field, r))?;
        }
    }
    for (st, v) in &t.copays {
        service_type(st).map_err(|r| ("copays", r))?;
        amount(*v).map_err(|r| ("copays", r))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_catalog_loads() {
        let c = Catalog::default_catalog().unwrap();
        assert_eq!(c.payer_count(), 2);
        assert!(c.members().len() >= 10);
        let ppo = c.payer("SIMPPO").unwrap();
        let m = ppo.member("SPX100000001").unwrap();
        assert_eq!(m.entry.last_name, "TESTPATIENT");
        assert_eq!(m.plan.entry.id, "PPO-GOLD");
    }

    #[test]
    fn member_id_format_is_checked() {
        let c = Catalog::default_catalog().unwrap();
        let ppo = c.payer("SIMPPO").unwrap();
        assert!(ppo.accepts_member_id("SPX123456789"));
        assert!(!ppo.accepts_member_id("SPX12345678"));
        assert!(!ppo.accepts_member_id("SPX12345678A"));
        assert!(!ppo.accepts_member_id("XPX123456789"));
    }

    fn with_members(members: &str) -> String {
        format!(
            r#"
            [[payers]]
            id = "P1"
            name = "PAYER ONE"
            member_id_format = "A####"
            [[plans]]
            id = "PL"
            payer = "P1"
            name = "PLAN"
            [plans.in_network]
            deductible_individual = "100.00"
            oop_max_individual = "1000"
            coinsurance = "0.2"
            {members}
            "#
        )
    }

    fn invalid_at(text: &str) -> String {
        match Catalog::from_toml(text, "test") {
            Err(CatalogError::Invalid { at, .. }) => at,
            other => panic!("expected an invalid entry, got {other:?}"),
        }
    }

    #[test]
    fn bad_prior_authorization_rules_are_named() {
        let rule = |body: &str| {
            format!(
                "{}\n[[prior_authorization.rules]]\n{body}",
                DEFAULT_CATALOG_TOML
            )
        };
        assert_eq!(
            invalid_at(&rule(
                "plan = \"NOPE\"\nprocedure = \"1\"\noutcome = \"approve\""
            )),
            "prior_authorization.rules[7].plan"
        );
        assert_eq!(
            invalid_at(&rule("plan = \"PPO-GOLD\"\noutcome = \"approve\"")),
            "prior_authorization.rules[7].procedure"
        );
        assert_eq!(
            invalid_at(&rule(
                "plan = \"PPO-GOLD\"\nprocedure = \"1\"\noutcome = \"partial\""
            )),
            "prior_authorization.rules[7].max_units"
        );
        assert_eq!(
            invalid_at(&rule(
                "plan = \"PPO-GOLD\"\nprocedure = \"1\"\noutcome = \"pend\""
            )),
            "prior_authorization.rules[7].then"
        );
        assert_eq!(
            invalid_at(&rule(
                "plan = \"PPO-GOLD\"\nprocedure = \"1\"\noutcome = \"deny\"\nthen = \"approve\""
            )),
            "prior_authorization.rules[7].then"
        );
    }

    #[test]
    fn bad_entries_are_named() {
        let member = |extra: &str| {
            with_members(&format!(
                r#"[[members]]
                member_id = "A0001"
                plan = "PL"
                first_name = "ANN"
                last_name = "EXAMPLE"
                birth_date = "1990-01-01"
                active_from = "2026-01-01"
                {extra}"#
            ))
        };
        assert!(Catalog::from_toml(&member(""), "test").is_ok());
        assert_eq!(
            invalid_at(&member("network = \"out\"")),
            "members[0].network"
        );
        assert_eq!(
            invalid_at(&member("active_to = \"2025-01-01\"")),
            "members[0].active_to"
        );
        assert_eq!(
            invalid_at(&member("deductible_met = \"-1\"")),
            "members[0].deductible_met"
        );
        assert_eq!(invalid_at(&member("gender = \"X\"")), "members[0].gender");
        let bad_id = member("").replace("A0001", "A001");
        assert_eq!(invalid_at(&bad_id), "members[0].member_id");
        let bad_plan = member("").replace("plan = \"PL\"", "plan = \"NOPE\"");
        assert_eq!(invalid_at(&bad_plan), "members[0].plan");
        let separator = member("").replace("EXAMPLE", "EX*AMPLE");
        assert_eq!(invalid_at(&separator), "members[0].last_name");
    }

    #[test]
    fn malformed_money_is_a_parse_error() {
        let text = with_members("").replace("\"100.00\"", "\"100.001\"");
        let err = Catalog::from_toml(&text, "test").unwrap_err();
        assert!(matches!(err, CatalogError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("deductible_individual"), "{err}");
    }
}
