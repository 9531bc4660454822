//! The node pool: nodes, node groups, health state and history, live load.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};
use uuid::Uuid;

use super::audit::NewAudit;
use super::resource::{changed, resource, Page};
use super::row::RowExt;
use super::{map_rows, ConflictKind, Result, Store, StoreError};
use crate::model::{now_ms, HealthEvent, Millis, Node, NodeGroup, NodeHealth, NodeStatus};

/// A node to create.
#[derive(Clone, Debug)]
pub struct NewNode {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub cipher: String,
    pub secret: String,
    pub region_id: Option<Uuid>,
    pub groups: Vec<Uuid>,
    pub weight: i32,
    pub capacity: i32,
}

/// Fields an update may change.
#[derive(Clone, Debug, Default)]
pub struct NodeUpdate {
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub cipher: Option<String>,
    pub secret: Option<String>,
    pub region_id: Option<Option<Uuid>>,
    pub groups: Option<Vec<Uuid>>,
    pub weight: Option<i32>,
    pub capacity: Option<i32>,
    pub status: Option<NodeStatus>,
}

/// One probe's outcome and the health state it leads to.
#[derive(Clone, Debug)]
pub struct ProbeRecord {
    pub node_id: Uuid,
    pub at: Millis,
    pub health: NodeHealth,
    pub consecutive_failures: i32,
    pub consecutive_successes: i32,
    pub latency_ms: Option<i32>,
    pub error: Option<String>,
    /// Set when the probe changed the node's health: the change goes into the history.
    pub transition: Option<NodeHealth>,
}

const COLUMNS: &str = "id, name, host, port, cipher, secret, region_id, weight, capacity, status, health, \
     consecutive_failures, consecutive_successes, last_checked_at, last_latency_ms, last_error, created_at";

fn from_row(r: &AnyRow, groups: Vec<Uuid>) -> Result<Node> {
    let port = r.int("port")?;
    Ok(Node {
        id: r.id("id")?,
        name: r.text("name")?,
        host: r.text("host")?,
        port: u16::try_from(port).map_err(|_| StoreError::Corrupt(format!("port {port}")))?,
        cipher: r.text("cipher")?,
        secret: r.text("secret")?,
        region_id: r.opt_id("region_id")?,
        groups,
        weight: r.int32("weight")?,
        capacity: r.int32("capacity")?,
        status: r.parsed("status")?,
        health: r.parsed("health")?,
        consecutive_failures: r.int32("consecutive_failures")?,
        consecutive_successes: r.int32("consecutive_successes")?,
        last_checked_at: r.opt_int("last_checked_at")?,
        last_latency_ms: r.opt_int32("last_latency_ms")?,
        last_error: r.opt_text("last_error")?,
        created_at: r.int("created_at")?,
    })
}

fn group_from_row(r: &AnyRow) -> Result<NodeGroup> {
    Ok(NodeGroup {
        id: r.id("id")?,
        name: r.text("name")?,
        description: r.text("description")?,
        created_at: r.int("created_at")?,
    })
}

resource!(
    NodeGroup,
    "node_groups",
    "id, name, description, created_at",
    "node group",
    group_from_row
);

async fn set_groups(tx: &mut Transaction<'static, Any>, node: Uuid, groups: &[Uuid]) -> Result<()> {
    sqlx::query("DELETE FROM node_group_members WHERE node_id = $1")
        .bind(node.to_string())
        .execute(&mut **tx)
        .await?;
    for group in groups {
        sqlx::query("INSERT INTO node_group_members (node_id, group_id) VALUES ($1, $2)")
            .bind(node.to_string())
            .bind(group.to_string())
            .execute(&mut **tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                e if e.conflict_kind() == Some(ConflictKind::Reference) => {
                    StoreError::Invalid(format!("node group {group} does not exist"))
                }
                other => other,
            })?;
    }
    Ok(())
}

fn region_error(e: sqlx::Error, region: Option<Uuid>) -> StoreError {
    match StoreError::from(e) {
        e if e.conflict_kind() == Some(ConflictKind::Reference) => StoreError::Invalid(format!(
            "region {} does not exist",
            region.map(|r| r.to_string()).unwrap_or_default()
        )),
        other => other,
    }
}

impl Store {
    pub async fn create_node(&self, actor: &str, new: &NewNode) -> Result<Node> {
        let id = Uuid::new_v4();
        let mut tx = self.begin().await?;
        sqlx::query(&format!("INSERT INTO nodes ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', 'unknown', 0, 0, NULL, NULL, NULL, $10)"))
            .bind(id.to_string())
            .bind(&new.name)
            .bind(&new.host)
            .bind(i32::from(new.port))
            .bind(&new.cipher)
            .bind(&new.secret)
            .bind(new.region_id.map(|r| r.to_string()))
            .bind(new.weight)
            .bind(new.capacity)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(|e| region_error(e, new.region_id))?;
        set_groups(&mut tx, id, &new.groups).await?;
        self.commit_audited(tx, NewAudit::on(actor, "node.create", "node", id, serde_json::json!({"name": new.name, "host": new.host, "port": new.port, "cipher": new.cipher, "region_id": new.region_id, "groups": new.groups}))).await?;
        self.get_node(id).await
    }

    pub async fn update_node(&self, actor: &str, id: Uuid, update: &NodeUpdate) -> Result<Node> {
        let current = self.get_node(id).await?;
        let region = update.region_id.unwrap_or(current.region_id);
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE nodes SET name = $2, host = $3, port = $4, cipher = $5, secret = $6, region_id = $7, \
             weight = $8, capacity = $9, status = $10 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(update.name.clone().unwrap_or(current.name))
        .bind(update.host.clone().unwrap_or(current.host))
        .bind(i32::from(update.port.unwrap_or(current.port)))
        .bind(update.cipher.clone().unwrap_or(current.cipher))
        .bind(update.secret.clone().unwrap_or(current.secret))
        .bind(region.map(|r| r.to_string()))
        .bind(update.weight.unwrap_or(current.weight))
        .bind(update.capacity.unwrap_or(current.capacity))
        .bind(update.status.unwrap_or(current.status).as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| region_error(e, region))?;
        if let Some(groups) = &update.groups {
            set_groups(&mut tx, id, groups).await?;
        }
        self.commit_audited(tx, NewAudit::on(actor, "node.update", "node", id, serde_json::json!({"name": update.name, "host": update.host, "port": update.port, "cipher": update.cipher, "secret_changed": update.secret.is_some(), "region_id": update.region_id, "groups": update.groups, "weight": update.weight, "capacity": update.capacity, "status": update.status}))).await?;
        self.get_node(id).await
    }

    pub async fn delete_node(&self, actor: &str, id: Uuid) -> Result<()> {
        self.delete_audited(actor, "nodes", "node", "node", id)
            .await
    }

    async fn node_groups_of(&self) -> Result<HashMap<Uuid, Vec<Uuid>>> {
        let rows =
            sqlx::query("SELECT node_id, group_id FROM node_group_members ORDER BY group_id")
                .fetch_all(self.reader())
                .await?;
        let mut map: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for r in &rows {
            map.entry(r.id("node_id")?)
                .or_default()
                .push(r.id("group_id")?);
        }
        Ok(map)
    }

    pub async fn get_node(&self, id: Uuid) -> Result<Node> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM nodes WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound("node"))?;
        let groups = sqlx::query(
            "SELECT group_id FROM node_group_members WHERE node_id = $1 ORDER BY group_id",
        )
        .bind(id.to_string())
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|r| r.id("group_id"))
        .collect::<Result<Vec<_>>>()?;
        from_row(&row, groups)
    }

    pub async fn list_nodes(&self) -> Result<Vec<Node>> {
        self.list_nodes_page(Page::ALL).await
    }

    pub async fn list_nodes_page(&self, page: Page) -> Result<Vec<Node>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM nodes ORDER BY name, id LIMIT $1 OFFSET $2"
        ))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.reader())
        .await?;
        let mut groups = self.node_groups_of().await?;
        rows.iter()
            .map(|r| {
                let id = r.id("id")?;
                from_row(r, groups.remove(&id).unwrap_or_default())
            })
            .collect()
    }

    /// Live sessions per node (sessions not ended).
    pub async fn node_loads(&self) -> Result<HashMap<Uuid, i64>> {
        let rows = sqlx::query("SELECT node_id, COUNT(*) AS n FROM sessions WHERE ended_at IS NULL AND node_id IS NOT NULL GROUP BY node_id")
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| Ok((r.id("node_id")?, r.int("n")?)))
            .collect()
    }

    /// Records a probe result, and the state change in the health history when there is one.
    pub async fn record_probe(&self, probe: &ProbeRecord) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE nodes SET health = $2, consecutive_failures = $3, consecutive_successes = $4, \
             last_checked_at = $5, last_latency_ms = $6, last_error = $7 WHERE id = $1",
        )
        .bind(probe.node_id.to_string())
        .bind(probe.health.as_str())
        .bind(probe.consecutive_failures)
        .bind(probe.consecutive_successes)
        .bind(probe.at)
        .bind(probe.latency_ms)
        .bind(probe.error.clone())
        .execute(&mut *tx)
        .await?;
        if let Some(to) = probe.transition {
            sqlx::query("INSERT INTO node_health_events (node_id, at, health, latency_ms, error) VALUES ($1, $2, $3, $4, $5)")
                .bind(probe.node_id.to_string())
                .bind(probe.at)
                .bind(to.as_str())
                .bind(probe.latency_ms)
                .bind(probe.error.clone())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A node's health history, newest first.
    pub async fn health_history(&self, node: Uuid, limit: i64) -> Result<Vec<HealthEvent>> {
        let rows = sqlx::query("SELECT at, health, latency_ms, error FROM node_health_events WHERE node_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(node.to_string())
            .bind(limit.clamp(1, 1000))
            .fetch_all(self.reader())
            .await?;
        map_rows(rows, |r| {
            Ok(HealthEvent {
                at: r.int("at")?,
                health: r.parsed("health")?,
                latency_ms: r.opt_int32("latency_ms")?,
                error: r.opt_text("error")?,
            })
        })
    }

    pub async fn create_node_group(
        &self,
        actor: &str,
        name: &str,
        description: &str,
    ) -> Result<NodeGroup> {
        let id = Uuid::new_v4();
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO node_groups (id, name, description, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(description)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let detail = serde_json::json!({"name": name});
        self.commit_and_fetch(
            tx,
            NewAudit::on(actor, "node_group.create", "node_group", id, detail),
            id,
        )
        .await
    }

    pub async fn update_node_group(
        &self,
        actor: &str,
        id: Uuid,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<NodeGroup> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE node_groups SET name = COALESCE($2, name), description = COALESCE($3, description) WHERE id = $1")
            .bind(id.to_string())
            .bind(name)
            .bind(description)
            .execute(&mut *tx)
            .await?;
        changed(&done, "node group")?;
        let detail = serde_json::json!({"name": name, "description": description});
        self.commit_and_fetch(
            tx,
            NewAudit::on(actor, "node_group.update", "node_group", id, detail),
            id,
        )
        .await
    }

    pub async fn delete_node_group(&self, actor: &str, id: Uuid) -> Result<()> {
        self.delete_audited(actor, "node_groups", "node_group", "node group", id)
            .await
    }

    pub async fn get_node_group(&self, id: Uuid) -> Result<NodeGroup> {
        self.fetch(id).await
    }

    pub async fn list_node_groups(&self) -> Result<Vec<NodeGroup>> {
        self.list_node_groups_page(Page::ALL).await
    }

    pub async fn list_node_groups_page(&self, page: Page) -> Result<Vec<NodeGroup>> {
        self.list("name", page).await
    }
}
