//! Statements over many rows at once (the gateway API's batches): how many rows one statement
//! may carry, and its placeholders.
//!
//! A statement is prepared once per connection and shape, so a list of values is padded to the
//! next power of two (its last value repeated, which changes no `IN` list and no `UNION`): the
//! batches of a route take about ten shapes instead of one per length.

/// Most rows one multi-row statement carries (PostgreSQL takes at most 65,535 parameters).
pub(super) const ROWS_PER_STATEMENT: usize = 1_024;

/// `$first, $first+1, ...`: `count` placeholders.
pub(super) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many values a list of `len` is padded to.
pub(super) fn padded_len(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        len.next_power_of_two()
    }
}

/// The values of `list`, its last repeated up to [`padded_len`].
pub(super) fn padded<T>(list: &[T]) -> impl Iterator<Item = &T> {
    let extra = padded_len(list.len()) - list.len();
    list.iter()
        .chain(list.last().into_iter().cycle().take(extra))
}

/// `IN (...)` placeholders from `$first` for `list` padded ([`padded`] binds its values).
pub(super) fn in_list<T>(first: usize, list: &[T]) -> String {
    placeholders(first, padded_len(list.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_padded_to_a_power_of_two_with_their_last_value() {
        assert_eq!(padded::<u8>(&[]).count(), 0);
        assert_eq!(padded(&[7]).copied().collect::<Vec<_>>(), [7]);
        assert_eq!(
            padded(&[1, 2, 3]).copied().collect::<Vec<_>>(),
            [1, 2, 3, 3]
        );
        assert_eq!(padded(&[1, 2, 3, 4, 5]).count(), 8);
        assert_eq!(in_list(3, &[1, 2, 3]), "$3, $4, $5, $6");
        assert_eq!(padded_len(ROWS_PER_STATEMENT), ROWS_PER_STATEMENT);
    }
}
