//! Conformance of the eligibility-check records on SQLite and, when `MEDBILL_TEST_PG_URL` is set,
//! PostgreSQL: group commit, idempotency keys inside one batch, raw X12 kept, money as cents.

use medbill_domain::{EligibilityCheckId, IdempotencyKey, TenantId};
use medbill_eligibility::store::Inserted;
use medbill_eligibility::{CheckFilter, StoredCheck, open_store};
use medbill_proto::eligibility::v1 as pb;
use medbill_storage::Database;

fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).expect("valid tenant id")
}

fn stored(tenant_id: &str, key: &str, fingerprint: &str) -> StoredCheck {
    StoredCheck {
        tenant_id: tenant(tenant_id),
        idempotency_key: key.to_owned(),
        request_fingerprint: fingerprint.to_owned(),
        payer_attempts: 1,
        check: pb::EligibilityCheck {
            id: EligibilityCheckId::new().to_string(),
            patient_ref: "pat-1".into(),
            payer_id: "SIMPPO".into(),
            member_id: "SPX100000001".into(),
            provider_npi: "1234567893".into(),
            date_of_service: "2026-03-02".into(),
            service_type_codes: vec!["30".into()],
            status: pb::EligibilityCheckStatus::Completed as i32,
            trace_number: "T1".into(),
            summary: Some(pb::BenefitSummary {
                coverage_status: pb::CoverageStatus::Active as i32,
                individual_deductible: Some(pb::Accumulator {
                    total: "1500.00".into(),
                    remaining: "1250.50".into(),
                    met: "249.50".into(),
                }),
                ..Default::default()
            }),
            raw_request: b"ISA*270...".to_vec(),
            raw_response: b"ISA*271...".to_vec(),
            created_at: Some(prost_types::Timestamp {
                seconds: 1_772_000_000,
                nanos: 123_456_000,
            }),
            ..Default::default()
        },
    }
}

medbill_storage::conformance_tests! {
    namespace = "eligibility";

    async fn a_batch_writes_once_per_key_and_round_trips(db: Database) -> anyhow::Result<()> {
        let store = open_store(db).await?;
        let a = stored("tenant-a", "k-1", "f1");
        let same_key = stored("tenant-a", "k-1", "f2");
        let other_tenant = stored("tenant-b", "k-1", "f3");
        let outcomes = store.insert_checks(&[a.clone(), same_key, other_tenant.clone()]).await?;
        assert!(matches!(outcomes[0], Inserted::New));
        match &outcomes[1] {
            Inserted::Existing(fp, existing) => {
                assert_eq!(fp, "f1");
                assert_eq!(existing.id, a.check.id);
            }
            other => panic!("expected the first check, got {other:?}"),
        }
        assert!(matches!(outcomes[2], Inserted::New), "keys are per tenant");

        let id = EligibilityCheckId::parse(&a.check.id)?;
        let with_raw = store.get_check(&tenant("tenant-a"), &id, true).await?.expect("stored");
        assert_eq!(with_raw, a.check, "exact round trip, raw X12 included");
        let without = store.get_check(&tenant("tenant-a"), &id, false).await?.expect("stored");
        assert!(without.raw_request.is_empty() && without.raw_response.is_empty());
        assert!(store.get_check(&tenant("tenant-b"), &id, true).await?.is_none(), "tenant scoped");

        let key = IdempotencyKey::parse("k-1")?;
        let (fp, found) = store.find_check_by_key(&tenant("tenant-b"), &key).await?.expect("by key");
        assert_eq!((fp.as_str(), found.id.as_str()), ("f3", other_tenant.check.id.as_str()));

        let listed = store.list_checks(&tenant("tenant-a"), &CheckFilter::default(), None, 10).await?;
        assert_eq!(listed.len(), 1);
        let none = CheckFilter { status: Some("FAILED".into()), ..CheckFilter::default() };
        assert!(store.list_checks(&tenant("tenant-a"), &none, None, 10).await?.is_empty());
        Ok(())
    }
}
