//! One request that crosses two services is one trace: CreateClaim on claims calls GetCoverage
//! on eligibility through its gRPC client. Each call has a client span at the caller and a
//! server span at the callee: caller -> CreateClaim client -> CreateClaim server -> GetCoverage
//! client -> GetCoverage server. Spans carry no PHI.
//! SQLite always; PostgreSQL too when `MEDBILL_TEST_PG_URL` is set.

use std::time::Duration;

mod common;

use medbill::serve::Target;
use medbill_proto::claims::v1 as claims;
use medbill_proto::eligibility::v1 as eligibility;
use medbill_runtime::telemetry::testing;
use medbill_storage::testing::TestEnv;
use medbill_testkit::{Caller, channel_to};
use opentelemetry::trace::{SpanKind, TraceContextExt as _};
use opentelemetry_sdk::trace::SpanData;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

const CREATE_CLAIM: &str = "medbill.claims.v1.ClaimsService/CreateClaim";
const GET_COVERAGE: &str = "medbill.eligibility.v1.EligibilityService/GetCoverage";

/// PHI used in the requests; none of it may appear in any span.
const PHI: [&str; 4] = ["W987654321", "ROSALIND", "FRANKLIN", "1920-07-25"];

/// Waits (bounded) until the trace holds a client and a server span for each of `names`, and
/// returns its spans.
async fn call_spans(trace_id: opentelemetry::trace::TraceId, names: &[&str]) -> Vec<SpanData> {
    let mut spans = Vec::new();
    for _ in 0..300 {
        spans = testing::spans_of_trace(trace_id);
        let has = |name: &str, kind: SpanKind| {
            spans.iter().any(|s| s.name == name && s.span_kind == kind)
        };
        if names
            .iter()
            .all(|n| has(n, SpanKind::Server) && has(n, SpanKind::Client))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    spans
}

/// Returns the span named `name` of `kind`.
fn find<'a>(spans: &'a [SpanData], name: &str, kind: SpanKind) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name && s.span_kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} span {name} in the caller's trace: {spans:?}"))
}

medbill_storage::conformance_tests! {
    async fn create_claim_and_its_coverage_lookup_are_one_trace(env: TestEnv) -> anyhow::Result<()> {
        let exporter = testing::span_exporter();
        let suite = common::start(&env, Target::All).await?;
        let url = suite.handle.url();

        let mut coverages = eligibility::eligibility_service_client::EligibilityServiceClient::new(
            channel_to(&url, Caller::TenantA),
        );
        let coverage = coverages
            .create_coverage(eligibility::CreateCoverageRequest {
                idempotency_key: "cov-trace".into(),
                patient_ref: "ehr-patient-7".into(),
                payer_id: "60054".into(),
                payer_name: "AETNA".into(),
                member_id: PHI[0].into(),
                subscriber_first_name: PHI[1].into(),
                subscriber_last_name: PHI[2].into(),
                subscriber_birth_date: PHI[3].into(),
                effective_date: "2026-01-01".into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .coverage
            .expect("a coverage");

        let request = claims::CreateClaimRequest {
            idempotency_key: "claim-trace".into(),
            claim: Some(claims::ClaimInput {
                patient_control_number: "PCNTRACE1".into(),
                claim_type: claims::ClaimType::Professional.into(),
                coverage_id: coverage.id.clone(),
                payer_id: "60054".into(),
                patient_ref: "ehr-patient-7".into(),
                billing_provider_npi: "1234567893".into(),
                place_of_service: "11".into(),
                diagnoses: vec!["J069".into()],
                lines: vec![claims::ClaimLine {
                    procedure_code: "99213".into(),
                    charge: "125.00".into(),
                    units: "1".into(),
                    service_date: "2026-03-02".into(),
                    diagnosis_pointers: vec![1],
                    ..Default::default()
                }],
                ..Default::default()
            }),
        };
        let caller = tracing::info_span!("ehr-caller");
        let caller_context = caller.context().span().span_context().clone();
        let mut claims_client =
            claims::claims_service_client::ClaimsServiceClient::new(channel_to(&url, Caller::TenantA));
        medbill_testkit::fixtures::register_provider(&mut claims_client, medbill_testkit::fixtures::billing_provider()).await?;
        claims_client.create_claim(request).instrument(caller).await?;

        let spans = call_spans(caller_context.trace_id(), &[CREATE_CLAIM, GET_COVERAGE]).await;
        let claims_client_span = find(&spans, CREATE_CLAIM, SpanKind::Client);
        assert_eq!(claims_client_span.parent_span_id, caller_context.span_id());
        let claims_span = find(&spans, CREATE_CLAIM, SpanKind::Server);
        assert_eq!(claims_span.parent_span_id, claims_client_span.span_context.span_id());
        let coverage_client_span = find(&spans, GET_COVERAGE, SpanKind::Client);
        assert_eq!(
            coverage_client_span.parent_span_id,
            claims_span.span_context.span_id(),
            "the eligibility call is made inside the claims call"
        );
        let eligibility_span = find(&spans, GET_COVERAGE, SpanKind::Server);
        assert_eq!(
            eligibility_span.parent_span_id,
            coverage_client_span.span_context.span_id(),
            "the eligibility server span is a child of the claims service's client span"
        );

        for span in exporter.get_finished_spans()? {
            for kv in &span.attributes {
                let value = kv.value.as_str();
                for phi in PHI {
                    assert!(!value.contains(phi), "PHI in span {}: {kv:?}", span.name);
                }
            }
            for event in span.events.iter() {
                for kv in &event.attributes {
                    let value = kv.value.as_str();
                    for phi in PHI {
                        assert!(!value.contains(phi), "PHI in an event of {}: {kv:?}", span.name);
                    }
                }
            }
        }
        suite.shutdown().await?;
        Ok(())
    }
}
