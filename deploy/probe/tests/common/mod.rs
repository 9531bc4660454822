//! Test fixtures: a real nginx (the Debian binary) with a small site in a temporary prefix, and
//! the `httvps-gateway` binary in a child process.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use httvps_probe::run::{ProbeResult, Settings, Verdict};

#[path = "../../../../common/test-support/ports.rs"]
mod ports;
pub use ports::free_port;

#[path = "../../../../common/test-support/gateway_bin.rs"]
mod gateway_bin;
use gateway_bin::{build_gateway, gateway_command};

pub const NGINX: &str = "/usr/sbin/nginx";
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Waits until `addr` accepts connections.
pub fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + START_TIMEOUT;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The site every server block serves, the certificate, and the temp prefix.
pub struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    pub fn new() -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("www");
        for sub in ["folder", "noindex", "logs", "tmp"] {
            std::fs::create_dir_all(root.join(sub)).expect("site folders");
        }
        std::fs::create_dir_all(dir.path().join("logs")).expect("logs");
        std::fs::write(
            root.join("index.html"),
            "<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body><h1>It works</h1></body></html>\n",
        )
        .expect("index");
        std::fs::write(
            root.join("folder/index.html"),
            "<html><body>folder</body></html>\n",
        )
        .expect("folder index");
        std::fs::write(root.join("noindex/notes.txt"), "notes\n").expect("notes");
        let range: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(root.join("range.bin"), range).expect("range file");
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
        std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).expect("cert.pem");
        std::fs::write(dir.path().join("key.pem"), cert.key_pair.serialize_pem()).expect("key.pem");
        Site { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
}

/// What one server block adds to the common site configuration.
#[derive(Clone, Debug)]
pub struct Server {
    pub port: u16,
    pub tls: bool,
    /// Directives inside the server block (e.g. a proxied location).
    pub extra: String,
}

impl Server {
    pub fn tls() -> Server {
        Server {
            port: free_port(),
            tls: true,
            extra: String::new(),
        }
    }

    pub fn plain() -> Server {
        Server {
            port: free_port(),
            tls: false,
            extra: String::new(),
        }
    }

    pub fn with(mut self, extra: &str) -> Server {
        self.extra = extra.to_owned();
        self
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// A running nginx; stopped when dropped.
pub struct Nginx {
    child: Child,
}

impl Nginx {
    /// Starts nginx with the Debian package's `http` defaults and one server block per entry,
    /// all serving the same site.
    pub fn start(site: &Site, servers: &[Server]) -> Nginx {
        Nginx::start_with(site, servers, "", &[])
    }

    /// Also with `http_extra` in the `http` block (e.g. a rendered site template) and waiting for
    /// `also_listening` too.
    pub fn start_with(
        site: &Site,
        servers: &[Server],
        http_extra: &str,
        also_listening: &[SocketAddr],
    ) -> Nginx {
        let prefix = site.path();
        let mut conf = format!(
            "user root;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/logs/error.log;\n\
             events {{ worker_connections 768; }}\n\
             http {{\n\
             sendfile on;\ntcp_nopush on;\ntypes_hash_max_size 2048;\n\
             include /etc/nginx/mime.types;\ndefault_type application/octet-stream;\n\
             ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;\nssl_prefer_server_ciphers on;\n\
             access_log {p}/logs/access.log;\ngzip on;\n\
             client_body_temp_path {p}/tmp/body;\nproxy_temp_path {p}/tmp/proxy;\n\
             fastcgi_temp_path {p}/tmp/fastcgi;\nuwsgi_temp_path {p}/tmp/uwsgi;\nscgi_temp_path {p}/tmp/scgi;\n\
             ssl_certificate {p}/cert.pem;\nssl_certificate_key {p}/key.pem;\n\
             # The servers listen on random ports, a real site on 443: no port in redirects.\n\
             port_in_redirect off;\n",
            p = prefix.display()
        );
        for s in servers {
            let ssl = if s.tls { " ssl" } else { "" };
            let _ = write!(
                conf,
                "server {{\n listen 127.0.0.1:{port}{ssl};\n server_name localhost;\n \
                 root {root};\n index index.html;\n{extra}\n}}\n",
                port = s.port,
                root = site.root().display(),
                extra = s.extra,
            );
        }
        conf.push_str(http_extra);
        conf.push_str("}\n");
        std::fs::create_dir_all(prefix.join("tmp")).expect("tmp");
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("nginx.conf");
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(prefix)
            .arg("-e")
            .arg(prefix.join("logs/error.log"))
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts (the Debian package at /usr/sbin/nginx)");
        let nginx = Nginx { child };
        for s in servers {
            wait_listening(s.addr());
        }
        for addr in also_listening {
            wait_listening(*addr);
        }
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM would be nicer, but a killed master takes its worker along via the pipe.
        let _ = Command::new("kill")
            .arg("-QUIT")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gateway binary: `$HTTVPS_PROBE_GATEWAY_BIN`, or the workspace's build in the test's profile (built once
/// per test run with the cargo that runs the tests).
pub fn gateway_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("HTTVPS_PROBE_GATEWAY_BIN") {
            return PathBuf::from(bin);
        }
        build_gateway()
    })
    .clone()
}

/// Flags of the gateway binary that `--help` lists.
pub fn gateway_supports(flag: &str) -> bool {
    let out = Command::new(gateway_binary())
        .arg("--help")
        .output()
        .expect("gateway --help");
    String::from_utf8_lossy(&out.stdout).contains(flag)
}

/// The gateway binary in a child process; killed when dropped.
pub struct Gateway {
    child: Child,
    /// Its TLS listener, when it has one.
    pub tls_addr: Option<SocketAddr>,
    /// Its plain listener for a front, when it has one.
    pub plain_addr: Option<SocketAddr>,
    output: Arc<Mutex<Vec<String>>>,
}

/// Which listeners the gateway is started with (it prints a line for each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listeners {
    Tls,
    Plain,
}

impl Gateway {
    /// Starts the gateway without a control plane (a development device and direct upstream:
    /// probes never authenticate) with `args` on top (the listeners among them), and waits for
    /// the line naming the `expect`ed listener's address.
    pub fn start(secret_path: &str, args: &[String], expect: Listeners) -> Gateway {
        let mut command = gateway_command(&gateway_binary());
        command
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(["--path", secret_path])
            .args([
                "--dev-device",
                "probe-device:probe-token",
                "--dev-direct-upstream",
            ])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the gateway binary starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().map(|mut o| o.push(line)).ok();
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                sink.lock().map(|mut o| o.push(line)).ok();
            }
        });
        let mut gateway = Gateway {
            child,
            tls_addr: None,
            plain_addr: None,
            output,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                panic!(
                    "the gateway did not name its listener; output:\n{}",
                    gateway.output()
                );
            };
            // connect with: httvps://DEVICE_ID:TOKEN@HOST:PORT/PATH?fp=FP
            if let Some(rest) = line.strip_prefix("connect with:") {
                let port: u16 = rest
                    .split("@HOST:")
                    .nth(1)
                    .and_then(|rest| rest.split('/').next())
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| panic!("no port in {line:?}"));
                gateway.tls_addr = Some(SocketAddr::from(([127, 0, 0, 1], port)));
            }
            // plain listener for the front on ADDR: clients connect through the front
            if let Some(rest) = line.strip_prefix("plain listener for the front on ") {
                let addr = rest.split(": clients").next().unwrap_or_default();
                gateway.plain_addr = Some(
                    addr.parse()
                        .unwrap_or_else(|_| panic!("no address in {line:?}")),
                );
            }
            let ready = match expect {
                Listeners::Tls => gateway.tls_addr.is_some(),
                Listeners::Plain => gateway.plain_addr.is_some(),
            };
            if ready {
                return gateway;
            }
        }
    }

    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.join("\n")).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A random secret path of 128 bits.
pub fn random_secret_path() -> String {
    let bits: u128 = rand::random();
    format!("/{bits:032x}")
}

/// Whether the idle probes run (they take about 90 s).
pub fn slow() -> bool {
    std::env::var("HTTVPS_PROBE_SLOW").is_ok_and(|v| v == "1")
}

/// Probe settings against `target` and `reference`.
pub fn settings(target: SocketAddr, reference: SocketAddr, secret: Option<&str>) -> Settings {
    Settings {
        target: target.to_string(),
        reference: reference.to_string(),
        sni: Some("localhost".into()),
        host: "localhost".into(),
        secret_path: secret.map(str::to_owned),
        slow: slow(),
        settle: Duration::from_millis(1000),
        first_byte: Duration::from_millis(3000),
        idle_limit: Duration::from_secs(90),
        jobs: 8,
        only: Vec::new(),
    }
}

/// Names of the probes that differ.
pub fn different(results: &[ProbeResult]) -> Vec<&'static str> {
    results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Different { .. }))
        .map(|r| r.probe.name)
        .collect()
}
