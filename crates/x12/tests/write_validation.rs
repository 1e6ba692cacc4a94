//! The writers refuse invalid models with an error naming the field, and write nothing.

use std::str::FromStr;

use medbill_x12::model::claim::ClaimFrequency;
use medbill_x12::write::{self, Envelope, Separators, WriteError, samples};
use rust_decimal::Decimal;

fn field_of(e: WriteError) -> &'static str {
    match e {
        WriteError::Invalid { field, .. } => field,
        other => panic!("expected an invalid-field error, got {other:?}"),
    }
}

fn p_err(f: impl FnOnce(&mut medbill_x12::model::claim::ProfessionalClaimSet)) -> &'static str {
    let mut set = samples::professional_set();
    f(&mut set);
    field_of(
        write::professional_interchange(
            Separators::default(),
            &Envelope::test_default(1, 1, 1),
            &set,
        )
        .unwrap_err(),
    )
}

#[test]
fn rejects_invalid_professional_claims() {
    assert_eq!(
        p_err(|s| s.claims[0].claim.patient_control_number = "X".repeat(21)),
        "patient_control_number"
    );
    assert_eq!(
        p_err(|s| s.claims[0].billing_provider.npi = String::new()),
        "billing_provider.npi"
    );
    assert_eq!(
        p_err(|s| s.claims[0].billing_provider.npi = "1234567890".into()),
        "billing_provider.npi"
    );
    assert_eq!(
        p_err(|s| s.claims[0].claim.total_charge = Decimal::from_str("185.49").unwrap()),
        "total_charge"
    );
    assert_eq!(
        p_err(|s| s.claims[0].lines[0].charge = Decimal::from_str("150.001").unwrap()),
        "total_charge"
    );
    assert_eq!(
        p_err(|s| {
            s.claims[0].claim.frequency = ClaimFrequency::Void;
            s.claims[0].claim.payer_claim_number = None;
        }),
        "payer_claim_number"
    );
    assert_eq!(
        p_err(|s| s.claims[0].claim.diagnoses = vec!["E11.9".into()]),
        "diagnoses"
    );
    assert_eq!(p_err(|s| s.claims[0].claim.diagnoses.clear()), "diagnoses");
    assert_eq!(
        p_err(|s| s.claims[0].lines[0].diagnosis_pointers = vec![3]),
        "diagnosis_pointers"
    );
    assert_eq!(
        p_err(|s| s.claims[0].lines[0].procedure.modifiers = vec!["2".into()]),
        "procedure"
    );
    assert_eq!(
        p_err(|s| s.claims[0].billing_provider.tax_id =
            medbill_x12::model::claim::TaxId::Ein("12-3456789".into())),
        "billing_provider.tax_id"
    );
    assert_eq!(
        p_err(|s| s.claims[0].subscriber.birth_date = None),
        "subscriber"
    );
    assert_eq!(p_err(|s| s.claims[0].lines.clear()), "lines");
    assert_eq!(
        p_err(|s| s.claims[2].lines[0].adjudications[0].payer_id = "NOPE".into()),
        "adjudications.payer_id"
    );
}

#[test]
fn rejects_separator_characters_in_values() {
    let mut set = samples::professional_set();
    set.claims[0].payer.name = "ACME*HEALTH".into();
    let e = write::professional_interchange(
        Separators::default(),
        &Envelope::test_default(1, 1, 1),
        &set,
    )
    .unwrap_err();
    assert_eq!(
        e,
        WriteError::SeparatorInValue {
            segment: "NM1".into(),
            position: 3
        }
    );
}

#[test]
fn rejects_bad_separators_and_envelopes() {
    let sep = Separators {
        element: ':',
        ..Separators::default()
    };
    assert!(matches!(
        write::X12Writer::new(sep),
        Err(WriteError::InvalidSeparators(_))
    ));
    let sep = Separators {
        element: 'A',
        ..Separators::default()
    };
    assert!(matches!(
        write::X12Writer::new(sep),
        Err(WriteError::InvalidSeparators(_))
    ));
    let mut e = Envelope::test_default(1, 1, 1);
    e.interchange.sender_id = "A".repeat(16);
    let err =
        write::professional_interchange(Separators::default(), &e, &samples::professional_set())
            .unwrap_err();
    assert!(matches!(err, WriteError::Envelope { field: "ISA06", .. }));
    let mut w = write::X12Writer::new(Separators::default()).unwrap();
    assert!(matches!(
        w.begin_set("837", 1, "x"),
        Err(WriteError::EnvelopeOrder(_))
    ));
}

#[test]
fn rejects_invalid_institutional_and_inquiries() {
    let mut set = samples::institutional_set();
    set.claims[0].billing_provider.name =
        medbill_x12::model::PartyName::Person(medbill_x12::model::PersonName::new("A", "B"));
    let e = write::institutional_interchange(
        Separators::default(),
        &Envelope::test_default(1, 1, 1),
        &set,
    )
    .unwrap_err();
    assert_eq!(field_of(e), "billing_provider.name");

    let mut q = samples::eligibility_inquiry();
    q.provider_npi = "1234567890".into();
    let e =
        write::eligibility_interchange(Separators::default(), &Envelope::test_default(1, 1, 1), &q)
            .unwrap_err();
    assert_eq!(field_of(e), "provider_npi");

    let mut s = samples::claim_status_inquiry();
    s.claims.clear();
    let e = write::claim_status_interchange(
        Separators::default(),
        &Envelope::test_default(1, 1, 1),
        &s,
    )
    .unwrap_err();
    assert_eq!(field_of(e), "claims");

    let mut a = samples::functional_ack();
    a.accepted = 3;
    let e = write::ack_interchange(Separators::default(), &Envelope::test_default(1, 1, 1), &a)
        .unwrap_err();
    assert_eq!(field_of(e), "accepted");
}
