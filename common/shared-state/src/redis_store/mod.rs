//! [`RedisStore`]: the shared-state contract on Redis, for several gateways.
//!
//! One multiplexed connection ([`ConnectionManager`], which reconnects by itself) carries every
//! command; a second connection subscribes to the event channel. Operations that must be atomic
//! run as Lua scripts; lease scores use the Redis server's clock (`TIME`), so gateways with
//! skewed clocks still agree. Every call is bounded by the configured timeout and fails with
//! [`StoreError::Unavailable`] rather than hang: callers decide how to degrade.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisError;
use tokio::sync::{broadcast, Mutex};
use tokio::task::AbortHandle;

mod scripts;
mod session_store;

use self::scripts::Scripts;
use crate::keys::Keys;
use crate::memory::EVENT_BUFFER;
use crate::model::SharedEvent;
use crate::store::{StoreError, StoreResult};

/// Shared state on Redis. Dropping it stops its event subscriber.
pub struct RedisStore {
    client: redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
    keys: Keys,
    timeout: Duration,
    up: AtomicBool,
    events: broadcast::Sender<SharedEvent>,
    scripts: Scripts,
    subscriber: AbortHandle,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: show the prefix only.
        f.debug_struct("RedisStore")
            .field("prefix", &self.keys.prefix())
            .field("timeout", &self.timeout)
            .field("up", &self.up.load(Ordering::Relaxed))
            .finish()
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.subscriber.abort();
    }
}

pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

pub(super) fn limit_arg(limit: Option<u32>) -> i64 {
    limit.map_or(-1, i64::from)
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://`, `rediss://`), with keys under `prefix`.
    /// Connects lazily: a Redis that is down at start is an outage to ride out, not a crash.
    /// Must be called inside a tokio runtime (it starts the event subscriber).
    pub fn open(url: &str, prefix: &str, timeout: Duration) -> StoreResult<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::InvalidConfig(format!("REDIS_URL: {e}")))?;
        let keys = Keys::new(prefix);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let subscriber = tokio::spawn(subscribe_loop(
            client.clone(),
            keys.events(),
            events.clone(),
        ))
        .abort_handle();
        Ok(RedisStore {
            client,
            conn: Mutex::new(None),
            keys,
            timeout,
            up: AtomicBool::new(false),
            events,
            scripts: Scripts::new(),
            subscriber,
        })
    }

    /// The key names this store uses.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    async fn conn(&self) -> StoreResult<ConnectionManager> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            .set_number_of_retries(1);
        let conn = tokio::time::timeout(
            self.timeout,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|_| self.down("connecting timed out".into()))?
        .map_err(|e| self.down(e.to_string()))?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    fn down(&self, why: String) -> StoreError {
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %why, "Redis unreachable");
        }
        StoreError::Unavailable(why)
    }

    /// Runs one operation on the shared connection within the timeout.
    async fn run<T, F, Fut>(&self, op: F) -> StoreResult<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let conn = self.conn().await?;
        match tokio::time::timeout(self.timeout, op(conn)).await {
            Ok(Ok(value)) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!("Redis reachable");
                }
                Ok(value)
            }
            Ok(Err(e)) if e.kind() == redis::ErrorKind::TypeError => {
                Err(StoreError::Corrupt(e.to_string()))
            }
            Ok(Err(e)) => Err(self.down(e.to_string())),
            Err(_) => Err(self.down("timed out".into())),
        }
    }
}

/// Subscribes to the event channel and forwards events to local subscribers, reconnecting
/// after a lost connection. Events published while disconnected are missed; the marker keys
/// and the control plane's session heartbeats cover that gap.
async fn subscribe_loop(
    client: redis::Client,
    channel: String,
    events: broadcast::Sender<SharedEvent>,
) {
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if let Err(e) = pubsub.subscribe(&channel).await {
                    tracing::debug!(error = %e, "Redis subscribe failed");
                } else {
                    tracing::debug!(channel = %channel, "subscribed to shared events");
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let payload: String = match message.get_payload() {
                            Ok(p) => p,
                            Err(_) => continue,
                        };
                        match serde_json::from_str::<SharedEvent>(&payload) {
                            Ok(event) => {
                                let _ = events.send(event);
                            }
                            // A newer peer's event: skip it, keep listening.
                            Err(e) => tracing::debug!(error = %e, "unreadable shared event"),
                        }
                    }
                    tracing::debug!("shared event subscription lost");
                }
            }
            Err(e) => tracing::debug!(error = %e, "Redis pub/sub connect failed"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}
