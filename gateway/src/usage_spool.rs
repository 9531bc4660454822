//! The usage spool (`--usage-spool`): the usage reports the control plane has not accepted yet,
//! on disk, so a crash (SIGKILL, power loss) loses at most the counts of the last spool interval.
//!
//! The whole queue is written to a temporary file, fsynced and renamed over the spool (then the
//! directory is fsynced), so the spool is always one complete snapshot. At start the reports in
//! it are queued again with their ids: the control plane's ledger is unique on (gateway, report
//! id), so a report that did land before the crash is not counted twice. An exclusive lock on
//! `<spool>.lock` keeps a second process from sharing the file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::control_plane::UsageReport;

/// Format version of the spool file.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct SpoolFile {
    format: u32,
    reports: Vec<UsageReport>,
}

/// The spool file of one gateway process.
#[derive(Debug)]
pub struct UsageSpool {
    path: PathBuf,
    tmp: PathBuf,
    /// Held (locked) while the process lives.
    _lock: File,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

impl UsageSpool {
    /// Opens the spool at `path` (creating nothing yet) and returns the reports left in it by
    /// the previous process. An unreadable spool is moved aside (`.corrupt`) with an error log,
    /// not fatal: it is kept for an operator and the gateway still starts.
    pub fn open(path: &Path) -> io::Result<(UsageSpool, Vec<UsageReport>)> {
        let lock_path = with_suffix(path, ".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        // Released by the kernel when the process dies, however it dies.
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |e| {
                if e == rustix::io::Errno::WOULDBLOCK {
                    io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!(
                            "{} is locked: another gateway process uses this usage spool",
                            lock_path.display()
                        ),
                    )
                } else {
                    io::Error::from(e)
                }
            },
        )?;
        let reports = match fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<SpoolFile>(&bytes) {
                Ok(file) if file.format == FORMAT => file.reports,
                Ok(file) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: spool format {} is not {FORMAT} (written by another version)",
                            path.display(),
                            file.format
                        ),
                    ))
                }
                Err(e) => {
                    let aside = with_suffix(path, ".corrupt");
                    tracing::error!(spool = %path.display(), moved_to = %aside.display(), error = %e,
                        "usage spool unreadable: moved aside, its usage is not replayed");
                    fs::rename(path, &aside)?;
                    Vec::new()
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok((
            UsageSpool {
                path: path.to_owned(),
                tmp: with_suffix(path, ".tmp"),
                _lock: lock,
            },
            reports,
        ))
    }

    /// Replaces the spool with `reports`, durably (blocking: call off the async threads).
    pub fn save(&self, reports: &[UsageReport]) -> io::Result<()> {
        let json = serde_json::to_vec(&SpoolFile {
            format: FORMAT,
            reports: reports.to_vec(),
        })
        .map_err(io::Error::other)?;
        let mut file = File::create(&self.tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&self.tmp, &self.path)?;
        // The rename itself must survive a power loss.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control_plane::UsageRecord;

    fn report(id: &str, bytes: u64) -> UsageReport {
        UsageReport {
            report_id: id.into(),
            records: vec![UsageRecord {
                session_id: None,
                device_id: uuid::Uuid::nil(),
                node_id: None,
                bytes_up: 0,
                bytes_down: bytes,
                at: 1,
            }],
        }
    }

    #[test]
    fn saved_reports_come_back_and_a_second_process_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.spool");
        let (spool, left) = UsageSpool::open(&path).unwrap();
        assert!(left.is_empty());
        spool.save(&[report("r1", 10), report("r2", 20)]).unwrap();
        let busy = UsageSpool::open(&path).unwrap_err();
        assert_eq!(busy.kind(), io::ErrorKind::WouldBlock);
        drop(spool);
        let (_spool, left) = UsageSpool::open(&path).unwrap();
        assert_eq!(left, vec![report("r1", 10), report("r2", 20)]);
    }

    #[test]
    fn an_unreadable_spool_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.spool");
        fs::write(&path, b"{not json").unwrap();
        let (_spool, left) = UsageSpool::open(&path).unwrap();
        assert!(left.is_empty());
        assert!(dir.path().join("usage.spool.corrupt").exists());
    }
}
