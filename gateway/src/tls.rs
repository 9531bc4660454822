//! The TLS server configuration: loaded from PEM files or generated self-signed at start, and
//! swapped atomically when the files change or on SIGHUP, so certificates renew without a
//! restart. Connections already established keep the configuration they started with.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::GatewayError;

/// Where the certificate comes from.
#[derive(Debug)]
enum CertOrigin {
    /// PEM files, re-read when their modification times change.
    Files {
        cert: PathBuf,
        key: PathBuf,
        /// Modification times at the last (re)load.
        loaded: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
    },
    /// Generated at start; never reloaded.
    SelfSigned,
}

/// The current rustls server configuration and the fingerprint of its leaf certificate.
#[derive(Debug)]
pub struct TlsSource {
    origin: CertOrigin,
    current: ArcSwap<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    config: Arc<ServerConfig>,
    fingerprint: String,
}

impl TlsSource {
    /// Loads the certificate chain and key from PEM files.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, GatewayError> {
        let loaded = load_files(cert, key)?;
        Ok(TlsSource {
            origin: CertOrigin::Files {
                cert: cert.to_owned(),
                key: key.to_owned(),
                loaded: Mutex::new((mtime(cert), mtime(key))),
            },
            current: ArcSwap::from_pointee(loaded),
        })
    }

    /// Generates a self-signed certificate for `names` (host names or IP addresses).
    pub fn self_signed(names: &[String]) -> Result<Self, GatewayError> {
        let certified = rcgen::generate_simple_self_signed(names.to_vec())
            .map_err(|e| GatewayError::Tls(format!("generating a self-signed certificate: {e}")))?;
        let cert = certified.cert.der().clone();
        let key = PrivateKeyDer::try_from(certified.key_pair.serialize_der())
            .map_err(|e| GatewayError::Tls(format!("self-signed key: {e}")))?;
        let loaded = build(vec![cert], key)?;
        Ok(TlsSource {
            origin: CertOrigin::SelfSigned,
            current: ArcSwap::from_pointee(loaded),
        })
    }

    /// The configuration new connections use.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current.load().config.clone()
    }

    /// SHA-256 of the DER leaf certificate, 64 lowercase hex digits (the `fp` of a connection
    /// link, which clients pin).
    pub fn fingerprint(&self) -> String {
        self.current.load().fingerprint.clone()
    }

    /// Whether the certificate was generated at start.
    pub fn is_self_signed(&self) -> bool {
        matches!(self.origin, CertOrigin::SelfSigned)
    }

    /// Re-reads the files if their modification time changed (or always when `force`).
    /// Returns whether a new configuration is in use. A failed reload keeps the old one.
    pub fn reload(&self, force: bool) -> Result<bool, GatewayError> {
        let CertOrigin::Files { cert, key, loaded } = &self.origin else {
            return Ok(false);
        };
        let now = (mtime(cert), mtime(key));
        {
            let last = loaded
                .lock()
                .map_err(|_| GatewayError::Tls("reload state poisoned".into()))?;
            if !force && *last == now {
                return Ok(false);
            }
        }
        let fresh = load_files(cert, key)?;
        let fingerprint = fresh.fingerprint.clone();
        self.current.store(Arc::new(fresh));
        if let Ok(mut last) = loaded.lock() {
            *last = now;
        }
        tracing::info!(%fingerprint, "TLS certificate reloaded");
        Ok(true)
    }

    /// Reloads on SIGHUP and whenever a poll every `interval` sees the files changed, until
    /// `shutdown` is cancelled. A no-op for self-signed certificates.
    pub fn spawn_reloader(
        self: Arc<Self>,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if self.is_self_signed() {
                return;
            }
            let mut hangup = sighup();
            let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let force = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => false,
                    _ = recv_hangup(&mut hangup) => true,
                };
                if let Err(e) = self.reload(force) {
                    tracing::error!(error = %e, "TLS reload failed; keeping the previous certificate");
                }
            }
        })
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn sighup() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}
#[cfg(not(unix))]
fn sighup() -> Hangup {}

#[cfg(unix)]
async fn recv_hangup(signal: &mut Hangup) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
#[cfg(not(unix))]
async fn recv_hangup(_: &mut Hangup) {
    std::future::pending().await
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load_files(cert: &Path, key: &Path) -> Result<Loaded, GatewayError> {
    let cert_pem = std::fs::read(cert)
        .map_err(|e| GatewayError::io(format!("reading {}", cert.display()), e))?;
    let key_pem = std::fs::read(key)
        .map_err(|e| GatewayError::io(format!("reading {}", key.display()), e))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| GatewayError::Tls(format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(GatewayError::Tls(format!(
            "{}: no certificate found",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| GatewayError::Tls(format!("{}: {e}", key.display())))?;
    build(chain, key)
}

fn build(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Loaded, GatewayError> {
    let fingerprint = chain
        .first()
        .map(|leaf| fingerprint(leaf))
        .unwrap_or_default();
    // The provider is chosen explicitly: other crates in the process (reqwest) may enable a
    // second one, and then rustls cannot pick a process default.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| GatewayError::Tls(e.to_string()))?;
    // HTTP/1.1 only: the upgrade needs it, and a plain web server would offer it too.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // 0-RTT would make HELLO replayable (SPEC §2.1).
    config.max_early_data_size = 0;
    Ok(Loaded {
        config: Arc::new(config),
        fingerprint,
    })
}

/// SHA-256 of a DER certificate as 64 lowercase hex digits.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_has_a_fingerprint() {
        let tls = TlsSource::self_signed(&["localhost".into()]).unwrap();
        assert_eq!(tls.fingerprint().len(), 64);
        assert!(!tls.reload(true).unwrap(), "self-signed never reloads");
    }

    #[test]
    fn files_reload_when_changed() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let write = |name: &str| {
            let c = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
            std::fs::write(&cert, c.cert.pem()).unwrap();
            std::fs::write(&key, c.key_pair.serialize_pem()).unwrap();
            fingerprint(c.cert.der())
        };
        let first = write("a.example");
        let tls = TlsSource::from_files(&cert, &key).unwrap();
        assert_eq!(tls.fingerprint(), first);
        assert!(
            !tls.reload(false).unwrap(),
            "unchanged files are not re-read"
        );
        let second = write("b.example");
        assert!(tls.reload(true).unwrap());
        assert_eq!(tls.fingerprint(), second);
        std::fs::write(&key, "garbage").unwrap();
        assert!(tls.reload(true).is_err());
        assert_eq!(
            tls.fingerprint(),
            second,
            "a failed reload keeps the old config"
        );
    }
}
