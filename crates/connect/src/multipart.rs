//! A small `multipart/form-data` (RFC 7578) encoder and parser, enough for CORE envelopes.
//!
//! The whole body is in memory (CORE messages are bounded by the server's body limit), so parts are
//! zero-copy slices of it.

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
    /// A part's headers are not valid UTF-8.
    #[error("part {index} has headers that are not UTF-8")]
    BadHeaderEncoding {
        /// The 0-based position of the part.
        index: usize,
    },
    /// The body ends before the closing boundary.
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
    let mut params = content_type.split(';');
    let essence = params.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return Err(MultipartError::NotMultipart);
    }
    for param in params {
        if let Some((key, value)) = param.split_once('=')
            && key.trim().eq_ignore_ascii_case("boundary")
        {
            let value = value.trim().trim_matches('"');
            // RFC 2046: 1 to 70 characters.
            if !value.is_empty() && value.len() <= 70 {
                return Ok(value.to_owned());
            }
        }
    }
    Err(MultipartError::MissingBoundary)
}

/// Parses a multipart body into its parts.
pub fn parse(body: &Bytes, boundary: &str) -> Result<Vec<Part>, MultipartError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let next_delimiter = format!("\r\n--{boundary}");
    let next_finder = memmem::Finder::new(next_delimiter.as_bytes());

    // The opening delimiter may follow a preamble; it must start a line.
    let mut pos = match memmem::find(body, delimiter) {
        Some(0) => 0,
        Some(_) => next_finder
            .find(body)
            .map(|i| i + 2)
            .ok_or(MultipartError::NoOpeningBoundary)?,
        None => return Err(MultipartError::NoOpeningBoundary),
    };
    let mut parts = Vec::new();
    loop {
        pos += delimiter.len();
        let rest = body.get(pos..).ok_or(MultipartError::Truncated)?;
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding (spaces, tabs) may precede the line break after a delimiter.
        let padding = rest
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
        pos += padding;
        let rest = body.get(pos..).ok_or(MultipartError::Truncated)?;
        if rest.starts_with(b"\r\n") {
            pos += 2;
        } else if rest.starts_with(b"\n") {
            pos += 1;
        } else {
            return Err(MultipartError::Truncated);
        }
        let index = parts.len();
        let rest = body.get(pos..).ok_or(MultipartError::Truncated)?;
        let (header_len, sep_len) = if rest.starts_with(b"\r\n") {
            (0, 2)
        } else {
            match memmem::find(rest, b"\r\n\r\n") {
                Some(i) => (i, 4),
                None => return Err(MultipartError::UnterminatedHeaders { index }),
            }
        };
        let headers = std::str::from_utf8(&rest[..header_len])
            .map_err(|_| MultipartError::BadHeaderEncoding { index })?;
        let (name, filename) = disposition(headers).ok_or(MultipartError::MissingName { index })?;
        let content_start = pos + header_len + sep_len;
        let tail = body.get(content_start..).ok_or(MultipartError::Truncated)?;
        let content_len = next_finder.find(tail).ok_or(MultipartError::Truncated)?;
        parts.push(Part {
            name,
            filename,
            content: body.slice(content_start..content_start + content_len),
        });
        pos = content_start + content_len + 2;
    }
}

/// Finds `name` and `filename` in the `Content-Disposition: form-data` header.
fn disposition(headers: &str) -> Option<(String, Option<String>)> {
    for line in headers.split("\r\n") {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("content-disposition") {
            continue;
        }
        let mut params = value.split(';');
        if !params
            .next()
            .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("form-data"))
        {
            return None;
        }
        let mut name = None;
        let mut filename = None;
        for param in params {
            if let Some((k, v)) = param.split_once('=') {
                let v = v.trim().trim_matches('"').to_owned();
                match k.trim().to_ascii_lowercase().as_str() {
                    "name" => name = Some(v),
                    "filename" => filename = Some(v),
                    _ => {}
                }
            }
        }
        return name.filter(|n| !n.is_empty()).map(|n| (n, filename));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_parse_round_trips_binary_content() {
        let payload: &[u8] = b"ISA*00*~\r\nGS*HS~\r\n--not-the-boundary\r\n";
        let boundary = boundary_for([payload]);
        let body = encode(
            &boundary,
            &[("PayloadType", b"X12_270"), ("Payload", payload)],
        );
        let parts = parse(&body, &boundary).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "PayloadType");
        assert_eq!(&parts[0].content[..], b"X12_270");
        assert_eq!(parts[1].name, "Payload");
        assert_eq!(&parts[1].content[..], payload);
    }

    #[test]
    fn parses_a_hand_written_body_with_preamble_filename_and_empty_field() {
        let body = Bytes::from_static(
            b"preamble\r\n--XyZ\r\ncontent-disposition: form-data; name=\"A\"\r\n\r\n1\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"Payload\"; filename=\"f.x12\"\r\n\
              Content-Type: application/octet-stream\r\n\r\nabc\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"Empty\"\r\n\r\n\r\n--XyZ--\r\n",
        );
        let parts = parse(&body, "XyZ").unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(&parts[0].content[..], b"1");
        assert_eq!(parts[1].filename.as_deref(), Some("f.x12"));
        assert_eq!(&parts[1].content[..], b"abc");
        assert_eq!(parts[2].name, "Empty");
        assert!(parts[2].content.is_empty());
    }

    #[test]
    fn truncated_body_is_an_error() {
        let body =
            Bytes::from_static(b"--B\r\nContent-Disposition: form-data; name=\"A\"\r\n\r\n12");
        assert_eq!(parse(&body, "B"), Err(MultipartError::Truncated));
    }

    #[test]
    fn part_without_name_is_reported_by_position() {
        let body = Bytes::from_static(
            b"--B\r\nContent-Disposition: form-data; name=\"A\"\r\n\r\n1\r\n--B\r\nContent-Type: text/plain\r\n\r\n2\r\n--B--",
        );
        assert_eq!(
            parse(&body, "B"),
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

    #[test]
    fn garbage_never_panics() {
        for body in [
            &b""[..],
            b"--",
            b"--B",
            b"--B\r\n",
            b"--B\r\n\r\n",
            b"--Bxx",
            b"--B  \r\nX",
        ] {
            let _ = parse(&Bytes::copy_from_slice(body), "B");
        }
    }
}
