//! CreateProvider, UpdateProvider, GetProvider and ListProviders: validation naming the field, the
//! proto mapping (tax ids masked on the way out), and the runs through the idempotency kit.

use medbill_domain::Npi;
use medbill_proto::claims::v1 as pb;
use medbill_proto::common::v1 as common;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{tenant_id, timestamp};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use medbill_runtime::paging::{PageSize, QueryFingerprint, decode_page_token, split_page};
use tonic::{Request, Response, Status};

use super::{NewProvider, Provider, ProviderKind, ProviderName, TaxId, is_taxonomy_format};
use crate::details::PostalAddress;
use crate::service::ClaimsService;

/// Longest name part the 837 carries (NM103 allows 60 characters, NM104 35).
const MAX_NAME_LEN: usize = 60;

impl ClaimsService {
    pub(crate) async fn create_provider_rpc(
        &self,
        request: Request<pb::CreateProviderRequest>,
    ) -> Result<Response<pb::CreateProviderResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let call = IdempotentCall::of(&req)?;
        let new = provider_input(req.provider.as_ref(), false)?;
        let mut op = match call.begin(self.store().database(), &tenant).await? {
            Begun::Replay(first) => return Ok(Response::new(first)),
            Begun::New(op) => op,
        };
        let provider = self
            .store()
            .create_provider(op.tx(), &tenant, &new)
            .await
            .map_err(ServiceError::from)?;
        let response = pb::CreateProviderResponse {
            provider: Some(provider_to_proto(&provider)),
        };
        op.commit(&response).await?;
        tracing::info!(npi = %provider.npi, kind = provider.kind.as_str(), "provider created");
        Ok(Response::new(response))
    }

    pub(crate) async fn update_provider_rpc(
        &self,
        request: Request<pb::UpdateProviderRequest>,
    ) -> Result<Response<pb::UpdateProviderResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let call = IdempotentCall::of(&req)?;
        let new = provider_input(req.provider.as_ref(), true)?;
        let mut op = match call.begin(self.store().database(), &tenant).await? {
            Begun::Replay(first) => return Ok(Response::new(first)),
            Begun::New(op) => op,
        };
        let provider = self
            .store()
            .update_provider(op.tx(), &tenant, &new)
            .await
            .map_err(ServiceError::from)?;
        let response = pb::UpdateProviderResponse {
            provider: Some(provider_to_proto(&provider)),
        };
        op.commit(&response).await?;
        tracing::info!(npi = %provider.npi, "provider updated");
        Ok(Response::new(response))
    }

    pub(crate) async fn get_provider_rpc(
        &self,
        request: Request<pb::GetProviderRequest>,
    ) -> Result<Response<pb::GetProviderResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let npi = npi_field("npi", &request.get_ref().npi)?;
        let provider = self
            .store()
            .get_provider(&tenant, npi.as_str())
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("provider {npi}")))?;
        Ok(Response::new(pb::GetProviderResponse {
            provider: Some(provider_to_proto(&provider)),
        }))
    }

    pub(crate) async fn list_providers_rpc(
        &self,
        request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let size = PageSize::from_i32(req.page_size)?;
        let kind = match pb::ProviderKind::try_from(req.kind) {
            Ok(pb::ProviderKind::Unspecified) => None,
            Ok(k) => Some(kind_from_proto(k)),
            Err(_) => {
                return Err(ServiceError::invalid_argument(
                    "kind",
                    format!("{} is not a provider kind", req.kind),
                )
                .into());
            }
        };
        let fingerprint = QueryFingerprint::builder("claims.ListProviders")
            .field("tenant", tenant.as_str())
            .optional("kind", kind.map(ProviderKind::as_str))
            .finish();
        let after = decode_page_token(&req.page_token, &fingerprint)?;
        let rows = self
            .store()
            .list_providers(&tenant, kind, after.as_deref(), size.fetch_limit())
            .await
            .map_err(ServiceError::from)?;
        let (page, next_page_token) =
            split_page(rows, size, &fingerprint, |p| p.npi.as_str().to_owned());
        Ok(Response::new(pb::ListProvidersResponse {
            providers: page.iter().map(provider_to_proto).collect(),
            next_page_token,
        }))
    }
}

/// Parses a required NPI field (check digit verified), naming the field.
pub(crate) fn npi_field(field: &str, raw: &str) -> Result<Npi, ServiceError> {
    if raw.is_empty() {
        return Err(ServiceError::invalid_argument(field, "is required"));
    }
    Npi::parse(raw).map_err(|e| ServiceError::invalid_argument(field, e.to_string()))
}

fn kind_from_proto(k: pb::ProviderKind) -> ProviderKind {
    match k {
        pb::ProviderKind::Individual | pb::ProviderKind::Unspecified => ProviderKind::Individual,
        pb::ProviderKind::Organization => ProviderKind::Organization,
        pb::ProviderKind::ServiceFacility => ProviderKind::ServiceFacility,
    }
}

fn kind_to_proto(k: ProviderKind) -> pb::ProviderKind {
    match k {
        ProviderKind::Individual => pb::ProviderKind::Individual,
        ProviderKind::Organization => pb::ProviderKind::Organization,
        ProviderKind::ServiceFacility => pb::ProviderKind::ServiceFacility,
    }
}

/// A name part: trimmed, at most [`MAX_NAME_LEN`] characters, no X12 delimiter characters.
fn name_part(field: &str, raw: &str, required: bool) -> Result<String, ServiceError> {
    let value = raw.trim();
    if value.is_empty() {
        if required {
            return Err(ServiceError::invalid_argument(field, "is required"));
        }
        return Ok(String::new());
    }
    if value.chars().count() > MAX_NAME_LEN {
        return Err(ServiceError::invalid_argument(
            field,
            format!("is longer than {MAX_NAME_LEN} characters"),
        ));
    }
    if value.contains(['*', '~', ':', '^', '|']) {
        return Err(ServiceError::invalid_argument(
            field,
            "contains a character X12 reserves as a delimiter (* ~ : ^ |)",
        ));
    }
    Ok(value.to_owned())
}

/// Parses an address given on the wire; `None` when unset. Every part is checked by the rules the
/// 837's N3/N4 apply (state two letters, ZIP 5 or 9 digits in the United States).
pub(crate) fn address(
    field: &str,
    a: Option<&common::Address>,
) -> Result<Option<PostalAddress>, ServiceError> {
    let Some(a) = a else { return Ok(None) };
    let at = |f: &str| format!("{field}.{f}");
    let line1 = name_part(&at("line1"), &a.line1, true)?;
    let line2 = name_part(&at("line2"), &a.line2, false)?;
    let city = name_part(&at("city"), &a.city, true)?;
    let country_code = a.country_code.trim().to_ascii_uppercase();
    let domestic = country_code.is_empty() || country_code == "US";
    let state = a.state.trim().to_ascii_uppercase();
    if domestic && (state.len() != 2 || !state.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(ServiceError::invalid_argument(
            at("state"),
            "must be a two-letter state code",
        ));
    }
    let postal_code = a.postal_code.trim().to_owned();
    if domestic
        && !(matches!(postal_code.len(), 5 | 9) && postal_code.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ServiceError::invalid_argument(
            at("postal_code"),
            "must be a ZIP code of 5 or 9 digits",
        ));
    }
    Ok(Some(PostalAddress {
        line1,
        line2,
        city,
        state,
        postal_code,
        country_code: if domestic {
            String::new()
        } else {
            country_code
        },
    }))
}

/// Validates a provider request, naming the field (`provider.<field>`). On update, a tax id type
/// without digits keeps the tax id on file.
fn provider_input(p: Option<&pb::Provider>, update: bool) -> Result<NewProvider, ServiceError> {
    let p = p.ok_or_else(|| ServiceError::invalid_argument("provider", "is required"))?;
    let npi = npi_field("provider.npi", &p.npi)?;
    let kind = match pb::ProviderKind::try_from(p.kind) {
        Ok(pb::ProviderKind::Unspecified) => {
            return Err(ServiceError::invalid_argument(
                "provider.kind",
                "is required (INDIVIDUAL, ORGANIZATION or SERVICE_FACILITY)",
            ));
        }
        Ok(k) => kind_from_proto(k),
        Err(_) => {
            return Err(ServiceError::invalid_argument(
                "provider.kind",
                format!("{} is not a provider kind", p.kind),
            ));
        }
    };
    let name = match kind {
        ProviderKind::Individual => {
            if !p.organization_name.is_empty() {
                return Err(ServiceError::invalid_argument(
                    "provider.organization_name",
                    "is for organisations and facilities; an individual gives person_name",
                ));
            }
            let person = p.person_name.clone().unwrap_or_default();
            ProviderName {
                last_or_organization: name_part(
                    "provider.person_name.last_name",
                    &person.last_name,
                    true,
                )?,
                first: name_part("provider.person_name.first_name", &person.first_name, true)?,
                middle: name_part(
                    "provider.person_name.middle_name",
                    &person.middle_name,
                    false,
                )?,
                suffix: name_part("provider.person_name.suffix", &person.suffix, false)?,
            }
        }
        ProviderKind::Organization | ProviderKind::ServiceFacility => {
            if p.person_name.is_some() {
                return Err(ServiceError::invalid_argument(
                    "provider.person_name",
                    "is for individuals; an organisation or facility gives organization_name",
                ));
            }
            ProviderName {
                last_or_organization: name_part(
                    "provider.organization_name",
                    &p.organization_name,
                    true,
                )?,
                first: String::new(),
                middle: String::new(),
                suffix: String::new(),
            }
        }
    };
    let (tax_id, keep_tax_id) = match pb::TaxIdType::try_from(p.tax_id_type) {
        Ok(pb::TaxIdType::Unspecified) => {
            if !p.tax_id.is_empty() {
                return Err(ServiceError::invalid_argument(
                    "provider.tax_id_type",
                    "is required with a tax_id (EIN or SSN)",
                ));
            }
            (None, false)
        }
        Ok(t) if p.tax_id.is_empty() && update => {
            let _ = t;
            (None, true)
        }
        Ok(t) => {
            if p.tax_id.len() != 9 || !p.tax_id.bytes().all(|b| b.is_ascii_digit()) {
                // The value is never echoed: it may be a social security number.
                return Err(ServiceError::invalid_argument(
                    "provider.tax_id",
                    "must be 9 digits without dashes",
                ));
            }
            let digits = p.tax_id.clone();
            let id = if t == pb::TaxIdType::Ssn {
                TaxId::Ssn(digits)
            } else {
                TaxId::Ein(digits)
            };
            (Some(id), false)
        }
        Err(_) => {
            return Err(ServiceError::invalid_argument(
                "provider.tax_id_type",
                format!("{} is not a tax id type", p.tax_id_type),
            ));
        }
    };
    let taxonomy_code = match p.taxonomy_code.trim() {
        "" => None,
        code if is_taxonomy_format(code) => Some(code.to_owned()),
        code => {
            return Err(ServiceError::invalid_argument(
                "provider.taxonomy_code",
                format!(
                    "{code:?} is not a NUCC taxonomy code (3 digits, 6 digits or capitals, then X)"
                ),
            ));
        }
    };
    let address_value = address("provider.address", p.address.as_ref())?;
    if address_value.is_none() && kind != ProviderKind::Individual {
        return Err(ServiceError::invalid_argument(
            "provider.address",
            "is required for an organisation or service facility",
        ));
    }
    Ok(NewProvider {
        npi,
        kind,
        name,
        tax_id,
        keep_tax_id,
        taxonomy_code,
        address: address_value,
        pay_to_address: address("provider.pay_to_address", p.pay_to_address.as_ref())?,
    })
}

/// Maps an address to the wire.
pub(crate) fn address_to_proto(a: &PostalAddress) -> common::Address {
    common::Address {
        line1: a.line1.clone(),
        line2: a.line2.clone(),
        city: a.city.clone(),
        state: a.state.clone(),
        postal_code: a.postal_code.clone(),
        country_code: a.country_code.clone(),
    }
}

/// Maps a provider to the wire, its tax id masked.
pub(crate) fn provider_to_proto(p: &Provider) -> pb::Provider {
    let person = p.kind == ProviderKind::Individual;
    pb::Provider {
        npi: p.npi.as_str().to_owned(),
        kind: kind_to_proto(p.kind).into(),
        organization_name: if person {
            String::new()
        } else {
            p.name.last_or_organization.clone()
        },
        person_name: person.then(|| common::PersonName {
            last_name: p.name.last_or_organization.clone(),
            first_name: p.name.first.clone(),
            middle_name: p.name.middle.clone(),
            suffix: p.name.suffix.clone(),
        }),
        tax_id_type: match &p.tax_id {
            None => pb::TaxIdType::Unspecified,
            Some(TaxId::Ein(_)) => pb::TaxIdType::Ein,
            Some(TaxId::Ssn(_)) => pb::TaxIdType::Ssn,
        }
        .into(),
        tax_id: p.tax_id.as_ref().map(TaxId::masked).unwrap_or_default(),
        taxonomy_code: p.taxonomy_code.clone().unwrap_or_default(),
        address: p.address.as_ref().map(address_to_proto),
        pay_to_address: p.pay_to_address.as_ref().map(address_to_proto),
        created_at: Some(timestamp(p.created_at)),
        updated_at: Some(timestamp(p.updated_at)),
    }
}
