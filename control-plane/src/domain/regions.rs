//! Regions: a short code (`eu-west`), a name and optional coordinates for geographic preference.

use uuid::Uuid;

use super::error::named;
use super::validate::{shown, text, MAX_NAME};
use super::{DomainError, DomainResult};
use crate::app::AppState;
use crate::model::Region;
use crate::store::{ConflictKind, NewRegion, StoreError};

/// A region as given: every field, before checking.
#[derive(Clone, Debug)]
pub struct RegionInput<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// Checks a region code: 1 to 32 of lowercase letters, digits and `-`.
pub fn region_code(code: &str) -> DomainResult<String> {
    let ok = !code.is_empty()
        && code.len() <= 32
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(DomainError::Invalid(format!(
            "region code {} must have 1 to 32 of lowercase letters, digits and '-'",
            shown(code)
        )));
    }
    Ok(code.to_owned())
}

fn coordinate(field: &str, v: Option<f64>, bound: f64) -> DomainResult<Option<f64>> {
    match v {
        Some(x) if !x.is_finite() || x < -bound || x > bound => Err(DomainError::Invalid(format!(
            "{field} must be between {} and {bound}",
            -bound
        ))),
        other => Ok(other),
    }
}

fn checked(input: &RegionInput<'_>) -> DomainResult<NewRegion> {
    let latitude = coordinate("latitude", input.latitude, 90.0)?;
    let longitude = coordinate("longitude", input.longitude, 180.0)?;
    if latitude.is_some() != longitude.is_some() {
        return Err(DomainError::Invalid(
            "give both latitude and longitude, or neither".into(),
        ));
    }
    Ok(NewRegion {
        code: region_code(input.code)?,
        name: text("name", input.name, MAX_NAME)?,
        latitude,
        longitude,
    })
}

fn taken(code: &str) -> impl FnOnce(StoreError) -> DomainError + '_ {
    named(move || format!("a region with code {code:?} exists already"))
}

/// Creates a region.
pub async fn create(
    state: &AppState,
    actor: &str,
    input: &RegionInput<'_>,
) -> DomainResult<Region> {
    let new = checked(input)?;
    state
        .store
        .create_region(actor, &new)
        .await
        .map_err(taken(&new.code))
}

/// A region by its code (`what` names the field in the message when there is none).
pub async fn by_code(state: &AppState, code: &str, what: &str) -> DomainResult<Region> {
    region_code(code)?;
    state.store.region_by_code(code).await.map_err(|e| match e {
        StoreError::NotFound(_) => {
            DomainError::Invalid(format!("unknown region code {code:?}{what}"))
        }
        other => other.into(),
    })
}

/// Replaces a region's fields (the caller fills in those not changed from the current region).
pub async fn update(
    state: &AppState,
    actor: &str,
    id: Uuid,
    input: &RegionInput<'_>,
) -> DomainResult<Region> {
    let new = checked(input)?;
    state
        .store
        .update_region(actor, id, &new)
        .await
        .map_err(taken(&new.code))
}

/// Deletes a region no plan allows (its nodes lose their region).
pub async fn delete(state: &AppState, actor: &str, id: Uuid) -> DomainResult<()> {
    let region = state.store.get_region(id).await?;
    // Deleting a plan's only region would silently widen the plan to every region.
    let plans: Vec<String> = state
        .store
        .list_plans()
        .await?
        .into_iter()
        .filter(|p| p.allowed_regions.contains(&region.code))
        .map(|p| p.name)
        .collect();
    if !plans.is_empty() {
        return Err(DomainError::conflict(
            ConflictKind::Reference,
            format!(
                "region {:?} is allowed by plans {}; remove it from them first",
                region.code,
                plans.join(", ")
            ),
        ));
    }
    Ok(state.store.delete_region(actor, id).await?)
}
