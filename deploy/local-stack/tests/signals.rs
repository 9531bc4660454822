//! The `httvps-local-stack` binary as `scripts/up.sh` runs it: it stops gracefully on SIGTERM as
//! on Ctrl-C (SIGINT), and the admin command it prints is a release build, not a debug
//! `cargo run`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// Starts the binary on free ports, reads its banner, sends `signal`, and returns everything it
/// printed with its exit status.
fn run_until(signal: &str) -> (String, std::process::ExitStatus) {
    let dir = std::env::temp_dir().join(format!(
        "httvps-local-stack-{}-{signal}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_httvps-local-stack"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["--control-plane", "127.0.0.1:0", "--gateway", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the local stack starts");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut output = Vec::new();
    loop {
        let line = rx.recv_timeout(T).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("no banner; output: {output:?}")
        });
        let last = line.contains("stops everything");
        output.push(line);
        if last {
            break;
        }
    }
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    // Whatever it prints while stopping, until it exits (the pipe closes).
    while let Ok(line) = rx.recv_timeout(T) {
        output.push(line);
    }
    let status = child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (output.join("\n"), status)
}

#[test]
fn sigterm_stops_the_stack_gracefully_like_sigint() {
    for signal in ["INT", "TERM"] {
        let (output, status) = run_until(signal);
        assert!(
            status.success(),
            "SIG{signal}: exits 0 after stopping, not killed by the signal: {status:?}\n{output}"
        );
        assert!(
            output.lines().any(|l| l == "stopping"),
            "SIG{signal}: the stack stops its parts (gateway drain, control plane):\n{output}"
        );
    }
}

#[test]
fn the_printed_admin_command_is_a_release_build() {
    let (output, _) = run_until("TERM");
    let admin = output
        .lines()
        .find(|l| l.contains("admin create"))
        .unwrap_or_else(|| panic!("no admin command:\n{output}"));
    assert!(
        !admin.contains("cargo run -p"),
        "not a debug build: {admin}"
    );
    assert!(
        admin.contains("cargo run --release -p httvps-control-plane")
            || admin.trim_start().starts_with('/'),
        "the release build's command or the built binary: {admin}"
    );
}
