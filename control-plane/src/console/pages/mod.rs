//! One module per page (or per group of small pages), each a few handlers over the domain
//! layer, plus the name look-ups that let pages show names instead of ids.

pub mod admins;
pub mod audit;
pub mod dashboard;
pub mod devices;
pub mod gateways;
pub mod nodes;
pub mod plans;
pub mod pool;
pub mod sessions;
pub mod subscriptions;
pub mod usage;
pub mod users;

use std::collections::HashMap;

use uuid::Uuid;

use crate::app::AppState;
use crate::store::StoreError;

/// Names by id, for tables that would otherwise show UUIDs.
#[derive(Debug, Default)]
pub struct Names(HashMap<Uuid, String>);

impl Names {
    /// The name of `id`, or a short form of the id when it is unknown (deleted since).
    pub fn of(&self, id: Uuid) -> String {
        self.0.get(&id).cloned().unwrap_or_else(|| {
            let text = id.to_string();
            format!("{}… (deleted)", &text[..8])
        })
    }

    pub fn opt(&self, id: Option<Uuid>) -> String {
        id.map_or_else(|| "—".to_owned(), |id| self.of(id))
    }

    fn from_pairs(pairs: impl IntoIterator<Item = (Uuid, String)>) -> Names {
        Names(pairs.into_iter().collect())
    }

    pub async fn users(state: &AppState) -> Result<Names, StoreError> {
        Ok(Names::from_pairs(
            state
                .store
                .list_users(1000, 0)
                .await?
                .into_iter()
                .map(|u| (u.id, u.name)),
        ))
    }

    pub async fn devices(state: &AppState) -> Result<Names, StoreError> {
        Ok(Names::from_pairs(
            state
                .store
                .list_devices(None)
                .await?
                .into_iter()
                .map(|d| (d.id, d.name)),
        ))
    }

    pub async fn plans(state: &AppState) -> Result<Names, StoreError> {
        Ok(Names::from_pairs(
            state
                .store
                .list_plans()
                .await?
                .into_iter()
                .map(|p| (p.id, p.name)),
        ))
    }

    pub async fn gateways(state: &AppState) -> Result<Names, StoreError> {
        Ok(Names::from_pairs(
            state
                .store
                .list_gateways()
                .await?
                .into_iter()
                .map(|g| (g.id, g.name)),
        ))
    }

    pub async fn nodes(state: &AppState) -> Result<Names, StoreError> {
        Ok(Names::from_pairs(
            state
                .store
                .list_nodes()
                .await?
                .into_iter()
                .map(|n| (n.id, n.name)),
        ))
    }

    pub async fn groups(state: &AppState) -> Result<Names, StoreError> {
        Ok(Names::from_pairs(
            state
                .store
                .list_node_groups()
                .await?
                .into_iter()
                .map(|g| (g.id, g.name)),
        ))
    }
}

/// Names of everything an audit entry can target, with the page that shows it.
#[derive(Debug)]
pub struct Targets {
    users: Names,
    devices: Names,
    plans: Names,
    nodes: Names,
    groups: Names,
    gateways: Names,
    regions: Names,
    admins: Names,
}

impl Targets {
    pub async fn load(state: &AppState) -> Result<Targets, StoreError> {
        Ok(Targets {
            users: Names::users(state).await?,
            devices: Names::devices(state).await?,
            plans: Names::plans(state).await?,
            nodes: Names::nodes(state).await?,
            groups: Names::groups(state).await?,
            gateways: Names::gateways(state).await?,
            regions: Names::from_pairs(
                state
                    .store
                    .list_regions()
                    .await?
                    .into_iter()
                    .map(|r| (r.id, r.code)),
            ),
            admins: Names::from_pairs(
                state
                    .store
                    .list_admins()
                    .await?
                    .into_iter()
                    .map(|a| (a.id, a.username)),
            ),
        })
    }

    /// The target's name and, when it has one, its page; the id itself for other kinds.
    pub fn of(&self, kind: &str, id: &str) -> (String, Option<String>) {
        let Ok(uuid) = Uuid::parse_str(id) else {
            return (id.to_owned(), None);
        };
        let (names, page) = match kind {
            "user" => (&self.users, Some("/ui/users/")),
            "device" => (&self.devices, Some("/ui/devices/")),
            "node" => (&self.nodes, Some("/ui/nodes/")),
            "plan" => (&self.plans, None),
            "node_group" => (&self.groups, None),
            "gateway" => (&self.gateways, None),
            "region" => (&self.regions, None),
            "admin" => (&self.admins, None),
            _ => return (id.to_owned(), None),
        };
        let known = names.0.contains_key(&uuid);
        (
            names.of(uuid),
            page.filter(|_| known).map(|p| format!("{p}{uuid}")),
        )
    }
}

/// The days of the last `days` days, oldest first, as (bucket start, label): the x axis of the
/// daily charts.
pub fn last_days(now: crate::model::Millis, days: i64) -> Vec<(crate::model::Millis, String)> {
    const DAY: i64 = 86_400_000;
    let today = now - now.rem_euclid(DAY);
    (0..days)
        .rev()
        .map(|back| {
            let start = today - back * DAY;
            (start, super::page::day(start)[5..].to_owned())
        })
        .collect()
}
