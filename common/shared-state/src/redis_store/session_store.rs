//! [`SessionStore`] on Redis: each operation as commands or one of the [`super::scripts`].

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::AsyncCommands;
use tokio::sync::broadcast;

use super::{from_json, limit_arg, ms, to_json, RedisStore};
use crate::model::total_loads;
use crate::model::{
    Admission, AdmitOutcome, GatewayInfo, LimitScope, NodeLoads, ResumeRecord, RevocationTarget,
    SessionLease, SessionOwner, SharedEvent, UsageCounter,
};
use crate::store::{BoxFuture, SessionStore, StoreResult};

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
            Ok(total_loads(shares.into_iter().flatten()))
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
