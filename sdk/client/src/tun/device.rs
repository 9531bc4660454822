//! The Linux TUN device (tun-rs) and the two pumps that move its packets to and from the
//! engine.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use httvps_tun::{PacketSink, PacketSource};
use tokio::task::JoinHandle;
use tun_rs::{AsyncDevice, DeviceBuilder};

/// How the device is set up.
#[derive(Debug, Clone)]
pub struct DeviceSettings {
    pub name: String,
    pub ipv4: (Ipv4Addr, u8),
    pub ipv6: Option<(Ipv6Addr, u8)>,
    pub mtu: u16,
}

/// Creates the device, up, with its addresses and MTU.
pub fn create(settings: &DeviceSettings) -> anyhow::Result<AsyncDevice> {
    let mut builder = DeviceBuilder::new()
        .name(settings.name.clone())
        .ipv4(settings.ipv4.0, settings.ipv4.1, None)
        .mtu(settings.mtu);
    if let Some((address, prefix)) = settings.ipv6 {
        builder = builder.ipv6(address, prefix);
    }
    builder.build_async().map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            anyhow!(
                "creating TUN device {}: {e}: --tun needs the CAP_NET_ADMIN capability",
                settings.name
            )
        } else {
            anyhow!("creating TUN device {}: {e}", settings.name)
        }
    })
}

/// The pumps between the device and the engine; dropping them stops both.
#[derive(Debug)]
pub struct Pumps {
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Pumps {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Device to engine and engine to device, each in its own task.
pub fn pump(device: AsyncDevice, mtu: u16, sink: PacketSink, mut source: PacketSource) -> Pumps {
    let device = Arc::new(device);
    let reader = device.clone();
    let inbound = tokio::spawn(async move {
        let mut buf = vec![0u8; usize::from(mtu)];
        loop {
            let n = match reader.recv(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!("reading the TUN device: {e}");
                    return;
                }
            };
            if sink.send(buf[..n].to_vec()).await.is_err() {
                return;
            }
        }
    });
    let outbound = tokio::spawn(async move {
        while let Some(packet) = source.recv().await {
            if let Err(e) = device.send(&packet).await {
                // One packet lost (too large, the device being torn down): TCP sends it again.
                tracing::debug!("writing to the TUN device: {e}");
            }
        }
    });
    Pumps {
        tasks: [inbound, outbound],
    }
}

/// The addresses a gateway host name stands for (before the resolver is pointed into the
/// tunnel).
pub async fn resolve(host: &str, port: u16) -> anyhow::Result<Vec<std::net::IpAddr>> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("resolving gateway {host}"))?;
    Ok(addrs.map(|a| a.ip()).collect())
}
