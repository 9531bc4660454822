//! The system resolver while the tunnel runs: /etc/resolv.conf names the tunnel's DNS address
//! only, so every query goes into the TUN; the original text comes back on exit. The file is
//! rewritten in place (not renamed over): in a network namespace it is a bind mount of
//! /etc/netns/NAME/resolv.conf, which a rename cannot replace.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Holds the original resolv.conf; [`ResolverGuard::restore`] (or dropping it) puts it back.
#[derive(Debug)]
pub struct ResolverGuard {
    path: PathBuf,
    original: Option<Vec<u8>>,
    ours: Vec<u8>,
}

impl ResolverGuard {
    /// Points `path` at `nameserver` alone.
    pub fn install(path: &Path, nameserver: IpAddr) -> anyhow::Result<ResolverGuard> {
        let original =
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let ours = format!(
            "# written by httvps-client --tun; the original comes back when it exits\n\
             nameserver {nameserver}\noptions edns0\n"
        )
        .into_bytes();
        std::fs::write(path, &ours).with_context(|| format!("writing {}", path.display()))?;
        Ok(ResolverGuard {
            path: path.to_owned(),
            original: Some(original),
            ours,
        })
    }

    /// Writes the original text back, unless someone else changed the file meanwhile (their
    /// version is kept).
    pub fn restore(&mut self) -> anyhow::Result<()> {
        let Some(original) = self.original.take() else {
            return Ok(());
        };
        let now = std::fs::read(&self.path).unwrap_or_default();
        if now != self.ours {
            tracing::warn!(
                "{} was changed while the tunnel ran; leaving it as it is",
                self.path.display()
            );
            return Ok(());
        }
        std::fs::write(&self.path, original)
            .with_context(|| format!("restoring {}", self.path.display()))
    }
}

impl Drop for ResolverGuard {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            tracing::error!("{e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_and_restores_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "nameserver 192.0.2.53\n").unwrap();
        let mut guard = ResolverGuard::install(&path, "198.18.0.2".parse().unwrap()).unwrap();
        let during = std::fs::read_to_string(&path).unwrap();
        assert!(during.contains("nameserver 198.18.0.2\n"));
        assert!(!during.contains("192.0.2.53"));
        guard.restore().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "nameserver 192.0.2.53\n"
        );
    }

    #[test]
    fn keeps_a_version_someone_else_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "nameserver 192.0.2.53\n").unwrap();
        let guard = ResolverGuard::install(&path, "198.18.0.2".parse().unwrap()).unwrap();
        std::fs::write(&path, "nameserver 192.0.2.99\n").unwrap();
        drop(guard);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "nameserver 192.0.2.99\n"
        );
    }
}
