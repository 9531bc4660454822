use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::*;

#[test]
fn durations_parse_with_units() {
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
    assert!(parse_duration("ten").is_err());
    assert!(parse_duration("1d").is_err());
}

#[test]
fn absurd_durations_are_refused_not_overflowed() {
    assert!(parse_duration(&format!("{}h", u64::MAX)).is_err());
    assert_eq!(
        parse_duration(&format!("{}s", u64::MAX)),
        Ok(Duration::from_secs(u64::MAX))
    );
}

#[test]
fn an_empty_metrics_listen_disables_the_listener() {
    let default = GatewayConfig::load_from(["gw"]).unwrap();
    assert!(default.metrics_listen.is_some());
    let off = GatewayConfig::try_parse_from(["gw", "--metrics-listen", ""]).unwrap();
    assert_eq!(off.metrics_listen, None);
    let set = GatewayConfig::try_parse_from(["gw", "--metrics-listen", "127.0.0.1:9999"]);
    assert_eq!(
        set.unwrap().metrics_listen,
        Some("127.0.0.1:9999".parse().unwrap())
    );
    assert!(GatewayConfig::try_parse_from(["gw", "--metrics-listen", "nonsense"]).is_err());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, "metrics_listen = \"\"\n").unwrap();
    let from_file = GatewayConfig::load_from(["gw", "--config", path.to_str().unwrap()]);
    assert_eq!(from_file.unwrap().metrics_listen, None);
}

#[test]
fn acme_settings_from_file_and_flags() {
    let off = GatewayConfig::load_from(["gw"]).unwrap();
    if std::env::var("HTTVPS_GATEWAY_ACME_DOMAIN").is_err() {
        assert!(off.acme().is_none(), "ACME is off without a domain");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(
        &path,
        "acme-domain = [\"vpn.example.org\", \"www.example.org\"]\n\
         acme_contact = \"mailto:ops@example.org\"\nacme_cache_dir = \"/srv/acme\"\n",
    )
    .unwrap();
    let config = GatewayConfig::load_from(["gw", "--config", path.to_str().unwrap()]).unwrap();
    let acme = config.acme().unwrap();
    assert_eq!(acme.domains, ["vpn.example.org", "www.example.org"]);
    assert_eq!(acme.contact, ["mailto:ops@example.org"]);
    assert_eq!(acme.cache_dir, PathBuf::from("/srv/acme"));
    assert_eq!(acme.directory, crate::tls::acme::LETS_ENCRYPT_DIRECTORY);
    assert!(acme.directory_ca.is_none());
    let both = GatewayConfig::try_parse_from([
        "gw",
        "--acme-domain",
        "vpn.example.org",
        "--tls-cert",
        "c.pem",
        "--tls-key",
        "k.pem",
    ]);
    assert!(both.is_err(), "ACME conflicts with certificate files");
}

#[test]
fn file_values_apply_below_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(
        &path,
        "max-streams = 77\nidle_timeout = \"3s\"\nallow-private-targets = true\n\
         node = [\"ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNTpwYXNz@127.0.0.1:8388#a\"]\n\
         control_plane_token = \"from-file\"\nusage_report_interval = \"2s\"\n",
    )
    .unwrap();
    let config = GatewayConfig::load_from([
        "gw",
        "--config",
        path.to_str().unwrap(),
        "--max-streams",
        "5",
    ])
    .unwrap();
    assert_eq!(config.max_streams, 5, "the flag wins");
    assert_eq!(config.idle_timeout, Duration::from_secs(3));
    assert_eq!(config.usage_report_interval, Duration::from_secs(2));
    assert!(config.allow_private_targets);
    assert_eq!(config.nodes.len(), 1);
    if std::env::var(TOKEN_ENV).is_err() {
        assert_eq!(config.control_plane_token.unwrap().expose(), "from-file");
    }
    std::fs::write(&path, "no_such_setting = 1\n").unwrap();
    assert!(GatewayConfig::load_from(["gw", "--config", path.to_str().unwrap()]).is_err());
}

#[test]
fn the_direct_upstream_is_off_by_default_and_refused_with_a_control_plane() {
    let config = GatewayConfig::default();
    assert!(!config.dev_direct_upstream, "off by default");
    assert!(!config.dev_allow_direct_with_control_plane);
    let parsed = GatewayConfig::load_from(["gw"]).unwrap();
    if std::env::var("HTTVPS_GATEWAY_DEV_DIRECT_UPSTREAM").is_err() {
        assert!(!parsed.dev_direct_upstream, "off without the flag");
    }
    let direct =
        GatewayConfig::load_from(["gw", "--path", STRONG_PATH, "--dev-direct-upstream"]).unwrap();
    assert!(direct.dev_direct_upstream);
    direct.validate().unwrap();
    let with_cp = GatewayConfig::load_from([
        "gw",
        "--path",
        STRONG_PATH,
        "--dev-direct-upstream",
        "--control-plane-url",
        "http://127.0.0.1:8080/",
    ])
    .unwrap();
    let err = with_cp.validate().unwrap_err().to_string();
    assert!(err.contains("--dev-direct-upstream"), "{err}");
    let allowed = GatewayConfig::load_from([
        "gw",
        "--path",
        STRONG_PATH,
        "--dev-direct-upstream",
        "--dev-allow-direct-with-control-plane",
        "--control-plane-url",
        "http://127.0.0.1:8080/",
    ])
    .unwrap();
    allowed.validate().unwrap();
}

/// A path that passes the strength rules.
const STRONG_PATH: &str = "/Zq3vN8xL2pR7tW1yB5cD9fG4";

fn valid_config() -> GatewayConfig {
    GatewayConfig {
        path: STRONG_PATH.into(),
        ..GatewayConfig::default()
    }
}

#[test]
fn listeners_and_the_secret_path() {
    let config = GatewayConfig::default();
    assert_eq!(config.listen, "0.0.0.0:8443".parse().unwrap());
    assert_eq!(config.plain_listen, ListenAddr::Off);
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("--path") && err.contains("required"), "{err}");
    let weak = GatewayConfig::load_from(["gw", "--path", "/httvps"]).unwrap();
    assert!(weak
        .validate()
        .unwrap_err()
        .to_string()
        .contains("well-known"));
    GatewayConfig::load_from(["gw", "--path", "/httvps", "--dev-allow-weak-path"])
        .unwrap()
        .validate()
        .unwrap();
    let fronted = GatewayConfig::load_from([
        "gw",
        "--path",
        STRONG_PATH,
        "--listen",
        "",
        "--plain-listen",
        "unix:/run/httvps/gw.sock",
        "--proxy-protocol",
        "--trusted-proxies",
        "10.0.0.0/8,192.0.2.7",
    ])
    .unwrap();
    assert_eq!(fronted.listen, ListenAddr::Off);
    assert_eq!(
        fronted.plain_listen,
        ListenAddr::Unix("/run/httvps/gw.sock".into())
    );
    assert_eq!(fronted.trusted_proxies.len(), 2);
    fronted.validate().unwrap();
    let none = GatewayConfig {
        listen: ListenAddr::Off,
        ..valid_config()
    };
    assert!(none
        .validate()
        .unwrap_err()
        .to_string()
        .contains("no listener"));
    let proxy_without_plain = GatewayConfig {
        proxy_protocol: true,
        ..valid_config()
    };
    assert!(proxy_without_plain.validate().is_err());
    // (load_from exits on a malformed flag, like any clap program.)
    assert!(GatewayConfig::try_parse_from(["gw", "--trusted-proxies", "10.0.0.0/33"]).is_err());
    assert!(GatewayConfig::try_parse_from(["gw", "--plain-listen", "localhost"]).is_err());
}

#[test]
fn prewarm_is_bounded() {
    let mut config = valid_config();
    assert_eq!(config.node_prewarm, 2);
    config.node_prewarm = 65;
    assert!(config.validate().is_err());
    config.node_prewarm = 0;
    config.node_prewarm_idle_timeout = Duration::ZERO;
    config.validate().unwrap();
}

#[test]
fn fallback_addresses_and_removed_settings() {
    assert_eq!(
        "127.0.0.1:8080".parse::<FallbackAddr>(),
        Ok(FallbackAddr::Tcp("127.0.0.1:8080".into()))
    );
    assert_eq!(
        "unix:/run/site.sock".parse::<FallbackAddr>(),
        Ok(FallbackAddr::Unix("/run/site.sock".into()))
    );
    assert_eq!(
        "tls://127.0.0.1:8443".parse::<FallbackAddr>(),
        Ok(FallbackAddr::Tls("127.0.0.1:8443".into()))
    );
    assert_eq!(
        FallbackAddr::Tls("127.0.0.1:8443".into()).to_string(),
        "tls://127.0.0.1:8443"
    );
    for bad in [
        "nginx",
        "nginx:http",
        ":80",
        "unix:",
        "tls://",
        "tls://nginx",
    ] {
        assert!(bad.parse::<FallbackAddr>().is_err(), "{bad}");
    }
    let flags = GatewayConfig::load_from([
        "gw",
        "--fallback",
        "unix:/run/site.sock",
        "--fallback-raw",
        "127.0.0.1:8444",
        "--subprotocol",
        "x7.v1",
        "--client-header-timeout",
        "30s",
    ])
    .unwrap();
    assert_eq!(
        flags.fallback,
        Some(FallbackAddr::Unix("/run/site.sock".into()))
    );
    assert_eq!(
        flags.fallback_raw,
        Some(FallbackAddr::Tcp("127.0.0.1:8444".into()))
    );
    assert_eq!(flags.subprotocol.as_deref(), Some("x7.v1"));
    assert_eq!(flags.client_header_timeout, Duration::from_secs(30));
    let mut config = GatewayConfig {
        decoy_dir: Some("/srv/site".into()),
        ..valid_config()
    };
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("--fallback"), "{err}");
    config.decoy_dir = None;
    config.subprotocol = Some("bad token".into());
    assert!(config.validate().is_err());
    config.subprotocol = Some("x7.v1".into());
    config.validate().unwrap();
    config.fallback_raw = Some(FallbackAddr::Tls("127.0.0.1:8443".into()));
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("--fallback-raw"), "{err}");
    config.fallback_raw = None;
    config.validate().unwrap();
}

#[test]
fn nginx_timeouts_are_the_defaults() {
    let config = GatewayConfig::default();
    assert_eq!(config.tls_handshake_timeout, Duration::from_secs(60));
    assert_eq!(config.client_header_timeout, Duration::from_secs(60));
    assert_eq!(config.keepalive_timeout, Duration::from_secs(75));
    assert_eq!(config.client_body_timeout, Duration::from_secs(60));
    assert_eq!(
        config.handshake_timeout,
        Duration::from_secs(10),
        "HELLO stays apart"
    );
}

#[test]
fn defaults_with_a_path_are_valid() {
    let config = valid_config();
    config.validate().unwrap();
    assert_eq!(config.max_message_size(), 6 + 32_768);
}
