//! `deploy-bench pool-node ADDR CIPHER PASSWORD`: a Shadowsocks server from the
//! shadowsocks-service crate (the library `ssserver` is built from), run as its own process
//! when `ssserver` is not installed (quick mode), so httvps can still be measured.

use std::net::SocketAddr;

use anyhow::Context;
use shadowsocks::config::{Mode, ServerConfig};
use shadowsocks::crypto::CipherKind;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let [addr, cipher, password] = args else {
        anyhow::bail!("usage: deploy-bench pool-node ADDR CIPHER PASSWORD");
    };
    let addr: SocketAddr = addr.parse().context("ADDR")?;
    let cipher: CipherKind = cipher
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown cipher {cipher}"))?;
    let mut config = ServerConfig::new(addr, password.clone(), cipher)?;
    config.set_mode(Mode::TcpOnly);
    tokio::runtime::Runtime::new()?.block_on(async move {
        let server = shadowsocks_service::server::ServerBuilder::new(config)
            .build()
            .await?;
        server.run().await
    })?;
    Ok(())
}
