//! Devices. The store keeps only a hash of each device token.

use sqlx::any::AnyRow;
use uuid::Uuid;

use super::audit::NewAudit;
use super::multi_row::{padded, padded_len, ROWS_PER_STATEMENT};
use super::resource::{resource, Page};
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

/// A device's secrets as the store keeps them: sealed (see [`crate::auth::seal`]) or hashed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceSecrets {
    /// The device token, sealed; `None` for devices created before tokens were kept, or
    /// without a secret key.
    pub token_sealed: Option<String>,
    /// SHA-256 (hex) of the subscription URL token; `None`: no subscription URL.
    pub sub_token_hash: Option<String>,
    /// The subscription URL token, sealed.
    pub sub_token_sealed: Option<String>,
}

fn secrets_from_row(r: &AnyRow) -> Result<DeviceSecrets> {
    Ok(DeviceSecrets {
        token_sealed: r.opt_text("token_sealed")?,
        sub_token_hash: r.opt_text("sub_token_hash")?,
        sub_token_sealed: r.opt_text("sub_token_sealed")?,
    })
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
        self.list_devices_page(user_id, Page::ALL).await
    }

    pub async fn list_devices_page(
        &self,
        user_id: Option<Uuid>,
        page: Page,
    ) -> Result<Vec<Device>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM devices WHERE ($1 IS NULL OR user_id = $1) \
             ORDER BY created_at, id LIMIT $2 OFFSET $3"
        ))
        .bind(user_id.map(|u| u.to_string()))
        .bind(page.limit)
        .bind(page.offset)
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

    /// Keeps a new device's sealed token and its subscription URL token (hash and sealed);
    /// part of creating it, audited with the creation.
    pub async fn keep_device_secrets(&self, id: Uuid, secrets: &DeviceSecrets) -> Result<()> {
        sqlx::query(
            "UPDATE devices SET token_sealed = $2, sub_token_hash = $3, sub_token_sealed = $4 \
             WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(secrets.token_sealed.as_deref())
        .bind(secrets.sub_token_hash.as_deref())
        .bind(secrets.sub_token_sealed.as_deref())
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// The device's sealed secrets.
    pub async fn device_secrets(&self, id: Uuid) -> Result<(Device, DeviceSecrets)> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, token_sealed, sub_token_hash, sub_token_sealed FROM devices WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.reader())
        .await?
        .ok_or(StoreError::NotFound("device"))?;
        Ok((from_row(&row)?, secrets_from_row(&row)?))
    }

    /// The device whose subscription URL token hashes to `sub_token_hash`, with its secrets.
    pub async fn device_by_sub_token(
        &self,
        sub_token_hash: &str,
    ) -> Result<Option<(Device, DeviceSecrets)>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, token_sealed, sub_token_hash, sub_token_sealed FROM devices \
             WHERE sub_token_hash = $1"
        ))
        .bind(sub_token_hash)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| Ok((from_row(&r)?, secrets_from_row(&r)?)))
            .transpose()
    }

    /// Replaces the device token: from now on only `token_hash` validates.
    pub async fn rotate_device_token(
        &self,
        actor: &str,
        id: Uuid,
        token_hash: &str,
        token_sealed: Option<&str>,
    ) -> Result<Device> {
        let mut tx = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE devices SET token_hash = $2, token_sealed = $3 WHERE id = $1 AND status <> 'revoked'",
        )
        .bind(id.to_string())
        .bind(token_hash)
        .bind(token_sealed)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            // Gone, or revoked for good (a new token would not bring it back).
            let device = self.get_device(id).await?;
            return Err(StoreError::Conflict(Conflict::state(format!(
                "device {} is {}: its token cannot be rotated",
                device.id, device.status
            ))));
        }
        // The live sessions ran on the old token: their gateways end them at the next heartbeat
        // (without Redis; with it the revocation event ends them at once), and none resumes.
        let ended = sqlx::query(
            "UPDATE sessions SET kill_requested = TRUE WHERE device_id = $1 AND ended_at IS NULL",
        )
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        self.commit_audited(
            tx,
            NewAudit {
                actor,
                action: "device.rotate_token",
                target_type: "device",
                target_id: Some(id.to_string()),
                detail: serde_json::json!({"sessions_ended": ended}),
            },
        )
        .await?;
        self.get_device(id).await
    }

    /// Sets (`Some`: a new token, sealed or not) or removes (`None`) the device's subscription
    /// URL token.
    pub async fn set_sub_token(
        &self,
        actor: &str,
        id: Uuid,
        token: Option<(&str, Option<&str>)>,
    ) -> Result<Device> {
        let mut tx = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE devices SET sub_token_hash = $2, sub_token_sealed = $3 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(token.map(|(hash, _)| hash))
        .bind(token.and_then(|(_, sealed)| sealed))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound("device"));
        }
        self.commit_audited(
            tx,
            NewAudit {
                actor,
                action: if token.is_some() {
                    "device.subscription_url.rotate"
                } else {
                    "device.subscription_url.revoke"
                },
                target_type: "device",
                target_id: Some(id.to_string()),
                detail: serde_json::json!({}),
            },
        )
        .await?;
        self.get_device(id).await
    }

    pub async fn delete_device(&self, actor: &str, id: Uuid) -> Result<()> {
        self.delete_audited(actor, "devices", "device", "device", id)
            .await
    }

    /// Writes last-seen times, a statement per [`ROWS_PER_STATEMENT`] devices in one
    /// transaction; a time never moves back.
    pub async fn touch_devices(&self, seen: &[(Uuid, Millis)]) -> Result<()> {
        let mut tx = self.begin().await?;
        for chunk in seen.chunks(ROWS_PER_STATEMENT) {
            let rows = (0..padded_len(chunk.len()))
                .map(|k| {
                    format!(
                        "SELECT CAST(${} AS TEXT) AS id, CAST(${} AS BIGINT) AS at",
                        2 * k + 1,
                        2 * k + 2
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ");
            let sql = format!(
                "UPDATE devices SET last_seen_at = v.at FROM ({rows}) AS v \
                 WHERE devices.id = v.id \
                 AND (devices.last_seen_at IS NULL OR devices.last_seen_at < v.at)"
            );
            let mut query = sqlx::query(&sql);
            for (id, at) in padded(chunk) {
                query = query.bind(id.to_string()).bind(*at);
            }
            query.execute(&mut *tx).await?;
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
