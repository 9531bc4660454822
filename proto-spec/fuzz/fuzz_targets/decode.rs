//! Arbitrary messages through the frame decoder: it must never panic, and every frame it accepts
//! must encode back to bytes that decode to the same frame.
#![no_main]

use bytes::Bytes;
use httvps_proto::Frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let msg = Bytes::copy_from_slice(data);
    if let Ok(frame) = Frame::decode(msg, 1 << 20) {
        let again = Frame::decode(frame.to_bytes(), 1 << 20).expect("re-encoded frame decodes");
        assert_eq!(frame, again);
    }
});
