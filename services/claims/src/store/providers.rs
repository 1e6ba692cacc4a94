//! Providers and service facilities: create, replace, get, list, and the lookup of the providers a
//! claim names.

use medbill_domain::{Npi, TenantId};
use medbill_storage::rows::{code, timestamp};
use medbill_storage::{Tx, time, with_db, with_tx};

use super::{ClaimStoreError, SqlClaimStore, corrupt};
use crate::details::PostalAddress;
use crate::providers::{NewProvider, Provider, ProviderKind, ProviderName, TaxId};

#[derive(sqlx::FromRow)]
struct ProviderRow {
    npi: String,
    kind: String,
    last_or_organization_name: String,
    first_name: String,
    middle_name: String,
    name_suffix: String,
    tax_id_type: Option<String>,
    tax_id: Option<String>,
    taxonomy_code: Option<String>,
    address_json: Option<String>,
    pay_to_address_json: Option<String>,
    created_at: i64,
    updated_at: i64,
}

macro_rules! provider_columns {
    () => {
        "npi, kind, last_or_organization_name, first_name, middle_name, name_suffix, tax_id_type, \
         tax_id, taxonomy_code, address_json, pay_to_address_json, created_at, updated_at"
    };
}

fn address_json(a: Option<&PostalAddress>) -> Option<String> {
    // Plain strings: serialising cannot fail.
    a.map(|a| serde_json::to_string(a).unwrap_or_default())
}

fn address_from(raw: Option<&str>) -> Result<Option<PostalAddress>, ClaimStoreError> {
    raw.map(|r| serde_json::from_str(r).map_err(|e| corrupt("provider address", e.to_string())))
        .transpose()
}

fn provider_from_row(r: ProviderRow) -> Result<Provider, ClaimStoreError> {
    let tax_id = match (r.tax_id_type.as_deref(), r.tax_id) {
        (Some(t), Some(d)) => {
            Some(TaxId::from_parts(t, d).ok_or_else(|| corrupt("provider tax id type", t))?)
        }
        _ => None,
    };
    Ok(Provider {
        npi: Npi::parse(&r.npi).map_err(|e| corrupt("provider NPI", e.to_string()))?,
        kind: code::<ProviderKind>(&r.kind, "provider kind")?,
        name: ProviderName {
            last_or_organization: r.last_or_organization_name,
            first: r.first_name,
            middle: r.middle_name,
            suffix: r.name_suffix,
        },
        tax_id,
        taxonomy_code: r.taxonomy_code,
        address: address_from(r.address_json.as_deref())?,
        pay_to_address: address_from(r.pay_to_address_json.as_deref())?,
        created_at: timestamp(r.created_at, "provider created_at")?,
        updated_at: timestamp(r.updated_at, "provider updated_at")?,
    })
}

/// How many NPIs one lookup query carries (billing, rendering, referring, facility, attending,
/// and one spare).
const MAX_NAMED_NPIS: usize = 6;

impl SqlClaimStore {
    /// Inserts a provider; ALREADY_EXISTS when the NPI is on file.
    pub(super) async fn insert_provider(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        p: &NewProvider,
    ) -> Result<Provider, ClaimStoreError> {
        let now = time::now_micros();
        let inserted = with_tx!(tx, |conn| {
            sqlx::query(concat!(
                "INSERT INTO providers (tenant_id, ",
                provider_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)"
            ))
            .bind(tenant.as_str())
            .bind(p.npi.as_str())
            .bind(p.kind.as_str())
            .bind(&p.name.last_or_organization)
            .bind(&p.name.first)
            .bind(&p.name.middle)
            .bind(&p.name.suffix)
            .bind(p.tax_id.as_ref().map(TaxId::type_code))
            .bind(p.tax_id.as_ref().map(TaxId::digits))
            .bind(p.taxonomy_code.as_deref())
            .bind(address_json(p.address.as_ref()))
            .bind(address_json(p.pay_to_address.as_ref()))
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
        });
        if let Err(e) = inserted {
            if medbill_storage::error::is_unique_violation(&e) {
                return Err(ClaimStoreError::DuplicateProvider(
                    p.npi.as_str().to_owned(),
                ));
            }
            return Err(e.into());
        }
        let at = timestamp(now, "provider created_at")?;
        Ok(Provider {
            npi: p.npi.clone(),
            kind: p.kind,
            name: p.name.clone(),
            tax_id: p.tax_id.clone(),
            taxonomy_code: p.taxonomy_code.clone(),
            address: p.address.clone(),
            pay_to_address: p.pay_to_address.clone(),
            created_at: at,
            updated_at: at,
        })
    }

    /// Replaces a provider's content (NOT_FOUND when the NPI is not on file); `keep_tax_id` keeps
    /// the stored tax id.
    pub(super) async fn replace_provider(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        p: &NewProvider,
    ) -> Result<Provider, ClaimStoreError> {
        let now = time::now_micros();
        let row: Option<ProviderRow> = with_tx!(tx, |conn| {
            sqlx::query_as(concat!(
                "UPDATE providers SET kind = $3, last_or_organization_name = $4, first_name = $5, \
                 middle_name = $6, name_suffix = $7, \
                 tax_id_type = CASE WHEN $13 THEN tax_id_type ELSE $8 END, \
                 tax_id = CASE WHEN $13 THEN tax_id ELSE $9 END, \
                 taxonomy_code = $10, address_json = $11, pay_to_address_json = $12, updated_at = $14 \
                 WHERE tenant_id = $1 AND npi = $2 RETURNING ",
                provider_columns!()
            ))
            .bind(tenant.as_str())
            .bind(p.npi.as_str())
            .bind(p.kind.as_str())
            .bind(&p.name.last_or_organization)
            .bind(&p.name.first)
            .bind(&p.name.middle)
            .bind(&p.name.suffix)
            .bind(p.tax_id.as_ref().map(TaxId::type_code))
            .bind(p.tax_id.as_ref().map(TaxId::digits))
            .bind(p.taxonomy_code.as_deref())
            .bind(address_json(p.address.as_ref()))
            .bind(address_json(p.pay_to_address.as_ref()))
            .bind(p.keep_tax_id)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?
        });
        let row =
            row.ok_or_else(|| ClaimStoreError::ProviderNotFound(p.npi.as_str().to_owned()))?;
        provider_from_row(row)
    }

    /// Reads the providers with these NPIs (those on file; the rest are simply absent), in NPI order.
    pub(super) async fn providers_by_npi(
        &self,
        tenant: &TenantId,
        npis: &[&str],
    ) -> Result<Vec<Provider>, ClaimStoreError> {
        if npis.is_empty() {
            return Ok(Vec::new());
        }
        // A claim names at most MAX_NAMED_NPIS providers: a fixed list of placeholders (unused
        // ones NULL) keeps the SQL static and the lookup on the primary key on both backends.
        let mut rows: Vec<ProviderRow> = Vec::with_capacity(npis.len());
        for chunk in npis.chunks(MAX_NAMED_NPIS) {
            let at = |i: usize| chunk.get(i).copied();
            let found: Vec<ProviderRow> = with_db!(self.db, |pool| {
                sqlx::query_as(concat!(
                    "SELECT ",
                    provider_columns!(),
                    " FROM providers WHERE tenant_id = $1 AND npi IN ($2, $3, $4, $5, $6, $7)"
                ))
                .bind(tenant.as_str())
                .bind(at(0))
                .bind(at(1))
                .bind(at(2))
                .bind(at(3))
                .bind(at(4))
                .bind(at(5))
                .fetch_all(pool)
                .await?
            });
            rows.extend(found);
        }
        rows.sort_by(|a, b| a.npi.cmp(&b.npi));
        rows.dedup_by(|a, b| a.npi == b.npi);
        rows.into_iter().map(provider_from_row).collect()
    }

    /// Reads one provider by NPI.
    pub(super) async fn provider(
        &self,
        tenant: &TenantId,
        npi: &str,
    ) -> Result<Option<Provider>, ClaimStoreError> {
        let row: Option<ProviderRow> = with_db!(self.db, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                provider_columns!(),
                " FROM providers WHERE tenant_id = $1 AND npi = $2"
            ))
            .bind(tenant.as_str())
            .bind(npi)
            .fetch_optional(pool)
            .await?
        });
        row.map(provider_from_row).transpose()
    }

    /// Reads a page of providers in NPI order after `after`, optionally of one kind.
    pub(super) async fn list_providers_page(
        &self,
        tenant: &TenantId,
        kind: Option<ProviderKind>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Provider>, ClaimStoreError> {
        let rows: Vec<ProviderRow> = with_db!(self.db, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                provider_columns!(),
                " FROM providers WHERE tenant_id = $1 AND ($2 IS NULL OR kind = $2) \
                 AND ($3 IS NULL OR npi > $3) ORDER BY npi LIMIT $4"
            ))
            .bind(tenant.as_str())
            .bind(kind.map(ProviderKind::as_str))
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(provider_from_row).collect()
    }
}
