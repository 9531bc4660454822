//! The `httvps-gateway` binary for integration tests of other packages (Cargo gives them no path
//! to it), which include this file by path
//! (`#[path = ".../common/test-support/gateway_bin.rs"] mod gateway_bin;`): plain std.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `httvps-gateway` with the cargo that runs the tests, in the test's own profile, and
/// returns its path: `target/<profile>/httvps-gateway`, next to the test's `deps/`.
pub fn build_gateway() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_owned();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "--quiet",
            "-p",
            "httvps-gateway",
            "--bin",
            "httvps-gateway",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "cargo build -p httvps-gateway failed");
    let binary = profile_dir.join("httvps-gateway");
    assert!(binary.exists(), "{} after cargo build", binary.display());
    binary
}

/// `httvps-gateway` as a child process, without the `HTTVPS_GATEWAY_*` and `OTEL_*` settings of
/// the test's own environment (the test gives the gateway all of its settings).
pub fn gateway_command(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    for (key, _) in std::env::vars() {
        if key.starts_with("HTTVPS_GATEWAY_") || key.starts_with("OTEL_") {
            command.env_remove(key);
        }
    }
    command
}
