//! CAQH CORE-style HTTP MIME multipart transport: client, server router and TLS serving.

pub mod client;
pub mod server;
pub mod tls;
