-- A received file's raw bytes in pieces of at most 1 MiB, in order: storing or reading a large
-- 835 never binds the whole file as one value (which the driver copies, and SQLite builds as one
-- record). Files stored before keep their bytes in era_files.content; new ones leave it empty.
CREATE TABLE era_file_chunks (
    tenant_id   TEXT    NOT NULL,
    file_id     TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    bytes       BLOB    NOT NULL,
    PRIMARY KEY (tenant_id, file_id, position),
    FOREIGN KEY (tenant_id, file_id) REFERENCES era_files (tenant_id, id) ON DELETE CASCADE
);
