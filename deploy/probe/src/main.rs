//! `httvps-probe --target HOST:PORT --reference HOST:PORT`: prints identical/different per
//! probe and a summary; exits 1 when any probe differs, 2 on a usage or setup error.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use httvps_probe::report::{self, Summary};
use httvps_probe::run::{self, Settings};

/// Compares a deployment's answers to active probes with a reference nginx's.
#[derive(Debug, Parser)]
#[command(name = "httvps-probe", version)]
struct Args {
    /// The deployment's TLS port, `host:port`.
    #[arg(long)]
    target: String,
    /// The reference nginx's TLS port (same site, same files), `host:port`.
    #[arg(long)]
    reference: String,
    /// SNI sent by the probes (some probes send none or another name).
    #[arg(long, default_value = "localhost")]
    sni: String,
    /// Host header of the probes (default: the SNI).
    #[arg(long)]
    host: Option<String>,
    /// The deployment's secret path; enables the probes that use it (the reference gets the
    /// same requests).
    #[arg(long)]
    secret_path: Option<String>,
    /// Also run the idle probes: they wait for the servers' timeouts (up to --idle-limit).
    #[arg(long)]
    slow: bool,
    /// An answer is complete after this many milliseconds without a byte.
    #[arg(long, default_value_t = 1000)]
    settle_ms: u64,
    /// A probe without any answer byte gives up after this many milliseconds.
    #[arg(long, default_value_t = 3000)]
    first_byte_ms: u64,
    /// Longest wait for a close in the idle probes, in seconds.
    #[arg(long, default_value_t = 90)]
    idle_limit_secs: u64,
    /// Probes run in parallel (each against both servers at once).
    #[arg(long, default_value_t = 8)]
    jobs: usize,
    /// Run only probes whose name contains this (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// Print both full transcripts of every differing probe.
    #[arg(long, short)]
    verbose: bool,
    /// List the probes and exit.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for p in httvps_probe::probes::PROBES {
            let mark = if p.is_slow() {
                " (--slow)"
            } else if p.needs_secret {
                " (--secret-path)"
            } else {
                ""
            };
            println!("{}{mark}", p.name);
        }
        return ExitCode::SUCCESS;
    }
    let settings = Settings {
        host: args.host.unwrap_or_else(|| args.sni.clone()),
        sni: Some(args.sni),
        target: args.target,
        reference: args.reference,
        secret_path: args.secret_path,
        slow: args.slow,
        settle: Duration::from_millis(args.settle_ms),
        first_byte: Duration::from_millis(args.first_byte_ms),
        idle_limit: Duration::from_secs(args.idle_limit_secs),
        jobs: args.jobs,
        only: args.only,
    };
    let results = match run::run(&settings) {
        Ok(results) => results,
        Err(e) => {
            eprintln!("httvps-probe: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report::format(&results, args.verbose));
    if Summary::of(&results).different > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
