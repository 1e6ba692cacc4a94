-- Who holds an outbox lease: the relay's stable owner name (the same after a restart) and the
-- process that took it. A restarted relay releases the leases its owner name took in an earlier
-- process at once instead of waiting for them to expire; other owners' leases still expire.
ALTER TABLE platform_outbox ADD COLUMN lease_owner TEXT;
ALTER TABLE platform_outbox ADD COLUMN lease_process TEXT;
