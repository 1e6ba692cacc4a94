-- Dunning and agency placement. An account's dunning state (its stage, the date of the written
-- final notice, holds that stop collection) lives beside the account, not on it: a wider accounts
-- row changes PostgreSQL's plans of its keyed look-ups without statistics. Same tables on
-- PostgreSQL and SQLite.

CREATE TABLE dunning_states (
    tenant_id                      TEXT    NOT NULL,
    account_id                     TEXT    NOT NULL,
    -- 0 before the first stage, else the 1-based position of the configured stage reached.
    stage                          BIGINT  NOT NULL CHECK (stage >= 0),
    stage_date                     TEXT,
    final_notice_date              TEXT,
    -- The as-of date of the last RunDunning that evaluated the account (one run per date).
    last_run_date                  TEXT,
    financial_assistance_pending   BOOLEAN NOT NULL,
    disputed                       BOOLEAN NOT NULL,
    updated_at                     BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, account_id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
);

CREATE TABLE agency_placements (
    tenant_id        TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    account_id       TEXT    NOT NULL,
    agency_id        TEXT    NOT NULL,
    amount_cents     BIGINT  NOT NULL CHECK (amount_cents > 0),
    status           TEXT    NOT NULL CHECK (status IN ('PLACED', 'RECALLED', 'CLOSED')),
    credit_reporting BOOLEAN NOT NULL,
    placed_on        TEXT    NOT NULL,
    recalled_on      TEXT,
    recall_reason    TEXT,
    created_at       BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
);

-- At most one placement at an agency per account.
CREATE UNIQUE INDEX agency_placements_live ON agency_placements (tenant_id, account_id)
    WHERE status = 'PLACED';
