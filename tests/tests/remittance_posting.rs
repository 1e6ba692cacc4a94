//! ERA posting through `medbill serve --target all`, called through the generated clients: claims
//! created, scrubbed and submitted in the claims flow are paid, partly paid and denied by an 835
//! ingested into remittance; the posting worker matches each claim payment through the claims
//! service and posts it once, and the outbox relay applies it to the claim (ApplyAdjudication).
//! Also: the same file again changes nothing, an unmatched payment waits on the worklist and is
//! matched by hand, an unbalanced set waits for an operator's decision, a reversal is paired with
//! the payment it undoes, and a crash between posting and delivery delivers once after a restart.
//! SQLite always; PostgreSQL too when `MEDBILL_TEST_PG_URL` is set.
//!
//! Collections' PostPatientResponsibility is checked at the outbox row (keyed per claim payment,
//! amount and PR lines) and on the patient's ledger after delivery.

mod common;

use std::time::{Duration, Instant};

use common::claims::{Claims, PAYER, claim_input, coverage, get, until};
use medbill::serve::Target;
use medbill_proto::claims::v1 as claims;
use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_proto::collections::v1 as collections;
use medbill_proto::common::v1 as common_pb;
use medbill_proto::remittance::v1 as remit;
use medbill_proto::remittance::v1::remittance_service_client::RemittanceServiceClient;
use medbill_remittance::delivery::{ClaimsDelivery, CollectionsDelivery, Deliveries};
use medbill_remittance::directory::GrpcClaimDirectory;
use medbill_remittance::posting::Poster;
use medbill_runtime::client::{self, TracedChannel};
use medbill_runtime::config::ClientConfig;
use medbill_storage::outbox::{self, Relay, RelayConfig};
use medbill_storage::testing::TestEnv;
use medbill_storage::{Database, with_db};
use medbill_testkit::fixtures::{billing_provider, register_provider};
use medbill_testkit::{Caller, TENANT_A, channel_to, two_tenant_auth};
use prost::Message as _;

type Remit = RemittanceServiceClient<TracedChannel>;

/// Waits (up to 30 s) until the ERA is in `status`.
async fn era_until(
    r: &mut Remit,
    id: &str,
    status: remit::EraStatus,
) -> anyhow::Result<remit::Era> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let era = r
            .get_era(remit::GetEraRequest {
                id: id.into(),
                include_claim_payments: true,
                include_content: false,
            })
            .await?
            .into_inner()
            .era
            .expect("an ERA");
        if era.status == status as i32 {
            return Ok(era);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "ERA {id} stayed {:?}",
            era.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates, scrubs and submits claims for `pcns`; returns them once the payer accepted them.
async fn submitted_claims(
    c: &mut Claims,
    url: &str,
    pcns: &[&str],
    run: &str,
) -> anyhow::Result<Vec<claims::Claim>> {
    let covered = coverage(url, "ehr-patient-1", "SPX100000001").await?;
    let mut out = Vec::new();
    for pcn in pcns {
        let claim = c
            .create_claim(claims::CreateClaimRequest {
                idempotency_key: format!("c-{run}-{pcn}"),
                claim: Some(claim_input(pcn, &covered, "ehr-patient-1")),
            })
            .await?
            .into_inner()
            .claim
            .expect("a claim");
        let scrubbed = c
            .scrub_claim(claims::ScrubClaimRequest {
                idempotency_key: format!("s-{run}-{pcn}"),
                claim_id: claim.id.clone(),
            })
            .await?
            .into_inner();
        assert!(scrubbed.passed, "{:?}", scrubbed.findings);
        out.push(claim);
    }
    c.submit_claims(claims::SubmitClaimsRequest {
        idempotency_key: format!("sub-{run}"),
        ..Default::default()
    })
    .await?;
    let mut accepted = Vec::new();
    for claim in out {
        accepted.push(until(c, &claim.id, claims::ClaimStatus::Accepted).await?);
    }
    Ok(accepted)
}

/// A minimal 835 writer: one interchange, one group, one set per `sets` entry (BPR02, trace,
/// CLP loops as raw segments).
fn x835(sets: &[(&str, &str, Vec<String>)]) -> Vec<u8> {
    let mut out = String::new();
    out.push_str("ISA*00*          *00*          *ZZ*SIMPPO         *ZZ*MEDBILL        *260601*1200*^*00501*000000901*0*T*:~");
    out.push_str("GS*HP*SIMPPO*MEDBILL*20260601*1200*901*X*005010X221A1~");
    for (i, (amount, trace, claims)) in sets.iter().enumerate() {
        let control = format!("{:04}", i + 1);
        let method = if amount.starts_with('0') {
            "NON"
        } else {
            "ACH"
        };
        let mut segments = vec![
            format!("ST*835*{control}*005010X221A1"),
            format!(
                "BPR*I*{amount}*C*{method}*CCP*01*011000015*DA*123456789*1512345678**01*021000021*DA*987654321*20260601"
            ),
            format!("TRN*1*{trace}*1512345678"),
            "DTM*405*20260601".into(),
            format!("N1*PR*SIMULATED PPO HEALTH*XV*{PAYER}"),
            "N3*1 PAYER WAY".into(),
            "N4*HARTFORD*CT*06101".into(),
            "PER*BL*PROVIDER SERVICES*TE*8005551212".into(),
            format!("N1*PE*MEDBILL CLINIC*XX*{}", billing_provider().npi),
            "LX*1".into(),
        ];
        segments.extend(claims.iter().cloned());
        segments.push(format!("SE*{}*{control}", segments.len() + 1));
        for s in segments {
            out.push_str(&s);
            out.push('~');
        }
    }
    out.push_str(&format!("GE*{}*901~IEA*1*000000901~", sets.len()));
    out.into_bytes()
}

fn seg(parts: &[&str]) -> String {
    parts.join("*")
}

/// A claim paid in full of the allowed amount: PR coinsurance on both lines, line 1 by REF*6R.
fn paid_clp(pcn: &str, ccn: &str, line1: &str) -> Vec<String> {
    vec![
        seg(&["CLP", pcn, "1", "205.00", "164.00", "41.00", "12", ccn]),
        "NM1*QC*1*TESTPATIENT*AVERY****MI*SPX100000001".into(),
        "SVC*HC:G0439*180.00*144.00**1".into(),
        "DTM*472*20260504".into(),
        "CAS*PR*2*36.00".into(),
        seg(&["REF", "6R", line1]),
        "SVC*HC:G0444*25.00*20.00**1".into(),
        "DTM*472*20260504".into(),
        "CAS*PR*2*5.00".into(),
    ]
}

async fn ingest(
    r: &mut Remit,
    key: &str,
    content: Vec<u8>,
) -> anyhow::Result<remit::IngestEraResponse> {
    Ok(r.ingest_era(remit::IngestEraRequest {
        idempotency_key: key.into(),
        content,
        file_name: format!("{key}.835"),
    })
    .await?
    .into_inner())
}

async fn payments(
    r: &mut Remit,
    req: remit::ListClaimPaymentsRequest,
) -> anyhow::Result<Vec<remit::ClaimPayment>> {
    Ok(r.list_claim_payments(req)
        .await?
        .into_inner()
        .claim_payments)
}

async fn events(c: &mut Claims, id: &str) -> anyhow::Result<usize> {
    Ok(c.list_claim_events(claims::ListClaimEventsRequest {
        claim_id: id.into(),
        page_size: 500,
        page_token: String::new(),
    })
    .await?
    .into_inner()
    .events
    .len())
}

/// The outbox rows remittance wrote for `destination`: (message key, payload).
async fn outbox_rows(db: &Database, destination: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    Ok(with_db!(db, |pool| {
        medbill_storage::sqlx::query_as::<_, (String, Vec<u8>)>(
            "SELECT message_key, payload FROM platform_outbox WHERE destination = $1 ORDER BY id",
        )
        .bind(destination)
        .fetch_all(pool)
        .await?
    }))
}

medbill_storage::conformance_tests! {
    async fn an_835_is_matched_posted_once_and_reaches_the_claims(env: TestEnv) -> anyhow::Result<()> {
        // payer-sim pays nothing here: these tests make their own 835s (or none).
        let suite = common::start_tuned(&env, Target::All, |c| c.with_value("claims.submission.acknowledgement_poll_secs", 1).with_value("payer_sim.adjudication_lag_secs", 86_400)).await?;
        let url = suite.handle.url();
        let mut c = ClaimsServiceClient::new(channel_to(&url, Caller::TenantA));
        let mut r = RemittanceServiceClient::new(channel_to(&url, Caller::TenantA));
        register_provider(&mut c, billing_provider()).await?;
        let claims = submitted_claims(&mut c, &url, &["POST-1", "POST-2", "POST-3", "POST-4"], "a").await?;
        let (paid, partial, denied, later) = (&claims[0], &claims[1], &claims[2], &claims[3]);
        let lcn = |claim: &claims::Claim, n: usize| claim.lines[n].line_control_number.clone();

        let mut clps = paid_clp("POST-1", "PCCN-1", &lcn(paid, 0));
        // Partly paid: line 2 denied (CO-97 bundled), line 1 reduced (CO-45) and copay PR-3;
        // neither line sends REF*6R, and the payer dropped nothing.
        clps.extend([
            "CLP*POST-2*1*205.00*150.00*20.00*12*PCCN-2".to_owned(),
            "SVC*HC:G0439*180.00*150.00**1".into(),
            "DTM*472*20260504".into(),
            "CAS*CO*45*10.00".into(),
            "CAS*PR*3*20.00".into(),
            "SVC*HC:G0444*25.00*0**1".into(),
            "DTM*472*20260504".into(),
            "CAS*CO*97*25.00".into(),
            "LQ*HE*M80".into(),
        ]);
        // Denied as not covered.
        clps.extend(["CLP*POST-3*4*205.00*0*0*12*PCCN-3".to_owned(), "CAS*CO*204*205.00".into()]);
        // No claim has this CLP01: the unmatched worklist.
        clps.extend(["CLP*POST-X*1*205.00*205.00*0*12*PCCN-4".to_owned()]);
        let file = x835(&[("519.00", "EFT-POST-1", clps)]);
        let first = ingest(&mut r, "era-a", file.clone()).await?;
        let era_id = first.eras[0].id.clone();
        assert_eq!(first.eras[0].status, remit::EraStatus::Received as i32, "{:?}", first.eras[0]);

        // Posted by the worker, applied by the relay.
        let era = era_until(&mut r, &era_id, remit::EraStatus::Posted).await?;
        assert_eq!(era.claim_payments.len(), 4);
        until(&mut c, &paid.id, claims::ClaimStatus::Paid).await?;
        until(&mut c, &partial.id, claims::ClaimStatus::PartiallyPaid).await?;
        until(&mut c, &denied.id, claims::ClaimStatus::Denied).await?;

        // ListClaimPayments: amounts as the 835 said, the match, the worklist reason.
        let all = payments(&mut r, remit::ListClaimPaymentsRequest { era_id: era_id.clone(), ..Default::default() }).await?;
        let by_pcn = |pcn: &str| all.iter().find(|p| p.patient_control_number == pcn).cloned().expect("a payment");
        let p1 = by_pcn("POST-1");
        assert_eq!((p1.posting_status(), p1.claim_id.as_str(), p1.paid.as_str(), p1.charge.as_str()), (remit::PostingStatus::Posted, paid.id.as_str(), "164.00", "205.00"));
        assert_eq!(p1.payer_id, PAYER);
        assert_eq!(p1.payment_date, "2026-06-01");
        assert_eq!(p1.lines[0].matched_by(), remit::LineMatch::ControlNumber);
        assert_eq!(p1.lines[1].matched_by(), remit::LineMatch::Procedure);
        assert_eq!(p1.lines[1].claim_line_control_number, lcn(paid, 1));
        let p2 = by_pcn("POST-2");
        assert_eq!(p2.lines[1].adjustments[0].group(), common_pb::AdjustmentGroup::Co);
        assert_eq!(p2.lines[1].remarks[0].code, "M80");
        assert!(!p2.lines[1].remarks[0].description.is_empty(), "RARC text from the code sets");
        assert!(!p2.lines[1].adjustments[0].reason_description.is_empty(), "CARC text from the code sets");
        assert_eq!(by_pcn("POST-3").status_description, "Denied");
        let unmatched = by_pcn("POST-X");
        assert_eq!(unmatched.posting_status(), remit::PostingStatus::Unmatched);
        assert!(unmatched.match_note.contains("no claim has patient control number"), "{}", unmatched.match_note);
        let worklist = payments(&mut r, remit::ListClaimPaymentsRequest { posting_status: remit::PostingStatus::Unmatched.into(), ..Default::default() }).await?;
        assert_eq!(worklist.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), vec![unmatched.id.as_str()]);
        let by_claim = payments(&mut r, remit::ListClaimPaymentsRequest { claim_id: partial.id.clone(), ..Default::default() }).await?;
        assert_eq!(by_claim.len(), 1);
        let by_payer_and_date = payments(&mut r, remit::ListClaimPaymentsRequest { payer_id: PAYER.into(), payment_date_from: "2026-06-01".into(), payment_date_to: "2026-06-01".into(), ..Default::default() }).await?;
        assert_eq!(by_payer_and_date.len(), 4);
        let none = payments(&mut r, remit::ListClaimPaymentsRequest { payment_date_from: "2026-06-02".into(), ..Default::default() }).await?;
        assert!(none.is_empty());
        let bad = r.list_claim_payments(remit::ListClaimPaymentsRequest { payment_date_from: "June".into(), ..Default::default() }).await.unwrap_err();
        assert!(bad.message().contains("payment_date_from"), "{}", bad.message());

        // The patient responsibility of each posted payment is in the outbox for collections,
        // keyed per claim payment.
        let remit_db = env.connect("remittance").await?;
        let pr_rows = outbox_rows(&remit_db, "collections.PostPatientResponsibility").await?;
        let mut prs: Vec<(String, String, usize)> = pr_rows
            .iter()
            .map(|(key, payload)| {
                let m = collections::PostPatientResponsibilityRequest::decode(payload.as_slice()).expect("a request");
                assert_eq!(&m.idempotency_key, key);
                (m.patient_control_number, m.amount, m.adjustments.len())
            })
            .collect();
        prs.sort();
        assert_eq!(prs, vec![("POST-1".into(), "41.00".into(), 2), ("POST-2".into(), "20.00".into(), 1)]);
        assert_eq!(outbox_rows(&remit_db, "claims.ApplyAdjudication").await?.len(), 3);
        // ... and the relay delivers them: the patient's ledger shows 41.00 + 20.00 of patient A/R.
        let mut ledger = collections::collections_service_client::CollectionsServiceClient::new(channel_to(&url, Caller::TenantA));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let accounts = ledger
                .list_accounts(collections::ListAccountsRequest { patient_ref: "ehr-patient-1".into(), ..Default::default() })
                .await?
                .into_inner()
                .accounts;
            if accounts.iter().any(|a| a.balance == "61.00") {
                break;
            }
            anyhow::ensure!(std::time::Instant::now() < deadline, "patient A/R not posted: {accounts:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // The same file again is the same ERA set: nothing is posted or applied twice.
        let history = events(&mut c, &paid.id).await?;
        let again = ingest(&mut r, "era-a-again", file).await?;
        assert!(again.duplicate);
        assert_eq!(again.eras[0].id, era_id);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(outbox_rows(&remit_db, "claims.ApplyAdjudication").await?.len(), 3);
        assert_eq!(events(&mut c, &paid.id).await?, history);

        // The denial worklist: the bundled line of POST-2 and the denied POST-3, with their CARC
        // and RARC text and a suggested action; once each, however often the file comes.
        let denials = r.list_denials(remit::ListDenialsRequest::default()).await?.into_inner();
        let mut items: Vec<(String, u32, String, String, i32, i32)> = denials
            .denials
            .iter()
            .map(|d| (d.claim_id.clone(), d.line_number, d.reason_code.clone(), d.denied_amount.clone(), d.category, d.action))
            .collect();
        items.sort();
        let mut expected = vec![
            (partial.id.clone(), 2, "97".to_owned(), "25.00".to_owned(), remit::DenialCategory::Coding as i32, remit::DenialAction::CorrectAndResubmit as i32),
            (denied.id.clone(), 0, "204".to_owned(), "205.00".to_owned(), remit::DenialCategory::Eligibility as i32, remit::DenialAction::WriteOff as i32),
        ];
        expected.sort();
        assert_eq!(items, expected);
        let bundled = denials.denials.iter().find(|d| d.claim_id == partial.id).expect("the bundled line");
        assert!(!bundled.reason_description.is_empty() && !bundled.remarks[0].description.is_empty(), "{bundled:?}");
        assert_eq!(bundled.remarks[0].code, "M80");
        assert_eq!(denials.counts_by_payer.iter().map(|c| (c.key.as_str(), c.count)).collect::<Vec<_>>(), [(PAYER, 2)]);
        // The bank deposit of the payment reconciles to the penny.
        let deposit = r.reconcile_deposit(remit::ReconcileDepositRequest {
            idempotency_key: "deposit-1".into(),
            deposit: Some(remit::Deposit {
                trace_number: "EFT-POST-1".into(),
                amount: "519.00".into(),
                deposit_date: "2026-06-02".into(),
                payment_method: "ACH".into(),
                ..Default::default()
            }),
        }).await?.into_inner().reconciliation.expect("a reconciliation");
        assert_eq!(deposit.status(), remit::ReconciliationStatus::Matched, "{}", deposit.message);
        assert_eq!((deposit.era_ids.as_slice(), deposit.difference.as_str()), (std::slice::from_ref(&era_id), "0.00"));

        // The unmatched payment is matched by hand to the claim it pays (the payer mistyped CLP01).
        let matched = r.match_claim_payment(remit::MatchClaimPaymentRequest {
            idempotency_key: "match-1".into(),
            claim_payment_id: unmatched.id.clone(),
            claim_id: later.id.clone(),
            note: "payer mistyped CLP01; confirmed by phone".into(),
        }).await?.into_inner().claim_payment.expect("a payment");
        assert_eq!((matched.posting_status(), matched.claim_id.as_str()), (remit::PostingStatus::Posted, later.id.as_str()));
        until(&mut c, &later.id, claims::ClaimStatus::Paid).await?;
        let twice = r.match_claim_payment(remit::MatchClaimPaymentRequest {
            idempotency_key: "match-2".into(),
            claim_payment_id: unmatched.id.clone(),
            claim_id: later.id.clone(),
            note: "again".into(),
        }).await.unwrap_err();
        assert_eq!(twice.code(), tonic::Code::FailedPrecondition, "{}", twice.message());
        assert_eq!(outbox_rows(&remit_db, "claims.ApplyAdjudication").await?.len(), 4);

        // Another tenant sees none of it.
        let mut other = RemittanceServiceClient::new(channel_to(&url, Caller::TenantB));
        assert!(payments(&mut other, remit::ListClaimPaymentsRequest::default()).await?.is_empty());
        assert!(other.list_denials(remit::ListDenialsRequest::default()).await?.into_inner().denials.is_empty());
        let hidden = other.match_claim_payment(remit::MatchClaimPaymentRequest {
            idempotency_key: "match-b".into(), claim_payment_id: unmatched.id.clone(), claim_id: later.id.clone(), note: "x".into(),
        }).await.unwrap_err();
        assert_eq!(hidden.code(), tonic::Code::NotFound);

        // A reversal of POST-1 (CLP02 22, same CLP07) is paired with the payment it undoes and
        // takes the claim back out of PAID.
        let reversal = vec![
            "CLP*POST-1*22*-205.00*-164.00*-41.00*12*PCCN-1".to_owned(),
            "CAS*PR*2*-41.00".into(),
        ];
        // PLB: the payer recoups the reversed amount from this payment (WO, positive reduces).
        let mut rev_set = reversal.clone();
        rev_set.push(format!("PLB*{}*20261231*WO:PCCN-1*-164.00", billing_provider().npi));
        let rev = ingest(&mut r, "era-rev", x835(&[("0.00", "NOPAY-REV", rev_set)])).await?;
        let rev_era = era_until(&mut r, &rev.eras[0].id, remit::EraStatus::Posted).await?;
        let rev_payment = &rev_era.claim_payments[0];
        assert!(rev_payment.reversal);
        assert_eq!(rev_payment.reverses_claim_payment_id, p1.id);
        let reversed = until(&mut c, &paid.id, claims::ClaimStatus::Accepted).await?;
        assert!(reversed.adjudication.is_none(), "a reversal leaves no adjudication in force");

        // An unbalanced set waits (HELD) and posts only after an operator's decision.
        let off = vec![
            "CLP*POST-5*1*205.00*164.00*41.00*12*PCCN-5".to_owned(),
            "CAS*PR*2*40.00".into(),
        ];
        let held = ingest(&mut r, "era-off", x835(&[("164.00", "EFT-OFF", off)])).await?;
        let held_id = held.eras[0].id.clone();
        assert_eq!(held.eras[0].status, remit::EraStatus::Unbalanced as i32);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let waiting = payments(&mut r, remit::ListClaimPaymentsRequest { era_id: held_id.clone(), ..Default::default() }).await?;
        assert_eq!(waiting[0].posting_status(), remit::PostingStatus::Held);
        let no_reason = r.post_unbalanced_era(remit::PostUnbalancedEraRequest { idempotency_key: "rel-0".into(), era_id: held_id.clone(), reason: String::new() }).await.unwrap_err();
        assert!(no_reason.message().contains("reason"), "{}", no_reason.message());
        let released = r.post_unbalanced_era(remit::PostUnbalancedEraRequest {
            idempotency_key: "rel-1".into(),
            era_id: held_id.clone(),
            reason: "payer confirmed 1.00 rounding on the CAS; post as paid".into(),
        }).await?.into_inner().era.expect("an ERA");
        assert_eq!(released.review_reason, "payer confirmed 1.00 rounding on the CAS; post as paid");
        let posted = era_until(&mut r, &held_id, remit::EraStatus::Posted).await?;
        assert_eq!(posted.review_reason, released.review_reason);
        // No claim POST-5 exists: it is posted to the worklist, not lost.
        assert_eq!(posted.claim_payments[0].posting_status(), remit::PostingStatus::Unmatched);
        let again = r.post_unbalanced_era(remit::PostUnbalancedEraRequest { idempotency_key: "rel-2".into(), era_id: held_id.clone(), reason: "again".into() }).await.unwrap_err();
        assert_eq!(again.code(), tonic::Code::FailedPrecondition);

        remit_db.close().await;
        suite.shutdown().await?;
        Ok(())
    }

    async fn a_crash_between_posting_and_delivery_delivers_once_after_restart(env: TestEnv) -> anyhow::Result<()> {
        // Claims (with eligibility and payer-sim) run as the binary runs them; remittance's store,
        // posting worker and relay are driven by hand so the "crash" falls between posting and
        // delivery.
        // payer-sim pays nothing here: these tests make their own 835s (or none).
        let suite = common::start_tuned(&env, Target::All, |c| c.with_value("claims.submission.acknowledgement_poll_secs", 1).with_value("payer_sim.adjudication_lag_secs", 86_400)).await?;
        let url = suite.handle.url();
        let mut c = ClaimsServiceClient::new(channel_to(&url, Caller::TenantA));
        register_provider(&mut c, billing_provider()).await?;
        let claims = submitted_claims(&mut c, &url, &["CRASH-1"], "b").await?;
        let claim = &claims[0];

        // A separate remittance store (its own database namespace) that no running worker sees.
        let db = env.connect("remitcrash").await?;
        let store = medbill_remittance::open_store(db.clone()).await?;
        let config = ClientConfig { connect_timeout_ms: 500, request_timeout_ms: 5_000, ..ClientConfig::default() };
        let channel = client::connect(&url, &config)?;
        let directory = GrpcClaimDirectory::new(channel.clone(), two_tenant_auth());
        let poster = Poster::new(store.clone(), std::sync::Arc::new(directory), "crash-test");
        let tenant = medbill_domain::TenantId::parse(TENANT_A)?;
        let file = x835(&[("164.00", "EFT-CRASH", paid_clp("CRASH-1", "PCCN-C1", &claim.lines[0].line_control_number))]);
        let mut tx = db.begin().await?;
        let sha = medbill_remittance::model::sha256_hex(&file);
        let ingested = medbill_remittance::ingest_file(store.as_ref(), &mut tx, &tenant, std::sync::Arc::new(file), &sha, "crash.835").await?;
        tx.commit().await?;
        let era_id = ingested.eras[0].id;
        assert_eq!(poster.run_once().await?, 1);
        assert_eq!(poster.run_once().await?, 0, "a posted ERA is not posted again");
        let counts = outbox::counts(&db).await?;
        assert_eq!((counts.pending, counts.delivered), (2, 0), "claims and collections messages wait");
        // The crash: the process goes away before any relay ran.
        drop(poster);
        db.close().await;
        assert_eq!(get(&mut c, &claim.id).await?.status(), claims::ClaimStatus::Accepted);

        // The restarted process delivers each message once.
        let db = env.connect("remitcrash").await?;
        let store = medbill_remittance::open_store(db.clone()).await?;
        let deliveries = Deliveries {
            claims: ClaimsDelivery::new(channel.clone(), two_tenant_auth()),
            collections: CollectionsDelivery::new(channel.clone(), two_tenant_auth()),
        };
        let relay_config = RelayConfig { poll_interval_ms: 20, backoff_initial_ms: 20, backoff_max_ms: 100, ..RelayConfig::default() };
        let relay = Relay::new(db.clone(), deliveries.clone(), relay_config.clone());
        let pass = relay.run_once().await?;
        assert_eq!(pass.delivered, 2, "claims and collections, each once: {pass:?}");
        until(&mut c, &claim.id, claims::ClaimStatus::Paid).await?;
        let history = events(&mut c, &claim.id).await?;
        let counts = outbox::counts(&db).await?;
        assert_eq!((counts.pending, counts.delivered, counts.dead), (0, 2, 0));
        // A second restart and pass changes nothing on the claim.
        drop(relay);
        let relay = Relay::new(db.clone(), deliveries, relay_config).as_if_restarted();
        relay.run_once().await?;
        assert_eq!(events(&mut c, &claim.id).await?, history);
        let listed = store.list_claim_payments(&tenant, &medbill_remittance::model::ClaimPaymentFilter { era_id: Some(era_id), ..Default::default() }, None, 10).await?;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].claim_id, claim.id);

        db.close().await;
        suite.shutdown().await?;
        Ok(())
    }
}
