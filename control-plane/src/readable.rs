//! Times and byte counts as people read them, shared by the console pages and the CLI tables
//! so both show the same figures the same way.

use time::OffsetDateTime;

/// A time in milliseconds since the epoch as `2026-12-01 21:30:05 UTC`, or `None` when it is
/// out of range.
pub(crate) fn time(ms: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()?
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
        .ok()
}

/// A byte count in binary units: `1023 B`, `1.5 KiB`, `50.0 GiB`.
pub(crate) fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
