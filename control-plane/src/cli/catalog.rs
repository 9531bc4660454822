//! Operator commands on what the service offers and who runs it: admins, regions, plans, and
//! usage reports.

use anyhow::anyhow;
use uuid::Uuid;

use super::operate::{read_password, CliResult, ACTOR};
use super::output::{bytes, deleted, emit, fields, say, table, when};
use super::{parse_bytes, resolve, AdminCmd, PlanCmd, RegionCmd, UsageArgs};
use crate::app::AppState;
use crate::domain;
use crate::domain::admins::AdminChanges;
use crate::domain::plans::{PlanChanges, PlanInput};
use crate::domain::regions::RegionInput;
use crate::model::{now_ms, Plan, ResetStrategy, Role};
use crate::store::{Page, UsageGroupBy, UsageQuery};

pub(super) async fn admin(state: &AppState, cmd: AdminCmd, json: bool) -> CliResult {
    match cmd {
        AdminCmd::Create { username, role } => {
            let role: Role = role.parse().map_err(|e: String| anyhow!(e))?;
            let a = domain::admins::create(state, ACTOR, &username, read_password()?, role).await?;
            emit(json, &a, || {
                say!("admin {} ({}) created: {}", a.username, a.role, a.id)
            })?;
        }
        AdminCmd::List(page) => {
            let admins = state.store.list_admins_page(page.into()).await?;
            emit(json, &admins, || {
                let rows: Vec<_> = admins
                    .iter()
                    .map(|a| {
                        vec![
                            a.id.to_string(),
                            a.username.clone(),
                            a.role.to_string(),
                            if a.disabled { "disabled" } else { "enabled" }.to_owned(),
                            when(Some(a.created_at)),
                        ]
                    })
                    .collect();
                table(&["ID", "USERNAME", "ROLE", "STATUS", "CREATED"], &rows);
            })?;
        }
        AdminCmd::Update {
            admin,
            role,
            disable,
            enable,
            password,
        } => {
            let target = resolve::admin(state, &admin).await?;
            let role = role
                .map(|r| r.parse::<Role>().map_err(|e: String| anyhow!(e)))
                .transpose()?;
            let changes = AdminChanges {
                role,
                disabled: (disable || enable).then_some(disable),
                password: password.then(read_password).transpose()?,
                current_password: None,
            };
            // No admin runs the CLI: the checks against changing oneself do not apply.
            let a = domain::admins::update(state, Uuid::nil(), ACTOR, target.id, changes).await?;
            emit(json, &a, || {
                let status = if a.disabled { "disabled" } else { "enabled" };
                say!("admin {} ({}, {status}) updated", a.username, a.role)
            })?;
        }
    }
    Ok(())
}

pub(super) async fn region(state: &AppState, cmd: RegionCmd, json: bool) -> CliResult {
    match cmd {
        RegionCmd::Create {
            code,
            name,
            latitude,
            longitude,
        } => {
            let input = RegionInput {
                code: &code,
                name: &name,
                latitude,
                longitude,
            };
            let r = domain::regions::create(state, ACTOR, &input).await?;
            emit(json, &r, || say!("region {} created: {}", r.code, r.id))?;
        }
        RegionCmd::List(page) => {
            let regions = state.store.list_regions_page(page.into()).await?;
            emit(json, &regions, || {
                let rows: Vec<_> = regions
                    .iter()
                    .map(|r| {
                        let at = match (r.latitude, r.longitude) {
                            (Some(lat), Some(lon)) => format!("{lat}, {lon}"),
                            _ => "-".to_owned(),
                        };
                        vec![r.id.to_string(), r.code.clone(), r.name.clone(), at]
                    })
                    .collect();
                table(&["ID", "CODE", "NAME", "COORDINATES"], &rows);
            })?;
        }
        RegionCmd::Update {
            region,
            code,
            name,
            latitude,
            longitude,
        } => {
            let current = resolve::region(state, &region).await?;
            let input = RegionInput {
                code: code.as_deref().unwrap_or(&current.code),
                name: name.as_deref().unwrap_or(&current.name),
                latitude: latitude.or(current.latitude),
                longitude: longitude.or(current.longitude),
            };
            let r = domain::regions::update(state, ACTOR, current.id, &input).await?;
            emit(json, &r, || say!("region {} updated", r.code))?;
        }
        RegionCmd::Delete { region } => {
            let r = resolve::region(state, &region).await?;
            domain::regions::delete(state, ACTOR, r.id).await?;
            deleted(json, "region", &r.code, r.id)?;
        }
    }
    Ok(())
}

fn quota(p: &Plan) -> String {
    match p.quota_bytes {
        None => "unlimited".to_owned(),
        Some(q) => format!("{} per {}", bytes(Some(q)), p.reset_strategy),
    }
}

fn duration(p: &Plan) -> String {
    p.duration_days
        .map_or_else(|| "no expiry".to_owned(), |d| format!("{d} days"))
}

fn regions(p: &Plan) -> String {
    if p.allowed_regions.is_empty() {
        "all".to_owned()
    } else {
        p.allowed_regions.join(",")
    }
}

pub(super) async fn plan(state: &AppState, cmd: PlanCmd, json: bool) -> CliResult {
    match cmd {
        PlanCmd::Create {
            name,
            device_limit,
            session_limit,
            quota,
            reset,
            days,
            regions,
        } => {
            // On the command line 0 means unlimited, as no quota does.
            let quota_bytes = quota
                .map(|q| parse_bytes(&q))
                .transpose()?
                .filter(|q| *q > 0);
            let reset_strategy: ResetStrategy = reset.parse().map_err(|e: String| anyhow!(e))?;
            let input = PlanInput {
                name,
                device_limit: device_limit.into(),
                session_limit: session_limit.into(),
                quota_bytes,
                reset_strategy,
                duration_days: days.map(i64::from),
                allowed_regions: regions.into_iter().filter(|c| !c.is_empty()).collect(),
            };
            let p = domain::plans::create(state, ACTOR, &input).await?;
            emit(json, &p, || say!("plan {} created: {}", p.name, p.id))?;
        }
        PlanCmd::List(page) => {
            let plans = state.store.list_plans_page(page.into()).await?;
            emit(json, &plans, || {
                let rows: Vec<_> = plans
                    .iter()
                    .map(|p| {
                        vec![
                            p.id.to_string(),
                            p.name.clone(),
                            p.device_limit.to_string(),
                            p.session_limit.to_string(),
                            quota(p),
                            duration(p),
                            regions(p),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "ID", "NAME", "DEVICES", "SESSIONS", "QUOTA", "DURATION", "REGIONS",
                    ],
                    &rows,
                );
            })?;
        }
        PlanCmd::Show { plan } => {
            let p = resolve::plan(state, &plan).await?;
            emit(json, &p, || {
                fields(&[
                    ("id", p.id.to_string()),
                    ("name", p.name.clone()),
                    ("devices", p.device_limit.to_string()),
                    ("sessions", p.session_limit.to_string()),
                    ("quota", quota(&p)),
                    ("duration", duration(&p)),
                    ("regions", regions(&p)),
                    ("created", when(Some(p.created_at))),
                ])
            })?;
        }
        PlanCmd::Update {
            plan,
            name,
            device_limit,
            session_limit,
            quota,
            reset,
            days,
            regions,
        } => {
            let current = resolve::plan(state, &plan).await?;
            let quota_bytes = match quota.as_deref() {
                None => None,
                Some("unlimited") => Some(None),
                Some(q) => Some(Some(parse_bytes(q)?).filter(|q| *q > 0)),
            };
            let duration_days = match days.as_deref() {
                None => None,
                Some("none") => Some(None),
                Some(d) => Some(Some(d.parse::<i64>().map_err(|_| {
                    anyhow!("--days must be a number of days or none, not {d:?}")
                })?)),
            };
            let reset_strategy = reset
                .map(|r| r.parse::<ResetStrategy>().map_err(|e: String| anyhow!(e)))
                .transpose()?;
            let changes = PlanChanges {
                name,
                device_limit,
                session_limit,
                quota_bytes,
                reset_strategy,
                duration_days,
                allowed_regions: regions.map(|r| r.into_iter().filter(|c| !c.is_empty()).collect()),
            };
            let p = domain::plans::update(state, ACTOR, current.id, &changes).await?;
            emit(json, &p, || say!("plan {} updated", p.name))?;
        }
        PlanCmd::Delete { plan } => {
            let p = resolve::plan(state, &plan).await?;
            domain::plans::delete(state, ACTOR, p.id).await?;
            deleted(json, "plan", &p.name, p.id)?;
        }
    }
    Ok(())
}

pub(super) async fn usage(state: &AppState, args: UsageArgs, json: bool) -> CliResult {
    let group_by = match args.by.as_str() {
        "device" => UsageGroupBy::Device,
        "user" => UsageGroupBy::User,
        "node" => UsageGroupBy::Node,
        "group" => UsageGroupBy::Group,
        other => {
            return Err(anyhow!("--by must be device, user, node or group, not {other:?}").into())
        }
    };
    let store = &state.store;
    // Bring the roll-ups up to date first.
    while store.roll_up_usage(5_000).await? > 0 {}
    let now = now_ms();
    let rows = store
        .usage_report(&UsageQuery {
            group_by,
            daily: !args.hourly,
            from: now - args.days.clamp(1, 366) * 86_400_000,
            to: now + 1,
            key: None,
        })
        .await?;
    if json {
        return Ok(super::output::json(&rows)?);
    }
    let mut names = resolve::Names::new(state);
    let mut lines = Vec::with_capacity(rows.len());
    for r in &rows {
        let name = match (uuid::Uuid::parse_str(&r.key), group_by) {
            (Ok(id), UsageGroupBy::Device) => names.device(id).await,
            (Ok(id), UsageGroupBy::User) => names.user(id).await,
            (Ok(id), UsageGroupBy::Node) => names.node(id).await,
            (Ok(id), UsageGroupBy::Group) => names.node_group(id).await,
            (Err(_), _) => r.key.clone(),
        };
        lines.push(vec![
            when(Some(r.bucket_start)),
            name,
            bytes(Some(r.bytes_up)),
            bytes(Some(r.bytes_down)),
        ]);
    }
    let by = args.by.to_uppercase();
    table(&["BUCKET", &by, "UP", "DOWN"], &lines);
    Ok(())
}

impl From<super::PageArgs> for Page {
    fn from(p: super::PageArgs) -> Page {
        Page {
            limit: p.limit,
            offset: p.offset,
        }
    }
}
