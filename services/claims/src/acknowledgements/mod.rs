//! Acknowledgements in: TA1, 999 and 277CA files, pushed by a client (IngestAcknowledgement) or
//! picked up from each payer route by a background task, matched to batches by control numbers
//! and to claims by CLM01, applied once (by the file's SHA-256), moving claims to ACCEPTED or
//! REJECTED with reasons in plain words.
//!
//! - `read.rs`: which kind a file is and what it says;
//! - `apply.rs`: what it changes (planned from committed data, then made in one transaction);
//! - `rpc.rs`: IngestAcknowledgement;
//! - this file: [`apply_in`] and [`take_inbound`], shared by both ways in, and the pickup task.
//!
//! A picked-up file belongs to no tenant until its batch is found: a TA1 or 999 by the route's
//! interchange control number (unique per route), a 277CA by the batch id the 837 carried in BHT03
//! and the 277CA echoes in 2200B TRN02. A file that cannot be read or attributed is kept whole in
//! `unassigned_inbound_files` with the reason, then acknowledged at the route: nothing is lost and
//! the route is not blocked by it.

pub(crate) mod apply;
pub(crate) mod read;
pub(crate) mod rpc;

use std::sync::Arc;
use std::time::Duration;

use medbill_connect::InboundKind;
use medbill_domain::TenantId;
use medbill_proto::claims::v1 as pb;
use medbill_runtime::service::{BackgroundTask, Shutdown};
use prost::Message;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use self::read::{AckBody, AckKind, ReadAck};
use crate::store::{ClaimStore, ClaimStoreError};
use crate::submission::delivery::Submitter;

/// An acknowledgement to store.
#[derive(Debug, Clone)]
pub struct NewAcknowledgement<'a> {
    /// UUID v7.
    pub id: Uuid,
    /// "TA1", "999" or "277CA".
    pub kind: &'a str,
    /// The batch it acknowledges.
    pub batch_id: Option<Uuid>,
    /// ISA13 of the file.
    pub interchange_control_number: &'a str,
    /// The raw file.
    pub content: &'a [u8],
    /// Its SHA-256, hex.
    pub sha256: &'a str,
    /// The name the client gave, or the route's file id.
    pub file_name: &'a str,
    /// "CLIENT" or the payer route it came from.
    pub source: &'a str,
    /// The encoded AcknowledgementResult answered.
    pub result: &'a [u8],
}

/// Why a file was not applied.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file is not a readable TA1, 999 or 277CA; the text names the segment and position.
    #[error("{0}")]
    Unreadable(String),
    /// The same file is being applied by another call right now.
    #[error("the same acknowledgement file is being applied concurrently; retry")]
    Concurrent,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] ClaimStoreError),
}

/// The SHA-256 of a file, hex.
pub fn sha256_hex(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

/// The answer given the first time this tenant's file with `sha256` was applied, marked
/// duplicate, if it was.
pub async fn earlier_result(
    store: &dyn ClaimStore,
    tenant: &TenantId,
    sha256: &str,
) -> Result<Option<pb::AcknowledgementResult>, ClaimStoreError> {
    let Some(bytes) = store.acknowledgement_result(tenant, sha256).await? else {
        return Ok(None);
    };
    let mut first = pb::AcknowledgementResult::decode(bytes.as_slice()).map_err(|e| {
        medbill_storage::StorageError::corrupt("acknowledgement result", e.to_string())
    })?;
    first.duplicate = true;
    Ok(Some(first))
}

/// Where a file came from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// IngestAcknowledgement.
    Client,
    /// Picked up from this payer route.
    Route(&'a str),
}

impl Source<'_> {
    fn label(&self) -> &str {
        match self {
            Source::Client => "CLIENT",
            Source::Route(r) => r,
        }
    }
}

/// A file to apply: what was read from it and the raw bytes kept with it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// The file as read.
    pub ack: &'a ReadAck,
    /// The file's bytes.
    pub raw: &'a [u8],
    /// Their SHA-256, hex.
    pub sha256: &'a str,
    /// The client's file name or the route's file id.
    pub file_name: &'a str,
    /// Where it came from.
    pub source: Source<'a>,
}

/// Applies a read file for `tenant` in `tx` and stores it with its answer. The caller checked for
/// an earlier copy ([`earlier_result`]) and commits `tx`.
pub async fn apply_in(
    store: &dyn ClaimStore,
    tx: &mut medbill_storage::Tx,
    tenant: &TenantId,
    file: Incoming<'_>,
    plan: apply::Plan,
) -> Result<pb::AcknowledgementResult, IngestError> {
    let Incoming {
        ack,
        raw,
        sha256,
        file_name,
        source,
    } = file;
    let id = Uuid::now_v7();
    let batch_id = plan.batch_id;
    let result = apply::execute(store, tx, tenant, plan, id).await?;
    let stored = store
        .store_acknowledgement(
            tx,
            tenant,
            &NewAcknowledgement {
                id,
                kind: ack.kind.as_str(),
                batch_id,
                interchange_control_number: &ack.interchange_control_number,
                content: raw,
                sha256,
                file_name,
                source: source.label(),
                result: &result.encode_to_vec(),
            },
        )
        .await?;
    if !stored {
        return Err(IngestError::Concurrent);
    }
    Ok(result)
}

/// What became of a picked-up file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Applied, or kept unassigned: durably recorded, so it can be acknowledged at the route.
    Recorded,
    /// An 835: remittance's to take; not acknowledged.
    LeftForRemittance,
}

/// Whether a file is an 835 remittance (its first functional group is HP). Only the segments up to
/// the first GS are read: an 835 can be large and is not ours to parse.
fn is_remittance(content: &[u8]) -> bool {
    medbill_x12::Tokenizer::new(content)
        .find(|segment| segment.id() == "GS")
        .is_some_and(|gs| gs.text(1) == "HP")
}

/// The tenant a picked-up file belongs to, found through the batch it names.
async fn owner(
    store: &dyn ClaimStore,
    route: &str,
    ack: &ReadAck,
) -> Result<Option<String>, ClaimStoreError> {
    match &ack.body {
        AckBody::Ta1(ta1s) => match ta1s.first() {
            Some(t) => store.batch_owner_by_control(route, t.control_number).await,
            None => Ok(None),
        },
        AckBody::Implementation(acks) => {
            match acks
                .first()
                .and_then(|a| a.group_control_number.trim().parse::<u32>().ok())
            {
                Some(n) => store.batch_owner_by_control(route, n).await,
                None => Ok(None),
            }
        }
        AckBody::ClaimAck(acks) => {
            let batch = acks
                .iter()
                .filter_map(|a| a.receiver_trace.as_deref())
                .find_map(|t| Uuid::try_parse(t).ok());
            match batch {
                Some(id) => store.batch_owner(id).await,
                None => Ok(None),
            }
        }
    }
}

/// Handles one file picked up through the connection of `via`: applied for its tenant, or kept
/// unassigned with the reason. Returns once the file is durably recorded either way (so it can be
/// acknowledged). Routes that share an endpoint and sender id see each other's files, so the
/// route a file answers is the one whose receiver id is the file's ISA06, when there is one.
pub async fn take_inbound(
    store: &dyn ClaimStore,
    submitter: &Submitter,
    via: &str,
    file_id: &str,
    content: &[u8],
) -> Result<Taken, ClaimStoreError> {
    let route = via;
    if is_remittance(content) {
        return Ok(Taken::LeftForRemittance);
    }
    let read = match read::read(content, None) {
        Ok(read) => read,
        Err(reason) => {
            store
                .keep_unassigned_file(route, file_id, content, &reason)
                .await?;
            tracing::warn!(route, file_id, reason = %reason, "unreadable acknowledgement kept unassigned");
            return Ok(Taken::Recorded);
        }
    };
    let route = submitter.route_of_sender(&read.sender_id).unwrap_or(route);
    let tenant = match owner(store, route, &read).await? {
        Some(t) => TenantId::parse(&t).ok(),
        None => None,
    };
    let Some(tenant) = tenant else {
        let reason = format!(
            "{} names no batch sent through route {route}",
            read.kind.as_str()
        );
        store
            .keep_unassigned_file(route, file_id, content, &reason)
            .await?;
        tracing::warn!(
            route,
            file_id,
            kind = read.kind.as_str(),
            "acknowledgement kept unassigned: no batch matched"
        );
        return Ok(Taken::Recorded);
    };
    let sha = sha256_hex(content);
    if earlier_result(store, &tenant, &sha).await?.is_some() {
        return Ok(Taken::Recorded);
    }
    let plan = apply::plan(store, &tenant, &read, Some(route)).await?;
    let mut tx = store.database().begin().await?;
    let file = Incoming {
        ack: &read,
        raw: content,
        sha256: &sha,
        file_name: file_id,
        source: Source::Route(route),
    };
    match apply_in(store, &mut tx, &tenant, file, plan).await {
        Ok(result) => {
            tx.commit().await.map_err(ClaimStoreError::from)?;
            tracing::info!(route, kind = read.kind.as_str(), tenant = %tenant, claims_updated = result.claims_updated, "acknowledgement applied");
            Ok(Taken::Recorded)
        }
        // Another replica applied it first: nothing left to do.
        Err(IngestError::Concurrent) => Ok(Taken::Recorded),
        Err(IngestError::Store(e)) => Err(e),
        Err(IngestError::Unreadable(_)) => Ok(Taken::Recorded),
    }
}

/// Picks up every waiting file of every route once; returns how many it took.
pub async fn pickup_once(store: &dyn ClaimStore, submitter: &Submitter) -> Result<usize, String> {
    let mut count = 0;
    let routes: Vec<String> = submitter
        .connections()
        .payer_ids()
        .map(str::to_owned)
        .collect();
    for route in routes {
        let Ok(connection) = submitter.connections().get(&route) else {
            continue;
        };
        // A bound per pass keeps one busy route from starving the others.
        for _ in 0..PICKUP_PER_ROUTE {
            let file = match connection
                .next_inbound_of(InboundKind::Acknowledgements)
                .await
            {
                Ok(Some(file)) => file,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(route = %route, error = %e, "acknowledgement pickup failed; trying again later");
                    break;
                }
            };
            let outcome = take_inbound(store, submitter, &route, &file.file_id, &file.contents)
                .await
                .map_err(|e| e.to_string())?;
            if outcome == Taken::LeftForRemittance {
                // Offered an 835 all the same (a receiver that does not retrieve by kind):
                // remittance's pickup takes it; the route's next files wait for its next pass.
                break;
            }
            if let Err(e) = connection.acknowledge(&file.file_id).await {
                // Recorded already; the next pass sees it again and finds it applied.
                tracing::warn!(route = %route, error = %e, "could not acknowledge a picked-up file");
                break;
            }
            count += 1;
        }
    }
    Ok(count)
}

/// Most files taken from one route in one pass.
const PICKUP_PER_ROUTE: usize = 100;

/// The background task that picks up acknowledgements from every payer route every `interval`.
pub fn pickup_task(
    store: Arc<dyn ClaimStore>,
    submitter: Submitter,
    interval: Duration,
) -> BackgroundTask {
    BackgroundTask::new(
        "claims acknowledgement pickup",
        move |shutdown: Shutdown| async move {
            loop {
                tokio::select! {
                    () = shutdown.requested() => return Ok(()),
                    () = tokio::time::sleep(interval) => {}
                }
                if let Err(e) = pickup_once(store.as_ref(), &submitter).await {
                    tracing::warn!(error = %e, "acknowledgement pickup pass failed; trying again later");
                }
            }
        },
    )
}

/// The kind a request names, if any.
pub fn kind_from_proto(raw: i32) -> Result<Option<AckKind>, i32> {
    match pb::AcknowledgementKind::try_from(raw) {
        Ok(pb::AcknowledgementKind::Unspecified) => Ok(None),
        Ok(pb::AcknowledgementKind::Ta1) => Ok(Some(AckKind::Ta1)),
        Ok(pb::AcknowledgementKind::AcknowledgementKind999) => Ok(Some(AckKind::Implementation999)),
        Ok(pb::AcknowledgementKind::AcknowledgementKind277ca) => Ok(Some(AckKind::Claim277Ca)),
        Err(_) => Err(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::is_remittance;

    #[test]
    fn an_835_is_told_from_an_acknowledgement_by_its_first_group() {
        let isa = "ISA*00*          *00*          *ZZ*SIMPPO         *ZZ*MEDBILL        *260302*0930*^*00501*000000001*0*T*:~";
        let era = format!("{isa}GS*HP*SIMPPO*MEDBILL*20260302*0930*1*X*005010X221A1~ST*835*0001~");
        let ack = format!("{isa}GS*FA*SIMPPO*MEDBILL*20260302*0930*1*X*005010X231A1~ST*999*0001~");
        assert!(is_remittance(era.as_bytes()));
        assert!(!is_remittance(ack.as_bytes()));
        assert!(!is_remittance(b"not x12 at all"));
    }
}
