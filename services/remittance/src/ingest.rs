//! Turns the raw bytes of a received 835 file into what the store keeps: one ERA per 835 transaction set,
//! each with its status, payment summary, balance problems and PLB adjustments, using `medbill_x12`'s
//! one-pass 835 reader (a claim at a time) and balancing.
//!
//! Decisions:
//! - **One ERA per 835 set** (ST..SE: one BPR payment, one TRN trace), across interchanges and groups,
//!   numbered 1, 2, ... in file order. Each set is balanced on its own, and its PLB adjustments are its
//!   own: an unbalanced set is **UNBALANCED** and does not change the status of the others, which are
//!   **RECEIVED** (posting, which moves an ERA to POSTED, comes later).
//! - A set whose 835 reader reports an error-severity problem (a missing or malformed required element,
//!   an amount with more than two decimals, an impossible BPR16 date) is a **REJECTED** ERA naming the
//!   segment, element and byte offset of its first problem; the other sets are unaffected.
//! - A **file** is rejected as a whole when its envelope or segment splitting has an error-severity
//!   problem (control numbers or counts that disagree, a segment cut short: set boundaries cannot be
//!   trusted), or when it holds no 835 set. It is then one REJECTED ERA with set position 0, naming the
//!   first problem; the sets read before the problem was found are discarded.
//! - Sets are handed out one at a time ([`read_sets`]), so memory holds one claim and one set summary
//!   besides the raw bytes, whatever the file size.
//! - **Payer identity** is defined once, by [`payer_identity`].

use medbill_domain::{Money, parse_x12_date};
use medbill_x12::Error as X12Error;
use medbill_x12::balance::{self, Level};
use medbill_x12::stream::SegmentReader;
use medbill_x12::transactions::era835::{
    ClaimPayment, Era835Visitor, Remittance, for_each_claim_835_read,
};

use crate::model::{
    Adjustment, BalanceLevel, BalanceProblem, EraStatus, EraSummary, LineMatch, LinePayment,
    NewClaimPayment, NewEra, ProcedureCode, ProviderAdjustment,
};
use crate::upload::Upload;

/// Returns the payer's identity of one 835 set and the element it came from, the one definition
/// used for storing, filtering and answering:
///
/// 1. N1*PR N104 (loop 1000A) when present, with its qualifier N103: source `N104:<N103>`
///    (e.g. `N104:XV`, the CMS plan id);
/// 2. else REF*2U of loop 1000A (the payer identification number): source `REF*2U`;
/// 3. else TRN03 (required: "1" followed by the payer's EIN) without its leading "1": source `TRN03`.
pub fn payer_identity(r: &Remittance<'_>) -> Option<(String, String)> {
    if let Some(id) = r.payer.id.as_deref().and_then(non_empty) {
        let qualifier = r.payer.id_qualifier.as_deref().map(str::trim).unwrap_or("");
        return Some((id, format!("N104:{qualifier}")));
    }
    if let Some(id) = r
        .payer
        .references
        .iter()
        .find(|x| x.qualifier == "2U")
        .and_then(|x| non_empty(&x.value))
    {
        return Some((id, "REF*2U".to_owned()));
    }
    r.trace
        .as_ref()
        .and_then(|t| t.originator.as_deref())
        .map(|o| o.trim().strip_prefix('1').unwrap_or(o.trim()))
        .and_then(non_empty)
        .map(|id| (id, "TRN03".to_owned()))
}

/// Reads the 835 sets of `content` in file order, a window at a time, handing each to `each` as
/// soon as its SE is read.
///
/// Returns `Err(reason)` when the file as a whole must be rejected (see the module docs); the sets
/// already handed out must then be discarded and [`rejected_file`] stored instead.
pub fn read_sets(content: &Upload, each: impl FnMut(NewEra)) -> Result<(), String> {
    let mut sets = Sets {
        each,
        position: 0,
        problems: Vec::new(),
        failure: None,
        claims: Vec::new(),
    };
    let envelope = for_each_claim_835_read(content.reader(), &mut sets);
    if let Some(problem) = envelope.iter().find(|p| p.is_error()) {
        return Err(describe(problem));
    }
    if sets.position == 0 {
        return Err(match first_set(content.reader()) {
            Some((id, at)) => format!("X12 {at}: transaction set {id:?} is not an 835"),
            None => "no X12 transaction set (ST..SE) found; expected an 835".to_owned(),
        });
    }
    Ok(())
}

/// Reads every set of `content` into memory: [`read_sets`] for callers that want them all (tests,
/// tools); the service stores them one at a time instead.
pub fn parse_file(content: &[u8]) -> Result<Vec<NewEra>, String> {
    let mut out = Vec::new();
    read_sets(&Upload::in_memory(content.to_vec()), |era| out.push(era))?;
    Ok(out)
}

/// The one ERA standing for a file rejected before its sets could be read.
pub fn rejected_file(reason: String) -> NewEra {
    NewEra {
        set_position: 0,
        set_control_number: String::new(),
        status: EraStatus::Rejected,
        rejection_reason: reason,
        summary: EraSummary::default(),
        balance_problems: Vec::new(),
        provider_adjustments: Vec::new(),
        claim_payments: Vec::new(),
    }
}

/// The visitor that turns each set into a [`NewEra`]; per-set state is reset at each SE.
struct Sets<F> {
    each: F,
    position: u32,
    /// Line and claim balance problems of the open set.
    problems: Vec<BalanceProblem>,
    /// The first problem that makes the open set unusable.
    failure: Option<String>,
    /// Claim payments of the open set.
    claims: Vec<NewClaimPayment>,
}

impl<'a, F: FnMut(NewEra)> Era835Visitor<'a> for Sets<F> {
    fn claim(&mut self, _header: &Remittance<'a>, claim: &ClaimPayment<'a>) {
        if self.failure.is_some() {
            return;
        }
        match claim_payment(claim) {
            Ok(payment) => self.claims.push(payment),
            Err(reason) => {
                self.failure = Some(reason);
                return;
            }
        }
        let mut found = Vec::new();
        balance::balance_claim(claim, &mut found);
        for p in &found {
            let line_control_number = match (p.level, p.line) {
                (Level::Line, Some(n)) => n
                    .checked_sub(1)
                    .and_then(|i| claim.services.get(i))
                    .and_then(|s| s.line_control_number())
                    .unwrap_or_default()
                    .to_owned(),
                _ => String::new(),
            };
            match convert(p, line_control_number) {
                Ok(problem) => self.problems.push(problem),
                Err(reason) => {
                    self.failure = Some(reason);
                    return;
                }
            }
        }
    }

    fn set(&mut self, remittance: Remittance<'a>, problems: Vec<X12Error>) {
        self.position += 1;
        let balance_problems = std::mem::take(&mut self.problems);
        let claim_payments = std::mem::take(&mut self.claims);
        let failure = self.failure.take().map(Err).unwrap_or(Ok(()));
        let read = failure
            .and_then(|()| match problems.iter().find(|p| p.is_error()) {
                Some(problem) => Err(describe(problem)),
                None => Ok(()),
            })
            .and_then(|()| summarise(&remittance, balance_problems));
        let set_control_number = remittance.control_number.trim().to_owned();
        let era = match read {
            Ok(parsed) => NewEra {
                set_position: self.position,
                set_control_number,
                status: if parsed.balance_problems.is_empty() {
                    EraStatus::Received
                } else {
                    EraStatus::Unbalanced
                },
                rejection_reason: String::new(),
                summary: parsed.summary,
                balance_problems: parsed.balance_problems,
                provider_adjustments: parsed.provider_adjustments,
                claim_payments,
            },
            Err(reason) => NewEra {
                set_position: self.position,
                set_control_number,
                ..rejected_file(reason)
            },
        };
        (self.each)(era);
    }
}

struct Parsed {
    summary: EraSummary,
    balance_problems: Vec<BalanceProblem>,
    provider_adjustments: Vec<ProviderAdjustment>,
}

/// Converts one CLP loop to what the store keeps, amounts in whole cents, dates read.
fn claim_payment(c: &ClaimPayment<'_>) -> Result<NewClaimPayment, String> {
    let at = format!(
        "segment {} (CLP) at byte {}",
        c.segment_index, c.segment_offset
    );
    let date = |q: &str| -> Result<Option<chrono::NaiveDate>, String> {
        c.dates
            .iter()
            .find(|d| d.qualifier == q)
            .and_then(|d| non_empty(&d.date))
            .map(|d| parse_x12_date(&d).map_err(|e| format!("X12 {at}: DTM*{q} {e}")))
            .transpose()
    };
    let mut lines = Vec::with_capacity(c.services.len());
    for (i, s) in c.services.iter().enumerate() {
        let svc_at = format!(
            "segment {} (SVC) at byte {}",
            s.segment_index, s.segment_offset
        );
        lines.push(LinePayment {
            line_number: u32::try_from(i + 1)
                .map_err(|_| format!("X12 {svc_at}: too many lines"))?,
            procedure: procedure(&s.procedure),
            submitted_procedure: s.submitted_procedure.as_deref().map(procedure),
            charge: whole_cents(s.charge, "SVC02", &svc_at)?,
            paid: whole_cents(s.paid, "SVC03", &svc_at)?,
            revenue_code: s
                .revenue_code
                .as_deref()
                .unwrap_or_default()
                .trim()
                .to_owned(),
            units: s.units,
            service_date: s
                .service_date()
                .and_then(non_empty)
                .map(|d| parse_x12_date(&d).map_err(|e| format!("X12 {svc_at}: DTM {e}")))
                .transpose()?,
            line_control_number: s
                .line_control_number()
                .unwrap_or_default()
                .trim()
                .to_owned(),
            allowed: s
                .allowed()
                .map(|a| whole_cents(a, "AMT*B6", &svc_at))
                .transpose()?,
            adjustments: adjustments(&s.adjustments, &svc_at)?,
            remarks: s
                .remarks
                .iter()
                .filter(|r| r.qualifier == "HE")
                .map(|r| r.code.trim().to_owned())
                .collect(),
            matched_by: LineMatch::Pending,
            claim_line_number: None,
            claim_line_control_number: String::new(),
        });
    }
    let text = |t: Option<&str>| t.unwrap_or_default().trim().to_owned();
    Ok(NewClaimPayment {
        patient_control_number: c.patient_control_number.trim().to_owned(),
        status_code: c.status_code.trim().to_owned(),
        charge: whole_cents(c.charge, "CLP03", &at)?,
        paid: whole_cents(c.paid, "CLP04", &at)?,
        patient_responsibility: c
            .patient_responsibility
            .map(|a| whole_cents(a, "CLP05", &at))
            .transpose()?,
        filing_indicator: text(c.filing_indicator.as_deref()),
        payer_claim_control_number: text(c.payer_claim_control_number.as_deref()),
        facility_type_code: text(c.facility_type.as_deref()),
        frequency_code: text(c.frequency.as_deref()),
        statement_from: date("232")?,
        statement_to: date("233")?,
        adjustments: adjustments(&c.adjustments, &at)?,
        remarks: c
            .remark_codes()
            .iter()
            .map(|r| r.trim().to_owned())
            .collect(),
        lines,
    })
}

fn procedure(p: &medbill_x12::transactions::era835::Procedure<'_>) -> ProcedureCode {
    ProcedureCode {
        qualifier: p.qualifier.trim().to_owned(),
        code: p.code.trim().to_owned(),
        modifiers: p.modifiers.iter().map(|m| m.trim().to_owned()).collect(),
    }
}

fn adjustments(
    cas: &[medbill_x12::transactions::era835::Adjustment<'_>],
    at: &str,
) -> Result<Vec<Adjustment>, String> {
    cas.iter()
        .map(|a| {
            Ok(Adjustment {
                group: a.group.trim().to_owned(),
                reason: a.reason.trim().to_owned(),
                amount: whole_cents(a.amount, "CAS amount", at)?,
                quantity: a.quantity,
            })
        })
        .collect()
}

/// Describes an X12 problem by position: "X12 segment 4 (BPR02) at byte 107: ...".
fn describe(problem: &X12Error) -> String {
    format!("X12 {}: {}", problem.position, problem.kind)
}

fn whole_cents(amount: rust_decimal::Decimal, what: &str, at: &str) -> Result<Money, String> {
    let money = Money::from_decimal(amount);
    if money.is_whole_cents() && money.to_minor_units().is_ok() {
        Ok(money)
    } else {
        Err(format!(
            "X12 {at}: {what} {amount} is not a whole number of cents"
        ))
    }
}

fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// Returns the transaction set identifier (ST01) of the first set of `content`, if it has one.
pub fn first_set_id(content: &[u8]) -> Option<String> {
    first_set(content).map(|(id, _)| id)
}

/// The ST01 and position of the first transaction set of `content`, read a segment at a time.
fn first_set(content: impl std::io::Read) -> Option<(String, String)> {
    let mut segments = SegmentReader::new(content);
    while let Some(seg) = segments.next_segment() {
        if seg.is("ST") {
            return Some((
                seg.text(1).into_owned(),
                seg.position().with_element(1).to_string(),
            ));
        }
    }
    None
}

/// The summary, transaction balance and PLB adjustments of one set; its line and claim balance
/// problems were found claim by claim.
fn summarise(
    r: &Remittance<'_>,
    mut balance_problems: Vec<BalanceProblem>,
) -> Result<Parsed, String> {
    let bpr_at = format!(
        "segment {} (BPR02) at byte {}",
        r.payment.segment_index, r.payment.segment_offset
    );
    let payment_date = match r.payment.date.as_deref().and_then(non_empty) {
        Some(d) => Some(parse_x12_date(&d).map_err(|e| {
            format!(
                "X12 segment {} (BPR16) at byte {}: {e}",
                r.payment.segment_index, r.payment.segment_offset
            )
        })?),
        None => None,
    };
    let (payer_id, payer_id_source) = payer_identity(r).unzip();
    let summary = EraSummary {
        handling_code: non_empty(&r.payment.handling),
        payer_name: non_empty(&r.payer.name),
        payer_id,
        payer_id_source,
        payee_name: non_empty(&r.payee.name),
        payee_npi: r.payee.npi().and_then(non_empty),
        payment_amount: Some(whole_cents(r.payment.amount, "payment amount", &bpr_at)?),
        credit_debit: non_empty(&r.payment.credit_debit),
        payment_method: non_empty(&r.payment.method),
        payment_date,
        trace_number: r.trace.as_ref().and_then(|t| non_empty(&t.number)),
        claim_count: u32::try_from(r.claim_count)
            .map_err(|_| "too many claim payments in one transaction set".to_owned())?,
    };
    if let Some(p) = balance::balance_transaction(r, r.claims_paid_total) {
        balance_problems.push(convert(&p, String::new())?);
    }
    let mut provider_adjustments = Vec::with_capacity(r.provider_adjustments.len());
    for a in &r.provider_adjustments {
        let at = format!("segment {} (PLB)", a.segment_index);
        let fiscal_period_date = non_empty(&a.fiscal_period_date)
            .map(|d| parse_x12_date(&d).map_err(|e| format!("X12 {at}: PLB02 {e}")))
            .transpose()?;
        provider_adjustments.push(ProviderAdjustment {
            provider_id: a.provider_id.to_string(),
            fiscal_period_date,
            reason: a.reason.to_string(),
            reference: a.reference.as_deref().unwrap_or_default().to_owned(),
            amount: whole_cents(a.amount, "PLB amount", &at)?,
            booked_at: None,
        });
    }
    Ok(Parsed {
        summary,
        balance_problems,
        provider_adjustments,
    })
}

/// Maps a `medbill_x12` balance problem to the stored shape: `expected` is the amount the file states,
/// `actual` the amount computed from the other elements, `difference` = expected - actual (proto
/// `medbill.common.v1.BalanceProblem`).
fn convert(
    p: &balance::BalanceProblem,
    line_control_number: String,
) -> Result<BalanceProblem, String> {
    let at = format!("segment {} at byte {}", p.segment_index, p.segment_offset);
    Ok(BalanceProblem {
        level: match p.level {
            Level::Line => BalanceLevel::Line,
            Level::Claim => BalanceLevel::Claim,
            Level::Transaction => BalanceLevel::Transaction,
        },
        claim_ref: p.claim.clone().unwrap_or_default(),
        line_control_number,
        line_number: p.line.and_then(|n| u32::try_from(n).ok()),
        expected: whole_cents(p.actual, "stated amount", &at)?,
        actual: whole_cents(p.expected, "computed amount", &at)?,
        difference: whole_cents(p.difference, "difference", &at)?,
        message: p.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BALANCED: &[u8] = include_bytes!("../tests/fixtures/medicare-part-a.835");
    const UNBALANCED: &[u8] = include_bytes!("../tests/fixtures/medicare-part-a-unbalanced.835");
    const BAD_AMOUNT: &[u8] = include_bytes!("../tests/fixtures/medicare-part-a-bad-amount.835");
    const BAD_DATE: &[u8] = include_bytes!("../tests/fixtures/managed-care.835");

    const MULTI_ST: &[u8] =
        include_bytes!("../../../crates/x12/tests/fixtures/synthetic/multi-st.835");

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    /// The one ERA of a one-set file, or the ERA standing for a rejected file.
    fn parse_era(content: Vec<u8>, _file_name: String) -> NewEra {
        match parse_file(&content) {
            Ok(mut eras) => {
                assert_eq!(eras.len(), 1, "one set expected");
                eras.remove(0)
            }
            Err(reason) => rejected_file(reason),
        }
    }

    #[test]
    fn each_835_set_is_its_own_era_with_its_own_payer_and_balance() {
        let eras = parse_file(MULTI_ST).unwrap();
        assert_eq!(eras.len(), 3);
        let got: Vec<_> = eras
            .iter()
            .map(|e| {
                (
                    e.set_position,
                    e.set_control_number.as_str(),
                    e.summary.payment_amount.map(|a| a.to_string()),
                    e.summary.payment_method.as_deref(),
                    e.summary.trace_number.as_deref(),
                    e.summary.payer_id.as_deref(),
                    e.summary.payer_id_source.as_deref(),
                    e.summary.claim_count,
                    e.status,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    1,
                    "0001",
                    Some("150.00".into()),
                    Some("ACH"),
                    Some("EFT0001"),
                    Some("ACME01"),
                    Some("N104:XV"),
                    1,
                    EraStatus::Received
                ),
                (
                    2,
                    "0002",
                    Some("80.00".into()),
                    Some("CHK"),
                    Some("CHK7788"),
                    Some("SP002"),
                    Some("N104:PI"),
                    1,
                    EraStatus::Received
                ),
                (
                    3,
                    "0003",
                    Some("0.00".into()),
                    Some("NON"),
                    Some("NOPAY01"),
                    Some("ACME01"),
                    Some("N104:XV"),
                    1,
                    EraStatus::Received
                ),
            ]
        );
    }

    #[test]
    fn payer_identity_falls_back_to_ref_2u_then_trn03() {
        let with_2u = parse_era(BALANCED.to_vec(), String::new());
        assert_eq!(with_2u.summary.payer_id_source.as_deref(), Some("REF*2U"));
        let without = String::from_utf8_lossy(BALANCED)
            .replace("REF*2U*999~", "")
            .into_bytes();
        // Removing a segment breaks SE01; count it back.
        let era = parse_file(&fix_se_count(&without)).unwrap().remove(0);
        assert_eq!(era.summary.payer_id.as_deref(), Some("512345678"));
        assert_eq!(era.summary.payer_id_source.as_deref(), Some("TRN03"));
    }

    /// Rewrites SE01 of a one-set file to the number of segments from ST to SE.
    fn fix_se_count(content: &[u8]) -> Vec<u8> {
        let text = String::from_utf8_lossy(content);
        let segments: Vec<&str> = text.split('~').collect();
        let st = segments
            .iter()
            .position(|s| s.trim().starts_with("ST*"))
            .unwrap();
        let se = segments
            .iter()
            .position(|s| s.trim().starts_with("SE*"))
            .unwrap();
        let control = segments[se].trim().rsplit('*').next().unwrap().to_owned();
        let mut out: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
        out[se] = format!(
            "{}SE*{}*{control}",
            &segments[se][..segments[se].find("SE*").unwrap()],
            se - st + 1
        );
        out.join("~").into_bytes()
    }

    #[test]
    fn a_balanced_835_is_summarised() {
        let era = parse_era(BALANCED.to_vec(), "a.835".into());
        assert_eq!(era.status, EraStatus::Received, "{}", era.rejection_reason);
        let s = &era.summary;
        assert_eq!(s.handling_code.as_deref(), Some("C"));
        assert_eq!(
            s.payer_name.as_deref(),
            Some("INSURANCE COMPANY OF TIMBUCKTU")
        );
        assert_eq!(s.payer_id.as_deref(), Some("999"), "REF*2U wins over TRN03");
        assert_eq!(s.payee_name.as_deref(), Some("REGIONAL HOPE HOSPITAL"));
        assert_eq!(s.payee_npi.as_deref(), Some("6543210903"));
        assert_eq!(s.payment_amount, Some(m("150000.00")));
        assert_eq!(s.credit_debit.as_deref(), Some("C"));
        assert_eq!(s.payment_method.as_deref(), Some("ACH"));
        assert_eq!(
            s.payment_date.map(|d| d.to_string()).as_deref(),
            Some("2002-09-13")
        );
        assert_eq!(s.trace_number.as_deref(), Some("12345"));
        assert_eq!(s.claim_count, 2);
        assert!(era.balance_problems.is_empty());
        assert_eq!(era.provider_adjustments.len(), 1);
        let plb = &era.provider_adjustments[0];
        assert_eq!((plb.reason.as_str(), plb.reference.as_str()), ("CV", "CP"));
        assert_eq!(plb.amount, m("-1.27"));
        assert_eq!(
            plb.fiscal_period_date.map(|d| d.to_string()).as_deref(),
            Some("2002-12-31")
        );
    }

    #[test]
    fn an_unbalanced_835_names_the_claim_and_the_transaction() {
        let era = parse_era(UNBALANCED.to_vec(), String::new());
        assert_eq!(era.status, EraStatus::Unbalanced);
        assert_eq!(era.balance_problems.len(), 2, "{:?}", era.balance_problems);
        let claim = &era.balance_problems[0];
        assert_eq!(claim.level, BalanceLevel::Claim);
        assert_eq!(claim.claim_ref, "777777");
        assert_eq!(claim.expected, m("11980.30"), "CLP04 as stated");
        assert_eq!(claim.actual, m("11980.33"), "CLP03 - CAS");
        assert_eq!(claim.difference, m("-0.03"));
        let set = &era.balance_problems[1];
        assert_eq!(set.level, BalanceLevel::Transaction);
        assert_eq!(set.claim_ref, "");
        assert_eq!(set.expected, m("150000.00"), "BPR02 as stated");
        // 138018.40 + 11980.30 - (-1.27)
        assert_eq!(set.actual, m("149999.97"));
        assert_eq!(set.difference, m("0.03"));
        assert!(set.message.contains("BPR02"), "{}", set.message);
    }

    #[test]
    fn a_malformed_amount_is_rejected_naming_the_segment() {
        let era = parse_era(BAD_AMOUNT.to_vec(), String::new());
        assert_eq!(era.status, EraStatus::Rejected);
        assert!(
            era.rejection_reason.contains("segment 4 (BPR02)"),
            "{}",
            era.rejection_reason
        );
    }

    #[test]
    fn an_impossible_payment_date_is_rejected_naming_bpr16() {
        let era = parse_era(BAD_DATE.to_vec(), String::new());
        assert_eq!(era.status, EraStatus::Rejected);
        assert!(
            era.rejection_reason.contains("BPR16"),
            "{}",
            era.rejection_reason
        );
    }

    #[test]
    fn other_transaction_sets_and_garbage_are_rejected() {
        let not_x12 = parse_era(b"hello, this is not X12".to_vec(), String::new());
        assert_eq!(not_x12.status, EraStatus::Rejected);
        assert!(!not_x12.rejection_reason.is_empty());

        let a270 = String::from_utf8_lossy(BALANCED)
            .replace("ST*835*1234~", "ST*270*1234~")
            .into_bytes();
        assert_ne!(a270, BALANCED);
        let era = parse_era(a270, String::new());
        assert_eq!(era.status, EraStatus::Rejected);
        assert!(
            era.rejection_reason.contains("270"),
            "{}",
            era.rejection_reason
        );
    }
}
