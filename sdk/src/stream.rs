//! TCP streams as tokio `AsyncRead + AsyncWrite` values. A stream's buffers live in a
//! [`StreamSlot`] shared with the session driver: the application reads what the driver
//! delivered (and the driver grants the gateway credit only for what was read), and writes at
//! most what the stream's flow-control credit allows.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use httvps_proto::{ResetCode, StreamId, TargetAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::driver::SessionShared;
use crate::error::Error;

/// Bytes a stream's handle may hold before the driver has moved them into the connection. The
/// connection itself holds at most the stream's flow-control credit on top of this; when the
/// credit runs out, the driver leaves bytes here and the writer waits.
pub(crate) const STREAM_OUTBOX: usize = 128 * 1024;

/// Why a stream cannot go on.
#[derive(Clone, Debug)]
pub(crate) enum StreamFailure {
    Reset(ResetCode),
    SessionEnded(String),
}

impl StreamFailure {
    fn to_io(&self) -> io::Error {
        match self {
            StreamFailure::Reset(code) => Error::StreamReset(*code).into(),
            StreamFailure::SessionEnded(why) => {
                io::Error::new(io::ErrorKind::ConnectionAborted, why.clone())
            }
        }
    }
}

/// The half of a stream's state the application side touches.
#[derive(Debug, Default)]
pub(crate) struct StreamInner {
    pub recv: VecDeque<Bytes>,
    /// The gateway sent STREAM_FIN.
    pub eof: bool,
    /// Bytes the application read that the driver has not yet credited back.
    pub consumed: usize,
    pub outbox: VecDeque<Bytes>,
    pub outbox_len: usize,
    /// The application shut down its write side.
    pub fin_requested: bool,
    /// The driver passed the FIN to the connection.
    pub fin_sent: bool,
    /// The application dropped the stream before it was finished both ways.
    pub cancel_requested: bool,
    pub failure: Option<StreamFailure>,
    pub read_waker: Option<Waker>,
    pub write_waker: Option<Waker>,
}

/// A stream's shared state.
#[derive(Debug, Default)]
pub(crate) struct StreamSlot {
    inner: Mutex<StreamInner>,
}

impl StreamSlot {
    pub(crate) fn lock(&self) -> MutexGuard<'_, StreamInner> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fails the stream and wakes both sides.
    pub(crate) fn fail(&self, failure: StreamFailure) {
        let mut inner = self.lock();
        if inner.failure.is_none() {
            inner.failure = Some(failure);
        }
        wake(&mut inner.read_waker);
        wake(&mut inner.write_waker);
    }
}

pub(crate) fn wake(waker: &mut Option<Waker>) {
    if let Some(w) = waker.take() {
        w.wake();
    }
}

/// A TCP stream through the tunnel. Dropping it without shutting it down resets it.
#[derive(Debug)]
pub struct TcpStream {
    id: StreamId,
    target: TargetAddr,
    slot: Arc<StreamSlot>,
    session: Arc<SessionShared>,
}

impl TcpStream {
    pub(crate) fn new(
        id: StreamId,
        target: TargetAddr,
        slot: Arc<StreamSlot>,
        session: Arc<SessionShared>,
    ) -> Self {
        TcpStream {
            id,
            target,
            slot,
            session,
        }
    }

    /// The stream's id within its session.
    pub fn id(&self) -> u32 {
        self.id.0
    }

    /// Where the stream goes.
    pub fn target(&self) -> &TargetAddr {
        &self.target
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut inner = this.slot.lock();
        let mut read = 0;
        while buf.remaining() > 0 {
            let Some(front) = inner.recv.front_mut() else {
                break;
            };
            let n = front.len().min(buf.remaining());
            buf.put_slice(&front[..n]);
            front.advance(n);
            if front.is_empty() {
                inner.recv.pop_front();
            }
            read += n;
        }
        if read > 0 {
            inner.consumed += read;
            drop(inner);
            this.session.mark_dirty(this.id);
            return Poll::Ready(Ok(()));
        }
        if inner.eof {
            return Poll::Ready(Ok(()));
        }
        if let Some(failure) = &inner.failure {
            return Poll::Ready(Err(failure.to_io()));
        }
        inner.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut inner = this.slot.lock();
        if let Some(failure) = &inner.failure {
            return Poll::Ready(Err(failure.to_io()));
        }
        if inner.fin_requested {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the stream was shut down for writing",
            )));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = STREAM_OUTBOX.saturating_sub(inner.outbox_len);
        if room == 0 {
            inner.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        inner.outbox.push_back(Bytes::copy_from_slice(&buf[..n]));
        inner.outbox_len += n;
        drop(inner);
        this.session.mark_dirty(this.id);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Written bytes are handed to the session at once; "flushed" means the session has them.
        let this = self.get_mut();
        let mut inner = this.slot.lock();
        if let Some(failure) = &inner.failure {
            return Poll::Ready(Err(failure.to_io()));
        }
        if inner.outbox_len == 0 {
            return Poll::Ready(Ok(()));
        }
        inner.write_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut inner = this.slot.lock();
        if inner.failure.is_none() && !inner.fin_requested {
            inner.fin_requested = true;
            drop(inner);
            this.session.mark_dirty(this.id);
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        let mut inner = self.slot.lock();
        let finished = inner.fin_requested && inner.eof;
        if inner.failure.is_none() && !finished {
            // Abandoned mid-way: tell the gateway to stop at once rather than keep relaying.
            inner.cancel_requested = true;
        } else {
            // Credit back whatever was delivered but never read.
            inner.consumed += inner.recv.iter().map(Bytes::len).sum::<usize>();
            inner.recv.clear();
        }
        drop(inner);
        self.session.mark_dirty(self.id);
    }
}
