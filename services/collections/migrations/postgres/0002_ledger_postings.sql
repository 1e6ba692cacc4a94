-- Money in and out on the ledger: claim allocation of postings, the payer of a payment, and the
-- records behind entries (payments, refunds, patient responsibility, self-pay bills).
-- Same tables as the SQLite migration; only dialect differs.

-- The claim a posting belongs to (how a payment was allocated); NULL for an unallocated amount
-- such as a credit balance. Written with the posting, never changed.
ALTER TABLE postings ADD COLUMN claim_ref TEXT;

-- The entry's account and posting time, copied onto each of its postings as they are written (the
-- entry's insert trigger checks they match), so the aging report reads the tenant's PATIENT_AR
-- postings in account order from one index instead of joining every journal entry.
ALTER TABLE postings ADD COLUMN account_id TEXT;
ALTER TABLE postings ADD COLUMN posted_at BIGINT;
ALTER TABLE postings DISABLE TRIGGER postings_append_only;
UPDATE postings p SET account_id = e.account_id, posted_at = e.posted_at
  FROM journal_entries e WHERE e.tenant_id = p.tenant_id AND e.id = p.entry_id;
ALTER TABLE postings ENABLE TRIGGER postings_append_only;
CREATE INDEX postings_by_account
    ON postings (tenant_id, ledger_account, account_id, posted_at, amount_cents);

CREATE OR REPLACE FUNCTION journal_entry_must_balance() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    legs  BIGINT;
    total NUMERIC;
BEGIN
    SELECT count(*), coalesce(sum(amount_cents), 0) INTO legs, total
      FROM postings WHERE tenant_id = NEW.tenant_id AND entry_id = NEW.id;
    IF legs < 2 OR total <> 0 THEN
        RAISE EXCEPTION 'journal entry % is unbalanced: % postings summing to % cents',
            NEW.id, legs, total USING ERRCODE = 'check_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM postings WHERE tenant_id = NEW.tenant_id AND entry_id = NEW.id
                AND (account_id IS DISTINCT FROM NEW.account_id
                     OR posted_at IS DISTINCT FROM NEW.posted_at)) THEN
        RAISE EXCEPTION 'journal entry %: its postings name another account or time', NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

-- Who paid (PATIENT, GUARANTOR, AUTO_INSURER, ...), on payment entries only.


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
