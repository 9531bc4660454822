//! A hand-built TLS 1.2 ClientHello with any SNI bytes (rustls as a client refuses to send odd
//! names such as IP literals or invalid characters; OpenSSL servers accept them, rustls servers
//! answer some with an alert), and a summary of the first record the server answers with: its
//! server random and certificate differ on every connection, so only the record's kind counts.

/// The ClientHello record offering ECDHE with AES-GCM (ECDSA and RSA certificates) and
/// `server_name` = `sni`.
pub fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut ext = Vec::new();
    // server_name: one host_name entry
    push_u16(&mut ext, 0x0000);
    push_u16(&mut ext, name.len() as u16 + 5);
    push_u16(&mut ext, name.len() as u16 + 3);
    ext.push(0);
    push_u16(&mut ext, name.len() as u16);
    ext.extend_from_slice(name);
    // supported_groups x25519, secp256r1; ec_point_formats uncompressed
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17]);
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    // signature_algorithms ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
    ext.extend_from_slice(&[
        0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01,
    ]);
    // extended_master_secret, renegotiation_info (empty)
    ext.extend_from_slice(&[0x00, 0x17, 0x00, 0x00, 0xff, 0x01, 0x00, 0x01, 0x00]);

    let mut body = vec![0x03, 0x03];
    body.extend((0u8..32).map(|i| i.wrapping_mul(37)));
    body.push(0); // no session id
    let suites: [u16; 4] = [0xc02b, 0xc02f, 0xc02c, 0xc030];
    push_u16(&mut body, (suites.len() * 2) as u16);
    for s in suites {
        push_u16(&mut body, s);
    }
    body.extend_from_slice(&[0x01, 0x00]); // null compression only
    push_u16(&mut body, ext.len() as u16);
    body.extend_from_slice(&ext);

    let mut handshake = vec![0x01];
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);

    let mut record = vec![0x16, 0x03, 0x01];
    push_u16(&mut record, handshake.len() as u16);
    record.extend_from_slice(&handshake);
    record
}

fn push_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// What the first record of an answer is: a handshake message by type, an alert with its level
/// and description, or raw bytes (not TLS).
pub fn first_record(answer: &[u8]) -> String {
    match answer {
        [] => "no answer".to_owned(),
        [0x16, 0x03, _, _, _, kind, ..] => match kind {
            0x02 => "handshake record: server_hello".to_owned(),
            other => format!("handshake record: message type {other}"),
        },
        [0x15, 0x03, _, 0x00, 0x02, level, description, ..] => {
            format!("alert record: level {level} description {description}")
        }
        other => format!(
            "not a TLS record: {}",
            crate::transcript::escape(&other[..other.len().min(64)])
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_in_the_hello_add_up() {
        let hello = client_hello("127.0.0.1");
        let record_len = u16::from_be_bytes([hello[3], hello[4]]) as usize;
        assert_eq!(hello.len(), 5 + record_len);
        let handshake_len = u32::from_be_bytes([0, hello[6], hello[7], hello[8]]) as usize;
        assert_eq!(record_len, 4 + handshake_len);
        let name_at = hello
            .windows(9)
            .position(|w| w == b"127.0.0.1")
            .expect("the name is in the hello");
        assert_eq!(
            u16::from_be_bytes([hello[name_at - 2], hello[name_at - 1]]),
            9
        );
    }

    #[test]
    fn first_records_are_told_apart() {
        assert_eq!(
            first_record(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x2f]),
            "alert record: level 2 description 47"
        );
        assert_eq!(
            first_record(&[0x16, 0x03, 0x03, 0x00, 0x40, 0x02, 0x00]),
            "handshake record: server_hello"
        );
        assert_eq!(
            first_record(b"HTTP/1.1 400"),
            "not a TLS record: HTTP/1.1 400"
        );
        assert_eq!(first_record(&[]), "no answer");
    }
}
