//! The denial worklist through the generated gRPC client, on SQLite and (when
//! `MEDBILL_TEST_PG_URL` is set) PostgreSQL: an 835 with a denied claim (CO-197 with a RARC), a
//! partially denied claim (a line denied CO-4 beside a paid line) and a patient-responsibility
//! denial (PR-204) is posted; ListDenials shows each with CARC/RARC text, amount, payer, age and
//! action, counts them by reason and payer, filters and pages; UpdateDenial changes an item's
//! status with a note (idempotently); a later payment of a denied claim resolves it; another
//! tenant sees nothing and cannot change anything.

mod common;

use chrono::{Days, NaiveDate, Utc};
use common::{claim_view, header, ingest, interchange, paid_claim, serve, set};
use medbill_proto::common::v1 as common_pb;
use medbill_proto::remittance::v1 as pb;
use medbill_storage::Database;
use medbill_testkit::Caller;
use tonic::Code;

/// Payer ACME01, paid 80.00 on 2024-11-01 (trace EFT80): claim D1 denied CO-197 (no
/// authorization, RARC N54), D2 paid on one line and denied CO-4 on the other (RARC M20), D3 not
/// covered PR-204.
fn acme_835() -> Vec<u8> {
    let mut body = header("80.00", "ACH", "20241101", "EFT80", "ACME01");
    body.extend([
        "CLP*PCN-D1*4*200.00*0*0*12*PCC-D1".to_owned(),
        "SVC*HC:27447*200.00*0**1".to_owned(),
        "DTM*472*20241010".to_owned(),
        "CAS*CO*197*200.00".to_owned(),
        "LQ*HE*N54".to_owned(),
        "CLP*PCN-D2*1*150.00*80.00*10.00*12*PCC-D2".to_owned(),
        "SVC*HC:99213*100.00*80.00**1".to_owned(),
        "DTM*472*20241012".to_owned(),
        "CAS*CO*45*10.00".to_owned(),
        "CAS*PR*2*10.00".to_owned(),
        "REF*6R*LINE-D2-1".to_owned(),
        "SVC*HC:97110:GP*50.00*0**1".to_owned(),
        "DTM*472*20241012".to_owned(),
        "CAS*CO*4*50.00".to_owned(),
        "REF*6R*LINE-D2-2".to_owned(),
        "LQ*HE*M20".to_owned(),
        "CLP*PCN-D3*1*60.00*0*60.00*12*PCC-D3".to_owned(),
        "SVC*HC:99999*60.00*0**1".to_owned(),
        "DTM*472*20241014".to_owned(),
        "CAS*PR*204*60.00".to_owned(),
    ]);
    interchange(201, &[set("0001", &body)])
}

/// Payer OTHER01, 10 days ago (trace CHK9): D4 filed too late (CO-29), D5 paid in full.
fn other_835(paid_on: NaiveDate) -> Vec<u8> {
    let date = paid_on.format("%Y%m%d").to_string();
    let mut body = header("45.00", "CHK", &date, "CHK9", "OTHER01");
    body.extend([
        "CLP*PCN-D4*1*70.00*0*0*12*PCC-D4".to_owned(),
        "SVC*HC:99214*70.00*0**1".to_owned(),
        "CAS*CO*29*70.00".to_owned(),
    ]);
    body.extend(paid_claim("PCN-D5", "60.00", "45.00", "10.00", "5.00"));
    interchange(202, &[set("0001", &body)])
}

/// The corrected D1, paid in full later (trace EFT200).
fn d1_paid_835() -> Vec<u8> {
    let mut body = header("200.00", "ACH", "20241201", "EFT200", "ACME01");
    body.extend([
        "CLP*PCN-D1*1*200.00*200.00*0*12*PCC-D1B".to_owned(),
        "SVC*HC:27447*200.00*200.00**1".to_owned(),
    ]);
    interchange(203, &[set("0001", &body)])
}

fn claims() -> Vec<(String, medbill_remittance::directory::ClaimView)> {
    vec![
        claim_view("PCN-D1", "ACME01", "200.00"),
        claim_view("PCN-D2", "ACME01", "150.00"),
        claim_view("PCN-D3", "ACME01", "60.00"),
        claim_view("PCN-D4", "OTHER01", "70.00"),
        claim_view("PCN-D5", "OTHER01", "60.00"),
    ]
}

async fn list(
    c: &mut common::Client,
    req: pb::ListDenialsRequest,
) -> Result<pb::ListDenialsResponse, tonic::Status> {
    Ok(c.list_denials(req).await?.into_inner())
}

fn by_pcn<'a>(items: &'a [pb::DenialWorkItem], pcn: &str) -> &'a pb::DenialWorkItem {
    items
        .iter()
        .find(|d| d.patient_control_number == pcn)
        .unwrap_or_else(|| panic!("no denial for {pcn}"))
}

fn counts(c: &[pb::DenialCount]) -> Vec<(String, u32, String)> {
    c.iter()
        .map(|c| (c.key.clone(), c.count, c.denied_amount.clone()))
        .collect()
}

medbill_storage::conformance_tests! {
    namespace = "remittance";

    async fn denied_lines_are_worked_from_the_worklist(db: Database) -> anyhow::Result<()> {
        let h = serve(db, claims()).await?;
        let mut a = h.client(Caller::TenantA);
        let today = Utc::now().date_naive();
        let ten_days_ago = today.checked_sub_days(Days::new(10)).unwrap();
        ingest(&mut a, "acme", acme_835()).await?;
        ingest(&mut a, "other", other_835(ten_days_ago)).await?;
        h.post_all().await?;

        let all = list(&mut a, pb::ListDenialsRequest::default()).await?;
        assert_eq!(all.denials.len(), 4, "{:#?}", all.denials);
        assert_eq!(all.total_count, 4);

        // The denied claim: one item for the whole claim, with the CARC and RARC text.
        let d1 = by_pcn(&all.denials, "PCN-D1");
        assert_eq!(d1.line_number, 0);
        assert_eq!(d1.claim_status_code, "4");
        assert_eq!(d1.claim_id, "claim-PCN-D1");
        assert_eq!(d1.payer_id, "ACME01");
        assert_eq!(d1.denied_amount, "200.00");
        assert_eq!(d1.reason_code, "197");
        assert_eq!(d1.group, common_pb::AdjustmentGroup::Co as i32);
        assert!(d1.reason_description.starts_with("Precertification/authorization/notification"), "{}", d1.reason_description);
        assert_eq!(d1.adjustments.len(), 1);
        assert_eq!(d1.adjustments[0].reason_description, d1.reason_description);
        assert_eq!(d1.remarks.len(), 1);
        assert_eq!(d1.remarks[0].code, "N54");
        assert!(!d1.remarks[0].description.is_empty(), "RARC text");
        assert_eq!(d1.category, pb::DenialCategory::Authorization as i32);
        assert_eq!(d1.action, pb::DenialAction::Appeal as i32);
        assert!(d1.suggested_action.starts_with("appeal"), "{}", d1.suggested_action);
        assert_eq!(d1.status, pb::DenialStatus::Open as i32);
        assert_eq!(d1.payment_date, "2024-11-01");
        let age = (today - NaiveDate::from_ymd_opt(2024, 11, 1).unwrap()).num_days();
        assert_eq!(i64::from(d1.age_days), age);
        assert_eq!(d1.service_date, "2024-10-10");

        // The partially denied claim: its denied line only, not the paid one.
        let d2 = by_pcn(&all.denials, "PCN-D2");
        assert_eq!(d2.line_number, 2);
        assert_eq!(d2.line_control_number, "LINE-D2-2");
        assert_eq!(d2.procedure.as_ref().map(|p| (p.code.as_str(), p.modifiers.clone())), Some(("97110", vec!["GP".to_owned()])));
        assert_eq!(d2.denied_amount, "50.00");
        assert_eq!(d2.reason_code, "4");
        assert_eq!(d2.category, pb::DenialCategory::Coding as i32);
        assert_eq!(d2.action, pb::DenialAction::CorrectAndResubmit as i32);
        assert_eq!(d2.remarks.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(), ["M20"]);

        // A PR denial is billed to the patient.
        let d3 = by_pcn(&all.denials, "PCN-D3");
        assert_eq!(d3.group, common_pb::AdjustmentGroup::Pr as i32);
        assert_eq!(d3.reason_code, "204");
        assert_eq!(d3.action, pb::DenialAction::BillPatient as i32);
        assert_eq!(d3.denied_amount, "60.00");

        let d4 = by_pcn(&all.denials, "PCN-D4");
        assert_eq!(d4.category, pb::DenialCategory::TimelyFiling as i32);
        assert_eq!(d4.age_days, 10);
        assert!(all.denials.iter().all(|d| d.patient_control_number != "PCN-D5"), "a paid claim is no denial");

        assert_eq!(
            counts(&all.counts_by_payer),
            [("ACME01".to_owned(), 3, "310.00".to_owned()), ("OTHER01".to_owned(), 1, "70.00".to_owned())]
        );
        let mut by_reason = counts(&all.counts_by_reason);
        by_reason.sort();
        assert_eq!(
            by_reason,
            [
                ("CO-197".to_owned(), 1, "200.00".to_owned()),
                ("CO-29".to_owned(), 1, "70.00".to_owned()),
                ("CO-4".to_owned(), 1, "50.00".to_owned()),
                ("PR-204".to_owned(), 1, "60.00".to_owned()),
            ]
        );
        assert!(all.counts_by_reason.iter().all(|c| !c.description.is_empty()), "CARC text on each count");

        // Filters: payer, reason, category, age; counts follow the filter.
        let acme = list(&mut a, pb::ListDenialsRequest { payer_id: "ACME01".into(), ..Default::default() }).await?;
        assert_eq!(acme.denials.len(), 3);
        assert_eq!(acme.total_count, 3);
        assert_eq!(counts(&acme.counts_by_payer), [("ACME01".to_owned(), 3, "310.00".to_owned())]);
        let auth = list(&mut a, pb::ListDenialsRequest { reason_code: "197".into(), ..Default::default() }).await?;
        assert_eq!(auth.denials.iter().map(|d| d.patient_control_number.as_str()).collect::<Vec<_>>(), ["PCN-D1"]);
        let coding = list(&mut a, pb::ListDenialsRequest { category: pb::DenialCategory::Coding as i32, ..Default::default() }).await?;
        assert_eq!(coding.denials.len(), 1);
        let recent = list(&mut a, pb::ListDenialsRequest { max_age_days: 30, ..Default::default() }).await?;
        assert_eq!(recent.denials.iter().map(|d| d.patient_control_number.as_str()).collect::<Vec<_>>(), ["PCN-D4"]);
        let old = list(&mut a, pb::ListDenialsRequest { min_age_days: 30, ..Default::default() }).await?;
        assert_eq!(old.denials.len(), 3);

        // Paging: two pages of two, the counts over the whole list on each.
        let first = list(&mut a, pb::ListDenialsRequest { page_size: 2, ..Default::default() }).await?;
        assert_eq!(first.denials.len(), 2);
        assert_eq!(first.total_count, 4);
        let second = list(&mut a, pb::ListDenialsRequest { page_size: 2, page_token: first.next_page_token.clone(), ..Default::default() }).await?;
        assert_eq!(second.denials.len(), 2);
        assert!(second.next_page_token.is_empty());
        let foreign = list(&mut a, pb::ListDenialsRequest { page_size: 2, page_token: first.next_page_token.clone(), payer_id: "ACME01".into(), ..Default::default() }).await;
        assert_eq!(foreign.unwrap_err().code(), Code::InvalidArgument, "a token of another query");

        // Status change with a note; a retry answers the same; the status filter sees it.
        let update = pb::UpdateDenialRequest {
            idempotency_key: "work-d2".into(),
            denial_id: d2.id.clone(),
            status: pb::DenialStatus::InProgress as i32,
            note: "modifier checked with coding".into(),
        };
        let changed = a.update_denial(update.clone()).await?.into_inner().denial.unwrap();
        assert_eq!(changed.status, pb::DenialStatus::InProgress as i32);
        assert_eq!(changed.note, "modifier checked with coding");
        let again = a.update_denial(update.clone()).await?.into_inner().denial.unwrap();
        assert_eq!(again, changed);
        let reused = a.update_denial(pb::UpdateDenialRequest { note: "other".into(), ..update.clone() }).await;
        assert_eq!(reused.unwrap_err().code(), Code::AlreadyExists);
        let working = list(&mut a, pb::ListDenialsRequest { status: pb::DenialStatus::InProgress as i32, ..Default::default() }).await?;
        assert_eq!(working.denials.len(), 1);
        assert_eq!(working.denials[0].note, "modifier checked with coding");

        // Bad input names its field.
        let bad = a.update_denial(pb::UpdateDenialRequest { idempotency_key: "bad".into(), denial_id: d2.id.clone(), status: 0, note: "x".into() }).await.unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);
        assert!(bad.message().contains("status"), "{}", bad.message());
        let bad = list(&mut a, pb::ListDenialsRequest { min_age_days: 40, max_age_days: 30, ..Default::default() }).await.unwrap_err();
        assert!(bad.message().contains("max_age_days"), "{}", bad.message());

        // Another tenant sees nothing and cannot change the item.
        let mut b = h.client(Caller::TenantB);
        assert!(list(&mut b, pb::ListDenialsRequest::default()).await?.denials.is_empty());
        let other = b.update_denial(pb::UpdateDenialRequest { idempotency_key: "b-1".into(), ..update.clone() }).await;
        assert_eq!(other.unwrap_err().code(), Code::NotFound);

        // The same 835 again posts nothing new; a later payment of D1 resolves its denial.
        ingest(&mut a, "acme-again", acme_835()).await?;
        ingest(&mut a, "d1-paid", d1_paid_835()).await?;
        h.post_all().await?;
        let after = list(&mut a, pb::ListDenialsRequest::default()).await?;
        assert_eq!(after.denials.len(), 4);
        let d1 = by_pcn(&after.denials, "PCN-D1");
        assert_eq!(d1.status, pb::DenialStatus::Resolved as i32);
        assert!(d1.note.starts_with("paid by claim payment"), "{}", d1.note);
        assert_eq!(by_pcn(&after.denials, "PCN-D2").status, pb::DenialStatus::InProgress as i32);
        Ok(())
    }
}
