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

/// A time for people: `2026-12-01 21:20:05 UTC`, or `never` when there is none.
pub(super) fn when(at: Option<i64>) -> String {
    at.and_then(crate::readable::time)
        .unwrap_or_else(|| "never".to_owned())
}

/// A byte count for people (`1.5 GiB`), `unlimited` when there is no limit.
pub(super) fn bytes(n: Option<i64>) -> String {
    n.map_or_else(|| "unlimited".to_owned(), crate::readable::bytes)
}

/// An optional value for a table cell: the value, or `-`.
pub(super) fn or_dash(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Prints `value` as pretty JSON (for `--json`).
pub(super) fn json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    say!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints rows as a table: a header line, then one line per row, columns padded to their
/// widest cell (the last column is not padded).
pub(super) fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 < widths.len() {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            } else {
                out.push_str(cell);
            }
        }
        out.trim_end().to_owned()
    };
    say!("{}", line(&mut headers.iter().copied()));
    for row in rows {
        say!("{}", line(&mut row.iter().map(String::as_str)));
    }
}

/// Prints `key: value` lines, keys aligned.
pub(super) fn fields(pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in pairs {
        say!("{:<width$}  {v}", format!("{k}:"), width = width + 1);
    }
}

/// Prints `value` as JSON with `--json`, else runs `text`.
pub(super) fn emit<T: serde::Serialize + ?Sized>(
    as_json: bool,
    value: &T,
    text: impl FnOnce(),
) -> anyhow::Result<()> {
    if as_json {
        json(value)
    } else {
        text();
        Ok(())
    }
}

/// Reports a deletion: `{"deleted": id}` with `--json`, else `<kind> <name> deleted (<id>)`.
pub(super) fn deleted(as_json: bool, kind: &str, name: &str, id: uuid::Uuid) -> anyhow::Result<()> {
    let deletion = serde_json::json!({ "deleted": id });
    emit(as_json, &deletion, || say!("{kind} {name} deleted ({id})"))
}

/// A device's links as JSON: `[{"region": .., "link": ..}]`.
pub(super) fn links_json(links: &[crate::link::DeviceLink]) -> serde_json::Value {
    links
        .iter()
        .map(|l| serde_json::json!({ "region": l.region, "link": l.link.to_string() }))
        .collect()
}
