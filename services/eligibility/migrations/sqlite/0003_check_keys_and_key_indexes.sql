-- 1. CheckEligibility keys live in platform_idempotency (scope 'eligibility.CheckEligibility')
-- like every other idempotency key, so a call answered with an earlier check (from the cache, or
-- by sharing an identical call in flight) records its key too; the key's response is the id of
-- the check answered with. Copy the keys of the checks recorded so far so their retries keep
-- replaying, then drop the unique index: eligibility_checks.idempotency_key now only says under
-- which key a check was made. Identical to the PostgreSQL migration but for the text-to-bytes
-- conversion.

INSERT INTO platform_idempotency (tenant_id, scope, idem_key, request_sha256, response, created_at, completed_at)
SELECT tenant_id, 'eligibility.CheckEligibility', idempotency_key, request_fingerprint,
       CAST(id AS BLOB), created_at, created_at
FROM eligibility_checks
WHERE true
ON CONFLICT (tenant_id, scope, idem_key) DO NOTHING;

DROP INDEX eligibility_checks_by_key;

-- 2. The PostgreSQL migration rebuilds each primary key as its table's newest index, so look-ups
-- by id use it whatever the statistics say. SQLite needs nothing: without statistics it prefers
-- the index with the most equality terms, the primary key (tests/keyed_lookups.rs checks both).
