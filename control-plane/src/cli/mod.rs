//! The operator CLI: subcommands of the service binary that work on the database directly
//! (`DATABASE_URL`), recorded in the audit log as actor `cli`. Every change goes through the
//! same domain function as the admin API (`crate::domain`), so it is validated, audited and
//! announced to the gateways alike. This module holds the command line; `operate.rs` runs it.

mod operate;
mod output;
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
    /// Create a device; prints its token, connection links, QR code and subscription URL. The
    /// links use HTTVPS_CP_PUBLIC_GATEWAY, HTTVPS_CP_GATEWAY_CERT_SHA256 and
    /// HTTVPS_CP_GATEWAY_SNI; the URL HTTVPS_CP_PUBLIC_URL.
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
    /// Show a device's connection links and QR code again (needs the secret key the token was
    /// sealed with: HTTVPS_CP_SECRET_KEY or the key file).
    Link {
        id: Uuid,
        /// Do not print the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// Give a device a new token: the old one is refused at once and its sessions end on every
    /// gateway. Prints the new links.
    RotateToken {
        id: Uuid,
        /// Do not print the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// Show a device's subscription URL, or rotate or revoke it.
    Subscription {
        id: Uuid,
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
