//! `httvps-client`: a local SOCKS5 proxy (CONNECT and UDP ASSOCIATE) and HTTP proxy (CONNECT and
//! plain requests) on loopback that carry applications' traffic through httvps.

mod accept;
mod config;
mod http_proxy;
mod relay;
mod socks5;
mod subscription;
mod tun;

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use httvps_sdk::{Client, ClientStatus, ConnectionState};
use tokio::net::TcpListener;

use crate::config::Args;

/// mimalloc keeps freed buffers for reuse; the system allocator handed large relay buffers back
/// to the OS and faulted them in again (16-stream throughput +10% in the compare benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: not in a journal, a container log or a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // Before anything is printed: a supervisor may send SIGTERM as soon as it sees output.
    let shutdown = Shutdown::install().context("installing the signal handlers")?;
    if args.tun {
        // Before anything else: without the capability nothing below can work.
        tun::privilege::require_net_admin()?;
    }
    let settings = args.resolve().await?;
    if let Some(tun) = settings.tun.clone() {
        return run_tun(settings, tun, shutdown).await;
    }
    let first_attempt = settings.client.connect_timeout + Duration::from_secs(1);
    // Never gives up: an unreachable gateway or a refused device is shown and retried.
    let client = Client::start(settings.client.clone()).context("starting the client")?;
    let current = subscription::CurrentClient::new(client.clone());
    let socks = TcpListener::bind(settings.socks)
        .await
        .with_context(|| format!("listening on {}", settings.socks))?;
    let http = match settings.http {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?,
        ),
        None => None,
    };
    let http_addr = http.as_ref().map(TcpListener::local_addr).transpose()?;
    // The proxies serve from now on (at once with a failure while the client is down); the
    // status lines start with the first attempt's outcome, then the proxies' addresses.
    tokio::spawn(socks5::serve(socks, current.clone()));
    if let Some(http) = http {
        tokio::spawn(http_proxy::serve(http, current.clone()));
    }
    let first = client.settled(first_attempt).await;
    print_status(&first);
    println!(
        "SOCKS5 proxy on {} (curl --socks5-hostname {} ...)",
        settings.socks, settings.socks
    );
    if let Some(addr) = http_addr {
        println!("HTTP proxy on {addr}");
    }
    tokio::spawn(status_lines(current.watch(), first));
    if let Some((sub, links)) = settings.subscription {
        let refresh = subscription::refresh(sub, links, settings.client, current.clone());
        tokio::spawn(refresh);
    }
    shutdown.wait().await;
    println!("shutting down");
    current.get().close().await;
    Ok(())
}

/// VPN mode: the client, the TUN device and its routes and resolver until a signal, then
/// everything restored.
async fn run_tun(
    mut settings: config::Settings,
    tun_settings: tun::TunSettings,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    // Resolved now, while the system resolver still answers outside the tunnel.
    let gateways = tun::pin_gateways(&mut settings.client).await?;
    if settings.subscription.is_some() {
        tracing::warn!(
            "--tun with --subscription: gateways a refreshed list adds are reached through \
             the routes in place (the ones at start stay outside the tunnel)"
        );
    }
    let first_attempt = settings.client.connect_timeout + Duration::from_secs(1);
    let client = Client::start(settings.client.clone()).context("starting the client")?;
    let current = subscription::CurrentClient::new(client.clone());
    let vpn = tun::Tun::up(&tun_settings, &gateways, current.clone()).await?;
    let first = client.settled(first_attempt).await;
    print_status(&first);
    println!(
        "TUN {} up: {}, DNS {} -> {} through the tunnel",
        tun_settings.name,
        if tun_settings.routes.is_empty() {
            "all traffic".to_string()
        } else {
            format!(
                "routes {}",
                tun_settings
                    .routes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        },
        tun_settings.dns_address,
        tun_settings.resolver
    );
    tokio::spawn(status_lines(current.watch(), first));
    if let Some((sub, links)) = settings.subscription {
        tokio::spawn(subscription::refresh(
            sub,
            links,
            settings.client,
            current.clone(),
        ));
    }
    shutdown.wait().await;
    println!("shutting down");
    let restored = vpn.down();
    current.get().close().await;
    restored.context("restoring routes and DNS settings")?;
    println!("routes and DNS settings restored");
    Ok(())
}

fn print_status(s: &ClientStatus) {
    match &s.state {
        ConnectionState::Connected => println!(
            "connected: gateway {} session {}{}",
            s.gateway.as_deref().unwrap_or("?"),
            s.session_id.as_deref().unwrap_or("?"),
            s.rtt
                .map(|r| format!(" rtt {:.1} ms", r.as_secs_f64() * 1e3))
                .unwrap_or_default()
        ),
        ConnectionState::Reconnecting => println!("reconnecting..."),
        ConnectionState::Connecting => println!("connecting..."),
        ConnectionState::Down(outage) => println!("down: {outage}"),
        ConnectionState::Closed => println!("closed"),
    }
}

/// A status line at every change of state or session (each failed attempt, with its reason and
/// the wait before the next), and the RTT every minute; of the current client (a subscription
/// refresh may replace it). `printed` is the status already shown.
async fn status_lines(mut current: tokio::sync::watch::Receiver<Client>, printed: ClientStatus) {
    let mut client = current.borrow_and_update().clone();
    let mut watch = client.watch_status();
    let mut last = printed;
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.tick().await;
    loop {
        let now = watch.borrow_and_update().clone();
        if now.state != last.state || now.session_id != last.session_id {
            print_status(&now);
        }
        last = now;
        tokio::select! {
            changed = watch.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            replaced = current.changed() => {
                if replaced.is_err() {
                    return;
                }
                // The new client's status is printed at the top of the loop.
                client = current.borrow_and_update().clone();
                watch = client.watch_status();
            }
            _ = tick.tick() => print_status(&client.status()),
        }
    }
}

/// Ctrl-C (SIGINT), or SIGTERM from a service manager or a container runtime (PID 1 in an
/// image), caught from the moment `install` returns.
struct Shutdown {
    #[cfg(unix)]
    signals: [tokio::signal::unix::Signal; 2],
}

impl Shutdown {
    fn install() -> std::io::Result<Shutdown> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Shutdown {
                signals: [
                    signal(SignalKind::interrupt())?,
                    signal(SignalKind::terminate())?,
                ],
            })
        }
        #[cfg(not(unix))]
        Ok(Shutdown {})
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            let [mut interrupt, mut terminate] = self.signals;
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
