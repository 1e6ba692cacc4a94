//! Codes of up to eight ASCII characters packed into one `u64`, so the large sets (ICD-10-CM,
//! HCPCS, NCCI pairs) are hashed and compared as integers instead of strings.

/// Packs `code` (1 to 8 ASCII characters, compared case-sensitively) into a `u64`; `None` for an
/// empty, longer or non-ASCII code, which no set holds.
pub(crate) fn pack(code: &str) -> Option<u64> {
    let b = code.as_bytes();
    if b.is_empty() || b.len() > 8 || !b.is_ascii() {
        return None;
    }
    let mut out = [0u8; 8];
    out[..b.len()].copy_from_slice(b);
    Some(u64::from_be_bytes(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_codes_pack_to_distinct_keys() {
        assert_ne!(pack("A00"), pack("A000"));
        assert_ne!(pack("E119"), pack("e119"));
        assert_eq!(pack("E119"), pack("E119"));
        assert_eq!(pack(""), None);
        assert_eq!(pack("123456789"), None);
        assert_eq!(pack("É1"), None);
    }
}
