-- Adjudications applied from ERAs, the chain of corrected and voided claims, and the adjudication
-- in force on each claim. Amounts are BIGINT cents and may be negative (a reversal negates them).

-- CorrectClaim / VoidClaim: original -> replacement (frequency 7) or void claim (frequency 8),
-- readable both ways.
ALTER TABLE claims ADD COLUMN original_claim_id TEXT;
ALTER TABLE claims ADD COLUMN superseded_by_claim_id TEXT;
-- The adjudication in force: the latest applied that no reversal undid; NULL before payment and
-- after a reversal until the corrected adjudication arrives.
ALTER TABLE claims ADD COLUMN adjudication_id TEXT;

-- Every adjudication ever applied to a claim (835 CLP loop), reversals included.
CREATE TABLE claim_adjudications (
    tenant_id                    TEXT   NOT NULL,
    id                           TEXT   NOT NULL,
    claim_id                     TEXT   NOT NULL,
    era_id                       TEXT   NOT NULL,
    claim_payment_id             TEXT   NOT NULL,
    -- CLP02.
    claim_status_code            TEXT   NOT NULL,
    charge_cents                 BIGINT NOT NULL,
    paid_cents                   BIGINT NOT NULL,
    -- CLP05 as sent; NULL when not sent.
    patient_responsibility_cents BIGINT,
    -- CLP07; NULL when not sent.
    payer_claim_control_number   TEXT,
    -- BPR16, YYYY-MM-DD; NULL when not sent.
    payment_date                 TEXT,
    applied_at                   BIGINT NOT NULL,
    -- The claim's status before and after: a reversal returns the claim to status_before.
    status_before                TEXT   NOT NULL,
    status_after                 TEXT   NOT NULL,
    -- For a reversal (CLP02 22): the adjudication it undid.
    reverses_id                  TEXT,
    -- For an undone adjudication: the reversal that undid it.
    reversed_by_id               TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, claim_id) REFERENCES claims (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX claim_adjudications_claim_idx ON claim_adjudications (tenant_id, claim_id, applied_at);
-- Look-ups by id read one row at every table size (see 0002).
CREATE UNIQUE INDEX claim_adjudications_id_key ON claim_adjudications (id);
CREATE INDEX claim_adjudications_id_hash_idx ON claim_adjudications USING hash (id);

-- 835 loop 2110 service lines of an adjudication, in order (position 1..n).
CREATE TABLE claim_adjudication_lines (
    tenant_id           TEXT    NOT NULL,
    adjudication_id     TEXT    NOT NULL,
    position            INTEGER NOT NULL CHECK (position >= 1),
    line_control_number TEXT,
    procedure_code      TEXT    NOT NULL,
    charge_cents        BIGINT  NOT NULL,
    paid_cents          BIGINT  NOT NULL,
    allowed_cents       BIGINT,
    -- SVC05 as an exact decimal string; NULL when not sent.
    units               TEXT,
    PRIMARY KEY (tenant_id, adjudication_id, position),
    FOREIGN KEY (tenant_id, adjudication_id) REFERENCES claim_adjudications (tenant_id, id) ON DELETE CASCADE
);

-- CAS triplets; line_position 0 for the claim level, else the line's position.
CREATE TABLE claim_adjudication_adjustments (
    tenant_id       TEXT    NOT NULL,
    adjudication_id TEXT    NOT NULL,
    line_position   INTEGER NOT NULL CHECK (line_position >= 0),
    position        INTEGER NOT NULL CHECK (position >= 1),
    group_code      TEXT    NOT NULL CHECK (group_code IN ('CO', 'PR', 'OA', 'PI', 'CR')),
    reason          TEXT    NOT NULL,
    amount_cents    BIGINT  NOT NULL,
    quantity        TEXT,
    PRIMARY KEY (tenant_id, adjudication_id, line_position, position),
    FOREIGN KEY (tenant_id, adjudication_id) REFERENCES claim_adjudications (tenant_id, id) ON DELETE CASCADE
);

-- Remark codes (MIA/MOA at claim level, LQ*HE at line level); line_position as above.
CREATE TABLE claim_adjudication_remarks (
    tenant_id       TEXT    NOT NULL,
    adjudication_id TEXT    NOT NULL,
    line_position   INTEGER NOT NULL CHECK (line_position >= 0),
    position        INTEGER NOT NULL CHECK (position >= 1),
    code            TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, adjudication_id, line_position, position),
    FOREIGN KEY (tenant_id, adjudication_id) REFERENCES claim_adjudications (tenant_id, id) ON DELETE CASCADE
);
