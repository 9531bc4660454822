//! The probe table: every probe is data (what to send, how, and how long to watch the answer).
//! Request templates use placeholders that [`expand`] fills in per run:
//! `{host}` (the Host header value), `{secret}` (the secret path; `{secret_pct}` with its first
//! character percent-encoded, `{secret_upper}` in upper case), `{long}` (9000 URI bytes),
//! `{big}` (one 9000-byte header line), `{many}` (200 small headers), `{nul}` (a NUL byte),
//! `{garbage}` (fixed non-ASCII bytes), `{ws}` (WebSocket upgrade headers without the version).

/// How the probe reaches the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A TLS handshake first, then the steps inside TLS.
    Tls,
    /// Raw TCP to the (TLS) port: plain HTTP or nothing at all.
    Plain,
    /// A hand-built TLS 1.2 ClientHello with this SNI, then only the first answer record's kind.
    RawHello(&'static str),
}

/// The SNI of the ClientHello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sni {
    /// The run's `--sni` name.
    Default,
    /// No server_name extension.
    Omitted,
    /// This name instead.
    Name(&'static str),
}

/// The ALPN protocols offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alpn {
    /// `http/1.1`
    Http11,
    /// `h2`, `http/1.1` (what browsers and curl offer)
    H2AndHttp11,
}

/// One action on the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send the expanded template.
    Send(&'static str),
    /// Keep reading for this many milliseconds before the next step.
    Wait(u64),
}

/// How long the answer is watched after the last step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// Until the server closes or stays quiet for the settle period (fast probes).
    Settle,
    /// Until the server closes, up to the idle limit (timeouts; only with `--slow`).
    Idle,
}

/// What a probe's answer is about, so callers can hold the two apart: HTTP-level answers can be
/// byte-identical through a relay, TLS parameters depend on the TLS library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Answer bytes and close behaviour.
    Http,
    /// Also the negotiated TLS version, cipher suite and ALPN.
    Tls,
}

/// One probe.
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    pub name: &'static str,
    pub transport: Transport,
    pub sni: Sni,
    pub alpn: Alpn,
    pub steps: &'static [Step],
    pub finish: Finish,
    /// Uses `{secret}`: skipped without `--secret-path`.
    pub needs_secret: bool,
    pub level: Level,
}

impl Probe {
    const fn tls(name: &'static str, steps: &'static [Step]) -> Probe {
        Probe {
            name,
            transport: Transport::Tls,
            sni: Sni::Default,
            alpn: Alpn::Http11,
            steps,
            finish: Finish::Settle,
            needs_secret: false,
            level: Level::Http,
        }
    }

    const fn raw_hello(name: &'static str, sni: &'static str) -> Probe {
        Probe {
            transport: Transport::RawHello(sni),
            level: Level::Tls,
            ..Probe::tls(name, &[])
        }
    }

    const fn plain(self) -> Probe {
        Probe {
            transport: Transport::Plain,
            ..self
        }
    }

    const fn sni(self, sni: Sni) -> Probe {
        Probe { sni, ..self }
    }

    const fn alpn(self, alpn: Alpn) -> Probe {
        Probe { alpn, ..self }
    }

    const fn idle(self) -> Probe {
        Probe {
            finish: Finish::Idle,
            ..self
        }
    }

    const fn secret(self) -> Probe {
        Probe {
            needs_secret: true,
            ..self
        }
    }

    const fn tls_level(self) -> Probe {
        Probe {
            level: Level::Tls,
            ..self
        }
    }

    /// Whether the probe needs `--slow` (it waits for a server timeout).
    pub fn is_slow(&self) -> bool {
        self.finish == Finish::Idle
    }
}

use Step::{Send, Wait};

const WS: &str =
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// Every probe, in the order they are reported.
pub const PROBES: &[Probe] = &[
    // Methods
    Probe::tls("get-root", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n")]),
    Probe::tls("head-root", &[Send("HEAD / HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("post-body", &[Send("POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\nhello=world")]),
    Probe::tls("put", &[Send("PUT /upload.txt HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n\r\nhello")]),
    Probe::tls("delete", &[Send("DELETE /index.html HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("options", &[Send("OPTIONS / HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("options-star", &[Send("OPTIONS * HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("trace", &[Send("TRACE / HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("connect", &[Send("CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n")]),
    Probe::tls("patch", &[Send("PATCH / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\n\r\n{}")]),
    Probe::tls("unknown-method", &[Send("FOO / HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("lowercase-method", &[Send("get / HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("propfind", &[Send("PROPFIND / HTTP/1.1\r\nHost: {host}\r\nDepth: 1\r\n\r\n")]),
    Probe::tls("mkcol", &[Send("MKCOL /newdir/ HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    // HTTP versions
    Probe::tls("http10", &[Send("GET / HTTP/1.0\r\n\r\n")]),
    Probe::tls("http10-keepalive", &[Send("GET / HTTP/1.0\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n")]),
    Probe::tls("http09", &[Send("GET /\r\n")]),
    Probe::tls("http2-preface", &[Send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")]),
    Probe::tls("unknown-version", &[Send("GET / HTTP/3.7\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("lowercase-version", &[Send("GET / http/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("double-space-request-line", &[Send("GET  / HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("tab-request-line", &[Send("GET\t/ HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("trailing-space-request-line", &[Send("GET / HTTP/1.1 \r\nHost: {host}\r\n\r\n")]),
    // Host and URI forms
    Probe::tls("no-host", &[Send("GET / HTTP/1.1\r\n\r\n")]),
    Probe::tls("duplicate-host", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\nHost: other.invalid\r\n\r\n")]),
    Probe::tls("host-with-port", &[Send("GET / HTTP/1.1\r\nHost: {host}:443\r\n\r\n")]),
    Probe::tls("host-empty", &[Send("GET / HTTP/1.1\r\nHost:\r\n\r\n")]),
    Probe::tls("host-invalid", &[Send("GET / HTTP/1.1\r\nHost: bad/host\r\n\r\n")]),
    Probe::tls("header-space-before-colon", &[Send("GET / HTTP/1.1\r\nHost : {host}\r\n\r\n")]),
    Probe::tls("absolute-uri", &[Send("GET https://{host}/ HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("absolute-uri-http", &[Send("GET http://{host}/folder HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("asterisk-get", &[Send("GET * HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("folder-no-slash", &[Send("GET /folder HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("folder-with-index", &[Send("GET /folder/ HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("folder-no-index", &[Send("GET /noindex/ HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("missing-file", &[Send("GET /missing.html HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("file-as-folder", &[Send("GET /index.html/ HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("robots-txt", &[Send("GET /robots.txt HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("double-slash", &[Send("GET //index.html HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("dot-segments", &[Send("GET /folder/../index.html HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("encoded-dot-segments", &[Send("GET /folder/%2e%2e/index.html HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("encoded-slash", &[Send("GET /folder%2Findex.html HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("utf8-path", &[Send("GET /café HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("uri-fragment", &[Send("GET /index.html#top HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("path-traversal", &[Send("GET /../../etc/passwd HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("percent-encoded", &[Send("GET /%69ndex.html HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("bad-percent", &[Send("GET /%zz HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("query-string", &[Send("GET /?q=1&lang=en HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    // Ranges and conditionals
    Probe::tls("range", &[Send("GET /range.bin HTTP/1.1\r\nHost: {host}\r\nRange: bytes=0-9\r\n\r\n")]),
    Probe::tls("multi-range", &[Send("GET /range.bin HTTP/1.1\r\nHost: {host}\r\nRange: bytes=0-1,5-6\r\n\r\n")]),
    Probe::tls("range-unsatisfiable", &[Send("GET /range.bin HTTP/1.1\r\nHost: {host}\r\nRange: bytes=999999-\r\n\r\n")]),
    Probe::tls("range-suffix", &[Send("GET /range.bin HTTP/1.1\r\nHost: {host}\r\nRange: bytes=-10\r\n\r\n")]),
    Probe::tls("if-range-mismatch", &[Send("GET /range.bin HTTP/1.1\r\nHost: {host}\r\nRange: bytes=0-9\r\nIf-Range: \"nope\"\r\n\r\n")]),
    Probe::tls("if-match-mismatch", &[Send("GET /index.html HTTP/1.1\r\nHost: {host}\r\nIf-Match: \"nope\"\r\n\r\n")]),
    Probe::tls("if-unmodified-since-past", &[Send("GET /index.html HTTP/1.1\r\nHost: {host}\r\nIf-Unmodified-Since: Thu, 01 Jan 1970 00:00:01 GMT\r\n\r\n")]),
    Probe::tls("accept-gzip", &[Send("GET /index.html HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: gzip, deflate, br\r\n\r\n")]),
    Probe::tls("if-modified-since", &[Send("GET /index.html HTTP/1.1\r\nHost: {host}\r\nIf-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n\r\n")]),
    Probe::tls("if-none-match", &[Send("GET /index.html HTTP/1.1\r\nHost: {host}\r\nIf-None-Match: *\r\n\r\n")]),
    // Sizes
    Probe::tls("long-uri", &[Send("GET /{long} HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("huge-header", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\n{big}\r\n\r\n")]),
    Probe::tls("many-headers", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\n{many}\r\n")]),
    // Malformed
    Probe::tls("malformed-request-line", &[Send("GET / HTTP/1.1 extra\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("garbage", &[Send("{garbage}\r\n\r\n")]),
    Probe::tls("obs-fold", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\nX-Folded: a\r\n b\r\n\r\n")]),
    Probe::tls("nul-in-header", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\nX-Nul: a{nul}b\r\n\r\n")]),
    Probe::tls("header-no-colon", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\nNoColonHere\r\n\r\n")]),
    Probe::tls("bare-lf", &[Send("GET / HTTP/1.1\nHost: {host}\n\n")]),
    // Bodies and smuggling shapes
    Probe::tls("cl-te", &[Send("POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")]),
    Probe::tls("two-cl", &[Send("POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc")]),
    Probe::tls("invalid-cl", &[Send("POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: -1\r\n\r\n")]),
    Probe::tls("chunked-body", &[Send("POST / HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")]),
    Probe::tls("te-gzip", &[Send("POST / HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: gzip\r\n\r\n")]),
    Probe::tls("te-chunked-identity", &[Send("POST / HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n")]),
    Probe::tls("te-space-before-colon", &[Send("POST / HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n")]),
    Probe::tls("bad-chunk-size", &[Send("POST / HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")]),
    Probe::tls("cl-plus-sign", &[Send("POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: +5\r\n\r\nhello")]),
    Probe::tls("get-with-body", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n\r\nhello")]),
    Probe::tls("expect-100", &[Send("POST / HTTP/1.1\r\nHost: {host}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"), Wait(500), Send("hello")]),
    // Connection reuse
    Probe::tls("pipelined", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\n\r\nGET /missing.html HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("pipelined-then-garbage", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n{garbage}\r\n\r\n")]),
    Probe::tls("keepalive-second", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n"), Wait(300), Send("GET /folder HTTP/1.1\r\nHost: {host}\r\n\r\n")]),
    Probe::tls("connection-close", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")]),
    // WebSocket upgrades
    Probe::tls("upgrade-wrong-path", &[Send("GET /ws HTTP/1.1\r\nHost: {host}\r\n{ws}Sec-WebSocket-Version: 13\r\n\r\n")]),
    Probe::tls("upgrade-root", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\n{ws}Sec-WebSocket-Version: 13\r\n\r\n")]),
    Probe::tls("upgrade-h2c", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n")]),
    Probe::tls("upgrade-secret-wrong-subprotocol", &[Send("GET {secret} HTTP/1.1\r\nHost: {host}\r\n{ws}Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n")]).secret(),
    Probe::tls("upgrade-secret-version-8", &[Send("GET {secret} HTTP/1.1\r\nHost: {host}\r\n{ws}Sec-WebSocket-Version: 8\r\n\r\n")]).secret(),
    Probe::tls("upgrade-secret-post", &[Send("POST {secret} HTTP/1.1\r\nHost: {host}\r\n{ws}Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n")]).secret(),
    Probe::tls("upgrade-secret-http10", &[Send("GET {secret} HTTP/1.0\r\nHost: {host}\r\n{ws}Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n")]).secret(),
    Probe::tls("upgrade-secret-percent-encoded", &[Send("GET {secret_pct} HTTP/1.1\r\nHost: {host}\r\n{ws}Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n")]).secret(),
    Probe::tls("upgrade-secret-no-key", &[Send("GET {secret} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")]).secret(),
    Probe::tls("secret-no-upgrade", &[Send("GET {secret} HTTP/1.1\r\nHost: {host}\r\n\r\n")]).secret(),
    Probe::tls("secret-slash", &[Send("GET {secret}/ HTTP/1.1\r\nHost: {host}\r\n\r\n")]).secret(),
    Probe::tls("secret-upper-case", &[Send("GET {secret_upper} HTTP/1.1\r\nHost: {host}\r\n\r\n")]).secret(),
    Probe::tls("secret-head", &[Send("HEAD {secret} HTTP/1.1\r\nHost: {host}\r\n\r\n")]).secret(),
    // Plain HTTP and odd TLS
    Probe::tls("plain-http-to-tls-port", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n")]).plain(),
    Probe::tls("plain-garbage-to-tls-port", &[Send("{garbage}\r\n")]).plain(),
    Probe::tls("sni-odd", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n")]).sni(Sni::Name("under_score.invalid")),
    Probe::tls("sni-other-name", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n")]).sni(Sni::Name("www.example.com")),
    Probe::tls("sni-omitted", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n")]).sni(Sni::Omitted),
    Probe::raw_hello("sni-raw-baseline", "localhost"),
    Probe::raw_hello("sni-raw-ip-literal", "127.0.0.1"),
    Probe::raw_hello("sni-raw-trailing-dot", "localhost."),
    Probe::raw_hello("sni-raw-invalid-char", "bad!name.invalid"),
    Probe::tls("tls-parameters", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n")]).tls_level(),
    Probe::tls("tls-alpn-h2", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n")]).alpn(Alpn::H2AndHttp11).tls_level(),
    // Timeouts (with --slow)
    Probe::tls("idle-tcp-no-client-hello", &[]).plain().idle(),
    Probe::tls("idle-tls-no-request", &[]).idle(),
    Probe::tls("idle-slow-headers", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\n")]).idle(),
    Probe::tls("idle-slow-body", &[Send("POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\nhello")]).idle(),
    Probe::tls("idle-keepalive", &[Send("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n")]).idle(),
];

/// Values of the template placeholders for one run.
#[derive(Clone, Debug)]
pub struct Placeholders {
    pub host: String,
    pub secret: Option<String>,
}

/// The bytes a template stands for. `{secret}` without a secret path expands to `/`; probes
/// that use it are skipped in that case anyway.
pub fn expand(template: &str, values: &Placeholders) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let after = &rest[start..];
        let (name, len) = match after.find('}') {
            Some(end) => (&after[1..end], end + 1),
            None => ("", 0),
        };
        match name {
            "host" => out.extend_from_slice(values.host.as_bytes()),
            "secret" => out.extend_from_slice(secret(values).as_bytes()),
            "secret_pct" => out.extend_from_slice(percent_encode_first(secret(values)).as_bytes()),
            "secret_upper" => out.extend_from_slice(secret(values).to_uppercase().as_bytes()),
            "ws" => out.extend_from_slice(WS.as_bytes()),
            "long" => out.extend(std::iter::repeat_n(b'a', 9000)),
            "big" => {
                out.extend_from_slice(b"X-Big: ");
                out.extend(std::iter::repeat_n(b'b', 9000));
            }
            "many" => {
                for i in 0..200 {
                    out.extend_from_slice(format!("X-Probe-{i}: v\r\n").as_bytes());
                }
            }
            "nul" => out.push(0),
            "garbage" => out.extend_from_slice(&GARBAGE),
            // Not a placeholder (e.g. a JSON body): the brace is literal.
            _ => {
                out.push(b'{');
                rest = &after[1..];
                continue;
            }
        }
        rest = &after[len..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

fn secret(values: &Placeholders) -> &str {
    values.secret.as_deref().unwrap_or("/")
}

/// `/abc` as `/%61bc`: the same path to a server that decodes before matching.
fn percent_encode_first(path: &str) -> String {
    let mut chars = path.chars();
    match (chars.next(), chars.next()) {
        (Some('/'), Some(c)) if c.is_ascii() => format!("/%{:02X}{}", c as u32, chars.as_str()),
        _ => path.to_owned(),
    }
}

/// Fixed non-HTTP bytes (the same every run, so both sides get the same garbage).
const GARBAGE: [u8; 16] = [
    0x9c, 0x01, 0xff, 0x42, 0x7f, 0x80, 0x00, 0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, 0x20, 0x0a, 0xfe,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Placeholders {
        Placeholders {
            host: "example.org".into(),
            secret: Some("/s3cr3t".into()),
        }
    }

    #[test]
    fn placeholders_expand_and_literal_braces_stay() {
        let got = expand("GET {secret} HTTP/1.1\r\nHost: {host}\r\n\r\n{}", &values());
        assert_eq!(got, b"GET /s3cr3t HTTP/1.1\r\nHost: example.org\r\n\r\n{}");
        assert_eq!(expand("/{long}", &values()).len(), 9001);
        assert_eq!(expand("{nul}", &values()), vec![0]);
        assert_eq!(
            expand("{secret_pct} {secret_upper}", &values()),
            b"/%733cr3t /S3CR3T"
        );
    }

    #[test]
    fn the_table_has_enough_distinct_probes() {
        let mut names: Vec<&str> = PROBES.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PROBES.len(), "probe names are unique");
        assert!(PROBES.len() >= 90, "{} probes", PROBES.len());
        // Every template that names the secret is marked, so it is skipped without one.
        for p in PROBES {
            let uses_secret = p
                .steps
                .iter()
                .any(|s| matches!(s, Step::Send(t) if t.contains("{secret")));
            assert_eq!(uses_secret, p.needs_secret, "{}", p.name);
        }
    }
}
