-- Idempotency records now hold the encoded response message of the first call, under the
-- scope of the full gRPC method name. Records of earlier builds held an entity id (and, for
-- some RPCs, a short "svc.Rpc" scope) and cannot be replayed as responses. No release has
-- shipped with them, so they are dropped rather than replayed wrongly.
DELETE FROM platform_idempotency;
