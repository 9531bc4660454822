//! The target of every download: nginx on loopback serving a large file and a small one from
//! the work directory (on tmpfs), with sendfile, no access log.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::procs::{children_of, free_port, Process};

/// The large file's URL path.
pub const LARGE: &str = "/large.bin";
/// The small file's URL path (the first-byte requests).
pub const SMALL: &str = "/small.txt";
const SMALL_BYTES: usize = 100;

/// nginx, running.
#[derive(Debug)]
pub struct Origin {
    pub addr: SocketAddr,
    /// Master and workers, for CPU accounting.
    pub pids: Vec<u32>,
    _process: Process,
}

/// Debian's nginx, or `nginx` on `PATH`.
pub fn nginx_binary() -> PathBuf {
    let debian = PathBuf::from("/usr/sbin/nginx");
    if debian.is_file() {
        debian
    } else {
        PathBuf::from("nginx")
    }
}

impl Origin {
    /// Writes the files and the configuration under `dir`, starts nginx and waits for it.
    pub fn start(dir: &Path, large_bytes: u64) -> anyhow::Result<Origin> {
        let www = dir.join("www");
        std::fs::create_dir_all(&www)?;
        write_file(&www.join(LARGE.trim_start_matches('/')), large_bytes)?;
        std::fs::write(
            www.join(SMALL.trim_start_matches('/')),
            vec![b'x'; SMALL_BYTES],
        )?;
        let temp = dir.join("nginx-temp");
        std::fs::create_dir_all(&temp)?;
        let addr = free_port()?;
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config(dir, &www, &temp, addr))?;
        let mut process = Process::spawn(
            "nginx",
            &nginx_binary(),
            &[
                "-p".into(),
                dir.display().to_string(),
                "-e".into(),
                dir.join("nginx-error.log").display().to_string(),
                "-c".into(),
                conf.display().to_string(),
            ],
            dir,
        )?;
        process.wait_listening(addr, Duration::from_secs(10))?;
        // The master listens before it forks its workers.
        let master = process.pid();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut workers = children_of(master);
        while workers.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            workers = children_of(master);
        }
        let mut pids = vec![master];
        pids.extend(workers);
        Ok(Origin {
            addr,
            pids,
            _process: process,
        })
    }
}

/// `len` bytes of a repeating non-zero pattern (real pages, not a sparse file).
fn write_file(path: &Path, len: u64) -> anyhow::Result<()> {
    let block: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 31 % 251) as u8).collect();
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| path.display().to_string())?,
    );
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    Ok(())
}

fn config(dir: &Path, www: &Path, temp: &Path, addr: SocketAddr) -> String {
    let temp = temp.display();
    format!(
        "daemon off;\n\
         worker_processes auto;\n\
         pid {pid};\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         \x20 access_log off;\n\
         \x20 sendfile on;\n\
         \x20 tcp_nopush on;\n\
         \x20 default_type application/octet-stream;\n\
         \x20 client_body_temp_path {temp}/body;\n\
         \x20 proxy_temp_path {temp}/proxy;\n\
         \x20 fastcgi_temp_path {temp}/fastcgi;\n\
         \x20 uwsgi_temp_path {temp}/uwsgi;\n\
         \x20 scgi_temp_path {temp}/scgi;\n\
         \x20 server {{\n\
         \x20   listen {addr};\n\
         \x20   root {www};\n\
         \x20 }}\n\
         }}\n",
        pid = dir.join("nginx.pid").display(),
        www = www.display(),
    )
}
