-- SQLite twin of the PostgreSQL migration of the same number.
-- The denial worklist: one item per denied claim, or per denied line (and the claim-level denial
-- adjustments) of a partially denied claim, written in the posting transaction (see
-- src/denials/mod.rs for the rule). Amounts in cents; dates TEXT YYYY-MM-DD; times unix micros.
CREATE TABLE denials (
    tenant_id                  TEXT    NOT NULL,
    id                         TEXT    NOT NULL,
    claim_payment_id           TEXT    NOT NULL,
    -- SVC position; 0 for the whole claim or its claim-level adjustments.
    line_number                INTEGER NOT NULL CHECK (line_number >= 0),
    era_id                     TEXT    NOT NULL,
    claim_id                   TEXT    NOT NULL DEFAULT '',
    patient_control_number     TEXT    NOT NULL,
    payer_claim_control_number TEXT    NOT NULL DEFAULT '',
    payer_id                   TEXT    NOT NULL DEFAULT '',
    claim_status_code          TEXT    NOT NULL,
    line_control_number        TEXT    NOT NULL DEFAULT '',
    -- 'qualifier:code:mod:...' of a line; '' for the claim.
    procedure_text             TEXT    NOT NULL DEFAULT '',
    service_date               TEXT    NOT NULL DEFAULT '',
    payment_date               TEXT    NOT NULL DEFAULT '',
    -- The date age counts from: BPR16, else the day the ERA was received.
    age_from                   TEXT    NOT NULL,
    denied_cents               BIGINT  NOT NULL,
    -- The primary (largest) denial adjustment and what the reason table says of it.
    group_code                 TEXT    NOT NULL DEFAULT '',
    reason_code                TEXT    NOT NULL DEFAULT '',
    category                   TEXT    NOT NULL,
    action                     TEXT    NOT NULL,
    -- Every denial CARC between commas (',197,16,'), for the reason filter.
    reason_codes               TEXT    NOT NULL DEFAULT ',',
    -- The denial adjustments 'GROUP|CARC|cents|quantity' joined with ';', and the remark codes
    -- joined with ','; the item's own copy of what explains it.
    adjustments                TEXT    NOT NULL DEFAULT '',
    remarks                    TEXT    NOT NULL DEFAULT '',
    status                     TEXT    NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'IN_PROGRESS', 'RESUBMITTED', 'APPEALED', 'WRITTEN_OFF', 'RESOLVED')),
    note                       TEXT    NOT NULL DEFAULT '',
    created_at                 BIGINT  NOT NULL,
    updated_at                 BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    -- A posting delivered twice makes its items once.
    CONSTRAINT denials_payment_line_key UNIQUE (tenant_id, claim_payment_id, line_number)
);
CREATE UNIQUE INDEX denials_id_key ON denials (id);
CREATE INDEX denials_status_idx ON denials (tenant_id, status, id);
CREATE INDEX denials_payer_idx ON denials (tenant_id, payer_id, id);
CREATE INDEX denials_claim_idx ON denials (tenant_id, claim_id, id);
