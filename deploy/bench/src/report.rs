//! The printed tables: per run, then ranges over the runs, CPU per MiB per process, and the
//! ratios of httvps to Shadowsocks alone and to the wstunnel chain (medians over the runs).

use std::time::Duration;

use crate::measure::{CpuPerMib, Download, FirstByte};
use crate::paths::Role;

/// One run of one path.
#[derive(Clone, Debug)]
pub struct Run {
    pub one: Download,
    pub many: Download,
    pub first: FirstByte,
}

/// A path's runs.
#[derive(Debug)]
pub struct PathResults {
    pub name: &'static str,
    pub runs: Vec<Run>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// `a–b` over the runs (one value when there is one run), with `decimals` decimals.
fn range(values: &[f64], decimals: usize) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.len() < 2 || format!("{min:.decimals$}") == format!("{max:.decimals$}") {
        format!("{min:.decimals$}")
    } else {
        format!("{min:.decimals$}–{max:.decimals$}")
    }
}

impl PathResults {
    fn of(&self, f: impl Fn(&Run) -> f64) -> Vec<f64> {
        self.runs.iter().map(f).collect()
    }

    fn median(&self, f: impl Fn(&Run) -> f64) -> f64 {
        median(self.of(f))
    }
}

/// One line per run and path, as the runs happen.
pub fn print_run(run_number: usize, name: &str, run: &Run) {
    let many = &run.many;
    println!(
        "run {run_number} {name:<9} 1 stream {:>6.0} MB/s | {} streams {:>6.0} MB/s, done in {:.2}–{:.2} s (spread {:.2}) | first byte p50 {:.2} ms p99 {:.2} ms | CPU ms/MiB total {:.2} / {:.2}",
        run.one.mb_per_s,
        many.completions.len(),
        many.mb_per_s,
        many.completions.first().map_or(0.0, Duration::as_secs_f64),
        many.completions.last().map_or(0.0, Duration::as_secs_f64),
        many.spread(),
        ms(run.first.p50),
        ms(run.first.p99),
        run.one.cpu.total(),
        many.cpu.total(),
    );
}

/// The summary: ranges over the runs, CPU tables, ratios.
pub fn print_summary(results: &[PathResults], streams: usize) {
    let runs = results.first().map_or(0, |r| r.runs.len());
    println!(
        "\nsummary over {runs} run(s) (min–max; MB = 10^6 bytes; first byte = connect to the local \
         proxy → first response byte)"
    );
    println!(
        "{:<9} {:>13} {:>15} {:>17} {:>14} {:>22} {:>16}",
        "path",
        "1 stream MB/s",
        format!("{streams} streams MB/s"),
        "first byte p50 ms",
        "first byte p99",
        format!("{streams} streams done in s"),
        "spread max/min"
    );
    for r in results {
        let first_done = r.of(|x| {
            x.many
                .completions
                .first()
                .map_or(0.0, Duration::as_secs_f64)
        });
        let last_done = r.of(|x| x.many.completions.last().map_or(0.0, Duration::as_secs_f64));
        println!(
            "{:<9} {:>13} {:>15} {:>17} {:>14} {:>22} {:>16}",
            r.name,
            range(&r.of(|x| x.one.mb_per_s), 0),
            range(&r.of(|x| x.many.mb_per_s), 0),
            range(&r.of(|x| ms(x.first.p50)), 2),
            range(&r.of(|x| ms(x.first.p99)), 2),
            format!("{} … {}", range(&first_done, 2), range(&last_done, 2)),
            range(&r.of(|x| x.many.spread()), 2),
        );
    }
    print_cpu(results, "1 stream", |x| &x.one.cpu);
    print_cpu(results, &format!("{streams} streams"), |x| &x.many.cpu);
    print_ratios(results, "ss-alone");
    print_ratios(results, "wstunnel");
}

fn print_cpu(results: &[PathResults], label: &str, cpu: impl Fn(&Run) -> &CpuPerMib) {
    println!("\nCPU ms per MiB moved, {label} (median of the runs; utime+stime from /proc)");
    print!("{:<9}", "path");
    for role in Role::ALL {
        print!(" {:>11}", role.label());
    }
    println!(" {:>7} {:>7}", "curl", "total");
    for r in results {
        print!("{:<9}", r.name);
        for role in Role::ALL {
            let values: Option<Vec<f64>> = r.runs.iter().map(|x| cpu(x).of(role)).collect();
            match values {
                Some(v) if !v.is_empty() => print!(" {:>11.2}", median(v)),
                _ => print!(" {:>11}", "-"),
            }
        }
        println!(
            " {:>7.2} {:>7.2}",
            r.median(|x| cpu(x).curl),
            r.median(|x| cpu(x).total())
        );
    }
}

/// httvps over `base`, medians: above 1 is more throughput, more latency, more CPU.
fn print_ratios(results: &[PathResults], base: &str) {
    let find = |name: &str| results.iter().find(|r| r.name == name);
    let (Some(h), Some(b)) = (find("httvps"), find(base)) else {
        return;
    };
    let ratio = |f: &dyn Fn(&Run) -> f64| h.median(f) / b.median(f);
    println!(
        "\nhttvps / {base} (medians): 1 stream MB/s {:.2}, many streams MB/s {:.2}, first byte p50 \
         {:.2}, p99 {:.2}, CPU per MiB (all processes) 1 stream {:.2}, many {:.2}, spread {:.2}",
        ratio(&|x| x.one.mb_per_s),
        ratio(&|x| x.many.mb_per_s),
        ratio(&|x| ms(x.first.p50)),
        ratio(&|x| ms(x.first.p99)),
        ratio(&|x| x.one.cpu.total()),
        ratio(&|x| x.many.cpu.total()),
        ratio(&|x| x.many.spread()),
    );
}

#[cfg(test)]
mod tests;
