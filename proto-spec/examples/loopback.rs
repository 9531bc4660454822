//! A client and a server session wired back to back in memory: HELLO, a few streams, bulk data
//! both ways under flow control, FIN. It prints what happened and how fast the sans-IO core moves
//! bytes with no network in the way.
//!
//! `cargo run --release -p httvps-proto --example loopback [MiB per stream] [streams]`

use std::time::Instant;

use bytes::Bytes;
use httvps_proto::{
    AcceptHello, ClientHello, Connection, Event, Role, SessionConfig, StreamKind, TargetAddr,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(64);
    let streams: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4);
    let per_stream = mib * 1024 * 1024;

    let start = Instant::now();
    let mut client = Connection::new(Role::Client, SessionConfig::default(), start);
    let mut server = Connection::new(Role::Server, SessionConfig::default(), start);
    client.send_hello(ClientHello::new("demo-device", b"demo-token".to_vec()))?;
    pump(&mut client, &mut server)?;
    if let Some(Event::HelloReceived(hello)) = server.poll_event() {
        println!(
            "server: HELLO from device {:?} (token {:?})",
            hello.device_id, hello.device_token
        );
    }
    server.accept_hello(AcceptHello::new([42; 16], b"resume-me".to_vec()))?;
    pump(&mut server, &mut client)?;
    if let Some(Event::HelloAccepted(ack)) = client.poll_event() {
        println!(
            "client: HELLO_ACK, max {} streams, server windows {} / {} bytes, frames up to {} bytes",
            ack.max_streams, ack.limits.stream_window, ack.limits.session_window, ack.limits.max_frame_size
        );
    }

    let target = TargetAddr::domain("example.com", 443)?;
    let mut ids = Vec::new();
    for _ in 0..streams {
        let (id, _) = client.open_stream(StreamKind::Tcp, target.clone(), Bytes::new())?;
        ids.push(id);
    }
    pump(&mut client, &mut server)?;
    while let Some(event) = server.poll_event() {
        if let Event::StreamOpened(open) = event {
            server.accept_stream(open.stream_id)?;
        }
    }
    pump(&mut server, &mut client)?;
    while client.poll_event().is_some() {}
    println!("opened {streams} streams to {target}; sending {mib} MiB down each");

    let chunk = Bytes::from(vec![0x5A; 64 * 1024]);
    let mut left: Vec<usize> = vec![per_stream; streams];
    let mut received = 0usize;
    let t0 = Instant::now();
    while received < per_stream * streams {
        for (i, id) in ids.iter().enumerate() {
            while left[i] > 0 {
                let n = server.write(*id, chunk.slice(..left[i].min(chunk.len())))?;
                if n == 0 {
                    break;
                }
                left[i] -= n;
                if left[i] == 0 {
                    server.finish(*id)?;
                }
            }
        }
        pump(&mut server, &mut client)?;
        let now = Instant::now();
        while let Some(event) = client.poll_event() {
            if let Event::StreamData { stream_id, data } = event {
                received += data.len();
                client.consume(stream_id, data.len(), now)?;
            }
        }
        pump(&mut client, &mut server)?;
        while server.poll_event().is_some() {}
    }
    let secs = t0.elapsed().as_secs_f64();
    let stats = server.stats();
    println!(
        "moved {} MiB in {:.3} s: {:.2} GiB/s through both state machines; {} frames, {} flow-control stalls",
        received / (1024 * 1024),
        secs,
        received as f64 / secs / (1024.0 * 1024.0 * 1024.0),
        stats.frames_sent,
        stats.flow_control_stalls
    );
    println!(
        "client receive windows grew to {} (stream) / {} (session) bytes",
        ids.first()
            .and_then(|id| client.stream_recv_window(*id))
            .unwrap_or(0),
        client.session_recv_window()
    );
    Ok(())
}

/// Delivers every message `from` has queued to `to`.
fn pump(from: &mut Connection, to: &mut Connection) -> Result<(), Box<dyn std::error::Error>> {
    let now = Instant::now();
    while let Some(msg) = from.poll_transmit(now) {
        to.handle_message(msg, now)?;
    }
    Ok(())
}
