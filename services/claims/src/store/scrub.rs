//! The findings of each claim's latest scrub: one row per claim (`claim_scrub_results`), the
//! findings as a JSON array, replaced by each scrub.

use std::collections::HashMap;

use medbill_domain::{ClaimId, TenantId};
use medbill_storage::rows::code;
use medbill_storage::{Database, Tx, with_db, with_tx};
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;

use super::{ClaimStoreError, corrupt};
use crate::model::{Claim, EditCode, ScrubFinding, ScrubSeverity};

/// Most claim ids bound in one read (SQLite allows 32,766 parameters; PostgreSQL 65,535).
const CHUNK: usize = 500;

fn encode(findings: &[ScrubFinding]) -> String {
    Value::Array(
        findings
            .iter()
            .map(|f| {
                json!({
                    "edit_code": f.edit_code.as_str(),
                    "severity": f.severity.as_str(),
                    "message": f.message,
                    "field": f.field,
                    "line_number": f.line_number,
                    "x12_location": f.x12_location,
                })
            })
            .collect(),
    )
    .to_string()
}

fn decode(text: &str) -> Result<Vec<ScrubFinding>, ClaimStoreError> {
    let bad = |detail: String| corrupt("claim scrub findings", detail);
    let value: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let items = value
        .as_array()
        .ok_or_else(|| bad("not a JSON array".to_owned()))?;
    items
        .iter()
        .map(|item| {
            let text = |key: &str| {
                item.get(key)
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("finding without {key}")))
            };
            let line = item
                .get("line_number")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad("finding without line_number".to_owned()))?;
            Ok(ScrubFinding {
                edit_code: code::<EditCode>(text("edit_code")?, "scrub edit code")?,
                severity: code::<ScrubSeverity>(text("severity")?, "scrub severity")?,
                message: text("message")?.to_owned(),
                field: text("field")?.to_owned(),
                line_number: line,
                x12_location: text("x12_location")?.to_owned(),
            })
        })
        .collect()
}

/// Replaces each claim's scrub findings in `tx`, many claims per upsert.
pub(super) async fn replace(
    tx: &mut Tx,
    tenant: &TenantId,
    scrubs: &[(ClaimId, &[ScrubFinding])],
    at_micros: i64,
) -> Result<(), ClaimStoreError> {
    for chunk in scrubs.chunks(super::rows_per_statement(3)) {
        let values: Vec<(String, i32, String)> = chunk
            .iter()
            .map(|(claim_id, findings)| {
                let errors = findings
                    .iter()
                    .filter(|f| f.severity == ScrubSeverity::Error)
                    .count();
                (
                    claim_id.to_string(),
                    i32::try_from(errors).unwrap_or(i32::MAX),
                    encode(findings),
                )
            })
            .collect();
        // $1 tenant, $2 scrubbed_at; three values per claim.
        let rows = (0..chunk.len())
            .map(|i| format!("($1, ${}, $2, ${}, ${})", 3 + 3 * i, 4 + 3 * i, 5 + 3 * i))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO claim_scrub_results (tenant_id, claim_id, scrubbed_at, error_count, findings) \
             VALUES {rows} \
             ON CONFLICT (tenant_id, claim_id) DO UPDATE SET scrubbed_at = excluded.scrubbed_at, \
             error_count = excluded.error_count, findings = excluded.findings"
        );
        with_tx!(tx, |conn| {
            // Only numbered placeholders are formatted into the text; the values are bound.
            let mut query = sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(tenant.as_str())
                .bind(at_micros);
            for (id, errors, body) in &values {
                query = query.bind(id).bind(*errors).bind(body);
            }
            query.execute(&mut *conn).await?.rows_affected()
        });
    }
    Ok(())
}

/// Fills `scrub_findings` of each claim from its latest scrub (claims never scrubbed keep none).
pub(super) async fn attach(
    db: &Database,
    tenant: &TenantId,
    claims: &mut [Claim],
) -> Result<(), ClaimStoreError> {
    if claims.is_empty() {
        return Ok(());
    }
    let mut found: HashMap<String, String> = HashMap::new();
    for chunk in claims.chunks(CHUNK) {
        let ids: Vec<String> = chunk.iter().map(|c| c.id.to_string()).collect();
        let placeholders = medbill_storage::filters::placeholders(2, ids.len());
        let sql = format!(
            "SELECT claim_id, findings FROM claim_scrub_results \
             WHERE tenant_id = $1 AND claim_id IN ({placeholders})"
        );
        let rows: Vec<(String, String)> = with_db!(db, |pool| {
            // Only numbered placeholders are formatted into the text; the ids are bound. One-shot,
            // as the claims read by key (see `by_keys`).
            let mut query = sqlx::query_as(AssertSqlSafe(sql.clone()))
                .persistent(false)
                .bind(tenant.as_str());
            for id in &ids {
                query = query.bind(id);
            }
            query.fetch_all(pool).await?
        });
        found.extend(rows);
    }
    for claim in claims {
        if let Some(text) = found.get(&claim.id.to_string()) {
            claim.scrub_findings = decode(text)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_round_trip_through_json() {
        let findings = vec![
            ScrubFinding {
                edit_code: EditCode::NcciPtp,
                severity: ScrubSeverity::Error,
                message: "a \"quoted\" message, with commas".to_owned(),
                field: "lines[1].procedure_code".to_owned(),
                line_number: 2,
                x12_location: "2400 SV1-01-2".to_owned(),
            },
            ScrubFinding {
                edit_code: EditCode::CptNotChecked,
                severity: ScrubSeverity::Info,
                message: "m".to_owned(),
                field: String::new(),
                line_number: 0,
                x12_location: String::new(),
            },
        ];
        assert_eq!(decode(&encode(&findings)).unwrap(), findings);
        assert!(decode("[]").unwrap().is_empty());
        assert!(decode("{}").is_err());
        assert!(decode(r#"[{"edit_code":"NOPE","severity":"ERROR","message":"","field":"","line_number":0,"x12_location":""}]"#).is_err());
    }
}
