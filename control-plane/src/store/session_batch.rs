//! Session starts, heartbeats and ends of one gateway in a few statements each, for the gateway
//! API's session batch: a reconnect storm of thousands of devices costs a handful of round trips
//! per batch instead of about ten per session.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::multi_row::{in_list, padded, ROWS_PER_STATEMENT};
use super::row::RowExt;
use super::sessions::{from_row, NewSession, COLUMNS};
use super::{map_rows, Backend, ConflictKind, Result, Store, StoreError};
use crate::model::{now_ms, Millis, Session};

impl Store {
    /// Starts many sessions at once, each with the outcome [`Store::start_session`] would give
    /// it. New ids are counted against their users' limits and inserted in one transaction: the
    /// users' rows are locked once (in id order, so two batches cannot deadlock), their live
    /// sessions counted once, and the rows inserted by one statement. An id that exists already
    /// (a retried start or a resume) goes through [`Store::start_session`], which re-attaches it.
    pub async fn start_sessions(&self, news: &[NewSession]) -> Result<Vec<Result<Session>>> {
        let mut outcomes: Vec<Option<Result<Session>>> = news.iter().map(|_| None).collect();
        let mut again = Vec::new();
        for chunk_start in (0..news.len()).step_by(ROWS_PER_STATEMENT) {
            let chunk = &news[chunk_start..(chunk_start + ROWS_PER_STATEMENT).min(news.len())];
            for (i, outcome) in self.start_new_sessions(chunk).await? {
                match outcome {
                    Some(outcome) => outcomes[chunk_start + i] = Some(outcome),
                    None => again.push(chunk_start + i),
                }
            }
        }
        for i in again {
            outcomes[i] = Some(self.start_session(&news[i]).await);
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Err(StoreError::NotFound("session start"))))
            .collect())
    }

    /// One transaction for at most [`ROWS_PER_STATEMENT`] starts; `None` for an id that exists
    /// already or comes twice (the single path decides those).
    async fn start_new_sessions(
        &self,
        news: &[NewSession],
    ) -> Result<Vec<(usize, Option<Result<Session>>)>> {
        let mut users: Vec<String> = news.iter().map(|n| n.user_id.to_string()).collect();
        users.sort();
        users.dedup();
        let ids: Vec<String> = news.iter().map(|n| n.id.to_string()).collect();
        let now = now_ms();
        let mut tx = self.begin().await?;
        if self.backend() == Backend::Postgres {
            // Serializes starts of one user with every other start (SQLite has one writer).
            let sql = format!(
                "SELECT id FROM users WHERE id IN ({}) ORDER BY id FOR UPDATE",
                in_list(1, &users)
            );
            let mut lock = sqlx::query(&sql);
            for user in padded(&users) {
                lock = lock.bind(user);
            }
            lock.fetch_all(&mut *tx).await?;
        }
        let sql = format!("SELECT id FROM sessions WHERE id IN ({})", in_list(1, &ids));
        let mut exists = sqlx::query(&sql);
        for id in padded(&ids) {
            exists = exists.bind(id);
        }
        let existing: HashSet<String> = exists
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.text("id"))
            .collect::<Result<_>>()?;
        let sql = format!(
            "SELECT user_id, COUNT(*) AS n FROM sessions WHERE ended_at IS NULL \
             AND user_id IN ({}) GROUP BY user_id",
            in_list(1, &users)
        );
        let mut count = sqlx::query(&sql);
        for user in padded(&users) {
            count = count.bind(user);
        }
        let mut live: HashMap<String, i64> = HashMap::new();
        for row in count.fetch_all(&mut *tx).await? {
            live.insert(row.text("user_id")?, row.int("n")?);
        }

        let mut outcomes = Vec::with_capacity(news.len());
        let mut inserted = Vec::new();
        let mut seen = HashSet::new();
        for (i, new) in news.iter().enumerate() {
            let id = &ids[i];
            if existing.contains(id) || !seen.insert(id.as_str()) {
                outcomes.push((i, None));
                continue;
            }
            if let Some(limit) = new.session_limit {
                let n = live.entry(new.user_id.to_string()).or_insert(0);
                if *n >= i64::from(limit) {
                    outcomes.push((
                        i,
                        Some(Err(StoreError::conflict(
                            ConflictKind::SessionLimit,
                            format!("too many sessions: the plan allows {limit} at once"),
                        ))),
                    ));
                    continue;
                }
                *n += 1;
            }
            inserted.push(i);
        }
        if !inserted.is_empty() {
            let rows = (0..inserted.len())
                .map(|k| {
                    let p = k * 7;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, NULL, NULL, FALSE, 0, 0)",
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4,
                        p + 5,
                        p + 6,
                        p + 7,
                        p + 7
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("INSERT INTO sessions ({COLUMNS}) VALUES {rows}");
            let mut insert = sqlx::query(&sql);
            for &i in &inserted {
                let new = &news[i];
                insert = insert
                    .bind(ids[i].clone())
                    .bind(new.device_id.to_string())
                    .bind(new.user_id.to_string())
                    .bind(new.gateway_id.to_string())
                    .bind(new.node_id.map(|n| n.to_string()))
                    .bind(new.client_region.clone())
                    .bind(now);
            }
            insert.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        for i in inserted {
            let new = &news[i];
            outcomes.push((
                i,
                Some(Ok(Session {
                    id: new.id,
                    device_id: new.device_id,
                    user_id: new.user_id,
                    gateway_id: new.gateway_id,
                    node_id: new.node_id,
                    client_region: new.client_region.clone(),
                    started_at: now,
                    last_heartbeat_at: now,
                    ended_at: None,
                    end_reason: None,
                    kill_requested: false,
                    bytes_up: 0,
                    bytes_down: 0,
                })),
            ));
        }
        Ok(outcomes)
    }

    /// Records a heartbeat of each of `ids` that is live on `gateway`, in one statement, and
    /// returns those sessions (the rest are not live there: [`Store::heartbeat_session`]'s
    /// not-found).
    pub async fn heartbeat_sessions(
        &self,
        ids: &[Uuid],
        gateway: Uuid,
        at: Millis,
    ) -> Result<HashMap<Uuid, Session>> {
        let mut live = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "UPDATE sessions SET last_heartbeat_at = $1 WHERE gateway_id = $2 \
                 AND ended_at IS NULL AND id IN ({}) RETURNING {COLUMNS}",
                in_list(3, chunk)
            );
            let mut update = sqlx::query(&sql).bind(at).bind(gateway.to_string());
            for id in padded(chunk) {
                update = update.bind(id.to_string());
            }
            let rows = update.fetch_all(self.writer()).await?;
            for session in map_rows(rows, from_row)? {
                live.insert(session.id, session);
            }
        }
        Ok(live)
    }

    /// Ends each of `ends` (id, reason) that belongs to `gateway`, one statement per reason;
    /// ending an ended session changes nothing. Returns the ids found.
    pub async fn end_sessions(
        &self,
        ends: &[(Uuid, &str)],
        gateway: Uuid,
        at: Millis,
    ) -> Result<HashSet<Uuid>> {
        let mut by_reason: HashMap<&str, Vec<Uuid>> = HashMap::new();
        for (id, reason) in ends {
            by_reason.entry(reason).or_default().push(*id);
        }
        let mut found = HashSet::with_capacity(ends.len());
        for (reason, ids) in by_reason {
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    "UPDATE sessions SET ended_at = COALESCE(ended_at, $1), \
                     end_reason = COALESCE(end_reason, $2) WHERE gateway_id = $3 \
                     AND id IN ({}) RETURNING id",
                    in_list(4, chunk)
                );
                let mut update = sqlx::query(&sql)
                    .bind(at)
                    .bind(reason)
                    .bind(gateway.to_string());
                for id in padded(chunk) {
                    update = update.bind(id.to_string());
                }
                for row in update.fetch_all(self.writer()).await? {
                    found.insert(row.id("id")?);
                }
            }
        }
        Ok(found)
    }
}
