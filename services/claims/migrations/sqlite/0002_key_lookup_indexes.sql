-- Claim ids are unique across tenants (UUID v7), as on PostgreSQL, where the unique index also
-- tells the planner that a look-up by id reads one row. SQLite needs no hash indexes: without
-- statistics it prefers the index with the most equality terms (tests/keyed_lookups.rs checks
-- both backends).

CREATE UNIQUE INDEX claims_id_key ON claims (id);
