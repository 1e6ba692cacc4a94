//! The idempotency kit on both backends: the scope is the RPC's full method name, the fingerprint
//! the request without its key, a retry replays the first response, a reused key is refused, and a
//! call that fails leaves its key free.

use anyhow::{Result, bail, ensure};
use medbill_domain::TenantId;
use medbill_proto::IdempotentRequest;
use medbill_proto::collections::v1::{Account, OpenAccountRequest, OpenAccountResponse};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use medbill_storage::{Database, with_db};
use tonic::Code;

fn open(key: &str, patient: &str) -> OpenAccountRequest {
    OpenAccountRequest {
        idempotency_key: key.into(),
        patient_ref: patient.into(),
        guarantor_ref: String::new(),
    }
}

fn response(id: &str) -> OpenAccountResponse {
    OpenAccountResponse {
        account: Some(Account {
            id: id.into(),
            ..Default::default()
        }),
    }
}

fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).expect("valid tenant")
}

async fn scopes(db: &Database) -> Result<Vec<String>> {
    Ok(with_db!(db, |pool| {
        sqlx::query_scalar::<_, String>("SELECT scope FROM platform_idempotency ORDER BY scope")
            .fetch_all(pool)
            .await?
    }))
}

#[test]
fn the_scope_is_the_full_method_and_the_fingerprint_ignores_the_key() {
    assert_eq!(
        OpenAccountRequest::METHOD,
        "medbill.collections.v1.CollectionsService/OpenAccount"
    );
    assert_eq!(
        medbill_proto::claims::v1::CreateClaimRequest::METHOD,
        "medbill.claims.v1.ClaimsService/CreateClaim"
    );
    assert_eq!(
        open("k1", "p-1").canonical_bytes(),
        open("k2", "p-1").canonical_bytes()
    );
    assert_ne!(
        open("k1", "p-1").canonical_bytes(),
        open("k1", "p-2").canonical_bytes()
    );
    let err = IdempotentCall::of(&open("", "p-1")).unwrap_err();
    let status = tonic::Status::from(err);
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("idempotency_key"),
        "{}",
        status.message()
    );
}

/// Every unary RPC whose request has an `idempotency_key` field has the trait, with the method
/// the descriptors give it: checked against the descriptor set the server reflects.
#[test]
fn every_keyed_request_of_the_contract_is_covered() {
    use prost::Message;
    let fds = prost_types::FileDescriptorSet::decode(medbill_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut keyed = Vec::new();
    for file in fds
        .file
        .iter()
        .filter(|f| f.package().starts_with("medbill."))
    {
        for service in &file.service {
            for method in &service.method {
                // The request may be declared in another file of the package.
                let input = method.input_type().rsplit('.').next().unwrap();
                // A request may be declared in any file of the service's package.
                let message = fds
                    .file
                    .iter()
                    .filter(|f| f.package() == file.package())
                    .flat_map(|f| &f.message_type)
                    .find(|m| m.name() == input)
                    .unwrap();
                if message.field.iter().any(|f| f.name() == "idempotency_key")
                    && !method.client_streaming()
                {
                    keyed.push(format!(
                        "{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
    }
    assert!(keyed.len() >= 20, "{keyed:?}");
    for expected in [
        medbill_proto::eligibility::v1::CheckEligibilityRequest::METHOD,
        medbill_proto::eligibility::v1::CreateCoverageRequest::METHOD,
        medbill_proto::eligibility::v1::EstimatePatientCostRequest::METHOD,
        medbill_proto::remittance::v1::IngestEraRequest::METHOD,
        medbill_proto::collections::v1::RecordPaymentRequest::METHOD,
        medbill_proto::claims::v1::ApplyAdjudicationRequest::METHOD,
        medbill_proto::claims::v1::CreateProviderRequest::METHOD,
        medbill_proto::claims::v1::FollowUpClaimRequest::METHOD,
    ] {
        assert!(
            keyed.iter().any(|k| k == expected),
            "{expected} not in {keyed:?}"
        );
    }
}

medbill_storage::conformance_tests! {
    async fn a_retry_replays_the_first_response_and_a_reused_key_is_refused(db: Database) -> Result<()> {
        let t = tenant("tenant-a");
        let first = IdempotentCall::of(&open("k1", "p-1"))?;
        ensure!(first.replayed::<OpenAccountResponse>(&db, &t).await?.is_none());
        let Begun::New(op) = first.begin::<OpenAccountResponse>(&db, &t).await? else {
            bail!("the first call must be new");
        };
        op.commit(&response("acct-1")).await?;
        ensure!(scopes(&db).await? == ["medbill.collections.v1.CollectionsService/OpenAccount"]);

        // The same request under the same key (sent again, so a new call value): the first response.
        let again = IdempotentCall::of(&open("k1", "p-1"))?;
        ensure!(again.replayed::<OpenAccountResponse>(&db, &t).await? == Some(response("acct-1")));
        match again.begin::<OpenAccountResponse>(&db, &t).await? {
            Begun::Replay(r) => ensure!(r == response("acct-1")),
            Begun::New(_) => bail!("a retry must replay"),
        }

        // Another request under the key: ALREADY_EXISTS naming it, from both entry points.
        let other = IdempotentCall::of(&open("k1", "p-2"))?;
        for err in [
            other.replayed::<OpenAccountResponse>(&db, &t).await.unwrap_err(),
            other.begin::<OpenAccountResponse>(&db, &t).await.unwrap_err(),
        ] {
            let status = tonic::Status::from(err);
            ensure!(status.code() == Code::AlreadyExists, "{status:?}");
            ensure!(status.message().contains("\"k1\""), "{}", status.message());
        }

        // The key is per tenant.
        let b = tenant("tenant-b");
        ensure!(matches!(other.begin::<OpenAccountResponse>(&db, &b).await?, Begun::New(_)));
        Ok(())
    }

    async fn recording_an_answer_checks_the_key_in_the_same_step(db: Database) -> Result<()> {
        let t = tenant("tenant-a");
        let first = IdempotentCall::of(&open("k1", "p-1"))?;
        ensure!(first.record(&db, &t, response("acct-1")).await? == response("acct-1"));
        // A retry gets the first answer, not the one it brings.
        let again = IdempotentCall::of(&open("k1", "p-1"))?;
        ensure!(again.record(&db, &t, response("acct-other")).await? == response("acct-1"));
        ensure!(again.replayed::<OpenAccountResponse>(&db, &t).await? == Some(response("acct-1")));
        // Another request under the key is refused.
        let other = IdempotentCall::of(&open("k1", "p-2"))?;
        let status = tonic::Status::from(other.record(&db, &t, response("acct-2")).await.unwrap_err());
        ensure!(status.code() == Code::AlreadyExists, "{status:?}");
        ensure!(scopes(&db).await?.len() == 1);
        Ok(())
    }

    async fn a_call_that_fails_leaves_its_key_free(db: Database) -> Result<()> {
        let t = tenant("tenant-a");
        let call = IdempotentCall::of(&open("k1", "p-1"))?;
        let Begun::New(op) = call.begin::<OpenAccountResponse>(&db, &t).await? else {
            bail!("the first call must be new");
        };
        drop(op); // the handler returned an error before committing
        ensure!(scopes(&db).await?.is_empty(), "no key is kept for a failed call");
        // A different request may now use the key.
        let other = IdempotentCall::of(&open("k1", "p-2"))?;
        let Begun::New(op) = other.begin::<OpenAccountResponse>(&db, &t).await? else {
            bail!("the key must be free");
        };
        op.commit(&response("acct-2")).await?;
        Ok(())
    }
}
