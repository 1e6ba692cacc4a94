-- The audit trail: one row per call that read or changed a patient's data or money (see
-- docs/audit.md). Append-only: the triggers refuse UPDATE and DELETE. `medbill audit purge`
-- drops the DELETE trigger, deletes and recreates it in one transaction (SQLite has no session
-- settings a trigger could read); whoever can write the file can do the same, so on SQLite the
-- guarantee is against the services' own code, not against the file's owner.
CREATE TABLE platform_audit (
    id                  TEXT    PRIMARY KEY,
    occurred_at         BIGINT  NOT NULL,
    tenant_id           TEXT    NOT NULL,
    subject             TEXT    NOT NULL,
    peer                TEXT,
    service             TEXT    NOT NULL,
    method              TEXT    NOT NULL,
    -- "\ntype:id\n" per resource, so one substring test finds a resource.
    resources           TEXT    NOT NULL,
    resources_truncated INTEGER NOT NULL,
    code                INTEGER NOT NULL,
    trace_id            TEXT
);

CREATE INDEX platform_audit_tenant_id ON platform_audit (tenant_id, id);
CREATE INDEX platform_audit_occurred_at ON platform_audit (occurred_at);

CREATE TRIGGER platform_audit_no_update BEFORE UPDATE ON platform_audit
BEGIN
    SELECT RAISE(ABORT, 'platform_audit is append-only: UPDATE refused');
END;

CREATE TRIGGER platform_audit_no_delete BEFORE DELETE ON platform_audit
BEGIN
    SELECT RAISE(ABORT, 'platform_audit is append-only: DELETE refused');
END;
