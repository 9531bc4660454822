//! Real peers for tests: a Shadowsocks server in process (shadowsocks-service) and a tiny HTTP
//! responder to probe through it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use shadowsocks::config::{Mode, ServerConfig};
use shadowsocks::crypto::CipherKind;
use shadowsocks_service::server::ServerBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A tiny HTTP responder: answers every request head with `204 No Content`.
pub async fn start_http_target() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
            });
        }
    });
    (addr, task)
}

/// Starts a TCP-only Shadowsocks server on `bind` (port 0: any) and returns its address.
pub async fn start_ss_server(
    bind: SocketAddr,
    cipher: CipherKind,
    password: &str,
) -> std::io::Result<(SocketAddr, JoinHandle<std::io::Result<()>>)> {
    let mut config = ServerConfig::new(bind, password.to_owned(), cipher).unwrap();
    config.set_mode(Mode::TcpOnly);
    let server = ServerBuilder::new(config).build().await?;
    let addr = server.tcp_server().unwrap().local_addr()?;
    Ok((addr, tokio::spawn(server.run())))
}

/// Starts a TCP-only Shadowsocks server on a free local port; returns its address.
pub async fn start_local_ss_server(
    cipher: CipherKind,
    password: &str,
) -> (SocketAddr, JoinHandle<std::io::Result<()>>) {
    start_ss_server("127.0.0.1:0".parse().unwrap(), cipher, password)
        .await
        .unwrap()
}

/// Rebinds a stopped server's port, retrying briefly (the old listener may still be closing).
pub async fn restart_ss_server(
    addr: SocketAddr,
    cipher: CipherKind,
    password: &str,
) -> JoinHandle<std::io::Result<()>> {
    let mut last_err = None;
    for _ in 0..50 {
        match start_ss_server(addr, cipher, password).await {
            Ok((bound, task)) => {
                assert_eq!(bound, addr);
                return task;
            }
            Err(err) => last_err = Some(err),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not rebind {addr}: {last_err:?}");
}

/// Aborts the server task and waits until its port refuses connections.
pub async fn stop_ss_server(task: JoinHandle<std::io::Result<()>>, addr: SocketAddr) {
    task.abort();
    let _ = task.await;
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server on {addr} still accepts connections after abort");
}
