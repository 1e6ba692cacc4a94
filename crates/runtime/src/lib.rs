//! Service runtime: config, telemetry, auth, errors to gRPC status, server bootstrap.
