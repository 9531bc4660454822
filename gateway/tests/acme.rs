//! Certificates from an ACME CA in standalone mode, against the real `pebble` test CA (Debian
//! package): pebble validates TLS-ALPN-01 on the gateway's own TLS port (no "always valid"
//! shortcut), the gateway then serves the certificate pebble issued, and a restart serves the
//! cached one without asking the CA again.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use httvps_gateway::config::ListenAddr;
use httvps_gateway::tls::acme::AcmeSettings;
use httvps_gateway::{Gateway, GatewayConfig, StaticAuthority, StaticNodes, TlsSource};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PEBBLE: &str = "/usr/bin/pebble";
const DOMAIN: &str = "localhost";

/// A free TCP port on 127.0.0.1 (pebble needs the gateway's port in its configuration before
/// the gateway binds it).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The test's own CA and, signed by it, pebble's HTTPS certificate for 127.0.0.1/localhost.
/// Returns the CA's PEM.
fn pebble_https_cert(dir: &Path) -> String {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "httvps acme test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    std::fs::write(dir.join("pebble.crt"), leaf.pem()).unwrap();
    std::fs::write(dir.join("pebble.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    ca_cert.pem()
}

struct Pebble {
    child: tokio::process::Child,
    directory: String,
    management: SocketAddr,
}

/// Starts pebble validating TLS-ALPN-01 on `tls_port` (the gateway's), HTTP-01 on a port
/// nobody listens on.
async fn start_pebble(dir: &Path, tls_port: u16) -> Pebble {
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let management: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": listen.to_string(),
            "managementListenAddress": management.to_string(),
            "certificate": dir.join("pebble.crt"),
            "privateKey": dir.join("pebble.key"),
            "httpPort": free_port(),
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    let config_path = dir.join("pebble.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let log = std::fs::File::create(dir.join("pebble.log")).unwrap();
    let child = tokio::process::Command::new(PEBBLE)
        .arg("-config")
        .arg(&config_path)
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env_remove("PEBBLE_VA_ALWAYS_VALID")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("pebble starts");
    for _ in 0..100 {
        if TcpStream::connect(listen).await.is_ok() && TcpStream::connect(management).await.is_ok()
        {
            return Pebble {
                child,
                directory: format!("https://{listen}/dir"),
                management,
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("pebble did not start: {}", pebble_log(dir));
}

fn pebble_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("pebble.log")).unwrap_or_default()
}

/// The root pebble generated at start (it signs every certificate pebble issues).
async fn pebble_root(pebble: &Pebble, test_ca: &str) -> CertificateDer<'static> {
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(test_ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    let pem = client
        .get(format!("https://{}/roots/0", pebble.management))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap();
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

async fn start_gateway(port: u16, settings: &AcmeSettings) -> (Gateway, Arc<TlsSource>) {
    let config = GatewayConfig {
        listen: ListenAddr::Tcp(([127, 0, 0, 1], port).into()),
        ..test_config()
    };
    let tls = Arc::new(TlsSource::acme(settings).unwrap());
    let gateway = Gateway::start(
        config,
        tls.clone(),
        Arc::new(StaticAuthority::new().with_device(DEVICE, TOKEN)),
        Arc::new(StaticNodes::new(vec![dead_node()])),
    )
    .await
    .unwrap();
    (gateway, tls)
}

/// A TLS client that trusts only `root` and offers the one ALPN protocol `alpn`.
fn client_trusting(root: &CertificateDer<'static>, alpn: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// A TLS handshake with `addr` as an ordinary client (ALPN http/1.1) that trusts only `root`
/// and checks the name: Ok with the leaf's fingerprint and the negotiated ALPN once the
/// gateway serves a certificate `root` issued for [`DOMAIN`].
async fn verified_handshake(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
) -> Result<(String, Option<Vec<u8>>), String> {
    let connector = client_trusting(root, b"http/1.1");
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(ServerName::try_from(DOMAIN).unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (_, session) = tls.get_ref();
    let leaf = session
        .peer_certificates()
        .and_then(|c| c.first())
        .map(httvps_gateway::tls::fingerprint)
        .ok_or("no certificate")?;
    let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
    // An ordinary request still gets the gateway's ordinary answer over this certificate.
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    if !answer.starts_with(b"HTTP/1.1 ") {
        return Err(format!("answer {:?}", String::from_utf8_lossy(&answer)));
    }
    Ok((leaf, alpn))
}

/// A prober offering only `acme-tls/1` outside a validation: refused with
/// `no_application_protocol`, as nginx (and the gateway without ACME) refuses an ALPN list it
/// has nothing in common with. Returns the handshake error.
async fn acme_alpn_probe(addr: SocketAddr, root: &CertificateDer<'static>) -> rustls::Error {
    let connector = client_trusting(root, b"acme-tls/1");
    let tcp = TcpStream::connect(addr).await.unwrap();
    let error = connector
        .connect(ServerName::try_from(DOMAIN).unwrap(), tcp)
        .await
        .expect_err("acme-tls/1 is refused outside a validation");
    *error
        .into_inner()
        .expect("a TLS error")
        .downcast::<rustls::Error>()
        .expect("a rustls error")
}

/// Retries [`verified_handshake`] until it succeeds or `within` passes.
async fn wait_for_issued(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
    within: Duration,
) -> Result<(String, Option<Vec<u8>>), String> {
    let until = tokio::time::Instant::now() + within;
    loop {
        match verified_handshake(addr, root).await {
            Ok(ok) => return Ok(ok),
            Err(e) if tokio::time::Instant::now() >= until => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test]
async fn pebble_issues_the_certificate_and_a_restart_reuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let test_ca = pebble_https_cert(dir.path());
    let port = free_port();
    let mut pebble = start_pebble(dir.path(), port).await;
    let root = pebble_root(&pebble, &test_ca).await;
    let settings = AcmeSettings {
        domains: vec![DOMAIN.into()],
        directory: pebble.directory.clone(),
        contact: vec!["mailto:ops@example.org".into()],
        cache_dir: dir.path().join("acme-cache"),
        directory_ca: Some(dir.path().join("ca.pem")),
    };

    let (gateway, tls) = start_gateway(port, &settings).await;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let interim = tls.fingerprint();
    let (issued, alpn) = wait_for_issued(addr, &root, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no certificate from pebble: {e}\n{}",
                pebble_log(dir.path())
            )
        });
    assert_ne!(
        issued, interim,
        "the interim self-signed certificate was replaced"
    );
    assert_eq!(tls.fingerprint(), issued);
    assert_eq!(
        alpn.as_deref(),
        Some(&b"http/1.1"[..]),
        "the ordinary ALPN list"
    );
    // Once the validation is over, acme-tls/1 is refused as nginx refuses it. The crate drops
    // the validation's key a moment after the certificate is installed, so allow it that moment.
    let refused = rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol);
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut answer = acme_alpn_probe(addr, &root).await;
    while answer != refused && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = acme_alpn_probe(addr, &root).await;
    }
    assert_eq!(answer, refused);
    // Nothing listens on pebble's HTTP-01 port and "always valid" is off: the authorization
    // was validated over TLS-ALPN-01 on the gateway's port.
    assert!(
        pebble_log(dir.path()).contains("set VALID by completed challenge"),
        "pebble validated the challenge: {}",
        pebble_log(dir.path())
    );
    gateway.shutdown().await;

    // The CA is gone: the restarted gateway (now the binary, configured by its flags) can only
    // serve what it cached.
    pebble.child.kill().await.unwrap();
    let mut binary = start_binary(port, &settings, dir.path());
    let cached = wait_for_issued(addr, &root, Duration::from_secs(20)).await;
    let stdout = std::fs::read_to_string(dir.path().join("gateway.out")).unwrap_or_default();
    binary.kill().await.unwrap();
    let (cached, _) = cached.unwrap_or_else(|e| panic!("no cached certificate: {e}\n{stdout}"));
    assert_eq!(cached, issued, "the same certificate, from the cache");
    assert!(
        stdout.contains("certificate from ACME for localhost"),
        "the binary used ACME: {stdout}"
    );
}

/// The `httvps-gateway` binary with ACME configured by flags (development authority, direct
/// upstream: no control plane needed for certificates).
fn start_binary(port: u16, settings: &AcmeSettings, dir: &Path) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_httvps-gateway"));
    for (key, _) in std::env::vars() {
        if key.starts_with("HTTVPS_GATEWAY_") || key.starts_with("OTEL_") {
            command.env_remove(key);
        }
    }
    let out = std::fs::File::create(dir.join("gateway.out")).unwrap();
    command
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--metrics-listen", ""])
        .args(["--path", PATH])
        .args(["--dev-device", "dev-1:token-of-dev-1-0123456789"])
        .arg("--dev-direct-upstream")
        .args(["--acme-domain", &settings.domains.join(",")])
        .args(["--acme-directory", &settings.directory])
        .args(["--acme-contact", &settings.contact.join(",")])
        .arg("--acme-cache-dir")
        .arg(&settings.cache_dir)
        .arg("--acme-directory-ca")
        .arg(settings.directory_ca.as_ref().unwrap())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .expect("the gateway binary starts")
}
