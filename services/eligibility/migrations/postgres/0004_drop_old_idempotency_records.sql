-- Idempotency records of the eligibility RPCs are written by medbill_runtime::idempotent: scope
-- the full gRPC method name (medbill.eligibility.v1.EligibilityService/...), response the
-- encoded first response message. Records of earlier builds (scope 'eligibility.<Rpc>',
-- response an entity id) cannot be replayed as responses. The platform migration
-- 0002_idempotency_responses deleted them, but service migrations run after the platform ones,
-- so on a database upgraded across both, migration 0003 copied the check keys back in under the
-- old scope. No release has shipped with them, so they are dropped rather than replayed wrongly.
DELETE FROM platform_idempotency WHERE scope LIKE 'eligibility.%';

-- eligibility_checks.request_fingerprint was the key's request hash while check keys lived on
-- the check rows; the hash now lives only in the key's record (platform_idempotency).
ALTER TABLE eligibility_checks DROP COLUMN request_fingerprint;
