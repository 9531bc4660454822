//! Periodic work: node health checks (with failover on failure) and maintenance (usage
//! roll-ups, subscription expiry, stale sessions and those of lost gateways, retried failovers).
//! Only the replica holding the leader lease ([`crate::leader`]) does it, so with several
//! replicas exactly one does.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::AppState;
use crate::leader::Leadership;
use crate::model::{now_ms, NodeHealth};
use crate::node_pool::{fail_over, StoreHealth};
use crate::pool::{HealthCheckConfig, HealthChecker, HealthPolicy, ProbeTarget, Prober};
use crate::shared::{self, RevocationReason};
use crate::store::SessionFilter;

/// Ledger records rolled up per transaction.
const ROLLUP_BATCH: i64 = 5_000;
/// Roll-up transactions per round at most, so one round stays short.
const ROLLUP_ROUNDS: usize = 20;

/// Starts the leader election and every periodic job; they stop when `shutdown` turns true.
pub fn spawn_all(state: &AppState, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let leader = Leadership::new();
    let mut jobs = vec![leader.spawn(
        state.store.clone(),
        state.config.leader_lease,
        shutdown.clone(),
    )];
    if let Some(interval) = state.config.health_interval() {
        match probe_target(&state.config.probe_target) {
            Some(target) => jobs.push(tokio::spawn(health_loop(
                state.clone(),
                leader.clone(),
                target,
                interval,
                shutdown.clone(),
            ))),
            None => {
                tracing::error!(target = %state.config.probe_target, "HTTVPS_CP_PROBE_TARGET must be host:port; health checks are off")
            }
        }
    }
    let interval = Duration::from_secs(state.config.job_interval_secs.max(1));
    jobs.push(tokio::spawn(maintenance_loop(
        state.clone(),
        leader,
        interval,
        shutdown,
    )));
    jobs
}

fn probe_target(s: &str) -> Option<ProbeTarget> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some(ProbeTarget::http_head(
        host,
        port.parse().ok().filter(|p| *p != 0)?,
    ))
}

async fn wait(interval: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(interval) => true,
        _ = shutdown.wait_for(|stop| *stop) => false,
    }
}

async fn health_loop(
    state: AppState,
    leader: Leadership,
    target: ProbeTarget,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = HealthCheckConfig {
        policy: HealthPolicy {
            unhealthy_after: state.config.unhealthy_after,
            healthy_after: state.config.healthy_after,
        },
        probe_timeout: Duration::from_millis(state.config.probe_timeout_ms),
        ..HealthCheckConfig::new(target)
    };
    let checker = HealthChecker::new(
        Arc::new(StoreHealth {
            state: state.clone(),
        }),
        Prober::new(),
        config,
    );
    loop {
        if leader.is_leader() {
            checker.run_once().await;
        }
        if !wait(interval, &mut shutdown).await {
            return;
        }
    }
}

async fn maintenance_loop(
    state: AppState,
    leader: Leadership,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if leader.is_leader() {
            if let Err(e) = maintenance_round(&state).await {
                tracing::warn!(error = %e, "maintenance round failed");
            }
        }
        if !wait(interval, &mut shutdown).await {
            return;
        }
    }
}

/// One round of maintenance; public so tests and the CLI can run it on demand.
pub async fn maintenance_round(state: &AppState) -> Result<(), crate::store::StoreError> {
    let now = now_ms();
    for _ in 0..ROLLUP_ROUNDS {
        if state.store.roll_up_usage(ROLLUP_BATCH).await? < ROLLUP_BATCH as usize {
            break;
        }
    }
    let expiry = state.store.expire_subscriptions(now).await?;
    if !expiry.renewed.is_empty() || !expiry.lapsed.is_empty() {
        tracing::info!(
            renewed = expiry.renewed.len(),
            lapsed = expiry.lapsed.len(),
            "subscriptions expired"
        );
    }
    for user in expiry.lapsed {
        shared::revoke_user(state, user, RevocationReason::Expired).await;
    }
    let stale_before =
        now - i64::try_from(state.config.session_stale_secs * 1000).unwrap_or(i64::MAX);
    let reaped = state.store.reap_stale_sessions(stale_before, now).await?;
    if reaped > 0 {
        tracing::info!(reaped, "ended sessions whose gateway went silent");
    }
    if state.config.gateway_stale_secs > 0 {
        let lost_before =
            now - i64::try_from(state.config.gateway_stale_secs * 1000).unwrap_or(i64::MAX);
        let ended = state
            .store
            .reap_sessions_of_lost_gateways(lost_before, now)
            .await?;
        if ended > 0 {
            tracing::warn!(
                ended,
                "ended sessions of gateways whose registry heartbeat stopped"
            );
        }
    }
    // Sessions left on unhealthy nodes (deferred by the migration bound) get another chance.
    for node in state
        .store
        .list_nodes()
        .await?
        .into_iter()
        .filter(|n| n.health == NodeHealth::Unhealthy)
    {
        let live = state
            .store
            .list_sessions(&SessionFilter {
                live_only: true,
                node_id: Some(node.id),
                limit: 1,
                ..Default::default()
            })
            .await?;
        if !live.is_empty() {
            fail_over(state, node.id).await?;
        }
    }
    Ok(())
}
