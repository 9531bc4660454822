//! The operator CLI: subcommands of the service binary that work on the database directly
//! (`DATABASE_URL`), recorded in the audit log as actor `cli`. Every change goes through the
//! same domain function as the admin API (`crate::domain`), so it is validated, audited and
//! announced to the gateways alike. Things are named as an operator knows them (names, codes,
//! e-mail addresses, or ids; see `resolve.rs`); `--json` prints any result as JSON. This module
//! holds the command line; `operate.rs` runs it with `people.rs` (users, devices,
//! subscriptions, sessions), `pool.rs` (nodes, node groups, gateways) and `catalog.rs` (admins,
//! regions, plans, usage).

mod catalog;
mod operate;
mod output;
mod people;
mod pool;
mod resolve;
mod size;

use clap::{Parser, Subcommand};
use uuid::Uuid;

use crate::config::ServeConfig;

pub use operate::{refusal, run};
pub use size::parse_bytes;

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

    /// Print the result as JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

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
    /// Devices: create one and print its connection link and QR code; show, revoke, disable,
    /// enable, delete.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Subscriptions.
    #[command(subcommand)]
    Subscription(SubscriptionCmd),
    /// Sessions: list, show, end.
    #[command(subcommand)]
    Session(SessionCmd),
    /// Nodes of the Outline/Shadowsocks pool.
    #[command(subcommand)]
    Node(NodeCmd),
    /// Node groups and their members.
    #[command(subcommand)]
    NodeGroup(NodeGroupCmd),
    /// Gateways and their service tokens.
    #[command(subcommand)]
    Gateway(GatewayCmd),
    /// Usage reports.
    Usage(UsageArgs),
}

/// Which page of a list (as the admin API's `limit` and `offset`).
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct PageArgs {
    /// Most rows to show, 1 to 1000.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=1000))]
    pub limit: i64,
    /// Rows to skip.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    pub offset: i64,
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
    List(PageArgs),
    /// Change an admin's role, disable or enable them, or set a new password (from
    /// HTTVPS_ADMIN_PASSWORD or standard input; their tokens stop working).
    Update {
        /// Username or id.
        admin: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
        #[arg(long)]
        password: bool,
    },
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
    List(PageArgs),
    /// Change a region's code, name or coordinates.
    Update {
        /// Region code or id.
        region: String,
        #[arg(long)]
        code: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, allow_hyphen_values = true)]
        latitude: Option<f64>,
        #[arg(long, allow_hyphen_values = true)]
        longitude: Option<f64>,
    },
    /// Delete a region no plan allows (its nodes lose their region).
    Delete {
        /// Region code or id.
        region: String,
    },
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
    List(PageArgs),
    /// Show one plan.
    Show {
        /// Plan name or id.
        plan: String,
    },
    /// Change a plan; its subscriptions see the change at once.
    Update {
        /// Plan name or id.
        plan: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        device_limit: Option<i64>,
        #[arg(long)]
        session_limit: Option<i64>,
        /// Byte quota per period (`100GiB`), or `unlimited`.
        #[arg(long)]
        quota: Option<String>,
        /// none, daily, weekly, calendar_month, rolling_30d.
        #[arg(long)]
        reset: Option<String>,
        /// Days a subscription lasts, or `none` for no expiry.
        #[arg(long)]
        days: Option<String>,
        /// Allowed region codes, comma-separated; an empty value allows all.
        #[arg(long, value_delimiter = ',')]
        regions: Option<Vec<String>>,
    },
    /// Delete a plan no subscription refers to.
    Delete {
        /// Plan name or id.
        plan: String,
    },
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
    List(PageArgs),
    /// Show a user with their subscriptions, quota and devices.
    Show {
        /// User name, e-mail address or id.
        user: String,
    },
    /// Subscribe a user to a plan (also how a user changes plan: cancel the old subscription,
    /// or queue the new one after it).
    Subscribe {
        /// User name, e-mail address or id.
        #[arg(long)]
        user: String,
        /// Plan name or id.
        #[arg(long)]
        plan: String,
        #[arg(long)]
        on_hold: bool,
        /// Start when the current subscription ends.
        #[arg(long)]
        queued: bool,
    },
    /// Start the quota period of the user's subscription in force afresh.
    ResetUsage {
        /// User name, e-mail address or id.
        user: String,
    },
    /// Disable a user: their sessions end on every gateway.
    Disable {
        /// User name, e-mail address or id.
        user: String,
    },
    /// Enable a disabled user.
    Enable {
        /// User name, e-mail address or id.
        user: String,
    },
    /// Delete a user with their devices, subscriptions and sessions.
    Delete {
        /// User name, e-mail address or id.
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SubscriptionCmd {
    /// List a user's subscriptions, oldest first.
    List {
        /// User name, e-mail address or id.
        #[arg(long)]
        user: String,
    },
    /// Cancel a subscription; without a queued one to take over, the user's sessions end.
    Cancel { id: Uuid },
    /// Start a subscription's quota period afresh: usage so far no longer counts.
    ResetUsage { id: Uuid },
    /// Move an active subscription's end later.
    Extend {
        id: Uuid,
        /// Days to add (1 to 3650).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=3650))]
        days: i64,
    },
    /// Let more traffic through in the subscription's current quota period.
    AddTraffic {
        id: Uuid,
        /// How much: bytes, or with a unit (500MB, 10GiB, 1TB).
        #[arg(long)]
        traffic: String,
    },
    /// Move a subscription in force to another plan; its dates stay.
    ChangePlan {
        id: Uuid,
        /// The new plan's name or id.
        #[arg(long)]
        plan: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionCmd {
    /// List sessions, newest first.
    List {
        /// Only sessions that have not ended.
        #[arg(long)]
        live: bool,
        /// Only this user's (name, e-mail address or id).
        #[arg(long)]
        user: Option<String>,
        /// Only this device's (id, or name with --user).
        #[arg(long)]
        device: Option<String>,
        /// Only this node's (name or id).
        #[arg(long)]
        node: Option<String>,
        /// Only this gateway's (name or id).
        #[arg(long)]
        gateway: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one session.
    Show { id: Uuid },
    /// End a live session: its gateway closes it at once.
    #[command(visible_alias = "kill")]
    End { id: Uuid },
}

/// A device: its id, or its name with `--user`.
#[derive(Debug, clap::Args)]
pub struct DeviceRef {
    /// Device id, or its name (with --user).
    pub device: String,
    /// The device's user (name, e-mail address or id), to find the device by name.
    #[arg(long)]
    pub user: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DeviceCmd {
    /// Create a device; prints its token, connection links, QR code and subscription URL. The
    /// links use HTTVPS_CP_PUBLIC_GATEWAY, HTTVPS_CP_GATEWAY_CERT_SHA256 and
    /// HTTVPS_CP_GATEWAY_SNI; the URL HTTVPS_CP_PUBLIC_URL.
    Create {
        /// User name, e-mail address or id.
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        /// Do not print the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    List {
        /// User name, e-mail address or id.
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one device (never its token).
    Show(DeviceRef),
    /// Revoke a device for good: its sessions end on every gateway.
    Revoke(DeviceRef),
    /// Disable a device until it is enabled again: its sessions end on every gateway.
    Disable(DeviceRef),
    /// Enable a disabled device.
    Enable(DeviceRef),
    /// Delete a device: its sessions end on every gateway.
    Delete(DeviceRef),
    /// Show a device's connection links and QR code again (needs the secret key the token was
    /// sealed with: HTTVPS_CP_SECRET_KEY or the key file).
    Link {
        #[command(flatten)]
        device: DeviceRef,
        /// Do not print the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// Give a device a new token: the old one is refused at once and its sessions end on every
    /// gateway. Prints the new links.
    RotateToken {
        #[command(flatten)]
        device: DeviceRef,
        /// Do not print the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// Show a device's subscription URL, or rotate or revoke it.
    Subscription {
        #[command(flatten)]
        device: DeviceRef,
        /// Make a new URL; the old one stops working.
        #[arg(long, conflicts_with = "revoke")]
        rotate: bool,
        /// Remove the URL; it stops working.
        #[arg(long)]
        revoke: bool,
        /// Do not print the QR code.
        #[arg(long)]
        no_qr: bool,
    },
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
        /// Node groups (names or ids), comma-separated.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        #[arg(long, default_value_t = 100)]
        weight: i32,
        #[arg(long, default_value_t = 1000)]
        capacity: i32,
    },
    List(PageArgs),
    /// Show one node (never its secret) with its groups.
    Show {
        /// Node name or id.
        node: String,
    },
    /// Change a node's name, weight, capacity, status or region.
    Update {
        /// Node name or id.
        node: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        weight: Option<i64>,
        #[arg(long)]
        capacity: Option<i64>,
        /// active, draining (no new sessions) or disabled (not health-checked either).
        #[arg(long)]
        status: Option<String>,
        /// Region code, or `none`.
        #[arg(long)]
        region: Option<String>,
    },
    /// Delete a node (its live sessions are reassigned by their gateways).
    Delete {
        /// Node name or id.
        node: String,
    },
    /// A node's health history, newest first.
    Health {
        /// Node name or id.
        node: String,
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=1000))]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum NodeGroupCmd {
    /// Create a node group.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    List(PageArgs),
    /// Show a node group and its nodes.
    Show {
        /// Group name or id.
        group: String,
    },
    /// Rename a node group or change its description.
    Update {
        /// Group name or id.
        group: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a node group (its nodes stay, outside the group).
    Delete {
        /// Group name or id.
        group: String,
    },
    /// Put a node in a group.
    AddNode {
        /// Group name or id.
        group: String,
        /// Node name or id.
        node: String,
    },
    /// Take a node out of a group.
    RemoveNode {
        /// Group name or id.
        group: String,
        /// Node name or id.
        node: String,
    },
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
        /// Gateway name or id.
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 3600)]
        overlap_secs: i64,
        /// Address blocks the new token may be used from, comma-separated (default: anywhere).
        #[arg(long, value_delimiter = ',', value_parser = crate::http::client::parse_cidr)]
        allow_from: Vec<ipnet::IpNet>,
    },
    List(PageArgs),
    /// List a gateway's service tokens (never the tokens themselves).
    Tokens {
        /// Gateway name or id.
        gateway: String,
    },
    /// Revoke one of a gateway's tokens at once.
    RevokeToken {
        /// Gateway name or id.
        gateway: String,
        /// The token's id (from `gateway tokens`).
        token_id: Uuid,
    },
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
