//! The paths under test, each a chain of separate processes ending at the one pool node
//! (`ssserver`), which then fetches from nginx:
//!
//! - `direct`: curl → nginx (the ceiling of this machine);
//! - `ss-alone`: curl → sslocal → ssserver;
//! - `wstunnel`: curl → sslocal → wstunnel client ═ WSS ═ wstunnel server → ssserver;
//! - `httvps`: curl → httvps-client ═ WSS ═ httvps-gateway → ssserver.
//!
//! Both WSS legs use the same self-signed certificate (ECDSA P-256, rustls on both ends).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use sha2::Digest;

use crate::procs::{free_port, spawn_listening, Process};
use crate::tools::HttvpsBins;

const READY: Duration = Duration::from_secs(20);

/// What a process is in a path, one column of the CPU tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// sslocal or httvps-client: where curl's SOCKS5 connection ends.
    LocalProxy,
    /// wstunnel client.
    TunnelClient,
    /// wstunnel server or httvps-gateway: where the WSS connection ends.
    TunnelServer,
    /// ssserver.
    PoolNode,
    /// nginx, master and workers.
    Origin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::LocalProxy,
        Role::TunnelClient,
        Role::TunnelServer,
        Role::PoolNode,
        Role::Origin,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Role::LocalProxy => "local proxy",
            Role::TunnelClient => "wst client",
            Role::TunnelServer => "WSS server",
            Role::PoolNode => "ssserver",
            Role::Origin => "nginx",
        }
    }
}

/// One path, ready: where curl's SOCKS5 goes (`None`: straight to nginx) and which processes
/// do the work.
#[derive(Debug)]
pub struct BenchPath {
    pub name: &'static str,
    pub socks: Option<SocketAddr>,
    pub pids: Vec<(Role, u32)>,
}

/// The Shadowsocks settings shared by every path.
#[derive(Clone, Debug)]
pub struct Shadowsocks {
    pub cipher: String,
    pub password: String,
}

impl Shadowsocks {
    /// The arguments `ssserver` and `sslocal` both take for the server at `server`.
    fn server_args(&self, server: SocketAddr) -> Vec<String> {
        vec![
            s("-s"),
            server.to_string(),
            s("-m"),
            self.cipher.clone(),
            s("-k"),
            self.password.clone(),
        ]
    }
}

/// What the paths are built on: the Shadowsocks settings, the pool node (address and pid), the
/// certificate of the WSS servers and the folder for logs.
#[derive(Clone, Copy, Debug)]
pub struct Setup<'a> {
    pub ss: &'a Shadowsocks,
    pub node: (SocketAddr, u32),
    pub cert: &'a Certificate,
    pub dir: &'a Path,
}

/// A self-signed certificate for `localhost` and `127.0.0.1` in PEM files, and the SHA-256 of
/// its DER (the `fp` of an httvps link).
#[derive(Debug)]
pub struct Certificate {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub fingerprint: String,
}

impl Certificate {
    pub fn generate(dir: &Path) -> anyhow::Result<Certificate> {
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])?;
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, certified.cert.pem())?;
        std::fs::write(&key, certified.key_pair.serialize_pem())?;
        let digest = sha2::Sha256::digest(certified.cert.der());
        let fingerprint = digest.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Certificate {
            cert,
            key,
            fingerprint,
        })
    }
}

fn s(text: impl Into<String>) -> String {
    text.into()
}

/// Starts `ssserver` (the pool node) on a free port.
pub fn start_pool_node(
    ssserver: &Path,
    ss: &Shadowsocks,
    dir: &Path,
    procs: &mut Vec<Process>,
) -> anyhow::Result<(SocketAddr, u32)> {
    let addr = free_port()?;
    let pid = spawn_listening(
        procs,
        "ssserver",
        ssserver,
        &ss.server_args(addr),
        dir,
        addr,
        READY,
    )?;
    Ok((addr, pid))
}

/// `sslocal` as SOCKS5 server in front of the Shadowsocks server at `server`.
fn start_sslocal(
    role: &'static str,
    sslocal: &Path,
    ss: &Shadowsocks,
    server: SocketAddr,
    dir: &Path,
    procs: &mut Vec<Process>,
) -> anyhow::Result<(SocketAddr, u32)> {
    let socks = free_port()?;
    let pid = spawn_listening(
        procs,
        role,
        sslocal,
        &[vec![s("-b"), socks.to_string()], ss.server_args(server)].concat(),
        dir,
        socks,
        READY,
    )?;
    Ok((socks, pid))
}

/// curl → sslocal → ssserver.
pub fn ss_alone(
    sslocal: &Path,
    setup: Setup<'_>,
    procs: &mut Vec<Process>,
) -> anyhow::Result<BenchPath> {
    let (socks, local) =
        start_sslocal("sslocal", sslocal, setup.ss, setup.node.0, setup.dir, procs)?;
    Ok(BenchPath {
        name: "ss-alone",
        socks: Some(socks),
        pids: vec![(Role::LocalProxy, local), (Role::PoolNode, setup.node.1)],
    })
}

/// curl → sslocal → wstunnel client ═ WSS ═ wstunnel server → ssserver: the client forwards
/// a local TCP port through the server to the node, one WebSocket per connection.
pub fn wstunnel_chain(
    wstunnel: &Path,
    sslocal: &Path,
    setup: Setup<'_>,
    procs: &mut Vec<Process>,
) -> anyhow::Result<BenchPath> {
    let wss = free_port()?;
    let server_pid = spawn_listening(
        procs,
        "wstunnel-server",
        wstunnel,
        &[
            s("server"),
            s("--tls-certificate"),
            setup.cert.cert.display().to_string(),
            s("--tls-private-key"),
            setup.cert.key.display().to_string(),
            format!("wss://{wss}"),
        ],
        setup.dir,
        wss,
        READY,
    )?;
    let forward = free_port()?;
    let client_pid = spawn_listening(
        procs,
        "wstunnel-client",
        wstunnel,
        &[
            s("client"),
            s("-L"),
            format!("tcp://{forward}:{}", setup.node.0),
            format!("wss://{wss}"),
        ],
        setup.dir,
        forward,
        READY,
    )?;
    let (socks, local) = start_sslocal(
        "sslocal-chain",
        sslocal,
        setup.ss,
        forward,
        setup.dir,
        procs,
    )?;
    Ok(BenchPath {
        name: "wstunnel",
        socks: Some(socks),
        pids: vec![
            (Role::LocalProxy, local),
            (Role::TunnelClient, client_pid),
            (Role::TunnelServer, server_pid),
            (Role::PoolNode, setup.node.1),
        ],
    })
}

/// curl → httvps-client ═ WSS ═ httvps-gateway (standalone: a dev device, the node as a static
/// `ss://` node, private targets allowed since nginx is on loopback) → ssserver.
pub fn httvps(
    bins: &HttvpsBins,
    setup: Setup<'_>,
    procs: &mut Vec<Process>,
) -> anyhow::Result<BenchPath> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let path = format!("/{}", b64.encode(rand::random::<[u8; 24]>()));
    let token = b64.encode(rand::random::<[u8; 24]>());
    let userinfo = b64.encode(format!("{}:{}", setup.ss.cipher, setup.ss.password));
    let listen = free_port()?;
    let gateway_pid = spawn_listening(
        procs,
        "httvps-gateway",
        &bins.gateway,
        &[
            s("--listen"),
            listen.to_string(),
            s("--metrics-listen="),
            s("--path"),
            path.clone(),
            s("--tls-cert"),
            setup.cert.cert.display().to_string(),
            s("--tls-key"),
            setup.cert.key.display().to_string(),
            s("--dev-device"),
            format!("bench:{token}"),
            s("--node"),
            format!("ss://{userinfo}@{}#bench", setup.node.0),
            s("--allow-private-targets"),
        ],
        setup.dir,
        listen,
        READY,
    )?;
    let socks = free_port()?;
    let link = format!(
        "httvps://bench:{token}@{}:{}{path}?fp={}",
        listen.ip(),
        listen.port(),
        setup.cert.fingerprint
    );
    let client_pid = spawn_listening(
        procs,
        "httvps-client",
        &bins.client,
        &[
            s("--link"),
            link,
            s("--socks"),
            socks.to_string(),
            s("--no-http"),
        ],
        setup.dir,
        socks,
        READY,
    )
    .context("httvps-client")?;
    Ok(BenchPath {
        name: "httvps",
        socks: Some(socks),
        pids: vec![
            (Role::LocalProxy, client_pid),
            (Role::TunnelServer, gateway_pid),
            (Role::PoolNode, setup.node.1),
        ],
    })
}
