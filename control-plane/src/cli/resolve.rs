//! What an operator types for a thing: its id, or its name (a user also by e-mail address, a
//! region by code, a device by name within its user). Every lookup says which it missed.

use uuid::Uuid;

use crate::app::AppState;
use crate::domain::{self, DomainError};
use crate::model::{Admin, Device, Gateway, Node, NodeGroup, Plan, Region, User};
use crate::store::Page;

/// A user by id, name or e-mail address.
pub async fn user(state: &AppState, text: &str) -> Result<User, DomainError> {
    match domain::users::find(state, text).await {
        Err(DomainError::NotFound(what)) if text.contains('@') => state
            .store
            .user_by_email(text)
            .await
            .map_err(|_| DomainError::NotFound(what)),
        other => other,
    }
}

/// A plan by id or name.
pub async fn plan(state: &AppState, text: &str) -> Result<Plan, DomainError> {
    match Uuid::parse_str(text) {
        Ok(id) => Ok(state.store.get_plan(id).await?),
        Err(_) => domain::plans::by_name(state, text).await,
    }
}

/// A region by id or code.
pub async fn region(state: &AppState, text: &str) -> Result<Region, DomainError> {
    if let Ok(id) = Uuid::parse_str(text) {
        return Ok(state.store.get_region(id).await?);
    }
    let regions = state.store.list_regions_page(Page::ALL).await?;
    by_name(regions, |r| &r.code, "region", text)
}

/// An admin by id or username.
pub async fn admin(state: &AppState, text: &str) -> Result<Admin, DomainError> {
    if let Ok(id) = Uuid::parse_str(text) {
        return Ok(state.store.get_admin(id).await?);
    }
    let admins = state.store.list_admins_page(Page::ALL).await?;
    by_name(admins, |a| &a.username, "admin", text)
}

/// A gateway by id or name.
pub async fn gateway(state: &AppState, text: &str) -> Result<Gateway, DomainError> {
    match Uuid::parse_str(text) {
        Ok(id) => Ok(state.store.get_gateway(id).await?),
        Err(_) => domain::gateways::by_name(state, text).await,
    }
}

/// The one row whose name is `text`; names that are not unique must be given by id.
fn by_name<T>(
    rows: Vec<T>,
    name: impl Fn(&T) -> &str,
    what: &str,
    text: &str,
) -> Result<T, DomainError> {
    let mut found: Vec<T> = rows.into_iter().filter(|r| name(r) == text).collect();
    match found.len() {
        0 => Err(DomainError::NotFound(format!("{what} {text:?}"))),
        1 => Ok(found.remove(0)),
        n => Err(DomainError::Invalid(format!(
            "{n} {what}s are named {text:?}; give the id"
        ))),
    }
}

/// A node group by id or name.
pub async fn node_group(state: &AppState, text: &str) -> Result<NodeGroup, DomainError> {
    if let Ok(id) = Uuid::parse_str(text) {
        return Ok(state.store.get_node_group(id).await?);
    }
    let groups = state.store.list_node_groups_page(Page::ALL).await?;
    by_name(groups, |g| &g.name, "node group", text)
}

/// A node by id or name.
pub async fn node(state: &AppState, text: &str) -> Result<Node, DomainError> {
    if let Ok(id) = Uuid::parse_str(text) {
        return Ok(state.store.get_node(id).await?);
    }
    let nodes = state.store.list_nodes_page(Page::ALL).await?;
    by_name(nodes, |n| &n.name, "node", text)
}

/// A device by id, or by name among the devices of `user` (id, name or e-mail address).
pub async fn device(
    state: &AppState,
    text: &str,
    user: Option<&str>,
) -> Result<Device, DomainError> {
    if let Ok(id) = Uuid::parse_str(text) {
        return Ok(state.store.get_device(id).await?);
    }
    let Some(user) = user else {
        return Err(DomainError::Invalid(format!(
            "{text:?} is no device id; give --user to find a device by name"
        )));
    };
    let user = self::user(state, user).await?;
    let devices = state
        .store
        .list_devices_page(Some(user.id), Page::ALL)
        .await?;
    by_name(
        devices,
        |d| &d.name,
        &format!("device of {}", user.name),
        text,
    )
}

/// Names of the rows a listing refers to by id, each read once.
pub struct Names<'a> {
    state: &'a AppState,
    known: std::collections::HashMap<Uuid, String>,
}

impl<'a> Names<'a> {
    pub fn new(state: &'a AppState) -> Self {
        Names {
            state,
            known: std::collections::HashMap::new(),
        }
    }

    async fn name_of(&mut self, id: Uuid, kind: Kind) -> String {
        if let Some(name) = self.known.get(&id) {
            return name.clone();
        }
        let store = &self.state.store;
        let name = match kind {
            Kind::User => store.get_user(id).await.map(|u| u.name),
            Kind::Device => store.get_device(id).await.map(|d| d.name),
            Kind::Node => store.get_node(id).await.map(|n| n.name),
            Kind::NodeGroup => store.get_node_group(id).await.map(|g| g.name),
            Kind::Plan => store.get_plan(id).await.map(|p| p.name),
            Kind::Gateway => store.get_gateway(id).await.map(|g| g.name),
        }
        // A row deleted since: its id is all there is.
        .unwrap_or_else(|_| id.to_string());
        self.known.insert(id, name.clone());
        name
    }

    pub async fn user(&mut self, id: Uuid) -> String {
        self.name_of(id, Kind::User).await
    }
    pub async fn device(&mut self, id: Uuid) -> String {
        self.name_of(id, Kind::Device).await
    }
    pub async fn node(&mut self, id: Uuid) -> String {
        self.name_of(id, Kind::Node).await
    }
    pub async fn node_group(&mut self, id: Uuid) -> String {
        self.name_of(id, Kind::NodeGroup).await
    }
    pub async fn plan(&mut self, id: Uuid) -> String {
        self.name_of(id, Kind::Plan).await
    }
    pub async fn gateway(&mut self, id: Uuid) -> String {
        self.name_of(id, Kind::Gateway).await
    }
}

#[derive(Clone, Copy)]
enum Kind {
    User,
    Device,
    Node,
    NodeGroup,
    Plan,
    Gateway,
}
