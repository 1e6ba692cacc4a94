-- Look-ups of one ERA by id (`tenant_id = $1 AND id = $2`: GetEra, its content, and the
-- foreign-key check PostgreSQL runs against eras for every balance problem and provider
-- adjustment written) and by content (`tenant_id = $1 AND content_sha256 = $2`: the same file
-- received again) must read that one ERA whatever the planner's statistics say. A table that was
-- never analysed has none, and the planner then takes `tenant_id = $1` alone to match 0.5% of the
-- rows (one row while the table is small): every index leading with tenant_id looks as good as
-- the key, the cheapest to descend wins (the flattest, or on a tie the most recently created),
-- and its plan reads all of the tenant's ERAs. A prepared statement planned then keeps that plan
-- as the table grows. Rebuilding the keys as the newest indexes (which only wins ties) would not
-- do: both keys cannot be newest, and which index is flattest changes as the table grows.
--
-- Two facts make the key look-ups the cheapest plans at every size:
-- - a hash index has no tree to descend, so it costs less than any B-tree whose condition the
--   planner estimates at one row, whatever the heights of the indexes and the order they were
--   made in;
-- - a unique index on id alone tells the planner, without statistics, that `id = $2` matches one
--   row, so the hash look-up by id stays at one row as the table grows, where otherwise an index
--   that ends in id (every list index here) would win once the primary key is a level taller. No
--   list index holds content_sha256, so its unique key costs least once the estimates pass one
--   row, and the hash index alone does.
-- ERA ids are UUID v7, so they are unique across tenants already; the constraint holds on SQLite
-- too. tenant_id is still checked on every row read. tests/keyed_lookups.rs checks the plans at
-- sizes from empty to 12,000 rows.

CREATE UNIQUE INDEX eras_id_key ON eras (id);
CREATE INDEX eras_id_hash_idx ON eras USING hash (id);
CREATE INDEX eras_content_sha256_hash_idx ON eras USING hash (content_sha256);
