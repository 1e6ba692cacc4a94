//! Database URL handling: scheme detection, per-service SQLite files, password redaction.

use std::path::{Path, PathBuf};

use crate::{Backend, StorageError};

/// Returns the backend named by the URL's scheme, or [`StorageError::UnknownScheme`].
pub fn backend_of(url: &str) -> Result<Backend, StorageError> {
    let scheme = url.split_once(':').map_or("", |(s, _)| s);
    match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => Ok(Backend::Postgres),
        "sqlite" => Ok(Backend::Sqlite),
        _ => Err(StorageError::UnknownScheme {
            scheme: scheme.to_owned(),
        }),
    }
}

/// Checks that a namespace is a plain lowercase identifier, safe to splice into SQL and paths.
pub fn validate_namespace(ns: &str) -> Result<(), StorageError> {
    let mut chars = ns.chars();
    let ok = ns.len() <= 48
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidNamespace(ns.to_owned()))
    }
}

/// Derives the SQLite file of one service from the configured path.
///
/// - a directory (an existing one, or a path ending in `/`): `<dir>/<namespace>.db`
///   (`sqlite://data/` -> `data/claims.db`);
/// - a file: the namespace is appended to the file stem
///   (`sqlite://data/medbill.db` -> `data/medbill-claims.db`, `x/app` -> `x/app-claims`).
pub fn sqlite_service_path(configured: &Path, namespace: &str) -> PathBuf {
    let as_text = configured.to_string_lossy();
    if as_text.ends_with('/') || as_text.ends_with(std::path::MAIN_SEPARATOR) || configured.is_dir()
    {
        return configured.join(format!("{namespace}.db"));
    }
    let stem = configured
        .file_stem()
        .map_or_else(|| "medbill".into(), |s| s.to_string_lossy().into_owned());
    let file = match configured.extension() {
        Some(ext) => format!("{stem}-{namespace}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{namespace}"),
    };
    configured.with_file_name(file)
}

/// Returns the URL with any password (in the userinfo or a `password=` parameter) replaced by `***`.
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _password)) => format!("{user}:***@{host}"),
                    None => format!("{userinfo}@{host}"),
                },
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => base.to_owned(),
    };
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_backends_and_names_unknown_scheme() {
        assert_eq!(
            backend_of("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            backend_of("postgresql://h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(backend_of("sqlite://data/x.db").ok(), Some(Backend::Sqlite));
        assert_eq!(backend_of("sqlite::memory:").ok(), Some(Backend::Sqlite));
        let err = backend_of("mysql://h/db").unwrap_err();
        assert!(err.to_string().contains("`mysql`"), "{err}");
        let err = backend_of("data/x.db").unwrap_err();
        assert!(err.to_string().contains("scheme ``"), "{err}");
    }

    #[test]
    fn validates_namespaces() {
        assert!(validate_namespace("claims").is_ok());
        assert!(validate_namespace("test_1").is_ok());
        for bad in ["", "Claims", "1x", "a-b", "a\"b", "a;drop", &"x".repeat(49)] {
            assert!(validate_namespace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn derives_per_service_sqlite_files() {
        assert_eq!(
            sqlite_service_path(Path::new("data/medbill.db"), "claims"),
            PathBuf::from("data/medbill-claims.db")
        );
        assert_eq!(
            sqlite_service_path(Path::new("data/"), "claims"),
            PathBuf::from("data/claims.db")
        );
        assert_eq!(
            sqlite_service_path(Path::new("/tmp/app"), "remittance"),
            PathBuf::from("/tmp/app-remittance")
        );
        let dir = std::env::temp_dir();
        assert_eq!(sqlite_service_path(&dir, "x"), dir.join("x.db"));
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/medbill"),
            "postgres://app:***@db:5432/medbill"
        );
        assert_eq!(
            redact("postgres://app@db/medbill"),
            "postgres://app@db/medbill"
        );
        assert_eq!(
            redact("postgres://db/medbill?user=a&password=s3cret&sslmode=require"),
            "postgres://db/medbill?user=a&password=***&sslmode=require"
        );
        assert_eq!(redact("sqlite://data/x.db"), "sqlite://data/x.db");
        assert!(!redact("postgresql://u:p%40ss@h/d").contains("p%40ss"));
    }
}
