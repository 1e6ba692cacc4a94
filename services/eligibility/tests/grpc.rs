//! The eligibility service through its generated gRPC client against a real server on port 0
//! (runtime bootstrap: auth with two tenants, health, reflection), on SQLite and, when
//! `MEDBILL_TEST_PG_URL` is set, on PostgreSQL.

use medbill_eligibility::{EligibilityService, open_store};
use medbill_proto::eligibility::v1 as pb;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_runtime::client::TracedChannel;
use medbill_storage::Database;
use medbill_testkit::{Caller, TestServer};
use tonic::Code;

type Client = EligibilityServiceClient<TracedChannel>;

async fn serve(db: Database) -> anyhow::Result<TestServer> {
    let store = open_store(db).await?;
    let routes = tonic::service::Routes::new(EligibilityService::new(store).into_server());
    Ok(TestServer::start(routes).await)
}

fn client(server: &TestServer, caller: Caller) -> Client {
    EligibilityServiceClient::new(server.channel(caller))
}

fn create_request(key: &str, patient_ref: &str, payer_id: &str) -> pb::CreateCoverageRequest {
    pb::CreateCoverageRequest {
        idempotency_key: key.to_owned(),
        patient_ref: patient_ref.to_owned(),
        payer_id: payer_id.to_owned(),
        payer_name: "AETNA".to_owned(),
        member_id: "W123456789".to_owned(),
        group_number: "GRP-7".to_owned(),
        plan_name: String::new(),
        subscriber_first_name: "JANE".to_owned(),
        subscriber_last_name: "DOE".to_owned(),
        subscriber_birth_date: "1984-03-09".to_owned(),
        relationship_to_subscriber: String::new(),
        coverage_order: pb::CoverageOrder::Unspecified as i32,
        effective_date: "2026-01-01".to_owned(),
        termination_date: "2026-12-31".to_owned(),
    }
}

async fn create(c: &mut Client, req: pb::CreateCoverageRequest) -> anyhow::Result<pb::Coverage> {
    c.create_coverage(req)
        .await?
        .into_inner()
        .coverage
        .ok_or_else(|| anyhow::anyhow!("response without coverage"))
}

async fn list(
    c: &mut Client,
    req: pb::ListCoveragesRequest,
) -> Result<pb::ListCoveragesResponse, tonic::Status> {
    Ok(c.list_coverages(req).await?.into_inner())
}

async fn list_all(c: &mut Client) -> anyhow::Result<Vec<pb::Coverage>> {
    let req = pb::ListCoveragesRequest {
        page_size: 500,
        ..Default::default()
    };
    Ok(list(c, req).await?.coverages)
}

/// Asserts an INVALID_ARGUMENT whose message names `field`.
fn assert_invalid(status: &tonic::Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains(field),
        "message should name {field}: {}",
        status.message()
    );
}

medbill_storage::conformance_tests! {
    namespace = "eligibility";

    async fn creates_gets_and_lists(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let created = create(&mut a, create_request("k-1", "pat-1", "60054")).await?;
        assert_eq!(created.id.len(), 36);
        assert_eq!(created.patient_ref, "pat-1");
        assert_eq!(created.member_id, "W123456789");
        assert_eq!(created.relationship_to_subscriber, "18", "empty means self");
        assert_eq!(created.coverage_order, pb::CoverageOrder::Primary as i32, "unspecified means primary");
        assert_eq!(created.subscriber_birth_date, "1984-03-09");
        assert_eq!(created.termination_date, "2026-12-31");
        assert_eq!(created.plan_name, "");
        assert!(created.created_at.is_some());

        let got = a.get_coverage(pb::GetCoverageRequest { id: created.id.clone() }).await?.into_inner();
        assert_eq!(got.coverage.as_ref(), Some(&created));
        assert_eq!(list_all(&mut a).await?, vec![created]);
        Ok(())
    }

    async fn pages_through_results_and_rejects_foreign_tokens(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let mut ids = Vec::new();
        for i in 0..5 {
            let payer = if i % 2 == 0 { "60054" } else { "87726" };
            ids.push(create(&mut a, create_request(&format!("k-{i}"), "pat-1", payer)).await?.id);
        }

        let mut seen = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = list(&mut a, pb::ListCoveragesRequest { page_size: 2, page_token: token.clone(), ..Default::default() }).await?;
            pages += 1;
            assert!(page.coverages.len() <= 2);
            seen.extend(page.coverages.into_iter().map(|c| c.id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(seen, ids, "every coverage once, in id order");
        assert_eq!(pages, 3);

        let filtered = pb::ListCoveragesRequest { payer_id: "60054".into(), page_size: 1, ..Default::default() };
        let first = list(&mut a, filtered.clone()).await?;
        assert_eq!(first.coverages.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![ids[0].clone()]);
        let second = list(&mut a, pb::ListCoveragesRequest { page_token: first.next_page_token.clone(), ..filtered.clone() }).await?;
        assert_eq!(second.coverages.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![ids[2].clone()]);

        // The same token with other filters, or from another tenant, is refused.
        let other_query = pb::ListCoveragesRequest { payer_id: "87726".into(), page_token: first.next_page_token.clone(), ..Default::default() };
        assert_invalid(&list(&mut a, other_query).await.expect_err("foreign token"), "page_token");
        let mut b = client(&server, Caller::TenantB);
        let as_b = pb::ListCoveragesRequest { page_token: first.next_page_token.clone(), ..filtered };
        assert_invalid(&list(&mut b, as_b).await.expect_err("other tenant's token"), "page_token");
        let garbage = pb::ListCoveragesRequest { page_token: "not-a-token".into(), ..Default::default() };
        assert_invalid(&list(&mut a, garbage).await.expect_err("garbage token"), "page_token");
        let negative = pb::ListCoveragesRequest { page_size: -1, ..Default::default() };
        assert_invalid(&list(&mut a, negative).await.expect_err("negative size"), "page_size");
        Ok(())
    }

    async fn retries_are_idempotent_and_key_reuse_is_refused(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let first = create(&mut a, create_request("k-1", "pat-1", "60054")).await?;
        let retry = create(&mut a, create_request("k-1", "pat-1", "60054")).await?;
        assert_eq!(retry, first, "the retry returns the first result");
        assert_eq!(list_all(&mut a).await?.len(), 1, "and writes once");

        let mut changed = create_request("k-1", "pat-1", "60054");
        changed.member_id = "OTHER".into();
        let status = a.create_coverage(changed).await.expect_err("key reuse");
        assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
        assert!(status.message().contains("\"k-1\""), "names the key: {}", status.message());
        assert_eq!(list_all(&mut a).await?.len(), 1);
        Ok(())
    }

    async fn tenants_cannot_see_each_other(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let mut b = client(&server, Caller::TenantB);
        let created = create(&mut a, create_request("k-1", "pat-1", "60054")).await?;

        let status = b.get_coverage(pb::GetCoverageRequest { id: created.id.clone() }).await.expect_err("hidden");
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert!(list_all(&mut b).await?.is_empty());
        let by_patient = pb::ListCoveragesRequest { patient_ref: "pat-1".into(), ..Default::default() };
        assert!(list(&mut b, by_patient).await?.coverages.is_empty());

        // The same idempotency key in tenant B is B's own request.
        let theirs = create(&mut b, create_request("k-1", "pat-1", "60054")).await?;
        assert_ne!(theirs.id, created.id);
        assert_eq!(list_all(&mut a).await?.len(), 1);
        Ok(())
    }

    async fn bad_input_is_named_and_writes_nothing(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        type Breaker = fn(&mut pb::CreateCoverageRequest);
        let cases: [(&str, Breaker); 9] = [
            ("idempotency_key", |r| r.idempotency_key.clear()),
            ("idempotency_key", |r| r.idempotency_key = "k".repeat(129)),
            ("patient_ref", |r| r.patient_ref.clear()),
            ("member_id", |r| r.member_id.clear()),
            ("subscriber_last_name", |r| r.subscriber_last_name.clear()),
            ("subscriber_birth_date", |r| r.subscriber_birth_date = "1984-13-09".into()),
            ("effective_date", |r| r.effective_date = "2026/01/01".into()),
            ("termination_date", |r| r.termination_date = "2025-06-30".into()),
            ("relationship_to_subscriber", |r| r.relationship_to_subscriber = "XX".into()),
        ];
        for (i, (field, breaker)) in cases.into_iter().enumerate() {
            let mut req = create_request(&format!("bad-{i}"), "pat-1", "60054");
            breaker(&mut req);
            let status = a.create_coverage(req).await.expect_err(field);
            assert_invalid(&status, field);
        }
        assert!(list_all(&mut a).await?.is_empty(), "nothing written");

        let status = a.get_coverage(pb::GetCoverageRequest { id: "123".into() }).await.expect_err("bad id");
        assert_invalid(&status, "id");
        let status = a.get_coverage(pb::GetCoverageRequest { id: String::new() }).await.expect_err("no id");
        assert_invalid(&status, "id");
        Ok(())
    }

    async fn callers_without_a_valid_token_are_unauthenticated(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        for caller in [Caller::Anonymous, Caller::UnknownToken] {
            let mut c = client(&server, caller);
            let status = c.create_coverage(create_request("k-1", "pat-1", "60054")).await.expect_err("no auth");
            assert_eq!(status.code(), Code::Unauthenticated, "{caller:?}: {status:?}");
            let status = c.list_coverages(pb::ListCoveragesRequest::default()).await.expect_err("no auth");
            assert_eq!(status.code(), Code::Unauthenticated, "{caller:?}: {status:?}");
        }
        let mut a = client(&server, Caller::TenantA);
        assert!(list_all(&mut a).await?.is_empty(), "nothing written by unauthenticated calls");
        Ok(())
    }

    async fn prior_authorization_rpcs_name_missing_fields(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let statuses = [
            (a.request_prior_authorization(pb::RequestPriorAuthorizationRequest::default()).await.map(|_| ()), "idempotency_key"),
            (a.get_prior_authorization(pb::GetPriorAuthorizationRequest::default()).await.map(|_| ()), "id"),
            (a.refresh_prior_authorization(pb::RefreshPriorAuthorizationRequest::default()).await.map(|_| ()), "idempotency_key"),
        ];
        for (result, field) in statuses {
            let status = result.expect_err("empty request");
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
            assert!(status.message().contains(field), "{field}: {}", status.message());
        }
        Ok(())
    }
}
