//! Gateways and their service tokens. A token is stored as its SHA-256; rotating issues a new
//! token and lets the old ones work until the end of an overlap, so gateways can be updated one
//! by one.

use ipnet::IpNet;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::audit::NewAudit;
use super::resource::{changed, resource, Page};
use super::row::RowExt;
use super::{Result, Store, StoreError};
use crate::model::{now_ms, Gateway, GatewayToken, Millis};

/// An authenticated gateway.
#[derive(Clone, Debug)]
pub struct GatewayAuth {
    pub gateway: Gateway,
    pub token_id: Uuid,
    /// Where the token may be used from; empty = anywhere.
    pub allowed_from: Vec<IpNet>,
    /// When the token stops working (after a rotation's overlap); `None` = not scheduled.
    pub expires_at: Option<Millis>,
}

/// A token's allow-list as stored: blocks joined with commas, NULL for anywhere.
fn cidrs_column(allowed: &[IpNet]) -> Option<String> {
    (!allowed.is_empty()).then(|| {
        allowed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    })
}

fn cidrs_from(r: &AnyRow) -> Result<Vec<IpNet>> {
    r.opt_text("allowed_cidrs")?
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .map_err(|e| StoreError::Corrupt(format!("column allowed_cidrs: {e}")))
        })
        .collect()
}

const COLUMNS: &str = "id, name, created_at, last_seen_at, version";
const TOKEN_COLUMNS: &str = "id, gateway_id, created_at, expires_at, revoked_at, allowed_cidrs";

fn from_row(r: &AnyRow) -> Result<Gateway> {
    Ok(Gateway {
        id: r.id("id")?,
        name: r.text("name")?,
        created_at: r.int("created_at")?,
        last_seen_at: r.opt_int("last_seen_at")?,
        version: r.opt_text("version")?,
    })
}

fn token_from_row(r: &AnyRow) -> Result<GatewayToken> {
    Ok(GatewayToken {
        id: r.id("id")?,
        gateway_id: r.id("gateway_id")?,
        created_at: r.int("created_at")?,
        expires_at: r.opt_int("expires_at")?,
        revoked_at: r.opt_int("revoked_at")?,
        allowed_from: cidrs_from(r)?.iter().map(ToString::to_string).collect(),
    })
}

resource!(Gateway, "gateways", COLUMNS, "gateway", from_row);
resource!(
    GatewayToken,
    "gateway_tokens",
    TOKEN_COLUMNS,
    "gateway token",
    token_from_row
);

impl Store {
    /// Registers a gateway with its first token (given as a hash), usable from anywhere.
    pub async fn create_gateway(
        &self,
        actor: &str,
        name: &str,
        token_hash: &str,
    ) -> Result<(Gateway, GatewayToken)> {
        self.create_gateway_allowing(actor, name, token_hash, &[])
            .await
    }

    /// Registers a gateway with its first token, usable only from `allowed` (empty: anywhere).
    pub async fn create_gateway_allowing(
        &self,
        actor: &str,
        name: &str,
        token_hash: &str,
        allowed: &[IpNet],
    ) -> Result<(Gateway, GatewayToken)> {
        let id = Uuid::new_v4();
        let token_id = Uuid::new_v4();
        let now = now_ms();
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO gateways (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id.to_string())
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO gateway_tokens (id, gateway_id, token_hash, created_at, allowed_cidrs) VALUES ($1, $2, $3, $4, $5)")
            .bind(token_id.to_string())
            .bind(id.to_string())
            .bind(token_hash)
            .bind(now)
            .bind(cidrs_column(allowed))
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({"name": name, "allowed_from": cidrs_column(allowed)});
        self.commit_audited(
            tx,
            NewAudit::on(actor, "gateway.create", "gateway", id, detail),
        )
        .await?;
        Ok((
            self.get_gateway(id).await?,
            self.get_gateway_token(token_id).await?,
        ))
    }

    /// Issues a new token; tokens already valid keep working until `now + overlap_ms`.
    pub async fn rotate_gateway_token(
        &self,
        actor: &str,
        gateway: Uuid,
        token_hash: &str,
        overlap_ms: Millis,
    ) -> Result<GatewayToken> {
        self.rotate_gateway_token_allowing(actor, gateway, token_hash, overlap_ms, &[])
            .await
    }

    /// [`Store::rotate_gateway_token`] with a token usable only from `allowed` (empty:
    /// anywhere).
    pub async fn rotate_gateway_token_allowing(
        &self,
        actor: &str,
        gateway: Uuid,
        token_hash: &str,
        overlap_ms: Millis,
        allowed: &[IpNet],
    ) -> Result<GatewayToken> {
        self.get_gateway(gateway).await?;
        let now = now_ms();
        let token_id = Uuid::new_v4();
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE gateway_tokens SET expires_at = $2 WHERE gateway_id = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(gateway.to_string())
        .bind(now + overlap_ms.max(0))
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO gateway_tokens (id, gateway_id, token_hash, created_at, allowed_cidrs) VALUES ($1, $2, $3, $4, $5)")
            .bind(token_id.to_string())
            .bind(gateway.to_string())
            .bind(token_hash)
            .bind(now)
            .bind(cidrs_column(allowed))
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({"token_id": token_id, "overlap_ms": overlap_ms, "allowed_from": cidrs_column(allowed)});
        self.commit_and_fetch(
            tx,
            NewAudit::on(actor, "gateway.rotate_token", "gateway", gateway, detail),
            token_id,
        )
        .await
    }

    pub async fn revoke_gateway_token(
        &self,
        actor: &str,
        gateway: Uuid,
        token: Uuid,
    ) -> Result<GatewayToken> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE gateway_tokens SET revoked_at = $3 WHERE id = $1 AND gateway_id = $2 AND revoked_at IS NULL")
            .bind(token.to_string())
            .bind(gateway.to_string())
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        changed(&done, "gateway token")?;
        let detail = serde_json::json!({"token_id": token});
        self.commit_and_fetch(
            tx,
            NewAudit::on(actor, "gateway.revoke_token", "gateway", gateway, detail),
            token,
        )
        .await
    }

    pub async fn get_gateway(&self, id: Uuid) -> Result<Gateway> {
        self.fetch(id).await
    }

    pub async fn gateway_by_name(&self, name: &str) -> Result<Gateway> {
        self.fetch_by("name", name).await
    }

    pub async fn get_gateway_token(&self, id: Uuid) -> Result<GatewayToken> {
        self.fetch(id).await
    }

    pub async fn list_gateways(&self) -> Result<Vec<Gateway>> {
        self.list_gateways_page(Page::ALL).await
    }

    pub async fn list_gateways_page(&self, page: Page) -> Result<Vec<Gateway>> {
        self.list("name", page).await
    }

    pub async fn list_gateway_tokens(&self, gateway: Uuid) -> Result<Vec<GatewayToken>> {
        self.list_gateway_tokens_page(gateway, Page::ALL).await
    }

    pub async fn list_gateway_tokens_page(
        &self,
        gateway: Uuid,
        page: Page,
    ) -> Result<Vec<GatewayToken>> {
        self.list_where("gateway_id", &gateway.to_string(), "created_at, id", page)
            .await
    }

    /// The gateway whose valid (not revoked, not expired) token has this hash.
    pub async fn authenticate_gateway(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> Result<Option<GatewayAuth>> {
        let row = sqlx::query(
            "SELECT t.id AS token_id, t.allowed_cidrs, t.expires_at AS token_expires_at, g.id, g.name, g.created_at, g.last_seen_at, g.version \
             FROM gateway_tokens t JOIN gateways g ON g.id = t.gateway_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| {
            Ok(GatewayAuth {
                gateway: from_row(&r)?,
                token_id: r.id("token_id")?,
                allowed_from: cidrs_from(&r)?,
                expires_at: r.opt_int("token_expires_at")?,
            })
        })
        .transpose()
    }

    /// Records that a gateway is alive.
    pub async fn gateway_heartbeat(
        &self,
        id: Uuid,
        version: Option<&str>,
        at: Millis,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE gateways SET last_seen_at = $2, version = COALESCE($3, version) WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(at)
        .bind(version)
        .execute(self.writer())
        .await?;
        Ok(())
    }
}
