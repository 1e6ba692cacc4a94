-- One ERA per 835 transaction set (SQLite; see the PostgreSQL twin for the meaning). SQLite cannot
-- drop the unique key on eras.content_sha256, so eras and its two child tables are rebuilt: the new
-- tables are filled, the old ones dropped (children first, so nothing cascades) and the new ones
-- renamed, which also renames the references between them.

CREATE TABLE era_files (
    tenant_id      TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    received_at    BIGINT  NOT NULL,
    content        BLOB    NOT NULL,
    content_sha256 TEXT    NOT NULL CHECK (length(content_sha256) = 64),
    byte_size      BIGINT  NOT NULL CHECK (byte_size >= 0),
    file_name      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT era_files_content_sha256_key UNIQUE (tenant_id, content_sha256)
);
CREATE UNIQUE INDEX era_files_id_key ON era_files (id);

INSERT INTO era_files (tenant_id, id, received_at, content, content_sha256, byte_size, file_name)
SELECT tenant_id, id, received_at, content, content_sha256, byte_size, file_name FROM eras;

CREATE TABLE eras_v3 (
    tenant_id            TEXT    NOT NULL,
    id                   TEXT    NOT NULL,
    received_at          BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL,
    -- Copies of the file's hash, size and name (see the PostgreSQL twin).
    content_sha256       TEXT    NOT NULL CHECK (length(content_sha256) = 64),
    byte_size            BIGINT  NOT NULL CHECK (byte_size >= 0),
    file_name            TEXT    NOT NULL DEFAULT '',
    status               TEXT    NOT NULL CHECK (status IN ('RECEIVED', 'POSTED', 'UNBALANCED', 'REJECTED')),
    rejection_reason     TEXT    NOT NULL DEFAULT '',
    handling_code        TEXT,
    payer_name           TEXT,
    payer_id             TEXT,
    payee_name           TEXT,
    payee_npi            TEXT,
    payment_amount_cents BIGINT,
    credit_debit         TEXT,
    payment_method       TEXT,
    payment_date         TEXT,
    trace_number         TEXT,
    claim_count          INTEGER NOT NULL DEFAULT 0 CHECK (claim_count >= 0),
    file_id              TEXT    NOT NULL,
    set_position         INTEGER NOT NULL DEFAULT 1 CHECK (set_position >= 0),
    set_control_number   TEXT    NOT NULL DEFAULT '',
    payer_id_source      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT eras_file_fkey FOREIGN KEY (tenant_id, file_id) REFERENCES era_files (tenant_id, id),
    CONSTRAINT eras_file_set_key UNIQUE (tenant_id, file_id, set_position)
);
INSERT INTO eras_v3 (tenant_id, id, received_at, updated_at, content_sha256, byte_size, file_name, status, rejection_reason, handling_code,
    payer_name, payer_id, payee_name, payee_npi, payment_amount_cents, credit_debit, payment_method,
    payment_date, trace_number, claim_count, file_id, set_position)
SELECT tenant_id, id, received_at, updated_at, content_sha256, byte_size, file_name, status, rejection_reason, handling_code,
    payer_name, payer_id, payee_name, payee_npi, payment_amount_cents, credit_debit, payment_method,
    payment_date, trace_number, claim_count, id, CASE WHEN status = 'REJECTED' THEN 0 ELSE 1 END
FROM eras;

CREATE TABLE era_balance_problems_v3 (
    tenant_id           TEXT    NOT NULL,
    era_id              TEXT    NOT NULL,
    position            INTEGER NOT NULL CHECK (position >= 1),
    level               TEXT    NOT NULL CHECK (level IN ('LINE', 'CLAIM', 'TRANSACTION')),
    claim_ref           TEXT    NOT NULL DEFAULT '',
    line_control_number TEXT    NOT NULL DEFAULT '',
    line_number         INTEGER,
    expected_cents      BIGINT  NOT NULL,
    actual_cents        BIGINT  NOT NULL,
    difference_cents    BIGINT  NOT NULL,
    message             TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, era_id, position),
    FOREIGN KEY (tenant_id, era_id) REFERENCES eras_v3 (tenant_id, id) ON DELETE CASCADE
);
INSERT INTO era_balance_problems_v3 (tenant_id, era_id, position, level, claim_ref,
    line_control_number, line_number, expected_cents, actual_cents, difference_cents, message)
SELECT tenant_id, era_id, position, level, claim_ref, line_control_number, line_number,
    expected_cents, actual_cents, difference_cents, message
FROM era_balance_problems;

CREATE TABLE era_provider_adjustments_v3 (
    tenant_id          TEXT    NOT NULL,
    era_id             TEXT    NOT NULL,
    position           INTEGER NOT NULL CHECK (position >= 1),
    provider_id        TEXT    NOT NULL,
    fiscal_period_date TEXT    NOT NULL,
    reason             TEXT    NOT NULL,
    reference          TEXT    NOT NULL DEFAULT '',
    amount_cents       BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, era_id, position),
    FOREIGN KEY (tenant_id, era_id) REFERENCES eras_v3 (tenant_id, id) ON DELETE CASCADE
);
INSERT INTO era_provider_adjustments_v3 (tenant_id, era_id, position, provider_id,
    fiscal_period_date, reason, reference, amount_cents)
SELECT tenant_id, era_id, position, provider_id, fiscal_period_date, reason, reference, amount_cents
FROM era_provider_adjustments;

DROP TABLE era_balance_problems;
DROP TABLE era_provider_adjustments;
DROP TABLE eras;
ALTER TABLE eras_v3 RENAME TO eras;
ALTER TABLE era_balance_problems_v3 RENAME TO era_balance_problems;
ALTER TABLE era_provider_adjustments_v3 RENAME TO era_provider_adjustments;

CREATE INDEX eras_tenant_status_idx ON eras (tenant_id, status, id);
CREATE INDEX eras_tenant_payer_idx ON eras (tenant_id, payer_id, id);
CREATE INDEX eras_tenant_trace_idx ON eras (tenant_id, trace_number, id);
CREATE INDEX eras_tenant_received_idx ON eras (tenant_id, received_at, id);
CREATE UNIQUE INDEX eras_id_key ON eras (id);
