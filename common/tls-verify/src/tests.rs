use super::*;

fn certificate() -> CertificateDer<'static> {
    rcgen::generate_simple_self_signed(vec!["localhost".into()])
        .unwrap()
        .cert
        .der()
        .clone()
}

fn verify(policy: CertificatePolicy, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let name = ServerName::try_from("localhost").unwrap();
    PolicyVerifier::new(policy, provider)
        .verify_server_cert(cert, &[], &name, &[], UnixTime::now())
        .map(|_| ())
}

#[test]
fn any_accepts_every_certificate() {
    assert!(verify(CertificatePolicy::Any, &certificate()).is_ok());
}

#[test]
fn a_pin_accepts_only_its_certificate() {
    let cert = certificate();
    let pin: [u8; 32] = Sha256::digest(cert.as_ref()).into();
    assert!(verify(CertificatePolicy::Pinned(pin), &cert).is_ok());
    assert!(verify(CertificatePolicy::Pinned(pin), &certificate()).is_err());
}
