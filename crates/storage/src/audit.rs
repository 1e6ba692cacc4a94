//! The audit trail's table, `platform_audit`: one append-only row per recorded call (see
//! docs/audit.md for what is recorded and why).
//!
//! Rows are written in the transaction of the change they record ([`insert`]) or in batches for
//! reads ([`insert_batch`]); they are never updated, and deleted only by [`purge`], which gets
//! past the append-only trigger in a controlled way: on PostgreSQL by setting
//! `medbill.audit_purge` for its own transaction (and granting its role DELETE for that
//! transaction only), on SQLite by dropping the DELETE trigger and recreating it in the same
//! transaction.

use crate::{Backend, Database, StorageError, Tx, with_db, with_tx};

/// One recorded call. Holds ids only, never PHI values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// UUID v7 (id order is time order), assigned when the call ended.
    pub id: String,
    /// When the call ended, unix microseconds.
    pub occurred_at: i64,
    /// The tenant the call acted for.
    pub tenant_id: String,
    /// Who called.
    pub subject: String,
    /// Where from: peer address or client certificate.
    pub peer: Option<String>,
    /// Fully qualified gRPC service.
    pub service: String,
    /// RPC name.
    pub method: String,
    /// `(type, id)` of each resource touched.
    pub resources: Vec<(String, String)>,
    /// Whether more resources were touched than kept.
    pub resources_truncated: bool,
    /// The gRPC status code the call ended with.
    pub code: i32,
    /// W3C trace id.
    pub trace_id: Option<String>,
}

/// Encodes resources as `"\ntype:id\n..."`, so one substring test finds `"\ntype:id\n"`.
fn encode_resources(resources: &[(String, String)]) -> String {
    let mut out = String::from("\n");
    for (kind, id) in resources {
        out.push_str(kind);
        out.push(':');
        // A line break would split the entry; no real id holds one.
        out.push_str(&id.replace('\n', " "));
        out.push('\n');
    }
    out
}

fn decode_resources(text: &str) -> Vec<(String, String)> {
    text.split('\n')
        .filter_map(|line| line.split_once(':'))
        .map(|(kind, id)| (kind.to_owned(), id.to_owned()))
        .collect()
}

/// The substring that finds calls touching the resource `kind`/`id` (any of that kind when
/// `id` is `None`).
fn resource_needle(kind: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("\n{kind}:{}\n", id.replace('\n', " ")),
        None => format!("\n{kind}:"),
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    occurred_at: i64,
    tenant_id: String,
    subject: String,
    peer: Option<String>,
    service: String,
    method: String,
    resources: String,
    resources_truncated: bool,
    code: i32,
    trace_id: Option<String>,
}

impl From<Row> for AuditRecord {
    fn from(r: Row) -> Self {
        AuditRecord {
            id: r.id,
            occurred_at: r.occurred_at,
            tenant_id: r.tenant_id,
            subject: r.subject,
            peer: r.peer,
            service: r.service,
            method: r.method,
            resources: decode_resources(&r.resources),
            resources_truncated: r.resources_truncated,
            code: r.code,
            trace_id: r.trace_id,
        }
    }
}

const INSERT: &str = "INSERT INTO platform_audit (id, occurred_at, tenant_id, subject, peer, \
     service, method, resources, resources_truncated, code, trace_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// Writes `record` in `tx`: it commits, or rolls back, with the change it records.
pub async fn insert(tx: &mut Tx, record: &AuditRecord) -> Result<(), StorageError> {
    let resources = encode_resources(&record.resources);
    with_tx!(tx, |conn| {
        sqlx::query(INSERT)
            .bind(&record.id)
            .bind(record.occurred_at)
            .bind(&record.tenant_id)
            .bind(&record.subject)
            .bind(&record.peer)
            .bind(&record.service)
            .bind(&record.method)
            .bind(&resources)
            .bind(record.resources_truncated)
            .bind(record.code)
            .bind(&record.trace_id)
            .execute(&mut *conn)
            .await?;
    });
    Ok(())
}

/// Writes `records` in one transaction (the batch writer's flush).
pub async fn insert_batch(db: &Database, records: &[AuditRecord]) -> Result<(), StorageError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    for record in records {
        insert(&mut tx, record).await?;
    }
    tx.commit().await
}

/// Filters of [`list`]; `None` is "any".
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// The tenant (required for the RPC; `None` only for the operator's export).
    pub tenant_id: Option<String>,
    /// Only this subject.
    pub subject: Option<String>,
    /// Only calls touching this resource type (and id).
    pub resource: Option<(String, Option<String>)>,
    /// Only calls touching this patient.
    pub patient_ref: Option<String>,
    /// Only this RPC: a method name or `service/method`.
    pub method: Option<String>,
    /// Only calls that ended at or after this time (unix micros).
    pub since: Option<i64>,
    /// Only calls that ended before this time (unix micros).
    pub until: Option<i64>,
}

macro_rules! select_audit {
    ($contains:literal, $cursor:literal, $order:literal) => {
        concat!(
            "SELECT id, occurred_at, tenant_id, subject, peer, service, method, resources, \
             resources_truncated, code, trace_id FROM platform_audit \
             WHERE ($1 IS NULL OR tenant_id = $1) \
             AND ($2 IS NULL OR subject = $2) \
             AND ($3 IS NULL OR ",
            $contains,
            "(resources, $3) > 0) \
             AND ($4 IS NULL OR ",
            $contains,
            "(resources, $4) > 0) \
             AND ($5 IS NULL OR method = $5 OR service || '/' || method = $5) \
             AND ($6 IS NULL OR occurred_at >= $6) \
             AND ($7 IS NULL OR occurred_at < $7) \
             AND ($8 IS NULL OR id ",
            $cursor,
            " $8) ORDER BY id ",
            $order,
            " LIMIT $9"
        )
    };
}

/// Which way [`list`] pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Newest first (the RPC); the cursor is the last id returned.
    NewestFirst,
    /// Oldest first (the export).
    OldestFirst,
}

/// Returns up to `limit` records matching `query` after `cursor` (an id) in `order`.
pub async fn list(
    db: &Database,
    query: &AuditQuery,
    order: Order,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Vec<AuditRecord>, StorageError> {
    // PostgreSQL spells "find a substring" strpos, SQLite instr; both are case-sensitive,
    // unlike SQLite's LIKE.
    let sql: &'static str = match (db.backend(), order) {
        (Backend::Postgres, Order::NewestFirst) => select_audit!("strpos", "<", "DESC"),
        (Backend::Postgres, Order::OldestFirst) => select_audit!("strpos", ">", "ASC"),
        (Backend::Sqlite, Order::NewestFirst) => select_audit!("instr", "<", "DESC"),
        (Backend::Sqlite, Order::OldestFirst) => select_audit!("instr", ">", "ASC"),
    };
    let resource = query
        .resource
        .as_ref()
        .map(|(kind, id)| resource_needle(kind, id.as_deref()));
    let patient = query
        .patient_ref
        .as_deref()
        .map(|p| resource_needle("patient_ref", Some(p)));
    let rows: Vec<Row> = with_db!(db, |pool| {
        sqlx::query_as(sql)
            .bind(&query.tenant_id)
            .bind(&query.subject)
            .bind(&resource)
            .bind(&patient)
            .bind(&query.method)
            .bind(query.since)
            .bind(query.until)
            .bind(cursor)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
    });
    Ok(rows.into_iter().map(AuditRecord::from).collect())
}

/// The SQLite DELETE trigger, exactly as the migration creates it, recreated by [`purge`].
const SQLITE_NO_DELETE_TRIGGER: &str =
    "CREATE TRIGGER platform_audit_no_delete BEFORE DELETE ON platform_audit
BEGIN
    SELECT RAISE(ABORT, 'platform_audit is append-only: DELETE refused');
END";

/// Deletes the records of calls that ended before `before` (unix micros), all tenants: the
/// operator's retention purge, the only way rows leave the table. Returns how many went.
pub async fn purge(db: &Database, before: i64) -> Result<u64, StorageError> {
    let mut tx = db.begin().await?;
    let deleted = match tx.conn() {
        crate::TxConn::Postgres(conn) => {
            // The role revoked its own DELETE in the migration; it owns the table, so it may
            // grant it back, here for this transaction only, and the trigger lets the DELETE
            // through only while `medbill.audit_purge` is on, which SET LOCAL scopes to it too.
            for statement in [
                "GRANT DELETE ON platform_audit TO CURRENT_USER",
                "SET LOCAL medbill.audit_purge = 'on'",
            ] {
                sqlx::query(statement).execute(&mut *conn).await?;
            }
            let deleted = sqlx::query("DELETE FROM platform_audit WHERE occurred_at < $1")
                .bind(before)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            sqlx::query("REVOKE DELETE ON platform_audit FROM CURRENT_USER")
                .execute(&mut *conn)
                .await?;
            deleted
        }
        crate::TxConn::Sqlite(conn) => {
            sqlx::query("DROP TRIGGER platform_audit_no_delete")
                .execute(&mut *conn)
                .await?;
            let deleted = sqlx::query("DELETE FROM platform_audit WHERE occurred_at < $1")
                .bind(before)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            sqlx::query(SQLITE_NO_DELETE_TRIGGER)
                .execute(&mut *conn)
                .await?;
            deleted
        }
    };
    tx.commit().await?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_round_trip_and_needles_match_whole_entries() {
        let resources = vec![
            ("claim".to_owned(), "c-1".to_owned()),
            ("patient_ref".to_owned(), "MRN 7".to_owned()),
        ];
        let text = encode_resources(&resources);
        assert_eq!(decode_resources(&text), resources);
        assert!(text.contains(&resource_needle("claim", Some("c-1"))));
        assert!(!text.contains(&resource_needle("claim", Some("c-"))));
        assert!(text.contains(&resource_needle("patient_ref", None)));
        assert!(!text.contains(&resource_needle("account", None)));
    }
}
