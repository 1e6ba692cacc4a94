-- Eligibility checks and cost estimates (SQLite). Kept table-for-table identical to the other dialect.
-- Same conventions as 0001: ids TEXT (UUID v7), dates TEXT YYYY-MM-DD, timestamps BIGINT unix
-- microseconds, money BIGINT cents, tenant_id leading every key and index.

-- One real-time 270 -> 271 exchange: the question, the raw X12 both ways (audit), the outcome and
-- the parsed summary. member_id and the raw X12 are PHI: stored, never logged.
CREATE TABLE eligibility_checks (
    tenant_id                   TEXT   NOT NULL,
    id                          TEXT   NOT NULL,
    -- The caller's idempotency key and a hash of the request it came with.
    idempotency_key             TEXT   NOT NULL,
    request_fingerprint         TEXT   NOT NULL,
    coverage_id                 TEXT,
    patient_ref                 TEXT   NOT NULL,
    payer_id                    TEXT   NOT NULL,
    member_id                   TEXT   NOT NULL,
    provider_npi                TEXT   NOT NULL,
    date_of_service             TEXT   NOT NULL,
    -- Service type codes asked (EQ01), comma-separated.
    service_type_codes          TEXT   NOT NULL,
    status                      TEXT   NOT NULL
        CHECK (status IN ('PENDING', 'COMPLETED', 'REJECTED', 'FAILED')),
    coverage_status             TEXT   NOT NULL
        CHECK (coverage_status IN ('ACTIVE', 'INACTIVE', 'UNKNOWN')),
    trace_number                TEXT   NOT NULL,
    plan_name                   TEXT,
    network_status              TEXT,
    ind_deductible_total        BIGINT,
    ind_deductible_remaining    BIGINT,
    ind_oop_total               BIGINT,
    ind_oop_remaining           BIGINT,
    -- Plan-level coinsurance as a fraction decimal string (a rate, not money).
    coinsurance_rate            TEXT,
    -- AAA03 reject reason codes in file order, comma-separated; empty when none.
    aaa_codes                   TEXT   NOT NULL,
    -- Why the check failed, in plain words without PHI.
    error_message               TEXT,
    -- The full parsed answer (summary, benefits, rejections, member info) as the protobuf
    -- medbill.eligibility.v1.EligibilityCheck message, so reads return exactly what was answered.
    detail                      BLOB  NOT NULL,
    raw_270                     BLOB  NOT NULL,
    raw_271                     BLOB,
    payer_attempts              BIGINT NOT NULL,
    created_at                  BIGINT NOT NULL,
    responded_at                BIGINT,
    PRIMARY KEY (tenant_id, id)
);

CREATE UNIQUE INDEX eligibility_checks_by_key ON eligibility_checks (tenant_id, idempotency_key);
CREATE INDEX eligibility_checks_by_coverage ON eligibility_checks (tenant_id, coverage_id, id);
CREATE INDEX eligibility_checks_by_patient ON eligibility_checks (tenant_id, patient_ref, id);
CREATE INDEX eligibility_checks_by_payer ON eligibility_checks (tenant_id, payer_id, id);

-- A priced estimate of what a patient will owe (a Good Faith Estimate when self_pay).
CREATE TABLE cost_estimates (
    tenant_id                   TEXT   NOT NULL,
    id                          TEXT   NOT NULL,
    eligibility_check_id        TEXT,
    coverage_id                 TEXT,
    patient_ref                 TEXT   NOT NULL,
    date_of_service             TEXT   NOT NULL,
    self_pay                    BOOLEAN NOT NULL,
    total_charge                BIGINT NOT NULL,
    total_allowed               BIGINT NOT NULL,
    total_patient               BIGINT NOT NULL,
    -- The whole estimate as the protobuf medbill.eligibility.v1.CostEstimate message.
    detail                      BLOB  NOT NULL,
    created_at                  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX cost_estimates_by_patient ON cost_estimates (tenant_id, patient_ref, id);
