-- Acknowledgement files received (TA1, 999, 277CA), pushed by a client or picked up from a payer
-- route: the raw file, what it said, and what it changed.
CREATE TABLE acknowledgements (
    tenant_id      TEXT   NOT NULL,
    id             TEXT   NOT NULL,
    -- TA1, 999 or 277CA.
    kind           TEXT   NOT NULL CHECK (kind IN ('TA1', '999', '277CA')),
    -- The batch it acknowledges; NULL when none matched (a 277CA may span batches).
    batch_id       TEXT,
    -- ISA13 of the acknowledgement file itself.
    interchange_control_number TEXT NOT NULL,
    -- The file exactly as received, and its SHA-256 (hex): the same file twice is applied once.
    content        BLOB NOT NULL,
    content_sha256 TEXT   NOT NULL,
    file_name      TEXT   NOT NULL DEFAULT '',
    -- CLIENT (IngestAcknowledgement) or the payer route it was picked up from.
    source         TEXT   NOT NULL,
    -- The AcknowledgementResult message answered the first time (protobuf), replayed for a duplicate.
    result         BLOB NOT NULL,
    received_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT acknowledgements_content_key UNIQUE (tenant_id, content_sha256)
);

CREATE INDEX acknowledgements_batch_idx ON acknowledgements (tenant_id, batch_id);

-- A 999 or TA1 finds its batch by the control numbers it echoes.
CREATE INDEX submission_batches_control_idx ON submission_batches (tenant_id, interchange_control_number);

-- A picked-up file is attributed to a tenant by the batch it names (a TA1 or 999 by the route's
-- control number, a 277CA by the 837's BHT03 it echoes, which is the batch id).
CREATE INDEX submission_batches_id_idx ON submission_batches (id);

-- Files picked up from a payer route that could not be read or attributed to a tenant: kept
-- whole with the reason (nothing picked up is lost), for an operator to look at. The route's
-- files belong to no single tenant until attributed, so this table has no tenant_id.
CREATE TABLE unassigned_inbound_files (
    route       TEXT   NOT NULL,
    file_id     TEXT   NOT NULL,
    content     BLOB NOT NULL,
    reason      TEXT   NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (route, file_id)
);
