//! VPN mode (`--tun`, Linux): a TUN device whose packets the httvps-tun engine turns into
//! tunnel streams and datagram flows, the routes that send traffic into it, and the resolver
//! that points into it; all undone on exit.

mod device;
mod dns;
pub mod privilege;
mod routes;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use httvps_sdk::{ClientConfig, ConnectionState, Error, TargetAddr, TcpStream, UdpFlow};
use httvps_tun::{DnsRedirect, Engine, EngineConfig, Tunnel, TunnelUp};
use ipnet::IpNet;
use tokio::task::JoinHandle;

use crate::subscription::CurrentClient;

/// Everything `--tun` was given.
#[derive(Debug, Clone)]
pub struct TunSettings {
    pub name: String,
    pub address: (Ipv4Addr, u8),
    /// The tunnel's DNS address (what resolv.conf names).
    pub dns_address: IpAddr,
    /// Where its queries go, through the tunnel.
    pub resolver: SocketAddr,
    pub mtu: u16,
    pub ipv6: bool,
    pub routes: Vec<IpNet>,
    pub exclude: Vec<IpNet>,
    /// The resolver file to point at the tunnel; `None`: leave the system's DNS alone.
    pub resolv_conf: Option<PathBuf>,
}

/// The IPv6 address of the TUN when IPv6 is carried (a unique local address).
const TUN_IPV6: (Ipv6Addr, u8) = (Ipv6Addr::new(0xfd68, 0x7476, 0x7073, 0, 0, 0, 0, 1), 64);

/// Replaces gateway host names by their addresses (keeping the name for TLS and `Host`), so
/// reconnecting never needs the resolver that points into the tunnel; returns the addresses,
/// which must stay outside it.
pub async fn pin_gateways(config: &mut ClientConfig) -> anyhow::Result<Vec<IpAddr>> {
    let mut pinned = Vec::new();
    let mut addresses = Vec::new();
    for gateway in config.gateways.drain(..) {
        let ips = match gateway.host.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => device::resolve(&gateway.host, gateway.port).await?,
        };
        for ip in ips {
            let mut endpoint = gateway.clone();
            endpoint.server_name = Some(gateway.server_name().to_owned());
            endpoint.host = ip.to_string();
            pinned.push(endpoint);
            if !addresses.contains(&ip) {
                addresses.push(ip);
            }
        }
    }
    config.gateways = pinned;
    Ok(addresses)
}

/// The running VPN mode.
#[derive(Debug)]
pub struct Tun {
    // Field order is teardown order: stop pumping, then the engine, then routes and DNS.
    pumps: device::Pumps,
    engine: Engine,
    follow: JoinHandle<()>,
    routes: routes::RouteGuard,
    resolver: Option<dns::ResolverGuard>,
}

impl Tun {
    /// Creates the device, starts the engine on `current`, routes traffic in and points the
    /// resolver at it. Everything set up so far is undone when a step fails.
    pub async fn up(
        settings: &TunSettings,
        gateways: &[IpAddr],
        current: CurrentClient,
    ) -> anyhow::Result<Tun> {
        let device = device::create(&device::DeviceSettings {
            name: settings.name.clone(),
            ipv4: settings.address,
            ipv6: settings.ipv6.then_some(TUN_IPV6),
            mtu: settings.mtu,
        })?;
        let config = EngineConfig {
            mtu: settings.mtu,
            carry_ipv6: settings.ipv6,
            dns: Some(DnsRedirect {
                address: settings.dns_address,
                resolver: settings.resolver,
            }),
            ..EngineConfig::default()
        };
        let (engine, source) = Engine::start(config, ClientTunnel(current.clone()))
            .context("starting the packet engine")?;
        let follow = follow_status(current, engine.tunnel_up().clone());
        let pumps = device::pump(device, settings.mtu, engine.sink(), source);
        let mut bypass: Vec<IpNet> = gateways.iter().map(|ip| IpNet::from(*ip)).collect();
        bypass.extend(settings.exclude.iter().copied());
        let routes = routes::RouteGuard::install(&routes::RoutePlan {
            tun: settings.name.clone(),
            bypass,
            include: settings.routes.clone(),
        })?;
        let resolver = match &settings.resolv_conf {
            Some(path) => Some(dns::ResolverGuard::install(path, settings.dns_address)?),
            None => None,
        };
        Ok(Tun {
            pumps,
            engine,
            follow,
            routes,
            resolver,
        })
    }

    /// Undoes everything: the resolver first (no query goes to a dead address), then the
    /// routes, then the device.
    pub fn down(mut self) -> anyhow::Result<()> {
        let dns = self
            .resolver
            .as_mut()
            .map_or(Ok(()), dns::ResolverGuard::restore);
        let routes = self.routes.restore();
        self.follow.abort();
        drop(self.pumps);
        drop(self.engine);
        dns.and(routes)
    }
}

/// Keeps the kill switch in step with whichever client is current (a subscription refresh may
/// replace it).
fn follow_status(current: CurrentClient, up: TunnelUp) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut clients = current.watch();
        loop {
            let client = clients.borrow_and_update().clone();
            let mut status = client.watch_status();
            loop {
                up.set(matches!(
                    status.borrow_and_update().state,
                    ConnectionState::Connected
                ));
                tokio::select! {
                    changed = status.changed() => if changed.is_err() {
                        // This client is gone: down until the next one.
                        up.set(false);
                        if clients.changed().await.is_err() {
                            return;
                        }
                        break;
                    },
                    replaced = clients.changed() => {
                        if replaced.is_err() {
                            up.set(false);
                            return;
                        }
                        break;
                    }
                }
            }
        }
    })
}

/// Flows open on the current client.
struct ClientTunnel(CurrentClient);

impl Tunnel for ClientTunnel {
    fn open_tcp(
        &self,
        target: TargetAddr,
    ) -> impl Future<Output = Result<TcpStream, Error>> + Send {
        let client = self.0.get();
        async move { client.open_tcp(target).await }
    }

    fn open_udp(&self, target: TargetAddr) -> impl Future<Output = Result<UdpFlow, Error>> + Send {
        let client = self.0.get();
        async move { client.open_udp(target).await }
    }
}
