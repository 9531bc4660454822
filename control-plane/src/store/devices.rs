//! Devices. The store keeps only a hash of each device token.

use sqlx::any::AnyRow;
use uuid::Uuid;

use super::audit::NewAudit;
use super::resource::resource;
use super::row::RowExt;
use super::{map_rows, Backend, Conflict, ConflictKind, Result, Store, StoreError};
use crate::model::{now_ms, Device, DeviceStatus, Millis};

/// A device to create.
#[derive(Clone, Debug)]
pub struct NewDevice {
    pub user_id: Uuid,
    pub name: String,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
}

const COLUMNS: &str = "id, user_id, name, status, created_at, last_seen_at, sticky_node_id";

pub(super) fn from_row(r: &AnyRow) -> Result<Device> {
    Ok(Device {
        id: r.id("id")?,
        user_id: r.id("user_id")?,
        name: r.text("name")?,
        status: r.parsed("status")?,
        created_at: r.int("created_at")?,
        last_seen_at: r.opt_int("last_seen_at")?,
        sticky_node_id: r.opt_id("sticky_node_id")?,
    })
}

resource!(Device, "devices", COLUMNS, "device", from_row);

impl Store {
    /// Creates a device, refusing when the user's plan in force allows no more devices
    /// (revoked devices do not count). The count and the insert happen under a lock on the
    /// user (PostgreSQL: the user's row, `FOR UPDATE`; SQLite: the write lock `BEGIN IMMEDIATE`
    /// takes), so parallel creations cannot all see room for one more.
    pub async fn create_device(&self, actor: &str, new: &NewDevice) -> Result<Device> {
        let id = Uuid::new_v4();
        let mut tx = self.begin().await?;
        let lock_user = match self.backend() {
            Backend::Postgres => "SELECT id FROM users WHERE id = $1 FOR UPDATE",
            Backend::Sqlite => "SELECT id FROM users WHERE id = $1",
        };
        sqlx::query(lock_user)
            .bind(new.user_id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        let limit = sqlx::query(
            "SELECT p.device_limit FROM subscriptions s JOIN plans p ON p.id = s.plan_id \
             WHERE s.user_id = $1 AND s.status IN ('active', 'on_hold') ORDER BY s.created_at LIMIT 1",
        )
        .bind(new.user_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.int32("device_limit"))
        .transpose()?;
        let count = sqlx::query(
            "SELECT COUNT(*) AS n FROM devices WHERE user_id = $1 AND status <> 'revoked'",
        )
        .bind(new.user_id.to_string())
        .fetch_one(&mut *tx)
        .await?
        .int("n")?;
        if let Some(limit) = limit {
            if count >= i64::from(limit) {
                return Err(StoreError::conflict(
                    ConflictKind::DeviceLimit,
                    format!("device limit reached: the plan allows {limit} devices"),
                ));
            }
        }
        sqlx::query("INSERT INTO devices (id, user_id, name, token_hash, status, created_at) VALUES ($1, $2, $3, $4, 'active', $5)")
            .bind(id.to_string())
            .bind(new.user_id.to_string())
            .bind(&new.name)
            .bind(&new.token_hash)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        self.commit_audited(
            tx,
            NewAudit {
                actor,
                action: "device.create",
                target_type: "device",
                target_id: Some(id.to_string()),
                detail: serde_json::json!({"user_id": new.user_id, "name": new.name}),
            },
        )
        .await?;
        self.get_device(id).await
    }

    pub async fn get_device(&self, id: Uuid) -> Result<Device> {
        self.fetch(id).await
    }

    /// The device and its token hash, for validation.
    pub async fn device_credentials(&self, id: Uuid) -> Result<Option<(Device, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, token_hash FROM devices WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| Ok((from_row(&r)?, r.text("token_hash")?)))
            .transpose()
    }

    pub async fn list_devices(&self, user_id: Option<Uuid>) -> Result<Vec<Device>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM devices WHERE ($1 IS NULL OR user_id = $1) ORDER BY created_at"
        ))
        .bind(user_id.map(|u| u.to_string()))
        .fetch_all(self.reader())
        .await?;
        map_rows(rows, from_row)
    }

    /// Sets a device's status (revoke, disable, enable) and, optionally, renames it.
    pub async fn update_device(
        &self,
        actor: &str,
        id: Uuid,
        status: Option<DeviceStatus>,
        name: Option<&str>,
    ) -> Result<Device> {
        let current = self.get_device(id).await?;
        if current.status == DeviceStatus::Revoked
            && status.is_some_and(|s| s != DeviceStatus::Revoked)
        {
            return Err(StoreError::Conflict(Conflict::state(
                "a revoked device cannot be re-enabled; create a new one",
            )));
        }
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE devices SET status = COALESCE($2, status), name = COALESCE($3, name) WHERE id = $1")
            .bind(id.to_string())
            .bind(status.map(DeviceStatus::as_str))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let action = match status {
            Some(DeviceStatus::Revoked) => "device.revoke",
            Some(DeviceStatus::Disabled) => "device.disable",
            Some(DeviceStatus::Active) => "device.enable",
            None => "device.update",
        };
        self.commit_audited(
            tx,
            NewAudit {
                actor,
                action,
                target_type: "device",
                target_id: Some(id.to_string()),
                detail: serde_json::json!({"status": status, "name": name}),
            },
        )
        .await?;
        self.get_device(id).await
    }

    pub async fn delete_device(&self, actor: &str, id: Uuid) -> Result<()> {
        self.delete_audited(actor, "devices", "device", "device", id)
            .await
    }

    /// Writes last-seen times in one transaction; a time never moves back.
    pub async fn touch_devices(&self, seen: &[(Uuid, Millis)]) -> Result<()> {
        let mut tx = self.begin().await?;
        for (id, at) in seen {
            sqlx::query(
                "UPDATE devices SET last_seen_at = $2 WHERE id = $1 \
                 AND (last_seen_at IS NULL OR last_seen_at < $2)",
            )
            .bind(id.to_string())
            .bind(*at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_sticky_node(&self, id: Uuid, node: Option<Uuid>) -> Result<()> {
        sqlx::query("UPDATE devices SET sticky_node_id = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(node.map(|n| n.to_string()))
            .execute(self.writer())
            .await?;
        Ok(())
    }
}
