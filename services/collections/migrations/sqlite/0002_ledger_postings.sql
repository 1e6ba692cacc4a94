-- Money in and out on the ledger: claim allocation of postings, the payer of a payment, and the
-- records behind entries (payments, refunds, patient responsibility, self-pay bills).
-- Same tables as the PostgreSQL migration; only dialect differs.

-- The claim a posting belongs to (how a payment was allocated); NULL for an unallocated amount
-- such as a credit balance. Written with the posting, never changed.
ALTER TABLE postings ADD COLUMN claim_ref TEXT;

-- The account patient responsibility and self-pay bills go to when the caller names none: one
-- per patient, claimed with INSERT ... ON CONFLICT DO NOTHING so concurrent first postings for a
-- new patient open one account, not two.
CREATE TABLE patient_default_accounts (
    tenant_id   TEXT NOT NULL,
    patient_ref TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, patient_ref)
);

-- A payment received: the journal entry holds the money, this row how it came and who paid
-- (PATIENT, GUARANTOR, AUTO_INSURER, ...). journal_entries gains no column for it: a new column
-- there changes PostgreSQL's plans of its keyed look-ups without statistics.
CREATE TABLE payments (
    tenant_id     TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    account_id    TEXT   NOT NULL,
    entry_id      TEXT   NOT NULL,
    payer_type    TEXT   NOT NULL,
    payer_ref     TEXT,
    method        TEXT   NOT NULL,
    reference     TEXT,
    received_date TEXT   NOT NULL,
    amount_cents  BIGINT NOT NULL CHECK (amount_cents > 0),
    claim_ref     TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, entry_id) REFERENCES journal_entries (tenant_id, id)
);

CREATE INDEX payments_by_account ON payments (tenant_id, account_id, id);
CREATE UNIQUE INDEX payments_by_entry ON payments (tenant_id, entry_id);

-- A refund of a credit balance (PENDING until paid out).
CREATE TABLE refunds (
    tenant_id    TEXT   NOT NULL,
    id           TEXT   NOT NULL,
    account_id   TEXT   NOT NULL,
    entry_id     TEXT   NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    method       TEXT   NOT NULL,
    status       TEXT   NOT NULL CHECK (status IN ('PENDING', 'ISSUED', 'CANCELLED')),
    reason       TEXT   NOT NULL,
    reference    TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, entry_id) REFERENCES journal_entries (tenant_id, id)
);

CREATE INDEX refunds_by_account ON refunds (tenant_id, account_id, id);

-- Where a patient-responsibility entry came from, and its PR adjustment lines (deductible,
-- coinsurance, copay, ...) for statements.
CREATE TABLE responsibility_entries (
    tenant_id              TEXT NOT NULL,
    entry_id               TEXT NOT NULL,
    claim_ref              TEXT,
    era_id                 TEXT,
    patient_control_number TEXT,
    service_date           TEXT,
    corrected              BOOLEAN NOT NULL,
    PRIMARY KEY (tenant_id, entry_id),
    FOREIGN KEY (tenant_id, entry_id) REFERENCES journal_entries (tenant_id, id)
);

CREATE TABLE responsibility_lines (
    tenant_id    TEXT   NOT NULL,
    entry_id     TEXT   NOT NULL,
    line_no      BIGINT NOT NULL CHECK (line_no >= 1),
    group_code   TEXT   NOT NULL,
    reason       TEXT   NOT NULL,
    amount_cents BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, entry_id, line_no),
    FOREIGN KEY (tenant_id, entry_id) REFERENCES responsibility_entries (tenant_id, entry_id)
);

-- A self-pay encounter billed to the patient: one bill per claim.
CREATE TABLE self_pay_bills (
    tenant_id      TEXT   NOT NULL,
    claim_ref      TEXT   NOT NULL,
    entry_id       TEXT   NOT NULL,
    service_date   TEXT   NOT NULL,
    gross_cents    BIGINT NOT NULL,
    discount_cents BIGINT NOT NULL,
    estimate_id    TEXT,
    PRIMARY KEY (tenant_id, claim_ref),
    FOREIGN KEY (tenant_id, entry_id) REFERENCES journal_entries (tenant_id, id)
);
