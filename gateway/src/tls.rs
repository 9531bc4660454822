//! The TLS server configuration: loaded from PEM files or generated self-signed at start, and
//! swapped atomically when the files change or on SIGHUP, so certificates renew without a
//! restart. Connections already established keep the configuration they started with. In
//! standalone mode the certificate can also come from an ACME CA (see [`acme`]).

pub mod acme;

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
    /// Issued by an ACME CA and renewed in the background; a self-signed certificate for the
    /// same names is served until the first one is there.
    Acme(acme::Acme),
}

/// The current rustls server configuration and the fingerprint of its leaf certificate.
#[derive(Debug)]
pub struct TlsSource {
    origin: CertOrigin,
    /// Shared with the ACME cache, which swaps in each certificate it loads or stores.
    current: Arc<ArcSwap<Loaded>>,
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
            current: Arc::new(ArcSwap::from_pointee(loaded)),
        })
    }

    /// Certificates for `settings.domains` from an ACME CA. Until the first one is loaded from
    /// the cache or issued (once the gateway runs, see [`TlsSource::spawn_reloader`]), a
    /// self-signed certificate for the same names is served.
    pub fn acme(settings: &acme::AcmeSettings) -> Result<Self, GatewayError> {
        let interim = Self::self_signed(&settings.domains)?;
        let current = interim.current;
        let acme = acme::Acme::new(settings, provider(), current.clone())?;
        Ok(TlsSource {
            origin: CertOrigin::Acme(acme),
            current,
        })
    }

    /// What answers an ACME CA's TLS-ALPN-01 validations, when certificates come from ACME.
    pub fn challenges(&self) -> Option<acme::Challenges> {
        match &self.origin {
            CertOrigin::Acme(acme) => Some(acme.challenges()),
            _ => None,
        }
    }

    /// Generates a self-signed certificate for `names` (host names or IP addresses), shaped
    /// like one an operator makes with `openssl req -x509` (see [`self_signed_params`]).
    pub fn self_signed(names: &[String]) -> Result<Self, GatewayError> {
        let generating = |e: rcgen::Error| {
            GatewayError::Tls(format!("generating a self-signed certificate: {e}"))
        };
        let key_pair = rcgen::KeyPair::generate().map_err(generating)?;
        let cert = self_signed_params(names, time::OffsetDateTime::now_utc())?
            .self_signed(&key_pair)
            .map_err(generating)?;
        let cert = cert.der().clone();
        let key = PrivateKeyDer::try_from(key_pair.serialize_der())
            .map_err(|e| GatewayError::Tls(format!("self-signed key: {e}")))?;
        let loaded = build(vec![cert], key)?;
        Ok(TlsSource {
            origin: CertOrigin::SelfSigned,
            current: Arc::new(ArcSwap::from_pointee(loaded)),
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

    /// Whether certificates come from an ACME CA (they change at each renewal: clients verify
    /// them through the web PKI rather than a pin).
    pub fn is_acme(&self) -> bool {
        matches!(self.origin, CertOrigin::Acme(_))
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
    /// `shutdown` is cancelled. A no-op for self-signed certificates. With ACME, loads the
    /// cached certificate, orders and renews (see [`acme::Acme::run`]).
    pub fn spawn_reloader(
        self: Arc<Self>,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if self.is_self_signed() {
                return;
            }
            if let CertOrigin::Acme(acme) = &self.origin {
                acme.run(shutdown).await;
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

/// Validity of a generated certificate (what ACME issuers use).
const SELF_SIGNED_VALIDITY: time::Duration = time::Duration::days(90);

/// The parameters of a generated certificate: subject CN and O and the first SAN are the first
/// name, validity 90 days starting up to two days in the past, a random serial. Nothing in it
/// is the same across deployments (the library default was CN "rcgen self signed cert", valid
/// 1975 to 4096: one search finds every such server).
pub fn self_signed_params(
    names: &[String],
    now: time::OffsetDateTime,
) -> Result<rcgen::CertificateParams, GatewayError> {
    let first = names
        .first()
        .ok_or_else(|| GatewayError::Tls("a self-signed certificate needs a name".into()))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .map_err(|e| GatewayError::Tls(format!("self-signed names: {e}")))?;
    let mut subject = rcgen::DistinguishedName::new();
    subject.push(rcgen::DnType::OrganizationName, first.as_str());
    subject.push(rcgen::DnType::CommonName, first.as_str());
    params.distinguished_name = subject;
    let backdate = time::Duration::seconds(rand::Rng::gen_range(
        &mut rand::thread_rng(),
        3_600..=172_800,
    ));
    params.not_before = now - backdate;
    params.not_after = params.not_before + SELF_SIGNED_VALIDITY;
    let mut serial: [u8; 16] = rand::random();
    serial[0] &= 0x7f; // a positive INTEGER
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    Ok(params)
}

/// TLS session tickets as nginx issues them: its `ssl_session_timeout` (5 min) is the
/// lifetime a ticket announces; the keys rotate as the wrapped ticketer decides.
#[derive(Debug)]
struct NginxTicketLifetime(Arc<dyn rustls::server::ProducesTickets>);

/// nginx's default `ssl_session_timeout`.
const TICKET_LIFETIME_SECS: u32 = 300;

impl rustls::server::ProducesTickets for NginxTicketLifetime {
    fn enabled(&self) -> bool {
        self.0.enabled()
    }

    fn lifetime(&self) -> u32 {
        TICKET_LIFETIME_SECS
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.0.encrypt(plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.0.decrypt(cipher)
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
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| GatewayError::Tls(e.to_string()))?;
    // nginx's ALPN list without HTTP/2 (server preference, as nginx selects): the upgrade
    // needs HTTP/1.1, and a client offering only HTTP/1.0 is served as nginx would serve it.
    config.alpn_protocols = vec![
        b"http/1.1".to_vec(),
        b"http/1.0".to_vec(),
        b"http/0.9".to_vec(),
    ];
    // As close to nginx (Debian's nginx.conf) as rustls allows: the server's cipher order
    // (OpenSSL's, see `openssl_rank`), TLS 1.2 session tickets (rustls has none by default),
    // a 300 s ticket lifetime.
    config.ignore_client_order = true;
    let ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
        .map_err(|e| GatewayError::Tls(format!("session ticket keys: {e}")))?;
    config.ticketer = Arc::new(NginxTicketLifetime(ticketer));
    // 0-RTT would make HELLO replayable (SPEC §2.1).
    config.max_early_data_size = 0;
    Ok(Loaded {
        config: Arc::new(config),
        fingerprint,
    })
}

/// The crypto provider of every configuration. It is chosen explicitly: other crates in the
/// process (reqwest) may enable a second one, and then rustls cannot pick a process default.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites.sort_by_key(openssl_rank);
    Arc::new(provider)
}

/// Position of a suite in OpenSSL's order for Debian nginx's `ssl_ciphers HIGH:!aNULL:!MD5`
/// (`openssl ciphers -v`): TLS 1.3 first, then AES-256-GCM, ChaCha20, AES-128-GCM, ECDSA
/// before RSA. With the server's order deciding, the suite chosen for a client is nginx's.
fn openssl_rank(suite: &rustls::SupportedCipherSuite) -> u8 {
    use rustls::CipherSuite as C;
    match suite.suite() {
        C::TLS13_AES_256_GCM_SHA384 => 0,
        C::TLS13_CHACHA20_POLY1305_SHA256 => 1,
        C::TLS13_AES_128_GCM_SHA256 => 2,
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => 3,
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 4,
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => 5,
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => 6,
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => 7,
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 8,
        _ => 9,
    }
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
    fn self_signed_certificates_look_made_by_an_operator() {
        let now = time::OffsetDateTime::now_utc();
        let a = self_signed_params(&["vpn.example.org".into(), "10.0.0.1".into()], now).unwrap();
        let b = self_signed_params(&["vpn.example.org".into()], now).unwrap();
        let cn = a.distinguished_name.get(&rcgen::DnType::CommonName);
        assert_eq!(
            cn,
            Some(&rcgen::DnValue::Utf8String("vpn.example.org".into()))
        );
        assert!(a
            .distinguished_name
            .get(&rcgen::DnType::OrganizationName)
            .is_some());
        assert_eq!(a.subject_alt_names.len(), 2);
        assert!(a.not_before < now && a.not_before > now - time::Duration::days(3));
        assert_eq!(a.not_after - a.not_before, time::Duration::days(90));
        assert_ne!(a.serial_number, b.serial_number, "random serials");
        assert!(self_signed_params(&[], now).is_err());
    }

    #[test]
    fn tickets_follow_nginx() {
        let tls = TlsSource::self_signed(&["localhost".into()]).unwrap();
        let config = tls.config();
        assert!(config.ignore_client_order);
        assert!(config.ticketer.enabled(), "TLS 1.2 session tickets on");
        assert_eq!(config.ticketer.lifetime(), 300);
    }

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
