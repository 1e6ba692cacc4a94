-- SQLite twin of the PostgreSQL migration of the same number.
-- Claim payments and their posting. Each CLP loop of an ERA is stored when the ERA is ingested,
-- amounts as the 835 said (BIGINT cents); posting later matches it to a claim (through the claims
-- service) and, in one transaction, records the match, the posting record and the outbox messages
-- to claims and collections. An UNBALANCED ERA's payments are HELD until an operator decides.

CREATE TABLE claim_payments (
    tenant_id                  TEXT    NOT NULL,
    id                         TEXT    NOT NULL,
    era_id                     TEXT    NOT NULL,
    -- 1-based CLP position within the ERA.
    position                   INTEGER NOT NULL CHECK (position >= 1),
    -- Copies of the ERA's payer identity and BPR16, for filtering without a join.
    payer_id                   TEXT    NOT NULL DEFAULT '',
    payment_date               TEXT    NOT NULL DEFAULT '',
    patient_control_number     TEXT    NOT NULL,   -- CLP01
    status_code                TEXT    NOT NULL,   -- CLP02
    charge_cents               BIGINT  NOT NULL,   -- CLP03
    paid_cents                 BIGINT  NOT NULL,   -- CLP04
    patient_responsibility_cents BIGINT,           -- CLP05
    filing_indicator           TEXT    NOT NULL DEFAULT '',  -- CLP06
    payer_claim_control_number TEXT    NOT NULL DEFAULT '',  -- CLP07
    facility_type_code         TEXT    NOT NULL DEFAULT '',  -- CLP08
    frequency_code             TEXT    NOT NULL DEFAULT '',  -- CLP09
    statement_from             TEXT    NOT NULL DEFAULT '',  -- DTM*232
    statement_to               TEXT    NOT NULL DEFAULT '',  -- DTM*233
    posting_status             TEXT    NOT NULL CHECK (posting_status IN ('PENDING', 'POSTED', 'UNMATCHED', 'HELD')),
    -- The matched claim (claims service id); '' until matched.
    claim_id                   TEXT    NOT NULL DEFAULT '',
    -- Why the payment is unmatched, or the operator's note when matched by hand.
    match_note                 TEXT    NOT NULL DEFAULT '',
    -- For a reversal (CLP02 22): the claim payment it reverses; '' when none was found.
    reverses_id                TEXT    NOT NULL DEFAULT '',
    posted_at                  BIGINT,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT claim_payments_era_position_key UNIQUE (tenant_id, era_id, position),
    FOREIGN KEY (tenant_id, era_id) REFERENCES eras (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX claim_payments_id_key ON claim_payments (id);
CREATE INDEX claim_payments_claim_idx ON claim_payments (tenant_id, claim_id, id);
CREATE INDEX claim_payments_pcn_idx ON claim_payments (tenant_id, patient_control_number, id);
CREATE INDEX claim_payments_status_idx ON claim_payments (tenant_id, posting_status, id);

-- Service line payments (SVC loops), in file order.
CREATE TABLE claim_payment_lines (
    tenant_id              TEXT    NOT NULL,
    claim_payment_id       TEXT    NOT NULL,
    line_number            INTEGER NOT NULL CHECK (line_number >= 1),
    procedure_qualifier    TEXT    NOT NULL DEFAULT '',
    procedure_code         TEXT    NOT NULL,
    -- Modifiers joined with ':' in order.
    modifiers              TEXT    NOT NULL DEFAULT '',
    -- SVC06 as billed, 'qualifier:code:mod:...'; '' when not sent.
    submitted_procedure    TEXT    NOT NULL DEFAULT '',
    charge_cents           BIGINT  NOT NULL,   -- SVC02
    paid_cents             BIGINT  NOT NULL,   -- SVC03
    revenue_code           TEXT    NOT NULL DEFAULT '',
    units                  TEXT    NOT NULL DEFAULT '',
    service_date           TEXT    NOT NULL DEFAULT '',
    line_control_number    TEXT    NOT NULL DEFAULT '',  -- REF*6R
    allowed_cents          BIGINT,                       -- AMT*B6
    -- PENDING, CONTROL_NUMBER, PROCEDURE or UNMATCHED (posted at claim level and flagged).
    matched_by             TEXT    NOT NULL DEFAULT 'PENDING' CHECK (matched_by IN ('PENDING', 'CONTROL_NUMBER', 'PROCEDURE', 'UNMATCHED')),
    claim_line_number      INTEGER,
    claim_line_control_number TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, claim_payment_id, line_number),
    FOREIGN KEY (tenant_id, claim_payment_id) REFERENCES claim_payments (tenant_id, id) ON DELETE CASCADE
);

-- CAS triplets by group (CO, PR, OA, PI, CR); line_number 0 for the claim level.
CREATE TABLE claim_payment_adjustments (
    tenant_id        TEXT    NOT NULL,
    claim_payment_id TEXT    NOT NULL,
    line_number      INTEGER NOT NULL CHECK (line_number >= 0),
    position         INTEGER NOT NULL CHECK (position >= 1),
    group_code       TEXT    NOT NULL,
    reason           TEXT    NOT NULL,
    amount_cents     BIGINT  NOT NULL,
    quantity         TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, claim_payment_id, line_number, position),
    FOREIGN KEY (tenant_id, claim_payment_id) REFERENCES claim_payments (tenant_id, id) ON DELETE CASCADE
);

-- Remark codes (MIA/MOA at line_number 0, LQ*HE on lines).
CREATE TABLE claim_payment_remarks (
    tenant_id        TEXT    NOT NULL,
    claim_payment_id TEXT    NOT NULL,
    line_number      INTEGER NOT NULL CHECK (line_number >= 0),
    position         INTEGER NOT NULL CHECK (position >= 1),
    code             TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, claim_payment_id, line_number, position),
    FOREIGN KEY (tenant_id, claim_payment_id) REFERENCES claim_payments (tenant_id, id) ON DELETE CASCADE
);

-- One posting record per claim payment posted: when, how (AUTO, OPERATOR after a review of an
-- unbalanced ERA, MANUAL_MATCH from the unmatched worklist) and the operator's reason.
CREATE TABLE claim_payment_postings (
    tenant_id        TEXT    NOT NULL,
    claim_payment_id TEXT    NOT NULL,
    era_id           TEXT    NOT NULL,
    claim_id         TEXT    NOT NULL,
    posted_at        BIGINT  NOT NULL,
    method           TEXT    NOT NULL CHECK (method IN ('AUTO', 'OPERATOR', 'MANUAL_MATCH')),
    reason           TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, claim_payment_id),
    FOREIGN KEY (tenant_id, claim_payment_id) REFERENCES claim_payments (tenant_id, id)
);

-- The operator's decision to post an UNBALANCED ERA, and the posting worker's lease on an ERA.
ALTER TABLE eras ADD COLUMN review_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE eras ADD COLUMN reviewed_at BIGINT;
ALTER TABLE eras ADD COLUMN posting_lease_until BIGINT;
ALTER TABLE eras ADD COLUMN posting_lease_owner TEXT NOT NULL DEFAULT '';
-- The posting worker looks for RECEIVED ERAs of every tenant.
CREATE INDEX eras_status_idx ON eras (status, id);

-- Which replica is retrieving 835s from a payer route, until when (the pickup task's lease).
CREATE TABLE era_route_leases (
    route       TEXT   NOT NULL PRIMARY KEY,
    owner       TEXT   NOT NULL,
    lease_until BIGINT NOT NULL
);
