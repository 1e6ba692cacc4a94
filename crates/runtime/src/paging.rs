//! Opaque page tokens and page-size normalisation for List RPCs.
//!
//! A token carries the cursor (the last id returned; ids are UUID v7, so id order is creation
//! order) and a fingerprint of the query's filters. Presenting a token with different filters
//! is rejected rather than silently producing a wrong page. Tokens are URL-safe base64 without
//! padding; their layout is private and may change (a version byte guards it).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::ServiceError;

/// Page size used when the request says 0.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page size served; larger requests are clamped.
pub const MAX_PAGE_SIZE: u32 = 500;

const TOKEN_VERSION: u8 = 1;
const FINGERPRINT_LEN: usize = 12;
/// Longest token accepted, so garbage cannot make us allocate much.
const MAX_TOKEN_CHARS: usize = 1024;
const FIELD: &str = "page_token";

/// A normalised page size: 1..=[`MAX_PAGE_SIZE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    /// Normalises a requested size: 0 means [`DEFAULT_PAGE_SIZE`], above [`MAX_PAGE_SIZE`]
    /// is clamped.
    pub fn new(requested: u32) -> Self {
        match requested {
            0 => Self(DEFAULT_PAGE_SIZE),
            n => Self(n.min(MAX_PAGE_SIZE)),
        }
    }

    /// Normalises a proto `int32 page_size`; a negative size is INVALID_ARGUMENT.
    pub fn from_i32(requested: i32) -> Result<Self, ServiceError> {
        u32::try_from(requested).map(Self::new).map_err(|_| {
            ServiceError::invalid_argument(
                "page_size",
                format!("must not be negative, got {requested}"),
            )
        })
    }

    /// Returns the size.
    pub fn get(self) -> u32 {
        self.0
    }

    /// Returns the number of rows to fetch: one more than the page, so the store can tell
    /// whether another page follows.
    pub fn fetch_limit(self) -> u32 {
        self.0 + 1
    }
}

impl Default for PageSize {
    fn default() -> Self {
        Self(DEFAULT_PAGE_SIZE)
    }
}

/// A digest of the filters of one List query (and anything else that must match, such as
/// the tenant), so a token cannot be replayed against another query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryFingerprint([u8; FINGERPRINT_LEN]);

impl QueryFingerprint {
    /// Starts a fingerprint for the List RPC named `query` (e.g. `"claims.ListClaims"`).
    pub fn builder(query: &str) -> FingerprintBuilder {
        let mut builder = FingerprintBuilder(Sha256::new());
        builder.write(query.as_bytes());
        builder
    }
}

/// Accumulates filter values into a [`QueryFingerprint`].
#[derive(Clone, Debug)]
pub struct FingerprintBuilder(Sha256);

impl FingerprintBuilder {
    fn write(&mut self, bytes: &[u8]) {
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// Adds a named filter value (use [`FingerprintBuilder::optional`] for optional filters).
    pub fn field(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.write(name.as_bytes());
        self.0.update([1]);
        self.write(value.as_ref().as_bytes());
        self
    }

    /// Adds an optional filter; `None` and `Some("")` fingerprint differently.
    pub fn optional(mut self, name: &str, value: Option<impl AsRef<str>>) -> Self {
        match value {
            Some(v) => self.field(name, v),
            None => {
                self.write(name.as_bytes());
                self.0.update([0]);
                self
            }
        }
    }

    /// Finishes the fingerprint.
    pub fn finish(self) -> QueryFingerprint {
        let digest = self.0.finalize();
        let mut out = [0u8; FINGERPRINT_LEN];
        out.copy_from_slice(&digest[..FINGERPRINT_LEN]);
        QueryFingerprint(out)
    }
}

/// Encodes a page token that resumes after `cursor` for the query `fingerprint`.
pub fn encode_page_token(cursor: &str, fingerprint: &QueryFingerprint) -> String {
    let mut raw = Vec::with_capacity(1 + FINGERPRINT_LEN + cursor.len());
    raw.push(TOKEN_VERSION);
    raw.extend_from_slice(&fingerprint.0);
    raw.extend_from_slice(cursor.as_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a request's page token: an empty token is the first page (`None`), otherwise the
/// cursor to resume after. A malformed token, or one from a query with other filters, is
/// INVALID_ARGUMENT on `page_token`.
pub fn decode_page_token(
    token: &str,
    fingerprint: &QueryFingerprint,
) -> Result<Option<String>, ServiceError> {
    if token.is_empty() {
        return Ok(None);
    }
    let malformed = || {
        ServiceError::invalid_argument(
            FIELD,
            "malformed page token; pass the next_page_token of a previous response unchanged",
        )
    };
    if token.len() > MAX_TOKEN_CHARS {
        return Err(malformed());
    }
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| malformed())?;
    let (version, rest) = raw.split_first().ok_or_else(malformed)?;
    if *version != TOKEN_VERSION || rest.len() <= FINGERPRINT_LEN {
        return Err(malformed());
    }
    let (fp, cursor) = rest.split_at(FINGERPRINT_LEN);
    if fp != fingerprint.0 {
        return Err(ServiceError::invalid_argument(
            FIELD,
            "page token belongs to another query (its filters differ from this request's); \
             repeat the original filters or start again without a page token",
        ));
    }
    let cursor = std::str::from_utf8(cursor).map_err(|_| malformed())?;
    Ok(Some(cursor.to_owned()))
}

/// Cuts a fetched batch (fetched with [`PageSize::fetch_limit`]) to the page and returns it
/// with the next page token ("" on the last page).
pub fn split_page<T>(
    mut rows: Vec<T>,
    size: PageSize,
    fingerprint: &QueryFingerprint,
    cursor_of: impl Fn(&T) -> String,
) -> (Vec<T>, String) {
    let page_len = size.get() as usize;
    if rows.len() <= page_len {
        return (rows, String::new());
    }
    rows.truncate(page_len);
    let next = rows
        .last()
        .map(|last| encode_page_token(&cursor_of(last), fingerprint))
        .unwrap_or_default();
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(status: &str) -> QueryFingerprint {
        QueryFingerprint::builder("claims.ListClaims")
            .field("tenant", "clinic-a")
            .field("status", status)
            .optional("patient_ref", None::<&str>)
            .finish()
    }

    fn field_and_reason(err: ServiceError) -> (String, String) {
        match err {
            ServiceError::InvalidArgument { field, reason } => (field, reason),
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn page_size_normalises() {
        assert_eq!(PageSize::new(0).get(), 50);
        assert_eq!(PageSize::new(1).get(), 1);
        assert_eq!(PageSize::new(500).get(), 500);
        assert_eq!(PageSize::new(501).get(), 500);
        assert_eq!(PageSize::new(u32::MAX).get(), 500);
        assert_eq!(PageSize::new(20).fetch_limit(), 21);
        assert_eq!(PageSize::from_i32(0).unwrap().get(), 50);
        let (field, reason) = field_and_reason(PageSize::from_i32(-1).unwrap_err());
        assert_eq!(field, "page_size");
        assert!(reason.contains("-1"));
    }

    #[test]
    fn token_round_trips_its_cursor() {
        let cursor = "0191f7a2-7c3e-7b4e-9a51-6e4f2d1c0b9a";
        let token = encode_page_token(cursor, &fp("READY"));
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(
            decode_page_token(&token, &fp("READY")).unwrap().as_deref(),
            Some(cursor)
        );
        assert_eq!(decode_page_token("", &fp("READY")).unwrap(), None);
    }

    #[test]
    fn token_from_another_query_is_rejected() {
        let token = encode_page_token("0191-x", &fp("READY"));
        let (field, reason) = field_and_reason(decode_page_token(&token, &fp("PAID")).unwrap_err());
        assert_eq!(field, "page_token");
        assert!(reason.contains("another query"), "{reason}");

        let other_tenant = QueryFingerprint::builder("claims.ListClaims")
            .field("tenant", "clinic-b")
            .field("status", "READY")
            .optional("patient_ref", None::<&str>)
            .finish();
        assert!(decode_page_token(&token, &other_tenant).is_err());
    }

    #[test]
    fn fingerprint_separates_absent_empty_and_shifted_values() {
        let a = QueryFingerprint::builder("q")
            .optional("x", None::<&str>)
            .finish();
        let b = QueryFingerprint::builder("q")
            .optional("x", Some(""))
            .finish();
        assert_ne!(a, b);
        let c = QueryFingerprint::builder("q").field("a", "bc").finish();
        let d = QueryFingerprint::builder("q").field("ab", "c").finish();
        assert_ne!(c, d);
        assert_eq!(fp("READY"), fp("READY"));
    }

    #[test]
    fn garbage_tokens_are_malformed_not_panics() {
        let long = "A".repeat(5000);
        let inputs = [
            "not base64!!",
            "AA",
            "AQ",
            long.as_str(),
            &URL_SAFE_NO_PAD.encode([9u8; 20]),
            &URL_SAFE_NO_PAD.encode([1u8; 5]),
        ];
        for input in inputs {
            let (field, reason) =
                field_and_reason(decode_page_token(input, &fp("READY")).unwrap_err());
            assert_eq!(field, "page_token");
            assert!(reason.contains("malformed"), "{input}: {reason}");
        }
        // A valid envelope whose cursor is not UTF-8.
        let mut raw = vec![TOKEN_VERSION];
        raw.extend_from_slice(&fp("READY").0);
        raw.extend_from_slice(&[0xff, 0xfe]);
        let token = URL_SAFE_NO_PAD.encode(raw);
        assert!(decode_page_token(&token, &fp("READY")).is_err());
    }

    #[test]
    fn split_page_emits_a_token_only_when_more_rows_exist() {
        let fingerprint = fp("READY");
        let size = PageSize::new(2);
        let (page, next) = split_page(vec![1, 2, 3], size, &fingerprint, |n| format!("id-{n}"));
        assert_eq!(page, vec![1, 2]);
        assert_eq!(
            decode_page_token(&next, &fingerprint).unwrap().as_deref(),
            Some("id-2")
        );

        let (page, next) = split_page(vec![1, 2], size, &fingerprint, |n| format!("id-{n}"));
        assert_eq!(page, vec![1, 2]);
        assert_eq!(next, "");
    }
}
