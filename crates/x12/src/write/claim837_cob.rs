//! Writers of the coordination-of-benefits loops shared by 837P and 837I: 2320 (other
//! subscriber, claim-level CAS and amounts), 2330A/B (other subscriber and payer) and 2430
//! (line adjudication).

use super::claim837::{nm1, procedure};
use super::format::{amount, d8, person_elements};
use super::{Element, WriteError, X12Writer};
use crate::model::claim::{Adjustment, ClaimCommon, LineAdjudication, OtherPayer};
use crate::seg;

/// Writes loops 2320, 2330A and 2330B.
pub(crate) fn write_other_payers(
    w: &mut X12Writer,
    ctx: &str,
    c: &ClaimCommon,
) -> Result<(), WriteError> {
    for o in &c.other_payers {
        write_other_payer(w, ctx, o)?;
    }
    Ok(())
}

fn write_other_payer(w: &mut X12Writer, ctx: &str, o: &OtherPayer) -> Result<(), WriteError> {
    seg!(
        w,
        "SBR",
        &o.payer_responsibility,
        &o.relationship,
        &o.group_number,
        "",
        "",
        "",
        "",
        "",
        &o.claim_filing_indicator
    )?;
    write_cas(w, ctx, &o.adjustments)?;
    if let Some(p) = o.paid_amount {
        seg!(w, "AMT", "D", amount(ctx, "paid_amount", p)?)?;
    }
    if let Some(p) = o.remaining_patient_liability {
        seg!(
            w,
            "AMT",
            "EAF",
            amount(ctx, "remaining_patient_liability", p)?
        )?;
    }
    seg!(
        w,
        "OI",
        "",
        "",
        &o.benefits_assigned,
        "",
        "",
        &o.release_of_information
    )?;
    let [a, b, cc, d, e] = person_elements(&o.subscriber_name);
    w.segment(
        "NM1",
        &[
            Element::from("IL"),
            a,
            b,
            cc,
            d,
            e,
            (&o.subscriber_name.suffix).into(),
            "MI".into(),
            (&o.subscriber_id).into(),
        ],
    )?;
    nm1(
        w,
        "PR",
        &crate::model::PartyName::organization(o.payer_name.clone()),
        "PI",
        &o.payer_id,
    )?;
    if let Some(d) = o.adjudication_date {
        seg!(w, "DTP", "573", "D8", d8(d))?;
    }
    Ok(())
}

/// Writes CAS segments, one per group, at most six triplets each.
pub(crate) fn write_cas(
    w: &mut X12Writer,
    ctx: &str,
    adj: &[Adjustment],
) -> Result<(), WriteError> {
    let mut groups: Vec<&str> = Vec::new();
    for a in adj {
        if !groups.contains(&a.group.as_str()) {
            groups.push(&a.group);
        }
    }
    for g in groups {
        let items: Vec<&Adjustment> = adj.iter().filter(|a| a.group == g).collect();
        for chunk in items.chunks(6) {
            let mut els: Vec<Element> = vec![g.into()];
            for a in chunk {
                els.push((&a.reason).into());
                els.push(amount(ctx, "adjustments.amount", a.amount)?.into());
                els.push(a.quantity.map(super::format::decimal).into());
            }
            w.segment("CAS", &els)?;
        }
    }
    Ok(())
}

/// Writes loop 2430 for a line.
pub(crate) fn write_line_adjudications(
    w: &mut X12Writer,
    ctx: &str,
    adj: &[LineAdjudication],
) -> Result<(), WriteError> {
    for a in adj {
        w.segment(
            "SVD",
            &[
                (&a.payer_id).into(),
                amount(ctx, "adjudications.paid_amount", a.paid_amount)?.into(),
                procedure(&a.procedure),
                (&a.revenue_code).into(),
                super::format::decimal(a.units).into(),
            ],
        )?;
        write_cas(w, ctx, &a.adjustments)?;
        seg!(w, "DTP", "573", "D8", d8(a.adjudication_date))?;
    }
    Ok(())
}
