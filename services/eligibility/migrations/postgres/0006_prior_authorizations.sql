-- Prior authorizations (X12 278). Kept table-for-table identical in both dialects. Same conventions
-- as 0001: ids TEXT (UUID v7), dates TEXT YYYY-MM-DD, timestamps BIGINT unix microseconds,
-- tenant_id leading every key and list index.

-- One request for review and the payer's latest decision. The whole authorization as answered is
-- the protobuf medbill.eligibility.v1.PriorAuthorization message (detail, without exchanges); the
-- columns beside it are what lists and the pending poller filter on.
CREATE TABLE prior_authorizations (
    tenant_id            TEXT   NOT NULL,
    id                   TEXT   NOT NULL,
    coverage_id          TEXT   NOT NULL,
    patient_ref          TEXT   NOT NULL,
    payer_id             TEXT   NOT NULL,
    status               TEXT   NOT NULL
        CHECK (status IN ('PENDING', 'APPROVED', 'PARTIALLY_APPROVED', 'DENIED', 'PENDED',
                          'MODIFIED', 'CANCELLED', 'FAILED', 'NOT_REQUIRED')),
    authorization_number TEXT,
    -- The payer's review reference (REF*NT) an inquiry quotes.
    payer_reference      TEXT,
    requested_from       TEXT   NOT NULL,
    requested_to         TEXT   NOT NULL,
    detail               BYTEA  NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX prior_authorizations_by_coverage ON prior_authorizations (tenant_id, coverage_id, id);
CREATE INDEX prior_authorizations_by_patient ON prior_authorizations (tenant_id, patient_ref, id);
-- The poller's queue: undecided authorizations of every tenant, least recently asked first.
CREATE INDEX prior_authorizations_undecided ON prior_authorizations (status, updated_at);

-- Every 278 sent for an authorization (the request, then each inquiry) and the raw answer, kept
-- for audit; a failed exchange is kept too. raw_request and raw_response are PHI.
CREATE TABLE prior_authorization_exchanges (
    tenant_id            TEXT   NOT NULL,
    authorization_id     TEXT   NOT NULL,
    seq                  BIGINT NOT NULL,
    kind                 TEXT   NOT NULL CHECK (kind IN ('REQUEST', 'INQUIRY')),
    outcome              TEXT   NOT NULL,
    error_message        TEXT,
    raw_request          BYTEA  NOT NULL,
    raw_response         BYTEA,
    payer_attempts       BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, authorization_id, seq)
);

-- Look-ups by id read one row whatever the statistics say (see 0005).
CREATE UNIQUE INDEX prior_authorizations_id_key ON prior_authorizations (id);
CREATE INDEX prior_authorizations_id_hash_idx ON prior_authorizations USING hash (id);
