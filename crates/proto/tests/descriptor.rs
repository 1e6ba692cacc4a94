//! Checks the encoded descriptor set the build emits: the four services, their
//! key RPCs with the right streaming shape, and doc comments carried through.

use std::collections::BTreeMap;

use medbill_proto::FILE_DESCRIPTOR_SET;
use prost::Message;
use prost_types::{FileDescriptorProto, FileDescriptorSet, MethodDescriptorProto};

fn decode() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptor set decodes")
}

/// Maps fully qualified service name to its methods.
fn services(set: &FileDescriptorSet) -> BTreeMap<String, Vec<MethodDescriptorProto>> {
    let mut out = BTreeMap::new();
    for file in &set.file {
        for svc in &file.service {
            out.insert(
                format!("{}.{}", file.package(), svc.name()),
                svc.method.clone(),
            );
        }
    }
    out
}

fn method<'a>(
    all: &'a BTreeMap<String, Vec<MethodDescriptorProto>>,
    service: &str,
    name: &str,
) -> &'a MethodDescriptorProto {
    all.get(service)
        .unwrap_or_else(|| panic!("service {service} missing"))
        .iter()
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("rpc {service}/{name} missing"))
}

#[test]
fn four_services_with_their_key_rpcs() {
    let set = decode();
    let all = services(&set);
    assert_eq!(
        all.keys().map(String::as_str).collect::<Vec<_>>(),
        vec![
            "medbill.claims.v1.ClaimsService",
            "medbill.collections.v1.CollectionsService",
            "medbill.eligibility.v1.EligibilityService",
            "medbill.remittance.v1.RemittanceService",
        ]
    );
    let expected: [(&str, &[&str]); 4] = [
        (
            "medbill.eligibility.v1.EligibilityService",
            &[
                "CreateCoverage",
                "GetCoverage",
                "ListCoverages",
                "CheckEligibility",
                "GetEligibilityCheck",
                "ListEligibilityChecks",
                "EstimatePatientCost",
                "RequestPriorAuthorization",
                "GetPriorAuthorization",
            ],
        ),
        (
            "medbill.claims.v1.ClaimsService",
            &[
                "CreateClaim",
                "GetClaim",
                "ListClaims",
                "ScrubClaim",
                "SubmitClaims",
                "IngestAcknowledgement",
                "CorrectClaim",
                "VoidClaim",
                "ApplyAdjudication",
                "WatchClaims",
            ],
        ),
        (
            "medbill.remittance.v1.RemittanceService",
            &[
                "IngestEra",
                "IngestEraStream",
                "GetEra",
                "ListEras",
                "ListDenials",
                "ReconcileDeposit",
            ],
        ),
        (
            "medbill.collections.v1.CollectionsService",
            &[
                "OpenAccount",
                "GetAccount",
                "ListAccounts",
                "PostPatientResponsibility",
                "RecordPayment",
                "IssueRefund",
                "WriteOff",
                "GenerateStatements",
                "CreatePaymentPlan",
                "RunDunning",
                "PlaceWithAgency",
                "AgingReport",
            ],
        ),
    ];
    for (service, rpcs) in expected {
        for rpc in rpcs {
            let m = method(&all, service, rpc);
            let pkg = service.rsplit_once('.').map(|(p, _)| p).unwrap_or_default();
            assert_eq!(m.input_type(), format!(".{pkg}.{rpc}Request"));
            assert_eq!(m.output_type(), format!(".{pkg}.{rpc}Response"));
        }
    }

    let watch = method(&all, "medbill.claims.v1.ClaimsService", "WatchClaims");
    assert!(watch.server_streaming() && !watch.client_streaming());
    let stream = method(
        &all,
        "medbill.remittance.v1.RemittanceService",
        "IngestEraStream",
    );
    assert!(stream.client_streaming() && !stream.server_streaming());
    let unary = method(&all, "medbill.remittance.v1.RemittanceService", "IngestEra");
    assert!(!unary.client_streaming() && !unary.server_streaming());
}

#[test]
fn descriptor_set_is_self_contained() {
    let set = decode();
    let names: Vec<&str> = set.file.iter().map(FileDescriptorProto::name).collect();
    for file in &set.file {
        for dep in &file.dependency {
            assert!(
                names.contains(&dep.as_str()),
                "{} imports {dep}, which is not in the set",
                file.name()
            );
        }
    }
    assert!(names.contains(&"google/protobuf/timestamp.proto"));
}

#[test]
fn every_rpc_and_message_carries_its_doc_comment() {
    let set = decode();
    let mut checked = 0;
    for file in set
        .file
        .iter()
        .filter(|f| f.package().starts_with("medbill."))
    {
        let info = file
            .source_code_info
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no source info", file.name()));
        let documented = |path: &[i32]| {
            info.location
                .iter()
                .any(|l| l.path == path && !l.leading_comments().trim().is_empty())
        };
        // FileDescriptorProto field 4 = message_type, 6 = service;
        // ServiceDescriptorProto field 2 = method.
        for (i, msg) in file.message_type.iter().enumerate() {
            let i = i32::try_from(i).expect("few messages");
            assert!(
                documented(&[4, i]),
                "{}: message {} undocumented",
                file.name(),
                msg.name()
            );
            checked += 1;
        }
        for (s, svc) in file.service.iter().enumerate() {
            let s = i32::try_from(s).expect("few services");
            assert!(documented(&[6, s]), "service {} undocumented", svc.name());
            for (m, rpc) in svc.method.iter().enumerate() {
                let m = i32::try_from(m).expect("few methods");
                assert!(documented(&[6, s, 2, m]), "rpc {} undocumented", rpc.name());
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} items checked");
}
