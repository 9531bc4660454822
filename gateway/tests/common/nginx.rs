//! A real nginx (the Debian package's binary) in a temporary prefix: one server block with a
//! small static site, listening on a plain-HTTP port (the gateway's fallback) and a TLS port
//! (the reference a prober would compare with, and the target of plain HTTP sent to the
//! gateway's TLS port).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use super::ports::free_port;

pub const NGINX: &str = "/usr/sbin/nginx";

pub struct Nginx {
    _dir: tempfile::TempDir,
    child: Child,
    /// The plain-HTTP listener.
    pub http: SocketAddr,
    /// The TLS listener of the same server block.
    pub tls: SocketAddr,
    /// SHA-256 of its certificate (for pinning).
    pub fingerprint: String,
}

/// nginx's command line for a server living in `prefix`: its `nginx.conf` and `error.log` there.
pub fn prefix_args(prefix: &Path) -> [std::ffi::OsString; 6] {
    [
        "-p".into(),
        prefix.into(),
        "-c".into(),
        prefix.join("nginx.conf").into(),
        "-e".into(),
        prefix.join("error.log").into(),
    ]
}

/// The `http` block's directives that keep nginx's temporary files in `tmp`.
pub fn temp_paths(tmp: &Path) -> String {
    let t = tmp.display();
    format!(
        "client_body_temp_path {t}/body;\n  proxy_temp_path {t}/proxy;\n  \
         fastcgi_temp_path {t}/fastcgi;\n  uwsgi_temp_path {t}/uwsgi;\n  scgi_temp_path {t}/scgi;"
    )
}

fn write_site(root: &Path) {
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(
        root.join("index.html"),
        "<!doctype html>\n<html><head><title>Mountain Bakery</title></head>\n\
         <body><h1>Fresh bread every morning</h1><p>Open 7-19.</p></body></html>\n",
    )
    .unwrap();
    std::fs::write(
        root.join("docs/index.html"),
        "<html><body><h1>Price list</h1></body></html>\n",
    )
    .unwrap();
    std::fs::write(root.join("robots.txt"), "User-agent: *\nDisallow:\n").unwrap();
}

impl Nginx {
    pub async fn start() -> Nginx {
        Self::start_with("").await
    }

    /// With extra directives in the `http` block (e.g. short timeouts).
    pub async fn start_with(http_directives: &str) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_site(&d.join("site"));
        std::fs::create_dir_all(d.join("tmp")).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(d.join("cert.pem"), cert.cert.pem()).unwrap();
        std::fs::write(d.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
        let fingerprint = httvps_gateway::tls::fingerprint(cert.cert.der());
        let (http, tls) = (free_port(), free_port());
        let p = d.display();
        let temp_paths = temp_paths(&d.join("tmp"));
        // absolute_redirect off: the fallback listener is plain HTTP on another port, so an
        // absolute Location would name the wrong scheme and port (docs/operations.md).
        let conf = format!(
            "worker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  include /etc/nginx/mime.types;\n\
               default_type application/octet-stream;\n\
               {temp_paths}\n\
               {http_directives}\n\
               ssl_protocols TLSv1.2 TLSv1.3;\n  ssl_prefer_server_ciphers on;\n\
               server {{\n    listen 127.0.0.1:{http};\n    listen 127.0.0.1:{tls} ssl;\n\
                 server_name localhost;\n    ssl_certificate {p}/cert.pem;\n\
                 ssl_certificate_key {p}/key.pem;\n    absolute_redirect off;\n\
                 root {p}/site;\n  }}\n}}\n"
        );
        std::fs::write(d.join("nginx.conf"), conf).unwrap();
        let child = Command::new(NGINX)
            .args(prefix_args(d))
            .arg("-g")
            .arg("daemon off;")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting /usr/sbin/nginx");
        let http: SocketAddr = ([127, 0, 0, 1], http).into();
        let tls: SocketAddr = ([127, 0, 0, 1], tls).into();
        for _ in 0..100 {
            if TcpStream::connect(http).await.is_ok() && TcpStream::connect(tls).await.is_ok() {
                return Nginx {
                    _dir: dir,
                    child,
                    http,
                    tls,
                    fingerprint,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(d.join("error.log")).unwrap_or_default();
        panic!("nginx did not start: {log}");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM to the master (fast shutdown): it stops its worker and exits once the worker
        // is gone. A SIGKILL to the master would leave the worker running (parent 1).
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.start_kill();
    }
}
