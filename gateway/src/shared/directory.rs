//! The sessions this gateway holds, by id, device and user, so a shared event (revocation,
//! kill, quota, resume elsewhere) reaches exactly the sessions it names.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::command::ControlEvent;
use super::mailbox::{self, mailbox};
use httvps_proto::ErrorCode;
use httvps_shared_state::{RevocationTarget, SessionLease, SessionOwner, SharedEvent};

/// Commands queued per session; a session handles them at once, so a few suffice.
const COMMAND_QUEUE: usize = 4;

#[derive(Debug)]
struct Entry {
    owner: SessionOwner,
    commands: mailbox::Sender,
    /// Tells a connection from a later one with the same session id (a resume).
    generation: u64,
}

/// Live sessions of this gateway.
#[derive(Debug, Default)]
pub struct SessionDirectory {
    sessions: Mutex<HashMap<String, Entry>>,
    /// Connections whose session id a resume took over while they still finish their streams
    /// (a drain, SPEC §9.1): revocations, kills and quota still reach them.
    superseded: Mutex<Vec<(String, Entry)>>,
    generations: AtomicU64,
}

/// A session's place in the directory: its commands, and the key to remove it.
#[derive(Debug)]
pub struct Listing {
    /// Commands for the session (end it, and why).
    pub commands: mailbox::Receiver,
    generation: u64,
}

impl SessionDirectory {
    /// Adds a session; its commands arrive on the returned receiver. A session id already
    /// present (a resume racing its old connection here) replaces the old entry, which is told
    /// to end.
    pub fn insert(&self, session_id: &str, owner: SessionOwner) -> Listing {
        let (tx, rx) = mailbox(COMMAND_QUEUE);
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        let old = self.lock().insert(
            session_id.to_owned(),
            Entry {
                owner,
                commands: tx,
                generation,
            },
        );
        if let Some(old) = old {
            if old.commands.try_send(resumed_elsewhere()).is_ok() {
                let mut superseded = self.superseded();
                superseded.retain(|(_, e)| !e.commands.is_closed());
                superseded.push((session_id.to_owned(), old));
            }
        }
        Listing {
            commands: rx,
            generation,
        }
    }

    /// Removes a session (it ended), unless its id was taken over by a newer connection.
    pub fn remove(&self, session_id: &str, listing: &Listing) {
        self.superseded()
            .retain(|(_, e)| e.generation != listing.generation);
        let mut sessions = self.lock();
        if sessions
            .get(session_id)
            .is_some_and(|e| e.generation == listing.generation)
        {
            sessions.remove(session_id);
        }
    }

    /// Leases of every live session (for renewal).
    pub fn leases(&self) -> Vec<SessionLease> {
        self.lock()
            .iter()
            .map(|(id, e)| SessionLease {
                owner: e.owner.clone(),
                session_id: id.clone(),
            })
            .collect()
    }

    /// Live sessions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tells the sessions an event names to end; returns how many were told.
    pub fn apply(&self, event: &SharedEvent, this_gateway: &str) -> usize {
        let sessions = self.lock();
        let superseded = self.superseded();
        // Superseded connections are told too, except about a resume (that already happened).
        let draining = || superseded.iter().map(|(id, e)| (id.as_str(), e));
        let all = || {
            sessions
                .iter()
                .map(|(id, e)| (id.as_str(), e))
                .chain(draining())
        };
        let mut told = 0;
        let mut tell = |entry: &Entry, command: ControlEvent| {
            // A full queue means the session already has an end command pending.
            let _ = entry.commands.try_send(command);
            told += 1;
        };
        match event {
            SharedEvent::Revoked { target, reason } => {
                let code = if reason == "expired" {
                    ErrorCode::Expired
                } else {
                    ErrorCode::Revoked
                };
                for (_, entry) in all().filter(|(_, e)| matches_target(&e.owner, target)) {
                    tell(
                        entry,
                        ControlEvent::End {
                            code,
                            reason: reason.clone(),
                        },
                    );
                }
            }
            SharedEvent::SessionKilled { session_id } => {
                for (_, entry) in all().filter(|(id, _)| *id == session_id.as_str()) {
                    tell(
                        entry,
                        ControlEvent::End {
                            code: ErrorCode::Revoked,
                            reason: "killed".into(),
                        },
                    );
                }
            }
            SharedEvent::QuotaExceeded { user_id } => {
                for (_, entry) in all().filter(|(_, e)| quota_subject(&e.owner) == user_id) {
                    tell(
                        entry,
                        ControlEvent::End {
                            code: ErrorCode::QuotaExceeded,
                            reason: "quota_exceeded".into(),
                        },
                    );
                }
            }
            // Ends nothing: the user may use more again.
            SharedEvent::UsageReset { .. } => {}
            SharedEvent::SessionResumed {
                session_id,
                gateway_id,
            } => {
                if gateway_id != this_gateway {
                    if let Some(entry) = sessions.get(session_id) {
                        tell(entry, resumed_elsewhere());
                    }
                }
            }
        }
        told
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn superseded(&self) -> std::sync::MutexGuard<'_, Vec<(String, Entry)>> {
        self.superseded.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The subject whose quota counter a session draws on: its user, else its device.
pub fn quota_subject(owner: &SessionOwner) -> &str {
    owner.user_id.as_deref().unwrap_or(&owner.device_id)
}

fn matches_target(owner: &SessionOwner, target: &RevocationTarget) -> bool {
    match target {
        RevocationTarget::Device(id) => owner.device_id == *id,
        RevocationTarget::User(id) => owner.user_id.as_deref() == Some(id.as_str()),
    }
}

fn resumed_elsewhere() -> ControlEvent {
    ControlEvent::End {
        code: ErrorCode::NoError,
        reason: "resumed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(device: &str, user: &str) -> SessionOwner {
        SessionOwner {
            device_id: device.into(),
            user_id: Some(user.into()),
        }
    }

    #[test]
    fn events_reach_only_the_sessions_they_name() {
        let dir = SessionDirectory::default();
        let mut a = dir.insert("s1", owner("d1", "u1"));
        let mut b = dir.insert("s2", owner("d2", "u1"));
        let mut c = dir.insert("s3", owner("d3", "u2"));
        let revoke_d1 = SharedEvent::Revoked {
            target: RevocationTarget::Device("d1".into()),
            reason: "revoked".into(),
        };
        assert_eq!(dir.apply(&revoke_d1, "gw"), 1);
        assert!(matches!(
            a.commands.try_recv(),
            Some(ControlEvent::End {
                code: ErrorCode::Revoked,
                ..
            })
        ));
        assert!(b.commands.try_recv().is_none());
        let expire_u1 = SharedEvent::Revoked {
            target: RevocationTarget::User("u1".into()),
            reason: "expired".into(),
        };
        assert_eq!(dir.apply(&expire_u1, "gw"), 2);
        assert!(matches!(
            b.commands.try_recv(),
            Some(ControlEvent::End {
                code: ErrorCode::Expired,
                ..
            })
        ));
        assert!(c.commands.try_recv().is_none());
        let quota = SharedEvent::QuotaExceeded {
            user_id: "u2".into(),
        };
        assert_eq!(dir.apply(&quota, "gw"), 1);
        assert!(matches!(
            c.commands.try_recv(),
            Some(ControlEvent::End {
                code: ErrorCode::QuotaExceeded,
                ..
            })
        ));
        let here = SharedEvent::SessionResumed {
            session_id: "s3".into(),
            gateway_id: "gw".into(),
        };
        assert_eq!(
            dir.apply(&here, "gw"),
            0,
            "a resume on this gateway ends nothing"
        );
        dir.remove("s1", &a);
        assert_eq!(dir.len(), 2);
    }

    #[test]
    fn a_resumed_id_replaces_and_ends_the_old_entry() {
        let dir = SessionDirectory::default();
        let mut old = dir.insert("s1", owner("d1", "u1"));
        let new = dir.insert("s1", owner("d1", "u1"));
        assert!(matches!(
            old.commands.try_recv(),
            Some(ControlEvent::End {
                code: ErrorCode::NoError,
                ..
            })
        ));
        // The old connection's cleanup must not remove the new entry.
        dir.remove("s1", &old);
        assert_eq!(dir.len(), 1);
        dir.remove("s1", &new);
        assert!(dir.is_empty());
    }

    #[test]
    fn a_superseded_connection_still_draining_is_still_revoked_and_killed() {
        let dir = SessionDirectory::default();
        let mut old = dir.insert("s1", owner("d1", "u1"));
        let mut new = dir.insert("s1", owner("d1", "u1"));
        // The old one drains (it ignores the resume) and stays reachable.
        assert!(old.commands.try_recv().is_some());
        let revoke = SharedEvent::Revoked {
            target: RevocationTarget::Device("d1".into()),
            reason: "revoked".into(),
        };
        assert_eq!(dir.apply(&revoke, "gw"), 2);
        assert!(matches!(
            old.commands.try_recv(),
            Some(ControlEvent::End {
                code: ErrorCode::Revoked,
                ..
            })
        ));
        assert!(new.commands.try_recv().is_some());
        let kill = SharedEvent::SessionKilled {
            session_id: "s1".into(),
        };
        assert_eq!(dir.apply(&kill, "gw"), 2);
        // Once the old connection ended it is gone; the new one is untouched.
        dir.remove("s1", &old);
        assert_eq!(dir.apply(&kill, "gw"), 1);
        assert_eq!(dir.len(), 1);
    }
}
