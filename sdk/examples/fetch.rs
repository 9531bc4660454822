//! Fetches a web page through httvps.
//!
//! `cargo run -p httvps-sdk --example fetch -- 'httvps://DEVICE:TOKEN@HOST:PORT/PATH?fp=...' example.com 80`

use httvps_sdk::{Client, ClientConfig, TargetAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let link = args.next().ok_or("usage: fetch LINK HOST [PORT]")?;
    let host = args.next().ok_or("usage: fetch LINK HOST [PORT]")?;
    let port: u16 = args.next().map(|p| p.parse()).transpose()?.unwrap_or(80);
    let client = Client::connect(ClientConfig::from_link(&link)?).await?;
    let status = client.status();
    eprintln!(
        "connected to {:?}, session {:?}",
        status.gateway, status.session_id
    );
    let mut stream = client
        .open_tcp(TargetAddr::domain(host.clone(), port)?)
        .await?;
    stream
        .write_all(
            format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    println!("{}", String::from_utf8_lossy(&response));
    client.close().await;
    Ok(())
}
