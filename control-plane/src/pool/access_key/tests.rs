use super::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

fn outline_key(userinfo_plain: &str, rest: &str) -> String {
    format!("ss://{}@{rest}", URL_SAFE_NO_PAD.encode(userinfo_plain))
}

fn key_2022(len: usize) -> String {
    STANDARD.encode(vec![7u8; len])
}

#[test]
fn parses_outline_key_without_padding() {
    let key = outline_key(
        "chacha20-ietf-poly1305:s3cr3t!",
        "203.0.113.7:12345/?outline=1#Frankfurt%201",
    );
    let parsed = parse_access_key(&key).unwrap();
    assert_eq!(parsed.endpoint.host, "203.0.113.7");
    assert_eq!(parsed.endpoint.port, 12345);
    assert_eq!(parsed.endpoint.cipher, "chacha20-ietf-poly1305");
    assert_eq!(parsed.endpoint.secret, "s3cr3t!");
    assert_eq!(parsed.name.as_deref(), Some("Frankfurt 1"));
}

#[test]
fn parses_outline_key_with_padding_and_standard_alphabet() {
    // 'aes-128-gcm:ab' encodes with one '=' of padding.
    let padded = format!(
        "ss://{}@example.com:443/?outline=1",
        URL_SAFE.encode("aes-128-gcm:ab")
    );
    assert!(padded.contains('='));
    let parsed = parse_access_key(&padded).unwrap();
    assert_eq!(parsed.endpoint.cipher, "aes-128-gcm");
    assert_eq!(parsed.endpoint.secret, "ab");
    assert_eq!(parsed.name, None);

    // Percent-encoded padding, as some encoders emit.
    let pct = padded.replace('=', "%3D");
    assert_eq!(parse_access_key(&pct).unwrap(), parsed);

    // Standard alphabet ('+' instead of '-'), as some panels emit.
    let secret = "!!>>";
    let encoded = STANDARD.encode(format!("aes-256-gcm:{secret}"));
    assert!(encoded.contains('+'));
    let std_key = format!("ss://{encoded}@example.com:443");
    let parsed = parse_access_key(&std_key).unwrap();
    assert_eq!(parsed.endpoint.secret, secret);
}

#[test]
fn parses_sip002_plain_userinfo_and_ipv6() {
    let key = "ss://aes-256-gcm:p%40ss%3Aword@[2001:db8::1]:8388#home";
    let parsed = parse_access_key(key).unwrap();
    assert_eq!(parsed.endpoint.host, "2001:db8::1");
    assert_eq!(parsed.endpoint.port, 8388);
    assert_eq!(parsed.endpoint.secret, "p@ss:word");
    assert_eq!(parsed.name.as_deref(), Some("home"));
}

#[test]
fn parses_legacy_whole_base64_key() {
    let key = format!(
        "ss://{}#old",
        STANDARD.encode("chacha20-ietf-poly1305:pw@node.example.net:8000")
    );
    let parsed = parse_access_key(&key).unwrap();
    assert_eq!(parsed.endpoint.host, "node.example.net");
    assert_eq!(parsed.endpoint.port, 8000);
    assert_eq!(parsed.endpoint.secret, "pw");
    assert_eq!(parsed.name.as_deref(), Some("old"));
}

#[test]
fn uppercase_cipher_and_domain_are_normalised() {
    let key = outline_key("AES-256-GCM:pw", "Node.Example.COM:443");
    let parsed = parse_access_key(&key).unwrap();
    assert_eq!(parsed.endpoint.cipher, "aes-256-gcm");
    assert_eq!(parsed.endpoint.host, "node.example.com");
}

#[test]
fn parses_2022_key_of_right_length() {
    let key = outline_key(
        &format!("2022-blake3-aes-256-gcm:{}", key_2022(32)),
        "10.0.0.1:9000",
    );
    let parsed = parse_access_key(&key).unwrap();
    assert_eq!(parsed.endpoint.cipher, "2022-blake3-aes-256-gcm");
}

#[test]
fn round_trip_through_outline_key() {
    let endpoints = [
        NodeEndpoint::new(
            "198.51.100.2",
            443,
            "chacha20-ietf-poly1305",
            "p@ss w:rd/+=",
        )
        .unwrap(),
        NodeEndpoint::new("2001:db8::2", 8443, "aes-128-gcm", "x").unwrap(),
        NodeEndpoint::new(
            "pool-1.example.org",
            1,
            "2022-blake3-aes-128-gcm",
            &key_2022(16),
        )
        .unwrap(),
    ];
    for endpoint in endpoints {
        let key = endpoint.to_access_key(Some("Pool node #1 / ü"));
        assert!(key.starts_with("ss://"));
        assert!(key.contains("/?outline=1#"));
        let parsed = parse_access_key(&key).unwrap();
        assert_eq!(parsed.endpoint, endpoint);
        assert_eq!(parsed.name.as_deref(), Some("Pool node #1 / ü"));

        let plain = parse_access_key(&endpoint.to_sip002_plain()).unwrap();
        assert_eq!(plain.endpoint, endpoint);

        // shadowsocks-rust itself reads the generated key the same way.
        let ss = ServerConfig::from_url(&key).unwrap();
        assert_eq!(ss.method().to_string(), endpoint.cipher);
        assert_eq!(ss.password(), endpoint.secret);
    }
    let unnamed = NodeEndpoint::new("1.2.3.4", 80, "aes-256-gcm", "k").unwrap();
    assert!(!unnamed.to_access_key(None).contains('#'));
}

#[test]
fn debug_never_prints_the_secret() {
    let endpoint = NodeEndpoint::new("1.2.3.4", 80, "aes-256-gcm", "TOPSECRET").unwrap();
    let parsed = AccessKey {
        endpoint: endpoint.clone(),
        name: None,
    };
    for text in [
        format!("{endpoint:?}"),
        format!("{endpoint:#?}"),
        format!("{parsed:?}"),
    ] {
        assert!(!text.contains("TOPSECRET"), "{text}");
        assert!(text.contains("redacted"));
    }
}

#[test]
fn refuses_non_ss_urls() {
    for key in ["", "http://example.com", "vmess://abc", "ss:/x", "ss:"] {
        assert_eq!(
            parse_access_key(key),
            Err(AccessKeyError::NotShadowsocksUrl),
            "{key}"
        );
    }
}

#[test]
fn refuses_bad_base64() {
    let key = "ss://!!!notbase64***@1.2.3.4:443";
    assert_eq!(parse_access_key(key), Err(AccessKeyError::BadBase64));
    let legacy = "ss://%%%%#x";
    assert_eq!(parse_access_key(legacy), Err(AccessKeyError::BadBase64));
}

#[test]
fn refuses_credentials_without_method_separator() {
    let key = outline_key("justapassword", "1.2.3.4:443");
    assert_eq!(
        parse_access_key(&key),
        Err(AccessKeyError::MissingCredentials)
    );
}

#[test]
fn refuses_missing_port() {
    let key = outline_key("aes-256-gcm:pw", "1.2.3.4/?outline=1");
    assert_eq!(parse_access_key(&key), Err(AccessKeyError::MissingPort));
    let key = outline_key("aes-256-gcm:pw", "example.com");
    assert_eq!(parse_access_key(&key), Err(AccessKeyError::MissingPort));
    let legacy = format!("ss://{}", STANDARD.encode("aes-256-gcm:pw@example.com"));
    assert_eq!(parse_access_key(&legacy), Err(AccessKeyError::MissingPort));
}

#[test]
fn refuses_port_zero() {
    let key = outline_key("aes-256-gcm:pw", "1.2.3.4:0");
    assert_eq!(
        parse_access_key(&key),
        Err(AccessKeyError::Endpoint(EndpointError::ZeroPort))
    );
    assert_eq!(
        NodeEndpoint::new("1.2.3.4", 0, "aes-256-gcm", "pw"),
        Err(EndpointError::ZeroPort)
    );
}

#[test]
fn refuses_out_of_range_port() {
    let key = outline_key("aes-256-gcm:pw", "1.2.3.4:70000");
    assert!(matches!(
        parse_access_key(&key),
        Err(AccessKeyError::MalformedUrl(_))
    ));
}

#[test]
fn refuses_bad_hosts() {
    for host in [
        "300.1.1.1",
        "1.2.3",
        "bad_-.",
        "-lead.example",
        "exa mple.com",
        "a..b",
        "%41.com",
    ] {
        let key = outline_key("aes-256-gcm:pw", &format!("{host}:443"));
        let result = parse_access_key(&key);
        assert!(
            matches!(
                result,
                Err(AccessKeyError::Endpoint(EndpointError::BadHost(_)))
                    | Err(AccessKeyError::MalformedUrl(_))
            ),
            "{host}: {result:?}"
        );
    }
    for host in [
        "300.1.1.1",
        "1.2.3",
        "-x.com",
        "x-.com",
        "",
        "[1.2.3.4]",
        &"a".repeat(64),
    ] {
        assert!(
            matches!(normalize_host(host), Err(EndpointError::BadHost(_))),
            "{host}"
        );
    }
    assert_eq!(normalize_host("[::1]").unwrap(), "::1");
    assert_eq!(
        normalize_host("ss_node.internal").unwrap(),
        "ss_node.internal"
    );
    assert_eq!(normalize_host("example.com.").unwrap(), "example.com");
}

#[test]
fn refuses_aes_192_gcm_with_outline_hint() {
    let key = outline_key("aes-192-gcm:pw", "1.2.3.4:443/?outline=1");
    let err = parse_access_key(&key).unwrap_err();
    assert_eq!(err, AccessKeyError::from(CipherError::Aes192GcmUnsupported));
    let text = err.to_string();
    assert!(
        text.contains("aes-192-gcm is not supported by shadowsocks-rust"),
        "{text}"
    );
    assert!(
        text.contains("chacha20-ietf-poly1305 or aes-256-gcm"),
        "{text}"
    );
}

#[test]
fn refuses_stream_ciphers_as_insecure() {
    for cipher in [
        "aes-256-cfb",
        "rc4-md5",
        "chacha20-ietf",
        "aes-128-ctr",
        "none",
        "camellia-256-cfb",
    ] {
        let key = outline_key(&format!("{cipher}:pw"), "1.2.3.4:443");
        assert!(
            matches!(
                parse_access_key(&key),
                Err(AccessKeyError::Endpoint(EndpointError::Cipher(
                    CipherError::Insecure(_)
                )))
            ),
            "{cipher}"
        );
    }
}

#[test]
fn refuses_unknown_cipher() {
    let key = outline_key("rot13-gcm:pw", "1.2.3.4:443");
    let err = parse_access_key(&key).unwrap_err();
    assert!(matches!(
        err,
        AccessKeyError::Endpoint(EndpointError::Cipher(CipherError::Unknown { .. }))
    ));
    assert!(err.to_string().contains("chacha20-ietf-poly1305"));
}

#[test]
fn refuses_2022_key_of_wrong_length_or_encoding() {
    let key = outline_key(
        &format!("2022-blake3-aes-256-gcm:{}", key_2022(16)),
        "1.2.3.4:443",
    );
    assert_eq!(
        parse_access_key(&key),
        Err(AccessKeyError::Endpoint(EndpointError::KeyLength {
            cipher: "2022-blake3-aes-256-gcm".into(),
            expected: 32,
            found: 16,
        }))
    );
    let err = NodeEndpoint::new("1.2.3.4", 1, "2022-blake3-chacha20-poly1305", "not base64!")
        .unwrap_err();
    assert!(matches!(err, EndpointError::KeyEncoding { .. }));
    assert!(!err.to_string().contains("not base64!"));
}

#[test]
fn refuses_empty_secret_and_plugins() {
    let key = outline_key("aes-256-gcm:", "1.2.3.4:443");
    assert_eq!(
        parse_access_key(&key),
        Err(AccessKeyError::Endpoint(EndpointError::EmptySecret))
    );
    let key = outline_key(
        "aes-256-gcm:pw",
        "1.2.3.4:443/?plugin=obfs-local%3Bobfs%3Dhttp",
    );
    assert_eq!(
        parse_access_key(&key),
        Err(AccessKeyError::PluginUnsupported)
    );
}

#[test]
fn cipher_helpers_agree_with_shadowsocks() {
    for name in supported_ciphers() {
        assert_eq!(validate_cipher(name), Ok(*name));
        let kind = cipher_kind(name).unwrap();
        assert!(kind.is_aead() || kind.is_aead_2022(), "{name}");
        assert_eq!(kind.to_string(), *name);
    }
    assert_eq!(
        validate_cipher(" ChaCha20-IETF-Poly1305 "),
        Ok("chacha20-ietf-poly1305")
    );
    assert_eq!(
        validate_cipher("aes-192-gcm"),
        Err(CipherError::Aes192GcmUnsupported)
    );
    assert!(matches!(
        validate_cipher("aes-128-cfb"),
        Err(CipherError::Insecure(_))
    ));
    assert!(matches!(
        validate_cipher("xchacha20-ietf-poly1305"),
        Err(CipherError::Unknown { .. })
    ));
}
