//! The `httvps-gateway` binary in a child process, configured by a TOML file, flags and
//! environment, against a test control plane.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::common::cp::{Subscriber, TestCp};
use crate::common::{TestClient, PATH};

const T: Duration = Duration::from_secs(30);

/// The first lines of every test gateway's TOML file: the test's secret path and the
/// deployment's subprotocol token (the test client offers `httvps.v1`), loopback targets, and a
/// metrics listener on a free port.
pub fn base_toml() -> String {
    format!(
        "path = \"{PATH}\"\nsubprotocol = \"httvps.v1\"\nallow-private-targets = true\n\
         metrics-listen = \"127.0.0.1:0\"\n"
    )
}

/// The gateway binary in a child process; killed if the test fails.
pub struct Binary {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
    pub fingerprint: String,
    output: Arc<Mutex<Vec<String>>>,
}

impl Binary {
    /// A session of `sub` through this gateway; a refusal fails the test with its output.
    pub async fn connect(&self, sub: &Subscriber) -> TestClient {
        TestClient::try_connect_to(
            self.addr,
            &self.fingerprint,
            &sub.device.to_string(),
            sub.token.as_bytes(),
        )
        .await
        .unwrap_or_else(|e| panic!("HELLO refused: {e:?}; gateway: {}", self.output()))
    }

    /// Starts the binary with `config_file`, the control plane `cp` and `env` on top of a
    /// cleaned environment.
    pub async fn start(cp: &TestCp, config_file: &Path, env: &[(&str, String)]) -> Binary {
        let mut command = Command::new(env!("CARGO_BIN_EXE_httvps-gateway"));
        // Only what the test sets: no HTTVPS_GATEWAY_* or OTEL_* from the test run's environment.
        for (key, _) in std::env::vars() {
            if key.starts_with("HTTVPS_GATEWAY_") || key.starts_with("OTEL_") {
                command.env_remove(key);
            }
        }
        command
            .arg("--config")
            .arg(config_file)
            .args(["--listen", "127.0.0.1:0"])
            .args(["--control-plane-url", cp.url().as_str()])
            .env("HTTVPS_GATEWAY_CONTROL_PLANE_TOKEN", &cp.gateway_token)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the gateway binary starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        // Logs go to stderr or stdout; both are drained so the child never blocks on a pipe.
        let stderr = child.stderr.take().unwrap();
        let sink = output.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let connect_line = tokio::time::timeout(T, async {
            while let Ok(Some(line)) = lines.next_line().await {
                output.lock().unwrap().push(line.clone());
                if line.starts_with("connect with:") {
                    return Some(line);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no connect line; output: {:?}", output.lock().unwrap()));
        let sink = output.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        // connect with: httvps://DEVICE_ID:TOKEN@HOST:PORT/PATH?fp=FP
        let after_host = connect_line.split("@HOST:").nth(1).unwrap();
        let port: u16 = after_host.split('/').next().unwrap().parse().unwrap();
        let fingerprint = connect_line.split("fp=").nth(1).unwrap().trim().to_owned();
        Binary {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            fingerprint,
            output,
        }
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }
}
