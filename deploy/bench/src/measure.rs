//! One path's measurements: curl downloads (1 stream, N parallel streams) with the CPU each
//! process spent, and open → first byte latency of small requests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::origin::{LARGE, SMALL};
use crate::paths::{BenchPath, Role};
use crate::procs::{cpu_ticks, waited_children_ticks};

const MIB: f64 = 1024.0 * 1024.0;
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// CPU milliseconds per MiB moved, per role, and of the curl processes.
#[derive(Clone, Debug, Default)]
pub struct CpuPerMib {
    pub roles: Vec<(Role, f64)>,
    pub curl: f64,
}

impl CpuPerMib {
    pub fn of(&self, role: Role) -> Option<f64> {
        self.roles.iter().find(|(r, _)| *r == role).map(|(_, v)| *v)
    }

    /// Every process of the path together, curl included.
    pub fn total(&self) -> f64 {
        self.roles.iter().map(|(_, v)| v).sum::<f64>() + self.curl
    }
}

/// A download of `streams` equal streams at once.
#[derive(Clone, Debug)]
pub struct Download {
    /// Bytes of all streams over the wall time from the first start to the last end, in MB/s
    /// (10^6 bytes).
    pub mb_per_s: f64,
    /// Each stream's time from start to completion (curl's time_total), sorted.
    pub completions: Vec<Duration>,
    pub cpu: CpuPerMib,
}

impl Download {
    /// Slowest over fastest completion of the equal streams.
    pub fn spread(&self) -> f64 {
        match (self.completions.first(), self.completions.last()) {
            (Some(first), Some(last)) => last.as_secs_f64() / first.as_secs_f64().max(1e-9),
            _ => 1.0,
        }
    }
}

/// Open → first byte percentiles.
#[derive(Clone, Copy, Debug)]
pub struct FirstByte {
    pub p50: Duration,
    pub p99: Duration,
}

/// The CPU counters of a path's processes (with nginx's) and of the waited curls.
struct CpuSnapshot {
    roles: Vec<(Role, u64)>,
    curl: u64,
}

fn snapshot(path: &BenchPath, origin: &[u32]) -> CpuSnapshot {
    let mut roles: Vec<(Role, u64)> = Vec::new();
    let all = path
        .pids
        .iter()
        .copied()
        .chain(origin.iter().map(|&pid| (Role::Origin, pid)));
    for (role, pid) in all {
        let ticks = cpu_ticks(pid).unwrap_or(0);
        match roles.iter_mut().find(|(r, _)| *r == role) {
            Some((_, t)) => *t += ticks,
            None => roles.push((role, ticks)),
        }
    }
    CpuSnapshot {
        roles,
        curl: waited_children_ticks().unwrap_or(0),
    }
}

fn cpu_per_mib(before: &CpuSnapshot, after: &CpuSnapshot, mib: f64, hz: f64) -> CpuPerMib {
    let ms = |ticks: u64| ticks as f64 * 1000.0 / hz / mib;
    CpuPerMib {
        roles: after
            .roles
            .iter()
            .zip(&before.roles)
            .map(|((role, a), (_, b))| (*role, ms(a.saturating_sub(*b))))
            .collect(),
        curl: ms(after.curl.saturating_sub(before.curl)),
    }
}

fn curl(path: &BenchPath, url: &str) -> anyhow::Result<Child> {
    let mut command = Command::new("curl");
    command.args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{time_total} %{size_download}",
    ]);
    if let Some(socks) = path.socks {
        command.arg("--socks5-hostname").arg(socks.to_string());
    }
    command
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting curl")
}

/// `streams` curl downloads of the large file at once through `path`.
pub fn download(
    path: &BenchPath,
    origin: SocketAddr,
    origin_pids: &[u32],
    streams: usize,
    bytes: u64,
    hz: f64,
) -> anyhow::Result<Download> {
    let url = format!("http://{origin}{LARGE}");
    let before = snapshot(path, origin_pids);
    let started = Instant::now();
    let children = (0..streams)
        .map(|_| curl(path, &url))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut completions = Vec::with_capacity(streams);
    let mut total = 0u64;
    for child in children {
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut fields = text.split_whitespace();
        let time: f64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        let size: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        if !out.status.success() || size != bytes {
            bail!(
                "{}: curl got {size} of {bytes} bytes ({}): {}",
                path.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        total += size;
        completions.push(Duration::from_secs_f64(time));
    }
    let elapsed = started.elapsed();
    let after = snapshot(path, origin_pids);
    completions.sort();
    Ok(Download {
        mb_per_s: total as f64 / 1e6 / elapsed.as_secs_f64(),
        completions,
        cpu: cpu_per_mib(&before, &after, total as f64 / MIB, hz),
    })
}

/// `samples` sequential requests of the small file, each timed from the TCP connect to the
/// local proxy (SOCKS5 greeting, CONNECT, HTTP request, as `curl --socks5-hostname` does) to
/// the response's first byte.
pub fn first_byte(
    path: &BenchPath,
    origin: SocketAddr,
    samples: usize,
) -> anyhow::Result<FirstByte> {
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        times.push(
            one_request(path.socks, origin).with_context(|| format!("{}: request", path.name))?,
        );
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    Ok(FirstByte {
        p50: pct(0.50),
        p99: pct(0.99),
    })
}

/// One request of the small file; the time to its first response byte. The response is then
/// read to its end (`Connection: close`) so every request completes.
pub fn one_request(socks: Option<SocketAddr>, origin: SocketAddr) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(socks.unwrap_or(origin))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    if socks.is_some() {
        socks5_connect(&mut stream, origin)?;
    }
    write!(
        stream,
        "GET {SMALL} HTTP/1.1\r\nHost: {origin}\r\nConnection: close\r\n\r\n"
    )?;
    let mut first = [0u8; 1];
    stream.read_exact(&mut first)?;
    let elapsed = started.elapsed();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)?;
    if first[0] != b'H' || !rest.starts_with(b"TTP/1.1 200") {
        bail!("unexpected response: {}", String::from_utf8_lossy(&rest));
    }
    Ok(elapsed)
}

/// SOCKS5 without authentication, CONNECT to an IPv4 target (RFC 1928).
fn socks5_connect(stream: &mut TcpStream, target: SocketAddr) -> anyhow::Result<()> {
    stream.write_all(&[5, 1, 0])?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice)?;
    if choice != [5, 0] {
        bail!("SOCKS5 method refused: {choice:?}");
    }
    let SocketAddr::V4(v4) = target else {
        bail!("the origin is on IPv4 loopback");
    };
    let mut request = vec![5, 1, 0, 1];
    request.extend_from_slice(&v4.ip().octets());
    request.extend_from_slice(&v4.port().to_be_bytes());
    stream.write_all(&request)?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head)?;
    if head[1] != 0 {
        bail!("SOCKS5 CONNECT refused: reply {}", head[1]);
    }
    let address_len = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len)?;
            usize::from(len[0])
        }
        other => bail!("SOCKS5 reply with address type {other}"),
    };
    let mut bound = vec![0u8; address_len + 2];
    stream.read_exact(&mut bound)?;
    Ok(())
}
