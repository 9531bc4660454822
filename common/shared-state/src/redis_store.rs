//! [`RedisStore`]: the shared-state contract on Redis, for several gateways.
//!
//! One multiplexed connection ([`ConnectionManager`], which reconnects by itself) carries every
//! command; a second connection subscribes to the event channel. Operations that must be atomic
//! run as Lua scripts; lease scores use the Redis server's clock (`TIME`), so gateways with
//! skewed clocks still agree. Every call is bounded by the configured timeout and fails with
//! [`StoreError::Unavailable`] rather than hang: callers decide how to degrade.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, RedisError, Script};
use tokio::sync::{broadcast, Mutex};
use tokio::task::AbortHandle;

use crate::keys::Keys;
use crate::memory::EVENT_BUFFER;
use crate::model::{
    Admission, AdmitOutcome, GatewayInfo, LimitScope, NodeLoads, ResumeRecord, RevocationTarget,
    SessionLease, SessionOwner, SharedEvent, UsageCounter,
};
use crate::store::{BoxFuture, SessionStore, StoreError, StoreResult};

/// The server's clock in ms, inside a script.
const NOW_MS: &str = "local t = redis.call('TIME')\n\
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n";

/// KEYS: device set, user set. ARGV: session id, lease ms, device limit, user limit (-1 = none).
/// Returns {0, 0} when admitted, {1, n} over the device limit, {2, n} over the user limit.
const ADMIT: &str = "
local member = ARGV[1]
local lease = tonumber(ARGV[2])
local limits = { tonumber(ARGV[3]), tonumber(ARGV[4]) }
for i = 1, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
end
for i = 1, 2 do
  if limits[i] >= 0 and not redis.call('ZSCORE', KEYS[i], member) then
    local n = redis.call('ZCARD', KEYS[i])
    if n >= limits[i] then return { i, n } end
  end
end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now + lease, member)
  if redis.call('PTTL', KEYS[i]) < lease then redis.call('PEXPIRE', KEYS[i], lease) end
end
return { 0, 0 }
";

/// KEYS: pairs of (device set, user set). ARGV: lease ms, then one session id per pair.
const RENEW: &str = "
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do
  local d, u = KEYS[2 * i - 3], KEYS[2 * i - 2]
  for _, k in ipairs({ d, u }) do
    redis.call('ZADD', k, now + lease, ARGV[i])
    if redis.call('PTTL', k) < lease then redis.call('PEXPIRE', k, lease) end
  end
end
return #ARGV - 1
";

/// KEYS: device set, user set. Returns the live count of each.
const LIVE: &str = "
return { redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf'), redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') }
";

/// KEYS: user set. Returns the session ids whose leases have not ended.
const LIVE_IDS: &str = "
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
";

/// KEYS: counter. ARGV: floor, delta, ttl ms. A missing counter starts at `floor`.
/// Lua numbers are doubles: exact up to 2^53 bytes (8 PiB) per period.
const ADD_USAGE: &str = "
local cur = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
cur = cur + tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%d', cur), 'PX', ARGV[3])
return cur
";

/// Scripts compiled once (their SHA is computed here; Redis loads them on first use).
#[derive(Debug)]
struct Scripts {
    admit: Script,
    renew: Script,
    live: Script,
    live_ids: Script,
    add_usage: Script,
}

impl Scripts {
    fn new() -> Self {
        let timed = |body: &str| Script::new(&format!("{NOW_MS}{body}"));
        Scripts {
            admit: timed(ADMIT),
            renew: timed(RENEW),
            live: timed(LIVE),
            live_ids: timed(LIVE_IDS),
            add_usage: Script::new(ADD_USAGE),
        }
    }
}

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

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn limit_arg(limit: Option<u32>) -> i64 {
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

fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl SessionStore for RedisStore {
    fn admit<'a>(&'a self, a: Admission<'a>) -> BoxFuture<'a, StoreResult<AdmitOutcome>> {
        Box::pin(async move {
            let (verdict, active): (i64, i64) = self
                .run(|mut c| async move {
                    self.scripts
                        .admit
                        .key(self.keys.device_sessions(a.owner))
                        .key(self.keys.user_sessions(a.owner))
                        .arg(a.session_id)
                        .arg(ms(a.lease))
                        .arg(limit_arg(a.device_limit))
                        .arg(limit_arg(a.user_limit))
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            let active = u32::try_from(active).unwrap_or(u32::MAX);
            Ok(match verdict {
                0 => AdmitOutcome::Admitted,
                1 => AdmitOutcome::Refused {
                    scope: LimitScope::Device,
                    active,
                },
                _ => AdmitOutcome::Refused {
                    scope: LimitScope::User,
                    active,
                },
            })
        })
    }

    fn renew<'a>(
        &'a self,
        sessions: &'a [SessionLease],
        lease: Duration,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            // Bounded batches keep each script short (Redis runs scripts one at a time).
            for batch in sessions.chunks(500) {
                self.run(|mut c| async move {
                    let mut call = self.scripts.renew.prepare_invoke();
                    call.arg(ms(lease));
                    for l in batch {
                        call.key(self.keys.device_sessions(&l.owner))
                            .key(self.keys.user_sessions(&l.owner))
                            .arg(&l.session_id);
                    }
                    call.invoke_async::<i64>(&mut c).await
                })
                .await?;
            }
            Ok(())
        })
    }

    fn release<'a>(&'a self, l: &'a SessionLease) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.run(|mut c| async move {
                redis::pipe()
                    .zrem(self.keys.device_sessions(&l.owner), &l.session_id)
                    .ignore()
                    .zrem(self.keys.user_sessions(&l.owner), &l.session_id)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
        })
    }

    fn live_sessions<'a>(
        &'a self,
        owner: &'a SessionOwner,
    ) -> BoxFuture<'a, StoreResult<(u32, u32)>> {
        Box::pin(async move {
            let (d, u): (i64, i64) = self
                .run(|mut c| async move {
                    self.scripts
                        .live
                        .key(self.keys.device_sessions(owner))
                        .key(self.keys.user_sessions(owner))
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            Ok((
                u32::try_from(d).unwrap_or(u32::MAX),
                u32::try_from(u).unwrap_or(u32::MAX),
            ))
        })
    }

    fn live_session_ids<'a>(
        &'a self,
        owner: &'a SessionOwner,
    ) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        Box::pin(async move {
            let mut ids: Vec<String> = self
                .run(|mut c| async move {
                    self.scripts
                        .live_ids
                        .key(self.keys.user_sessions(owner))
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            ids.sort();
            Ok(ids)
        })
    }

    fn put_resume<'a>(
        &'a self,
        token_hash: &'a str,
        record: &'a ResumeRecord,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let json = to_json(record)?;
            self.run(|mut c| async move {
                c.pset_ex::<_, _, ()>(self.keys.resume(token_hash), json, ms(ttl))
                    .await
            })
            .await
        })
    }

    fn take_resume<'a>(
        &'a self,
        token_hash: &'a str,
    ) -> BoxFuture<'a, StoreResult<Option<ResumeRecord>>> {
        Box::pin(async move {
            let json: Option<String> = self
                .run(|mut c| async move { c.get_del(self.keys.resume(token_hash)).await })
                .await?;
            json.as_deref().map(from_json).transpose()
        })
    }

    fn drop_resume<'a>(&'a self, token_hash: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.run(|mut c| async move { c.del::<_, ()>(self.keys.resume(token_hash)).await })
                .await
        })
    }

    fn revoke<'a>(
        &'a self,
        target: &'a RevocationTarget,
        reason: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let event = to_json(&SharedEvent::Revoked {
                target: target.clone(),
                reason: reason.to_owned(),
            })?;
            self.run(|mut c| async move {
                redis::pipe()
                    .pset_ex(self.keys.revoked(target), reason, ms(ttl))
                    .ignore()
                    .publish(self.keys.events(), event)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
        })
    }

    fn is_revoked<'a>(
        &'a self,
        device_id: &'a str,
        user_id: Option<&'a str>,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(async move {
            let mut keys = vec![self
                .keys
                .revoked(&RevocationTarget::Device(device_id.to_owned()))];
            if let Some(user) = user_id {
                keys.push(self.keys.revoked(&RevocationTarget::User(user.to_owned())));
            }
            let found: i64 = self
                .run(|mut c| async move { c.exists(keys).await })
                .await?;
            Ok(found > 0)
        })
    }

    fn sticky_node<'a>(&'a self, device_id: &'a str) -> BoxFuture<'a, StoreResult<Option<String>>> {
        Box::pin(async move {
            self.run(|mut c| async move { c.get(self.keys.sticky(device_id)).await })
                .await
        })
    }

    fn set_sticky_node<'a>(
        &'a self,
        device_id: &'a str,
        node_id: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.run(|mut c| async move {
                c.pset_ex::<_, _, ()>(self.keys.sticky(device_id), node_id, ms(ttl))
                    .await
            })
            .await
        })
    }

    fn publish_load<'a>(
        &'a self,
        gateway_id: &'a str,
        loads: &'a NodeLoads,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let key = self.keys.load(gateway_id);
            let pairs: Vec<(&str, u64)> = loads
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(node, n)| (node.as_str(), *n))
                .collect();
            self.run(|mut c| async move {
                let mut pipe = redis::pipe();
                pipe.atomic().del(&key).ignore();
                if !pairs.is_empty() {
                    pipe.hset_multiple(&key, &pairs)
                        .ignore()
                        .pexpire(&key, i64::try_from(ms(ttl)).unwrap_or(i64::MAX))
                        .ignore();
                }
                pipe.query_async::<()>(&mut c).await
            })
            .await
        })
    }

    fn node_loads(&self) -> BoxFuture<'_, StoreResult<NodeLoads>> {
        Box::pin(async move {
            let gateways: Vec<String> = self
                .run(|mut c| async move { c.smembers(self.keys.gateway_index()).await })
                .await?;
            if gateways.is_empty() {
                return Ok(NodeLoads::new());
            }
            let shares: Vec<HashMap<String, u64>> = self
                .run(|mut c| async move {
                    let mut pipe = redis::pipe();
                    for gw in &gateways {
                        pipe.hgetall(self.keys.load(gw));
                    }
                    pipe.query_async(&mut c).await
                })
                .await?;
            let mut total = NodeLoads::new();
            for share in shares {
                for (node, n) in share {
                    *total.entry(node).or_default() += n;
                }
            }
            Ok(total)
        })
    }

    fn add_usage<'a>(
        &'a self,
        counter: &'a UsageCounter,
        floor: u64,
        delta: u64,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<u64>> {
        Box::pin(async move {
            let total: i64 = self
                .run(|mut c| async move {
                    self.scripts
                        .add_usage
                        .key(self.keys.usage(counter))
                        .arg(floor)
                        .arg(delta)
                        .arg(ms(ttl))
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            Ok(u64::try_from(total).unwrap_or(0))
        })
    }

    fn set_usage<'a>(
        &'a self,
        counter: &'a UsageCounter,
        bytes: u64,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.run(|mut c| async move {
                c.pset_ex::<_, _, ()>(self.keys.usage(counter), bytes, ms(ttl))
                    .await
            })
            .await
        })
    }

    fn register_gateway<'a>(
        &'a self,
        info: &'a GatewayInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let json = to_json(info)?;
            self.run(|mut c| async move {
                redis::pipe()
                    .sadd(self.keys.gateway_index(), &info.id)
                    .ignore()
                    .pset_ex(self.keys.gateway(&info.id), json, ms(ttl))
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
        })
    }

    fn deregister_gateway<'a>(&'a self, gateway_id: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.run(|mut c| async move {
                redis::pipe()
                    .srem(self.keys.gateway_index(), gateway_id)
                    .ignore()
                    .del(self.keys.gateway(gateway_id))
                    .ignore()
                    .del(self.keys.load(gateway_id))
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
        })
    }

    fn gateways(&self) -> BoxFuture<'_, StoreResult<Vec<GatewayInfo>>> {
        Box::pin(async move {
            let ids: Vec<String> = self
                .run(|mut c| async move { c.smembers(self.keys.gateway_index()).await })
                .await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let keys: Vec<String> = ids.iter().map(|id| self.keys.gateway(id)).collect();
            let entries: Vec<Option<String>> =
                self.run(|mut c| async move { c.mget(keys).await }).await?;
            let mut live = Vec::new();
            let mut gone = Vec::new();
            for (id, entry) in ids.into_iter().zip(entries) {
                match entry.as_deref().map(from_json::<GatewayInfo>) {
                    Some(Ok(info)) => live.push(info),
                    Some(Err(_)) | None => gone.push(id),
                }
            }
            if !gone.is_empty() {
                // The entry expired: the gateway stopped heartbeating. Tidy the index.
                self.run(|mut c| async move {
                    c.srem::<_, _, ()>(self.keys.gateway_index(), gone).await
                })
                .await?;
            }
            live.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(live)
        })
    }

    fn publish<'a>(&'a self, event: &'a SharedEvent) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let json = to_json(event)?;
            self.run(|mut c| async move { c.publish::<_, _, ()>(self.keys.events(), json).await })
                .await
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<SharedEvent> {
        self.events.subscribe()
    }

    fn is_available(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}
