//! 837P-only loops around the core claim: accident (CLM11, DTP*439), ambulance transport (CR1,
//! 2310E pick-up, 2310F drop-off) and the line-level providers (2420A..2420F), each with its
//! checks. The segments 837I shares (NTE, PWK, NM1 providers) live in `claim837`.

use rust_decimal::Decimal;

use super::claim837::{self as c, nm1};
use super::format::{d8, decimal, invalid};
use super::{Element, WriteError, X12Writer, validate as v};
use crate::model::PartyName;
use crate::model::claim::{
    Accident, AmbulanceLocation, AmbulanceTransport, LineProvider, LineProviderRole, RelatedCause,
};
use crate::seg;

/// Checks CLM11 and DTP*439: one or two different causes, the state exactly with AA, a date with
/// AA or OA (the TR3 leaves it optional for employment alone).
pub(crate) fn check_accident(ctx: &str, a: Option<&Accident>) -> Result<(), WriteError> {
    let Some(a) = a else { return Ok(()) };
    if a.causes.is_empty() || a.causes.len() > 2 {
        return Err(invalid(ctx, "accident.causes", "must hold 1 or 2 causes"));
    }
    if a.causes.len() == 2 && a.causes[0] == a.causes[1] {
        return Err(invalid(ctx, "accident.causes", "must be different"));
    }
    let auto = a.causes.contains(&RelatedCause::AutoAccident);
    match (&a.state, auto) {
        (Some(s), true) => {
            if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(invalid(
                    ctx,
                    "accident.state",
                    "must be a 2-letter state code",
                ));
            }
        }
        (None, true) => {
            return Err(invalid(
                ctx,
                "accident.state",
                "is required for an auto accident (AA)",
            ));
        }
        (Some(_), false) => {
            return Err(invalid(
                ctx,
                "accident.state",
                "is sent only for an auto accident (AA)",
            ));
        }
        (None, false) => {}
    }
    let needs_date = auto || a.causes.contains(&RelatedCause::OtherAccident);
    if needs_date && a.date.is_none() {
        return Err(invalid(
            ctx,
            "accident.date",
            "DTP*439 is required for an auto (AA) or other (OA) accident",
        ));
    }
    Ok(())
}

/// Returns CLM11: causes in -1 and -2, the auto accident state in -4.
pub(crate) fn related_causes(a: Option<&Accident>) -> Element {
    let Some(a) = a else { return "".into() };
    let mut parts: Vec<String> = vec![String::new(); 4];
    for (slot, cause) in parts.iter_mut().zip(&a.causes) {
        *slot = cause.code().to_owned();
    }
    if let Some(s) = &a.state {
        parts[3] = s.clone();
    }
    Element::Composite(parts)
}

/// Writes DTP*439 (the accident date), which comes first among the 2300 dates we write.
pub(crate) fn write_accident_date(
    w: &mut X12Writer,
    a: Option<&Accident>,
) -> Result<(), WriteError> {
    if let Some(d) = a.and_then(|a| a.date) {
        seg!(w, "DTP", "439", "D8", d8(d))?;
    }
    Ok(())
}

/// Checks CR1 and the pick-up and drop-off locations.
pub(crate) fn check_ambulance(
    ctx: &str,
    t: Option<&AmbulanceTransport>,
    pickup: Option<&AmbulanceLocation>,
    dropoff: Option<&AmbulanceLocation>,
) -> Result<(), WriteError> {
    if let Some(t) = t {
        if t.patient_weight_lb.is_some_and(|w| w <= Decimal::ZERO) {
            return Err(invalid(
                ctx,
                "ambulance_transport.patient_weight_lb",
                "must be positive",
            ));
        }
        v::code(
            ctx,
            "ambulance_transport.reason",
            &t.reason,
            &["A", "B", "C", "D", "E"],
        )?;
        if t.distance_miles < Decimal::ZERO {
            return Err(invalid(
                ctx,
                "ambulance_transport.distance_miles",
                "must not be negative",
            ));
        }
        v::optional(
            ctx,
            "ambulance_transport.round_trip_purpose",
            &t.round_trip_purpose,
            80,
        )?;
        v::optional(
            ctx,
            "ambulance_transport.stretcher_purpose",
            &t.stretcher_purpose,
            80,
        )?;
    }
    if let Some(p) = pickup {
        if p.name.is_some() {
            return Err(invalid(
                ctx,
                "ambulance_pickup.name",
                "the TR3 sends no name for the pick-up location (NM103 not used)",
            ));
        }
        v::address(ctx, &p.address)?;
    }
    if let Some(d) = dropoff {
        v::optional(ctx, "ambulance_dropoff.name", &d.name, 60)?;
        v::address(ctx, &d.address)?;
    }
    Ok(())
}

/// Writes CR1: weight in pounds (LB), reason, distance in miles (DH), purposes.
pub(crate) fn write_transport(
    w: &mut X12Writer,
    t: Option<&AmbulanceTransport>,
) -> Result<(), WriteError> {
    let Some(t) = t else { return Ok(()) };
    let weight = t.patient_weight_lb.map(decimal);
    seg!(
        w,
        "CR1",
        if weight.is_some() { "LB" } else { "" },
        weight,
        "",
        &t.reason,
        "DH",
        decimal(t.distance_miles),
        "",
        "",
        &t.round_trip_purpose,
        &t.stretcher_purpose
    )
}

/// Writes loops 2310E (NM1*PW) and 2310F (NM1*45), each with N3/N4.
pub(crate) fn write_locations(
    w: &mut X12Writer,
    pickup: Option<&AmbulanceLocation>,
    dropoff: Option<&AmbulanceLocation>,
) -> Result<(), WriteError> {
    for (entity, loc) in [("PW", pickup), ("45", dropoff)] {
        if let Some(l) = loc {
            let name = PartyName::organization(l.name.clone().unwrap_or_default());
            nm1(w, entity, &name, "", "")?;
            c::n3n4(w, &l.address)?;
        }
    }
    Ok(())
}

/// Checks a line's 2420 providers: one per role, in loop order, with what each loop allows.
pub(crate) fn check_line_providers(
    ctx: &str,
    providers: &[LineProvider],
) -> Result<(), WriteError> {
    if providers.windows(2).any(|p| p[0].role >= p[1].role) {
        return Err(invalid(
            ctx,
            "providers",
            "at most one per role, in loop order (rendering, purchased service, service \
             facility, supervising, ordering, referring)",
        ));
    }
    for p in providers {
        let field = role_field(p.role);
        let is_person = matches!(p.name, PartyName::Person(_));
        match p.role {
            LineProviderRole::Rendering => v::party(ctx, field, &p.name)?,
            LineProviderRole::PurchasedService => {
                let empty = match &p.name {
                    PartyName::Organization { name } => name.is_empty(),
                    PartyName::Person(n) => {
                        n.last.is_empty()
                            && n.first.is_none()
                            && n.middle.is_none()
                            && n.suffix.is_none()
                    }
                };
                if !empty {
                    return Err(invalid(
                        ctx,
                        field,
                        "2420B sends no name (NM103 not used): leave it empty, the kind says NM102",
                    ));
                }
            }
            LineProviderRole::ServiceFacility => {
                if is_person {
                    return Err(invalid(ctx, field, "must be an organisation"));
                }
                v::party(ctx, field, &p.name)?;
            }
            LineProviderRole::Supervising
            | LineProviderRole::Ordering
            | LineProviderRole::Referring => {
                if !is_person {
                    return Err(invalid(ctx, field, "must be a person"));
                }
                v::party(ctx, field, &p.name)?;
            }
        }
        if let Some(n) = &p.npi {
            v::npi(ctx, field, n)?;
        }
        match (&p.taxonomy, p.role) {
            (Some(t), LineProviderRole::Rendering) => c::taxonomy(ctx, field, t)?,
            (Some(_), _) => {
                return Err(invalid(
                    ctx,
                    field,
                    "only the rendering provider (2420A) has a PRV",
                ));
            }
            (None, _) => {}
        }
        match (&p.address, p.role) {
            (Some(a), LineProviderRole::ServiceFacility) => {
                v::address(ctx, a)?;
                if a.postal_code.len() != 9 {
                    return Err(invalid(ctx, field, "the TR3 requires the 9-digit ZIP+4"));
                }
            }
            (None, LineProviderRole::ServiceFacility) => {
                return Err(invalid(ctx, field, "2420C needs the facility's address"));
            }
            (Some(a), LineProviderRole::Ordering) => v::address(ctx, a)?,
            (Some(_), _) => {
                return Err(invalid(
                    ctx,
                    field,
                    "only a service facility or ordering provider has an address",
                ));
            }
            (None, _) => {}
        }
    }
    Ok(())
}

fn role_field(role: LineProviderRole) -> &'static str {
    match role {
        LineProviderRole::Rendering => "providers (2420A rendering)",
        LineProviderRole::PurchasedService => "providers (2420B purchased service)",
        LineProviderRole::ServiceFacility => "providers (2420C service facility)",
        LineProviderRole::Supervising => "providers (2420D supervising)",
        LineProviderRole::Ordering => "providers (2420E ordering)",
        LineProviderRole::Referring => "providers (2420F referring)",
    }
}

/// Writes loops 2420A..2420F in the order the checks enforce.
pub(crate) fn write_line_providers(
    w: &mut X12Writer,
    providers: &[LineProvider],
) -> Result<(), WriteError> {
    for p in providers {
        let entity = p.role.entity_code();
        let npi = p.npi.as_deref().unwrap_or_default();
        let q = if p.npi.is_some() { "XX" } else { "" };
        // A purchased service provider's name is empty (checked), so only NM102 comes out of it.
        nm1(w, entity, &p.name, q, npi)?;
        if let Some(t) = &p.taxonomy {
            seg!(w, "PRV", "PE", "PXC", t)?;
        }
        if let Some(a) = &p.address {
            c::n3n4(w, a)?;
        }
    }
    Ok(())
}
