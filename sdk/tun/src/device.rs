//! The stack's side of the packet pipes: ipstack reads and writes a device, one IP packet per
//! read or write; here that device is two bounded channels, so packets can come from a TUN
//! file descriptor as well as from a mobile platform's packet callbacks.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

/// Packets into the stack (`inbound`) and out of it (`outbound`).
#[derive(Debug)]
pub struct ChannelDevice {
    inbound: mpsc::Receiver<Vec<u8>>,
    outbound: PollSender<Vec<u8>>,
}

impl ChannelDevice {
    pub fn new(inbound: mpsc::Receiver<Vec<u8>>, outbound: mpsc::Sender<Vec<u8>>) -> Self {
        ChannelDevice {
            inbound,
            outbound: PollSender::new(outbound),
        }
    }
}

impl AsyncRead for ChannelDevice {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            match ready!(self.inbound.poll_recv(cx)) {
                // The stack's buffer is one MTU: a larger packet cannot be a packet of this
                // link and is dropped rather than cut.
                Some(packet) if packet.len() > buf.remaining() => continue,
                Some(packet) => {
                    buf.put_slice(&packet);
                    return Poll::Ready(Ok(()));
                }
                // The engine is gone and drops the stack with it; an end of file would only
                // make the stack's reader spin until then.
                None => return Poll::Pending,
            }
        }
    }
}

impl AsyncWrite for ChannelDevice {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        packet: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Waits for room: the stack slows down with the device instead of queueing without end.
        ready!(self.outbound.poll_reserve(cx)).map_err(|_| closed())?;
        self.outbound
            .send_item(packet.to_vec())
            .map_err(|_| closed())?;
        Poll::Ready(Ok(packet.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.outbound.close();
        Poll::Ready(Ok(()))
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the packet output is closed")
}
