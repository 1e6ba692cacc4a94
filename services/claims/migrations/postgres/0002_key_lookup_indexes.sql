-- Look-ups of one claim by id (`tenant_id = $1 AND id = $2`: GetClaim, status changes, the
-- history join, and the foreign-key check PostgreSQL runs against claims for every diagnosis,
-- line and history entry written) must read that one claim whatever the planner's statistics
-- say. A table that was never analysed has none, and the planner then takes `tenant_id = $1` alone
-- to match 0.5% of the rows (one row while the table is small): every index leading with
-- tenant_id looks as good as the primary key, the cheapest to descend wins (the flattest, or on a
-- tie the most recently created), and its plan reads all of the tenant's claims. A prepared
-- statement planned then keeps that plan as the table grows. Which index is flattest changes as
-- the table grows, so rebuilding the primary key as the newest index (which only wins ties) is
-- not enough.
--
-- Two facts make the look-up by id the cheapest plan at every size:
-- - a hash index has no tree to descend, so it costs less than any B-tree whose condition the
--   planner estimates at one row, whatever the heights of the indexes and the order they were
--   made in;
-- - a unique index on id alone tells the planner, without statistics, that `id = $2` matches one
--   row, so the hash look-up stays at one row as the table grows, where otherwise an index that
--   ends in id (every list index here) would win once the primary key is a level taller.
-- Claim ids are UUID v7, unique across tenants already; the constraint holds on SQLite too.
-- tenant_id is still checked on the row read. tests/keyed_lookups.rs checks the plans at sizes
-- from empty to 12,000 claims.

CREATE UNIQUE INDEX claims_id_key ON claims (id);
CREATE INDEX claims_id_hash_idx ON claims USING hash (id);
