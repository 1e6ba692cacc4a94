-- Eligibility service schema (SQLite). Kept table-for-table identical to the PostgreSQL migration;
-- only dialect differs. Conventions: ids TEXT (UUID v7), dates TEXT YYYY-MM-DD, timestamps BIGINT
-- unix microseconds, money BIGINT cents, tenant_id on every table and leading every index.

-- A patient's insurance coverage with one payer. Subscriber names, birth date and member id are PHI:
-- stored here, never logged.
CREATE TABLE coverages (
    tenant_id                  TEXT   NOT NULL,
    id                         TEXT   NOT NULL,
    patient_ref                TEXT   NOT NULL,
    payer_id                   TEXT   NOT NULL,
    payer_name                 TEXT   NOT NULL,
    member_id                  TEXT   NOT NULL,
    group_number               TEXT,
    plan_name                  TEXT,
    subscriber_first_name      TEXT   NOT NULL,
    subscriber_last_name       TEXT   NOT NULL,
    subscriber_birth_date      TEXT   NOT NULL,
    relationship_to_subscriber TEXT   NOT NULL,
    coverage_order             TEXT   NOT NULL
        CHECK (coverage_order IN ('PRIMARY', 'SECONDARY', 'TERTIARY')),
    effective_date             TEXT   NOT NULL,
    termination_date           TEXT,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    -- ISO dates compare correctly as text.
    CHECK (termination_date IS NULL OR termination_date >= effective_date)
);

-- Keyset paging is by (tenant_id, id); the primary key serves the unfiltered list.
CREATE INDEX coverages_by_patient ON coverages (tenant_id, patient_ref, id);
CREATE INDEX coverages_by_payer ON coverages (tenant_id, payer_id, id);
