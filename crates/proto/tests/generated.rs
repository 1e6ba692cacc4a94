//! Exercises the generated types: messages round-trip through the wire format,
//! enums keep their X12-facing names, and the re-exports point at the same code.

use medbill_proto::claims::v1 as claims;
use medbill_proto::common::v1::{AdjustmentGroup, CasAdjustment};
use medbill_proto::remittance::v1::{IngestEraStreamRequest, ingest_era_stream_request};
use prost::Message;

#[test]
fn claim_round_trips_through_the_wire_format() {
    let claim = claims::Claim {
        id: "0192f0c4-7c1e-7000-8000-000000000001".into(),
        patient_control_number: "PCN123".into(),
        claim_type: claims::ClaimType::Professional.into(),
        status: claims::ClaimStatus::Draft.into(),
        frequency_code: "1".into(),
        diagnoses: vec!["E119".into(), "I10".into()],
        lines: vec![claims::ClaimLine {
            line_number: 1,
            procedure_code: "99213".into(),
            modifiers: vec!["25".into()],
            charge: "125.00".into(),
            units: "1".into(),
            service_date: "2026-11-02".into(),
            diagnosis_pointers: vec![1, 2],
            ..Default::default()
        }],
        total_charge: "125.00".into(),
        ..Default::default()
    };
    let bytes = claim.encode_to_vec();
    let back = claims::Claim::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(back, claim);
    assert_eq!(back.status(), claims::ClaimStatus::Draft);
    assert_eq!(back.lines[0].diagnosis_pointers, vec![1, 2]);
}

#[test]
fn enums_use_proto_names() {
    assert_eq!(claims::ClaimStatus::Held.as_str_name(), "CLAIM_STATUS_HELD");
    assert_eq!(
        AdjustmentGroup::from_str_name("ADJUSTMENT_GROUP_PR"),
        Some(AdjustmentGroup::Pr)
    );
    let cas = CasAdjustment {
        group: AdjustmentGroup::Co.into(),
        reason: "45".into(),
        amount: "-12.30".into(),
        ..Default::default()
    };
    assert_eq!(cas.group(), AdjustmentGroup::Co);
}

#[test]
fn era_stream_messages_are_a_header_or_a_chunk() {
    let chunk = IngestEraStreamRequest {
        part: Some(ingest_era_stream_request::Part::Chunk(b"ISA*00*".to_vec())),
    };
    let back = IngestEraStreamRequest::decode(chunk.encode_to_vec().as_slice()).expect("decodes");
    match back.part {
        Some(ingest_era_stream_request::Part::Chunk(bytes)) => assert_eq!(bytes, b"ISA*00*"),
        other => panic!("expected a chunk, got {other:?}"),
    }
}

#[test]
fn short_paths_are_the_full_paths() {
    let a: medbill_proto::medbill::claims::v1::GetClaimRequest =
        claims::GetClaimRequest { id: "x".into() };
    assert_eq!(a.id, "x");
    assert_eq!(medbill_proto::service_names::ALL.len(), 4);
}
