//! One ERA per 835 transaction set, through the generated gRPC client on SQLite and (when
//! `MEDBILL_TEST_PG_URL` is set) PostgreSQL: a file of two interchanges holding three payments, one
//! unbalanced set among balanced ones, the same file twice, and the same through IngestEraStream.

use medbill_proto::remittance::v1 as pb;
use medbill_proto::remittance::v1::ingest_era_stream_request::Part;
use medbill_proto::remittance::v1::remittance_service_client::RemittanceServiceClient;
use medbill_remittance::model::sha256_hex;
use medbill_remittance::{RemittanceService, open_store};
use medbill_runtime::client::TracedChannel;
use medbill_storage::Database;
use medbill_testkit::{Caller, TestServer};
use tonic::Code;

type Client = RemittanceServiceClient<TracedChannel>;

async fn serve(db: Database) -> anyhow::Result<TestServer> {
    let store = open_store(db).await?;
    let routes = tonic::service::Routes::new(RemittanceService::new(store).into_server());
    Ok(TestServer::start(routes).await)
}

/// One 835 set: `body` holds the segments after ST, up to (not including) SE; SE01 is counted.
fn set(control: &str, body: &[&str]) -> String {
    let mut out = format!("ST*835*{control}*005010X221A1~");
    for s in body {
        out.push_str(s);
        out.push('~');
    }
    out.push_str(&format!("SE*{}*{control}~", body.len() + 2));
    out
}

/// One interchange of one group holding `sets`.
fn interchange(control: u32, sets: &[String]) -> String {
    format!(
        "ISA*00*          *00*          *ZZ*PAYERSENDER    *ZZ*PROVIDERRCV    *240315*0930*^*00501*{control:09}*0*T*:~\
         GS*HP*PAYERSENDER*PROVIDERRCV*20240315*0930*{control}*X*005010X221A1~\
         {}GE*{}*{control}~IEA*1*{control:09}~",
        sets.concat(),
        sets.len()
    )
}

/// A claim payment with one line: charge, paid, and the contractual (CO-45) and patient (PR-2)
/// adjustments that explain the difference.
fn claim(pcn: &str, charge: &str, paid: &str, co45: &str, pr2: &str) -> Vec<String> {
    vec![
        format!("CLP*{pcn}*1*{charge}*{paid}*{pr2}*12*PCC-{pcn}"),
        "NM1*QC*1*DOE*JANE****MI*MEMBER01".to_owned(),
        format!("SVC*HC:99213*{charge}*{paid}**1"),
        "DTM*472*20240301".to_owned(),
        format!("CAS*CO*45*{co45}"),
        format!("CAS*PR*2*{pr2}"),
        format!("REF*6R*LINE-{pcn}"),
    ]
}

fn body(header: &[&str], claims: &[Vec<String>], trailer: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = header.iter().map(|s| (*s).to_owned()).collect();
    out.push("LX*1".to_owned());
    for c in claims {
        out.extend(c.iter().cloned());
    }
    out.extend(trailer.iter().map(|s| (*s).to_owned()));
    out
}

fn set_of(control: &str, segments: Vec<String>) -> String {
    let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
    set(control, &refs)
}

/// Two interchanges, three payments: 170.00 by ACH (payer N1*PR N104 with XV), 45.00 by check
/// (payer by REF*2U), and 24.50 by ACH whose PLB takes 5.50 back (payer by TRN03). When
/// `unbalanced`, the check's BPR02 says 46.00 while its claim pays 45.00.
fn three_payments(unbalanced: bool) -> Vec<u8> {
    let ach = set_of(
        "0001",
        body(
            &[
                "BPR*I*170.00*C*ACH*CCP*01*011000015*DA*123456789*1512345678**01*021000021*DA*987654321*20240320",
                "TRN*1*EFT170*1512345678",
                "DTM*405*20240315",
                "N1*PR*ACME HEALTH PLAN*XV*ACME01",
                "N1*PE*SAMPLE CLINIC*XX*1234567893",
            ],
            &[
                claim("PCN-1", "120.00", "100.00", "10.00", "10.00"),
                claim("PCN-2", "90.00", "70.00", "15.00", "5.00"),
            ],
            &[],
        ),
    );
    let check_amount = if unbalanced { "46.00" } else { "45.00" };
    let check = set_of(
        "0002",
        body(
            &[
                &format!("BPR*I*{check_amount}*C*CHK************20240321"),
                "TRN*1*CHK4500*1999999999",
                "N1*PR*SECOND PAYER",
                "REF*2U*SP002",
                "N1*PE*SAMPLE CLINIC*XX*1234567893",
            ],
            &[claim("PCN-3", "60.00", "45.00", "10.00", "5.00")],
            &[],
        ),
    );
    let with_plb = set_of(
        "0001",
        body(
            &[
                "BPR*I*24.50*C*ACH*CCP*01*011000015*DA*123456789*1512345678**01*021000021*DA*987654321*20240322",
                "TRN*1*EFT2450*1870000001",
                "N1*PR*THIRD PAYER",
                "N1*PE*SAMPLE CLINIC*XX*1234567893",
            ],
            &[claim("PCN-4", "40.00", "30.00", "6.00", "4.00")],
            &["PLB*1234567893*20241231*WO:PCC-OLD*5.50"],
        ),
    );
    let mut file = interchange(101, &[ach, check]);
    file.push_str(&interchange(102, &[with_plb]));
    file.into_bytes()
}

/// Set position, ST02, amount, method, trace, payer id and its source, status, PLB count.
type Shape = (
    u32,
    String,
    String,
    String,
    String,
    String,
    String,
    i32,
    usize,
);

/// The fields a test compares, per ERA.
fn shape(e: &pb::Era) -> Shape {
    (
        e.set_position,
        e.set_control_number.clone(),
        e.payment_amount.clone(),
        e.payment_method.clone(),
        e.trace_number.clone(),
        e.payer_id.clone(),
        e.payer_id_source.clone(),
        e.status,
        e.provider_adjustments.len(),
    )
}

fn expected(check_status: pb::EraStatus) -> Vec<Shape> {
    let s = |x: &str| x.to_owned();
    let received = pb::EraStatus::Received as i32;
    vec![
        (
            1,
            s("0001"),
            s("170.00"),
            s("ACH"),
            s("EFT170"),
            s("ACME01"),
            s("N104:XV"),
            received,
            0,
        ),
        (
            2,
            s("0002"),
            s(if check_status == pb::EraStatus::Unbalanced {
                "46.00"
            } else {
                "45.00"
            }),
            s("CHK"),
            s("CHK4500"),
            s("SP002"),
            s("REF*2U"),
            check_status as i32,
            0,
        ),
        (
            3,
            s("0001"),
            s("24.50"),
            s("ACH"),
            s("EFT2450"),
            s("870000001"),
            s("TRN03"),
            received,
            1,
        ),
    ]
}

fn request(key: &str, content: &[u8]) -> pb::IngestEraRequest {
    pb::IngestEraRequest {
        idempotency_key: key.to_owned(),
        content: content.to_vec(),
        file_name: "three.835".to_owned(),
    }
}

async fn list(c: &mut Client, req: pb::ListErasRequest) -> anyhow::Result<Vec<pb::Era>> {
    Ok(c.list_eras(pb::ListErasRequest {
        page_size: 500,
        ..req
    })
    .await?
    .into_inner()
    .eras)
}

medbill_storage::conformance_tests! {
    namespace = "remittance";

    async fn a_file_of_three_payments_is_three_eras(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut c = RemittanceServiceClient::new(server.channel(Caller::TenantA));
        let file = three_payments(false);
        let resp = c.ingest_era(request("k-1", &file)).await?.into_inner();
        assert!(!resp.duplicate);
        assert_eq!(resp.eras.iter().map(shape).collect::<Vec<_>>(), expected(pb::EraStatus::Received));
        assert_eq!(resp.era.as_ref(), resp.eras.first(), "era is the first set's");

        let file_id = &resp.eras[0].file_id;
        let ids: Vec<&str> = resp.eras.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.iter().collect::<std::collections::HashSet<_>>().len(), 3);
        for e in &resp.eras {
            assert_eq!(&e.file_id, file_id, "one file");
            assert_eq!(e.content_sha256, sha256_hex(&file));
            assert_eq!(e.size_bytes, file.len() as u64);
            assert_eq!(e.claim_count, if e.set_position == 1 { 2 } else { 1 });
            assert!(e.balance_problems.is_empty(), "{:?}", e.balance_problems);
        }
        // The PLB is the third set's, with its own amount; the first two have none.
        let plb = &resp.eras[2].provider_adjustments[0];
        assert_eq!((plb.reason.as_str(), plb.reference.as_str(), plb.amount.as_str()), ("WO", "PCC-OLD", "5.50"));

        // Stored as answered, each ERA on its own; the raw file is kept once, whole.
        for e in &resp.eras {
            let got = c
                .get_era(pb::GetEraRequest { id: e.id.clone(), include_content: true, ..Default::default() })
                .await?
                .into_inner()
                .era
                .expect("era");
            assert_eq!(got.content, file);
            assert_eq!(pb::Era { content: Vec::new(), ..got }, *e);
        }
        let all = list(&mut c, pb::ListErasRequest::default()).await?;
        assert_eq!(all.len(), 3);
        let of_file = list(&mut c, pb::ListErasRequest { file_id: file_id.clone(), ..Default::default() }).await?;
        assert_eq!(of_file.iter().map(shape).collect::<Vec<_>>(), expected(pb::EraStatus::Received));
        // The payer filter uses the same identity as the responses.
        for (payer, trace) in [("ACME01", "EFT170"), ("SP002", "CHK4500"), ("870000001", "EFT2450")] {
            let got = list(&mut c, pb::ListErasRequest { payer_id: payer.into(), ..Default::default() }).await?;
            assert_eq!(got.iter().map(|e| e.trace_number.as_str()).collect::<Vec<_>>(), vec![trace], "{payer}");
        }
        let checks = list(&mut c, pb::ListErasRequest { trace_number: "CHK4500".into(), ..Default::default() }).await?;
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].payment_method, "CHK");

        let bad = c.list_eras(pb::ListErasRequest { file_id: "nope".into(), ..Default::default() }).await.unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);
        assert!(bad.message().contains("file_id"), "{}", bad.message());
        Ok(())
    }

    async fn one_unbalanced_set_does_not_hold_back_the_others(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut c = RemittanceServiceClient::new(server.channel(Caller::TenantA));
        let resp = c.ingest_era(request("k-1", &three_payments(true))).await?.into_inner();
        assert_eq!(resp.eras.iter().map(shape).collect::<Vec<_>>(), expected(pb::EraStatus::Unbalanced));
        let check = &resp.eras[1];
        assert_eq!(check.balance_problems.len(), 1, "{:?}", check.balance_problems);
        let p = &check.balance_problems[0];
        assert_eq!(p.level, medbill_proto::common::v1::BalanceLevel::Transaction as i32);
        assert_eq!((p.expected.as_str(), p.actual.as_str(), p.difference.as_str()), ("46.00", "45.00", "1.00"));
        assert!(resp.eras[0].balance_problems.is_empty() && resp.eras[2].balance_problems.is_empty());
        let unbalanced = list(&mut c, pb::ListErasRequest { status: pb::EraStatus::Unbalanced as i32, ..Default::default() }).await?;
        assert_eq!(unbalanced.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), vec![check.id.as_str()]);
        Ok(())
    }

    async fn one_unreadable_set_is_rejected_alone(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut c = RemittanceServiceClient::new(server.channel(Caller::TenantA));
        let file = String::from_utf8(three_payments(false))?.replace("BPR*I*45.00*", "BPR*I*45.0O*");
        let resp = c.ingest_era(request("k-1", file.as_bytes())).await?.into_inner();
        let statuses: Vec<i32> = resp.eras.iter().map(|e| e.status).collect();
        assert_eq!(statuses, vec![pb::EraStatus::Received as i32, pb::EraStatus::Rejected as i32, pb::EraStatus::Received as i32]);
        let reason = &resp.eras[1].error_message;
        assert!(reason.contains("BPR02") && reason.contains("at byte"), "{reason}");

        // A file whose envelope is broken is one REJECTED ERA naming segment and offset.
        let broken = String::from_utf8(three_payments(false))?.replace("IEA*1*000000102~", "IEA*1*000000999~");
        let err = c.ingest_era(request("k-2", broken.as_bytes())).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("content") && err.message().contains("IEA") && err.message().contains("at byte"), "{}", err.message());
        let rejected = list(&mut c, pb::ListErasRequest { status: pb::EraStatus::Rejected as i32, ..Default::default() }).await?;
        let whole: Vec<_> = rejected.iter().filter(|e| e.set_position == 0).collect();
        assert_eq!(whole.len(), 1, "the sets read before the envelope problem are discarded");
        assert_eq!(whole[0].content_sha256, sha256_hex(broken.as_bytes()));
        assert!(err.message().contains(&whole[0].id), "{}", err.message());
        Ok(())
    }

    async fn the_same_file_twice_is_the_same_eras_once(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut c = RemittanceServiceClient::new(server.channel(Caller::TenantA));
        let file = three_payments(false);
        let first = c.ingest_era(request("k-1", &file)).await?.into_inner();
        // Another key, same bytes: the same ERAs, nothing new.
        let again = c.ingest_era(request("k-2", &file)).await?.into_inner();
        assert!(again.duplicate);
        assert_eq!(again.eras, first.eras);
        // The same key: a replay.
        let replay = c.ingest_era(request("k-1", &file)).await?.into_inner();
        assert!(replay.duplicate);
        assert_eq!(replay.eras, first.eras);
        // Streamed, under a third key: still the same ERAs.
        let streamed = stream(&mut c, "k-3", &file).await?;
        assert!(streamed.duplicate);
        assert_eq!(streamed.eras, first.eras);
        assert_eq!(list(&mut c, pb::ListErasRequest::default()).await?.len(), 3);
        // Another tenant's file is its own, and the first tenant's ERAs are NOT_FOUND to it.
        let mut b = RemittanceServiceClient::new(server.channel(Caller::TenantB));
        let theirs = b.ingest_era(request("k-1", &file)).await?.into_inner();
        assert!(!theirs.duplicate);
        assert_ne!(theirs.eras[0].file_id, first.eras[0].file_id);
        let hidden = b.get_era(pb::GetEraRequest { id: first.eras[0].id.clone(), ..Default::default() }).await.unwrap_err();
        assert_eq!(hidden.code(), Code::NotFound);
        Ok(())
    }

    async fn a_streamed_file_of_three_payments_is_three_eras(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut c = RemittanceServiceClient::new(server.channel(Caller::TenantA));
        let file = three_payments(true);
        let resp = stream(&mut c, "s-1", &file).await?;
        assert!(!resp.duplicate);
        assert_eq!(resp.bytes_received, file.len() as u64);
        assert_eq!(resp.eras.iter().map(shape).collect::<Vec<_>>(), expected(pb::EraStatus::Unbalanced));
        assert_eq!(resp.era.as_ref(), resp.eras.first());
        // The unary call under the stream's key replays it.
        let unary = c.ingest_era(request("s-1", &file)).await?.into_inner();
        assert!(unary.duplicate);
        assert_eq!(unary.eras, resp.eras);
        Ok(())
    }
}

async fn stream(
    c: &mut Client,
    key: &str,
    content: &[u8],
) -> anyhow::Result<pb::IngestEraStreamResponse> {
    let mut messages = vec![pb::IngestEraStreamRequest {
        part: Some(Part::Header(pb::IngestEraStreamHeader {
            idempotency_key: key.to_owned(),
            file_name: "three.835".to_owned(),
            total_size: content.len() as u64,
            content_sha256: sha256_hex(content),
        })),
    }];
    // Small chunks, so set boundaries fall inside chunks.
    messages.extend(content.chunks(97).map(|c| pb::IngestEraStreamRequest {
        part: Some(Part::Chunk(c.to_vec())),
    }));
    Ok(c.ingest_era_stream(tokio_stream::iter(messages))
        .await?
        .into_inner())
}
