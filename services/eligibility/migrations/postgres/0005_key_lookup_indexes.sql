-- Look-ups of one coverage, eligibility check or cost estimate by id (`tenant_id = $1 AND id = $2`)
-- must read that one row whatever the planner's statistics say. Migration 0003 rebuilt each
-- primary key as its table's newest index, so that it wins the ties the planner breaks by
-- creation order while a never-analysed table has no statistics. That is not enough: which index
-- is flattest changes as a table grows, and from about 12,000 rows the custom and the generic
-- plans of the coverage and check look-ups went through coverages_by_patient and
-- eligibility_checks_by_patient, reading the tenant's rows to find one. cost_estimates has the
-- same shape of list index; there, by 200,000 rows, the primary key's estimate has grown past
-- one row and the look-up turns into a bitmap scan.
--
-- Two facts make the look-up by id the cheapest plan at every size (as in claims' and
-- remittance's 0002):
-- - a hash index has no tree to descend, so it costs less than any B-tree whose condition the
--   planner estimates at one row, whatever the heights of the indexes and the order they were
--   made in;
-- - a unique index on id alone tells the planner, without statistics, that `id = $2` matches one
--   row, so the hash look-up stays at one row as the table grows, where otherwise an index that
--   ends in id (every list index here) would win once the primary key is a level taller.
-- Ids are UUID v7, unique across tenants already; the constraint holds on SQLite too. tenant_id
-- is still checked on the row read. tests/keyed_lookups.rs checks the plans at sizes from empty
-- to 12,000 rows. The primary keys stay as 0003 left them; a later index on these tables needs no
-- rebuild after it.

CREATE UNIQUE INDEX coverages_id_key ON coverages (id);
CREATE INDEX coverages_id_hash_idx ON coverages USING hash (id);

CREATE UNIQUE INDEX eligibility_checks_id_key ON eligibility_checks (id);
CREATE INDEX eligibility_checks_id_hash_idx ON eligibility_checks USING hash (id);

CREATE UNIQUE INDEX cost_estimates_id_key ON cost_estimates (id);
CREATE INDEX cost_estimates_id_hash_idx ON cost_estimates USING hash (id);
