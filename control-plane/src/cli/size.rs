//! Byte sizes on the command line (`--quota 100GiB`).

use anyhow::{bail, Context};

/// Parses `100GiB`, `1.5TB`, `500MB`, `1024`: binary (KiB, MiB, GiB, TiB) and decimal (KB, MB,
/// GB, TB) units.
pub fn parse_bytes(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("{s:?} is not a size like 100GiB"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        other => bail!("unknown size unit {other:?}; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"),
    };
    let bytes = value * factor;
    if !(0.0..=9.0e18).contains(&bytes) {
        bail!("{s:?} is out of range");
    }
    Ok(bytes.round() as i64)
}

#[cfg(test)]
mod tests;
