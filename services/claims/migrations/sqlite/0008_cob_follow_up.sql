-- SQLite twin of the PostgreSQL migration.
-- Coordination of benefits (the secondary claim made from a primary's adjudication) and the
-- follow-up of unpaid claims (276 asked, 277 answered).

-- primary -> secondary, readable both ways; a primary has at most one secondary.
ALTER TABLE claims ADD COLUMN primary_claim_id TEXT;
ALTER TABLE claims ADD COLUMN secondary_claim_id TEXT;
-- Why an adjudicated primary has no secondary claim, in plain words.
ALTER TABLE claims ADD COLUMN secondary_claim_note TEXT;
CREATE UNIQUE INDEX claims_primary_claim_key ON claims (tenant_id, primary_claim_id);

-- When the claim was last asked about with an answer (unix micros), and the lease a follow-up
-- pass holds on it while the 276 is out, so two replicas never ask twice.
ALTER TABLE claims ADD COLUMN last_follow_up_at BIGINT;
ALTER TABLE claims ADD COLUMN follow_up_lease_until BIGINT;
-- The follow-up pass looks for unpaid claims per payer.
CREATE INDEX claims_follow_up_idx ON claims (payer_id, status, id);

CREATE TABLE claim_follow_ups (
    tenant_id                  TEXT   NOT NULL,
    id                         TEXT   NOT NULL,
    claim_id                   TEXT   NOT NULL,
    asked_at                   BIGINT NOT NULL,
    -- SCHEDULED (the background task) or REQUESTED (FollowUpClaim).
    trigger_kind               TEXT   NOT NULL CHECK (trigger_kind IN ('SCHEDULED', 'REQUESTED')),
    -- ANSWERED or FAILED.
    outcome                    TEXT   NOT NULL CHECK (outcome IN ('ANSWERED', 'FAILED')),
    -- The 277's claim-level status codes: JSON list of {category, category_description,
    -- status, entity}.
    statuses_json              TEXT   NOT NULL,
    summary                    TEXT   NOT NULL,
    payer_claim_control_number TEXT,
    effective_date             TEXT,
    paid_cents                 BIGINT,
    error_message              TEXT   NOT NULL DEFAULT '',
    -- The 276 sent and the 277 received, for audit.
    raw_request                BLOB   NOT NULL,
    raw_response               BLOB   NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX claim_follow_ups_claim_idx ON claim_follow_ups (tenant_id, claim_id, id);
