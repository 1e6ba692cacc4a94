-- Platform tables owned by medbill-storage, created in every service's schema.
-- Recorded in _medbill_platform_migrations, apart from the service's own migrations.

-- One row per (tenant, scope, key): the first request's fingerprint and its response.
CREATE TABLE platform_idempotency (
    tenant_id      TEXT   NOT NULL,
    scope          TEXT   NOT NULL,
    idem_key       TEXT   NOT NULL,
    request_sha256 TEXT   NOT NULL,
    response       BYTEA,
    created_at     BIGINT NOT NULL,
    completed_at   BIGINT,
    PRIMARY KEY (tenant_id, scope, idem_key)
);

CREATE INDEX platform_idempotency_created_at ON platform_idempotency (created_at);

-- Transactional outbox: written in the caller's transaction, delivered by the relay.
CREATE TABLE platform_outbox (
    id              TEXT   PRIMARY KEY,
    tenant_id       TEXT   NOT NULL,
    destination     TEXT   NOT NULL,
    message_key     TEXT   NOT NULL,
    payload         BYTEA  NOT NULL,
    status          TEXT   NOT NULL DEFAULT 'PENDING'
                    CHECK (status IN ('PENDING', 'DELIVERED', 'DEAD')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_token     TEXT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    UNIQUE (tenant_id, destination, message_key)
);

CREATE INDEX platform_outbox_due ON platform_outbox (next_attempt_at) WHERE status = 'PENDING';
