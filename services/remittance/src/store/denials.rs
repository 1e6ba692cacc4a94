//! Persistence of the denial worklist: the [`DenialStore`] trait, implemented by [`SqlEraStore`]
//! with queries written once for PostgreSQL and SQLite.

use async_trait::async_trait;
use chrono::NaiveDate;
use medbill_domain::{EraId, TenantId, format_iso_date};
use medbill_storage::rows::{cents, code, date, money, statement_pieces, timestamp};
use medbill_storage::{Tx, time, with_db, with_tx};

use super::payments::{optional_date, procedure_from_text, procedure_text};
use super::{EraStoreError, SqlEraStore, corrupt};
use crate::denials::{Denial, DenialCount, DenialFilter, DenialStatus, NewDenial};
use crate::model::{Adjustment, ClaimPaymentId};

/// The denial worklist.
#[async_trait]
pub trait DenialStore: Send + Sync {
    /// Writes worklist items in `tx`, once per (claim payment, line): an item already written is
    /// left as it is. `received_on` is the day the ERA arrived (age counts from it when the 835
    /// has no payment date). Also resolves the open items of every claim that a paying claim
    /// payment in `paid` (claim id, claim payment id) settles.
    async fn add_denials(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        received_on: NaiveDate,
        denials: &[NewDenial],
        paid: &[(String, ClaimPaymentId)],
    ) -> Result<(), EraStoreError>;

    /// Returns up to `limit` items matching `filter` after `after`, in id order.
    async fn list_denials(
        &self,
        tenant: &TenantId,
        filter: &DenialFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Denial>, EraStoreError>;

    /// Counts the items matching `filter` by primary reason (`GROUP-CARC`) and by payer, largest
    /// count first; and their total count.
    async fn count_denials(
        &self,
        tenant: &TenantId,
        filter: &DenialFilter,
    ) -> Result<(Vec<DenialCount>, Vec<DenialCount>, u64), EraStoreError>;

    /// Returns one item, or `None` when the tenant has none with this id.
    async fn get_denial(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<Denial>, EraStoreError>;

    /// Sets an item's status and note in `tx`; false when the tenant has no such item.
    async fn update_denial(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: &str,
        status: DenialStatus,
        note: &str,
    ) -> Result<bool, EraStoreError>;
}

#[derive(sqlx::FromRow)]
struct DenialRow {
    id: String,
    claim_payment_id: String,
    line_number: i32,
    era_id: String,
    claim_id: String,
    patient_control_number: String,
    payer_claim_control_number: String,
    payer_id: String,
    claim_status_code: String,
    line_control_number: String,
    procedure_text: String,
    service_date: String,
    payment_date: String,
    age_from: String,
    denied_cents: i64,
    group_code: String,
    reason_code: String,
    category: String,
    action: String,
    adjustments: String,
    remarks: String,
    status: String,
    note: String,
    created_at: i64,
    updated_at: i64,
}

macro_rules! denial_columns {
    () => {
        "id, claim_payment_id, line_number, era_id, claim_id, patient_control_number, \
         payer_claim_control_number, payer_id, claim_status_code, line_control_number, procedure_text, \
         service_date, payment_date, age_from, denied_cents, group_code, reason_code, category, \
         action, adjustments, remarks, status, note, created_at, updated_at"
    };
}

/// The worklist filter: `$1` tenant, `$2` status, `$3` payer, `$4` category, `$5` reason
/// pattern, `$6` claim, `$7` ERA, `$8` created from, `$9` created to, `$10` age from on or
/// before, `$11` age from on or after.
macro_rules! denial_filter {
    () => {
        " FROM denials WHERE tenant_id = $1 \
         AND ($2 IS NULL OR status = $2) \
         AND ($3 IS NULL OR payer_id = $3) \
         AND ($4 IS NULL OR category = $4) \
         AND ($5 IS NULL OR reason_codes LIKE $5) \
         AND ($6 IS NULL OR claim_id = $6) \
         AND ($7 IS NULL OR era_id = $7) \
         AND ($8 IS NULL OR created_at >= $8) \
         AND ($9 IS NULL OR created_at < $9) \
         AND ($10 IS NULL OR age_from <= $10) \
         AND ($11 IS NULL OR age_from >= $11)"
    };
}

/// The filter's values, bound in the order of [`denial_filter`].
struct Bound {
    status: Option<&'static str>,
    payer: Option<String>,
    category: Option<&'static str>,
    reason: Option<String>,
    claim: Option<String>,
    era: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    older: Option<String>,
    younger: Option<String>,
}

impl Bound {
    fn of(f: &DenialFilter) -> Self {
        Self {
            status: f.status.map(DenialStatus::as_str),
            payer: f.payer_id.clone(),
            category: f.category.map(|c| c.as_str()),
            reason: f.reason.as_ref().map(|r| format!("%,{},%", like_escape(r))),
            claim: f.claim_id.clone(),
            era: f.era_id.map(|e| e.to_string()),
            from: f.created_from.map(time::to_micros),
            to: f.created_to.map(time::to_micros),
            older: f.age_from_on_or_before.map(format_iso_date),
            younger: f.age_from_on_or_after.map(format_iso_date),
        }
    }
}

/// Binds `$2`..`$11` of [`denial_filter`] on `$q` (after the tenant).
macro_rules! bind_filter {
    ($q:expr, $b:expr) => {
        $q.bind($b.status)
            .bind($b.payer.as_deref())
            .bind($b.category)
            .bind($b.reason.as_deref())
            .bind($b.claim.as_deref())
            .bind($b.era.as_deref())
            .bind($b.from)
            .bind($b.to)
            .bind($b.older.as_deref())
            .bind($b.younger.as_deref())
    };
}

/// CARCs are letters and digits; anything else is dropped so it cannot act as a LIKE wildcard.
fn like_escape(carc: &str) -> String {
    carc.chars().filter(char::is_ascii_alphanumeric).collect()
}

fn adjustments_text(adjustments: &[Adjustment]) -> Result<String, EraStoreError> {
    let mut parts = Vec::with_capacity(adjustments.len());
    for a in adjustments {
        parts.push(format!(
            "{}|{}|{}|{}",
            a.group,
            a.reason,
            cents(a.amount, "denial adjustment")?,
            a.quantity.map(|q| q.to_string()).unwrap_or_default()
        ));
    }
    Ok(parts.join(";"))
}

fn adjustments_from_text(text: &str) -> Result<Vec<Adjustment>, EraStoreError> {
    text.split(';')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut f = p.split('|');
            let (Some(group), Some(reason), Some(amount), Some(quantity)) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                return Err(corrupt("denial adjustments", p.to_owned()));
            };
            Ok(Adjustment {
                group: group.to_owned(),
                reason: reason.to_owned(),
                amount: money(
                    amount
                        .parse()
                        .map_err(|_| corrupt("denial adjustment amount", amount.to_owned()))?,
                ),
                quantity: if quantity.is_empty() {
                    None
                } else {
                    Some(
                        quantity
                            .parse()
                            .map_err(|_| corrupt("denial quantity", quantity.to_owned()))?,
                    )
                },
            })
        })
        .collect()
}

fn denial_from_row(r: DenialRow) -> Result<Denial, EraStoreError> {
    Ok(Denial {
        id: r.id,
        item: NewDenial {
            claim_payment_id: ClaimPaymentId::parse(&r.claim_payment_id)
                .map_err(|e| corrupt("denial claim payment id", e))?,
            line_number: u32::try_from(r.line_number)
                .map_err(|_| corrupt("denial line number", r.line_number.to_string()))?,
            era_id: EraId::parse(&r.era_id).map_err(|e| corrupt("denial ERA id", e.to_string()))?,
            claim_id: r.claim_id,
            patient_control_number: r.patient_control_number,
            payer_claim_control_number: r.payer_claim_control_number,
            payer_id: r.payer_id,
            claim_status_code: r.claim_status_code,
            line_control_number: r.line_control_number,
            procedure: (!r.procedure_text.is_empty())
                .then(|| procedure_from_text(&r.procedure_text)),
            service_date: optional_date(&r.service_date, "denial service date")?,
            payment_date: optional_date(&r.payment_date, "denial payment date")?,
            adjustments: adjustments_from_text(&r.adjustments)?,
            remarks: r
                .remarks
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            denied: money(r.denied_cents),
            group: r.group_code,
            reason: r.reason_code,
            category: code(&r.category, "denial category")?,
            action: code(&r.action, "denial action")?,
        },
        status: code(&r.status, "denial status")?,
        note: r.note,
        age_from: date(&r.age_from, "denial age date")?,
        created_at: timestamp(r.created_at, "denial created_at")?,
        updated_at: timestamp(r.updated_at, "denial updated_at")?,
    })
}

#[derive(sqlx::FromRow)]
struct CountRow {
    key: String,
    n: i64,
    denied: Option<i64>,
}

fn counts(rows: Vec<CountRow>) -> Vec<DenialCount> {
    rows.into_iter()
        .map(|r| DenialCount {
            key: r.key,
            count: u64::try_from(r.n).unwrap_or(0),
            denied: money(r.denied.unwrap_or(0)),
        })
        .collect()
}

/// A row ready to bind: the item and its computed columns.
struct Flat<'a> {
    id: String,
    item: &'a NewDenial,
    line: i32,
    procedure: String,
    denied: i64,
    reason_codes: String,
    adjustments: String,
    age_from: String,
}

#[async_trait]
impl DenialStore for SqlEraStore {
    async fn add_denials(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        received_on: NaiveDate,
        denials: &[NewDenial],
        paid: &[(String, ClaimPaymentId)],
    ) -> Result<(), EraStoreError> {
        let t = tenant.as_str();
        let now = time::now_micros();
        let mut flat = Vec::with_capacity(denials.len());
        for d in denials {
            let mut reason_codes = String::from(",");
            for a in &d.adjustments {
                reason_codes.push_str(&a.reason);
                reason_codes.push(',');
            }
            flat.push(Flat {
                id: uuid::Uuid::now_v7().hyphenated().to_string(),
                item: d,
                line: i32::try_from(d.line_number).map_err(|_| EraStoreError::Invalid {
                    field: "line_number".into(),
                    message: "too large".into(),
                })?,
                procedure: d.procedure.as_ref().map(procedure_text).unwrap_or_default(),
                denied: cents(d.denied, "denied amount")?,
                reason_codes,
                adjustments: adjustments_text(&d.adjustments)?,
                age_from: format_iso_date(d.payment_date.unwrap_or(received_on)),
            });
        }
        for part in statement_pieces(&flat) {
            with_tx!(tx, |conn| {
                let mut q = sqlx::QueryBuilder::new(concat!(
                    "INSERT INTO denials (tenant_id, ",
                    denial_columns!(),
                    ", reason_codes) "
                ));
                q.push_values(part, |mut b, f| {
                    let d = f.item;
                    b.push_bind(t)
                        .push_bind(f.id.as_str())
                        .push_bind(d.claim_payment_id.to_string())
                        .push_bind(f.line)
                        .push_bind(d.era_id.to_string())
                        .push_bind(d.claim_id.as_str())
                        .push_bind(d.patient_control_number.as_str())
                        .push_bind(d.payer_claim_control_number.as_str())
                        .push_bind(d.payer_id.as_str())
                        .push_bind(d.claim_status_code.as_str())
                        .push_bind(d.line_control_number.as_str())
                        .push_bind(f.procedure.as_str())
                        .push_bind(d.service_date.map(format_iso_date).unwrap_or_default())
                        .push_bind(d.payment_date.map(format_iso_date).unwrap_or_default())
                        .push_bind(f.age_from.as_str())
                        .push_bind(f.denied)
                        .push_bind(d.group.as_str())
                        .push_bind(d.reason.as_str())
                        .push_bind(d.category.as_str())
                        .push_bind(d.action.as_str())
                        .push_bind(f.adjustments.as_str())
                        .push_bind(d.remarks.join(","))
                        .push_bind(DenialStatus::Open.as_str())
                        .push_bind("")
                        .push_bind(now)
                        .push_bind(now)
                        .push_bind(f.reason_codes.as_str());
                });
                q.push(" ON CONFLICT (tenant_id, claim_payment_id, line_number) DO NOTHING");
                q.build().execute(&mut *conn).await?;
            });
        }
        // One statement per batch: a posting of many payments resolves its claims' items without
        // a round trip per payment.
        let paid: Vec<(&str, String)> = paid
            .iter()
            .map(|(claim, by)| (claim.as_str(), by.to_string()))
            .collect();
        for part in statement_pieces(&paid) {
            with_tx!(tx, |conn| {
                let mut q = sqlx::QueryBuilder::new(
                    "UPDATE denials SET status = 'RESOLVED', \
                     note = 'paid by claim payment ' || v.column2, updated_at = ",
                );
                q.push_bind(now);
                q.push(" FROM (");
                q.push_values(part, |mut b, (claim, by)| {
                    b.push_bind(*claim).push_bind(by.as_str());
                });
                q.push(") AS v WHERE denials.tenant_id = ");
                q.push_bind(t);
                q.push(
                    " AND denials.claim_id = v.column1 AND denials.claim_payment_id <> v.column2 \
                     AND denials.status <> 'RESOLVED' AND denials.status <> 'WRITTEN_OFF'",
                );
                q.build().execute(&mut *conn).await?;
            });
        }
        Ok(())
    }

    async fn list_denials(
        &self,
        tenant: &TenantId,
        filter: &DenialFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Denial>, EraStoreError> {
        let b = Bound::of(filter);
        let rows: Vec<DenialRow> = with_db!(self.db, |pool| {
            let q = sqlx::query_as(concat!(
                "SELECT ",
                denial_columns!(),
                denial_filter!(),
                " AND ($12 IS NULL OR id > $12) ORDER BY id LIMIT $13"
            ))
            .bind(tenant.as_str());
            bind_filter!(q, b)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(denial_from_row).collect()
    }

    async fn count_denials(
        &self,
        tenant: &TenantId,
        filter: &DenialFilter,
    ) -> Result<(Vec<DenialCount>, Vec<DenialCount>, u64), EraStoreError> {
        let b = Bound::of(filter);
        let (by_reason, by_payer): (Vec<CountRow>, Vec<CountRow>) = with_db!(self.db, |pool| {
            let q = sqlx::query_as(concat!(
                "SELECT group_code || '-' || reason_code AS key, COUNT(*) AS n, \
                 CAST(SUM(denied_cents) AS BIGINT) AS denied",
                denial_filter!(),
                " GROUP BY group_code, reason_code ORDER BY n DESC, key"
            ))
            .bind(tenant.as_str());
            let by_reason = bind_filter!(q, b).fetch_all(pool).await?;
            let q = sqlx::query_as(concat!(
                "SELECT payer_id AS key, COUNT(*) AS n, CAST(SUM(denied_cents) AS BIGINT) AS denied",
                denial_filter!(),
                " GROUP BY payer_id ORDER BY n DESC, key"
            ))
            .bind(tenant.as_str());
            (by_reason, bind_filter!(q, b).fetch_all(pool).await?)
        });
        let total = by_payer
            .iter()
            .map(|r| u64::try_from(r.n).unwrap_or(0))
            .sum();
        Ok((counts(by_reason), counts(by_payer), total))
    }

    async fn get_denial(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<Denial>, EraStoreError> {
        let row: Option<DenialRow> = with_db!(self.db, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                denial_columns!(),
                " FROM denials WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        row.map(denial_from_row).transpose()
    }

    async fn update_denial(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: &str,
        status: DenialStatus,
        note: &str,
    ) -> Result<bool, EraStoreError> {
        let now = time::now_micros();
        let changed = with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE denials SET status = $3, note = $4, updated_at = $5 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(id)
            .bind(status.as_str())
            .bind(note)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medbill_domain::Money;

    #[test]
    fn adjustments_round_trip_through_their_text() {
        let adjustments = vec![
            Adjustment {
                group: "CO".into(),
                reason: "197".into(),
                amount: Money::parse("120.50").unwrap(),
                quantity: None,
            },
            Adjustment {
                group: "PR".into(),
                reason: "204".into(),
                amount: Money::parse("-3.00").unwrap(),
                quantity: Some(rust_decimal::Decimal::new(2, 0)),
            },
        ];
        let text = adjustments_text(&adjustments).unwrap();
        assert_eq!(adjustments_from_text(&text).unwrap(), adjustments);
        assert!(adjustments_from_text("").unwrap().is_empty());
    }

    #[test]
    fn a_reason_filter_cannot_carry_wildcards() {
        assert_eq!(like_escape("19%7_"), "197");
    }
}
