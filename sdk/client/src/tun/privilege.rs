//! The capability check before anything is touched: without CAP_NET_ADMIN neither the TUN
//! device nor the routes can be set up, and the error says so instead of a bare EPERM.

use anyhow::bail;

/// CAP_NET_ADMIN's bit in the capability sets (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;

/// Fails with a clear message unless this process holds CAP_NET_ADMIN.
pub fn require_net_admin() -> anyhow::Result<()> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    if !has_net_admin(&status) {
        bail!(
            "--tun needs the CAP_NET_ADMIN capability to create the TUN device and change \
             routes and DNS settings: run httvps-client as root (sudo), or give it the \
             capability (systemd: AmbientCapabilities=CAP_NET_ADMIN)"
        );
    }
    Ok(())
}

/// Whether the effective set in a `/proc/PID/status` text holds CAP_NET_ADMIN.
fn has_net_admin(status: &str) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

#[cfg(test)]
mod tests {
    use super::has_net_admin;

    #[test]
    fn reads_the_effective_set() {
        assert!(has_net_admin("Name:\tx\nCapEff:\t000001ffffffffff\n"));
        assert!(!has_net_admin("CapEff:\t0000000000000000\n"));
        // CAP_NET_RAW (13) alone is not enough.
        assert!(!has_net_admin("CapEff:\t0000000000002000\n"));
        assert!(!has_net_admin("no capability line"));
    }
}
