//! The RPCs that move money on the ledger: patient responsibility from remittance, self-pay
//! bills, payments (the patient's and third parties'), refunds of a credit balance and
//! write-offs. Each validates its request (errors name the field), locks the account, checks
//! the balance rule it depends on, posts one balanced journal entry and its record, and commits
//! them with its idempotency key: an error leaves nothing behind. Patient responsibility and
//! payments are written by code that takes many items (a batch's) as well as one.

use std::collections::{BTreeSet, HashMap};

use medbill_domain::{
    AccountId, ClaimId, EraId, EstimateId, IdempotencyKey, Money, RefundId, TenantId,
};
use medbill_proto::collections::v1 as pb;
use medbill_proto::common::v1::AdjustmentGroup;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{identifier, money, optional_date, required_id, text};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use medbill_storage::Tx;
use tonic::Status;

use crate::model::{
    Account, EntryKind, JournalEntry, LedgerAccount, NewJournalEntry, PayerType, PaymentMethod,
    Posting, WriteOffKind,
};
use crate::plans::LivePlan;
use crate::records::{
    ClaimBalance, NewPayment, NewRefund, NewResponsibility, NewSelfPayBill, ResponsibilityLine,
    allocate,
};
use crate::service::{CollectionsService, entry_to_proto, to_proto};
use crate::store::StoreError;

/// Longest memo or reason accepted.
const MEMO_LEN: usize = 500;

/// Whose account a posting goes to.
#[derive(Clone)]
enum Target {
    /// The named account.
    Account(AccountId),
    /// The patient's account, opened on demand.
    Patient(String),
}

fn target(account_id: &str, patient_ref: &str) -> Result<Target, ServiceError> {
    if !account_id.is_empty() {
        return Ok(Target::Account(required_id("account_id", account_id)?));
    }
    match identifier("patient_ref", patient_ref, false)? {
        Some(p) => Ok(Target::Patient(p)),
        None => Err(ServiceError::invalid_argument(
            "patient_ref",
            "is required when account_id is empty",
        )),
    }
}

pub(crate) fn optional_id<I>(field: &str, raw: &str) -> Result<Option<I>, ServiceError>
where
    I: std::str::FromStr,
    I::Err: std::fmt::Display,
{
    if raw.is_empty() {
        return Ok(None);
    }
    required_id(field, raw).map(Some)
}

/// A positive whole-cents amount.
pub(crate) fn positive(field: &str, raw: &str) -> Result<Money, ServiceError> {
    let amount = money(field, raw)?;
    if !amount.is_positive() {
        return Err(ServiceError::invalid_argument(
            field,
            format!("must be greater than zero, got {amount}"),
        ));
    }
    whole_cents(field, amount)
}

/// An optional whole-cents amount (empty = not sent).
pub(crate) fn optional_money(field: &str, raw: &str) -> Result<Option<Money>, ServiceError> {
    if raw.is_empty() {
        return Ok(None);
    }
    whole_cents(field, money(field, raw)?).map(Some)
}

fn whole_cents(field: &str, amount: Money) -> Result<Money, ServiceError> {
    if amount.is_whole_cents() {
        Ok(amount)
    } else {
        Err(ServiceError::invalid_argument(
            field,
            format!("{amount} is not a whole number of cents"),
        ))
    }
}

pub(crate) fn method(field: &str, raw: i32) -> Result<PaymentMethod, ServiceError> {
    match pb::PaymentMethod::try_from(raw) {
        Ok(pb::PaymentMethod::Cash) => Ok(PaymentMethod::Cash),
        Ok(pb::PaymentMethod::Check) => Ok(PaymentMethod::Check),
        Ok(pb::PaymentMethod::Card) => Ok(PaymentMethod::Card),
        Ok(pb::PaymentMethod::Ach) => Ok(PaymentMethod::Ach),
        Ok(pb::PaymentMethod::Other) => Ok(PaymentMethod::Other),
        Ok(pb::PaymentMethod::Unspecified) => Err(ServiceError::invalid_argument(
            field,
            "is required (CASH, CHECK, CARD, ACH or OTHER)",
        )),
        Err(_) => Err(ServiceError::invalid_argument(
            field,
            format!("unknown payment method {raw}"),
        )),
    }
}

fn payer_type(raw: i32) -> Result<PayerType, ServiceError> {
    Ok(match pb::PayerType::try_from(raw) {
        Ok(pb::PayerType::Unspecified | pb::PayerType::Patient) => PayerType::Patient,
        Ok(pb::PayerType::Guarantor) => PayerType::Guarantor,
        Ok(pb::PayerType::AutoInsurer) => PayerType::AutoInsurer,
        Ok(pb::PayerType::LiabilityInsurer) => PayerType::LiabilityInsurer,
        Ok(pb::PayerType::WorkersCompensation) => PayerType::WorkersCompensation,
        Ok(pb::PayerType::Attorney) => PayerType::Attorney,
        Ok(pb::PayerType::CharityFund) => PayerType::CharityFund,
        Ok(pb::PayerType::CollectionAgency) => PayerType::CollectionAgency,
        Err(_) => {
            return Err(ServiceError::invalid_argument(
                "payer_type",
                format!("unknown payer type {raw}"),
            ));
        }
    })
}

/// Maps a payer type to its wire form.
pub fn payer_type_to_proto(t: PayerType) -> pb::PayerType {
    match t {
        PayerType::Patient => pb::PayerType::Patient,
        PayerType::Guarantor => pb::PayerType::Guarantor,
        PayerType::AutoInsurer => pb::PayerType::AutoInsurer,
        PayerType::LiabilityInsurer => pb::PayerType::LiabilityInsurer,
        PayerType::WorkersCompensation => pb::PayerType::WorkersCompensation,
        PayerType::Attorney => pb::PayerType::Attorney,
        PayerType::CharityFund => pb::PayerType::CharityFund,
        PayerType::CollectionAgency => pb::PayerType::CollectionAgency,
    }
}

fn write_off_kind(raw: i32) -> Result<WriteOffKind, ServiceError> {
    match pb::WriteOffKind::try_from(raw) {
        Ok(pb::WriteOffKind::BadDebt) => Ok(WriteOffKind::BadDebt),
        Ok(pb::WriteOffKind::CharityCare) => Ok(WriteOffKind::CharityCare),
        Ok(pb::WriteOffKind::SmallBalance) => Ok(WriteOffKind::SmallBalance),
        Ok(pb::WriteOffKind::Administrative) => Ok(WriteOffKind::Administrative),
        Ok(pb::WriteOffKind::PromptPayDiscount) => Ok(WriteOffKind::PromptPayDiscount),
        Ok(pb::WriteOffKind::Unspecified) => Err(ServiceError::invalid_argument(
            "kind",
            "is required (BAD_DEBT, CHARITY_CARE, SMALL_BALANCE, ADMINISTRATIVE or PROMPT_PAY_DISCOUNT)",
        )),
        Err(_) => Err(ServiceError::invalid_argument(
            "kind",
            format!("unknown write-off kind {raw}"),
        )),
    }
}

pub(crate) fn memo(field: &str, raw: &str, required: bool) -> Result<String, ServiceError> {
    Ok(text(field, raw, MEMO_LEN, required)?.unwrap_or_default())
}

/// The account after `entry` was posted to `before` (the entry's time is the account's
/// `updated_at`, as the store wrote it).
fn after(mut before: Account, entry: &JournalEntry) -> Account {
    before.balance += entry.balance_change();
    before.updated_at = entry.posted_at;
    before
}

pub(crate) fn err(e: impl Into<ServiceError>) -> Status {
    Status::from(e.into())
}

/// A checked PostPatientResponsibility request.
#[derive(Clone)]
pub(crate) struct Responsibility {
    target: Target,
    amount: Money,
    claim: Option<ClaimId>,
    era: Option<EraId>,
    pcn: Option<String>,
    service_date: Option<chrono::NaiveDate>,
    memo: String,
    corrected: bool,
    total_charge: Option<Money>,
    payer_paid: Option<Money>,
    lines: Vec<ResponsibilityLine>,
}

impl Responsibility {
    /// The account named by the request, when it names one (else the patient's).
    pub(crate) fn account_id(&self) -> Option<AccountId> {
        match self.target {
            Target::Account(id) => Some(id),
            Target::Patient(_) => None,
        }
    }
}

/// Checks a PostPatientResponsibility request (errors name the field); nothing is read or
/// written.
pub(crate) fn responsibility(
    req: &pb::PostPatientResponsibilityRequest,
) -> Result<Responsibility, ServiceError> {
    let target = target(&req.account_id, &req.patient_ref)?;
    let amount = whole_cents("amount", money("amount", &req.amount)?)?;
    let claim: Option<ClaimId> = optional_id("claim_id", &req.claim_id)?;
    let era: Option<EraId> = optional_id("era_id", &req.era_id)?;
    let pcn = identifier("patient_control_number", &req.patient_control_number, false)?;
    let service_date = optional_date("service_date", &req.service_date)?;
    let memo_text = memo("memo", &req.memo, false)?;
    let total_charge = optional_money("total_charge", &req.total_charge)?;
    let payer_paid = optional_money("payer_paid", &req.payer_paid)?;
    if req.corrected && claim.is_none() {
        return Err(ServiceError::invalid_argument(
            "claim_id",
            "is required for a corrected adjudication",
        ));
    }
    if amount.is_zero() && !req.corrected {
        return Err(ServiceError::invalid_argument(
            "amount",
            "must not be zero (negative for a reversal)",
        ));
    }
    let mut lines = Vec::with_capacity(req.adjustments.len());
    for (i, a) in req.adjustments.iter().enumerate() {
        let field = format!("adjustments[{i}]");
        if a.group != AdjustmentGroup::Pr as i32 {
            return Err(ServiceError::invalid_argument(
                format!("{field}.group"),
                "must be PR (patient responsibility)",
            ));
        }
        let reason = identifier(&format!("{field}.reason"), &a.reason, true)?.unwrap_or_default();
        let line_amount = whole_cents(
            &format!("{field}.amount"),
            money(&format!("{field}.amount"), &a.amount)?,
        )?;
        lines.push(ResponsibilityLine {
            group: "PR".to_owned(),
            reason,
            amount: line_amount,
        });
    }
    if !lines.is_empty() {
        let sum: Money = lines.iter().map(|l| l.amount).sum();
        if sum != amount {
            return Err(ServiceError::invalid_argument(
                "adjustments",
                format!("the PR adjustments add up to {sum}, not the amount {amount}"),
            ));
        }
    }
    Ok(Responsibility {
        target,
        amount,
        claim,
        era,
        pcn,
        service_date,
        memo: memo_text,
        corrected: req.corrected,
        total_charge,
        payer_paid,
        lines,
    })
}

/// What a checked PostPatientResponsibility changes on the patient balance, given the patient
/// responsibility its claim holds (`posted`, when it names a claim): a corrected adjudication
/// the difference, else its amount; a reversal may not take back more than the claim holds
/// (FAILED_PRECONDITION naming both amounts).
fn responsibility_change(r: &Responsibility, posted: Option<Money>) -> Result<Money, ServiceError> {
    if r.corrected {
        return Ok(r.amount - posted.unwrap_or(Money::ZERO));
    }
    if let (Some(posted), Some(claim)) = (posted, &r.claim)
        && r.amount.is_negative()
        && posted < -r.amount
    {
        return Err(ServiceError::FailedPrecondition(format!(
            "the reversal of {} exceeds the {posted} of patient responsibility posted for claim {claim}",
            -r.amount
        )));
    }
    Ok(r.amount)
}

/// The journal entry that posts `change` (not zero) of a checked PostPatientResponsibility to
/// `account_id`: PATIENT_AR against INSURANCE_AR on the claim.
fn responsibility_entry(
    r: &Responsibility,
    account_id: AccountId,
    change: Money,
) -> NewJournalEntry {
    let kind = if change.is_positive() {
        EntryKind::PatientResponsibility
    } else {
        EntryKind::Reversal
    };
    let memo = if r.memo.is_empty() {
        match (r.corrected, kind) {
            (true, _) => "patient responsibility, corrected adjudication".to_owned(),
            (false, EntryKind::Reversal) => "patient responsibility reversed".to_owned(),
            _ => "patient responsibility".to_owned(),
        }
    } else {
        r.memo.clone()
    };
    NewJournalEntry {
        account_id,
        kind,
        memo,
        source_ref: r.era.map(|e| e.to_string()),
        payer_type: None,
        postings: vec![
            Posting::on_claim(LedgerAccount::PatientAr, change, r.claim),
            Posting::on_claim(LedgerAccount::InsuranceAr, -change, r.claim),
        ],
    }
}

/// The journal entry of a checked RecordPayment whose id is `payment_id`: CASH (less the
/// agency's `fee`, booked to COLLECTION_AGENCY_FEES) against PATIENT_AR, allocated over the
/// account's `open` items as [`allocate`] does.
fn payment_entry(
    p: &Payment,
    payment_id: uuid::Uuid,
    open: &[ClaimBalance],
    fee: Option<Money>,
) -> NewJournalEntry {
    let kept = fee.unwrap_or(Money::ZERO);
    let mut postings = Vec::with_capacity(3);
    if (p.amount - kept).is_positive() {
        postings.push(Posting::new(LedgerAccount::Cash, p.amount - kept));
    }
    if kept.is_positive() {
        postings.push(Posting::new(LedgerAccount::CollectionAgencyFees, kept));
    }
    postings.extend(
        allocate(p.amount, open, p.claim)
            .into_iter()
            .map(|(c, part)| Posting::on_claim(LedgerAccount::PatientAr, -part, c)),
    );
    NewJournalEntry {
        account_id: p.account_id,
        kind: EntryKind::Payment,
        memo: if p.memo.is_empty() {
            format!("{} payment from {}", p.method, p.payer).to_lowercase()
        } else {
            p.memo.clone()
        },
        source_ref: Some(payment_id.to_string()),
        payer_type: Some(p.payer),
        postings,
    }
}

/// A checked RecordPayment request.
#[derive(Clone)]
pub(crate) struct Payment {
    pub(crate) account_id: AccountId,
    amount: Money,
    method: PaymentMethod,
    reference: Option<String>,
    received_date: chrono::NaiveDate,
    memo: String,
    payer: PayerType,
    payer_ref: Option<String>,
    claim: Option<ClaimId>,
    agency_fee: Option<Money>,
}

impl CollectionsService {
    async fn target_account(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        target: &Target,
    ) -> Result<Account, Status> {
        match target {
            Target::Account(id) => self.store.lock_account(tx, tenant, id).await,
            Target::Patient(p) => self.store.patient_account(tx, tenant, p).await,
        }
        .map_err(err)
    }

    /// The fee an agency keeps of `amount`: the one it reported, else its configured rate
    /// (rounded to the cent) when the account is placed with it, else nothing.
    async fn agency_fee(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
        amount: Money,
        reported: Option<Money>,
    ) -> Result<Money, Status> {
        if let Some(fee) = reported {
            return Ok(fee);
        }
        let placement = self
            .store
            .live_placement(tx, tenant, account_id)
            .await
            .map_err(err)?;
        let rate = placement.and_then(|p| {
            self.config
                .agencies
                .iter()
                .find(|a| a.id == p.agency_id)
                .map(|a| a.fee_rate)
        });
        Ok(rate.map_or(Money::ZERO, |r| amount.mul_rate(r).round_cents()))
    }

    /// PostPatientResponsibility: see the proto. The amount's PR lines, when sent, must add up
    /// to it; a reversal may not take back more than was posted for the claim; a corrected
    /// adjudication posts the difference with what the claim holds.
    pub(crate) async fn post_responsibility(
        &self,
        tenant: TenantId,
        req: pb::PostPatientResponsibilityRequest,
    ) -> Result<pb::PostPatientResponsibilityResponse, Status> {
        let call = IdempotentCall::of(&req)?;
        let checked = responsibility(&req)?;
        let mut op = match call.begin(self.store.database(), &tenant).await? {
            Begun::Replay(first) => return Ok(first),
            Begun::New(op) => op,
        };
        let response = self
            .post_responsibilities_in(op.tx(), &tenant, &[(call.key(), &checked)])
            .await?
            .pop()
            .ok_or_else(|| err(ServiceError::internal("a posting without its answer")))?;
        op.commit(&response).await?;
        Ok(response)
    }

    /// Posts checked PostPatientResponsibility requests in `tx` (the single call's one, a
    /// batch's many) as if each were posted alone after the one before, with multi-row
    /// statements across them, and returns their answers in order. The first item that fails
    /// (an unknown account, a reversal above what its claim holds) fails the call and leaves
    /// `tx` for the caller to roll back.
    pub(crate) async fn post_responsibilities_in(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        items: &[(&IdempotencyKey, &Responsibility)],
    ) -> Result<Vec<pb::PostPatientResponsibilityResponse>, Status> {
        // Whose account each item posts to: the one named, or the patient's (opened on demand).
        let patients: Vec<&str> = items
            .iter()
            .filter_map(|(_, r)| match &r.target {
                Target::Patient(p) => Some(p.as_str()),
                Target::Account(_) => None,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let chosen = if patients.is_empty() {
            Vec::new()
        } else {
            self.store
                .patient_accounts(tx, tenant, &patients)
                .await
                .map_err(err)?
        };
        let by_patient: HashMap<&str, AccountId> = patients.into_iter().zip(chosen).collect();
        let targets = items
            .iter()
            .map(|(_, r)| match &r.target {
                Target::Account(id) => Ok(*id),
                Target::Patient(p) => by_patient
                    .get(p.as_str())
                    .copied()
                    .ok_or_else(|| err(ServiceError::internal("a patient without an account"))),
            })
            .collect::<Result<Vec<_>, Status>>()?;
        let mut accounts = self.locked(tx, tenant, &targets).await?;
        let pairs: Vec<(AccountId, ClaimId)> = items
            .iter()
            .zip(&targets)
            .filter_map(|((_, r), id)| r.claim.map(|c| (*id, c)))
            .collect();
        let mut held = if pairs.is_empty() {
            HashMap::new()
        } else {
            self.store
                .claim_responsibilities(tx, tenant, &pairs)
                .await
                .map_err(err)?
        };

        // Item by item in memory: what each posts, given what the items before it posted.
        let mut steps: Vec<(Account, Option<usize>)> = Vec::with_capacity(items.len());
        let mut entries: Vec<(&IdempotencyKey, NewJournalEntry)> = Vec::new();
        for ((key, r), id) in items.iter().zip(&targets) {
            let account = accounts
                .get_mut(id)
                .ok_or(err(StoreError::AccountNotFound(*id)))?;
            let posted = r
                .claim
                .map(|c| held.get(&(*id, c)).copied().unwrap_or(Money::ZERO));
            let change = responsibility_change(r, posted).map_err(err)?;
            if change.is_zero() {
                // A correction that changes nothing: nothing to post.
                steps.push((account.clone(), None));
                continue;
            }
            if let Some(c) = r.claim {
                *held.entry((*id, c)).or_insert(Money::ZERO) += change;
            }
            account.balance += change;
            steps.push((account.clone(), Some(entries.len())));
            entries.push((*key, responsibility_entry(r, *id, change)));
        }
        let refs: Vec<(&IdempotencyKey, &NewJournalEntry)> =
            entries.iter().map(|(k, e)| (*k, e)).collect();
        let posted = self
            .store
            .post_journal_entries(tx, tenant, &refs)
            .await
            .map_err(err)?;
        let records: Vec<NewResponsibility> = items
            .iter()
            .zip(&steps)
            .filter_map(|((_, r), (_, i))| {
                i.map(|i| NewResponsibility {
                    entry_id: posted[i].id,
                    claim: r.claim,
                    era_id: r.era,
                    patient_control_number: r.pcn.clone(),
                    service_date: r.service_date,
                    corrected: r.corrected,
                    total_charge: r.total_charge,
                    payer_paid: r.payer_paid,
                    lines: r.lines.clone(),
                })
            })
            .collect();
        self.store
            .insert_responsibilities(tx, tenant, &records)
            .await
            .map_err(err)?;

        // The answers, in order: a reversal keeps the account's plan within what is owed,
        // and what that did to the plan shows from the next item on.
        let mut plans: HashMap<AccountId, LivePlan> = HashMap::new();
        let mut answers = Vec::with_capacity(steps.len());
        for (mut account, i) in steps {
            if let Some(plan) = plans.get(&account.id) {
                account.collection.payment_plan = *plan;
            }
            let entry = i.map(|i| &posted[i]);
            if let Some(entry) = entry {
                account.updated_at = entry.posted_at;
                if entry.balance_change().is_negative() {
                    let live = self.keep_plan_within_balance(tx, tenant, &account).await?;
                    plans.insert(account.id, live);
                }
            }
            answers.push(pb::PostPatientResponsibilityResponse {
                account: Some(to_proto(&account, None)),
                entry: entry.map(|e| entry_to_proto(e, None)),
            });
        }
        tracing::info!(entries = posted.len(), "patient responsibility posted");
        Ok(answers)
    }

    /// Locks the accounts `targets` (one statement, in id order) and reads them; the first
    /// target, in order, that does not exist fails the call (NOT_FOUND naming it).
    async fn locked(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        targets: &[AccountId],
    ) -> Result<HashMap<AccountId, Account>, Status> {
        let distinct: Vec<AccountId> = targets
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let found: HashMap<AccountId, Account> = self
            .store
            .lock_accounts(tx, tenant, &distinct)
            .await
            .map_err(err)?
            .into_iter()
            .map(|a| (a.id, a))
            .collect();
        match targets.iter().find(|id| !found.contains_key(id)) {
            Some(missing) => Err(err(StoreError::AccountNotFound(*missing))),
            None => Ok(found),
        }
    }

    /// BillSelfPay: the charges less the configured self-pay discount (rounded to the cent)
    /// become patient A/R on the claim; one bill per claim.
    pub(crate) async fn bill_self_pay_encounter(
        &self,
        tenant: TenantId,
        req: pb::BillSelfPayRequest,
    ) -> Result<pb::BillSelfPayResponse, Status> {
        let call = IdempotentCall::of(&req)?;
        let target = target(&req.account_id, &req.patient_ref)?;
        let claim: ClaimId = required_id("claim_id", &req.claim_id)?;
        let service_date = optional_date("service_date", &req.service_date)?.ok_or_else(|| {
            ServiceError::invalid_argument(
                "service_date",
                "is required (a date such as 2026-03-02)",
            )
        })?;
        let estimate: Option<EstimateId> = optional_id("estimate_id", &req.estimate_id)?;
        if req.charges.is_empty() {
            return Err(err(ServiceError::invalid_argument(
                "charges",
                "at least one charge line is required",
            )));
        }
        let mut gross = Money::ZERO;
        for (i, c) in req.charges.iter().enumerate() {
            identifier(
                &format!("charges[{i}].procedure_code"),
                &c.procedure_code,
                true,
            )?;
            gross += positive(&format!("charges[{i}].charge"), &c.charge)?;
        }
        let discount = gross.mul_rate(self.config.self_pay_discount).round_cents();
        let net = gross - discount;

        let mut op = match call.begin(self.store.database(), &tenant).await? {
            Begun::Replay(first) => return Ok(first),
            Begun::New(op) => op,
        };
        let account = self.target_account(op.tx(), &tenant, &target).await?;
        let mut postings = Vec::with_capacity(3);
        if net.is_positive() {
            postings.push(Posting::on_claim(
                LedgerAccount::PatientAr,
                net,
                Some(claim),
            ));
        }
        if discount.is_positive() {
            postings.push(Posting::on_claim(
                LedgerAccount::SelfPayDiscount,
                discount,
                Some(claim),
            ));
        }
        postings.push(Posting::on_claim(
            LedgerAccount::PatientServiceRevenue,
            -gross,
            Some(claim),
        ));
        let entry = NewJournalEntry {
            account_id: account.id,
            kind: EntryKind::SelfPayCharge,
            memo: format!("self-pay encounter of {service_date}"),
            source_ref: Some(claim.to_string()),
            payer_type: None,
            postings,
        };
        let posted = self
            .store
            .post_journal_entry(op.tx(), &tenant, call.key(), &entry)
            .await
            .map_err(err)?;
        self.store
            .insert_self_pay_bill(
                op.tx(),
                &tenant,
                &NewSelfPayBill {
                    claim,
                    entry_id: posted.id,
                    service_date,
                    gross,
                    discount,
                    estimate_id: estimate,
                },
            )
            .await
            .map_err(err)?;
        let account = after(account, &posted);
        let response = pb::BillSelfPayResponse {
            account: Some(to_proto(&account, None)),
            entry: Some(entry_to_proto(&posted, None)),
            gross_charges: gross.to_string(),
            discount: discount.to_string(),
            patient_amount: net.to_string(),
        };
        op.commit(&response).await?;
        Ok(response)
    }

    /// RecordPayment: debit CASH, credit PATIENT_AR allocated to the named claim or the oldest
    /// open claims; what is left is a credit balance (PATIENT_AR tied to no claim).
    pub(crate) async fn record_payment_rpc(
        &self,
        tenant: TenantId,
        req: pb::RecordPaymentRequest,
    ) -> Result<pb::RecordPaymentResponse, Status> {
        let call = IdempotentCall::of(&req)?;
        let checked = self.payment(&req)?;
        let mut op = match call.begin(self.store.database(), &tenant).await? {
            Begun::Replay(first) => return Ok(first),
            Begun::New(op) => op,
        };
        let response = self
            .record_payments_in(op.tx(), &tenant, &[(call.key(), &checked)])
            .await?
            .pop()
            .ok_or_else(|| err(ServiceError::internal("a payment without its answer")))?;
        op.commit(&response).await?;
        Ok(response)
    }

    /// Checks a RecordPayment request (errors name the field); nothing is read or written.
    pub(crate) fn payment(&self, req: &pb::RecordPaymentRequest) -> Result<Payment, ServiceError> {
        let account_id: AccountId = required_id("account_id", &req.account_id)?;
        let amount = positive("amount", &req.amount)?;
        let method = method("method", req.method)?;
        let reference = identifier("reference", &req.reference, false)?;
        if matches!(method, PaymentMethod::Check | PaymentMethod::Ach) && reference.is_none() {
            return Err(ServiceError::invalid_argument(
                "reference",
                format!("is required for a {method} payment (check number or ACH trace)"),
            ));
        }
        let received_date = optional_date("received_date", &req.received_date)?
            .unwrap_or_else(|| self.clock.today());
        let memo_text = memo("memo", &req.memo, false)?;
        let payer = payer_type(req.payer_type)?;
        let payer_ref = identifier("payer_ref", &req.payer_ref, false)?;
        let claim: Option<ClaimId> = optional_id("claim_id", &req.claim_id)?;
        let agency_fee = optional_money("agency_fee", &req.agency_fee)?;
        if agency_fee.is_some() && payer != PayerType::CollectionAgency {
            return Err(ServiceError::invalid_argument(
                "agency_fee",
                "is only for payments from a collection agency (payer_type COLLECTION_AGENCY)",
            ));
        }
        if agency_fee.is_some_and(|fee| fee.is_negative() || fee > amount) {
            return Err(ServiceError::invalid_argument(
                "agency_fee",
                format!("must be between 0.00 and the amount {amount}"),
            ));
        }
        Ok(Payment {
            account_id,
            amount,
            method,
            reference,
            received_date,
            memo: memo_text,
            payer,
            payer_ref,
            claim,
            agency_fee,
        })
    }

    /// Records checked RecordPayment requests in `tx` (the single call's one, a batch's many)
    /// as if each were recorded alone after the one before, with multi-row statements across
    /// them: the accounts' open items are read once and each payment is allocated in memory
    /// over what the payments before it left open. Returns the answers in order; the first
    /// item that fails (an unknown account) fails the call and leaves `tx` for the caller to
    /// roll back.
    pub(crate) async fn record_payments_in(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        items: &[(&IdempotencyKey, &Payment)],
    ) -> Result<Vec<pb::RecordPaymentResponse>, Status> {
        let targets: Vec<AccountId> = items.iter().map(|(_, p)| p.account_id).collect();
        let mut accounts = self.locked(tx, tenant, &targets).await?;
        let distinct: Vec<AccountId> = accounts.keys().copied().collect();
        let mut open = self
            .store
            .claim_balances_of(tx, tenant, &distinct)
            .await
            .map_err(err)?;

        let mut steps: Vec<(Account, Option<Money>)> = Vec::with_capacity(items.len());
        let mut entries: Vec<(&IdempotencyKey, NewJournalEntry)> = Vec::with_capacity(items.len());
        let mut ids = Vec::with_capacity(items.len());
        for (key, p) in items {
            let fee = if p.payer == PayerType::CollectionAgency {
                Some(
                    self.agency_fee(tx, tenant, &p.account_id, p.amount, p.agency_fee)
                        .await?,
                )
            } else {
                None
            };
            let payment_id = uuid::Uuid::now_v7();
            let account_open = open.entry(p.account_id).or_default();
            let entry = payment_entry(p, payment_id, account_open, fee);
            // What the entry leaves open, for the payments after it. An item it opens (only a
            // credit, tied to no claim) was first posted after everything read.
            for posting in &entry.postings {
                if posting.ledger_account != LedgerAccount::PatientAr {
                    continue;
                }
                match account_open.iter_mut().find(|b| b.claim == posting.claim) {
                    Some(b) => b.balance += posting.amount,
                    None => account_open.push(ClaimBalance {
                        claim: posting.claim,
                        first_posted: i64::MAX,
                        balance: posting.amount,
                    }),
                }
            }
            let account = accounts
                .get_mut(&p.account_id)
                .ok_or(err(StoreError::AccountNotFound(p.account_id)))?;
            account.balance += entry
                .postings
                .iter()
                .filter(|x| x.ledger_account == LedgerAccount::PatientAr)
                .map(|x| x.amount)
                .sum::<Money>();
            steps.push((account.clone(), fee));
            ids.push(payment_id);
            entries.push((*key, entry));
        }
        let refs: Vec<(&IdempotencyKey, &NewJournalEntry)> =
            entries.iter().map(|(k, e)| (*k, e)).collect();
        let posted = self
            .store
            .post_journal_entries(tx, tenant, &refs)
            .await
            .map_err(err)?;
        let records: Vec<NewPayment> = items
            .iter()
            .zip(&ids)
            .zip(&posted)
            .map(|(((_, p), id), entry)| NewPayment {
                id: *id,
                account_id: p.account_id,
                entry_id: entry.id,
                payer_type: p.payer,
                payer_ref: p.payer_ref.clone(),
                method: p.method,
                reference: p.reference.clone(),
                received_date: p.received_date,
                amount: p.amount,
                claim: p.claim,
            })
            .collect();
        self.store
            .insert_payments(tx, tenant, &records)
            .await
            .map_err(err)?;

        // The answers, in order: each payment pays toward the account's live plan, and what
        // that did to the plan shows in its answer and from the next item on.
        let mut plans: HashMap<AccountId, LivePlan> = HashMap::new();
        let mut answers = Vec::with_capacity(steps.len());
        for (((_, p), (mut account, fee)), entry) in items.iter().zip(steps).zip(&posted) {
            if let Some(plan) = plans.get(&account.id) {
                account.collection.payment_plan = *plan;
            }
            account.updated_at = entry.posted_at;
            let installments_paid = if account.collection.payment_plan.is_some() {
                let (paid, live) = self.pay_plan(tx, tenant, &account, p.amount).await?;
                plans.insert(account.id, live);
                account.collection.payment_plan = live;
                paid
            } else {
                Vec::new()
            };
            answers.push(pb::RecordPaymentResponse {
                account: Some(to_proto(&account, None)),
                entry: Some(entry_to_proto(entry, None)),
                installments_paid,
                agency_fee: fee.map(|f| f.to_string()).unwrap_or_default(),
            });
        }
        Ok(answers)
    }

    /// IssueRefund: at most the credit balance (FAILED_PRECONDITION naming both amounts).
    pub(crate) async fn issue_refund_rpc(
        &self,
        tenant: TenantId,
        req: pb::IssueRefundRequest,
    ) -> Result<pb::IssueRefundResponse, Status> {
        let call = IdempotentCall::of(&req)?;
        let account_id: AccountId = required_id("account_id", &req.account_id)?;
        let amount = positive("amount", &req.amount)?;
        let method = method("method", req.method)?;
        let reason = memo("reason", &req.reason, true)?;
        let reference = identifier("reference", &req.reference, false)?;

        let mut op = match call.begin(self.store.database(), &tenant).await? {
            Begun::Replay(first) => return Ok(first),
            Begun::New(op) => op,
        };
        let account = self
            .store
            .lock_account(op.tx(), &tenant, &account_id)
            .await
            .map_err(err)?;
        let credit = account.credit_balance();
        if amount > credit {
            return Err(err(ServiceError::FailedPrecondition(format!(
                "amount {amount} exceeds the credit balance {credit} of account {account_id}"
            ))));
        }
        let refund_id = RefundId::new();
        let entry = NewJournalEntry {
            account_id,
            kind: EntryKind::Refund,
            memo: reason.clone(),
            source_ref: Some(refund_id.to_string()),
            payer_type: None,
            postings: vec![
                Posting::new(LedgerAccount::PatientAr, amount),
                Posting::new(LedgerAccount::RefundsPayable, -amount),
            ],
        };
        let posted = self
            .store
            .post_journal_entry(op.tx(), &tenant, call.key(), &entry)
            .await
            .map_err(err)?;
        let refund = NewRefund {
            id: refund_id,
            account_id,
            entry_id: posted.id,
            amount,
            method,
            reason,
            reference,
        };
        self.store
            .insert_refund(op.tx(), &tenant, &refund)
            .await
            .map_err(err)?;
        let account = after(account, &posted);
        let response = pb::IssueRefundResponse {
            refund: Some(pb::Refund {
                id: refund.id.to_string(),
                account_id: account_id.to_string(),
                amount: amount.to_string(),
                method: req.method,
                status: pb::RefundStatus::Pending as i32,
                reason: refund.reason,
                reference: refund.reference.unwrap_or_default(),
                journal_entry_id: posted.id.to_string(),
                created_at: Some(medbill_runtime::fields::timestamp(posted.posted_at)),
            }),
            account: Some(to_proto(&account, None)),
            entry: Some(entry_to_proto(&posted, None)),
        };
        op.commit(&response).await?;
        Ok(response)
    }

    /// WriteOff: at most the balance owed (FAILED_PRECONDITION naming both amounts); empty
    /// amount means all of it. Allocated to the oldest open claims like a payment.
    pub(crate) async fn write_off_rpc(
        &self,
        tenant: TenantId,
        req: pb::WriteOffRequest,
    ) -> Result<pb::WriteOffResponse, Status> {
        let call = IdempotentCall::of(&req)?;
        let account_id: AccountId = required_id("account_id", &req.account_id)?;
        let amount = if req.amount.is_empty() {
            None
        } else {
            Some(positive("amount", &req.amount)?)
        };
        let kind = write_off_kind(req.kind)?;
        let reason = memo("reason", &req.reason, true)?;

        let mut op = match call.begin(self.store.database(), &tenant).await? {
            Begun::Replay(first) => return Ok(first),
            Begun::New(op) => op,
        };
        let account = self
            .store
            .lock_account(op.tx(), &tenant, &account_id)
            .await
            .map_err(err)?;
        let due = account.amount_due();
        let amount = amount.unwrap_or(due);
        if !amount.is_positive() {
            return Err(err(ServiceError::FailedPrecondition(format!(
                "account {account_id} owes nothing (balance {}): there is nothing to write off",
                account.balance
            ))));
        }
        if amount > due {
            return Err(err(ServiceError::FailedPrecondition(format!(
                "amount {amount} exceeds the balance {due} owed on account {account_id}"
            ))));
        }
        let open = self
            .store
            .claim_balances(op.tx(), &tenant, &account_id)
            .await
            .map_err(err)?;
        let mut postings = vec![Posting::new(kind.ledger_account(), amount)];
        postings.extend(
            allocate(amount, &open, None)
                .into_iter()
                .map(|(c, part)| Posting::on_claim(LedgerAccount::PatientAr, -part, c)),
        );
        let entry = NewJournalEntry {
            account_id,
            kind: EntryKind::WriteOff,
            memo: reason,
            source_ref: None,
            payer_type: None,
            postings,
        };
        let posted = self
            .store
            .post_journal_entry(op.tx(), &tenant, call.key(), &entry)
            .await
            .map_err(err)?;
        let account = after(account, &posted);
        self.keep_plan_within_balance(op.tx(), &tenant, &account)
            .await?;
        let response = pb::WriteOffResponse {
            account: Some(to_proto(&account, None)),
            entry: Some(entry_to_proto(&posted, None)),
        };
        op.commit(&response).await?;
        Ok(response)
    }
}
