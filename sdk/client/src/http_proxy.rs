//! An HTTP proxy on loopback: `CONNECT host:port` opens a TCP stream through httvps and relays
//! it; a plain request in absolute form (`GET http://host/path`) is forwarded once, in origin form,
//! with `Connection: close`.

use crate::subscription::CurrentClient;
use httvps_sdk::{Client, Error, ResetCode, TargetAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest request head accepted.
const MAX_HEAD: usize = 64 * 1024;

pub async fn serve(listener: TcpListener, current: CurrentClient) {
    crate::accept::serve_each(listener, current, "HTTP proxy", |socket, _, client| {
        handle(socket, client)
    })
    .await;
}

async fn respond(socket: &mut TcpStream, status: &str) -> std::io::Result<()> {
    socket
        .write_all(
            format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
}

fn status_for(e: &Error) -> &'static str {
    match e {
        Error::StreamReset(ResetCode::NotAllowed) => "403 Forbidden",
        Error::StreamReset(ResetCode::Timeout) | Error::Timeout => "504 Gateway Timeout",
        // No session (the reason is on the status line and in the log): fail at once.
        Error::Down(_) | Error::Unreachable(_) => "503 Service Unavailable",
        _ => "502 Bad Gateway",
    }
}

/// `host:port` (IPv6 in brackets) into a target; `default_port` when no port is given.
fn parse_authority(authority: &str, default_port: u16) -> Option<TargetAddr> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (
            host,
            after
                .strip_prefix(':')
                .map(str::parse)
                .transpose()
                .ok()?
                .unwrap_or(default_port),
        )
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, default_port),
        }
    };
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return TargetAddr::socket(std::net::SocketAddr::new(ip, port)).ok();
    }
    TargetAddr::domain(host, port).ok()
}

async fn handle(mut socket: TcpStream, client: Client) -> std::io::Result<()> {
    let _ = socket.set_nodelay(true);
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > MAX_HEAD {
            return respond(&mut socket, "431 Request Header Fields Too Large").await;
        }
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, uri, version) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    if method.eq_ignore_ascii_case("CONNECT") {
        let Some(target) = parse_authority(uri, 443) else {
            return respond(&mut socket, "400 Bad Request").await;
        };
        return match client.open_tcp(target).await {
            Ok(mut stream) => {
                socket
                    .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                    .await?;
                // Bytes the client sent after the head belong to the tunnel.
                stream.write_all(&head[end..]).await?;
                crate::relay::relay(&mut socket, &mut stream)
                    .await
                    .map(|_| ())
            }
            Err(e) => respond(&mut socket, status_for(&e)).await,
        };
    }
    // A plain request: absolute-form URI, forwarded in origin form.
    let Some(rest) = uri.strip_prefix("http://") else {
        return respond(&mut socket, "400 Bad Request").await;
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Some(target) = parse_authority(authority, 80) else {
        return respond(&mut socket, "400 Bad Request").await;
    };
    let mut forwarded = format!("{method} {path} {version}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if name.starts_with("proxy-") || name == "connection" || name == "keep-alive" {
            continue;
        }
        forwarded.push_str(line);
        forwarded.push_str("\r\n");
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    match client.open_tcp(target).await {
        Ok(mut stream) => {
            stream.write_all(forwarded.as_bytes()).await?;
            stream.write_all(&head[end..]).await?;
            crate::relay::relay(&mut socket, &mut stream)
                .await
                .map(|_| ())
        }
        Err(e) => respond(&mut socket, status_for(&e)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_authority;

    #[test]
    fn authorities() {
        assert_eq!(
            parse_authority("example.com:8443", 443)
                .unwrap()
                .to_string(),
            "example.com:8443"
        );
        assert_eq!(
            parse_authority("example.com", 80).unwrap().to_string(),
            "example.com:80"
        );
        assert_eq!(
            parse_authority("[::1]:8080", 80).unwrap().to_string(),
            "[::1]:8080"
        );
        assert_eq!(
            parse_authority("10.0.0.1", 80).unwrap().to_string(),
            "10.0.0.1:80"
        );
        assert!(parse_authority("bad host:80", 80).is_none());
        assert!(parse_authority("example.com:0", 80).is_none());
    }
}
