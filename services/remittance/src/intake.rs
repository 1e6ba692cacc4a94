//! Ingesting one received 835 file in the caller's transaction: the file is stored once, raw, with its
//! hash ([`EraStore::store_file`]); unless the same content was stored before, its 835 sets are read one
//! at a time off the async workers ([`crate::ingest::read_sets`]) and each is stored as its own ERA as
//! soon as it is read, so memory holds a window of the file and about one set, not the file's sets
//! (plus the raw bytes of a file that came whole; a streamed upload is spooled to a temporary file,
//! see [`crate::upload`]). A file
//! rejected as a whole after some of its sets were stored keeps one REJECTED ERA in their place. All of
//! it is one transaction: an error leaves nothing behind. Deposits already stored with the trace
//! number of a new ERA are reconciled again in the same transaction (see [`crate::deposits`]).

use medbill_domain::TenantId;
use medbill_storage::Tx;
use tokio::sync::mpsc;

use crate::ingest::{read_sets, rejected_file};
use crate::model::{Era, EraStatus, NewEra};
use crate::store::{EraStore, EraStoreError, StoredFile};
use crate::upload::Upload;

/// Sets read ahead of the one being stored: the reader waits beyond this.
const SETS_IN_FLIGHT: usize = 2;

/// The result of an ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// The file's ERAs in set order (one REJECTED ERA with set position 0 for a file rejected as a
    /// whole).
    pub eras: Vec<Era>,
    /// True when nothing was written: the same content was already stored and `eras` are its ERAs.
    pub duplicate: bool,
}

/// Stores `content` (whose lowercase hex SHA-256 is `sha256`) and its ERAs in `tx`.
pub async fn ingest_file(
    store: &dyn EraStore,
    tx: &mut Tx,
    tenant: &TenantId,
    content: impl Into<Upload>,
    sha256: &str,
    file_name: &str,
) -> Result<Ingested, EraStoreError> {
    let content = content.into();
    let file = match store
        .store_file(tx, tenant, &content, sha256, file_name)
        .await?
    {
        StoredFile::Duplicate(eras) => {
            return Ok(Ingested {
                eras,
                duplicate: true,
            });
        }
        StoredFile::New(file) => file,
    };
    let (sender, mut sets) = mpsc::channel::<NewEra>(SETS_IN_FLIGHT);
    // Reading is CPU work: it runs on a blocking thread and hands sets over as it finishes them.
    // When the receiver is gone (a failed write), the remaining sets are dropped unread-for.
    let reader = tokio::task::spawn_blocking(move || {
        read_sets(&content, |era| {
            let _ = sender.blocking_send(era);
        })
    });
    let mut eras = Vec::new();
    while let Some(new) = sets.recv().await {
        eras.push(store.add_era(tx, tenant, &file, &new).await?);
    }
    let verdict = reader
        .await
        .map_err(|e| EraStoreError::Reader(e.to_string()))?;
    if let Err(reason) = verdict {
        store.discard_eras(tx, tenant, file.id).await?;
        eras = vec![
            store
                .add_era(tx, tenant, &file, &rejected_file(reason))
                .await?,
        ];
    }
    // Deposits that came before their 835 are reconciled now.
    let mut traces: Vec<String> = eras
        .iter()
        .filter(|e| e.status != EraStatus::Rejected)
        .filter_map(|e| e.summary.trace_number.clone())
        .collect();
    traces.sort();
    traces.dedup();
    for trace in traces {
        for (outcome, deposit_ids) in store.refresh_trace(tx, tenant, &trace).await? {
            for era in eras.iter_mut().filter(|e| outcome.era_ids.contains(&e.id)) {
                era.deposit_id = deposit_ids.last().cloned().unwrap_or_default();
                era.reconciliation = Some(outcome.status);
            }
        }
    }
    Ok(Ingested {
        eras,
        duplicate: false,
    })
}
