//! Arbitrary message sequences into a server session after a valid HELLO: the state machine must
//! never panic, and once it reports a violation it must refuse everything after.
#![no_main]

use std::time::Instant;

use bytes::Bytes;
use httvps_proto::{AcceptHello, ClientHello, Connection, Event, Role, SessionConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut client = Connection::new(Role::Client, SessionConfig::default(), now);
    let mut server = Connection::new(Role::Server, SessionConfig::default(), now);
    client.send_hello(ClientHello::new("fuzz", b"token".to_vec())).unwrap();
    while let Some(m) = client.poll_transmit(now) {
        server.handle_message(m, now).unwrap();
    }
    server.accept_hello(AcceptHello::new([0; 16], b"r".to_vec())).unwrap();
    // Messages are length-prefixed with one byte in the fuzz input.
    let mut rest = data;
    let mut failed = false;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let msg = Bytes::copy_from_slice(&tail[..n]);
        rest = &tail[n..];
        let result = server.handle_message(msg, now);
        assert!(!(failed && result.is_ok()), "accepted a message after a violation");
        failed |= result.is_err();
        while let Some(event) = server.poll_event() {
            if let Event::StreamOpened(open) = event {
                let _ = server.accept_stream(open.stream_id);
                let _ = server.write(open.stream_id, Bytes::from_static(b"reply"));
            }
        }
        while server.poll_transmit(now).is_some() {}
    }
});
