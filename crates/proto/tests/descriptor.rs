//! Checks the encoded descriptor set the build emits: the four services and the
//! shared audit service, their key RPCs with the right streaming shape, and doc comments carried through.

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
fn four_services_and_the_audit_service_with_their_key_rpcs() {
    let set = decode();
    let all = services(&set);
    assert_eq!(
        all.keys().map(String::as_str).collect::<Vec<_>>(),
        vec![
            "medbill.audit.v1.AuditService",
            "medbill.claims.v1.ClaimsService",
            "medbill.collections.v1.CollectionsService",
            "medbill.eligibility.v1.EligibilityService",
            "medbill.remittance.v1.RemittanceService",
        ]
    );
    let expected: [(&str, &[&str]); 5] = [
        ("medbill.audit.v1.AuditService", &["ListAuditEvents"]),
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
                "ListPriorAuthorizations",
                "RefreshPriorAuthorization",
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
                "UpdateDenial",
                "ListDepositReconciliations",
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

/// Maps ".package.Message" to its descriptor for every medbill message.
fn messages(set: &FileDescriptorSet) -> BTreeMap<String, prost_types::DescriptorProto> {
    let mut out = BTreeMap::new();
    for file in set
        .file
        .iter()
        .filter(|f| f.package().starts_with("medbill."))
    {
        for msg in &file.message_type {
            out.insert(format!(".{}.{}", file.package(), msg.name()), msg.clone());
        }
    }
    out
}

fn field<'a>(
    msg: &'a prost_types::DescriptorProto,
    name: &str,
) -> Option<&'a prost_types::FieldDescriptorProto> {
    msg.field.iter().find(|f| f.name() == name)
}

fn is_read_only(rpc: &str) -> bool {
    ["Get", "List", "Watch"].iter().any(|p| rpc.starts_with(p)) || rpc == "AgingReport"
}

#[test]
fn every_mutating_request_carries_an_idempotency_key() {
    use prost_types::field_descriptor_proto::{Label, Type};
    let set = decode();
    let msgs = messages(&set);
    let mut mutating = 0;
    for (service, methods) in services(&set) {
        for rpc in methods.iter().filter(|m| !is_read_only(m.name())) {
            // A client-streaming upload carries its key in the header message.
            let carrier = if rpc.client_streaming() {
                rpc.input_type().replace("Request", "Header")
            } else {
                rpc.input_type().to_owned()
            };
            let msg = msgs
                .get(&carrier)
                .unwrap_or_else(|| panic!("{carrier} missing"));
            // A batch carries a key per item: its `items` are requests of the single RPC.
            let msg = match field(msg, "items") {
                Some(items) if field(msg, "idempotency_key").is_none() => {
                    assert_eq!(items.label(), Label::Repeated, "{carrier}.items");
                    msgs.get(items.type_name())
                        .unwrap_or_else(|| panic!("{} missing", items.type_name()))
                }
                _ => msg,
            };
            let key = field(msg, "idempotency_key")
                .unwrap_or_else(|| panic!("{service}/{} has no idempotency_key", rpc.name()));
            assert_eq!(key.r#type(), Type::String);
            assert_eq!(key.label(), Label::Optional, "singular, not repeated");
            mutating += 1;
        }
    }
    // 5 eligibility (with RefreshPriorAuthorization) + 13 claims (with CreateProvider,
    // UpdateProvider, FollowUpClaim, the ApplyAdjudications, CreateClaims and ScrubClaims batches) + 6 remittance (with MatchClaimPayment, PostUnbalancedEra,
    // UpdateDenial) + 13 collections (with BillSelfPay, CancelPaymentPlan, RecallPlacement,
    // SetAccountHolds) + 2 collections batches (PostPatientResponsibilities, RecordPayments)
    // mutating RPCs.
    assert_eq!(mutating, 39);
}

#[test]
fn list_rpcs_page_with_tokens() {
    use prost_types::field_descriptor_proto::Type;
    let set = decode();
    let msgs = messages(&set);
    let mut lists = 0;
    for methods in services(&set).values() {
        for rpc in methods
            .iter()
            .filter(|m| m.name().starts_with("List") || m.name() == "AgingReport")
        {
            let req = &msgs[rpc.input_type()];
            let resp = &msgs[rpc.output_type()];
            let size = field(req, "page_size").expect("page_size");
            assert_eq!(size.r#type(), Type::Int32, "{}", rpc.name());
            let token = field(req, "page_token").expect("page_token");
            assert_eq!(token.r#type(), Type::String, "{}", rpc.name());
            let next = field(resp, "next_page_token").expect("next_page_token");
            assert_eq!(next.r#type(), Type::String, "{}", rpc.name());
            lists += 1;
        }
    }
    assert!(lists >= 9, "only {lists} list rpcs");
}

#[test]
fn no_message_takes_a_tenant() {
    let set = decode();
    for (name, msg) in messages(&set) {
        for f in &msg.field {
            assert!(
                !f.name().contains("tenant"),
                "{name}.{} looks like a tenant field; the tenant comes from the token",
                f.name()
            );
        }
    }
}

#[test]
fn money_and_dates_travel_as_strings() {
    use prost_types::field_descriptor_proto::Type;
    let set = decode();
    let money_like = [
        "amount",
        "charge",
        "paid",
        "balance",
        "total_charge",
        "allowed_amount",
        "copay",
        "deductible",
        "coinsurance",
        "patient_responsibility",
        "coinsurance_rate",
        "payment_amount",
    ];
    let mut seen = 0;
    for (name, msg) in messages(&set) {
        for f in &msg.field {
            let n = f.name();
            let is_money = money_like.contains(&n) || n.ends_with("_amount");
            let is_date = n.ends_with("_date") || n == "date";
            if is_money || is_date {
                assert_eq!(f.r#type(), Type::String, "{name}.{n} must be a string");
                seen += 1;
            }
        }
    }
    assert!(seen > 50, "only {seen} money/date fields seen");
}
