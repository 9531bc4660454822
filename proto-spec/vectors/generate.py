#!/usr/bin/env python3
"""Generates the HTTVPS/1 frame conformance vectors (proto-spec/vectors/*.json).

The bytes are encoded by hand from the frame layouts (the module doc comments of
proto-spec/src/frame/*.rs and src/address.rs), independently of the Rust encoder, so the
Rust decoder and encoder are checked against a second implementation.

Usage: python3 generate.py            (writes the JSON files next to this script)
       python3 generate.py --check    (exits 1 if the files on disk differ from the output)

Python 3 standard library only; the output is deterministic.

Vector format (one JSON file per area):
    {"description": "...", "vectors": [
        {"name": snake_case, "description": one line, "max_payload": receiver's max payload,
         "hex": whole message (header + payload), lowercase,
         "frame": {...expected decoded frame...}  or  "error": "<DecodeError::name()>",
         "canonical": false   (only when re-encoding the frame gives different bytes)}]}
"""

import hashlib
import ipaddress
import json
import os
import re
import struct
import sys

DEFAULT_MAX = 16384  # MIN_MAX_FRAME_SIZE: the limit before the handshake completes
MIN_WINDOW = 65536
MAX_WINDOW = 0x7FFFFFFF
MIN_MFS = 16384
MAX_MFS = 16777215
U32_MAX = 0xFFFFFFFF

FRAME_TYPES = {
    "HELLO": 0x01,
    "HELLO_ACK": 0x02,
    "HELLO_ERROR": 0x03,
    "STREAM_OPEN": 0x04,
    "STREAM_OPEN_ACK": 0x05,
    "STREAM_DATA": 0x06,
    "STREAM_FIN": 0x07,
    "STREAM_RESET": 0x08,
    "WINDOW_UPDATE": 0x09,
    "DATAGRAM": 0x0A,
    "PING": 0x0B,
    "PONG": 0x0C,
    "GOAWAY": 0x0D,
    "ERROR": 0x0E,
}
SESSION_FRAMES = ["HELLO", "HELLO_ACK", "HELLO_ERROR", "PING", "PONG", "GOAWAY", "ERROR"]
STREAM_FRAMES = ["STREAM_OPEN", "STREAM_OPEN_ACK", "STREAM_DATA", "STREAM_FIN", "STREAM_RESET", "DATAGRAM"]

FLAG_IGNORABLE = 0x80
FLAG_ADDRESS = 0x01  # DATAGRAM

HELLO_ERROR_CODES = {
    0x01: "auth_failed",
    0x02: "revoked",
    0x03: "expired",
    0x04: "quota_exceeded",
    0x05: "too_many_sessions",
    0x06: "rate_limited",
    0x07: "unsupported_version",
    0x08: "internal",
    0x09: "region_not_allowed",
}
RESET_CODES = {
    0x00: "cancel",
    0x01: "refused",
    0x02: "unreachable",
    0x03: "timeout",
    0x04: "not_allowed",
    0x05: "node_unavailable",
    0x06: "name_not_resolved",
    0x07: "connection_reset",
    0x08: "stream_limit",
    0x09: "going_away",
    0x0A: "quota_exceeded",
    0x0B: "flow_control",
    0x0C: "protocol_error",
    0x0D: "internal",
}
ERROR_CODES = {
    0x00: "no_error",
    0x01: "protocol_error",
    0x02: "frame_size",
    0x03: "flow_control",
    0x04: "stream_id",
    0x05: "unknown_frame",
    0x06: "handshake_timeout",
    0x07: "idle_timeout",
    0x08: "internal",
    0x09: "revoked",
    0x0A: "quota_exceeded",
    0x0B: "shutting_down",
    0x0C: "max_lifetime",
    0x0D: "expired",
}

# Every DecodeError::name(); the generator checks that each appears in some vector.
DECODE_ERRORS = [
    "truncated_header",
    "truncated",
    "frame_too_large",
    "unknown_frame_type",
    "stream_id_not_zero",
    "stream_id_zero",
    "bad_address_type",
    "bad_domain",
    "zero_port",
    "invalid_utf8",
    "field_too_short",
    "field_too_long",
    "trailing_bytes",
    "zero_window_increment",
    "window_increment_too_large",
    "bad_stream_kind",
    "early_data_on_udp",
    "empty_data",
    "bad_setting",
    "duplicate_extension",
    "too_many_extensions",
]


# ---------------------------------------------------------------------------------------------
# Deterministic test bytes


def pseudo(n, label):
    """n deterministic pseudo-random bytes derived from label (SHA-256 in counter mode)."""
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
        counter += 1
    return out[:n]


def hx(b):
    return b.hex()


# ---------------------------------------------------------------------------------------------
# Primitive encoders (big-endian, as on the wire)


def u8(v):
    return struct.pack(">B", v)


def u16(v):
    return struct.pack(">H", v)


def u32(v):
    return struct.pack(">I", v)


def len8(b):
    """A byte string with a one-byte length prefix."""
    assert len(b) <= 255
    return u8(len(b)) + b


def header(type_byte, flags, stream_id):
    return struct.pack(">BBI", type_byte, flags, stream_id)


def code_value(name, table):
    if name.startswith("other:"):
        value = int(name[len("other:"):])
        assert value not in table, name
        return value
    for value, n in table.items():
        if n == name:
            return value
    raise KeyError(name)


def code_name(value, table):
    return table.get(value, f"other:{value}")


# ---------------------------------------------------------------------------------------------
# Addresses


def rust_ipv6_display(packed):
    """An IPv6 address as Rust's `Ipv6Addr` `Display` prints it: IPv4-mapped addresses as
    `::ffff:a.b.c.d`, otherwise RFC 5952 (lowercase, no leading zeros, the first longest run of
    two or more zero groups replaced by `::`)."""
    segs = struct.unpack(">8H", packed)
    if segs[:5] == (0, 0, 0, 0, 0) and segs[5] == 0xFFFF:
        return "::ffff:" + ".".join(str(b) for b in packed[12:])
    best_start, best_len, cur_start, cur_len = 0, 0, 0, 0
    for i, s in enumerate(segs):
        if s == 0:
            if cur_len == 0:
                cur_start = i
            cur_len += 1
            if cur_len > best_len:
                best_start, best_len = cur_start, cur_len
        else:
            cur_len = 0
    if best_len > 1:
        left = ":".join(f"{s:x}" for s in segs[:best_start])
        right = ":".join(f"{s:x}" for s in segs[best_start + best_len:])
        return left + "::" + right
    return ":".join(f"{s:x}" for s in segs)


def ipv4(host, port):
    return {"host": host, "host_type": "ipv4", "port": port}


def ipv6(host, port):
    packed = ipaddress.IPv6Address(host).packed
    shown = rust_ipv6_display(packed)
    assert shown == host, f"{host!r} is displayed as {shown!r}"
    return {"host": host, "host_type": "ipv6", "port": port}


def domain(host, port):
    return {"host": host, "host_type": "domain", "port": port}


def enc_target(t):
    kind = t["host_type"]
    if kind == "ipv4":
        body = u8(0x01) + ipaddress.IPv4Address(t["host"]).packed
    elif kind == "ipv6":
        body = u8(0x04) + ipaddress.IPv6Address(t["host"]).packed
    elif kind == "domain":
        body = u8(0x03) + len8(t["host"].encode("utf-8"))
    else:
        raise ValueError(kind)
    return body + u16(t["port"])


# ---------------------------------------------------------------------------------------------
# Frame constructors (the JSON shape of the vectors)


def ext(ext_type, value=b""):
    return {"type": ext_type, "value_hex": hx(value)}


def hello(
    versions=(1,),
    device_id="dev-1",
    token=None,
    client_name="",
    client_version="",
    resume=None,
    region=None,
    stream_window=MIN_WINDOW,
    session_window=MIN_WINDOW,
    max_frame_size=MIN_MFS,
    extensions=(),
):
    if token is None:
        token = pseudo(32, "device-token")
    return {
        "type": "HELLO",
        "stream_id": 0,
        "versions": list(versions),
        "device_id": device_id,
        "device_token_hex": hx(token),
        "client_name": client_name,
        "client_version": client_version,
        "resume_token_hex": None if resume is None else hx(resume),
        "region": region,
        "stream_window": stream_window,
        "session_window": session_window,
        "max_frame_size": max_frame_size,
        "extensions": list(extensions),
    }


def hello_ack(
    version=1,
    session_id=None,
    resume=None,
    max_streams=256,
    stream_window=262144,
    session_window=1048576,
    max_frame_size=32768,
    heartbeat_interval_ms=15000,
    idle_timeout_ms=120000,
    extensions=(),
):
    if session_id is None:
        session_id = pseudo(16, "session-id")
    if resume is None:
        resume = pseudo(32, "resume-token")
    return {
        "type": "HELLO_ACK",
        "stream_id": 0,
        "version": version,
        "session_id_hex": hx(session_id),
        "resume_token_hex": hx(resume),
        "max_streams": max_streams,
        "stream_window": stream_window,
        "session_window": session_window,
        "max_frame_size": max_frame_size,
        "heartbeat_interval_ms": heartbeat_interval_ms,
        "idle_timeout_ms": idle_timeout_ms,
        "extensions": list(extensions),
    }


def hello_error(code, retry_after_ms=0, message=""):
    return {"type": "HELLO_ERROR", "stream_id": 0, "code": code, "retry_after_ms": retry_after_ms,
            "message": message}


def stream_open(stream_id, kind, target, early_data=b""):
    return {"type": "STREAM_OPEN", "stream_id": stream_id, "kind": kind, "target": target,
            "early_data_hex": hx(early_data)}


def stream_open_ack(stream_id):
    return {"type": "STREAM_OPEN_ACK", "stream_id": stream_id}


def stream_data(stream_id, data):
    return {"type": "STREAM_DATA", "stream_id": stream_id, "data_hex": hx(data)}


def stream_fin(stream_id):
    return {"type": "STREAM_FIN", "stream_id": stream_id}


def stream_reset(stream_id, code):
    return {"type": "STREAM_RESET", "stream_id": stream_id, "code": code}


def window_update(stream_id, increment):
    return {"type": "WINDOW_UPDATE", "stream_id": stream_id, "increment": increment}


def datagram(stream_id, data, addr=None):
    return {"type": "DATAGRAM", "stream_id": stream_id, "addr": addr, "data_hex": hx(data)}


def ping(opaque):
    assert len(opaque) == 8
    return {"type": "PING", "stream_id": 0, "opaque_hex": hx(opaque)}


def pong(opaque):
    assert len(opaque) == 8
    return {"type": "PONG", "stream_id": 0, "opaque_hex": hx(opaque)}


def goaway(last_stream_id, code, reason=""):
    return {"type": "GOAWAY", "stream_id": 0, "last_stream_id": last_stream_id, "code": code,
            "reason": reason}


def error(code, message=""):
    return {"type": "ERROR", "stream_id": 0, "code": code, "message": message}


def unknown(frame_type, flags, stream_id, payload=b""):
    return {"type": "UNKNOWN", "stream_id": stream_id, "frame_type": frame_type, "flags": flags,
            "payload_hex": hx(payload)}


# ---------------------------------------------------------------------------------------------
# Frame encoder (from the JSON shape, following the documented layouts)


def enc_extensions(exts):
    out = b""
    for e in exts:
        value = bytes.fromhex(e["value_hex"])
        out += u16(e["type"]) + u16(len(value)) + value
    return out


def enc_payload(f):
    t = f["type"]
    if t == "HELLO":
        resume = b"" if f["resume_token_hex"] is None else bytes.fromhex(f["resume_token_hex"])
        region = b"" if f["region"] is None else f["region"].encode("utf-8")
        return (
            u8(len(f["versions"]))
            + b"".join(u16(v) for v in f["versions"])
            + len8(f["device_id"].encode("utf-8"))
            + len8(bytes.fromhex(f["device_token_hex"]))
            + len8(f["client_name"].encode("utf-8"))
            + len8(f["client_version"].encode("utf-8"))
            + len8(resume)
            + len8(region)
            + u32(f["stream_window"])
            + u32(f["session_window"])
            + u32(f["max_frame_size"])
            + enc_extensions(f["extensions"])
        )
    if t == "HELLO_ACK":
        session_id = bytes.fromhex(f["session_id_hex"])
        assert len(session_id) == 16
        return (
            u16(f["version"])
            + session_id
            + len8(bytes.fromhex(f["resume_token_hex"]))
            + u32(f["max_streams"])
            + u32(f["stream_window"])
            + u32(f["session_window"])
            + u32(f["max_frame_size"])
            + u32(f["heartbeat_interval_ms"])
            + u32(f["idle_timeout_ms"])
            + enc_extensions(f["extensions"])
        )
    if t == "HELLO_ERROR":
        return (u16(code_value(f["code"], HELLO_ERROR_CODES)) + u32(f["retry_after_ms"])
                + f["message"].encode("utf-8"))
    if t == "STREAM_OPEN":
        kind = {"tcp": 1, "udp": 2}[f["kind"]]
        return u8(kind) + enc_target(f["target"]) + bytes.fromhex(f["early_data_hex"])
    if t in ("STREAM_OPEN_ACK", "STREAM_FIN"):
        return b""
    if t == "STREAM_DATA":
        return bytes.fromhex(f["data_hex"])
    if t == "STREAM_RESET":
        return u16(code_value(f["code"], RESET_CODES))
    if t == "WINDOW_UPDATE":
        return u32(f["increment"])
    if t == "DATAGRAM":
        addr = b"" if f["addr"] is None else enc_target(f["addr"])
        return addr + bytes.fromhex(f["data_hex"])
    if t in ("PING", "PONG"):
        return bytes.fromhex(f["opaque_hex"])
    if t == "GOAWAY":
        return (u32(f["last_stream_id"]) + u16(code_value(f["code"], ERROR_CODES))
                + f["reason"].encode("utf-8"))
    if t == "ERROR":
        return u16(code_value(f["code"], ERROR_CODES)) + f["message"].encode("utf-8")
    if t == "UNKNOWN":
        return bytes.fromhex(f["payload_hex"])
    raise ValueError(t)


def canonical_flags(f):
    if f["type"] == "DATAGRAM":
        return FLAG_ADDRESS if f["addr"] is not None else 0
    if f["type"] == "UNKNOWN":
        return f["flags"]
    return 0


def enc_frame(f, flags=None):
    type_byte = f["frame_type"] if f["type"] == "UNKNOWN" else FRAME_TYPES[f["type"]]
    if flags is None:
        flags = canonical_flags(f)
    return header(type_byte, flags, f["stream_id"]) + enc_payload(f)


# ---------------------------------------------------------------------------------------------
# Raw HELLO / HELLO_ACK payloads as named field chunks, for the malformed cases


def overridden(fields, overrides):
    """`fields` with the chunks named in `overrides` replaced (each name must exist)."""
    names = [n for n, _ in fields]
    for k, v in overrides.items():
        assert k in names, k
        fields[names.index(k)] = (k, v)
    return fields


def truncated_in(type_byte, fields, field, keep):
    """A message of `fields` cut inside `field`, keeping `keep` bytes of it."""
    out = b""
    for name, chunk in fields:
        if name == field:
            assert keep < len(chunk)
            return header(type_byte, 0, 0) + out + chunk[:keep]
        out += chunk
    raise KeyError(field)


def hello_fields(**overrides):
    """The HELLO payload of hello() as an ordered list of (field, bytes) chunks."""
    f = hello()
    return overridden([
        ("versions", u8(1) + u16(1)),
        ("device_id", len8(f["device_id"].encode())),
        ("device_token", len8(bytes.fromhex(f["device_token_hex"]))),
        ("client_name", len8(b"cli")),
        ("client_version", len8(b"1.0")),
        ("resume_token", len8(pseudo(16, "resume-token"))),
        ("region", len8(b"eu")),
        ("stream_window", u32(MIN_WINDOW)),
        ("session_window", u32(MIN_WINDOW)),
        ("max_frame_size", u32(MIN_MFS)),
        ("extensions", b""),
    ], overrides)


def hello_msg(stream_id=0, **overrides):
    return header(0x01, 0, stream_id) + b"".join(b for _, b in hello_fields(**overrides))


def hello_truncated_in(field, keep):
    """A HELLO cut inside `field`, keeping `keep` bytes of it."""
    return truncated_in(0x01, hello_fields(), field, keep)


def hello_ack_fields(**overrides):
    return overridden([
        ("version", u16(1)),
        ("session_id", pseudo(16, "session-id")),
        ("resume_token", len8(pseudo(32, "resume-token"))),
        ("max_streams", u32(256)),
        ("stream_window", u32(262144)),
        ("session_window", u32(1048576)),
        ("max_frame_size", u32(32768)),
        ("heartbeat_interval_ms", u32(15000)),
        ("idle_timeout_ms", u32(120000)),
        ("extensions", b""),
    ], overrides)


def hello_ack_msg(stream_id=0, **overrides):
    return header(0x02, 0, stream_id) + b"".join(b for _, b in hello_ack_fields(**overrides))


def hello_ack_truncated_in(field, keep):
    return truncated_in(0x02, hello_ack_fields(), field, keep)


def raw_exts(pairs):
    return b"".join(u16(t) + u16(len(v)) + v for t, v in pairs)


# ---------------------------------------------------------------------------------------------
# Vector collection

NAME_RE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*$")


class VectorFile:
    def __init__(self, filename, description):
        self.filename = filename
        self.description = description
        self.vectors = []

    def valid(self, name, description, frame, max_payload=DEFAULT_MAX):
        """A canonical frame: the hex is the frame's own encoding."""
        self._add(name, description, enc_frame(frame), max_payload, frame=frame)

    def valid_raw(self, name, description, msg, frame, max_payload=DEFAULT_MAX):
        """A frame whose wire bytes differ from its canonical encoding."""
        assert msg != enc_frame(frame), f"{name}: bytes are canonical, use valid()"
        self._add(name, description, msg, max_payload, frame=frame, canonical=False)

    def invalid(self, name, description, msg, error_name, max_payload=DEFAULT_MAX):
        assert error_name in DECODE_ERRORS, error_name
        self._add(name, description, msg, max_payload, error=error_name)

    def _add(self, name, description, msg, max_payload, frame=None, error=None, canonical=True):
        assert NAME_RE.match(name), name
        assert "\n" not in description
        v = {"name": name, "description": description, "max_payload": max_payload, "hex": hx(msg)}
        if frame is not None:
            v["frame"] = frame
            if not canonical:
                v["canonical"] = False
        else:
            v["error"] = error
        self.vectors.append(v)

    def document(self):
        return {"description": self.description, "vectors": self.vectors}


# ---------------------------------------------------------------------------------------------
# handshake.json: HELLO, HELLO_ACK, HELLO_ERROR


def handshake():
    vf = VectorFile("handshake.json",
                    "HELLO, HELLO_ACK and HELLO_ERROR: valid handshake frames, including edge values")

    vf.valid("hello_minimal", "shortest valid HELLO: one version, 1-byte id and token, no optional fields",
             hello(device_id="d", token=b"\x5a"))
    vf.valid("hello_typical", "HELLO with client name and version, region and the default windows",
             hello(device_id="dev-7f3a9c", client_name="httvps-cli", client_version="0.1.0",
                   region="eu-west", stream_window=262144, session_window=1048576, max_frame_size=32768))
    vf.valid("hello_with_resume_token", "HELLO presenting a 32-byte resume token from an earlier HELLO_ACK",
             hello(device_id="dev-7f3a9c", resume=pseudo(32, "resume-token"), client_name="httvps-cli",
                   client_version="0.1.0"))
    vf.valid("hello_max_length_fields",
             "every HELLO length-prefixed field at its maximum: 16 versions, id 64, token 128, name 64, "
             "version 64, resume token 64, region 32",
             hello(versions=range(16, 0, -1), device_id="D" * 64, token=pseudo(128, "long-token"),
                   client_name="n" * 64, client_version="v" * 64, resume=pseudo(64, "long-resume"),
                   region="r" * 32))
    vf.valid("hello_version_edge_values", "HELLO offering version numbers 0 and 65535 (any u16 is carried)",
             hello(versions=(0xFFFF, 1, 0)))
    vf.valid("hello_max_settings", "HELLO with both windows at 2^31-1 and max_frame_size at 16777215",
             hello(stream_window=MAX_WINDOW, session_window=MAX_WINDOW, max_frame_size=MAX_MFS))
    vf.valid("hello_min_settings", "HELLO with both windows at 65536 and max_frame_size at 16384",
             hello(stream_window=MIN_WINDOW, session_window=MIN_WINDOW, max_frame_size=MIN_MFS))
    vf.valid("hello_utf8_text_fields", "HELLO whose text fields hold multi-byte UTF-8 (lengths count bytes)",
             hello(device_id="устройство-1", client_name="клиент", client_version="версия 1 ✓",
                   region="東京"))
    vf.valid("hello_utf8_max_length_multibyte",
             "HELLO whose client name is 32 two-byte characters, exactly the 64-byte limit",
             hello(client_name="é" * 32))
    vf.valid("hello_with_extensions",
             "HELLO with two extensions: an empty value and an unknown type 65535 that receivers keep",
             hello(extensions=[ext(1), ext(0xFFFF, b"future")]))
    vf.valid("hello_sixteen_extensions", "HELLO with 16 extensions, the maximum",
             hello(extensions=[ext(i, bytes([i])) for i in range(16)]))
    vf.valid("hello_extension_max_value", "HELLO with one extension of 1024 bytes, the longest value",
             hello(extensions=[ext(0x0100, pseudo(1024, "ext-value"))]))
    vf.valid("hello_extension_type_zero", "HELLO with extension type 0 and a short value",
             hello(extensions=[ext(0, b"\x00\x01")]))
    f = hello(device_id="dev-flags")
    vf.valid_raw("hello_unknown_flags_ignored",
                 "HELLO with flag bits 0x7f set: unknown flag bits on known frames are ignored",
                 enc_frame(f, flags=0x7F), f)

    vf.valid("hello_ack_minimal",
             "HELLO_ACK with the smallest values: 1-byte resume token, max_streams 1, minimum limits, "
             "no heartbeat, no idle timeout",
             hello_ack(session_id=bytes(16), resume=b"\x01", max_streams=1, stream_window=MIN_WINDOW,
                       session_window=MIN_WINDOW, max_frame_size=MIN_MFS, heartbeat_interval_ms=0,
                       idle_timeout_ms=0))
    vf.valid("hello_ack_typical", "HELLO_ACK with the default server settings",
             hello_ack())
    vf.valid("hello_ack_max_values",
             "HELLO_ACK with every field at its maximum: version 65535, 64-byte resume token, u32 max "
             "streams, heartbeat and idle timeout, windows 2^31-1, max_frame_size 16777215",
             hello_ack(version=0xFFFF, session_id=b"\xff" * 16, resume=pseudo(64, "long-resume"),
                       max_streams=U32_MAX, stream_window=MAX_WINDOW, session_window=MAX_WINDOW,
                       max_frame_size=MAX_MFS, heartbeat_interval_ms=U32_MAX, idle_timeout_ms=U32_MAX))
    vf.valid("hello_ack_with_extensions", "HELLO_ACK with two extensions",
             hello_ack(extensions=[ext(7, b"\x00\x00\x00\x2a"), ext(0x8000, b"x" * 20)]))
    vf.valid("hello_ack_sixteen_extensions", "HELLO_ACK with 16 empty extensions, the maximum",
             hello_ack(extensions=[ext(0x1000 + i) for i in range(16)]))
    f = hello_ack()
    vf.valid_raw("hello_ack_unknown_flags_ignored",
                 "HELLO_ACK with flags 0xff (IGNORABLE included): flags on known frames are ignored",
                 enc_frame(f, flags=0xFF), f)

    # Codes decided before the device proved its token go to an unauthenticated peer: no message
    # (SPEC §4.1 item 8).
    vf.valid("hello_error_auth_failed", "HELLO_ERROR auth_failed with an empty message",
             hello_error("auth_failed"))
    vf.valid("hello_error_revoked", "HELLO_ERROR revoked with a message",
             hello_error("revoked", message="device revoked"))
    vf.valid("hello_error_expired", "HELLO_ERROR expired", hello_error("expired", message="subscription expired"))
    vf.valid("hello_error_quota_exceeded", "HELLO_ERROR quota_exceeded with a one-hour retry",
             hello_error("quota_exceeded", retry_after_ms=3600000, message="monthly quota used up"))
    vf.valid("hello_error_too_many_sessions", "HELLO_ERROR too_many_sessions with a retry advice",
             hello_error("too_many_sessions", retry_after_ms=5000, message="3 sessions already open"))
    vf.valid("hello_error_rate_limited", "HELLO_ERROR rate_limited with retry_after_ms 30000 and no message (unauthenticated peer)",
             hello_error("rate_limited", retry_after_ms=30000))
    vf.valid("hello_error_unsupported_version", "HELLO_ERROR unsupported_version with no message (unauthenticated peer)",
             hello_error("unsupported_version"))
    vf.valid("hello_error_internal", "HELLO_ERROR internal with retry_after_ms at u32 max and no message (unauthenticated peer)",
             hello_error("internal", retry_after_ms=U32_MAX))
    vf.valid("hello_error_region_not_allowed", "HELLO_ERROR region_not_allowed",
             hello_error("region_not_allowed", message="region ap-south not in plan"))
    vf.valid("hello_error_unknown_code", "HELLO_ERROR with code 0x1234, unknown to this version, kept as other",
             hello_error("other:4660", message="from a newer server"))
    vf.valid("hello_error_code_zero", "HELLO_ERROR with code 0, which no HELLO_ERROR code uses",
             hello_error("other:0"))
    vf.valid("hello_error_code_max", "HELLO_ERROR with code 65535", hello_error("other:65535"))
    vf.valid("hello_error_message_max_length", "HELLO_ERROR with a 256-byte message, the maximum",
             hello_error("auth_failed", message="m" * 256))
    vf.valid("hello_error_message_max_length_multibyte",
             "HELLO_ERROR with a message of 128 two-byte characters (256 bytes)",
             hello_error("internal", message="ü" * 128))
    return vf


# ---------------------------------------------------------------------------------------------
# streams.json: STREAM_OPEN, STREAM_OPEN_ACK, STREAM_DATA, STREAM_FIN, STREAM_RESET

DOMAIN_255 = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 63])
DOMAIN_LABEL_63 = "x" * 63 + ".example"


def streams():
    vf = VectorFile("streams.json",
                    "STREAM_OPEN, STREAM_OPEN_ACK, STREAM_DATA, STREAM_FIN and STREAM_RESET: valid stream frames")
    assert len(DOMAIN_255) == 255

    for name, description, frame in [
        ("tcp_ipv4", "TCP stream to an IPv4 target", stream_open(1, "tcp", ipv4("1.2.3.4", 443))),
        ("tcp_ipv4_edge_values", "TCP stream to 255.255.255.255 port 65535 on stream id 2^32-1", stream_open(U32_MAX, "tcp", ipv4("255.255.255.255", 65535))),
        ("tcp_ipv4_any_port_1", "TCP stream to 0.0.0.0 port 1 (the codec does not apply policy)", stream_open(3, "tcp", ipv4("0.0.0.0", 1))),
        ("tcp_ipv6_loopback", "TCP stream to ::1", stream_open(5, "tcp", ipv6("::1", 8080))),
        ("tcp_ipv6_compressed", "TCP stream to an IPv6 address with one run of zero groups", stream_open(7, "tcp", ipv6("2001:db8:85a3::8a2e:370:7334", 443))),
        ("tcp_ipv6_no_zero_run", "TCP stream to an IPv6 address whose single zero group is not compressed", stream_open(9, "tcp", ipv6("2001:db8:0:1:1:1:1:1", 22))),
        ("tcp_ipv6_first_longest_run", "TCP stream to an IPv6 address with two equal zero runs (the first one is compressed)", stream_open(11, "tcp", ipv6("1::2:0:0:3:4", 80))),
        ("tcp_ipv6_ipv4_mapped", "TCP stream to an IPv4-mapped IPv6 address", stream_open(13, "tcp", ipv6("::ffff:192.0.2.1", 443))),
        ("tcp_ipv6_unspecified", "TCP stream to :: (all zero)", stream_open(15, "tcp", ipv6("::", 9))),
        ("tcp_ipv6_all_ones", "TCP stream to ffff:...:ffff", stream_open(17, "tcp", ipv6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 443))),
        ("tcp_domain", "TCP stream to example.com:443", stream_open(19, "tcp", domain("example.com", 443))),
        ("tcp_domain_255_bytes", "TCP stream to a 255-byte domain (four labels of 63)", stream_open(21, "tcp", domain(DOMAIN_255, 443))),
        ("tcp_domain_label_63", "TCP stream to a domain with a 63-byte label", stream_open(23, "tcp", domain(DOMAIN_LABEL_63, 80))),
        ("tcp_domain_single_char", "TCP stream to the one-letter host name a", stream_open(25, "tcp", domain("a", 80))),
        ("tcp_domain_underscore_hyphen", "domain with underscores, hyphens, digits and capitals", stream_open(27, "tcp", domain("_dns.X-y-1.Example", 53))),
        ("tcp_domain_numeric", "domain made of digits only, carried as a domain not an IP", stream_open(29, "tcp", domain("10.0.0.1", 80))),
        ("tcp_early_data", "TCP stream with early data sent before the ACK", stream_open(31, "tcp", domain("example.com", 80), b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")),
        ("tcp_early_data_one_byte", "TCP stream with a single byte of early data", stream_open(33, "tcp", ipv4("10.1.2.3", 443), b"\x16")),
        ("udp_ipv4", "UDP stream to a DNS resolver", stream_open(35, "udp", ipv4("8.8.8.8", 53))),
        ("udp_ipv6", "UDP stream to an IPv6 target", stream_open(37, "udp", ipv6("2606:4700:4700::1111", 53))),
        ("udp_domain", "UDP stream to a domain", stream_open(39, "udp", domain("time.example.org", 123))),
    ]:
        vf.valid(f"stream_open_{name}", description, frame)
    f = stream_open(41, "tcp", ipv4("1.2.3.4", 443))
    vf.valid_raw("stream_open_unknown_flags_ignored", "STREAM_OPEN with flags 0x01: unknown flag bits are ignored",
                 enc_frame(f, flags=0x01), f)

    vf.valid("stream_open_ack", "STREAM_OPEN_ACK for stream 1", stream_open_ack(1))
    vf.valid("stream_open_ack_max_id", "STREAM_OPEN_ACK for stream 2^32-1", stream_open_ack(U32_MAX))

    vf.valid("stream_data_one_byte", "STREAM_DATA with one byte", stream_data(1, b"\x00"))
    vf.valid("stream_data_text", "STREAM_DATA with an HTTP response line",
             stream_data(3, b"HTTP/1.1 200 OK\r\n"))
    vf.valid("stream_data_at_max_payload", "STREAM_DATA of exactly max_payload (16384) bytes",
             stream_data(5, pseudo(16384, "data-16k")))
    vf.valid("stream_data_larger_negotiated_limit",
             "STREAM_DATA of 20000 bytes under a negotiated max_payload of 32768",
             stream_data(7, pseudo(20000, "data-20k")), max_payload=32768)
    vf.valid("stream_data_max_stream_id", "STREAM_DATA on stream 2^32-1", stream_data(U32_MAX, b"tail"))
    f = stream_data(9, b"abc")
    vf.valid_raw("stream_data_ignorable_flag_ignored",
                 "STREAM_DATA with flag 0x80 set: IGNORABLE on a known type changes nothing",
                 enc_frame(f, flags=0x80), f)

    vf.valid("stream_fin", "STREAM_FIN for stream 1", stream_fin(1))
    vf.valid("stream_fin_max_id", "STREAM_FIN for stream 2^32-1", stream_fin(U32_MAX))

    for value, name in sorted(RESET_CODES.items()):
        vf.valid(f"stream_reset_{name}", f"STREAM_RESET with code {name} ({value})",
                 stream_reset(1 + 2 * value, name))
    vf.valid("stream_reset_unknown_code", "STREAM_RESET with code 14, unknown to this version",
             stream_reset(3, "other:14"))
    vf.valid("stream_reset_code_max", "STREAM_RESET with code 65535 on stream 2^32-1",
             stream_reset(U32_MAX, "other:65535"))
    return vf


# ---------------------------------------------------------------------------------------------
# flow.json: WINDOW_UPDATE


def flow():
    vf = VectorFile("flow.json", "WINDOW_UPDATE: session (stream id 0) and stream credit")
    vf.valid("window_update_session_one", "session WINDOW_UPDATE of 1 byte, the smallest increment",
             window_update(0, 1))
    vf.valid("window_update_session_typical", "session WINDOW_UPDATE of 512 KiB", window_update(0, 524288))
    vf.valid("window_update_session_max", "session WINDOW_UPDATE of 2^31-1, the largest increment",
             window_update(0, MAX_WINDOW))
    vf.valid("window_update_stream_typical", "stream WINDOW_UPDATE of 128 KiB", window_update(1, 131072))
    vf.valid("window_update_stream_max", "stream WINDOW_UPDATE of 2^31-1", window_update(5, MAX_WINDOW))
    vf.valid("window_update_max_stream_id", "WINDOW_UPDATE for stream 2^32-1", window_update(U32_MAX, 65536))
    f = window_update(3, 1000)
    vf.valid_raw("window_update_unknown_flags_ignored", "WINDOW_UPDATE with flags 0x0f, which are ignored",
                 enc_frame(f, flags=0x0F), f)
    return vf


# ---------------------------------------------------------------------------------------------
# datagram.json: DATAGRAM


def datagrams():
    vf = VectorFile("datagram.json", "DATAGRAM: UDP datagrams with and without the ADDRESS flag")
    dns_query = bytes.fromhex("abcd01000001000000000000076578616d706c6503636f6d0000010001")
    vf.valid("datagram_plain", "DATAGRAM without address carrying a DNS query", datagram(1, dns_query))
    vf.valid("datagram_empty", "DATAGRAM with an empty payload (a zero-length UDP datagram)",
             datagram(1, b""))
    vf.valid("datagram_one_byte", "DATAGRAM with one byte", datagram(3, b"\xff"))
    vf.valid("datagram_with_ipv4_address", "DATAGRAM with an IPv4 address (ADDRESS flag)",
             datagram(5, dns_query, ipv4("1.1.1.1", 53)))
    vf.valid("datagram_with_ipv6_address", "DATAGRAM with an IPv6 address",
             datagram(5, b"ntp", ipv6("2001:db8::123", 123)))
    vf.valid("datagram_with_domain_address", "DATAGRAM with a domain address",
             datagram(7, b"ping", domain("stun.example.net", 3478)))
    vf.valid("datagram_with_address_empty_data", "DATAGRAM with an address and no data",
             datagram(9, b"", ipv4("192.0.2.7", 9)))
    vf.valid("datagram_with_255_byte_domain", "DATAGRAM addressed to a 255-byte domain",
             datagram(11, b"x", domain(DOMAIN_255, 65535)))
    vf.valid("datagram_large", "DATAGRAM of 1472 bytes (a full Ethernet-MTU UDP payload)",
             datagram(13, pseudo(1472, "udp-1472")))
    vf.valid("datagram_at_max_payload", "DATAGRAM whose payload is exactly max_payload bytes",
             datagram(15, pseudo(16384, "udp-16k")))
    vf.valid("datagram_max_stream_id", "DATAGRAM on stream 2^32-1", datagram(U32_MAX, b"end"))
    f = datagram(17, b"data")
    vf.valid_raw("datagram_unknown_flag_without_address",
                 "DATAGRAM with flag 0x02 only: ignored, no address is read",
                 enc_frame(f, flags=0x02), f)
    f = datagram(17, b"data", ipv4("10.0.0.1", 5353))
    vf.valid_raw("datagram_address_with_unknown_flags",
                 "DATAGRAM with flags 0x83: ADDRESS plus ignored bits",
                 enc_frame(f, flags=0x83), f)
    return vf


# ---------------------------------------------------------------------------------------------
# session.json: PING, PONG, GOAWAY, ERROR, ignorable unknown frames


def session():
    vf = VectorFile("session.json", "PING, PONG, GOAWAY, ERROR and ignorable frames of unknown type")
    vf.valid("ping_zero", "PING with 8 zero bytes", ping(bytes(8)))
    vf.valid("ping_counter", "PING with a big-endian counter", ping(struct.pack(">Q", 42)))
    vf.valid("ping_all_ones", "PING with 8 bytes 0xff", ping(b"\xff" * 8))
    vf.valid("pong_zero", "PONG with 8 zero bytes", pong(bytes(8)))
    vf.valid("pong_echo", "PONG echoing a timestamp", pong(struct.pack(">Q", 1718000000123)))
    f = ping(b"12345678")
    vf.valid_raw("ping_unknown_flags_ignored", "PING with flags 0x01, which are ignored",
                 enc_frame(f, flags=0x01), f)

    vf.valid("goaway_no_error", "GOAWAY no_error with last stream 0 and no reason", goaway(0, "no_error"))
    vf.valid("goaway_shutting_down", "GOAWAY shutting_down with a reason",
             goaway(41, "shutting_down", "gateway restart"))
    vf.valid("goaway_max_lifetime", "GOAWAY max_lifetime", goaway(1001, "max_lifetime", "session lifetime reached"))
    vf.valid("goaway_max_last_stream_id", "GOAWAY with last_stream_id 2^32-1",
             goaway(U32_MAX, "no_error", "drain"))
    vf.valid("goaway_reason_max_length", "GOAWAY with a 256-byte reason, the maximum",
             goaway(7, "shutting_down", "r" * 256))
    vf.valid("goaway_unknown_code", "GOAWAY with code 0x00ff, unknown to this version",
             goaway(9, "other:255", "new code"))
    vf.valid("goaway_utf8_reason", "GOAWAY with a multi-byte UTF-8 reason",
             goaway(3, "shutting_down", "maintenance — retour bientôt"))

    for value, name in sorted(ERROR_CODES.items()):
        vf.valid(f"error_{name}", f"ERROR with code {name} ({value})", error(name, f"{name} happened"))
    vf.valid("error_empty_message", "ERROR protocol_error with an empty message", error("protocol_error"))
    vf.valid("error_message_max_length", "ERROR with a 256-byte message, the maximum",
             error("internal", "e" * 256))
    vf.valid("error_unknown_code", "ERROR with code 65535, unknown to this version", error("other:65535", "?"))

    vf.valid("unknown_ignorable_empty", "frame type 0x0f with IGNORABLE and no payload is skipped",
             unknown(0x0F, FLAG_IGNORABLE, 0))
    vf.valid("unknown_ignorable_with_payload", "frame type 0x40 with IGNORABLE, a stream id and a payload",
             unknown(0x40, FLAG_IGNORABLE, 5, b"extension frame"))
    vf.valid("unknown_ignorable_all_flags", "frame type 0xff with flags 0xff and stream id 2^32-1",
             unknown(0xFF, 0xFF, U32_MAX, b"\x00\x01\x02"))
    vf.valid("unknown_ignorable_type_zero", "frame type 0x00 with IGNORABLE is skipped like any unknown type",
             unknown(0x00, FLAG_IGNORABLE, 0, b"z"))
    vf.valid("unknown_ignorable_at_max_payload", "ignorable unknown frame of exactly max_payload bytes",
             unknown(0x20, 0x81, 0, pseudo(16384, "unknown-16k")))
    return vf


# ---------------------------------------------------------------------------------------------
# malformed.json: every DecodeError


def malformed():
    vf = VectorFile("malformed.json", "messages that are not valid frames, with the DecodeError each must produce")
    bad = vf.invalid

    # Header and dispatch.
    full = header(0x0B, 0, 0)
    for n in range(6):
        bad(f"truncated_header_{n}_bytes", f"message of {n} bytes, shorter than the 6-byte header",
            full[:n], "truncated_header")
    bad("frame_too_large_stream_data", "STREAM_DATA of 16385 bytes with max_payload 16384",
        header(0x06, 0, 1) + pseudo(16385, "data-16k+1"), "frame_too_large")
    bad("frame_too_large_ping_small_limit", "8-byte PING payload with max_payload 7",
        header(0x0B, 0, 0) + bytes(8), "frame_too_large", max_payload=7)
    bad("frame_too_large_before_stream_id_check", "oversize PING with a stream id: the size limit is checked first",
        header(0x0B, 0, 9) + bytes(8), "frame_too_large", max_payload=4)
    bad("frame_too_large_unknown_ignorable", "ignorable unknown frame above max_payload is still too large",
        header(0x40, 0x80, 0) + bytes(101), "frame_too_large", max_payload=100)
    bad("frame_too_large_zero_limit", "1-byte STREAM_DATA with max_payload 0",
        header(0x06, 0, 1) + b"x", "frame_too_large", max_payload=0)
    bad("unknown_frame_type_0f", "type 0x0f without the IGNORABLE flag", header(0x0F, 0, 0), "unknown_frame_type")
    bad("unknown_frame_type_zero", "type 0x00 is not a frame type", header(0x00, 0, 0) + b"\x00",
        "unknown_frame_type")
    bad("unknown_frame_type_other_flags", "type 0xff with every flag but IGNORABLE (0x7f)",
        header(0xFF, 0x7F, 1) + b"abc", "unknown_frame_type")
    bad("unknown_frame_type_7f", "type 0x7f on a stream", header(0x7F, 0, 3), "unknown_frame_type")

    for name in SESSION_FRAMES:
        t = FRAME_TYPES[name]
        bad(f"stream_id_not_zero_{name.lower()}", f"{name} on stream 1 (session frames need id 0)",
            header(t, 0, 1), "stream_id_not_zero")
    bad("stream_id_not_zero_before_payload", "valid HELLO payload but stream id 2^32-1",
        hello_msg(stream_id=U32_MAX), "stream_id_not_zero")
    for name in STREAM_FRAMES:
        t = FRAME_TYPES[name]
        bad(f"stream_id_zero_{name.lower()}", f"{name} on stream 0 (stream frames need a non-zero id)",
            header(t, 0, 0) + b"\x01", "stream_id_zero")

    # Truncation inside fields.
    so = lambda payload, sid=1: header(0x04, 0, sid) + payload  # noqa: E731
    for name, description, msg in [
        ("truncated_hello_empty", "HELLO with an empty payload (no version count)", header(0x01, 0, 0)),
        ("truncated_hello_versions", "HELLO announcing one version but carrying one byte of it", hello_truncated_in("versions", 2)),
        ("truncated_hello_device_id_length", "HELLO ending before the device_id length", hello_truncated_in("device_id", 0)),
        ("truncated_hello_device_id", "HELLO ending inside device_id", hello_truncated_in("device_id", 3)),
        ("truncated_hello_device_token", "HELLO ending inside device_token", hello_truncated_in("device_token", 10)),
        ("truncated_hello_client_name", "HELLO ending inside client_name", hello_truncated_in("client_name", 2)),
        ("truncated_hello_client_version", "HELLO ending before client_version", hello_truncated_in("client_version", 0)),
        ("truncated_hello_resume_token", "HELLO ending inside resume_token", hello_truncated_in("resume_token", 5)),
        ("truncated_hello_region", "HELLO ending inside region", hello_truncated_in("region", 1)),
        ("truncated_hello_stream_window", "HELLO ending inside stream_window", hello_truncated_in("stream_window", 3)),
        ("truncated_hello_session_window", "HELLO ending before session_window", hello_truncated_in("session_window", 0)),
        ("truncated_hello_max_frame_size", "HELLO ending inside max_frame_size", hello_truncated_in("max_frame_size", 2)),
        ("truncated_hello_extension_header", "HELLO whose extension record has only 3 header bytes", hello_msg(extensions=u16(1) + b"\x00")),
        ("truncated_hello_extension_value", "HELLO whose extension announces 4 value bytes but has 3", hello_msg(extensions=u16(1) + u16(4) + b"abc")),
        ("truncated_hello_ack_version", "HELLO_ACK with one byte of payload", hello_ack_truncated_in("version", 1)),
        ("truncated_hello_ack_session_id", "HELLO_ACK ending inside session_id", hello_ack_truncated_in("session_id", 15)),
        ("truncated_hello_ack_resume_token", "HELLO_ACK ending inside resume_token", hello_ack_truncated_in("resume_token", 20)),
        ("truncated_hello_ack_max_streams", "HELLO_ACK ending inside max_streams", hello_ack_truncated_in("max_streams", 1)),
        ("truncated_hello_ack_limits", "HELLO_ACK ending inside session_window", hello_ack_truncated_in("session_window", 2)),
        ("truncated_hello_ack_heartbeat", "HELLO_ACK ending before heartbeat_interval_ms", hello_ack_truncated_in("heartbeat_interval_ms", 0)),
        ("truncated_hello_ack_idle_timeout", "HELLO_ACK ending inside idle_timeout_ms", hello_ack_truncated_in("idle_timeout_ms", 3)),
        ("truncated_hello_ack_extension", "HELLO_ACK with a 2-byte extension record", hello_ack_msg(extensions=u16(9))),
        ("truncated_hello_error_code", "HELLO_ERROR with one byte", header(0x03, 0, 0) + b"\x00"),
        ("truncated_hello_error_retry_after", "HELLO_ERROR ending inside retry_after_ms", header(0x03, 0, 0) + u16(1) + b"\x00\x00"),
        ("truncated_stream_open_empty", "STREAM_OPEN with an empty payload", so(b"")),
        ("truncated_stream_open_address_type", "STREAM_OPEN with only the kind", so(b"\x01")),
        ("truncated_stream_open_ipv4", "STREAM_OPEN ending inside an IPv4 address", so(b"\x01\x01\x7f\x00")),
        ("truncated_stream_open_ipv6", "STREAM_OPEN ending inside an IPv6 address", so(b"\x01\x04" + bytes(15))),
        ("truncated_stream_open_domain", "STREAM_OPEN whose domain announces 11 bytes but has 7", so(b"\x01\x03" + u8(11) + b"example")),
        ("truncated_stream_open_domain_length", "STREAM_OPEN ending before the domain length", so(b"\x01\x03")),
        ("truncated_stream_open_port", "STREAM_OPEN with one byte of port", so(b"\x01\x01\x01\x02\x03\x04\x01")),
        ("truncated_stream_open_no_port", "STREAM_OPEN without the port", so(b"\x02\x01\x01\x02\x03\x04")),
        ("truncated_stream_reset_empty", "STREAM_RESET without a code", header(0x08, 0, 1)),
        ("truncated_stream_reset_code", "STREAM_RESET with one code byte", header(0x08, 0, 1) + b"\x01"),
        ("truncated_window_update", "WINDOW_UPDATE with a 3-byte increment", header(0x09, 0, 0) + b"\x00\x01\x00"),
        ("truncated_window_update_empty", "WINDOW_UPDATE without payload", header(0x09, 0, 1)),
        ("truncated_datagram_address", "DATAGRAM with ADDRESS flag but only part of an IPv4 address", header(0x0A, FLAG_ADDRESS, 1) + b"\x01\x0a\x00"),
        ("truncated_datagram_address_empty", "DATAGRAM with ADDRESS flag and an empty payload", header(0x0A, FLAG_ADDRESS, 1)),
        ("truncated_ping_7_bytes", "PING with 7 bytes", header(0x0B, 0, 0) + bytes(7)),
        ("truncated_ping_empty", "PING with no payload", header(0x0B, 0, 0)),
        ("truncated_pong_7_bytes", "PONG with 7 bytes", header(0x0C, 0, 0) + b"\x01" * 7),
        ("truncated_goaway_last_stream_id", "GOAWAY with 3 bytes", header(0x0D, 0, 0) + bytes(3)),
        ("truncated_goaway_code", "GOAWAY with last_stream_id and one code byte", header(0x0D, 0, 0) + u32(5) + b"\x00"),
        ("truncated_error_empty", "ERROR without a code", header(0x0E, 0, 0)),
        ("truncated_error_code", "ERROR with one code byte", header(0x0E, 0, 0) + b"\x01"),
    ]:
        bad(name, description, msg, "truncated")

    # Addresses.
    for atyp in (0x00, 0x02, 0x05, 0xFF):
        bad(f"bad_address_type_{atyp:02x}", f"STREAM_OPEN with address type {atyp}",
            so(b"\x01" + u8(atyp) + b"\x01\x02\x03\x04" + u16(80)), "bad_address_type")
    bad("bad_address_type_datagram", "DATAGRAM with ADDRESS flag and address type 6",
        header(0x0A, FLAG_ADDRESS, 1) + b"\x06\x01\x02\x03\x04" + u16(53) + b"q", "bad_address_type")
    bad("zero_port_ipv4", "STREAM_OPEN to 1.2.3.4 port 0", so(b"\x01\x01\x01\x02\x03\x04" + u16(0)), "zero_port")
    bad("zero_port_ipv6", "udp STREAM_OPEN to ::1 port 0",
        so(b"\x02\x04" + bytes(15) + b"\x01" + u16(0)), "zero_port")
    bad("zero_port_domain", "STREAM_OPEN to example.com port 0",
        so(b"\x01\x03" + len8(b"example.com") + u16(0)), "zero_port")
    bad("zero_port_datagram", "DATAGRAM address with port 0",
        header(0x0A, FLAG_ADDRESS, 3) + b"\x01\x08\x08\x08\x08" + u16(0) + b"x", "zero_port")

    def dom(raw):
        return so(b"\x01\x03" + len8(raw) + u16(443))

    bad("field_too_short_domain_empty", "STREAM_OPEN with a zero-length domain", dom(b""), "field_too_short")
    bad("bad_domain_empty_label", "domain a..b has an empty label", dom(b"a..b"), "bad_domain")
    bad("bad_domain_leading_dot", "domain .example.com starts with an empty label", dom(b".example.com"),
        "bad_domain")
    bad("bad_domain_trailing_dot", "domain example.com. ends with an empty label", dom(b"example.com."),
        "bad_domain")
    bad("bad_domain_only_dot", "domain made of a single dot", dom(b"."), "bad_domain")
    bad("bad_domain_space", "domain with a space", dom(b"exa mple.com"), "bad_domain")
    bad("bad_domain_slash", "domain with a slash", dom(b"example.com/x"), "bad_domain")
    bad("bad_domain_colon", "domain with a port-like colon", dom(b"example.com:80"), "bad_domain")
    bad("bad_domain_nul", "domain with a NUL byte", dom(b"exa\x00mple.com"), "bad_domain")
    bad("bad_domain_label_64", "domain with a 64-byte label", dom(b"x" * 64 + b".example"), "bad_domain")
    bad("bad_domain_single_label_64", "domain of one 64-byte label", dom(b"y" * 64), "bad_domain")
    bad("bad_domain_non_ascii_utf8", "valid UTF-8 but non-ASCII domain (IDNs go as punycode)",
        dom("ümlaut.de".encode()), "bad_domain")
    bad("bad_domain_non_utf8", "domain bytes that are not UTF-8", dom(b"ex\xffmple.com"), "bad_domain")
    bad("bad_domain_datagram", "DATAGRAM address with an empty label",
        header(0x0A, FLAG_ADDRESS, 1) + b"\x03" + len8(b"a..") + u16(53), "bad_domain")

    # Text fields.
    bad_utf8 = b"\xc3\x28"
    bad("invalid_utf8_device_id", "HELLO device_id that is not UTF-8", hello_msg(device_id=len8(b"dev\xff")),
        "invalid_utf8")
    bad("invalid_utf8_client_name", "HELLO client_name with an invalid 2-byte sequence",
        hello_msg(client_name=len8(b"cli" + bad_utf8)), "invalid_utf8")
    bad("invalid_utf8_client_version_overlong", "HELLO client_version with an overlong encoding of NUL",
        hello_msg(client_version=len8(b"\xc0\x80")), "invalid_utf8")
    bad("invalid_utf8_region_surrogate", "HELLO region with an encoded UTF-16 surrogate",
        hello_msg(region=len8(b"\xed\xa0\x80")), "invalid_utf8")
    bad("invalid_utf8_hello_error_message", "HELLO_ERROR message ending in a cut multi-byte character",
        header(0x03, 0, 0) + u16(1) + u32(0) + b"caf\xc3", "invalid_utf8")
    bad("invalid_utf8_error_message", "ERROR message with a lone continuation byte",
        header(0x0E, 0, 0) + u16(1) + b"bad \x80 byte", "invalid_utf8")
    bad("invalid_utf8_goaway_reason", "GOAWAY reason with byte 0xfe",
        header(0x0D, 0, 0) + u32(1) + u16(0) + b"\xfe", "invalid_utf8")

    # Field lengths.
    bad("field_too_short_versions_zero", "HELLO with a version count of 0", hello_msg(versions=u8(0)),
        "field_too_short")
    bad("field_too_long_versions_17", "HELLO with a version count of 17",
        hello_msg(versions=u8(17) + b"\x00\x01" * 17), "field_too_long")
    bad("field_too_short_device_id", "HELLO with an empty device_id", hello_msg(device_id=len8(b"")),
        "field_too_short")
    bad("field_too_long_device_id", "HELLO with a 65-byte device_id", hello_msg(device_id=len8(b"d" * 65)),
        "field_too_long")
    bad("field_too_short_device_token", "HELLO with an empty device_token", hello_msg(device_token=len8(b"")),
        "field_too_short")
    bad("field_too_long_device_token", "HELLO with a 129-byte device_token",
        hello_msg(device_token=len8(pseudo(129, "t129"))), "field_too_long")
    bad("field_too_long_client_name", "HELLO with a 65-byte client_name", hello_msg(client_name=len8(b"n" * 65)),
        "field_too_long")
    bad("field_too_long_client_version", "HELLO with a 65-byte client_version",
        hello_msg(client_version=len8(b"v" * 65)), "field_too_long")
    bad("field_too_long_resume_token", "HELLO with a 65-byte resume_token",
        hello_msg(resume_token=len8(pseudo(65, "r65"))), "field_too_long")
    bad("field_too_long_region", "HELLO with a 33-byte region", hello_msg(region=len8(b"r" * 33)),
        "field_too_long")
    bad("field_too_long_device_id_length_only",
        "HELLO whose device_id length byte is 200 with the bytes missing: the length is checked first",
        hello_truncated_in("device_id", 1)[:-1] + u8(200), "field_too_long")
    bad("field_too_long_extension_value", "HELLO with a 1025-byte extension value",
        hello_msg(extensions=raw_exts([(1, bytes(1025))])), "field_too_long")
    bad("field_too_short_hello_ack_resume_token", "HELLO_ACK with an empty resume_token",
        hello_ack_msg(resume_token=len8(b"")), "field_too_short")
    bad("field_too_long_hello_ack_resume_token", "HELLO_ACK with a 65-byte resume_token",
        hello_ack_msg(resume_token=len8(pseudo(65, "r65"))), "field_too_long")
    bad("field_too_long_hello_ack_extension_value", "HELLO_ACK with a 65535-byte extension length",
        hello_ack_msg(extensions=u16(1) + u16(0xFFFF)), "field_too_long")
    bad("field_too_long_hello_error_message", "HELLO_ERROR with a 257-byte message",
        header(0x03, 0, 0) + u16(1) + u32(0) + b"m" * 257, "field_too_long")
    bad("field_too_long_error_message", "ERROR with a 257-byte message",
        header(0x0E, 0, 0) + u16(1) + b"e" * 257, "field_too_long")
    bad("field_too_long_goaway_reason", "GOAWAY with a 257-byte reason",
        header(0x0D, 0, 0) + u32(0) + u16(0) + b"r" * 257, "field_too_long")

    # Fixed-size frames with extra bytes.
    bad("trailing_bytes_stream_open_ack", "STREAM_OPEN_ACK with a payload byte", header(0x05, 0, 1) + b"\x00",
        "trailing_bytes")
    bad("trailing_bytes_stream_fin", "STREAM_FIN with 4 payload bytes", header(0x07, 0, 1) + b"\x00" * 4,
        "trailing_bytes")
    bad("trailing_bytes_stream_reset", "STREAM_RESET with a 3-byte payload", header(0x08, 0, 1) + b"\x00\x01\x02",
        "trailing_bytes")
    bad("trailing_bytes_window_update", "WINDOW_UPDATE with a 5-byte payload",
        header(0x09, 0, 0) + u32(1) + b"\x00", "trailing_bytes")
    bad("trailing_bytes_ping_9_bytes", "PING with 9 bytes", header(0x0B, 0, 0) + bytes(9), "trailing_bytes")
    bad("trailing_bytes_pong_16_bytes", "PONG with 16 bytes", header(0x0C, 0, 0) + bytes(16), "trailing_bytes")

    # Flow control.
    bad("zero_window_increment_session", "session WINDOW_UPDATE of 0", header(0x09, 0, 0) + u32(0),
        "zero_window_increment")
    bad("zero_window_increment_stream", "stream WINDOW_UPDATE of 0", header(0x09, 0, 3) + u32(0),
        "zero_window_increment")
    bad("window_increment_too_large_2_31", "WINDOW_UPDATE of 2^31", header(0x09, 0, 0) + u32(0x80000000),
        "window_increment_too_large")
    bad("window_increment_too_large_u32_max", "stream WINDOW_UPDATE of 2^32-1",
        header(0x09, 0, 1) + u32(U32_MAX), "window_increment_too_large")

    # Streams.
    for kind in (0, 3, 0xFF):
        bad(f"bad_stream_kind_{kind}", f"STREAM_OPEN with kind {kind}",
            so(u8(kind) + b"\x01\x01\x02\x03\x04" + u16(80)), "bad_stream_kind")
    bad("early_data_on_udp", "udp STREAM_OPEN followed by a byte of early data",
        so(b"\x02\x01\x08\x08\x08\x08" + u16(53) + b"\x00"), "early_data_on_udp")
    bad("early_data_on_udp_domain", "udp STREAM_OPEN to a domain followed by a DNS query",
        so(b"\x02\x03" + len8(b"dns.example") + u16(53) + b"\xab\xcd\x01\x00"), "early_data_on_udp")
    bad("empty_data", "STREAM_DATA without data", header(0x06, 0, 1), "empty_data")
    bad("empty_data_with_flags", "STREAM_DATA with flags set and no data", header(0x06, 0xFF, 7), "empty_data")

    # Settings.
    for name, description, msg in [
        ("hello_stream_window_low", "HELLO stream_window 65535, below 65536", hello_msg(stream_window=u32(65535))),
        ("hello_stream_window_high", "HELLO stream_window 2^31, above 2^31-1", hello_msg(stream_window=u32(0x80000000))),
        ("hello_session_window_zero", "HELLO session_window 0", hello_msg(session_window=u32(0))),
        ("hello_max_frame_size_low", "HELLO max_frame_size 16383, below 16384", hello_msg(max_frame_size=u32(16383))),
        ("hello_max_frame_size_high", "HELLO max_frame_size 16777216, above 16777215", hello_msg(max_frame_size=u32(16777216))),
        ("hello_max_frame_size_zero", "HELLO max_frame_size 0", hello_msg(max_frame_size=u32(0))),
        ("hello_ack_max_streams_zero", "HELLO_ACK max_streams 0", hello_ack_msg(max_streams=u32(0))),
        ("hello_ack_session_window_low", "HELLO_ACK session_window 65535", hello_ack_msg(session_window=u32(65535))),
        ("hello_ack_max_frame_size_high", "HELLO_ACK max_frame_size 2^32-1", hello_ack_msg(max_frame_size=u32(U32_MAX))),
    ]:
        bad(f"bad_setting_{name}", description, msg, "bad_setting")

    # Extensions.
    bad("duplicate_extension_hello", "HELLO with extension type 5 twice",
        hello_msg(extensions=raw_exts([(5, b"a"), (6, b""), (5, b"b")])), "duplicate_extension")
    bad("duplicate_extension_hello_ack", "HELLO_ACK with extension type 0 twice, both empty",
        hello_ack_msg(extensions=raw_exts([(0, b""), (0, b"")])), "duplicate_extension")
    bad("too_many_extensions_hello", "HELLO with 17 extensions",
        hello_msg(extensions=raw_exts([(i, b"") for i in range(17)])), "too_many_extensions")
    bad("too_many_extensions_hello_ack", "HELLO_ACK with 17 extensions",
        hello_ack_msg(extensions=raw_exts([(i, b"v") for i in range(17)])), "too_many_extensions")
    bad("too_many_extensions_partial_17th", "HELLO with 16 extensions and one more byte: the 17th record is refused",
        hello_msg(extensions=raw_exts([(i, b"") for i in range(16)]) + b"\x00"), "too_many_extensions")
    return vf


# ---------------------------------------------------------------------------------------------


def build():
    files = [handshake(), streams(), flow(), datagrams(), session(), malformed()]
    names = set()
    errors = set()
    total = 0
    for vf in files:
        for v in vf.vectors:
            assert v["name"] not in names, f"duplicate vector name {v['name']}"
            names.add(v["name"])
            if "error" in v:
                errors.add(v["error"])
            total += 1
    missing = [e for e in DECODE_ERRORS if e not in errors]
    assert not missing, f"no vector for {missing}"
    assert total >= 90, total
    return files


def render(vf):
    return json.dumps(vf.document(), indent=2, ensure_ascii=False) + "\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    check = "--check" in sys.argv[1:]
    stale = []
    for vf in build():
        path = os.path.join(here, vf.filename)
        text = render(vf)
        if check:
            try:
                with open(path, encoding="utf-8") as fh:
                    if fh.read() != text:
                        stale.append(vf.filename)
            except FileNotFoundError:
                stale.append(vf.filename)
        else:
            with open(path, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
        print(f"{vf.filename}: {len(vf.vectors)} vectors")
    if stale:
        print("out of date: " + ", ".join(stale) + " (run generate.py)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
