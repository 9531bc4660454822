//! Quota periods: when the current period of a plan's byte quota began and when it resets.

use time::{Date, Month, OffsetDateTime, Time};

use crate::model::{Millis, ResetStrategy};

const DAY_MS: i64 = 86_400_000;
const ROLLING_MS: i64 = 30 * DAY_MS;

/// The current quota period `[start, end)` for a subscription that started at `started_at`;
/// `end` is `None` when the quota never resets.
pub fn current_period(
    strategy: ResetStrategy,
    started_at: Millis,
    now: Millis,
) -> (Millis, Option<Millis>) {
    match strategy {
        ResetStrategy::None => (started_at, None),
        ResetStrategy::Daily => {
            let start = now.div_euclid(DAY_MS) * DAY_MS;
            (start, Some(start + DAY_MS))
        }
        ResetStrategy::Weekly => {
            let day = now.div_euclid(DAY_MS);
            // 1970-01-01 was a Thursday: Monday-based weekday index is (day + 3) mod 7.
            let start = (day - (day + 3).rem_euclid(7)) * DAY_MS;
            (start, Some(start + 7 * DAY_MS))
        }
        ResetStrategy::CalendarMonth => {
            let start = month_start(now, 0);
            (start, Some(month_start(now, 1)))
        }
        ResetStrategy::Rolling30d => {
            let elapsed = (now - started_at).max(0);
            let start = started_at + elapsed / ROLLING_MS * ROLLING_MS;
            (start, Some(start + ROLLING_MS))
        }
    }
}

/// 00:00 UTC on the first day of the month `offset` months after the one containing `at`.
fn month_start(at: Millis, offset: i32) -> Millis {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let months = dt.year() * 12 + (i32::from(u8::from(dt.month())) - 1) + offset;
    let (year, month0) = (months.div_euclid(12), months.rem_euclid(12));
    let month = Month::try_from(month0 as u8 + 1).unwrap_or(Month::January);
    let date = Date::from_calendar_date(year, month, 1).unwrap_or(Date::MIN);
    let start = date.with_time(Time::MIDNIGHT).assume_utc();
    i64::try_from(start.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> Millis {
        let dt = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
        (dt.unix_timestamp_nanos() / 1_000_000) as i64
    }

    #[test]
    fn periods_for_every_strategy() {
        let started = ms("2026-01-15T10:00:00Z");
        let now = ms("2026-03-04T13:45:00Z"); // a Wednesday
        assert_eq!(
            current_period(ResetStrategy::None, started, now),
            (started, None)
        );
        assert_eq!(
            current_period(ResetStrategy::Daily, started, now),
            (ms("2026-03-04T00:00:00Z"), Some(ms("2026-03-05T00:00:00Z")))
        );
        assert_eq!(
            current_period(ResetStrategy::Weekly, started, now),
            (ms("2026-03-02T00:00:00Z"), Some(ms("2026-03-09T00:00:00Z")))
        );
        assert_eq!(
            current_period(ResetStrategy::CalendarMonth, started, now),
            (ms("2026-03-01T00:00:00Z"), Some(ms("2026-04-01T00:00:00Z")))
        );
        // 48 days after the start: the second 30-day window began on day 30.
        assert_eq!(
            current_period(ResetStrategy::Rolling30d, started, now),
            (ms("2026-02-14T10:00:00Z"), Some(ms("2026-03-16T10:00:00Z")))
        );
    }

    #[test]
    fn month_boundaries_and_year_wrap() {
        let dec = ms("2026-12-31T23:59:59Z");
        assert_eq!(
            current_period(ResetStrategy::CalendarMonth, 0, dec),
            (ms("2026-12-01T00:00:00Z"), Some(ms("2027-01-01T00:00:00Z")))
        );
        let monday = ms("2026-03-02T00:00:00Z");
        assert_eq!(current_period(ResetStrategy::Weekly, 0, monday).0, monday);
    }
}
