//! `multipart/form-data` (RFC 7578) for CORE envelopes: a small encoder, and parsing by `multer`.
//!
//! The whole body is in memory (CORE messages are bounded by the server's and client's body
//! limits); it is parsed as a one-chunk stream.
//!
//! multer costs more CPU than the hand-written parser it replaced, measured (optimised build,
//! loopback, the `core_roundtrip` bench's 1.6 kB real-time request): about 13 us against 3.5 us
//! per envelope, so about 18 us more CPU per round trip (two decodes); a 4 MiB batch body takes
//! 0.3 ms against 0.12 ms, beside 4 ms for its SHA-1 check. A payer exchange takes tens to
//! hundreds of milliseconds, so a maintained parser is worth it here.

use std::convert::Infallible;

use bytes::{BufMut, Bytes, BytesMut};
use memchr::memmem;

/// One form field of a multipart body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The `name` parameter of `Content-Disposition`.
    pub name: String,
    /// The `filename` parameter, when the part was sent as a file.
    pub filename: Option<String>,
    /// The content, exactly as sent.
    pub content: Bytes,
}

/// Why a multipart body could not be parsed; says where, never what the content was.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    /// The `Content-Type` is not `multipart/form-data`.
    #[error("content type is not multipart/form-data")]
    NotMultipart,
    /// The `Content-Type` has no usable `boundary` parameter.
    #[error("content type has no boundary parameter")]
    MissingBoundary,
    /// The body never contains the opening boundary.
    #[error("body does not start with the multipart boundary")]
    NoOpeningBoundary,
    /// A part's headers are not terminated by an empty line.
    #[error("part {index} has unterminated headers")]
    UnterminatedHeaders {
        /// The 0-based position of the part.
        index: usize,
    },
    /// A part has no `Content-Disposition: form-data; name=...` header.
    #[error("part {index} has no form-data name")]
    MissingName {
        /// The 0-based position of the part.
        index: usize,
    },
    /// A part's headers are not well-formed header lines.
    #[error("part {index} has malformed headers")]
    MalformedHeaders {
        /// The 0-based position of the part.
        index: usize,
    },
    /// The body ends before the closing boundary, or a delimiter line is broken.
    #[error("body ends before the closing boundary")]
    Truncated,
}

/// Returns a fresh boundary that does not occur in any of `contents`.
pub fn boundary_for<'a>(contents: impl IntoIterator<Item = &'a [u8]> + Clone) -> String {
    loop {
        let candidate = format!("medbill-core-{}", uuid::Uuid::new_v4().simple());
        let clash = contents
            .clone()
            .into_iter()
            .any(|c| memmem::find(c, candidate.as_bytes()).is_some());
        if !clash {
            return candidate;
        }
    }
}

/// Returns the `Content-Type` header value for `boundary`.
pub fn content_type(boundary: &str) -> String {
    format!("multipart/form-data; boundary={boundary}")
}

/// Encodes `(name, content)` fields as a multipart body with `boundary`.
pub fn encode(boundary: &str, fields: &[(&str, &[u8])]) -> Bytes {
    let size: usize = fields
        .iter()
        .map(|(name, content)| content.len() + name.len() + boundary.len() + 64)
        .sum();
    let mut out = BytesMut::with_capacity(size + boundary.len() + 8);
    for (name, content) in fields {
        out.put_slice(b"--");
        out.put_slice(boundary.as_bytes());
        out.put_slice(b"\r\nContent-Disposition: form-data; name=\"");
        out.put_slice(name.as_bytes());
        out.put_slice(b"\"\r\n\r\n");
        out.put_slice(content);
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"--");
    out.put_slice(boundary.as_bytes());
    out.put_slice(b"--\r\n");
    out.freeze()
}

/// Extracts the boundary from a `multipart/form-data` content type.
pub fn boundary_from_content_type(content_type: &str) -> Result<String, MultipartError> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| match e {
        multer::Error::NoBoundary => MultipartError::MissingBoundary,
        _ => MultipartError::NotMultipart,
    })?;
    // RFC 2046: 1 to 70 characters.
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(MultipartError::MissingBoundary);
    }
    Ok(boundary)
}

/// Parses a multipart body, already in memory, into its parts.
///
/// The body is handed to `multer` as a single chunk, so each part's content is a slice of one
/// copy of the body.
pub async fn parse(body: &Bytes, boundary: &str) -> Result<Vec<Part>, MultipartError> {
    let chunk = body.clone();
    let stream = futures::stream::once(async move { Ok::<_, Infallible>(chunk) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    loop {
        let index = parts.len();
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(parts),
            Err(e) => return Err(MultipartError::from_multer(e, index, body, boundary)),
        };
        let name = field
            .name()
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .ok_or(MultipartError::MissingName { index })?;
        let filename = field.file_name().map(str::to_owned);
        let content = read_content(field)
            .await
            .map_err(|e| MultipartError::from_multer(e, index, body, boundary))?;
        parts.push(Part {
            name,
            filename,
            content,
        });
    }
}

/// Reads a field's content; a body given as one chunk yields it as one chunk, kept without copying.
async fn read_content(mut field: multer::Field<'_>) -> Result<Bytes, multer::Error> {
    let mut content = Bytes::new();
    while let Some(chunk) = field.chunk().await? {
        if content.is_empty() {
            content = chunk;
        } else {
            let mut joined = BytesMut::with_capacity(content.len() + chunk.len());
            joined.put_slice(&content);
            joined.put_slice(&chunk);
            content = joined.freeze();
        }
    }
    Ok(content)
}

impl MultipartError {
    /// Says where `multer` stopped, never what the content was.
    fn from_multer(error: multer::Error, index: usize, body: &[u8], boundary: &str) -> Self {
        match error {
            multer::Error::IncompleteHeaders => Self::UnterminatedHeaders { index },
            multer::Error::ReadHeaderFailed(_)
            | multer::Error::DecodeHeaderName { .. }
            | multer::Error::DecodeHeaderValue { .. } => Self::MalformedHeaders { index },
            multer::Error::IncompleteStream
                if index == 0
                    && memmem::find(body, format!("--{boundary}").as_bytes()).is_none() =>
            {
                Self::NoOpeningBoundary
            }
            // The rest is a body cut short or a delimiter line that is not one. Size limits,
            // allowed-field lists and stream read errors cannot occur: none are set, and the body
            // is a single chunk already in memory.
            _ => Self::Truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn encode_then_parse_round_trips_binary_content() {
        let payload: &[u8] = b"ISA*00*~\r\nGS*HS~\r\n--not-the-boundary\r\n";
        let boundary = boundary_for([payload]);
        let body = encode(
            &boundary,
            &[("PayloadType", b"X12_270"), ("Payload", payload)],
        );
        let parts = parse(&body, &boundary).await.unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "PayloadType");
        assert_eq!(&parts[0].content[..], b"X12_270");
        assert_eq!(parts[1].name, "Payload");
        assert_eq!(&parts[1].content[..], payload);
    }

    #[tokio::test]
    async fn parses_a_hand_written_body_with_preamble_filename_and_empty_field() {
        let body = Bytes::from_static(
            b"preamble\r\n--XyZ\r\ncontent-disposition: form-data; name=\"A\"\r\n\r\n1\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"Payload\"; filename=\"f.x12\"\r\n\
              Content-Type: application/octet-stream\r\n\r\nabc\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"Empty\"\r\n\r\n\r\n--XyZ--\r\n",
        );
        let parts = parse(&body, "XyZ").await.unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(&parts[0].content[..], b"1");
        assert_eq!(parts[1].filename.as_deref(), Some("f.x12"));
        assert_eq!(&parts[1].content[..], b"abc");
        assert_eq!(parts[2].name, "Empty");
        assert!(parts[2].content.is_empty());
    }

    #[tokio::test]
    async fn truncated_body_is_an_error() {
        let body =
            Bytes::from_static(b"--B\r\nContent-Disposition: form-data; name=\"A\"\r\n\r\n12");
        assert_eq!(parse(&body, "B").await, Err(MultipartError::Truncated));
    }

    #[tokio::test]
    async fn part_without_name_is_reported_by_position() {
        let body = Bytes::from_static(
            b"--B\r\nContent-Disposition: form-data; name=\"A\"\r\n\r\n1\r\n--B\r\nContent-Type: text/plain\r\n\r\n2\r\n--B--",
        );
        assert_eq!(
            parse(&body, "B").await,
            Err(MultipartError::MissingName { index: 1 })
        );
    }

    #[test]
    fn boundary_is_read_from_quoted_content_type() {
        assert_eq!(
            boundary_from_content_type("Multipart/Form-Data; charset=utf-8; boundary=\"a b\"")
                .unwrap(),
            "a b"
        );
        assert_eq!(
            boundary_from_content_type("application/json"),
            Err(MultipartError::NotMultipart)
        );
        assert_eq!(
            boundary_from_content_type("multipart/form-data"),
            Err(MultipartError::MissingBoundary)
        );
    }

    #[tokio::test]
    async fn garbage_never_panics() {
        for body in [
            &b""[..],
            b"--",
            b"--B",
            b"--B\r\n",
            b"--B\r\n\r\n",
            b"--Bxx",
            b"--B  \r\nX",
        ] {
            assert!(parse(&Bytes::copy_from_slice(body), "B").await.is_err());
        }
    }

    #[tokio::test]
    async fn errors_say_where_the_body_broke() {
        let parse_static = |body: &'static [u8]| parse_owned(Bytes::from_static(body));
        assert_eq!(
            parse_static(b"no delimiter anywhere").await,
            Err(MultipartError::NoOpeningBoundary)
        );
        // A delimiter line that does not end in CRLF.
        assert_eq!(
            parse_static(b"--Bxx\r\n").await,
            Err(MultipartError::Truncated)
        );
        // Headers cut off before their blank line.
        assert_eq!(
            parse_static(b"--B\r\nContent-Disposition: form-data; name=\"A\"\r\n").await,
            Err(MultipartError::Truncated)
        );
        // A header line that is not `name: value`.
        assert_eq!(
            parse_static(
                b"--B\r\nContent-Disposition: form-data; name=\"A\"\r\n\r\n1\r\n--B\r\nnot a header\r\n\r\n2\r\n--B--"
            )
            .await,
            Err(MultipartError::MalformedHeaders { index: 1 })
        );
        // No closing delimiter after the last part.
        assert_eq!(
            parse_static(b"--B\r\nContent-Disposition: form-data; name=\"A\"\r\n\r\n1\r\n--B")
                .await,
            Err(MultipartError::Truncated)
        );
    }

    async fn parse_owned(body: Bytes) -> Result<Vec<Part>, MultipartError> {
        parse(&body, "B").await
    }

    #[tokio::test]
    async fn content_with_crlf_and_boundary_lookalikes_is_kept_exactly() {
        let tricky: &[u8] = b"\r\n-B-\r\n--\r\n\r\n\xff\x00 --B end\r\n";
        let body = encode("B", &[("Payload", tricky), ("After", b"x")]);
        let parts = parse(&body, "B").await.unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(&parts[0].content[..], tricky);
        assert_eq!(&parts[1].content[..], b"x");
        assert_eq!(parts[0].filename, None);
    }
}
