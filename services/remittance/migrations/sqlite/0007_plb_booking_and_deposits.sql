-- SQLite twin of the PostgreSQL migration of the same number.
-- PLB provider adjustments are booked as provider-level entries when their ERA is posted (in the
-- posting transaction); booked_at stays NULL until then (an UNBALANCED ERA's wait for a review).
ALTER TABLE era_provider_adjustments ADD COLUMN booked_at BIGINT;

-- Bank deposits and their reconciliation to ERAs by trace number (TRN02) and amount (see
-- src/deposits/mod.rs). Deposits of one trace number and payer (as given; '' = any payer) form a
-- group; every deposit of a group carries the group's current outcome, worked out again when a
-- deposit or an ERA with the trace arrives.
CREATE TABLE deposits (
    tenant_id                  TEXT    NOT NULL,
    id                         TEXT    NOT NULL,
    trace_number               TEXT    NOT NULL,
    amount_cents               BIGINT  NOT NULL,
    deposit_date               TEXT    NOT NULL,
    payment_method             TEXT    NOT NULL DEFAULT '',
    payer_id                   TEXT    NOT NULL DEFAULT '',
    bank_account_ref           TEXT    NOT NULL DEFAULT '',
    description                TEXT    NOT NULL DEFAULT '',
    status                     TEXT    NOT NULL CHECK (status IN ('MATCHED', 'VARIANCE', 'UNMATCHED_DEPOSIT')),
    -- The group's ERAs (ids joined with ','), their totals, the group's deposits' total and the
    -- difference (deposits minus ERAs).
    era_ids                    TEXT    NOT NULL DEFAULT '',
    era_total_cents            BIGINT  NOT NULL DEFAULT 0,
    claim_payments_total_cents BIGINT  NOT NULL DEFAULT 0,
    plb_total_cents            BIGINT  NOT NULL DEFAULT 0,
    deposit_total_cents        BIGINT  NOT NULL DEFAULT 0,
    difference_cents           BIGINT  NOT NULL DEFAULT 0,
    message                    TEXT    NOT NULL DEFAULT '',
    created_at                 BIGINT  NOT NULL,
    updated_at                 BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX deposits_id_key ON deposits (id);
CREATE INDEX deposits_trace_idx ON deposits (tenant_id, trace_number, payer_id, id);
CREATE INDEX deposits_status_idx ON deposits (tenant_id, status, id);

-- The last deposit matched to an ERA and the outcome of its group; '' until a deposit names the
-- ERA's trace (an ERA that moves money is then UNMATCHED_ERA).
ALTER TABLE eras ADD COLUMN deposit_id TEXT NOT NULL DEFAULT '';
ALTER TABLE eras ADD COLUMN reconciliation_status TEXT NOT NULL DEFAULT '';
