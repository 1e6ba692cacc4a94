-- The latest scrub of each claim (ScrubClaim): its findings as a JSON array of
-- {edit_code, severity, message, field, line_number, x12_location}, errors first. A new scrub
-- replaces the row. The PostgreSQL twin differs in dialect only.
CREATE TABLE claim_scrub_results (
    tenant_id   TEXT    NOT NULL,
    claim_id    TEXT    NOT NULL,
    -- unix micros
    scrubbed_at BIGINT  NOT NULL,
    error_count INTEGER NOT NULL CHECK (error_count >= 0),
    findings    TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, claim_id),
    FOREIGN KEY (tenant_id, claim_id) REFERENCES claims (tenant_id, id) ON DELETE CASCADE
);
