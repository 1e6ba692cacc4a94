-- Providers and service facilities of a tenant, and what a claim carries only for its 837.

-- Who bills, renders, refers, attends, and where services are performed; claims name them by NPI.
CREATE TABLE providers (
    tenant_id          TEXT   NOT NULL,
    npi                TEXT   NOT NULL CHECK (length(npi) = 10),
    -- INDIVIDUAL, ORGANIZATION or SERVICE_FACILITY.
    kind               TEXT   NOT NULL CHECK (kind IN ('INDIVIDUAL', 'ORGANIZATION', 'SERVICE_FACILITY')),
    -- Organisation / facility name, or the person's last name (NM103).
    last_or_organization_name TEXT NOT NULL CHECK (length(last_or_organization_name) >= 1),
    first_name         TEXT   NOT NULL DEFAULT '',
    middle_name        TEXT   NOT NULL DEFAULT '',
    name_suffix        TEXT   NOT NULL DEFAULT '',
    -- EIN or SSN (REF*EI / REF*SY); NULL when none is on file. Never logged, masked in answers.
    tax_id_type        TEXT   CHECK (tax_id_type IS NULL OR tax_id_type IN ('EIN', 'SSN')),
    tax_id             TEXT,
    taxonomy_code      TEXT,
    -- N3/N4 and the pay-to address (loop 2010AB) as JSON documents; NULL when none.
    address_json       TEXT,
    pay_to_address_json TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, npi),
    CHECK ((tax_id_type IS NULL) = (tax_id IS NULL))
);

-- Demographics, other providers, authorization / referral numbers, institutional fields and the
-- coverage snapshot (see services/claims/src/details.rs). Holds PHI; nothing searches it.
ALTER TABLE claims ADD COLUMN details_json TEXT NOT NULL DEFAULT '{}';

-- Line-level prior authorization (REF*G1) and referral (REF*9F) numbers.
ALTER TABLE claim_lines ADD COLUMN prior_authorization_number TEXT;
ALTER TABLE claim_lines ADD COLUMN referral_number TEXT;
