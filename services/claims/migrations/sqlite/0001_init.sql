-- Claims service schema (SQLite). The PostgreSQL twin differs in dialect only.
-- Conventions: tenant_id on every table and first in every key; ids are UUID v7 text;
-- money is BIGINT cents; dates are TEXT YYYY-MM-DD; timestamps are BIGINT unix micros.

CREATE TABLE claims (
    tenant_id                  TEXT    NOT NULL,
    id                         TEXT    NOT NULL,
    -- CLM01: ours, max 20 characters, unique per tenant (it is how an 835 CLP01 finds the claim).
    patient_control_number     TEXT    NOT NULL CHECK (length(patient_control_number) BETWEEN 1 AND 20),
    claim_type                 TEXT    NOT NULL CHECK (claim_type IN ('PROFESSIONAL', 'INSTITUTIONAL')),
    status                     TEXT    NOT NULL CHECK (status IN ('DRAFT', 'HELD', 'READY', 'SUBMITTED', 'ACCEPTED',
                                   'REJECTED', 'PAID', 'PARTIALLY_PAID', 'DENIED', 'VOID')),
    -- CLM05-3: 1 original, 7 replacement, 8 void.
    frequency_code             TEXT    NOT NULL CHECK (frequency_code IN ('1', '7', '8')),
    -- REF*F8, required for frequency 7 and 8.
    payer_claim_control_number TEXT,
    coverage_id                TEXT    NOT NULL,
    payer_id                   TEXT    NOT NULL,
    patient_ref                TEXT    NOT NULL,
    billing_provider_npi       TEXT    NOT NULL CHECK (length(billing_provider_npi) = 10),
    rendering_provider_npi     TEXT    CHECK (rendering_provider_npi IS NULL OR length(rendering_provider_npi) = 10),
    -- CLM05-1: place of service (837P) or facility type code (837I).
    place_of_service           TEXT,
    facility_type_code         TEXT,
    total_charge_cents         BIGINT  NOT NULL CHECK (total_charge_cents >= 0),
    service_date_from          TEXT    NOT NULL,
    service_date_to            TEXT    NOT NULL,
    encounter_ref              TEXT,
    created_at                 BIGINT  NOT NULL,
    updated_at                 BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT claims_patient_control_number_key UNIQUE (tenant_id, patient_control_number),
    CHECK (service_date_from <= service_date_to),
    CHECK (frequency_code = '1' OR payer_claim_control_number IS NOT NULL)
);

-- List filters always end in id so keyset paging (ORDER BY id) stays on the index.
CREATE INDEX claims_tenant_status_idx ON claims (tenant_id, status, id);
CREATE INDEX claims_tenant_patient_idx ON claims (tenant_id, patient_ref, id);
CREATE INDEX claims_tenant_payer_idx ON claims (tenant_id, payer_id, id);
CREATE INDEX claims_tenant_coverage_idx ON claims (tenant_id, coverage_id, id);
CREATE INDEX claims_tenant_service_date_idx ON claims (tenant_id, service_date_from, service_date_to);

-- HI: diagnoses in order; position 1 is the principal diagnosis (ABK/ABJ), the rest ABF/ABN.
CREATE TABLE claim_diagnoses (
    tenant_id TEXT    NOT NULL,
    claim_id  TEXT    NOT NULL,
    position  INTEGER NOT NULL CHECK (position >= 1),
    -- ICD-10-CM without the dot.
    code      TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, claim_id, position),
    FOREIGN KEY (tenant_id, claim_id) REFERENCES claims (tenant_id, id) ON DELETE CASCADE
);

-- SV1 (837P) / SV2 (837I) service lines.
CREATE TABLE claim_lines (
    tenant_id           TEXT    NOT NULL,
    claim_id            TEXT    NOT NULL,
    line_number         INTEGER NOT NULL CHECK (line_number >= 1),
    -- REF*6R: our line item control number, echoed back by the payer in the 835 (given by the
    -- caller or assigned by us); the 835 finds the claim by CLP01 and then the line by REF*6R.
    line_control_number TEXT    NOT NULL CHECK (length(line_control_number) BETWEEN 1 AND 50),
    procedure_code      TEXT    NOT NULL,
    -- Up to four procedure modifiers, comma separated, in order ('' when none).
    modifiers           TEXT    NOT NULL DEFAULT '',
    revenue_code        TEXT,
    charge_cents        BIGINT  NOT NULL CHECK (charge_cents >= 0),
    -- Units as an exact decimal string (units may be fractional, e.g. anaesthesia minutes).
    units               TEXT    NOT NULL,
    service_date        TEXT    NOT NULL,
    -- 1-based pointers into claim_diagnoses.position, comma separated, in order.
    diagnosis_pointers  TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, claim_id, line_number),
    CONSTRAINT claim_lines_line_control_number_key UNIQUE (tenant_id, claim_id, line_control_number),
    FOREIGN KEY (tenant_id, claim_id) REFERENCES claims (tenant_id, id) ON DELETE CASCADE
);

-- Every status change of a claim, in order; WatchClaims streams from here.
-- The creating transition has from_status NULL.
CREATE TABLE claim_status_history (
    tenant_id   TEXT   NOT NULL,
    -- UUID v7 of the entry.
    id          TEXT   NOT NULL,
    -- Per-tenant event number, 1, 2, 3... without gaps, allocated from claim_event_sequences in
    -- the writing transaction: a watcher resumes after the last sequence it saw.
    sequence    BIGINT NOT NULL CHECK (sequence >= 1),
    claim_id    TEXT   NOT NULL,
    from_status TEXT,
    to_status   TEXT   NOT NULL,
    -- What caused the change: CREATE, SCRUB, SUBMISSION, SYNTAX_ACKNOWLEDGEMENT,
    -- CLAIM_ACKNOWLEDGEMENT, ADJUDICATION, CORRECTION, VOID.
    source      TEXT   NOT NULL,
    -- Id of the causing record (batch, acknowledgement, ERA, replacement claim); '' when none.
    source_id   TEXT   NOT NULL DEFAULT '',
    -- Short plain-language reason, never PHI.
    reason      TEXT   NOT NULL DEFAULT '',
    at          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT claim_status_history_sequence_key UNIQUE (tenant_id, sequence),
    FOREIGN KEY (tenant_id, claim_id) REFERENCES claims (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX claim_status_history_claim_idx ON claim_status_history (tenant_id, claim_id, sequence);

-- The last status-history sequence handed out per tenant. Allocating with
-- INSERT ... ON CONFLICT DO UPDATE ... RETURNING locks the tenant's row until commit, so
-- sequences are gap-free and become visible in order.
CREATE TABLE claim_event_sequences (
    tenant_id     TEXT   NOT NULL PRIMARY KEY,
    last_sequence BIGINT NOT NULL
);
