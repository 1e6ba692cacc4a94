-- Coverage, eligibility check and cost estimate ids are unique across tenants (UUID v7), as on
-- PostgreSQL, where the unique index also tells the planner that a look-up by id reads one row.
-- SQLite needs no hash indexes: without statistics it prefers the index with the most equality
-- terms (tests/keyed_lookups.rs checks both backends).

CREATE UNIQUE INDEX coverages_id_key ON coverages (id);
CREATE UNIQUE INDEX eligibility_checks_id_key ON eligibility_checks (id);
CREATE UNIQUE INDEX cost_estimates_id_key ON cost_estimates (id);
