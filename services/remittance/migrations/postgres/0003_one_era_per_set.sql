-- One ERA per 835 transaction set (PostgreSQL; the SQLite twin rebuilds the tables to the same shape).
-- A received file is kept once, raw, with its hash, in era_files; each of its 835 sets (ST..SE: one
-- BPR payment, one TRN trace) is one row of eras, balanced on its own. The same content received
-- again (by SHA-256, under any key) is the same file, so it yields the same ERAs once.

CREATE TABLE era_files (
    tenant_id      TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    received_at    BIGINT  NOT NULL,
    -- The raw bytes exactly as received, whatever became of them.
    content        BYTEA   NOT NULL,
    content_sha256 TEXT    NOT NULL CHECK (length(content_sha256) = 64),
    byte_size      BIGINT  NOT NULL CHECK (byte_size >= 0),
    -- Original file name, for audit; '' when not given.
    file_name      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT era_files_content_sha256_key UNIQUE (tenant_id, content_sha256)
);
-- Key look-ups without statistics, as migration 0002 explains for eras.
CREATE UNIQUE INDEX era_files_id_key ON era_files (id);
CREATE INDEX era_files_id_hash_idx ON era_files USING hash (id);
CREATE INDEX era_files_content_sha256_hash_idx ON era_files USING hash (content_sha256);

-- Every ERA stored so far was a whole file: its file takes the ERA's id.
INSERT INTO era_files (tenant_id, id, received_at, content, content_sha256, byte_size, file_name)
SELECT tenant_id, id, received_at, content, content_sha256, byte_size, file_name FROM eras;

ALTER TABLE eras ADD COLUMN file_id TEXT;
UPDATE eras SET file_id = id;
ALTER TABLE eras ALTER COLUMN file_id SET NOT NULL;
-- 1-based position of the set among the file's 835 sets; 0 for the ERA standing for a whole file
-- rejected before its sets could be read.
ALTER TABLE eras ADD COLUMN set_position INTEGER NOT NULL DEFAULT 1 CHECK (set_position >= 0);
UPDATE eras SET set_position = 0 WHERE status = 'REJECTED';
-- ST02; '' for a rejected file.
ALTER TABLE eras ADD COLUMN set_control_number TEXT NOT NULL DEFAULT '';
-- Which element payer_id came from ('N104:<N103>', 'REF*2U', 'TRN03'); '' before this migration.
ALTER TABLE eras ADD COLUMN payer_id_source TEXT NOT NULL DEFAULT '';
ALTER TABLE eras ADD CONSTRAINT eras_file_fkey
    FOREIGN KEY (tenant_id, file_id) REFERENCES era_files (tenant_id, id);
ALTER TABLE eras ADD CONSTRAINT eras_file_set_key UNIQUE (tenant_id, file_id, set_position);

-- The content now belongs to the file. An ERA keeps copies of its file's hash, size and name (they
-- never change), so reading ERAs joins nothing: a join planned without statistics reads every file
-- of the tenant.
DROP INDEX eras_content_sha256_hash_idx;
ALTER TABLE eras DROP CONSTRAINT eras_content_sha256_key;
ALTER TABLE eras DROP COLUMN content;
