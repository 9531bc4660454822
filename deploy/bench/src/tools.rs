//! The programs the benchmark drives: the comparison tools (shadowsocks-rust's `ssserver` and
//! `sslocal`, `wstunnel`), installed with `cargo install` into a cache directory when missing,
//! and httvps's own release binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// shadowsocks-rust from crates.io (the pool node of every path, and Shadowsocks alone).
pub const SHADOWSOCKS_VERSION: &str = "1.25.0";
/// wstunnel is not published on crates.io: it is built from its repository at this tag.
pub const WSTUNNEL_TAG: &str = "v10.6.2";
const WSTUNNEL_GIT: &str = "https://github.com/erebe/wstunnel";

/// Paths of the comparison tools; `None` when absent (quick mode does not install).
#[derive(Debug, Default)]
pub struct Tools {
    pub ssserver: Option<PathBuf>,
    pub sslocal: Option<PathBuf>,
    pub wstunnel: Option<PathBuf>,
}

/// httvps's binaries.
#[derive(Debug)]
pub struct HttvpsBins {
    pub gateway: PathBuf,
    pub client: PathBuf,
}

/// `dir/bin/name` if present, else `name` on `PATH`.
fn find(name: &str, dir: &Path) -> Option<PathBuf> {
    let cached = dir.join("bin").join(name);
    if cached.is_file() {
        return Some(cached);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|p| p.join(name))
        .find(|p| p.is_file())
}

impl Tools {
    /// Looks the tools up in `dir/bin`, then on `PATH`.
    pub fn find(dir: &Path) -> Tools {
        Tools {
            ssserver: find("ssserver", dir),
            sslocal: find("sslocal", dir),
            wstunnel: find("wstunnel", dir),
        }
    }

    /// Installs what is missing into `dir` (full mode); any failure is an error. wstunnel comes
    /// from `wstunnel_src` (a checkout) when given, else from its git repository.
    pub fn install_missing(dir: &Path, wstunnel_src: Option<&Path>) -> anyhow::Result<Tools> {
        let found = Tools::find(dir);
        if found.ssserver.is_none() || found.sslocal.is_none() {
            cargo_install(
                dir,
                &[
                    "shadowsocks-rust",
                    "--version",
                    SHADOWSOCKS_VERSION,
                    "--bin",
                    "ssserver",
                    "--bin",
                    "sslocal",
                ],
                None,
            )
            .context("installing shadowsocks-rust (ssserver, sslocal) from crates.io")?;
        }
        if found.wstunnel.is_none() {
            match wstunnel_src {
                Some(src) => cargo_install(
                    dir,
                    &["--path", &src.join("wstunnel-cli").to_string_lossy()],
                    Some(src),
                ),
                None => cargo_install(
                    dir,
                    &["--git", WSTUNNEL_GIT, "--tag", WSTUNNEL_TAG, "wstunnel-cli"],
                    None,
                ),
            }
            .context(
                "installing wstunnel: it is not on crates.io, so it is built from its git \
                 repository; without access to it, give a checkout of tag v10.6.2 with \
                 --wstunnel-src (WSTUNNEL_SRC) or put a wstunnel binary on PATH",
            )?;
        }
        let tools = Tools::find(dir);
        if tools.ssserver.is_none() || tools.sslocal.is_none() || tools.wstunnel.is_none() {
            bail!(
                "installed, yet not found in {}/bin: {tools:?}",
                dir.display()
            );
        }
        Ok(tools)
    }
}

/// `cargo install --locked --root dir ARGS`, in a throwaway target directory (not the
/// workspace's: `CARGO_TARGET_DIR` is removed), from `cwd` so a checkout's `.cargo/config.toml`
/// applies.
fn cargo_install(dir: &Path, args: &[&str], cwd: Option<&Path>) -> anyhow::Result<()> {
    eprintln!(
        "installing into {}: cargo install {}",
        dir.display(),
        args.join(" ")
    );
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .args(["install", "--locked", "--root"])
        .arg(dir)
        .args(args)
        .env_remove("CARGO_TARGET_DIR");
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let status = command.status().context("running cargo")?;
    if !status.success() {
        bail!("cargo install {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The first line of `program --version`, for the report.
pub fn version(program: &Path) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown version".into())
}

impl HttvpsBins {
    /// `httvps-gateway` and `httvps-client` in `dir` (default: beside this program, which
    /// `cargo build --release -p httvps-bench -p httvps-gateway -p httvps-client` puts there).
    pub fn find(dir: Option<&Path>) -> anyhow::Result<HttvpsBins> {
        let dir = bin_dir(dir)?;
        let bins = HttvpsBins {
            gateway: dir.join("httvps-gateway"),
            client: dir.join("httvps-client"),
        };
        for bin in [&bins.gateway, &bins.client] {
            present(bin, "-p httvps-gateway -p httvps-client")?;
        }
        Ok(bins)
    }

    /// Only `httvps-gateway` (the idle benchmark's clients are in its own process).
    pub fn gateway(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
        let gateway = bin_dir(dir)?.join("httvps-gateway");
        present(&gateway, "-p httvps-gateway")?;
        Ok(gateway)
    }
}

/// `dir`, or this program's directory.
fn bin_dir(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    Ok(match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::current_exe()?
            .parent()
            .context("this program's directory")?
            .to_path_buf(),
    })
}

fn present(bin: &Path, packages: &str) -> anyhow::Result<()> {
    if !bin.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release {packages}` (same target \
             directory) or pass --bin-dir",
            bin.display()
        );
    }
    Ok(())
}
