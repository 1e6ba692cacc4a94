//! `inspect` and `validate`: a JSON-ready report of a whole input, and the list
//! of every problem in it.
//!
//! [`inspect`] returns one entry per interchange, group and transaction set;
//! each transaction set of a type with a typed reader also carries that
//! reader's content (for an 835: payer, payee, payment, claims, provider
//! adjustments and balance). [`validate`] returns every problem (envelope,
//! typed reader, balancing) in input order. The JSON shape is documented in
//! `docs/x12-cli.md`.
//!
//! Other transaction types plug in at [`read_content`]: add a [`Content`]
//! variant and a match arm.

use rust_decimal::Decimal;
use serde::Serialize;

use medbill_codesets::{CodeList, short_description};

use crate::balance::{BalanceProblem, BalanceReport, balance};
use crate::error::{Error, ErrorKind, Severity};
use crate::segment::Segment;
use crate::transactions::era835::{self, Adjustment, Procedure, Remittance};
use crate::tree::{Document, Group, Interchange, TransactionSet};

/// The whole input.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Counts of what was read and found.
    pub summary: Summary,
    /// One entry per interchange (content without an ISA gets an entry with null ISA fields).
    pub interchanges: Vec<InterchangeReport>,
    /// Every problem, in input order (envelope, typed readers, balancing).
    pub problems: Vec<Error>,
}

/// Counts for a [`Report`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Number of interchanges.
    pub interchanges: usize,
    /// Number of functional groups.
    pub groups: usize,
    /// Number of transaction sets.
    pub transactions: usize,
    /// Number of segments read.
    pub segments: usize,
    /// Number of error problems.
    pub errors: usize,
    /// Number of warning problems.
    pub warnings: usize,
}

/// One interchange (ISA..IEA).
#[derive(Debug, Clone, Serialize)]
pub struct InterchangeReport {
    /// 1-based index of the ISA segment (null without ISA).
    pub segment_index: Option<usize>,
    /// ISA06 interchange sender id (padding trimmed).
    pub sender_id: Option<String>,
    /// ISA08 interchange receiver id.
    pub receiver_id: Option<String>,
    /// ISA09 date (YYMMDD).
    pub date: Option<String>,
    /// ISA10 time (HHMM).
    pub time: Option<String>,
    /// ISA12 version (00501).
    pub version: Option<String>,
    /// ISA13 interchange control number.
    pub control_number: Option<String>,
    /// ISA15 usage indicator (P production, T test).
    pub usage: Option<String>,
    /// Whether an IEA closed the interchange.
    pub closed: bool,
    /// TA1 acknowledgements in the interchange.
    pub ta1: Vec<Ta1Report>,
    /// Functional groups.
    pub groups: Vec<GroupReport>,
}

/// One TA1 interchange acknowledgement.
#[derive(Debug, Clone, Serialize)]
pub struct Ta1Report {
    /// 1-based index of the TA1 segment.
    pub segment_index: usize,
    /// TA101 control number of the acknowledged interchange.
    pub control_number: String,
    /// TA102 date.
    pub date: String,
    /// TA103 time.
    pub time: String,
    /// TA104 acknowledgment code (A accepted, E accepted with errors, R rejected).
    pub acknowledgment_code: String,
    /// TA105 note code.
    pub note_code: String,
}

/// One functional group (GS..GE).
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    /// 1-based index of the GS segment (null without GS).
    pub segment_index: Option<usize>,
    /// GS01 functional identifier code (HP 835, HC 837, HB 271, FA 999...).
    pub functional_id: Option<String>,
    /// GS02 application sender code.
    pub sender: Option<String>,
    /// GS03 application receiver code.
    pub receiver: Option<String>,
    /// GS04 date (CCYYMMDD).
    pub date: Option<String>,
    /// GS05 time.
    pub time: Option<String>,
    /// GS06 group control number.
    pub control_number: Option<String>,
    /// GS08 version / implementation (005010X221A1).
    pub version: Option<String>,
    /// Whether a GE closed the group.
    pub closed: bool,
    /// Transaction sets.
    pub transactions: Vec<TransactionReport>,
}

/// One transaction set (ST..SE).
#[derive(Debug, Clone, Serialize)]
pub struct TransactionReport {
    /// 1-based index of the ST segment.
    pub segment_index: usize,
    /// ST01 transaction set identifier (835, 837, 271...).
    #[serde(rename = "type")]
    pub set_type: String,
    /// ST02 control number.
    pub control_number: String,
    /// ST03 implementation reference, else the group's GS08.
    pub implementation: Option<String>,
    /// Segments from ST to SE inclusive, as read.
    pub segment_count: usize,
    /// Whether an SE closed the set.
    pub closed: bool,
    /// Content read by the typed reader for this type, flattened into the entry.
    #[serde(flatten)]
    pub content: Option<Content>,
}

/// Typed content of a transaction set.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Content {
    /// An 835 remittance.
    Remittance(Box<RemittanceReport>),
    /// A 271 eligibility response with its summary.
    Eligibility(Box<crate::model::eligibility::EligibilityReport>),
    /// A 277 claim status response or 277CA claim acknowledgment.
    ClaimStatus(Box<crate::model::claim_status::ClaimStatusResponse>),
    /// A 999 implementation acknowledgment.
    Acknowledgment(Box<crate::model::ack::FunctionalAck>),
    /// An 837P or 837I claim set.
    Claims(Box<crate::transactions::claim837::ClaimSet>),
    /// A 270 eligibility inquiry.
    EligibilityInquiry(Box<crate::model::eligibility::EligibilityInquiry>),
    /// A 276 claim status inquiry.
    ClaimStatusInquiry(Box<crate::model::claim_status::ClaimStatusInquiry>),
}

/// An 835 transaction set as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct RemittanceReport {
    /// Payer (1000A).
    pub payer: PayerReport,
    /// Payee (1000B).
    pub payee: PayeeReport,
    /// BPR and TRN.
    pub payment: PaymentReport,
    /// Claim payments.
    pub claims: Vec<ClaimReport>,
    /// PLB provider adjustments, one per reason/amount pair.
    pub provider_adjustments: Vec<ProviderAdjustmentReport>,
    /// Balancing result.
    pub balance: BalanceReport,
}

/// Payer name and id.
#[derive(Debug, Clone, Serialize)]
pub struct PayerReport {
    /// N102.
    pub name: String,
    /// N104 when present, else REF*2U.
    pub id: Option<String>,
}

/// Payee name and NPI.
#[derive(Debug, Clone, Serialize)]
pub struct PayeeReport {
    /// N102.
    pub name: String,
    /// N104 when N103 = XX.
    pub npi: Option<String>,
}

/// The payment (BPR, TRN).
#[derive(Debug, Clone, Serialize)]
pub struct PaymentReport {
    /// BPR02 as a decimal string.
    pub amount: String,
    /// BPR04.
    pub method: String,
    /// BPR03.
    pub credit_debit: String,
    /// BPR16.
    pub date: Option<String>,
    /// TRN02.
    pub trace_number: Option<String>,
}

/// One claim payment.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimReport {
    /// CLP01.
    pub patient_control_number: String,
    /// CLP02.
    pub status_code: String,
    /// Description of CLP02.
    pub status: Option<&'static str>,
    /// CLP03.
    pub charge: String,
    /// CLP04.
    pub paid: String,
    /// CLP05.
    pub patient_responsibility: Option<String>,
    /// CLP07.
    pub payer_claim_control_number: Option<String>,
    /// Claim-level CAS.
    pub adjustments: Vec<AdjustmentReport>,
    /// Claim-level remark codes (MIA/MOA).
    pub remarks: Vec<RemarkReport>,
    /// Service lines.
    pub services: Vec<ServiceReport>,
}

/// One CAS triplet.
#[derive(Debug, Clone, Serialize)]
pub struct AdjustmentReport {
    /// CAS01.
    pub group: String,
    /// Reason code (CARC).
    pub reason: String,
    /// Amount as a decimal string.
    pub amount: String,
    /// Quantity as a decimal string.
    pub quantity: Option<String>,
    /// "CO-45: ..." when the code lists know the reason.
    pub description: Option<String>,
}

/// A remark code with its description.
#[derive(Debug, Clone, Serialize)]
pub struct RemarkReport {
    /// RARC (or NCPDP reject code for LQ*RX).
    pub code: String,
    /// Description from the RARC list.
    pub description: Option<&'static str>,
}

/// A procedure composite.
#[derive(Debug, Clone, Serialize)]
pub struct ProcedureReport {
    /// Qualifier (HC, NU...).
    pub qualifier: String,
    /// Code.
    pub code: String,
    /// Modifiers.
    pub modifiers: Vec<String>,
}

/// One service line.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    /// SVC01.
    pub procedure: ProcedureReport,
    /// SVC06.
    pub submitted_procedure: Option<ProcedureReport>,
    /// SVC02.
    pub charge: String,
    /// SVC03.
    pub paid: String,
    /// SVC05.
    pub units: Option<String>,
    /// DTM*472 (else DTM*150).
    pub service_date: Option<String>,
    /// REF*6R.
    pub line_control_number: Option<String>,
    /// AMT*B6.
    pub allowed: Option<String>,
    /// Line-level CAS.
    pub adjustments: Vec<AdjustmentReport>,
    /// LQ remark codes.
    pub remarks: Vec<RemarkReport>,
}

/// One PLB reason/amount pair.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderAdjustmentReport {
    /// PLB01.
    pub provider_id: String,
    /// PLB02.
    pub fiscal_period_date: String,
    /// Composite component 1.
    pub reason: String,
    /// Composite component 2.
    pub reference: Option<String>,
    /// Amount as a decimal string.
    pub amount: String,
}

/// Reads `input` and reports every interchange, group and transaction set, with every problem.
pub fn inspect(input: &[u8]) -> Report {
    let doc = Document::parse(input);
    let mut problems = doc.problems.clone();
    let mut summary = Summary {
        segments: doc.segment_count(),
        ..Summary::default()
    };
    let interchanges = doc
        .interchanges
        .iter()
        .map(|i| {
            summary.interchanges += 1;
            interchange_report(i, &mut summary, &mut problems)
        })
        .collect();
    finish_problems(&mut problems, &mut summary);
    Report {
        summary,
        interchanges,
        problems,
    }
}

/// Reads `input` and returns every problem (envelope, typed readers, balancing)
/// in input order, without building JSON content. An 835 set is read segment by
/// segment and balanced claim by claim, so it is never held; a set of another
/// type is held until its SE. Memory follows the largest non-835 set, not the file.
pub fn validate(input: &[u8]) -> Vec<Error> {
    let mut tokenizer = crate::tokenizer::Tokenizer::new(input);
    let mut validator = crate::validator::Validator::new();
    validator.run(&mut tokenizer);
    validator.finish(tokenizer.take_problems())
}

/// [`validate`] over any [`std::io::Read`] (a file, a socket), with the same
/// problems in the same order, offsets included. The input is read in 1 MiB
/// windows: memory is about one window, plus the largest transaction set of
/// a type other than 835 (held until its SE, as `validate` holds it), not
/// the file. A read error ends the input and is a problem at its offset.
pub fn validate_read(reader: impl std::io::Read) -> Vec<Error> {
    validate_read_windowed(reader, crate::window::WINDOW)
}

/// [`validate_read`] with the window size chosen. Any size finds the same
/// problems; below a segment's length the window grows to hold it.
pub fn validate_read_windowed(reader: impl std::io::Read, window: usize) -> Vec<Error> {
    crate::window::read_windows(
        reader,
        window,
        &mut crate::validator::Validating,
        crate::validator::Validator::new(),
    )
}

/// Returns the problems of one transaction set found by its typed reader and balancing.
pub fn check_set(set: &TransactionSet<'_>, group: &Group<'_>) -> Vec<Error> {
    let _ = group;
    match set.set_id().as_str() {
        "835" => {
            let (r, mut problems) = era835::read_835(set);
            problems.extend(balance(&r).problems.into_iter().map(imbalance_error));
            problems
        }
        "271" | "277" | "999" | "837" | "270" | "276" => read_other(set).1,
        _ => Vec::new(),
    }
}

/// Reads the typed content of one transaction set, when its type has a reader.
/// Returns the content and the problems found (reader and balancing).
pub fn read_content(set: &TransactionSet<'_>, group: &Group<'_>) -> (Option<Content>, Vec<Error>) {
    let _ = group;
    match set.set_id().as_str() {
        "835" => {
            let (r, mut problems) = era835::read_835(set);
            let b = balance(&r);
            problems.extend(b.problems.iter().cloned().map(imbalance_error));
            (
                Some(Content::Remittance(Box::new(remittance_report(&r, b)))),
                problems,
            )
        }
        _ => read_other(set),
    }
}

/// Reads 271, 277/277CA, 999, 837, 270 and 276 sets with their typed readers.
fn read_other(set: &TransactionSet<'_>) -> (Option<Content>, Vec<Error>) {
    use crate::transactions::{
        ack999, claim_status277, claim837, eligibility271, inquiry270, status276,
    };
    fn wrap<T>(
        p: crate::transactions::Parsed<T>,
        f: fn(Box<T>) -> Content,
    ) -> (Option<Content>, Vec<Error>) {
        (Some(f(Box::new(p.value))), p.problems)
    }
    match set.set_id().as_str() {
        "271" => wrap(eligibility271::report_271(set), Content::Eligibility),
        "277" => wrap(claim_status277::read_277(set), Content::ClaimStatus),
        "999" => wrap(ack999::read_999(set), Content::Acknowledgment),
        "837" => wrap(claim837::read_837(set), Content::Claims),
        "270" => wrap(inquiry270::read_270(set), Content::EligibilityInquiry),
        "276" => wrap(status276::read_276(set), Content::ClaimStatusInquiry),
        _ => (None, Vec::new()),
    }
}

/// Turns an imbalance into a problem at the segment it concerns.
pub fn imbalance_error(p: BalanceProblem) -> Error {
    let segment_id = match p.level {
        crate::balance::Level::Line => "SVC",
        crate::balance::Level::Claim => "CLP",
        crate::balance::Level::Transaction => "BPR",
    };
    Error::at(
        crate::error::Position {
            segment_index: p.segment_index,
            segment_id: segment_id.into(),
            offset: p.segment_offset,
            ..Default::default()
        },
        ErrorKind::Imbalance(Box::new(p)),
    )
}

/// Puts problems in input order: by segment, and within a segment element
/// problems first, then whole-segment ones (imbalances, truncation).
pub(crate) fn sort_problems(problems: &mut [Error]) {
    problems.sort_by_key(|p| {
        (
            p.position.segment_index,
            p.position.element.is_none(),
            p.position.element,
            p.position.component,
        )
    });
}

fn finish_problems(problems: &mut [Error], summary: &mut Summary) {
    sort_problems(problems);
    summary.errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    summary.warnings = problems.len() - summary.errors;
}

fn opt_text(seg: Option<&Segment<'_>>, n: usize) -> Option<String> {
    seg.map(|s| s.text(n).trim().to_string())
}

fn interchange_report(
    i: &Interchange<'_>,
    summary: &mut Summary,
    problems: &mut Vec<Error>,
) -> InterchangeReport {
    let isa = i.isa.as_ref();
    InterchangeReport {
        segment_index: isa.map(Segment::index),
        sender_id: opt_text(isa, 6),
        receiver_id: opt_text(isa, 8),
        date: opt_text(isa, 9),
        time: opt_text(isa, 10),
        version: opt_text(isa, 12),
        control_number: opt_text(isa, 13),
        usage: opt_text(isa, 15),
        closed: i.iea.is_some(),
        ta1: i
            .ta1
            .iter()
            .map(|t| Ta1Report {
                segment_index: t.index(),
                control_number: t.text(1).into_owned(),
                date: t.text(2).into_owned(),
                time: t.text(3).into_owned(),
                acknowledgment_code: t.text(4).into_owned(),
                note_code: t.text(5).into_owned(),
            })
            .collect(),
        groups: i
            .groups
            .iter()
            .map(|g| {
                summary.groups += 1;
                group_report(g, summary, problems)
            })
            .collect(),
    }
}

fn group_report(g: &Group<'_>, summary: &mut Summary, problems: &mut Vec<Error>) -> GroupReport {
    let gs = g.gs.as_ref();
    GroupReport {
        segment_index: gs.map(Segment::index),
        functional_id: opt_text(gs, 1),
        sender: opt_text(gs, 2),
        receiver: opt_text(gs, 3),
        date: opt_text(gs, 4),
        time: opt_text(gs, 5),
        control_number: opt_text(gs, 6),
        version: opt_text(gs, 8),
        closed: g.ge.is_some(),
        transactions: g
            .sets
            .iter()
            .map(|s| {
                summary.transactions += 1;
                let (content, found) = read_content(s, g);
                problems.extend(found);
                let st = s.st();
                TransactionReport {
                    segment_index: st.map_or(0, Segment::index),
                    set_type: s.set_id(),
                    control_number: s.control_number(),
                    implementation: st
                        .and_then(|st| st.element(3))
                        .filter(|e| !e.is_empty())
                        .map(|e| e.text().into_owned())
                        .or_else(|| opt_text(gs, 8)),
                    segment_count: s.segments.len(),
                    closed: s.closed,
                    content,
                }
            })
            .collect(),
    }
}

fn money(d: Decimal) -> String {
    d.to_string()
}

fn adjustments(list: &[Adjustment<'_>]) -> Vec<AdjustmentReport> {
    list.iter()
        .map(|a| AdjustmentReport {
            group: a.group.to_string(),
            reason: a.reason.to_string(),
            amount: money(a.amount),
            quantity: a.quantity.map(money),
            description: short_description(CodeList::Carc, &a.reason)
                .map(|d| format!("{}-{}: {}", a.group, a.reason, d)),
        })
        .collect()
}

fn remark(code: &str) -> RemarkReport {
    RemarkReport {
        code: code.to_string(),
        description: short_description(CodeList::Rarc, code),
    }
}

fn procedure(p: &Procedure<'_>) -> ProcedureReport {
    ProcedureReport {
        qualifier: p.qualifier.to_string(),
        code: p.code.to_string(),
        modifiers: p.modifiers.iter().map(ToString::to_string).collect(),
    }
}

/// Builds the JSON view of one remittance and its balance.
pub fn remittance_report(r: &Remittance<'_>, balance: BalanceReport) -> RemittanceReport {
    let payer_id = r.payer.id.as_ref().map(ToString::to_string).or_else(|| {
        r.payer
            .references
            .iter()
            .find(|x| x.qualifier == "2U")
            .map(|x| x.value.to_string())
    });
    RemittanceReport {
        payer: PayerReport {
            name: r.payer.name.to_string(),
            id: payer_id,
        },
        payee: PayeeReport {
            name: r.payee.name.to_string(),
            npi: r.payee.npi().map(str::to_string),
        },
        payment: PaymentReport {
            amount: money(r.payment.amount),
            method: r.payment.method.to_string(),
            credit_debit: r.payment.credit_debit.to_string(),
            date: r.payment.date.as_ref().map(ToString::to_string),
            trace_number: r.trace.as_ref().map(|t| t.number.to_string()),
        },
        claims: r
            .claims
            .iter()
            .map(|c| ClaimReport {
                patient_control_number: c.patient_control_number.to_string(),
                status_code: c.status_code.to_string(),
                status: short_description(CodeList::ClaimStatus, &c.status_code),
                charge: money(c.charge),
                paid: money(c.paid),
                patient_responsibility: c.patient_responsibility.map(money),
                payer_claim_control_number: c
                    .payer_claim_control_number
                    .as_ref()
                    .map(ToString::to_string),
                adjustments: adjustments(&c.adjustments),
                remarks: c.remark_codes().into_iter().map(remark).collect(),
                services: c
                    .services
                    .iter()
                    .map(|s| ServiceReport {
                        procedure: procedure(&s.procedure),
                        submitted_procedure: s.submitted_procedure.as_deref().map(procedure),
                        charge: money(s.charge),
                        paid: money(s.paid),
                        units: s.units.map(money),
                        service_date: s.service_date().map(str::to_string),
                        line_control_number: s.line_control_number().map(str::to_string),
                        allowed: s.allowed().map(money),
                        adjustments: adjustments(&s.adjustments),
                        remarks: s.remarks.iter().map(|x| remark(&x.code)).collect(),
                    })
                    .collect(),
            })
            .collect(),
        provider_adjustments: r
            .provider_adjustments
            .iter()
            .map(|p| ProviderAdjustmentReport {
                provider_id: p.provider_id.to_string(),
                fiscal_period_date: p.fiscal_period_date.to_string(),
                reason: p.reason.to_string(),
                reference: p.reference.as_ref().map(ToString::to_string),
                amount: money(p.amount),
            })
            .collect(),
        balance,
    }
}
