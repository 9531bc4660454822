//! The real nginx binary (Debian's, /usr/sbin/nginx or `HTTVPS_NGINX`) in front of a gateway,
//! with the shipped site template (deploy/nginx/templates/httvps.conf.template) rendered the
//! way the official image's envsubst does, its own prefix, ports and self-signed certificate in
//! a temporary folder, stopped on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use super::ports::free_port;

/// What stands in nginx's `upstream httvps_gateway`.
pub enum Upstream {
    /// The gateway's plain TCP listener; nginx connects from `bind` (its `proxy_bind`).
    Tcp {
        gateway: SocketAddr,
        bind: &'static str,
    },
    /// The gateway's unix socket.
    Unix(PathBuf),
}

pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    /// The TLS port on 127.0.0.1.
    pub addr: SocketAddr,
    /// SHA-256 of nginx's certificate (hex), for pinning.
    pub fingerprint: String,
}

fn binary() -> String {
    std::env::var("HTTVPS_NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".into())
}

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// `${NAME}` replaced for each pair, like envsubst with exactly these variables defined.
pub fn render(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    out
}

impl Nginx {
    pub async fn start(secret_path: &str, upstream: Upstream) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(root.join("tls.crt"), cert.cert.pem()).unwrap();
        std::fs::write(root.join("tls.key"), cert.key_pair.serialize_pem()).unwrap();
        let fingerprint = httvps_gateway::tls::fingerprint(cert.cert.der());
        let https = free_port();
        let http = free_port();
        let template =
            std::fs::read_to_string(repo_file("deploy/nginx/templates/httvps.conf.template"))
                .unwrap();
        let site = render(
            &template,
            &[
                ("HTTVPS_SECRET_PATH", secret_path.to_owned()),
                ("HTTVPS_SERVER_NAME", "localhost".into()),
                ("HTTVPS_HTTPS_PORT", format!("127.0.0.1:{https}")),
                ("HTTVPS_HTTP_PORT", format!("127.0.0.1:{http}")),
                (
                    "HTTVPS_TLS_CERT",
                    root.join("tls.crt").display().to_string(),
                ),
                ("HTTVPS_TLS_KEY", root.join("tls.key").display().to_string()),
                (
                    "HTTVPS_SITE_ROOT",
                    repo_file("deploy/nginx/site").display().to_string(),
                ),
            ],
        );
        assert!(
            !site.contains("${HTTVPS_"),
            "a template variable is left: {site}"
        );
        std::fs::write(root.join("httvps.conf"), site).unwrap();
        let (server, bind) = match &upstream {
            Upstream::Tcp { gateway, bind } => (gateway.to_string(), format!("proxy_bind {bind};")),
            Upstream::Unix(path) => (format!("unix:{}", path.display()), String::new()),
        };
        let temp_paths = super::nginx::temp_paths(&root.join("tmp"));
        let conf = format!(
            "daemon off;\nworker_processes 1;\nuser root root;\npid {pid};\n\
             error_log {log} info;\nevents {{ worker_connections 256; }}\n\
             http {{\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n\
             access_log off;\n  {temp_paths}\n  {bind}\n\
             upstream httvps_gateway {{ server {server}; }}\n  include {site};\n}}\n",
            pid = root.join("nginx.pid").display(),
            log = root.join("error.log").display(),
            site = root.join("httvps.conf").display(),
        );
        std::fs::write(root.join("nginx.conf"), conf).unwrap();
        let child = Command::new(binary())
            .args(super::nginx::prefix_args(root))
            .spawn()
            .expect("starting nginx (apt-get install nginx-light, or set HTTVPS_NGINX)");
        let mut nginx = Nginx {
            child,
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], https)),
            fingerprint,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(nginx.addr).await.is_ok() {
                return nginx;
            }
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited with {status}: {}", nginx.error_log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nginx did not listen: {}", nginx.error_log());
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM to the master (fast shutdown) so its worker goes too; a SIGKILL would orphan it.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
