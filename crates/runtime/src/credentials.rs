//! The tokens a service sends on calls it makes on its own, without an inbound request to
//! borrow one from (the outbox relay, pollers): a static token configured for the tenant, or an
//! OAuth 2.0 client-credentials token (`[client.oidc]`) obtained from the identity provider and
//! kept until shortly before it expires.
//!
//! Calls made while serving a request pass the caller's own token on instead
//! ([`crate::auth::forward_caller_token`]), so the downstream service sees who started it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use crate::config::{AuthConfig, Secret};
use crate::http_client::HttpClient;

/// The `[client.oidc]` section: the service's own client-credentials grant.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ClientCredentialsConfig {
    /// The provider's token endpoint.
    pub token_url: String,
    /// This service's client id.
    pub client_id: String,
    /// Its client secret (prefer `client_secret_file`).
    pub client_secret: Option<Secret>,
    /// A file holding the client secret (a mounted Secret), read when the configuration loads.
    pub client_secret_file: Option<PathBuf>,
    /// The scopes asked for, space-separated (e.g. `claims.write collections.payments`).
    pub scope: Option<String>,
    /// Sent as the `audience` parameter, for providers that take it (the suite's audience).
    pub audience: Option<String>,
    /// The tenant the provider puts in this client's tokens: background calls for this tenant
    /// use them (a static token configured for the tenant is preferred).
    pub tenant: String,
    /// A token is replaced this long before it expires.
    pub refresh_before_secs: u64,
    /// Longest a token request may take.
    pub timeout_ms: u64,
    /// PEM CA certificates trusted for an `https://` `token_url` instead of the public web roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for ClientCredentialsConfig {
    fn default() -> Self {
        Self {
            token_url: String::new(),
            client_id: String::new(),
            client_secret: None,
            client_secret_file: None,
            scope: None,
            audience: None,
            tenant: String::new(),
            refresh_before_secs: 60,
            timeout_ms: 5_000,
            ca_file: None,
        }
    }
}

impl ClientCredentialsConfig {
    /// The key and reason of the first inconsistency, if any (after secret files are read).
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if !(self.token_url.starts_with("https://") || self.token_url.starts_with("http://")) {
            return Some((
                "client.oidc.token_url",
                "is required and must start with https:// or http://",
            ));
        }
        if self.client_id.trim().is_empty() {
            return Some(("client.oidc.client_id", "is required"));
        }
        if self.client_secret.is_none() {
            return Some((
                "client.oidc.client_secret_file",
                "one of client.oidc.client_secret_file and client.oidc.client_secret is required",
            ));
        }
        if self.tenant.trim().is_empty() {
            return Some((
                "client.oidc.tenant",
                "is required: the tenant this client's tokens act for",
            ));
        }
        if self.timeout_ms == 0 {
            return Some(("client.oidc.timeout_ms", "must be at least 1"));
        }
        None
    }
}

/// A client-credentials token source: one request to the provider per token lifetime.
pub struct ClientCredentials {
    config: ClientCredentialsConfig,
    http: HttpClient,
    cached: tokio::sync::Mutex<Option<(Secret, Instant)>>,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_url", &self.config.token_url)
            .field("client_id", &self.config.client_id)
            .field("tenant", &self.config.tenant)
            .finish_non_exhaustive()
    }
}

/// The token endpoint's answer (RFC 6749 section 5.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

/// The token endpoint's error answer (RFC 6749 section 5.2).
#[derive(Deserialize)]
struct TokenError {
    error: String,
    error_description: Option<String>,
}

/// Assumed lifetime of a token whose answer gives none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

impl ClientCredentials {
    /// Builds the source; no request is made until a token is needed.
    pub fn new(config: &ClientCredentialsConfig) -> Result<Self, String> {
        if let Some((key, reason)) = config.problem() {
            return Err(format!("{key}: {reason}"));
        }
        Ok(Self {
            config: config.clone(),
            http: HttpClient::new(config.ca_file.as_deref())
                .map_err(|e| format!("client.oidc.ca_file: {e}"))?,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// The tenant this client's tokens act for.
    pub fn tenant(&self) -> &str {
        &self.config.tenant
    }

    /// Returns a token valid for at least `refresh_before_secs` more, asking the provider for
    /// a new one when the cached one is too close to expiry. Concurrent callers share a request.
    pub async fn token(&self) -> Result<Secret, String> {
        let mut cached = self.cached.lock().await;
        let margin = Duration::from_secs(self.config.refresh_before_secs);
        if let Some((token, expires)) = cached.as_ref()
            && Instant::now() + margin < *expires
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.request().await?;
        // A lifetime shorter than the margin is still used once rather than never.
        let expires = Instant::now() + lifetime;
        *cached = Some((token.clone(), expires));
        Ok(token)
    }

    async fn request(&self) -> Result<(Secret, Duration), String> {
        let config = &self.config;
        let secret = config
            .client_secret
            .as_ref()
            .map(Secret::expose)
            .unwrap_or("");
        let mut fields = vec![
            ("grant_type", "client_credentials"),
            ("client_id", config.client_id.as_str()),
            ("client_secret", secret),
        ];
        if let Some(scope) = &config.scope {
            fields.push(("scope", scope));
        }
        if let Some(audience) = &config.audience {
            fields.push(("audience", audience));
        }
        let timeout = Duration::from_millis(config.timeout_ms);
        let (status, body) = self
            .http
            .post_form(&config.token_url, &fields, timeout)
            .await?;
        if !status.is_success() {
            // The provider's error code and description, never the request (it holds the secret).
            let detail = serde_json::from_slice::<TokenError>(&body)
                .map(|e| match e.error_description {
                    Some(d) => format!("{}: {d}", e.error),
                    None => e.error,
                })
                .unwrap_or_else(|_| "no OAuth error in the answer".to_owned());
            return Err(format!(
                "token request to {} refused ({status}): {detail}",
                config.token_url
            ));
        }
        let answer: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            format!(
                "token answer of {} is not an OAuth token response: {e}",
                config.token_url
            )
        })?;
        if answer.access_token.is_empty() {
            return Err(format!(
                "{} answered an empty access token",
                config.token_url
            ));
        }
        tracing::info!(client_id = %config.client_id, tenant = %config.tenant,
            expires_in_secs = answer.expires_in, "client-credentials token obtained");
        Ok((
            Secret::new(answer.access_token),
            answer
                .expires_in
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_LIFETIME),
        ))
    }
}

/// Where a service's own calls get their token, per tenant (see the module docs).
#[derive(Clone, Debug)]
pub struct OutgoingTokens {
    auth: AuthConfig,
    client_credentials: Option<Arc<ClientCredentials>>,
}

impl OutgoingTokens {
    /// Builds the sources from the static tokens of `auth` and the `[client.oidc]` grant.
    pub fn new(
        auth: &AuthConfig,
        client_credentials: Option<&ClientCredentialsConfig>,
    ) -> Result<Self, String> {
        Ok(Self {
            auth: auth.clone(),
            client_credentials: client_credentials
                .map(ClientCredentials::new)
                .transpose()?
                .map(Arc::new),
        })
    }

    /// Static tokens only (tests, tools).
    pub fn from_auth(auth: &AuthConfig) -> Self {
        Self {
            auth: auth.clone(),
            client_credentials: None,
        }
    }

    /// Returns the token to act as `tenant` with: `Ok(None)` in dev mode (no auth configured
    /// and no grant); an error when nothing is configured for the tenant or the provider
    /// refused or could not be reached.
    pub async fn for_tenant(&self, tenant: &str) -> Result<Option<Secret>, OutgoingTokenError> {
        if let Some(token) = self.auth.token_for_tenant(tenant) {
            return Ok(Some(token.clone()));
        }
        if let Some(grant) = &self.client_credentials
            && grant.tenant() == tenant
        {
            return grant
                .token()
                .await
                .map(Some)
                .map_err(OutgoingTokenError::Provider);
        }
        if self.auth.is_dev_mode() && self.client_credentials.is_none() {
            return Ok(None);
        }
        Err(OutgoingTokenError::NotConfigured {
            tenant: tenant.to_owned(),
        })
    }
}

impl From<AuthConfig> for OutgoingTokens {
    fn from(auth: AuthConfig) -> Self {
        Self::from_auth(&auth)
    }
}

/// Why no token could be had for a call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutgoingTokenError {
    /// Nothing is configured for the tenant: permanent until the configuration changes.
    #[error("no token is configured for tenant {tenant} (a static token or client.oidc.tenant)")]
    NotConfigured {
        /// The tenant.
        tenant: String,
    },
    /// The identity provider refused or could not be reached: may pass.
    #[error("{0}")]
    Provider(String),
}
