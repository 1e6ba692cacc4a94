//! Insurance A/R aging, summed in SQL by payer and bucket (see [`crate::aging`]).

use chrono::NaiveDate;
use medbill_domain::{TenantId, format_iso_date};
use medbill_storage::rows::money;
use medbill_storage::with_db;

use super::{ClaimStoreError, SqlClaimStore, corrupt};
use crate::aging::{BucketTotal, PayerAging, bucket_bounds};

#[derive(sqlx::FromRow)]
struct AgingRow {
    payer_id: String,
    b0_cents: i64,
    b0_count: i64,
    b1_cents: i64,
    b1_count: i64,
    b2_cents: i64,
    b2_count: i64,
    b3_cents: i64,
    b3_count: i64,
    b4_cents: i64,
    b4_count: i64,
}

/// Sums a bucket's charge and count; ISO dates compare as text on both backends.
macro_rules! bucket {
    ($cond:literal, $name:literal) => {
        concat!(
            "CAST(COALESCE(SUM(CASE WHEN ",
            $cond,
            " THEN total_charge_cents ELSE 0 END), 0) AS BIGINT) AS ",
            $name,
            "_cents, CAST(COALESCE(SUM(CASE WHEN ",
            $cond,
            " THEN 1 ELSE 0 END), 0) AS BIGINT) AS ",
            $name,
            "_count"
        )
    };
}

impl SqlClaimStore {
    /// Sums the unpaid claims (SUBMITTED, ACCEPTED) by payer and age bucket as of `as_of`;
    /// one row per payer with a balance, in payer order.
    pub(super) async fn aging(
        &self,
        tenant: &TenantId,
        as_of: NaiveDate,
        payer_id: Option<&str>,
    ) -> Result<Vec<PayerAging>, ClaimStoreError> {
        let bounds = bucket_bounds(as_of)
            .ok_or_else(|| {
                ClaimStoreError::Storage(medbill_storage::StorageError::Unstorable {
                    field: "as_of_date".into(),
                    reason: "is too early to age claims against".into(),
                })
            })?
            .map(format_iso_date);
        let as_of = format_iso_date(as_of);
        let rows: Vec<AgingRow> = with_db!(self.db, |pool| {
            sqlx::query_as(concat!(
                "SELECT payer_id, ",
                bucket!("service_date_from >= $3", "b0"),
                ", ",
                bucket!("service_date_from < $3 AND service_date_from >= $4", "b1"),
                ", ",
                bucket!("service_date_from < $4 AND service_date_from >= $5", "b2"),
                ", ",
                bucket!("service_date_from < $5 AND service_date_from >= $6", "b3"),
                ", ",
                bucket!("service_date_from < $6", "b4"),
                " FROM claims WHERE tenant_id = $1 AND status IN ('SUBMITTED', 'ACCEPTED') \
                 AND service_date_from <= $2 AND ($7 IS NULL OR payer_id = $7) \
                 GROUP BY payer_id ORDER BY payer_id"
            ))
            .bind(tenant.as_str())
            .bind(&as_of)
            .bind(&bounds[0])
            .bind(&bounds[1])
            .bind(&bounds[2])
            .bind(&bounds[3])
            .bind(payer_id)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                let bucket = |cents: i64, count: i64| -> Result<BucketTotal, ClaimStoreError> {
                    Ok(BucketTotal {
                        balance: money(cents),
                        claims: u64::try_from(count)
                            .map_err(|_| corrupt("aging claim count", count.to_string()))?,
                    })
                };
                Ok(PayerAging {
                    buckets: [
                        bucket(r.b0_cents, r.b0_count)?,
                        bucket(r.b1_cents, r.b1_count)?,
                        bucket(r.b2_cents, r.b2_count)?,
                        bucket(r.b3_cents, r.b3_count)?,
                        bucket(r.b4_cents, r.b4_count)?,
                    ],
                    payer_id: r.payer_id,
                })
            })
            .collect()
    }
}
