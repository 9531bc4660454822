//! Operator commands on customers: users, their subscriptions, devices and sessions. Users are
//! named by id, name or e-mail address; devices by id, or by name with `--user`.

use anyhow::{anyhow, Context};
use serde_json::json;
use uuid::Uuid;

use super::operate::{CliResult, ACTOR};
use super::output::{
    bytes, deleted, emit, fields, links_json, or_dash, print_credentials, print_links, say, table,
    when,
};
use super::{resolve, DeviceCmd, DeviceRef, SessionCmd, SubscriptionCmd, UserCmd};
use crate::app::AppState;
use crate::domain::subscriptions::PlanRef;
use crate::domain::{self, DomainError};
use crate::model::{now_ms, Device, DeviceStatus, Plan, Session, Subscription, User, UserStatus};
use crate::store::{Page, SessionFilter, UserUpdate};

async fn subscribe(
    state: &AppState,
    user: Uuid,
    plan: &str,
    on_hold: bool,
    queued: bool,
) -> Result<(Subscription, Plan), DomainError> {
    let plan = resolve::plan(state, plan).await?;
    let plan_ref = Some(PlanRef::Id(plan.id));
    domain::subscriptions::create(state, ACTOR, user, plan_ref, on_hold, queued).await
}

async fn set_user_status(
    state: &AppState,
    user: &str,
    status: UserStatus,
    json: bool,
) -> CliResult {
    let id = resolve::user(state, user).await?.id;
    let update = UserUpdate {
        name: None,
        email: None,
        status: Some(status),
    };
    let u = domain::users::update(state, ACTOR, id, &update).await?;
    emit(json, &u, || say!("user {} {}", u.name, u.status))?;
    Ok(())
}

fn user_rows(users: &[User]) -> Vec<Vec<String>> {
    users
        .iter()
        .map(|u| {
            vec![
                u.id.to_string(),
                u.name.clone(),
                or_dash(u.email.as_deref()),
                u.status.to_string(),
                when(Some(u.created_at)),
            ]
        })
        .collect()
}

async fn subscription_rows(state: &AppState, subs: &[Subscription]) -> Vec<Vec<String>> {
    let mut names = resolve::Names::new(state);
    let mut rows = Vec::with_capacity(subs.len());
    for s in subs {
        rows.push(vec![
            s.id.to_string(),
            names.plan(s.plan_id).await,
            s.status.to_string(),
            when(s.starts_at),
            when(s.ends_at),
        ]);
    }
    rows
}

const SUBSCRIPTION_HEADERS: [&str; 5] = ["ID", "PLAN", "STATUS", "STARTS", "ENDS"];

async fn device_rows(state: &AppState, devices: &[Device]) -> Vec<Vec<String>> {
    let mut names = resolve::Names::new(state);
    let mut rows = Vec::with_capacity(devices.len());
    for d in devices {
        rows.push(vec![
            d.id.to_string(),
            names.user(d.user_id).await,
            d.name.clone(),
            d.status.to_string(),
            when(d.last_seen_at),
        ]);
    }
    rows
}

const DEVICE_HEADERS: [&str; 5] = ["ID", "USER", "NAME", "STATUS", "LAST SEEN"];

pub(super) async fn user(state: &AppState, cmd: UserCmd, json: bool) -> CliResult {
    match cmd {
        UserCmd::Create {
            name,
            email,
            plan,
            on_hold,
        } => {
            let u = domain::users::create(state, ACTOR, &name, email.as_deref()).await?;
            let sub = match plan {
                Some(plan) => Some(subscribe(state, u.id, &plan, on_hold, false).await?),
                None => None,
            };
            let value = json!({ "user": u, "subscription": sub.as_ref().map(|(s, _)| s) });
            emit(json, &value, || {
                say!("user {} created: {}", u.name, u.id);
                if let Some((s, plan)) = &sub {
                    say!("subscribed to {} ({})", plan.name, s.status);
                }
            })?;
        }
        UserCmd::List(page) => {
            let users = state.store.list_users(page.limit, page.offset).await?;
            emit(json, &users, || {
                table(
                    &["ID", "NAME", "EMAIL", "STATUS", "CREATED"],
                    &user_rows(&users),
                )
            })?;
        }
        UserCmd::Show { user } => {
            let u = resolve::user(state, &user).await?;
            let subs = state.store.list_subscriptions(u.id).await?;
            let devices = state.store.list_devices(Some(u.id)).await?;
            let now = now_ms();
            let quota = match state.store.resolve_subscription(u.id, now, false).await? {
                Some((sub, plan)) => Some(state.store.quota_status(&sub, &plan, now).await?),
                None => None,
            };
            if json {
                let value =
                    json!({ "user": u, "subscriptions": subs, "quota": quota, "devices": devices });
                return Ok(super::output::json(&value)?);
            }
            let mut lines = vec![
                ("id", u.id.to_string()),
                ("name", u.name.clone()),
                ("email", or_dash(u.email.as_deref())),
                ("status", u.status.to_string()),
                ("created", when(Some(u.created_at))),
            ];
            match &quota {
                Some(q) => lines.extend([
                    ("used", bytes(Some(q.used_bytes))),
                    ("quota", bytes(q.quota_bytes)),
                    ("remaining", bytes(q.remaining_bytes)),
                    (
                        "period",
                        format!("{} to {}", when(Some(q.period_start)), when(q.period_end)),
                    ),
                ]),
                None => lines.push(("quota", "no subscription in force".to_owned())),
            }
            fields(&lines);
            say!("");
            table(
                &SUBSCRIPTION_HEADERS,
                &subscription_rows(state, &subs).await,
            );
            say!("");
            table(&DEVICE_HEADERS, &device_rows(state, &devices).await);
        }
        UserCmd::Subscribe {
            user,
            plan,
            on_hold,
            queued,
        } => {
            let user = resolve::user(state, &user).await?;
            let (s, plan) = subscribe(state, user.id, &plan, on_hold, queued).await?;
            emit(json, &s, || {
                say!("subscription {} ({}) to {}", s.id, s.status, plan.name)
            })?;
        }
        UserCmd::ResetUsage { user } => {
            let u = resolve::user(state, &user).await?;
            let Some((sub, _)) = state
                .store
                .resolve_subscription(u.id, now_ms(), false)
                .await?
            else {
                return Err(
                    DomainError::NotFound(format!("subscription in force of {}", u.name)).into(),
                );
            };
            let q = domain::subscriptions::reset_usage(state, ACTOR, sub.id).await?;
            emit(json, &q, || {
                say!(
                    "usage of {} reset: a new period starts {}",
                    u.name,
                    when(Some(q.period_start))
                )
            })?;
        }
        UserCmd::Disable { user } => {
            set_user_status(state, &user, UserStatus::Disabled, json).await?
        }
        UserCmd::Enable { user } => set_user_status(state, &user, UserStatus::Active, json).await?,
        UserCmd::Delete { user } => {
            let u = resolve::user(state, &user).await?;
            domain::users::delete(state, ACTOR, u.id).await?;
            deleted(json, "user", &u.name, u.id)?;
        }
    }
    Ok(())
}

pub(super) async fn subscription(state: &AppState, cmd: SubscriptionCmd, json: bool) -> CliResult {
    match cmd {
        SubscriptionCmd::List { user } => {
            let u = resolve::user(state, &user).await?;
            let subs = state.store.list_subscriptions(u.id).await?;
            let rows = subscription_rows(state, &subs).await;
            emit(json, &subs, || table(&SUBSCRIPTION_HEADERS, &rows))?;
        }
        SubscriptionCmd::Cancel { id } => {
            let s = domain::subscriptions::cancel(state, ACTOR, id).await?;
            emit(json, &s, || say!("subscription {} {}", s.id, s.status))?;
        }
        SubscriptionCmd::ResetUsage { id } => {
            let q = domain::subscriptions::reset_usage(state, ACTOR, id).await?;
            emit(json, &q, || {
                say!(
                    "usage of subscription {id} reset: a new period starts {}",
                    when(Some(q.period_start))
                )
            })?;
        }
        SubscriptionCmd::Extend { id, days } => {
            let s = domain::subscriptions::extend(state, ACTOR, id, days).await?;
            emit(json, &s, || {
                say!(
                    "subscription {id} extended by {days} days: ends {}",
                    when(s.ends_at)
                )
            })?;
        }
        SubscriptionCmd::AddTraffic { id, traffic } => {
            let added = super::parse_bytes(&traffic)?;
            let q = domain::subscriptions::add_traffic(state, ACTOR, id, added).await?;
            emit(json, &q, || {
                say!(
                    "{} added to subscription {id}: {} used of {} this period",
                    bytes(Some(added)),
                    bytes(Some(q.used_bytes)),
                    bytes(q.quota_bytes)
                )
            })?;
        }
        SubscriptionCmd::ChangePlan { id, plan } => {
            let p = resolve::plan(state, &plan).await?;
            let (s, p) = domain::subscriptions::change_plan(state, ACTOR, id, p.id).await?;
            emit(json, &s, || {
                say!("subscription {} moved to plan {}", s.id, p.name)
            })?;
        }
    }
    Ok(())
}

async fn find_device(state: &AppState, d: &DeviceRef) -> Result<Device, DomainError> {
    resolve::device(state, &d.device, d.user.as_deref()).await
}

async fn set_device_status(
    state: &AppState,
    d: &DeviceRef,
    status: DeviceStatus,
    json: bool,
) -> CliResult {
    let id = find_device(state, d).await?.id;
    let d = domain::devices::set_status(state, ACTOR, id, status).await?;
    let done = match status {
        DeviceStatus::Revoked => "revoked",
        DeviceStatus::Disabled => "disabled",
        DeviceStatus::Active => "enabled",
    };
    emit(json, &d, || say!("device {} ({}) {done}", d.name, d.id))?;
    Ok(())
}

fn credentials_json(c: &domain::devices::NewCredentials) -> serde_json::Value {
    json!({
        "device": c.device,
        "token": c.token,
        "link": c.link,
        "links": links_json(&c.links),
        "subscription_url": c.subscription_url,
    })
}

pub(super) async fn device(state: &AppState, cmd: DeviceCmd, json: bool) -> CliResult {
    match cmd {
        DeviceCmd::Create { user, name, no_qr } => {
            let user = resolve::user(state, &user).await?;
            let created = domain::devices::create(state, ACTOR, user.id, &name).await?;
            if json {
                return Ok(super::output::json(&credentials_json(&created))?);
            }
            say!(
                "device {} created: {}",
                created.device.name,
                created.device.id
            );
            print_credentials(&created, no_qr)?;
            if let Some(url) = &created.subscription_url {
                say!("subscription URL: {url}");
            }
        }
        DeviceCmd::List { user, page } => {
            let user = match user {
                Some(u) => Some(resolve::user(state, &u).await?.id),
                None => None,
            };
            let devices = state
                .store
                .list_devices_page(user, Page::from(page))
                .await?;
            let rows = device_rows(state, &devices).await;
            emit(json, &devices, || table(&DEVICE_HEADERS, &rows))?;
        }
        DeviceCmd::Show(d) => {
            let d = find_device(state, &d).await?;
            let user = resolve::Names::new(state).user(d.user_id).await;
            emit(json, &d, || {
                fields(&[
                    ("id", d.id.to_string()),
                    ("name", d.name.clone()),
                    ("user", format!("{user} ({})", d.user_id)),
                    ("status", d.status.to_string()),
                    ("created", when(Some(d.created_at))),
                    ("last seen", when(d.last_seen_at)),
                ])
            })?;
        }
        DeviceCmd::Revoke(d) => set_device_status(state, &d, DeviceStatus::Revoked, json).await?,
        DeviceCmd::Disable(d) => set_device_status(state, &d, DeviceStatus::Disabled, json).await?,
        DeviceCmd::Enable(d) => set_device_status(state, &d, DeviceStatus::Active, json).await?,
        DeviceCmd::Delete(d) => {
            let d = find_device(state, &d).await?;
            domain::devices::delete(state, ACTOR, d.id).await?;
            deleted(json, "device", &d.name, d.id)?;
        }
        DeviceCmd::Link { device, no_qr } => {
            let id = find_device(state, &device).await?.id;
            let shown = domain::devices::show_links(state, id).await?;
            if json {
                let value = json!({ "device": shown.device, "links": links_json(&shown.links) });
                return Ok(super::output::json(&value)?);
            }
            say!("device {} ({})", shown.device.name, shown.device.id);
            print_links(&shown.links, no_qr)?;
        }
        DeviceCmd::RotateToken { device, no_qr } => {
            let id = find_device(state, &device).await?.id;
            let rotated = domain::devices::rotate_token(state, ACTOR, id).await?;
            if json {
                return Ok(super::output::json(&credentials_json(&rotated))?);
            }
            say!(
                "device {} has a new token; the old one no longer works",
                rotated.device.id
            );
            print_credentials(&rotated, no_qr)?;
        }
        DeviceCmd::Subscription {
            device,
            rotate,
            revoke,
            no_qr,
        } => {
            let id = find_device(state, &device).await?.id;
            if revoke {
                domain::devices::revoke_subscription_url(state, ACTOR, id).await?;
                emit(json, &json!({ "device_id": id, "url": null }), || {
                    say!("the subscription URL of device {id} is revoked")
                })?;
                return Ok(());
            }
            let url = if rotate {
                domain::devices::rotate_subscription_url(state, ACTOR, id).await?
            } else {
                domain::devices::show_subscription_url(state, id).await?
            };
            if json {
                return Ok(super::output::json(
                    &json!({ "device_id": id, "url": url }),
                )?);
            }
            say!("subscription URL: {url}");
            if !no_qr {
                say!(
                    "{}",
                    crate::link::qr_terminal(&url).context("drawing the QR code")?
                );
            }
        }
    }
    Ok(())
}

async fn session_rows(state: &AppState, sessions: &[Session]) -> Vec<Vec<String>> {
    let mut names = resolve::Names::new(state);
    let mut rows = Vec::with_capacity(sessions.len());
    for s in sessions {
        let node = match s.node_id {
            Some(id) => names.node(id).await,
            None => "-".to_owned(),
        };
        let ended = match (s.ended_at, s.kill_requested) {
            (Some(at), _) => format!("{} ({})", when(Some(at)), or_dash(s.end_reason.as_deref())),
            (None, true) => "ending".to_owned(),
            (None, false) => "live".to_owned(),
        };
        rows.push(vec![
            s.id.to_string(),
            names.user(s.user_id).await,
            names.device(s.device_id).await,
            node,
            when(Some(s.started_at)),
            ended,
            bytes(Some(s.bytes_up)),
            bytes(Some(s.bytes_down)),
        ]);
    }
    rows
}

pub(super) async fn session(state: &AppState, cmd: SessionCmd, json: bool) -> CliResult {
    match cmd {
        SessionCmd::List {
            live,
            user,
            device,
            node,
            gateway,
            page,
        } => {
            let user_id = match &user {
                Some(u) => Some(resolve::user(state, u).await?.id),
                None => None,
            };
            let device_id = match &device {
                Some(d) => Some(resolve::device(state, d, user.as_deref()).await?.id),
                None => None,
            };
            let node_id = match &node {
                Some(n) => Some(resolve::node(state, n).await?.id),
                None => None,
            };
            let gateway_id = match &gateway {
                Some(g) => Some(resolve::gateway(state, g).await?.id),
                None => None,
            };
            let filter = SessionFilter {
                live_only: live,
                user_id,
                device_id,
                gateway_id,
                node_id,
                limit: page.limit,
            };
            let sessions = state
                .store
                .list_sessions_after(&filter, page.offset)
                .await?;
            let rows = session_rows(state, &sessions).await;
            emit(json, &sessions, || {
                table(
                    &[
                        "ID", "USER", "DEVICE", "NODE", "STARTED", "ENDED", "UP", "DOWN",
                    ],
                    &rows,
                )
            })?;
        }
        SessionCmd::Show { id } => {
            let s = state.store.get_session(id).await?;
            let rows = session_rows(state, std::slice::from_ref(&s)).await;
            let gateway = resolve::Names::new(state).gateway(s.gateway_id).await;
            let row = rows.into_iter().next().ok_or_else(|| anyhow!("no row"))?;
            emit(json, &s, || {
                fields(&[
                    ("id", row[0].clone()),
                    ("user", row[1].clone()),
                    ("device", row[2].clone()),
                    ("node", row[3].clone()),
                    ("gateway", gateway.clone()),
                    ("region", or_dash(s.client_region.as_deref())),
                    ("started", row[4].clone()),
                    ("last heartbeat", when(Some(s.last_heartbeat_at))),
                    ("ended", row[5].clone()),
                    ("up", row[6].clone()),
                    ("down", row[7].clone()),
                ])
            })?;
        }
        SessionCmd::End { id } => {
            let s = domain::sessions::kill(state, ACTOR, id).await?;
            emit(json, &s, || say!("session {} ends", s.id))?;
        }
    }
    Ok(())
}
