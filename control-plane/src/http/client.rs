//! Who is calling: the client's address, seen through the reverse proxies the operator trusts
//! (`--trusted-proxies`), and the limits keyed on it (failed logins, bad gateway tokens).
//!
//! `X-Forwarded-For` is believed only when the connection comes from a trusted proxy, and then
//! read from the right: the first address that is not a trusted proxy is the client. Without
//! trusted proxies the connecting address is the client and the header is ignored, so nobody
//! can pick the address their failures are counted against.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;

use crate::app::AppState;
use crate::error::ApiError;

/// An address block: `10.0.0.0/8`, `2001:db8::/32`, or one address (`192.0.2.1`).
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let t = text.trim();
    t.parse::<IpNet>()
        .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{t:?} is not an address or address block like 10.0.0.0/8"))
}

/// Whether `ip` lies in one of `nets` (IPv4-mapped IPv6 addresses count as IPv4).
pub fn within(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    nets.iter().any(|n| n.contains(&ip))
}

/// The client's address: `peer` itself, or when `peer` is a trusted proxy, the rightmost
/// `X-Forwarded-For` address that is not one (the leftmost when all are; `peer` when the header
/// is missing or unreadable).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !within(trusted, peer) {
        return peer;
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        for hop in text.split(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => hops.push(ip.to_canonical()),
                // A malformed hop: nothing left of it can be believed.
                Err(_) => hops.clear(),
            }
        }
    }
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        client = hop;
        if !within(trusted, hop) {
            break;
        }
    }
    client
}

/// The calling client's address (see [`client_address`]).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Ok(ClientAddr(client_address(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

/// Failures per key within a window, with a bound on the keys remembered.
#[derive(Debug)]
pub struct FailureCounter<K> {
    map: HashMap<K, (u32, Instant)>,
    window: Duration,
    max_keys: usize,
}

impl<K: Hash + Eq + Clone> FailureCounter<K> {
    pub fn new(window: Duration, max_keys: usize) -> Self {
        FailureCounter {
            map: HashMap::new(),
            window,
            max_keys,
        }
    }

    /// Failures of `key` in the current window, and when the window started.
    pub fn get(&mut self, key: &K, now: Instant) -> Option<(u32, Instant)> {
        match self.map.get(key) {
            Some(&(n, since)) if now.duration_since(since) < self.window => Some((n, since)),
            Some(_) => {
                self.map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Counts one failure of `key`; returns its failures in the window.
    pub fn fail(&mut self, key: K, now: Instant) -> u32 {
        if self.map.len() >= self.max_keys && !self.map.contains_key(&key) {
            let window = self.window;
            self.map
                .retain(|_, (_, since)| now.duration_since(*since) < window);
            if self.map.len() >= self.max_keys {
                // Still full: forget the oldest entry rather than grow.
                if let Some(oldest) = self
                    .map
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(k, _)| k.clone())
                {
                    self.map.remove(&oldest);
                }
            }
        }
        let entry = self.map.entry(key).or_insert((0, now));
        if now.duration_since(entry.1) >= self.window {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
        entry.0
    }

    pub fn forget(&mut self, key: &K) {
        self.map.remove(key);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| parse_cidr(n).unwrap()).collect()
    }

    fn xff(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", value.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        // From a trusted proxy: the rightmost untrusted hop.
        assert_eq!(
            client_address(proxy, &xff("198.51.100.1, 203.0.113.7, 10.0.0.9"), &trusted),
            client
        );
        // Not from a trusted proxy: the header is the caller's own claim.
        assert_eq!(client_address(client, &xff("192.0.2.1"), &trusted), client);
        assert_eq!(client_address(proxy, &xff("192.0.2.1"), &[]), proxy);
        // Missing or garbage.
        assert_eq!(client_address(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(
            client_address(proxy, &xff("203.0.113.7, nonsense"), &trusted),
            proxy
        );
        // IPv4-mapped peers match IPv4 blocks.
        let mapped: IpAddr = "::ffff:10.0.0.5".parse().unwrap();
        assert_eq!(
            client_address(mapped, &xff("203.0.113.7"), &trusted),
            client
        );
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("example.com").is_err());
        assert!(within(&nets(&["192.0.2.1"]), "192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn failures_expire_and_stay_bounded() {
        let mut f = FailureCounter::new(Duration::from_secs(60), 100);
        let t0 = Instant::now();
        assert_eq!(f.fail("a", t0), 1);
        assert_eq!(f.fail("a", t0), 2);
        assert_eq!(f.get(&"a", t0), Some((2, t0)));
        assert_eq!(f.get(&"a", t0 + Duration::from_secs(60)), None);
        for i in 0..500 {
            f.fail(format!("k{i}").leak() as &str, t0);
        }
        assert!(f.len() <= 100);
    }
}

/// Failed logins allowed per (username, client address) within [`FAILURE_WINDOW`].
pub const MAX_LOGIN_FAILURES: u32 = 10;
/// Failed logins of one account (from any address) before each next attempt must wait.
pub const FREE_ACCOUNT_FAILURES: u32 = 3;
/// Bad gateway tokens allowed per client address within [`GATEWAY_WINDOW`].
pub const MAX_BAD_GATEWAY_TOKENS: u32 = 20;
/// How long failed logins are remembered.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long bad gateway tokens are remembered.
pub const GATEWAY_WINDOW: Duration = Duration::from_secs(60);
/// Most keys each limit remembers (bounded memory under a spray of names or addresses).
const MAX_TRACKED: usize = 10_000;

/// Per-account backoff: after [`FREE_ACCOUNT_FAILURES`] failed logins in a row (from any
/// address), each next attempt must wait twice as long as the one before since the last
/// failure (1 s, 2 s, 4 s, ...), at most `max`. It slows a password spray from many addresses
/// without letting anyone lock the account for long.
#[derive(Debug)]
pub struct AccountBackoff {
    map: HashMap<String, (u32, Instant)>,
    max: Duration,
}

impl AccountBackoff {
    pub fn new(max: Duration) -> Self {
        AccountBackoff {
            map: HashMap::new(),
            max,
        }
    }

    fn delay(&self, failures: u32) -> Duration {
        if failures < FREE_ACCOUNT_FAILURES {
            return Duration::ZERO;
        }
        let doublings = (failures - FREE_ACCOUNT_FAILURES).min(20);
        Duration::from_secs(1u64 << doublings).min(self.max)
    }

    /// How much longer the account's next attempt must wait, if at all.
    pub fn wait(&mut self, account: &str, now: Instant) -> Option<Duration> {
        let &(failures, last) = self.map.get(account)?;
        if now.duration_since(last) >= FAILURE_WINDOW {
            self.map.remove(account);
            return None;
        }
        let ready = last + self.delay(failures);
        (ready > now).then(|| ready - now)
    }

    pub fn fail(&mut self, account: String, now: Instant) {
        if self.map.len() >= MAX_TRACKED && !self.map.contains_key(&account) {
            self.map
                .retain(|_, (_, last)| now.duration_since(*last) < FAILURE_WINDOW);
            if self.map.len() >= MAX_TRACKED {
                if let Some(oldest) = self
                    .map
                    .iter()
                    .min_by_key(|(_, (_, last))| *last)
                    .map(|(k, _)| k.clone())
                {
                    self.map.remove(&oldest);
                }
            }
        }
        let entry = self.map.entry(account).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
    }

    pub fn succeed(&mut self, account: &str) {
        self.map.remove(account);
    }
}

/// The authentication limits of one service instance.
#[derive(Debug)]
pub struct AuthLimits {
    /// Failed logins per (lower-cased username, client address).
    pub logins: std::sync::Mutex<FailureCounter<(String, IpAddr)>>,
    /// Failed logins per lower-cased username.
    pub accounts: std::sync::Mutex<AccountBackoff>,
    /// Bad gateway tokens per client address.
    pub gateways: std::sync::Mutex<FailureCounter<IpAddr>>,
}

impl AuthLimits {
    pub fn new(account_backoff_max: Duration) -> Self {
        AuthLimits {
            logins: std::sync::Mutex::new(FailureCounter::new(FAILURE_WINDOW, MAX_TRACKED)),
            accounts: std::sync::Mutex::new(AccountBackoff::new(account_backoff_max)),
            gateways: std::sync::Mutex::new(FailureCounter::new(GATEWAY_WINDOW, MAX_TRACKED)),
        }
    }
}

/// Locks a limit's mutex (a panic elsewhere does not disable the limit).
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
