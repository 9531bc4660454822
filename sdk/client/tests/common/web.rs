//! A web server for the client's tests: every request gets `200 OK` and a body chosen by its
//! head.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads a request's head (up to and with the blank line, perhaps a little more); `None` when
/// the peer goes away first.
pub async fn read_head(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    Some(head)
}

/// Answers every request on `ip` (after its head) with `200 OK` and the body `body_for` picks
/// from the head.
pub async fn serving<F, B>(ip: IpAddr, body_for: F) -> SocketAddr
where
    F: Fn(&[u8]) -> B + Send + Sync + 'static,
    B: AsRef<[u8]> + Send + 'static,
{
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body_for = Arc::new(body_for);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let body_for = body_for.clone();
            tokio::spawn(async move {
                let Some(head) = read_head(&mut s).await else {
                    return;
                };
                let body = body_for(&head);
                let body = body.as_ref();
                let headers = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(headers.as_bytes()).await;
                let _ = s.write_all(body).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// Answers every request on loopback with `200 OK` and `body`.
pub async fn answering(body: &'static str) -> SocketAddr {
    serving(Ipv4Addr::LOCALHOST.into(), move |_| body).await
}
