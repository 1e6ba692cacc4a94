-- Payment plans: the schedule of installments and what has been paid toward each. A plan covers
-- the balance owed when it was made; payments on the ledger are applied to its installments in
-- the same transaction, and the schedule is cut back when the balance falls below what the plan
-- still expects, so the two never disagree. Same tables on PostgreSQL and SQLite.

CREATE TABLE payment_plans (
    tenant_id         TEXT   NOT NULL,
    id                TEXT   NOT NULL,
    account_id        TEXT   NOT NULL,
    status            TEXT   NOT NULL
        CHECK (status IN ('ACTIVE', 'DELINQUENT', 'COMPLETED', 'DEFAULTED', 'CANCELLED')),
    total_cents       BIGINT NOT NULL CHECK (total_cents > 0),
    installment_cents BIGINT NOT NULL CHECK (installment_cents > 0),
    frequency         TEXT   NOT NULL CHECK (frequency IN ('WEEKLY', 'BIWEEKLY', 'MONTHLY')),
    cancel_reason     TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
);

-- At most one live plan per account; account reads find it through this index (accounts gains
-- no column for it: a wider accounts row changes PostgreSQL's plans of its keyed look-ups
-- without statistics).
CREATE UNIQUE INDEX payment_plans_live ON payment_plans (tenant_id, account_id)
    WHERE status IN ('ACTIVE', 'DELINQUENT');

CREATE TABLE plan_installments (
    tenant_id    TEXT   NOT NULL,
    plan_id      TEXT   NOT NULL,
    sequence     BIGINT NOT NULL CHECK (sequence >= 1),
    due_date     TEXT   NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    paid_cents   BIGINT NOT NULL CHECK (paid_cents >= 0 AND paid_cents <= amount_cents),
    PRIMARY KEY (tenant_id, plan_id, sequence),
    FOREIGN KEY (tenant_id, plan_id) REFERENCES payment_plans (tenant_id, id)
);
