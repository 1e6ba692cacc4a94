-- The audit trail: one row per call that read or changed a patient's data or money (see
-- docs/audit.md). Append-only. The service's role owns this table (it ran this migration), and
-- an owner may do anything to its table, so the trigger is what binds it: UPDATE and TRUNCATE
-- are always refused, DELETE unless the transaction set `medbill.audit_purge` to 'on', which
-- only `medbill audit purge` does. The REVOKE makes the owner's lack of UPDATE/DELETE visible in
-- its grants as well (a superuser ignores grants; the trigger binds it too).
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
    resources_truncated BOOLEAN NOT NULL,
    code                INTEGER NOT NULL,
    trace_id            TEXT
);

CREATE INDEX platform_audit_tenant_id ON platform_audit (tenant_id, id);
CREATE INDEX platform_audit_occurred_at ON platform_audit (occurred_at);

CREATE FUNCTION platform_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('medbill.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'platform_audit is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER platform_audit_append_only BEFORE UPDATE OR DELETE ON platform_audit
    FOR EACH ROW EXECUTE FUNCTION platform_audit_append_only();
CREATE TRIGGER platform_audit_no_truncate BEFORE TRUNCATE ON platform_audit
    FOR EACH STATEMENT EXECUTE FUNCTION platform_audit_append_only();

REVOKE UPDATE, DELETE, TRUNCATE ON platform_audit FROM PUBLIC, CURRENT_USER;
