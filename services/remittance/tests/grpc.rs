//! The remittance service through its generated gRPC client against a real server on port 0 (runtime
//! bootstrap: auth with two tenants, health, reflection), on SQLite and, when `MEDBILL_TEST_PG_URL` is
//! set, on PostgreSQL. The 835 fixtures and their licence are in `tests/fixtures`.

use medbill_proto::remittance::v1 as pb;
use medbill_proto::remittance::v1::ingest_era_stream_request::Part;
use medbill_proto::remittance::v1::remittance_service_client::RemittanceServiceClient;
use medbill_remittance::model::sha256_hex;
use medbill_remittance::{RemittanceService, open_store};
use medbill_runtime::client::TracedChannel;
use medbill_storage::Database;
use medbill_testkit::{Caller, TestServer};
use tonic::Code;

const BALANCED: &[u8] = include_bytes!("fixtures/medicare-part-a.835");
const UNBALANCED: &[u8] = include_bytes!("fixtures/medicare-part-a-unbalanced.835");
const BAD_AMOUNT: &[u8] = include_bytes!("fixtures/medicare-part-a-bad-amount.835");

type Client = RemittanceServiceClient<TracedChannel>;

async fn serve_with(db: Database, max_era_bytes: usize) -> anyhow::Result<TestServer> {
    let store = open_store(db).await?;
    let service = RemittanceService::new(store).with_max_era_bytes(max_era_bytes);
    let routes = tonic::service::Routes::new(service.into_server());
    Ok(TestServer::start(routes).await)
}

async fn serve(db: Database) -> anyhow::Result<TestServer> {
    serve_with(db, medbill_remittance::service::DEFAULT_MAX_ERA_BYTES).await
}

fn client(server: &TestServer, caller: Caller) -> Client {
    RemittanceServiceClient::new(server.channel(caller))
}

fn ingest_request(key: &str, content: &[u8]) -> pb::IngestEraRequest {
    pb::IngestEraRequest {
        idempotency_key: key.to_owned(),
        content: content.to_vec(),
        file_name: "remit.835".to_owned(),
    }
}

async fn ingest(
    c: &mut Client,
    key: &str,
    content: &[u8],
) -> anyhow::Result<pb::IngestEraResponse> {
    Ok(c.ingest_era(ingest_request(key, content))
        .await?
        .into_inner())
}

/// Builds the messages of a streamed upload: the header, then `chunk`-byte pieces.
fn stream_messages(
    header: pb::IngestEraStreamHeader,
    content: &[u8],
    chunk: usize,
) -> Vec<pb::IngestEraStreamRequest> {
    let mut out = vec![pb::IngestEraStreamRequest {
        part: Some(Part::Header(header)),
    }];
    out.extend(content.chunks(chunk).map(|c| pb::IngestEraStreamRequest {
        part: Some(Part::Chunk(c.to_vec())),
    }));
    out
}

fn header(key: &str) -> pb::IngestEraStreamHeader {
    pb::IngestEraStreamHeader {
        idempotency_key: key.to_owned(),
        file_name: "remit.835".to_owned(),
        ..Default::default()
    }
}

async fn list(
    c: &mut Client,
    req: pb::ListErasRequest,
) -> Result<pb::ListErasResponse, tonic::Status> {
    Ok(c.list_eras(req).await?.into_inner())
}

async fn list_all(c: &mut Client) -> anyhow::Result<Vec<pb::Era>> {
    Ok(list(
        c,
        pb::ListErasRequest {
            page_size: 500,
            ..Default::default()
        },
    )
    .await?
    .eras)
}

/// A balanced file whose bytes differ from the fixture (another ERA), with its own TRN02.
fn variant(trace: &str) -> Vec<u8> {
    String::from_utf8_lossy(BALANCED)
        .replace("TRN*1*12345*", &format!("TRN*1*{trace}*"))
        .into_bytes()
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
    namespace = "remittance";

    async fn ingests_gets_and_lists(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let resp = ingest(&mut a, "k-1", BALANCED).await?;
        assert!(!resp.duplicate);
        let era = resp.era.expect("era");
        assert_eq!(era.id.len(), 36);
        assert_eq!(era.status, pb::EraStatus::Received as i32);
        assert_eq!(era.content_sha256, sha256_hex(BALANCED));
        assert_eq!(era.size_bytes, BALANCED.len() as u64);
        assert_eq!(era.file_name, "remit.835");
        assert_eq!(era.handling_code, "C");
        assert_eq!(era.payment_amount, "150000.00");
        assert_eq!((era.credit_debit.as_str(), era.payment_method.as_str()), ("C", "ACH"));
        assert_eq!(era.payment_date, "2002-09-13");
        assert_eq!(era.trace_number, "12345");
        assert_eq!(era.payer_name, "INSURANCE COMPANY OF TIMBUCKTU");
        assert_eq!(era.payer_id, "999");
        assert_eq!((era.payee_name.as_str(), era.payee_npi.as_str()), ("REGIONAL HOPE HOSPITAL", "6543210903"));
        assert_eq!(era.claim_count, 2);
        assert!(era.balance_problems.is_empty());
        assert_eq!(era.provider_adjustments.len(), 1);
        let plb = &era.provider_adjustments[0];
        assert_eq!((plb.reason.as_str(), plb.reference.as_str(), plb.amount.as_str()), ("CV", "CP", "-1.27"));
        assert_eq!(plb.fiscal_period_date, "2002-12-31");
        assert_eq!(plb.description, "Capital Passthru", "from the provider adjustment reason code list");
        assert!(era.content.is_empty(), "content only on request");

        let got = a.get_era(pb::GetEraRequest { id: era.id.clone(), ..Default::default() }).await?.into_inner().era;
        assert_eq!(got.as_ref(), Some(&era));
        // Claim payments on request, amounts as the 835 said, waiting to be posted.
        let detailed = a
            .get_era(pb::GetEraRequest { id: era.id.clone(), include_claim_payments: true, ..Default::default() })
            .await?
            .into_inner()
            .era
            .expect("era");
        assert_eq!(detailed.claim_payments.len(), 2);
        let first = &detailed.claim_payments[0];
        assert_eq!((first.position, first.era_id.as_str()), (1, era.id.as_str()));
        assert_eq!(first.posting_status(), pb::PostingStatus::Pending);
        assert_eq!((first.patient_control_number.as_str(), first.charge.as_str(), first.paid.as_str()), ("666123", "211366.97", "138018.40"));
        assert_eq!(first.payer_claim_control_number, "1999999444444");
        assert_eq!(pb::Era { claim_payments: Vec::new(), ..detailed.clone() }, era);
        let listed = a
            .list_claim_payments(pb::ListClaimPaymentsRequest { era_id: era.id.clone(), page_size: 1, ..Default::default() })
            .await?
            .into_inner();
        assert_eq!(listed.claim_payments, vec![first.clone()]);
        assert!(!listed.next_page_token.is_empty());
        let with_content = a.get_era(pb::GetEraRequest { id: era.id.clone(), include_content: true, ..Default::default() }).await?.into_inner().era.expect("era");
        assert_eq!(with_content.content, BALANCED);
        assert_eq!(list_all(&mut a).await?, vec![era]);
        Ok(())
    }

    async fn the_same_835_twice_is_one_era(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let first = ingest(&mut a, "k-1", BALANCED).await?;
        let retry = ingest(&mut a, "k-1", BALANCED).await?;
        assert!(retry.duplicate);
        assert_eq!(retry.era, first.era, "a retry returns the first result");
        let other_key = ingest(&mut a, "k-2", BALANCED).await?;
        assert!(other_key.duplicate);
        assert_eq!(other_key.era, first.era);
        // The same file streamed under yet another key: still the same ERA.
        let streamed = a.ingest_era_stream(tokio_stream::iter(stream_messages(header("k-3"), BALANCED, 97))).await?.into_inner();
        assert!(streamed.duplicate);
        assert_eq!(streamed.era, first.era);
        assert_eq!(list_all(&mut a).await?.len(), 1, "written once");

        let reused = a.ingest_era(ingest_request("k-1", UNBALANCED)).await.unwrap_err();
        assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");
        assert!(reused.message().contains("k-1"), "{}", reused.message());
        assert_eq!(list_all(&mut a).await?.len(), 1);
        Ok(())
    }

    async fn an_unbalanced_835_is_stored_with_its_problems(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let era = ingest(&mut a, "k-1", UNBALANCED).await?.era.expect("era");
        assert_eq!(era.status, pb::EraStatus::Unbalanced as i32);
        assert_eq!(era.balance_problems.len(), 2);
        let claim = &era.balance_problems[0];
        assert_eq!(claim.level, medbill_proto::common::v1::BalanceLevel::Claim as i32);
        assert_eq!(claim.patient_control_number, "777777");
        assert_eq!((claim.expected.as_str(), claim.actual.as_str(), claim.difference.as_str()), ("11980.30", "11980.33", "-0.03"));
        assert!(claim.message.contains("CLP04"), "{}", claim.message);
        let set = &era.balance_problems[1];
        assert_eq!(set.level, medbill_proto::common::v1::BalanceLevel::Transaction as i32);
        assert_eq!((set.expected.as_str(), set.actual.as_str(), set.difference.as_str()), ("150000.00", "149999.97", "0.03"));
        let listed = list(&mut a, pb::ListErasRequest { status: pb::EraStatus::Unbalanced.into(), ..Default::default() }).await?.eras;
        assert_eq!(listed, vec![era]);
        Ok(())
    }

    async fn a_file_that_does_not_parse_is_rejected_and_kept(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let err = a.ingest_era(ingest_request("k-1", BAD_AMOUNT)).await.unwrap_err();
        assert_invalid(&err, "content");
        assert!(err.message().contains("segment 4 (BPR02)"), "names the segment and element: {}", err.message());
        assert!(err.message().contains("REJECTED"), "{}", err.message());

        let rejected = list(&mut a, pb::ListErasRequest { status: pb::EraStatus::Rejected.into(), ..Default::default() }).await?.eras;
        assert_eq!(rejected.len(), 1, "the raw input is kept");
        let era = &rejected[0];
        assert!(err.message().contains(&era.id), "the error names the stored ERA: {}", err.message());
        assert!(era.error_message.contains("BPR02"), "{}", era.error_message);
        assert_eq!(era.payment_amount, "");
        let raw = a.get_era(pb::GetEraRequest { id: era.id.clone(), include_content: true, ..Default::default() }).await?.into_inner().era.expect("era");
        assert_eq!(raw.content, BAD_AMOUNT);

        // Sending it again answers the same and stores nothing new.
        let again = a.ingest_era(ingest_request("k-2", BAD_AMOUNT)).await.unwrap_err();
        assert_eq!(again.message(), err.message());
        assert_eq!(list_all(&mut a).await?.len(), 1);

        let not_x12 = a.ingest_era(ingest_request("k-3", b"hello")).await.unwrap_err();
        assert_invalid(&not_x12, "content");
        assert_eq!(list_all(&mut a).await?.len(), 2);
        Ok(())
    }

    async fn streams_large_files_in_chunks(db: Database) -> anyhow::Result<()> {
        let server = serve_with(db, 4096).await?;
        let mut a = client(&server, Caller::TenantA);
        let mut h = header("k-1");
        h.total_size = BALANCED.len() as u64;
        h.content_sha256 = sha256_hex(BALANCED);
        let resp = a.ingest_era_stream(tokio_stream::iter(stream_messages(h, BALANCED, 100))).await?.into_inner();
        assert!(!resp.duplicate);
        assert_eq!(resp.bytes_received, BALANCED.len() as u64);
        let era = resp.era.expect("era");
        assert_eq!(era.status, pb::EraStatus::Received as i32);
        assert_eq!(era.payment_amount, "150000.00");
        let raw = a.get_era(pb::GetEraRequest { id: era.id.clone(), include_content: true, ..Default::default() }).await?.into_inner().era.expect("era");
        assert_eq!(raw.content, BALANCED, "chunks reassembled in order");
        // A unary retry under the stream's key is the same request.
        let unary = ingest(&mut a, "k-1", BALANCED).await?;
        assert!(unary.duplicate);
        assert_eq!(unary.era.map(|e| e.id), Some(era.id));

        let big = vec![b'x'; 5000];
        let err = a.ingest_era_stream(tokio_stream::iter(stream_messages(header("k-2"), &big, 1000))).await.unwrap_err();
        assert_invalid(&err, "limit");
        let mut declared = header("k-3");
        declared.total_size = 5000;
        let err = a.ingest_era_stream(tokio_stream::iter(stream_messages(declared, b"ISA", 10))).await.unwrap_err();
        assert_invalid(&err, "header.total_size");
        let mut wrong_sha = header("k-4");
        wrong_sha.content_sha256 = sha256_hex(b"something else");
        let err = a.ingest_era_stream(tokio_stream::iter(stream_messages(wrong_sha, UNBALANCED, 100))).await.unwrap_err();
        assert_invalid(&err, "header.content_sha256");
        let mut wrong_size = header("k-5");
        wrong_size.total_size = UNBALANCED.len() as u64 + 1;
        let err = a.ingest_era_stream(tokio_stream::iter(stream_messages(wrong_size, UNBALANCED, 100))).await.unwrap_err();
        assert_invalid(&err, "header.total_size");
        let chunk_first = vec![pb::IngestEraStreamRequest { part: Some(Part::Chunk(UNBALANCED.to_vec())) }];
        let err = a.ingest_era_stream(tokio_stream::iter(chunk_first)).await.unwrap_err();
        assert_invalid(&err, "header");
        let err = a.ingest_era_stream(tokio_stream::iter(Vec::<pb::IngestEraStreamRequest>::new())).await.unwrap_err();
        assert_invalid(&err, "header");
        let err = a.ingest_era_stream(tokio_stream::iter(stream_messages(header(""), UNBALANCED, 100))).await.unwrap_err();
        assert_invalid(&err, "header.idempotency_key");
        let unary_big = a.ingest_era(ingest_request("k-6", &big)).await.unwrap_err();
        assert_invalid(&unary_big, "content");
        assert_eq!(list_all(&mut a).await?.len(), 1, "failed uploads write nothing");
        Ok(())
    }

    async fn filters_pages_and_rejects_foreign_tokens(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(ingest(&mut a, &format!("k-{i}"), &variant(&format!("T{i}"))).await?.era.expect("era").id);
        }
        let mut seen = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = list(&mut a, pb::ListErasRequest { page_size: 2, page_token: token.clone(), ..Default::default() }).await?;
            pages += 1;
            seen.extend(page.eras.into_iter().map(|e| e.id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, ids);

        let by_trace = list(&mut a, pb::ListErasRequest { trace_number: "T3".into(), ..Default::default() }).await?;
        assert_eq!(by_trace.eras.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), vec![ids[3].clone()]);
        let by_payer = pb::ListErasRequest { payer_id: "999".into(), page_size: 2, ..Default::default() };
        let first = list(&mut a, by_payer.clone()).await?;
        assert_eq!(first.eras.len(), 2);
        let foreign = list(&mut a, pb::ListErasRequest { page_token: first.next_page_token.clone(), ..Default::default() }).await.unwrap_err();
        assert_invalid(&foreign, "page_token");
        let mut b = client(&server, Caller::TenantB);
        let stolen = list(&mut b, pb::ListErasRequest { page_token: first.next_page_token, ..by_payer }).await.unwrap_err();
        assert_invalid(&stolen, "page_token");
        let future = medbill_proto::common::v1::TimeRange {
            start_time: Some(prost_types_now_plus(3600)),
            end_time: None,
        };
        assert!(list(&mut a, pb::ListErasRequest { received: Some(future), ..Default::default() }).await?.eras.is_empty());
        let bad_status = list(&mut a, pb::ListErasRequest { status: 42, ..Default::default() }).await.unwrap_err();
        assert_invalid(&bad_status, "status");
        Ok(())
    }

    async fn tenants_are_isolated(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let mut b = client(&server, Caller::TenantB);
        let era = ingest(&mut a, "k-1", BALANCED).await?.era.expect("era");
        let err = b.get_era(pb::GetEraRequest { id: era.id.clone(), ..Default::default() }).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        assert!(list_all(&mut b).await?.is_empty());
        // The same file from tenant B is B's own ERA, not a duplicate of A's.
        let theirs = ingest(&mut b, "k-1", BALANCED).await?;
        assert!(!theirs.duplicate);
        assert_ne!(theirs.era.map(|e| e.id), Some(era.id.clone()));
        assert_eq!(list_all(&mut a).await?, vec![era]);
        Ok(())
    }

    async fn bad_input_and_missing_tokens(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        assert_invalid(&a.ingest_era(ingest_request("k-1", b"")).await.unwrap_err(), "content");
        assert_invalid(&a.ingest_era(ingest_request("", BALANCED)).await.unwrap_err(), "idempotency_key");
        let mut bad_name = ingest_request("k-2", BALANCED);
        bad_name.file_name = "a\nb".into();
        assert_invalid(&a.ingest_era(bad_name).await.unwrap_err(), "file_name");
        assert_invalid(&a.get_era(pb::GetEraRequest { id: "nope".into(), ..Default::default() }).await.unwrap_err(), "id");
        assert_invalid(&a.get_era(pb::GetEraRequest::default()).await.unwrap_err(), "id");
        assert!(list_all(&mut a).await?.is_empty(), "nothing was written");

        for caller in [Caller::Anonymous, Caller::UnknownToken] {
            let mut c = client(&server, caller);
            let err = c.ingest_era(ingest_request("k-1", BALANCED)).await.unwrap_err();
            assert_eq!(err.code(), Code::Unauthenticated, "{caller:?}: {err:?}");
            let err = c.list_eras(pb::ListErasRequest::default()).await.unwrap_err();
            assert_eq!(err.code(), Code::Unauthenticated, "{caller:?}: {err:?}");
        }
        assert!(list_all(&mut a).await?.is_empty());

        let empty = a.list_denials(pb::ListDenialsRequest::default()).await?.into_inner();
        assert!(empty.denials.is_empty() && empty.total_count == 0, "no posted ERA, no denial");
        let err = a.reconcile_deposit(pb::ReconcileDepositRequest { idempotency_key: "k-3".into(), deposit: None }).await.unwrap_err();
        assert_invalid(&err, "deposit");
        Ok(())
    }
}

fn prost_types_now_plus(seconds: i64) -> prost_types::Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    prost_types::Timestamp {
        seconds: now + seconds,
        nanos: 0,
    }
}
