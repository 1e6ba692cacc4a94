//! What the worklist and deposit tests share: a server with a posting worker, claims the payer
//! adjudicated (an in-memory directory standing for the claims service, as in `posting_speed`),
//! and 835 text built segment by segment.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use medbill_domain::{Money, TenantId};
use medbill_proto::remittance::v1 as pb;
use medbill_proto::remittance::v1::remittance_service_client::RemittanceServiceClient;
use medbill_remittance::directory::{ClaimDirectory, ClaimView, DirectoryError};
use medbill_remittance::posting::Poster;
use medbill_remittance::{RemittanceService, open_store};
use medbill_runtime::client::TracedChannel;
use medbill_storage::Database;
use medbill_testkit::{Caller, TestServer};

/// The generated client.
pub type Client = RemittanceServiceClient<TracedChannel>;

/// Claims as billed: one per CLP01, with its payer and total charge.
pub struct Known(pub HashMap<String, ClaimView>);

#[async_trait]
impl ClaimDirectory for Known {
    async fn by_patient_control_number(
        &self,
        _: &TenantId,
        pcn: &str,
    ) -> Result<Vec<ClaimView>, DirectoryError> {
        Ok(self.0.get(pcn).cloned().into_iter().collect())
    }

    async fn by_id(&self, _: &TenantId, id: &str) -> Result<Option<ClaimView>, DirectoryError> {
        Ok(self.0.values().find(|c| c.id == id).cloned())
    }
}

/// A claim billed to `payer` for `charge`, with id `claim-<pcn>`.
pub fn claim_view(pcn: &str, payer: &str, charge: &str) -> (String, ClaimView) {
    (
        pcn.to_owned(),
        ClaimView {
            id: format!("claim-{pcn}"),
            patient_control_number: pcn.to_owned(),
            payer_id: payer.to_owned(),
            patient_ref: "patient-1".to_owned(),
            total_charge: Some(Money::parse(charge).expect("a charge")),
            service_date_from: None,
            lines: Vec::new(),
        },
    )
}

/// A running server and the poster behind it (run it with [`post_all`]).
pub struct Harness {
    /// The server on port 0.
    pub server: TestServer,
    /// The posting worker (not running by itself: the test posts when it wants).
    pub poster: Poster,
}

impl Harness {
    /// A client calling as `caller`.
    pub fn client(&self, caller: Caller) -> Client {
        RemittanceServiceClient::new(self.server.channel(caller))
    }

    /// Posts every RECEIVED ERA of every tenant.
    pub async fn post_all(&self) -> anyhow::Result<()> {
        while self.poster.run_once().await? > 0 {}
        Ok(())
    }
}

/// Starts the service over `db` with a poster that matches against `claims`.
pub async fn serve(db: Database, claims: Vec<(String, ClaimView)>) -> anyhow::Result<Harness> {
    let store = open_store(db).await?;
    let poster = Poster::new(
        store.clone(),
        Arc::new(Known(claims.into_iter().collect())),
        "test",
    );
    let service = RemittanceService::new(store).with_poster(poster.clone());
    let routes = tonic::service::Routes::new(service.into_server());
    Ok(Harness {
        server: TestServer::start(routes).await,
        poster,
    })
}

/// One 835 set: `body` holds the segments after ST, up to (not including) SE.
pub fn set(control: &str, body: &[String]) -> String {
    let mut out = format!("ST*835*{control}*005010X221A1~");
    for s in body {
        out.push_str(s);
        out.push('~');
    }
    out.push_str(&format!("SE*{}*{control}~", body.len() + 2));
    out
}

/// One interchange of one group holding `sets`.
pub fn interchange(control: u32, sets: &[String]) -> Vec<u8> {
    format!(
        "ISA*00*          *00*          *ZZ*PAYERSENDER    *ZZ*PROVIDERRCV    *240315*0930*^*00501*{control:09}*0*T*:~\
         GS*HP*PAYERSENDER*PROVIDERRCV*20240315*0930*{control}*X*005010X221A1~\
         {}GE*{}*{control}~IEA*1*{control:09}~",
        sets.concat(),
        sets.len()
    )
    .into_bytes()
}

/// The header of a payment: BPR (amount, method, date YYYYMMDD), TRN, payer N1 with its id, payee.
pub fn header(amount: &str, method: &str, date: &str, trace: &str, payer: &str) -> Vec<String> {
    vec![
        format!("BPR*I*{amount}*C*{method}************{date}"),
        format!("TRN*1*{trace}*1999999999"),
        format!("N1*PR*PAYER {payer}*XV*{payer}"),
        "N1*PE*SAMPLE CLINIC*XX*1234567893".to_owned(),
        "LX*1".to_owned(),
    ]
}

/// A paid claim of one line: charge, paid, CO-45 and PR-2 making up the difference.
pub fn paid_claim(pcn: &str, charge: &str, paid: &str, co45: &str, pr2: &str) -> Vec<String> {
    vec![
        format!("CLP*{pcn}*1*{charge}*{paid}*{pr2}*12*PCC-{pcn}"),
        format!("SVC*HC:99213*{charge}*{paid}**1"),
        "DTM*472*20241015".to_owned(),
        format!("CAS*CO*45*{co45}"),
        format!("CAS*PR*2*{pr2}"),
        format!("REF*6R*LINE-{pcn}"),
    ]
}

/// Ingests `content` under `key`; returns the ERAs.
pub async fn ingest(c: &mut Client, key: &str, content: Vec<u8>) -> anyhow::Result<Vec<pb::Era>> {
    Ok(c.ingest_era(pb::IngestEraRequest {
        idempotency_key: key.to_owned(),
        content,
        file_name: "remit.835".to_owned(),
    })
    .await?
    .into_inner()
    .eras)
}
