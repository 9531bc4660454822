//! Network namespaces for the VPN-mode tests: a client namespace whose only link is a veth
//! pair to this (the host's) namespace, where the gateway, the Shadowsocks node and the targets
//! run. Addresses come from the documentation ranges (198.51.100.0/24 for the link,
//! 203.0.113.0/24 for the targets), on interfaces the test creates and deletes. Root is
//! needed; without it the test fails here, loudly.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::process::{Command, Output};

/// One client namespace and its link.
pub struct ClientNamespace {
    pub name: String,
    /// The host end of the veth pair (captures run here).
    pub host_link: String,
    pub host_ip: Ipv4Addr,
    pub client_ip: Ipv4Addr,
    /// Where the targets listen: on the host end, outside the link's network, so the client
    /// reaches them only by its default route.
    pub target_ip: Ipv4Addr,
}

/// Runs `args` and panics with its output unless it succeeds.
pub fn must(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} could not run (is it installed?): {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl ClientNamespace {
    /// Namespace number `index` (0..60) of this test process.
    pub fn create(index: u8) -> ClientNamespace {
        let pid = std::process::id();
        let ns = ClientNamespace {
            name: format!("htv-{pid}-{index}"),
            host_link: format!("hv{pid}x{index}"),
            host_ip: Ipv4Addr::new(198, 51, 100, 4 * index + 1),
            client_ip: Ipv4Addr::new(198, 51, 100, 4 * index + 2),
            target_ip: Ipv4Addr::new(203, 0, 113, 10 + index),
        };
        let client_link = format!("cv{pid}x{index}");
        must("ip", &["netns", "add", &ns.name]);
        // The namespace's own resolver file (bind-mounted over /etc/resolv.conf by
        // `ip netns exec`): the resolver it had before the tunnel.
        let etc = format!("/etc/netns/{}", ns.name);
        std::fs::create_dir_all(&etc).expect("create /etc/netns/NAME");
        std::fs::write(
            format!("{etc}/resolv.conf"),
            format!("nameserver {}\n", ns.target_ip),
        )
        .expect("write the namespace's resolv.conf");
        must(
            "ip",
            &[
                "link",
                "add",
                &ns.host_link,
                "type",
                "veth",
                "peer",
                "name",
                &client_link,
            ],
        );
        must("ip", &["link", "set", &client_link, "netns", &ns.name]);
        must(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/30", ns.host_ip),
                "dev",
                &ns.host_link,
            ],
        );
        must(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/32", ns.target_ip),
                "dev",
                &ns.host_link,
            ],
        );
        must("ip", &["link", "set", &ns.host_link, "up"]);
        ns.exec_ok(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/30", ns.client_ip),
                "dev",
                &client_link,
            ],
        );
        ns.exec_ok("ip", &["link", "set", &client_link, "up"]);
        ns.exec_ok("ip", &["link", "set", "lo", "up"]);
        ns.exec_ok(
            "ip",
            &["route", "add", "default", "via", &ns.host_ip.to_string()],
        );
        ns
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("ip netns exec {program}: {e}"))
    }

    pub fn exec_ok(&self, program: &str, args: &[&str]) -> Output {
        let out = self.exec(program, args);
        assert!(
            out.status.success(),
            "in {}: {program} {}: {}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The namespace's routes (both families) and resolver file, for before/after checks.
    pub fn network_state(&self) -> String {
        let v4 = self.exec_ok("ip", &["-4", "route", "show", "table", "all"]);
        let v6 = self.exec_ok("ip", &["-6", "route", "show", "table", "all"]);
        let links = self.exec_ok("ip", &["-o", "link", "show"]);
        let resolv = self.exec_ok("cat", &["/etc/resolv.conf"]);
        // The veth's link-local address arrives by itself some time after the link is up.
        let v6: String = String::from_utf8_lossy(&v6.stdout)
            .lines()
            .filter(|l| !l.starts_with("local fe80:"))
            .map(|l| format!("{l}\n"))
            .collect();
        format!(
            "{}\n{}\n{}\n{}",
            String::from_utf8_lossy(&v4.stdout),
            v6,
            String::from_utf8_lossy(&links.stdout)
                .lines()
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
                .collect::<Vec<_>>()
                .join(" "),
            String::from_utf8_lossy(&resolv.stdout)
        )
    }
}

impl Drop for ClientNamespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_link])
            .output();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.name));
    }
}
