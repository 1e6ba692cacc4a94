//! The audit table on SQLite and (with `MEDBILL_TEST_PG_URL`) PostgreSQL: append-only (UPDATE,
//! DELETE and on PostgreSQL TRUNCATE refused), filters, paging, and the operator's purge as the
//! one controlled way past the trigger.

use medbill_storage::audit::{self, AuditQuery, AuditRecord, Order};
use medbill_storage::testing::TestEnv;
use medbill_storage::{Backend, with_db};

fn record(id: &str, at: i64, tenant: &str, resources: &[(&str, &str)], code: i32) -> AuditRecord {
    AuditRecord {
        id: id.to_owned(),
        occurred_at: at,
        tenant_id: tenant.to_owned(),
        subject: "token:abc".to_owned(),
        peer: Some("127.0.0.1:5000".to_owned()),
        service: "medbill.claims.v1.ClaimsService".to_owned(),
        method: "GetClaim".to_owned(),
        resources: resources
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        resources_truncated: false,
        code,
        trace_id: None,
    }
}

async fn seed(env: &TestEnv) -> anyhow::Result<()> {
    audit::insert_batch(
        env.db(),
        &[
            record(
                "0001",
                1_000,
                "t-a",
                &[("claim", "c-1"), ("patient_ref", "P-1")],
                0,
            ),
            record(
                "0002",
                2_000,
                "t-a",
                &[("claim", "c-2"), ("patient_ref", "P-2")],
                5,
            ),
            record("0003", 3_000, "t-b", &[("claim", "c-1")], 0),
            record(
                "0004",
                4_000,
                "t-a",
                &[("account", "a-1"), ("patient_ref", "P-1")],
                0,
            ),
        ],
    )
    .await?;
    Ok(())
}

fn ids(records: &[AuditRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

async fn count(env: &TestEnv) -> anyhow::Result<i64> {
    Ok(with_db!(env.db(), |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM platform_audit")
            .fetch_one(pool)
            .await?
    }))
}

medbill_storage::conformance_tests! {
    async fn audit_rows_cannot_be_updated_or_deleted(env: TestEnv) -> anyhow::Result<()> {
        seed(&env).await?;
        let update: Result<u64, sqlx::Error> = with_db!(env.db(), |pool| {
            sqlx::query("UPDATE platform_audit SET subject = 'someone-else'")
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        let err = update.expect_err("UPDATE refused");
        assert!(err.to_string().contains("append-only"), "{err}");
        let delete: Result<u64, sqlx::Error> = with_db!(env.db(), |pool| {
            sqlx::query("DELETE FROM platform_audit WHERE id = '0001'")
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        let err = delete.expect_err("DELETE refused");
        assert!(err.to_string().contains("append-only"), "{err}");
        if env.backend() == Backend::Postgres {
            let truncate: Result<u64, sqlx::Error> = with_db!(env.db(), |pool| {
                sqlx::query("TRUNCATE platform_audit")
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            });
            let err = truncate.expect_err("TRUNCATE refused");
            assert!(err.to_string().contains("append-only"), "{err}");
        }
        assert_eq!(count(&env).await?, 4);
        let all = audit::list(env.db(), &AuditQuery::default(), Order::OldestFirst, None, 10).await?;
        assert!(all.iter().all(|r| r.subject == "token:abc"));
        Ok(())
    }

    async fn audit_rows_filter_by_tenant_resource_patient_and_time_and_page(env: TestEnv) -> anyhow::Result<()> {
        seed(&env).await?;
        let tenant_a = AuditQuery { tenant_id: Some("t-a".into()), ..AuditQuery::default() };
        let page = audit::list(env.db(), &tenant_a, Order::NewestFirst, None, 2).await?;
        assert_eq!(ids(&page), ["0004", "0002"]);
        let next = audit::list(env.db(), &tenant_a, Order::NewestFirst, Some("0002"), 2).await?;
        assert_eq!(ids(&next), ["0001"]);

        let claim_1 = AuditQuery {
            resource: Some(("claim".into(), Some("c-1".into()))),
            ..tenant_a.clone()
        };
        assert_eq!(ids(&audit::list(env.db(), &claim_1, Order::OldestFirst, None, 10).await?), ["0001"]);
        // A prefix of an id is not that id; case matters.
        let prefix = AuditQuery { resource: Some(("claim".into(), Some("c-".into()))), ..tenant_a.clone() };
        assert!(audit::list(env.db(), &prefix, Order::OldestFirst, None, 10).await?.is_empty());
        let patient = AuditQuery { patient_ref: Some("P-1".into()), ..tenant_a.clone() };
        assert_eq!(ids(&audit::list(env.db(), &patient, Order::OldestFirst, None, 10).await?), ["0001", "0004"]);
        let lower = AuditQuery { patient_ref: Some("p-1".into()), ..tenant_a.clone() };
        assert!(audit::list(env.db(), &lower, Order::OldestFirst, None, 10).await?.is_empty());
        let accounts = AuditQuery { resource: Some(("account".into(), None)), ..tenant_a.clone() };
        assert_eq!(ids(&audit::list(env.db(), &accounts, Order::OldestFirst, None, 10).await?), ["0004"]);
        let window = AuditQuery { since: Some(2_000), until: Some(4_000), ..AuditQuery::default() };
        assert_eq!(ids(&audit::list(env.db(), &window, Order::OldestFirst, None, 10).await?), ["0002", "0003"]);
        let method = AuditQuery {
            method: Some("medbill.claims.v1.ClaimsService/GetClaim".into()),
            ..tenant_a.clone()
        };
        assert_eq!(audit::list(env.db(), &method, Order::OldestFirst, None, 10).await?.len(), 3);
        let read_back = audit::list(env.db(), &claim_1, Order::OldestFirst, None, 1).await?;
        assert_eq!(read_back, [record("0001", 1_000, "t-a", &[("claim", "c-1"), ("patient_ref", "P-1")], 0)]);
        Ok(())
    }

    async fn purge_deletes_only_older_rows_and_leaves_the_table_append_only(env: TestEnv) -> anyhow::Result<()> {
        seed(&env).await?;
        assert_eq!(audit::purge(env.db(), 2_500).await?, 2);
        let left = audit::list(env.db(), &AuditQuery::default(), Order::OldestFirst, None, 10).await?;
        assert_eq!(ids(&left), ["0003", "0004"]);
        // The bypass was for the purge's transaction only.
        let delete: Result<u64, sqlx::Error> = with_db!(env.db(), |pool| {
            sqlx::query("DELETE FROM platform_audit").execute(pool).await.map(|r| r.rows_affected())
        });
        assert!(delete.is_err(), "DELETE refused again after the purge");
        assert_eq!(count(&env).await?, 2);
        // And again: the trigger was recreated as it was.
        assert_eq!(audit::purge(env.db(), 3_500).await?, 1);
        Ok(())
    }
}
