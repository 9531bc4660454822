//! The session loop over in-memory WebSockets (`tokio::io::duplex`) with paused time: every
//! timer of a session fires in simulated time, so each test runs in milliseconds.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use httvps_driver::hello;
use httvps_driver::{App, Core, DriverConfig, Ended, Heartbeat, Outcome};
use httvps_proto::frame::{Frame, StreamKind};
use httvps_proto::{
    AcceptHello, ClientHello, Connection, ErrorCode, Event, Role, SessionConfig, StreamId,
    TargetAddr,
};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<DuplexStream>;

async fn ws_pair() -> (Ws, Ws) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let server = WebSocketStream::from_raw_socket(a, WsRole::Server, None).await;
    let client = WebSocketStream::from_raw_socket(b, WsRole::Client, None).await;
    (server, client)
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// What the test tells the server application.
enum Cmd {
    Drain(Duration),
}

/// A server that accepts every HELLO and stream, and writes `download` bytes on each stream
/// it accepts, as flow control lets it.
struct Server {
    cmds: mpsc::UnboundedReceiver<Cmd>,
    download: usize,
    /// Bytes still to write, per stream.
    left: Vec<(StreamId, usize)>,
    streams: usize,
}

impl Server {
    fn pump(&mut self, core: &mut Core) {
        for (id, left) in &mut self.left {
            while *left > 0 {
                let chunk = Bytes::from(vec![7u8; (*left).min(16 * 1024)]);
                let taken = core.conn_mut().write(*id, chunk).unwrap_or(0);
                *left -= taken;
                if taken == 0 {
                    break;
                }
            }
        }
    }
}

impl App for Server {
    type Input = Option<Cmd>;

    async fn next_input(&mut self) -> Option<Cmd> {
        match self.cmds.recv().await {
            Some(cmd) => Some(cmd),
            None => std::future::pending().await,
        }
    }

    fn on_input(&mut self, core: &mut Core, input: Option<Cmd>) {
        if let Some(Cmd::Drain(grace)) = input {
            core.start_drain(ErrorCode::ShuttingDown, "gateway shutting down", grace);
        }
    }

    async fn on_event(&mut self, core: &mut Core, event: Event) {
        match event {
            Event::HelloReceived(_) => {
                core.conn_mut()
                    .accept_hello(AcceptHello::new([1; 16], vec![2; 32]))
                    .unwrap();
            }
            Event::StreamOpened(open) => {
                core.conn_mut().accept_stream(open.stream_id).unwrap();
                self.streams += 1;
                if self.download > 0 {
                    self.left.push((open.stream_id, self.download));
                }
            }
            Event::StreamReset { .. } => self.streams -= 1,
            _ => {}
        }
    }

    fn after_io(&mut self, core: &mut Core) {
        self.pump(core);
    }

    fn is_drained(&self) -> bool {
        self.streams == 0
    }
}

struct ServerHandle {
    cmds: mpsc::UnboundedSender<Cmd>,
    done: tokio::task::JoinHandle<Outcome>,
}

fn spawn_server(ws: Ws, config: DriverConfig, download: usize) -> ServerHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let done = tokio::spawn(async move {
        let mut app = Server {
            cmds: rx,
            download,
            left: Vec::new(),
            streams: 0,
        };
        let core = Core::new(
            Connection::new(Role::Server, SessionConfig::default(), now()),
            &config,
        );
        let (sink, source) = ws.split();
        httvps_driver::run(core, &mut app, sink, source, &config).await
    });
    ServerHandle { cmds: tx, done }
}

/// A client driven by hand, frame by frame.
struct Peer {
    ws: Ws,
    conn: Connection,
}

impl Peer {
    /// Says HELLO and waits for HELLO_ACK.
    async fn connect(ws: Ws) -> Peer {
        let (mut sink, mut source) = ws.split();
        let mut conn = Connection::new(Role::Client, SessionConfig::default(), now());
        conn.send_hello(ClientHello::new("dev", b"token".to_vec()))
            .unwrap();
        hello::exchange(&mut sink, &mut source, &mut conn)
            .await
            .unwrap();
        Peer {
            ws: sink.reunite(source).unwrap(),
            conn,
        }
    }

    async fn flush(&mut self) {
        while let Some(frame) = self.conn.poll_transmit(now()) {
            self.ws.send(Message::Binary(frame)).await.unwrap();
        }
    }

    /// The next protocol event, or the close code once the WebSocket closes.
    async fn next(&mut self) -> Result<Event, Option<u16>> {
        loop {
            if let Some(event) = self.conn.poll_event() {
                return Ok(event);
            }
            match self.ws.next().await {
                Some(Ok(Message::Binary(b))) => {
                    let _ = self.conn.handle_message(b, now());
                }
                Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => {}
                _ => return Err(None),
            }
        }
    }

    /// Reads until the session's ERROR and Close; returns the ERROR code and the close code.
    async fn until_close(&mut self) -> (Option<ErrorCode>, Option<u16>) {
        let mut error = None;
        loop {
            match self.next().await {
                Ok(Event::PeerError(e)) => error = Some(e.code),
                Ok(_) => {}
                Err(code) => return (error, code),
            }
        }
    }

    fn open(&mut self) -> StreamId {
        let target = TargetAddr::socket("127.0.0.1:80".parse().unwrap()).unwrap();
        self.conn
            .open_stream(StreamKind::Tcp, target, Bytes::new())
            .unwrap()
            .0
    }
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_never_says_hello_is_closed_at_the_handshake_timeout() {
    let (server, mut client) = ws_pair().await;
    let config = DriverConfig {
        handshake_timeout: Some(Duration::from_secs(10)),
        ..DriverConfig::default()
    };
    let started = Instant::now();
    let handle = spawn_server(server, config, 0);
    let mut frames = Vec::new();
    let code = loop {
        match client.next().await {
            Some(Ok(Message::Binary(b))) => frames.push(Frame::decode(b, 1 << 20).unwrap()),
            Some(Ok(Message::Close(f))) => break f.map(|f| u16::from(f.code)),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert!(matches!(&frames[..], [Frame::Error(e)] if e.code == ErrorCode::HandshakeTimeout));
    assert_eq!(code, Some(1001));
    drop(client);
    let outcome = handle.done.await.unwrap();
    assert_eq!(outcome.local_error, Some(ErrorCode::HandshakeTimeout));
    assert_eq!(outcome.established_at, None);
}

#[tokio::test(start_paused = true)]
async fn before_the_handshake_a_quiet_server_withholds_the_error_and_delays_the_close() {
    let (server, mut client) = ws_pair().await;
    let config = DriverConfig {
        handshake_timeout: Some(Duration::from_secs(10)),
        unauthenticated_close_delay: Some(Duration::from_secs(10)),
        ..DriverConfig::default()
    };
    let started = Instant::now();
    let _handle = spawn_server(server, config, 0);
    let msg = client.next().await;
    let Some(Ok(Message::Close(Some(frame)))) = msg else {
        panic!("expected only a Close, got {msg:?}");
    };
    assert_eq!(u16::from(frame.code), 1000, "the code tells nothing");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(11) && waited <= Duration::from_secs(20),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_session_ends_at_the_idle_timeout_and_every_frame_restarts_it() {
    let (server, client) = ws_pair().await;
    let config = DriverConfig {
        idle_timeout: Some(Duration::from_secs(30)),
        ..DriverConfig::default()
    };
    let handle = spawn_server(server, config, 0);
    let mut peer = Peer::connect(client).await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(20)).await;
    peer.conn.ping(now()).unwrap();
    peer.flush().await;
    let (error, code) = peer.until_close().await;
    assert_eq!(error, Some(ErrorCode::IdleTimeout));
    assert_eq!(code, Some(1001));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(50) && waited < Duration::from_secs(51),
        "{waited:?}"
    );
    assert_eq!(
        handle.done.await.unwrap().local_error,
        Some(ErrorCode::IdleTimeout)
    );
}

/// A client that answers nothing after the handshake.
struct Quiet;

impl App for Quiet {
    type Input = ();

    async fn next_input(&mut self) {
        std::future::pending::<()>().await;
    }

    fn on_input(&mut self, _: &mut Core, _: ()) {}

    async fn on_event(&mut self, _: &mut Core, _: Event) {}
}

#[tokio::test(start_paused = true)]
async fn a_client_whose_pings_go_unanswered_ends_the_session_at_the_pong_deadline() {
    let (server, client) = ws_pair().await;
    // The server answers HELLO, then stops reading (its PONGs never come).
    let server_side = tokio::spawn(async move {
        let mut ws = server;
        let mut conn = Connection::new(Role::Server, SessionConfig::default(), now());
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Binary(b) = msg {
                conn.handle_message(b, now()).unwrap();
                break;
            }
        }
        conn.accept_hello(AcceptHello::new([1; 16], vec![2; 32]))
            .unwrap();
        while let Some(frame) = conn.poll_transmit(now()) {
            ws.send(Message::Binary(frame)).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(ws);
    });
    let (mut sink, mut source) = client.split();
    let mut conn = Connection::new(Role::Client, SessionConfig::default(), now());
    conn.send_hello(ClientHello::new("dev", b"token".to_vec()))
        .unwrap();
    let ack = hello::exchange(&mut sink, &mut source, &mut conn)
        .await
        .unwrap();
    let config = DriverConfig {
        close_timeout: Duration::from_millis(100),
        ..DriverConfig::default()
    };
    let mut core = Core::new(conn, &config);
    let heartbeat = Heartbeat::from_ack(ack.heartbeat_interval_ms);
    core.start_heartbeat(heartbeat);
    let started = Instant::now();
    let outcome = httvps_driver::run(core, &mut Quiet, sink, source, &config).await;
    assert_eq!(outcome.ended, Ended::PongMissed);
    let waited = started.elapsed();
    // The first PING goes at once; its PONG is due `pong_timeout` later.
    assert!(
        waited >= heartbeat.pong_timeout && waited <= heartbeat.pong_timeout + config.close_timeout,
        "{waited:?}"
    );
    server_side.abort();
}

/// A server session with default settings and a client peer whose one stream it accepted.
async fn server_with_an_open_stream() -> (ServerHandle, Peer, StreamId) {
    let (server, client) = ws_pair().await;
    let handle = spawn_server(server, DriverConfig::default(), 0);
    let mut peer = Peer::connect(client).await;
    let id = peer.open();
    peer.flush().await;
    assert_eq!(peer.next().await, Ok(Event::StreamAccepted(id)));
    (handle, peer, id)
}

#[tokio::test(start_paused = true)]
async fn a_drain_sends_goaway_and_closes_once_the_last_stream_is_gone() {
    let (handle, mut peer, id) = server_with_an_open_stream().await;
    handle
        .cmds
        .send(Cmd::Drain(Duration::from_secs(60)))
        .unwrap();
    assert!(matches!(peer.next().await, Ok(Event::GoAway(g)) if g.code == ErrorCode::ShuttingDown));
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    peer.conn
        .reset(id, httvps_proto::ResetCode::Cancel)
        .unwrap();
    peer.flush().await;
    let (error, code) = peer.until_close().await;
    assert_eq!((error, code), (Some(ErrorCode::NoError), Some(1000)));
    assert!(started.elapsed() < Duration::from_secs(6));
    handle.done.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_drain_ends_the_session_at_its_deadline_when_streams_remain() {
    let (handle, mut peer, _) = server_with_an_open_stream().await;
    let started = Instant::now();
    handle
        .cmds
        .send(Cmd::Drain(Duration::from_secs(60)))
        .unwrap();
    let (error, code) = peer.until_close().await;
    assert_eq!((error, code), (Some(ErrorCode::ShuttingDown), Some(1001)));
    assert_eq!(started.elapsed(), Duration::from_secs(60));
    handle.done.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stream_stalls_at_its_window_and_resumes_when_the_reader_consumes() {
    let (server, client) = ws_pair().await;
    let total = 1 << 20;
    let _handle = spawn_server(server, DriverConfig::default(), total);
    let mut peer = Peer::connect(client).await;
    let window = SessionConfig::default().limits.stream_window as usize;
    assert!(window < total);
    let id = peer.open();
    peer.flush().await;
    let mut received = 0;
    let mut unconsumed = 0;
    while received < total {
        let next = tokio::time::timeout(Duration::from_secs(5), peer.next()).await;
        match next {
            Ok(Ok(Event::StreamData { data, .. })) => {
                received += data.len();
                unconsumed += data.len();
                assert!(unconsumed <= window, "the sender exceeded the window");
            }
            Ok(Ok(_)) => {}
            Ok(Err(code)) => panic!("closed with {code:?}"),
            Err(_) => {
                // Stalled: exactly a window's worth is out, nothing more comes until credit.
                assert_eq!(unconsumed, window, "stalled short of the window");
                peer.conn.consume(id, unconsumed, now()).unwrap();
                unconsumed = 0;
                peer.flush().await;
            }
        }
    }
    assert_eq!(received, total);
}
