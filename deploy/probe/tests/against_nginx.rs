//! The probe comparison against real nginx (Debian's /usr/sbin/nginx): nginx against an
//! identical server block of itself, a differently configured one, and the gateway in its
//! fronted and standalone modes. Idle probes (nginx's 60 s and 75 s timeouts) run only with
//! HTTVPS_PROBE_SLOW=1.

mod common;

use common::{different, random_secret_path, settings, Gateway, Listeners, Nginx, Server, Site};
use httvps_probe::probes::Level;
use httvps_probe::report;
use httvps_probe::run::{self, Verdict};

/// nginx against a second, identical server block of itself: every probe identical. Shows the
/// probes are deterministic and that only `Date` needs normalizing.
#[test]
fn nginx_is_identical_to_itself() {
    let site = Site::new();
    let reference = Server::tls();
    let twin = Server::tls();
    let _nginx = Nginx::start(&site, &[reference.clone(), twin.clone()]);
    let secret = random_secret_path();
    let results = run::run(&settings(twin.addr(), reference.addr(), Some(&secret))).expect("run");
    println!("{}", report::format(&results, true));
    assert!(
        different(&results).is_empty(),
        "differ: {:?}",
        different(&results)
    );
    let identical = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Identical { .. }))
        .count();
    assert!(identical >= 50, "{identical} probes identical");
}

/// A server block that differs only in `server_tokens off` is told apart by every probe that
/// gets an HTTP answer: the comparison can fail.
#[test]
fn a_different_server_is_detected() {
    let site = Site::new();
    let reference = Server::tls();
    let tokens_off = Server::tls().with(" server_tokens off;");
    let _nginx = Nginx::start(&site, &[reference.clone(), tokens_off.clone()]);
    let mut s = settings(tokens_off.addr(), reference.addr(), None);
    s.only = vec!["get-root".into(), "missing-file".into(), "obs-fold".into()];
    let results = run::run(&s).expect("run");
    println!("{}", report::format(&results, false));
    assert_eq!(
        different(&results),
        vec!["get-root", "missing-file", "obs-fold"]
    );
    let Verdict::Different { diff, .. } = &results[0].verdict else {
        unreachable!()
    };
    assert_eq!(diff.target, vec!["Server: nginx\\r\\n"]);
    assert_eq!(diff.reference, vec!["Server: nginx/1.22.1\\r\\n"]);
}

/// HTTP-level probes (every probe except the TLS-parameter ones) are byte-identical.
fn assert_http_level_identical(results: &[run::ProbeResult]) {
    println!("{}", report::format(results, true));
    let differing: Vec<&str> = results
        .iter()
        .filter(|r| r.probe.level == Level::Http && matches!(r.verdict, Verdict::Different { .. }))
        .map(|r| r.probe.name)
        .collect();
    assert!(
        differing.is_empty(),
        "HTTP-level probes that differ from nginx: {differing:?}"
    );
}

/// The site template the fronted deployment ships (deploy/nginx, branch camo-probe).
fn fronted_template() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../nginx/templates/httvps.conf.template");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the fronted deployment's nginx template, branch camo-probe)",
            path.display()
        )
    })
}

/// `--subprotocol` with a random token where the gateway takes one (per deployment, camo-gw),
/// so that the wrong-subprotocol probe is one.
fn subprotocol_args() -> Vec<String> {
    if common::gateway_supports("--subprotocol") {
        let token: u64 = rand::random();
        vec!["--subprotocol".into(), format!("p{token:016x}")]
    } else {
        Vec::new()
    }
}

/// Fronted mode: nginx with the shipped site template terminates TLS, serves the site and hands
/// only upgrades on the secret path to the gateway's plain listener (`--plain-listen`,
/// camo-probe). Compared with a plain nginx server block serving the same site.
#[test]
fn fronted_gateway_answers_like_nginx() {
    assert!(
        common::gateway_supports("--plain-listen"),
        "the gateway has no --plain-listen yet (fronted mode, branch camo-probe)"
    );
    let template = fronted_template();
    let site = Site::new();
    let secret = random_secret_path();
    let mut args: Vec<String> = vec![
        "--listen".into(),
        String::new(),
        "--plain-listen".into(),
        "127.0.0.1:0".into(),
        "--trusted-proxies".into(),
        "127.0.0.1/32".into(),
    ];
    args.extend(subprotocol_args());
    let gateway = Gateway::start(&secret, &args, Listeners::Plain);
    let plain = gateway.plain_addr.expect("plain listener");
    let reference = Server::tls();
    let front_tls = common::free_port();
    let front_http = common::free_port();
    let rendered = template
        .replace("${HTTVPS_SECRET_PATH}", &secret)
        .replace("${HTTVPS_SERVER_NAME}", "localhost")
        .replace("${HTTVPS_HTTPS_PORT}", &format!("127.0.0.1:{front_tls}"))
        .replace("${HTTVPS_HTTP_PORT}", &format!("127.0.0.1:{front_http}"))
        .replace("${HTTVPS_TLS_CERT}", &site.cert().display().to_string())
        .replace("${HTTVPS_TLS_KEY}", &site.key().display().to_string())
        .replace("${HTTVPS_SITE_ROOT}", &site.root().display().to_string());
    assert!(
        !rendered.contains("${HTTVPS_"),
        "a template variable is left:\n{rendered}"
    );
    let http_extra = format!("upstream httvps_gateway {{ server {plain}; }}\n{rendered}");
    let front = std::net::SocketAddr::from(([127, 0, 0, 1], front_tls));
    let _nginx = Nginx::start_with(
        &site,
        std::slice::from_ref(&reference),
        &http_extra,
        &[front],
    );
    let results = run::run(&settings(front, reference.addr(), Some(&secret))).expect("run");
    assert_http_level_identical(&results);
    drop(gateway);
}

/// Standalone mode: the gateway terminates TLS and relays everything that is not a valid
/// upgrade on the secret path to nginx (`--fallback tls://` to its TLS port, as
/// docs/operations.md recommends, so nginx's way of closing is mirrored; `--fallback-raw` for
/// plain HTTP on the TLS port to the same TLS port). Compared with nginx's TLS server.
#[test]
fn standalone_gateway_with_fallback_answers_like_nginx() {
    assert!(
        common::gateway_supports("--fallback-raw"),
        "the gateway has no --fallback/--fallback-raw yet (standalone mode, branch camo-gw)"
    );
    let site = Site::new();
    let secret = random_secret_path();
    // As docs/operations.md's standalone set-up says: the fallback listens on another port
    // than the one clients connect to, so absolute redirects would name that port; the site
    // (and so the reference) uses relative ones.
    let relative = " absolute_redirect off;";
    let reference = Server::tls().with(relative);
    let fallback_tls = Server::tls().with(relative);
    let _nginx = Nginx::start(&site, &[reference.clone(), fallback_tls.clone()]);
    let mut args: Vec<String> = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--tls-cert".into(),
        site.cert().display().to_string(),
        "--tls-key".into(),
        site.key().display().to_string(),
        "--fallback".into(),
        format!("tls://{}", fallback_tls.addr()),
        "--fallback-raw".into(),
        fallback_tls.addr().to_string(),
    ];
    args.extend(subprotocol_args());
    let gateway = Gateway::start(&secret, &args, Listeners::Tls);
    let target = gateway.tls_addr.expect("TLS listener");
    let results = run::run(&settings(target, reference.addr(), Some(&secret))).expect("run");
    assert_http_level_identical(&results);
}

/// The program: exit 0 and a summary line when everything is identical, 1 and a diff when a
/// probe differs, 2 on a usage error.
#[test]
fn the_program_reports_and_exits_by_verdict() {
    let site = Site::new();
    let reference = Server::tls();
    let twin = Server::tls();
    let tokens_off = Server::tls().with(" server_tokens off;");
    let _nginx = Nginx::start(
        &site,
        &[reference.clone(), twin.clone(), tokens_off.clone()],
    );
    let probe = |target: std::net::SocketAddr, extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_httvps-probe"))
            .args(["--target", &target.to_string()])
            .args(["--reference", &reference.addr().to_string()])
            .args(["--only", "get-root", "--only", "if-none-match"])
            .args(extra)
            .output()
            .expect("httvps-probe runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = probe(twin.addr(), &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("identical  get-root\n"), "{out}");
    assert!(
        out.ends_with("summary: 2 identical, 0 different, 0 skipped of 2 probes\n"),
        "{out}"
    );

    let (code, out) = probe(tokens_off.addr(), &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("different  get-root\n           at line 2:\n"),
        "{out}"
    );
    assert!(out.contains("target    | Server: nginx\\r\\n\n"), "{out}");

    let (code, _) = probe(twin.addr(), &["--secret-path", "no-slash"]);
    assert_eq!(code, Some(2));
}
