-- Patient statements: one per account and statement date (a cycle run again adds none), with its
-- activity lines. The statement is the record of what the patient was sent; its PDF and its
-- print-vendor line are renderings of these rows. Same tables on PostgreSQL and SQLite.

-- The 501(r) clock starts at the first statement; kept on the account with the latest date so a
-- read of the account needs no look-up of its statements.
ALTER TABLE accounts ADD COLUMN first_statement_date TEXT;
ALTER TABLE accounts ADD COLUMN last_statement_date TEXT;

-- What the claim's charges were and what the payer paid (CLP03, CLP04), when remittance sends
-- them: the statement shows charges, insurance paid and adjustments next to the patient's share.
ALTER TABLE responsibility_entries ADD COLUMN total_charge_cents BIGINT;
ALTER TABLE responsibility_entries ADD COLUMN payer_paid_cents BIGINT;

CREATE TABLE statements (
    tenant_id                    TEXT    NOT NULL,
    id                           TEXT    NOT NULL,
    account_id                   TEXT    NOT NULL,
    statement_date               TEXT    NOT NULL,
    due_date                     TEXT    NOT NULL,
    sequence                     BIGINT  NOT NULL CHECK (sequence >= 1),
    first_post_discharge         BOOLEAN NOT NULL,
    previous_balance_cents       BIGINT  NOT NULL,
    new_charges_cents            BIGINT  NOT NULL,
    payments_cents               BIGINT  NOT NULL,
    adjustments_cents            BIGINT  NOT NULL,
    closing_balance_cents        BIGINT  NOT NULL,
    amount_due_cents             BIGINT  NOT NULL CHECK (amount_due_cents >= 0),
    minimum_due_cents            BIGINT  NOT NULL CHECK (minimum_due_cents >= 0),
    aging_0_30_cents             BIGINT  NOT NULL,
    aging_31_60_cents            BIGINT  NOT NULL,
    aging_61_90_cents            BIGINT  NOT NULL,
    aging_91_120_cents           BIGINT  NOT NULL,
    aging_over_120_cents         BIGINT  NOT NULL,
    dunning_message              TEXT    NOT NULL,
    financial_assistance_summary TEXT    NOT NULL,
    contact_text                 TEXT    NOT NULL,
    -- The last journal entry the statement covers: the next one lists the entries after it.
    last_entry_id                TEXT,
    created_at                   BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
);

CREATE UNIQUE INDEX statements_by_account ON statements (tenant_id, account_id, statement_date);
CREATE INDEX statements_by_date ON statements (tenant_id, statement_date, id);

CREATE TABLE statement_lines (
    tenant_id                   TEXT   NOT NULL,
    statement_id                TEXT   NOT NULL,
    line_no                     BIGINT NOT NULL CHECK (line_no >= 1),
    line_date                   TEXT   NOT NULL,
    description                 TEXT   NOT NULL,
    amount_cents                BIGINT NOT NULL,
    claim_ref                   TEXT,
    charges_cents               BIGINT,
    insurance_paid_cents        BIGINT,
    insurance_adjustments_cents BIGINT,
    PRIMARY KEY (tenant_id, statement_id, line_no),
    FOREIGN KEY (tenant_id, statement_id) REFERENCES statements (tenant_id, id)
);
