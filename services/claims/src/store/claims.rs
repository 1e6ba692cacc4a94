//! Claims, their diagnoses and service lines: create, get and list.

use std::collections::HashMap;

use medbill_domain::{ClaimId, ClaimLineId, Npi, PatientControlNumber, TenantId, format_iso_date};
use medbill_storage::rows::{cents, code, date, money, timestamp};
use medbill_storage::{Tx, time, with_db, with_tx};
use rust_decimal::Decimal;
use sqlx::AssertSqlSafe;

use super::history::{Transition, append_history};
use super::{ClaimStoreError, SqlClaimStore, corrupt, rows_per_statement, tenant_rows};
use crate::details::ClaimDetails;
use crate::model::{
    Claim, ClaimFilter, ClaimLine, ClaimStatus, ClaimType, FrequencyCode, NewClaim,
    StatusChangeSource,
};

#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: String,
    patient_control_number: String,
    claim_type: String,
    status: String,
    frequency_code: String,
    payer_claim_control_number: Option<String>,
    coverage_id: String,
    payer_id: String,
    patient_ref: String,
    billing_provider_npi: String,
    rendering_provider_npi: Option<String>,
    place_of_service: Option<String>,
    facility_type_code: Option<String>,
    total_charge_cents: i64,
    service_date_from: String,
    service_date_to: String,
    encounter_ref: Option<String>,
    details_json: String,
    submission_batch_id: Option<String>,
    created_at: i64,
    updated_at: i64,
    original_claim_id: Option<String>,
    superseded_by_claim_id: Option<String>,
    adjudication_id: Option<String>,
    primary_claim_id: Option<String>,
    secondary_claim_id: Option<String>,
    secondary_claim_note: Option<String>,
}

#[derive(sqlx::FromRow)]
struct DiagnosisRow {
    claim_id: String,
    code: String,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    claim_id: String,
    line_number: i32,
    line_control_number: String,
    procedure_code: String,
    modifiers: String,
    revenue_code: Option<String>,
    charge_cents: i64,
    units: String,
    service_date: String,
    diagnosis_pointers: String,
    prior_authorization_number: Option<String>,
    referral_number: Option<String>,
}

/// The list filter, shared by the header query and the detail subqueries so they select the same page.
/// `$1` tenant, `$2` statuses (comma separated), `$3` patient_ref, `$4` payer_id, `$5` from date, `$6` to
/// date, `$7` after id, `$8` limit, `$9` patient control number, `$10` coverage id. A status set travels as
/// one comma-separated parameter so the SQL stays static and portable.
macro_rules! list_filter {
    () => {
        "SELECT id FROM claims WHERE tenant_id = $1 \
         AND ($2 IS NULL OR (',' || $2 || ',') LIKE ('%,' || status || ',%')) \
         AND ($9 IS NULL OR patient_control_number = $9) \
         AND ($10 IS NULL OR coverage_id = $10) \
         AND ($3 IS NULL OR patient_ref = $3) \
         AND ($4 IS NULL OR payer_id = $4) \
         AND ($5 IS NULL OR service_date_to >= $5) \
         AND ($6 IS NULL OR service_date_from <= $6) \
         AND ($7 IS NULL OR id > $7) \
         ORDER BY id LIMIT $8"
    };
}

macro_rules! claim_columns {
    () => {
        "id, patient_control_number, claim_type, status, frequency_code, \
         payer_claim_control_number, coverage_id, payer_id, patient_ref, billing_provider_npi, \
         rendering_provider_npi, place_of_service, facility_type_code, total_charge_cents, \
         service_date_from, service_date_to, encounter_ref, details_json, submission_batch_id, \
         created_at, updated_at, original_claim_id, superseded_by_claim_id, adjudication_id, \
         primary_claim_id, secondary_claim_id, secondary_claim_note"
    };
}

macro_rules! line_columns {
    () => {
        "claim_id, line_number, line_control_number, procedure_code, modifiers, revenue_code, \
         charge_cents, units, service_date, diagnosis_pointers, prior_authorization_number, \
         referral_number"
    };
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').filter(|p| !p.is_empty())
}

fn line_from_row(row: LineRow) -> Result<ClaimLine, ClaimStoreError> {
    let diagnosis_pointers = split_list(&row.diagnosis_pointers)
        .map(|p| code::<u32>(p, "claim line diagnosis pointer"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClaimLine {
        line_number: u32::try_from(row.line_number)
            .map_err(|_| corrupt("claim line number", row.line_number.to_string()))?,
        line_control_number: row.line_control_number,
        procedure_code: row.procedure_code,
        modifiers: split_list(&row.modifiers).map(str::to_owned).collect(),
        revenue_code: row.revenue_code,
        charge: money(row.charge_cents),
        units: Decimal::from_str_exact(&row.units)
            .map_err(|e| corrupt("claim line units", format!("{:?}: {e}", row.units)))?,
        service_date: date(&row.service_date, "claim line service date")?,
        diagnosis_pointers,
        prior_authorization_number: row.prior_authorization_number,
        referral_number: row.referral_number,
    })
}

fn claim_from_rows(
    row: ClaimRow,
    diagnoses: Vec<String>,
    lines: Vec<ClaimLine>,
) -> Result<Claim, ClaimStoreError> {
    Ok(Claim {
        id: ClaimId::parse(&row.id).map_err(|e| corrupt("claim id", e.to_string()))?,
        patient_control_number: PatientControlNumber::parse(&row.patient_control_number)
            .map_err(|e| corrupt("patient control number", e.to_string()))?,
        claim_type: code::<ClaimType>(&row.claim_type, "claim type")?,
        status: code::<ClaimStatus>(&row.status, "claim status")?,
        frequency_code: code::<FrequencyCode>(&row.frequency_code, "claim frequency code")?,
        payer_claim_control_number: row.payer_claim_control_number,
        coverage_id: row.coverage_id,
        payer_id: row.payer_id,
        patient_ref: row.patient_ref,
        billing_provider_npi: Npi::parse(&row.billing_provider_npi)
            .map_err(|e| corrupt("billing provider NPI", e.to_string()))?,
        rendering_provider_npi: row
            .rendering_provider_npi
            .as_deref()
            .map(Npi::parse)
            .transpose()
            .map_err(|e| corrupt("rendering provider NPI", e.to_string()))?,
        place_of_service: row.place_of_service,
        facility_type_code: row.facility_type_code,
        diagnoses,
        lines,
        total_charge: money(row.total_charge_cents),
        service_date_from: date(&row.service_date_from, "claim service date from")?,
        service_date_to: date(&row.service_date_to, "claim service date to")?,
        encounter_ref: row.encounter_ref,
        details: ClaimDetails::from_json(&row.details_json)
            .map_err(|e| corrupt("claim details", e.to_string()))?,
        submission_batch_id: row
            .submission_batch_id
            .as_deref()
            .map(uuid::Uuid::try_parse)
            .transpose()
            .map_err(|e| corrupt("claim submission batch id", e.to_string()))?,
        created_at: timestamp(row.created_at, "claim created_at")?,
        updated_at: timestamp(row.updated_at, "claim updated_at")?,
        scrub_findings: Vec::new(),
        original_claim_id: optional_claim_id(row.original_claim_id, "original claim id")?,
        superseded_by_claim_id: optional_claim_id(
            row.superseded_by_claim_id,
            "superseded by claim id",
        )?,
        // Filled by `adjudications::attach` from `adjudication_id`.
        adjudication: None,
        coordination: crate::model::Coordination {
            primary_claim_id: optional_claim_id(row.primary_claim_id, "primary claim id")?,
            secondary_claim_id: optional_claim_id(row.secondary_claim_id, "secondary claim id")?,
            secondary_claim_note: row.secondary_claim_note,
        },
    })
}

fn optional_claim_id(
    raw: Option<String>,
    what: &'static str,
) -> Result<Option<ClaimId>, ClaimStoreError> {
    raw.map(|s| ClaimId::parse(&s).map_err(|e| corrupt(what, e.to_string())))
        .transpose()
}

/// Groups detail rows by claim id and builds the claims in header order.
/// Each claim comes with the id of its adjudication in force, for `adjudications::attach`.
fn assemble(
    headers: Vec<ClaimRow>,
    diagnoses: Vec<DiagnosisRow>,
    lines: Vec<LineRow>,
) -> Result<Vec<(Claim, Option<String>)>, ClaimStoreError> {
    let mut dx: HashMap<String, Vec<String>> = HashMap::new();
    for d in diagnoses {
        dx.entry(d.claim_id).or_default().push(d.code);
    }
    let mut ln: HashMap<String, Vec<ClaimLine>> = HashMap::new();
    for l in lines {
        let claim_id = l.claim_id.clone();
        ln.entry(claim_id).or_default().push(line_from_row(l)?);
    }
    headers
        .into_iter()
        .map(|h| {
            let d = dx.remove(&h.id).unwrap_or_default();
            let l = ln.remove(&h.id).unwrap_or_default();
            let adjudication_id = h.adjudication_id.clone();
            Ok((claim_from_rows(h, d, l)?, adjudication_id))
        })
        .collect()
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
/// A new claim checked and given its id and stored values, ready to insert.
struct Prepared<'a> {
    claim: &'a NewClaim,
    id: ClaimId,
    id_text: String,
    total_charge: medbill_domain::Money,
    total_cents: i64,
    service_date_from: chrono::NaiveDate,
    service_date_to: chrono::NaiveDate,
    from: String,
    to: String,
    lines: Vec<ClaimLine>,
    line_values: Vec<LineValues>,
}

/// The stored forms of a line's values.
struct LineValues {
    number: i32,
    charge_cents: i64,
    modifiers: String,
    units: String,
    date: String,
    pointers: String,
}

impl<'a> Prepared<'a> {
    fn of(claim: &'a NewClaim) -> Result<Self, ClaimStoreError> {
        let totals = claim.validate()?;
        let total_cents = cents(totals.total_charge, "claim.total_charge")?;
        let mut lines = Vec::with_capacity(claim.lines.len());
        let mut line_values = Vec::with_capacity(claim.lines.len());
        for (i, line) in claim.lines.iter().enumerate() {
            let charge_cents = cents(line.charge, &format!("claim.lines[{i}].charge"))?;
            let line_number =
                u32::try_from(i + 1).map_err(|_| corrupt("claim line number", i.to_string()))?;
            let number =
                i32::try_from(i + 1).map_err(|_| corrupt("claim line number", i.to_string()))?;
            line_values.push(LineValues {
                number,
                charge_cents,
                modifiers: line.modifiers.join(","),
                units: line.units.to_string(),
                date: format_iso_date(line.service_date),
                pointers: join(&line.diagnosis_pointers),
            });
            lines.push(ClaimLine {
                line_number,
                line_control_number: match &line.line_control_number {
                    Some(lcn) => lcn.clone(),
                    None => ClaimLineId::new().to_string(),
                },
                procedure_code: line.procedure_code.clone(),
                modifiers: line.modifiers.clone(),
                revenue_code: line.revenue_code.clone(),
                charge: line.charge,
                units: line.units,
                service_date: line.service_date,
                diagnosis_pointers: line.diagnosis_pointers.clone(),
                prior_authorization_number: line.prior_authorization_number.clone(),
                referral_number: line.referral_number.clone(),
            });
        }
        let id = ClaimId::new();
        Ok(Self {
            claim,
            id,
            id_text: id.to_string(),
            total_charge: totals.total_charge,
            total_cents,
            service_date_from: totals.service_date_from,
            service_date_to: totals.service_date_to,
            from: format_iso_date(totals.service_date_from),
            to: format_iso_date(totals.service_date_to),
            lines,
            line_values,
        })
    }
}

impl SqlClaimStore {
    /// See [`super::ClaimStore::authorization_units_used`]; one query per number (a claim
    /// quotes one or two).
    pub(super) async fn units_under_authorizations(
        &self,
        tenant: &TenantId,
        numbers: &[String],
        except: ClaimId,
    ) -> Result<Vec<(String, String, Decimal)>, ClaimStoreError> {
        const SQL: &str = "SELECT l.procedure_code, l.units FROM claim_lines l \
             JOIN claims c ON c.tenant_id = l.tenant_id AND c.id = l.claim_id \
             WHERE l.tenant_id = $1 AND l.prior_authorization_number = $2 AND l.claim_id <> $3 \
             AND c.status NOT IN ('VOID', 'REJECTED', 'DENIED')";
        let mut out = Vec::new();
        for number in numbers {
            let rows: Vec<(String, String)> = with_db!(self.db, |pool| {
                sqlx::query_as(SQL)
                    .bind(tenant.as_str())
                    .bind(number)
                    .bind(except.to_string())
                    .fetch_all(pool)
                    .await?
            });
            for (code, units) in rows {
                let units = Decimal::from_str_exact(&units)
                    .map_err(|e| corrupt("claim line units", format!("{units:?}: {e}")))?;
                out.push((number.clone(), code, units));
            }
        }
        Ok(out)
    }

    /// Writes new DRAFT claims with their diagnoses, lines and first history entries in `tx`,
    /// and returns them as stored, in order: one statement per table and chunk across the
    /// claims, the history from one bump of the tenant's sequence counter. CreateClaim is the
    /// one-claim case; CreateClaims writes a batch's claims together.
    pub(super) async fn insert_claims(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        claims: &[&NewClaim],
    ) -> Result<Vec<Claim>, ClaimStoreError> {
        let t = tenant.as_str();
        let now = time::now_micros();
        let status = ClaimStatus::Draft;
        let mut prepared = Vec::with_capacity(claims.len());
        for claim in claims {
            prepared.push(Prepared::of(claim)?);
        }

        for chunk in prepared.chunks(rows_per_statement(17)) {
            // $1 tenant, $2 status, $3 created_at = updated_at; seventeen values per claim.
            let rows = (0..chunk.len())
                .map(|i| {
                    let cells = medbill_storage::filters::placeholders(4 + 17 * i, 17);
                    format!("($1, $2, $3, $3, {cells})")
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO claims (tenant_id, status, created_at, updated_at, id, \
                 patient_control_number, claim_type, frequency_code, payer_claim_control_number, \
                 coverage_id, payer_id, patient_ref, billing_provider_npi, rendering_provider_npi, \
                 place_of_service, facility_type_code, total_charge_cents, service_date_from, \
                 service_date_to, encounter_ref, details_json) VALUES {rows}"
            );
            let inserted = with_tx!(tx, |conn| {
                // Only numbered placeholders are formatted into the text; the values are bound.
                let mut query = sqlx::query(AssertSqlSafe(sql.clone()))
                    .bind(t)
                    .bind(status.as_str())
                    .bind(now);
                for p in chunk {
                    let claim = p.claim;
                    query = query
                        .bind(&p.id_text)
                        .bind(claim.patient_control_number.as_str())
                        .bind(claim.claim_type.as_str())
                        .bind(claim.frequency_code.as_str())
                        .bind(claim.payer_claim_control_number.as_deref())
                        .bind(&claim.coverage_id)
                        .bind(&claim.payer_id)
                        .bind(&claim.patient_ref)
                        .bind(claim.billing_provider_npi.as_str())
                        .bind(claim.rendering_provider_npi.as_ref().map(Npi::as_str))
                        .bind(claim.place_of_service.as_deref())
                        .bind(claim.facility_type_code.as_deref())
                        .bind(p.total_cents)
                        .bind(&p.from)
                        .bind(&p.to)
                        .bind(claim.encounter_ref.as_deref())
                        .bind(claim.details.to_json());
                }
                query.execute(&mut *conn).await.map(|r| r.rows_affected())
            });
            if let Err(e) = inserted {
                // A fresh UUID v7 cannot collide, so the only unique key this insert can break is
                // (tenant_id, patient_control_number); among many claims it is not known whose
                // (the batch writes them again one by one, which names it).
                if medbill_storage::error::is_unique_violation(&e)
                    && let [one] = chunk
                {
                    return Err(ClaimStoreError::DuplicatePatientControlNumber(
                        one.claim.patient_control_number.as_str().to_owned(),
                    ));
                }
                return Err(e.into());
            }
        }

        // $1 tenant; three values per diagnosis.
        let diagnoses: Vec<(&str, i32, &String)> = prepared
            .iter()
            .flat_map(|p| {
                p.claim
                    .diagnoses
                    .iter()
                    .zip(1..)
                    .map(|(code, position)| (p.id_text.as_str(), position, code))
            })
            .collect();
        for chunk in diagnoses.chunks(rows_per_statement(3)) {
            let rows = tenant_rows(chunk.len(), 3);
            let sql = format!(
                "INSERT INTO claim_diagnoses (tenant_id, claim_id, position, code) VALUES {rows}"
            );
            with_tx!(tx, |conn| {
                let mut query = sqlx::query(AssertSqlSafe(sql.clone())).bind(t);
                for (claim_id, position, code) in chunk {
                    query = query.bind(*claim_id).bind(*position).bind(*code);
                }
                query.execute(&mut *conn).await?.rows_affected()
            });
        }

        // $1 tenant; twelve values per line.
        let lines: Vec<(&Prepared<'_>, &ClaimLine, &LineValues)> = prepared
            .iter()
            .flat_map(|p| {
                p.lines
                    .iter()
                    .zip(&p.line_values)
                    .map(move |(line, values)| (p, line, values))
            })
            .collect();
        for chunk in lines.chunks(rows_per_statement(12)) {
            let rows = tenant_rows(chunk.len(), 12);
            let sql = format!(
                "INSERT INTO claim_lines (tenant_id, claim_id, line_number, line_control_number, \
                 procedure_code, modifiers, revenue_code, charge_cents, units, service_date, \
                 diagnosis_pointers, prior_authorization_number, referral_number) VALUES {rows}"
            );
            with_tx!(tx, |conn| {
                let mut query = sqlx::query(AssertSqlSafe(sql.clone())).bind(t);
                for (p, line, v) in chunk {
                    query = query
                        .bind(&p.id_text)
                        .bind(v.number)
                        .bind(&line.line_control_number)
                        .bind(&line.procedure_code)
                        .bind(&v.modifiers)
                        .bind(line.revenue_code.as_deref())
                        .bind(v.charge_cents)
                        .bind(&v.units)
                        .bind(&v.date)
                        .bind(&v.pointers)
                        .bind(line.prior_authorization_number.as_deref())
                        .bind(line.referral_number.as_deref());
                }
                query.execute(&mut *conn).await?.rows_affected()
            });
        }

        let changes: Vec<Transition<'_>> = prepared
            .iter()
            .map(|p| Transition {
                claim_id: &p.id_text,
                from: None,
                to: status,
                source: StatusChangeSource::Create,
                source_id: "",
                reason: "created",
                at: now,
            })
            .collect();
        append_history(tx, t, &changes);

        let at = timestamp(now, "claim created_at")?;
        Ok(prepared
            .into_iter()
            .map(|p| {
                let claim = p.claim;
                Claim {
                    id: p.id,
                    patient_control_number: claim.patient_control_number.clone(),
                    claim_type: claim.claim_type,
                    status,
                    frequency_code: claim.frequency_code,
                    payer_claim_control_number: claim.payer_claim_control_number.clone(),
                    coverage_id: claim.coverage_id.clone(),
                    payer_id: claim.payer_id.clone(),
                    patient_ref: claim.patient_ref.clone(),
                    billing_provider_npi: claim.billing_provider_npi.clone(),
                    rendering_provider_npi: claim.rendering_provider_npi.clone(),
                    place_of_service: claim.place_of_service.clone(),
                    facility_type_code: claim.facility_type_code.clone(),
                    diagnoses: claim.diagnoses.clone(),
                    lines: p.lines,
                    total_charge: p.total_charge,
                    service_date_from: p.service_date_from,
                    service_date_to: p.service_date_to,
                    encounter_ref: claim.encounter_ref.clone(),
                    details: claim.details.clone(),
                    submission_batch_id: None,
                    created_at: at,
                    updated_at: at,
                    scrub_findings: Vec::new(),
                    original_claim_id: None,
                    superseded_by_claim_id: None,
                    coordination: Default::default(),
                    adjudication: None,
                }
            })
            .collect())
    }

    /// Reads one claim with its diagnoses and lines.
    pub(super) async fn get(
        &self,
        tenant: &TenantId,
        id: ClaimId,
    ) -> Result<Option<Claim>, ClaimStoreError> {
        let t = tenant.as_str();
        let id_text = id.to_string();
        let (headers, diagnoses, lines) = with_db!(self.db, |pool| {
            let headers: Vec<ClaimRow> = sqlx::query_as(concat!(
                "SELECT ",
                claim_columns!(),
                " FROM claims WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(t)
            .bind(&id_text)
            .fetch_all(pool)
            .await?;
            if headers.is_empty() {
                return Ok(None);
            }
            let diagnoses: Vec<DiagnosisRow> = sqlx::query_as(
                "SELECT claim_id, code FROM claim_diagnoses WHERE tenant_id = $1 AND claim_id = $2 \
                 ORDER BY position",
            )
            .bind(t)
            .bind(&id_text)
            .fetch_all(pool)
            .await?;
            let lines: Vec<LineRow> = sqlx::query_as(concat!(
                "SELECT ",
                line_columns!(),
                " FROM claim_lines WHERE tenant_id = $1 AND claim_id = $2 ORDER BY line_number"
            ))
            .bind(t)
            .bind(&id_text)
            .fetch_all(pool)
            .await?;
            (headers, diagnoses, lines)
        });
        let claims = assemble(headers, diagnoses, lines)?;
        Ok(self.attach(tenant, claims).await?.into_iter().next())
    }

    /// Reads every claim whose CLM01 is one of `numbers` (at most a few thousand), in id order.
    pub(super) async fn by_patient_control_numbers(
        &self,
        tenant: &TenantId,
        numbers: &[String],
    ) -> Result<Vec<Claim>, ClaimStoreError> {
        self.by_keys(tenant, KeyColumn::PatientControlNumber, numbers)
            .await
    }

    /// Reads every claim whose id is one of `ids` (at most a few thousand), in id order.
    pub(super) async fn by_ids(
        &self,
        tenant: &TenantId,
        ids: &[ClaimId],
    ) -> Result<Vec<Claim>, ClaimStoreError> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.by_keys(tenant, KeyColumn::Id, &ids).await
    }

    /// Reads every claim whose `column` is one of `numbers`, in id order: the headers by an `IN`
    /// list, then their diagnoses and lines by claim id.
    async fn by_keys(
        &self,
        tenant: &TenantId,
        column: KeyColumn,
        numbers: &[String],
    ) -> Result<Vec<Claim>, ClaimStoreError> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let t = tenant.as_str();
        let placeholders = |n: usize| medbill_storage::filters::placeholders(2, n);
        // Only numbered placeholders are formatted into the text; the values are bound.
        let header_sql = format!(
            concat!(
                "SELECT ",
                claim_columns!(),
                " FROM claims WHERE tenant_id = $1 AND {} IN ({})"
            ),
            column.name(),
            placeholders(numbers.len())
        );
        // One-shot statements (here and below): their text changes with the list's length, and
        // a prepared one would keep the generic plan PostgreSQL made while the table was small
        // (the tenant's claims walked per page of numbers); planned per run, it uses the key.
        let headers: Vec<ClaimRow> = with_db!(self.db, |pool| {
            let mut q = sqlx::query_as(AssertSqlSafe(header_sql.clone()))
                .persistent(false)
                .bind(t);
            for n in numbers {
                q = q.bind(n.as_str());
            }
            q.fetch_all(pool).await?
        });
        if headers.is_empty() {
            return Ok(Vec::new());
        }
        // Sorted here, not by the statement: with `ORDER BY id` both databases chose to walk the
        // tenant's claims in primary-key order and test each against the list (no sort, but a
        // scan of every claim per page of numbers).
        let mut headers = headers;
        headers.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let ids: Vec<String> = headers.iter().map(|h| h.id.clone()).collect();
        let diagnosis_sql = format!(
            "SELECT claim_id, code FROM claim_diagnoses WHERE tenant_id = $1 AND claim_id IN ({}) \
             ORDER BY claim_id, position",
            placeholders(ids.len())
        );
        let line_sql = format!(
            concat!(
                "SELECT ",
                line_columns!(),
                " FROM claim_lines WHERE tenant_id = $1 AND claim_id IN ({}) \
                 ORDER BY claim_id, line_number"
            ),
            placeholders(ids.len())
        );
        let (diagnoses, lines) = with_db!(self.db, |pool| {
            let mut q = sqlx::query_as(AssertSqlSafe(diagnosis_sql.clone()))
                .persistent(false)
                .bind(t);
            for id in &ids {
                q = q.bind(id.as_str());
            }
            let diagnoses: Vec<DiagnosisRow> = q.fetch_all(pool).await?;
            let mut q = sqlx::query_as(AssertSqlSafe(line_sql.clone()))
                .persistent(false)
                .bind(t);
            for id in &ids {
                q = q.bind(id.as_str());
            }
            let lines: Vec<LineRow> = q.fetch_all(pool).await?;
            (diagnoses, lines)
        });
        let claims = assemble(headers, diagnoses, lines)?;
        self.attach(tenant, claims).await
    }

    /// Reads a page of claims matching `filter`, in id order.
    pub(super) async fn list(
        &self,
        tenant: &TenantId,
        filter: &ClaimFilter,
        after: Option<ClaimId>,
        limit: u32,
    ) -> Result<Vec<Claim>, ClaimStoreError> {
        let t = tenant.as_str();
        let statuses = (!filter.statuses.is_empty()).then(|| {
            filter
                .statuses
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(",")
        });
        let status = statuses.as_deref();
        let from = filter.service_date_from.map(format_iso_date);
        let to = filter.service_date_to.map(format_iso_date);
        let after = after.map(|a| a.to_string());
        let limit = i64::from(limit);
        // The three queries select the same page because the detail queries repeat the header filter
        // as a subquery; reads of committed rows are stable for a claim's header and lines.
        // Binds the ten parameters of `list_filter!`, the same for each of the three queries.
        macro_rules! bind_filter {
            ($query:expr) => {
                $query
                    .bind(t)
                    .bind(status)
                    .bind(filter.patient_ref.as_deref())
                    .bind(filter.payer_id.as_deref())
                    .bind(from.as_deref())
                    .bind(to.as_deref())
                    .bind(after.as_deref())
                    .bind(limit)
                    .bind(filter.patient_control_number.as_deref())
                    .bind(filter.coverage_id.as_deref())
            };
        }
        let (headers, diagnoses, lines) = with_db!(self.db, |pool| {
            let headers: Vec<ClaimRow> = bind_filter!(sqlx::query_as(concat!(
                "SELECT ",
                claim_columns!(),
                " FROM claims WHERE tenant_id = $1 AND id IN (",
                list_filter!(),
                ") ORDER BY id"
            )))
            .fetch_all(pool)
            .await?;
            if headers.is_empty() {
                return Ok(Vec::new());
            }
            let diagnoses: Vec<DiagnosisRow> = bind_filter!(sqlx::query_as(concat!(
                "SELECT claim_id, code FROM claim_diagnoses WHERE tenant_id = $1 AND claim_id IN (",
                list_filter!(),
                ") ORDER BY claim_id, position"
            )))
            .fetch_all(pool)
            .await?;
            let lines: Vec<LineRow> = bind_filter!(sqlx::query_as(concat!(
                "SELECT ",
                line_columns!(),
                " FROM claim_lines WHERE tenant_id = $1 AND claim_id IN (",
                list_filter!(),
                ") ORDER BY claim_id, line_number"
            )))
            .fetch_all(pool)
            .await?;
            (headers, diagnoses, lines)
        });
        let claims = assemble(headers, diagnoses, lines)?;
        self.attach(tenant, claims).await
    }
}

/// A unique column claims are read by in bulk (only these names are formatted into SQL).
#[derive(Clone, Copy, Debug)]
enum KeyColumn {
    Id,
    PatientControlNumber,
}

impl KeyColumn {
    fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::PatientControlNumber => "patient_control_number",
        }
    }
}
