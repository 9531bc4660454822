//! Turns what a connection showed into a text transcript: the received bytes with every control
//! byte escaped (one line per received line), then the TLS and close facts. Two answers are
//! identical exactly when their transcripts are.

use std::fmt::Write as _;
use std::time::Duration;

use crate::conn::{Observed, TcpClose};
use crate::probes::{Level, Transport};
use crate::raw_hello;

/// The transcript of `observed` (received bytes as they are; normalize them first).
pub fn render(observed: &Observed, transport: Transport, level: Level) -> String {
    let mut out = String::new();
    if let Some(kind) = observed.connect_error {
        let _ = writeln!(out, "-- connect failed: {kind:?}");
        return out;
    }
    if let Transport::RawHello(_) = transport {
        let _ = writeln!(out, "-- {}", raw_hello::first_record(&observed.received));
    } else {
        out.push_str(&escape(&observed.received));
    }
    if !out.is_empty() && !out.ends_with('\n') {
        // The last received line had no line feed: mark it on its own line.
        out.push_str("\n-- (no final line feed)\n");
    }
    if transport == Transport::Tls {
        match (&observed.handshake, level) {
            (None, _) => out.push_str("-- tls: handshake not completed\n"),
            (Some(_), Level::Http) => out.push_str("-- tls: handshake completed\n"),
            (Some(p), Level::Tls) => {
                let alpn = p.alpn.as_deref().unwrap_or("none");
                let _ = writeln!(out, "-- tls: {} {} alpn {alpn}", p.version, p.cipher_suite);
            }
        }
        if let Some(error) = &observed.tls_error {
            let _ = writeln!(out, "-- tls error: {error}");
        }
        if observed.raw_after_tls_error > 0 {
            let _ = writeln!(
                out,
                "-- {} bytes after the tls error",
                observed.raw_after_tls_error
            );
        }
        let notify = if observed.close_notify { "yes" } else { "no" };
        let _ = writeln!(out, "-- tls close_notify: {notify}");
    }
    let close = match observed.tcp_close {
        TcpClose::Open => "still open".to_owned(),
        TcpClose::Fin => "FIN".to_owned(),
        TcpClose::Reset => "RST".to_owned(),
        TcpClose::Error(kind) => format!("error {kind:?}"),
    };
    match observed.closed_after {
        Some(after) => {
            let _ = writeln!(out, "-- tcp close: {close} after {}", bucket(after));
        }
        None => {
            let _ = writeln!(out, "-- tcp close: {close}");
        }
    }
    out
}

/// A coarse time bucket, so scheduling noise does not count but nginx's timers (lingering 5 s,
/// lingering time 30 s, header/body 60 s, keep-alive 75 s) and a 10 s timeout are told apart.
/// The edges sit between those values, never on one.
pub fn bucket(after: Duration) -> &'static str {
    match after.as_secs_f64() {
        t if t < 1.0 => "<1 s",
        t if t < 3.0 => "1-3 s",
        t if t < 8.0 => "3-8 s (~5 s)",
        t if t < 20.0 => "8-20 s (~10 s)",
        t if t < 45.0 => "20-45 s (~30 s)",
        t if t < 67.0 => "45-67 s (~60 s)",
        t if t < 85.0 => "67-85 s (~75 s)",
        _ => ">85 s",
    }
}

/// Bytes as text: printable ASCII as is, `\r`, `\n` (ending the line), `\t` and `\\` escaped,
/// everything else as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 16);
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::TlsParameters;

    fn observed(received: &[u8]) -> Observed {
        let mut o = Observed::connect_failed(std::io::ErrorKind::Other);
        o.connect_error = None;
        o.received = received.to_vec();
        o
    }

    #[test]
    fn control_bytes_are_escaped_and_lines_split() {
        assert_eq!(
            escape(b"HTTP/1.1 200 OK\r\nA: b\r\n"),
            "HTTP/1.1 200 OK\\r\\n\nA: b\\r\\n\n"
        );
        assert_eq!(
            escape(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]),
            "\\x15\\x03\\x03\\x00\\x02\\x02F"
        );
        assert_eq!(escape(b"a\\b\t"), "a\\\\b\\t");
    }

    #[test]
    fn close_facts_end_the_transcript() {
        let mut o = observed(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        o.close_notify = true;
        o.tcp_close = TcpClose::Fin;
        o.closed_after = Some(Duration::from_millis(3));
        o.handshake = Some(TlsParameters {
            version: "TLSv1_3".into(),
            cipher_suite: "TLS13_AES_256_GCM_SHA384".into(),
            alpn: Some("http/1.1".into()),
        });
        let http = render(&o, Transport::Tls, Level::Http);
        assert!(http.ends_with("-- tls: handshake completed\n-- tls close_notify: yes\n-- tcp close: FIN after <1 s\n"), "{http}");
        let tls = render(&o, Transport::Tls, Level::Tls);
        assert!(
            tls.contains("-- tls: TLSv1_3 TLS13_AES_256_GCM_SHA384 alpn http/1.1\n"),
            "{tls}"
        );
        // A plain probe has no TLS lines.
        let plain = render(&o, Transport::Plain, Level::Http);
        assert!(!plain.contains("tls"), "{plain}");
    }

    #[test]
    fn buckets_separate_nginx_timeouts_from_short_ones() {
        assert_eq!(bucket(Duration::from_millis(999)), "<1 s");
        assert_eq!(bucket(Duration::from_millis(5_020)), "3-8 s (~5 s)");
        assert_eq!(bucket(Duration::from_secs(10)), "8-20 s (~10 s)");
        assert_eq!(bucket(Duration::from_secs(60)), "45-67 s (~60 s)");
        assert_eq!(bucket(Duration::from_secs(75)), "67-85 s (~75 s)");
        assert_ne!(
            bucket(Duration::from_secs(60)),
            bucket(Duration::from_secs(75))
        );
    }
}
