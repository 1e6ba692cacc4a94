-- The posting worker reads an ERA's pending claim payments a page at a time: by ERA, not by a
-- scan of every claim payment.
CREATE INDEX claim_payments_era_idx ON claim_payments (tenant_id, era_id, id);
