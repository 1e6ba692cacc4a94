-- Remittance service schema (PostgreSQL). The SQLite twin differs in dialect only (BYTEA vs BLOB).
-- Conventions: tenant_id on every table and first in every key; ids are UUID v7 text;
-- money is BIGINT cents; dates are TEXT YYYY-MM-DD; timestamps are BIGINT unix micros.

-- One received 835 file. The raw bytes are always kept, whatever happened to them afterwards,
-- so a rejected or unbalanced file can be inspected and re-processed.
CREATE TABLE eras (
    tenant_id            TEXT    NOT NULL,
    id                   TEXT    NOT NULL,
    received_at          BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL,
    content              BYTEA   NOT NULL,
    -- Lowercase hex SHA-256 of content: the same file received twice is one ERA.
    content_sha256       TEXT    NOT NULL CHECK (length(content_sha256) = 64),
    byte_size            BIGINT  NOT NULL CHECK (byte_size >= 0),
    status               TEXT    NOT NULL CHECK (status IN ('RECEIVED', 'POSTED', 'UNBALANCED', 'REJECTED')),
    -- Why the file was rejected (X12 segment and position), empty unless status is REJECTED.
    rejection_reason     TEXT    NOT NULL DEFAULT '',
    -- Original file name, for audit; '' when not given.
    file_name            TEXT    NOT NULL DEFAULT '',
    -- Summary of the first 835 transaction set (claim_count covers every set); NULL until parsed.
    handling_code        TEXT,                -- BPR01
    payer_name           TEXT,                -- N1*PR 02
    payer_id             TEXT,                -- N1*PR 04 (or REF*2U)
    payee_name           TEXT,                -- N1*PE 02
    payee_npi            TEXT,                -- N1*PE 04 when N1*PE 03 = XX
    payment_amount_cents BIGINT,              -- BPR02 of the first set
    credit_debit         TEXT,                -- BPR03: C credit, D debit
    payment_method       TEXT,                -- BPR04: ACH, CHK, NON, BOP, FWT
    payment_date         TEXT,                -- BPR16
    trace_number         TEXT,                -- TRN02
    claim_count          INTEGER NOT NULL DEFAULT 0 CHECK (claim_count >= 0),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT eras_content_sha256_key UNIQUE (tenant_id, content_sha256)
);

-- List filters always end in id so keyset paging (ORDER BY id) stays on the index.
CREATE INDEX eras_tenant_status_idx ON eras (tenant_id, status, id);
CREATE INDEX eras_tenant_payer_idx ON eras (tenant_id, payer_id, id);
CREATE INDEX eras_tenant_trace_idx ON eras (tenant_id, trace_number, id);
CREATE INDEX eras_tenant_received_idx ON eras (tenant_id, received_at, id);

-- Where an ERA does not balance (DOMAIN.md "Balancing"). One row per failed check, in file order.
CREATE TABLE era_balance_problems (
    tenant_id        TEXT    NOT NULL,
    era_id           TEXT    NOT NULL,
    position         INTEGER NOT NULL CHECK (position >= 1),
    -- LINE (SVC02 - CAS = SVC03), CLAIM (CLP03 - CAS = CLP04), TRANSACTION (BPR02 = sum CLP04 - sum PLB).
    level            TEXT    NOT NULL CHECK (level IN ('LINE', 'CLAIM', 'TRANSACTION')),
    -- CLP01 patient control number of the claim concerned; empty at the transaction level.
    claim_ref           TEXT    NOT NULL DEFAULT '',
    -- REF*6R of the line for LINE problems when the payer sent it; '' otherwise.
    line_control_number TEXT    NOT NULL DEFAULT '',
    -- 1-based SVC position within the claim for LINE problems.
    line_number         INTEGER,
    -- The amount the file states (SVC03, CLP04, BPR02).
    expected_cents      BIGINT  NOT NULL,
    -- The amount computed from the other elements.
    actual_cents        BIGINT  NOT NULL,
    -- expected - actual.
    difference_cents    BIGINT  NOT NULL,
    -- Human-readable explanation naming the elements involved.
    message             TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, era_id, position),
    FOREIGN KEY (tenant_id, era_id) REFERENCES eras (tenant_id, id) ON DELETE CASCADE
);

-- PLB provider-level adjustments of an ERA, one row per reason/amount pair, in file order.
CREATE TABLE era_provider_adjustments (
    tenant_id          TEXT    NOT NULL,
    era_id             TEXT    NOT NULL,
    position           INTEGER NOT NULL CHECK (position >= 1),
    provider_id        TEXT    NOT NULL,  -- PLB01
    fiscal_period_date TEXT    NOT NULL,  -- PLB02 as YYYY-MM-DD ('' when unreadable)
    reason             TEXT    NOT NULL,  -- PLB03-1 (WO, L6, FB, 72, CS, J1...)
    reference          TEXT    NOT NULL DEFAULT '',  -- PLB03-2
    -- Positive reduces the payment, negative increases it.
    amount_cents       BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, era_id, position),
    FOREIGN KEY (tenant_id, era_id) REFERENCES eras (tenant_id, id) ON DELETE CASCADE
);
