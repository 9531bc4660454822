//! Runs the conformance vectors in `proto-spec/vectors/*.json` (made by `vectors/generate.py`,
//! which encodes the bytes independently of this crate) against the frame codec.
//!
//! For every vector: decode the message with the vector's `max_payload`; a valid vector must
//! decode to its `frame` (compared as JSON) and, unless `"canonical": false`, re-encode to the
//! same bytes; a malformed vector must fail with the `DecodeError` whose `name()` is `error`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use httvps_proto::frame::Extension;
use httvps_proto::{Address, ErrorCode, Frame, HelloErrorCode, ResetCode, TargetAddr};
use serde_json::{json, Map, Value};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 {
        return Err(format!("odd hex length {}", s.len()));
    }
    let digit = |c: u8| -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(format!("{:?} is not a lowercase hex digit", c as char)),
        }
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

fn hello_error_code(c: HelloErrorCode) -> String {
    match c {
        HelloErrorCode::Other(n) => format!("other:{n}"),
        known => known.name().to_owned(),
    }
}

fn reset_code(c: ResetCode) -> String {
    match c {
        ResetCode::Other(n) => format!("other:{n}"),
        known => known.name().to_owned(),
    }
}

fn error_code(c: ErrorCode) -> String {
    match c {
        ErrorCode::Other(n) => format!("other:{n}"),
        known => known.name().to_owned(),
    }
}

fn target_json(t: &TargetAddr) -> Value {
    let (host, host_type) = match &t.addr {
        Address::Ipv4(ip) => (ip.to_string(), "ipv4"),
        Address::Ipv6(ip) => (ip.to_string(), "ipv6"),
        Address::Domain(d) => (d.clone(), "domain"),
    };
    json!({ "host": host, "host_type": host_type, "port": t.port })
}

fn extensions_json(exts: &[Extension]) -> Value {
    exts.iter()
        .map(|e| json!({ "type": e.ext_type, "value_hex": to_hex(&e.value) }))
        .collect()
}

/// The decoded frame in the JSON shape of the vectors.
fn frame_json(frame: &Frame) -> Value {
    let fields = match frame {
        Frame::Hello(h) => json!({
            "versions": h.versions,
            "device_id": h.device_id,
            "device_token_hex": to_hex(h.device_token.as_bytes()),
            "client_name": h.client_name,
            "client_version": h.client_version,
            "resume_token_hex": h.resume_token.as_ref().map(|t| to_hex(t.as_bytes())),
            "region": h.region,
            "stream_window": h.limits.stream_window,
            "session_window": h.limits.session_window,
            "max_frame_size": h.limits.max_frame_size,
            "extensions": extensions_json(&h.extensions),
        }),
        Frame::HelloAck(a) => json!({
            "version": a.version,
            "session_id_hex": to_hex(&a.session_id),
            "resume_token_hex": to_hex(a.resume_token.as_bytes()),
            "max_streams": a.max_streams,
            "stream_window": a.limits.stream_window,
            "session_window": a.limits.session_window,
            "max_frame_size": a.limits.max_frame_size,
            "heartbeat_interval_ms": a.heartbeat_interval_ms,
            "idle_timeout_ms": a.idle_timeout_ms,
            "extensions": extensions_json(&a.extensions),
        }),
        Frame::HelloError(e) => json!({
            "code": hello_error_code(e.code),
            "retry_after_ms": e.retry_after_ms,
            "message": e.message,
        }),
        Frame::StreamOpen(o) => json!({
            "kind": o.kind.name(),
            "target": target_json(&o.target),
            "early_data_hex": to_hex(&o.early_data),
        }),
        Frame::StreamOpenAck(_) | Frame::StreamFin(_) => json!({}),
        Frame::StreamData(d) => json!({ "data_hex": to_hex(&d.data) }),
        Frame::StreamReset(r) => json!({ "code": reset_code(r.code) }),
        Frame::WindowUpdate(w) => json!({ "increment": w.increment }),
        Frame::Datagram(d) => json!({
            "addr": d.addr.as_ref().map(target_json),
            "data_hex": to_hex(&d.data),
        }),
        Frame::Ping(p) | Frame::Pong(p) => json!({ "opaque_hex": to_hex(&p.0) }),
        Frame::GoAway(g) => json!({
            "last_stream_id": g.last_stream_id.0,
            "code": error_code(g.code),
            "reason": g.reason,
        }),
        Frame::Error(e) => json!({ "code": error_code(e.code), "message": e.message }),
        Frame::Unknown {
            frame_type,
            flags,
            payload,
            ..
        } => json!({
            "frame_type": frame_type,
            "flags": flags,
            "payload_hex": to_hex(payload),
        }),
    };
    let mut obj = Map::new();
    obj.insert(
        "type".into(),
        json!(frame.frame_type().map_or("UNKNOWN", |t| t.name())),
    );
    obj.insert("stream_id".into(), json!(frame.stream_id().0));
    if let Value::Object(rest) = fields {
        obj.extend(rest);
    }
    Value::Object(obj)
}

/// The names `DecodeError::name()` returns, read from the source so a new variant without a
/// vector fails this test.
fn decode_error_names() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/frame/decode_error.rs");
    let src = std::fs::read_to_string(&path).expect("read decode_error.rs");
    let imp = src
        .find("impl DecodeError")
        .expect("`impl DecodeError` in decode_error.rs");
    let start = imp
        + src[imp..]
            .find("fn name(")
            .expect("`fn name(` in impl DecodeError");
    let end = start
        + src[start..]
            .find("fn error_code(")
            .unwrap_or(src.len() - start);
    let body = &src[start..end];
    let mut names = BTreeSet::new();
    let mut rest = body;
    while let Some(arrow) = rest.find("=> \"") {
        let after = &rest[arrow + 4..];
        let close = after.find('"').expect("closing quote");
        names.insert(after[..close].to_owned());
        rest = &after[close..];
    }
    names
}

struct Vector {
    file: String,
    name: String,
    value: Value,
}

fn load_vectors() -> Vec<Vector> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .expect("read proto-spec/vectors")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no *.json files in {}",
        vectors_dir().display()
    );
    let mut out = Vec::new();
    for path in paths {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("read vector file");
        let doc: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: invalid JSON: {e}"));
        assert!(
            doc["description"].is_string(),
            "{file}: missing description"
        );
        let vectors = doc["vectors"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: `vectors` is not an array"));
        for v in vectors {
            let name = v["name"].as_str().unwrap_or("<unnamed>").to_owned();
            out.push(Vector {
                file: file.clone(),
                name,
                value: v.clone(),
            });
        }
    }
    out
}

/// Checks one vector; `Err` carries the reason it failed.
fn check(v: &Value, known_errors: &BTreeSet<String>) -> Result<(), String> {
    let name = v["name"].as_str().ok_or("missing name")?;
    let snake = !name.is_empty()
        && !name.starts_with('_')
        && !name.ends_with('_')
        && !name.contains("__")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !snake {
        return Err("name is not snake_case".into());
    }
    if !v["description"].is_string() {
        return Err("missing description".into());
    }
    let max_payload = v["max_payload"].as_u64().ok_or("missing max_payload")?;
    let max_payload = u32::try_from(max_payload).map_err(|_| "max_payload above u32")?;
    let hex = v["hex"].as_str().ok_or("missing hex")?;
    let msg = from_hex(hex)?;
    let decoded = Frame::decode(Bytes::from(msg), max_payload);

    match (v.get("frame"), v.get("error")) {
        (Some(expected), None) => {
            let frame =
                decoded.map_err(|e| format!("expected a frame, got error {} ({e})", e.name()))?;
            let got = frame_json(&frame);
            if &got != expected {
                return Err(format!(
                    "decoded frame differs\n  expected: {expected}\n  got:      {got}"
                ));
            }
            let canonical = match v.get("canonical") {
                None => true,
                Some(Value::Bool(b)) => *b,
                Some(other) => return Err(format!("`canonical` is not a bool: {other}")),
            };
            let encoded = to_hex(&frame.to_bytes());
            if canonical && encoded != hex {
                return Err(format!(
                    "re-encoding differs\n  expected: {hex}\n  got:      {encoded}"
                ));
            }
            if !canonical && encoded == hex {
                return Err("marked canonical: false but re-encodes to the same bytes".into());
            }
            if encoded.len() / 2 != frame.encoded_len() {
                return Err(format!(
                    "encoded_len() = {} but to_bytes() has {} bytes",
                    frame.encoded_len(),
                    encoded.len() / 2
                ));
            }
            Ok(())
        }
        (None, Some(expected)) => {
            let expected = expected.as_str().ok_or("`error` is not a string")?;
            if !known_errors.contains(expected) {
                return Err(format!("`{expected}` is not a DecodeError name"));
            }
            if v.get("canonical").is_some() {
                return Err("`canonical` on an error vector".into());
            }
            match decoded {
                Ok(frame) => Err(format!(
                    "expected error {expected}, decoded {}",
                    frame_json(&frame)
                )),
                Err(e) if e.name() == expected => Ok(()),
                Err(e) => Err(format!("expected error {expected}, got {} ({e})", e.name())),
            }
        }
        _ => Err("needs exactly one of `frame` and `error`".into()),
    }
}

#[test]
fn conformance_vectors() {
    let known_errors = decode_error_names();
    assert!(
        known_errors.len() >= 20,
        "parsed only {} names from DecodeError::name(): {known_errors:?}",
        known_errors.len()
    );

    let vectors = load_vectors();
    let mut failures = Vec::new();
    let mut names = BTreeSet::new();
    let mut covered = BTreeSet::new();
    for v in &vectors {
        if !names.insert(v.name.clone()) {
            failures.push(format!("{}: {}: duplicate vector name", v.file, v.name));
        }
        if let Some(e) = v.value["error"].as_str() {
            covered.insert(e.to_owned());
        }
        if let Err(why) = check(&v.value, &known_errors) {
            failures.push(format!("{}: {}: {why}", v.file, v.name));
        }
    }
    let missing: Vec<_> = known_errors.difference(&covered).collect();
    if !missing.is_empty() {
        failures.push(format!("no vector produces the DecodeError(s) {missing:?}"));
    }
    if vectors.len() < 60 {
        failures.push(format!(
            "only {} vectors, expected at least 60",
            vectors.len()
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {} conformance vectors failed:\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n")
    );
    println!(
        "{} conformance vectors passed, covering {} decode errors",
        vectors.len(),
        covered.len()
    );
}
