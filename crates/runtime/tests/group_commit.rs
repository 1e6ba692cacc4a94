//! Group commit on both backends: units sent together share a transaction, a unit that fails is
//! undone alone (its reserved key too), the others commit, a replay and a reused key behave as in
//! the unshared path, and no answer comes before the commit.

use anyhow::{Result, ensure};
use medbill_domain::TenantId;
use medbill_proto::collections::v1::{Account, OpenAccountRequest, OpenAccountResponse};
use medbill_runtime::group_commit::GroupCommit;
use medbill_runtime::idempotent::{IdempotentCall, Reserved};
use medbill_storage::{Database, with_db, with_tx};
use tonic::Code;

fn tenant() -> TenantId {
    TenantId::parse("tenant-a").expect("valid tenant")
}

/// One call: reserve its key, insert `rows` into `gc_items` (a duplicate fails), answer.
async fn call(
    commits: &GroupCommit,
    key: &str,
    patient: &str,
    rows: &[&str],
) -> Result<OpenAccountResponse, tonic::Status> {
    let req = OpenAccountRequest {
        idempotency_key: key.into(),
        patient_ref: patient.into(),
        guarantor_ref: String::new(),
    };
    let call = IdempotentCall::of(&req)?;
    let rows: Vec<String> = rows.iter().map(|r| (*r).to_owned()).collect();
    let id = key.to_owned();
    commits
        .run(move |tx| {
            Box::pin(async move {
                let pending = match call.reserve(tx, &tenant()).await? {
                    Reserved::Replay(first) => return Ok(first),
                    Reserved::New(pending) => pending,
                };
                for row in &rows {
                    with_tx!(tx, |conn| {
                        sqlx::query("INSERT INTO gc_items (k) VALUES ($1)")
                            .bind(row)
                            .execute(&mut *conn)
                            .await
                            .map_err(medbill_storage::StorageError::from)?
                            .rows_affected()
                    });
                }
                let response = OpenAccountResponse {
                    account: Some(Account {
                        id,
                        ..Default::default()
                    }),
                };
                pending.complete(tx, &response).await?;
                Ok(response)
            })
        })
        .await
}

async fn items(db: &Database) -> Result<Vec<String>> {
    Ok(with_db!(db, |pool| {
        sqlx::query_scalar::<_, String>("SELECT k FROM gc_items ORDER BY k")
            .fetch_all(pool)
            .await?
    }))
}

async fn keys(db: &Database) -> Result<Vec<String>> {
    Ok(with_db!(db, |pool| {
        sqlx::query_scalar::<_, String>(
            "SELECT idem_key FROM platform_idempotency ORDER BY idem_key",
        )
        .fetch_all(pool)
        .await?
    }))
}

medbill_storage::conformance_tests! {
    async fn a_failed_unit_is_undone_alone_and_the_rest_commit_together(db: Database) -> Result<()> {
        db.migrate_platform().await?;
        with_db!(db, |pool| {
            sqlx::query("CREATE TABLE gc_items (k TEXT PRIMARY KEY)").execute(pool).await?.rows_affected()
        });
        let commits = GroupCommit::start(db.clone());
        // Sent together, so the worker finds them waiting and takes them in one transaction;
        // k2 writes a row and then fails on a duplicate: both its row and its key are undone.
        let (a, b, c) = tokio::join!(
            call(&commits, "k1", "p-1", &["a"]),
            call(&commits, "k2", "p-2", &["b", "a"]),
            call(&commits, "k3", "p-3", &["c"]),
        );
        ensure!(a?.account.map(|x| x.id) == Some("k1".to_owned()));
        ensure!(c?.account.map(|x| x.id) == Some("k3".to_owned()));
        let err = b.expect_err("duplicate row");
        ensure!(err.code() != Code::Ok);
        ensure!(items(&db).await? == ["a", "c"], "{:?}", items(&db).await?);
        ensure!(keys(&db).await? == ["k1", "k3"], "{:?}", keys(&db).await?);

        // The failed key is free for a corrected request; a retry replays; a reused key is refused.
        let (fixed, again, reused) = tokio::join!(
            call(&commits, "k2", "p-2", &["b"]),
            call(&commits, "k1", "p-1", &["never"]),
            call(&commits, "k3", "other patient", &["never"]),
        );
        ensure!(fixed?.account.map(|x| x.id) == Some("k2".to_owned()));
        ensure!(again?.account.map(|x| x.id) == Some("k1".to_owned()));
        ensure!(reused.expect_err("reused key").code() == Code::AlreadyExists);
        ensure!(items(&db).await? == ["a", "b", "c"], "{:?}", items(&db).await?);

        // A unit alone that fails writes nothing either.
        let err = call(&commits, "k4", "p-4", &["d", "a"]).await.expect_err("duplicate");
        ensure!(err.code() != Code::Ok);
        ensure!(items(&db).await? == ["a", "b", "c"]);
        ensure!(keys(&db).await? == ["k1", "k2", "k3"]);
        Ok(())
    }
}
