//! The shared state's background work: events from the other gateways to this gateway's
//! sessions, and every interval the quota folds, load share, registry heartbeat, lease and
//! resume-token renewals, with reconciliation after Redis comes back.

use super::*;

impl SharedState {
    /// Runs the shared-state work until `stop`: events to sessions, and every interval the
    /// quota folds, load share, registry heartbeat, lease and token renewals.
    pub async fn run(
        self: Arc<Self>,
        listen: String,
        stats: Arc<GatewayStats>,
        draining: CancellationToken,
        stop: CancellationToken,
    ) {
        let mut events = self.store.subscribe();
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut upkeep = Upkeep::default();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                event = events.recv() => match event {
                    Ok(event) => self.on_event(&event),
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "shared events arrived faster than handled");
                    }
                    Err(RecvError::Closed) => events = self.store.subscribe(),
                },
                // A quota crossed here: fold and announce it now, not at the next tick.
                _ = self.quotas.crossed() => self.fold_usage().await,
                _ = ticker.tick() => {
                    self.tick(&mut upkeep, &listen, &stats, draining.is_cancelled()).await;
                }
            }
        }
        // Last fold, and leave the registry so the control plane stops listing us.
        self.fold_usage().await;
        if self.distributed {
            let _ = self.store.deregister_gateway(&self.gateway_id).await;
        }
    }

    pub(super) fn on_event(&self, event: &SharedEvent) {
        match event {
            SharedEvent::QuotaExceeded { user_id } => self.quotas.exhaust_subject(user_id),
            SharedEvent::UsageReset {
                user_id,
                device_ids,
            } => {
                self.quotas.reset_subject(user_id);
                if let Some(authority) = &self.authority {
                    for device in device_ids {
                        authority.forget(device);
                    }
                }
                tracing::info!(user = %user_id, "usage reset: the user's quota starts afresh");
            }
            // A revoked device, or one whose token was rotated: its cached allows go at once,
            // here too where it has no session (else the old token would pass from the cache
            // until the entry expires).
            SharedEvent::Revoked {
                target: RevocationTarget::Device(device),
                ..
            } => {
                if let Some(authority) = &self.authority {
                    authority.forget(device);
                }
            }
            _ => {}
        }
        let ended = self.directory.apply(event, &self.gateway_id);
        let kind = match event {
            SharedEvent::Revoked { .. } => "revoked",
            SharedEvent::SessionKilled { .. } => "session_killed",
            SharedEvent::QuotaExceeded { .. } => "quota_exceeded",
            SharedEvent::UsageReset { .. } => "usage_reset",
            SharedEvent::SessionResumed { .. } => "session_resumed",
        };
        metrics::counter!(m::SHARED_EVENTS_TOTAL, "type" => kind).increment(1);
        if ended > 0 {
            tracing::info!(
                event = kind,
                sessions = ended,
                "shared event ends sessions here"
            );
        }
    }

    async fn tick(&self, upkeep: &mut Upkeep, listen: &str, stats: &GatewayStats, draining: bool) {
        self.fold_usage().await;
        let now = Instant::now();
        // Slots held in this process (the store without Redis, else this gateway's own record
        // for admissions during an outage) are renewed like Redis leases, or a live session's
        // slot lapses after one lease and the limit stops counting it.
        if upkeep.local_leases_at.is_none_or(|at| now >= at) {
            let local: &dyn SessionStore = if self.distributed {
                &self.local
            } else {
                self.store.as_ref()
            };
            let _ = local.renew(&self.directory.leases(), self.lease).await;
            upkeep.local_leases_at = Some(now + self.lease / 3);
        }
        if !self.distributed {
            return;
        }
        let ttl = self.lease;
        if let Err(e) = self
            .store
            .publish_load(&self.gateway_id, &self.loads.snapshot(), ttl)
            .await
        {
            self.failed("publish_load", &e);
        }
        let info = GatewayInfo {
            id: self.gateway_id.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            listen: listen.to_owned(),
            started_at_ms: self.started_at_ms,
            heartbeat_at_ms: unix_ms(),
            sessions: self.directory.len() as u64,
            streams: stats.streams_active.load(Ordering::Relaxed) as u64,
            draining,
        };
        if let Err(e) = self.store.register_gateway(&info, ttl).await {
            self.failed("register_gateway", &e);
        }
        let up = self.store.is_available();
        metrics::gauge!(m::REDIS_UP).set(if up { 1.0 } else { 0.0 });
        let recovered = up && !upkeep.was_up;
        if recovered && upkeep.ever_up {
            tracing::info!("Redis is back: writing this gateway's sessions and tokens back");
        }
        upkeep.was_up = up;
        upkeep.ever_up |= up;
        if !up {
            return;
        }
        if recovered || upkeep.leases_at.is_none_or(|at| now >= at) {
            let leases = self.directory.leases();
            match self.store.renew(&leases, self.lease).await {
                Ok(()) => upkeep.leases_at = Some(now + self.lease / 3),
                Err(e) => self.failed("renew", &e),
            }
        }
        if recovered || upkeep.resumes_at.is_none_or(|at| now >= at) {
            let issued: Vec<IssuedResume> = self.lock_resumes().values().cloned().collect();
            let mut ok = true;
            for i in &issued {
                if let Err(e) = self
                    .store
                    .put_resume(&i.hash, &i.record, self.resume_ttl)
                    .await
                {
                    self.failed("put_resume", &e);
                    ok = false;
                    break;
                }
            }
            if ok {
                upkeep.resumes_at = Some(now + self.resume_ttl / 2);
            }
        }
    }
}

/// When the periodic renewals are next due, and what Redis looked like last time.
#[derive(Debug, Default)]
struct Upkeep {
    was_up: bool,
    ever_up: bool,
    leases_at: Option<Instant>,
    local_leases_at: Option<Instant>,
    resumes_at: Option<Instant>,
}
