//! The tunnel object: a runtime of its own, the SDK client, the packet engine, and the pumps
//! between the engine and the platform (a TUN descriptor or callbacks).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use httvps_sdk::{Client, ClientConfig, ClientStatus};
use httvps_tun::{Engine, PacketSink, PacketSource};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::TunnelConfig;
use crate::error::TunnelError;
use crate::status::{self, Counters, StatusListener, TunnelState, TunnelStatistics, TunnelStatus};
use crate::{fd, subscription};

/// Worker threads of a tunnel's runtime: a phone's traffic needs no more, and the engine needs
/// the multi-threaded runtime (it finishes closed TCP flows with `block_in_place`).
const WORKER_THREADS: usize = 2;
/// How long `stop` waits for the runtime's tasks to finish.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Receives the IP packets for the device (iOS: hand them to `packetFlow.writePackets`). Called
/// on a tunnel thread, one packet at a time; it must not block.
#[uniffi::export(with_foreign)]
pub trait PacketWriter: Send + Sync {
    fn write_packet(&self, packet: Vec<u8>);
}

/// A running VPN tunnel.
#[derive(Debug, uniffi::Object)]
pub struct Tunnel {
    sink: PacketSink,
    counters: Arc<Counters>,
    status: watch::Receiver<ClientStatus>,
    running: Mutex<Option<Running>>,
}

/// What `stop` takes down.
struct Running {
    runtime: Runtime,
    client: Client,
    engine: Engine,
    /// The status reporter (which also works the kill switch) and the pumps.
    tasks: Vec<JoinHandle<()>>,
    listener: Arc<dyn StatusListener>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("client", &self.client)
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// A started client and engine, before the pumps.
struct Started {
    runtime: Runtime,
    client: Client,
    engine: Engine,
    tasks: Vec<JoinHandle<()>>,
}

impl Started {
    fn new(
        config: &TunnelConfig,
        listener: &Arc<dyn StatusListener>,
    ) -> Result<(Started, PacketSource), TunnelError> {
        let engine_config = config.engine()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("httvps-tunnel")
            .enable_all()
            .build()
            .map_err(|e| TunnelError::Start(format!("runtime: {e}")))?;
        let client_config = match (&config.link, &config.subscription_url) {
            (Some(link), None) => ClientConfig::from_link(link)
                .map_err(|e| TunnelError::Config(format!("link: {e}")))?,
            (None, Some(url)) => runtime.block_on(subscription::fetch(url))?,
            _ => {
                return Err(TunnelError::Config(
                    "give exactly one of link and subscription_url".into(),
                ))
            }
        };
        let _entered = runtime.enter();
        let client = Client::start(client_config)
            .map_err(|e| TunnelError::Config(format!("client: {e}")))?;
        let (engine, source) = Engine::start(engine_config, client.clone())
            .map_err(|e| TunnelError::Config(e.to_string()))?;
        let tasks = vec![status::report(
            listener.clone(),
            client.watch_status(),
            engine.tunnel_up().clone(),
        )];
        let started = Started {
            runtime,
            client,
            engine,
            tasks,
        };
        Ok((started, source))
    }

    fn into_tunnel(
        self,
        pumps: Vec<JoinHandle<()>>,
        counters: Arc<Counters>,
        listener: Arc<dyn StatusListener>,
    ) -> Arc<Tunnel> {
        let mut tasks = self.tasks;
        tasks.extend(pumps);
        Arc::new(Tunnel {
            sink: self.engine.sink(),
            counters,
            status: self.client.watch_status(),
            running: Mutex::new(Some(Running {
                runtime: self.runtime,
                client: self.client,
                engine: self.engine,
                tasks,
                listener,
            })),
        })
    }
}

#[uniffi::export]
impl Tunnel {
    /// Starts a tunnel whose packets come in through [`Tunnel::send_packet`] and go out through
    /// `writer` (iOS `NEPacketTunnelProvider`).
    #[uniffi::constructor]
    pub fn start_with_callbacks(
        config: TunnelConfig,
        writer: Arc<dyn PacketWriter>,
        listener: Arc<dyn StatusListener>,
    ) -> Result<Arc<Tunnel>, TunnelError> {
        let (started, source) = Started::new(&config, &listener)?;
        let counters = Arc::new(Counters::default());
        let pump = started
            .runtime
            .spawn(write_out(source, writer, counters.clone()));
        Ok(started.into_tunnel(vec![pump], counters, listener))
    }

    /// Starts a tunnel on a TUN file descriptor (Android: `VpnService.Builder.establish()`'s,
    /// `ParcelFileDescriptor.getFd()`): packets are read from and written to it, without a
    /// packet-information header. The platform keeps owning the descriptor (it is set to
    /// non-blocking and never closed here): close it after [`Tunnel::stop`].
    #[uniffi::constructor]
    pub fn start_with_fd(
        config: TunnelConfig,
        fd: i32,
        listener: Arc<dyn StatusListener>,
    ) -> Result<Arc<Tunnel>, TunnelError> {
        let (started, source) = Started::new(&config, &listener)?;
        let counters = Arc::new(Counters::default());
        let pumps = {
            let _entered = started.runtime.enter();
            fd::pump(
                fd,
                config.mtu,
                started.engine.sink(),
                source,
                counters.clone(),
            )?
        };
        Ok(started.into_tunnel(pumps, counters, listener))
    }

    /// One IP packet from the device (iOS: each of `packetFlow.readPackets`'s). Never waits:
    /// while the engine is behind the packet is dropped, as a link would (TCP sends it again).
    pub fn send_packet(&self, packet: Vec<u8>) -> Result<(), TunnelError> {
        // Checked here: after stop the closed kill switch would swallow the packet quietly.
        if self.is_stopped() {
            return Err(TunnelError::Stopped);
        }
        self.counters.sent(packet.len());
        self.sink.try_send(packet).map_err(|_| TunnelError::Stopped)
    }

    /// Several packets from the device, in order.
    pub fn send_packets(&self, packets: Vec<Vec<u8>>) -> Result<(), TunnelError> {
        packets.into_iter().try_for_each(|p| self.send_packet(p))
    }

    /// The current status.
    pub fn status(&self) -> TunnelStatus {
        if self.is_stopped() {
            return stopped_status();
        }
        TunnelStatus::from(&*self.status.borrow())
    }

    /// The traffic so far.
    pub fn statistics(&self) -> TunnelStatistics {
        self.counters.snapshot(&self.status.borrow())
    }

    /// Ends the session, stops the engine and the pumps, and tells the listener `Stopped`.
    /// Calling it again does nothing. Do not call it from a listener or writer callback.
    pub fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(running) = running else {
            return;
        };
        let Running {
            runtime,
            client,
            engine,
            tasks,
            listener,
        } = running;
        runtime.block_on(async {
            client.close().await;
            for task in tasks {
                task.abort();
                let _ = task.await;
            }
        });
        drop(engine);
        runtime.shutdown_timeout(STOP_GRACE);
        listener.on_status(stopped_status());
    }
}

impl Tunnel {
    fn is_stopped(&self) -> bool {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        // A tunnel the app forgot to stop: end it without blocking the dropping thread.
        if let Some(running) = self
            .running
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            for task in &running.tasks {
                task.abort();
            }
            running.runtime.shutdown_background();
        }
    }
}

fn stopped_status() -> TunnelStatus {
    TunnelStatus {
        state: TunnelState::Stopped,
        code: None,
        detail: None,
        retry_in_ms: None,
        refused: false,
        gateway: None,
    }
}

/// Hands every packet for the device to the writer.
async fn write_out(
    mut source: PacketSource,
    writer: Arc<dyn PacketWriter>,
    counters: Arc<Counters>,
) {
    while let Some(packet) = source.recv().await {
        counters.received(packet.len());
        writer.write_packet(packet);
    }
}
