//! The probes' TLS client: rustls that accepts any certificate (a prober trusts nothing and
//! compares answers, not certificates), with the ALPN and SNI each probe asks for.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::probes::{Alpn, Sni};

/// The name used when a probe sends no SNI or the configured one is not a valid name.
const FALLBACK_NAME: &str = "localhost";

/// Builds the client config and server name for one probe.
pub fn client(
    sni: Sni,
    alpn: Alpn,
    default_sni: Option<&str>,
) -> Result<(Arc<ClientConfig>, ServerName<'static>), rustls::Error> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider)))
        .with_no_client_auth();
    config.alpn_protocols = match alpn {
        Alpn::Http11 => vec![b"http/1.1".to_vec()],
        Alpn::H2AndHttp11 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    let name = match sni {
        Sni::Default => default_sni,
        Sni::Name(name) => Some(name),
        Sni::Omitted => None,
    };
    config.enable_sni = name.is_some();
    let server_name = ServerName::try_from(name.unwrap_or(FALLBACK_NAME).to_owned())
        .or_else(|_| ServerName::try_from(FALLBACK_NAME))
        .map_err(|_| rustls::Error::General("no usable server name".into()))?;
    Ok((Arc::new(config), server_name))
}

#[derive(Debug)]
struct AcceptAnything(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
