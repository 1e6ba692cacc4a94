//! Storage plumbing: connect by URL scheme, migrations, idempotency, transactional outbox.
