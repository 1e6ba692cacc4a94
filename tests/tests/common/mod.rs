//! Setup shared by the end-to-end tests: the binary's configuration for a test database,
//! with the two test tenants and every listener on a port the OS picks.

// Each test binary includes this module and uses a subset of it.
#![allow(dead_code)]

pub mod claims;
use medbill::serve::{self, Running, Target};
use medbill_runtime::config::{Config, LoadedConfig};
use medbill_storage::testing::TestEnv;
use medbill_testkit::two_tenant_auth;

/// Returns the configuration `medbill serve` would load, pointed at the test's database.
pub fn config(env: &TestEnv) -> LoadedConfig {
    let config = Config {
        database_url: Some(env.url().to_owned()),
        auth: two_tenant_auth(),
        ..Config::default()
    };
    LoadedConfig::new(config).with_value("payer_sim.listen", "127.0.0.1:0")
}

/// Starts `target` the way `medbill serve --target ...` does, on `listener`.
pub async fn start_on(
    env: &TestEnv,
    target: Target,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<Running> {
    serve::start(&config(env), target, listener).await
}

/// Starts `target` on a loopback port chosen by the OS.
pub async fn start(env: &TestEnv, target: Target) -> anyhow::Result<Running> {
    start_on(
        env,
        target,
        tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    )
    .await
}

/// Starts `target` with `tune` applied to the configuration first (a shorter poll interval, say).
pub async fn start_tuned(
    env: &TestEnv,
    target: Target,
    tune: impl FnOnce(LoadedConfig) -> LoadedConfig,
) -> anyhow::Result<Running> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    serve::start(&tune(config(env)), target, listener).await
}
