//! Conformance suite of the collections store: every test runs on SQLite and, when
//! `MEDBILL_TEST_PG_URL` is set, on PostgreSQL, each on a fresh database.

use medbill_collections::store::StoreError;
use medbill_collections::{
    Account, AccountFilter, AccountStatus, CollectionsStore, EntryKind, JournalEntry,
    LedgerAccount, LedgerError, NewAccount, NewJournalEntry, Posting, open_store,
};
use medbill_domain::{AccountId, IdempotencyKey, Money, TenantId};
use medbill_storage::{Database, with_tx};

fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).expect("valid tenant id")
}

fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::parse(s).expect("valid idempotency key")
}

/// Store writes in their own committed transaction, as an RPC runs them (its key aside).
trait Committed {
    async fn open(&self, t: &TenantId, account: &NewAccount) -> Result<Account, StoreError>;
    async fn post(
        &self,
        t: &TenantId,
        key: &IdempotencyKey,
        entry: &NewJournalEntry,
    ) -> Result<JournalEntry, StoreError>;
}

impl Committed for dyn CollectionsStore {
    async fn open(&self, t: &TenantId, account: &NewAccount) -> Result<Account, StoreError> {
        let mut tx = self.database().begin().await?;
        let opened = self.open_account(&mut tx, t, account).await?;
        tx.commit().await?;
        Ok(opened)
    }

    async fn post(
        &self,
        t: &TenantId,
        key: &IdempotencyKey,
        entry: &NewJournalEntry,
    ) -> Result<JournalEntry, StoreError> {
        let mut tx = self.database().begin().await?;
        let posted = self.post_journal_entry(&mut tx, t, key, entry).await?;
        tx.commit().await?;
        Ok(posted)
    }
}

fn money(s: &str) -> Money {
    Money::parse(s).expect("valid amount")
}

fn account(patient_ref: &str) -> NewAccount {
    NewAccount {
        patient_ref: patient_ref.to_owned(),
        guarantor_ref: None,
    }
}

fn entry(
    account_id: AccountId,
    kind: EntryKind,
    legs: &[(LedgerAccount, &str)],
) -> NewJournalEntry {
    NewJournalEntry {
        account_id,
        kind,
        memo: format!("{kind} test"),
        source_ref: Some("claim-1".to_owned()),
        payer_type: None,
        postings: legs
            .iter()
            .map(|(ledger_account, amount)| Posting::new(*ledger_account, money(amount)))
            .collect(),
    }
}

/// Patient responsibility of `amount` moved from the payer's receivable to the patient's.
fn patient_responsibility(account_id: AccountId, amount: &str) -> NewJournalEntry {
    let credit = format!("-{amount}");
    entry(
        account_id,
        EntryKind::PatientResponsibility,
        &[
            (LedgerAccount::PatientAr, amount),
            (LedgerAccount::InsuranceAr, &credit),
        ],
    )
}

/// A patient payment of `amount`.
fn payment(account_id: AccountId, amount: &str) -> NewJournalEntry {
    let credit = format!("-{amount}");
    entry(
        account_id,
        EntryKind::Payment,
        &[
            (LedgerAccount::Cash, amount),
            (LedgerAccount::PatientAr, &credit),
        ],
    )
}

async fn balance(
    store: &dyn CollectionsStore,
    t: &TenantId,
    id: &AccountId,
) -> anyhow::Result<Money> {
    Ok(store
        .get_account(t, id)
        .await?
        .expect("account exists")
        .balance)
}

async fn count_accounts(store: &dyn CollectionsStore, t: &TenantId) -> anyhow::Result<usize> {
    Ok(store
        .list_accounts(t, &AccountFilter::default(), None, 500)
        .await?
        .len())
}

medbill_storage::conformance_tests! {
    namespace = "collections";

    async fn opens_reads_and_lists(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let t = tenant("clinic-a");
        let new = NewAccount { patient_ref: "pat-1".into(), guarantor_ref: Some("guar-9".into()) };
        let opened = store.open(&t, &new).await?;
        assert_eq!(opened.patient_ref, "pat-1");
        assert_eq!(opened.guarantor_ref.as_deref(), Some("guar-9"));
        assert_eq!(opened.status, AccountStatus::Open);
        assert_eq!(opened.balance, Money::ZERO);
        assert_eq!(opened.tenant_id, t);

        let read = store.get_account(&t, &opened.id).await?.expect("account is stored");
        assert_eq!(read, opened);
        assert_eq!(store.list_accounts(&t, &AccountFilter::default(), None, 50).await?, vec![opened]);
        assert!(store.get_account(&t, &AccountId::new()).await?.is_none());
        Ok(())
    }

    async fn lists_with_filters_and_keyset_paging(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let t = tenant("clinic-a");
        let mut ids = Vec::new();
        for patient in ["pat-1", "pat-2", "pat-1", "pat-3", "pat-1"].into_iter() {
            ids.push(store.open(&t, &account(patient)).await?.id);
        }
        let all = AccountFilter::default();
        let mut seen = Vec::new();
        let mut after: Option<AccountId> = None;
        loop {
            let page = store.list_accounts(&t, &all, after.as_ref(), 2).await?;
            assert!(page.len() <= 2);
            if page.is_empty() {
                break;
            }
            after = page.last().map(|a| a.id);
            seen.extend(page.into_iter().map(|a| a.id));
        }
        assert_eq!(seen, ids);

        let pat1 = AccountFilter { status: None, patient_ref: Some("pat-1".into()) };
        let got: Vec<_> = store.list_accounts(&t, &pat1, None, 50).await?.into_iter().map(|a| a.id).collect();
        assert_eq!(got, vec![ids[0], ids[2], ids[4]]);
        let page2: Vec<_> = store.list_accounts(&t, &pat1, Some(&ids[0]), 1).await?.into_iter().map(|a| a.id).collect();
        assert_eq!(page2, vec![ids[2]]);

        let open = AccountFilter { status: Some(AccountStatus::Open), patient_ref: None };
        assert_eq!(store.list_accounts(&t, &open, None, 50).await?.len(), 5);
        let closed = AccountFilter { status: Some(AccountStatus::Closed), patient_ref: None };
        assert!(store.list_accounts(&t, &closed, None, 50).await?.is_empty());
        Ok(())
    }

    async fn tenants_are_isolated(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let a = tenant("clinic-a");
        let b = tenant("clinic-b");
        let opened = store.open(&a, &account("pat-1")).await?;
        store.post(&a, &key("e-1"), &patient_responsibility(opened.id, "80.00")).await?;

        assert!(store.get_account(&b, &opened.id).await?.is_none());
        assert_eq!(count_accounts(store.as_ref(), &b).await?, 0);
        assert!(store.list_journal_entries(&b, &opened.id).await?.is_empty());

        // Tenant B cannot post to tenant A's account.
        let err = store
            .post(&b, &key("e-2"), &payment(opened.id, "80.00"))
            .await
            .expect_err("foreign account");
        assert!(matches!(err, StoreError::AccountNotFound(id) if id == opened.id), "{err}");
        assert_eq!(balance(store.as_ref(), &a, &opened.id).await?, money("80.00"));

        // The same key in another tenant is another request.
        let other = store.open(&b, &account("pat-1")).await?;
        assert_ne!(other.id, opened.id);
        Ok(())
    }

    async fn balance_is_the_sum_of_patient_ar_postings(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let t = tenant("clinic-a");
        let acct = store.open(&t, &account("pat-1")).await?;
        let other = store.open(&t, &account("pat-2")).await?;

        store.post(&t, &key("e-1"), &patient_responsibility(acct.id, "125.40")).await?;
        assert_eq!(balance(store.as_ref(), &t, &acct.id).await?, money("125.40"));
        store.post(&t, &key("e-2"), &payment(acct.id, "40.05")).await?;
        assert_eq!(balance(store.as_ref(), &t, &acct.id).await?, money("85.35"));
        // A write-off of the rest, split over two expense accounts (three legs).
        let writeoff = entry(
            acct.id,
            EntryKind::WriteOff,
            &[
                (LedgerAccount::BadDebt, "80.00"),
                (LedgerAccount::ContractualWriteoff, "5.35"),
                (LedgerAccount::PatientAr, "-85.35"),
            ],
        );
        store.post(&t, &key("e-3"), &writeoff).await?;
        assert_eq!(balance(store.as_ref(), &t, &acct.id).await?, Money::ZERO);
        // An overpayment leaves a credit balance.
        store.post(&t, &key("e-4"), &payment(acct.id, "10.00")).await?;
        assert_eq!(balance(store.as_ref(), &t, &acct.id).await?, money("-10.00"));

        // Another account's postings do not leak into this balance; listing agrees with get.
        store.post(&t, &key("e-5"), &patient_responsibility(other.id, "7.00")).await?;
        let listed = store.list_accounts(&t, &AccountFilter::default(), None, 50).await?;
        let balances: Vec<_> = listed.iter().map(|a| (a.id, a.balance)).collect();
        assert_eq!(balances, vec![(acct.id, money("-10.00")), (other.id, money("7.00"))]);

        let entries = store.list_journal_entries(&t, &acct.id).await?;
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[2].kind, EntryKind::WriteOff);
        assert_eq!(entries[2].postings, writeoff.postings, "postings round-trip in order");
        assert_eq!(entries[0].idempotency_key.as_deref(), Some("e-1"));
        for e in &entries {
            let sum: Money = e.postings.iter().map(|p| p.amount).sum();
            assert_eq!(sum, Money::ZERO);
        }
        Ok(())
    }

    async fn an_unbalanced_entry_is_rejected_and_writes_nothing(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let t = tenant("clinic-a");
        let acct = store.open(&t, &account("pat-1")).await?;
        store.post(&t, &key("e-1"), &patient_responsibility(acct.id, "50.00")).await?;
        let before = store.get_account(&t, &acct.id).await?;

        let unbalanced =
            entry(acct.id, EntryKind::Payment, &[(LedgerAccount::Cash, "20.00"), (LedgerAccount::PatientAr, "-19.99")]);
        let err = store.post(&t, &key("e-2"), &unbalanced).await.expect_err("unbalanced");
        assert!(
            matches!(&err, StoreError::Ledger(LedgerError::Unbalanced { sum }) if *sum == money("0.01")),
            "{err}"
        );
        let one_leg = entry(acct.id, EntryKind::Payment, &[(LedgerAccount::Cash, "20.00")]);
        let err = store.post(&t, &key("e-2"), &one_leg).await.expect_err("one leg");
        assert!(matches!(err, StoreError::Ledger(LedgerError::TooFewPostings { count: 1 })), "{err}");

        assert_eq!(store.list_journal_entries(&t, &acct.id).await?.len(), 1, "no entry written");
        assert_eq!(store.get_account(&t, &acct.id).await?, before, "balance and account unchanged");
        // The key was not consumed by the failed attempts.
        store.post(&t, &key("e-2"), &payment(acct.id, "20.00")).await?;
        assert_eq!(balance(store.as_ref(), &t, &acct.id).await?, money("30.00"));
        Ok(())
    }

    async fn the_database_itself_refuses_unbalanced_or_edited_entries(db: Database) -> anyhow::Result<()> {
        let store = open_store(db.clone()).await?;
        let t = tenant("clinic-a");
        let acct = store.open(&t, &account("pat-1")).await?;
        let posted = store.post(&t, &key("e-1"), &patient_responsibility(acct.id, "50.00")).await?;
        let account_id = acct.id.to_string();
        let posted_id = posted.id.to_string();

        // Bypassing the store: unbalanced postings followed by their entry row.
        let mut tx = db.begin().await?;
        let result: Result<(), sqlx::Error> = with_tx!(tx, |conn| {
            async {
                for (line, ledger, cents) in [(1i64, "CASH", 1000i64), (2, "PATIENT_AR", -999)] {
                    sqlx::query("INSERT INTO postings (tenant_id, entry_id, line_no, ledger_account, amount_cents) VALUES ('clinic-a', 'raw-1', $1, $2, $3)")
                        .bind(line).bind(ledger).bind(cents).execute(&mut *conn).await?;
                }
                sqlx::query("INSERT INTO journal_entries (tenant_id, id, account_id, kind, memo, posted_at) VALUES ('clinic-a', 'raw-1', $1, 'PAYMENT', '', 0)")
                    .bind(&account_id).execute(&mut *conn).await?;
                Ok(())
            }
            .await
        });
        let err = result.expect_err("the trigger refuses an unbalanced entry");
        assert!(err.to_string().contains("unbalanced"), "{err}");
        tx.rollback().await?;

        // Balanced postings that name another account than their entry's.
        let mut tx = db.begin().await?;
        let result: Result<(), sqlx::Error> = with_tx!(tx, |conn| {
            async {
                for (line, ledger, cents) in [(1i64, "CASH", 1000i64), (2, "PATIENT_AR", -1000)] {
                    sqlx::query("INSERT INTO postings (tenant_id, entry_id, line_no, ledger_account, amount_cents, account_id, posted_at) VALUES ('clinic-a', 'raw-2', $1, $2, $3, 'another', 0)")
                        .bind(line).bind(ledger).bind(cents).execute(&mut *conn).await?;
                }
                sqlx::query("INSERT INTO journal_entries (tenant_id, id, account_id, kind, memo, posted_at) VALUES ('clinic-a', 'raw-2', $1, 'PAYMENT', '', 0)")
                    .bind(&account_id).execute(&mut *conn).await?;
                Ok(())
            }
            .await
        });
        let err = result.expect_err("the trigger refuses postings of another account");
        assert!(err.to_string().contains("another account"), "{err}");
        tx.rollback().await?;

        // Posted history cannot be edited, extended or deleted.
        let attempts: [&'static str; 4] = [
            "UPDATE postings SET amount_cents = 1 WHERE tenant_id = 'clinic-a' AND entry_id = $1",
            "DELETE FROM postings WHERE tenant_id = 'clinic-a' AND entry_id = $1",
            "INSERT INTO postings (tenant_id, entry_id, line_no, ledger_account, amount_cents) VALUES ('clinic-a', $1, 3, 'CASH', 5)",
            "DELETE FROM journal_entries WHERE tenant_id = 'clinic-a' AND id = $1",
        ];
        for sql in attempts {
            let mut tx = db.begin().await?;
            let result: Result<u64, sqlx::Error> = with_tx!(tx, |conn| {
                sqlx::query(sql).bind(&posted_id).execute(&mut *conn).await.map(|r| r.rows_affected())
            });
            assert!(result.is_err(), "{sql} must fail");
            tx.rollback().await?;
        }
        assert_eq!(store.list_journal_entries(&t, &acct.id).await?, vec![posted]);
        assert_eq!(balance(store.as_ref(), &t, &acct.id).await?, money("50.00"));
        Ok(())
    }

    async fn a_key_posts_one_entry(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let t = tenant("clinic-a");
        let acct = store.open(&t, &account("pat-1")).await?;
        store.post(&t, &key("e-1"), &payment(acct.id, "12.00")).await?;
        let err = store
            .post(&t, &key("e-1"), &payment(acct.id, "12.00"))
            .await
            .expect_err("the key posted already");
        assert!(matches!(&err, StoreError::DuplicateEntryKey(k) if k == "e-1"), "{err}");
        assert_eq!(balance(store.as_ref(), &t, &acct.id).await?, money("-12.00"), "posted once");
        assert_eq!(store.list_journal_entries(&t, &acct.id).await?.len(), 1);
        // Keys are per tenant.
        let b = tenant("clinic-b");
        let theirs = store.open(&b, &account("pat-1")).await?;
        store.post(&b, &key("e-1"), &payment(theirs.id, "1.00")).await?;
        Ok(())
    }

    async fn posting_to_an_unknown_account_leaves_nothing(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let t = tenant("clinic-a");
        let missing = AccountId::new();
        let err = store
            .post(&t, &key("e-1"), &payment(missing, "5.00"))
            .await
            .expect_err("unknown account");
        assert!(matches!(err, StoreError::AccountNotFound(id) if id == missing), "{err}");
        // Nothing was written, so the key is still free.
        let acct = store.open(&t, &account("pat-1")).await?;
        let mut retry = payment(missing, "5.00");
        retry.account_id = acct.id;
        store.post(&t, &key("e-1"), &retry).await?;
        assert_eq!(balance(store.as_ref(), &t, &acct.id).await?, money("-5.00"));
        Ok(())
    }

    async fn entries_posted_together_balance_and_a_bad_one_writes_nothing(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let t = tenant("clinic-a");
        let acct = store.open(&t, &account("pat-1")).await?;
        let other = store.open(&t, &account("pat-2")).await?;
        let (k1, k2, k3, k4) = (key("m-1"), key("m-2"), key("m-3"), key("m-4"));
        let charge = patient_responsibility(acct.id, "90.00");
        let paid = payment(acct.id, "25.00");
        let elsewhere = patient_responsibility(other.id, "12.00");

        // One unbalanced entry among good ones: refused before anything is written.
        let unbalanced =
            entry(acct.id, EntryKind::Payment, &[(LedgerAccount::Cash, "5.00"), (LedgerAccount::PatientAr, "-4.99")]);
        let mut tx = store.database().begin().await?;
        let err = store
            .post_journal_entries(&mut tx, &t, &[(&k1, &charge), (&k4, &unbalanced), (&k2, &paid)])
            .await
            .expect_err("unbalanced");
        assert!(matches!(err, StoreError::Ledger(LedgerError::Unbalanced { .. })), "{err}");
        tx.commit().await?;
        assert!(store.list_journal_entries(&t, &acct.id).await?.is_empty(), "nothing written");

        // An unknown account among good ones is named.
        let stranger = AccountId::new();
        let mut tx = store.database().begin().await?;
        let err = store
            .post_journal_entries(&mut tx, &t, &[(&k1, &charge), (&k4, &payment(stranger, "1.00"))])
            .await
            .expect_err("unknown account");
        assert!(matches!(err, StoreError::AccountNotFound(id) if id == stranger), "{err}");
        tx.rollback().await?;

        let mut tx = store.database().begin().await?;
        let posted = store
            .post_journal_entries(&mut tx, &t, &[(&k1, &charge), (&k2, &paid), (&k3, &elsewhere)])
            .await?;
        tx.commit().await?;
        assert_eq!(posted.len(), 3);
        assert!(posted[0].posted_at < posted[1].posted_at, "each after the one before");
        assert_eq!(balance(store.as_ref(), &t, &acct.id).await?, money("65.00"));
        assert_eq!(balance(store.as_ref(), &t, &other.id).await?, money("12.00"));
        let listed = store.list_journal_entries(&t, &acct.id).await?;
        assert_eq!(listed, posted[..2].to_vec(), "read back as posted, in order");
        let account = store.get_account(&t, &acct.id).await?.expect("account exists");
        assert_eq!(account.updated_at, posted[1].posted_at, "the time of its last entry");

        // A key already posted, among new ones: DUPLICATE, and the caller rolls back.
        let mut tx = store.database().begin().await?;
        let err = store
            .post_journal_entries(&mut tx, &t, &[(&k4, &paid), (&k2, &paid)])
            .await
            .expect_err("key reused");
        assert!(matches!(err, StoreError::DuplicateEntryKey(_)), "{err}");
        tx.rollback().await?;
        assert_eq!(store.list_journal_entries(&t, &acct.id).await?.len(), 2);
        Ok(())
    }

    async fn patients_accounts_are_chosen_together_as_one_by_one(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let t = tenant("clinic-a");
        let older = store.open(&t, &account("pat-old")).await?;
        store.open(&t, &account("pat-old")).await?;
        let mut tx = store.database().begin().await?;
        let chosen_before = store.patient_account(&mut tx, &t, "pat-chosen").await?;
        tx.commit().await?;

        let mut tx = store.database().begin().await?;
        let ids = store
            .patient_accounts(&mut tx, &t, &["pat-new", "pat-old", "pat-chosen", "pat-new-2"])
            .await?;
        tx.commit().await?;
        assert_eq!(ids[1], older.id, "the patient's oldest account");
        assert_eq!(ids[2], chosen_before.id, "the account chosen before");
        assert_ne!(ids[0], ids[3]);
        for (patient, id) in [("pat-new", ids[0]), ("pat-new-2", ids[3])] {
            let opened = store.get_account(&t, &id).await?.expect("opened on demand");
            assert_eq!((opened.patient_ref.as_str(), opened.balance), (patient, Money::ZERO));
        }
        // Asked again (together or alone): the same accounts, none opened twice.
        let before = count_accounts(store.as_ref(), &t).await?;
        let mut tx = store.database().begin().await?;
        let again = store.patient_accounts(&mut tx, &t, &["pat-new-2", "pat-new"]).await?;
        let alone = store.patient_account(&mut tx, &t, "pat-new").await?;
        tx.commit().await?;
        assert_eq!(again, vec![ids[3], ids[0]]);
        assert_eq!(alone.id, ids[0]);
        assert_eq!(count_accounts(store.as_ref(), &t).await?, before);
        Ok(())
    }
}
