//! Typed 835 (005010X221A1 health care claim payment / remittance advice) reader.
//!
//! [`Era835Builder`] is fed the segments of one ST..SE set one at a time, so the
//! same code serves the in-memory reader ([`read_835`]) and the streaming reader
//! ([`crate::stream`]). Text fields borrow from the input (`Cow::Borrowed`) unless
//! they hold invalid UTF-8; amounts are exact [`Decimal`]s. When a required
//! element is missing or is not a number, the field is zero or empty and a
//! problem names the element: a remittance with error problems must not be posted.

use std::borrow::Cow;

use rust_decimal::Decimal;
use smallvec::SmallVec;

use crate::decimal::parse_decimal;
use crate::envelope::EnvelopeTracker;
use crate::error::{Error, ErrorKind, ProblemList};
use crate::segment::Segment;
use crate::tokenizer::{Tokenizer, packed_id};
use crate::tree::TransactionSet;
use drive::drive_835;

mod drive;
mod fast;
mod owned;

pub use owned::Relife;

/// Text borrowed from the input when it is valid UTF-8.
pub type Text<'a> = Cow<'a, str>;

/// One 835 transaction set: a payment (or notice) from one payer to one payee.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Remittance<'a> {
    /// ST02 transaction set control number.
    pub control_number: Text<'a>,
    /// ST03 implementation convention reference, when present.
    pub implementation: Option<Text<'a>>,
    /// BPR: the money.
    pub payment: Payment<'a>,
    /// TRN: check or EFT trace number.
    pub trace: Option<Trace<'a>>,
    /// Header CUR01-02 (entity and currency), when present.
    pub currency: Option<Text<'a>>,
    /// Header REF segments (EV receiver id, F2 version).
    pub references: Vec<Reference<'a>>,
    /// Header DTM segments (405 production date).
    pub dates: Vec<DateRef<'a>>,
    /// Loop 1000A payer (N1*PR).
    pub payer: Party<'a>,
    /// Loop 1000B payee (N1*PE).
    pub payee: Party<'a>,
    /// Loop 2000 header numbers (LX) with their TS3/TS2 summaries.
    pub header_numbers: Vec<HeaderNumber<'a>>,
    /// Loop 2100 claim payments, in input order (flattened across LX).
    pub claims: Vec<ClaimPayment<'a>>,
    /// PLB provider adjustments, one entry per reason/amount pair.
    pub provider_adjustments: Vec<ProviderAdjustment<'a>>,
    /// Number of claims read (equals `claims.len()` unless streaming took them out).
    pub claim_count: usize,
    /// Sum of CLP04 over all claims read (kept when streaming hands claims out).
    pub claims_paid_total: Decimal,
    /// Number of segments from ST to SE inclusive.
    pub segment_count: usize,
}

/// BPR financial information.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Payment<'a> {
    /// BPR01 transaction handling code (C, D, H, I, P, U, X).
    pub handling: Text<'a>,
    /// BPR02 total actual provider payment amount.
    pub amount: Decimal,
    /// BPR03 C (credit) or D (debit).
    pub credit_debit: Text<'a>,
    /// BPR04 payment method (ACH, BOP, CHK, FWT, NON).
    pub method: Text<'a>,
    /// BPR05 payment format (CCP, CTX).
    pub format: Option<Text<'a>>,
    /// BPR10 originating company identifier.
    pub originating_company_id: Option<Text<'a>>,
    /// BPR16 check issue or EFT effective date (CCYYMMDD).
    pub date: Option<Text<'a>>,
    /// 1-based index of the BPR segment in the input (0 when missing).
    pub segment_index: usize,
    /// Byte offset of the BPR segment in the input.
    pub segment_offset: usize,
}

/// TRN reassociation trace number.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace<'a> {
    /// TRN01 trace type code (1 = current transaction trace numbers).
    pub type_code: Text<'a>,
    /// TRN02 check or EFT trace number.
    pub number: Text<'a>,
    /// TRN03 payer identifier (1 + EIN).
    pub originator: Option<Text<'a>>,
    /// TRN04 originating company supplemental code.
    pub supplemental: Option<Text<'a>>,
}

/// A payer or payee (N1 with its N3, N4, REF and PER).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Party<'a> {
    /// N101 entity identifier code (PR payer, PE payee).
    pub entity: Text<'a>,
    /// N102 name.
    pub name: Text<'a>,
    /// N103 identification code qualifier (XX NPI, FI tax id, XV plan id, PI payer id).
    pub id_qualifier: Option<Text<'a>>,
    /// N104 identification code.
    pub id: Option<Text<'a>>,
    /// N3 address lines.
    pub address_lines: Vec<Text<'a>>,
    /// N401 city.
    pub city: Option<Text<'a>>,
    /// N402 state or province.
    pub state: Option<Text<'a>>,
    /// N403 postal code.
    pub postal_code: Option<Text<'a>>,
    /// REF segments (2U payer id, TJ tax id, PQ payee id...).
    pub references: Vec<Reference<'a>>,
    /// PER contacts: (function code, name, [(qualifier, number)]).
    pub contacts: Vec<Contact<'a>>,
}

impl<'a> Party<'a> {
    /// Returns the NPI: N104 when N103 is `XX`.
    pub fn npi(&self) -> Option<&str> {
        match (&self.id_qualifier, &self.id) {
            (Some(q), Some(id)) if q == "XX" => Some(id),
            _ => None,
        }
    }
}

/// A PER contact.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contact<'a> {
    /// PER01 contact function code (CX, BL, IC).
    pub function: Text<'a>,
    /// PER02 name.
    pub name: Option<Text<'a>>,
    /// PER03..PER08 as (qualifier, number) pairs (TE, EM, FX, UR, EX).
    pub numbers: Vec<(Text<'a>, Text<'a>)>,
}

/// LX header number with its optional provider summaries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeaderNumber<'a> {
    /// LX01 assigned number.
    pub number: Text<'a>,
    /// TS3 provider summary information.
    pub summary: Option<ProviderSummary<'a>>,
    /// TS2 amounts (TS201..TS219; `None` where empty).
    pub supplemental: Option<Vec<Option<Decimal>>>,
}

/// TS3 provider summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderSummary<'a> {
    /// TS301 provider identifier.
    pub provider_id: Text<'a>,
    /// TS302 facility type code.
    pub facility_code: Text<'a>,
    /// TS303 fiscal period date.
    pub fiscal_period_date: Text<'a>,
    /// TS304 total claim count.
    pub claim_count: Decimal,
    /// TS305 total claim charge amount.
    pub total_charge: Decimal,
    /// TS306..TS324 amounts (`None` where empty).
    pub amounts: Vec<Option<Decimal>>,
}

/// Loop 2100: one claim payment (CLP and what follows it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimPayment<'a> {
    /// LX01 of the header-number loop the claim is in, when there is one.
    pub header_number: Option<Text<'a>>,
    /// CLP01 patient control number (our CLM01): how a payment finds its claim.
    pub patient_control_number: Text<'a>,
    /// CLP02 claim status code (1, 2, 3, 4, 19, 20, 21, 22 reversal, 23, 25).
    pub status_code: Text<'a>,
    /// CLP03 total claim charge amount.
    pub charge: Decimal,
    /// CLP04 claim payment amount.
    pub paid: Decimal,
    /// CLP05 patient responsibility amount.
    pub patient_responsibility: Option<Decimal>,
    /// CLP06 claim filing indicator code.
    pub filing_indicator: Option<Text<'a>>,
    /// CLP07 payer claim control number.
    pub payer_claim_control_number: Option<Text<'a>>,
    /// CLP08 facility type code.
    pub facility_type: Option<Text<'a>>,
    /// CLP09 claim frequency type code.
    pub frequency: Option<Text<'a>>,
    /// CLP11 DRG code.
    pub drg_code: Option<Text<'a>>,
    /// CLP12 DRG weight.
    pub drg_weight: Option<Decimal>,
    /// CLP13 discharge fraction (percent).
    pub discharge_fraction: Option<Decimal>,
    /// Claim-level CAS adjustments, one entry per (reason, amount, quantity) triplet.
    pub adjustments: SmallVec<[Adjustment<'a>; 2]>,
    /// NM1 names (QC patient, IL insured, 74 corrected insured, 82 rendering, TT crossover carrier, PR corrected payer...).
    pub names: Vec<Name<'a>>,
    /// MIA inpatient adjudication.
    pub inpatient: Option<Box<InpatientAdjudication<'a>>>,
    /// MOA outpatient adjudication.
    pub outpatient: Option<Box<OutpatientAdjudication<'a>>>,
    /// Claim REF segments (1L, EA, F8, CE...).
    pub references: Vec<Reference<'a>>,
    /// Claim DTM segments (232/233 statement period, 050 received, 036/050...).
    pub dates: SmallVec<[DateRef<'a>; 2]>,
    /// Claim PER contacts.
    pub contacts: Vec<Contact<'a>>,
    /// Claim AMT segments (AU coverage, I interest, D8 discount, DY per day...).
    pub amounts: SmallVec<[AmountRef<'a>; 1]>,
    /// Claim QTY segments (CA covered, CD co-insured, LA life-time reserve...).
    pub quantities: Vec<QuantityRef<'a>>,
    /// Loop 2110 service lines.
    pub services: Vec<ServicePayment<'a>>,
    /// 1-based index of the CLP segment in the input.
    pub segment_index: usize,
    /// Byte offset of the CLP segment in the input.
    pub segment_offset: usize,
}

impl<'a> ClaimPayment<'a> {
    /// Empties every list of the claim but its service lines, keeping their
    /// capacity for reuse (the reader reuses the lines themselves: see
    /// [`SetReader::open_service`]). The pattern names every field, so a new
    /// one cannot be forgotten here.
    fn clear_lists(&mut self) {
        let Self {
            header_number: _,
            patient_control_number: _,
            status_code: _,
            charge: _,
            paid: _,
            patient_responsibility: _,
            filing_indicator: _,
            payer_claim_control_number: _,
            facility_type: _,
            frequency: _,
            drg_code: _,
            drg_weight: _,
            discharge_fraction: _,
            adjustments,
            names,
            inpatient,
            outpatient,
            references,
            dates,
            contacts,
            amounts,
            quantities,
            services: _,
            segment_index: _,
            segment_offset: _,
        } = self;
        adjustments.clear();
        names.clear();
        *inpatient = None;
        *outpatient = None;
        references.clear();
        dates.clear();
        contacts.clear();
        amounts.clear();
        quantities.clear();
    }

    /// Returns true for a reversal of a previous payment (CLP02 = 22).
    pub fn is_reversal(&self) -> bool {
        self.status_code == "22"
    }

    /// Returns the claim-level remark codes (MIA05, MIA20-24, MOA03-07), in order.
    pub fn remark_codes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        if let Some(m) = &self.inpatient {
            out.extend(m.remark_codes.iter().map(|c| c.as_ref()));
        }
        if let Some(m) = &self.outpatient {
            out.extend(m.remark_codes.iter().map(|c| c.as_ref()));
        }
        out
    }

    /// Returns the claim AMT amount with qualifier `qualifier` (`I` interest, `AU` coverage).
    pub fn amount(&self, qualifier: &str) -> Option<Decimal> {
        self.amounts
            .iter()
            .find(|a| a.qualifier == qualifier)
            .map(|a| a.amount)
    }
}

/// One CAS adjustment: a (reason, amount, quantity) triplet with its group code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adjustment<'a> {
    /// CAS01 claim adjustment group code (CO, PR, OA, PI, CR).
    pub group: Text<'a>,
    /// Claim adjustment reason code (CARC).
    pub reason: Text<'a>,
    /// Adjustment amount (may be negative).
    pub amount: Decimal,
    /// Adjustment quantity, when given.
    pub quantity: Option<Decimal>,
}

/// An NM1 name. Holds PHI: never log it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Name<'a> {
    /// NM101 entity identifier code.
    pub entity: Text<'a>,
    /// NM102 entity type qualifier (1 person, 2 organisation).
    pub entity_type: Text<'a>,
    /// NM103 last or organisation name.
    pub last: Option<Text<'a>>,
    /// NM104 first name.
    pub first: Option<Text<'a>>,
    /// NM105 middle name.
    pub middle: Option<Text<'a>>,
    /// NM107 suffix.
    pub suffix: Option<Text<'a>>,
    /// NM108 identification code qualifier.
    pub id_qualifier: Option<Text<'a>>,
    /// NM109 identification code.
    pub id: Option<Text<'a>>,
}

/// MIA inpatient adjudication information.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InpatientAdjudication<'a> {
    /// MIA01 covered days or visits count.
    pub covered_days_or_visits: Option<Decimal>,
    /// MIA02 PPS operating outlier amount.
    pub pps_operating_outlier: Option<Decimal>,
    /// MIA04 claim DRG amount.
    pub claim_drg_amount: Option<Decimal>,
    /// MIA05, MIA20, MIA21, MIA22, MIA23 remark codes (RARC), non-empty ones.
    pub remark_codes: Vec<Text<'a>>,
    /// All MIA elements as text (MIA01 first), for what is not typed above.
    pub elements: Vec<Text<'a>>,
}

/// MOA outpatient adjudication information.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutpatientAdjudication<'a> {
    /// MOA01 reimbursement rate (percent as a decimal).
    pub reimbursement_rate: Option<Decimal>,
    /// MOA02 HCPCS payable amount.
    pub hcpcs_payable_amount: Option<Decimal>,
    /// MOA03..MOA07 remark codes (RARC), non-empty ones.
    pub remark_codes: Vec<Text<'a>>,
    /// MOA08 ESRD payment amount.
    pub esrd_payment_amount: Option<Decimal>,
    /// MOA09 non-payable professional component amount.
    pub nonpayable_professional_component: Option<Decimal>,
}

/// Loop 2110: one service line payment (SVC and what follows it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServicePayment<'a> {
    /// SVC01 adjudicated procedure (qualifier, code, modifiers).
    pub procedure: Procedure<'a>,
    /// SVC02 line item charge amount.
    pub charge: Decimal,
    /// SVC03 line item provider payment amount.
    pub paid: Decimal,
    /// SVC04 national uniform billing committee revenue code.
    pub revenue_code: Option<Text<'a>>,
    /// SVC05 units of service paid.
    pub units: Option<Decimal>,
    /// SVC06 submitted procedure, when the payer changed the billed one.
    pub submitted_procedure: Option<Box<Procedure<'a>>>,
    /// SVC07 original units of service submitted.
    pub submitted_units: Option<Decimal>,
    /// DTM segments (472 service date, 150/151 service period).
    pub dates: SmallVec<[DateRef<'a>; 1]>,
    /// Line-level CAS adjustments, one entry per triplet.
    pub adjustments: SmallVec<[Adjustment<'a>; 2]>,
    /// REF segments (6R line item control number, LU location...).
    pub references: SmallVec<[Reference<'a>; 1]>,
    /// AMT segments (B6 allowed, KH late filing reduction...).
    pub amounts: SmallVec<[AmountRef<'a>; 1]>,
    /// QTY segments.
    pub quantities: Vec<QuantityRef<'a>>,
    /// LQ remark codes (HE = RARC).
    pub remarks: Vec<Remark<'a>>,
    /// 1-based index of the SVC segment in the input.
    pub segment_index: usize,
    /// Byte offset of the SVC segment in the input.
    pub segment_offset: usize,
}

impl<'a> ServicePayment<'a> {
    /// Readies a used line for [`SetReader::open_service`]'s fill, keeping
    /// its lists' capacity (cheaper than dropping it and making a new one):
    /// empties what a fill adds to, and leaves the SVC values, which every
    /// fill sets. The pattern names every field, so a new one cannot be
    /// forgotten here.
    fn reset(&mut self) {
        let Self {
            // SVC values: set by every fill.
            procedure,
            charge: _,
            paid: _,
            revenue_code: _,
            units: _,
            submitted_procedure: _,
            submitted_units: _,
            segment_index: _,
            segment_offset: _,
            // Added to by later segments.
            dates,
            adjustments,
            references,
            amounts,
            quantities,
            remarks,
        } = self;
        // The fast path sets the qualifier and code and adds the rest.
        let Procedure {
            qualifier: _,
            code: _,
            modifiers,
            description,
        } = procedure;
        modifiers.clear();
        *description = None;
        dates.clear();
        adjustments.clear();
        references.clear();
        amounts.clear();
        quantities.clear();
        remarks.clear();
    }

    /// Returns the service date: DTM*472, else DTM*150 (period start).
    pub fn service_date(&self) -> Option<&str> {
        let find = |q: &str| {
            self.dates
                .iter()
                .find(|d| d.qualifier == q)
                .map(|d| d.date.as_ref())
        };
        find("472").or_else(|| find("150"))
    }

    /// Returns REF*6R, the line item control number (ties the line to our 837 line).
    pub fn line_control_number(&self) -> Option<&str> {
        self.references
            .iter()
            .find(|r| r.qualifier == "6R")
            .map(|r| r.value.as_ref())
    }

    /// Returns AMT*B6, the allowed amount.
    pub fn allowed(&self) -> Option<Decimal> {
        self.amounts
            .iter()
            .find(|a| a.qualifier == "B6")
            .map(|a| a.amount)
    }
}

/// A procedure composite (SVC01 or SVC06).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Procedure<'a> {
    /// Product/service id qualifier (HC, AD, ER, IV, N4, NU, WK...).
    pub qualifier: Text<'a>,
    /// Procedure code.
    pub code: Text<'a>,
    /// Up to four modifiers (components 3-6), non-empty ones.
    pub modifiers: SmallVec<[Text<'a>; 2]>,
    /// Component 7, the description, when given.
    pub description: Option<Text<'a>>,
}

/// A qualified date (DTM).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DateRef<'a> {
    /// DTM01 qualifier.
    pub qualifier: Text<'a>,
    /// DTM02 date, CCYYMMDD.
    pub date: Text<'a>,
}

/// A qualified reference (REF).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reference<'a> {
    /// REF01 qualifier.
    pub qualifier: Text<'a>,
    /// REF02 value.
    pub value: Text<'a>,
}

/// A qualified amount (AMT).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmountRef<'a> {
    /// AMT01 qualifier.
    pub qualifier: Text<'a>,
    /// AMT02 amount.
    pub amount: Decimal,
}

/// A qualified quantity (QTY).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuantityRef<'a> {
    /// QTY01 qualifier.
    pub qualifier: Text<'a>,
    /// QTY02 quantity.
    pub quantity: Decimal,
}

/// A line remark (LQ).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remark<'a> {
    /// LQ01 code list qualifier (HE = RARC, RX = NCPDP reject code).
    pub qualifier: Text<'a>,
    /// LQ02 remark code.
    pub code: Text<'a>,
}

/// One PLB provider adjustment (a reason/amount pair of a PLB segment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderAdjustment<'a> {
    /// PLB01 provider identifier.
    pub provider_id: Text<'a>,
    /// PLB02 fiscal period date (CCYYMMDD).
    pub fiscal_period_date: Text<'a>,
    /// Adjustment reason code (composite component 1: WO, L6, FB, 72, CS, J1, CV...).
    pub reason: Text<'a>,
    /// Reference identification (composite component 2), when given.
    pub reference: Option<Text<'a>>,
    /// Amount: positive reduces the payment, negative increases it.
    pub amount: Decimal,
    /// 1-based index of the PLB segment in the input.
    pub segment_index: usize,
}

/// Reads one 835 transaction set from the lossless tree.
///
/// Returns the remittance and the problems found (missing or malformed
/// elements, segments out of place). Envelope problems are not repeated here:
/// they are in [`crate::Document::problems`].
pub fn read_835<'a>(set: &TransactionSet<'a>) -> (Remittance<'a>, Vec<Error>) {
    let mut b = Era835Builder::new();
    b.reader
        .r
        .claims
        .reserve(set.segments.iter().filter(|s| s.is("CLP")).count());
    for seg in &set.segments {
        b.push(seg);
    }
    b.finish()
}

/// Reads every 835 set of an in-memory input in one pass, without building the
/// tree (the fastest path). Sets of other types are envelope-checked and
/// skipped. Returns the remittances in input order and every problem found
/// (splitting, envelope and 835 reader problems; not balancing: see
/// [`crate::balance::balance`]).
pub fn read_all_835(input: &[u8]) -> (Vec<Remittance<'_>>, Vec<Error>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let envelope = for_each_835(input, |r, p| {
        out.push(r);
        problems.extend(p);
    });
    problems.extend(envelope);
    problems.sort_by_key(|p| {
        (
            p.position.segment_index,
            p.position.element.is_none(),
            p.position.element,
        )
    });
    (out, problems)
}

/// Reads every 835 set of an in-memory input in one pass and hands each one,
/// with its reader problems, to `f` as soon as its SE is read; memory then
/// holds one set's model at a time. Returns the splitting and envelope problems.
pub fn for_each_835<'a>(
    input: &'a [u8],
    mut f: impl FnMut(Remittance<'a>, Vec<Error>),
) -> Vec<Error> {
    struct Sets<F>(F);
    impl<'a, F: FnMut(Remittance<'a>, Vec<Error>)> Era835Visitor<'a> for Sets<F> {
        fn set(&mut self, remittance: Remittance<'a>, problems: Vec<Error>) {
            (self.0)(remittance, problems)
        }
    }
    drive_835(input, Delivery::Hold, &mut Sets(&mut f))
}

/// Receives an 835 claim by claim from [`for_each_claim_835`].
pub trait Era835Visitor<'a> {
    /// Called for each completed claim (loop 2100 with its service lines).
    /// `header` holds what the set has read so far (BPR, TRN, payer, payee,
    /// LX numbers); `claim` is lent, and its buffers are reused for later claims.
    fn claim(&mut self, header: &Remittance<'a>, claim: &ClaimPayment<'a>) {
        let _ = (header, claim);
    }

    /// Called at each set's SE with the rest of the set (PLB provider
    /// adjustments, `claim_count`, `claims_paid_total`) and its reader problems.
    /// In [`for_each_claim_835`] `remittance.claims` is empty: they went to
    /// [`Era835Visitor::claim`].
    fn set(&mut self, remittance: Remittance<'a>, problems: Vec<Error>) {
        let _ = (remittance, problems);
    }
}

/// Reads every 835 set of an in-memory input in one pass, lending each claim
/// to `visitor` as soon as it is complete and reusing its buffers for the next
/// one: the fastest way to the typed model, and memory is bounded by one claim
/// whatever the set size. Returns the splitting and envelope problems.
pub fn for_each_claim_835<'a>(input: &'a [u8], visitor: &mut impl Era835Visitor<'a>) -> Vec<Error> {
    drive_835(input, Delivery::Visit, visitor)
}

/// Reads every 835 set of `reader` claim by claim, as [`for_each_claim_835`]
/// reads an in-memory input and with the same results (problems and their
/// byte offsets included), holding about one window of input (1 MiB, more
/// only while one segment is longer) and one claim. Text lent to the visitor
/// borrows from the window being read, so the visitor is called for any
/// lifetime; to keep a claim, copy it with [`Relife::relife`]
/// (`let kept: ClaimPayment<'static> = claim.clone().relife();`).
///
/// The fast way to stream a large file: [`crate::stream::Era835Stream`]
/// hands out owned claims and events instead, at a fraction of the speed.
/// A read error ends the input and is reported at its offset.
pub fn for_each_claim_835_read<R, V>(reader: R, visitor: &mut V) -> Vec<Error>
where
    R: std::io::Read,
    V: for<'w> Era835Visitor<'w>,
{
    for_each_claim_835_read_windowed(reader, crate::window::WINDOW, visitor)
}

/// [`for_each_claim_835_read`] with the window size chosen: smaller holds
/// less, larger copies the open claim at fewer window ends (each window end
/// copies the text of the set header and the claim being read). Any size
/// reads the same; below a segment's length the window grows to hold it.
pub fn for_each_claim_835_read_windowed<R, V>(
    reader: R,
    window: usize,
    visitor: &mut V,
) -> Vec<Error>
where
    R: std::io::Read,
    V: for<'w> Era835Visitor<'w>,
{
    crate::window::read_windows(
        reader,
        window,
        &mut drive::Visiting(visitor),
        drive::Driver::new(Delivery::Visit),
    )
}

/// The one-pass way through the body of an 835 set, shared by the readers
/// ([`drive_835`]) and [`crate::inspect::validate`]: each segment is split in
/// the pass that finds it ([`crate::tokenizer::SplitRun::next`]) and goes straight to the
/// builder, through its fast path ([`SetReader::read_fast`]) when it is an
/// ordinary claim or service segment.
pub(crate) struct FastReader {
    /// Element ends of the segment being read (see [`crate::tokenizer::SplitRun::next`]).
    ends: [usize; INLINE_ELEMENTS],
}

/// Why [`FastReader::read_run`] stopped.
pub(crate) enum FastStep<'a> {
    /// It read a segment that the envelope tracker must see (ISA, GS, ST,
    /// SE...): the caller routes it as it would one from [`Tokenizer`]'s
    /// iterator.
    Route(Segment<'a>),
    /// The next segment needs the checked path (the tokenizer's iterator),
    /// which reports what is wrong with it; or the input has ended.
    Checked,
}

impl FastReader {
    pub(crate) fn new() -> Self {
        Self {
            ends: [0; INLINE_ELEMENTS],
        }
    }

    /// Reads the ordinary body segments of the open 835 set into `builder`,
    /// lending `visitor` each claim as it completes, until a segment needs
    /// more (see [`FastStep`]). One loop for the run rather than a call per
    /// segment: what cannot change between segments is checked once.
    #[inline(always)]
    pub(crate) fn read_run<'a>(
        &mut self,
        builder: &mut Era835Builder<'a>,
        tokenizer: &mut Tokenizer<'a>,
        tracker: &mut EnvelopeTracker,
        visitor: &mut dyn Era835Visitor<'a>,
    ) -> FastStep<'a> {
        let Some(mut run) = tokenizer.split_run() else {
            return FastStep::Checked;
        };
        let step = loop {
            let Some(split) = run.next(&mut self.ends) else {
                break FastStep::Checked;
            };
            let ends = &self.ends[..split.parts];
            let reader = &mut builder.reader;
            // The claim and line segments of the fast path are never
            // envelope segments, so it goes first; what it leaves is placed
            // as the tracker would place it.
            // SAFETY: `split` and `self.ends` are what `run.next` just
            // returned and wrote, over the run's own input.
            #[allow(unsafe_code)]
            let fast_read = tracker.in_set()
                && unsafe {
                    reader.read_fast(&split, run.delimiters().component, run.input(), &self.ends)
                };
            if fast_read {
                tracker.push_set_body();
                reader.count_at(split.index, split.offset);
                builder.deliver_ready(visitor);
                continue;
            }
            if !run.ordinary(&split) {
                break FastStep::Checked;
            }
            let seg = run.segment(&split);
            if is_envelope_id(split.id) || !tracker.push_set_body() {
                break FastStep::Route(seg);
            }
            Era835Builder::read_split::<BorrowText>(
                reader,
                &mut builder.problems,
                &seg,
                std::str::from_utf8(seg.raw()).ok(),
                ends,
            );
            builder.deliver_ready(visitor);
        };
        tokenizer.end_split_run(run);
        step
    }
}

/// True for the (packed) ids of envelope segments, which the envelope
/// tracker must see.
fn is_envelope_id(id: u32) -> bool {
    const ENVELOPE: [u32; 7] = [
        packed_id(b"ISA"),
        packed_id(b"IEA"),
        packed_id(b"GS\0"),
        packed_id(b"GE\0"),
        packed_id(b"ST\0"),
        packed_id(b"SE\0"),
        packed_id(b"TA1"),
    ];
    ENVELOPE.contains(&id)
}

/// Checks one 835 set fed segment by segment, in memory bounded by one claim:
/// collects the reader's problems and every imbalance (for
/// [`crate::inspect::validate`], which then need not hold the set).
pub(crate) struct Era835Check<'a> {
    builder: Era835Builder<'a>,
    balance: ClaimBalance,
}

/// Balances each claim it is lent, keeping the imbalances in input order.
#[derive(Default)]
struct ClaimBalance(Vec<crate::balance::BalanceProblem>);

impl<'a> Era835Visitor<'a> for ClaimBalance {
    fn claim(&mut self, _: &Remittance<'a>, claim: &ClaimPayment<'a>) {
        crate::balance::balance_claim(claim, &mut self.0);
    }
}

impl<'a> Era835Check<'a> {
    pub(crate) fn new() -> Self {
        Self {
            builder: Era835Builder::with_delivery(Delivery::Visit),
            balance: ClaimBalance::default(),
        }
    }

    /// Reads one segment; balances the claim it completes, if any.
    pub(crate) fn push(&mut self, seg: &Segment<'a>) {
        self.builder.push(seg);
        self.builder.deliver_ready(&mut self.balance);
    }

    /// Reads ordinary body segments through the one-pass reader, balancing
    /// each claim as it completes; see [`FastReader::read_run`].
    pub(crate) fn read_run(
        &mut self,
        fast: &mut FastReader,
        tokenizer: &mut Tokenizer<'a>,
        tracker: &mut EnvelopeTracker,
    ) -> FastStep<'a> {
        fast.read_run(&mut self.builder, tokenizer, tracker, &mut self.balance)
    }

    /// Ends the set: the reader's problems, then the imbalances in input
    /// order (lines and claims, then the transaction), as [`read_835`] and
    /// [`crate::balance::balance`] give them.
    pub(crate) fn finish(mut self) -> (Vec<Error>, Vec<crate::balance::BalanceProblem>) {
        let (r, problems) = self.builder.finish_visiting(&mut self.balance);
        let mut imbalances = self.balance.0;
        imbalances.extend(crate::balance::balance_transaction(&r, r.claims_paid_total));
        (problems, imbalances)
    }
}

/// Elements of a segment (id included) split on the stack; longer segments
/// (a full TS3 has 25) spill into a reused vector.
const INLINE_ELEMENTS: usize = 32;

/// Cap on the claims reserved ahead for a set (about 64 MB of claims), so one
/// huge set does not make every later small one reserve as much.
const MAX_CLAIMS_HINT: usize = 1 << 16;

/// Where the builder puts a completed claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// In [`Remittance::claims`].
    Hold,
    /// In a queue read with [`Era835Builder::pop_claim`] (streaming reader).
    Queue,
    /// Lent to a visitor, then its buffers are reused ([`for_each_claim_835`]).
    Visit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loop {
    Header,
    Payer,
    Payee,
    Other,
    HeaderNumber,
    Claim,
    Service,
    Trailer,
}

/// Push-based 835 reader: feed it the segments of one set (ST..SE) in order.
#[derive(Debug)]
pub struct Era835Builder<'a> {
    reader: SetReader<'a>,
    /// Kept apart from the reader so that reading a segment can borrow both.
    problems: ProblemList,
    /// Element end offsets of segments too long for the stack array.
    spill: Vec<usize>,
}

/// What one set's segments build: the remittance, the loop being read and
/// the claim buffers.
#[derive(Debug)]
struct SetReader<'a> {
    r: Remittance<'a>,
    state: Loop,
    /// Two claim buffers used in turn: the one being read (`cur`) and, in
    /// visiting mode, the one just completed. Reusing them keeps their lists'
    /// capacity, so steady-state reading allocates nothing per claim.
    slots: [ClaimPayment<'a>; 2],
    /// 0 or 1; read as `slots[cur & 1]`, which needs no bounds check.
    cur: usize,
    /// Service lines of the claim being read. The slot's `services` may hold
    /// more: lines of the slot's previous claim, reused in place by
    /// [`SetReader::open_service`] and cut off when the claim closes.
    lines: usize,
    in_claim: bool,
    /// Slot of a completed claim not yet handed to the visitor.
    ready: Option<usize>,
    delivery: Delivery,
    finished: std::collections::VecDeque<ClaimPayment<'a>>,
    seen_bpr: bool,
    seen_payer: bool,
    seen_payee: bool,
    /// Index and offset of the last segment read (where a missing-segment
    /// problem is reported).
    last_index: usize,
    last_offset: usize,
}

impl Default for Era835Builder<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Era835Builder<'a> {
    /// Creates a builder that keeps every claim in [`Remittance::claims`].
    pub fn new() -> Self {
        Self::with_delivery(Delivery::Hold)
    }

    fn with_delivery(delivery: Delivery) -> Self {
        Self {
            reader: SetReader {
                r: Remittance::default(),
                state: Loop::Header,
                slots: Default::default(),
                cur: 0,
                lines: 0,
                in_claim: false,
                ready: None,
                delivery,
                finished: std::collections::VecDeque::new(),
                seen_bpr: false,
                seen_payer: false,
                seen_payee: false,
                last_index: 0,
                last_offset: 0,
            },
            problems: ProblemList::default(),
            spill: Vec::new(),
        }
    }

    /// Creates a builder that hands completed claims out through
    /// [`Era835Builder::pop_claim`] instead of keeping them, so memory stays
    /// bounded by one claim; [`Remittance::claim_count`] and
    /// [`Remittance::claims_paid_total`] still cover every claim.
    pub fn streaming() -> Self {
        Self::with_delivery(Delivery::Queue)
    }

    /// Lends the claim completed by the last segment pushed, if any, to the
    /// visitor (visiting mode).
    fn deliver_ready(&mut self, visitor: &mut dyn Era835Visitor<'a>) {
        let reader = &mut self.reader;
        // Looked at before it is taken: most segments complete no claim, and
        // `take` would write it back every time.
        if let Some(slot) = reader.ready {
            reader.ready = None;
            visitor.claim(&reader.r, &reader.slots[slot]);
        }
    }

    /// Returns the header read so far (BPR, TRN, payer, payee...).
    pub fn header(&self) -> &Remittance<'a> {
        &self.reader.r
    }

    /// Removes and returns the oldest completed claim (streaming mode).
    pub fn pop_claim(&mut self) -> Option<ClaimPayment<'a>> {
        self.reader.finished.pop_front()
    }

    /// Removes and returns the problems found so far.
    pub fn take_problems(&mut self) -> Vec<Error> {
        self.problems.take()
    }

    /// Reads one segment; text fields borrow from it.
    pub fn push(&mut self, seg: &Segment<'a>) {
        let text = std::str::from_utf8(seg.raw()).ok();
        self.push_with::<BorrowText>(seg, text);
    }

    fn push_with<'x, M: TextMode<'x, 'a>>(&mut self, seg: &Segment<'x>, seg_str: Option<&'x str>) {
        let raw = seg.raw();
        let sep = seg.delimiters().element;
        // Element end offsets go into a stack array: no vector bookkeeping per
        // element. Segments are short (about 25 bytes), so a plain loop beats
        // memchr's setup here.
        let mut inline = [0usize; INLINE_ELEMENTS];
        let mut n = 0;
        let mut overflow = false;
        for (p, &b) in raw.iter().enumerate() {
            if b == sep {
                if n == INLINE_ELEMENTS - 1 {
                    overflow = true;
                    break;
                }
                inline[n] = p;
                n += 1;
            }
        }
        let ends: &[usize] = if overflow {
            // Rare: a segment with more elements than the array holds.
            self.spill.clear();
            self.spill.extend(memchr::memchr_iter(sep, raw));
            self.spill.push(raw.len());
            &self.spill
        } else {
            inline[n] = raw.len();
            &inline[..=n]
        };
        Self::read_split::<M>(&mut self.reader, &mut self.problems, seg, seg_str, ends);
    }

    /// Reads one segment already split: `ends` holds each element's end
    /// offset, the id's first (see [`crate::tokenizer::SplitRun::next`]).
    fn read_split<'x, M: TextMode<'x, 'a>>(
        reader: &mut SetReader<'a>,
        problems: &mut ProblemList,
        seg: &Segment<'x>,
        seg_str: Option<&'x str>,
        ends: &[usize],
    ) {
        reader.count(seg);
        reader.dispatch(
            &Fields {
                seg,
                seg_str,
                ends,
                mode: std::marker::PhantomData::<(M, &'a ())>,
            },
            problems,
        );
    }

    /// Ends the set and returns the remittance with every problem found.
    pub fn finish(mut self) -> (Remittance<'a>, Vec<Error>) {
        self.reader.close_claim();
        let at = crate::error::Position {
            segment_index: self.reader.last_index,
            segment_id: "SE".into(),
            offset: self.reader.last_offset,
            ..Default::default()
        };
        if !self.reader.seen_bpr {
            self.problems
                .push(Error::at(at.clone(), ErrorKind::MissingSegment("BPR")));
        }
        if !self.reader.seen_payer {
            self.problems.push(Error::at(
                at.clone(),
                ErrorKind::MissingSegment("N1*PR (payer)"),
            ));
        }
        if !self.reader.seen_payee {
            self.problems
                .push(Error::at(at, ErrorKind::MissingSegment("N1*PE (payee)")));
        }
        (self.reader.r, self.problems.take())
    }

    /// Ends the set in visiting mode: lends the last claim to `visitor`, then
    /// returns what [`Self::finish`] does.
    fn finish_visiting(
        mut self,
        visitor: &mut dyn Era835Visitor<'a>,
    ) -> (Remittance<'a>, Vec<Error>) {
        self.flush_claim();
        self.deliver_ready(visitor);
        self.finish()
    }

    /// Closes the claim being read, if any (the streaming reader calls it at
    /// the end of a set so the last claim can be popped before [`Self::finish`]).
    pub fn flush_claim(&mut self) {
        self.reader.close_claim();
    }
}

impl<'a> SetReader<'a> {
    /// Counts a segment of the set ([`Remittance::segment_count`]) and
    /// remembers where it was (where a missing-segment problem is reported).
    #[inline]
    fn count(&mut self, seg: &Segment<'_>) {
        self.count_at(seg.index(), seg.offset());
    }

    /// [`Self::count`] for the segment at `index` and byte `offset`.
    #[inline]
    fn count_at(&mut self, index: usize, offset: usize) {
        self.r.segment_count += 1;
        self.last_index = index;
        self.last_offset = offset;
    }

    /// Returns the claim being read, if a CLP has opened one.
    fn claim_mut(&mut self) -> Option<&mut ClaimPayment<'a>> {
        if self.in_claim {
            Some(&mut self.slots[self.cur & 1])
        } else {
            None
        }
    }

    /// Returns the service line being read, if an SVC has opened one.
    fn service_mut(&mut self) -> Option<&mut ServicePayment<'a>> {
        let line = self.lines.checked_sub(1)?;
        self.claim_mut().and_then(|c| c.services.get_mut(line))
    }

    fn dispatch<'x, M: TextMode<'x, 'a>>(
        &mut self,
        f: &Fields<'_, 'x, 'a, M>,
        problems: &mut ProblemList,
    ) {
        let seg = f.seg;
        match f.get(0) {
            b"ST" => {
                if f.get(1) != b"835" {
                    problems.push(Error::at(
                        seg.position_at(1),
                        ErrorKind::WrongTransactionType {
                            expected: "835",
                            found: f.text(1).into_owned(),
                        },
                    ));
                }
                self.r.control_number = f.text(2);
                self.r.implementation = f.opt(3);
            }
            b"SE" => self.close_claim(),
            b"BPR" => {
                self.seen_bpr = true;
                let p = &mut self.r.payment;
                p.handling = f.req(1, "BPR01", problems);
                p.amount = f.req_dec(2, "BPR02", problems);
                p.credit_debit = f.req(3, "BPR03", problems);
                if !matches!(f.get(3), b"C" | b"D" | b"") {
                    problems.push(Error::at(
                        seg.position_at(3),
                        ErrorKind::InvalidCode {
                            element: "BPR03",
                            value: f.text(3).into_owned(),
                            expected: "C or D",
                        },
                    ));
                }
                p.method = f.req(4, "BPR04", problems);
                p.format = f.opt(5);
                p.originating_company_id = f.opt(10);
                p.date = f.opt_date(16, "BPR16", problems);
                p.segment_index = seg.index();
                p.segment_offset = seg.offset();
            }
            b"TRN" if matches!(self.state, Loop::Header) => {
                self.r.trace = Some(Trace {
                    type_code: f.req(1, "TRN01", problems),
                    number: f.req(2, "TRN02", problems),
                    originator: f.opt(3),
                    supplemental: f.opt(4),
                })
            }
            b"CUR" if matches!(self.state, Loop::Header) => self.r.currency = f.opt(2),
            b"N1" => {
                let party = Party {
                    entity: f.req(1, "N101", problems),
                    name: f.text(2),
                    id_qualifier: f.opt(3),
                    id: f.opt(4),
                    ..Party::default()
                };
                match f.get(1) {
                    b"PR" => {
                        self.seen_payer = true;
                        self.r.payer = party;
                        self.state = Loop::Payer;
                    }
                    b"PE" => {
                        self.seen_payee = true;
                        self.r.payee = party;
                        self.state = Loop::Payee;
                    }
                    _ => self.state = Loop::Other,
                }
            }
            b"N3" | b"N4" | b"RDM"
                if matches!(self.state, Loop::Payer | Loop::Payee | Loop::Other) =>
            {
                let party = match self.state {
                    Loop::Payer => &mut self.r.payer,
                    Loop::Payee => &mut self.r.payee,
                    _ => return,
                };
                match f.get(0) {
                    b"N3" => {
                        party.address_lines.push(f.text(1));
                        if let Some(l2) = f.opt(2) {
                            party.address_lines.push(l2);
                        }
                    }
                    b"N4" => {
                        party.city = f.opt(1);
                        party.state = f.opt(2);
                        party.postal_code = f.opt(3);
                    }
                    _ => {}
                }
            }
            b"REF" => {
                let r = Reference {
                    qualifier: f.req(1, "REF01", problems),
                    value: f.req(2, "REF02", problems),
                };
                match self.state {
                    Loop::Header => self.r.references.push(r),
                    Loop::Payer => self.r.payer.references.push(r),
                    Loop::Payee => self.r.payee.references.push(r),
                    Loop::Claim => {
                        if let Some(c) = self.claim_mut() {
                            c.references.push(r)
                        }
                    }
                    Loop::Service => {
                        if let Some(s) = self.service_mut() {
                            s.references.push(r)
                        }
                    }
                    Loop::Other => {}
                    Loop::HeaderNumber | Loop::Trailer => misplaced(
                        problems,
                        seg,
                        "outside the header, payer, payee, claim or service loops",
                    ),
                }
            }
            b"PER" => {
                let c = f.contact(problems);
                match self.state {
                    Loop::Payer => self.r.payer.contacts.push(c),
                    Loop::Payee => self.r.payee.contacts.push(c),
                    Loop::Claim => {
                        if let Some(claim) = self.claim_mut() {
                            claim.contacts.push(c)
                        }
                    }
                    Loop::Other => {}
                    _ => misplaced(problems, seg, "outside the payer, payee or claim loops"),
                }
            }
            b"DTM" => {
                let d = DateRef {
                    qualifier: f.req(1, "DTM01", problems),
                    date: f.req_date(2, "DTM02", problems),
                };
                match self.state {
                    Loop::Header => self.r.dates.push(d),
                    Loop::Claim => {
                        if let Some(c) = self.claim_mut() {
                            c.dates.push(d)
                        }
                    }
                    Loop::Service => {
                        if let Some(s) = self.service_mut() {
                            s.dates.push(d)
                        }
                    }
                    _ => misplaced(problems, seg, "outside the header, claim or service loops"),
                }
            }
            b"LX" => {
                self.close_claim();
                self.state = Loop::HeaderNumber;
                self.r.header_numbers.push(HeaderNumber {
                    number: f.req(1, "LX01", problems),
                    ..HeaderNumber::default()
                });
            }
            b"TS3" | b"TS2" if matches!(self.state, Loop::HeaderNumber) => {
                let Some(h) = self.r.header_numbers.last_mut() else {
                    return;
                };
                if f.get(0) == b"TS3" {
                    h.summary = Some(ProviderSummary {
                        provider_id: f.req(1, "TS301", problems),
                        facility_code: f.req(2, "TS302", problems),
                        fiscal_period_date: f.req_date(3, "TS303", problems),
                        claim_count: f.req_dec(4, "TS304", problems),
                        total_charge: f.req_dec(5, "TS305", problems),
                        amounts: (6..f.len())
                            .map(|i| f.opt_dec(i, "TS3", problems))
                            .collect(),
                    });
                } else {
                    h.supplemental = Some(
                        (1..f.len())
                            .map(|i| f.opt_dec(i, "TS2", problems))
                            .collect(),
                    );
                }
            }
            b"CLP" => self.open_claim(|c| {
                c.patient_control_number = f.req(1, "CLP01", problems);
                c.status_code = f.req(2, "CLP02", problems);
                c.charge = f.req_dec(3, "CLP03", problems);
                c.paid = f.req_dec(4, "CLP04", problems);
                c.patient_responsibility = f.opt_dec(5, "CLP05", problems);
                c.filing_indicator = f.opt(6);
                c.payer_claim_control_number = f.opt(7);
                c.facility_type = f.opt(8);
                c.frequency = f.opt(9);
                c.drg_code = f.opt(11);
                c.drg_weight = f.opt_dec(12, "CLP12", problems);
                c.discharge_fraction = f.opt_dec(13, "CLP13", problems);
                c.segment_index = seg.index();
                c.segment_offset = seg.offset();
            }),
            b"CAS" => {
                let adjustments = match self.state {
                    Loop::Claim => self.claim_mut().map(|c| &mut c.adjustments),
                    Loop::Service => self.service_mut().map(|s| &mut s.adjustments),
                    _ => None,
                };
                match adjustments {
                    Some(list) => f.cas(list, problems),
                    None => misplaced(problems, seg, "outside a claim or service loop"),
                }
            }
            b"NM1" | b"MIA" | b"MOA" if matches!(self.state, Loop::Claim) => {
                let Some(c) = self.claim_mut() else { return };
                match f.get(0) {
                    b"NM1" => c.names.push(Name {
                        entity: f.req(1, "NM101", problems),
                        entity_type: f.req(2, "NM102", problems),
                        last: f.opt(3),
                        first: f.opt(4),
                        middle: f.opt(5),
                        suffix: f.opt(7),
                        id_qualifier: f.opt(8),
                        id: f.opt(9),
                    }),
                    b"MIA" => {
                        c.inpatient = Some(Box::new(InpatientAdjudication {
                            covered_days_or_visits: f.opt_dec(1, "MIA01", problems),
                            pps_operating_outlier: f.opt_dec(2, "MIA02", problems),
                            claim_drg_amount: f.opt_dec(4, "MIA04", problems),
                            remark_codes: [5, 20, 21, 22, 23]
                                .into_iter()
                                .filter_map(|i| f.opt(i))
                                .collect(),
                            elements: (1..f.len()).map(|i| f.text(i)).collect(),
                        }))
                    }
                    _ => {
                        c.outpatient = Some(Box::new(OutpatientAdjudication {
                            reimbursement_rate: f.opt_dec(1, "MOA01", problems),
                            hcpcs_payable_amount: f.opt_dec(2, "MOA02", problems),
                            remark_codes: (3..=7).filter_map(|i| f.opt(i)).collect(),
                            esrd_payment_amount: f.opt_dec(8, "MOA08", problems),
                            nonpayable_professional_component: f.opt_dec(9, "MOA09", problems),
                        }))
                    }
                }
            }
            b"AMT" | b"QTY" => {
                let qualifier = f.req(
                    1,
                    if f.get(0) == b"AMT" { "AMT01" } else { "QTY01" },
                    problems,
                );
                let value = f.req_dec(
                    2,
                    if f.get(0) == b"AMT" { "AMT02" } else { "QTY02" },
                    problems,
                );
                let is_amt = f.get(0) == b"AMT";
                let target = match self.state {
                    Loop::Claim => self
                        .claim_mut()
                        .map(|c| (&mut c.amounts, &mut c.quantities)),
                    Loop::Service => self
                        .service_mut()
                        .map(|s| (&mut s.amounts, &mut s.quantities)),
                    _ => None,
                };
                match target {
                    Some((amounts, _)) if is_amt => amounts.push(AmountRef {
                        qualifier,
                        amount: value,
                    }),
                    Some((_, quantities)) => quantities.push(QuantityRef {
                        qualifier,
                        quantity: value,
                    }),
                    None => misplaced(problems, seg, "outside a claim or service loop"),
                }
            }
            b"SVC" => {
                let opened = self.open_service(|s| {
                    s.procedure = f.procedure(1, "SVC01", true, problems).unwrap_or_default();
                    s.charge = f.req_dec(2, "SVC02", problems);
                    s.paid = f.req_dec(3, "SVC03", problems);
                    s.revenue_code = f.opt(4);
                    s.units = f.opt_dec(5, "SVC05", problems);
                    s.submitted_procedure = f.procedure(6, "SVC06", false, problems).map(Box::new);
                    s.submitted_units = f.opt_dec(7, "SVC07", problems);
                    s.segment_index = seg.index();
                    s.segment_offset = seg.offset();
                });
                if !opened {
                    misplaced(problems, seg, "before any CLP");
                }
            }
            b"LQ" if matches!(self.state, Loop::Service) => {
                if let Some(s) = self.service_mut() {
                    s.remarks.push(Remark {
                        qualifier: f.req(1, "LQ01", problems),
                        code: f.req(2, "LQ02", problems),
                    });
                }
            }
            b"PLB" => {
                self.close_claim();
                self.state = Loop::Trailer;
                f.plb(&mut self.r.provider_adjustments, problems);
            }
            _ => misplaced(
                problems,
                seg,
                "where the 835 does not define it (kept in the tree, ignored by the 835 reader)",
            ),
        }
    }

    /// Opens a claim (CLP) in the free slot, keeping its lists' capacity, and
    /// lets `fill` set its CLP values.
    fn open_claim(&mut self, fill: impl FnOnce(&mut ClaimPayment<'a>)) {
        self.close_claim();
        self.state = Loop::Claim;
        self.in_claim = true;
        let header_number = self.r.header_numbers.last().map(|h| h.number.clone());
        let c = &mut self.slots[self.cur & 1];
        c.clear_lists();
        c.header_number = header_number;
        fill(c);
    }

    /// Opens a service line (SVC) in the claim being read and lets `fill` set
    /// its SVC values (all of them: a reused line keeps its old ones, see
    /// [`ServicePayment::reset`]); false when no claim is open.
    fn open_service(&mut self, fill: impl FnOnce(&mut ServicePayment<'a>)) -> bool {
        let line = self.lines;
        let Some(c) = self.claim_mut() else {
            return false;
        };
        // A line of the slot's previous claim is reset and reused; else one
        // is pushed empty. Either way it is filled in place: a service line
        // is large, and building it aside would copy it once more.
        match c.services.get_mut(line) {
            Some(s) => s.reset(),
            None => c.services.resize_with(line + 1, ServicePayment::default),
        }
        if let Some(s) = c.services.get_mut(line) {
            fill(s);
        }
        self.lines = line + 1;
        self.state = Loop::Service;
        true
    }

    fn close_claim(&mut self) {
        if !self.in_claim {
            return;
        }
        self.in_claim = false;
        let slot = &mut self.slots[self.cur & 1];
        // Lines left from the slot's previous claim are not this claim's.
        slot.services.truncate(self.lines);
        self.lines = 0;
        self.r.claim_count += 1;
        self.r.claims_paid_total += slot.paid;
        match self.delivery {
            Delivery::Hold => self.r.claims.push(std::mem::take(slot)),
            Delivery::Queue => self.finished.push_back(std::mem::take(slot)),
            Delivery::Visit => {
                self.ready = Some(self.cur);
                self.cur ^= 1;
            }
        }
    }
}

impl Era835Builder<'static> {
    /// Reads one segment, copying its text, so the segment's buffer may be
    /// reused afterwards (the streaming reader's path).
    pub fn push_owned(&mut self, seg: &Segment<'_>) {
        let text = std::str::from_utf8(seg.raw()).ok();
        self.push_with::<CopyText>(seg, text);
    }
}

fn misplaced(problems: &mut ProblemList, seg: &Segment<'_>, context: &'static str) {
    problems.push(Error::warn_at(
        seg.position(),
        ErrorKind::UnexpectedSegment {
            found: seg.id().to_string(),
            context,
        },
    ));
}

/// How a reader makes output text from input: borrowing it (the zero-copy
/// readers) or copying it (the streaming reader, whose buffer is reused).
trait TextMode<'x, 'o> {
    /// Text from input bytes, which may be invalid UTF-8 (replaced).
    fn from_bytes(b: &'x [u8]) -> Text<'o>;
    /// Text from input already known to be valid.
    fn from_str(s: &'x str) -> Text<'o>;
}

/// Output text borrows from the input.
struct BorrowText;

impl<'x> TextMode<'x, 'x> for BorrowText {
    fn from_bytes(b: &'x [u8]) -> Text<'x> {
        // from_utf8 has an ASCII fast path that from_utf8_lossy's chunking lacks.
        match std::str::from_utf8(b) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(b),
        }
    }

    #[inline(always)]
    fn from_str(s: &'x str) -> Text<'x> {
        Cow::Borrowed(s)
    }
}

/// Output text is copied out of the input.
struct CopyText;

impl<'x> TextMode<'x, 'static> for CopyText {
    fn from_bytes(b: &'x [u8]) -> Text<'static> {
        Cow::Owned(String::from_utf8_lossy(b).into_owned())
    }

    fn from_str(s: &'x str) -> Text<'static> {
        Cow::Owned(s.to_owned())
    }
}

/// A segment split into elements once, with typed accessors that record problems.
struct Fields<'s, 'x, 'o, M> {
    seg: &'s Segment<'x>,
    /// The segment as text, when it is valid UTF-8.
    seg_str: Option<&'x str>,
    /// End offset of each element in the segment (the id first); element `i`
    /// starts one past the end of element `i - 1`.
    ends: &'s [usize],
    /// Borrows or copies the text (see [`TextMode`]).
    mode: std::marker::PhantomData<(M, &'o ())>,
}

impl<'s, 'x, 'o, M: TextMode<'x, 'o>> Fields<'s, 'x, 'o, M> {
    /// Returns `b` (a slice of this segment) as output text.
    fn mk(&self, b: &'x [u8]) -> Text<'o> {
        if let Some(text) = self.seg_str {
            // `b` lies inside the segment, so its offset slices the checked text.
            let off = (b.as_ptr() as usize).wrapping_sub(self.seg.raw().as_ptr() as usize);
            if let Some(t) = off.checked_add(b.len()).and_then(|end| text.get(off..end)) {
                return M::from_str(t);
            }
        }
        M::from_bytes(b)
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    #[inline]
    fn get(&self, i: usize) -> &'x [u8] {
        let Some(&end) = self.ends.get(i) else {
            return b"";
        };
        let start = match i.checked_sub(1) {
            Some(prev) => self.ends.get(prev).map_or(0, |&e| e + 1),
            None => 0,
        };
        self.seg.raw().get(start..end).unwrap_or(b"")
    }

    fn text(&self, i: usize) -> Text<'o> {
        self.mk(self.get(i))
    }

    fn opt(&self, i: usize) -> Option<Text<'o>> {
        let b = self.get(i);
        if b.is_empty() { None } else { Some(self.mk(b)) }
    }

    fn req(&self, i: usize, name: &'static str, problems: &mut ProblemList) -> Text<'o> {
        let b = self.get(i);
        if b.is_empty() {
            problems.push(Error::at(
                self.seg.position_at(i),
                ErrorKind::MissingElement(name),
            ));
        }
        self.mk(b)
    }

    fn dec(
        &self,
        b: &[u8],
        i: usize,
        name: &'static str,
        problems: &mut ProblemList,
    ) -> Option<Decimal> {
        let v = parse_decimal(b);
        if v.is_none() {
            problems.push(Error::at(
                self.seg.position_at(i),
                ErrorKind::InvalidDecimal {
                    element: name,
                    value: String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned(),
                },
            ));
        }
        v
    }

    fn req_dec(&self, i: usize, name: &'static str, problems: &mut ProblemList) -> Decimal {
        let b = self.get(i);
        if b.is_empty() {
            problems.push(Error::at(
                self.seg.position_at(i),
                ErrorKind::MissingElement(name),
            ));
            return Decimal::ZERO;
        }
        self.dec(b, i, name, problems).unwrap_or_default()
    }

    fn opt_dec(&self, i: usize, name: &'static str, problems: &mut ProblemList) -> Option<Decimal> {
        let b = self.get(i);
        if b.is_empty() {
            None
        } else {
            self.dec(b, i, name, problems)
        }
    }

    fn check_date(&self, b: &[u8], i: usize, name: &'static str, problems: &mut ProblemList) {
        if !is_date(b) {
            problems.push(Error::at(
                self.seg.position_at(i),
                ErrorKind::InvalidDate {
                    element: name,
                    value: String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned(),
                },
            ));
        }
    }

    fn req_date(&self, i: usize, name: &'static str, problems: &mut ProblemList) -> Text<'o> {
        let b = self.get(i);
        if b.is_empty() {
            problems.push(Error::at(
                self.seg.position_at(i),
                ErrorKind::MissingElement(name),
            ));
        } else {
            self.check_date(b, i, name, problems);
        }
        self.mk(b)
    }

    fn opt_date(
        &self,
        i: usize,
        name: &'static str,
        problems: &mut ProblemList,
    ) -> Option<Text<'o>> {
        let b = self.get(i);
        if b.is_empty() {
            return None;
        }
        self.check_date(b, i, name, problems);
        Some(self.mk(b))
    }

    fn contact(&self, problems: &mut ProblemList) -> Contact<'o> {
        let mut numbers = Vec::new();
        let mut i = 3;
        while i + 1 < self.len() || (i < self.len() && !self.get(i).is_empty()) {
            if let (Some(q), n) = (self.opt(i), self.text(i + 1)) {
                numbers.push((q, n));
            }
            i += 2;
        }
        Contact {
            function: self.req(1, "PER01", problems),
            name: self.opt(2),
            numbers,
        }
    }

    /// Reads a procedure composite; `required` reports a missing one.
    fn procedure(
        &self,
        i: usize,
        name: &'static str,
        required: bool,
        problems: &mut ProblemList,
    ) -> Option<Procedure<'o>> {
        let b = self.get(i);
        if b.is_empty() {
            if required {
                problems.push(Error::at(
                    self.seg.position_at(i),
                    ErrorKind::MissingElement(name),
                ));
            }
            return None;
        }
        let declared = self.seg.delimiters().component;
        let mut sep = declared;
        // Real files sometimes use another component separator in procedure
        // composites than ISA16 declares (`HC>12345>26` under ISA16 `:`). A
        // two-letter qualifier followed by punctuation is unambiguous, so read
        // it and warn rather than lose the procedure code.
        if memchr::memchr(declared, b).is_none()
            && b.len() > 3
            && b[..2].iter().all(u8::is_ascii_alphabetic)
            && matches!(b[2], b'>' | b':' | b'^' | b'|' | b'\\' | b'<' | b'!' | b'@')
        {
            sep = b[2];
            problems.push(Error::warn_at(
                self.seg.position_at(i),
                ErrorKind::ComponentSeparatorMismatch {
                    element: name,
                    found: sep as char,
                    declared: declared as char,
                },
            ));
        }
        let mut parts = b.split(|&c| c == sep);
        let qualifier = parts.next().unwrap_or(b"");
        let code = parts.next().unwrap_or(b"");
        if code.is_empty() {
            problems.push(Error::at(
                self.seg.position_at(i).with_component(2),
                ErrorKind::MissingElement(if required {
                    "SVC01-2 (procedure code)"
                } else {
                    "SVC06-2 (procedure code)"
                }),
            ));
        }
        let mut modifiers = SmallVec::new();
        let mut description = None;
        for (n, part) in parts.enumerate() {
            if n < 4 {
                if !part.is_empty() {
                    modifiers.push(self.mk(part));
                }
            } else if n == 4 && !part.is_empty() {
                description = Some(self.mk(part));
            }
        }
        Some(Procedure {
            qualifier: self.mk(qualifier),
            code: self.mk(code),
            modifiers,
            description,
        })
    }

    /// Reads a CAS segment: group code then any number of (reason, amount, quantity) triplets.
    fn cas(&self, out: &mut SmallVec<[Adjustment<'o>; 2]>, problems: &mut ProblemList) {
        let group = self.req(1, "CAS01", problems);
        let mut i = 2;
        let mut any = false;
        while i < self.len() {
            let (reason, amount, quantity) = (self.get(i), self.get(i + 1), self.get(i + 2));
            if reason.is_empty() && amount.is_empty() && quantity.is_empty() {
                i += 3;
                continue;
            }
            any = true;
            if reason.is_empty() {
                problems.push(Error::at(
                    self.seg.position_at(i),
                    ErrorKind::MissingElement(CAS_REASON[(i - 2) / 3 % 6]),
                ));
            }
            let amount = if amount.is_empty() {
                problems.push(Error::at(
                    self.seg.position_at(i + 1),
                    ErrorKind::MissingElement(CAS_AMOUNT[(i - 2) / 3 % 6]),
                ));
                Decimal::ZERO
            } else {
                self.dec(amount, i + 1, CAS_AMOUNT[(i - 2) / 3 % 6], problems)
                    .unwrap_or_default()
            };
            let quantity = if quantity.is_empty() {
                None
            } else {
                self.dec(quantity, i + 2, "CAS quantity", problems)
            };
            out.push(Adjustment {
                group: group.clone(),
                reason: self.mk(reason),
                amount,
                quantity,
            });
            i += 3;
        }
        if !any {
            problems.push(Error::at(
                self.seg.position_at(2),
                ErrorKind::MissingElement("CAS02"),
            ));
        }
    }

    /// Reads a PLB: provider, fiscal period, then any number of (composite reason, amount) pairs.
    fn plb(&self, out: &mut Vec<ProviderAdjustment<'o>>, problems: &mut ProblemList) {
        let provider_id = self.req(1, "PLB01", problems);
        let fiscal_period_date = self.req_date(2, "PLB02", problems);
        let mut i = 3;
        let mut any = false;
        while i < self.len() {
            let (composite, amount) = (self.get(i), self.get(i + 1));
            if composite.is_empty() && amount.is_empty() {
                i += 2;
                continue;
            }
            any = true;
            let mut parts = composite.split(|&c| c == self.seg.delimiters().component);
            let reason = parts.next().unwrap_or(b"");
            let reference = parts.next().filter(|r| !r.is_empty()).map(|r| self.mk(r));
            if reason.is_empty() {
                problems.push(Error::at(
                    self.seg.position_at(i).with_component(1),
                    ErrorKind::MissingElement("PLB adjustment reason"),
                ));
            }
            let amount = if amount.is_empty() {
                problems.push(Error::at(
                    self.seg.position_at(i + 1),
                    ErrorKind::MissingElement("PLB adjustment amount"),
                ));
                Decimal::ZERO
            } else {
                self.dec(amount, i + 1, "PLB adjustment amount", problems)
                    .unwrap_or_default()
            };
            out.push(ProviderAdjustment {
                provider_id: provider_id.clone(),
                fiscal_period_date: fiscal_period_date.clone(),
                reason: self.mk(reason),
                reference,
                amount,
                segment_index: self.seg.index(),
            });
            i += 2;
        }
        if !any {
            problems.push(Error::at(
                self.seg.position_at(3),
                ErrorKind::MissingElement("PLB03"),
            ));
        }
    }
}

const CAS_REASON: [&str; 6] = ["CAS02", "CAS05", "CAS08", "CAS11", "CAS14", "CAS17"];
const CAS_AMOUNT: [&str; 6] = ["CAS03", "CAS06", "CAS09", "CAS12", "CAS15", "CAS18"];

/// True for CCYYMMDD with a plausible month and day.
#[inline]
fn is_date(b: &[u8]) -> bool {
    let Ok(&bytes) = <&[u8; 8]>::try_from(b) else {
        return false;
    };
    // All eight are digits when each byte is 0x30..=0x39: its high nibble is
    // 3, and adding 6 does not carry into the high nibble (checked at once).
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    const SIXES: u64 = 0x0606_0606_0606_0606;
    let word = u64::from_le_bytes(bytes);
    if word & HIGH != THREES || (word + SIXES) & HIGH != THREES {
        return false;
    }
    let month = (bytes[4] - b'0') * 10 + (bytes[5] - b'0');
    let day = (bytes[6] - b'0') * 10 + (bytes[7] - b'0');
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_eight_digits_with_a_plausible_month_and_day() {
        for ok in ["20240315", "19991231", "00000101", "99991231"] {
            assert!(is_date(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "2024031",
            "202403150",
            "20241315",
            "20240300",
            "20240332",
            "2024O315",
            "2024/315",
            "20240:15",
            "2024031\u{7f}",
            "20240315 ",
            "2024-3-5",
        ] {
            assert!(!is_date(bad.as_bytes()), "{bad:?}");
        }
        // Every byte that is not a digit, in every position.
        for at in 0..8 {
            for byte in (0..=255u8).filter(|b| !b.is_ascii_digit()) {
                let mut d = *b"20240315";
                d[at] = byte;
                assert!(!is_date(&d), "{d:?}");
            }
        }
    }

    /// A CAS with twelve triplets (38 elements) takes the spill path of the
    /// element splitter; amounts, count and the position of a bad amount
    /// must be the same as on the stack path.
    #[test]
    fn long_cas_segment_spills_and_keeps_positions() {
        let mut cas = String::from("CAS*CO");
        for k in 1..=12 {
            let amount = if k == 11 {
                "1x".to_owned()
            } else {
                format!("{k}.50")
            };
            cas.push_str(&format!("*{k}*{amount}*"));
        }
        let input = format!(
            "ST*835*0001~BPR*I*10*C*CHK~N1*PR*P~N1*PE*Q*XX*1~CLP*A*1*100*10~{cas}~SE*7*0001~"
        );
        let (sets, problems) = read_all_835(input.as_bytes());
        let claim = &sets[0].claims[0];
        assert_eq!(claim.adjustments.len(), 12);
        assert_eq!(claim.adjustments[0].reason, "1");
        assert_eq!(claim.adjustments[0].amount, Decimal::new(150, 2));
        assert_eq!(claim.adjustments[11].reason, "12");
        assert_eq!(claim.adjustments[11].amount, Decimal::new(1250, 2));
        let bad: Vec<_> = problems
            .iter()
            .filter(|p| matches!(p.kind, ErrorKind::InvalidDecimal { .. }))
            .collect();
        assert_eq!(bad.len(), 1, "{problems:?}");
        // Triplet 11 starts at CAS32; its amount is CAS33.
        assert_eq!(bad[0].position.element, Some(33));
        assert_eq!(bad[0].position.segment_index, 6);
    }
}
