//! Comparison of two answers. Two things are normalized, everything else must match byte for
//! byte: the value of `Date` headers in response header blocks, and the boundary of
//! `multipart/byteranges` answers (nginx numbers it from a counter shared by everything the
//! worker serves, so it differs between any two servers; its format still counts). The diff is
//! short on purpose: the lines between the common beginning and the common end.

use std::fmt;

/// What a `Date` header value becomes.
pub const DATE_PLACEHOLDER: &[u8] = b"<date>";

/// What a multipart boundary becomes.
pub const BOUNDARY_PLACEHOLDER: &[u8] = b"<boundary>";

/// Everything the comparison normalizes: `Date` values, then multipart boundaries.
pub fn normalize(bytes: &[u8]) -> Vec<u8> {
    normalize_boundaries(&normalize_date(bytes))
}

/// Replaces each boundary named by a `Content-Type: multipart/byteranges; boundary=` header
/// with [`BOUNDARY_PLACEHOLDER`], wherever it occurs (header and body delimiters). Only runs of
/// digits are replaced: nginx's boundaries are 20-digit counters, so another server's
/// boundary format still shows.
pub fn normalize_boundaries(bytes: &[u8]) -> Vec<u8> {
    const MARK: &[u8] = b"multipart/byteranges; boundary=";
    let mut out = bytes.to_vec();
    let mut from = 0;
    while let Some(at) = find(&out[from..], MARK) {
        let start = from + at + MARK.len();
        let len = out[start..]
            .iter()
            .take_while(|b| !matches!(b, b'\r' | b'\n' | b';' | b' '))
            .count();
        if len == 0 || !out[start..start + len].iter().all(u8::is_ascii_digit) {
            from = start;
            continue;
        }
        let boundary = out[start..start + len].to_vec();
        out = replace_all(&out, &boundary, BOUNDARY_PLACEHOLDER);
        from = start;
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = find(rest, from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Replaces the value of every `Date` header inside a response header block (from a line that
/// starts with `HTTP/` to the next empty line) with [`DATE_PLACEHOLDER`]. Header name case,
/// the whitespace after the colon and line endings are kept, so they still count.
pub fn normalize_date(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut in_headers = false;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let content = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        let ending = &line[content.len()..];
        if !in_headers {
            in_headers = content.starts_with(b"HTTP/");
            out.extend_from_slice(line);
            continue;
        }
        if content.is_empty() {
            in_headers = false;
            out.extend_from_slice(line);
            continue;
        }
        match date_value_start(content) {
            // Only a complete line is normalized: a cut-off one is left as it came.
            Some(start) if !ending.is_empty() => {
                out.extend_from_slice(&content[..start]);
                out.extend_from_slice(DATE_PLACEHOLDER);
                out.extend_from_slice(ending);
            }
            _ => out.extend_from_slice(line),
        }
    }
    out
}

/// Where the value of a `Date:` header line starts (after the colon and spaces), if it is one.
fn date_value_start(line: &[u8]) -> Option<usize> {
    let name = line.get(..5)?;
    if !name.eq_ignore_ascii_case(b"date:") {
        return None;
    }
    let spaces = line[5..]
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    Some(5 + spaces)
}

/// How two transcripts differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    /// 1-based line number of the first differing line.
    pub line: usize,
    /// The target's lines between the common beginning and the common end.
    pub target: Vec<String>,
    /// The reference's lines in the same place.
    pub reference: Vec<String>,
}

/// `None` when the transcripts are identical.
pub fn diff(target: &str, reference: &str) -> Option<Diff> {
    if target == reference {
        return None;
    }
    let t: Vec<&str> = target.lines().collect();
    let r: Vec<&str> = reference.lines().collect();
    let prefix = t.iter().zip(&r).take_while(|(a, b)| a == b).count();
    let suffix = t[prefix..]
        .iter()
        .rev()
        .zip(r[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let middle = |lines: &[&str]| {
        lines[prefix..lines.len() - suffix]
            .iter()
            .map(|l| (*l).to_owned())
            .collect()
    };
    Some(Diff {
        line: prefix + 1,
        target: middle(&t),
        reference: middle(&r),
    })
}

/// Lines shown per side.
const SHOWN_LINES: usize = 4;
/// Characters shown per line.
const SHOWN_CHARS: usize = 160;

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "at line {}:", self.line)?;
        for (label, lines) in [("target   ", &self.target), ("reference", &self.reference)] {
            if lines.is_empty() {
                writeln!(f, "  {label} | (nothing)")?;
            }
            for line in lines.iter().take(SHOWN_LINES) {
                writeln!(f, "  {label} | {}", shorten(line))?;
            }
            if lines.len() > SHOWN_LINES {
                writeln!(
                    f,
                    "  {label} | ... {} more lines",
                    lines.len() - SHOWN_LINES
                )?;
            }
        }
        Ok(())
    }
}

fn shorten(line: &str) -> String {
    match line.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}... ({} chars)", &line[..cut], line.chars().count()),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_values_are_normalized_only_in_header_blocks() {
        let answer = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Tue, 01 Dec 2026 12:00:00 GMT\r\n\r\nDate: in the body\r\nHTTP/1.1 404 Not Found\r\ndate:Wed, 02 Dec 2026 00:00:00 GMT\r\n\r\n";
        let got = normalize_date(answer);
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: <date>\r\n\r\nDate: in the body\r\nHTTP/1.1 404 Not Found\r\ndate:<date>\r\n\r\n"
        );
    }

    #[test]
    fn two_dates_compare_equal_but_other_headers_do_not() {
        let a = normalize_date(b"HTTP/1.1 200 OK\r\nDate: Tue, 01 Dec 2026 12:00:00 GMT\r\nServer: nginx/1.22.1\r\n\r\n");
        let b = normalize_date(b"HTTP/1.1 200 OK\r\nDate: Tue, 01 Dec 2026 12:00:07 GMT\r\nServer: nginx/1.22.1\r\n\r\n");
        assert_eq!(a, b);
        // Header name case, spacing and line endings still count.
        let lower = normalize_date(b"HTTP/1.1 200 OK\r\ndate: Tue, 01 Dec 2026 12:00:00 GMT\r\nServer: nginx/1.22.1\r\n\r\n");
        assert_ne!(a, lower);
        let lf = normalize_date(
            b"HTTP/1.1 200 OK\nDate: Tue, 01 Dec 2026 12:00:00 GMT\nServer: nginx/1.22.1\n\n",
        );
        assert_ne!(a, lf);
        // A Last-Modified value is not a Date header.
        let modified = normalize_date(
            b"HTTP/1.1 200 OK\r\nLast-Modified: Tue, 01 Dec 2026 12:00:00 GMT\r\n\r\n",
        );
        assert!(modified.windows(6).all(|w| w != DATE_PLACEHOLDER));
    }

    #[test]
    fn nginx_multipart_boundaries_are_normalized_but_not_other_formats() {
        let answer = |n: &str| {
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Type: multipart/byteranges; boundary={n}\r\n\r\n\r\n--{n}\r\nContent-Range: bytes 0-1/4096\r\n\r\nab\r\n--{n}--\r\n"
            )
        };
        let one = normalize(answer("00000000000000000001").as_bytes());
        let two = normalize(answer("00000000000000000002").as_bytes());
        assert_eq!(one, two);
        assert_eq!(
            String::from_utf8(one.clone()).unwrap(),
            answer("<boundary>")
        );
        // A boundary that is not a digit counter (another server's format) is left alone.
        let other = normalize(answer("3d6b6a416f9b5").as_bytes());
        assert_ne!(one, other);
    }

    #[test]
    fn a_cut_off_date_line_is_kept() {
        let cut = b"HTTP/1.1 200 OK\r\nDate: Tue, 01";
        assert_eq!(normalize_date(cut), cut.to_vec());
    }

    #[test]
    fn the_diff_shows_the_lines_between_common_start_and_end() {
        let target = "HTTP/1.1 404 Not Found\\r\\n\nserver: nginx\\r\\n\ncontent-length: 0\\r\\n\n-- tcp close: still open\n";
        let reference = "HTTP/1.1 404 Not Found\\r\\n\nServer: nginx/1.22.1\\r\\n\nContent-Type: text/html\\r\\n\nContent-Length: 153\\r\\n\n-- tcp close: still open\n";
        let d = diff(target, reference).expect("they differ");
        assert_eq!(d.line, 2);
        assert_eq!(
            d.target,
            vec!["server: nginx\\r\\n", "content-length: 0\\r\\n"]
        );
        assert_eq!(d.reference.len(), 3);
        let shown = d.to_string();
        assert!(
            shown.starts_with("at line 2:\n  target    | server: nginx"),
            "{shown}"
        );
        assert!(diff(target, target).is_none());
    }

    #[test]
    fn a_missing_tail_shows_as_nothing() {
        let d = diff("a\nb\n", "a\nb\nc\n").expect("they differ");
        assert_eq!(
            (d.line, d.target.len(), d.reference.clone()),
            (3, 0, vec!["c".to_owned()])
        );
        assert!(d.to_string().contains("target    | (nothing)"));
    }

    #[test]
    fn long_lines_are_shortened() {
        let long = "a".repeat(500);
        let d = diff(&long, "b").expect("they differ");
        assert!(d.to_string().contains("(500 chars)"));
    }
}
