-- Money in and out on the ledger: claim allocation of postings, the payer of a payment, and the
-- records behind entries (payments, refunds, patient responsibility, self-pay bills).
-- Same tables as the PostgreSQL migration; only dialect differs.

-- The claim a posting belongs to (how a payment was allocated); NULL for an unallocated amount
-- such as a credit balance. Written with the posting, never changed.
ALTER TABLE postings ADD COLUMN claim_ref TEXT;

-- The entry's account and posting time, copied onto each of its postings as they are written (the
-- entry's insert trigger checks they match), so the aging report reads the tenant's PATIENT_AR
-- postings in account order from one index instead of joining every journal entry.
ALTER TABLE postings ADD COLUMN account_id TEXT;
ALTER TABLE postings ADD COLUMN posted_at BIGINT;
DROP TRIGGER postings_append_only_update;
UPDATE postings SET
    account_id = (SELECT e.account_id FROM journal_entries e
                   WHERE e.tenant_id = postings.tenant_id AND e.id = postings.entry_id),
    posted_at = (SELECT e.posted_at FROM journal_entries e
                  WHERE e.tenant_id = postings.tenant_id AND e.id = postings.entry_id);
CREATE TRIGGER postings_append_only_update BEFORE UPDATE ON postings
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: UPDATE on postings is not allowed');
END;
CREATE INDEX postings_by_account
    ON postings (tenant_id, ledger_account, account_id, posted_at, amount_cents);

CREATE TRIGGER journal_entries_postings_match AFTER INSERT ON journal_entries
WHEN EXISTS (SELECT 1 FROM postings WHERE tenant_id = NEW.tenant_id AND entry_id = NEW.id
              AND (account_id IS NOT NEW.account_id OR posted_at IS NOT NEW.posted_at))
BEGIN
    SELECT RAISE(ABORT, 'journal entry: its postings name another account or time');
END;

-- SQLite fires the most recently created trigger first: the balance check is created again so
-- that an unbalanced entry is reported as such before any other complaint.
DROP TRIGGER journal_entries_balanced;
CREATE TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries
WHEN (SELECT count(*) FROM postings
       WHERE tenant_id = NEW.tenant_id AND entry_id = NEW.id) < 2
  OR (SELECT coalesce(sum(amount_cents), 0) FROM postings
       WHERE tenant_id = NEW.tenant_id AND entry_id = NEW.id) <> 0
BEGIN
    SELECT RAISE(ABORT, 'journal entry is unbalanced');
END;

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
