//! `httvps-gateway`: parses the configuration, wires the gateway and runs it until SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use httvps_gateway::authority::DeviceAuthority;
use httvps_gateway::control_plane::ControlPlaneClient;
use httvps_gateway::upstream::NodeSource;
use httvps_gateway::{Backends, Gateway, GatewayConfig, StaticAuthority, StaticNodes, TlsSource};

/// mimalloc keeps freed buffers for reuse; the system allocator handed large relay buffers back
/// to the OS and faulted them in again (16-stream throughput +10% in the compare benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = GatewayConfig::load()?;
    let telemetry = httvps_telemetry::init(
        httvps_telemetry::ServiceInfo {
            name: "httvps-gateway",
            version: env!("CARGO_PKG_VERSION"),
            instance_id: config.gateway_id.clone(),
        },
        httvps_telemetry::LogSettings {
            default_filter: "info".into(),
            json: config.log_json,
            target: httvps_telemetry::LogTarget::Stdout,
        },
    )?;
    if telemetry.exporting() {
        let endpoint = telemetry.endpoint().unwrap_or("the default endpoint");
        tracing::info!(endpoint, "exporting traces over OTLP");
    }
    config.validate()?;

    if let Some(addr) = config.metrics_listen {
        httvps_gateway::metrics::install_exporter(addr)?;
        tracing::info!(%addr, "metrics listening");
    }

    let tls = Arc::new(match (&config.tls_cert, &config.tls_key, config.acme()) {
        (Some(cert), Some(key), _) => TlsSource::from_files(cert, key)?,
        (_, _, Some(acme)) => TlsSource::acme(&acme)?,
        _ => TlsSource::self_signed(&config.self_signed_names)?,
    });

    let dev_devices = !config.dev_devices.is_empty();
    let dev_nodes = !config.nodes.is_empty();
    let dev_direct = config.dev_direct_upstream;
    let control_plane = match (&config.control_plane_url, &config.control_plane_token) {
        (Some(url), Some(token)) => Some(Arc::new(
            ControlPlaneClient::new(url.clone(), token.clone(), config.control_plane_timeout)?
                .with_batching(!config.control_plane_single_calls),
        )),
        (Some(_), None) => anyhow::bail!(
            "--control-plane-url needs the gateway token: set HTTVPS_GATEWAY_CONTROL_PLANE_TOKEN, \
             --control-plane-token-file or control_plane_token in the config file"
        ),
        (None, _) if dev_devices && (dev_nodes || dev_direct) => None,
        (None, _) => anyhow::bail!(
            "set --control-plane-url and the gateway token (production), or both --dev-device \
             and --node or --dev-direct-upstream (development without a control plane)"
        ),
    };
    // The production wiring, from which development options replace single parts.
    let production = control_plane
        .clone()
        .map(|cp| httvps_gateway::wiring::control_plane_backends(cp, &config));
    let authority: Arc<dyn DeviceAuthority> = if dev_devices {
        tracing::warn!("using --dev-device credentials: development only");
        Arc::new(StaticAuthority::from_pairs(&config.dev_devices)?)
    } else if let Some(p) = &production {
        p.authority.clone()
    } else {
        anyhow::bail!("no device authority");
    };
    let nodes: Arc<dyn NodeSource> = if dev_nodes {
        tracing::warn!("using fixed --node pool nodes: development only");
        Arc::new(StaticNodes::from_urls(&config.nodes).context("--node")?)
    } else if let Some(p) = &production {
        p.nodes.clone()
    } else if dev_direct {
        // Never asked: every TCP stream connects directly, UDP streams are refused.
        Arc::new(StaticNodes::new(Vec::new()))
    } else {
        anyhow::bail!("no node source: set --control-plane-url or --node");
    };

    let path = config.path.clone();
    let acme_host = config.acme_domain.first().cloned();
    let tls_on = config.listen.is_on();
    let backends = Backends {
        authority,
        nodes,
        control_plane,
    };
    let gateway = Gateway::start_with(config, tls.clone(), backends).await?;
    if tls_on {
        let addr = gateway.local_addr();
        if tls.is_self_signed() {
            println!(
                "self-signed certificate, SHA-256 fingerprint: {}",
                gateway.fingerprint()
            );
        }
        match acme_host.filter(|_| tls.is_acme()) {
            // No pin: the certificate changes at every renewal.
            Some(host) => println!(
                "certificate from ACME for {host}; connect with: httvps://DEVICE_ID:TOKEN@{host}:{}{}",
                addr.port(),
                path
            ),
            None => println!(
                "connect with: httvps://DEVICE_ID:TOKEN@HOST:{}{}?fp={}",
                addr.port(),
                path,
                gateway.fingerprint()
            ),
        }
    }
    if let Some(plain) = gateway.plain_addr() {
        println!("plain listener for the front on {plain}: clients connect through the front");
    }

    wait_for_termination().await;
    tracing::info!("shutting down: GOAWAY to every session, then flushing usage");
    gateway.shutdown().await;
    tracing::info!("bye");
    telemetry.shutdown().await;
    Ok(())
}

async fn wait_for_termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
