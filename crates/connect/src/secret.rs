//! Secrets (passwords, tokens) read from the environment or a file, never printed.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Names where a secret lives; the configuration holds this reference, never the secret itself.
///
/// In TOML: `password = { env = "MEDBILL_ACME_PASSWORD" }` or `token = { file = "/run/secrets/acme" }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// Reads the secret from this environment variable.
    Env(String),
    /// Reads the secret from this file (a trailing line break is dropped), as Kubernetes mounts secrets.
    File(PathBuf),
}

impl SecretSource {
    /// Reads the secret now; fails naming the variable or file (never the value) when it is missing or empty.
    pub fn resolve(&self) -> Result<Secret, ConfigError> {
        let value = match self {
            Self::Env(name) => std::env::var(name).map_err(|_| ConfigError::SecretMissing {
                source_name: format!("environment variable {name}"),
            })?,
            Self::File(path) => {
                let raw =
                    std::fs::read_to_string(path).map_err(|e| ConfigError::SecretUnreadable {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                raw.trim_end_matches(['\r', '\n']).to_owned()
            }
        };
        if value.is_empty() {
            return Err(ConfigError::SecretMissing {
                source_name: match self {
                    Self::Env(name) => format!("environment variable {name} (empty)"),
                    Self::File(path) => format!("file {} (empty)", path.display()),
                },
            });
        }
        Ok(Secret(value))
    }
}

/// A secret value whose `Debug` output is redacted; it has no `Display` so it cannot slip into a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value (for tests and for servers that hold expected credentials).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the secret; call only where it is put on the wire or compared.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with `other` in time independent of where they differ, so a caller cannot probe it byte by byte.
    pub fn constant_time_eq(&self, other: &[u8]) -> bool {
        let mine = self.0.as_bytes();
        if mine.len() != other.len() {
            return false;
        }
        mine.iter()
            .zip(other)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }

    #[test]
    fn file_secret_drops_the_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc123\n").unwrap();
        let secret = SecretSource::File(path).resolve().unwrap();
        assert_eq!(secret.expose(), "abc123");
    }

    #[test]
    fn missing_env_var_is_named_without_a_value() {
        let err = SecretSource::Env("MEDBILL_CONNECT_TEST_SURELY_UNSET".into())
            .resolve()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("MEDBILL_CONNECT_TEST_SURELY_UNSET")
        );
    }

    #[test]
    fn constant_time_eq_compares_exactly() {
        let secret = Secret::new("abc");
        assert!(secret.constant_time_eq(b"abc"));
        assert!(!secret.constant_time_eq(b"abd"));
        assert!(!secret.constant_time_eq(b"abcd"));
    }
}
