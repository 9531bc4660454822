//! The printed report: one line per probe (`identical`, `different` with a short diff, or
//! `skipped`), then a summary line.

use std::fmt::Write as _;

use crate::run::{ProbeResult, Verdict};

/// Counts of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub identical: usize,
    pub different: usize,
    pub skipped: usize,
}

impl Summary {
    pub fn of(results: &[ProbeResult]) -> Summary {
        let mut s = Summary::default();
        for r in results {
            match r.verdict {
                Verdict::Identical { .. } => s.identical += 1,
                Verdict::Different { .. } => s.different += 1,
                Verdict::Skipped(_) => s.skipped += 1,
            }
        }
        s
    }
}

/// The report text; with `verbose`, both full transcripts of every differing probe.
pub fn format(results: &[ProbeResult], verbose: bool) -> String {
    let width = results
        .iter()
        .map(|r| r.probe.name.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for r in results {
        let name = r.probe.name;
        match &r.verdict {
            Verdict::Identical { .. } => {
                let _ = writeln!(out, "identical  {name}");
            }
            Verdict::Skipped(why) => {
                let _ = writeln!(out, "skipped    {name:width$}  ({why})");
            }
            Verdict::Different {
                target,
                reference,
                diff,
            } => {
                let _ = writeln!(out, "different  {name}");
                for line in diff.to_string().lines() {
                    let _ = writeln!(out, "           {line}");
                }
                if verbose {
                    for (label, text) in [("target", target), ("reference", reference)] {
                        let _ = writeln!(out, "           --- {label} transcript:");
                        for line in text.lines() {
                            let _ = writeln!(out, "           {line}");
                        }
                    }
                }
            }
        }
    }
    let s = Summary::of(results);
    let _ = writeln!(
        out,
        "summary: {} identical, {} different, {} skipped of {} probes",
        s.identical,
        s.different,
        s.skipped,
        results.len()
    );
    out
}
