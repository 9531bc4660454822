//! Caps on connections to the public port: in total and per client address, checked at
//! accept in O(1) so a flood from one address neither exhausts the gateway nor slows the
//! accept loop.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Which cap refused a connection (the `reason` label of the refusal metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `--max-connections`.
    Total,
    /// `--max-connections-per-ip`.
    PerIp,
}

impl Refused {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refused::Total => "total",
            Refused::PerIp => "per_ip",
        }
    }
}

/// Open connections, in total and per address.
#[derive(Debug)]
pub struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    /// Only addresses with at least one open connection (so at most `max_total` entries).
    per_ip: HashMap<IpAddr, usize>,
}

impl ConnectionLimits {
    /// At most `max_total` connections, `max_per_ip` of them from one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            max_total,
            max_per_ip,
            open: Mutex::new(Open::default()),
        })
    }

    /// Counts a new connection from `ip`, or says which cap it would exceed. The connection
    /// counts until the permit is dropped.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, Refused> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.max_total {
            return Err(Refused::Total);
        }
        let count = open.per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return Err(Refused::PerIp);
        }
        *count += 1;
        open.total += 1;
        metrics::gauge!(crate::metrics::CONNECTIONS_ACTIVE).set(open.total as f64);
        Ok(ConnectionPermit {
            limits: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

/// One counted connection.
#[derive(Debug)]
pub struct ConnectionPermit {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
        metrics::gauge!(crate::metrics::CONNECTIONS_ACTIVE).set(open.total as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_per_address_and_in_total_and_free_on_drop() {
        let limits = ConnectionLimits::new(3, 2);
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        let a1 = limits.try_acquire(a).unwrap();
        let _a2 = limits.try_acquire(a).unwrap();
        assert_eq!(limits.try_acquire(a).unwrap_err(), Refused::PerIp);
        let _b1 = limits.try_acquire(b).unwrap();
        assert_eq!(limits.try_acquire(b).unwrap_err(), Refused::Total);
        drop(a1);
        assert_eq!(limits.open(), 2);
        let _b2 = limits.try_acquire(b).unwrap();
        drop(_b1);
        drop(_b2);
        assert!(
            !limits.open.lock().unwrap().per_ip.contains_key(&b),
            "no stale entries"
        );
    }
}
