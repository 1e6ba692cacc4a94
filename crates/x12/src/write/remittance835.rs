//! 835 (005010X221A1) health care claim payment / remittance advice.
//!
//! The model is the reader's own [`Remittance`] (so anything written reads back the same), plus
//! the bank accounts of an EFT (BPR06-BPR09, BPR12-BPR15), which the reader does not keep.
//! Before anything is written the remittance is balanced with [`crate::balance`]'s rules: an
//! 835 that does not balance at line, claim or transaction level is refused, never written.
//!
//! Claims are written in order under their LX (`header_number`; claims without one go under the
//! LX before them, or `LX*1`), with the LX's TS3/TS2 from `header_numbers`. Adjustments are
//! written grouped by CAS01 in order of first appearance, six reasons per CAS at most.

use rust_decimal::Decimal;

use super::format::{amount, invalid};
use super::{Element, WriteError, X12Writer};
use crate::balance::{balance_claim, balance_transaction};
use crate::seg;
use crate::transactions::era835::{
    Adjustment, AmountRef, ClaimPayment, Contact, DateRef, Party, Procedure, ProviderAdjustment,
    QuantityRef, Reference, Remittance, ServicePayment,
};

/// GS08 of an 835 (its ST03 is not used).
pub const VERSION: &str = "005010X221A1";

/// The bank accounts an EFT moves money between (BPR06-BPR09 and BPR12-BPR15, DFI qualifier
/// `01` ABA routing number, account qualifier `DA` demand deposit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EftAccounts {
    /// BPR07: the payer's bank routing number (9 digits).
    pub payer_routing: String,
    /// BPR09: the payer's account number.
    pub payer_account: String,
    /// BPR13: the payee's bank routing number (9 digits).
    pub payee_routing: String,
    /// BPR15: the payee's account number.
    pub payee_account: String,
}

/// One 835 transaction set to write.
#[derive(Debug, Clone, PartialEq)]
pub struct RemittanceAdvice<'a> {
    /// Everything the set says; `control_number`, `implementation` (ST03, not used in an 835), `claim_count`, `claims_paid_total`,
    /// `segment_count` and the segment positions are the reader's and are not written.
    pub remittance: Remittance<'a>,
    /// Required when BPR04 is `ACH`; not written otherwise.
    pub accounts: Option<EftAccounts>,
}

const HANDLING: &[&str] = &["C", "D", "H", "I", "P", "U", "X"];
const METHODS: &[&str] = &["ACH", "BOP", "CHK", "FWT", "NON"];
const CLAIM_STATUS: &[&str] = &["1", "2", "3", "4", "19", "20", "21", "22", "23", "25"];
const ADJUSTMENT_GROUPS: &[&str] = &["CO", "CR", "OA", "PI", "PR"];

/// Writes one 835 set (ST..SE) into an open group (GS01 `HP`, GS08 `005010X221A1`).
pub fn write_835(
    w: &mut X12Writer,
    advice: &RemittanceAdvice<'_>,
    control_number: u32,
) -> Result<(), WriteError> {
    check(advice)?;
    let r = &advice.remittance;
    // The 835 guide marks ST03 not used: the version is GS08 only.
    w.begin_set("835", control_number, "")?;
    bpr(w, advice)?;
    if let Some(t) = &r.trace {
        seg!(
            w,
            "TRN",
            t.type_code.as_ref(),
            t.number.as_ref(),
            t.originator.as_deref(),
            t.supplemental.as_deref()
        )?;
    }
    if let Some(currency) = &r.currency {
        seg!(w, "CUR", "PR", currency.as_ref())?;
    }
    references(w, &r.references)?;
    dates(w, &r.dates)?;
    party(w, &r.payer)?;
    party(w, &r.payee)?;
    let mut open_lx: Option<&str> = None;
    for (n, claim) in r.claims.iter().enumerate() {
        let lx = claim.header_number.as_deref().or(open_lx).unwrap_or("1");
        if open_lx != Some(lx) {
            header_number(w, r, lx)?;
            open_lx = Some(lx);
        }
        claim_payment(w, claim, n + 1)?;
    }
    provider_adjustments(w, &r.provider_adjustments)?;
    w.end_set()
}

fn check(advice: &RemittanceAdvice<'_>) -> Result<(), WriteError> {
    let r = &advice.remittance;
    let p = &r.payment;
    if !HANDLING.contains(&p.handling.as_ref()) {
        return Err(invalid("payment", "BPR01", "must be C, D, H, I, P, U or X"));
    }
    if !matches!(p.credit_debit.as_ref(), "C" | "D") {
        return Err(invalid("payment", "BPR03", "must be C or D"));
    }
    if !METHODS.contains(&p.method.as_ref()) {
        return Err(invalid(
            "payment",
            "BPR04",
            "must be ACH, BOP, CHK, FWT or NON",
        ));
    }
    if p.method == "ACH" && advice.accounts.is_none() {
        return Err(invalid(
            "payment",
            "accounts",
            "an ACH payment needs the payer's and payee's bank accounts",
        ));
    }
    if let Some(a) = &advice.accounts {
        for (field, routing) in [("BPR07", &a.payer_routing), ("BPR13", &a.payee_routing)] {
            if routing.len() != 9 || !routing.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    "payment",
                    field,
                    "must be a 9-digit routing number",
                ));
            }
        }
    }
    if r.trace.is_none() {
        return Err(invalid(
            "remittance",
            "TRN",
            "the reassociation trace is required",
        ));
    }
    if r.payer.entity != "PR" {
        return Err(invalid("payer", "N101", "must be PR"));
    }
    if r.payee.entity != "PE" {
        return Err(invalid("payee", "N101", "must be PE"));
    }
    for (n, c) in r.claims.iter().enumerate() {
        let context = format!("claim {}", n + 1);
        if c.patient_control_number.is_empty() {
            return Err(invalid(&context, "CLP01", "is required"));
        }
        if !CLAIM_STATUS.contains(&c.status_code.as_ref()) {
            return Err(invalid(&context, "CLP02", "is not a claim status code"));
        }
        let groups = c
            .adjustments
            .iter()
            .chain(c.services.iter().flat_map(|s| s.adjustments.iter()));
        for a in groups {
            if !ADJUSTMENT_GROUPS.contains(&a.group.as_ref()) || a.reason.is_empty() {
                return Err(invalid(
                    &context,
                    "CAS",
                    "group must be CO, CR, OA, PI or PR, with a reason code",
                ));
            }
        }
    }
    // The crate's own balancer decides: an 835 that it would flag is never written.
    let mut paid = Decimal::ZERO;
    for (n, c) in r.claims.iter().enumerate() {
        let mut problems = Vec::new();
        balance_claim(c, &mut problems);
        if let Some(p) = problems.first() {
            let (context, field) = match p.line {
                Some(line) => (format!("claim {} line {line}", n + 1), "SVC03"),
                None => (format!("claim {}", n + 1), "CLP04"),
            };
            return Err(unbalanced(&context, field, p.difference));
        }
        paid += c.paid;
    }
    if let Some(p) = balance_transaction(r, paid) {
        return Err(unbalanced("payment", "BPR02", p.difference));
    }
    Ok(())
}

fn unbalanced(context: &str, field: &'static str, difference: Decimal) -> WriteError {
    invalid(
        context,
        field,
        &format!("does not balance (stated minus computed: {difference})"),
    )
}

fn bpr(w: &mut X12Writer, advice: &RemittanceAdvice<'_>) -> Result<(), WriteError> {
    let p = &advice.remittance.payment;
    let total = amount("payment", "BPR02", p.amount)?;
    let eft = advice.accounts.as_ref().filter(|_| p.method == "ACH");
    let dfi = |routing: &str, account: &str| -> [Element; 4] {
        ["01".into(), routing.into(), "DA".into(), account.into()]
    };
    let [a6, a7, a8, a9] = eft.map_or_else(empty4, |a| dfi(&a.payer_routing, &a.payer_account));
    let [a12, a13, a14, a15] = eft.map_or_else(empty4, |a| dfi(&a.payee_routing, &a.payee_account));
    w.segment(
        "BPR",
        &[
            p.handling.as_ref().into(),
            total.into(),
            p.credit_debit.as_ref().into(),
            p.method.as_ref().into(),
            p.format.as_deref().into(),
            a6,
            a7,
            a8,
            a9,
            p.originating_company_id.as_deref().into(),
            "".into(),
            a12,
            a13,
            a14,
            a15,
            p.date.as_deref().into(),
        ],
    )
}

fn empty4() -> [Element; 4] {
    ["".into(), "".into(), "".into(), "".into()]
}

fn references(w: &mut X12Writer, refs: &[Reference<'_>]) -> Result<(), WriteError> {
    for r in refs {
        seg!(w, "REF", r.qualifier.as_ref(), r.value.as_ref())?;
    }
    Ok(())
}

fn dates(w: &mut X12Writer, dates: &[DateRef<'_>]) -> Result<(), WriteError> {
    for d in dates {
        seg!(w, "DTM", d.qualifier.as_ref(), d.date.as_ref())?;
    }
    Ok(())
}

fn amounts(w: &mut X12Writer, context: &str, list: &[AmountRef<'_>]) -> Result<(), WriteError> {
    for a in list {
        seg!(
            w,
            "AMT",
            a.qualifier.as_ref(),
            amount(context, "AMT02", a.amount)?
        )?;
    }
    Ok(())
}

fn quantities(w: &mut X12Writer, list: &[QuantityRef<'_>]) -> Result<(), WriteError> {
    for q in list {
        seg!(
            w,
            "QTY",
            q.qualifier.as_ref(),
            super::format::decimal(q.quantity)
        )?;
    }
    Ok(())
}

fn contacts(w: &mut X12Writer, list: &[Contact<'_>]) -> Result<(), WriteError> {
    for c in list {
        let mut elements: Vec<Element> = vec![c.function.as_ref().into(), c.name.as_deref().into()];
        for (qualifier, number) in c.numbers.iter().take(3) {
            elements.push(qualifier.as_ref().into());
            elements.push(number.as_ref().into());
        }
        w.segment("PER", &elements)?;
    }
    Ok(())
}

fn party(w: &mut X12Writer, p: &Party<'_>) -> Result<(), WriteError> {
    seg!(
        w,
        "N1",
        p.entity.as_ref(),
        p.name.as_ref(),
        p.id_qualifier.as_deref(),
        p.id.as_deref()
    )?;
    for pair in p.address_lines.chunks(2) {
        let second = pair.get(1).map(|l| l.as_ref());
        seg!(w, "N3", pair[0].as_ref(), second)?;
    }
    if p.city.is_some() || p.state.is_some() || p.postal_code.is_some() {
        seg!(
            w,
            "N4",
            p.city.as_deref(),
            p.state.as_deref(),
            p.postal_code.as_deref()
        )?;
    }
    references(w, &p.references)?;
    contacts(w, &p.contacts)
}

fn optional_amounts(context: &str, list: &[Option<Decimal>]) -> Result<Vec<Element>, WriteError> {
    list.iter()
        .map(|v| super::format::opt_amount(context, "TS3/TS2", *v).map(Element::from))
        .collect()
}

fn header_number(w: &mut X12Writer, r: &Remittance<'_>, number: &str) -> Result<(), WriteError> {
    seg!(w, "LX", number)?;
    let Some(h) = r.header_numbers.iter().find(|h| h.number == number) else {
        return Ok(());
    };
    if let Some(s) = &h.summary {
        let mut elements: Vec<Element> = vec![
            s.provider_id.as_ref().into(),
            s.facility_code.as_ref().into(),
            s.fiscal_period_date.as_ref().into(),
            super::format::decimal(s.claim_count).into(),
            amount("TS3", "TS305", s.total_charge)?.into(),
        ];
        elements.extend(optional_amounts("TS3", &s.amounts)?);
        w.segment("TS3", &elements)?;
    }
    if let Some(supplemental) = &h.supplemental {
        w.segment("TS2", &optional_amounts("TS2", supplemental)?)?;
    }
    Ok(())
}

/// Writes CAS segments: one per group, in order of first appearance, six reasons each.
fn adjustments(
    w: &mut X12Writer,
    context: &str,
    list: &[Adjustment<'_>],
) -> Result<(), WriteError> {
    let mut groups: Vec<&str> = Vec::new();
    for a in list {
        if !groups.contains(&a.group.as_ref()) {
            groups.push(a.group.as_ref());
        }
    }
    for group in groups {
        let of_group: Vec<&Adjustment<'_>> = list.iter().filter(|a| a.group == group).collect();
        for chunk in of_group.chunks(6) {
            let mut elements: Vec<Element> = vec![group.into()];
            for a in chunk {
                elements.push(a.reason.as_ref().into());
                elements.push(amount(context, "CAS amount", a.amount)?.into());
                elements.push(a.quantity.map(super::format::decimal).into());
            }
            w.segment("CAS", &elements)?;
        }
    }
    Ok(())
}

fn procedure(p: &Procedure<'_>) -> Element {
    let mut parts: Vec<String> = vec![p.qualifier.to_string(), p.code.to_string()];
    let mods: Vec<String> = p.modifiers.iter().take(4).map(|m| m.to_string()).collect();
    parts.extend(mods);
    if let Some(d) = &p.description {
        parts.resize(6, String::new());
        parts.push(d.to_string());
    }
    Element::Composite(parts)
}

fn claim_payment(w: &mut X12Writer, c: &ClaimPayment<'_>, n: usize) -> Result<(), WriteError> {
    let context = format!("claim {n}");
    let ctx = context.as_str();
    seg!(
        w,
        "CLP",
        c.patient_control_number.as_ref(),
        c.status_code.as_ref(),
        amount(ctx, "CLP03", c.charge)?,
        amount(ctx, "CLP04", c.paid)?,
        super::format::opt_amount(ctx, "CLP05", c.patient_responsibility)?,
        c.filing_indicator.as_deref(),
        c.payer_claim_control_number.as_deref(),
        c.facility_type.as_deref(),
        c.frequency.as_deref(),
        "",
        c.drg_code.as_deref(),
        c.drg_weight.map(super::format::decimal),
        c.discharge_fraction.map(super::format::decimal)
    )?;
    adjustments(w, ctx, &c.adjustments)?;
    for name in &c.names {
        seg!(
            w,
            "NM1",
            name.entity.as_ref(),
            name.entity_type.as_ref(),
            name.last.as_deref(),
            name.first.as_deref(),
            name.middle.as_deref(),
            "",
            name.suffix.as_deref(),
            name.id_qualifier.as_deref(),
            name.id.as_deref()
        )?;
    }
    if let Some(m) = &c.inpatient {
        let elements: Vec<Element> = m.elements.iter().map(|e| e.as_ref().into()).collect();
        w.segment("MIA", &elements)?;
    }
    if let Some(m) = &c.outpatient {
        let mut elements: Vec<Element> = vec![
            m.reimbursement_rate.map(super::format::decimal).into(),
            super::format::opt_amount(ctx, "MOA02", m.hcpcs_payable_amount)?.into(),
        ];
        for i in 0..5 {
            elements.push(m.remark_codes.get(i).map(|r| r.as_ref()).into());
        }
        elements.push(super::format::opt_amount(ctx, "MOA08", m.esrd_payment_amount)?.into());
        elements.push(
            super::format::opt_amount(ctx, "MOA09", m.nonpayable_professional_component)?.into(),
        );
        w.segment("MOA", &elements)?;
    }
    references(w, &c.references)?;
    dates(w, &c.dates)?;
    contacts(w, &c.contacts)?;
    amounts(w, ctx, &c.amounts)?;
    quantities(w, &c.quantities)?;
    for (i, s) in c.services.iter().enumerate() {
        service(w, s, &format!("{context} line {}", i + 1))?;
    }
    Ok(())
}

fn service(w: &mut X12Writer, s: &ServicePayment<'_>, context: &str) -> Result<(), WriteError> {
    w.segment(
        "SVC",
        &[
            procedure(&s.procedure),
            amount(context, "SVC02", s.charge)?.into(),
            amount(context, "SVC03", s.paid)?.into(),
            s.revenue_code.as_deref().into(),
            s.units.map(super::format::decimal).into(),
            s.submitted_procedure
                .as_deref()
                .map_or_else(|| Element::from(""), procedure),
            s.submitted_units.map(super::format::decimal).into(),
        ],
    )?;
    dates(w, &s.dates)?;
    adjustments(w, context, &s.adjustments)?;
    references(w, &s.references)?;
    amounts(w, context, &s.amounts)?;
    quantities(w, &s.quantities)?;
    for r in &s.remarks {
        seg!(w, "LQ", r.qualifier.as_ref(), r.code.as_ref())?;
    }
    Ok(())
}

/// Writes PLB segments: consecutive adjustments of one provider and fiscal date share a PLB,
/// six at most.
fn provider_adjustments(
    w: &mut X12Writer,
    list: &[ProviderAdjustment<'_>],
) -> Result<(), WriteError> {
    let mut rest = list;
    while let Some(first) = rest.first() {
        let same = rest
            .iter()
            .take(6)
            .take_while(|p| {
                p.provider_id == first.provider_id
                    && p.fiscal_period_date == first.fiscal_period_date
            })
            .count();
        let mut elements: Vec<Element> = vec![
            first.provider_id.as_ref().into(),
            first.fiscal_period_date.as_ref().into(),
        ];
        for p in &rest[..same] {
            let mut composite = vec![p.reason.to_string()];
            if let Some(reference) = &p.reference {
                composite.push(reference.to_string());
            }
            elements.push(Element::Composite(composite));
            elements.push(amount("provider adjustment", "PLB amount", p.amount)?.into());
        }
        w.segment("PLB", &elements)?;
        rest = &rest[same..];
    }
    Ok(())
}
