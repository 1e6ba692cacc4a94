-- Submission batches: the 837 interchanges sent to payers, what each held, and the control
-- numbers that identify them to the payer's acknowledgements.

-- The last interchange control number (ISA13, also GS06) handed out per payer route. A route is
-- one sender identity (ISA06) at one receiver, shared by every tenant submitting through it, and
-- the receiver rejects a repeated ISA13 from a sender: so the counter belongs to the route, not to
-- a tenant (the one table without tenant_id), and a number found in a 999 or TA1 names one batch.
-- Allocated with INSERT ... ON CONFLICT DO UPDATE ... RETURNING in the transaction that stores
-- the batch, so a number is used once even if the process dies between storing and sending.
CREATE TABLE submission_control_numbers (
    route       TEXT   NOT NULL PRIMARY KEY,
    last_number BIGINT NOT NULL CHECK (last_number BETWEEN 1 AND 999999999)
);

CREATE TABLE submission_batches (
    tenant_id                  TEXT    NOT NULL,
    id                         TEXT    NOT NULL,
    -- The payer connection ([[payers]] payer_id) the batch goes through.
    route                      TEXT    NOT NULL,
    -- CREATED, SENT, ACCEPTED, PARTIALLY_ACCEPTED, REJECTED, FAILED.
    status                     TEXT    NOT NULL CHECK (status IN ('CREATED', 'SENT', 'ACCEPTED',
                                   'PARTIALLY_ACCEPTED', 'REJECTED', 'FAILED')),
    claim_type                 TEXT    NOT NULL CHECK (claim_type IN ('PROFESSIONAL', 'INSTITUTIONAL')),
    payer_id                   TEXT    NOT NULL,
    interchange_control_number BIGINT  NOT NULL,
    group_control_number       BIGINT  NOT NULL,
    -- ST02 of the one transaction set.
    set_control_number         TEXT    NOT NULL,
    claim_count                INTEGER NOT NULL CHECK (claim_count >= 1),
    total_charge_cents         BIGINT  NOT NULL CHECK (total_charge_cents >= 0),
    -- The 837 exactly as sent, and its SHA-256 (hex) for audit.
    content                    BYTEA  NOT NULL,
    content_sha256             TEXT    NOT NULL,
    -- Name or id the transport gave the delivered file; '' before delivery.
    file_name                  TEXT    NOT NULL DEFAULT '',
    -- Why delivery failed, in plain words; '' unless FAILED.
    error_message              TEXT    NOT NULL DEFAULT '',
    created_at                 BIGINT  NOT NULL,
    sent_at                    BIGINT,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT submission_batches_control_number_key UNIQUE (route, interchange_control_number)
);

-- Batches still to deliver (CREATED after a crash) are found by status across tenants.
CREATE INDEX submission_batches_status_idx ON submission_batches (status, created_at);

-- The claims of a batch, in the order written (CLM01 order in the set).
CREATE TABLE submission_batch_claims (
    tenant_id TEXT    NOT NULL,
    batch_id  TEXT    NOT NULL,
    position  INTEGER NOT NULL CHECK (position >= 1),
    claim_id  TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, batch_id, position),
    FOREIGN KEY (tenant_id, batch_id) REFERENCES submission_batches (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX submission_batch_claims_claim_idx ON submission_batch_claims (tenant_id, claim_id);

-- The batch a claim was last sent in.
ALTER TABLE claims ADD COLUMN submission_batch_id TEXT;
