//! The rules input must follow, on every path that changes data (admin API and CLI alike).

use std::ops::RangeInclusive;

use super::{DomainError, DomainResult};

/// Longest name of anything (users, plans, devices, nodes, ...).
pub const MAX_NAME: usize = 64;
/// Longest free-text description.
pub const MAX_DESCRIPTION: usize = 512;

/// A trimmed, non-empty name of at most `max` characters without control characters.
pub fn text(field: &str, value: &str, max: usize) -> DomainResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(DomainError::Invalid(format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(DomainError::Invalid(format!(
            "{field} must have at most {max} characters"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(DomainError::Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(v.to_owned())
}

/// Free text that may be empty (descriptions).
pub fn free_text(field: &str, value: &str, max: usize) -> DomainResult<String> {
    let v = value.trim();
    if v.chars().count() > max {
        return Err(DomainError::Invalid(format!(
            "{field} must have at most {max} characters"
        )));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(DomainError::Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(v.to_owned())
}

/// An integer within `range`, as an `i32`.
pub fn int_in(field: &str, value: i64, range: RangeInclusive<i64>) -> DomainResult<i32> {
    if !range.contains(&value) {
        return Err(DomainError::Invalid(format!(
            "{field} must be between {} and {}",
            range.start(),
            range.end()
        )));
    }
    i32::try_from(value).map_err(|_| DomainError::Invalid(format!("{field} is out of range")))
}

/// An e-mail address of a plausible shape (`local@domain.tld`, at most 254 bytes).
pub fn email(value: &str) -> DomainResult<String> {
    let v = value.trim();
    let bad = || DomainError::Invalid(format!("email {} is not a valid address", shown(v)));
    if v.len() > 254 {
        return Err(DomainError::Invalid(
            "email must have at most 254 characters".into(),
        ));
    }
    let (local, domain) = v.split_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
    if local.is_empty()
        || local.len() > 64
        || domain.contains('@')
        || !domain_ok
        || v.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    Ok(v.to_owned())
}

/// User input quoted in an error message, cut short.
pub fn shown(value: &str) -> String {
    let mut s: String = value.chars().take(64).collect();
    if s.len() < value.len() {
        s.push('…');
    }
    format!("{s:?}")
}
