//! Claims into the x12 crate's 837 models, and a batch of them into one interchange.
//!
//! Everything the 837 needs comes from the claim (with its details and coverage snapshot) and
//! the providers on file. A claim that cannot be written (no patient demographics, a billing
//! provider without a tax id or street address...) is reported with the reason and left out of
//! the batch; it never makes the whole batch fail.

use std::collections::HashMap;

use chrono::{NaiveDateTime, Utc};
use medbill_x12::model::claim::{
    Adjustment, BillingProvider, ClaimCommon, ClaimFrequency, ClaimProvider, ClaimSetHeader,
    InstitutionalClaim, InstitutionalClaimSet, InstitutionalLine, LineAdjudication, OtherPayer,
    Patient, Payer, Procedure, ProfessionalClaim, ProfessionalClaimSet, ProfessionalLine, Receiver,
    ServiceFacility, Submitter, Subscriber, TaxId as X12TaxId,
};
use medbill_x12::model::{Address, DateRange, PartyName, PersonName, TransactionHeader};
use medbill_x12::write::{
    Envelope, GroupHeader, InterchangeHeader, Separators, Usage, institutional_interchange,
    professional_interchange,
};

use crate::details::{ClaimPerson, OtherPayerAdjustment, OtherPayerSnapshot, PostalAddress, SELF};
use crate::model::{Claim, ClaimType, FrequencyCode};
use crate::providers::{Provider, ProviderKind, TaxId};

/// Who the batch is from and to, for one payer route.
#[derive(Debug, Clone)]
pub struct RouteIdentity {
    /// ISA06 / GS02 and the submitter's ETIN (1000A NM109): who we are to this partner.
    pub sender_id: String,
    /// ISA08 / GS03 and the receiver id (1000B NM109).
    pub receiver_id: String,
    /// 1000B NM103.
    pub receiver_name: String,
    /// ISA15.
    pub usage: Usage,
}

/// The submitter's contact (1000A PER).
#[derive(Debug, Clone)]
pub struct SubmitterContact {
    /// NM103 of 1000A.
    pub name: String,
    /// PER02.
    pub contact_name: String,
    /// PER04, digits only.
    pub phone: String,
}

/// Why a claim cannot be written into an 837 (plain words, no PHI).
pub type Unwritable = String;

fn address(a: &PostalAddress) -> Address {
    Address {
        line1: a.line1.clone(),
        line2: (!a.line2.is_empty()).then(|| a.line2.clone()),
        city: a.city.clone(),
        state: a.state.clone(),
        postal_code: a.postal_code.clone(),
    }
}

fn person_name(p: &ClaimPerson) -> PersonName {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    PersonName {
        last: p.last_name.clone(),
        first: opt(&p.first_name),
        middle: opt(&p.middle_name),
        suffix: opt(&p.suffix),
    }
}

pub(crate) fn party_name(p: &Provider) -> PartyName {
    match p.kind {
        ProviderKind::Individual => PartyName::Person(PersonName {
            last: p.name.last_or_organization.clone(),
            first: (!p.name.first.is_empty()).then(|| p.name.first.clone()),
            middle: (!p.name.middle.is_empty()).then(|| p.name.middle.clone()),
            suffix: (!p.name.suffix.is_empty()).then(|| p.name.suffix.clone()),
        }),
        _ => PartyName::organization(p.name.last_or_organization.clone()),
    }
}

fn provider<'a>(
    providers: &'a HashMap<String, Provider>,
    npi: &str,
    role: &str,
) -> Result<&'a Provider, Unwritable> {
    providers
        .get(npi)
        .ok_or_else(|| format!("{role} provider {npi} is no longer on file"))
}

fn claim_provider(p: &Provider) -> ClaimProvider {
    ClaimProvider {
        name: party_name(p),
        npi: p.npi.as_str().to_owned(),
        taxonomy: p.taxonomy_code.clone(),
    }
}

fn billing_provider(
    claim: &Claim,
    providers: &HashMap<String, Provider>,
) -> Result<BillingProvider, Unwritable> {
    let p = provider(providers, claim.billing_provider_npi.as_str(), "billing")?;
    if claim.claim_type == ClaimType::Institutional && p.kind != ProviderKind::Organization {
        return Err(format!(
            "billing provider {} must be an organisation on an institutional claim",
            p.npi
        ));
    }
    let tax_id = match &p.tax_id {
        Some(TaxId::Ein(d)) => X12TaxId::Ein(d.clone()),
        Some(TaxId::Ssn(d)) => X12TaxId::Ssn(d.clone()),
        None => return Err(format!("billing provider {} has no tax id on file", p.npi)),
    };
    let addr = p
        .address
        .as_ref()
        .ok_or_else(|| format!("billing provider {} has no street address on file", p.npi))?;
    Ok(BillingProvider {
        name: party_name(p),
        npi: p.npi.as_str().to_owned(),
        tax_id,
        address: address(addr),
        taxonomy: p.taxonomy_code.clone(),
    })
}

/// The subscriber and, when the patient is someone else, the patient.
pub(crate) fn parties(claim: &Claim) -> Result<(Subscriber, Option<Patient>), Unwritable> {
    let d = &claim.details;
    let coverage = d.coverage.as_ref().ok_or(
        "the claim has no coverage snapshot (created before medbill kept one); recreate it",
    )?;
    let patient = d
        .patient
        .as_ref()
        .ok_or("the claim has no patient demographics (claim.demographics.patient)")?;
    let relationship = d.relationship();
    let responsibility = match coverage.order.as_str() {
        "SECONDARY" => "S",
        "TERTIARY" => "T",
        _ => "P",
    };
    let group_number = (!coverage.group_number.is_empty()).then(|| coverage.group_number.clone());
    let group_name = match (&group_number, coverage.plan_name.is_empty()) {
        (None, false) => Some(coverage.plan_name.clone()),
        _ => None,
    };
    let base = Subscriber {
        payer_responsibility: responsibility.to_owned(),
        group_number,
        group_name,
        claim_filing_indicator: "CI".to_owned(),
        name: PersonName::default(),
        member_id: coverage.member_id.clone(),
        address: None,
        birth_date: None,
        gender: None,
    };
    if relationship == SELF {
        let addr = patient.address.as_ref().ok_or(
            "the patient is the subscriber and has no address (claim.demographics.patient.address)",
        )?;
        return Ok((
            Subscriber {
                name: person_name(patient),
                address: Some(address(addr)),
                birth_date: patient.birth_date,
                gender: patient.gender.clone(),
                ..base
            },
            None,
        ));
    }
    let subscriber_name = match &d.subscriber {
        Some(s) => person_name(s),
        None => PersonName {
            last: coverage.subscriber_last_name.clone(),
            first: (!coverage.subscriber_first_name.is_empty())
                .then(|| coverage.subscriber_first_name.clone()),
            middle: None,
            suffix: None,
        },
    };
    let patient_loop = Patient {
        relationship: relationship.to_owned(),
        name: person_name(patient),
        address: address(
            patient
                .address
                .as_ref()
                .ok_or("the patient has no address (claim.demographics.patient.address)")?,
        ),
        birth_date: patient
            .birth_date
            .ok_or("the patient has no birth date (claim.demographics.patient.birth_date)")?,
        gender: patient
            .gender
            .clone()
            .ok_or("the patient has no gender (claim.demographics.patient.gender)")?,
    };
    Ok((
        Subscriber {
            name: subscriber_name,
            ..base
        },
        Some(patient_loop),
    ))
}

fn common(claim: &Claim) -> ClaimCommon {
    ClaimCommon {
        patient_control_number: claim.patient_control_number.as_str().to_owned(),
        total_charge: claim.total_charge.as_decimal(),
        frequency: match claim.frequency_code {
            FrequencyCode::Original => ClaimFrequency::Original,
            FrequencyCode::Replacement => ClaimFrequency::Replacement,
            FrequencyCode::Void => ClaimFrequency::Void,
        },
        payer_claim_number: claim.payer_claim_control_number.clone(),
        assignment: "A".to_owned(),
        benefits_assigned: "Y".to_owned(),
        release_of_information: "Y".to_owned(),
        prior_authorization: claim.details.prior_authorization_number.clone(),
        medical_record_number: None,
        diagnoses: claim.diagnoses.clone(),
        other_payers: claim
            .details
            .other_payer
            .as_ref()
            .map(other_payer)
            .into_iter()
            .collect(),
    }
}

fn cas(list: &[OtherPayerAdjustment]) -> Vec<Adjustment> {
    list.iter()
        .map(|a| Adjustment {
            group: a.group.clone(),
            reason: a.reason.clone(),
            amount: a.amount,
            quantity: a.quantity,
        })
        .collect()
}

/// Loops 2320/2330A/2330B of a secondary claim: the primary payer and what it decided.
fn other_payer(o: &OtherPayerSnapshot) -> OtherPayer {
    OtherPayer {
        payer_responsibility: o.payer_responsibility.clone(),
        relationship: o.relationship.clone(),
        group_number: (!o.group_number.is_empty()).then(|| o.group_number.clone()),
        claim_filing_indicator: "CI".to_owned(),
        adjustments: cas(&o.adjustments),
        paid_amount: Some(o.paid),
        remaining_patient_liability: o.remaining_patient_liability,
        benefits_assigned: "Y".to_owned(),
        release_of_information: "Y".to_owned(),
        subscriber_name: PersonName {
            last: o.subscriber_last_name.clone(),
            first: (!o.subscriber_first_name.is_empty()).then(|| o.subscriber_first_name.clone()),
            middle: None,
            suffix: None,
        },
        subscriber_id: o.member_id.clone(),
        payer_name: o.payer_name.clone(),
        payer_id: o.payer_id.clone(),
        adjudication_date: o.adjudication_date,
    }
}

/// Loop 2430 of one line of a secondary claim: the primary's adjudication of it, if any.
fn line_adjudications(claim: &Claim, line_number: u32) -> Vec<LineAdjudication> {
    let Some(o) = &claim.details.other_payer else {
        return Vec::new();
    };
    o.lines
        .iter()
        .filter(|l| l.line_number == line_number)
        .map(|l| LineAdjudication {
            payer_id: o.payer_id.clone(),
            paid_amount: l.paid,
            procedure: Procedure {
                qualifier: "HC".to_owned(),
                code: l.procedure_code.clone(),
                modifiers: l.modifiers.clone(),
            },
            revenue_code: l.revenue_code.clone(),
            units: l.units,
            adjustments: cas(&l.adjustments),
            // DTP*573 is required in 2430; the claim-level date stands for every line.
            adjudication_date: o
                .adjudication_date
                .unwrap_or_else(|| claim.created_at.date_naive()),
        })
        .collect()
}

pub(crate) fn payer(claim: &Claim) -> Payer {
    let name = claim
        .details
        .coverage
        .as_ref()
        .map(|c| c.payer_name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| claim.payer_id.clone());
    Payer {
        name,
        id: claim.payer_id.clone(),
        address: None,
    }
}

/// Builds the 837P model of one claim.
pub fn professional_claim(
    claim: &Claim,
    providers: &HashMap<String, Provider>,
) -> Result<ProfessionalClaim, Unwritable> {
    let (subscriber, patient) = parties(claim)?;
    let rendering = match &claim.rendering_provider_npi {
        Some(npi) => Some(claim_provider(provider(
            providers,
            npi.as_str(),
            "rendering",
        )?)),
        None => None,
    };
    let referring = match &claim.details.referring_provider_npi {
        Some(npi) => Some(claim_provider(provider(providers, npi, "referring")?)),
        None => None,
    };
    let facility = match &claim.details.service_facility_npi {
        Some(npi) => {
            let f = provider(providers, npi, "service facility")?;
            Some(ServiceFacility {
                name: f.name.last_or_organization.clone(),
                npi: Some(f.npi.as_str().to_owned()),
                address: address(
                    f.address
                        .as_ref()
                        .ok_or_else(|| format!("service facility {npi} has no address on file"))?,
                ),
            })
        }
        None => None,
    };
    let lines = claim
        .lines
        .iter()
        .map(|l| ProfessionalLine {
            procedure: Procedure {
                qualifier: "HC".to_owned(),
                code: l.procedure_code.clone(),
                modifiers: l.modifiers.clone(),
            },
            charge: l.charge.as_decimal(),
            unit_basis: "UN".to_owned(),
            units: l.units,
            place_of_service: None,
            diagnosis_pointers: l
                .diagnosis_pointers
                .iter()
                .map(|p| u8::try_from(*p).unwrap_or(u8::MAX))
                .collect(),
            service_date: DateRange::day(l.service_date),
            line_control_number: Some(l.line_control_number.clone()),
            // 2400 REF*G1 only when it differs from the claim's 2300 REF*G1.
            prior_authorization: l
                .prior_authorization_number
                .clone()
                .filter(|n| claim.details.prior_authorization_number.as_ref() != Some(n)),
            drug: None,
            attachments: Vec::new(),
            note: None,
            providers: Vec::new(),
            adjudications: line_adjudications(claim, l.line_number),
        })
        .collect();
    Ok(ProfessionalClaim {
        billing_provider: billing_provider(claim, providers)?,
        subscriber,
        patient,
        payer: payer(claim),
        claim: common(claim),
        place_of_service: claim.place_of_service.clone().unwrap_or_default(),
        provider_signature: true,
        patient_paid: None,
        referring_provider: referring,
        rendering_provider: rendering,
        service_facility: facility,
        accident: None,
        attachments: Vec::new(),
        note: None,
        ambulance_transport: None,
        ambulance_pickup: None,
        ambulance_dropoff: None,
        lines,
    })
}

/// Builds the 837I model of one claim.
pub fn institutional_claim(
    claim: &Claim,
    providers: &HashMap<String, Provider>,
) -> Result<InstitutionalClaim, Unwritable> {
    let (subscriber, patient) = parties(claim)?;
    let inst = claim
        .details
        .institutional
        .as_ref()
        .ok_or("the claim has no institutional fields (claim.institutional)")?;
    let attending = claim_provider(provider(
        providers,
        &inst.attending_provider_npi,
        "attending",
    )?);
    let mut value_codes = Vec::with_capacity(inst.value_codes.len());
    for v in &inst.value_codes {
        let amount = rust_decimal::Decimal::from_str_exact(&v.amount)
            .map_err(|_| format!("value code {} has an unreadable amount", v.code))?;
        value_codes.push((v.code.clone(), amount));
    }
    let lines = claim
        .lines
        .iter()
        .map(|l| InstitutionalLine {
            revenue_code: l.revenue_code.clone().unwrap_or_default(),
            procedure: Some(Procedure {
                qualifier: "HC".to_owned(),
                code: l.procedure_code.clone(),
                modifiers: l.modifiers.clone(),
            }),
            charge: l.charge.as_decimal(),
            unit_basis: "UN".to_owned(),
            units: l.units,
            service_date: Some(DateRange::day(l.service_date)),
            line_control_number: Some(l.line_control_number.clone()),
            drug: None,
            adjudications: line_adjudications(claim, l.line_number),
        })
        .collect();
    if claim.lines.iter().any(|l| l.revenue_code.is_none()) {
        return Err("every line of an institutional claim needs a revenue code".to_owned());
    }
    Ok(InstitutionalClaim {
        billing_provider: billing_provider(claim, providers)?,
        subscriber,
        patient,
        payer: payer(claim),
        claim: common(claim),
        facility_type: claim.facility_type_code.clone().unwrap_or_default(),
        statement_from: claim.service_date_from,
        statement_to: claim.service_date_to,
        admission_date: inst.admission_date,
        admission_type: inst.admission_type.clone(),
        admission_source: inst.admission_source.clone(),
        patient_status: inst.discharge_status.clone(),
        present_on_admission: Vec::new(),
        admitting_diagnosis: inst.admitting_diagnosis.clone(),
        reasons_for_visit: Vec::new(),
        procedures: Vec::new(),
        drg: None,
        occurrence_spans: Vec::new(),
        occurrences: inst
            .occurrence_codes
            .iter()
            .map(|o| medbill_x12::model::claim::Occurrence {
                code: o.code.clone(),
                date: o.date,
            })
            .collect(),
        condition_codes: inst.condition_codes.clone(),
        value_codes,
        attending_provider: Some(attending),
        operating_physician: None,
        other_operating_physician: None,
        lines,
    })
}

/// BHT03 of a batch: its id without dashes (32 characters). A 277CA echoes it in 2200B TRN02,
/// which is how an acknowledgement picked up from a shared route finds its batch.
pub fn bht_reference(batch_id: &str) -> String {
    batch_id.chars().filter(|c| *c != '-').collect()
}

/// One batch's claims, already modelled, of one type.
pub enum ClaimSet {
    /// 837P claims.
    Professional(Vec<ProfessionalClaim>),
    /// 837I claims.
    Institutional(Vec<InstitutionalClaim>),
}

/// Writes one interchange holding one transaction set with the claims. `reference` goes into
/// BHT03 (the batch id, so a 999 or 277CA that echoes it finds the batch).
pub fn write_batch(
    set: ClaimSet,
    route: &RouteIdentity,
    submitter: &SubmitterContact,
    control_number: u32,
    set_control_number: u32,
    reference: &str,
) -> Result<String, String> {
    let now: NaiveDateTime = Utc::now().naive_utc();
    let (date, time) = (now.date(), now.time());
    let envelope = Envelope {
        interchange: InterchangeHeader {
            sender_qualifier: "ZZ".to_owned(),
            sender_id: route.sender_id.clone(),
            receiver_qualifier: "ZZ".to_owned(),
            receiver_id: route.receiver_id.clone(),
            date,
            time,
            control_number,
            ack_requested: true,
            usage: route.usage,
        },
        group: GroupHeader::new(
            route.sender_id.clone(),
            route.receiver_id.clone(),
            date,
            time,
            control_number,
        ),
        set_control_number,
    };
    let header = ClaimSetHeader {
        transaction: TransactionHeader {
            reference: bht_reference(reference),
            created_date: date,
            created_time: time,
        },
        submitter: Submitter {
            name: PartyName::organization(submitter.name.clone()),
            id: route.sender_id.clone(),
            contact_name: submitter.contact_name.clone(),
            phone: submitter.phone.clone(),
        },
        receiver: Receiver {
            name: route.receiver_name.clone(),
            id: route.receiver_id.clone(),
        },
    };
    let written = match set {
        ClaimSet::Professional(claims) => professional_interchange(
            Separators::default(),
            &envelope,
            &ProfessionalClaimSet { header, claims },
        ),
        ClaimSet::Institutional(claims) => institutional_interchange(
            Separators::default(),
            &envelope,
            &InstitutionalClaimSet { header, claims },
        ),
    };
    written.map_err(|e| e.to_string())
}
