//! The bytes of one received 835 file while it is ingested: in memory when it came whole (a unary
//! IngestEra, a file picked up from a payer route), or spooled to an unnamed temporary file as a
//! streamed upload arrives (IngestEraStream), so that concurrent large uploads hold about a piece
//! each in memory rather than their whole files. Both are read the same way, a piece or a stream
//! at a time: the store keeps the raw file in pieces, the 835 reader reads a window at a time.
//!
//! Spooled files live in the process's temporary directory (`TMPDIR`, else `/tmp`; the
//! Kubernetes manifests mount a disk-backed `emptyDir` there). They have no name, so the operating
//! system reclaims them when the last handle closes, a crash included.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// A received file, in memory or spooled.
#[derive(Debug, Clone)]
pub enum Upload {
    /// The whole file in memory.
    Memory(Arc<Vec<u8>>),
    /// The file in an unnamed temporary file, `len` bytes long.
    Spooled {
        /// The temporary file (read by position, so readers do not share an offset).
        file: Arc<File>,
        /// Its length.
        len: u64,
    },
}

impl Upload {
    /// Keeps `bytes` in memory.
    pub fn in_memory(bytes: Vec<u8>) -> Self {
        Self::Memory(Arc::new(bytes))
    }

    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Self::Memory(bytes) => bytes.len() as u64,
            Self::Spooled { len, .. } => *len,
        }
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Piece `index` of the file cut in pieces of `size` bytes (the last may be shorter); `None`
    /// past the end. A spooled piece is read from the temporary file (the page cache, as it was
    /// just written).
    pub fn piece(&self, index: usize, size: usize) -> io::Result<Option<Cow<'_, [u8]>>> {
        let start = index as u64 * size as u64;
        if start >= self.len() {
            return Ok(None);
        }
        let end = (start + size as u64).min(self.len());
        match self {
            Self::Memory(bytes) => Ok(Some(Cow::Borrowed(&bytes[start as usize..end as usize]))),
            Self::Spooled { file, .. } => {
                let mut piece = vec![0; (end - start) as usize];
                file.read_exact_at(&mut piece, start)?;
                Ok(Some(Cow::Owned(piece)))
            }
        }
    }

    /// A reader of the whole file from its start.
    pub fn reader(&self) -> UploadReader {
        UploadReader {
            upload: self.clone(),
            at: 0,
        }
    }
}

impl From<Arc<Vec<u8>>> for Upload {
    fn from(bytes: Arc<Vec<u8>>) -> Self {
        Self::Memory(bytes)
    }
}

impl From<Vec<u8>> for Upload {
    fn from(bytes: Vec<u8>) -> Self {
        Self::in_memory(bytes)
    }
}

/// Reads an [`Upload`] from the start; each reader keeps its own position.
#[derive(Debug)]
pub struct UploadReader {
    upload: Upload,
    at: u64,
}

impl Read for UploadReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.upload.len().saturating_sub(self.at);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = match &self.upload {
            Upload::Memory(bytes) => {
                let start = self.at as usize;
                buf[..want].copy_from_slice(&bytes[start..start + want]);
                want
            }
            Upload::Spooled { file, .. } => file.read_at(&mut buf[..want], self.at)?,
        };
        self.at += n as u64;
        Ok(n)
    }
}

/// Bytes gathered in memory before they are written to the temporary file.
const SPOOL_BUFFER: usize = 1024 * 1024;

/// Writes a streamed upload to an unnamed temporary file as it arrives.
#[derive(Debug)]
pub struct Spool {
    file: Option<File>,
    buffer: Vec<u8>,
    len: u64,
}

impl Spool {
    /// Creates the temporary file.
    ///
    /// # Errors
    /// The temporary directory is missing, full or not writable.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            file: Some(tempfile::tempfile()?),
            buffer: Vec::with_capacity(SPOOL_BUFFER),
            len: 0,
        })
    }

    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was received.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `bytes`, writing to the file (off the async workers) once a buffer's worth waits.
    pub async fn push(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buffer.extend_from_slice(bytes);
        self.len += bytes.len() as u64;
        if self.buffer.len() >= SPOOL_BUFFER {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        let Some(mut file) = self.file.take() else {
            return Err(io::Error::other(
                "the spool file was lost after a failed write",
            ));
        };
        let buffer = std::mem::take(&mut self.buffer);
        let (file, mut buffer) =
            tokio::task::spawn_blocking(move || file.write_all(&buffer).map(|()| (file, buffer)))
                .await
                .map_err(io::Error::other)??;
        buffer.clear();
        self.buffer = buffer;
        self.file = Some(file);
        Ok(())
    }

    /// Writes what is left and returns the upload to read.
    pub async fn finish(mut self) -> io::Result<Upload> {
        if !self.buffer.is_empty() {
            self.flush().await?;
        }
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("the spool file was lost after a failed write"))?;
        Ok(Upload::Spooled {
            file: Arc::new(file),
            len: self.len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content() -> Vec<u8> {
        (0..3 * SPOOL_BUFFER + 123)
            .map(|i| (i % 251) as u8)
            .collect()
    }

    #[tokio::test]
    async fn a_spooled_upload_reads_back_as_it_was_received_in_pieces_and_as_a_stream()
    -> anyhow::Result<()> {
        let bytes = content();
        let mut spool = Spool::new()?;
        // Arriving in uneven chunks, as gRPC messages do.
        for chunk in bytes.chunks(70_001) {
            spool.push(chunk).await?;
        }
        let spooled = spool.finish().await?;
        let memory = Upload::in_memory(bytes.clone());
        for upload in [&spooled, &memory] {
            assert_eq!(upload.len(), bytes.len() as u64);
            let mut pieces = Vec::new();
            let mut i = 0;
            while let Some(piece) = upload.piece(i, 1_000_000)? {
                pieces.extend_from_slice(&piece);
                i += 1;
            }
            assert_eq!(i, 4, "three whole pieces of 1,000,000 bytes and the rest");
            assert_eq!(pieces, bytes);
            let mut read = Vec::new();
            upload.reader().read_to_end(&mut read)?;
            assert_eq!(read, bytes);
            // A second reader starts at the beginning, whatever the first did.
            let mut first = [0u8; 10];
            upload.reader().read_exact(&mut first)?;
            assert_eq!(first, bytes[..10]);
        }
        Ok(())
    }
}
