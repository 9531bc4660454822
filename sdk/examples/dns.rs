//! Resolves a name with a DNS query over a UDP flow through httvps.
//!
//! `cargo run -p httvps-sdk --example dns -- 'httvps://...' example.com 1.1.1.1`

use std::time::Duration;

use bytes::Bytes;
use httvps_sdk::{Client, ClientConfig, TargetAddr};

/// A minimal DNS query for an A record.
fn query(name: &str) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let link = args.next().ok_or("usage: dns LINK NAME [RESOLVER]")?;
    let name = args.next().ok_or("usage: dns LINK NAME [RESOLVER]")?;
    let resolver: std::net::IpAddr = args.next().unwrap_or_else(|| "1.1.1.1".into()).parse()?;
    let client = Client::connect(ClientConfig::from_link(&link)?).await?;
    let flow = client
        .open_udp(TargetAddr::socket((resolver, 53).into())?)
        .await?;
    flow.send(None, Bytes::from(query(&name)))?;
    let (_, answer) = tokio::time::timeout(Duration::from_secs(5), flow.recv()).await??;
    // Print the A records of the answer section (a sketch: no compression edge cases handled).
    let answers = u16::from_be_bytes([answer[6], answer[7]]);
    println!("{} answers, {} bytes", answers, answer.len());
    for chunk in answer
        .windows(4)
        .skip(answer.len().saturating_sub(4 * usize::from(answers)))
        .step_by(4)
    {
        println!("{}.{}.{}.{}", chunk[0], chunk[1], chunk[2], chunk[3]);
    }
    client.close().await;
    Ok(())
}
