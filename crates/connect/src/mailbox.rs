//! The mailbox directory transport, as SFTP drop boxes work.
//!
//! Layout of one trading partner's mailbox directory:
//!
//! ```text
//! <dir>/outbound/           files we send (the partner picks them up)
//! <dir>/inbound/            files the partner sends (we pick them up)
//! <dir>/archive/inbound/    inbound files we processed
//! <dir>/archive/outbound/   outbound files the partner processed (when the partner side uses this type)
//! ```
//!
//! Files are written to a hidden temporary name, flushed to disk and renamed, so a reader never sees half a
//! file. Readers skip hidden and partial names (`.name`, `*.tmp`, `*.part`, `*.filepart`). A file stays in its
//! folder until acknowledged and is then renamed into `archive/`: a crash before the acknowledgement delivers
//! the same file (same `file_id`) again, a crash after it never does.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tracing::{debug, info};
use uuid::Uuid;

use crate::error::{ConfigError, ConnectError};
use crate::transport::{
    BatchTransport, InboundFile, InboundKind, KIND_PREFIX, OutboundFile, SubmissionReceipt,
};

const TEMP_PREFIX: &str = ".tmp-";

/// Which end of the mailbox this handle is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailboxSide {
    /// medbill: writes `outbound/`, reads `inbound/`.
    Provider,
    /// The trading partner (payer-sim): writes `inbound/`, reads `outbound/`.
    Partner,
}

/// A file waiting in the folder this side reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingFile {
    /// The file name, which is the file's id.
    pub file_id: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time.
    pub received_at: DateTime<Utc>,
}

/// One side of a trading partner's mailbox directory.
#[derive(Clone, Debug)]
pub struct Mailbox {
    send_dir: PathBuf,
    receive_dir: PathBuf,
    archive_dir: PathBuf,
}

impl Mailbox {
    /// Opens (creating the folders when missing) the mailbox at `dir` as `side`.
    ///
    /// Temporary files this side left in its send folder by a crash mid-write are removed: their
    /// submission never returned Ok, so nobody counts on them.
    pub fn open(dir: &Path, side: MailboxSide) -> Result<Self, ConfigError> {
        let (send, receive) = match side {
            MailboxSide::Provider => ("outbound", "inbound"),
            MailboxSide::Partner => ("inbound", "outbound"),
        };
        let mailbox = Self {
            send_dir: dir.join(send),
            receive_dir: dir.join(receive),
            archive_dir: dir.join("archive").join(receive),
        };
        let config_error = |path: &Path, e: std::io::Error| ConfigError::Mailbox {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        for folder in [
            &mailbox.send_dir,
            &mailbox.receive_dir,
            &mailbox.archive_dir,
        ] {
            fs::create_dir_all(folder).map_err(|e| config_error(folder, e))?;
        }
        let entries =
            fs::read_dir(&mailbox.send_dir).map_err(|e| config_error(&mailbox.send_dir, e))?;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| config_error(&path, e))?;
                info!(path = %path.display(), "removed temporary file left by an interrupted write");
            }
        }
        Ok(mailbox)
    }

    /// Writes a file into the send folder atomically and durably; returns its name.
    pub async fn put(
        &self,
        label: &str,
        contents: Bytes,
    ) -> Result<SubmissionReceipt, ConnectError> {
        let payload_id = Uuid::now_v7();
        // v7 ids start with the time, so names sort in the order files were written.
        let name = format!("{}-{}.x12", payload_id.simple(), sanitize_label(label));
        let dir = self.send_dir.clone();
        let size = contents.len() as u64;
        let written = name.clone();
        run_blocking(move || write_atomically(&dir, &written, &contents)).await?;
        debug!(file = %name, bytes = size, "mailbox file written");
        Ok(SubmissionReceipt {
            submission_id: name,
            payload_id,
            size,
            reply: None,
        })
    }

    /// Lists the files waiting in the receive folder, oldest first (by modification time, then name).
    pub async fn pending(&self) -> Result<Vec<PendingFile>, ConnectError> {
        let dir = self.receive_dir.clone();
        run_blocking(move || list_pending(&dir)).await
    }

    /// Reads a waiting file by id.
    pub async fn read(&self, file_id: &str) -> Result<InboundFile, ConnectError> {
        check_file_name(file_id)?;
        let path = self.receive_dir.join(file_id);
        let file_id = file_id.to_owned();
        run_blocking(move || {
            let contents = fs::read(&path).map_err(|source| ConnectError::Mailbox {
                path: path.clone(),
                operation: "read",
                source,
            })?;
            let modified = fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let checksum = crate::envelope::checksum(&contents);
            Ok(InboundFile {
                file_id,
                contents: Bytes::from(contents),
                checksum,
                received_at: DateTime::<Utc>::from(modified),
            })
        })
        .await
    }

    /// Reads the first [`KIND_PREFIX`] bytes of a waiting file (all of a shorter one).
    async fn read_start(&self, file_id: &str) -> Result<Vec<u8>, ConnectError> {
        use std::io::Read as _;
        check_file_name(file_id)?;
        let path = self.receive_dir.join(file_id);
        run_blocking(move || {
            let failed = |source| ConnectError::Mailbox {
                path: path.clone(),
                operation: "read",
                source,
            };
            let mut start = Vec::with_capacity(KIND_PREFIX);
            fs::File::open(&path)
                .and_then(|f| f.take(KIND_PREFIX as u64).read_to_end(&mut start))
                .map_err(failed)?;
            Ok(start)
        })
        .await
    }

    /// Moves a processed file into the archive; a file already archived is not an error.
    pub async fn archive(&self, file_id: &str) -> Result<(), ConnectError> {
        check_file_name(file_id)?;
        let source = self.receive_dir.join(file_id);
        let receive_dir = self.receive_dir.clone();
        let archive_dir = self.archive_dir.clone();
        let name = file_id.to_owned();
        run_blocking(move || {
            let mut target = archive_dir.join(&name);
            if !source.exists() {
                return if target.exists() {
                    Ok(())
                } else {
                    Err(ConnectError::Mailbox {
                        path: source,
                        operation: "archive",
                        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
                    })
                };
            }
            if target.exists() {
                // The partner sent a new file under a name already archived: keep both.
                target = archive_dir.join(format!("{name}.{}", Uuid::now_v7().simple()));
            }
            fs::rename(&source, &target).map_err(|e| ConnectError::Mailbox {
                path: source.clone(),
                operation: "archive",
                source: e,
            })?;
            sync_dir(&archive_dir)?;
            sync_dir(&receive_dir)?;
            Ok(())
        })
        .await?;
        debug!(file = %file_id, "mailbox file archived");
        Ok(())
    }
}

#[async_trait]
impl BatchTransport for Mailbox {
    async fn submit(&self, file: OutboundFile) -> Result<SubmissionReceipt, ConnectError> {
        self.put(&file.label, file.contents).await
    }

    async fn next_inbound(&self, kind: InboundKind) -> Result<Option<InboundFile>, ConnectError> {
        for pending in self.pending().await? {
            if kind != InboundKind::Any {
                // The kind is told from the file's start; a large 835 is not read to skip it.
                match self.read_start(&pending.file_id).await {
                    Ok(start) if !kind.takes(&start) => continue,
                    Ok(_) => {}
                    Err(ConnectError::Mailbox { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        continue;
                    }
                    Err(error) => return Err(error),
                }
            }
            match self.read(&pending.file_id).await {
                Ok(file) => return Ok(Some(file)),
                // Another reader archived it between listing and reading: take the next one.
                Err(ConnectError::Mailbox { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }

    async fn acknowledge(&self, file_id: &str) -> Result<(), ConnectError> {
        self.archive(file_id).await
    }
}

async fn run_blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, ConnectError> + Send + 'static,
) -> Result<T, ConnectError> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| ConnectError::Mailbox {
            path: PathBuf::new(),
            operation: "blocking task",
            source: std::io::Error::other(e.to_string()),
        })?
}

fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> Result<(), ConnectError> {
    let temp = dir.join(format!("{TEMP_PREFIX}{name}"));
    let target = dir.join(name);
    let io = |path: &Path, operation| {
        let path = path.to_owned();
        move |source| ConnectError::Mailbox {
            path,
            operation,
            source,
        }
    };
    let mut file = fs::File::create_new(&temp).map_err(io(&temp, "create"))?;
    file.write_all(contents).map_err(io(&temp, "write"))?;
    file.sync_all().map_err(io(&temp, "sync"))?;
    drop(file);
    if let Err(error) = fs::rename(&temp, &target) {
        let _ = fs::remove_file(&temp);
        return Err(io(&temp, "rename")(error));
    }
    sync_dir(dir)
}

/// Flushes a directory so a rename in it survives a power loss.
fn sync_dir(dir: &Path) -> Result<(), ConnectError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| ConnectError::Mailbox {
            path: dir.to_owned(),
            operation: "sync directory",
            source,
        })
}

fn list_pending(dir: &Path) -> Result<Vec<PendingFile>, ConnectError> {
    let io = |source| ConnectError::Mailbox {
        path: dir.to_owned(),
        operation: "list",
        source,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if is_in_progress(&name) {
            continue;
        }
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        if !metadata.is_file() {
            continue;
        }
        let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        files.push(PendingFile {
            file_id: name,
            size: metadata.len(),
            received_at: DateTime::<Utc>::from(modified),
        });
    }
    files.sort_by(|a, b| {
        a.received_at
            .cmp(&b.received_at)
            .then_with(|| a.file_id.cmp(&b.file_id))
    });
    Ok(files)
}

/// Returns true for names that are still being uploaded or are not meant to be read.
fn is_in_progress(name: &str) -> bool {
    name.starts_with('.')
        || [".tmp", ".part", ".filepart"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

fn check_file_name(name: &str) -> Result<(), ConnectError> {
    let plain =
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    if plain {
        Ok(())
    } else {
        Err(ConnectError::BadFileName(name.to_owned()))
    }
}

fn sanitize_label(label: &str) -> String {
    let cleaned: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(32)
        .collect();
    if cleaned.is_empty() {
        "batch".to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_the_folder_are_refused() {
        for bad in ["", ".", "..", "../etc/passwd", "a/b", "a\\b"] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_file_name("0192-837P.x12").is_ok());
    }

    #[test]
    fn partial_uploads_are_skipped() {
        for name in [".tmp-x", ".hidden", "a.tmp", "a.part", "a.filepart"] {
            assert!(is_in_progress(name), "{name}");
        }
        assert!(!is_in_progress("835_20261127.x12"));
    }

    #[test]
    fn labels_are_reduced_to_safe_characters() {
        assert_eq!(sanitize_label("837P"), "837P");
        assert_eq!(sanitize_label("../../x"), "x");
        assert_eq!(sanitize_label("///"), "batch");
    }
}
