//! One probe connection with blocking sockets: sends bytes (inside TLS or raw) and records every
//! byte received and how the connection ended — TCP FIN or RST, TLS close_notify, alerts — and
//! when. rustls is driven by hand so that the TLS close and the TCP close are seen separately.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

/// How the TCP connection ended, as far as the probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpClose {
    /// Still open when the probe stopped watching.
    Open,
    /// Orderly close (read returned end of stream).
    Fin,
    /// Reset by the peer.
    Reset,
    /// Another socket error.
    Error(io::ErrorKind),
}

/// The negotiated TLS parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsParameters {
    pub version: String,
    pub cipher_suite: String,
    pub alpn: Option<String>,
}

/// Everything one connection showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// Could not connect at all.
    pub connect_error: Option<io::ErrorKind>,
    /// TLS only: the parameters once the handshake completed.
    pub handshake: Option<TlsParameters>,
    /// Application bytes (decrypted for TLS probes, raw for plain ones).
    pub received: Vec<u8>,
    /// TLS only: the first TLS error (e.g. an alert received), after which reading went on raw.
    pub tls_error: Option<String>,
    /// TLS only: bytes that arrived after a TLS error.
    pub raw_after_tls_error: usize,
    /// TLS only: the peer sent close_notify.
    pub close_notify: bool,
    pub tcp_close: TcpClose,
    /// Time from the last byte sent (or the connect) to the TCP close.
    pub closed_after: Option<Duration>,
}

impl Observed {
    fn new() -> Observed {
        Observed {
            connect_error: None,
            handshake: None,
            received: Vec::new(),
            tls_error: None,
            raw_after_tls_error: 0,
            close_notify: false,
            tcp_close: TcpClose::Open,
            closed_after: None,
        }
    }

    /// A connection that never happened.
    pub fn connect_failed(kind: io::ErrorKind) -> Observed {
        Observed {
            connect_error: Some(kind),
            ..Observed::new()
        }
    }
}

/// When an answer counts as complete without a close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quiet {
    /// Longest wait for the first answer byte after the last send.
    pub first_byte: Duration,
    /// Silence after the last byte that ends the answer.
    pub after_bytes: Duration,
}

/// A probe connection in progress.
#[derive(Debug)]
pub struct ProbeConn {
    tcp: TcpStream,
    tls: Option<ClientConnection>,
    tls_failed: bool,
    last_send: Instant,
    last_activity: Instant,
    observed: Observed,
}

impl ProbeConn {
    /// Connects; with `tls`, starts the handshake (its ClientHello leaves at once).
    pub fn connect(
        addr: SocketAddr,
        tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
        timeout: Duration,
    ) -> io::Result<ProbeConn> {
        let tcp = TcpStream::connect_timeout(&addr, timeout)?;
        tcp.set_nodelay(true)?;
        let tls = match tls {
            Some((config, name)) => {
                Some(ClientConnection::new(config, name).map_err(io::Error::other)?)
            }
            None => None,
        };
        let now = Instant::now();
        let mut conn = ProbeConn {
            tcp,
            tls,
            tls_failed: false,
            last_send: now,
            last_activity: now,
            observed: Observed::new(),
        };
        conn.flush_tls();
        Ok(conn)
    }

    /// Sends `bytes` (buffered inside TLS until the handshake is done). A reset seen while
    /// writing is recorded; other write errors show up when reading.
    pub fn send(&mut self, bytes: &[u8]) {
        self.last_send = Instant::now();
        match &mut self.tls {
            Some(tls) if !self.tls_failed => {
                let _ = tls.writer().write_all(bytes);
                self.flush_tls();
            }
            Some(_) => {}
            None => {
                if let Err(e) = self.tcp.write_all(bytes) {
                    self.note_write_error(&e);
                }
            }
        }
    }

    /// Reads until the TCP connection closes, `deadline` passes, or (with `quiet`) the answer
    /// seems complete: nothing arrived for `quiet.after_bytes` since the last byte, or, before
    /// any answer byte, for `quiet.first_byte` since the last send (a slow server gets longer
    /// for its first byte than a finished answer gets for a silent tail).
    pub fn read_until(&mut self, deadline: Instant, quiet: Option<Quiet>) {
        let mut buf = vec![0u8; 16 * 1024];
        while self.observed.tcp_close == TcpClose::Open {
            let now = Instant::now();
            let mut limit = deadline;
            if let Some(quiet) = quiet {
                let quiet_end = if self.observed.received.is_empty() {
                    self.last_send + quiet.first_byte
                } else {
                    self.last_activity.max(self.last_send) + quiet.after_bytes
                };
                limit = limit.min(quiet_end);
            }
            if now >= limit {
                return;
            }
            if self.tcp.set_read_timeout(Some(limit - now)).is_err() {
                return;
            }
            match self.tcp.read(&mut buf) {
                Ok(0) => self.closed(TcpClose::Fin),
                Ok(n) => {
                    self.last_activity = Instant::now();
                    self.ingest(&buf[..n]);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    self.closed(TcpClose::Reset)
                }
                Err(e) => self.closed(TcpClose::Error(e.kind())),
            }
        }
    }

    /// Stops watching: what was seen so far.
    pub fn finish(self) -> Observed {
        let _ = self.tcp.shutdown(Shutdown::Both);
        self.observed
    }

    fn closed(&mut self, how: TcpClose) {
        if self.observed.tcp_close == TcpClose::Open {
            self.observed.tcp_close = how;
            self.observed.closed_after = Some(self.last_send.elapsed());
        }
    }

    fn note_write_error(&mut self, e: &io::Error) {
        if e.kind() == io::ErrorKind::ConnectionReset {
            self.closed(TcpClose::Reset);
        }
    }

    fn ingest(&mut self, bytes: &[u8]) {
        if self.tls.is_none() {
            self.observed.received.extend_from_slice(bytes);
            return;
        }
        if self.tls_failed {
            self.observed.raw_after_tls_error += bytes.len();
            return;
        }
        if let Some(mut tls) = self.tls.take() {
            self.ingest_tls(&mut tls, bytes);
            self.tls = Some(tls);
        }
    }

    fn ingest_tls(&mut self, tls: &mut ClientConnection, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if let Err(e) = tls.read_tls(&mut bytes) {
                self.fail_tls(e.to_string());
                self.observed.raw_after_tls_error += bytes.len();
                return;
            }
            match tls.process_new_packets() {
                Ok(state) => {
                    if state.plaintext_bytes_to_read() > 0 {
                        let mut plain = vec![0u8; state.plaintext_bytes_to_read()];
                        if tls.reader().read_exact(&mut plain).is_ok() {
                            self.observed.received.extend_from_slice(&plain);
                        }
                    }
                    if state.peer_has_closed() {
                        self.observed.close_notify = true;
                    }
                    if self.observed.handshake.is_none() && !tls.is_handshaking() {
                        self.observed.handshake = Some(parameters(tls));
                    }
                }
                Err(e) => {
                    // The alert rustls wants to send goes out, as a real client's would.
                    self.fail_tls(e.to_string());
                    self.write_tls(tls);
                    self.observed.raw_after_tls_error += bytes.len();
                    return;
                }
            }
            self.write_tls(tls);
        }
    }

    fn fail_tls(&mut self, error: String) {
        self.tls_failed = true;
        self.observed.tls_error.get_or_insert(error);
    }

    fn flush_tls(&mut self) {
        if let Some(mut tls) = self.tls.take() {
            self.write_tls(&mut tls);
            self.tls = Some(tls);
        }
    }

    fn write_tls(&mut self, tls: &mut ClientConnection) {
        while tls.wants_write() {
            if let Err(e) = tls.write_tls(&mut self.tcp) {
                self.note_write_error(&e);
                return;
            }
        }
    }
}

fn parameters(tls: &ClientConnection) -> TlsParameters {
    TlsParameters {
        version: tls
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        cipher_suite: tls
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
        alpn: tls
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    }
}
