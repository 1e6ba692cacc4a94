-- Collections service schema (PostgreSQL). Same tables as the SQLite migration; only dialect differs.
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
-- insert trigger then checks that its postings balance, and the deferred foreign key lets the
-- postings precede their entry. The same order works on SQLite, which cannot defer triggers.
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
-- The functions keep the search_path they were created with: the service's schema.
CREATE FUNCTION journal_entry_must_balance() RETURNS trigger LANGUAGE plpgsql
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
    RETURN NEW;
END
$$;

CREATE TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION journal_entry_must_balance();

-- Postings may not join an entry that is already posted, and nothing posted may change.
CREATE FUNCTION ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF EXISTS (SELECT 1 FROM journal_entries
                    WHERE tenant_id = NEW.tenant_id AND id = NEW.entry_id) THEN
            RAISE EXCEPTION 'journal entry % is already posted', NEW.entry_id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the ledger is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'check_violation';
END
$$;

CREATE TRIGGER postings_append_only BEFORE INSERT OR UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
