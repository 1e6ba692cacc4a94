//! Builds the 835 model of a payment: claim payments from decisions, reversals of earlier
//! payments, and the set around them (BPR, TRN, DTM*405, payer, payee, PLB).

use std::borrow::Cow;

use chrono::NaiveDate;
use medbill_domain::Money;
use medbill_x12::transactions::era835 as m;
use medbill_x12::write::{EftAccounts, RemittanceAdvice};
use rust_decimal::Decimal;

use super::engine::ClaimDecision;
use crate::catalog::{Member, Payer, PaymentMethod};
use crate::claim_rules::{ClaimKind, ReceivedClaim};

/// The payer's own bank (BPR07/BPR09): synthetic.
const PAYER_ROUTING: &str = "011000015";
/// The payee's bank (BPR13): synthetic; the account (BPR15) is the payee's NPI.
const PAYEE_ROUTING: &str = "071000013";

fn text(s: impl Into<String>) -> Cow<'static, str> {
    Cow::Owned(s.into())
}

fn d8(d: NaiveDate) -> Cow<'static, str> {
    text(d.format("%Y%m%d").to_string())
}

fn dtm(qualifier: &'static str, d: NaiveDate) -> m::DateRef<'static> {
    m::DateRef {
        qualifier: Cow::Borrowed(qualifier),
        date: d8(d),
    }
}

fn amount(v: Money) -> Decimal {
    v.as_decimal()
}

/// CLP06 from the plan's insurance type: 12 PPO, HM HMO, CI commercial otherwise.
fn filing_indicator(member: &Member) -> &'static str {
    match member.plan.entry.insurance_type.as_deref() {
        Some("PR") => "12",
        Some("HM") => "HM",
        _ => "CI",
    }
}

/// The CLP loop of a decided claim.
pub fn claim_payment(
    claim: &ReceivedClaim,
    member: Option<&Member>,
    payer_claim_number: &str,
    received: NaiveDate,
    decision: &ClaimDecision,
) -> m::ClaimPayment<'static> {
    let names = vec![m::Name {
        entity: Cow::Borrowed("QC"),
        entity_type: Cow::Borrowed("1"),
        last: Some(text(claim.patient_name.last.clone())),
        first: claim.patient_name.first.clone().map(text),
        id_qualifier: Some(Cow::Borrowed("MI")),
        id: Some(text(claim.member_id.clone())),
        ..m::Name::default()
    }];
    let services = claim
        .lines
        .iter()
        .zip(&decision.lines)
        .map(|(line, d)| {
            let institutional_revenue_only = line.procedure.qualifier == "NU";
            let mut s = m::ServicePayment {
                procedure: m::Procedure {
                    qualifier: text(line.procedure.qualifier.clone()),
                    code: text(line.procedure.code.clone()),
                    modifiers: line
                        .procedure
                        .modifiers
                        .iter()
                        .map(|x| text(x.clone()))
                        .collect(),
                    description: None,
                },
                charge: amount(d.charge),
                paid: amount(d.paid),
                revenue_code: line
                    .revenue_code
                    .clone()
                    .filter(|_| !institutional_revenue_only)
                    .map(text),
                units: Some(line.units),
                ..m::ServicePayment::default()
            };
            if let Some(date) = line.service_date {
                s.dates.push(dtm("472", date.from));
            }
            s.adjustments = d
                .adjustments
                .iter()
                .map(|a| m::Adjustment {
                    group: Cow::Borrowed(a.group),
                    reason: Cow::Borrowed(a.reason),
                    amount: amount(a.amount),
                    quantity: None,
                })
                .collect();
            if let Some(lcn) = &line.line_control_number {
                s.references.push(m::Reference {
                    qualifier: Cow::Borrowed("6R"),
                    value: text(lcn.clone()),
                });
            }
            if d.priced {
                s.amounts.push(m::AmountRef {
                    qualifier: Cow::Borrowed("B6"),
                    amount: amount(d.allowed),
                });
            }
            s.remarks = d
                .remarks
                .iter()
                .map(|r| m::Remark {
                    qualifier: Cow::Borrowed("HE"),
                    code: Cow::Borrowed(r),
                })
                .collect();
            s
        })
        .collect();
    let dates = [
        dtm("232", claim.service_date.from),
        dtm(
            "233",
            claim.service_date.to.unwrap_or(claim.service_date.from),
        ),
        dtm("050", received),
    ]
    .into_iter()
    .collect();
    let facility = match claim.kind {
        ClaimKind::Institutional => claim
            .bill_type
            .as_deref()
            .map(|b| text(b.chars().take(2).collect::<String>())),
        ClaimKind::Professional => None,
    };
    m::ClaimPayment {
        patient_control_number: text(claim.patient_control_number.clone()),
        status_code: Cow::Borrowed(decision.status()),
        charge: claim.total_charge,
        paid: amount(decision.paid()),
        patient_responsibility: Some(amount(decision.patient_responsibility())),
        filing_indicator: Some(Cow::Borrowed(member.map_or("CI", filing_indicator))),
        payer_claim_control_number: Some(text(payer_claim_number)),
        facility_type: facility,
        frequency: Some(Cow::Borrowed(claim.frequency.code())),
        names,
        dates,
        services,
        ..m::ClaimPayment::default()
    }
}

/// The reversal (CLP02 22) of an earlier claim payment: the same loop with every amount negated.
pub fn reversal(original: &m::ClaimPayment<'static>) -> m::ClaimPayment<'static> {
    let mut r = original.clone();
    r.status_code = Cow::Borrowed("22");
    r.charge = -r.charge;
    r.paid = -r.paid;
    r.patient_responsibility = r.patient_responsibility.map(|v| -v);
    for a in &mut r.adjustments {
        a.amount = -a.amount;
    }
    for s in &mut r.services {
        s.charge = -s.charge;
        s.paid = -s.paid;
        for a in &mut s.adjustments {
            a.amount = -a.amount;
        }
        for a in &mut s.amounts {
            a.amount = -a.amount;
        }
    }
    r
}

/// The payee of a set: billing provider name and NPI.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Payee {
    /// 1000B N102.
    pub name: String,
    /// 1000B N104 (XX).
    pub npi: String,
}

/// What a set pays and how.
pub struct SetPayment<'a> {
    /// The payer.
    pub payer: &'a Payer,
    /// The payee.
    pub payee: &'a Payee,
    /// The claim payments, in order.
    pub claims: Vec<m::ClaimPayment<'static>>,
    /// PLB adjustments (reason, reference, amount; negative pays the provider more).
    pub adjustments: Vec<(&'static str, String, Money)>,
    /// BPR02.
    pub total: Money,
    /// TRN02: the EFT trace or check number.
    pub trace: String,
    /// BPR16 and DTM*405.
    pub date: NaiveDate,
}

/// The 835 set of a payment.
pub fn advice(p: SetPayment<'_>) -> RemittanceAdvice<'static> {
    let moves_money = p.total.is_positive();
    let eft = moves_money && p.payer.entry.payment_method == PaymentMethod::Eft;
    let (handling, method, format) = match (moves_money, eft) {
        (false, _) => ("H", "NON", None),
        (true, true) => ("I", "ACH", Some(Cow::Borrowed("CCP"))),
        (true, false) => ("C", "CHK", None),
    };
    let company = p.payer.company_id();
    let remittance = m::Remittance {
        payment: m::Payment {
            handling: Cow::Borrowed(handling),
            amount: amount(p.total),
            credit_debit: Cow::Borrowed("C"),
            method: Cow::Borrowed(method),
            format,
            originating_company_id: moves_money.then(|| text(company.clone())),
            date: Some(d8(p.date)),
            ..m::Payment::default()
        },
        trace: Some(m::Trace {
            type_code: Cow::Borrowed("1"),
            number: text(p.trace),
            originator: Some(text(company)),
            supplemental: None,
        }),
        dates: vec![dtm("405", p.date)],
        payer: m::Party {
            entity: Cow::Borrowed("PR"),
            name: text(p.payer.entry.name.clone()),
            id_qualifier: Some(Cow::Borrowed("XV")),
            id: Some(text(p.payer.entry.id.clone())),
            address_lines: vec![Cow::Borrowed("100 PAYER WAY")],
            city: Some(Cow::Borrowed("HARTFORD")),
            state: Some(Cow::Borrowed("CT")),
            postal_code: Some(Cow::Borrowed("06101")),
            contacts: vec![m::Contact {
                function: Cow::Borrowed("BL"),
                name: Some(Cow::Borrowed("PROVIDER SERVICES")),
                numbers: vec![(Cow::Borrowed("TE"), Cow::Borrowed("8005550199"))],
            }],
            ..m::Party::default()
        },
        payee: m::Party {
            entity: Cow::Borrowed("PE"),
            name: text(p.payee.name.clone()),
            id_qualifier: Some(Cow::Borrowed("XX")),
            id: Some(text(p.payee.npi.clone())),
            ..m::Party::default()
        },
        header_numbers: vec![m::HeaderNumber {
            number: Cow::Borrowed("1"),
            ..m::HeaderNumber::default()
        }],
        claims: p
            .claims
            .into_iter()
            .map(|mut c| {
                c.header_number = Some(Cow::Borrowed("1"));
                c
            })
            .collect(),
        provider_adjustments: p
            .adjustments
            .into_iter()
            .map(|(reason, reference, amount)| m::ProviderAdjustment {
                provider_id: text(p.payee.npi.clone()),
                fiscal_period_date: text(format!("{}1231", p.date.format("%Y"))),
                reason: Cow::Borrowed(reason),
                reference: Some(text(reference)),
                amount: amount.as_decimal(),
                segment_index: 0,
            })
            .collect(),
        ..m::Remittance::default()
    };
    RemittanceAdvice {
        remittance,
        accounts: eft.then(|| EftAccounts {
            payer_routing: PAYER_ROUTING.to_owned(),
            payer_account: format!("9{}", p.payer.company_id()),
            payee_routing: PAYEE_ROUTING.to_owned(),
            payee_account: p.payee.npi.clone(),
        }),
    }
}
