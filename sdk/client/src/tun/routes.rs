//! The routes of VPN mode, set with iproute2 (`ip`) and removed again on exit:
//! - the gateways' addresses (and `--exclude` networks) keep the path they have now, as host
//!   routes over the original interface, so the tunnel's own connection never loops into it;
//! - everything else (`0.0.0.0/1` + `128.0.0.0/1` and `::/1` + `8000::/1`, more specific than
//!   any default route and so never touching it), or only the `--route` networks, goes into the
//!   TUN.
//!
//! Routes over the TUN vanish with the device even if the process is killed; only the bypass
//! routes would stay behind then, and they lead where the traffic went before anyway.

use std::net::IpAddr;
use std::process::Command;

use anyhow::{bail, Context};
use ipnet::IpNet;

/// What to route.
#[derive(Debug, Clone)]
pub struct RoutePlan {
    pub tun: String,
    /// Kept on their current path (the gateways' addresses as /32 or /128, `--exclude`).
    pub bypass: Vec<IpNet>,
    /// Into the TUN; empty: everything (both families).
    pub include: Vec<IpNet>,
}

/// The IPv4 and IPv6 halves that together cover everything.
pub fn everything() -> Vec<IpNet> {
    ["0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1"]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The routes added, removed again by [`RouteGuard::restore`] or on drop.
#[derive(Debug, Default)]
pub struct RouteGuard {
    /// `ip route del` arguments, newest last.
    added: Vec<Vec<String>>,
}

impl RouteGuard {
    /// Adds the plan's routes. On failure, what was added is removed again.
    pub fn install(plan: &RoutePlan) -> anyhow::Result<RouteGuard> {
        let mut guard = RouteGuard::default();
        for net in &plan.bypass {
            let Some(path) = current_path(net.network())? else {
                tracing::info!("{net}: no route outside the tunnel; nothing to keep");
                continue;
            };
            let mut spec = vec![net.to_string()];
            if let Some(via) = path.via {
                spec.extend(["via".into(), via.to_string()]);
            }
            spec.extend(["dev".into(), path.dev]);
            guard.add(family(net), spec, true)?;
        }
        let include = if plan.include.is_empty() {
            everything()
        } else {
            plan.include.clone()
        };
        for net in &include {
            let spec = vec![net.to_string(), "dev".into(), plan.tun.clone()];
            match guard.add(family(net), spec, false) {
                Ok(()) => {}
                // No IPv6 in this kernel or namespace: nothing can leak over it either, unless
                // some interface does carry IPv6 (then refusing to run is the safe answer).
                Err(e) if net.addr().is_ipv6() && !ipv6_in_use() => {
                    tracing::info!("IPv6 is off here; no IPv6 route into the tunnel: {e:#}");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(guard)
    }

    fn add(&mut self, family: &str, spec: Vec<String>, may_exist: bool) -> anyhow::Result<()> {
        let output = Command::new("ip")
            .args([family, "route", "add"])
            .args(&spec)
            .output()
            .context("running `ip` (iproute2 is needed for --tun)")?;
        if output.status.success() {
            self.added.push(spec);
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        if may_exist && stderr.contains("File exists") {
            // Someone's own route for it: it stays theirs.
            return Ok(());
        }
        bail!(
            "ip {family} route add {}: {}",
            spec.join(" "),
            stderr.trim()
        );
    }

    /// Removes the routes added, newest first; reports the first failure after trying all.
    pub fn restore(&mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some(spec) = self.added.pop() {
            let family = if spec[0].contains(':') { "-6" } else { "-4" };
            let result = Command::new("ip")
                .args([family, "route", "del"])
                .args(&spec)
                .output();
            match result {
                Ok(out) if out.status.success() => {}
                // A route over the TUN is gone with the device already.
                Ok(out) if String::from_utf8_lossy(&out.stderr).contains("No such process") => {}
                Ok(out) => {
                    first_error.get_or_insert_with(|| {
                        anyhow::anyhow!(
                            "ip route del {}: {}",
                            spec.join(" "),
                            String::from_utf8_lossy(&out.stderr).trim()
                        )
                    });
                }
                Err(e) => {
                    first_error.get_or_insert_with(|| anyhow::anyhow!("running `ip`: {e}"));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            tracing::error!("{e:#}");
        }
    }
}

fn family(net: &IpNet) -> &'static str {
    if net.addr().is_ipv4() {
        "-4"
    } else {
        "-6"
    }
}

/// Where traffic to an address goes now.
#[derive(Debug, PartialEq, Eq)]
struct Path {
    via: Option<IpAddr>,
    dev: String,
}

/// The current path to `addr` (`ip route get`); `None` when it has none or is this host.
fn current_path(addr: IpAddr) -> anyhow::Result<Option<Path>> {
    let family = if addr.is_ipv4() { "-4" } else { "-6" };
    let output = Command::new("ip")
        .args([family, "-o", "route", "get", &addr.to_string()])
        .output()
        .context("running `ip` (iproute2 is needed for --tun)")?;
    if !output.status.success() {
        // "Network is unreachable": no path to keep.
        return Ok(None);
    }
    Ok(parse_route_get(&String::from_utf8_lossy(&output.stdout)))
}

fn parse_route_get(line: &str) -> Option<Path> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if matches!(
        words.first(),
        Some(&("local" | "unreachable" | "blackhole" | "prohibit"))
    ) {
        return None;
    }
    let after = |key: &str| {
        words
            .iter()
            .position(|w| *w == key)
            .and_then(|i| words.get(i + 1))
    };
    let dev = after("dev")?.to_string();
    if dev == "lo" {
        return None;
    }
    let via = after("via").and_then(|v| v.parse().ok());
    Some(Path { via, dev })
}

/// Whether any interface has a global IPv6 route (a default or any non-link-local network).
fn ipv6_in_use() -> bool {
    Command::new("ip")
        .args(["-6", "route", "show"])
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout).lines().any(|l| {
                let dest = l.split_whitespace().next().unwrap_or("");
                !dest.starts_with("fe80") && !dest.starts_with("ff00") && dest != "::1"
            })
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ip_route_get() {
        assert_eq!(
            parse_route_get("10.77.1.1 via 10.77.1.1 dev veth0 src 10.77.1.2 uid 0 \\    cache "),
            Some(Path {
                via: Some("10.77.1.1".parse().unwrap()),
                dev: "veth0".into()
            })
        );
        assert_eq!(
            parse_route_get("10.77.1.1 dev veth0 src 10.77.1.2 uid 0 \\    cache "),
            Some(Path {
                via: None,
                dev: "veth0".into()
            })
        );
        assert_eq!(
            parse_route_get("local 127.0.0.1 dev lo src 127.0.0.1 uid 0 \\    cache <local> "),
            None
        );
    }

    #[test]
    fn everything_is_both_halves_of_both_families() {
        let all = everything();
        assert_eq!(all.len(), 4);
        assert!(all
            .iter()
            .any(|n| n.contains(&"1.2.3.4".parse::<IpAddr>().unwrap())));
        assert!(all
            .iter()
            .any(|n| n.contains(&"200.2.3.4".parse::<IpAddr>().unwrap())));
        assert!(all
            .iter()
            .any(|n| n.contains(&"2001:db8::1".parse::<IpAddr>().unwrap())));
    }
}
