//! Test setup shared by every service's gRPC tests and the end-to-end tests, so each test
//! file states only what it checks.
//!
//! [`TestServer::start`] serves a set of routes through the real runtime bootstrap (auth,
//! tracing, health, reflection, limits) on a loopback port chosen by the OS, with two tenants
//! configured. [`TestServer::channel`] returns a channel that calls as one of them (or with no
//! or a wrong token), ready for any generated client.

pub mod collections_story;
pub mod fixtures;
pub mod idp;

use std::collections::BTreeMap;

use medbill_runtime::auth::Authenticator;
use medbill_runtime::client::{self, TracedChannel};
use medbill_runtime::config::{AuthConfig, ClientConfig, GrpcConfig, Secret};
use medbill_runtime::server::{Server, ServerHandle};
use tonic::service::Routes;

/// The caller identities a test can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A caller whose token maps to [`TENANT_A`].
    TenantA,
    /// A caller whose token maps to [`TENANT_B`].
    TenantB,
    /// A caller that sends no `authorization` header.
    Anonymous,
    /// A caller that sends a token the server does not know.
    UnknownToken,
}

/// The first test tenant.
pub const TENANT_A: &str = "tenant-a";
/// The second test tenant.
pub const TENANT_B: &str = "tenant-b";
const TOKEN_A: &str = "test-token-tenant-a";
const TOKEN_B: &str = "test-token-tenant-b";
const UNKNOWN_TOKEN: &str = "test-token-nobody";

impl Caller {
    fn token(self) -> Option<&'static str> {
        match self {
            Caller::TenantA => Some(TOKEN_A),
            Caller::TenantB => Some(TOKEN_B),
            Caller::Anonymous => None,
            Caller::UnknownToken => Some(UNKNOWN_TOKEN),
        }
    }
}

/// Returns an auth configuration with the two test tenants.
pub fn two_tenant_auth() -> AuthConfig {
    AuthConfig {
        tokens: BTreeMap::from([
            (Secret::new(TOKEN_A), TENANT_A.to_owned()),
            (Secret::new(TOKEN_B), TENANT_B.to_owned()),
        ]),
        ..AuthConfig::default()
    }
}

/// A running gRPC server for one test; it shuts down when dropped.
pub struct TestServer {
    handle: Option<ServerHandle>,
}

impl TestServer {
    /// Starts `routes` on `127.0.0.1:0` with the two test tenants and default limits.
    ///
    /// # Panics
    /// Panics when the server cannot start: test setup has no better way to fail.
    pub async fn start(routes: Routes) -> Self {
        Self::start_with(routes, &GrpcConfig::default()).await
    }

    /// Starts `routes` like [`TestServer::start`] with the given limits and deadlines.
    ///
    /// # Panics
    /// Panics when the server cannot start.
    pub async fn start_with(routes: Routes, grpc: &GrpcConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the test server");
        let mut server = Server::new(routes)
            .descriptor_set(medbill_proto::FILE_DESCRIPTOR_SET)
            .grpc_config(grpc)
            .authenticator(
                Authenticator::from_config(&two_tenant_auth()).expect("static tokens always build"),
            );
        // Tests mount one or more services; reporting all four SERVING keeps the setup uniform.
        for name in medbill_proto::service_names::ALL {
            server = server.serving(name);
        }
        let handle = server.start(listener).await.expect("start the test server");
        Self {
            handle: Some(handle),
        }
    }

    /// Returns the server's `http://127.0.0.1:PORT` URL.
    pub fn url(&self) -> String {
        self.handle().url()
    }

    /// Returns a channel to this server that calls as `caller`.
    ///
    /// # Panics
    /// Panics when the URL cannot be used (it always can: the server made it).
    pub fn channel(&self, caller: Caller) -> TracedChannel {
        channel_to(&self.url(), caller)
    }

    /// Returns the running server's handle.
    pub fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().expect("the server runs until dropped")
    }

    /// Stops the server gracefully, waiting for in-flight calls.
    pub async fn shutdown(mut self) {
        if let Some(handle) = self.handle.take() {
            handle
                .shutdown()
                .await
                .expect("the test server shuts down cleanly");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(handle) = &self.handle {
            handle.trigger_shutdown();
        }
    }
}

/// Returns a channel to `url` that calls as `caller`.
///
/// # Panics
/// Panics when `url` is not an http(s) URL.
pub fn channel_to(url: &str, caller: Caller) -> TracedChannel {
    let config = ClientConfig {
        token: caller.token().map(Secret::new),
        ..ClientConfig::default()
    };
    client::connect(url, &config).expect("a valid test server URL")
}
