//! Child processes of the benchmark (each with its own log file, stopped when dropped) and the
//! CPU time of processes from `/proc`.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A process the benchmark started. Dropping it sends SIGTERM (nginx's master then stops its
/// workers), waits up to 3 s, then kills it.
#[derive(Debug)]
pub struct Process {
    pub role: &'static str,
    child: Child,
    log: PathBuf,
}

/// Starts `program args` (as [`Process::spawn`]), waits until it listens on `addr` and keeps it
/// in `procs` (stopped when they are dropped); returns its pid.
pub fn spawn_listening(
    procs: &mut Vec<Process>,
    role: &'static str,
    program: &Path,
    args: &[String],
    dir: &Path,
    addr: SocketAddr,
    timeout: Duration,
) -> anyhow::Result<u32> {
    let mut process = Process::spawn(role, program, args, dir)?;
    process.wait_listening(addr, timeout)?;
    let pid = process.pid();
    procs.push(process);
    Ok(pid)
}

impl Process {
    /// Starts `program args`, stdout and stderr into `dir/<role>.log`, with no `HTTVPS_*`,
    /// `REDIS_URL` or `RUST_LOG` from the benchmark's own environment.
    pub fn spawn(
        role: &'static str,
        program: &Path,
        args: &[String],
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let log = dir.join(format!("{role}.log"));
        let out = std::fs::File::create(&log).with_context(|| format!("{}", log.display()))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if name.starts_with("HTTVPS_") || name == "REDIS_URL" || name == "RUST_LOG" {
                command.env_remove(&key);
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {role} ({})", program.display()))?;
        Ok(Process { role, child, log })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `addr` accepts TCP connections; fails at once if the process exited.
    pub fn wait_listening(&mut self, addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before listening on {addr}:\n{}",
                    self.role,
                    self.log_tail()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} is not listening on {addr} after {timeout:?}:\n{}",
                    self.role,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of the process's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound, then released: the benchmark's processes bind it next).
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

pub use crate::proc_stat::{children_of, clock_ticks, cpu_ticks, waited_children_ticks};
