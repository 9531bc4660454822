//! The probes' TLS client: rustls that accepts any certificate (a prober trusts nothing and
//! compares answers, not certificates; `httvps-tls-verify`), with the ALPN and SNI each probe
//! asks for.

use std::sync::Arc;

use httvps_tls_verify::CertificatePolicy;
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use crate::probes::{Alpn, Sni};

/// The name used when a probe sends no SNI or the configured one is not a valid name.
const FALLBACK_NAME: &str = "localhost";

/// Builds the client config and server name for one probe.
pub fn client(
    sni: Sni,
    alpn: Alpn,
    default_sni: Option<&str>,
) -> Result<(Arc<ClientConfig>, ServerName<'static>), rustls::Error> {
    let mut config =
        httvps_tls_verify::client_config(aws_lc_rs::default_provider(), CertificatePolicy::Any)?;
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
