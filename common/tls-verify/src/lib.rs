//! The server-certificate checks of httvps's TLS clients that do not use web PKI, written once.
//!
//! A client either accepts any certificate (the gateway towards its operator-configured local
//! fallback, the probe that compares answers rather than certificates) or exactly one
//! certificate, pinned by its SHA-256 (the SDK and the tests towards a gateway). Either way the
//! handshake signatures are checked against the presented certificate with the provider's
//! algorithms, so the peer must hold that certificate's key.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// Which server certificates a client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificatePolicy {
    /// Any certificate.
    Any,
    /// Only the certificate whose DER encoding has this SHA-256.
    Pinned([u8; 32]),
}

/// A [`ServerCertVerifier`] applying a [`CertificatePolicy`], with handshake signatures checked
/// by `provider`'s algorithms.
#[derive(Debug)]
pub struct PolicyVerifier {
    policy: CertificatePolicy,
    provider: Arc<CryptoProvider>,
}

impl PolicyVerifier {
    pub fn new(policy: CertificatePolicy, provider: Arc<CryptoProvider>) -> PolicyVerifier {
        PolicyVerifier { policy, provider }
    }
}

impl ServerCertVerifier for PolicyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.policy {
            CertificatePolicy::Any => Ok(ServerCertVerified::assertion()),
            CertificatePolicy::Pinned(fingerprint) => {
                let seen: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
                if seen == fingerprint {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::General(
                        "the gateway's certificate does not match the pinned fingerprint".into(),
                    ))
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration over `provider` (TLS 1.3 and 1.2, no client certificate) that accepts
/// the server certificates `policy` allows. ALPN and SNI are left to the caller.
pub fn client_config(
    provider: CryptoProvider,
    policy: CertificatePolicy,
) -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(provider);
    let verifier = Arc::new(PolicyVerifier::new(policy, provider.clone()));
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests;
