//! Certificates from an ACME CA (Let's Encrypt by default) in standalone mode, through the
//! `rustls-acme` crate: TLS-ALPN-01 on the gateway's own TLS port, renewal in the background,
//! account key and certificate kept in a cache directory across restarts.
//!
//! Only a ClientHello that offers exactly the `acme-tls/1` protocol for the domain of the
//! validation in progress (the CA validating) gets the challenge configuration; every other client gets the gateway's ordinary configuration
//! (cipher order, tickets, ALPN list), whose certificate is swapped whenever the CA issues a new
//! one or one is read back from the cache.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use futures_util::StreamExt;
use rustls::ServerConfig;
use rustls_acme::caches::DirCache;
use rustls_acme::{AccountCache, AcmeConfig, AcmeState, CertCache};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

use super::Loaded;

/// Let's Encrypt's production directory, the default of `--acme-directory`.
pub const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// What `--acme-*` configures.
#[derive(Clone, Debug)]
pub struct AcmeSettings {
    /// The names the certificate is for (the first is its subject).
    pub domains: Vec<String>,
    /// The CA's ACME directory URL.
    pub directory: String,
    /// Account contacts (`mailto:` URLs).
    pub contact: Vec<String>,
    /// Where the account key and certificates are kept.
    pub cache_dir: PathBuf,
    /// PEM CA certificates trusted for the directory's HTTPS instead of the public roots (a
    /// private or test CA).
    pub directory_ca: Option<PathBuf>,
}

/// Why ACME could not be set up or a certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("ACME needs at least one domain (--acme-domain)")]
    NoDomain,
    #[error("ACME contact {0:?} is not a mailto: URL")]
    BadContact(String),
    #[error("ACME cache directory {path}: {source}")]
    CacheDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ACME directory CA {path}: {reason}")]
    DirectoryCa { path: PathBuf, reason: String },
    #[error("ACME certificate: {0}")]
    Certificate(String),
}

/// The ACME side of a [`super::TlsSource`]: the configuration answering validations, and the
/// ordering state, driven by [`Acme::run`] once the gateway runs.
pub struct Acme {
    challenges: Challenges,
    state: Mutex<Option<AcmeState<std::io::Error>>>,
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acme").finish_non_exhaustive()
    }
}

impl Acme {
    /// Prepares ordering for `settings`; certificates go into `current` as they come.
    pub(super) fn new(
        settings: &AcmeSettings,
        provider: Arc<rustls::crypto::CryptoProvider>,
        current: Arc<ArcSwap<Loaded>>,
    ) -> Result<Self, AcmeError> {
        if settings.domains.is_empty() || settings.domains.iter().any(|d| d.trim().is_empty()) {
            return Err(AcmeError::NoDomain);
        }
        if let Some(bad) = settings.contact.iter().find(|c| !c.starts_with("mailto:")) {
            return Err(AcmeError::BadContact(bad.clone()));
        }
        std::fs::create_dir_all(&settings.cache_dir).map_err(|source| AcmeError::CacheDir {
            path: settings.cache_dir.clone(),
            source,
        })?;
        let acme = match &settings.directory_ca {
            None => AcmeConfig::new_with_provider(&settings.domains, provider.clone()),
            Some(ca) => AcmeConfig::new_with_client_config(
                &settings.domains,
                directory_client(ca, provider.clone())?,
            ),
        };
        let cache = DeployingCache {
            dir: DirCache::new(settings.cache_dir.clone()),
            current,
        };
        let state = acme
            .directory(&settings.directory)
            .contact(&settings.contact)
            .cache(cache)
            .state();
        Ok(Acme {
            challenges: Challenges {
                config: state.challenge_rustls_config_with_provider(provider),
                pending: state.resolver(),
            },
            state: Mutex::new(Some(state)),
        })
    }

    /// What answers the CA's validations.
    pub fn challenges(&self) -> Challenges {
        self.challenges.clone()
    }

    /// Loads the cached certificate, orders one when there is none or it is due for renewal,
    /// and keeps renewing, until `shutdown`. Failures are logged and retried with back-off by
    /// the crate. Runs once; later calls return at once.
    pub async fn run(&self, shutdown: CancellationToken) {
        let taken = self.state.lock().ok().and_then(|mut s| s.take());
        let Some(mut state) = taken else {
            return;
        };
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                event = state.next() => event,
            };
            match event {
                Some(Ok(ok)) => tracing::info!(event = ?ok, "ACME"),
                Some(Err(e)) => tracing::error!(error = %e, "ACME"),
                None => return,
            }
        }
    }
}

/// The TLS-ALPN-01 side of the TLS port.
#[derive(Clone, Debug)]
pub struct Challenges {
    /// Answers `acme-tls/1` with the validation certificate.
    config: Arc<ServerConfig>,
    /// The validation in progress, if any (the crate's resolver).
    pending: Arc<rustls_acme::ResolvesServerCertAcme>,
}

impl Challenges {
    /// The configuration for `hello` when it is the CA validating: it offers only `acme-tls/1`
    /// and names the domain of the validation in progress. Otherwise `None`, and the ordinary
    /// configuration refuses `acme-tls/1` with `no_application_protocol`, as nginx does.
    pub fn config_for(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<ServerConfig>> {
        use rustls::server::ResolvesServerCert;
        if !rustls_acme::is_tls_alpn_challenge(&hello) {
            return None;
        }
        self.pending.resolve(hello).map(|_| self.config.clone())
    }
}

/// A rustls client configuration trusting only the CA certificates in `path`.
fn directory_client(
    path: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<rustls::ClientConfig>, AcmeError> {
    let bad = |reason: String| AcmeError::DirectoryCa {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate found".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The crate's directory cache, which also puts every certificate it loads or stores (the
/// cached one at start, each newly issued one) into the gateway's ordinary configuration.
struct DeployingCache {
    dir: DirCache<PathBuf>,
    current: Arc<ArcSwap<Loaded>>,
}

impl DeployingCache {
    fn deploy(&self, pem: &[u8]) {
        match loaded_from_pem(pem) {
            Ok(loaded) => {
                let fingerprint = loaded.fingerprint.clone();
                self.current.store(Arc::new(loaded));
                tracing::info!(%fingerprint, "ACME certificate in use");
            }
            Err(e) => tracing::error!(error = %e, "keeping the previous certificate"),
        }
    }
}

/// The crate's cache entry (PKCS#8 key, then the chain, all PEM) as a server configuration.
fn loaded_from_pem(pem: &[u8]) -> Result<Loaded, AcmeError> {
    let key = PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| AcmeError::Certificate(format!("key: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AcmeError::Certificate(format!("chain: {e}")))?;
    if chain.is_empty() {
        return Err(AcmeError::Certificate("no certificate".into()));
    }
    super::build(chain, key).map_err(|e| AcmeError::Certificate(e.to_string()))
}

#[async_trait::async_trait]
impl CertCache for DeployingCache {
    type EC = std::io::Error;

    async fn load_cert(
        &self,
        domains: &[String],
        directory_url: &str,
    ) -> Result<Option<Vec<u8>>, Self::EC> {
        let pem = self.dir.load_cert(domains, directory_url).await?;
        if let Some(pem) = &pem {
            self.deploy(pem);
        }
        Ok(pem)
    }

    async fn store_cert(
        &self,
        domains: &[String],
        directory_url: &str,
        cert: &[u8],
    ) -> Result<(), Self::EC> {
        self.deploy(cert);
        self.dir.store_cert(domains, directory_url, cert).await
    }
}

#[async_trait::async_trait]
impl AccountCache for DeployingCache {
    type EA = std::io::Error;

    async fn load_account(
        &self,
        contact: &[String],
        directory_url: &str,
    ) -> Result<Option<Vec<u8>>, Self::EA> {
        self.dir.load_account(contact, directory_url).await
    }

    async fn store_account(
        &self,
        contact: &[String],
        directory_url: &str,
        account: &[u8],
    ) -> Result<(), Self::EA> {
        self.dir
            .store_account(contact, directory_url, account)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GatewayError, TlsSource};

    fn settings(dir: &Path) -> AcmeSettings {
        AcmeSettings {
            domains: vec!["vpn.example.org".into()],
            directory: LETS_ENCRYPT_DIRECTORY.into(),
            contact: vec!["mailto:ops@example.org".into()],
            cache_dir: dir.join("cache"),
            directory_ca: None,
        }
    }

    fn acme_error(settings: &AcmeSettings) -> AcmeError {
        match TlsSource::acme(settings) {
            Err(GatewayError::Acme(e)) => e,
            other => panic!("expected an ACME error, got {other:?}"),
        }
    }

    #[test]
    fn bad_settings_get_specific_errors() {
        let dir = tempfile::tempdir().unwrap();
        let good = settings(dir.path());

        let no_domain = AcmeSettings {
            domains: vec![" ".into()],
            ..good.clone()
        };
        assert!(matches!(acme_error(&no_domain), AcmeError::NoDomain));

        let contact = AcmeSettings {
            contact: vec!["ops@example.org".into()],
            ..good.clone()
        };
        assert!(matches!(acme_error(&contact), AcmeError::BadContact(_)));

        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let garbage_ca = AcmeSettings {
            directory_ca: Some(ca),
            ..good.clone()
        };
        assert!(matches!(
            acme_error(&garbage_ca),
            AcmeError::DirectoryCa { .. }
        ));

        let tls = TlsSource::acme(&good).unwrap();
        assert!(tls.challenges().is_some());
        assert!(!tls.is_self_signed());
        assert!(
            dir.path().join("cache").is_dir(),
            "the cache directory is made"
        );
    }

    #[test]
    fn a_cache_entry_becomes_the_ordinary_configuration() {
        let issued = rcgen::generate_simple_self_signed(vec!["vpn.example.org".into()]).unwrap();
        let entry = format!("{}{}", issued.key_pair.serialize_pem(), issued.cert.pem());
        let loaded = loaded_from_pem(entry.as_bytes()).unwrap();
        assert_eq!(
            loaded.fingerprint,
            super::super::fingerprint(issued.cert.der())
        );
        assert!(loaded.config.ignore_client_order, "the ordinary settings");
        assert!(matches!(
            loaded_from_pem(issued.cert.pem().as_bytes()),
            Err(AcmeError::Certificate(_))
        ));
    }
}
