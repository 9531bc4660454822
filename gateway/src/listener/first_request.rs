//! Reads the first request head of a connection just far enough to tell a session from
//! anything else. Bytes are held only while they can still be the start of
//! `GET <secret path> HTTP/1.1\r\n`; the first byte that cannot ends the wait, and everything
//! read so far goes on to the fallback. A head that starts right is read whole (bounded) and
//! checked as an upgrade (SPEC §2.2).

use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::upgrade::{self, Upgrade};

/// The most of a request head the gateway holds: nginx's default
/// `large_client_header_buffers 4 8k`. A longer head goes on to the fallback, which answers it.
pub const MAX_HEAD: usize = 32 * 1024;

/// Headers parsed at most; a head with more goes on to the fallback.
const MAX_HEADERS: usize = 64;

/// What the session request looks like.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    /// `GET <path> HTTP/1.1\r\n`.
    prefix: Vec<u8>,
    path: String,
    subprotocol: Option<String>,
}

impl SessionRequest {
    /// The upgrade on `path`, listing `subprotocol` if the deployment requires one.
    pub fn new(path: &str, subprotocol: Option<&str>) -> Self {
        SessionRequest {
            prefix: format!("GET {path} HTTP/1.1\r\n").into_bytes(),
            path: path.to_owned(),
            subprotocol: subprotocol.map(str::to_owned),
        }
    }
}

/// What the first bytes turned out to be.
#[derive(Debug)]
pub enum FirstRequest {
    /// A valid upgrade on the secret path. `buffered[head_len..]` is what the client sent after
    /// the head (the first WebSocket bytes); `buffered` as a whole is the request, should the
    /// session not start after all (draining).
    Upgrade {
        /// The 101's values.
        upgrade: Upgrade,
        /// Everything read.
        buffered: Vec<u8>,
        /// Length of the head within `buffered`.
        head_len: usize,
    },
    /// Not a session: everything read so far (never empty), for the fallback.
    Other(Vec<u8>),
    /// The client closed cleanly (TLS `close_notify`) before sending anything, or the gateway
    /// started draining while nothing had arrived.
    Closed,
    /// Nothing or a still-undecided start arrived before the deadline (`partial`: some bytes
    /// had arrived).
    TimedOut {
        /// Whether part of a request had arrived.
        partial: bool,
    },
    /// A read failed (reset, or a TLS peer gone without `close_notify`) with nothing read.
    Failed,
}

/// Reads from `stream`, after the bytes already in `buffered`, until the request is decided or
/// `deadline` passes. A connection with nothing read yet ends when `drain` is cancelled.
pub async fn read<S>(
    stream: &mut S,
    mut buffered: Vec<u8>,
    session: &SessionRequest,
    deadline: Instant,
    drain: &CancellationToken,
) -> FirstRequest
where
    S: AsyncRead + Unpin,
{
    let mut chunk = [0u8; 4096];
    // Where the search for the blank line ending the head resumes.
    let mut scanned = 0;
    loop {
        match decide(&buffered, &mut scanned, session) {
            Decision::NeedMore => {}
            Decision::Other => return FirstRequest::Other(buffered),
            Decision::Upgrade(upgrade, head_len) => {
                return FirstRequest::Upgrade {
                    upgrade,
                    buffered,
                    head_len,
                }
            }
        }
        if buffered.len() >= MAX_HEAD {
            return FirstRequest::Other(buffered);
        }
        let want = (MAX_HEAD - buffered.len()).min(chunk.len());
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk[..want]));
        let read = tokio::select! {
            read = read => read,
            _ = drain.cancelled(), if buffered.is_empty() => return FirstRequest::Closed,
        };
        match read {
            Err(_) => {
                return FirstRequest::TimedOut {
                    partial: !buffered.is_empty(),
                }
            }
            Ok(Ok(0)) | Ok(Err(_)) if !buffered.is_empty() => {
                // The fallback gets the partial request and then the end, as it would directly.
                return FirstRequest::Other(buffered);
            }
            Ok(Ok(0)) => return FirstRequest::Closed,
            Ok(Err(_)) => return FirstRequest::Failed,
            Ok(Ok(n)) => buffered.extend_from_slice(&chunk[..n]),
        }
    }
}

enum Decision {
    NeedMore,
    Other,
    Upgrade(Upgrade, usize),
}

fn decide(buffered: &[u8], scanned: &mut usize, session: &SessionRequest) -> Decision {
    let prefix = &session.prefix;
    let n = buffered.len().min(prefix.len());
    // Constant time: how much of a guess matched must not show in the timing either.
    let matches: bool = buffered[..n].ct_eq(&prefix[..n]).into();
    if !matches {
        return Decision::Other;
    }
    if buffered.len() < prefix.len() {
        return Decision::NeedMore;
    }
    // Parse only once the blank line is there (a head sent byte by byte is not re-parsed per
    // byte).
    let from = scanned.saturating_sub(3);
    let Some(end) = find(&buffered[from..], b"\r\n\r\n") else {
        *scanned = buffered.len();
        return Decision::NeedMore;
    };
    let head_len = from + end + 4;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&buffered[..head_len]) {
        Ok(httparse::Status::Complete(len)) if len == head_len => {
            match upgrade::check(&req, &session.path, session.subprotocol.as_deref()) {
                Ok(upgrade) => Decision::Upgrade(upgrade, head_len),
                Err(reason) => {
                    tracing::trace!(?reason, "secret path without a valid upgrade");
                    Decision::Other
                }
            }
        }
        _ => Decision::Other,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn upgrade_head(path: &str) -> String {
        format!(
            "GET {path} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
    }

    async fn first(bytes: &[u8]) -> FirstRequest {
        let session = SessionRequest::new("/s3cr3t", None);
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        tokio::io::AsyncWriteExt::write_all(&mut client, bytes)
            .await
            .unwrap();
        let deadline = Instant::now() + std::time::Duration::from_millis(200);
        read(
            &mut server,
            Vec::new(),
            &session,
            deadline,
            &CancellationToken::new(),
        )
        .await
    }

    #[tokio::test]
    async fn an_upgrade_keeps_the_bytes_after_its_head() {
        let mut bytes = upgrade_head("/s3cr3t").into_bytes();
        let head = bytes.len();
        bytes.extend_from_slice(b"\x82\x00");
        match first(&bytes).await {
            FirstRequest::Upgrade {
                buffered, head_len, ..
            } => {
                assert_eq!(head_len, head);
                assert_eq!(&buffered[head_len..], b"\x82\x00");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_first_byte_that_cannot_match_decides_without_waiting() {
        // No blank line yet: only the mismatch can decide it, before the deadline.
        for start in [
            "GET /s3cx",
            "POST /",
            "get /s3cr3t HTTP/1.1\r\n",
            "GET /s3cr3t?",
        ] {
            match first(start.as_bytes()).await {
                FirstRequest::Other(bytes) => assert_eq!(bytes, start.as_bytes()),
                other => panic!("{start:?}: {other:?}"),
            }
        }
        match first(b"GET /s3cr").await {
            FirstRequest::TimedOut { partial: true } => {}
            other => panic!("a matching start waits: {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_secret_path_without_a_valid_upgrade_goes_on() {
        let plain = "GET /s3cr3t HTTP/1.1\r\nHost: a\r\n\r\n";
        assert!(
            matches!(first(plain.as_bytes()).await, FirstRequest::Other(b) if b == plain.as_bytes())
        );
        let long = format!("GET /s3cr3t HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
        match first(long.as_bytes()).await {
            FirstRequest::Other(bytes) => assert_eq!(bytes.len(), MAX_HEAD, "bounded"),
            other => panic!("{other:?}"),
        }
    }
}
