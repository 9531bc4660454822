//! A session's command mailbox: a bounded queue with one receiver that allocates nothing
//! while empty. Commands (end the session, its access ends) are rare, and every idle session
//! holds a mailbox: a tokio mpsc channel allocates a block of 32 slots when it is made, about
//! 1.5 KiB per session here, for a queue of 4.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::command::ControlEvent;

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the receiver when a command arrives.
    arrived: Notify,
}

#[derive(Debug, Default)]
struct Queue {
    commands: VecDeque<ControlEvent>,
    receiver_gone: bool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pop(&self) -> Option<ControlEvent> {
        let mut queue = self.lock();
        let command = queue.commands.pop_front();
        if queue.commands.is_empty() {
            queue.commands = VecDeque::new();
        }
        command
    }
}

/// The directory's side: queues commands.
#[derive(Debug)]
pub struct Sender {
    shared: Arc<Shared>,
    capacity: usize,
}

/// The session's side.
#[derive(Debug)]
pub struct Receiver {
    shared: Arc<Shared>,
}

/// A mailbox holding at most `capacity` commands.
pub fn mailbox(capacity: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        arrived: Notify::new(),
    });
    (
        Sender {
            shared: shared.clone(),
            capacity: capacity.max(1),
        },
        Receiver { shared },
    )
}

/// Why a command was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// The queue is full (the session already has commands pending).
    Full,
    /// The session is gone.
    Closed,
}

impl Sender {
    /// Queues `command` unless the queue is full or the session is gone.
    pub fn try_send(&self, command: ControlEvent) -> Result<(), SendError> {
        let mut queue = self.shared.lock();
        if queue.receiver_gone {
            return Err(SendError::Closed);
        }
        if queue.commands.len() >= self.capacity {
            return Err(SendError::Full);
        }
        queue.commands.push_back(command);
        drop(queue);
        self.shared.arrived.notify_one();
        Ok(())
    }

    /// Whether the session is gone.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().receiver_gone
    }
}

impl Receiver {
    /// The next command (waits for one; the queue's memory goes once it is empty).
    pub async fn recv(&mut self) -> ControlEvent {
        loop {
            // Registered before looking, so a command queued in between still wakes us.
            let arrived = self.shared.arrived.notified();
            if let Some(command) = self.shared.pop() {
                return command;
            }
            arrived.await;
        }
    }

    /// The next command if one is queued.
    pub fn try_recv(&mut self) -> Option<ControlEvent> {
        self.shared.pop()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut queue = self.shared.lock();
        queue.receiver_gone = true;
        queue.commands.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use httvps_proto::ErrorCode;

    fn end(reason: &str) -> ControlEvent {
        ControlEvent::End {
            code: ErrorCode::Revoked,
            reason: reason.into(),
        }
    }

    #[tokio::test]
    async fn commands_arrive_in_order_up_to_the_capacity() {
        let (tx, mut rx) = mailbox(2);
        assert!(rx.try_recv().is_none());
        assert_eq!(tx.try_send(end("a")), Ok(()));
        assert_eq!(tx.try_send(ControlEvent::AccessEnds(Some(7))), Ok(()));
        assert_eq!(tx.try_send(end("c")), Err(SendError::Full));
        assert!(matches!(rx.recv().await, ControlEvent::End { reason, .. } if reason == "a"));
        assert!(matches!(
            rx.try_recv(),
            Some(ControlEvent::AccessEnds(Some(7)))
        ));
        assert!(rx.try_recv().is_none());
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken() {
        let (tx, mut rx) = mailbox(4);
        let waiting = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        tx.try_send(end("now")).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .unwrap();
        assert!(matches!(got, ControlEvent::End { reason, .. } if reason == "now"));
    }

    #[test]
    fn a_dropped_receiver_closes_the_mailbox() {
        let (tx, rx) = mailbox(4);
        assert!(!tx.is_closed());
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.try_send(end("late")), Err(SendError::Closed));
    }
}
