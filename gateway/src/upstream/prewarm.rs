//! Pre-warmed node connections: a small, bounded pool of idle TCP connections per node, with the
//! TCP handshake done and nothing sent yet (the Shadowsocks salt and target address go with the
//! stream's first write, so an idle connection is not bound to any target).
//!
//! A node gets a pool once a stream used it; every `take` starts a background refill up to
//! `per_node`. Idle connections older than `idle_timeout` (or closed by the node) are dropped by
//! a reaper, and a node not used for `idle_timeout` is not refilled, so an idle gateway holds
//! nothing. `per_node = 0` turns the pool off. A stream that finds no idle connection connects
//! afresh, as without the pool.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use shadowsocks::config::{ServerAddr, ServerConfig};
use tokio::net::TcpStream;

use super::Node;

/// Counters of the pool (tests and benchmarks).
#[derive(Debug, Default)]
pub struct PrewarmStats {
    /// Streams that got a pre-warmed connection.
    pub hits: AtomicU64,
    /// Streams that connected afresh (pool empty or off).
    pub misses: AtomicU64,
    /// Idle connections dropped (expired or closed by the node).
    pub expired: AtomicU64,
}

/// The pool of idle node connections.
#[derive(Debug, Clone)]
pub struct Prewarm {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    per_node: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
    nodes: Mutex<HashMap<String, Warm>>,
    stats: PrewarmStats,
}

#[derive(Debug)]
struct Warm {
    config: Arc<ServerConfig>,
    idle: VecDeque<(TcpStream, Instant)>,
    connecting: usize,
    last_used: Instant,
}

impl Prewarm {
    /// A pool keeping up to `per_node` idle connections per recently used node; starts the
    /// reaper (needs a Tokio runtime when `per_node > 0`).
    pub fn new(per_node: usize, idle_timeout: Duration, connect_timeout: Duration) -> Self {
        let inner = Arc::new(Inner {
            per_node,
            idle_timeout,
            connect_timeout,
            nodes: Mutex::new(HashMap::new()),
            stats: PrewarmStats::default(),
        });
        if per_node > 0 {
            tokio::spawn(reaper(Arc::downgrade(&inner)));
        }
        Prewarm { inner }
    }

    /// The pool's counters.
    pub fn stats(&self) -> &PrewarmStats {
        &self.inner.stats
    }

    /// Idle connections held now, all nodes together.
    pub fn idle_connections(&self) -> usize {
        self.inner
            .nodes
            .lock()
            .map(|n| n.values().map(|w| w.idle.len()).sum())
            .unwrap_or(0)
    }

    /// An idle connection to `node`, if one is ready; either way the pool is refilled in the
    /// background.
    pub fn take(&self, node: &Node) -> Option<TcpStream> {
        if self.inner.per_node == 0 {
            return None;
        }
        let now = Instant::now();
        let mut taken = None;
        let mut to_start = 0;
        if let Ok(mut nodes) = self.inner.nodes.lock() {
            let warm = nodes.entry(node.id.clone()).or_insert_with(|| Warm {
                config: node.config.clone(),
                idle: VecDeque::new(),
                connecting: 0,
                last_used: now,
            });
            warm.last_used = now;
            warm.config = node.config.clone();
            while let Some((stream, since)) = warm.idle.pop_front() {
                if now.saturating_duration_since(since) < self.inner.idle_timeout && alive(&stream)
                {
                    taken = Some(stream);
                    break;
                }
                self.inner.stats.expired.fetch_add(1, Ordering::Relaxed);
            }
            to_start = self
                .inner
                .per_node
                .saturating_sub(warm.idle.len() + warm.connecting);
            warm.connecting += to_start;
        }
        for _ in 0..to_start {
            tokio::spawn(refill(
                Arc::downgrade(&self.inner),
                node.id.clone(),
                node.config.clone(),
            ));
        }
        let counter = if taken.is_some() {
            &self.inner.stats.hits
        } else {
            &self.inner.stats.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        taken
    }
}

/// A TCP connection to the node's address (its name resolved here if it has one).
pub async fn connect_node(config: &ServerConfig) -> io::Result<TcpStream> {
    let stream = match config.addr() {
        ServerAddr::SocketAddr(addr) => TcpStream::connect(addr).await?,
        ServerAddr::DomainName(host, port) => TcpStream::connect((host.as_str(), *port)).await?,
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Whether an idle connection is still open: the node sends nothing before our first write, so
/// readable means closed (EOF or reset) or misbehaving.
fn alive(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

async fn refill(inner: Weak<Inner>, node_id: String, config: Arc<ServerConfig>) {
    let Some(timeout) = inner.upgrade().map(|i| i.connect_timeout) else {
        return;
    };
    let connected = tokio::time::timeout(timeout, connect_node(&config)).await;
    let Some(inner) = inner.upgrade() else {
        return;
    };
    let Ok(mut nodes) = inner.nodes.lock() else {
        return;
    };
    let Some(warm) = nodes.get_mut(&node_id) else {
        return;
    };
    warm.connecting = warm.connecting.saturating_sub(1);
    match connected {
        Ok(Ok(stream)) if warm.idle.len() < inner.per_node => {
            warm.idle.push_back((stream, Instant::now()));
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::debug!(node = %node_id, error = %e, "pre-warming a node connection failed")
        }
        Err(_) => tracing::debug!(node = %node_id, "pre-warming a node connection timed out"),
    }
}

/// Drops expired and closed idle connections, and forgets nodes unused for the idle timeout.
async fn reaper(inner: Weak<Inner>) {
    let period = inner
        .upgrade()
        .map(|i| (i.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5)))
        .unwrap_or(Duration::from_secs(1));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let now = Instant::now();
        let Ok(mut nodes) = inner.nodes.lock() else {
            return;
        };
        for warm in nodes.values_mut() {
            let before = warm.idle.len();
            warm.idle.retain(|(stream, since)| {
                now.saturating_duration_since(*since) < inner.idle_timeout && alive(stream)
            });
            let dropped = (before - warm.idle.len()) as u64;
            inner.stats.expired.fetch_add(dropped, Ordering::Relaxed);
        }
        nodes.retain(|_, warm| {
            now.saturating_duration_since(warm.last_used) < inner.idle_timeout
                || warm.connecting > 0
                || !warm.idle.is_empty()
        });
    }
}
