//! `sslmode=verify-full` against the PostgreSQL the tests use: the connection is encrypted and
//! the server's certificate is checked against the CA file and the host name, and a wrong CA or a
//! name the certificate does not carry is refused. The server's own certificate (`ssl_cert_file`,
//! self-signed for `localhost` on a stock Debian install) is the trust anchor. Skipped, with a
//! note, when the server does not speak TLS or its certificate file cannot be read here.

use anyhow::{Context, ensure};
use medbill_storage::testing::{self, TestEnv, test_pool_settings};
use medbill_storage::{Backend, Database};

/// A public CA bundle that did not issue the server's certificate.
const OTHER_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

fn note(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "note: {text}");
}

/// The test database's URL with another host and TLS settings.
fn with_tls(url: &str, host: &str, root_cert: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .context("a postgres:// URL")?;
    let (authority, path) = rest.split_once('/').context("a database in the URL")?;
    let (user, host_port) = authority.rsplit_once('@').unwrap_or(("", authority));
    let port = host_port.rsplit_once(':').map_or("5432", |(_, p)| p);
    let user = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    let separator = if path.contains('?') { '&' } else { '?' };
    Ok(format!(
        "postgres://{user}{host}:{port}/{path}{separator}sslmode=verify-full&sslrootcert={root_cert}"
    ))
}

async fn verify_full(env: TestEnv) -> anyhow::Result<()> {
    let Database::Postgres(pool) = env.db() else {
        unreachable!("run on PostgreSQL only")
    };
    let ssl: String = sqlx::query_scalar("SHOW ssl").fetch_one(pool).await?;
    if ssl != "on" {
        note("skipping verify_full: the test PostgreSQL has ssl = off");
        return Ok(());
    }
    let cert_file: String = sqlx::query_scalar("SHOW ssl_cert_file")
        .fetch_one(pool)
        .await?;
    if std::fs::metadata(&cert_file).is_err() {
        note(&format!(
            "skipping verify_full: the server's certificate {cert_file} is not readable here"
        ));
        return Ok(());
    }

    let settings = test_pool_settings();
    let url = with_tls(env.url(), "localhost", &cert_file)?;
    let db = Database::connect(&url, &settings, "tls_check")
        .await
        .context("verify-full with the server's certificate as the CA")?;
    let Database::Postgres(tls_pool) = &db else {
        unreachable!()
    };
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(tls_pool)
            .await?;
    ensure!(encrypted, "the connection is not encrypted");
    db.close().await;

    // The certificate names localhost, not 127.0.0.1.
    let wrong_name = with_tls(env.url(), "127.0.0.1", &cert_file)?;
    let refused = Database::connect(&wrong_name, &settings, "tls_check").await;
    ensure!(
        refused.is_err(),
        "a host name the certificate lacks was accepted"
    );

    // A CA that did not issue the certificate.
    if std::fs::metadata(OTHER_CAS).is_ok() {
        let wrong_ca = with_tls(env.url(), "localhost", OTHER_CAS)?;
        let refused = Database::connect(&wrong_ca, &settings, "tls_check").await;
        ensure!(
            refused.is_err(),
            "a certificate from another CA was accepted"
        );
    }
    Ok(())
}

#[test]
fn verify_full_checks_the_ca_and_the_host_name() {
    testing::run(
        Backend::Postgres,
        "verify_full_checks_the_ca_and_the_host_name",
        "tls_check",
        None,
        verify_full,
    )
    .unwrap();
}
