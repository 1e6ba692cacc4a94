//! Real-time CORE round trips over loopback: client and server halves in one process.
//!
//! Prints throughput and latency percentiles; asserts nothing about speed. Run with
//! `cargo bench -p medbill-connect --bench core_roundtrip`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use medbill_connect::{
    Connection, CoreHandler, CoreHttpConfig, CoreServer, HandlerError, HandlerReply,
    InboundRequest, PayerConnection, PayloadType, RetryPolicy, TransportConfig,
};

const REQUEST_270: &[u8] = b"ISA*00*          *00*          *ZZ*MEDBILL01      *ZZ*ACMEHEALTH     *261127*1020*^*00501*000000001*0*T*:~GS*HS*MEDBILL01*ACMEHEALTH*20261127*1020*1*X*005010X279A1~ST*270*0001*005010X279A1~BHT*0022*13*10001234*20261127*1020~HL*1**20*1~NM1*PR*2*ACME HEALTH*****PI*ACMEHEALTH~HL*2*1*21*1~NM1*1P*2*CLINIC*****XX*1234567893~HL*3*2*22*0~NM1*IL*1*DOE*JANE****MI*M000001~DMG*D8*19800101~DTP*291*D8*20261127~EQ*30~SE*13*0001~GE*1*1~IEA*1*000000001~";
const RESPONSE_271: &[u8] = b"ISA*00*          *00*          *ZZ*ACMEHEALTH     *ZZ*MEDBILL01      *261127*1020*^*00501*000000002*0*T*:~GS*HB*ACMEHEALTH*MEDBILL01*20261127*1020*2*X*005010X279A1~ST*271*0001*005010X279A1~BHT*0022*11*10001234*20261127*1020~HL*1**20*1~NM1*PR*2*ACME HEALTH*****PI*ACMEHEALTH~HL*2*1*21*1~NM1*1P*2*CLINIC*****XX*1234567893~HL*3*2*22*0~NM1*IL*1*DOE*JANE****MI*M000001~EB*1*IND*30**GOLD PPO~EB*C*IND*30***23*1500~EB*A*IND*30****.2~EB*B*IND*98***27*25~SE*16*0001~GE*1*2~IEA*1*000000002~";

/// Answers every request with the same 271.
struct FixedResponder;

#[async_trait]
impl CoreHandler for FixedResponder {
    async fn handle(&self, _request: InboundRequest) -> Result<HandlerReply, HandlerError> {
        Ok(HandlerReply {
            payload_type: PayloadType::X12_271_RESPONSE,
            payload: Bytes::from_static(RESPONSE_271),
        })
    }
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = CoreServer::new(FixedResponder).router("/core");
    tokio::spawn(async move { axum::serve(listener, router).await });

    let connection = Arc::new(Connection::open(&PayerConnection {
        payer_id: "ACME".into(),
        sender_id: "MEDBILL01".into(),
        receiver_id: "ACMEHEALTH".into(),
        transport: TransportConfig::CoreHttp(CoreHttpConfig::new(format!("http://{addr}/core"))),
        batch_transport: None,
        retry: RetryPolicy::no_retry(),
    })?);

    for concurrency in [1usize, 16, 64] {
        let total = 20_000usize;
        let per_task = total / concurrency;
        // Warm the connection pool.
        round(&connection, concurrency, 50).await?;
        let started = Instant::now();
        let mut latencies = round(&connection, concurrency, per_task).await?;
        let elapsed = started.elapsed();
        latencies.sort();
        let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
        println!(
            "core real-time round trip, concurrency {concurrency:>2}: {:>8.0} req/s  p50 {:>7.1} us  p99 {:>7.1} us  ({} requests)",
            latencies.len() as f64 / elapsed.as_secs_f64(),
            pct(50).as_secs_f64() * 1e6,
            pct(99).as_secs_f64() * 1e6,
            latencies.len(),
        );
    }
    Ok(())
}

async fn round(
    connection: &Arc<Connection>,
    concurrency: usize,
    per_task: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let connection = connection.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_task);
            for _ in 0..per_task {
                let started = Instant::now();
                let response = connection
                    .exchange(
                        PayloadType::X12_270_REQUEST,
                        Bytes::from_static(REQUEST_270),
                    )
                    .await?;
                anyhow::ensure!(
                    response.payload.len() == RESPONSE_271.len(),
                    "wrong response"
                );
                latencies.push(started.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}
