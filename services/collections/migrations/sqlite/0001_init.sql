-- Collections service schema (SQLite). Same tables as the PostgreSQL migration; only dialect differs.
-- Conventions: ids TEXT (UUID v7), timestamps BIGINT unix microseconds, money BIGINT cents,
-- tenant_id on every table and leading every key and index.

-- A patient account. Its balance is not stored: it is derived from the ledger (the sum of the
-- PATIENT_AR postings of the account's journal entries), so it can never drift from the ledger.
CREATE TABLE accounts (
    tenant_id     TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    patient_ref   TEXT   NOT NULL,
    guarantor_ref TEXT,
    status        TEXT   NOT NULL
        CHECK (status IN ('OPEN', 'PAYMENT_PLAN', 'IN_COLLECTIONS', 'CLOSED')),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX accounts_by_status ON accounts (tenant_id, status, id);
CREATE INDEX accounts_by_patient ON accounts (tenant_id, patient_ref, id);

-- One business event on one account (a payment, a write-off, ...). Append-only: a mistake is
-- corrected by a reversing entry, never by editing history.
CREATE TABLE journal_entries (
    tenant_id       TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    account_id      TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    memo            TEXT   NOT NULL,
    source_ref      TEXT,
    posted_at       BIGINT NOT NULL,
    idempotency_key TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
);

CREATE INDEX journal_entries_by_account ON journal_entries (tenant_id, account_id, id);
CREATE UNIQUE INDEX journal_entries_by_key ON journal_entries (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The legs of a journal entry: debit positive, credit negative, in cents.
-- Writers insert the postings first and the entry row last, in one transaction: the entry's
-- insert trigger then checks that its postings balance (SQLite cannot defer a trigger to commit),
-- and the deferred foreign key lets the postings precede their entry.
CREATE TABLE postings (
    tenant_id      TEXT    NOT NULL,
    entry_id       TEXT    NOT NULL,
    line_no        BIGINT  NOT NULL CHECK (line_no >= 1),
    ledger_account TEXT    NOT NULL,
    amount_cents   BIGINT  NOT NULL CHECK (amount_cents <> 0),
    PRIMARY KEY (tenant_id, entry_id, line_no),
    FOREIGN KEY (tenant_id, entry_id) REFERENCES journal_entries (tenant_id, id)
        DEFERRABLE INITIALLY DEFERRED
);

CREATE INDEX postings_by_ledger_account ON postings (tenant_id, ledger_account, entry_id);

-- An entry must have at least two postings and they must sum to zero.
CREATE TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries
WHEN (SELECT count(*) FROM postings
       WHERE tenant_id = NEW.tenant_id AND entry_id = NEW.id) < 2
  OR (SELECT coalesce(sum(amount_cents), 0) FROM postings
       WHERE tenant_id = NEW.tenant_id AND entry_id = NEW.id) <> 0
BEGIN
    SELECT RAISE(ABORT, 'journal entry is unbalanced');
END;

-- Postings may not join an entry that is already posted, and nothing posted may change.
CREATE TRIGGER postings_append_only_insert BEFORE INSERT ON postings
WHEN EXISTS (SELECT 1 FROM journal_entries WHERE tenant_id = NEW.tenant_id AND id = NEW.entry_id)
BEGIN
    SELECT RAISE(ABORT, 'journal entry is already posted');
END;

CREATE TRIGGER postings_append_only_update BEFORE UPDATE ON postings
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: UPDATE on postings is not allowed');
END;

CREATE TRIGGER postings_append_only_delete BEFORE DELETE ON postings
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: DELETE on postings is not allowed');
END;

CREATE TRIGGER journal_entries_append_only_update BEFORE UPDATE ON journal_entries
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: UPDATE on journal_entries is not allowed');
END;

CREATE TRIGGER journal_entries_append_only_delete BEFORE DELETE ON journal_entries
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: DELETE on journal_entries is not allowed');
END;
