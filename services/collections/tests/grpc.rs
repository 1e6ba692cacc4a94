//! The collections service through its generated gRPC client against a real server on port 0
//! (runtime bootstrap: auth with two tenants, health, reflection), on SQLite and, when
//! `MEDBILL_TEST_PG_URL` is set, on PostgreSQL.

use std::sync::Arc;

use medbill_collections::{
    CollectionsService, CollectionsStore, EntryKind, LedgerAccount, NewJournalEntry, Posting,
    open_store,
};
use medbill_domain::{AccountId, IdempotencyKey, Money, TenantId};
use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient;
use medbill_runtime::client::TracedChannel;
use medbill_storage::Database;
use medbill_testkit::{Caller, TENANT_A, TestServer};
use tonic::Code;

type Client = CollectionsServiceClient<TracedChannel>;

async fn serve(db: Database) -> anyhow::Result<(TestServer, Arc<dyn CollectionsStore>)> {
    let store = open_store(db).await?;
    let routes = tonic::service::Routes::new(CollectionsService::new(store.clone()).into_server());
    Ok((TestServer::start(routes).await, store))
}

fn client(server: &TestServer, caller: Caller) -> Client {
    CollectionsServiceClient::new(server.channel(caller))
}

fn open_request(key: &str, patient_ref: &str) -> pb::OpenAccountRequest {
    pb::OpenAccountRequest {
        idempotency_key: key.to_owned(),
        patient_ref: patient_ref.to_owned(),
        guarantor_ref: String::new(),
    }
}

async fn open(c: &mut Client, req: pb::OpenAccountRequest) -> anyhow::Result<pb::Account> {
    c.open_account(req)
        .await?
        .into_inner()
        .account
        .ok_or_else(|| anyhow::anyhow!("response without account"))
}

async fn list(
    c: &mut Client,
    req: pb::ListAccountsRequest,
) -> Result<pb::ListAccountsResponse, tonic::Status> {
    Ok(c.list_accounts(req).await?.into_inner())
}

async fn list_all(c: &mut Client) -> anyhow::Result<Vec<pb::Account>> {
    Ok(list(
        c,
        pb::ListAccountsRequest {
            page_size: 500,
            ..Default::default()
        },
    )
    .await?
    .accounts)
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
    namespace = "collections";

    async fn opens_gets_and_lists(db: Database) -> anyhow::Result<()> {
        let (server, _) = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let req = pb::OpenAccountRequest { guarantor_ref: "guar-1".into(), ..open_request("k-1", "pat-1") };
        let opened = open(&mut a, req).await?;
        assert_eq!(opened.id.len(), 36);
        assert_eq!(opened.patient_ref, "pat-1");
        assert_eq!(opened.guarantor_ref, "guar-1");
        assert_eq!(opened.status, pb::AccountStatus::Open as i32);
        assert_eq!(opened.balance, "0.00");
        assert!(opened.created_at.is_some());

        let got = a.get_account(pb::GetAccountRequest { id: opened.id.clone(), include_aging: false }).await?.into_inner();
        assert_eq!(got.account.as_ref(), Some(&opened));
        assert_eq!(list_all(&mut a).await?, vec![opened]);
        Ok(())
    }

    async fn balance_comes_from_the_ledger(db: Database) -> anyhow::Result<()> {
        let (server, store) = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let opened = open(&mut a, open_request("k-1", "pat-1")).await?;
        // The posting RPCs arrive later; post through the store the service reads from.
        let tenant = TenantId::parse(TENANT_A)?;
        let account_id = AccountId::parse(&opened.id)?;
        let legs = |debit: LedgerAccount, credit: LedgerAccount, amount: &str| -> anyhow::Result<Vec<Posting>> {
            let amount = Money::parse(amount)?;
            Ok(vec![Posting::new(debit, amount), Posting::new(credit, -amount)])
        };
        let responsibility = NewJournalEntry {
            account_id,
            kind: EntryKind::PatientResponsibility,
            memo: "PR".into(),
            source_ref: None,
            payer_type: None,
            postings: legs(LedgerAccount::PatientAr, LedgerAccount::InsuranceAr, "125.40")?,
        };
        let mut tx = store.database().begin().await?;
        store.post_journal_entry(&mut tx, &tenant, &IdempotencyKey::parse("e-1")?, &responsibility).await?;
        let payment = NewJournalEntry {
            kind: EntryKind::Payment,
            memo: "copay".into(),
            postings: legs(LedgerAccount::Cash, LedgerAccount::PatientAr, "40.05")?,
            ..responsibility
        };
        store.post_journal_entry(&mut tx, &tenant, &IdempotencyKey::parse("e-2")?, &payment).await?;
        tx.commit().await?;

        let got = a.get_account(pb::GetAccountRequest { id: opened.id.clone(), include_aging: false }).await?.into_inner();
        assert_eq!(got.account.map(|acc| acc.balance).as_deref(), Some("85.35"));
        // Aging is optional detail computed from the same ledger: all of it is new.
        let aged = a.get_account(pb::GetAccountRequest { id: opened.id.clone(), include_aging: true }).await?.into_inner();
        let aging = aged.account.and_then(|acc| acc.aging).expect("aging was asked for");
        assert_eq!((aging.days_0_30.as_str(), aging.total.as_str()), ("85.35", "85.35"));
        assert_eq!(aging.days_over_120, "0.00");
        assert_eq!(list_all(&mut a).await?.first().map(|acc| acc.balance.as_str()), Some("85.35"));
        Ok(())
    }

    async fn pages_and_filters_and_rejects_foreign_tokens(db: Database) -> anyhow::Result<()> {
        let (server, _) = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let mut ids = Vec::new();
        for i in 0..5 {
            let patient = if i % 2 == 0 { "pat-1" } else { "pat-2" };
            ids.push(open(&mut a, open_request(&format!("k-{i}"), patient)).await?.id);
        }
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = list(&mut a, pb::ListAccountsRequest { page_size: 2, page_token: token.clone(), ..Default::default() }).await?;
            assert!(page.accounts.len() <= 2);
            seen.extend(page.accounts.into_iter().map(|acc| acc.id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(seen, ids);

        let pat1 = pb::ListAccountsRequest { patient_ref: "pat-1".into(), page_size: 2, ..Default::default() };
        let first = list(&mut a, pat1.clone()).await?;
        assert_eq!(first.accounts.iter().map(|acc| acc.id.clone()).collect::<Vec<_>>(), vec![ids[0].clone(), ids[2].clone()]);
        let second = list(&mut a, pb::ListAccountsRequest { page_token: first.next_page_token.clone(), ..pat1.clone() }).await?;
        assert_eq!(second.accounts.iter().map(|acc| acc.id.clone()).collect::<Vec<_>>(), vec![ids[4].clone()]);
        assert!(second.next_page_token.is_empty());

        let open_only = pb::ListAccountsRequest { status: pb::AccountStatus::Open as i32, ..Default::default() };
        assert_eq!(list(&mut a, open_only).await?.accounts.len(), 5);
        let closed = pb::ListAccountsRequest { status: pb::AccountStatus::Closed as i32, ..Default::default() };
        assert!(list(&mut a, closed).await?.accounts.is_empty());
        let bad_status = pb::ListAccountsRequest { status: 99, ..Default::default() };
        assert_invalid(&list(&mut a, bad_status).await.expect_err("unknown status"), "status");

        let other_query = pb::ListAccountsRequest { patient_ref: "pat-2".into(), page_token: first.next_page_token.clone(), ..Default::default() };
        assert_invalid(&list(&mut a, other_query).await.expect_err("foreign token"), "page_token");
        let mut b = client(&server, Caller::TenantB);
        let as_b = pb::ListAccountsRequest { page_token: first.next_page_token.clone(), ..pat1 };
        assert_invalid(&list(&mut b, as_b).await.expect_err("other tenant's token"), "page_token");
        Ok(())
    }

    async fn retries_are_idempotent_and_key_reuse_is_refused(db: Database) -> anyhow::Result<()> {
        let (server, _) = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let first = open(&mut a, open_request("k-1", "pat-1")).await?;
        let retry = open(&mut a, open_request("k-1", "pat-1")).await?;
        assert_eq!(retry, first);
        assert_eq!(list_all(&mut a).await?.len(), 1);

        let status = a.open_account(open_request("k-1", "pat-2")).await.expect_err("key reuse");
        assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
        assert!(status.message().contains("\"k-1\""), "names the key: {}", status.message());
        assert_eq!(list_all(&mut a).await?.len(), 1);
        Ok(())
    }

    async fn tenants_cannot_see_each_other(db: Database) -> anyhow::Result<()> {
        let (server, _) = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let mut b = client(&server, Caller::TenantB);
        let opened = open(&mut a, open_request("k-1", "pat-1")).await?;
        let status = b
            .get_account(pb::GetAccountRequest { id: opened.id.clone(), include_aging: false })
            .await
            .expect_err("hidden");
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert!(list_all(&mut b).await?.is_empty());
        let theirs = open(&mut b, open_request("k-1", "pat-1")).await?;
        assert_ne!(theirs.id, opened.id);
        assert_eq!(list_all(&mut a).await?.len(), 1);
        Ok(())
    }

    async fn bad_input_is_named_and_writes_nothing(db: Database) -> anyhow::Result<()> {
        let (server, _) = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let cases = [
            ("idempotency_key", open_request("", "pat-1")),
            ("idempotency_key", open_request("k\u{e9}", "pat-1")),
            ("patient_ref", open_request("k-1", "")),
            ("patient_ref", open_request("k-1", &"p".repeat(129))),
            ("guarantor_ref", pb::OpenAccountRequest { guarantor_ref: " ".into(), ..open_request("k-1", "pat-1") }),
        ];
        for (field, req) in cases {
            assert_invalid(&a.open_account(req).await.expect_err(field), field);
        }
        assert!(list_all(&mut a).await?.is_empty(), "nothing written");
        let status = a.get_account(pb::GetAccountRequest { id: "nope".into(), include_aging: false }).await.expect_err("bad id");
        assert_invalid(&status, "id");
        Ok(())
    }

    async fn callers_without_a_valid_token_are_unauthenticated(db: Database) -> anyhow::Result<()> {
        let (server, _) = serve(db).await?;
        for caller in [Caller::Anonymous, Caller::UnknownToken] {
            let mut c = client(&server, caller);
            let status = c.open_account(open_request("k-1", "pat-1")).await.expect_err("no auth");
            assert_eq!(status.code(), Code::Unauthenticated, "{caller:?}: {status:?}");
            let status = c.list_accounts(pb::ListAccountsRequest::default()).await.expect_err("no auth");
            assert_eq!(status.code(), Code::Unauthenticated, "{caller:?}: {status:?}");
        }
        let mut a = client(&server, Caller::TenantA);
        assert!(list_all(&mut a).await?.is_empty());
        Ok(())
    }
}
