//! Relaying a local connection and its tunnel stream both ways.

use tokio::io::{AsyncRead, AsyncWrite};

/// Bytes moved per read and write each way. tokio's default (8 KiB) cut every download into
/// 8 KiB socket writes, and the application behind the proxy read it in as many calls; 64 KiB
/// lets one read drain several STREAM_DATA frames and one write hand them all to the socket.
const RELAY_BUFFER: usize = 64 * 1024;

/// Copies both ways until both sides are finished; returns the bytes sent each way (a to b,
/// b to a).
pub async fn relay<A, B>(a: &mut A, b: &mut B) -> std::io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    tokio::io::copy_bidirectional_with_sizes(a, b, RELAY_BUFFER, RELAY_BUFFER).await
}
