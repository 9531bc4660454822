//! Running an operator command: each change through its domain function, each refusal turned
//! into a message once ([`refusal`]).

use super::output::{last_seen, print_credentials, print_links, say};
use std::io::Write;

use anyhow::{anyhow, Context};
use uuid::Uuid;

use super::{
    parse_bytes, AdminCmd, Cli, Command, DeviceCmd, GatewayCmd, NodeCmd, PlanCmd, RegionCmd,
    SessionCmd, SubscriptionCmd, UserCmd,
};
use crate::app::AppState;
use crate::config::ServeConfig;
use crate::domain::nodes::ImportInput;
use crate::domain::plans::PlanInput;
use crate::domain::regions::RegionInput;
use crate::domain::subscriptions::PlanRef;
use crate::domain::{self, DomainError};
use crate::model::{now_ms, DeviceStatus, ResetStrategy, Role, UserStatus};
use crate::store::{Store, StoreError, StoreOptions, UsageGroupBy, UsageQuery, UserUpdate};

const ACTOR: &str = "cli";

/// Why an operator command failed: a refusal of the domain, or anything else (bad arguments,
/// I/O).
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::Domain(e.into())
    }
}

/// The operator's message for a refusal (the CLI's counterpart of the problem document).
pub fn refusal(e: DomainError) -> anyhow::Error {
    match e {
        DomainError::Invalid(msg) => anyhow!("invalid input: {msg}"),
        DomainError::NotFound(what) => anyhow!("{what} not found"),
        DomainError::Conflict(c) => anyhow!("refused: {c}"),
        DomainError::Forbidden(msg) => anyhow!("forbidden: {msg}"),
        e @ DomainError::SessionKilled => anyhow!("refused: {e}"),
        DomainError::Internal(msg) => anyhow!("internal error: {msg}"),
        DomainError::Store(e) => anyhow!(e).context("the database failed"),
    }
}

/// Runs the parsed command line. Operator commands announce what ends sessions (revocations,
/// kills) on the shared state `REDIS_URL` names, as the service does.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(ServeConfig::for_database(&cli.database_url)).await,
        Some(Command::Serve(config)) => serve(*config).await,
        Some(command) => {
            let store = Store::connect(&cli.database_url, &StoreOptions::default())
                .await
                .context("opening the database")?;
            store.migrate().await.context("migrating the database")?;
            let state =
                AppState::for_operator(ServeConfig::for_database(&cli.database_url), store)?;
            let result = operate(&state, command).await.map_err(|e| match e {
                CliError::Domain(e) => refusal(e),
                CliError::Other(e) => e,
            });
            state.store.close().await;
            result
        }
    }
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let running = crate::app::start(config, true).await?;
    tracing::info!(addr = %running.addr, "serving; Ctrl-C or SIGTERM to stop");
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("HTTVPS_ADMIN_PASSWORD") {
        return Ok(p);
    }
    eprint!("password: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn operate(state: &AppState, command: Command) -> Result<(), CliError> {
    let store = &state.store;
    match command {
        Command::Serve(_) => Err(anyhow!("serve is handled before the store is opened").into()),
        Command::Migrate => {
            say!("migrations applied ({:?})", store.backend());
            Ok(())
        }
        Command::Admin(AdminCmd::Create { username, role }) => {
            let role: Role = role.parse().map_err(|e: String| anyhow!(e))?;
            let admin =
                domain::admins::create(state, ACTOR, &username, read_password()?, role).await?;
            say!(
                "admin {} ({}) created: {}",
                admin.username,
                admin.role,
                admin.id
            );
            Ok(())
        }
        Command::Admin(AdminCmd::List) => {
            for a in store.list_admins().await? {
                say!(
                    "{}\t{}\t{}{}",
                    a.id,
                    a.username,
                    a.role,
                    if a.disabled { "\tdisabled" } else { "" }
                );
            }
            Ok(())
        }
        Command::Region(RegionCmd::Create {
            code,
            name,
            latitude,
            longitude,
        }) => {
            let input = RegionInput {
                code: &code,
                name: &name,
                latitude,
                longitude,
            };
            let r = domain::regions::create(state, ACTOR, &input).await?;
            say!("region {} created: {}", r.code, r.id);
            Ok(())
        }
        Command::Region(RegionCmd::List) => {
            for r in store.list_regions().await? {
                say!("{}\t{}\t{}", r.id, r.code, r.name);
            }
            Ok(())
        }
        Command::Plan(PlanCmd::Create {
            name,
            device_limit,
            session_limit,
            quota,
            reset,
            days,
            regions,
        }) => {
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
            say!("plan {} created: {}", p.name, p.id);
            Ok(())
        }
        Command::Plan(PlanCmd::List) => {
            for p in store.list_plans().await? {
                let quota = p.quota_bytes.map_or("unlimited".to_owned(), |q| {
                    format!("{q} bytes/{}", p.reset_strategy)
                });
                say!(
                    "{}\t{}\tdevices {}\tsessions {}\t{}",
                    p.id,
                    p.name,
                    p.device_limit,
                    p.session_limit,
                    quota
                );
            }
            Ok(())
        }
        Command::User(UserCmd::Create {
            name,
            email,
            plan,
            on_hold,
        }) => {
            let u = domain::users::create(state, ACTOR, &name, email.as_deref()).await?;
            say!("user {} created: {}", u.name, u.id);
            if let Some(plan) = plan {
                let (s, plan) = subscribe(state, u.id, &plan, on_hold, false).await?;
                say!("subscribed to {} ({})", plan.name, s.status);
            }
            Ok(())
        }
        Command::User(UserCmd::List) => {
            for u in store.list_users(1000, 0).await? {
                say!("{}\t{}\t{}", u.id, u.name, u.status);
            }
            Ok(())
        }
        Command::User(UserCmd::Subscribe {
            user,
            plan,
            on_hold,
            queued,
        }) => {
            let user = domain::users::find(state, &user).await?;
            let (s, plan) = subscribe(state, user.id, &plan, on_hold, queued).await?;
            say!("subscription {} ({}) to {}", s.id, s.status, plan.name);
            Ok(())
        }
        Command::Device(DeviceCmd::Create { user, name, no_qr }) => {
            let user = domain::users::find(state, &user).await?;
            let created = domain::devices::create(state, ACTOR, user.id, &name).await?;
            say!(
                "device {} created: {}",
                created.device.name,
                created.device.id
            );
            print_credentials(&created, no_qr)?;
            if let Some(url) = &created.subscription_url {
                say!("subscription URL: {url}");
            }
            Ok(())
        }
        Command::Device(DeviceCmd::Link { id, no_qr }) => {
            let shown = domain::devices::show_links(state, id).await?;
            say!("device {} ({})", shown.device.name, shown.device.id);
            Ok(print_links(&shown.links, no_qr)?)
        }
        Command::Device(DeviceCmd::RotateToken { id, no_qr }) => {
            let rotated = domain::devices::rotate_token(state, ACTOR, id).await?;
            say!(
                "device {} has a new token; the old one no longer works",
                rotated.device.id
            );
            Ok(print_credentials(&rotated, no_qr)?)
        }
        Command::Device(DeviceCmd::Subscription {
            id,
            rotate,
            revoke,
            no_qr,
        }) => {
            if revoke {
                domain::devices::revoke_subscription_url(state, ACTOR, id).await?;
                say!("the subscription URL of device {id} is revoked");
                return Ok(());
            }
            let url = if rotate {
                domain::devices::rotate_subscription_url(state, ACTOR, id).await?
            } else {
                domain::devices::show_subscription_url(state, id).await?
            };
            say!("subscription URL: {url}");
            if !no_qr {
                say!(
                    "{}",
                    crate::link::qr_terminal(&url).context("drawing the QR code")?
                );
            }
            Ok(())
        }
        Command::Device(DeviceCmd::List { user }) => {
            let user = match user {
                Some(u) => Some(domain::users::find(state, &u).await?.id),
                None => None,
            };
            for d in store.list_devices(user).await? {
                say!(
                    "{}\t{}\t{}\t{}\tlast seen {}",
                    d.id,
                    d.user_id,
                    d.name,
                    d.status,
                    last_seen(d.last_seen_at)
                );
            }
            Ok(())
        }
        Command::Device(DeviceCmd::Revoke { id }) => {
            let d = domain::devices::set_status(state, ACTOR, id, DeviceStatus::Revoked).await?;
            say!("device {} revoked", d.id);
            Ok(())
        }
        Command::Device(DeviceCmd::Disable { id }) => {
            let d = domain::devices::set_status(state, ACTOR, id, DeviceStatus::Disabled).await?;
            say!("device {} disabled", d.id);
            Ok(())
        }
        Command::Device(DeviceCmd::Enable { id }) => {
            let d = domain::devices::set_status(state, ACTOR, id, DeviceStatus::Active).await?;
            say!("device {} enabled", d.id);
            Ok(())
        }
        Command::Device(DeviceCmd::Delete { id }) => {
            domain::devices::delete(state, ACTOR, id).await?;
            say!("device {id} deleted");
            Ok(())
        }
        Command::User(UserCmd::Disable { user }) => {
            set_user_status(state, &user, UserStatus::Disabled).await
        }
        Command::User(UserCmd::Enable { user }) => {
            set_user_status(state, &user, UserStatus::Active).await
        }
        Command::User(UserCmd::Delete { user }) => {
            let id = domain::users::find(state, &user).await?.id;
            domain::users::delete(state, ACTOR, id).await?;
            say!("user {id} deleted");
            Ok(())
        }
        Command::Subscription(SubscriptionCmd::Cancel { id }) => {
            let s = domain::subscriptions::cancel(state, ACTOR, id).await?;
            say!("subscription {} {}", s.id, s.status);
            Ok(())
        }
        Command::Session(SessionCmd::End { id }) => {
            let s = domain::sessions::kill(state, ACTOR, id).await?;
            say!("session {} ends", s.id);
            Ok(())
        }
        Command::Node(NodeCmd::Import {
            access_key,
            name,
            region,
            weight,
            capacity,
        }) => {
            let input = ImportInput {
                access_key,
                name,
                region,
                groups: Vec::new(),
                weight: Some(weight.into()),
                capacity: Some(capacity.into()),
            };
            let n = domain::nodes::import(state, ACTOR, input).await?;
            say!(
                "node {} ({}:{} {}) added: {}",
                n.name,
                n.host,
                n.port,
                n.cipher,
                n.id
            );
            Ok(())
        }
        Command::Node(NodeCmd::List) => {
            for n in store.list_nodes().await? {
                say!(
                    "{}\t{}\t{}:{}\t{}\t{}\t{}",
                    n.id,
                    n.name,
                    n.host,
                    n.port,
                    n.cipher,
                    n.status,
                    n.health
                );
            }
            Ok(())
        }
        Command::Gateway(GatewayCmd::Create { name, allow_from }) => {
            let (g, _, secret) = domain::gateways::create(state, ACTOR, &name, &allow_from).await?;
            say!("gateway {} registered: {}", g.name, g.id);
            say!("service token (shown once): {secret}");
            Ok(())
        }
        Command::Gateway(GatewayCmd::Rotate {
            name,
            overlap_secs,
            allow_from,
        }) => {
            let g = domain::gateways::by_name(state, &name).await?;
            let (_, secret) =
                domain::gateways::rotate(state, ACTOR, g.id, overlap_secs, &allow_from).await?;
            say!("new service token for {} (shown once; old tokens work for {overlap_secs} s more): {secret}", g.name);
            Ok(())
        }
        Command::Gateway(GatewayCmd::List) => {
            for g in store.list_gateways().await? {
                say!(
                    "{}\t{}\tlast seen {}",
                    g.id,
                    g.name,
                    last_seen(g.last_seen_at)
                );
            }
            Ok(())
        }
        Command::Usage(args) => {
            let group_by = match args.by.as_str() {
                "device" => UsageGroupBy::Device,
                "user" => UsageGroupBy::User,
                "node" => UsageGroupBy::Node,
                "group" => UsageGroupBy::Group,
                other => {
                    return Err(
                        anyhow!("--by must be device, user, node or group, not {other:?}").into(),
                    )
                }
            };
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
            say!("bucket_start\t{}\tbytes_up\tbytes_down", args.by);
            for r in rows {
                say!(
                    "{}\t{}\t{}\t{}",
                    r.bucket_start,
                    r.key,
                    r.bytes_up,
                    r.bytes_down
                );
            }
            Ok(())
        }
    }
}

async fn subscribe(
    state: &AppState,
    user: Uuid,
    plan: &str,
    on_hold: bool,
    queued: bool,
) -> Result<(crate::model::Subscription, crate::model::Plan), DomainError> {
    let plan = Some(PlanRef::Name(plan));
    domain::subscriptions::create(state, ACTOR, user, plan, on_hold, queued).await
}

async fn set_user_status(state: &AppState, user: &str, status: UserStatus) -> Result<(), CliError> {
    let id = domain::users::find(state, user).await?.id;
    let update = UserUpdate {
        name: None,
        email: None,
        status: Some(status),
    };
    let u = domain::users::update(state, ACTOR, id, &update).await?;
    say!("user {} {}", u.name, u.status);
    Ok(())
}
