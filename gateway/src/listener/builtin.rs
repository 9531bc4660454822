//! The built-in answer of development setups without `--fallback`: nginx's 404 page for every
//! request (400 for one that does not parse), keep-alive like nginx. It serves no files and is
//! not meant to pass for a web site: production standalone needs `--fallback`.

use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::first_request::MAX_HEAD;
use crate::config::GatewayConfig;

/// What follows an answer.
#[derive(Debug)]
pub enum After {
    /// The connection stays open; these bytes (possibly empty) start the next request.
    KeepAlive(Vec<u8>),
    /// The connection was closed.
    Closed,
}

/// Answers the request starting in `buffered`: completes its head (before `deadline`),
/// discards its body, writes the page.
pub async fn answer<S>(
    stream: &mut S,
    mut buffered: Vec<u8>,
    config: &GatewayConfig,
    deadline: Instant,
) -> After
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut chunk = [0u8; 4096];
    let head_len = loop {
        if let Some(end) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buffered.len() >= MAX_HEAD {
            return bad_request(stream, &config.server_header).await;
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            // nginx closes a connection whose header timed out without close_notify.
            Err(_) | Ok(Err(_)) => return After::Closed,
            Ok(Ok(0)) => return close(stream).await,
            Ok(Ok(n)) => buffered.extend_from_slice(&chunk[..n]),
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = req.parse(&buffered[..head_len]) else {
        return bad_request(stream, &config.server_header).await;
    };
    let head_only = req.method == Some("HEAD");
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    let content_length = match header("content-length").map(|v| v.parse::<u64>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return bad_request(stream, &config.server_header).await,
    };
    let connection_has = |token: &str| {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("connection"))
            .flat_map(|h| h.value.split(|b| *b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    };
    // A chunked body is not parsed here: answer and close.
    let keep_alive = header("transfer-encoding").is_none()
        && match req.version {
            Some(1) => !connection_has("close"),
            _ => connection_has("keep-alive"),
        };
    let mut rest = buffered.split_off(head_len);
    if !discard_body(stream, &mut rest, content_length, config).await {
        return After::Closed;
    }
    metrics::counter!(crate::metrics::DECOY_RESPONSES_TOTAL, "status" => "404").increment(1);
    let page = page(
        "404 Not Found",
        &config.server_header,
        keep_alive,
        head_only,
    );
    if stream.write_all(&page).await.is_err() || stream.flush().await.is_err() {
        return After::Closed;
    }
    if keep_alive {
        After::KeepAlive(rest)
    } else {
        close(stream).await
    }
}

/// Waits up to `--keepalive-timeout` for the next request's first bytes. `None`: closed (on
/// the timeout or when the gateway drains, with `close_notify`, as nginx does).
pub async fn next_request<S>(
    stream: &mut S,
    config: &GatewayConfig,
    drain: &CancellationToken,
) -> Option<Vec<u8>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut chunk = [0u8; 4096];
    let read = tokio::select! {
        read = tokio::time::timeout(config.keepalive_timeout, stream.read(&mut chunk)) => read,
        _ = drain.cancelled() => Ok(Ok(0)),
    };
    match read {
        Ok(Ok(n)) if n > 0 => Some(chunk[..n].to_vec()),
        Ok(Err(_)) => None,
        Ok(Ok(_)) | Err(_) => {
            close(stream).await;
            None
        }
    }
}

/// Reads and drops `len` body bytes (some may already be in `rest`, which keeps what follows
/// them). `false`: the client went away or paused longer than `--client-body-timeout`.
async fn discard_body<S>(
    stream: &mut S,
    rest: &mut Vec<u8>,
    len: u64,
    config: &GatewayConfig,
) -> bool
where
    S: AsyncRead + Unpin,
{
    let buffered = rest.len().min(usize::try_from(len).unwrap_or(usize::MAX));
    rest.drain(..buffered);
    let mut left = len - buffered as u64;
    let mut chunk = [0u8; 8192];
    while left > 0 {
        let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        match tokio::time::timeout(config.client_body_timeout, stream.read(&mut chunk[..want]))
            .await
        {
            Ok(Ok(n)) if n > 0 => left -= n as u64,
            _ => return false,
        }
    }
    true
}

async fn bad_request<S>(stream: &mut S, server: &str) -> After
where
    S: AsyncWrite + Unpin,
{
    metrics::counter!(crate::metrics::DECOY_RESPONSES_TOTAL, "status" => "400").increment(1);
    let _ = stream
        .write_all(&page("400 Bad Request", server, false, false))
        .await;
    close(stream).await
}

/// Ends the connection cleanly (TLS `close_notify`, then FIN).
async fn close<S>(stream: &mut S) -> After
where
    S: AsyncWrite + Unpin,
{
    let _ = stream.shutdown().await;
    After::Closed
}

/// nginx's error page and headers for `status`.
fn page(status: &str, server: &str, keep_alive: bool, head_only: bool) -> Vec<u8> {
    let body = format!(
        "<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n\
         <center><h1>{status}</h1></center>\r\n<hr><center>{server}</center>\r\n\
         </body>\r\n</html>\r\n"
    );
    let mut out = format!(
        "HTTP/1.1 {status}\r\nServer: {server}\r\nDate: {}\r\nContent-Type: text/html\r\n\
         Content-Length: {}\r\nConnection: {}\r\n\r\n",
        httpdate::fmt_http_date(SystemTime::now()),
        body.len(),
        if keep_alive { "keep-alive" } else { "close" },
    );
    if !head_only {
        out.push_str(&body);
    }
    out.into_bytes()
}
