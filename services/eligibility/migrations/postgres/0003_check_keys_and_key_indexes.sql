-- 1. CheckEligibility keys live in platform_idempotency (scope 'eligibility.CheckEligibility')
-- like every other idempotency key, so a call answered with an earlier check (from the cache, or
-- by sharing an identical call in flight) records its key too; the key's response is the id of
-- the check answered with. Copy the keys of the checks recorded so far so their retries keep
-- replaying, then drop the unique index: eligibility_checks.idempotency_key now only says under
-- which key a check was made. Identical to the SQLite migration but for the text-to-bytes
-- conversion.

INSERT INTO platform_idempotency (tenant_id, scope, idem_key, request_sha256, response, created_at, completed_at)
SELECT tenant_id, 'eligibility.CheckEligibility', idempotency_key, request_fingerprint,
       convert_to(id, 'UTF8'), created_at, created_at
FROM eligibility_checks
WHERE true
ON CONFLICT (tenant_id, scope, idem_key) DO NOTHING;

DROP INDEX eligibility_checks_by_key;

-- 2. Look-ups by id must use the primary key whatever the planner's statistics say. While a
-- table has none (never analysed) or is small, every index leading with tenant_id costs the same
-- for `tenant_id = $1 AND id = $2`, and PostgreSQL takes the most recently created one: a list
-- index, which then reads all of the tenant's rows, and a prepared statement planned then keeps
-- that plan as the table grows. So each primary key is rebuilt here as its table's newest index.
-- A later migration that adds an index to one of these tables rebuilds its primary key after it
-- the same way (tests/keyed_lookups.rs fails otherwise). SQLite needs none of this: it prefers the
-- index with the most equality terms.

CREATE UNIQUE INDEX coverages_key ON coverages (tenant_id, id);
ALTER TABLE coverages DROP CONSTRAINT coverages_pkey;
ALTER TABLE coverages ADD CONSTRAINT coverages_pkey PRIMARY KEY USING INDEX coverages_key;

CREATE UNIQUE INDEX eligibility_checks_key ON eligibility_checks (tenant_id, id);
ALTER TABLE eligibility_checks DROP CONSTRAINT eligibility_checks_pkey;
ALTER TABLE eligibility_checks ADD CONSTRAINT eligibility_checks_pkey PRIMARY KEY USING INDEX eligibility_checks_key;

CREATE UNIQUE INDEX cost_estimates_key ON cost_estimates (tenant_id, id);
ALTER TABLE cost_estimates DROP CONSTRAINT cost_estimates_pkey;
ALTER TABLE cost_estimates ADD CONSTRAINT cost_estimates_pkey PRIMARY KEY USING INDEX cost_estimates_key;
