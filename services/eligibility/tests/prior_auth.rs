//! RequestPriorAuthorization, GetPriorAuthorization, ListPriorAuthorizations and
//! RefreshPriorAuthorization through the generated gRPC client, against payer-sim over the real
//! CORE HTTP transport (its built-in catalog's prior authorization rules), on SQLite and, when
//! `MEDBILL_TEST_PG_URL` is set, PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use medbill_connect::{Connections, CoreHttpConfig, PayerConnection, RetryPolicy, TransportConfig};
use medbill_eligibility::prior_auth::PriorAuths;
use medbill_eligibility::prior_auth::poller::poll_once;
use medbill_eligibility::{
    EligibilityConfig, EligibilityService, EligibilitySettings, ProviderConfig, open_store,
};
use medbill_payer_sim::{Fault, PayerSimConfig, PayerSimHandle};
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as pb;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_runtime::client::TracedChannel;
use medbill_storage::Database;
use medbill_testkit::{Caller, TestServer};
use tonic::Code;

type Client = EligibilityServiceClient<TracedChannel>;
type Status = pb::PriorAuthorizationStatus;

struct Env {
    server: TestServer,
    sim: PayerSimHandle,
    auths: Arc<PriorAuths>,
}

impl Env {
    fn client(&self, caller: Caller) -> Client {
        EligibilityServiceClient::new(self.server.channel(caller))
    }
}

async fn setup(db: Database) -> anyhow::Result<Env> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = medbill_payer_sim::start(PayerSimConfig::default(), listener).await?;
    let payers = vec![PayerConnection {
        payer_id: "SIMPPO".into(),
        sender_id: "MEDBILL01".into(),
        receiver_id: "MEDBILLSIM".into(),
        transport: TransportConfig::CoreHttp(CoreHttpConfig::new(sim.url())),
        batch_transport: None,
        retry: RetryPolicy {
            max_attempts: 2,
            initial_backoff_ms: 5,
            max_backoff_ms: 10,
            multiplier: 2,
            jitter: false,
        },
    }];
    let config = EligibilityConfig {
        default_provider: Some(ProviderConfig {
            npi: "1234567893".into(),
            organization_name: "SUNRISE FAMILY MEDICINE".into(),
            tax_id: None,
        }),
        ..EligibilityConfig::default()
    };
    let settings = EligibilitySettings::from_config(&config, &payers)?;
    let connections = Connections::open(&payers)?;
    let store = open_store(db).await?;
    let service = EligibilityService::with_payers(store, connections, settings);
    let auths = service.prior_auths().clone();
    let server = TestServer::start(tonic::service::Routes::new(service.into_server())).await;
    Ok(Env { server, sim, auths })
}

async fn coverage(c: &mut Client) -> anyhow::Result<String> {
    let created = c
        .create_coverage(pb::CreateCoverageRequest {
            idempotency_key: "cov-1".into(),
            patient_ref: "pat-1".into(),
            payer_id: "SIMPPO".into(),
            payer_name: "SIMULATED PPO HEALTH".into(),
            member_id: "SPX100000001".into(),
            subscriber_first_name: "AVERY".into(),
            subscriber_last_name: "TESTPATIENT".into(),
            subscriber_birth_date: "1985-03-14".into(),
            effective_date: "2026-01-01".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(created.coverage.unwrap_or_default().id)
}

fn ask(
    key: &str,
    coverage_id: &str,
    services: &[(&str, &str)],
) -> pb::RequestPriorAuthorizationRequest {
    pb::RequestPriorAuthorizationRequest {
        idempotency_key: key.into(),
        coverage_id: coverage_id.into(),
        service_type_code: "2".into(),
        place_of_service: "22".into(),
        diagnoses: vec!["M1711".into()],
        services: services
            .iter()
            .map(|(code, units)| pb::AuthorizedService {
                procedure: Some(common::Procedure {
                    code: (*code).into(),
                    ..Default::default()
                }),
                requested_units: (*units).into(),
                ..Default::default()
            })
            .collect(),
        requested_dates: Some(common::ServiceDateRange {
            from_date: "2026-12-10".into(),
            to_date: "2026-12-31".into(),
        }),
        notes: "PAIN NOT RELIEVED BY THERAPY".into(),
        ..Default::default()
    }
}

async fn request(
    c: &mut Client,
    req: pb::RequestPriorAuthorizationRequest,
) -> Result<pb::PriorAuthorization, tonic::Status> {
    Ok(c.request_prior_authorization(req)
        .await?
        .into_inner()
        .prior_authorization
        .unwrap_or_default())
}

async fn get_raw(c: &mut Client, id: &str) -> anyhow::Result<pb::PriorAuthorization> {
    Ok(c.get_prior_authorization(pb::GetPriorAuthorizationRequest {
        id: id.into(),
        include_raw: true,
    })
    .await?
    .into_inner()
    .prior_authorization
    .unwrap_or_default())
}

medbill_storage::conformance_tests! {
    namespace = "eligibility";

    async fn approved_request_is_kept_with_its_278_pair_and_replayed_by_key(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        let cov = coverage(&mut a).await?;
        let got = request(&mut a, ask("pa-1", &cov, &[("27447", "1")])).await?;
        assert_eq!(got.status(), Status::Approved, "{got:?}");
        assert_eq!(got.action_code, "A1");
        assert!(got.authorization_number.starts_with("SIMAUTH"), "{}", got.authorization_number);
        assert_eq!(got.certified_dates, Some(common::ServiceDateRange { from_date: "2026-12-10".into(), to_date: "2026-12-31".into() }));
        assert_eq!(got.services[0].approved_units, "1");
        assert_eq!(got.services[0].action_code, "A1");
        assert_eq!((got.payer_id.as_str(), got.patient_ref.as_str(), got.coverage_id.as_str()), ("SIMPPO", "pat-1", cov.as_str()));
        assert!(got.decided_at.is_some());
        assert!(got.exchanges.is_empty(), "raw only on request");

        let calls = env.sim.requests_received();
        let again = request(&mut a, ask("pa-1", &cov, &[("27447", "1")])).await?;
        assert_eq!(again, got, "a retry answers the first response");
        assert_eq!(env.sim.requests_received(), calls, "a retry does not ask the payer");
        let reused = request(&mut a, ask("pa-1", &cov, &[("27447", "2")])).await.expect_err("key reused");
        assert_eq!(reused.code(), Code::AlreadyExists);

        let stored = get_raw(&mut a, &got.id).await?;
        assert_eq!(stored.exchanges.len(), 1);
        let x = &stored.exchanges[0];
        assert_eq!((x.kind.as_str(), x.outcome()), ("REQUEST", Status::Approved));
        let sent = String::from_utf8(x.raw_request.clone())?;
        let back = String::from_utf8(x.raw_response.clone())?;
        assert!(sent.contains("ST*278*") && sent.contains("*005010X217~") && sent.contains(&format!("TRN*1*{}", got.trace_number)), "{sent}");
        assert!(sent.contains("SV1*HC:27447**UN*1~") && sent.contains("HI*ABK:M1711~"), "{sent}");
        assert!(back.contains("BHT*0007*11*") && back.contains(&format!("HCR*A1*{}", got.authorization_number)), "{back}");
        let mut without = stored.clone();
        without.exchanges.clear();
        assert_eq!(without, got, "the stored authorization is the answer returned");

        // Another tenant sees nothing.
        let mut b = env.client(Caller::TenantB);
        let hidden = b.get_prior_authorization(pb::GetPriorAuthorizationRequest { id: got.id.clone(), include_raw: true }).await.expect_err("other tenant");
        assert_eq!(hidden.code(), Code::NotFound);
        let hidden = b.refresh_prior_authorization(pb::RefreshPriorAuthorizationRequest { idempotency_key: "r".into(), id: got.id.clone() }).await.expect_err("other tenant");
        assert_eq!(hidden.code(), Code::NotFound);
        let listed = b.list_prior_authorizations(pb::ListPriorAuthorizationsRequest::default()).await?.into_inner();
        assert!(listed.prior_authorizations.is_empty());
        let foreign = request(&mut b, ask("pa-b", &cov, &[("27447", "1")])).await.expect_err("coverage of another tenant");
        assert_eq!(foreign.code(), Code::NotFound);
        Ok(())
    }

    async fn partially_approved_and_denied_requests(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        let cov = coverage(&mut a).await?;
        let partial = request(&mut a, ask("pa-1", &cov, &[("97110", "12")])).await?;
        assert_eq!(partial.status(), Status::PartiallyApproved, "{partial:?}");
        assert_eq!(partial.services[0].approved_units, "6");
        assert_eq!(partial.services[0].requested_units, "12");
        assert!(!partial.authorization_number.is_empty());
        assert!(partial.decision_reason.contains("6 therapy units"), "{}", partial.decision_reason);

        let denied = request(&mut a, ask("pa-2", &cov, &[("64483", "1")])).await?;
        assert_eq!(denied.status(), Status::Denied, "{denied:?}");
        assert!(denied.authorization_number.is_empty());
        assert!(denied.certified_dates.is_none());
        assert!(denied.decision_reason.contains("conservative treatment"), "{}", denied.decision_reason);

        let free = request(&mut a, ask("pa-3", &cov, &[("99213", "1")])).await?;
        assert_eq!(free.status(), Status::NotRequired);

        let only_denied = a.list_prior_authorizations(pb::ListPriorAuthorizationsRequest {
            coverage_id: cov.clone(),
            statuses: vec![Status::Denied as i32, Status::PartiallyApproved as i32],
            ..Default::default()
        }).await?.into_inner().prior_authorizations;
        assert_eq!(only_denied.iter().map(|x| x.id.clone()).collect::<Vec<_>>(), vec![partial.id.clone(), denied.id.clone()]);
        let paged = a.list_prior_authorizations(pb::ListPriorAuthorizationsRequest { page_size: 2, patient_ref: "pat-1".into(), ..Default::default() }).await?.into_inner();
        assert_eq!(paged.prior_authorizations.len(), 2);
        let rest = a.list_prior_authorizations(pb::ListPriorAuthorizationsRequest { page_size: 2, patient_ref: "pat-1".into(), page_token: paged.next_page_token, ..Default::default() }).await?.into_inner();
        assert_eq!(rest.prior_authorizations.len(), 1);
        assert_eq!(rest.prior_authorizations[0].id, free.id);
        let outside = a.list_prior_authorizations(pb::ListPriorAuthorizationsRequest {
            requested_dates: Some(common::DateRange { start_date: "2027-01-01".into(), end_date: "2027-02-01".into() }),
            ..Default::default()
        }).await?.into_inner();
        assert!(outside.prior_authorizations.is_empty());
        Ok(())
    }

    async fn pended_then_approved_by_refresh_and_by_the_poller(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        let cov = coverage(&mut a).await?;
        let pended = request(&mut a, ask("pa-1", &cov, &[("70553", "1")])).await?;
        assert_eq!(pended.status(), Status::Pended, "{pended:?}");
        assert!(pended.payer_reference.starts_with("SIMREF"), "{}", pended.payer_reference);
        assert!(pended.authorization_number.is_empty() && pended.decided_at.is_none());
        let queue = a.list_prior_authorizations(pb::ListPriorAuthorizationsRequest { statuses: vec![Status::Pended as i32], ..Default::default() }).await?.into_inner();
        assert_eq!(queue.prior_authorizations.len(), 1);

        let refreshed = a.refresh_prior_authorization(pb::RefreshPriorAuthorizationRequest { idempotency_key: "r-1".into(), id: pended.id.clone() })
            .await?.into_inner().prior_authorization.unwrap_or_default();
        assert_eq!(refreshed.status(), Status::Approved, "{refreshed:?}");
        assert!(refreshed.authorization_number.starts_with("SIMAUTH"));
        assert_eq!(refreshed.services[0].approved_units, "1");
        let stored = get_raw(&mut a, &pended.id).await?;
        assert_eq!(stored.exchanges.iter().map(|x| (x.kind.as_str(), x.outcome())).collect::<Vec<_>>(),
            vec![("REQUEST", Status::Pended), ("INQUIRY", Status::Approved)]);
        let inquiry = String::from_utf8(stored.exchanges[1].raw_request.clone())?;
        assert!(inquiry.contains("*005010X215~") && inquiry.contains(&format!("REF*NT*{}", pended.payer_reference)), "{inquiry}");
        // Decided: asking again changes nothing and calls nobody.
        let calls = env.sim.requests_received();
        let same = a.refresh_prior_authorization(pb::RefreshPriorAuthorizationRequest { idempotency_key: "r-2".into(), id: pended.id.clone() })
            .await?.into_inner().prior_authorization.unwrap_or_default();
        assert_eq!(same.status(), Status::Approved);
        assert_eq!(env.sim.requests_received(), calls);

        // The poller decides the next pended one (and leaves decided ones alone).
        let second = request(&mut a, ask("pa-2", &cov, &[("95810", "1")])).await?;
        assert_eq!(second.status(), Status::Pended);
        let decided = poll_once(&env.auths, Duration::ZERO).await?;
        assert_eq!(decided, 1);
        let after = get_raw(&mut a, &second.id).await?;
        assert_eq!(after.status(), Status::Denied, "pend then deny: {after:?}");
        assert!(after.decision_reason.contains("in-home sleep test"), "{}", after.decision_reason);
        assert_eq!(poll_once(&env.auths, Duration::ZERO).await?, 0, "nothing left to ask");
        Ok(())
    }

    async fn payer_down_or_garbage_is_unavailable_and_kept_as_failed(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        let cov = coverage(&mut a).await?;
        env.sim.faults().set(Fault::Unavailable);
        let down = request(&mut a, ask("pa-1", &cov, &[("27447", "1")])).await.expect_err("payer down");
        assert_eq!(down.code(), Code::Unavailable, "{down:?}");
        env.sim.faults().set(Fault::Garbage);
        let garbage = request(&mut a, ask("pa-1", &cov, &[("27447", "1")])).await.expect_err("garbage");
        assert_eq!(garbage.code(), Code::Unavailable, "{garbage:?}");
        env.sim.faults().clear();
        let failed = a.list_prior_authorizations(pb::ListPriorAuthorizationsRequest { statuses: vec![Status::Failed as i32], ..Default::default() })
            .await?.into_inner().prior_authorizations;
        assert_eq!(failed.len(), 2);
        assert!(failed.iter().all(|f| !f.error_message.is_empty()));
        let kept = get_raw(&mut a, &failed[1].id).await?;
        assert_eq!(kept.exchanges.len(), 1);
        assert_eq!(kept.exchanges[0].outcome(), Status::Failed);
        assert!(String::from_utf8(kept.exchanges[0].raw_request.clone())?.contains("ST*278*"));
        // The transport refused the garbage (not labelled as a 278), so no answer was read.
        assert!(!kept.exchanges[0].error_message.is_empty());
        // The key stayed free: the retry asks again and succeeds.
        let ok = request(&mut a, ask("pa-1", &cov, &[("27447", "1")])).await?;
        assert_eq!(ok.status(), Status::Approved);
        Ok(())
    }

    async fn bad_requests_name_their_field(db: Database) -> anyhow::Result<()> {
        let env = setup(db).await?;
        let mut a = env.client(Caller::TenantA);
        let cov = coverage(&mut a).await?;
        let cases: Vec<(pb::RequestPriorAuthorizationRequest, &str)> = vec![
            (pb::RequestPriorAuthorizationRequest { diagnoses: vec![], ..ask("k", &cov, &[("27447", "1")]) }, "diagnoses"),
            (pb::RequestPriorAuthorizationRequest { diagnoses: vec!["M17.11".into()], ..ask("k", &cov, &[("27447", "1")]) }, "diagnoses[0]"),
            (ask("k", &cov, &[("27447", "0")]), "services[0].requested_units"),
            (ask("k", &cov, &[("", "1")]), "services[0].procedure.code"),
            (ask("k", &cov, &[]), "services"),
            (pb::RequestPriorAuthorizationRequest { service_type_code: String::new(), ..ask("k", &cov, &[("27447", "1")]) }, "service_type_code"),
            (pb::RequestPriorAuthorizationRequest { certification_type: "X".into(), ..ask("k", &cov, &[("27447", "1")]) }, "certification_type"),
            (pb::RequestPriorAuthorizationRequest { requested_dates: None, ..ask("k", &cov, &[("27447", "1")]) }, "requested_dates"),
            (pb::RequestPriorAuthorizationRequest {
                requested_dates: Some(common::ServiceDateRange { from_date: "2026-12-10".into(), to_date: "2026-12-01".into() }),
                ..ask("k", &cov, &[("27447", "1")])
            }, "requested_dates.to_date"),
            (pb::RequestPriorAuthorizationRequest {
                requesting_provider: Some(common::ProviderRef { npi: "1234567890".into(), organization_name: "X".into(), ..Default::default() }),
                ..ask("k", &cov, &[("27447", "1")])
            }, "requesting_provider.npi"),
            (pb::RequestPriorAuthorizationRequest { coverage_id: String::new(), ..ask("k", &cov, &[("27447", "1")]) }, "coverage_id"),
        ];
        for (req, field) in cases {
            let e = request(&mut a, req).await.expect_err(field);
            assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
            assert!(e.message().contains(field), "{field}: {}", e.message());
        }
        assert_eq!(env.sim.requests_received(), 0, "nothing invalid reached the payer");
        Ok(())
    }
}
