//! Patient statements through the generated gRPC client, on SQLite and, when
//! `MEDBILL_TEST_PG_URL` is set, on PostgreSQL: a statement cycle (minimum balance, idempotent
//! per cycle, no future dates), the statement's content, its PDF parsed back, the print-vendor
//! file, and the next statement carrying the previous balance.

use chrono::NaiveDate;
use medbill_collections::{Clock, CollectionsConfig, CollectionsService, open_store};
use medbill_domain::ClaimId;
use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient;
use medbill_proto::common::v1::{AdjustmentGroup, CasAdjustment};
use medbill_runtime::client::TracedChannel;
use medbill_storage::Database;
use medbill_testkit::{Caller, TestServer};
use tonic::Code;

type Client = CollectionsServiceClient<TracedChannel>;

/// Today and `n` days on: entries are posted at the real time, so the test clock starts today.
fn today_plus(n: u64) -> NaiveDate {
    chrono::Utc::now().date_naive() + chrono::Days::new(n)
}

async fn serve(db: Database, clock: Clock) -> anyhow::Result<TestServer> {
    serve_with(db, clock, CollectionsConfig::default()).await
}

async fn serve_with(
    db: Database,
    clock: Clock,
    config: CollectionsConfig,
) -> anyhow::Result<TestServer> {
    let store = open_store(db).await?;
    let service = CollectionsService::with_config(store, config).with_clock(clock);
    Ok(TestServer::start(tonic::service::Routes::new(service.into_server())).await)
}

/// A statement without what differs between two accounts' statements of the same shape.
fn shape(s: &pb::Statement) -> pb::Statement {
    pb::Statement {
        id: String::new(),
        account_id: String::new(),
        patient_ref: String::new(),
        created_at: None,
        lines: s
            .lines
            .iter()
            .map(|l| pb::StatementLine {
                claim_id: String::new(),
                ..l.clone()
            })
            .collect(),
        ..s.clone()
    }
}

fn pr_line(reason: &str, amount: &str) -> CasAdjustment {
    CasAdjustment {
        group: AdjustmentGroup::Pr as i32,
        reason: reason.into(),
        amount: amount.into(),
        ..Default::default()
    }
}

fn pr(key: &str, patient: &str, amount: &str) -> pb::PostPatientResponsibilityRequest {
    pb::PostPatientResponsibilityRequest {
        idempotency_key: key.into(),
        patient_ref: patient.into(),
        claim_id: ClaimId::new().to_string(),
        amount: amount.into(),
        service_date: "2026-11-20".into(),
        ..Default::default()
    }
}

fn cycle(key: &str, date: &str) -> pb::GenerateStatementsRequest {
    pb::GenerateStatementsRequest {
        idempotency_key: key.into(),
        statement_date: date.into(),
        ..Default::default()
    }
}

async fn generate(
    c: &mut Client,
    req: pb::GenerateStatementsRequest,
) -> anyhow::Result<Vec<pb::Statement>> {
    Ok(c.generate_statements(req).await?.into_inner().statements)
}

/// The text of every page of a PDF, as a PDF reader extracts it.
fn pdf_text(bytes: &[u8]) -> anyhow::Result<(usize, String)> {
    let doc = lopdf::Document::load_mem(bytes)?;
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    Ok((pages.len(), doc.extract_text(&pages)?))
}

medbill_storage::conformance_tests! {
    namespace = "collections";

    async fn a_statement_cycle_bills_what_is_owed_once(db: Database) -> anyhow::Result<()> {
        let clock = Clock::fixed(today_plus(0));
        let (today, due) = (today_plus(0).to_string(), today_plus(30).to_string());
        let server = serve(db, clock.clone()).await?;
        let mut c = CollectionsServiceClient::new(server.channel(Caller::TenantA));

        // 500.00 billed, 300.00 paid by the plan, 120.00 left to the patient (80.00 deductible,
        // 40.00 copay): 80.00 is the insurer's adjustment. A 20.00 copay paid at the desk.
        let mut first = pr("pr-1", "pat-1", "120.00");
        first.adjustments = vec![pr_line("1", "80.00"), pr_line("3", "40.00")];
        first.total_charge = "500.00".into();
        first.payer_paid = "300.00".into();
        first.patient_control_number = "PCN-77".into();
        let account = c.post_patient_responsibility(first).await?.into_inner().account.unwrap_or_default();
        c.record_payment(pb::RecordPaymentRequest {
            idempotency_key: "pay-1".into(),
            account_id: account.id.clone(),
            amount: "20.00".into(),
            method: pb::PaymentMethod::Card as i32,
            ..Default::default()
        })
        .await?;
        // A second patient owes 3.00, under the 5.00 minimum of this cycle.
        c.post_patient_responsibility(pr("pr-small", "pat-2", "3.00")).await?;

        let ahead = c.generate_statements(cycle("s-ahead", &today_plus(1).to_string())).await.err();
        let ahead = ahead.ok_or_else(|| anyhow::anyhow!("a future statement date was accepted"))?;
        assert_eq!(ahead.code(), Code::InvalidArgument);
        assert!(ahead.message().contains("statement_date"), "{ahead:?}");

        let mut req = cycle("s-1", "");
        req.minimum_balance = "5.00".into();
        let statements = generate(&mut c, req.clone()).await?;
        assert_eq!(statements.len(), 1, "only the account owing at least 5.00");
        let s = &statements[0];
        assert_eq!(s.account_id, account.id);
        assert_eq!(s.statement_date, today);
        assert_eq!(s.due_date, due, "30 days by default");
        assert_eq!((s.new_charges.as_str(), s.payments.as_str()), ("120.00", "-20.00"));
        assert_eq!((s.amount_due.as_str(), s.minimum_due.as_str()), ("100.00", "100.00"));
        assert!(s.first_post_discharge);
        assert_eq!(s.sequence, 1);
        assert!(s.financial_assistance_summary.contains("Financial assistance is available"));
        let service = &s.lines[0];
        assert_eq!(service.date, "2026-11-20");
        assert_eq!(
            (service.charges.as_str(), service.insurance_paid.as_str(), service.insurance_adjustments.as_str()),
            ("500.00", "300.00", "80.00")
        );
        assert!(service.description.contains("deductible 80.00, copay 40.00"), "{service:?}");
        assert_eq!(s.lines[1].amount, "-20.00");
        assert_eq!(s.aging.as_ref().map(|a| a.total.as_str()), Some("100.00"));

        // The same key answers the same statements; another key for the same cycle adds none.
        assert_eq!(generate(&mut c, req).await?, statements);
        let again = generate(&mut c, cycle("s-1-again", &today)).await?;
        assert!(again.iter().all(|s| s.account_id != account.id), "stated once per cycle");
        assert_eq!(again.len(), 1, "the small balance, now that the minimum is 0.01");
        let got = c.get_account(pb::GetAccountRequest { id: account.id.clone(), include_aging: false })
            .await?.into_inner().account.unwrap_or_default();
        assert_eq!(got.first_statement_date, today);
        assert_eq!(got.last_statement_date, today);

        // The PDF parses and shows the amount due; the print file has the same figures.
        let fetched = c.get_statement(pb::GetStatementRequest { id: s.id.clone(), include_pdf: true })
            .await?.into_inner();
        assert_eq!(fetched.statement.as_ref(), Some(s));
        assert_eq!(fetched.pdf_pages, 1);
        let (pages, text) = pdf_text(&fetched.pdf)?;
        assert_eq!(pages, 1);
        assert!(text.contains("Amount due: $100.00"), "{text}");
        assert!(text.contains(&format!("Please pay by: {due}")), "{text}");
        assert!(text.contains("Financial assistance"), "{text}");
        if let Ok(path) = std::env::var("MEDBILL_STATEMENT_PDF_OUT") {
            std::fs::write(path, &fetched.pdf)?;
        }
        let file = c.get_statement_print_file(pb::GetStatementPrintFileRequest {
            statement_date: today.clone(),
            ..Default::default()
        }).await?.into_inner();
        assert_eq!(file.statement_count, 2, "both statements of the cycle");
        let text = String::from_utf8(file.content)?;
        let records: Vec<serde_json::Value> =
            text.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
        let record = records
            .iter()
            .find(|r| r["statement_id"] == s.id.as_str())
            .ok_or_else(|| anyhow::anyhow!("statement missing from the print file"))?;
        assert_eq!(record["layout"], "medbill.statement.v1");
        assert_eq!(record["amount_due"], "100.00");
        assert_eq!(record["patient_ref"], "pat-1");
        assert_eq!(record["lines"][0]["insurance_paid"], "300.00");

        // Another tenant sees no such statement.
        let mut other = CollectionsServiceClient::new(server.channel(Caller::TenantB));
        let missing = other.get_statement(pb::GetStatementRequest { id: s.id.clone(), include_pdf: false }).await.err();
        assert_eq!(missing.map(|e| e.code()), Some(Code::NotFound));

        // A month later: new charges since the first statement, its balance carried forward.
        clock.set(today_plus(31));
        c.post_patient_responsibility(pr("pr-2", "pat-1", "30.00")).await?;
        let second = generate(&mut c, cycle("s-2", "")).await?;
        let second: Vec<_> = second.into_iter().filter(|s| s.account_id == account.id).collect();
        assert_eq!(second.len(), 1);
        let s2 = &second[0];
        assert_eq!((s2.sequence, s2.first_post_discharge), (2, false));
        assert_eq!(s2.previous_balance, "100.00");
        assert_eq!(s2.lines.len(), 1);
        assert_eq!(s2.amount_due, "130.00");
        Ok(())
    }

    async fn a_cycle_in_batches_retried_after_an_interruption_states_each_account_once(db: Database) -> anyhow::Result<()> {
        let mut config = CollectionsConfig::default();
        config.statements.batch_accounts = 2;
        let server = serve_with(db, Clock::fixed(today_plus(0)), config).await?;
        let mut c = CollectionsServiceClient::new(server.channel(Caller::TenantA));
        let today = today_plus(0).to_string();
        let mut accounts = Vec::new();
        for i in 0..8 {
            let mut req = pr(&format!("pr-{i}"), &format!("pat-{i}"), "40.00");
            req.adjustments = vec![pr_line("2", "40.00")];
            let account = c.post_patient_responsibility(req).await?.into_inner().account.unwrap_or_default();
            accounts.push(account.id);
        }
        // One account paid in full (and more): a credit, no statement.
        c.record_payment(pb::RecordPaymentRequest {
            idempotency_key: "pay-credit".into(),
            account_id: accounts[7].clone(),
            amount: "50.00".into(),
            method: pb::PaymentMethod::Card as i32,
            ..Default::default()
        })
        .await?;
        let credit = accounts[7].clone();
        accounts.sort();

        // What an interrupted cycle leaves: the batches it committed (here: three accounts
        // stated on the date), its key not recorded.
        let mut partial = cycle("cycle-interrupted-part", &today);
        partial.account_ids = accounts[..3].to_vec();
        let before = generate(&mut c, partial).await?;
        assert_eq!(before.len(), 3);

        // The retry with the cycle's key states the rest, once each, across batches of two.
        let answer = c.generate_statements(cycle("cycle", &today)).await?.into_inner();
        assert_eq!(answer.statement_count, 4, "8 accounts, 3 already stated, 1 in credit");
        assert_eq!(answer.statements.len(), 4);
        assert_eq!(answer.total_due, "160.00");
        let stated: std::collections::BTreeSet<_> =
            before.iter().chain(&answer.statements).map(|s| s.account_id.clone()).collect();
        assert_eq!(stated.len(), 7, "each owing account once");
        assert!(!stated.contains(&credit), "the account in credit gets none");
        // A statement built in a batch says what one built alone says.
        for s in &answer.statements {
            assert_eq!(shape(s), shape(&before[0]), "batch and single-account statements agree");
            assert_eq!(s.amount_due, "40.00");
            assert!(s.lines[0].description.contains("coinsurance 40.00"), "{:?}", s.lines);
        }
        let file = c.get_statement_print_file(pb::GetStatementPrintFileRequest {
            statement_date: today.clone(),
            page_size: 50,
            ..Default::default()
        }).await?.into_inner();
        assert_eq!(file.statement_count, 7, "seven statements of the date, no duplicate");
        for id in &stated {
            let got = c.get_account(pb::GetAccountRequest { id: id.clone(), include_aging: false })
                .await?.into_inner().account.unwrap_or_default();
            assert_eq!((got.first_statement_date.as_str(), got.last_statement_date.as_str()), (today.as_str(), today.as_str()));
        }

        // The same key replays the answer; another key for the cycle, asking for the summary
        // only, finds nothing left to state.
        let replay = c.generate_statements(cycle("cycle", &today)).await?.into_inner();
        assert_eq!(replay, answer);
        let mut summary = cycle("cycle-again", &today);
        summary.omit_statements = true;
        let again = c.generate_statements(summary).await?.into_inner();
        assert_eq!((again.statement_count, again.statements.len(), again.total_due.as_str()), (0, 0, "0.00"));
        Ok(())
    }

    async fn a_long_statement_runs_onto_more_pages(db: Database) -> anyhow::Result<()> {
        let server = serve(db, Clock::fixed(today_plus(0))).await?;
        let mut c = CollectionsServiceClient::new(server.channel(Caller::TenantA));
        for i in 0..70 {
            c.post_patient_responsibility(pr(&format!("pr-{i}"), "pat-9", "1.25")).await?;
        }
        let statements = generate(&mut c, cycle("s", "")).await?;
        let s = statements.first().ok_or_else(|| anyhow::anyhow!("no statement"))?;
        assert_eq!(s.amount_due, "87.50");
        let fetched = c.get_statement(pb::GetStatementRequest { id: s.id.clone(), include_pdf: true })
            .await?.into_inner();
        let (pages, text) = pdf_text(&fetched.pdf)?;
        assert!(pages >= 2, "70 lines do not fit one page");
        assert_eq!(pages, usize::try_from(fetched.pdf_pages)?);
        assert!(text.contains("Amount due: $87.50"), "{text}");
        Ok(())
    }
}
