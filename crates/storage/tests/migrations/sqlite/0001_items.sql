-- Example service table used by the storage crate's own tests.
CREATE TABLE items (
    id           TEXT    PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    amount_cents BIGINT  NOT NULL,
    active       INTEGER NOT NULL,
    note         TEXT,
    raw          BLOB,
    service_date TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    UNIQUE (tenant_id, name)
);
