//! Sessions reported by gateways: start (under the plan's concurrent-session limit), heartbeat,
//! end, admin kill, failover moves and reaping of sessions whose gateway went silent.

use sqlx::any::AnyRow;
use uuid::Uuid;

use super::audit::NewAudit;
use super::resource::resource;
use super::row::RowExt;
use super::{map_rows, Backend, Conflict, ConflictKind, Result, Store, StoreError};
use crate::model::{now_ms, Millis, Session};

// Not `model::Session` minus its server-set fields: this carries the limit to enforce at the
// start, the stored row carries times, usage and the end; the ids they share are the session's.
/// A session a gateway starts.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub id: Uuid,
    pub device_id: Uuid,
    pub user_id: Uuid,
    pub gateway_id: Uuid,
    pub node_id: Option<Uuid>,
    pub client_region: Option<String>,
    /// Most live sessions the user may have, including this one.
    pub session_limit: Option<i32>,
}

/// Which sessions to list.
#[derive(Clone, Debug, Default)]
pub struct SessionFilter {
    pub live_only: bool,
    pub user_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    pub gateway_id: Option<Uuid>,
    pub node_id: Option<Uuid>,
    pub limit: i64,
}

pub(super) const COLUMNS: &str =
    "id, device_id, user_id, gateway_id, node_id, client_region, started_at, last_heartbeat_at, \
     ended_at, end_reason, kill_requested, bytes_up, bytes_down";

pub(super) fn from_row(r: &AnyRow) -> Result<Session> {
    Ok(Session {
        id: r.id("id")?,
        device_id: r.id("device_id")?,
        user_id: r.id("user_id")?,
        gateway_id: r.id("gateway_id")?,
        node_id: r.opt_id("node_id")?,
        client_region: r.opt_text("client_region")?,
        started_at: r.int("started_at")?,
        last_heartbeat_at: r.int("last_heartbeat_at")?,
        ended_at: r.opt_int("ended_at")?,
        end_reason: r.opt_text("end_reason")?,
        kill_requested: r.flag("kill_requested")?,
        bytes_up: r.int("bytes_up")?,
        bytes_down: r.int("bytes_down")?,
    })
}

resource!(Session, "sessions", COLUMNS, "session", from_row);

impl Store {
    /// Starts a session. With a limit, the count of the user's live sessions and the insert are
    /// one transaction, serialized per user, so concurrent starts cannot exceed it. A session id
    /// that exists already is re-attached instead (see [`Store::reattach_session`]).
    pub async fn start_session(&self, new: &NewSession) -> Result<Session> {
        if let Some(session) = self.reattach_session(new).await? {
            return Ok(session);
        }
        let now = now_ms();
        let mut tx = self.begin().await?;
        if self.backend() == Backend::Postgres {
            // Serializes session starts of one user (SQLite has a single writer anyway).
            sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind(new.user_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        }
        // A concurrent start of the same id may have committed since the re-attach above: it is
        // this session, not one more against the limit.
        let exists = sqlx::query("SELECT id FROM sessions WHERE id = $1")
            .bind(new.id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if exists {
            tx.rollback().await?;
            return self
                .reattach_session(new)
                .await?
                .ok_or(StoreError::NotFound("session"));
        }
        if let Some(limit) = new.session_limit {
            let live = sqlx::query(
                "SELECT COUNT(*) AS n FROM sessions WHERE user_id = $1 AND ended_at IS NULL",
            )
            .bind(new.user_id.to_string())
            .fetch_one(&mut *tx)
            .await?
            .int("n")?;
            if live >= i64::from(limit) {
                return Err(StoreError::conflict(
                    ConflictKind::SessionLimit,
                    format!("too many sessions: the plan allows {limit} at once"),
                ));
            }
        }
        let inserted = sqlx::query(&format!("INSERT INTO sessions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, NULL, NULL, FALSE, 0, 0)"))
            .bind(new.id.to_string())
            .bind(new.device_id.to_string())
            .bind(new.user_id.to_string())
            .bind(new.gateway_id.to_string())
            .bind(new.node_id.map(|n| n.to_string()))
            .bind(new.client_region.clone())
            .bind(now)
            .execute(&mut *tx)
            .await;
        match inserted.map_err(StoreError::from) {
            Ok(_) => {}
            // Another start of the same id won the race: this one re-attaches to it.
            Err(e) if e.conflict_kind() == Some(ConflictKind::Duplicate) => {
                tx.rollback().await?;
                return self.reattach_session(new).await?.ok_or(e);
            }
            Err(e) => return Err(e),
        }
        tx.commit().await?;
        self.get_session(new.id).await
    }

    /// A session id that exists already is the same session coming back: a gateway retrying
    /// its start, or another gateway resuming it after the connection moved (SPEC §4.4). It
    /// becomes live again on the calling gateway, with a fresh heartbeat and without counting
    /// against the session limit a second time. A session an operator killed stays dead
    /// ([`StoreError::SessionKilled`]); an id of another device is a conflict. `None`: the id is
    /// new.
    pub async fn reattach_session(&self, new: &NewSession) -> Result<Option<Session>> {
        // Twice at most: a row a concurrent start commits between the update and the read is
        // re-attached by the second round.
        for _ in 0..2 {
            let done = sqlx::query(
                "UPDATE sessions SET gateway_id = $2, ended_at = NULL, end_reason = NULL, \
                 last_heartbeat_at = $3, node_id = COALESCE($4, node_id) \
                 WHERE id = $1 AND device_id = $5 AND kill_requested = FALSE",
            )
            .bind(new.id.to_string())
            .bind(new.gateway_id.to_string())
            .bind(now_ms())
            .bind(new.node_id.map(|n| n.to_string()))
            .bind(new.device_id.to_string())
            .execute(self.writer())
            .await?;
            if done.rows_affected() > 0 {
                return self.get_session(new.id).await.map(Some);
            }
            match self.get_session(new.id).await {
                Ok(s) if s.kill_requested => return Err(StoreError::SessionKilled),
                Ok(s) if s.device_id != new.device_id => {
                    return Err(StoreError::Conflict(Conflict::state(
                        "the session id belongs to another device",
                    )))
                }
                Ok(_) => continue,
                Err(StoreError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(Conflict::state(
            "the session changed while it was re-attached; retry",
        )))
    }

    pub async fn get_session(&self, id: Uuid) -> Result<Session> {
        self.fetch(id).await
    }

    /// Records a heartbeat from the session's gateway and returns the session (its node may
    /// have been moved by failover, or an admin may have asked to end it).
    pub async fn heartbeat_session(&self, id: Uuid, gateway: Uuid, at: Millis) -> Result<Session> {
        let done = sqlx::query("UPDATE sessions SET last_heartbeat_at = $3 WHERE id = $1 AND gateway_id = $2 AND ended_at IS NULL")
            .bind(id.to_string())
            .bind(gateway.to_string())
            .bind(at)
            .execute(self.writer())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("live session of this gateway"));
        }
        self.get_session(id).await
    }

    /// Ends a session; ending an ended session changes nothing.
    pub async fn end_session(
        &self,
        id: Uuid,
        gateway: Uuid,
        reason: &str,
        at: Millis,
    ) -> Result<Session> {
        let done = sqlx::query("UPDATE sessions SET ended_at = COALESCE(ended_at, $3), end_reason = COALESCE(end_reason, $4) WHERE id = $1 AND gateway_id = $2")
            .bind(id.to_string())
            .bind(gateway.to_string())
            .bind(at)
            .bind(reason)
            .execute(self.writer())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("session of this gateway"));
        }
        self.get_session(id).await
    }

    /// An admin asks for a session to end; its gateway closes it at the next heartbeat.
    pub async fn kill_session(&self, actor: &str, id: Uuid) -> Result<Session> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE sessions SET kill_requested = TRUE WHERE id = $1 AND ended_at IS NULL",
        )
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("live session"));
        }
        self.commit_audited(
            tx,
            NewAudit {
                actor,
                action: "session.kill",
                target_type: "session",
                target_id: Some(id.to_string()),
                detail: serde_json::json!({}),
            },
        )
        .await?;
        self.get_session(id).await
    }

    pub async fn list_sessions(&self, f: &SessionFilter) -> Result<Vec<Session>> {
        self.list_sessions_after(f, 0).await
    }

    /// [`Store::list_sessions`] after skipping `offset` sessions (newest first).
    pub async fn list_sessions_after(
        &self,
        f: &SessionFilter,
        offset: i64,
    ) -> Result<Vec<Session>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM sessions WHERE ($1 = FALSE OR ended_at IS NULL) \
             AND ($2 IS NULL OR user_id = $2) AND ($3 IS NULL OR device_id = $3) \
             AND ($4 IS NULL OR gateway_id = $4) AND ($5 IS NULL OR node_id = $5) \
             ORDER BY started_at DESC, id LIMIT $6 OFFSET $7"
        ))
        .bind(f.live_only)
        .bind(f.user_id.map(|u| u.to_string()))
        .bind(f.device_id.map(|u| u.to_string()))
        .bind(f.gateway_id.map(|u| u.to_string()))
        .bind(f.node_id.map(|u| u.to_string()))
        .bind(f.limit.clamp(1, 1000))
        .bind(offset.max(0))
        .fetch_all(self.reader())
        .await?;
        map_rows(rows, from_row)
    }

    /// Moves a live session to another node (failover); returns whether it was still live.
    pub async fn move_session(&self, id: Uuid, to: Uuid) -> Result<bool> {
        let done =
            sqlx::query("UPDATE sessions SET node_id = $2 WHERE id = $1 AND ended_at IS NULL")
                .bind(id.to_string())
                .bind(to.to_string())
                .execute(self.writer())
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends sessions whose gateway has not sent a heartbeat since `before`.
    pub async fn reap_stale_sessions(&self, before: Millis, now: Millis) -> Result<u64> {
        let done = sqlx::query("UPDATE sessions SET ended_at = $2, end_reason = 'stale' WHERE ended_at IS NULL AND last_heartbeat_at < $1")
            .bind(before)
            .bind(now)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }

    /// Ends the live sessions of gateways whose registry heartbeat stopped before `before`
    /// (they crashed or lost the control plane; a gateway that never sent one is left alone).
    /// A gateway that is in fact alive re-registers its sessions at their next heartbeat.
    pub async fn reap_sessions_of_lost_gateways(&self, before: Millis, now: Millis) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE sessions SET ended_at = $2, end_reason = 'gateway_lost' WHERE ended_at IS NULL              AND gateway_id IN (SELECT id FROM gateways WHERE last_seen_at IS NOT NULL AND last_seen_at < $1)",
        )
        .bind(before)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }

    /// Adds bytes to a session's running totals (from usage reports).
    pub(crate) async fn add_session_bytes(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: Uuid,
        up: i64,
        down: i64,
    ) -> Result<()> {
        sqlx::query("UPDATE sessions SET bytes_up = bytes_up + $2, bytes_down = bytes_down + $3 WHERE id = $1")
            .bind(id.to_string())
            .bind(up)
            .bind(down)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}
