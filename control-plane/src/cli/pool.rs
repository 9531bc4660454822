//! Operator commands on the infrastructure: pool nodes, node groups (and which nodes are in
//! them), gateways and their service tokens. Each is named by id or name.

use serde_json::json;

use super::operate::{CliResult, ACTOR};
use super::output::{deleted, emit, fields, or_dash, say, table, when};
use super::{resolve, GatewayCmd, NodeCmd, NodeGroupCmd};
use crate::app::AppState;
use crate::domain::nodes::{ImportInput, NodeChanges};
use crate::domain::validate::{free_text, text, MAX_DESCRIPTION, MAX_NAME};
use crate::domain::{self, DomainError};
use crate::model::{GatewayToken, Node, NodeGroup};
use crate::store::Page;

async fn node_rows(state: &AppState, nodes: &[Node]) -> Vec<Vec<String>> {
    let mut names = resolve::Names::new(state);
    let mut rows = Vec::with_capacity(nodes.len());
    for n in nodes {
        let mut groups = Vec::with_capacity(n.groups.len());
        for g in &n.groups {
            groups.push(names.node_group(*g).await);
        }
        rows.push(vec![
            n.id.to_string(),
            n.name.clone(),
            format!("{}:{}", n.host, n.port),
            n.cipher.clone(),
            n.status.to_string(),
            n.health.to_string(),
            if groups.is_empty() {
                "-".to_owned()
            } else {
                groups.join(",")
            },
            when(n.last_checked_at),
        ]);
    }
    rows
}

const NODE_HEADERS: [&str; 8] = [
    "ID", "NAME", "ADDRESS", "CIPHER", "STATUS", "HEALTH", "GROUPS", "CHECKED",
];

pub(super) async fn node(state: &AppState, cmd: NodeCmd, json: bool) -> CliResult {
    match cmd {
        NodeCmd::Import {
            access_key,
            name,
            region,
            groups,
            weight,
            capacity,
        } => {
            let mut group_ids = Vec::with_capacity(groups.len());
            for g in groups.iter().filter(|g| !g.is_empty()) {
                group_ids.push(resolve::node_group(state, g).await?.id);
            }
            let input = ImportInput {
                access_key,
                name,
                region,
                groups: group_ids,
                weight: Some(weight.into()),
                capacity: Some(capacity.into()),
            };
            let n = domain::nodes::import(state, ACTOR, input).await?;
            emit(json, &n, || {
                say!(
                    "node {} ({}:{} {}) added: {}",
                    n.name,
                    n.host,
                    n.port,
                    n.cipher,
                    n.id
                )
            })?;
        }
        NodeCmd::List(page) => {
            let nodes = state.store.list_nodes_page(page.into()).await?;
            let rows = node_rows(state, &nodes).await;
            emit(json, &nodes, || table(&NODE_HEADERS, &rows))?;
        }
        NodeCmd::Show { node } => {
            let n = resolve::node(state, &node).await?;
            let row = node_rows(state, std::slice::from_ref(&n)).await.remove(0);
            emit(json, &n, || {
                fields(&[
                    ("id", row[0].clone()),
                    ("name", row[1].clone()),
                    ("address", row[2].clone()),
                    ("cipher", row[3].clone()),
                    ("status", row[4].clone()),
                    ("health", row[5].clone()),
                    ("groups", row[6].clone()),
                    ("weight", n.weight.to_string()),
                    ("capacity", n.capacity.to_string()),
                    ("last checked", row[7].clone()),
                    (
                        "latency",
                        or_dash(n.last_latency_ms.map(|ms| format!("{ms} ms"))),
                    ),
                    ("last error", or_dash(n.last_error.as_deref())),
                ])
            })?;
        }
        NodeCmd::Update {
            node,
            name,
            weight,
            capacity,
            status,
            region,
        } => {
            let n = resolve::node(state, &node).await?;
            let status = status
                .map(|s| s.parse().map_err(|e: String| anyhow::anyhow!(e)))
                .transpose()?;
            let changes = NodeChanges {
                name,
                weight,
                capacity,
                status,
                region: region.map(|r| (r != "none").then_some(r)),
                ..NodeChanges::default()
            };
            let n = domain::nodes::update(state, ACTOR, n.id, changes).await?;
            emit(json, &n, || say!("node {} updated", n.name))?;
        }
        NodeCmd::Delete { node } => {
            let n = resolve::node(state, &node).await?;
            state.store.delete_node(ACTOR, n.id).await?;
            deleted(json, "node", &n.name, n.id)?;
        }
        NodeCmd::Health { node, limit } => {
            let n = resolve::node(state, &node).await?;
            let history = state.store.health_history(n.id, limit).await?;
            emit(json, &history, || {
                let rows: Vec<_> = history
                    .iter()
                    .map(|e| {
                        vec![
                            when(Some(e.at)),
                            e.health.to_string(),
                            or_dash(e.latency_ms.map(|ms| format!("{ms} ms"))),
                            or_dash(e.error.as_deref()),
                        ]
                    })
                    .collect();
                table(&["AT", "HEALTH", "LATENCY", "ERROR"], &rows);
            })?;
        }
    }
    Ok(())
}

/// Puts a node in a group or takes it out (`join`), through the same node update as the API.
async fn membership(
    state: &AppState,
    group: &str,
    node: &str,
    join: bool,
    json: bool,
) -> CliResult {
    let g = resolve::node_group(state, group).await?;
    let n = resolve::node(state, node).await?;
    let mut groups = n.groups.clone();
    groups.retain(|id| *id != g.id);
    if join {
        groups.push(g.id);
    }
    let changes = NodeChanges {
        groups: Some(groups),
        ..NodeChanges::default()
    };
    let n = domain::nodes::update(state, ACTOR, n.id, changes).await?;
    let verb = if join { "is in" } else { "is out of" };
    emit(json, &n, || say!("node {} {verb} group {}", n.name, g.name))?;
    Ok(())
}

fn group_rows(groups: &[NodeGroup], nodes: &[Node]) -> Vec<Vec<String>> {
    groups
        .iter()
        .map(|g| {
            let members = nodes.iter().filter(|n| n.groups.contains(&g.id)).count();
            vec![
                g.id.to_string(),
                g.name.clone(),
                members.to_string(),
                g.description.clone(),
            ]
        })
        .collect()
}

pub(super) async fn node_group(state: &AppState, cmd: NodeGroupCmd, json: bool) -> CliResult {
    match cmd {
        NodeGroupCmd::Create { name, description } => {
            let name = text("name", &name, MAX_NAME)?;
            let description = free_text("description", &description, MAX_DESCRIPTION)?;
            let g = state
                .store
                .create_node_group(ACTOR, &name, &description)
                .await?;
            emit(json, &g, || say!("node group {} created: {}", g.name, g.id))?;
        }
        NodeGroupCmd::List(page) => {
            let groups = state.store.list_node_groups_page(page.into()).await?;
            let nodes = state.store.list_nodes_page(Page::ALL).await?;
            emit(json, &groups, || {
                table(
                    &["ID", "NAME", "NODES", "DESCRIPTION"],
                    &group_rows(&groups, &nodes),
                )
            })?;
        }
        NodeGroupCmd::Show { group } => {
            let g = resolve::node_group(state, &group).await?;
            let members: Vec<Node> = state
                .store
                .list_nodes_page(Page::ALL)
                .await?
                .into_iter()
                .filter(|n| n.groups.contains(&g.id))
                .collect();
            if json {
                return Ok(super::output::json(
                    &json!({ "group": g, "nodes": members }),
                )?);
            }
            fields(&[
                ("id", g.id.to_string()),
                ("name", g.name.clone()),
                (
                    "description",
                    or_dash((!g.description.is_empty()).then_some(&g.description)),
                ),
                ("created", when(Some(g.created_at))),
            ]);
            say!("");
            table(&NODE_HEADERS, &node_rows(state, &members).await);
        }
        NodeGroupCmd::Update {
            group,
            name,
            description,
        } => {
            if name.is_none() && description.is_none() {
                return Err(DomainError::Invalid(
                    "nothing to change: give --name or --description".into(),
                )
                .into());
            }
            let g = resolve::node_group(state, &group).await?;
            let name = name.map(|n| text("name", &n, MAX_NAME)).transpose()?;
            let description = description
                .map(|d| free_text("description", &d, MAX_DESCRIPTION))
                .transpose()?;
            let g = state
                .store
                .update_node_group(ACTOR, g.id, name.as_deref(), description.as_deref())
                .await?;
            emit(json, &g, || say!("node group {} updated", g.name))?;
        }
        NodeGroupCmd::Delete { group } => {
            let g = resolve::node_group(state, &group).await?;
            state.store.delete_node_group(ACTOR, g.id).await?;
            deleted(json, "node group", &g.name, g.id)?;
        }
        NodeGroupCmd::AddNode { group, node } => {
            membership(state, &group, &node, true, json).await?
        }
        NodeGroupCmd::RemoveNode { group, node } => {
            membership(state, &group, &node, false, json).await?
        }
    }
    Ok(())
}

fn token_rows(tokens: &[GatewayToken]) -> Vec<Vec<String>> {
    tokens
        .iter()
        .map(|t| {
            let expires = t
                .expires_at
                .map_or_else(|| "never".to_owned(), |at| when(Some(at)));
            let revoked = t
                .revoked_at
                .map_or_else(|| "-".to_owned(), |at| when(Some(at)));
            let from = if t.allowed_from.is_empty() {
                "anywhere".to_owned()
            } else {
                t.allowed_from.join(",")
            };
            vec![
                t.id.to_string(),
                when(Some(t.created_at)),
                expires,
                revoked,
                from,
            ]
        })
        .collect()
}

pub(super) async fn gateway(state: &AppState, cmd: GatewayCmd, json: bool) -> CliResult {
    match cmd {
        GatewayCmd::Create { name, allow_from } => {
            let (g, t, secret) = domain::gateways::create(state, ACTOR, &name, &allow_from).await?;
            let value = json!({ "gateway": g, "token_id": t.id, "token": secret });
            emit(json, &value, || {
                say!("gateway {} registered: {}", g.name, g.id);
                say!("service token (shown once): {secret}");
            })?;
        }
        GatewayCmd::Rotate {
            name,
            overlap_secs,
            allow_from,
        } => {
            let g = resolve::gateway(state, &name).await?;
            let (t, secret) =
                domain::gateways::rotate(state, ACTOR, g.id, overlap_secs, &allow_from).await?;
            let value = json!({ "gateway": g, "token_id": t.id, "token": secret });
            emit(json, &value, || {
                say!("new service token for {} (shown once; old tokens work for {overlap_secs} s more): {secret}", g.name)
            })?;
        }
        GatewayCmd::List(page) => {
            let gateways = state.store.list_gateways_page(page.into()).await?;
            emit(json, &gateways, || {
                let rows: Vec<_> = gateways
                    .iter()
                    .map(|g| {
                        vec![
                            g.id.to_string(),
                            g.name.clone(),
                            or_dash(g.version.as_deref()),
                            when(g.last_seen_at),
                        ]
                    })
                    .collect();
                table(&["ID", "NAME", "VERSION", "LAST SEEN"], &rows);
            })?;
        }
        GatewayCmd::Tokens { gateway } => {
            let g = resolve::gateway(state, &gateway).await?;
            let tokens = state.store.list_gateway_tokens(g.id).await?;
            emit(json, &tokens, || {
                table(
                    &["ID", "CREATED", "EXPIRES", "REVOKED", "ALLOWED FROM"],
                    &token_rows(&tokens),
                )
            })?;
        }
        GatewayCmd::RevokeToken { gateway, token_id } => {
            let g = resolve::gateway(state, &gateway).await?;
            let t = domain::gateways::revoke_token(state, ACTOR, g.id, token_id).await?;
            emit(json, &t, || say!("token {} of {} revoked", t.id, g.name))?;
        }
    }
    Ok(())
}
