//! Serves a generated service over real HTTP/2 on a loopback port and calls it
//! with the generated client: proves the server and client stubs work,
//! including client streaming, and that messages survive the transport.

use medbill_proto::remittance::v1::remittance_service_client::RemittanceServiceClient;
use medbill_proto::remittance::v1::remittance_service_server::{
    RemittanceService, RemittanceServiceServer,
};
use medbill_proto::remittance::v1::{
    Era, GetEraRequest, GetEraResponse, IngestEraRequest, IngestEraResponse, IngestEraStreamHeader,
    IngestEraStreamRequest, IngestEraStreamResponse, ListClaimPaymentsRequest,
    ListClaimPaymentsResponse, ListDenialsRequest, ListDenialsResponse,
    ListDepositReconciliationsRequest, ListDepositReconciliationsResponse, ListErasRequest,
    ListErasResponse, MatchClaimPaymentRequest, MatchClaimPaymentResponse,
    PostUnbalancedEraRequest, PostUnbalancedEraResponse, ReconcileDepositRequest,
    ReconcileDepositResponse, UpdateDenialRequest, UpdateDenialResponse, ingest_era_stream_request,
};
use tokio_stream::StreamExt;
use tonic::{Code, Request, Response, Status, Streaming};

/// Test double: reassembles streamed chunks; everything else is unimplemented.
struct Echo;

#[tonic::async_trait]
impl RemittanceService for Echo {
    async fn ingest_era(
        &self,
        _: Request<IngestEraRequest>,
    ) -> Result<Response<IngestEraResponse>, Status> {
        Err(Status::unimplemented("ingest_era"))
    }

    async fn ingest_era_stream(
        &self,
        request: Request<Streaming<IngestEraStreamRequest>>,
    ) -> Result<Response<IngestEraStreamResponse>, Status> {
        let mut stream = request.into_inner();
        let mut file_name = None;
        let mut content = Vec::new();
        while let Some(msg) = stream.next().await {
            match msg?.part {
                Some(ingest_era_stream_request::Part::Header(h)) if file_name.is_none() => {
                    file_name = Some(h.file_name);
                }
                Some(ingest_era_stream_request::Part::Chunk(c)) if file_name.is_some() => {
                    content.extend_from_slice(&c);
                }
                _ => return Err(Status::invalid_argument("header must come first, once")),
            }
        }
        let bytes_received = content.len() as u64;
        Ok(Response::new(IngestEraStreamResponse {
            era: Some(Era {
                file_name: file_name.unwrap_or_default(),
                size_bytes: bytes_received,
                content,
                ..Default::default()
            }),
            duplicate: false,
            bytes_received,
            eras: Vec::new(),
        }))
    }

    async fn get_era(&self, _: Request<GetEraRequest>) -> Result<Response<GetEraResponse>, Status> {
        Err(Status::unimplemented("get_era"))
    }

    async fn list_eras(
        &self,
        _: Request<ListErasRequest>,
    ) -> Result<Response<ListErasResponse>, Status> {
        Err(Status::unimplemented("list_eras"))
    }

    async fn list_claim_payments(
        &self,
        _: Request<ListClaimPaymentsRequest>,
    ) -> Result<Response<ListClaimPaymentsResponse>, Status> {
        Err(Status::unimplemented("list_claim_payments"))
    }

    async fn list_denials(
        &self,
        _: Request<ListDenialsRequest>,
    ) -> Result<Response<ListDenialsResponse>, Status> {
        Err(Status::unimplemented("list_denials"))
    }

    async fn reconcile_deposit(
        &self,
        _: Request<ReconcileDepositRequest>,
    ) -> Result<Response<ReconcileDepositResponse>, Status> {
        Err(Status::unimplemented("reconcile_deposit"))
    }

    async fn match_claim_payment(
        &self,
        _: Request<MatchClaimPaymentRequest>,
    ) -> Result<Response<MatchClaimPaymentResponse>, Status> {
        Err(Status::unimplemented("match_claim_payment"))
    }

    async fn post_unbalanced_era(
        &self,
        _: Request<PostUnbalancedEraRequest>,
    ) -> Result<Response<PostUnbalancedEraResponse>, Status> {
        Err(Status::unimplemented("post_unbalanced_era"))
    }

    async fn update_denial(
        &self,
        _: Request<UpdateDenialRequest>,
    ) -> Result<Response<UpdateDenialResponse>, Status> {
        Err(Status::unimplemented("update_denial"))
    }

    async fn list_deposit_reconciliations(
        &self,
        _: Request<ListDepositReconciliationsRequest>,
    ) -> Result<Response<ListDepositReconciliationsResponse>, Status> {
        Err(Status::unimplemented("list_deposit_reconciliations"))
    }
}

#[tokio::test]
async fn client_streaming_upload_reassembles_in_order() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RemittanceServiceServer::new(Echo))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let mut client = RemittanceServiceClient::connect(format!("http://{addr}")).await?;
    let content: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let mut messages = vec![IngestEraStreamRequest {
        part: Some(ingest_era_stream_request::Part::Header(
            IngestEraStreamHeader {
                idempotency_key: "k1".into(),
                file_name: "big.835".into(),
                total_size: content.len() as u64,
                content_sha256: String::new(),
            },
        )),
    }];
    messages.extend(content.chunks(4096).map(|c| IngestEraStreamRequest {
        part: Some(ingest_era_stream_request::Part::Chunk(c.to_vec())),
    }));
    let response = client
        .ingest_era_stream(tokio_stream::iter(messages))
        .await?
        .into_inner();
    assert_eq!(response.bytes_received, 40_000);
    let era = response.era.expect("era returned");
    assert_eq!(era.file_name, "big.835");
    assert_eq!(era.content, content);

    let unary = client
        .ingest_era(IngestEraRequest::default())
        .await
        .expect_err("unimplemented");
    assert_eq!(unary.code(), Code::Unimplemented);

    server.abort();
    Ok(())
}
