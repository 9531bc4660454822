//! A SOCKS5 server (RFC 1928) without authentication, on loopback: CONNECT opens a TCP stream
//! through httvps, UDP ASSOCIATE relays datagrams through a UDP flow (so DNS works). BIND is
//! refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use crate::subscription::CurrentClient;
use bytes::{BufMut, Bytes, BytesMut};
use httvps_sdk::{Address, Client, Error, ResetCode, TargetAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0;
const NO_ACCEPTABLE: u8 = 0xFF;
const CMD_CONNECT: u8 = 1;
const CMD_UDP_ASSOCIATE: u8 = 3;

/// SOCKS5 reply codes.
#[derive(Clone, Copy, Debug)]
#[repr(u8)]
enum Reply {
    Succeeded = 0,
    GeneralFailure = 1,
    NotAllowed = 2,
    NetworkUnreachable = 3,
    HostUnreachable = 4,
    ConnectionRefused = 5,
    TtlExpired = 6,
    CommandNotSupported = 7,
    AddressTypeNotSupported = 8,
}

fn reply_for(e: &Error) -> Reply {
    match e {
        Error::StreamReset(ResetCode::Refused) => Reply::ConnectionRefused,
        Error::StreamReset(ResetCode::Unreachable | ResetCode::NameNotResolved) => {
            Reply::HostUnreachable
        }
        Error::StreamReset(ResetCode::NotAllowed) => Reply::NotAllowed,
        Error::StreamReset(ResetCode::Timeout) | Error::Timeout => Reply::TtlExpired,
        // No session (the reason is on the status line and in the log): fail at once.
        Error::Unreachable(_) | Error::Down(_) => Reply::NetworkUnreachable,
        _ => Reply::GeneralFailure,
    }
}

/// Accepts SOCKS5 clients until the listener fails.
pub async fn serve(listener: TcpListener, current: CurrentClient) {
    crate::accept::serve_each(listener, current, "SOCKS5", handle).await;
}

async fn handle(mut socket: TcpStream, peer: SocketAddr, client: Client) -> std::io::Result<()> {
    let _ = socket.set_nodelay(true);
    // Greeting: version, methods.
    let mut head = [0u8; 2];
    socket.read_exact(&mut head).await?;
    if head[0] != VERSION {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not SOCKS5",
        ));
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    socket.read_exact(&mut methods).await?;
    if !methods.contains(&NO_AUTH) {
        socket.write_all(&[VERSION, NO_ACCEPTABLE]).await?;
        return Ok(());
    }
    socket.write_all(&[VERSION, NO_AUTH]).await?;
    // Request: version, command, reserved, address.
    let mut req = [0u8; 3];
    socket.read_exact(&mut req).await?;
    let target = match read_address(&mut socket).await? {
        Ok(t) => t,
        Err(reply) => return send_reply(&mut socket, reply, None).await,
    };
    match req[1] {
        CMD_CONNECT => connect(socket, target, client).await,
        CMD_UDP_ASSOCIATE => udp_associate(socket, peer, client).await,
        _ => send_reply(&mut socket, Reply::CommandNotSupported, None).await,
    }
}

/// Reads ATYP, address and port; `Err(reply)` for an address that cannot be served.
async fn read_address(socket: &mut TcpStream) -> std::io::Result<Result<TargetAddr, Reply>> {
    let atyp = socket.read_u8().await?;
    let addr = match atyp {
        1 => {
            let mut b = [0u8; 4];
            socket.read_exact(&mut b).await?;
            Address::Ipv4(Ipv4Addr::from(b))
        }
        4 => {
            let mut b = [0u8; 16];
            socket.read_exact(&mut b).await?;
            Address::Ipv6(Ipv6Addr::from(b))
        }
        3 => {
            let len = socket.read_u8().await?;
            let mut b = vec![0u8; usize::from(len)];
            socket.read_exact(&mut b).await?;
            let port = socket.read_u16().await?;
            return Ok(String::from_utf8(b)
                .ok()
                .and_then(|name| TargetAddr::domain(name, port).ok())
                .ok_or(Reply::AddressTypeNotSupported));
        }
        _ => return Ok(Err(Reply::AddressTypeNotSupported)),
    };
    let port = socket.read_u16().await?;
    Ok(Ok(TargetAddr { addr, port }))
}

async fn send_reply(
    socket: &mut TcpStream,
    reply: Reply,
    bound: Option<SocketAddr>,
) -> std::io::Result<()> {
    let bound = bound.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut out = vec![VERSION, reply as u8, 0];
    put_socket_addr(&mut out, bound);
    socket.write_all(&out).await
}

fn put_socket_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(1);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

async fn connect(mut socket: TcpStream, target: TargetAddr, client: Client) -> std::io::Result<()> {
    match client.open_tcp(target.clone()).await {
        Ok(mut stream) => {
            let bound = socket.local_addr().ok();
            send_reply(&mut socket, Reply::Succeeded, bound).await?;
            let result = crate::relay::relay(&mut socket, &mut stream).await;
            tracing::debug!(%target, ?result, "stream done");
            Ok(())
        }
        Err(e) => {
            tracing::info!(%target, error = %e, "open failed");
            send_reply(&mut socket, reply_for(&e), None).await
        }
    }
}

/// Relays the association's datagrams through one UDP flow until the control connection closes.
async fn udp_associate(
    mut control: TcpStream,
    peer: SocketAddr,
    client: Client,
) -> std::io::Result<()> {
    let local_ip = control.local_addr()?.ip();
    let relay = Arc::new(UdpSocket::bind(SocketAddr::new(local_ip, 0)).await?);
    send_reply(&mut control, Reply::Succeeded, Some(relay.local_addr()?)).await?;
    let mut buf = vec![0u8; 65_536];
    // The first datagram names the flow's default target and the client's UDP address.
    let (first_len, app) = tokio::select! {
        r = relay.recv_from(&mut buf) => r?,
        _ = wait_closed(&mut control) => return Ok(()),
    };
    if app.ip() != peer.ip() {
        return Ok(());
    }
    let Some((target, payload)) = parse_udp_request(&buf[..first_len]) else {
        return Ok(());
    };
    let flow = match client.open_udp(target.clone()).await {
        Ok(flow) => Arc::new(flow),
        Err(e) => {
            tracing::info!(%target, error = %e, "UDP flow refused");
            return Ok(());
        }
    };
    let _ = flow.send(None, payload);
    let replies = {
        let (flow, relay) = (flow.clone(), relay.clone());
        tokio::spawn(async move {
            while let Ok((from, data)) = flow.recv().await {
                let from = from.unwrap_or_else(|| flow.target().clone());
                let mut out = BytesMut::with_capacity(data.len() + 22);
                out.put_slice(&[0, 0, 0]);
                let mut header = Vec::new();
                put_target(&mut header, &from);
                out.put_slice(&header);
                out.put_slice(&data);
                if relay.send_to(&out, app).await.is_err() {
                    return;
                }
            }
        })
    };
    loop {
        tokio::select! {
            r = relay.recv_from(&mut buf) => {
                let (n, from) = r?;
                if from != app {
                    continue;
                }
                if let Some((to, payload)) = parse_udp_request(&buf[..n]) {
                    let to = if to == target { None } else { Some(to) };
                    if flow.send(to, payload).is_err() {
                        break;
                    }
                }
            }
            _ = wait_closed(&mut control) => break,
        }
    }
    replies.abort();
    Ok(())
}

/// Resolves when the control connection closes (the association ends with it).
async fn wait_closed(control: &mut TcpStream) {
    let mut b = [0u8; 64];
    while let Ok(n) = control.read(&mut b).await {
        if n == 0 {
            return;
        }
    }
}

fn put_target(out: &mut Vec<u8>, t: &TargetAddr) {
    match &t.addr {
        Address::Ipv4(ip) => {
            out.push(1);
            out.extend_from_slice(&ip.octets());
        }
        Address::Ipv6(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        Address::Domain(d) => {
            out.push(3);
            out.push(d.len().min(255) as u8);
            out.extend_from_slice(&d.as_bytes()[..d.len().min(255)]);
        }
    }
    out.extend_from_slice(&t.port.to_be_bytes());
}

/// A SOCKS5 UDP request: RSV(2) FRAG(1) address DATA. Fragments are not supported (dropped).
fn parse_udp_request(b: &[u8]) -> Option<(TargetAddr, Bytes)> {
    if b.len() < 4 || b[2] != 0 {
        return None;
    }
    let (addr, rest) = match b[3] {
        1 if b.len() >= 10 => (
            Address::Ipv4(Ipv4Addr::new(b[4], b[5], b[6], b[7])),
            &b[8..],
        ),
        4 if b.len() >= 22 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[4..20]);
            (Address::Ipv6(Ipv6Addr::from(o)), &b[20..])
        }
        3 if b.len() >= 5 => {
            let len = usize::from(b[4]);
            let name = std::str::from_utf8(b.get(5..5 + len)?).ok()?;
            let t = TargetAddr::domain(name, 1).ok()?;
            (t.addr, &b[5 + len..])
        }
        _ => return None,
    };
    if rest.len() < 2 {
        return None;
    }
    let port = u16::from_be_bytes([rest[0], rest[1]]);
    if port == 0 {
        return None;
    }
    Some((
        TargetAddr { addr, port },
        Bytes::copy_from_slice(&rest[2..]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_requests_parse_and_fragments_are_refused() {
        let mut dns = vec![0, 0, 0, 1, 127, 0, 0, 1, 0, 53];
        dns.extend_from_slice(b"query");
        let (t, data) = parse_udp_request(&dns).unwrap();
        assert_eq!(
            (t.to_string(), &data[..]),
            ("127.0.0.1:53".to_owned(), &b"query"[..])
        );
        let mut frag = dns.clone();
        frag[2] = 1;
        assert!(parse_udp_request(&frag).is_none());
        let mut named = vec![0, 0, 0, 3, 11];
        named.extend_from_slice(b"example.com");
        named.extend_from_slice(&[0, 53]);
        assert_eq!(
            parse_udp_request(&named).unwrap().0.to_string(),
            "example.com:53"
        );
        assert!(parse_udp_request(&[0, 0, 0, 9]).is_none());
    }
}
