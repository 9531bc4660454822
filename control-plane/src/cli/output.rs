//! Command output on stdout. A reader that went away (`... | head`) ends the command quietly, as
//! it ends `ls`, instead of the panic `println!` gives on a closed pipe.

use std::io::ErrorKind;

use anyhow::Context;

use crate::domain;

/// `println!` for command output; see the module.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::cli::output::failed(e);
        }
    }};
}
pub(crate) use say;

/// Ends the process after a failed write to stdout: 0 when the reader closed the pipe (the
/// output was not wanted any more), 1 with a message otherwise.
pub(crate) fn failed(e: std::io::Error) -> ! {
    if e.kind() == ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("httvps-control-plane: cannot write the output: {e}");
    std::process::exit(1)
}

pub(super) fn print_credentials(
    created: &domain::devices::NewCredentials,
    no_qr: bool,
) -> anyhow::Result<()> {
    say!("token: {}", created.token);
    print_links(&created.links, no_qr)
}

/// The links, one per line (with the region when configured), and the first one's QR code.
pub(super) fn print_links(links: &[crate::link::DeviceLink], no_qr: bool) -> anyhow::Result<()> {
    for l in links {
        match &l.region {
            Some(region) => say!("connection link ({region}): {}", l.link),
            None => say!("connection link: {}", l.link),
        }
    }
    if let (Some(first), false) = (links.first(), no_qr) {
        say!(
            "{}",
            crate::link::qr_terminal(&first.link.to_string()).context("drawing the QR code")?
        );
    }
    Ok(())
}

/// A last-seen time for a listing: RFC 3339 in UTC, or `never`.
pub(super) fn last_seen(at: Option<i64>) -> String {
    use time::format_description::well_known::Rfc3339;
    at.and_then(|ms| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
    })
    .and_then(|t| t.format(&Rfc3339).ok())
    .unwrap_or_else(|| "never".to_owned())
}
