//! Regions that nodes live in and plans allow.

use sqlx::any::AnyRow;
use uuid::Uuid;

use super::audit::NewAudit;
use super::resource::{changed, resource, Page};
use super::row::RowExt;
use super::{Result, Store};
use crate::model::{now_ms, Region};

/// A region to create or replace.
#[derive(Clone, Debug)]
pub struct NewRegion {
    pub code: String,
    pub name: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// A coordinate as a value that is never NULL and whether it is there. sqlx's `Any` driver binds
/// a NULL `f64` as a PostgreSQL `float4`, and a statement prepared with that type then fails for
/// the next real `f64` ("incorrect binary data format"); the SQL turns an absent one into NULL
/// with `CASE WHEN present = 1 THEN value END` instead.
fn coordinate(v: Option<f64>) -> (f64, i32) {
    (v.unwrap_or(0.0), i32::from(v.is_some()))
}

const COLUMNS: &str = "id, code, name, latitude, longitude, created_at";

fn from_row(r: &AnyRow) -> Result<Region> {
    Ok(Region {
        id: r.id("id")?,
        code: r.text("code")?,
        name: r.text("name")?,
        latitude: r.float_opt("latitude")?,
        longitude: r.float_opt("longitude")?,
        created_at: r.int("created_at")?,
    })
}

resource!(Region, "regions", COLUMNS, "region", from_row);

impl Store {
    pub async fn create_region(&self, actor: &str, new: &NewRegion) -> Result<Region> {
        let id = Uuid::new_v4();
        let mut tx = self.begin().await?;
        let (lat, has_lat) = coordinate(new.latitude);
        let (lon, has_lon) = coordinate(new.longitude);
        sqlx::query(
            "INSERT INTO regions (id, code, name, latitude, longitude, created_at) VALUES \
             ($1, $2, $3, CASE WHEN $7 = 1 THEN $4 END, CASE WHEN $8 = 1 THEN $5 END, $6)",
        )
        .bind(id.to_string())
        .bind(&new.code)
        .bind(&new.name)
        .bind(lat)
        .bind(lon)
        .bind(now_ms())
        .bind(has_lat)
        .bind(has_lon)
        .execute(&mut *tx)
        .await?;
        let detail = serde_json::json!({"code": new.code, "name": new.name});
        self.commit_and_fetch(
            tx,
            NewAudit::on(actor, "region.create", "region", id, detail),
            id,
        )
        .await
    }

    pub async fn update_region(&self, actor: &str, id: Uuid, new: &NewRegion) -> Result<Region> {
        let (lat, has_lat) = coordinate(new.latitude);
        let (lon, has_lon) = coordinate(new.longitude);
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE regions SET code = $2, name = $3, latitude = CASE WHEN $6 = 1 THEN $4 END, \
             longitude = CASE WHEN $7 = 1 THEN $5 END WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(&new.code)
        .bind(&new.name)
        .bind(lat)
        .bind(lon)
        .bind(has_lat)
        .bind(has_lon)
        .execute(&mut *tx)
        .await?;
        changed(&done, "region")?;
        let detail = serde_json::json!({"code": new.code, "name": new.name});
        self.commit_and_fetch(
            tx,
            NewAudit::on(actor, "region.update", "region", id, detail),
            id,
        )
        .await
    }

    pub async fn delete_region(&self, actor: &str, id: Uuid) -> Result<()> {
        self.delete_audited(actor, "regions", "region", "region", id)
            .await
    }

    pub async fn get_region(&self, id: Uuid) -> Result<Region> {
        self.fetch(id).await
    }

    pub async fn region_by_code(&self, code: &str) -> Result<Region> {
        self.fetch_by("code", code).await
    }

    pub async fn list_regions(&self) -> Result<Vec<Region>> {
        self.list_regions_page(Page::ALL).await
    }

    pub async fn list_regions_page(&self, page: Page) -> Result<Vec<Region>> {
        self.list("code", page).await
    }
}
