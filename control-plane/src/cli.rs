//! The operator CLI: subcommands of the service binary that work on the database directly
//! (`DATABASE_URL`), recorded in the audit log as actor `cli`.

use std::io::Write;

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::{password, token};
use crate::config::ServeConfig;
use crate::domain;
use crate::model::{now_ms, DeviceStatus, ResetStrategy, Role, UserStatus};
use crate::pool::parse_access_key;
use crate::store::{
    NewDevice, NewNode, NewPlan, NewRegion, NewSubscription, Store, StoreOptions, UsageGroupBy,
    UsageQuery, UserUpdate,
};

const ACTOR: &str = "cli";

/// httvps control plane.
#[derive(Debug, Parser)]
#[command(name = "httvps-control-plane", version, about)]
pub struct Cli {
    /// `postgres://...` or `sqlite:path` (for the operator commands; `serve` has its own flag).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite:httvps-control-plane.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the REST service (the default).
    Serve(Box<ServeConfig>),
    /// Apply the database migrations and exit.
    Migrate,
    /// Admin accounts.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Regions.
    #[command(subcommand)]
    Region(RegionCmd),
    /// Plans.
    #[command(subcommand)]
    Plan(PlanCmd),
    /// Users and their subscriptions.
    #[command(subcommand)]
    User(UserCmd),
    /// Devices: create one and print its connection link and QR code; revoke, disable, enable,
    /// delete.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Subscriptions.
    #[command(subcommand)]
    Subscription(SubscriptionCmd),
    /// Sessions.
    #[command(subcommand)]
    Session(SessionCmd),
    /// Nodes of the Outline/Shadowsocks pool.
    #[command(subcommand)]
    Node(NodeCmd),
    /// Gateways and their service tokens.
    #[command(subcommand)]
    Gateway(GatewayCmd),
    /// Usage reports.
    Usage(UsageArgs),
}

#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    /// Create an admin (the password comes from HTTVPS_ADMIN_PASSWORD or standard input).
    Create {
        #[arg(long)]
        username: String,
        #[arg(long, default_value = "admin")]
        role: String,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum RegionCmd {
    Create {
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long, allow_hyphen_values = true)]
        latitude: Option<f64>,
        #[arg(long, allow_hyphen_values = true)]
        longitude: Option<f64>,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum PlanCmd {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 5)]
        device_limit: i32,
        #[arg(long, default_value_t = 3)]
        session_limit: i32,
        /// Byte quota per period, e.g. `100GiB`, `500MB`, `0` (none = unlimited).
        #[arg(long)]
        quota: Option<String>,
        /// none, daily, weekly, calendar_month, rolling_30d.
        #[arg(long, default_value = "calendar_month")]
        reset: String,
        /// Days a subscription lasts once started (omit for no expiry).
        #[arg(long)]
        days: Option<i32>,
        /// Allowed region codes, comma-separated (omit for all).
        #[arg(long, value_delimiter = ',')]
        regions: Vec<String>,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// Subscribe the user to this plan (by name) right away.
        #[arg(long)]
        plan: Option<String>,
        /// Start the subscription's clock at the first connection.
        #[arg(long)]
        on_hold: bool,
    },
    List,
    /// Subscribe a user to a plan.
    Subscribe {
        #[arg(long)]
        user: String,
        #[arg(long)]
        plan: String,
        #[arg(long)]
        on_hold: bool,
        /// Start when the current subscription ends.
        #[arg(long)]
        queued: bool,
    },
    /// Disable a user: their sessions end on every gateway.
    Disable {
        /// User name or id.
        user: String,
    },
    /// Enable a disabled user.
    Enable {
        /// User name or id.
        user: String,
    },
    /// Delete a user with their devices, subscriptions and sessions.
    Delete {
        /// User name or id.
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SubscriptionCmd {
    /// Cancel a subscription; without a queued one to take over, the user's sessions end.
    Cancel { id: Uuid },
}

#[derive(Debug, Subcommand)]
pub enum SessionCmd {
    /// End a live session: its gateway closes it at once.
    End { id: Uuid },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCmd {
    /// Create a device; prints its token (once), connection link and QR code. The link uses
    /// HTTVPS_CP_PUBLIC_GATEWAY, HTTVPS_CP_GATEWAY_CERT_SHA256 and HTTVPS_CP_GATEWAY_SNI.
    Create {
        /// User name or id.
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        /// Do not print the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    List {
        /// User name or id.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a device for good: its sessions end on every gateway.
    Revoke { id: Uuid },
    /// Disable a device until it is enabled again: its sessions end on every gateway.
    Disable { id: Uuid },
    /// Enable a disabled device.
    Enable { id: Uuid },
    /// Delete a device: its sessions end on every gateway.
    Delete { id: Uuid },
}

#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    /// Add a node from an Outline access key (`ss://...`).
    Import {
        access_key: String,
        #[arg(long)]
        name: Option<String>,
        /// Region code.
        #[arg(long)]
        region: Option<String>,
        #[arg(long, default_value_t = 100)]
        weight: i32,
        #[arg(long, default_value_t = 1000)]
        capacity: i32,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum GatewayCmd {
    /// Register a gateway and print its service token (shown once).
    Create {
        #[arg(long)]
        name: String,
        /// Address blocks the token may be used from, comma-separated (default: anywhere).
        #[arg(long, value_delimiter = ',', value_parser = crate::http::client::parse_cidr)]
        allow_from: Vec<ipnet::IpNet>,
    },
    /// Issue a new token; old ones keep working for the overlap.
    Rotate {
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 3600)]
        overlap_secs: i64,
        /// Address blocks the new token may be used from, comma-separated (default: anywhere).
        #[arg(long, value_delimiter = ',', value_parser = crate::http::client::parse_cidr)]
        allow_from: Vec<ipnet::IpNet>,
    },
    List,
}

#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    /// device, user, node or group.
    #[arg(long, default_value = "user")]
    pub by: String,
    /// Days back from now.
    #[arg(long, default_value_t = 7)]
    pub days: i64,
    /// Per hour instead of per day.
    #[arg(long)]
    pub hourly: bool,
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
            let result = operate(&state, command).await;
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

/// Parses `100GiB`, `1.5TB`, `500MB`, `1024`: binary (KiB, MiB, GiB, TiB) and decimal (KB, MB,
/// GB, TB) units.
pub fn parse_bytes(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("{s:?} is not a size like 100GiB"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        other => bail!("unknown size unit {other:?}; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"),
    };
    let bytes = value * factor;
    if !(0.0..=9.0e18).contains(&bytes) {
        bail!("{s:?} is out of range");
    }
    Ok(bytes.round() as i64)
}

async fn user_id(store: &Store, name_or_id: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = Uuid::parse_str(name_or_id) {
        return Ok(store.get_user(id).await?.id);
    }
    Ok(store
        .user_by_name(name_or_id)
        .await
        .with_context(|| format!("no user {name_or_id:?}"))?
        .id)
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

async fn operate(state: &AppState, command: Command) -> anyhow::Result<()> {
    let store = &state.store;
    match command {
        Command::Serve(_) => unreachable_serve(),
        Command::Migrate => {
            println!("migrations applied ({:?})", store.backend());
            Ok(())
        }
        Command::Admin(AdminCmd::Create { username, role }) => {
            let role: Role = role.parse().map_err(|e: String| anyhow!(e))?;
            let hash = password::hash(&read_password()?)?;
            let admin = store.create_admin(ACTOR, &username, &hash, role).await?;
            println!(
                "admin {} ({}) created: {}",
                admin.username, admin.role, admin.id
            );
            Ok(())
        }
        Command::Admin(AdminCmd::List) => {
            for a in store.list_admins().await? {
                println!(
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
            let r = store
                .create_region(
                    ACTOR,
                    &NewRegion {
                        code,
                        name,
                        latitude,
                        longitude,
                    },
                )
                .await?;
            println!("region {} created: {}", r.code, r.id);
            Ok(())
        }
        Command::Region(RegionCmd::List) => {
            for r in store.list_regions().await? {
                println!("{}\t{}\t{}", r.id, r.code, r.name);
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
            let quota_bytes = quota
                .map(|q| parse_bytes(&q))
                .transpose()?
                .filter(|q| *q > 0);
            let reset_strategy: ResetStrategy = reset.parse().map_err(|e: String| anyhow!(e))?;
            let mut region_ids = Vec::new();
            for code in regions.iter().filter(|c| !c.is_empty()) {
                region_ids.push(
                    store
                        .region_by_code(code)
                        .await
                        .with_context(|| format!("no region {code:?}"))?
                        .id,
                );
            }
            let p = store
                .create_plan(
                    ACTOR,
                    &NewPlan {
                        name,
                        device_limit,
                        session_limit,
                        quota_bytes,
                        reset_strategy,
                        duration_days: days,
                        allowed_regions: region_ids,
                    },
                )
                .await?;
            println!("plan {} created: {}", p.name, p.id);
            Ok(())
        }
        Command::Plan(PlanCmd::List) => {
            for p in store.list_plans().await? {
                let quota = p.quota_bytes.map_or("unlimited".to_owned(), |q| {
                    format!("{q} bytes/{}", p.reset_strategy)
                });
                println!(
                    "{}\t{}\tdevices {}\tsessions {}\t{}",
                    p.id, p.name, p.device_limit, p.session_limit, quota
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
            let u = store.create_user(ACTOR, &name, email.as_deref()).await?;
            println!("user {} created: {}", u.name, u.id);
            if let Some(plan) = plan {
                let plan = store
                    .plan_by_name(&plan)
                    .await
                    .with_context(|| format!("no plan {plan:?}"))?;
                let s = store
                    .create_subscription(
                        ACTOR,
                        u.id,
                        &NewSubscription {
                            plan_id: plan.id,
                            on_hold,
                            queued: false,
                        },
                    )
                    .await?;
                println!("subscribed to {} ({})", plan.name, s.status);
            }
            Ok(())
        }
        Command::User(UserCmd::List) => {
            for u in store.list_users(1000, 0).await? {
                println!("{}\t{}\t{}", u.id, u.name, u.status);
            }
            Ok(())
        }
        Command::User(UserCmd::Subscribe {
            user,
            plan,
            on_hold,
            queued,
        }) => {
            let user = user_id(store, &user).await?;
            let plan = store
                .plan_by_name(&plan)
                .await
                .with_context(|| format!("no plan {plan:?}"))?;
            let s = store
                .create_subscription(
                    ACTOR,
                    user,
                    &NewSubscription {
                        plan_id: plan.id,
                        on_hold,
                        queued,
                    },
                )
                .await?;
            println!("subscription {} ({}) to {}", s.id, s.status, plan.name);
            Ok(())
        }
        Command::Device(DeviceCmd::Create { user, name, no_qr }) => {
            let user = user_id(store, &user).await?;
            let config = &state.config;
            crate::link::check_config(config)?;
            let secret = token::generate();
            let device = store
                .create_device(
                    ACTOR,
                    &NewDevice {
                        user_id: user,
                        name: name.clone(),
                        token_hash: token::hash(&secret),
                    },
                )
                .await?;
            let link = crate::link::device_link(config, device.id, &secret, &name)?.to_string();
            println!("device {} created: {}", device.name, device.id);
            println!("token (shown once): {secret}");
            println!("connection link: {link}");
            if !no_qr {
                println!("{}", crate::link::qr_terminal(&link)?);
            }
            Ok(())
        }
        Command::Device(DeviceCmd::List { user }) => {
            let user = match user {
                Some(u) => Some(user_id(store, &u).await?),
                None => None,
            };
            for d in store.list_devices(user).await? {
                println!(
                    "{}\t{}\t{}\t{}\tlast seen {:?}",
                    d.id, d.user_id, d.name, d.status, d.last_seen_at
                );
            }
            Ok(())
        }
        Command::Device(DeviceCmd::Revoke { id }) => {
            let d = domain::devices::set_status(state, ACTOR, id, DeviceStatus::Revoked).await?;
            println!("device {} revoked", d.id);
            Ok(())
        }
        Command::Device(DeviceCmd::Disable { id }) => {
            let d = domain::devices::set_status(state, ACTOR, id, DeviceStatus::Disabled).await?;
            println!("device {} disabled", d.id);
            Ok(())
        }
        Command::Device(DeviceCmd::Enable { id }) => {
            let d = domain::devices::set_status(state, ACTOR, id, DeviceStatus::Active).await?;
            println!("device {} enabled", d.id);
            Ok(())
        }
        Command::Device(DeviceCmd::Delete { id }) => {
            domain::devices::delete(state, ACTOR, id).await?;
            println!("device {id} deleted");
            Ok(())
        }
        Command::User(UserCmd::Disable { user }) => {
            set_user_status(state, &user, UserStatus::Disabled).await
        }
        Command::User(UserCmd::Enable { user }) => {
            set_user_status(state, &user, UserStatus::Active).await
        }
        Command::User(UserCmd::Delete { user }) => {
            let id = user_id(store, &user).await?;
            domain::users::delete(state, ACTOR, id).await?;
            println!("user {id} deleted");
            Ok(())
        }
        Command::Subscription(SubscriptionCmd::Cancel { id }) => {
            let s = domain::subscriptions::cancel(state, ACTOR, id).await?;
            println!("subscription {} {}", s.id, s.status);
            Ok(())
        }
        Command::Session(SessionCmd::End { id }) => {
            let s = domain::sessions::kill(state, ACTOR, id).await?;
            println!("session {} ends", s.id);
            Ok(())
        }
        Command::Node(NodeCmd::Import {
            access_key,
            name,
            region,
            weight,
            capacity,
        }) => {
            let key = parse_access_key(&access_key)?;
            let region_id = match region {
                Some(code) => Some(
                    store
                        .region_by_code(&code)
                        .await
                        .with_context(|| format!("no region {code:?}"))?
                        .id,
                ),
                None => None,
            };
            let endpoint = key.endpoint;
            let name = name.or(key.name).unwrap_or_else(|| endpoint.address());
            let n = store
                .create_node(
                    ACTOR,
                    &NewNode {
                        name,
                        host: endpoint.host.clone(),
                        port: endpoint.port,
                        cipher: endpoint.cipher.clone(),
                        secret: endpoint.secret.clone(),
                        region_id,
                        groups: vec![],
                        weight,
                        capacity,
                    },
                )
                .await?;
            println!(
                "node {} ({}:{} {}) added: {}",
                n.name, n.host, n.port, n.cipher, n.id
            );
            Ok(())
        }
        Command::Node(NodeCmd::List) => {
            for n in store.list_nodes().await? {
                println!(
                    "{}\t{}\t{}:{}\t{}\t{}\t{}",
                    n.id, n.name, n.host, n.port, n.cipher, n.status, n.health
                );
            }
            Ok(())
        }
        Command::Gateway(GatewayCmd::Create { name, allow_from }) => {
            let secret = token::generate();
            let (g, _) = store
                .create_gateway_allowing(ACTOR, &name, &token::hash(&secret), &allow_from)
                .await?;
            println!("gateway {} registered: {}", g.name, g.id);
            println!("service token (shown once): {secret}");
            Ok(())
        }
        Command::Gateway(GatewayCmd::Rotate {
            name,
            overlap_secs,
            allow_from,
        }) => {
            let g = store
                .gateway_by_name(&name)
                .await
                .with_context(|| format!("no gateway {name:?}"))?;
            let secret = token::generate();
            store
                .rotate_gateway_token_allowing(
                    ACTOR,
                    g.id,
                    &token::hash(&secret),
                    overlap_secs.max(0) * 1000,
                    &allow_from,
                )
                .await?;
            println!("new service token for {} (shown once; old tokens work for {overlap_secs} s more): {secret}", g.name);
            Ok(())
        }
        Command::Gateway(GatewayCmd::List) => {
            for g in store.list_gateways().await? {
                println!("{}\t{}\tlast seen {:?}", g.id, g.name, g.last_seen_at);
            }
            Ok(())
        }
        Command::Usage(args) => {
            let group_by = match args.by.as_str() {
                "device" => UsageGroupBy::Device,
                "user" => UsageGroupBy::User,
                "node" => UsageGroupBy::Node,
                "group" => UsageGroupBy::Group,
                other => bail!("--by must be device, user, node or group, not {other:?}"),
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
            println!("bucket_start\t{}\tbytes_up\tbytes_down", args.by);
            for r in rows {
                println!(
                    "{}\t{}\t{}\t{}",
                    r.bucket_start, r.key, r.bytes_up, r.bytes_down
                );
            }
            Ok(())
        }
    }
}

async fn set_user_status(state: &AppState, user: &str, status: UserStatus) -> anyhow::Result<()> {
    let id = user_id(&state.store, user).await?;
    let update = UserUpdate {
        name: None,
        email: None,
        status: Some(status),
    };
    let u = domain::users::update(state, ACTOR, id, &update).await?;
    println!("user {} {}", u.name, u.status);
    Ok(())
}

fn unreachable_serve() -> anyhow::Result<()> {
    bail!("serve is handled before the store is opened")
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("100GiB").unwrap(), 100 * 1024 * 1024 * 1024);
        assert_eq!(parse_bytes("1.5 GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_bytes("42").unwrap(), 42);
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("-1GB").is_err());
    }
}
