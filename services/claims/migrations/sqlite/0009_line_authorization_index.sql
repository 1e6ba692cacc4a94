-- ScrubClaim adds up the units other claims have billed under a line's prior authorization
-- number (REF*G1 in 2400): the look-up reads that number's lines through this index.
CREATE INDEX claim_lines_by_authorization ON claim_lines (tenant_id, prior_authorization_number)
    WHERE prior_authorization_number IS NOT NULL;
