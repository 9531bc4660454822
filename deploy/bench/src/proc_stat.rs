//! Readers of `/proc` (Linux): CPU time and resident memory of processes, the open-file limit.
//! Plain std, so that the control plane's `validate_bench` and the gateway's `sessions_bench`
//! examples include this file by path too (`#[path = ".../proc_stat.rs"] mod proc_stat;`).
#![allow(dead_code)]

use std::process::Command;

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, 100 on Linux).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces), so that
/// `fields[0]` is field 3 (state) of proc(5).
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    Some(rest.split(' ').map(str::to_owned).collect())
}

fn field(fields: &[String], number: usize) -> Option<u64> {
    fields.get(number - 3)?.parse().ok()
}

/// utime + stime of a process (all its threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let fields = stat_fields(&pid.to_string())?;
    Some(field(&fields, 14)? + field(&fields, 15)?)
}

/// cutime + cstime of this process: the CPU of its children that it has waited for (the curl
/// processes), in clock ticks.
pub fn waited_children_ticks() -> Option<u64> {
    let fields = stat_fields("self")?;
    Some(field(&fields, 16)? + field(&fields, 17)?)
}

/// utime + stime + cutime + cstime of every process named `comm` (as `/proc/<pid>/comm` gives
/// it: `postgres`, `redis-server`), in clock ticks. The waited-children part keeps the CPU of
/// PostgreSQL backends that exited (the postmaster waits for them).
pub fn cpu_ticks_named(comm: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .filter_map(|pid| {
            let f = stat_fields(&pid.to_string())?;
            Some(field(&f, 14)? + field(&f, 15)? + field(&f, 16)? + field(&f, 17)?)
        })
        .sum()
}

/// utime + stime of this process (all its threads), in clock ticks.
pub fn own_cpu_ticks() -> Option<u64> {
    let fields = stat_fields("self")?;
    Some(field(&fields, 14)? + field(&fields, 15)?)
}

/// The processes whose parent is `parent` (nginx's workers).
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            stat_fields(&pid.to_string()).and_then(|f| field(&f, 4)) == Some(u64::from(parent))
        })
        .collect()
}

/// Resident memory of a process in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// This process's soft limit of open files (children inherit it).
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_cpu_and_its_children() {
        // This process has run code, so its counters exist; a pid that cannot exist has none.
        assert!(cpu_ticks(std::process::id()).is_some());
        assert!(waited_children_ticks().is_some());
        assert_eq!(cpu_ticks(u32::MAX), None);
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
        assert!(open_file_limit().is_some_and(|n| n > 0));
        let mut child = Command::new("sleep").arg("5").spawn().expect("sleep");
        assert!(children_of(std::process::id()).contains(&child.id()));
        child.kill().expect("kill");
        child.wait().expect("wait");
    }
}
