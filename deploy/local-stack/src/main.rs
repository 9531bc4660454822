//! `httvps-local-stack`: the whole stack on one machine. Prints the demo device's connection
//! link and the command that starts `httvps-client` with it.

use std::path::PathBuf;

use clap::Parser;
use httvps_local_stack::{LocalStack, StackOptions};

/// Runs the control plane (SQLite), a gateway (self-signed certificate) and a Shadowsocks pool
/// node on this machine, with a demo device.
#[derive(Debug, Parser)]
#[command(name = "httvps-local-stack", version, about)]
struct Args {
    /// Where the SQLite database lives.
    #[arg(long, default_value = ".httvps-local")]
    data_dir: PathBuf,
    /// Control plane (REST API and /docs).
    #[arg(long, default_value = "127.0.0.1:8080")]
    control_plane: std::net::SocketAddr,
    /// Gateway (TLS + WebSocket).
    #[arg(long, default_value = "127.0.0.1:8443")]
    gateway: std::net::SocketAddr,
    /// Let streams reach loopback and private addresses (e.g. a web server on this machine).
    #[arg(long)]
    allow_private_targets: bool,
}

/// mimalloc keeps freed buffers for reuse; the system allocator handed large relay buffers back
/// to the OS and faulted them in again (16-stream throughput +10% in the compare benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let database = args.data_dir.join("control-plane.db");
    let options = StackOptions {
        data_dir: args.data_dir,
        control_plane_listen: args.control_plane,
        gateway_listen: args.gateway,
        allow_private_targets: args.allow_private_targets,
        ..StackOptions::default()
    };
    let stack = LocalStack::start(options).await?;
    let gateway = stack.gateway().map(|g| (g.local_addr(), g.fingerprint()));
    let termination = Termination::install()?;
    println!("httvps is running on this machine:");
    println!(
        "  control plane   http://{}  (API docs: http://{}/docs)",
        stack.control_plane.addr, stack.control_plane.addr
    );
    if let Some((addr, fp)) = &gateway {
        println!("  gateway         wss://{addr}  (self-signed, SHA-256 {fp})");
    }
    println!(
        "  pool node       Shadowsocks on {} (embedded)",
        stack.node_addr
    );
    println!();
    println!("demo device {} connection link:", stack.device_id);
    println!("  {}", stack.link);
    println!();
    println!("start the local proxy in another terminal:");
    println!(
        "  cargo run --release -p httvps-client -- --link '{}'",
        stack.link
    );
    println!("then:");
    println!("  curl --socks5-hostname 127.0.0.1:1080 https://example.com/");
    println!();
    println!("an admin for the API and /docs (the password is read from standard input):");
    println!(
        "  {} --database-url sqlite:{} admin create --username admin",
        control_plane_command(),
        database.display()
    );
    println!();
    println!("Ctrl-C (or SIGTERM) stops everything.");
    termination.wait().await?;
    println!("stopping");
    stack.stop().await;
    Ok(())
}

/// The control-plane binary built next to this one (`cargo build --release` builds both), else
/// the release build's `cargo run`.
fn control_plane_command() -> String {
    let sibling = std::env::current_exe().ok().and_then(|exe| {
        let path = exe.with_file_name(format!(
            "httvps-control-plane{}",
            std::env::consts::EXE_SUFFIX
        ));
        path.is_file().then_some(path)
    });
    match sibling {
        Some(path) => path.display().to_string(),
        None => "cargo run --release -p httvps-control-plane --".into(),
    }
}

/// SIGINT (Ctrl-C) or SIGTERM (`kill`, service managers, containers): both stop the stack
/// gracefully, draining the gateway's sessions. Installed before the banner says so: a signal
/// sent right after it must not find the default action (killed) still in place.
#[cfg(unix)]
struct Termination {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Termination {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Termination {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn wait(mut self) -> std::io::Result<()> {
        tokio::select! {
            _ = self.interrupt.recv() => Ok(()),
            _ = self.terminate.recv() => Ok(()),
        }
    }
}

#[cfg(not(unix))]
struct Termination;

#[cfg(not(unix))]
impl Termination {
    fn install() -> std::io::Result<Self> {
        Ok(Termination)
    }

    async fn wait(self) -> std::io::Result<()> {
        tokio::signal::ctrl_c().await
    }
}
