//! Android's packet I/O: the TUN file descriptor `VpnService` gives, read and written through
//! tokio's reactor. Each read is one IP packet, each write one packet (no header).
//!
//! The descriptor belongs to the platform: it is borrowed, never closed here.

// Reading and writing a raw descriptor the platform handed over is FFI by nature.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use httvps_tun::{PacketSink, PacketSource};
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;

use crate::error::TunnelError;
use crate::status::Counters;

/// The platform's descriptor, borrowed: dropping it does not close it.
#[derive(Debug)]
struct BorrowedTun(RawFd);

impl AsRawFd for BorrowedTun {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Starts the two pumps (device to engine, engine to device) on the current runtime.
pub(crate) fn pump(
    fd: i32,
    mtu: u16,
    sink: PacketSink,
    source: PacketSource,
    counters: Arc<Counters>,
) -> Result<Vec<JoinHandle<()>>, TunnelError> {
    if fd < 0 {
        return Err(TunnelError::Config(format!("bad file descriptor {fd}")));
    }
    set_nonblocking(fd).map_err(|e| TunnelError::Start(format!("descriptor {fd}: {e}")))?;
    // SAFETY: the platform keeps the descriptor open until after `stop`, which drops this.
    let device = unsafe { AsyncFd::register(BorrowedTun(fd)) }
        .map_err(|e| TunnelError::Start(format!("descriptor {fd}: {e}")))?;
    let device = Arc::new(device);
    let read = tokio::spawn(read_in(device.clone(), mtu, sink, counters.clone()));
    let write = tokio::spawn(write_out(device, source, counters));
    Ok(vec![read, write])
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller vouches is open; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Packets from the device into the engine, until the descriptor fails or the engine stops.
async fn read_in(
    device: Arc<AsyncFd<BorrowedTun>>,
    mtu: u16,
    sink: PacketSink,
    counters: Arc<Counters>,
) {
    let mut buf = vec![0u8; usize::from(mtu).max(1500) + 64];
    loop {
        let read = device
            .async_io(tokio::io::Interest::READABLE, |fd| {
                // SAFETY: `buf` is valid for `buf.len()` bytes for the duration of the call.
                let n = unsafe { libc::read(fd.0, buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            })
            .await;
        match read {
            Ok(0) => return,
            Ok(n) => {
                counters.sent(n);
                if sink.send(buf[..n].to_vec()).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!("reading the TUN descriptor: {e}");
                return;
            }
        }
    }
}

/// Packets from the engine onto the device.
async fn write_out(
    device: Arc<AsyncFd<BorrowedTun>>,
    mut source: PacketSource,
    counters: Arc<Counters>,
) {
    while let Some(packet) = source.recv().await {
        // Counted before the write: the app may read the packet before this task runs again.
        counters.received(packet.len());
        let written = device
            .async_io(tokio::io::Interest::WRITABLE, |fd| {
                // SAFETY: `packet` is valid for `packet.len()` bytes for the duration of the call.
                let n = unsafe { libc::write(fd.0, packet.as_ptr().cast(), packet.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            })
            .await;
        match written {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!("writing the TUN descriptor: {e}");
                return;
            }
        }
    }
}
