//! Runs the probe table against a target and a reference: each probe on both at the same time,
//! fast probes on a few worker threads, slow (idle) probes each on their own thread.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::compare::{self, Diff};
use crate::conn::{Observed, ProbeConn, Quiet};
use crate::probes::{self, Finish, Placeholders, Probe, Step, Transport, PROBES};
use crate::{raw_hello, tls, transcript};

/// Errors before any probe runs.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, std::io::Error),
    #[error("{0} resolves to no address")]
    NoAddress(String),
    #[error("TLS client setup failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("the secret path must start with '/': {0:?}")]
    SecretPath(String),
}

/// What to probe and how.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The deployment under test (`host:port` of its TLS port).
    pub target: String,
    /// The reference nginx (`host:port` of its TLS port).
    pub reference: String,
    /// SNI of the probes (`None`: no SNI unless a probe names one).
    pub sni: Option<String>,
    /// Host header value.
    pub host: String,
    /// The secret path, for the probes that use it.
    pub secret_path: Option<String>,
    /// Also run the idle probes (each waits up to `idle_limit`).
    pub slow: bool,
    /// A fast probe's answer is complete after this long without a byte.
    pub settle: Duration,
    /// A fast probe without any answer byte gives up after this long.
    pub first_byte: Duration,
    /// Longest wait for a close in idle probes.
    pub idle_limit: Duration,
    /// Worker threads for fast probes.
    pub jobs: usize,
    /// Only probes whose name contains one of these (all when empty).
    pub only: Vec<String>,
}

/// The longest a fast probe is watched even if bytes keep coming.
const FAST_LIMIT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The result of one probe.
#[derive(Clone, Debug)]
pub struct ProbeResult {
    pub probe: Probe,
    pub verdict: Verdict,
}

/// Identical, different (with both transcripts) or not run.
#[derive(Clone, Debug)]
pub enum Verdict {
    Identical {
        transcript: String,
    },
    Different {
        target: String,
        reference: String,
        diff: Diff,
    },
    Skipped(&'static str),
}

/// Runs every selected probe against both endpoints.
pub fn run(settings: &Settings) -> Result<Vec<ProbeResult>, RunError> {
    let target = resolve(&settings.target)?;
    let reference = resolve(&settings.reference)?;
    if let Some(path) = &settings.secret_path {
        if !path.starts_with('/') {
            return Err(RunError::SecretPath(path.clone()));
        }
    }
    // Fail on a TLS setup problem once, up front, not per probe.
    tls::client(
        probes::Sni::Default,
        probes::Alpn::Http11,
        settings.sni.as_deref(),
    )?;
    let placeholders = Placeholders {
        host: settings.host.clone(),
        secret: settings.secret_path.clone(),
    };
    let selected: Vec<&Probe> = PROBES
        .iter()
        .filter(|p| {
            settings.only.is_empty() || settings.only.iter().any(|o| p.name.contains(o.as_str()))
        })
        .collect();
    let results: Mutex<Vec<Option<Verdict>>> = Mutex::new(vec![None; selected.len()]);
    let next = AtomicUsize::new(0);
    let run_one = |i: usize| {
        let verdict = verdict(selected[i], settings, target, reference, &placeholders);
        if let Ok(mut results) = results.lock() {
            results[i] = Some(verdict);
        }
    };
    std::thread::scope(|scope| {
        for (i, probe) in selected.iter().enumerate() {
            if probe.is_slow() && settings.slow {
                let run_one = &run_one;
                scope.spawn(move || run_one(i));
            }
        }
        for _ in 0..settings.jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(probe) = selected.get(i) else { break };
                if !(probe.is_slow() && settings.slow) {
                    run_one(i);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(selected
        .into_iter()
        .zip(results)
        .map(|(probe, verdict)| ProbeResult {
            probe: *probe,
            verdict: verdict.unwrap_or(Verdict::Skipped("did not finish")),
        })
        .collect())
}

fn verdict(
    probe: &Probe,
    settings: &Settings,
    target: SocketAddr,
    reference: SocketAddr,
    placeholders: &Placeholders,
) -> Verdict {
    if probe.needs_secret && settings.secret_path.is_none() {
        return Verdict::Skipped("needs --secret-path");
    }
    if probe.is_slow() && !settings.slow {
        return Verdict::Skipped("needs --slow");
    }
    let (t, r) = std::thread::scope(|scope| {
        let t = scope.spawn(|| observe(probe, target, settings, placeholders));
        let r = observe(probe, reference, settings, placeholders);
        (t.join(), r)
    });
    let Ok(t) = t else {
        return Verdict::Skipped("probe thread panicked");
    };
    let target = render(probe, &t);
    let reference = render(probe, &r);
    match compare::diff(&target, &reference) {
        None => Verdict::Identical { transcript: target },
        Some(diff) => Verdict::Different {
            target,
            reference,
            diff,
        },
    }
}

/// The normalized transcript of one side.
pub fn render(probe: &Probe, observed: &Observed) -> String {
    let mut normalized = observed.clone();
    normalized.received = compare::normalize(&observed.received);
    transcript::render(&normalized, probe.transport, probe.level)
}

/// Runs one probe against one endpoint.
pub fn observe(
    probe: &Probe,
    addr: SocketAddr,
    settings: &Settings,
    placeholders: &Placeholders,
) -> Observed {
    let tls = match probe.transport {
        Transport::Plain | Transport::RawHello(_) => None,
        Transport::Tls => match tls::client(probe.sni, probe.alpn, settings.sni.as_deref()) {
            Ok(client) => Some(client),
            // Checked in `run` with the same inputs; a probe-specific name cannot fail.
            Err(_) => return Observed::connect_failed(std::io::ErrorKind::InvalidInput),
        },
    };
    let mut conn = match ProbeConn::connect(addr, tls, CONNECT_TIMEOUT) {
        Ok(conn) => conn,
        Err(e) => return Observed::connect_failed(e.kind()),
    };
    let start = Instant::now();
    if let Transport::RawHello(sni) = probe.transport {
        conn.send(&raw_hello::client_hello(sni));
    }
    for step in probe.steps {
        match *step {
            Step::Send(template) => conn.send(&probes::expand(template, placeholders)),
            Step::Wait(ms) => conn.read_until(Instant::now() + Duration::from_millis(ms), None),
        }
    }
    match probe.finish {
        Finish::Settle => {
            let quiet = Quiet {
                first_byte: settings.first_byte,
                after_bytes: settings.settle,
            };
            conn.read_until(start + FAST_LIMIT, Some(quiet));
        }
        Finish::Idle => conn.read_until(Instant::now() + settings.idle_limit, None),
    }
    conn.finish()
}

fn resolve(addr: &str) -> Result<SocketAddr, RunError> {
    addr.to_socket_addrs()
        .map_err(|e| RunError::Resolve(addr.to_owned(), e))?
        .next()
        .ok_or_else(|| RunError::NoAddress(addr.to_owned()))
}
